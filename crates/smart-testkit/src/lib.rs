//! # smart-testkit: what every adapter's tests need, written once
//!
//! A dev-dependency of the adapter crates, the registry (`smart-adapters`) and the facade; never
//! a dependency of a release build. Three things live here so that a new adapter copies no test
//! boilerplate:
//!
//! - [`check_descriptor`]: an adapter's `DESCRIPTOR` agrees with the adapter it builds and with
//!   its quirk catalogue (one call in the adapter's unit tests);
//! - [`flows`]: the sandbox flows of the adapter × profile matrix (standalone launch, verified
//!   identity, EHR launch, FHIR read and search, refresh), run by [`flows::run`] for one
//!   adapter against one sandbox profile over real HTTP on 127.0.0.1. An adapter crate checks
//!   that it passes every step on its own profile with [`flows::assert_passes_own_profile`]; the
//!   matrix test in `smart-adapters` runs every registered adapter and the generic adapter against
//!   every registered profile;
//! - [`logs`]: what code logs at WARN, captured, for quirks that are reported only as warnings.

use std::collections::BTreeSet;

use smart_core::descriptor::AdapterDescriptor;

pub mod flows;
pub mod logs;

/// Checks a descriptor against the adapter it builds and the ids of the adapter's quirk
/// catalogue: the registry name is the adapter's name, names and option keys are non-empty
/// lower-case identifiers, option keys are unique, and every generic-adapter break names a
/// catalogued quirk. Returns every problem found, one per line.
pub fn check_descriptor(descriptor: &AdapterDescriptor) -> Result<(), String> {
    let mut problems = Vec::new();
    let ids: BTreeSet<&str> = descriptor.catalogue.iter().map(|q| q.id).collect();
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
        // The documented option, with its documented example, must be one the adapter accepts.
        let example = serde_json::from_str(option.example)
            .unwrap_or_else(|_| serde_json::Value::String(option.example.to_owned()));
        let mut options = smart_core::config::AdapterOptions::new();
        options.insert(option.key.to_owned(), example);
        if let Err(e) = adapter.with_options(&options) {
            problems.push(format!(
                "documented option {:?} = {:?} is refused by the adapter: {e}",
                option.key, option.example
            ));
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

    use smart_core::config::AdapterOptions;
    use smart_core::descriptor::{AdapterOption, FlowStep, GenericBreak};
    use smart_core::quirks::{Confidence, HandledBy, Hook, Quirk, VendorQuirks};

    use super::*;

    /// Accepts one option, `client_id`.
    #[derive(Debug)]
    struct Acme;
    impl VendorQuirks for Acme {
        fn name(&self) -> &str {
            "acme"
        }
        fn with_options(
            &self,
            options: &AdapterOptions,
        ) -> Result<Option<Arc<dyn VendorQuirks>>, String> {
            match options.keys().find(|k| *k != "client_id") {
                Some(other) => Err(format!("unknown option {other}")),
                None => Ok(None),
            }
        }
    }
    fn acme() -> Arc<dyn VendorQuirks> {
        Arc::new(Acme)
    }

    const fn quirk(id: &'static str) -> Quirk {
        Quirk {
            id,
            row: 33,
            summary: "s",
            source: "docs/vendors/acme.md",
            confidence: Confidence::Documented,
            handled_by: HandledBy::Hook(Hook::IdTokenIssuer),
        }
    }

    #[test]
    fn a_consistent_descriptor_passes() {
        static D: AdapterDescriptor = AdapterDescriptor::new("acme", "Acme", acme)
            .with_options(&[AdapterOption::new("client_id", "header", "x")])
            .with_generic_breaks(&[GenericBreak::new(FlowStep::Identity, "acme-issuer")])
            .with_catalogue(&[quirk("acme-issuer"), quirk("acme-other")]);
        assert_eq!(check_descriptor(&D), Ok(()));
    }

    #[test]
    fn each_inconsistency_is_reported() {
        static D: AdapterDescriptor = AdapterDescriptor::new("Acme", "Acme", acme)
            .with_options(&[
                AdapterOption::new("client_id", "header", "x"),
                AdapterOption::new("client_id", "", "x"),
                AdapterOption::new("client_idd", "a misspelt option", "x"),
            ])
            .with_generic_breaks(&[GenericBreak::new(FlowStep::Identity, "acme-issuer")])
            .with_catalogue(&[quirk("acme-other")]);
        let err = check_descriptor(&D).expect_err("inconsistent");
        for expected in [
            "adapter calls itself \"acme\"",
            "lower-case identifier",
            "listed twice",
            "has no summary",
            "not in the catalogue",
            "\"client_idd\" = \"x\" is refused by the adapter",
        ] {
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }
}
