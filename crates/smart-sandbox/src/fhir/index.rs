//! The supported resource types, their search parameters, and the search
//! index kept next to every stored resource version.
//!
//! Searching thousands of resources by walking their JSON on every request
//! would be slow in debug builds, and the synthetic resources are not even
//! stored as JSON (see [`crate::synth`]). So every version gets a small
//! [`Index`] when it is stored: the values of its search parameters, already
//! normalised (token system and code, reference as `Type/id`, dates as
//! intervals, strings lowercased). Client-written resources are indexed by
//! [`extract`] from their JSON; synthetic ones build the same index directly,
//! and a unit test checks that both paths agree.

use std::borrow::Cow;

use serde_json::Value;

use crate::time::{Interval, parse_fhir_date};

/// The resource types the sandbox serves, in `$everything` order.
pub(crate) const RESOURCE_TYPES: &[&str] = &[
    "Patient",
    "Practitioner",
    "Encounter",
    "Observation",
    "Condition",
    "MedicationRequest",
    "AllergyIntolerance",
];

/// The position of a supported type in [`RESOURCE_TYPES`].
pub(crate) fn type_index(resource_type: &str) -> Option<usize> {
    RESOURCE_TYPES.iter().position(|t| *t == resource_type)
}

/// Whether instances of the type belong to a patient compartment (through
/// `subject` or `patient`). Practitioner does not.
pub(crate) fn in_patient_compartment(resource_type: &str) -> bool {
    resource_type != "Practitioner"
}

/// Search parameter types (FHIR `SearchParamType`), as far as the sandbox
/// supports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Token,
    Date,
    Reference,
    String,
}

impl Kind {
    /// The FHIR name, for the CapabilityStatement.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Token => "token",
            Kind::Date => "date",
            Kind::Reference => "reference",
            Kind::String => "string",
        }
    }
}

/// One search parameter of one type.
#[derive(Debug)]
pub(crate) struct ParamDef {
    /// The parameter name in the query, e.g. `clinical-status`.
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    /// The [`Index`] key it searches (`patient` and `subject` share
    /// `subject`).
    pub(crate) key: &'static str,
    /// For references: the only target type accepted (`patient` →
    /// `Patient`).
    pub(crate) target: Option<&'static str>,
}

const fn p(name: &'static str, kind: Kind, key: &'static str) -> ParamDef {
    ParamDef {
        name,
        kind,
        key,
        target: None,
    }
}

const fn patient_ref(key: &'static str) -> ParamDef {
    ParamDef {
        name: "patient",
        kind: Kind::Reference,
        key,
        target: Some("Patient"),
    }
}

const PATIENT: &[ParamDef] = &[
    p("name", Kind::String, "name"),
    p("family", Kind::String, "family"),
    p("given", Kind::String, "given"),
    p("gender", Kind::Token, "gender"),
    p("birthdate", Kind::Date, "birthdate"),
    p("identifier", Kind::Token, "identifier"),
];

const PRACTITIONER: &[ParamDef] = &[
    p("name", Kind::String, "name"),
    p("family", Kind::String, "family"),
    p("given", Kind::String, "given"),
    p("identifier", Kind::Token, "identifier"),
];

const ENCOUNTER: &[ParamDef] = &[
    patient_ref("subject"),
    p("subject", Kind::Reference, "subject"),
    p("date", Kind::Date, "date"),
    p("status", Kind::Token, "status"),
    p("class", Kind::Token, "class"),
    p("type", Kind::Token, "type"),
    p("participant", Kind::Reference, "participant"),
];

const OBSERVATION: &[ParamDef] = &[
    patient_ref("subject"),
    p("subject", Kind::Reference, "subject"),
    p("encounter", Kind::Reference, "encounter"),
    p("category", Kind::Token, "category"),
    p("code", Kind::Token, "code"),
    p("date", Kind::Date, "date"),
    p("status", Kind::Token, "status"),
];

const CONDITION: &[ParamDef] = &[
    patient_ref("subject"),
    p("subject", Kind::Reference, "subject"),
    p("encounter", Kind::Reference, "encounter"),
    p("code", Kind::Token, "code"),
    p("category", Kind::Token, "category"),
    p("clinical-status", Kind::Token, "clinical-status"),
    p("verification-status", Kind::Token, "verification-status"),
    p("onset-date", Kind::Date, "onset-date"),
    p("recorded-date", Kind::Date, "recorded-date"),
    p("date", Kind::Date, "date"),
];

const MEDICATION_REQUEST: &[ParamDef] = &[
    patient_ref("subject"),
    p("subject", Kind::Reference, "subject"),
    p("encounter", Kind::Reference, "encounter"),
    p("code", Kind::Token, "code"),
    p("status", Kind::Token, "status"),
    p("intent", Kind::Token, "intent"),
    p("authoredon", Kind::Date, "date"),
    p("date", Kind::Date, "date"),
    p("requester", Kind::Reference, "requester"),
];

const ALLERGY_INTOLERANCE: &[ParamDef] = &[
    patient_ref("patient"),
    p("code", Kind::Token, "code"),
    p("clinical-status", Kind::Token, "clinical-status"),
    p("verification-status", Kind::Token, "verification-status"),
    p("category", Kind::Token, "category"),
    p("criticality", Kind::Token, "criticality"),
    p("date", Kind::Date, "date"),
];

/// The search parameters of a type (besides `_id` and `_lastUpdated`, which
/// every type has).
pub(crate) fn params(resource_type: &str) -> &'static [ParamDef] {
    match resource_type {
        "Patient" => PATIENT,
        "Practitioner" => PRACTITIONER,
        "Encounter" => ENCOUNTER,
        "Observation" => OBSERVATION,
        "Condition" => CONDITION,
        "MedicationRequest" => MEDICATION_REQUEST,
        "AllergyIntolerance" => ALLERGY_INTOLERANCE,
        _ => &[],
    }
}

/// The named parameter of a type.
pub(crate) fn param(resource_type: &str, name: &str) -> Option<&'static ParamDef> {
    params(resource_type).iter().find(|p| p.name == name)
}

/// The index key whose first value orders `_sort=date` (`birthdate` for
/// Patient); `None` for types without a date.
pub(crate) fn date_key(resource_type: &str) -> Option<&'static str> {
    match resource_type {
        "Patient" => Some("birthdate"),
        "Practitioner" => None,
        _ => Some("date"),
    }
}

/// One indexed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    /// A code with its system (`None`: the element has no system, e.g. a
    /// `code` primitive such as `status`).
    Token {
        system: Option<Cow<'static, str>>,
        code: Cow<'static, str>,
    },
    Date(Interval),
    /// A relative reference, `Type/id`.
    Reference(String),
    /// A string, lowercased.
    Text(String),
}

impl Key {
    pub(crate) fn token(system: Option<&'static str>, code: &'static str) -> Key {
        Key::Token {
            system: system.map(Cow::Borrowed),
            code: Cow::Borrowed(code),
        }
    }
}

/// The search index of one resource version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Index {
    /// `(index key, value)` pairs; a key may repeat.
    pub(crate) keys: Vec<(&'static str, Key)>,
    /// The id of the patient whose compartment holds the resource (its own
    /// id for a Patient).
    pub(crate) patient: Option<String>,
}

impl Index {
    pub(crate) fn push(&mut self, key: &'static str, value: Key) {
        self.keys.push((key, value));
    }

    /// The values under `key`.
    pub(crate) fn values<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Key> + 'a {
        self.keys
            .iter()
            .filter(move |(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// The first date under `key`.
    pub(crate) fn first_date(&self, key: &str) -> Option<Interval> {
        self.values(key).find_map(|v| match v {
            Key::Date(i) => Some(*i),
            _ => None,
        })
    }

    /// Adds the human-name keys (`name`, `family`, `given`).
    pub(crate) fn push_name(&mut self, family: Option<&str>, given: &[&str], text: Option<&str>) {
        if let Some(f) = family {
            self.push("name", Key::Text(f.to_lowercase()));
            self.push("family", Key::Text(f.to_lowercase()));
        }
        for g in given {
            self.push("name", Key::Text(g.to_lowercase()));
            self.push("given", Key::Text(g.to_lowercase()));
        }
        if let Some(t) = text {
            self.push("name", Key::Text(t.to_lowercase()));
        }
    }
}

/// A relative `Type/id` for a reference string: relative references are kept,
/// absolute ones to this server (`{fhir_base}/Type/id`) are made relative,
/// anything else (other servers, contained `#x`, `urn:`) gives `None`.
pub(crate) fn relative_reference(reference: &str, fhir_base: &str) -> Option<String> {
    let rest = match reference.strip_prefix(fhir_base) {
        Some(r) => r.strip_prefix('/')?,
        None if reference.contains("://") || reference.starts_with("urn:") => return None,
        None => reference,
    };
    let mut parts = rest.split('/');
    let (t, id) = (parts.next()?, parts.next()?);
    // `Type/id/_history/n` is a versioned reference to the same resource.
    match (parts.next(), parts.next(), parts.next()) {
        (None, None, None) | (Some("_history"), Some(_), None) => {}
        _ => return None,
    }
    let ok = !t.is_empty()
        && t.bytes().all(|b| b.is_ascii_alphanumeric())
        && t.starts_with(|c: char| c.is_ascii_uppercase())
        && is_valid_id(id);
    ok.then(|| format!("{t}/{id}"))
}

/// A FHIR `id`: `[A-Za-z0-9\-\.]{1,64}`.
pub(crate) fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

// ---------------------------------------------------------------------------
// Extraction from JSON

fn push_codeable_concept(index: &mut Index, key: &'static str, cc: &Value) {
    for coding in cc
        .get("coding")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        push_coding(index, key, coding);
    }
}

fn push_coding(index: &mut Index, key: &'static str, coding: &Value) {
    if let Some(code) = coding.get("code").and_then(Value::as_str) {
        index.push(
            key,
            Key::Token {
                system: coding
                    .get("system")
                    .and_then(Value::as_str)
                    .map(|s| Cow::Owned(s.to_owned())),
                code: Cow::Owned(code.to_owned()),
            },
        );
    }
}

fn push_code(index: &mut Index, key: &'static str, value: Option<&Value>) {
    if let Some(code) = value.and_then(Value::as_str) {
        index.push(
            key,
            Key::Token {
                system: None,
                code: Cow::Owned(code.to_owned()),
            },
        );
    }
}

fn push_date(index: &mut Index, key: &'static str, value: Option<&Value>) -> Option<Interval> {
    let interval = value.and_then(Value::as_str).and_then(parse_fhir_date)?;
    index.push(key, Key::Date(interval));
    Some(interval)
}

fn push_reference(
    index: &mut Index,
    key: &'static str,
    value: Option<&Value>,
    base: &str,
) -> Option<String> {
    let reference = value
        .and_then(|v| v.get("reference"))
        .and_then(Value::as_str)
        .and_then(|r| relative_reference(r, base))?;
    index.push(key, Key::Reference(reference.clone()));
    Some(reference)
}

fn array<'a>(v: &'a Value, name: &str) -> impl Iterator<Item = &'a Value> + 'a {
    v.get(name).and_then(Value::as_array).into_iter().flatten()
}

fn push_names(index: &mut Index, resource: &Value) {
    for name in array(resource, "name") {
        let given: Vec<&str> = array(name, "given").filter_map(Value::as_str).collect();
        index.push_name(
            name.get("family").and_then(Value::as_str),
            &given,
            name.get("text").and_then(Value::as_str),
        );
    }
}

fn push_identifiers(index: &mut Index, resource: &Value) {
    for identifier in array(resource, "identifier") {
        if let Some(value) = identifier.get("value").and_then(Value::as_str) {
            index.push(
                "identifier",
                Key::Token {
                    system: identifier
                        .get("system")
                        .and_then(Value::as_str)
                        .map(|s| Cow::Owned(s.to_owned())),
                    code: Cow::Owned(value.to_owned()),
                },
            );
        }
    }
}

fn patient_of(reference: Option<String>) -> Option<String> {
    reference.and_then(|r| r.strip_prefix("Patient/").map(str::to_owned))
}

/// Builds the index of a client-written resource of a supported type.
/// `fhir_base` turns absolute references to this server into relative ones.
pub(crate) fn extract(resource_type: &str, r: &Value, fhir_base: &str) -> Index {
    let mut index = Index::default();
    match resource_type {
        "Patient" => {
            push_names(&mut index, r);
            push_code(&mut index, "gender", r.get("gender"));
            push_date(&mut index, "birthdate", r.get("birthDate"));
            push_identifiers(&mut index, r);
            index.patient = r.get("id").and_then(Value::as_str).map(str::to_owned);
        }
        "Practitioner" => {
            push_names(&mut index, r);
            push_identifiers(&mut index, r);
        }
        "Encounter" => {
            let subject = push_reference(&mut index, "subject", r.get("subject"), fhir_base);
            push_date(
                &mut index,
                "date",
                r.get("period").and_then(|p| p.get("start")),
            );
            push_code(&mut index, "status", r.get("status"));
            if let Some(class) = r.get("class") {
                push_coding(&mut index, "class", class);
            }
            for t in array(r, "type") {
                push_codeable_concept(&mut index, "type", t);
            }
            for participant in array(r, "participant") {
                push_reference(
                    &mut index,
                    "participant",
                    participant.get("individual"),
                    fhir_base,
                );
            }
            index.patient = patient_of(subject);
        }
        "Observation" => {
            let subject = push_reference(&mut index, "subject", r.get("subject"), fhir_base);
            push_reference(&mut index, "encounter", r.get("encounter"), fhir_base);
            for c in array(r, "category") {
                push_codeable_concept(&mut index, "category", c);
            }
            if let Some(code) = r.get("code") {
                push_codeable_concept(&mut index, "code", code);
            }
            let effective = r
                .get("effectiveDateTime")
                .or_else(|| r.get("effectiveInstant"))
                .or_else(|| r.get("effectivePeriod").and_then(|p| p.get("start")));
            push_date(&mut index, "date", effective);
            push_code(&mut index, "status", r.get("status"));
            index.patient = patient_of(subject);
        }
        "Condition" => {
            let subject = push_reference(&mut index, "subject", r.get("subject"), fhir_base);
            push_reference(&mut index, "encounter", r.get("encounter"), fhir_base);
            if let Some(code) = r.get("code") {
                push_codeable_concept(&mut index, "code", code);
            }
            for c in array(r, "category") {
                push_codeable_concept(&mut index, "category", c);
            }
            if let Some(s) = r.get("clinicalStatus") {
                push_codeable_concept(&mut index, "clinical-status", s);
            }
            if let Some(s) = r.get("verificationStatus") {
                push_codeable_concept(&mut index, "verification-status", s);
            }
            let onset = push_date(&mut index, "onset-date", r.get("onsetDateTime"));
            let recorded = push_date(&mut index, "recorded-date", r.get("recordedDate"));
            if let Some(d) = onset.or(recorded) {
                index.push("date", Key::Date(d));
            }
            index.patient = patient_of(subject);
        }
        "MedicationRequest" => {
            let subject = push_reference(&mut index, "subject", r.get("subject"), fhir_base);
            push_reference(&mut index, "encounter", r.get("encounter"), fhir_base);
            if let Some(code) = r.get("medicationCodeableConcept") {
                push_codeable_concept(&mut index, "code", code);
            }
            push_code(&mut index, "status", r.get("status"));
            push_code(&mut index, "intent", r.get("intent"));
            push_date(&mut index, "date", r.get("authoredOn"));
            push_reference(&mut index, "requester", r.get("requester"), fhir_base);
            index.patient = patient_of(subject);
        }
        "AllergyIntolerance" => {
            let patient = push_reference(&mut index, "patient", r.get("patient"), fhir_base);
            if let Some(code) = r.get("code") {
                push_codeable_concept(&mut index, "code", code);
            }
            if let Some(s) = r.get("clinicalStatus") {
                push_codeable_concept(&mut index, "clinical-status", s);
            }
            if let Some(s) = r.get("verificationStatus") {
                push_codeable_concept(&mut index, "verification-status", s);
            }
            for c in array(r, "category") {
                push_code(&mut index, "category", Some(c));
            }
            push_code(&mut index, "criticality", r.get("criticality"));
            push_date(&mut index, "date", r.get("recordedDate"));
            index.patient = patient_of(patient);
        }
        _ => {}
    }
    index
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn references_are_normalised() {
        let base = "http://127.0.0.1:1/fhir";
        assert_eq!(
            relative_reference("Patient/pat-1", base).as_deref(),
            Some("Patient/pat-1")
        );
        assert_eq!(
            relative_reference("http://127.0.0.1:1/fhir/Patient/pat-1", base).as_deref(),
            Some("Patient/pat-1")
        );
        assert_eq!(
            relative_reference("Patient/pat-1/_history/2", base).as_deref(),
            Some("Patient/pat-1")
        );
        for bad in [
            "https://other.example/fhir/Patient/x",
            "#contained",
            "urn:uuid:1234",
            "Patient",
            "patient/x",
            "Patient/a b",
        ] {
            assert_eq!(relative_reference(bad, base), None, "{bad}");
        }
    }

    #[test]
    fn every_key_of_every_param_is_extracted_somewhere() {
        // A parameter whose key no extractor writes would silently never
        // match; keep the tables and `extract` in step.
        let written: &[(&str, &[&str])] = &[
            (
                "Patient",
                &[
                    "name",
                    "family",
                    "given",
                    "gender",
                    "birthdate",
                    "identifier",
                ],
            ),
            ("Practitioner", &["name", "family", "given", "identifier"]),
            (
                "Encounter",
                &["subject", "date", "status", "class", "type", "participant"],
            ),
            (
                "Observation",
                &["subject", "encounter", "category", "code", "date", "status"],
            ),
            (
                "Condition",
                &[
                    "subject",
                    "encounter",
                    "code",
                    "category",
                    "clinical-status",
                    "verification-status",
                    "onset-date",
                    "recorded-date",
                    "date",
                ],
            ),
            (
                "MedicationRequest",
                &[
                    "subject",
                    "encounter",
                    "code",
                    "status",
                    "intent",
                    "date",
                    "requester",
                ],
            ),
            (
                "AllergyIntolerance",
                &[
                    "patient",
                    "code",
                    "clinical-status",
                    "verification-status",
                    "category",
                    "criticality",
                    "date",
                ],
            ),
        ];
        for t in RESOURCE_TYPES {
            let keys = written.iter().find(|(w, _)| w == t).unwrap().1;
            for def in params(t) {
                assert!(keys.contains(&def.key), "{t}.{}", def.name);
            }
        }
    }
}
