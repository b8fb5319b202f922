//! The report: one line per check with its status and fix, as text or JSON, and the
//! verdict (exit code) it leads to.

use std::path::Path;

use serde::Serialize;

use crate::exit::{ExitCode, Failing};
use crate::output::View;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
    Skip,
}

impl Status {
    fn tag(self) -> &'static str {
        match self {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub id: &'static str,
    pub status: Status,
    pub message: String,
    pub fix: Option<String>,
    /// A failure that goes away by itself (a service is unreachable), not a setup problem.
    #[serde(skip)]
    pub temporary: bool,
}

#[derive(Debug, Default)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub(super) fn push(
        &mut self,
        id: &'static str,
        status: Status,
        message: String,
        fix: Option<String>,
    ) {
        self.checks.push(Check {
            id,
            status,
            message,
            fix,
            temporary: false,
        });
    }

    pub(super) fn ok(&mut self, id: &'static str, message: impl Into<String>) {
        self.push(id, Status::Ok, message.into(), None);
    }

    pub(super) fn warn(
        &mut self,
        id: &'static str,
        message: impl Into<String>,
        fix: Option<String>,
    ) {
        self.push(id, Status::Warn, message.into(), fix);
    }

    pub(super) fn fail(
        &mut self,
        id: &'static str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.push(id, Status::Fail, message.into(), Some(fix.into()));
    }

    pub(super) fn fail_temporary(
        &mut self,
        id: &'static str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.fail(id, message, fix);
        if let Some(last) = self.checks.last_mut() {
            last.temporary = true;
        }
    }

    pub(super) fn skip(&mut self, id: &'static str, why: impl Into<String>) {
        self.push(id, Status::Skip, why.into(), None);
    }

    pub(super) fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// The report as `doctor` prints it.
    pub fn view<'a>(
        &'a self,
        header: String,
        config: &Path,
        environment: Option<&str>,
        user: &str,
    ) -> ReportView<'a> {
        ReportView {
            ok: self.count(Status::Fail) == 0,
            config: config.display().to_string(),
            environment: environment.map(str::to_string),
            user: user.to_string(),
            summary: Summary {
                ok: self.count(Status::Ok),
                warn: self.count(Status::Warn),
                fail: self.count(Status::Fail),
                skip: self.count(Status::Skip),
            },
            checks: &self.checks,
            header,
        }
    }

    /// `Ok` when nothing failed; else the verdict that decides the exit code.
    pub fn verdict(&self) -> std::result::Result<(), Failed> {
        let failed: Vec<&Check> = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .collect();
        if failed.is_empty() {
            return Ok(());
        }
        Err(Failed {
            failed: failed.len(),
            total: self.checks.len(),
            ids: failed.iter().map(|c| c.id).collect::<Vec<_>>().join(", "),
            temporary: failed.iter().all(|c| c.temporary),
        })
    }
}

/// Checks failed: which, and whether waiting fixes all of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{failed} of {total} checks failed ({ids})")]
pub struct Failed {
    failed: usize,
    total: usize,
    ids: String,
    /// Every failure is temporary (a server down, a lock busy).
    temporary: bool,
}

impl Failing for Failed {
    fn exit_code(&self) -> ExitCode {
        if self.temporary {
            ExitCode::Temporary
        } else {
            ExitCode::Config
        }
    }
}

/// `doctor`'s result.
#[derive(Debug, Serialize)]
pub struct ReportView<'a> {
    pub ok: bool,
    pub config: String,
    pub environment: Option<String>,
    pub user: String,
    pub summary: Summary,
    pub checks: &'a [Check],
    /// What was checked, as whom: the first line for people.
    #[serde(skip)]
    pub header: String,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub ok: usize,
    pub warn: usize,
    pub fail: usize,
    pub skip: usize,
}

impl View for ReportView<'_> {
    /// One line per check, the fix on the same line, then the verdict.
    fn human(&self) -> String {
        let mut lines = vec![self.header.clone()];
        let mut checks = self.checks.iter().peekable();
        while let Some(c) = checks.next() {
            // Checks skipped for one reason are one line ("skip  key,database  needs ...").
            let mut skipped = vec![c.id];
            if c.status == Status::Skip {
                while let Some(next) =
                    checks.next_if(|n| n.status == Status::Skip && n.message == c.message)
                {
                    skipped.push(next.id);
                }
            }
            if skipped.len() > 1 {
                lines.push(format!(
                    "{}  {} ({} checks) {}",
                    c.status.tag(),
                    skipped.join(","),
                    skipped.len(),
                    c.message
                ));
                continue;
            }
            let mut line = format!("{}  {:<22} {}", c.status.tag(), c.id, c.message);
            if let Some(fix) = &c.fix {
                line.push_str(" → fix: ");
                line.push_str(fix);
            }
            lines.push(line);
        }
        let (failed, warned) = (self.summary.fail, self.summary.warn);
        let warnings = match warned {
            0 => String::new(),
            1 => ", 1 warning".to_string(),
            n => format!(", {n} warnings"),
        };
        lines.push(if failed == 0 {
            format!("All checks passed{warnings}.")
        } else {
            format!(
                "{failed} of {} checks failed{warnings}: apply the fixes above, then run `splynx-bitpay doctor` again.",
                self.checks.len()
            )
        });
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_follows_the_worst_failure() {
        let mut report = Report::default();
        report.ok("a", "fine");
        report.warn("b", "hmm", None);
        assert!(report.verdict().is_ok());
        report.fail_temporary("c", "down", "wait");
        let temporary = report.verdict().unwrap_err();
        assert_eq!(temporary.exit_code(), ExitCode::Temporary);
        report.fail("d", "broken", "fix it");
        let failed = report.verdict().unwrap_err();
        assert_eq!(failed.exit_code(), ExitCode::Config, "a setup failure wins");
        assert_eq!(failed.to_string(), "2 of 4 checks failed (c, d)");
    }

    #[test]
    fn checks_skipped_for_one_reason_are_one_line() {
        let mut report = Report::default();
        report.fail("config", "missing", "install it");
        for id in ["a", "b", "c"] {
            report.skip(id, "needs a config");
        }
        report.skip("d", "needs something else");
        let text = report
            .view("header".into(), Path::new("/c"), None, "root")
            .human();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(
            lines[2].contains("a,b,c (3 checks) needs a config"),
            "{text}"
        );
        assert!(lines[3].contains("d") && lines[3].contains("needs something else"));
    }

    #[test]
    fn one_line_per_check_with_its_fix() {
        let mut report = Report::default();
        report.ok("config", "valid");
        report.fail("key", "missing", "pair");
        let view = report.view("header".into(), Path::new("/c"), Some("test"), "root");
        let text = view.human();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[2].starts_with("FAIL  key") && lines[2].ends_with("→ fix: pair"));
        assert!(lines[3].starts_with("1 of 2 checks failed"));
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["ok"], false);
        assert_eq!(json["checks"][1]["fix"], "pair");
        assert_eq!(json["summary"]["fail"], 1);
    }
}
