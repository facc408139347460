//! Soft checks on Oracle Health searches before they are sent.
//!
//! Millennium conditionally requires search parameters on almost every resource and answers a
//! missing one with a 400 whose body may be plain text (`no supported search parameters
//! provided`); `_count` above a resource's maximum is an error too. These checks warn before the
//! request is sent. They never block it: the rules differ between Millennium releases.

/// Resource types whose search needs `patient`, `subject` or `_id` (plus any extra
/// alternatives listed).
const PATIENT_OR_ID: &[(&str, &[&str])] = &[
    ("AllergyIntolerance", &[]),
    ("CarePlan", &[]),
    ("CareTeam", &[]),
    ("Condition", &[]),
    ("DiagnosticReport", &[]),
    ("DocumentReference", &[]),
    ("Encounter", &["account"]),
    ("FamilyMemberHistory", &[]),
    ("Goal", &[]),
    ("Immunization", &[]),
    ("MedicationAdministration", &[]),
    ("MedicationRequest", &[]),
    ("NutritionOrder", &[]),
    ("Observation", &[]),
    ("Procedure", &[]),
    ("QuestionnaireResponse", &[]),
    ("ServiceRequest", &[]),
];

/// Per-resource `_count` maximums (Millennium R4 documentation).
const COUNT_LIMITS: &[(&str, u32)] = &[
    ("DiagnosticReport", 100),
    ("DocumentReference", 100),
    ("Observation", 200),
];

/// The warnings for a search of `resource_type` with `params`.
pub(crate) fn warnings(resource_type: &str, params: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(w) = required_params(resource_type, params) {
        out.push(w);
    }
    if let Some(w) = count_limit(resource_type, params) {
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

/// Quirk `cerner-search-required-params` (§5 row 41; Millennium R4 resource documentation,
/// Documented): most searches need `patient`, `subject` or `_id` (Encounter also accepts
/// `account`); Appointment needs `_id`, or `date` with `patient`, `practitioner` or `location`;
/// Location needs `_id` or `-physicalType` (custom parameters start with `-`).
fn required_params(resource_type: &str, params: &[(String, String)]) -> Option<String> {
    let any = |names: &[&str]| names.iter().any(|n| has(params, n));
    match resource_type {
        "Appointment" => {
            let ok =
                any(&["_id"]) || (any(&["date"]) && any(&["patient", "practitioner", "location"]));
            (!ok).then(|| {
                "Oracle Health requires `_id`, or `date` with `patient`, `practitioner` or \
                 `location`, on Appointment searches (HTTP 400 otherwise)"
                    .to_owned()
            })
        }
        "Location" => (!any(&["_id", "-physicalType"])).then(|| {
            "Oracle Health requires `_id` or `-physicalType` on Location searches (HTTP 400 \
             otherwise)"
                .to_owned()
        }),
        _ => {
            let (_, extra) = PATIENT_OR_ID.iter().find(|(t, _)| *t == resource_type)?;
            let ok = any(&["patient", "subject", "_id"]) || any(extra);
            (!ok).then(|| {
                let mut names = vec!["`patient`", "`subject`", "`_id`"];
                let extra: Vec<String> = extra.iter().map(|e| format!("`{e}`")).collect();
                names.extend(extra.iter().map(String::as_str));
                format!(
                    "Oracle Health requires one of {} on {resource_type} searches (HTTP 400 otherwise)",
                    names.join(", ")
                )
            })
        }
    }
}

/// Quirk `cerner-search-count-limits` (§5 row 42; Millennium R4 resource documentation,
/// Documented): `_count` has a per-resource maximum (Observation 200, DocumentReference and
/// DiagnosticReport 100).
fn count_limit(resource_type: &str, params: &[(String, String)]) -> Option<String> {
    let (_, max) = COUNT_LIMITS.iter().find(|(t, _)| *t == resource_type)?;
    let count: u32 = params
        .iter()
        .find(|(k, _)| k == "_count")
        .and_then(|(_, v)| v.trim().parse().ok())?;
    (count > *max).then(|| {
        format!(
            "Oracle Health allows at most _count={max} on {resource_type} searches; {count} was asked"
        )
    })
}

#[cfg(test)]
mod tests {
    use smart_core::quirks::{HookContext, VendorQuirks};

    use crate::Cerner;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn cerner_search_required_params() {
        let cerner = Cerner::new();
        let warns = |t: &str, pairs: &[(&str, &str)]| {
            !cerner
                .fhir()
                .search_warnings(&HookContext::new("https://ehr.example/fhir"), t, &p(pairs))
                .is_empty()
        };
        for t in ["Observation", "Condition", "DocumentReference", "Encounter"] {
            assert!(warns(t, &[("date", "ge2024-01-01")]), "{t}");
            assert!(!warns(t, &[("patient", "12724066")]), "{t}");
            assert!(!warns(t, &[("subject:Patient", "12724066")]), "{t}");
            assert!(!warns(t, &[("_id", "1")]), "{t}");
        }
        assert!(!warns("Encounter", &[("account", "F703726")]));
        assert!(warns("Observation", &[("account", "F703726")]));

        assert!(warns("Appointment", &[("patient", "1")]), "date needed");
        assert!(!warns(
            "Appointment",
            &[("patient", "1"), ("date", "ge2024-01-01")]
        ));
        assert!(!warns(
            "Appointment",
            &[("location", "1"), ("date", "ge2024-01-01")]
        ));
        assert!(!warns("Appointment", &[("_id", "1")]));

        assert!(warns("Location", &[("name", "ICU")]));
        assert!(!warns(
            "Location",
            &[(
                "-physicalType",
                "http://terminology.hl7.org/CodeSystem/location-physical-type|ro"
            )]
        ));

        assert!(
            !warns("Practitioner", &[("name", "x")]),
            "types without a rule"
        );
    }

    #[test]
    fn cerner_search_count_limits() {
        let cerner = Cerner::new();
        let w = cerner.fhir().search_warnings(
            &HookContext::new("https://ehr.example/fhir"),
            "Observation",
            &p(&[("patient", "1"), ("_count", "500")]),
        );
        assert!(w.iter().any(|m| m.contains("_count=200")), "{w:?}");
        assert!(
            cerner
                .fhir()
                .search_warnings(
                    &HookContext::new("https://ehr.example/fhir"),
                    "Observation",
                    &p(&[("patient", "1"), ("_count", "200")])
                )
                .is_empty()
        );
        let w = cerner.fhir().search_warnings(
            &HookContext::new("https://ehr.example/fhir"),
            "DocumentReference",
            &p(&[("patient", "1"), ("_count", "101")]),
        );
        assert!(w.iter().any(|m| m.contains("_count=100")), "{w:?}");
        assert!(
            cerner
                .fhir()
                .search_warnings(
                    &HookContext::new("https://ehr.example/fhir"),
                    "Patient",
                    &p(&[("_id", "1"), ("_count", "1000")])
                )
                .is_empty()
        );
    }
}
