//! Vendor-shaped deviations from R4 (`tests/fixtures/vendor-deviations/`, hand-written), read
//! over real HTTP: lenient reads (the default) succeed and report every deviation, keeping
//! unknown properties as extras that a typed update writes back; strict reads fail with the
//! JSON pointer of the first deviation and the expected type.

#![cfg(feature = "r4")]

#[path = "support/mock.rs"]
mod mock;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mock::{Canned, MockServer, TestAuth};
use serde_json::{Value, json};
use smart_core::http::ReqwestHttpClient;
use smart_fhir::r4::resources::{AllergyIntolerance, Observation, ObservationValue, Patient};
use smart_fhir::{FhirClient, FhirError, ParseMode, RetryPolicy, Typed, TypedResource};

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/vendor-deviations")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
}

fn fhir(server: &MockServer) -> FhirClient {
    FhirClient::new(
        Arc::new(ReqwestHttpClient::new().expect("http")),
        TestAuth::new(&server.base()),
    )
    .with_retry(RetryPolicy {
        initial_backoff: Duration::from_millis(10),
        ..RetryPolicy::default()
    })
    .with_timeout(Duration::from_secs(5))
}

/// What a lenient read of one fixture must report, and where a strict read must fail.
struct Expected {
    file: &'static str,
    extras: &'static [&'static str],
    coercions: &'static [(&'static str, &'static str)],
    absent: &'static [&'static str],
    strict_pointer: &'static str,
    strict_expected: &'static str,
}

const EXPECTED: &[Expected] = &[
    Expected {
        file: "patient-name-flags.json",
        extras: &["/name/0/isUserSelected"],
        coercions: &[
            ("/active", "boolean"),
            ("/telecom/0/rank", "positiveInt"),
            ("/address/0/postalCode", "string"),
        ],
        absent: &[],
        strict_pointer: "/active",
        strict_expected: "boolean",
    },
    Expected {
        file: "observation-verified.json",
        extras: &["/verified"],
        coercions: &[
            ("/category/0/coding/0/userSelected", "boolean"),
            ("/code/coding/0/code", "string"),
            ("/valueQuantity/value", "decimal"),
            ("/referenceRange/0/text", "string"),
        ],
        absent: &[],
        strict_pointer: "/verified",
        strict_expected: "a property of this element",
    },
    Expected {
        file: "allergy-vendor-block.json",
        extras: &["/vendorAudit", "/vendorTags"],
        coercions: &[("/reaction/0/note/0/text", "string")],
        absent: &["/identifier"],
        strict_pointer: "/identifier",
        strict_expected: "a value",
    },
];

async fn read_as<R: TypedResource>(
    client: &FhirClient,
    server: &MockServer,
    body: &Value,
) -> Result<Typed<R>, FhirError> {
    server.push(Canned::json(200, body.clone()));
    client
        .read::<R>(body["id"].as_str().expect("id"))
        .await
        .map(|v| v.resource)
}

fn check_lenient<R: TypedResource>(expected: &Expected, typed: &Typed<R>) {
    let extras: Vec<&str> = typed.extras().iter().map(|(p, _)| p).collect();
    assert_eq!(extras, expected.extras, "{}: extras", expected.file);
    let coercions: Vec<(&str, &str)> = typed
        .coercions()
        .iter()
        .map(|c| (c.pointer.as_str(), c.expected))
        .collect();
    assert_eq!(
        coercions, expected.coercions,
        "{}: coercions",
        expected.file
    );
    assert_eq!(
        typed.report.absent, expected.absent,
        "{}: absent",
        expected.file
    );
}

fn check_strict(expected: &Expected, err: FhirError) {
    match &err {
        FhirError::Typed {
            pointer: Some(pointer),
            expected: Some(what),
            ..
        } => {
            assert_eq!(pointer, expected.strict_pointer, "{}: {err}", expected.file);
            assert!(
                what.contains(expected.strict_expected),
                "{}: {err}",
                expected.file
            );
        }
        other => panic!("{}: not a located typed error: {other}", expected.file),
    }
    assert!(err.to_string().contains(expected.strict_pointer), "{err}");
}

/// Every value of the fixture is in the typed value's JSON: extras as they were, coerced
/// primitives with their FHIR JSON type, empty arrays gone.
fn assert_nothing_lost(
    file: &str,
    original: &Value,
    back: &Value,
    typed_coercions: &[smart_fhir::Coercion],
) {
    let mut expected = original.clone();
    for coercion in typed_coercions {
        let slot = expected.pointer_mut(&coercion.pointer).expect("pointer");
        *slot = match (coercion.expected, &*slot) {
            ("string", Value::Bool(b)) => Value::String(b.to_string()),
            ("string", Value::Number(n)) => Value::String(n.to_string()),
            ("boolean", Value::String(s)) => Value::Bool(s == "true"),
            (_, Value::String(s)) => serde_json::from_str(s).expect("numeric"),
            (_, other) => other.clone(),
        };
    }
    if let Value::Object(map) = &mut expected {
        map.retain(|_, v| v.as_array().is_none_or(|a| !a.is_empty()));
    }
    assert_eq!(back, &expected, "{file}: round trip");
}

#[tokio::test]
async fn lenient_reads_of_vendor_deviations_succeed_and_report_every_deviation() {
    let server = MockServer::start().await;
    let client = fhir(&server);
    assert_eq!(
        client.parse_mode(),
        ParseMode::Lenient,
        "lenient is the default for reads"
    );

    let patient_fixture = fixture(EXPECTED[0].file);
    let patient = read_as::<Patient>(&client, &server, &patient_fixture)
        .await
        .expect("lenient");
    check_lenient(&EXPECTED[0], &patient);
    assert_eq!(patient.active.as_ref().and_then(|a| a.value), Some(true));
    assert_eq!(
        patient.extras().get("/name/0/isUserSelected"),
        Some(&json!(true))
    );
    assert_nothing_lost(
        EXPECTED[0].file,
        &patient_fixture,
        &patient.to_json().expect("json"),
        patient.coercions(),
    );

    let observation_fixture = fixture(EXPECTED[1].file);
    let observation = read_as::<Observation>(&client, &server, &observation_fixture)
        .await
        .expect("lenient");
    check_lenient(&EXPECTED[1], &observation);
    match &observation.value {
        Some(ObservationValue::Quantity(q)) => {
            assert_eq!(
                q.value.as_ref().and_then(|d| d.value.as_deref()),
                Some("72.5")
            );
        }
        other => panic!("value: {other:?}"),
    }
    assert_nothing_lost(
        EXPECTED[1].file,
        &observation_fixture,
        &observation.to_json().expect("json"),
        observation.coercions(),
    );

    let allergy_fixture = fixture(EXPECTED[2].file);
    let allergy = read_as::<AllergyIntolerance>(&client, &server, &allergy_fixture)
        .await
        .expect("lenient");
    check_lenient(&EXPECTED[2], &allergy);
    assert_eq!(
        allergy.extras().get("/vendorAudit"),
        Some(&allergy_fixture["vendorAudit"]),
        "an unknown object is kept whole"
    );
    assert_nothing_lost(
        EXPECTED[2].file,
        &allergy_fixture,
        &allergy.to_json().expect("json"),
        allergy.coercions(),
    );
}

#[tokio::test]
async fn strict_reads_of_vendor_deviations_fail_with_the_pointer() {
    let server = MockServer::start().await;
    let client = fhir(&server).with_parse_mode(ParseMode::Strict);
    for (expected, err) in [
        (
            &EXPECTED[0],
            read_as::<Patient>(&client, &server, &fixture(EXPECTED[0].file))
                .await
                .map(drop),
        ),
        (
            &EXPECTED[1],
            read_as::<Observation>(&client, &server, &fixture(EXPECTED[1].file))
                .await
                .map(drop),
        ),
        (
            &EXPECTED[2],
            read_as::<AllergyIntolerance>(&client, &server, &fixture(EXPECTED[2].file))
                .await
                .map(drop),
        ),
    ] {
        check_strict(expected, err.expect_err("strict refuses the deviation"));
    }
}

#[tokio::test]
async fn a_typed_update_after_a_lenient_read_sends_the_extras_back() {
    let server = MockServer::start().await;
    let client = fhir(&server);
    let original = fixture("allergy-vendor-block.json");
    let mut allergy = read_as::<AllergyIntolerance>(&client, &server, &original)
        .await
        .expect("read");
    // Change something typed; the vendor block must still go back to the server.
    allergy.code.as_mut().expect("code").text = Some("Tree nuts".to_owned().into());
    server.push(Canned::json(200, original.clone()));
    client.update(&allergy, None).await.expect("update");
    let sent: Value =
        serde_json::from_str(&server.seen().last().expect("request").body).expect("body");
    assert_eq!(sent["code"]["text"], "Tree nuts");
    assert_eq!(sent["vendorAudit"], original["vendorAudit"]);
    assert_eq!(sent["vendorTags"], original["vendorTags"]);
}

#[test]
fn lenient_errors_still_name_the_pointer_and_type_of_what_cannot_be_converted() {
    use smart_fhir::r4;
    for (json, pointer, expected) in [
        (
            json!({"resourceType": "Patient", "active": "yes"}),
            "/active",
            "boolean",
        ),
        (
            json!({"resourceType": "Patient", "multipleBirthInteger": 1.5}),
            "/multipleBirthInteger",
            "integer",
        ),
        (
            json!({"resourceType": "Patient", "multipleBirthInteger": 3_000_000_000_u64}),
            "/multipleBirthInteger",
            "integer",
        ),
        (
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueQuantity": {"value": "seventy"}}),
            "/valueQuantity/value",
            "decimal",
        ),
        (
            json!({"resourceType": "Patient", "name": "Smith"}),
            "/name",
            "object",
        ),
    ] {
        let err =
            r4::resource_from_json(json.clone(), ParseMode::Lenient).expect_err("cannot coerce");
        match &err {
            FhirError::Typed {
                pointer: Some(p),
                expected: Some(e),
                ..
            } => {
                assert_eq!(p, pointer, "{json}: {err}");
                assert!(e.contains(expected), "{json}: {err}");
            }
            other => panic!("{json}: {other}"),
        }
    }
}
