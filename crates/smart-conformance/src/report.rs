//! Reports: one run's results as a terminal table, JSON, JUnit XML or Markdown.
//!
//! Result details quote what a server sent, so every writer escapes for its medium: control
//! characters never reach a terminal, `<`/`&` never break the XML, `|` never breaks a Markdown
//! table. JSON gets one object per result with `id`, `title`, `reference`, `level`, `family`,
//! `subject`, `status` and `detail`, the shape CI dashboards ingest.

use std::fmt::Write as _;

use serde_json::json;

use crate::model::{CheckResult, Level, Status};

/// A report file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `conformance.json`: an array of result objects.
    Json,
    /// `conformance.junit.xml`: one test case per result.
    Junit,
    /// `conformance.md`: a summary and a table.
    Markdown,
}

impl Format {
    /// Parses `json`, `junit` or `markdown` (as given to `--format`).
    pub fn parse(s: &str) -> Result<Format, String> {
        match s {
            "json" => Ok(Format::Json),
            "junit" => Ok(Format::Junit),
            "markdown" | "md" => Ok(Format::Markdown),
            other => Err(format!(
                "unknown report format `{other}`; use json, junit or markdown"
            )),
        }
    }

    /// The file name the format is written to under `--out`.
    pub fn file_name(self) -> &'static str {
        match self {
            Format::Json => "conformance.json",
            Format::Junit => "conformance.junit.xml",
            Format::Markdown => "conformance.md",
        }
    }
}

/// The results of one run, in the order the checks ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Every result.
    pub results: Vec<CheckResult>,
}

/// Counts by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Passed.
    pub pass: usize,
    /// Failed SHALL checks (these fail the run).
    pub shall_failed: usize,
    /// Failed SHOULD or MAY checks.
    pub other_failed: usize,
    /// Skipped.
    pub skipped: usize,
    /// Not applicable.
    pub not_applicable: usize,
}

impl Report {
    /// Adds results.
    pub fn extend(&mut self, results: impl IntoIterator<Item = CheckResult>) {
        self.results.extend(results);
    }

    /// Whether every SHALL check that ran passed.
    pub fn passed(&self) -> bool {
        !self.results.iter().any(CheckResult::fails_run)
    }

    /// Counts by outcome.
    pub fn tally(&self) -> Tally {
        let mut t = Tally::default();
        for r in &self.results {
            match (&r.status, r.def.level) {
                (Status::Pass, _) => t.pass += 1,
                (Status::Fail(_), Level::Shall) => t.shall_failed += 1,
                (Status::Fail(_), _) => t.other_failed += 1,
                (Status::Skipped(_), _) => t.skipped += 1,
                (Status::NotApplicable(_), _) => t.not_applicable += 1,
            }
        }
        t
    }

    /// The failed results (any level).
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.results
            .iter()
            .filter(|r| matches!(r.status, Status::Fail(_)))
    }

    /// The report in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Json => self.to_json(),
            Format::Junit => self.to_junit(),
            Format::Markdown => self.to_markdown(),
        }
    }

    /// A JSON array, one object per result.
    pub fn to_json(&self) -> String {
        let rows: Vec<_> = self
            .results
            .iter()
            .map(|r| {
                json!({
                    "id": r.def.id,
                    "title": r.def.title,
                    "reference": r.def.reference,
                    "level": r.def.level.as_str(),
                    "family": r.def.family,
                    "subject": r.subject,
                    "status": r.status.word(),
                    "detail": r.status.detail(),
                })
            })
            .collect();
        serde_json::to_string_pretty(&rows).expect("JSON values always serialize")
    }

    /// JUnit XML: one `<testsuite>` per subject; failures of SHOULD/MAY checks are reported as
    /// `<skipped>` with a message, so that only SHALL failures turn a CI job red.
    pub fn to_junit(&self) -> String {
        let mut subjects: Vec<&str> = Vec::new();
        for r in &self.results {
            if !subjects.contains(&r.subject.as_str()) {
                subjects.push(&r.subject);
            }
        }
        let mut out = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"smart-conformance\">\n",
        );
        for subject in subjects {
            let cases: Vec<&CheckResult> = self
                .results
                .iter()
                .filter(|r| r.subject == subject)
                .collect();
            let failures = cases.iter().filter(|r| r.fails_run()).count();
            let skipped = cases
                .iter()
                .filter(|r| !matches!(r.status, Status::Pass) && !r.fails_run())
                .count();
            let _ = writeln!(
                out,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\">",
                xml_escape(subject),
                cases.len()
            );
            for r in cases {
                let name = format!("{} [{}] {}", r.def.id, r.def.level.as_str(), r.def.title);
                let _ = write!(
                    out,
                    "    <testcase classname=\"{}\" name=\"{}\"",
                    xml_escape(subject),
                    xml_escape(&name)
                );
                match &r.status {
                    Status::Pass => out.push_str("/>\n"),
                    Status::Fail(d) if r.fails_run() => {
                        let _ = writeln!(
                            out,
                            "><failure message=\"{}\">{}</failure></testcase>",
                            xml_escape(d),
                            xml_escape(r.def.reference)
                        );
                    }
                    other => {
                        let _ = writeln!(
                            out,
                            "><skipped message=\"{}: {}\"/></testcase>",
                            other.word(),
                            xml_escape(other.detail())
                        );
                    }
                }
            }
            out.push_str("  </testsuite>\n");
        }
        out.push_str("</testsuites>\n");
        out
    }

    /// Markdown: a summary line and a table of every result.
    pub fn to_markdown(&self) -> String {
        let t = self.tally();
        let mut out = String::from("# SMART App Launch conformance report\n\n");
        let _ = writeln!(
            out,
            "**{}** — {} passed, {} SHALL failed, {} SHOULD/MAY failed, {} skipped, {} not applicable.\n",
            if self.passed() { "PASS" } else { "FAIL" },
            t.pass,
            t.shall_failed,
            t.other_failed,
            t.skipped,
            t.not_applicable
        );
        out.push_str("| id | level | subject | status | title | detail | reference |\n");
        out.push_str("|---|---|---|---|---|---|---|\n");
        for r in &self.results {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                md_escape(r.def.id),
                r.def.level.as_str(),
                md_escape(&r.subject),
                r.status.word(),
                md_escape(r.def.title),
                md_escape(r.status.detail()),
                md_escape(r.def.reference)
            );
        }
        out
    }

    /// A plain-text table for a terminal, with control characters in details replaced.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        // Subjects come from servers in probe runs: the column is as wide as the longest, capped.
        let width = self
            .results
            .iter()
            .map(|r| r.subject.chars().count())
            .max()
            .unwrap_or(0)
            .min(60);
        for r in &self.results {
            let _ = write!(
                out,
                "{:<8} {:<6} {:<7} {:<width$} {}",
                r.def.id,
                r.def.level.as_str(),
                r.status.word(),
                terminal_safe(&r.subject),
                r.def.title
            );
            if !r.status.detail().is_empty() {
                let _ = write!(out, " — {}", terminal_safe(r.status.detail()));
            }
            out.push('\n');
        }
        let t = self.tally();
        let _ = writeln!(
            out,
            "{}: {} passed, {} SHALL failed, {} SHOULD/MAY failed, {} skipped, {} n/a",
            if self.passed() { "PASS" } else { "FAIL" },
            t.pass,
            t.shall_failed,
            t.other_failed,
            t.skipped,
            t.not_applicable
        );
        out
    }
}

/// Escapes text for XML attributes and content; drops characters XML 1.0 cannot carry.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for one Markdown table cell.
pub fn md_escape(s: &str) -> String {
    terminal_safe(s).replace('|', "\\|")
}

/// Replaces control characters (including ESC, so no terminal escape sequence survives) and line
/// breaks with visible stand-ins.
pub fn terminal_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CheckDef, Family};

    static SHALL: CheckDef = CheckDef {
        id: "S-01",
        title: "discovery is served",
        reference: "SMART App Launch 2.2 §2.0.3",
        level: Level::Shall,
        family: Family::Server,
    };
    static SHOULD: CheckDef = CheckDef {
        id: "S-02",
        title: "no-store",
        reference: "RFC 6749 §5.1",
        level: Level::Should,
        family: Family::Server,
    };

    fn report(status: Status) -> Report {
        Report {
            results: vec![
                CheckResult::new(&SHALL, "http://127.0.0.1/fhir", status),
                CheckResult::new(&SHOULD, "http://127.0.0.1/fhir", Status::Fail("x".into())),
            ],
        }
    }

    #[test]
    fn only_a_failed_shall_fails_the_run() {
        assert!(report(Status::Pass).passed());
        assert!(!report(Status::Fail("404".into())).passed());
        assert!(report(Status::Skipped("no refresh".into())).passed());
    }

    #[test]
    fn json_has_one_object_per_result_with_the_required_keys() {
        let v: serde_json::Value =
            serde_json::from_str(&report(Status::Pass).to_json()).expect("JSON");
        let rows = v.as_array().expect("an array");
        assert_eq!(rows.len(), 2);
        for key in ["id", "title", "reference", "level", "status"] {
            assert!(rows[0].get(key).is_some(), "missing {key}");
        }
        assert_eq!(rows[0]["level"], "SHALL");
        assert_eq!(rows[1]["status"], "fail");
    }

    #[test]
    fn server_text_is_escaped_in_every_format() {
        let hostile = "\u{1b}[2J<x a=\"1\">&|pipe\u{7}";
        let r = report(Status::Fail(hostile.into()));
        let junit = r.to_junit();
        assert!(!junit.contains("<x a"), "{junit}");
        assert!(!junit.contains('\u{1b}'));
        let md = r.to_markdown();
        assert!(md.contains("\\|pipe"));
        assert!(!md.contains('\u{1b}'));
        let table = r.to_table();
        assert!(!table.contains('\u{1b}') && !table.contains('\u{7}'));
    }

    #[test]
    fn junit_counts_only_shall_failures_as_failures() {
        let junit = report(Status::Fail("no".into())).to_junit();
        assert!(junit.contains("failures=\"1\""), "{junit}");
        assert!(junit.contains("skipped=\"1\""), "{junit}");
    }

    #[test]
    fn unknown_format_is_a_one_line_error() {
        let e = Format::parse("xml").expect_err("refused");
        assert!(e.contains("json, junit or markdown") && !e.contains('\n'));
    }
}
