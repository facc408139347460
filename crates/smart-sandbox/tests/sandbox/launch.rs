use serde_json::{Value, json};
use smart_sandbox::{DEMO_LAUNCH_URI, LaunchContextRequest, SandboxError};

use crate::common::*;

const SCOPE: &str = "launch openid fhirUser patient/*.rs online_access";
/// What is granted for `SCOPE`: everything (identity scopes included).
const GRANTED: &str = SCOPE;

fn with_launch(
    sb: &smart_sandbox::Sandbox,
    client: &str,
    launch: &str,
    p: &Pkce,
) -> Vec<(String, String)> {
    let mut params = auth_params(sb, client, SCOPE, p);
    set(&mut params, "launch", Some(launch));
    params
}

#[tokio::test]
async fn ehr_launch_flow() {
    let sb = start().await;
    let launch = sb
        .issue_launch(
            CONFIDENTIAL,
            LaunchContextRequest {
                patient: Some("pat-3".into()),
                encounter: Some("enc-7".into()),
                user: None,
            },
        )
        .unwrap();
    let p = pkce();
    let resp = authorize(&sb, &with_launch(&sb, CONFIDENTIAL, &launch, &p)).await;
    let q = redirect_params(&resp);
    let resp = exchange(&sb, CONFIDENTIAL, &q["code"], &p).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["scope"], GRANTED);
    assert_eq!(body["patient"], "pat-3");
    assert_eq!(body["encounter"], "enc-7");
    assert_eq!(body["need_patient_banner"], true);
    assert_eq!(
        body["smart_style_url"],
        format!("{}/smart-style.json", origin(&sb))
    );
    assert!(body["refresh_token"].is_string());
    let access = body["access_token"].as_str();
    assert_eq!(read(&sb, "Patient/pat-3", access).await.status(), 200);
    assert_eq!(read(&sb, "Patient/pat-1", access).await.status(), 403);

    // The refresh response repeats the context.
    let resp = token_request(
        &sb,
        CONFIDENTIAL,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    let refreshed: Value = resp.json().await.unwrap();
    assert_eq!(refreshed["patient"], "pat-3");
    assert_eq!(refreshed["need_patient_banner"], true);

    // The launch token is single use.
    let p = pkce();
    let resp = authorize(&sb, &with_launch(&sb, CONFIDENTIAL, &launch, &p)).await;
    assert_eq!(redirect_params(&resp)["error"], "invalid_request");
}

#[tokio::test]
async fn launch_token_checks() {
    let sb = start().await;
    let p = pkce();

    // Issued for another client.
    let launch = sb
        .issue_launch(CONFIDENTIAL, LaunchContextRequest::default())
        .unwrap();
    let resp = authorize(&sb, &with_launch(&sb, PUBLIC, &launch, &p)).await;
    let q = redirect_params(&resp);
    assert_eq!(q["error"], "invalid_request");
    assert!(q["error_description"].contains("different client"));

    // Unknown launch.
    let resp = authorize(&sb, &with_launch(&sb, PUBLIC, "made-up", &p)).await;
    assert_eq!(redirect_params(&resp)["error"], "invalid_request");

    // A launch parameter without the launch scope.
    let launch = sb
        .issue_launch(PUBLIC, LaunchContextRequest::default())
        .unwrap();
    let mut params = with_launch(&sb, PUBLIC, &launch, &p);
    set(&mut params, "scope", Some("patient/*.rs"));
    let q = redirect_params(&authorize(&sb, &params).await);
    assert_eq!(q["error"], "invalid_scope");
    assert_eq!(q["state"], "st-123");

    // Defaults: the client's patient, no encounter.
    let resp = authorize(&sb, &with_launch(&sb, PUBLIC, &launch, &p)).await;
    let code = redirect_params(&resp)["code"].clone();
    let body: Value = exchange(&sb, PUBLIC, &code, &p).await.json().await.unwrap();
    assert_eq!(body["patient"], "pat-1");
    assert!(body.get("encounter").is_none());

    assert!(matches!(
        sb.issue_launch("nobody", LaunchContextRequest::default()),
        Err(SandboxError::UnknownClient(_))
    ));
    assert!(matches!(
        sb.issue_launch(
            PUBLIC,
            LaunchContextRequest {
                patient: Some("pat-4200".into()),
                ..Default::default()
            }
        ),
        Err(SandboxError::UnknownPatient(_))
    ));
}

#[tokio::test]
async fn launch_over_http() {
    let sb = start().await;
    let resp = http()
        .post(format!("{}/sandbox/launch", origin(&sb)))
        .json(&json!({"client_id": PUBLIC, "patient": "pat-2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["iss"], sb.fhir_base());
    let launch = body["launch"].as_str().unwrap();
    let launch_url = url::Url::parse(body["launch_url"].as_str().unwrap()).unwrap();
    assert!(
        launch_url
            .as_str()
            .starts_with(&format!("{DEMO_LAUNCH_URI}?"))
    );
    let q: std::collections::HashMap<String, String> =
        launch_url.query_pairs().into_owned().collect();
    assert_eq!(q["iss"], sb.fhir_base());
    assert_eq!(q["launch"], launch);

    let p = pkce();
    let resp = authorize(&sb, &with_launch(&sb, PUBLIC, launch, &p)).await;
    let code = redirect_params(&resp)["code"].clone();
    let tokens: Value = exchange(&sb, PUBLIC, &code, &p).await.json().await.unwrap();
    assert_eq!(tokens["patient"], "pat-2");

    // Browser trigger: a redirect to the app's launch URL.
    let resp = http()
        .get(format!(
            "{}/sandbox/ehr-launch?client_id={PUBLIC}&patient=pat-4",
            origin(&sb)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let location = header(&resp, "location");
    assert!(
        location.starts_with(&format!("{DEMO_LAUNCH_URI}?iss=")),
        "{location}"
    );

    // Errors.
    let resp = http()
        .post(format!("{}/sandbox/launch", origin(&sb)))
        .json(&json!({"client_id": "nobody"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = http()
        .post(format!("{}/sandbox/launch", origin(&sb)))
        .json(&json!({"client": PUBLIC}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}
