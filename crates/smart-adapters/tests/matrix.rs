//! The adapter × vendor-profile matrix: every registered adapter runs the full set of flows
//! against the sandbox profile its descriptor names, and the generic adapter runs them against
//! every registered profile. The steps where the generic adapter breaks on a vendor profile must
//! be exactly those the vendor's descriptor lists (`generic_breaks`), each explained by a
//! catalogued quirk; the test prints the matrix and checks both. No vendor is named here: a new
//! registry line adds a row.
//!
//! Run it with `cargo test -p smart-adapters --test matrix -- --nocapture` to see the table.

use std::collections::BTreeMap;
use std::sync::Arc;

use smart_core::descriptor::{AdapterDescriptor, FlowStep};
use smart_core::quirks::VendorQuirks;
use smart_testkit::flows::{self, Outcome};

type Row = Vec<(FlowStep, Outcome)>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adapters_against_vendor_profiles() {
    let descriptors: &[&AdapterDescriptor] = smart_adapters::descriptors();
    let generic: Arc<dyn VendorQuirks> =
        smart_adapters::by_name("generic").expect("the generic adapter is always registered");

    // (profile's adapter, adapter run) -> outcomes
    let mut table: BTreeMap<(&str, String), Row> = BTreeMap::new();
    for d in descriptors {
        let own = (d.adapter)();
        table.insert(
            (d.name, own.name().to_owned()),
            flows::run(&d.sandbox_profile, &own).await,
        );
        if own.name() != generic.name() {
            table.insert(
                (d.name, generic.name().to_owned()),
                flows::run(&d.sandbox_profile, &generic).await,
            );
        }
    }

    let mut report = String::from("\nadapter × profile matrix\n");
    for ((profile, adapter), outcomes) in &table {
        report.push_str(&format!(
            "  {adapter:>8} adapter on the {profile:>8} adapter's profile:\n"
        ));
        for (step, outcome) in outcomes {
            match outcome {
                Ok(()) => report.push_str(&format!("      ok    {step:?}\n")),
                Err(e) => report.push_str(&format!("      BREAK {step:?}: {e}\n")),
            }
        }
    }
    println!("{report}");

    for d in descriptors {
        // Every adapter passes every step on its own profile.
        let own = flows::failed(&table[&(d.name, d.name.to_owned())]);
        assert!(
            own.is_empty(),
            "{} fails {own:?} on its own profile:{report}",
            d.name
        );
        // The generic adapter breaks exactly where the descriptor says the vendor departs from
        // the spec (each break names the quirk that explains it).
        if d.name != generic.name() {
            assert_eq!(
                flows::failed(&table[&(d.name, generic.name().to_owned())]),
                d.generic_break_steps(),
                "the generic adapter on the {} profile; expected breaks {:?}:{report}",
                d.name,
                d.generic_breaks
            );
        }
    }
    assert_eq!(
        table.len(),
        2 * descriptors.len() - 1,
        "one own-profile row per adapter plus one generic row per vendor profile"
    );
}
