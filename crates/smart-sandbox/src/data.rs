//! The sandbox's fixed people: the five named patients, the ten
//! practitioners, and the SMART style document.
//!
//! Tests, the demo and the docs refer to these by id and name
//! (`pat-1` is Amelia Rose Rivera, `prac-1` is Dr. Morgan Ellis), so they are
//! spelled out here rather than drawn from the seeded generator; the
//! generator ([`crate::synth`]) adds their clinical records and the patients
//! `pat-6` … `pat-N`. The people are invented; any resemblance is accidental.

use serde_json::{Value, json};

/// The patient used when a client has no default patient.
pub(crate) const DEFAULT_PATIENT_ID: &str = "pat-1";

/// The practitioner who is the simulated EHR user.
pub(crate) const PRACTITIONER_ID: &str = "prac-1";

/// Identifier system used for the synthetic medical record numbers.
pub(crate) const MRN_SYSTEM: &str = "urn:smart-sandbox:mrn";

/// Identifier system of US National Provider Identifiers.
pub(crate) const NPI_SYSTEM: &str = "http://hl7.org/fhir/sid/us-npi";

/// One synthetic patient, as listed by [`Sandbox::patients`](crate::Sandbox::patients).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientSummary {
    /// The FHIR resource id (`pat-1` … `pat-5`).
    pub id: String,
    /// Display name, given names then family name.
    pub name: String,
}

/// Demographics of a named patient.
pub(crate) struct NamedPatient {
    pub(crate) family: &'static str,
    pub(crate) given: &'static [&'static str],
    pub(crate) gender: &'static str,
    pub(crate) birth_date: (i64, u32, u32),
}

/// `pat-1` … `pat-5`, in order.
pub(crate) const NAMED_PATIENTS: [NamedPatient; 5] = [
    NamedPatient {
        family: "Rivera",
        given: &["Amelia", "Rose"],
        gender: "female",
        birth_date: (1987, 4, 12),
    },
    NamedPatient {
        family: "Okafor",
        given: &["Daniel"],
        gender: "male",
        birth_date: (1954, 11, 30),
    },
    NamedPatient {
        family: "Nguyen",
        given: &["Linh"],
        gender: "female",
        birth_date: (2012, 6, 5),
    },
    NamedPatient {
        family: "Schmidt",
        given: &["Hans", "Peter"],
        gender: "male",
        birth_date: (1941, 2, 17),
    },
    NamedPatient {
        family: "Patel",
        given: &["Priya"],
        gender: "other",
        birth_date: (1999, 9, 9),
    },
];

/// Display name: given names, then the family name.
pub(crate) fn display_name(given: &[&str], family: &str) -> String {
    let mut parts: Vec<&str> = given.to_vec();
    parts.push(family);
    parts.join(" ")
}

/// The number `n` of a built-in patient id `pat-n`, if `1 <= n <= count`.
pub(crate) fn builtin_patient_number(id: &str, count: usize) -> Option<usize> {
    let n: usize = id.strip_prefix("pat-")?.parse().ok()?;
    // Reject `pat-01` and the like: ids are compared as strings everywhere.
    (n >= 1 && n <= count && format!("pat-{n}") == id).then_some(n)
}

/// Summaries of the named patients.
pub(crate) fn patient_summaries() -> Vec<PatientSummary> {
    NAMED_PATIENTS
        .iter()
        .enumerate()
        .map(|(i, p)| PatientSummary {
            id: format!("pat-{}", i + 1),
            name: display_name(p.given, p.family),
        })
        .collect()
}

/// One practitioner: family, given, gender, NPI.
pub(crate) struct Practitioner {
    pub(crate) family: &'static str,
    pub(crate) given: &'static [&'static str],
    pub(crate) gender: &'static str,
    pub(crate) npi: &'static str,
}

/// `prac-1` … `prac-10`, in order.
pub(crate) const PRACTITIONERS: [Practitioner; 10] = [
    Practitioner {
        family: "Ellis",
        given: &["Morgan"],
        gender: "unknown",
        npi: "9941339108",
    },
    Practitioner {
        family: "Okonkwo",
        given: &["Adaeze"],
        gender: "female",
        npi: "9941339116",
    },
    Practitioner {
        family: "Lindqvist",
        given: &["Erik"],
        gender: "male",
        npi: "9941339124",
    },
    Practitioner {
        family: "Ramos",
        given: &["Carmen"],
        gender: "female",
        npi: "9941339132",
    },
    Practitioner {
        family: "Haddad",
        given: &["Sami"],
        gender: "male",
        npi: "9941339140",
    },
    Practitioner {
        family: "Watanabe",
        given: &["Hana"],
        gender: "female",
        npi: "9941339157",
    },
    Practitioner {
        family: "Byrne",
        given: &["Declan"],
        gender: "male",
        npi: "9941339165",
    },
    Practitioner {
        family: "Mensah",
        given: &["Abena"],
        gender: "female",
        npi: "9941339173",
    },
    Practitioner {
        family: "Kowalczyk",
        given: &["Piotr"],
        gender: "male",
        npi: "9941339181",
    },
    Practitioner {
        family: "Iyer",
        given: &["Lakshmi"],
        gender: "female",
        npi: "9941339199",
    },
];

/// The display text of practitioner `n` (1-based), e.g. `Dr. Morgan Ellis`.
pub(crate) fn practitioner_display(n: usize) -> String {
    let p = &PRACTITIONERS[(n.max(1) - 1) % PRACTITIONERS.len()];
    format!("Dr. {}", display_name(p.given, p.family))
}

/// The Practitioner resource for `n` (1-based).
pub(crate) fn practitioner_json(n: usize, meta: Value) -> Value {
    let p = &PRACTITIONERS[(n.max(1) - 1) % PRACTITIONERS.len()];
    json!({
        "resourceType": "Practitioner",
        "id": format!("prac-{n}"),
        "meta": meta,
        "identifier": [{
            "system": NPI_SYSTEM,
            "value": p.npi
        }],
        "active": true,
        "name": [{
            "use": "official",
            "text": practitioner_display(n),
            "family": p.family,
            "given": p.given,
            "prefix": ["Dr."]
        }],
        "gender": p.gender
    })
}

/// The SMART style document served at `/smart-style.json`.
pub(crate) fn smart_style() -> Value {
    json!({
        "color_background": "#edeae3",
        "color_error": "#9e2d2d",
        "color_highlight": "#69b5ce",
        "color_modal_backdrop": "",
        "color_success": "#498e49",
        "color_text": "#303030",
        "dim_border_radius": "6px",
        "dim_font_size": "13px",
        "dim_spacing_size": "20px",
        "font_family_body": "Georgia, Times, 'Times New Roman', serif",
        "font_family_heading": "'HelveticaNeue-Light', Helvetica, Arial, 'Lucida Grande', sans-serif"
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn builtin_patient_ids() {
        assert_eq!(builtin_patient_number("pat-1", 5), Some(1));
        assert_eq!(builtin_patient_number("pat-300", 300), Some(300));
        assert_eq!(builtin_patient_number("pat-301", 300), None);
        assert_eq!(builtin_patient_number("pat-0", 300), None);
        assert_eq!(builtin_patient_number("pat-01", 300), None);
        assert_eq!(builtin_patient_number("p9", 300), None);
    }
}
