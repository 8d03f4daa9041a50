//! Redaction of credentials and sanitising of untrusted text.
//!
//! Every string that comes from the world (logs, events, annotations, env values, GitHub
//! text) passes through [`clean`] before it reaches a tool output: terminal escape sequences
//! and other control characters are removed, then anything that looks like a credential is
//! replaced by a typed marker such as `<redacted:jwt>`. Names (of secrets, keys, users) stay
//! readable; only values are replaced. Secret objects' `data` is never read at all.

use regex::Regex;
use std::borrow::Cow;
use std::sync::OnceLock;

/// The marker put where a Secret value or a `secretKeyRef` env value would be.
pub const SECRET_VALUE: &str = "<redacted:secret-value>";

struct Rule {
    re: Regex,
    /// Replacement; may use capture groups (`${1}`).
    with: &'static str,
}

fn rules() -> &'static [Rule] {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(|| {
        // Order matters: whole blocks and specific formats first, generic key=value last,
        // so the most informative marker wins.
        let specs: &[(&str, &str)] = &[
            (
                r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----(?s:.*?)(-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|$)",
                "<redacted:private-key>",
            ),
            (
                r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{8,}",
                "<redacted:jwt>",
            ),
            (r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}", "${1} <redacted:bearer-token>"),
            (r"(?i)\b(basic)\s+[A-Za-z0-9+/]{12,}={0,2}", "${1} <redacted:basic-auth>"),
            (
                r"\b(AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b",
                "<redacted:aws-access-key-id>",
            ),
            (
                r#"(?i)(aws_?secret_?access_?key|aws_?session_?token)(["']?\s*[:=]\s*["']?)[A-Za-z0-9/+=]{16,}"#,
                "${1}${2}<redacted:aws-secret-key>",
            ),
            (r"\bAIza[0-9A-Za-z_-]{35}", "<redacted:gcp-api-key>"),
            (r"\bya29\.[0-9A-Za-z_-]{20,}", "<redacted:gcp-oauth-token>"),
            (r"\bgh[pousr]_[A-Za-z0-9]{30,}", "<redacted:github-token>"),
            (r"\bgithub_pat_[A-Za-z0-9_]{22,}", "<redacted:github-token>"),
            (r"\bglpat-[A-Za-z0-9_-]{20,}", "<redacted:gitlab-token>"),
            (r"\bxox[abposr]-[A-Za-z0-9-]{10,}", "<redacted:slack-token>"),
            (r"\bxapp-[0-9]-[A-Za-z0-9-]{10,}", "<redacted:slack-token>"),
            (
                r"https://hooks\.slack\.com/(services|workflows)/[A-Za-z0-9/_-]+",
                "<redacted:slack-webhook>",
            ),
            (
                r"https://[a-z0-9.-]*webhook\.office\.com/[A-Za-z0-9/@_.-]+",
                "<redacted:teams-webhook>",
            ),
            (r"\b(sk|rk|pk)_(live|test)_[A-Za-z0-9]{16,}", "<redacted:stripe-key>"),
            (r"\bsk-ant-[A-Za-z0-9_-]{20,}", "<redacted:anthropic-key>"),
            (r"\bsk-(proj-|svcacct-)?[A-Za-z0-9_-]{20,}", "<redacted:openai-key>"),
            (r"\bhf_[A-Za-z0-9]{30,}", "<redacted:huggingface-token>"),
            (r"\bnpm_[A-Za-z0-9]{36}", "<redacted:npm-token>"),
            (r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}", "<redacted:sendgrid-key>"),
            (r"\bSK[0-9a-f]{32}\b", "<redacted:twilio-key>"),
            (r"\b[A-Za-z0-9_~.-]{3}8Q~[A-Za-z0-9_~.-]{31,34}", "<redacted:azure-client-secret>"),
            (
                r"(?i)\b(AccountKey|SharedAccessKey|sig)=[A-Za-z0-9%+/=]{16,}",
                "${1}=<redacted:azure-key>",
            ),
            (r"\bhvs\.[A-Za-z0-9_-]{20,}", "<redacted:vault-token>"),
            // Go MySQL DSN `user:pass@tcp(host)`.
            (r"\b([A-Za-z0-9_.-]+):([^\s:@/]{3,})@(tcp|unix)\(", "${1}:<redacted:password>@${3}("),
            // A key as the URL user (Sentry DSNs and the like).
            (r"://[A-Za-z0-9]{16,}@", "://<redacted:url-credential>@"),
            // user:password@ in any URL; the user name stays readable.
            (
                r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^:@/\s]*):([^@/\s]+)@",
                "${1}${2}:<redacted:password>@",
            ),
            (
                r"(?i)\b(x-api-key|api-key|x-auth-token|authorization|cookie|set-cookie):\s*[^\s<][^\r\n]*",
                "${1}: <redacted:header>",
            ),
            (
                r#"(?i)\b([a-z0-9_.-]*(?:password|passwd|pwd|passphrase|secret|api[_-]?key|apikey|access[_-]?key|token|auth|credentials?|private[_-]?key(?:[_-]?id)?|client[_-]?secret|dsn|[_-]key))(["']?\s*[:=]\s*)("[^"]{3,}"|'[^']{3,}'|[^\s"',;&<>]{3,})"#,
                "${1}${2}<redacted:credential>",
            ),
            // Long base64-ish blobs with mixed case and digits (keys, cert bodies, tokens).
            (
                r"\b[A-Za-z0-9+/]{40,}={0,2}",
                "<redacted:base64-blob>",
            ),
        ];
        specs
            .iter()
            .filter_map(|(re, with)| Regex::new(re).ok().map(|re| Rule { re, with }))
            .collect()
    })
}

/// Whether a name (env var, annotation key, config key) says its value is a credential.
pub fn sensitive_name(name: &str) -> bool {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)(passw|passwd|pwd|secret|token|api[_-]?key|apikey|private[_-]?key|access[_-]?key|credential|auth|dsn|conn(ection)?[_-]?str|[_-]key$|^key$|cookie|signature|salt)",
        )
        .ok()
    })
    .as_ref()
    .is_some_and(|re| re.is_match(name))
}

/// Clean a named value: a sensitive name hides the value entirely, otherwise [`clean`].
pub fn clean_named(name: &str, value: &str) -> String {
    if sensitive_name(name) && !value.is_empty() {
        "<redacted:credential>".to_string()
    } else {
        clean(value)
    }
}

/// Whether a match of the base64-blob rule really looks like a credential: mixed upper,
/// lower and digits and not pure hex (image digests, commit shas stay readable).
fn looks_random(s: &str) -> bool {
    let upper = s.bytes().any(|b| b.is_ascii_uppercase());
    let lower = s.bytes().any(|b| b.is_ascii_lowercase());
    let digit = s.bytes().any(|b| b.is_ascii_digit());
    let hex = s.bytes().all(|b| b.is_ascii_hexdigit());
    upper && lower && digit && !hex
}

/// Replace credential-looking substrings with typed markers.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out: Cow<'_, str> = Cow::Borrowed(text);
    for (i, rule) in rules().iter().enumerate() {
        let last = i + 1 == rules().len();
        if !rule.re.is_match(&out) {
            continue;
        }
        let replaced = if last {
            rule.re
                .replace_all(&out, |c: &regex::Captures<'_>| {
                    let m = c.get(0).map_or("", |m| m.as_str());
                    if looks_random(m) {
                        "<redacted:base64-blob>".to_string()
                    } else {
                        m.to_string()
                    }
                })
                .into_owned()
        } else {
            rule.re.replace_all(&out, rule.with).into_owned()
        };
        out = Cow::Owned(replaced);
    }
    out
}

/// Remove terminal escape sequences (ANSI CSI, OSC, other ESC sequences) and C0/C1 control
/// characters except tab and newline, so untrusted text cannot drive a terminal.
pub fn strip_controls(text: &str) -> Cow<'_, str> {
    if !text
        .chars()
        .any(|c| (c.is_control() && c != '\n' && c != '\t') || c == '\u{7f}')
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.peek().copied() {
                Some('[') => {
                    chars.next();
                    // CSI: parameters and intermediates, then one final byte 0x40..=0x7e.
                    for n in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&n) {
                            break;
                        }
                    }
                }
                Some(']') | Some('P') | Some('X') | Some('^') | Some('_') => {
                    chars.next();
                    // OSC / DCS / SOS / PM / APC: until BEL or ESC \.
                    while let Some(n) = chars.next() {
                        if n == '\u{7}' {
                            break;
                        }
                        if n == '\u{1b}' {
                            if chars.peek() == Some(&'\\') {
                                chars.next();
                            }
                            break;
                        }
                    }
                }
                Some(_) => {
                    chars.next();
                }
                None => {}
            },
            '\u{9b}' => {
                for n in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&n) {
                        break;
                    }
                }
            }
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Sanitise then redact: what every piece of untrusted text goes through.
pub fn clean(text: &str) -> String {
    let stripped = strip_controls(text);
    redact(&stripped).into_owned()
}

/// Quote untrusted text for a model: cleaned and JSON-string escaped, so it reads as data.
pub fn quote(text: &str) -> String {
    let c = clean(text);
    serde_json::to_string(&c).unwrap_or_else(|_| String::from("\"\""))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn strips_terminal_sequences() {
        let s = "a\u{1b}[31mred\u{1b}[0m \u{1b}]0;title\u{7}b\u{1b}]8;;http://x\u{1b}\\c\u{0}\u{8}\u{9b}2Jd\u{85}e";
        assert_eq!(strip_controls(s), "ared bcde");
        assert_eq!(strip_controls("plain\ttext\n"), "plain\ttext\n");
    }

    #[test]
    fn keeps_names_and_digests_readable() {
        let s = "image=ghcr.io/acme/api@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 secret=db-creds";
        let r = redact("secretKeyRef name db-creds key password");
        assert_eq!(r, "secretKeyRef name db-creds key password");
        let r2 = redact(s);
        assert!(
            r2.contains("sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
        );
    }

    #[test]
    fn typed_markers() {
        let cases = [
            ("Authorization: Bearer abcdefghijklmnop1234", "<redacted:"),
            (
                "postgres://app:s3cr3tPass@db:5432/x",
                "postgres://app:<redacted:password>@db",
            ),
            (
                "key AKIAIOSFODNN7EXAMPLE here",
                "<redacted:aws-access-key-id>",
            ),
            ("password=hunter22", "password=<redacted:credential>"),
            (
                "t=ghp_abcdefghijklmnopqrstuvwxyz0123456789",
                "<redacted:github-token>",
            ),
        ];
        for (input, want) in cases {
            let out = redact(input);
            assert!(out.contains(want), "{input} -> {out}");
        }
    }
}
