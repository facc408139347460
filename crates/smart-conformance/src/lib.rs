//! Conformance checks for SMART App Launch 2.2, as data and as runs.
//!
//! Integrators need two answers whenever an EHR or this framework changes: does the client still
//! do what the specification requires, against each vendor's behaviour; and does a given server
//! behave as the specification says. Both answers are lists of *checks*: a stable id, a title, the
//! specification clause it comes from, a requirement level, and a result. This module holds that
//! vocabulary ([`model`]) and the report writers ([`report`]); the check families live in their own
//! modules and only produce [`model::CheckResult`]s, so every front end (`cargo xtask conformance`,
//! `smart probe`) prints and files the same reports.
//!
//! - [`client_checks`] (`C-…`): the framework's client against sandboxes configured per case,
//!   observed through [`recording::RecordingHttpClient`];
//! - [`adapter_checks`] (`A-…`): every adapter against its vendor's sandbox profile, and the
//!   generic adapter against every profile, with the expected breaks taken from the descriptors;
//! - [`probe`] (`S-…`): any SMART server probed from outside through the raw transport.
//!
//! ```no_run
//! # async fn run() {
//! let mut report = smart_conformance::Report::default();
//! report.extend(smart_conformance::client_checks::run_all(|_| {}).await);
//! report.extend(smart_conformance::adapter_checks::run_all(|_| {}).await);
//! print!("{}", report.to_table());
//! assert!(report.passed());
//! # }
//! ```

pub mod adapter_checks;
pub mod client_checks;
pub mod model;
pub mod probe;
pub mod recording;
pub mod report;

pub use model::{CheckDef, CheckResult, Family, Level, Status};
pub use report::{Format, Report};
