//! Pins the fhirbolt 0.4.0 facts this crate is built around (see `docs/fhir-client.md`):
//!
//! 1. reading JSON *directly* into a concrete type fails on decimal numbers and on properties
//!    after a nested resource — while our path (serde_json → element model → `from_element`)
//!    reads the same documents. Each test also asserts the direct call still fails, so it breaks
//!    (and tells us to revisit the workaround) if fhirbolt is fixed — or if our path regresses;
//! 2. fhirbolt switches on serde_json's `arbitrary_precision` and `preserve_order` for the whole
//!    build, which changes how every `serde_json::Value` in the workspace behaves;
//! 3. its element model depends on property order, panics on an empty array, wraps integers
//!    above `i64::MAX`, and its lenient mode cannot skip non-string unknown properties — each
//!    pinned against fhirbolt directly and shown fixed by our normalisation pass.

#![cfg(feature = "r4")]

use smart_fhir::r4::resources::{Bundle, Observation, ObservationValue};
use smart_fhir::r4::{self, Resource};
use smart_fhir::{Page, TypedResource as _};

/// A searchset Bundle as real servers write it: `fullUrl, resource, search` in that order, a
/// decimal score and a decimal quantity.
const SEARCHSET: &str = r#"{
  "resourceType": "Bundle",
  "type": "searchset",
  "total": 1,
  "entry": [
    {
      "fullUrl": "http://ehr.example/fhir/Observation/obs-1",
      "resource": {
        "resourceType": "Observation",
        "id": "obs-1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": "Patient/pat-1"},
        "valueQuantity": {"value": 72.5, "unit": "beats/minute"}
      },
      "search": {"mode": "match", "score": 1}
    }
  ]
}"#;

const OBSERVATION: &str = r#"{
  "resourceType": "Observation",
  "id": "obs-2",
  "status": "final",
  "code": {"text": "heart rate"},
  "valueQuantity": {"value": 72.5, "unit": "beats/minute"}
}"#;

fn quantity_value(o: &Observation) -> Option<&str> {
    match &o.value {
        Some(ObservationValue::Quantity(q)) => q.value.as_ref().and_then(|d| d.value.as_deref()),
        _ => None,
    }
}

#[test]
fn searchset_bundle_with_entries_in_server_order_parses_through_our_path_only() {
    // The bug: direct deserialization into Bundle.
    let direct = fhirbolt::json::from_str::<Bundle>(SEARCHSET, None);
    let message = direct
        .expect_err("fhirbolt 0.4 bug fixed? revisit the workaround")
        .to_string();
    assert!(
        message.contains("expected Code") || message.contains("expected a string"),
        "{message}"
    );

    // Our path, as the client uses it: serde_json, then the page split, then the element model.
    let value: serde_json::Value = serde_json::from_str(SEARCHSET).expect("json");
    let page = Page::from_bundle(value.clone(), "Observation").expect("page");
    assert_eq!(page.entries.len(), 1);
    let observation = Observation::from_json(page.entries[0].clone()).expect("typed entry");
    assert_eq!(observation.resource_id(), Some("obs-1"));
    assert_eq!(quantity_value(&observation), Some("72.5"));

    // The whole Bundle also converts through the element model, and through the Resource enum.
    let bundle: Bundle = r4::from_json(value.clone()).expect("bundle via element");
    assert_eq!(bundle.entry.len(), 1);
    assert!(matches!(
        bundle.entry[0].resource,
        Some(Resource::Observation(_))
    ));
    let any: Resource = r4::from_json(value).expect("resource enum");
    assert_eq!(r4::resource_type(&any), Some("Bundle"));
}

#[test]
fn observation_with_a_decimal_number_parses_through_our_path_only() {
    let direct = fhirbolt::json::from_str::<Observation>(OBSERVATION, None);
    let message = direct
        .expect_err("fhirbolt 0.4 bug fixed? revisit the workaround")
        .to_string();
    assert!(message.contains("expected a string"), "{message}");
    // from_json_value into the concrete type has the same bug: the element model is the fix,
    // not the input format.
    let value: serde_json::Value = serde_json::from_str(OBSERVATION).expect("json");
    assert!(fhirbolt::json::from_json_value::<Observation>(value.clone(), None).is_err());

    let observation: Observation = r4::from_json(value.clone()).expect("typed");
    assert_eq!(quantity_value(&observation), Some("72.5"));
    assert_eq!(observation.to_json().expect("back"), value);
}

#[test]
fn arbitrary_precision_keeps_decimals_exact_and_preserve_order_keeps_key_order() {
    // fhirbolt-serde enables serde_json/arbitrary_precision for the whole build: a Value keeps
    // the number's text, so 72.50 stays 72.50 (without the feature it would become 72.5).
    let text = r#"{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":72.50},"note":[{"text":"n"}]}"#;
    let value: serde_json::Value = serde_json::from_str(text).expect("json");
    assert_eq!(
        value.to_string(),
        text,
        "exact round trip: digits and key order"
    );
    assert_eq!(value["valueQuantity"]["value"].to_string(), "72.50");
    let long = serde_json::from_str::<serde_json::Value>("3.141592653589793238462643383279")
        .expect("json");
    assert_eq!(long.to_string(), "3.141592653589793238462643383279");

    // The typed path keeps the digits too (fhirbolt stores decimals as strings).
    let observation: Observation = r4::from_json(value).expect("typed");
    assert_eq!(quantity_value(&observation), Some("72.50"));
    let back = r4::to_json(&observation).expect("json");
    assert_eq!(back["valueQuantity"]["value"].to_string(), "72.50");

    // preserve_order: object keys keep insertion order rather than sorting.
    let ordered: serde_json::Value = serde_json::from_str(r#"{"b":1,"a":2}"#).expect("json");
    assert_eq!(ordered.to_string(), r#"{"b":1,"a":2}"#);

    // Numbers are still numbers for code that asks for them.
    assert_eq!(back["valueQuantity"]["value"].as_f64(), Some(72.5));
}

#[test]
fn unknown_properties_strict_fail_and_lenient_are_kept_as_extras_of_any_json_type() {
    let with_string = serde_json::json!({
        "resourceType": "Patient", "id": "p", "vendorThing": "x"
    });
    let err = r4::from_json::<r4::resources::Patient>(with_string.clone()).expect_err("strict");
    assert!(
        matches!(&err, smart_fhir::FhirError::Typed { resource_type, pointer: Some(p), .. }
            if resource_type == "Patient" && p == "/vendorThing"),
        "{err}"
    );
    assert!(err.to_string().contains("vendorThing"), "{err}");

    // fhirbolt's own lenient mode guesses that an unknown property is a string, so an unknown
    // boolean fails there (and an unknown array of two or more values made it loop forever, so
    // that is not run here). Our lenient mode never uses it: any JSON is kept.
    let with_bool = serde_json::json!({
        "resourceType": "Patient", "id": "p", "vendorThing": true, "vendorList": ["a", "b"]
    });
    let compat = Some(fhirbolt::serde::DeserializationConfig {
        mode: fhirbolt::serde::DeserializationMode::Compatibility,
    });
    let direct = fhirbolt::json::from_json_value::<R4Element>(
        serde_json::json!({"resourceType": "Patient", "vendorThing": true}),
        compat,
    )
    .map_err(|e| e.to_string())
    .and_then(|e| {
        fhirbolt::element::from_element::<{ fhirbolt::FhirReleases::R4 }, r4::resources::Patient>(
            e, compat,
        )
        .map_err(|e| e.to_string())
    });
    assert!(direct.is_err(), "fhirbolt's lenient mode fixed? revisit");
    let lenient = r4::from_json_lenient::<r4::resources::Patient>(with_bool).expect("lenient");
    assert_eq!(lenient.resource_id(), Some("p"));
    assert_eq!(lenient.extras().get("/vendorThing"), Some(&true.into()));
    assert_eq!(
        lenient.extras().get("/vendorList"),
        Some(&serde_json::json!(["a", "b"]))
    );
}

type R4Element = fhirbolt::element::Element<{ fhirbolt::FhirReleases::R4 }>;

/// fhirbolt's element path alone, strict, without our normalisation.
fn fhirbolt_direct(value: serde_json::Value) -> Result<Observation, String> {
    let config = Some(fhirbolt::serde::DeserializationConfig::default());
    let element: R4Element =
        fhirbolt::json::from_json_value(value, config).map_err(|e| e.to_string())?;
    fhirbolt::element::from_element::<{ fhirbolt::FhirReleases::R4 }, Observation>(element, config)
        .map_err(|e| e.to_string())
}

#[test]
fn resource_type_after_other_properties_fails_in_fhirbolt_and_parses_through_our_path() {
    let mut value: serde_json::Value = serde_json::from_str(OBSERVATION).expect("json");
    let rt = value
        .as_object_mut()
        .expect("object")
        .shift_remove("resourceType")
        .expect("rt");
    value
        .as_object_mut()
        .expect("object")
        .insert("resourceType".into(), rt);
    let message = fhirbolt_direct(value.clone()).expect_err("fhirbolt order bug fixed? revisit");
    assert!(message.contains("unknown field"), "{message}");
    let observation: Observation = r4::from_json(value).expect("any order");
    assert_eq!(quantity_value(&observation), Some("72.5"));
}

#[test]
fn an_empty_array_panics_in_fhirbolt_and_is_a_typed_error_or_absent_through_our_path() {
    let value = serde_json::json!({
        "resourceType": "Observation", "status": "final", "code": {"text": "x"}, "identifier": []
    });
    let direct = std::panic::catch_unwind(|| fhirbolt_direct(value.clone()));
    assert!(direct.is_err(), "fhirbolt empty-array panic fixed? revisit");
    let err = r4::from_json::<Observation>(value.clone()).expect_err("strict");
    assert!(err.to_string().contains("/identifier"), "{err}");
    let lenient = r4::from_json_lenient::<Observation>(value).expect("lenient");
    assert_eq!(lenient.report.absent, ["/identifier"]);
}

#[test]
fn an_integer_above_i64_max_wraps_in_fhirbolt_and_keeps_its_digits_through_our_path() {
    let value: serde_json::Value = serde_json::from_str(
        r#"{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":12345678901234567890}}"#,
    )
    .expect("json");
    let direct = fhirbolt_direct(value.clone()).expect("fhirbolt reads it");
    assert_ne!(
        quantity_value(&direct),
        Some("12345678901234567890"),
        "fhirbolt wrap fixed? revisit"
    );
    let observation: Observation = r4::from_json(value).expect("ours");
    assert_eq!(quantity_value(&observation), Some("12345678901234567890"));
}
