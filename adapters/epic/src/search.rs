//! Soft checks on Epic searches before they are sent.
//!
//! Epic rejects or empties searches that lack parameters it requires, and says so in an
//! OperationOutcome entry of an otherwise empty Bundle (codes 4111 and 59159), which is easy to
//! mistake for "no data". These checks warn before the request is sent. They never block it:
//! requirements vary by Epic version and customer configuration.

/// Resource types whose Epic searches need the patient (`patient`, `subject` or `_id`).
const PATIENT_COMPARTMENT: &[&str] = &[
    "AllergyIntolerance",
    "CarePlan",
    "CareTeam",
    "Condition",
    "Device",
    "DiagnosticReport",
    "DocumentReference",
    "Encounter",
    "FamilyMemberHistory",
    "Goal",
    "Immunization",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
    "Procedure",
    "ServiceRequest",
];

/// The warnings for a search of `resource_type` with `params`.
pub(crate) fn warnings(resource_type: &str, params: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(w) = requires_patient(resource_type, params) {
        out.push(w);
    }
    if let Some(w) = patient_demographics(resource_type, params) {
        out.push(w);
    }
    if let Some(w) = observation_category(resource_type, params) {
        out.push(w);
    }
    out
}

/// Whether `name` (ignoring `:modifier` and `.chain`) is present with a non-empty value.
fn has(params: &[(String, String)], name: &str) -> bool {
    params.iter().any(|(k, v)| {
        let base = k.split([':', '.']).next().unwrap_or_default();
        base == name && !v.trim().is_empty()
    })
}

/// Quirk `epic-search-requires-patient` (§5 row 41; Epic OAuth 2.0 Specification,
/// Troubleshooting, Documented; outcome code 4111 from third-party notes): most clinical
/// searches fail without the patient.
fn requires_patient(resource_type: &str, params: &[(String, String)]) -> Option<String> {
    if !PATIENT_COMPARTMENT.contains(&resource_type) {
        return None;
    }
    if ["patient", "subject", "_id"].iter().any(|p| has(params, p)) {
        return None;
    }
    Some(format!(
        "Epic requires `patient` on {resource_type} searches (OperationOutcome 4111 otherwise); add patient=<id>"
    ))
}

/// Quirk `epic-search-patient-demographics` (§5 row 41; Epic OAuth 2.0 Specification,
/// Troubleshooting, Documented; outcome code 59159 from third-party notes): a Patient search
/// needs `_id`, `identifier`, or one of Epic's demographic minimums (given + family + birthdate;
/// given + family + legal sex + phone or email). `birthdate` alone fails.
fn patient_demographics(resource_type: &str, params: &[(String, String)]) -> Option<String> {
    if resource_type != "Patient" {
        return None;
    }
    let any = |names: &[&str]| names.iter().any(|n| has(params, n));
    let names = has(params, "given") && has(params, "family");
    let satisfied = any(&["_id", "identifier"])
        || (names && has(params, "birthdate"))
        || (names && any(&["legal-sex", "gender"]) && any(&["telecom", "phone", "email"]));
    (!satisfied).then(|| {
        "Epic matches Patient searches only on `_id`, `identifier`, given+family+birthdate, or \
         given+family+legal-sex+telecom (OperationOutcome 59159 otherwise)"
            .to_owned()
    })
}

/// Quirk `epic-search-observation-category` (§5 row 41; §1.13 "some also need `category`",
/// third-party probe, Inferred for Observation): Epic serves Observation search per category
/// (laboratory, vital-signs, social-history, …).
fn observation_category(resource_type: &str, params: &[(String, String)]) -> Option<String> {
    if resource_type != "Observation" || ["category", "code", "_id"].iter().any(|p| has(params, p))
    {
        return None;
    }
    Some(
        "Epic may require `category` (or `code`) on Observation searches; add e.g. category=laboratory"
            .to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use smart_core::quirks::{HookContext, VendorQuirks};

    use crate::Epic;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn epic_search_requires_patient() {
        let epic = Epic::new();
        for t in [
            "Observation",
            "Condition",
            "MedicationRequest",
            "AllergyIntolerance",
            "Encounter",
        ] {
            let w = epic.fhir().search_warnings(
                &HookContext::new("https://ehr.example/fhir"),
                t,
                &p(&[("category", "laboratory")]),
            );
            assert!(
                w.iter().any(|m| m.contains("4111")),
                "{t} without patient must warn: {w:?}"
            );
            for ok in [
                p(&[("patient", "eRp.3"), ("category", "x")]),
                p(&[("subject:Patient", "eRp.3"), ("category", "x")]),
                p(&[("_id", "1")]),
            ] {
                assert!(
                    epic.fhir()
                        .search_warnings(&HookContext::new("https://ehr.example/fhir"), t, &ok)
                        .is_empty(),
                    "{t} {ok:?} must not warn"
                );
            }
        }
        assert!(
            !epic
                .fhir()
                .search_warnings(
                    &HookContext::new("https://ehr.example/fhir"),
                    "Observation",
                    &p(&[("patient", " "), ("code", "x")])
                )
                .is_empty(),
            "an empty value does not count"
        );
        assert!(
            epic.fhir()
                .search_warnings(
                    &HookContext::new("https://ehr.example/fhir"),
                    "Practitioner",
                    &[]
                )
                .is_empty()
        );
    }

    #[test]
    fn epic_search_patient_demographics() {
        let epic = Epic::new();
        let warns = |pairs: &[(&str, &str)]| {
            !epic
                .fhir()
                .search_warnings(
                    &HookContext::new("https://ehr.example/fhir"),
                    "Patient",
                    &p(pairs),
                )
                .is_empty()
        };
        assert!(
            warns(&[("birthdate", "1973-06-03")]),
            "birthdate alone fails"
        );
        assert!(warns(&[("family", "Lin"), ("birthdate", "1973-06-03")]));
        assert!(!warns(&[("_id", "eRp.3")]));
        assert!(!warns(&[("identifier", "MRN|202497")]));
        assert!(!warns(&[
            ("family", "Lin"),
            ("given", "Derrick"),
            ("birthdate", "1973-06-03")
        ]));
        assert!(!warns(&[
            ("family", "Lin"),
            ("given", "Derrick"),
            ("legal-sex", "male"),
            ("telecom", "555-555-5555")
        ]));
    }

    #[test]
    fn epic_search_observation_category() {
        let epic = Epic::new();
        let w = epic.fhir().search_warnings(
            &HookContext::new("https://ehr.example/fhir"),
            "Observation",
            &p(&[("patient", "eRp.3")]),
        );
        assert!(w.iter().any(|m| m.contains("category")), "{w:?}");
        assert!(
            epic.fhir()
                .search_warnings(
                    &HookContext::new("https://ehr.example/fhir"),
                    "Observation",
                    &p(&[("patient", "eRp.3"), ("category", "vital-signs")])
                )
                .is_empty()
        );
        assert!(
            epic.fhir()
                .search_warnings(
                    &HookContext::new("https://ehr.example/fhir"),
                    "Observation",
                    &p(&[("patient", "eRp.3"), ("code", "8310-5")])
                )
                .is_empty()
        );
    }
}
