//! Injected FHIR faults: 429 with Retry-After, 503, delays, tokens that
//! expire after N calls.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

#[tokio::test]
async fn rate_limit_then_success() {
    let sb = start().await;
    let t = user_token(&sb).await;
    sb.set_behavior(|b| {
        b.fhir_rate_limit = 2;
        b.fhir_retry_after_secs = 3;
    });
    for _ in 0..2 {
        let resp = read(&sb, "Patient/pat-1", Some(&t)).await;
        assert_eq!(resp.status(), 429);
        assert_eq!(header(&resp, "retry-after"), "3");
        let oo: Value = resp.json().await.unwrap();
        assert_eq!(oo["resourceType"], "OperationOutcome");
    }
    assert_eq!(read(&sb, "Patient/pat-1", Some(&t)).await.status(), 200);

    // The HTTP-date form.
    sb.set_behavior(|b| {
        b.fhir_rate_limit = 1;
        b.fhir_retry_after_http_date = true;
    });
    let resp = read(&sb, "Observation?patient=pat-1", Some(&t)).await;
    assert_eq!(resp.status(), 429);
    let when = header(&resp, "retry-after");
    assert!(when.ends_with(" GMT") && when.len() == 29, "{when}");
    assert_eq!(
        read(&sb, "Observation?patient=pat-1", Some(&t))
            .await
            .status(),
        200
    );

    let c = sb.counters();
    assert_eq!(c.fhir_faults, 3);
    assert_eq!(c.fhir_requests, 5);
    assert_eq!(c.fhir_reads, 3);
    assert_eq!(c.fhir_searches, 2);
}

#[tokio::test]
async fn unavailable_then_success_and_delay() {
    let sb = start().await;
    let t = user_token(&sb).await;
    sb.set_behavior(|b| b.fhir_unavailable = 1);
    let resp = read(&sb, "Patient/pat-1", Some(&t)).await;
    assert_eq!(resp.status(), 503);
    let oo: Value = resp.json().await.unwrap();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    assert_eq!(read(&sb, "Patient/pat-1", Some(&t)).await.status(), 200);

    // Injected faults come before authentication, as at a gateway.
    sb.set_behavior(|b| b.fhir_unavailable = 1);
    assert_eq!(read(&sb, "Patient/pat-1", None).await.status(), 503);
    assert_eq!(read(&sb, "Patient/pat-1", None).await.status(), 401);

    sb.set_behavior(|b| b.fhir_delay = Some(Duration::from_millis(300)));
    let started = Instant::now();
    assert_eq!(read(&sb, "Patient/pat-1", Some(&t)).await.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    // A client timeout shorter than the delay fires.
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let err = quick
        .get(format!("{}/Patient/pat-1", sb.fhir_base()))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    // Metadata and discovery are not affected.
    sb.set_behavior(|b| {
        b.fhir_delay = None;
        b.fhir_unavailable = 5;
    });
    let metadata = http()
        .get(format!("{}/metadata", sb.fhir_base()))
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.status(), 200);
}

#[tokio::test]
async fn tokens_expire_after_n_calls() {
    let sb = start().await;
    let t = user_token(&sb).await;
    assert_eq!(read(&sb, "Patient/pat-1", Some(&t)).await.status(), 200);
    sb.set_behavior(|b| b.expire_tokens_after_calls = Some(3));
    assert_eq!(read(&sb, "Patient/pat-2", Some(&t)).await.status(), 200);
    assert_eq!(
        read(&sb, "Observation?patient=pat-2", Some(&t))
            .await
            .status(),
        200
    );
    for _ in 0..2 {
        let resp = read(&sb, "Patient/pat-1", Some(&t)).await;
        assert_eq!(resp.status(), 401);
        let www = header(&resp, "www-authenticate");
        assert!(
            www.starts_with("Bearer realm=\"smart-sandbox\", error=\"invalid_token\""),
            "{www}"
        );
    }
    // A new token gets its own budget.
    let fresh = user_token(&sb).await;
    for _ in 0..3 {
        assert_eq!(read(&sb, "Patient/pat-1", Some(&fresh)).await.status(), 200);
    }
    assert_eq!(read(&sb, "Patient/pat-1", Some(&fresh)).await.status(), 401);
    // The expired token is also inactive at introspection.
    let body: Value = http()
        .post(format!("{}/auth/introspect", origin(&sb)))
        .header(
            "authorization",
            basic(CONFIDENTIAL, smart_sandbox::DEMO_SECRET),
        )
        .form(&[("token", fresh.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["active"], false);
}
