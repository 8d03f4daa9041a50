//! Just enough of the Kubernetes protobuf encoding to read the request bodies kubectl sends
//! as protobuf (access reviews from `kubectl auth can-i`, evictions from `kubectl drain`,
//! delete options). Bodies become the equivalent JSON; answers stay JSON, which kubectl
//! accepts.

use serde_json::{Map, Value, json};

/// `k8s\0`, the prefix of every protobuf-encoded Kubernetes object.
const MAGIC: &[u8] = b"k8s\x00";

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(out);
        }
    }
    None
}

fn fields(buf: &[u8]) -> Option<Vec<(u64, Field<'_>)>> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (num, wire) = (key >> 3, key & 7);
        let f = match wire {
            0 => Field::Varint(varint(buf, &mut pos)?),
            1 => {
                pos += 8;
                Field::Fixed
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
                let end = pos.checked_add(len)?;
                let b = buf.get(pos..end)?;
                pos = end;
                Field::Bytes(b)
            }
            5 => {
                pos += 4;
                Field::Fixed
            }
            _ => return None,
        };
        out.push((num, f));
    }
    Some(out)
}

/// How to read one message: field number → (JSON name, kind).
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Strs,
    Int,
    Bool,
    Msg(&'static [(u64, &'static str, Kind)]),
}

const OBJECT_META: &[(u64, &str, Kind)] = &[
    (1, "name", Kind::Str),
    (2, "generateName", Kind::Str),
    (3, "namespace", Kind::Str),
    (5, "uid", Kind::Str),
    (6, "resourceVersion", Kind::Str),
];
const RESOURCE_ATTRS: &[(u64, &str, Kind)] = &[
    (1, "namespace", Kind::Str),
    (2, "verb", Kind::Str),
    (3, "group", Kind::Str),
    (4, "version", Kind::Str),
    (5, "resource", Kind::Str),
    (6, "subresource", Kind::Str),
    (7, "name", Kind::Str),
];
const NON_RESOURCE_ATTRS: &[(u64, &str, Kind)] = &[(1, "path", Kind::Str), (2, "verb", Kind::Str)];
const SELF_SAR_SPEC: &[(u64, &str, Kind)] = &[
    (1, "resourceAttributes", Kind::Msg(RESOURCE_ATTRS)),
    (2, "nonResourceAttributes", Kind::Msg(NON_RESOURCE_ATTRS)),
];
const SAR_SPEC: &[(u64, &str, Kind)] = &[
    (1, "resourceAttributes", Kind::Msg(RESOURCE_ATTRS)),
    (2, "nonResourceAttributes", Kind::Msg(NON_RESOURCE_ATTRS)),
    (3, "user", Kind::Str),
    (4, "groups", Kind::Strs),
    (6, "uid", Kind::Str),
];
const PRECONDITIONS: &[(u64, &str, Kind)] =
    &[(1, "uid", Kind::Str), (2, "resourceVersion", Kind::Str)];
const DELETE_OPTIONS: &[(u64, &str, Kind)] = &[
    (1, "gracePeriodSeconds", Kind::Int),
    (2, "preconditions", Kind::Msg(PRECONDITIONS)),
    (3, "orphanDependents", Kind::Bool),
    (4, "propagationPolicy", Kind::Str),
    (5, "dryRun", Kind::Strs),
];
const SELF_SAR: &[(u64, &str, Kind)] = &[
    (1, "metadata", Kind::Msg(OBJECT_META)),
    (2, "spec", Kind::Msg(SELF_SAR_SPEC)),
];
const SAR: &[(u64, &str, Kind)] = &[
    (1, "metadata", Kind::Msg(OBJECT_META)),
    (2, "spec", Kind::Msg(SAR_SPEC)),
];
const EVICTION: &[(u64, &str, Kind)] = &[
    (1, "metadata", Kind::Msg(OBJECT_META)),
    (2, "deleteOptions", Kind::Msg(DELETE_OPTIONS)),
];

fn message(buf: &[u8], schema: &[(u64, &str, Kind)]) -> Option<Value> {
    let mut out = Map::new();
    for (num, f) in fields(buf)? {
        let Some((_, name, kind)) = schema.iter().find(|(n, _, _)| *n == num) else {
            continue;
        };
        let text = |b: &[u8]| Value::String(String::from_utf8_lossy(b).into_owned());
        match (kind, f) {
            (Kind::Str, Field::Bytes(b)) => {
                out.insert((*name).into(), text(b));
            }
            (Kind::Strs, Field::Bytes(b)) => {
                let entry = out.entry(name.to_string()).or_insert_with(|| json!([]));
                if let Value::Array(a) = entry {
                    a.push(text(b));
                }
            }
            (Kind::Int, Field::Varint(v)) => {
                out.insert((*name).into(), json!(v as i64));
            }
            (Kind::Bool, Field::Varint(v)) => {
                out.insert((*name).into(), json!(v != 0));
            }
            (Kind::Msg(inner), Field::Bytes(b)) => {
                out.insert((*name).into(), message(b, inner)?);
            }
            _ => {}
        }
    }
    Some(Value::Object(out))
}

/// Decodes a protobuf request body to JSON; None when the kind is not one this server reads.
pub(crate) fn decode(body: &[u8]) -> Option<Value> {
    let unknown = body.strip_prefix(MAGIC)?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for (num, f) in fields(unknown)? {
        match (num, f) {
            (1, Field::Bytes(type_meta)) => {
                for (n, tf) in fields(type_meta)? {
                    if let Field::Bytes(b) = tf {
                        let s = String::from_utf8_lossy(b).into_owned();
                        if n == 1 {
                            api_version = s;
                        } else if n == 2 {
                            kind = s;
                        }
                    }
                }
            }
            (2, Field::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    let schema = match kind.as_str() {
        "SelfSubjectAccessReview" => SELF_SAR,
        "SubjectAccessReview" | "LocalSubjectAccessReview" => SAR,
        "Eviction" => EVICTION,
        "DeleteOptions" => DELETE_OPTIONS,
        _ => return None,
    };
    let mut v = message(raw, schema)?;
    v["apiVersion"] = api_version.into();
    v["kind"] = kind.into();
    Some(v)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn ld(num: u64, b: &[u8]) -> Vec<u8> {
        let mut v = vec![((num << 3) | 2) as u8, b.len() as u8];
        v.extend_from_slice(b);
        v
    }

    #[test]
    fn decodes_a_self_subject_access_review() {
        let attrs = [
            ld(1, b"ai"),
            ld(2, b"patch"),
            ld(3, b"apps"),
            ld(5, b"deployments"),
        ]
        .concat();
        let obj = [ld(1, &[]), ld(2, &ld(1, &attrs))].concat();
        let type_meta = [
            ld(1, b"authorization.k8s.io/v1"),
            ld(2, b"SelfSubjectAccessReview"),
        ]
        .concat();
        let body = [MAGIC.to_vec(), ld(1, &type_meta), ld(2, &obj)].concat();
        let v = decode(&body).unwrap();
        assert_eq!(
            v["spec"]["resourceAttributes"],
            json!({"namespace": "ai", "verb": "patch", "group": "apps", "resource": "deployments"})
        );
        assert_eq!(v["kind"], "SelfSubjectAccessReview");
    }
}
