//! The crate's error type.

use std::fmt;
use std::path::PathBuf;

/// One thing wrong with a bundle: the file (relative to the bundle folder), the line when it
/// is known, and a message that states the rule that was broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// File relative to the bundle root, with `/` separators (e.g. `scenario.yaml`).
    pub file: String,
    /// One-based line number, when the problem can be pinned to a line.
    pub line: Option<usize>,
    /// What is wrong and what the rule says.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(
        file: impl Into<String>,
        line: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Errors of the sandbox crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bundle breaks one or more rules of the bundle format; every problem found is listed.
    #[error("bundle {} is invalid ({} problem(s)):\n{}", dir.display(), problems.len(), render(problems))]
    InvalidBundle {
        /// The bundle folder.
        dir: PathBuf,
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
    /// A file could not be read or written.
    #[error("cannot access {}: {source}; check that the path exists and is readable", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A listener could not be bound.
    #[error(
        "cannot listen on 127.0.0.1:{port}: {source}; pick another port or use 0 for an ephemeral one"
    )]
    Bind {
        /// The port asked for.
        port: u16,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The options passed to `Sandbox::start` do not fit the bundle.
    #[error("invalid sandbox options: {0}")]
    Options(String),
    /// The TLS certificate or configuration could not be made.
    #[error("cannot set up TLS for the sandbox: {0}")]
    Tls(String),
    /// The kubeconfig could not be rendered.
    #[error("cannot render the kubeconfig: {0}")]
    Kubeconfig(#[from] serde_yaml::Error),
}

impl Error {
    /// The bundle problems carried by [`Error::InvalidBundle`], empty for other errors.
    pub fn problems(&self) -> &[Problem] {
        match self {
            Error::InvalidBundle { problems, .. } => problems,
            _ => &[],
        }
    }
}

fn render(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;
