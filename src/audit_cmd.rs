//! `medic audit verify` and `medic audit export`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use chrono::{DateTime, Utc};
use medic_approvals::ApprovalBook;
use medic_approvals::audit::{self, ExportFilter, RecordKind};

use crate::cli::AuditCommand;

/// Runs an audit subcommand against `data_dir` unless `--log` names a file.
pub fn run(cmd: AuditCommand, data_dir: &Path, now: DateTime<Utc>) -> Result<()> {
    match cmd {
        AuditCommand::Verify { log } => {
            let path = log_path(log, data_dir)?;
            let report = audit::verify(&path)?;
            println!("{report}");
            if !report.is_ok() {
                bail!("the audit log is broken; see the first broken record above");
            }
            Ok(())
        }
        AuditCommand::Export {
            log,
            since,
            proposal,
            approval,
            actor,
            kind,
        } => {
            let path = log_path(log, data_dir)?;
            let filter = ExportFilter {
                since: since.map(|s| parse_since(&s, now)).transpose()?,
                proposal,
                approval,
                actor,
                kind: kind.map(|k| RecordKind::parse(&k)),
            };
            let mut out = std::io::stdout().lock();
            for record in audit::export(&path, filter)? {
                serde_json::to_writer(&mut out, &record?)?;
                out.write_all(b"\n")?;
            }
            Ok(())
        }
    }
}

fn log_path(explicit: Option<PathBuf>, data_dir: &Path) -> Result<PathBuf> {
    let path = explicit.unwrap_or_else(|| ApprovalBook::audit_path(data_dir));
    if !path.exists() {
        bail!(
            "no audit log at {}; pass --log PATH or set data_dir in medic.yaml",
            path.display()
        );
    }
    Ok(path)
}

/// `2026-06-23T12:00:00Z` or a duration ago such as `90m`.
fn parse_since(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let d = crate::config::humantime_like(s).ok_or_else(|| {
        anyhow!("--since: expected RFC 3339 time or a duration like 2h, found `{s}`")
    })?;
    let d = chrono::Duration::from_std(d).context("--since: duration too large")?;
    Ok(now - d)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn since_accepts_times_and_durations() {
        let now = DateTime::parse_from_rfc3339("2026-06-23T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_since("2h", now).unwrap().to_rfc3339(),
            "2026-06-23T10:00:00+00:00"
        );
        assert_eq!(
            parse_since("2026-06-23T11:00:00Z", now)
                .unwrap()
                .to_rfc3339(),
            "2026-06-23T11:00:00+00:00"
        );
        assert!(parse_since("yesterday", now).is_err());
    }
}
