//! The crate's error type.

use std::io;

/// Everything that can stop the TUI.
#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    /// The terminal could not be set up, drawn to, read from or restored.
    #[error(
        "terminal I/O failed while {during}: {source}; medic tui needs an interactive terminal \
         (a TTY of at least 80x24) — run it directly in a terminal, not through a pipe"
    )]
    Terminal {
        /// What the TUI was doing (`entering raw mode`, `drawing a frame`, …).
        during: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl TuiError {
    /// Wraps an I/O error with what the TUI was doing at the time.
    pub(crate) fn terminal(during: &'static str) -> impl FnOnce(io::Error) -> TuiError {
        move |source| TuiError::Terminal { during, source }
    }
}

/// Result with [`TuiError`].
pub type Result<T, E = TuiError> = std::result::Result<T, E>;
