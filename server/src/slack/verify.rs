//! Slack request signing (v0): `v0=` + hex(HMAC-SHA256(secret, "v0:" + timestamp + ":" +
//! raw body)), checked on the raw bytes before anything is parsed, in constant time, within
//! a five-minute window, and never twice.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Slack's replay window.
pub(crate) const WINDOW_SECS: i64 = 300;

/// Why a request was not accepted (all answered 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    MissingHeaders,
    Stale,
    BadSignature,
    Replayed,
}

impl Rejection {
    pub fn reason(self) -> &'static str {
        match self {
            Rejection::MissingHeaders => "missing_signature_headers",
            Rejection::Stale => "stale_timestamp",
            Rejection::BadSignature => "bad_signature",
            Rejection::Replayed => "replayed",
        }
    }
}

/// `v0=<hex>` for a timestamp and body.
pub(crate) fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks the signature headers against the raw body at `now` (unix seconds).
pub(crate) fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), Rejection> {
    let (Some(ts), Some(sig)) = (timestamp, signature) else {
        return Err(Rejection::MissingHeaders);
    };
    let ts_num: i64 = ts.trim().parse().map_err(|_| Rejection::Stale)?;
    if (now - ts_num).abs() > WINDOW_SECS {
        return Err(Rejection::Stale);
    }
    let expected = sign(secret, ts.trim(), body);
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(sig.trim().as_bytes())) {
        return Err(Rejection::BadSignature);
    }
    Ok(())
}

/// Remembers signatures seen within the window: a byte-identical request arriving again is
/// a replay (Slack's own retries carry a fresh timestamp, hence a fresh signature).
#[derive(Debug, Default)]
pub(crate) struct ReplayGuard {
    seen: Mutex<HashMap<String, Instant>>,
}

impl ReplayGuard {
    /// True when `signature` was not seen in the window; records it.
    pub fn first_time(&self, signature: &str) -> bool {
        let now = Instant::now();
        let keep = Duration::from_secs(2 * WINDOW_SECS as u64);
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() > 10_000 {
            seen.retain(|_, at| now.duration_since(*at) < keep);
        }
        match seen.get(signature) {
            Some(at) if now.duration_since(*at) < keep => false,
            _ => {
                seen.insert(signature.to_owned(), now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";

    #[test]
    fn matches_slacks_documented_example() {
        // The example from Slack's "Verifying requests" guide.
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        assert_eq!(
            sign(SECRET, "1531420618", body),
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
        );
    }

    #[test]
    fn window_is_five_minutes_inclusive() {
        let body = b"{}";
        let sig = sign(SECRET, "1000", body);
        assert!(verify(SECRET, Some("1000"), Some(&sig), body, 1300).is_ok());
        assert_eq!(
            verify(SECRET, Some("1000"), Some(&sig), body, 1301),
            Err(Rejection::Stale)
        );
        assert_eq!(
            verify(SECRET, Some("1000"), Some(&sig), b"{ }", 1000),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            verify(SECRET, Some("1000"), None, body, 1000),
            Err(Rejection::MissingHeaders)
        );
        assert_eq!(
            verify(b"other", Some("1000"), Some(&sig), body, 1000),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn replays_are_caught() {
        let g = ReplayGuard::default();
        assert!(g.first_time("v0=aa"));
        assert!(!g.first_time("v0=aa"));
        assert!(g.first_time("v0=bb"));
    }
}
