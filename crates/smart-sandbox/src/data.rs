//! The sandbox's synthetic clinical data: five patients and one practitioner.
//!
//! The data is generated in code, deterministically, so tests and demos can
//! rely on fixed ids (`pat-1` … `pat-5`, `prac-1`) without shipping fixture
//! files. The people are invented; any resemblance is accidental.

use serde_json::{Value, json};

/// The patient used when a client has no default patient.
pub(crate) const DEFAULT_PATIENT_ID: &str = "pat-1";

/// The one practitioner (the simulated EHR user).
pub(crate) const PRACTITIONER_ID: &str = "prac-1";

/// Identifier system used for the synthetic medical record numbers.
const MRN_SYSTEM: &str = "urn:smart-sandbox:mrn";

/// One synthetic patient, as listed by [`Sandbox::patients`](crate::Sandbox::patients).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientSummary {
    /// The FHIR resource id (`pat-1` … `pat-5`).
    pub id: String,
    /// Display name, given names then family name.
    pub name: String,
}

pub(crate) struct SyntheticPatient {
    pub(crate) id: &'static str,
    family: &'static str,
    given: &'static [&'static str],
    gender: &'static str,
    birth_date: &'static str,
}

const PATIENTS: [SyntheticPatient; 5] = [
    SyntheticPatient {
        id: "pat-1",
        family: "Rivera",
        given: &["Amelia", "Rose"],
        gender: "female",
        birth_date: "1987-04-12",
    },
    SyntheticPatient {
        id: "pat-2",
        family: "Okafor",
        given: &["Daniel"],
        gender: "male",
        birth_date: "1954-11-30",
    },
    SyntheticPatient {
        id: "pat-3",
        family: "Nguyen",
        given: &["Linh"],
        gender: "female",
        birth_date: "2012-06-05",
    },
    SyntheticPatient {
        id: "pat-4",
        family: "Schmidt",
        given: &["Hans", "Peter"],
        gender: "male",
        birth_date: "1941-02-17",
    },
    SyntheticPatient {
        id: "pat-5",
        family: "Patel",
        given: &["Priya"],
        gender: "other",
        birth_date: "1999-09-09",
    },
];

impl SyntheticPatient {
    fn display_name(&self) -> String {
        let mut parts: Vec<&str> = self.given.to_vec();
        parts.push(self.family);
        parts.join(" ")
    }

    pub(crate) fn to_fhir(&self) -> Value {
        let index = PATIENTS.iter().position(|p| p.id == self.id).unwrap_or(0) + 1;
        json!({
            "resourceType": "Patient",
            "id": self.id,
            "meta": { "versionId": "1" },
            "identifier": [{
                "use": "usual",
                "type": {
                    "coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                        "code": "MR",
                        "display": "Medical record number"
                    }]
                },
                "system": MRN_SYSTEM,
                "value": format!("MRN-{index:04}")
            }],
            "active": true,
            "name": [{
                "use": "official",
                "text": self.display_name(),
                "family": self.family,
                "given": self.given
            }],
            "gender": self.gender,
            "birthDate": self.birth_date
        })
    }
}

/// Looks up a synthetic patient by id.
pub(crate) fn patient(id: &str) -> Option<&'static SyntheticPatient> {
    PATIENTS.iter().find(|p| p.id == id)
}

/// The ids of all synthetic patients.
pub(crate) fn patient_ids() -> Vec<&'static str> {
    PATIENTS.iter().map(|p| p.id).collect()
}

/// Summaries of all synthetic patients.
pub(crate) fn patient_summaries() -> Vec<PatientSummary> {
    PATIENTS
        .iter()
        .map(|p| PatientSummary {
            id: p.id.to_owned(),
            name: p.display_name(),
        })
        .collect()
}

/// The practitioner resource, if `id` names it.
pub(crate) fn practitioner(id: &str) -> Option<Value> {
    (id == PRACTITIONER_ID).then(|| {
        json!({
            "resourceType": "Practitioner",
            "id": PRACTITIONER_ID,
            "meta": { "versionId": "1" },
            "identifier": [{
                "system": "http://hl7.org/fhir/sid/us-npi",
                "value": "9941339108"
            }],
            "active": true,
            "name": [{
                "use": "official",
                "text": "Dr. Morgan Ellis",
                "family": "Ellis",
                "given": ["Morgan"],
                "prefix": ["Dr."]
            }],
            "gender": "unknown"
        })
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
