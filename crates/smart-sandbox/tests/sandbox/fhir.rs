use serde_json::Value;

use crate::common::*;

#[tokio::test]
async fn patient_read_with_patient_scope() {
    let sb = start().await;
    let body = tokens(&sb, PUBLIC, "launch/patient patient/Patient.rs").await;
    let access = body["access_token"].as_str().unwrap();

    let resp = read(&sb, "Patient/pat-1", Some(access)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "application/fhir+json");
    let patient: Value = resp.json().await.unwrap();
    assert_eq!(patient["resourceType"], "Patient");
    assert_eq!(patient["id"], "pat-1");
    assert_eq!(patient["name"][0]["family"], "Rivera");
    assert_eq!(patient["name"][0]["given"][0], "Amelia");
    assert_eq!(patient["gender"], "female");
    assert_eq!(patient["birthDate"], "1987-04-12");
    assert!(patient["identifier"][0]["value"].is_string());

    // patient/ scopes do not reach other patients.
    let resp = read(&sb, "Patient/pat-2", Some(access)).await;
    assert_eq!(resp.status(), 403);
    assert!(header(&resp, "www-authenticate").starts_with("Bearer error=\"insufficient_scope\""));
    let oo: Value = resp.json().await.unwrap();
    assert_eq!(oo["resourceType"], "OperationOutcome");
}

#[tokio::test]
async fn unauthenticated_and_invalid_tokens() {
    let sb = start().await;
    let resp = read(&sb, "Patient/pat-1", None).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        header(&resp, "www-authenticate"),
        "Bearer realm=\"smart-sandbox\""
    );

    let resp = read(&sb, "Patient/pat-1", Some("not-a-token")).await;
    assert_eq!(resp.status(), 401);
    let www = header(&resp, "www-authenticate");
    assert!(
        www.starts_with(
            "Bearer realm=\"smart-sandbox\", error=\"invalid_token\", error_description=\""
        ),
        "{www}"
    );
    let oo: Value = resp.json().await.unwrap();
    assert_eq!(oo["resourceType"], "OperationOutcome");

    let body = tokens(&sb, PUBLIC, "launch/patient patient/*.rs offline_access").await;
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(read(&sb, "Patient/pat-1", Some(access)).await.status(), 200);
    sb.expire_access_tokens();
    let resp = read(&sb, "Patient/pat-1", Some(access)).await;
    assert_eq!(resp.status(), 401);
    assert!(header(&resp, "www-authenticate").contains("expired"));
    // A refresh gives a working token again.
    let fresh: Value = token_request(
        &sb,
        PUBLIC,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    let access = fresh["access_token"].as_str().unwrap();
    assert_eq!(read(&sb, "Patient/pat-1", Some(access)).await.status(), 200);
}

#[tokio::test]
async fn insufficient_scope_and_user_scopes() {
    let sb = start().await;
    // A grant with no Patient read at all.
    let body = tokens(&sb, PUBLIC, "launch/patient offline_access").await;
    let resp = read(&sb, "Patient/pat-1", body["access_token"].as_str()).await;
    assert_eq!(resp.status(), 403);
    assert!(header(&resp, "www-authenticate").contains("error=\"insufficient_scope\""));

    // user/ scopes reach any patient; unknown ones are 404.
    let body = tokens(&sb, CONFIDENTIAL, "user/*.read").await;
    assert!(body.get("patient").is_none());
    let access = body["access_token"].as_str();
    for id in ["pat-1", "pat-3", "pat-5"] {
        assert_eq!(
            read(&sb, &format!("Patient/{id}"), access).await.status(),
            200
        );
    }
    let resp = read(&sb, "Patient/pat-999", access).await;
    assert_eq!(resp.status(), 404);
    let oo: Value = resp.json().await.unwrap();
    assert_eq!(oo["issue"][0]["code"], "not-found");

    let resp = read(&sb, "Practitioner/prac-1", access).await;
    assert_eq!(resp.status(), 200);
    let prac: Value = resp.json().await.unwrap();
    assert_eq!(prac["resourceType"], "Practitioner");
    assert_eq!(
        read(&sb, "Practitioner/prac-10", access).await.status(),
        200
    );
    assert_eq!(
        read(&sb, "Practitioner/prac-99", access).await.status(),
        404
    );
    assert_eq!(
        read(&sb, "Observation?patient=pat-1", access)
            .await
            .status(),
        200
    );
    assert_eq!(sb.counters().fhir_requests, 9);
    assert_eq!(sb.counters().fhir_reads, 8);
    assert_eq!(sb.counters().fhir_searches, 1);
}

#[tokio::test]
async fn patients_listing() {
    let sb = start().await;
    let patients = sb.patients();
    assert_eq!(patients.len(), 5);
    assert_eq!(patients[0].id, "pat-1");
    assert_eq!(patients[0].name, "Amelia Rose Rivera");
    assert_eq!(patients[1].name, "Daniel Okafor");
    assert_eq!(sb.patient_count(), 300);
    assert!(patients.iter().all(|p| p.id.starts_with("pat-")));
}

#[tokio::test]
async fn generated_patients_can_be_launched() {
    let sb = start().await;
    let launch = sb
        .issue_launch(
            PUBLIC,
            smart_sandbox::LaunchContextRequest {
                patient: Some("pat-250".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let p = pkce();
    let mut params = auth_params(&sb, PUBLIC, "launch patient/*.rs", &p);
    params.push(("launch".into(), launch));
    let code = redirect_params(&authorize(&sb, &params).await)["code"].clone();
    let body: Value = exchange(&sb, PUBLIC, &code, &p).await.json().await.unwrap();
    assert_eq!(body["patient"], "pat-250");
    let access = body["access_token"].as_str().unwrap();
    let patient = get_json(&sb, "Patient/pat-250", access, 200).await;
    assert_eq!(patient["identifier"][0]["value"], "MRN-0250");
    let obs = get_json(&sb, "Observation", access, 200).await;
    assert!(total(&obs) > 0);
    assert!(
        matches(&obs)
            .iter()
            .all(|r| r["subject"]["reference"] == "Patient/pat-250")
    );
    assert_eq!(read(&sb, "Patient/pat-1", Some(access)).await.status(), 403);
}
