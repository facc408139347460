//! Adapter checks (`A-…`): every adapter in the build against the sandbox profile that emulates
//! its vendor, and the spec-exact generic adapter against every vendor profile.
//!
//! The expectations are data, not code: each adapter's descriptor names its sandbox profile and
//! the flow steps where the generic adapter breaks on it, with the catalogued quirk that explains
//! each break. So a generic-adapter step passes this check when it works, or when it breaks
//! exactly where the descriptor declares; an undeclared break and a declared break that no
//! longer happens both fail (the second means the descriptor is out of date). No vendor is named
//! here: a new registry line adds its rows.

use std::sync::Arc;

use smart_core::descriptor::{AdapterDescriptor, FlowStep};
use smart_core::quirks::VendorQuirks;
use smart_testkit::flows;

use crate::model::{CheckDef, CheckResult, Family, Level, Status};

macro_rules! adapter_check {
    ($name:ident, $id:literal, $title:literal) => {
        static $name: CheckDef = CheckDef {
            id: $id,
            title: $title,
            reference: "SMART App Launch 2.2 (the flow as a whole); the vendor's quirk catalogue",
            level: Level::Shall,
            family: Family::Adapter,
        };
    };
}

adapter_check!(
    OWN_STANDALONE,
    "A-1.1",
    "Own profile: standalone launch with a long scope list"
);
adapter_check!(
    OWN_IDENTITY,
    "A-1.2",
    "Own profile: standalone launch with a verified id_token"
);
adapter_check!(OWN_EHR, "A-1.3", "Own profile: EHR launch with its context");
adapter_check!(OWN_FHIR, "A-1.4", "Own profile: FHIR read and paged search");
adapter_check!(OWN_REFRESH, "A-1.5", "Own profile: two refreshes in a row");
adapter_check!(OWN_OTHER, "A-1.9", "Own profile: another flow step");
adapter_check!(
    GEN_STANDALONE,
    "A-2.1",
    "Generic adapter: standalone launch works or breaks as declared"
);
adapter_check!(
    GEN_IDENTITY,
    "A-2.2",
    "Generic adapter: identity works or breaks as declared"
);
adapter_check!(
    GEN_EHR,
    "A-2.3",
    "Generic adapter: EHR launch works or breaks as declared"
);
adapter_check!(
    GEN_FHIR,
    "A-2.4",
    "Generic adapter: FHIR read and search work or break as declared"
);
adapter_check!(
    GEN_REFRESH,
    "A-2.5",
    "Generic adapter: refresh works or breaks as declared"
);
adapter_check!(
    GEN_OTHER,
    "A-2.9",
    "Generic adapter: another flow step works or breaks as declared"
);

/// Every adapter check definition, in id order (for documentation and listings).
pub fn definitions() -> [&'static CheckDef; 12] {
    [
        &OWN_STANDALONE,
        &OWN_IDENTITY,
        &OWN_EHR,
        &OWN_FHIR,
        &OWN_REFRESH,
        &OWN_OTHER,
        &GEN_STANDALONE,
        &GEN_IDENTITY,
        &GEN_EHR,
        &GEN_FHIR,
        &GEN_REFRESH,
        &GEN_OTHER,
    ]
}

fn own_def(step: FlowStep) -> &'static CheckDef {
    match step {
        FlowStep::StandaloneLaunch => &OWN_STANDALONE,
        FlowStep::Identity => &OWN_IDENTITY,
        FlowStep::EhrLaunch => &OWN_EHR,
        FlowStep::FhirReadAndSearch => &OWN_FHIR,
        FlowStep::Refresh => &OWN_REFRESH,
        _ => &OWN_OTHER,
    }
}

fn generic_def(step: FlowStep) -> &'static CheckDef {
    match step {
        FlowStep::StandaloneLaunch => &GEN_STANDALONE,
        FlowStep::Identity => &GEN_IDENTITY,
        FlowStep::EhrLaunch => &GEN_EHR,
        FlowStep::FhirReadAndSearch => &GEN_FHIR,
        FlowStep::Refresh => &GEN_REFRESH,
        _ => &GEN_OTHER,
    }
}

/// The name of the generic adapter in the registry.
pub const GENERIC: &str = "generic";

/// Judges the generic adapter's outcome on a vendor profile against the descriptor's declared
/// breaks.
///
/// ```
/// use smart_conformance::adapter_checks::judge_generic;
/// use smart_conformance::Status;
/// use smart_core::descriptor::FlowStep;
///
/// let generic = smart_adapters::descriptor("generic").expect("always registered");
/// // The generic descriptor declares no break: working passes, breaking fails.
/// assert_eq!(judge_generic(generic, FlowStep::Refresh, &Ok(())), Status::Pass);
/// assert!(matches!(judge_generic(generic, FlowStep::Refresh, &Err("401".into())), Status::Fail(_)));
/// ```
pub fn judge_generic(
    descriptor: &AdapterDescriptor,
    step: FlowStep,
    outcome: &flows::Outcome,
) -> Status {
    let declared: Vec<&str> = descriptor
        .generic_breaks
        .iter()
        .filter(|b| b.step == step)
        .map(|b| b.quirk)
        .collect();
    match (outcome, declared.is_empty()) {
        (Ok(()), true) => Status::Pass,
        (Err(_), false) => Status::Pass,
        (Ok(()), false) => Status::Fail(format!(
            "the descriptor declares a break here ({}), but the step works: update generic_breaks",
            declared.join(", ")
        )),
        (Err(e), true) => Status::Fail(format!("undeclared break: {e}")),
    }
}

/// Runs every adapter check of the build, calling `progress` after each result.
pub async fn run_all(mut progress: impl FnMut(&CheckResult)) -> Vec<CheckResult> {
    run(smart_adapters::descriptors(), &mut progress).await
}

/// Runs the adapter checks for `descriptors` (each own profile, and the generic adapter on
/// every vendor profile).
pub async fn run(
    descriptors: &[&'static AdapterDescriptor],
    progress: &mut dyn FnMut(&CheckResult),
) -> Vec<CheckResult> {
    let generic: Option<Arc<dyn VendorQuirks>> = smart_adapters::by_name(GENERIC);
    let mut out = Vec::new();
    for d in descriptors {
        let own = (d.adapter)();
        let subject = format!("{} adapter on the {} profile", d.name, d.name);
        for (step, outcome) in flows::run(&d.sandbox_profile, &own).await {
            let status = match outcome {
                Ok(()) => Status::Pass,
                Err(e) => Status::Fail(e),
            };
            let r = CheckResult::new(own_def(step), subject.clone(), status);
            progress(&r);
            out.push(r);
        }
        if d.name == GENERIC {
            continue;
        }
        let Some(generic) = &generic else { continue };
        let subject = format!("generic adapter on the {} profile", d.name);
        for (step, outcome) in flows::run(&d.sandbox_profile, generic).await {
            let r = CheckResult::new(
                generic_def(step),
                subject.clone(),
                judge_generic(d, step, &outcome),
            );
            progress(&r);
            out.push(r);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use smart_core::descriptor::GenericBreak;

    fn named() -> Arc<dyn VendorQuirks> {
        smart_adapters::by_name(GENERIC).expect("generic")
    }

    static D: AdapterDescriptor = AdapterDescriptor::new("acme", "Acme", named)
        .with_generic_breaks(&[GenericBreak::new(FlowStep::Refresh, "acme-refresh")]);

    #[test]
    fn a_declared_break_passes_only_when_it_happens() {
        assert_eq!(
            judge_generic(&D, FlowStep::Refresh, &Err("401".into())),
            Status::Pass
        );
        assert!(matches!(
            judge_generic(&D, FlowStep::Refresh, &Ok(())),
            Status::Fail(m) if m.contains("acme-refresh")
        ));
        assert!(matches!(
            judge_generic(&D, FlowStep::Identity, &Err("bad".into())),
            Status::Fail(m) if m.contains("undeclared")
        ));
        assert_eq!(judge_generic(&D, FlowStep::Identity, &Ok(())), Status::Pass);
    }

    #[test]
    fn definitions_have_distinct_ids() {
        let ids: std::collections::BTreeSet<_> = definitions().iter().map(|d| d.id).collect();
        assert_eq!(ids.len(), definitions().len());
    }
}
