//! Token budgets.
//!
//! Sizes are measured with tiktoken's `o200k_base` encoding (the GPT-4o / o-series tokenizer),
//! whose BPE table `tiktoken-rs` embeds, so counts work offline. Other model families tokenize
//! differently; o200k is a close, slightly conservative estimate for English and log text.
//!
//! Outputs are never cut blindly: each [`crate::Render`] takes a per-list item limit and
//! reports what it omitted, and [`fit`] searches for the largest limit whose rendering fits.

use tiktoken_rs::o200k_base_singleton;

/// The default per-tool budget in tokens.
pub const DEFAULT_TOOL_BUDGET: usize = 2_000;

/// Budgets applied to every call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    /// Maximum tokens of one rendered tool result.
    pub per_tool_tokens: usize,
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets {
            per_tool_tokens: DEFAULT_TOOL_BUDGET,
        }
    }
}

/// Tokens in `text` under o200k_base.
pub fn count_tokens(text: &str) -> usize {
    o200k_base_singleton().encode_ordinary(text).len()
}

/// The most items per list a rendering starts with; beyond this nothing is readable anyway.
pub const MAX_ITEMS: usize = 200;

/// Render with the largest per-list item limit whose output fits in `budget` tokens.
/// Returns the text and its token count. When even a limit of 0 (counts only) does not fit,
/// the counts-only rendering is returned; it is bounded by construction.
pub fn fit(render: &dyn Fn(usize) -> String, budget: usize) -> (String, usize) {
    let full = render(MAX_ITEMS);
    let tokens = count_tokens(&full);
    if tokens <= budget {
        return (full, tokens);
    }
    // Binary search over the item limit: rendering size grows with the limit.
    let (mut lo, mut hi) = (0usize, MAX_ITEMS);
    let mut best: Option<(String, usize)> = None;
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let text = render(mid);
        let t = count_tokens(&text);
        if t <= budget {
            lo = mid;
            best = Some((text, t));
        } else {
            hi = mid - 1;
        }
    }
    match best {
        Some(b) if lo > 0 => b,
        _ => {
            let text = render(0);
            let t = count_tokens(&text);
            (text, t)
        }
    }
}

/// Estimate tokens of a large text by sampling: count `samples` evenly spaced slices of
/// `slice_len` bytes and scale by the byte length. Used for raw log sizes in benchmarks.
pub fn estimate_tokens_sampled(bytes_total: u64, samples: &[&str]) -> u64 {
    let (mut b, mut t) = (0u64, 0u64);
    for s in samples {
        b += s.len() as u64;
        t += count_tokens(s) as u64;
    }
    if b == 0 {
        return 0;
    }
    ((bytes_total as f64) * (t as f64) / (b as f64)).round() as u64
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn counts_real_tokens() {
        assert_eq!(count_tokens(""), 0);
        let n = count_tokens("hello world");
        assert_eq!(n, 2);
    }

    #[test]
    fn fit_picks_largest_limit_that_fits() {
        let items: Vec<String> = (0..500)
            .map(|i| format!("item number {i} is here"))
            .collect();
        let render = |limit: usize| {
            let shown = limit.min(items.len());
            let mut s = items[..shown].join("\n");
            if shown < items.len() {
                s.push_str(&format!("\n… {} more omitted", items.len() - shown));
            }
            s
        };
        let (text, tokens) = fit(&render, 300);
        assert!(tokens <= 300, "{tokens}");
        assert!(text.contains("more omitted"));
        let shown = text.lines().count() - 1;
        // one more item would not fit
        assert!(count_tokens(&render(shown + 1)) > 300);
    }
}
