//! The typed path on input any server can send: empty arrays (which panicked inside fhirbolt),
//! unknown arrays (which made fhirbolt's lenient mode spin), integers beyond `i64::MAX`, one bad
//! entry in a search page. Over real HTTP where a response is involved; every case ends in a
//! typed value or a typed error, never a panic.

#![cfg(feature = "r4")]

#[path = "support/mock.rs"]
mod mock;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::TryStreamExt as _;
use mock::{Canned, MockServer, TestAuth};
use serde_json::{Value, json};
use smart_core::http::ReqwestHttpClient;
use smart_fhir::r4;
use smart_fhir::r4::resources::{Observation, ObservationValue, Patient};
use smart_fhir::{FhirClient, FhirError, ParseMode, RetryPolicy, Search, TypedResource as _};

fn fhir(server: &MockServer, mode: ParseMode) -> FhirClient {
    FhirClient::new(
        Arc::new(ReqwestHttpClient::new().expect("http")),
        TestAuth::new(&server.base()),
    )
    .with_retry(RetryPolicy {
        initial_backoff: Duration::from_millis(10),
        ..RetryPolicy::default()
    })
    .with_timeout(Duration::from_secs(5))
    .with_parse_mode(mode)
}

fn patient_with_empty_arrays() -> Value {
    json!({
        "resourceType": "Patient", "id": "p1",
        "identifier": [],
        "name": [{"family": "Chalmers", "given": []}]
    })
}

fn searchset(entries: Vec<Value>) -> Value {
    json!({
        "resourceType": "Bundle", "type": "searchset",
        "entry": entries.into_iter().map(|r| json!({"resource": r, "search": {"mode": "match"}})).collect::<Vec<_>>()
    })
}

fn assert_located(err: &FhirError, pointer: &str) {
    let inner = match err {
        FhirError::TypedEntry { source, .. } => source,
        other => other,
    };
    match inner {
        FhirError::Typed {
            pointer: Some(p), ..
        } => assert_eq!(p, pointer, "{err}"),
        other => panic!("not a located typed error: {other}"),
    }
}

#[tokio::test]
async fn an_empty_array_in_a_read_fails_strict_and_is_absent_lenient() {
    let server = MockServer::start().await;
    server.push(Canned::json(200, patient_with_empty_arrays()));
    let err = fhir(&server, ParseMode::Strict)
        .read::<Patient>("p1")
        .await
        .expect_err("strict");
    assert_located(&err, "/identifier");

    server.push(Canned::json(200, patient_with_empty_arrays()));
    let patient = fhir(&server, ParseMode::Lenient)
        .read::<Patient>("p1")
        .await
        .expect("lenient")
        .resource;
    assert!(patient.identifier.is_empty());
    assert_eq!(patient.name.len(), 1);
    assert!(patient.name[0].given.is_empty());
    assert_eq!(patient.report.absent, ["/identifier", "/name/0/given"]);
}

#[tokio::test]
async fn an_empty_array_in_a_search_page_fails_only_its_entry_strict_and_passes_lenient() {
    let server = MockServer::start().await;
    let good = json!({"resourceType": "Patient", "id": "p2", "active": true});
    let page = searchset(vec![patient_with_empty_arrays(), good.clone()]);

    server.push(Canned::json(200, page.clone()));
    let strict = fhir(&server, ParseMode::Strict);
    let results: Vec<_> = strict
        .search::<Patient>(&Search::new("Patient"))
        .collect()
        .await;
    assert_eq!(results.len(), 2, "the stream goes on after the bad entry");
    let err = results[0].as_ref().expect_err("strict");
    assert_located(err, "/identifier");
    assert!(
        matches!(err, FhirError::TypedEntry { index: 0, raw, .. } if **raw == patient_with_empty_arrays())
    );
    assert_eq!(
        results[1].as_ref().expect("good entry").resource_id(),
        Some("p2")
    );

    server.push(Canned::json(200, page));
    let lenient = fhir(&server, ParseMode::Lenient);
    let all: Vec<_> = lenient
        .search::<Patient>(&Search::new("Patient"))
        .try_collect()
        .await
        .expect("lenient page");
    assert_eq!(all.len(), 2);
}

#[tokio::test]
async fn an_empty_array_in_a_create_response_fails_strict_and_passes_lenient() {
    let server = MockServer::start().await;
    let new = Patient {
        active: Some(true.into()),
        ..Patient::default()
    };
    server.push(Canned::json(201, patient_with_empty_arrays()));
    let err = fhir(&server, ParseMode::Strict)
        .create(&new)
        .await
        .expect_err("strict");
    assert_located(&err, "/identifier");

    server.push(Canned::json(201, patient_with_empty_arrays()));
    let created = fhir(&server, ParseMode::Lenient)
        .create(&new)
        .await
        .expect("lenient");
    assert_eq!(created.resource.resource_id(), Some("p1"));
}

#[tokio::test]
async fn a_typed_page_with_one_unparseable_entry_returns_the_others_and_reports_it() {
    let server = MockServer::start().await;
    let bad = json!({"resourceType": "Patient", "id": "bad", "active": "maybe"});
    let page = searchset(vec![
        json!({"resourceType": "Patient", "id": "a"}),
        bad.clone(),
        json!({"resourceType": "Patient", "id": "c", "vendorFlag": [1, 2]}),
    ]);
    server.push(Canned::json(200, page));
    let pages: Vec<_> = fhir(&server, ParseMode::Lenient)
        .typed_pages::<Patient>(&Search::new("Patient"))
        .try_collect()
        .await
        .expect("the page itself is fine");
    assert_eq!(pages.len(), 1);
    let ids: Vec<_> = pages[0].resources.iter().map(|p| p.resource_id()).collect();
    assert_eq!(ids, [Some("a"), Some("c")]);
    assert_eq!(pages[0].failures.len(), 1);
    match &pages[0].failures[0] {
        FhirError::TypedEntry { index, raw, source } => {
            assert_eq!(*index, 1);
            assert_eq!(**raw, bad, "the raw JSON is kept for the app");
            assert!(matches!(**source, FhirError::Typed { .. }), "{source}");
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn a_lenient_read_with_an_unknown_10000_element_array_finishes_in_under_a_second() {
    let server = MockServer::start().await;
    let strings: Vec<Value> = (0..10_000).map(|i| json!(format!("s{i}"))).collect();
    let objects: Vec<Value> = (0..10_000)
        .map(|i| json!({"k": i, "v": ["a", "b"]}))
        .collect();
    let body = json!({
        "resourceType": "Patient", "id": "big",
        "vendorStrings": strings,
        "name": [{"family": "X", "vendorObjects": objects}]
    });
    server.push(Canned::json(200, body.clone()));
    let client = fhir(&server, ParseMode::Lenient);
    let read = tokio::time::timeout(Duration::from_secs(1), client.read::<Patient>("big"))
        .await
        .expect("fhirbolt's own lenient mode never returned here; this must")
        .expect("lenient read");
    let patient = read.resource;
    // The unknown arrays are kept whole, not walked element by element.
    assert_eq!(patient.extras().len(), 2);
    assert_eq!(
        patient.extras().get("/vendorStrings"),
        Some(&body["vendorStrings"])
    );
    assert_eq!(
        patient
            .extras()
            .get("/name/0/vendorObjects")
            .and_then(Value::as_array)
            .map(Vec::len),
        Some(10_000)
    );
}

#[test]
fn a_decimal_beyond_i64_keeps_its_exact_value() {
    for digits in [
        "12345678901234567890",
        "-12345678901234567890",
        "123456789012345678901234567890.000001",
    ] {
        let text = format!(
            r#"{{"resourceType":"Observation","status":"final","code":{{"text":"x"}},"valueQuantity":{{"value":{digits}}}}}"#
        );
        let json: Value = serde_json::from_str(&text).expect("json");
        for mode in [ParseMode::Strict, ParseMode::Lenient] {
            let observation = Observation::from_json_with(json.clone(), mode).expect("decimal");
            match &observation.value {
                Some(ObservationValue::Quantity(q)) => {
                    assert_eq!(
                        q.value.as_ref().and_then(|d| d.value.as_deref()),
                        Some(digits)
                    );
                }
                other => panic!("{other:?}"),
            }
            let back = observation.to_json().expect("json");
            assert_eq!(back["valueQuantity"]["value"].to_string(), digits);
        }
    }
}

#[test]
fn integers_outside_their_range_are_errors_never_wrapped() {
    for (value, pointer) in [
        (json!(12345678901234567890_u64), "/multipleBirthInteger"),
        (json!(2_147_483_648_u64), "/multipleBirthInteger"),
        (json!(-2_147_483_649_i64), "/multipleBirthInteger"),
    ] {
        let patient = json!({"resourceType": "Patient", "multipleBirthInteger": value});
        for mode in [ParseMode::Strict, ParseMode::Lenient] {
            let err = r4::resource_from_json(patient.clone(), mode).expect_err("range");
            assert_located(&err, pointer);
        }
    }
    let ok = json!({"resourceType": "Patient", "multipleBirthInteger": 2_147_483_647});
    let patient = Patient::from_json(ok).expect("i32::MAX fits");
    assert!(patient.multiple_birth.is_some());
}
