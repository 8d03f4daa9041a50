//! Past sessions, as the history picker lists them.
//!
//! The TUI does not know where sessions are stored; the binary hands it a provider (backed by
//! the data directory). A closure works: `Arc::new(|| vec![…])`.

/// One past session.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionSummary {
    /// Session id.
    pub id: String,
    /// When it started (RFC 3339 or any display string).
    pub started_at: String,
    /// The question or alert it answered.
    pub title: String,
    /// How it ended, e.g. `answered`, `executed rollback`, `cancelled`.
    pub outcome: String,
}

/// Lists past sessions, newest first. Called off the UI thread, on demand (`:history`).
pub trait HistoryProvider: Send + Sync {
    /// The sessions to list.
    fn sessions(&self) -> Vec<SessionSummary>;
}

impl<F> HistoryProvider for F
where
    F: Fn() -> Vec<SessionSummary> + Send + Sync,
{
    fn sessions(&self) -> Vec<SessionSummary> {
        self()
    }
}
