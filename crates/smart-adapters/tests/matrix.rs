//! The adapter × vendor-profile matrix, as the conformance crate's adapter checks: every
//! registered adapter runs the sandbox flows against the profile its descriptor names, and the
//! generic adapter runs them against every vendor profile, where it must break exactly at the
//! steps the descriptor declares (`generic_breaks`). The expectations live in the descriptors;
//! this test only runs the checks for the adapters of this build and asserts the report passes.
//!
//! `cargo test -p smart-adapters --test matrix -- --nocapture` prints the table;
//! `cargo xtask conformance --only adapters` runs the same checks as a report.

use smart_conformance::Report;
use smart_conformance::adapter_checks;
use smart_core::descriptor::FlowStep;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adapters_against_vendor_profiles() {
    let descriptors = smart_adapters::descriptors();
    let report = Report {
        results: adapter_checks::run_all(|_| {}).await,
    };
    let table = report.to_table();
    println!("\nadapter × profile matrix\n{table}");
    assert!(report.passed(), "the adapter checks failed:\n{table}");
    assert_eq!(
        report.results.len(),
        FlowStep::ALL.len() * (2 * descriptors.len() - 1),
        "one own-profile row per adapter plus one generic row per vendor profile, per step"
    );
}
