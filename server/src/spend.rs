//! The per-hour model spend cap: tokens (and cost, when reported) summed per minute over a
//! rolling hour.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::SpendConfig;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR_MINUTES: u64 = 60;

/// Spend in the last rolling hour.
#[derive(Debug)]
pub(crate) struct SpendMeter {
    start: Instant,
    buckets: Mutex<VecDeque<(u64, u64, f64)>>,
}

impl Default for SpendMeter {
    fn default() -> Self {
        SpendMeter {
            start: Instant::now(),
            buckets: Mutex::new(VecDeque::new()),
        }
    }
}

impl SpendMeter {
    fn minute(&self) -> u64 {
        self.start.elapsed().as_secs() / MINUTE.as_secs()
    }

    fn with<T>(&self, f: impl FnOnce(&mut VecDeque<(u64, u64, f64)>, u64) -> T) -> T {
        let now = self.minute();
        let mut b = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while b
            .front()
            .is_some_and(|(m, _, _)| now.saturating_sub(*m) >= HOUR_MINUTES)
        {
            b.pop_front();
        }
        f(&mut b, now)
    }

    /// Adds spend now.
    pub fn record(&self, tokens: u64, usd: f64) {
        if tokens == 0 && usd <= 0.0 {
            return;
        }
        self.with(|b, now| match b.back_mut() {
            Some((m, t, u)) if *m == now => {
                *t += tokens;
                *u += usd;
            }
            _ => b.push_back((now, tokens, usd)),
        });
    }

    /// Tokens spent in the last hour.
    pub fn tokens_last_hour(&self) -> u64 {
        self.with(|b, _| b.iter().map(|(_, t, _)| t).sum())
    }

    /// `Some(wait)` when a cap is reached: how long until the oldest minute ages out.
    pub fn over_cap(&self, cfg: &SpendConfig) -> Option<Duration> {
        self.with(|b, now| {
            let tokens: u64 = b.iter().map(|(_, t, _)| t).sum();
            let usd: f64 = b.iter().map(|(_, _, u)| u).sum();
            let over = cfg.tokens_per_hour.is_some_and(|cap| tokens >= cap)
                || cfg.usd_per_hour.is_some_and(|cap| usd >= cap);
            if !over {
                return None;
            }
            let oldest = b.front().map(|(m, _, _)| *m).unwrap_or(now);
            let minutes_left = (oldest + HOUR_MINUTES).saturating_sub(now).max(1);
            Some(MINUTE * minutes_left as u32)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn cap_trips_on_tokens_or_cost() {
        let m = SpendMeter::default();
        let cfg = SpendConfig {
            tokens_per_hour: Some(1000),
            usd_per_hour: Some(1.0),
        };
        m.record(999, 0.0);
        assert_eq!(m.over_cap(&cfg), None);
        m.record(1, 0.0);
        let wait = m.over_cap(&cfg).unwrap();
        assert!(wait <= Duration::from_secs(3600) && wait >= MINUTE);
        let m = SpendMeter::default();
        m.record(1, 1.5);
        assert!(m.over_cap(&cfg).is_some());
        assert_eq!(m.over_cap(&SpendConfig::default()), None);
    }
}
