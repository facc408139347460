//! Conformance checks for SMART App Launch 2.2, as data and as runs.
//!
//! Integrators need two answers whenever an EHR or this framework changes: does the client still
//! do what the specification requires, against each vendor's behaviour; and does a given server
//! behave as the specification says. Both answers are lists of *checks*: a stable id, a title, the
//! specification clause it comes from, a requirement level, and a result. This module holds that
//! vocabulary ([`model`]) and the report writers ([`report`]); the check families live in their own
//! modules and only produce [`model::CheckResult`]s, so every front end (`cargo xtask conformance`,
//! `smart probe`) prints and files the same reports.

pub mod adapter_checks;
pub mod client_checks;
pub mod model;
pub mod recording;
pub mod report;

pub use model::{CheckDef, CheckResult, Family, Level, Status};
pub use report::{Format, Report};
