//! Soft checks on Epic searches before they are sent.
//!
//! Epic rejects searches that lack parameters it requires, with an OperationOutcome whose code
//! says which rule failed (4111 a required parameter, 59108 a required element such as
//! Observation's `category`; 59159 is Epic's generic business-rule code), which is easy to mistake
//! for "no data". These checks warn before the request is sent. They never block it:
//! requirements vary by Epic version and customer configuration (`docs/vendors/epic.md#search-codes`).

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

/// Quirk `epic-search-requires-patient` (row 41; `docs/vendors/epic.md#search-required-params`,
/// Epic's FHIR error table, Documented): most clinical searches fail without the patient
/// (outcome 4111).
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

/// Quirk `epic-search-patient-demographics` (row 41; `docs/vendors/epic.md#search-required-params`,
/// Epic's Patient.Search documentation, Documented): a Patient search needs `_id`, `identifier`,
/// or, by default, one of Epic's demographic minimums (given + family + birthdate; given + family
/// + legal sex + phone or email). `birthdate` alone fails; more than 100 matches fail with 4127.
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
         given+family+legal-sex+telecom by default; other searches fail, and more than 100 matches fail with OperationOutcome 4127"
            .to_owned()
    })
}

/// Quirk `epic-search-observation-category` (row 41; `docs/vendors/epic.md#search-required-params`,
/// Epic's FHIR error table, Documented): an Observation search needs `category` or `code`
/// (outcome 59108), and a CarePlan search needs `category` (Epic's 2026 CapabilityStatement
/// calls it required).
fn observation_category(resource_type: &str, params: &[(String, String)]) -> Option<String> {
    match resource_type {
        "Observation" if !["category", "code", "_id"].iter().any(|p| has(params, p)) => Some(
            "Epic requires `category` or `code` on Observation searches (OperationOutcome 59108 otherwise); add e.g. category=laboratory"
                .to_owned(),
        ),
        "CarePlan" if !["category", "_id"].iter().any(|p| has(params, p)) => Some(
            "Epic requires `category` on CarePlan searches; add e.g. category=assess-plan".to_owned(),
        ),
        _ => None,
    }
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
        assert!(
            w.iter()
                .any(|m| m.contains("category") && m.contains("59108")),
            "{w:?}"
        );
        let w = epic.fhir().search_warnings(
            &HookContext::new("https://ehr.example/fhir"),
            "CarePlan",
            &p(&[("patient", "eRp.3")]),
        );
        assert!(w.iter().any(|m| m.contains("category")), "{w:?}");
        assert!(
            epic.fhir()
                .search_warnings(
                    &HookContext::new("https://ehr.example/fhir"),
                    "CarePlan",
                    &p(&[("patient", "eRp.3"), ("category", "assess-plan")])
                )
                .is_empty()
        );
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
