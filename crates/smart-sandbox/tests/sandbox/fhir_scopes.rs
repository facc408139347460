//! Scope enforcement on the FHIR API: patient compartments, v2 query
//! scopes, user/ and system/ reach, writes, batch entries.

use reqwest::Method;
use serde_json::{Value, json};
use smart_sandbox::LaunchContextRequest;

use crate::common::*;

/// A token from an EHR launch of `client_id` for `patient`.
async fn launch_token(
    sb: &smart_sandbox::Sandbox,
    client_id: &str,
    patient: &str,
    scope: &str,
) -> String {
    let launch = sb
        .issue_launch(
            client_id,
            LaunchContextRequest {
                patient: Some(patient.into()),
                ..Default::default()
            },
        )
        .unwrap();
    let p = pkce();
    let mut params = auth_params(sb, client_id, &format!("launch {scope}"), &p);
    params.push(("launch".into(), launch));
    let resp = authorize(sb, &params).await;
    let code = redirect_params(&resp)["code"].clone();
    let resp = exchange(sb, client_id, &code, &p).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["patient"], patient);
    body["access_token"].as_str().unwrap().to_owned()
}

fn challenge(resp: &reqwest::Response) -> String {
    header(resp, "www-authenticate")
}

#[tokio::test]
async fn patient_scope_is_limited_to_the_launch_patient() {
    let sb = start().await;
    let t = launch_token(&sb, PUBLIC, "pat-1", "patient/*.rs").await;
    let u = user_token(&sb).await;

    // Reads: the patient in context and its compartment only.
    assert_eq!(read(&sb, "Patient/pat-1", Some(&t)).await.status(), 200);
    assert_eq!(
        read(&sb, "Observation/obs-1-1", Some(&t)).await.status(),
        200
    );
    for path in [
        "Patient/pat-2",
        "Observation/obs-2-1",
        "Patient/pat-2/$everything",
    ] {
        let resp = read(&sb, path, Some(&t)).await;
        assert_eq!(resp.status(), 403, "{path}");
        let www = challenge(&resp);
        assert!(
            www.starts_with("Bearer error=\"insufficient_scope\""),
            "{www}"
        );
        assert!(www.contains("scope=\"user/"), "{www}");
        let oo: Value = resp.json().await.unwrap();
        assert_eq!(oo["resourceType"], "OperationOutcome");
    }
    // Searching another patient explicitly is refused.
    for q in [
        "Observation?patient=pat-2",
        "Observation?subject=Patient/pat-2",
        "Observation?patient=pat-1,pat-2",
        "Patient?_id=pat-2",
    ] {
        let resp = read(&sb, q, Some(&t)).await;
        assert_eq!(resp.status(), 403, "{q}");
        assert!(challenge(&resp).contains("insufficient_scope"));
    }
    // Without a patient, a search stays inside the compartment.
    let own = get_json(&sb, "Observation?_count=200", &t, 200).await;
    let expected = total(&get_json(&sb, "Observation?patient=pat-1&_count=0", &u, 200).await);
    assert_eq!(total(&own), expected);
    let pages = all_pages(own, &t).await;
    for page in &pages {
        for r in matches(page) {
            assert_eq!(r["subject"]["reference"], "Patient/pat-1");
        }
    }
    let hr = get_json(
        &sb,
        "Observation?code=8867-4&_include=Observation:patient",
        &t,
        200,
    )
    .await;
    assert!(
        matches(&hr)
            .iter()
            .all(|r| r["subject"]["reference"] == "Patient/pat-1")
    );
    let patients = get_json(&sb, "Patient", &t, 200).await;
    assert_eq!(match_ids(&patients), ["pat-1"]);
    let everything = get_json(&sb, "Patient/pat-1/$everything?_count=200", &t, 200).await;
    assert!(total(&everything) > expected);
    // Practitioners are not in a patient compartment.
    assert_eq!(
        read(&sb, "Practitioner/prac-3", Some(&t)).await.status(),
        200
    );
    // Reading is not writing.
    let resp = send(&sb, Method::DELETE, "Observation/obs-1-1", &t, None, &[]).await;
    assert_eq!(resp.status(), 403);
    assert!(
        challenge(&resp).contains("scope=\"patient/Observation.d\""),
        "{}",
        challenge(&resp)
    );
}

#[tokio::test]
async fn v2_query_scope_limits_search_and_reads() {
    let sb = start().await;
    let scope = "patient/Patient.rs patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory";
    let t = launch_token(&sb, PUBLIC, "pat-1", scope).await;
    let u = user_token(&sb).await;

    let labs = get_json(&sb, "Observation?_count=200", &t, 200).await;
    let expected = get_json(
        &sb,
        "Observation?patient=pat-1&category=laboratory&_count=200",
        &u,
        200,
    )
    .await;
    assert!(total(&labs) >= 60);
    assert_eq!(total(&labs), total(&expected));
    assert_eq!(match_ids(&labs), match_ids(&expected));
    for r in matches(&labs) {
        assert_eq!(r["category"][0]["coding"][0]["code"], "laboratory");
    }
    let vitals = get_json(&sb, "Observation?category=vital-signs", &t, 200).await;
    assert_eq!(total(&vitals), 0);

    let vital = get_json(
        &sb,
        "Observation?patient=pat-1&category=vital-signs&_count=1",
        &u,
        200,
    )
    .await;
    let vital_id = match_ids(&vital)[0].clone();
    let resp = read(&sb, &format!("Observation/{vital_id}"), Some(&t)).await;
    assert_eq!(resp.status(), 403);
    assert!(challenge(&resp).contains("insufficient_scope"));
    let lab_id = &match_ids(&labs)[0];
    assert_eq!(
        read(&sb, &format!("Observation/{lab_id}"), Some(&t))
            .await
            .status(),
        200
    );
    // Other types are not granted at all.
    let resp = read(&sb, "Condition?patient=pat-1", Some(&t)).await;
    assert_eq!(resp.status(), 403);
    assert!(
        challenge(&resp).contains("scope=\"patient/Condition.s\""),
        "{}",
        challenge(&resp)
    );
    // $everything leaves out what the scopes do not cover.
    let everything = get_json(&sb, "Patient/pat-1/$everything?_count=200", &t, 200).await;
    assert_eq!(total(&everything), 1 + total(&labs));
}

#[tokio::test]
async fn user_and_system_scopes_reach_everyone() {
    let sb = start().await;
    let u = user_token(&sb).await;
    let s = system_token(&sb, "system/Patient.rs system/Observation.rs").await;
    for t in [&u, &s] {
        assert_eq!(read(&sb, "Patient/pat-2", Some(t)).await.status(), 200);
        assert_eq!(read(&sb, "Patient/pat-250", Some(t)).await.status(), 200);
        let obs = get_json(&sb, "Observation?patient=pat-2", t, 200).await;
        assert!(total(&obs) > 0);
        let all = get_json(&sb, "Patient?_count=0", t, 200).await;
        assert_eq!(total(&all), 300);
    }
    // system/Patient.rs system/Observation.rs does not reach Condition.
    let resp = read(&sb, "Condition?patient=pat-2", Some(&s)).await;
    assert_eq!(resp.status(), 403);
    assert!(
        challenge(&resp).contains("scope=\"system/Condition.s\""),
        "{}",
        challenge(&resp)
    );
    // Search needs `s`: a read-only grant cannot search.
    let r_only = access_token(&sb, CONFIDENTIAL, "user/Observation.r").await;
    assert_eq!(
        read(&sb, "Observation/obs-2-1", Some(&r_only))
            .await
            .status(),
        200
    );
    assert_eq!(
        read(&sb, "Observation?patient=pat-2", Some(&r_only))
            .await
            .status(),
        403
    );
    // Writes need c/u/d.
    let resp = send(
        &sb,
        Method::POST,
        "Observation",
        &u,
        Some(&json!({"resourceType": "Observation"})),
        &[],
    )
    .await;
    assert_eq!(resp.status(), 403);
    assert!(
        challenge(&resp).contains("scope=\"user/Observation.c\""),
        "{}",
        challenge(&resp)
    );
}

#[tokio::test]
async fn patient_writer_and_batch_entries_are_authorized_one_by_one() {
    let sb = start().await;
    register_writer(&sb);
    let t = launch_token(&sb, WRITER, "pat-1", "patient/*.cruds").await;
    let obs = |patient: &str| {
        json!({
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": format!("Patient/{patient}")},
            "valueQuantity": {"value": 70.5, "unit": "beats/minute", "system": "http://unitsofmeasure.org", "code": "/min"}
        })
    };
    assert_eq!(
        send(
            &sb,
            Method::POST,
            "Observation",
            &t,
            Some(&obs("pat-1")),
            &[]
        )
        .await
        .status(),
        201
    );
    let resp = send(
        &sb,
        Method::POST,
        "Observation",
        &t,
        Some(&obs("pat-2")),
        &[],
    )
    .await;
    assert_eq!(resp.status(), 403);
    assert!(challenge(&resp).contains("insufficient_scope"));
    // Moving a resource out of the compartment is refused too.
    let mut own = get_json(&sb, "Observation/obs-1-1", &t, 200).await;
    own["subject"]["reference"] = json!("Patient/pat-2");
    assert_eq!(
        send(&sb, Method::PUT, "Observation/obs-1-1", &t, Some(&own), &[])
            .await
            .status(),
        403
    );

    let bundle = json!({
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "Patient/pat-1"}},
            {"request": {"method": "GET", "url": "Patient/pat-2"}},
            {"resource": obs("pat-1"), "request": {"method": "POST", "url": "Observation"}},
            {"resource": obs("pat-3"), "request": {"method": "POST", "url": "Observation"}},
            {"request": {"method": "DELETE", "url": "Observation/obs-2-1"}}
        ]
    });
    let out: Value = send(&sb, Method::POST, "", &t, Some(&bundle), &[])
        .await
        .json()
        .await
        .unwrap();
    let statuses: Vec<&str> = out["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "200 OK",
            "403 Forbidden",
            "201 Created",
            "403 Forbidden",
            "403 Forbidden"
        ]
    );
    // In a transaction, one forbidden entry fails everything.
    let mut tx = bundle.clone();
    tx["type"] = json!("transaction");
    let resp = send(&sb, Method::POST, "", &t, Some(&tx), &[]).await;
    assert_eq!(resp.status(), 403);
    assert!(challenge(&resp).contains("insufficient_scope"));
}
