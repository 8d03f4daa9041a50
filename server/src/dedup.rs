//! A small TTL set: Slack event ids, button clicks, PagerDuty event ids.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys remembered until they expire.
#[derive(Debug, Default)]
pub(crate) struct Dedup {
    keys: Mutex<HashMap<String, Instant>>,
}

impl Dedup {
    /// True when `key` was not live; it is live for `ttl` from now on.
    pub fn first(&self, key: &str, ttl: Duration) -> bool {
        let now = Instant::now();
        let mut k = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if k.len() > 50_000 {
            k.retain(|_, until| *until > now);
        }
        match k.get(key) {
            Some(until) if *until > now => false,
            _ => {
                k.insert(key.to_owned(), now + ttl);
                true
            }
        }
    }

    /// Forgets `key` (a refused click may be retried).
    pub fn forget(&self, key: &str) {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn remembers_then_forgets() {
        let d = Dedup::default();
        assert!(d.first("a", Duration::from_secs(60)));
        assert!(!d.first("a", Duration::from_secs(60)));
        d.forget("a");
        assert!(d.first("a", Duration::from_secs(60)));
        assert!(d.first("b", Duration::ZERO));
        assert!(d.first("b", Duration::ZERO));
    }
}
