//! The check vocabulary: what a check is ([`CheckDef`]) and what running it found
//! ([`CheckResult`]).
//!
//! A check's id is stable across releases (reports are compared run to run), so ids are never
//! reused: a withdrawn check keeps its number retired.

use serde::Serialize;

/// How strongly the specification asks for the checked behaviour (RFC 2119 keywords as used by
/// SMART App Launch 2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Level {
    /// A requirement: a failure makes the run fail.
    #[serde(rename = "SHALL")]
    Shall,
    /// A recommendation: a failure is reported, the run still passes.
    #[serde(rename = "SHOULD")]
    Should,
    /// An option: reported for information.
    #[serde(rename = "MAY")]
    May,
}

impl Level {
    /// The keyword as the specification writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Shall => "SHALL",
            Level::Should => "SHOULD",
            Level::May => "MAY",
        }
    }
}

/// Which family a check belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// The framework's client, observed on the wire against a sandbox (ids `C-…`).
    Client,
    /// An adapter against a sandbox vendor profile (ids `A-…`).
    Adapter,
    /// A server, probed from outside (ids `S-…`).
    Server,
}

/// A check, as data: what it verifies and where the requirement comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct CheckDef {
    /// Stable id, e.g. `C-04` or `S-12.2`.
    pub id: &'static str,
    /// One line saying what must hold.
    pub title: &'static str,
    /// The specification clause (e.g. `SMART App Launch 2.2 §2.0.6 (PKCE)`, `RFC 9207 §2.4`).
    pub reference: &'static str,
    /// Requirement level.
    pub level: Level,
    /// Family.
    pub family: Family,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "detail", rename_all = "snake_case")]
pub enum Status {
    /// The behaviour was observed as required.
    Pass,
    /// The behaviour was not as required; the text says what was seen.
    Fail(String),
    /// The check could not run here (e.g. the server advertises no refresh); the text says why.
    Skipped(String),
    /// The requirement does not apply to this subject (e.g. a public client and Basic auth).
    NotApplicable(String),
}

impl Status {
    /// A short lower-case word for tables and JUnit.
    pub fn word(&self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail(_) => "fail",
            Status::Skipped(_) => "skipped",
            Status::NotApplicable(_) => "n/a",
        }
    }

    /// The explanation, empty for a pass.
    pub fn detail(&self) -> &str {
        match self {
            Status::Pass => "",
            Status::Fail(s) | Status::Skipped(s) | Status::NotApplicable(s) => s,
        }
    }
}

/// One check run against one subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// The check.
    pub def: &'static CheckDef,
    /// What it ran against: an adapter/profile pair, a FHIR base URL, `client/<case>`.
    pub subject: String,
    /// The outcome.
    pub status: Status,
}

impl CheckResult {
    /// A result for `def` on `subject`.
    pub fn new(def: &'static CheckDef, subject: impl Into<String>, status: Status) -> Self {
        CheckResult {
            def,
            subject: subject.into(),
            status,
        }
    }

    /// Whether this result fails the run: a failed SHALL.
    pub fn fails_run(&self) -> bool {
        self.def.level == Level::Shall && matches!(self.status, Status::Fail(_))
    }
}
