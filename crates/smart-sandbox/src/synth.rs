//! The seeded clinical data set: `pat-1` … `pat-N` with encounters, vital
//! signs and labs, conditions, medication requests and allergies.
//!
//! Why it is generated and how:
//!
//! * **Deterministic.** Everything comes from [`SplitMix64`] streams keyed by
//!   `(seed, patient number)`, so a seed names one data set forever, and a
//!   patient's record does not change when `patient_count` does. The dates
//!   are laid out over the three years before the *as-of day* (today by
//!   default, or `SandboxConfig::data_as_of`), so they stay recent.
//! * **Compact.** A debug build needs about half a second to build ten
//!   thousand `serde_json::Value`s, far too slow for a sandbox that tests start
//!   dozens of times. Resources are therefore kept as small structs
//!   ([`Synth`]) with their search [`Index`] built directly, and rendered to
//!   JSON only when a response needs them.
//! * **Plausible.** Real LOINC, SNOMED CT and RxNorm codes with UCUM units and
//!   decimal values (`72.5`), blood pressure as a panel with components,
//!   values that follow a per-patient baseline (a diabetic patient has high
//!   glucose and HbA1c), conditions with their medications. It is test data,
//!   not epidemiology.

use serde_json::{Value, json};

use crate::data::{self, MRN_SYSTEM, NAMED_PATIENTS, NPI_SYSTEM};
use crate::fhir::index::{Index, Key};
use crate::rng::SplitMix64;
use crate::time::{DAY_MS, Interval, days_from_civil, format_date, format_date_time};

const LOINC: &str = "http://loinc.org";
const SNOMED: &str = "http://snomed.info/sct";
const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
const UCUM: &str = "http://unitsofmeasure.org";
pub(crate) const OBSERVATION_CATEGORY: &str =
    "http://terminology.hl7.org/CodeSystem/observation-category";
const CONDITION_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
const CONDITION_VERIFICATION: &str = "http://terminology.hl7.org/CodeSystem/condition-ver-status";
const CONDITION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/condition-category";
const ALLERGY_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical";
const ALLERGY_VERIFICATION: &str =
    "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

/// Salt for the demographics streams, so names do not depend on how much
/// clinical data a patient has.
const DEMOGRAPHICS_SALT: u64 = 0xD3A0_6A2B_1C5E_0001;

/// How far back the data reaches.
const HISTORY_DAYS: i64 = 3 * 365;

// ---------------------------------------------------------------------------
// Catalogues

/// An observation kind: LOINC code and display, category, UCUM unit, and a
/// reference range for labs.
struct ObsKind {
    code: &'static str,
    display: &'static str,
    laboratory: bool,
    unit: &'static str,
    ucum: &'static str,
    range: Option<(f64, f64)>,
}

const HEART_RATE: u8 = 0;
const BLOOD_PRESSURE: u8 = 1;
const TEMPERATURE: u8 = 2;
const WEIGHT: u8 = 3;
const HEIGHT: u8 = 4;
const BMI: u8 = 5;
const VITALS: [u8; 6] = [HEART_RATE, BLOOD_PRESSURE, TEMPERATURE, WEIGHT, HEIGHT, BMI];
const LABS: [u8; 5] = [6, 7, 8, 9, 10];

const OBS_KINDS: [ObsKind; 11] = [
    ObsKind {
        code: "8867-4",
        display: "Heart rate",
        laboratory: false,
        unit: "beats/minute",
        ucum: "/min",
        range: None,
    },
    ObsKind {
        code: "85354-9",
        display: "Blood pressure panel with all children optional",
        laboratory: false,
        unit: "mm[Hg]",
        ucum: "mm[Hg]",
        range: None,
    },
    ObsKind {
        code: "8310-5",
        display: "Body temperature",
        laboratory: false,
        unit: "Cel",
        ucum: "Cel",
        range: None,
    },
    ObsKind {
        code: "29463-7",
        display: "Body weight",
        laboratory: false,
        unit: "kg",
        ucum: "kg",
        range: None,
    },
    ObsKind {
        code: "8302-2",
        display: "Body height",
        laboratory: false,
        unit: "cm",
        ucum: "cm",
        range: None,
    },
    ObsKind {
        code: "39156-5",
        display: "Body mass index (BMI) [Ratio]",
        laboratory: false,
        unit: "kg/m2",
        ucum: "kg/m2",
        range: None,
    },
    ObsKind {
        code: "2339-0",
        display: "Glucose [Mass/volume] in Blood",
        laboratory: true,
        unit: "mg/dL",
        ucum: "mg/dL",
        range: Some((70.0, 99.0)),
    },
    ObsKind {
        code: "4548-4",
        display: "Hemoglobin A1c/Hemoglobin.total in Blood",
        laboratory: true,
        unit: "%",
        ucum: "%",
        range: Some((4.0, 5.6)),
    },
    ObsKind {
        code: "2160-0",
        display: "Creatinine [Mass/volume] in Serum or Plasma",
        laboratory: true,
        unit: "mg/dL",
        ucum: "mg/dL",
        range: Some((0.6, 1.3)),
    },
    ObsKind {
        code: "2823-3",
        display: "Potassium [Moles/volume] in Serum or Plasma",
        laboratory: true,
        unit: "mmol/L",
        ucum: "mmol/L",
        range: Some((3.5, 5.1)),
    },
    ObsKind {
        code: "18262-6",
        display: "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay",
        laboratory: true,
        unit: "mg/dL",
        ucum: "mg/dL",
        range: Some((0.0, 100.0)),
    },
];

const SYSTOLIC: (&str, &str) = ("8480-6", "Systolic blood pressure");
const DIASTOLIC: (&str, &str) = ("8462-4", "Diastolic blood pressure");

/// A condition: SNOMED code and display, chronic or acute, and the index of
/// the medication usually prescribed for it.
struct ConditionKind {
    code: &'static str,
    display: &'static str,
    chronic: bool,
    medication: Option<u8>,
}

const DIABETES: u8 = 0;
const HYPERTENSION: u8 = 1;
const HYPERLIPIDEMIA: u8 = 2;
const ASTHMA: u8 = 3;
const DEPRESSION: u8 = 4;
const OSTEOARTHRITIS: u8 = 5;
const ACUTE_CONDITIONS: [u8; 5] = [6, 7, 8, 9, 10];

const CONDITION_KINDS: [ConditionKind; 11] = [
    ConditionKind {
        code: "44054006",
        display: "Diabetes mellitus type 2",
        chronic: true,
        medication: Some(0),
    },
    ConditionKind {
        code: "38341003",
        display: "Hypertensive disorder, systemic arterial",
        chronic: true,
        medication: Some(1),
    },
    ConditionKind {
        code: "55822004",
        display: "Hyperlipidemia",
        chronic: true,
        medication: Some(2),
    },
    ConditionKind {
        code: "195967001",
        display: "Asthma",
        chronic: true,
        medication: Some(3),
    },
    ConditionKind {
        code: "35489007",
        display: "Depressive disorder",
        chronic: true,
        medication: Some(4),
    },
    ConditionKind {
        code: "239873007",
        display: "Osteoarthritis of knee",
        chronic: true,
        medication: Some(5),
    },
    ConditionKind {
        code: "444814009",
        display: "Viral sinusitis",
        chronic: false,
        medication: None,
    },
    ConditionKind {
        code: "10509002",
        display: "Acute bronchitis",
        chronic: false,
        medication: Some(6),
    },
    ConditionKind {
        code: "43878008",
        display: "Streptococcal sore throat",
        chronic: false,
        medication: Some(7),
    },
    ConditionKind {
        code: "65363002",
        display: "Otitis media",
        chronic: false,
        medication: Some(7),
    },
    ConditionKind {
        code: "44465007",
        display: "Sprain of ankle",
        chronic: false,
        medication: Some(8),
    },
];

/// A medication: RxNorm code, display and dosage text.
struct MedicationKind {
    code: &'static str,
    display: &'static str,
    dosage: &'static str,
}

const MEDICATION_KINDS: [MedicationKind; 9] = [
    MedicationKind {
        code: "860975",
        display: "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet",
        dosage: "Take 1 tablet by mouth once daily with the evening meal",
    },
    MedicationKind {
        code: "314076",
        display: "lisinopril 10 MG Oral Tablet",
        dosage: "Take 1 tablet by mouth once daily",
    },
    MedicationKind {
        code: "259255",
        display: "atorvastatin 80 MG Oral Tablet",
        dosage: "Take 1 tablet by mouth once daily at bedtime",
    },
    MedicationKind {
        code: "895994",
        display: "120 ACTUAT fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler",
        dosage: "Inhale 2 puffs twice daily",
    },
    MedicationKind {
        code: "312938",
        display: "sertraline 100 MG Oral Tablet",
        dosage: "Take 1 tablet by mouth once daily",
    },
    MedicationKind {
        code: "313782",
        display: "Acetaminophen 325 MG Oral Tablet",
        dosage: "Take 2 tablets by mouth every 6 hours as needed for pain",
    },
    MedicationKind {
        code: "313782",
        display: "Acetaminophen 325 MG Oral Tablet",
        dosage: "Take 2 tablets by mouth every 6 hours as needed for fever",
    },
    MedicationKind {
        code: "308182",
        display: "Amoxicillin 250 MG Oral Capsule",
        dosage: "Take 2 capsules by mouth three times daily for 10 days",
    },
    MedicationKind {
        code: "310965",
        display: "Ibuprofen 200 MG Oral Tablet",
        dosage: "Take 2 tablets by mouth every 8 hours as needed for pain",
    },
];

/// An allergy: SNOMED substance code, display, category, criticality and a
/// typical reaction (SNOMED).
struct AllergyKind {
    code: &'static str,
    display: &'static str,
    category: &'static str,
    criticality: &'static str,
    reaction: (&'static str, &'static str),
}

const ALLERGY_KINDS: [AllergyKind; 6] = [
    AllergyKind {
        code: "91936005",
        display: "Allergy to penicillin",
        category: "medication",
        criticality: "high",
        reaction: ("271807003", "Eruption of skin"),
    },
    AllergyKind {
        code: "91935009",
        display: "Allergy to peanuts",
        category: "food",
        criticality: "high",
        reaction: ("39579001", "Anaphylaxis"),
    },
    AllergyKind {
        code: "300913006",
        display: "Shellfish allergy",
        category: "food",
        criticality: "low",
        reaction: ("247472004", "Wheal"),
    },
    AllergyKind {
        code: "418689008",
        display: "Allergy to grass pollen",
        category: "environment",
        criticality: "low",
        reaction: ("21719001", "Allergic rhinitis"),
    },
    AllergyKind {
        code: "232347008",
        display: "Dander (animal) allergy",
        category: "environment",
        criticality: "low",
        reaction: ("49727002", "Cough"),
    },
    AllergyKind {
        code: "300916003",
        display: "Latex allergy",
        category: "environment",
        criticality: "high",
        reaction: ("271807003", "Eruption of skin"),
    },
];

/// Encounter classes: v3 ActCode code and display, and the SNOMED
/// encounter type.
const ENCOUNTER_CLASSES: [(&str, &str, &str, &str); 3] = [
    (
        "AMB",
        "ambulatory",
        "185349003",
        "Encounter for check up (procedure)",
    ),
    (
        "EMER",
        "emergency",
        "50849002",
        "Emergency room admission (procedure)",
    ),
    (
        "IMP",
        "inpatient encounter",
        "32485007",
        "Hospital admission (procedure)",
    ),
];

const GIVEN_FEMALE: [&str; 32] = [
    "Olivia", "Emma", "Ava", "Sophia", "Mia", "Isabella", "Grace", "Chloe", "Zoe", "Nora",
    "Hannah", "Leah", "Aisha", "Mei", "Yuki", "Fatima", "Elena", "Lucia", "Ingrid", "Sofia",
    "Amara", "Keiko", "Rosa", "Clara", "Maya", "Naledi", "Anika", "Freya", "Layla", "Ruth",
    "Esther", "Ines",
];
const GIVEN_MALE: [&str; 32] = [
    "Liam", "Noah", "Oliver", "Elijah", "James", "Lucas", "Mateo", "Ethan", "Omar", "Kenji",
    "Ravi", "Diego", "Samuel", "Tomas", "Felix", "Arjun", "Kwame", "Luca", "Henrik", "Jonah",
    "Malik", "Theo", "Wei", "Andre", "Tariq", "Mikael", "Joaquin", "Emeka", "Paul", "Walter",
    "Ibrahim", "Sean",
];
const GIVEN_NEUTRAL: [&str; 8] = [
    "Alex", "Sam", "Robin", "Jordan", "Kai", "Noor", "Rene", "Sasha",
];
const FAMILY: [&str; 48] = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Garcia",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Kim",
    "Lee",
    "Chen",
    "Wang",
    "Singh",
    "Kumar",
    "Ali",
    "Hassan",
    "Cohen",
    "Murphy",
    "Kowalski",
    "Novak",
    "Rossi",
    "Silva",
    "Santos",
    "Mensah",
    "Adeyemi",
    "Tanaka",
    "Sato",
    "Larsen",
    "Jensen",
    "Dubois",
    "Moreau",
    "Fischer",
    "Weber",
    "Ivanova",
    "Petrov",
    "Nakamura",
    "Alvarez",
    "Ortiz",
    "Reyes",
    "Brooks",
    "Foster",
    "Hughes",
    "Ward",
    "Price",
    "Bennett",
    "Wood",
    "Barnes",
    "Mwangi",
];

// ---------------------------------------------------------------------------
// Records

/// A patient's demographics.
#[derive(Debug, Clone)]
pub(crate) struct SynthPatient {
    pub(crate) number: u32,
    family: &'static str,
    given: &'static [&'static str],
    gender: &'static str,
    /// Days since 1970-01-01.
    birth_day: i64,
}

impl SynthPatient {
    /// `pat-{n}`.
    pub(crate) fn id(&self) -> String {
        format!("pat-{}", self.number)
    }

    /// Given names then family name.
    pub(crate) fn display_name(&self) -> String {
        data::display_name(self.given, self.family)
    }
}

/// An encounter.
#[derive(Debug, Clone)]
pub(crate) struct SynthEncounter {
    patient: u32,
    seq: u32,
    class: u8,
    start: i64,
    minutes: u32,
    practitioner: u8,
}

/// An observation; `value2` is the diastolic pressure of a blood pressure
/// panel (whose `value` is the systolic one).
#[derive(Debug, Clone)]
pub(crate) struct SynthObservation {
    patient: u32,
    seq: u32,
    kind: u8,
    effective: i64,
    encounter: Option<u32>,
    practitioner: Option<u8>,
    value: f64,
    value2: f64,
    amended: bool,
}

/// A condition; active while it has no abatement.
#[derive(Debug, Clone)]
pub(crate) struct SynthCondition {
    patient: u32,
    seq: u32,
    kind: u8,
    onset: i64,
    recorded_day: i64,
    abatement: Option<i64>,
    encounter: Option<u32>,
}

/// A medication request.
#[derive(Debug, Clone)]
pub(crate) struct SynthMedication {
    patient: u32,
    seq: u32,
    kind: u8,
    authored: i64,
    active: bool,
    practitioner: u8,
    reason: Option<u32>,
    encounter: Option<u32>,
}

/// An allergy or intolerance.
#[derive(Debug, Clone)]
pub(crate) struct SynthAllergy {
    patient: u32,
    seq: u32,
    kind: u8,
    recorded: i64,
    active: bool,
}

/// One generated resource, rendered on demand.
#[derive(Debug, Clone)]
pub(crate) enum Synth {
    Patient(SynthPatient),
    /// Practitioner `prac-{n}`.
    Practitioner(u8),
    Encounter(SynthEncounter),
    Observation(SynthObservation),
    Condition(SynthCondition),
    MedicationRequest(SynthMedication),
    AllergyIntolerance(SynthAllergy),
}

fn patient_ref(n: u32) -> String {
    format!("Patient/pat-{n}")
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn quantity(value: f64, kind: &ObsKind) -> Value {
    json!({
        "value": value,
        "unit": kind.unit,
        "system": UCUM,
        "code": kind.ucum
    })
}

fn concept(system: &str, code: &str, display: &str) -> Value {
    json!({
        "coding": [{ "system": system, "code": code, "display": display }],
        "text": display
    })
}

fn status_concept(system: &str, code: &str) -> Value {
    json!({ "coding": [{ "system": system, "code": code }] })
}

impl Synth {
    /// The resource type.
    pub(crate) fn resource_type(&self) -> &'static str {
        match self {
            Synth::Patient(_) => "Patient",
            Synth::Practitioner(_) => "Practitioner",
            Synth::Encounter(_) => "Encounter",
            Synth::Observation(_) => "Observation",
            Synth::Condition(_) => "Condition",
            Synth::MedicationRequest(_) => "MedicationRequest",
            Synth::AllergyIntolerance(_) => "AllergyIntolerance",
        }
    }

    /// The resource id.
    pub(crate) fn id(&self) -> String {
        match self {
            Synth::Patient(p) => p.id(),
            Synth::Practitioner(n) => format!("prac-{n}"),
            Synth::Encounter(e) => format!("enc-{}-{}", e.patient, e.seq),
            Synth::Observation(o) => format!("obs-{}-{}", o.patient, o.seq),
            Synth::Condition(c) => format!("cond-{}-{}", c.patient, c.seq),
            Synth::MedicationRequest(m) => format!("med-{}-{}", m.patient, m.seq),
            Synth::AllergyIntolerance(a) => format!("alg-{}-{}", a.patient, a.seq),
        }
    }

    /// The FHIR JSON, with `meta` as given.
    pub(crate) fn render(&self, meta: Value) -> Value {
        match self {
            Synth::Patient(p) => render_patient(p, meta),
            Synth::Practitioner(n) => data::practitioner_json(usize::from(*n), meta),
            Synth::Encounter(e) => render_encounter(e, meta),
            Synth::Observation(o) => render_observation(o, meta),
            Synth::Condition(c) => render_condition(c, meta),
            Synth::MedicationRequest(m) => render_medication(m, meta),
            Synth::AllergyIntolerance(a) => render_allergy(a, meta),
        }
    }

    /// The JSON text, with `meta` (JSON text) as given: the same JSON as
    /// [`Synth::render`], written directly where that is worth it.
    pub(crate) fn render_text(&self, meta: &str) -> String {
        match self {
            Synth::Observation(o) => render_observation_text(o, meta),
            other => match serde_json::from_str::<Value>(meta) {
                Ok(m) => other.render(m).to_string(),
                Err(_) => other.render(Value::Null).to_string(),
            },
        }
    }

    /// The search index, identical to what [`crate::fhir::index::extract`]
    /// computes from [`Synth::render`].
    pub(crate) fn index(&self) -> Index {
        let mut ix = Index::default();
        match self {
            Synth::Patient(p) => {
                ix.push_name(Some(p.family), p.given, Some(&p.display_name()));
                ix.push("gender", Key::token(None, p.gender));
                ix.push(
                    "birthdate",
                    Key::Date(Interval::at(p.birth_day * DAY_MS, DAY_MS)),
                );
                ix.push(
                    "identifier",
                    Key::Token {
                        system: Some(MRN_SYSTEM.into()),
                        code: format!("MRN-{:04}", p.number).into(),
                    },
                );
                ix.patient = Some(p.id());
            }
            Synth::Practitioner(n) => {
                let pr = &data::PRACTITIONERS[usize::from(*n).max(1) - 1];
                ix.push_name(
                    Some(pr.family),
                    pr.given,
                    Some(&data::practitioner_display(usize::from(*n))),
                );
                ix.push("identifier", Key::token(Some(NPI_SYSTEM), pr.npi));
            }
            Synth::Encounter(e) => {
                let (class, _, ty, _) = ENCOUNTER_CLASSES[usize::from(e.class)];
                ix.push("subject", Key::Reference(patient_ref(e.patient)));
                ix.push("date", Key::Date(Interval::at(e.start, 1000)));
                ix.push("status", Key::token(None, "finished"));
                ix.push("class", Key::token(Some(ACT_CODE), class));
                ix.push("type", Key::token(Some(SNOMED), ty));
                ix.push(
                    "participant",
                    Key::Reference(format!("Practitioner/prac-{}", e.practitioner)),
                );
                ix.patient = Some(format!("pat-{}", e.patient));
            }
            Synth::Observation(o) => {
                let kind = &OBS_KINDS[usize::from(o.kind)];
                ix.push("subject", Key::Reference(patient_ref(o.patient)));
                if let Some(e) = o.encounter {
                    ix.push(
                        "encounter",
                        Key::Reference(format!("Encounter/enc-{}-{e}", o.patient)),
                    );
                }
                ix.push(
                    "category",
                    Key::token(Some(OBSERVATION_CATEGORY), category_code(kind)),
                );
                ix.push("code", Key::token(Some(LOINC), kind.code));
                ix.push("date", Key::Date(Interval::at(o.effective, 1000)));
                ix.push("status", Key::token(None, obs_status(o)));
                ix.patient = Some(format!("pat-{}", o.patient));
            }
            Synth::Condition(c) => {
                let kind = &CONDITION_KINDS[usize::from(c.kind)];
                ix.push("subject", Key::Reference(patient_ref(c.patient)));
                if let Some(e) = c.encounter {
                    ix.push(
                        "encounter",
                        Key::Reference(format!("Encounter/enc-{}-{e}", c.patient)),
                    );
                }
                ix.push("code", Key::token(Some(SNOMED), kind.code));
                ix.push(
                    "category",
                    Key::token(Some(CONDITION_CATEGORY), condition_category(kind)),
                );
                ix.push(
                    "clinical-status",
                    Key::token(Some(CONDITION_CLINICAL), condition_status(c)),
                );
                ix.push(
                    "verification-status",
                    Key::token(Some(CONDITION_VERIFICATION), "confirmed"),
                );
                let onset = Interval::at(c.onset, 1000);
                ix.push("onset-date", Key::Date(onset));
                ix.push(
                    "recorded-date",
                    Key::Date(Interval::at(c.recorded_day * DAY_MS, DAY_MS)),
                );
                ix.push("date", Key::Date(onset));
                ix.patient = Some(format!("pat-{}", c.patient));
            }
            Synth::MedicationRequest(m) => {
                let kind = &MEDICATION_KINDS[usize::from(m.kind)];
                ix.push("subject", Key::Reference(patient_ref(m.patient)));
                if let Some(e) = m.encounter {
                    ix.push(
                        "encounter",
                        Key::Reference(format!("Encounter/enc-{}-{e}", m.patient)),
                    );
                }
                ix.push("code", Key::token(Some(RXNORM), kind.code));
                ix.push(
                    "status",
                    Key::token(None, if m.active { "active" } else { "completed" }),
                );
                ix.push("intent", Key::token(None, "order"));
                ix.push("date", Key::Date(Interval::at(m.authored, 1000)));
                ix.push(
                    "requester",
                    Key::Reference(format!("Practitioner/prac-{}", m.practitioner)),
                );
                ix.patient = Some(format!("pat-{}", m.patient));
            }
            Synth::AllergyIntolerance(a) => {
                let kind = &ALLERGY_KINDS[usize::from(a.kind)];
                ix.push("patient", Key::Reference(patient_ref(a.patient)));
                ix.push("code", Key::token(Some(SNOMED), kind.code));
                ix.push(
                    "clinical-status",
                    Key::token(Some(ALLERGY_CLINICAL), allergy_status(a)),
                );
                ix.push(
                    "verification-status",
                    Key::token(Some(ALLERGY_VERIFICATION), "confirmed"),
                );
                ix.push("category", Key::token(None, kind.category));
                ix.push("criticality", Key::token(None, kind.criticality));
                ix.push("date", Key::Date(Interval::at(a.recorded, 1000)));
                ix.patient = Some(format!("pat-{}", a.patient));
            }
        }
        ix
    }
}

fn category_code(kind: &ObsKind) -> &'static str {
    if kind.laboratory {
        "laboratory"
    } else {
        "vital-signs"
    }
}

fn obs_status(o: &SynthObservation) -> &'static str {
    if o.amended { "amended" } else { "final" }
}

fn condition_category(kind: &ConditionKind) -> &'static str {
    if kind.chronic {
        "problem-list-item"
    } else {
        "encounter-diagnosis"
    }
}

fn condition_status(c: &SynthCondition) -> &'static str {
    if c.abatement.is_some() {
        "resolved"
    } else {
        "active"
    }
}

fn allergy_status(a: &SynthAllergy) -> &'static str {
    if a.active { "active" } else { "resolved" }
}

fn render_patient(p: &SynthPatient, meta: Value) -> Value {
    json!({
        "resourceType": "Patient",
        "id": p.id(),
        "meta": meta,
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
            "value": format!("MRN-{:04}", p.number)
        }],
        "active": true,
        "name": [{
            "use": "official",
            "text": p.display_name(),
            "family": p.family,
            "given": p.given
        }],
        "gender": p.gender,
        "birthDate": format_date(p.birth_day * DAY_MS)
    })
}

fn render_encounter(e: &SynthEncounter, meta: Value) -> Value {
    let (class, class_display, ty, ty_display) = ENCOUNTER_CLASSES[usize::from(e.class)];
    json!({
        "resourceType": "Encounter",
        "id": format!("enc-{}-{}", e.patient, e.seq),
        "meta": meta,
        "status": "finished",
        "class": { "system": ACT_CODE, "code": class, "display": class_display },
        "type": [concept(SNOMED, ty, ty_display)],
        "subject": { "reference": patient_ref(e.patient) },
        "participant": [{
            "individual": {
                "reference": format!("Practitioner/prac-{}", e.practitioner),
                "display": data::practitioner_display(usize::from(e.practitioner))
            }
        }],
        "period": {
            "start": format_date_time(e.start),
            "end": format_date_time(e.start + i64::from(e.minutes) * 60_000)
        }
    })
}

fn render_observation(o: &SynthObservation, meta: Value) -> Value {
    let kind = &OBS_KINDS[usize::from(o.kind)];
    let category_display = if kind.laboratory {
        "Laboratory"
    } else {
        "Vital Signs"
    };
    let mut v = json!({
        "resourceType": "Observation",
        "id": format!("obs-{}-{}", o.patient, o.seq),
        "meta": meta,
        "status": obs_status(o),
        "category": [{
            "coding": [{
                "system": OBSERVATION_CATEGORY,
                "code": category_code(kind),
                "display": category_display
            }]
        }],
        "code": concept(LOINC, kind.code, kind.display),
        "subject": { "reference": patient_ref(o.patient) },
    });
    let Some(obj) = v.as_object_mut() else {
        return v;
    };
    if let Some(e) = o.encounter {
        obj.insert(
            "encounter".into(),
            json!({ "reference": format!("Encounter/enc-{}-{e}", o.patient) }),
        );
    }
    obj.insert(
        "effectiveDateTime".into(),
        Value::String(format_date_time(o.effective)),
    );
    if let Some(p) = o.practitioner {
        obj.insert(
            "performer".into(),
            json!([{ "reference": format!("Practitioner/prac-{p}") }]),
        );
    }
    if o.kind == BLOOD_PRESSURE {
        let component = |(code, display): (&str, &str), value: f64| {
            json!({
                "code": concept(LOINC, code, display),
                "valueQuantity": quantity(value, kind)
            })
        };
        obj.insert(
            "component".into(),
            json!([component(SYSTOLIC, o.value), component(DIASTOLIC, o.value2)]),
        );
    } else {
        obj.insert("valueQuantity".into(), quantity(o.value, kind));
    }
    if let Some((low, high)) = kind.range {
        obj.insert(
            "referenceRange".into(),
            json!([{ "low": quantity(low, kind), "high": quantity(high, kind) }]),
        );
    }
    v
}

/// Appends `s` as a JSON string.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends a decimal the way `serde_json` writes an `f64` (`72.5`, `80.0`).
fn push_decimal(out: &mut String, value: f64) {
    out.push_str(&format!("{value:?}"));
}

fn push_quantity_text(out: &mut String, value: f64, kind: &ObsKind) {
    out.push_str("{\"value\":");
    push_decimal(out, value);
    out.push_str(",\"unit\":");
    push_json_str(out, kind.unit);
    out.push_str(",\"system\":\"");
    out.push_str(UCUM);
    out.push_str("\",\"code\":");
    push_json_str(out, kind.ucum);
    out.push('}');
}

fn push_concept_text(out: &mut String, system: &str, code: &str, display: &str) {
    out.push_str("{\"coding\":[{\"system\":");
    push_json_str(out, system);
    out.push_str(",\"code\":");
    push_json_str(out, code);
    out.push_str(",\"display\":");
    push_json_str(out, display);
    out.push_str("}],\"text\":");
    push_json_str(out, display);
    out.push('}');
}

/// [`render_observation`] written straight to JSON text. Observations are
/// most of the data and most of every page; building a `Value` and
/// serialising it costs ten times more in a debug build. A unit test checks
/// that both give the same JSON.
fn render_observation_text(o: &SynthObservation, meta: &str) -> String {
    let kind = &OBS_KINDS[usize::from(o.kind)];
    let mut out = String::with_capacity(900);
    out.push_str("{\"resourceType\":\"Observation\",\"id\":\"");
    out.push_str(&format!("obs-{}-{}", o.patient, o.seq));
    out.push_str("\",\"meta\":");
    out.push_str(meta);
    out.push_str(",\"status\":\"");
    out.push_str(obs_status(o));
    out.push_str("\",\"category\":[{\"coding\":[{\"system\":\"");
    out.push_str(OBSERVATION_CATEGORY);
    out.push_str("\",\"code\":\"");
    out.push_str(category_code(kind));
    out.push_str("\",\"display\":\"");
    out.push_str(if kind.laboratory {
        "Laboratory"
    } else {
        "Vital Signs"
    });
    out.push_str("\"}]}],\"code\":");
    push_concept_text(&mut out, LOINC, kind.code, kind.display);
    out.push_str(&format!(
        ",\"subject\":{{\"reference\":\"Patient/pat-{}\"}}",
        o.patient
    ));
    if let Some(e) = o.encounter {
        out.push_str(&format!(
            ",\"encounter\":{{\"reference\":\"Encounter/enc-{}-{e}\"}}",
            o.patient
        ));
    }
    out.push_str(",\"effectiveDateTime\":\"");
    out.push_str(&format_date_time(o.effective));
    out.push('"');
    if let Some(p) = o.practitioner {
        out.push_str(&format!(
            ",\"performer\":[{{\"reference\":\"Practitioner/prac-{p}\"}}]"
        ));
    }
    if o.kind == BLOOD_PRESSURE {
        out.push_str(",\"component\":[");
        for (i, ((code, display), value)) in [(SYSTOLIC, o.value), (DIASTOLIC, o.value2)]
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"code\":");
            push_concept_text(&mut out, LOINC, code, display);
            out.push_str(",\"valueQuantity\":");
            push_quantity_text(&mut out, value, kind);
            out.push('}');
        }
        out.push(']');
    } else {
        out.push_str(",\"valueQuantity\":");
        push_quantity_text(&mut out, o.value, kind);
    }
    if let Some((low, high)) = kind.range {
        out.push_str(",\"referenceRange\":[{\"low\":");
        push_quantity_text(&mut out, low, kind);
        out.push_str(",\"high\":");
        push_quantity_text(&mut out, high, kind);
        out.push_str("}]");
    }
    out.push('}');
    out
}

fn render_condition(c: &SynthCondition, meta: Value) -> Value {
    let kind = &CONDITION_KINDS[usize::from(c.kind)];
    let category_display = if kind.chronic {
        "Problem List Item"
    } else {
        "Encounter Diagnosis"
    };
    let mut v = json!({
        "resourceType": "Condition",
        "id": format!("cond-{}-{}", c.patient, c.seq),
        "meta": meta,
        "clinicalStatus": status_concept(CONDITION_CLINICAL, condition_status(c)),
        "verificationStatus": status_concept(CONDITION_VERIFICATION, "confirmed"),
        "category": [{
            "coding": [{
                "system": CONDITION_CATEGORY,
                "code": condition_category(kind),
                "display": category_display
            }]
        }],
        "code": concept(SNOMED, kind.code, kind.display),
        "subject": { "reference": patient_ref(c.patient) },
    });
    let Some(obj) = v.as_object_mut() else {
        return v;
    };
    if let Some(e) = c.encounter {
        obj.insert(
            "encounter".into(),
            json!({ "reference": format!("Encounter/enc-{}-{e}", c.patient) }),
        );
    }
    obj.insert(
        "onsetDateTime".into(),
        Value::String(format_date_time(c.onset)),
    );
    if let Some(a) = c.abatement {
        obj.insert(
            "abatementDateTime".into(),
            Value::String(format_date_time(a)),
        );
    }
    obj.insert(
        "recordedDate".into(),
        Value::String(format_date(c.recorded_day * DAY_MS)),
    );
    v
}

fn render_medication(m: &SynthMedication, meta: Value) -> Value {
    let kind = &MEDICATION_KINDS[usize::from(m.kind)];
    let mut v = json!({
        "resourceType": "MedicationRequest",
        "id": format!("med-{}-{}", m.patient, m.seq),
        "meta": meta,
        "status": if m.active { "active" } else { "completed" },
        "intent": "order",
        "medicationCodeableConcept": concept(RXNORM, kind.code, kind.display),
        "subject": { "reference": patient_ref(m.patient) },
    });
    let Some(obj) = v.as_object_mut() else {
        return v;
    };
    if let Some(e) = m.encounter {
        obj.insert(
            "encounter".into(),
            json!({ "reference": format!("Encounter/enc-{}-{e}", m.patient) }),
        );
    }
    obj.insert(
        "authoredOn".into(),
        Value::String(format_date_time(m.authored)),
    );
    obj.insert(
        "requester".into(),
        json!({
            "reference": format!("Practitioner/prac-{}", m.practitioner),
            "display": data::practitioner_display(usize::from(m.practitioner))
        }),
    );
    if let Some(r) = m.reason {
        obj.insert(
            "reasonReference".into(),
            json!([{ "reference": format!("Condition/cond-{}-{r}", m.patient) }]),
        );
    }
    obj.insert("dosageInstruction".into(), json!([{ "text": kind.dosage }]));
    v
}

fn render_allergy(a: &SynthAllergy, meta: Value) -> Value {
    let kind = &ALLERGY_KINDS[usize::from(a.kind)];
    json!({
        "resourceType": "AllergyIntolerance",
        "id": format!("alg-{}-{}", a.patient, a.seq),
        "meta": meta,
        "clinicalStatus": status_concept(ALLERGY_CLINICAL, allergy_status(a)),
        "verificationStatus": status_concept(ALLERGY_VERIFICATION, "confirmed"),
        "type": "allergy",
        "category": [kind.category],
        "criticality": kind.criticality,
        "code": concept(SNOMED, kind.code, kind.display),
        "patient": { "reference": patient_ref(a.patient) },
        "recordedDate": format_date_time(a.recorded),
        "reaction": [{
            "manifestation": [concept(SNOMED, kind.reaction.0, kind.reaction.1)]
        }]
    })
}

// ---------------------------------------------------------------------------
// Generation

/// The demographics of patient `n` (1-based): the named patients for 1–5,
/// seeded ones after that.
pub(crate) fn demographics(seed: u64, n: u32) -> SynthPatient {
    if let Some(p) = NAMED_PATIENTS.get((n as usize).wrapping_sub(1)) {
        let (y, m, d) = p.birth_date;
        return SynthPatient {
            number: n,
            family: p.family,
            given: p.given,
            gender: p.gender,
            birth_day: days_from_civil(y, m, d),
        };
    }
    let mut rng = SplitMix64::stream(seed ^ DEMOGRAPHICS_SALT, u64::from(n));
    let roll = rng.below(100);
    let (gender, names): (&'static str, &'static [&'static str]) = match roll {
        0..=48 => ("female", &GIVEN_FEMALE),
        49..=97 => ("male", &GIVEN_MALE),
        98 => ("other", &GIVEN_NEUTRAL),
        _ => ("unknown", &GIVEN_NEUTRAL),
    };
    let given_index = rng.below(names.len() as u64) as usize;
    let family = FAMILY[rng.below(FAMILY.len() as u64) as usize];
    let birth_day = rng.range(days_from_civil(1935, 1, 1), days_from_civil(2021, 12, 31));
    SynthPatient {
        number: n,
        family,
        given: std::slice::from_ref(&names[given_index]),
        gender,
        birth_day,
    }
}

/// Per-patient physiology that the readings scatter around.
struct Baseline {
    heart_rate: f64,
    systolic: f64,
    diastolic: f64,
    height: f64,
    bmi: f64,
    glucose: f64,
    a1c: f64,
    creatinine: f64,
    ldl: f64,
}

fn baseline(rng: &mut SplitMix64, p: &SynthPatient, age: f64, chronic: &[u8]) -> Baseline {
    let has = |k: u8| chronic.contains(&k);
    let adult_height = match p.gender {
        "male" => rng.uniform(165.0, 192.0),
        "female" => rng.uniform(152.0, 178.0),
        _ => rng.uniform(155.0, 185.0),
    };
    let height = if age >= 18.0 {
        adult_height
    } else {
        (52.0 + 6.5 * age).min(adult_height)
    };
    let bmi = if age >= 18.0 {
        rng.uniform(19.5, 31.0) + if has(DIABETES) { 4.0 } else { 0.0 }
    } else {
        rng.uniform(14.5, 20.0)
    };
    let hypertensive = has(HYPERTENSION);
    Baseline {
        heart_rate: rng.uniform(58.0, 84.0) + if age < 12.0 { 18.0 } else { 0.0 },
        systolic: rng.uniform(104.0, 128.0) + if hypertensive { 18.0 } else { 0.0 },
        diastolic: rng.uniform(64.0, 80.0) + if hypertensive { 10.0 } else { 0.0 },
        height,
        bmi,
        glucose: if has(DIABETES) {
            rng.uniform(135.0, 190.0)
        } else {
            rng.uniform(76.0, 99.0)
        },
        a1c: if has(DIABETES) {
            rng.uniform(6.9, 9.2)
        } else {
            rng.uniform(4.8, 5.6)
        },
        creatinine: rng.uniform(0.65, 1.1) + if age > 65.0 { 0.2 } else { 0.0 },
        ldl: if has(HYPERLIPIDEMIA) {
            rng.uniform(145.0, 195.0)
        } else {
            rng.uniform(70.0, 135.0)
        },
    }
}

/// Draws one reading of `kind`; returns `(value, value2)`.
fn reading(rng: &mut SplitMix64, b: &Baseline, kind: u8, fever: bool) -> (f64, f64) {
    let weight = b.bmi * (b.height / 100.0) * (b.height / 100.0);
    match kind {
        HEART_RATE => (
            round1(rng.around(b.heart_rate + if fever { 12.0 } else { 0.0 }, 9.0)),
            0.0,
        ),
        BLOOD_PRESSURE => (
            round1(rng.around(b.systolic, 10.0)),
            round1(rng.around(b.diastolic, 7.0)),
        ),
        TEMPERATURE => (
            round1(if fever {
                rng.uniform(38.0, 39.4)
            } else {
                rng.around(36.8, 0.5)
            }),
            0.0,
        ),
        WEIGHT => (round1(rng.around(weight, 2.0)), 0.0),
        HEIGHT => (round1(rng.around(b.height, 0.4)), 0.0),
        BMI => (round1(rng.around(b.bmi, 0.6)), 0.0),
        6 => (round1(rng.around(b.glucose, 14.0)), 0.0),
        7 => (round1(rng.around(b.a1c, 0.4)), 0.0),
        8 => (round2(rng.around(b.creatinine, 0.12)), 0.0),
        9 => (round1(rng.around(4.3, 0.6)), 0.0),
        _ => (round1(rng.around(b.ldl, 15.0)), 0.0),
    }
}

/// The records generated for one patient, in per-type order.
#[derive(Default)]
pub(crate) struct PatientRecord {
    pub(crate) encounters: Vec<Synth>,
    pub(crate) observations: Vec<Synth>,
    pub(crate) conditions: Vec<Synth>,
    pub(crate) medications: Vec<Synth>,
    pub(crate) allergies: Vec<Synth>,
}

/// A time of day between 08:00 and 17:59, in milliseconds.
fn office_hours(rng: &mut SplitMix64) -> i64 {
    (rng.range(8 * 60, 18 * 60 - 1)) * 60_000
}

/// Generates the clinical record of patient `p`. `as_of_day` is the day the
/// history ends (exclusive).
pub(crate) fn patient_record(seed: u64, p: &SynthPatient, as_of_day: i64) -> PatientRecord {
    let n = p.number;
    let rich = n == 1;
    let mut rng = SplitMix64::stream(seed, u64::from(n));
    let first_day = as_of_day - HISTORY_DAYS;
    let last_day = as_of_day - 1;
    let age = ((as_of_day - p.birth_day) as f64 / 365.25).max(0.0);
    let random_moment = |rng: &mut SplitMix64| -> i64 {
        rng.range(first_day, last_day) * DAY_MS + office_hours(rng)
    };

    // Chronic conditions first: they shape the readings.
    let age_factor = (age / 80.0).min(1.0);
    let mut chronic: Vec<u8> = Vec::new();
    let chances = [
        (DIABETES, 0.03 + 0.25 * age_factor),
        (HYPERTENSION, 0.04 + 0.35 * age_factor),
        (HYPERLIPIDEMIA, 0.03 + 0.25 * age_factor),
        (ASTHMA, 0.09),
        (DEPRESSION, if age >= 14.0 { 0.08 } else { 0.0 }),
        (OSTEOARTHRITIS, if age >= 45.0 { 0.15 } else { 0.0 }),
    ];
    for (kind, chance) in chances {
        if rng.chance(chance) {
            chronic.push(kind);
        }
    }
    if rich && !chronic.contains(&ASTHMA) {
        chronic.push(ASTHMA);
    }
    let b = baseline(&mut rng, p, age, &chronic);

    // Encounters, oldest first.
    let encounter_count = if rich { 3 } else { 1 + rng.below(3) as u32 };
    let mut encounters: Vec<SynthEncounter> = (0..encounter_count)
        .map(|_| {
            let class = match rng.below(100) {
                0..=79 => 0u8,
                80..=91 => 1,
                _ => 2,
            };
            let minutes = match class {
                0 => rng.range(20, 60),
                1 => rng.range(120, 360),
                _ => rng.range(1, 5) * 24 * 60,
            } as u32;
            SynthEncounter {
                patient: n,
                seq: 0,
                class,
                start: random_moment(&mut rng),
                minutes,
                practitioner: 1 + rng.below(10) as u8,
            }
        })
        .collect();
    encounters.sort_by_key(|e| e.start);
    for (i, e) in encounters.iter_mut().enumerate() {
        e.seq = i as u32 + 1;
    }

    // Acute episodes hang off encounters; they get an encounter diagnosis.
    let acute_count = if rich { 2 } else { rng.below(3) as usize };
    let mut conditions: Vec<SynthCondition> = Vec::new();
    let mut fevers: Vec<u32> = Vec::new();
    for i in 0..acute_count {
        let Some(e) = rng.pick(&encounters) else {
            break;
        };
        let (seq, start) = (e.seq, e.start);
        let kind = if rich {
            ACUTE_CONDITIONS[i % 2]
        } else {
            *rng.pick(&ACUTE_CONDITIONS).unwrap_or(&ACUTE_CONDITIONS[0])
        };
        let resolved = start + rng.range(7, 21) * DAY_MS;
        let abatement = (resolved < last_day * DAY_MS).then_some(resolved);
        if kind != ACUTE_CONDITIONS[4] {
            fevers.push(seq);
        }
        conditions.push(SynthCondition {
            patient: n,
            seq: 0,
            kind,
            onset: start,
            recorded_day: start.div_euclid(DAY_MS),
            abatement,
            encounter: Some(seq),
        });
    }
    for &kind in &chronic {
        let onset_day = rng.range(first_day, last_day);
        conditions.push(SynthCondition {
            patient: n,
            seq: 0,
            kind,
            onset: onset_day * DAY_MS + 9 * 3_600_000,
            recorded_day: (onset_day + rng.range(0, 14)).min(last_day),
            abatement: None,
            encounter: None,
        });
    }
    conditions.sort_by_key(|c| (c.onset, c.kind));
    for (i, c) in conditions.iter_mut().enumerate() {
        c.seq = i as u32 + 1;
    }

    // Medication requests for conditions that usually get one.
    let mut medications: Vec<SynthMedication> = Vec::new();
    for c in &conditions {
        let kind = &CONDITION_KINDS[usize::from(c.kind)];
        let Some(med) = kind.medication else {
            continue;
        };
        let authored = if kind.chronic {
            ((c.recorded_day + rng.range(0, 7)).min(last_day)) * DAY_MS + office_hours(&mut rng)
        } else {
            c.onset + 30 * 60_000
        };
        let practitioner = c
            .encounter
            .and_then(|e| encounters.iter().find(|x| x.seq == e))
            .map_or_else(|| 1 + rng.below(10) as u8, |e| e.practitioner);
        medications.push(SynthMedication {
            patient: n,
            seq: 0,
            kind: med,
            authored,
            active: kind.chronic,
            practitioner,
            reason: Some(c.seq),
            encounter: c.encounter,
        });
    }
    medications.sort_by_key(|m| m.authored);
    for (i, m) in medications.iter_mut().enumerate() {
        m.seq = i as u32 + 1;
    }

    // Observations: a vital-signs set (and often labs) at every encounter,
    // plus extra readings between visits.
    let mut observations: Vec<SynthObservation> = Vec::new();
    let mut add =
        |rng: &mut SplitMix64, kind: u8, at: i64, encounter: Option<(u32, u8)>, fever: bool| {
            let (value, value2) = reading(rng, &b, kind, fever);
            observations.push(SynthObservation {
                patient: n,
                seq: 0,
                kind,
                effective: at,
                encounter: encounter.map(|e| e.0),
                practitioner: encounter.map(|e| e.1),
                value,
                value2,
                amended: rng.chance(0.03),
            });
        };
    for e in &encounters {
        let fever = fevers.contains(&e.seq);
        let at = e.start + 10 * 60_000;
        for kind in VITALS {
            add(&mut rng, kind, at, Some((e.seq, e.practitioner)), fever);
        }
        if rich || rng.chance(0.6) {
            let at = e.start + 45 * 60_000;
            for kind in LABS {
                add(&mut rng, kind, at, Some((e.seq, e.practitioner)), false);
            }
        }
    }
    if rich {
        // Roughly every 45 days: a full vital-signs set; every quarter: labs.
        for i in 0..21 {
            let day = first_day + 10 + i * 51 + rng.range(0, 20);
            let at = day.min(last_day) * DAY_MS + office_hours(&mut rng);
            for kind in VITALS {
                add(&mut rng, kind, at, None, false);
            }
        }
        for i in 0..9 {
            let day = first_day + 30 + i * 118 + rng.range(0, 30);
            let at = day.min(last_day) * DAY_MS + office_hours(&mut rng);
            for kind in LABS {
                add(&mut rng, kind, at, None, false);
            }
        }
    } else {
        for _ in 0..rng.range(2, 6) {
            let kind = *rng
                .pick(&[HEART_RATE, BLOOD_PRESSURE, WEIGHT, TEMPERATURE])
                .unwrap_or(&HEART_RATE);
            let at = random_moment(&mut rng);
            add(&mut rng, kind, at, None, false);
        }
    }
    observations.sort_by_key(|o| (o.effective, o.kind));
    for (i, o) in observations.iter_mut().enumerate() {
        o.seq = i as u32 + 1;
    }

    // Allergies.
    let allergy_count = if rich {
        1
    } else {
        match rng.below(100) {
            0..=64 => 0,
            65..=89 => 1,
            _ => 2,
        }
    };
    let mut allergies: Vec<SynthAllergy> = Vec::new();
    for i in 0..allergy_count {
        let kind = if rich {
            0
        } else {
            rng.below(ALLERGY_KINDS.len() as u64) as u8
        };
        if allergies.iter().any(|a| a.kind == kind) {
            continue;
        }
        allergies.push(SynthAllergy {
            patient: n,
            seq: i + 1,
            kind,
            recorded: random_moment(&mut rng),
            active: rich || rng.chance(0.85),
        });
    }

    PatientRecord {
        encounters: encounters.into_iter().map(Synth::Encounter).collect(),
        observations: observations.into_iter().map(Synth::Observation).collect(),
        conditions: conditions.into_iter().map(Synth::Condition).collect(),
        medications: medications
            .into_iter()
            .map(Synth::MedicationRequest)
            .collect(),
        allergies: allergies
            .into_iter()
            .map(Synth::AllergyIntolerance)
            .collect(),
    }
}

/// The practitioners, `prac-1` … `prac-10`.
pub(crate) fn practitioners() -> impl Iterator<Item = Synth> {
    (1..=data::PRACTITIONERS.len() as u8).map(Synth::Practitioner)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::fhir::index::extract;

    const AS_OF: i64 = 20_000; // 2024-10-04

    fn all(seed: u64, count: u32) -> Vec<Synth> {
        let mut out: Vec<Synth> = practitioners().collect();
        for n in 1..=count {
            let p = demographics(seed, n);
            let r = patient_record(seed, &p, AS_OF);
            out.push(Synth::Patient(p));
            out.extend(r.encounters);
            out.extend(r.observations);
            out.extend(r.conditions);
            out.extend(r.medications);
            out.extend(r.allergies);
        }
        out
    }

    fn sorted(index: &Index) -> Vec<String> {
        let mut v: Vec<String> = index.keys.iter().map(|k| format!("{k:?}")).collect();
        v.sort();
        v
    }

    #[test]
    fn direct_index_matches_extraction_from_json() {
        for s in all(7, 12) {
            let json = s.render(json!({"versionId": "1"}));
            let extracted = extract(s.resource_type(), &json, "http://x/fhir");
            assert_eq!(sorted(&s.index()), sorted(&extracted), "{json}");
            assert_eq!(s.index().patient, extracted.patient, "{json}");
            assert_eq!(json["id"], s.id());
            assert_eq!(json["resourceType"], s.resource_type());
        }
    }

    #[test]
    fn text_rendering_matches_value_rendering() {
        let meta = json!({"versionId": "1", "lastUpdated": "2024-01-01T00:00:00.000Z"});
        for s in all(21, 10) {
            let text = s.render_text(&meta.to_string());
            let parsed: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(parsed, s.render(meta.clone()), "{text}");
        }
        let mut out = String::new();
        push_json_str(&mut out, "a\"b\\c\n");
        assert_eq!(out, r#""a\"b\\c\u000a""#);
        let mut out = String::new();
        push_decimal(&mut out, 80.0);
        push_decimal(&mut out, 0.95);
        assert_eq!(out, "80.00.95");
    }

    #[test]
    fn named_patients_keep_their_identity() {
        let p = demographics(99, 1);
        assert_eq!(p.display_name(), "Amelia Rose Rivera");
        let json = Synth::Patient(p).render(json!({}));
        assert_eq!(json["birthDate"], "1987-04-12");
        assert_eq!(json["gender"], "female");
        assert_eq!(demographics(1, 2).display_name(), "Daniel Okafor");
    }

    #[test]
    fn pat_1_is_rich() {
        let p = demographics(3, 1);
        let r = patient_record(3, &p, AS_OF);
        for kind in VITALS {
            let count = r
                .observations
                .iter()
                .filter(|o| matches!(o, Synth::Observation(o) if o.kind == kind))
                .count();
            assert!(count >= 20, "vital kind {kind}: {count}");
        }
        assert!(r.conditions.len() >= 3);
        assert_eq!(r.encounters.len(), 3);
    }

    #[test]
    fn dates_stay_in_the_window_and_values_are_decimal() {
        let mut fractional = 0;
        for s in all(11, 40) {
            let ix = s.index();
            if let Some(d) = ix.first_date("date") {
                assert!(d.start >= (AS_OF - HISTORY_DAYS) * DAY_MS, "{s:?}");
                assert!(d.end <= AS_OF * DAY_MS, "{s:?}");
            }
            if let Synth::Observation(o) = &s
                && o.value.fract() != 0.0
            {
                fractional += 1;
            }
        }
        assert!(fractional > 100);
    }

    #[test]
    fn seeds_give_stable_and_distinct_data() {
        let a: Vec<String> = all(5, 8)
            .iter()
            .map(|s| s.render(json!({})).to_string())
            .collect();
        let b: Vec<String> = all(5, 8)
            .iter()
            .map(|s| s.render(json!({})).to_string())
            .collect();
        let c: Vec<String> = all(6, 8)
            .iter()
            .map(|s| s.render(json!({})).to_string())
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
