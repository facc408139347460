//! # smart-testkit: what every adapter's tests need, written once
//!
//! A dev-dependency of the adapter crates, the registry (`smart-adapters`) and the facade; never
//! a dependency of a release build. Two things live here so that a new adapter copies no test
//! boilerplate:
//!
//! - [`check_descriptor`]: an adapter's `DESCRIPTOR` agrees with the adapter it builds and with
//!   its quirk catalogue (one call in the adapter's unit tests);
//! - [`flows`]: the sandbox flows of the adapter × profile matrix (standalone launch, verified
//!   identity, EHR launch, FHIR read and search, refresh), run by [`flows::run`] for one
//!   adapter against one sandbox profile over real HTTP on 127.0.0.1. An adapter crate checks
//!   that it passes every step on its own profile with [`flows::assert_passes_own_profile`]; the
//!   matrix test in `smart-adapters` runs every registered adapter and the generic adapter against
//!   every registered profile.

use std::collections::BTreeSet;

use smart_core::descriptor::AdapterDescriptor;

pub mod flows;

/// Checks a descriptor against the adapter it builds and the ids of the adapter's quirk
/// catalogue: the registry name is the adapter's name, names and option keys are non-empty
/// lower-case identifiers, option keys are unique, and every generic-adapter break names a
/// catalogued quirk. Returns every problem found, one per line.
pub fn check_descriptor<'a>(
    descriptor: &AdapterDescriptor,
    catalogue_ids: impl IntoIterator<Item = &'a str>,
) -> Result<(), String> {
    let mut problems = Vec::new();
    let ids: BTreeSet<&str> = catalogue_ids.into_iter().collect();
    let adapter = (descriptor.adapter)();
    if adapter.name() != descriptor.name {
        problems.push(format!(
            "the descriptor is named {:?} but its adapter calls itself {:?}",
            descriptor.name,
            adapter.name()
        ));
    }
    if !is_identifier(descriptor.name) {
        problems.push(format!(
            "adapter name {:?} must be a non-empty lower-case identifier (a-z, 0-9, '-')",
            descriptor.name
        ));
    }
    if descriptor.name == smart_core::AUTO_ADAPTER {
        problems.push(format!(
            "{:?} is reserved for detection",
            smart_core::AUTO_ADAPTER
        ));
    }
    let mut keys = BTreeSet::new();
    for option in descriptor.options {
        if !is_identifier(&option.key.replace('_', "-")) {
            problems.push(format!(
                "option key {:?} must be a lower-case identifier",
                option.key
            ));
        }
        if !keys.insert(option.key) {
            problems.push(format!("option key {:?} is listed twice", option.key));
        }
        if option.summary.trim().is_empty() {
            problems.push(format!("option {:?} has no summary", option.key));
        }
    }
    for b in descriptor.generic_breaks {
        if !ids.contains(b.quirk) {
            problems.push(format!(
                "the generic adapter's break at {:?} names quirk {:?}, which is not in the catalogue",
                b.step, b.quirk
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use smart_core::descriptor::{AdapterOption, FlowStep, GenericBreak};
    use smart_core::quirks::VendorQuirks;

    use super::*;

    #[derive(Debug)]
    struct Acme;
    impl VendorQuirks for Acme {
        fn name(&self) -> &str {
            "acme"
        }
    }
    fn acme() -> Arc<dyn VendorQuirks> {
        Arc::new(Acme)
    }

    #[test]
    fn a_consistent_descriptor_passes() {
        static D: AdapterDescriptor = AdapterDescriptor::new("acme", "Acme", acme)
            .with_options(&[AdapterOption::new("client_id", "header", "x")])
            .with_generic_breaks(&[GenericBreak::new(FlowStep::Identity, "acme-issuer")]);
        assert_eq!(check_descriptor(&D, ["acme-issuer", "acme-other"]), Ok(()));
    }

    #[test]
    fn each_inconsistency_is_reported() {
        static D: AdapterDescriptor = AdapterDescriptor::new("Acme", "Acme", acme)
            .with_options(&[
                AdapterOption::new("client_id", "header", "x"),
                AdapterOption::new("client_id", "", "x"),
            ])
            .with_generic_breaks(&[GenericBreak::new(FlowStep::Identity, "acme-issuer")]);
        let err = check_descriptor(&D, ["acme-other"]).expect_err("inconsistent");
        for expected in [
            "adapter calls itself \"acme\"",
            "lower-case identifier",
            "listed twice",
            "has no summary",
            "not in the catalogue",
        ] {
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }
}
