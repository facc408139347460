//! SMART Backend Services: `grant_type=client_credentials`.

use std::time::Duration;

use serde_json::Value;
use smart_sandbox::{DEMO_SECRET, LaunchDefaults};

use crate::common::*;

const BACKEND: &str = "backend-app";

#[tokio::test]
async fn client_credentials_token_without_refresh() {
    let sb = start().await;
    let key = register_backend(&sb, BACKEND);
    let resp = backend_token(
        &sb,
        &assertion(&sb, BACKEND, &key),
        // system/*.rs is wider than allowed, user/ and openid are not allowed.
        Some("system/Patient.rs system/*.rs user/Patient.rs openid system/Observation.r"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "cache-control"), "no-store");
    assert_eq!(header(&resp, "pragma"), "no-cache");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["scope"], "system/Patient.rs system/Observation.r");
    assert!(body["access_token"].as_str().unwrap().len() >= 22);
    let mut keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["access_token", "expires_in", "scope", "token_type"],
        "no refresh_token, id_token or launch context: {body}"
    );

    sb.set_behavior(|b| b.backend_token_lifetime = Duration::from_secs(60));
    let body: Value = backend_token(
        &sb,
        &assertion(&sb, BACKEND, &key),
        Some("system/Patient.rs"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["expires_in"], 60);
}

#[tokio::test]
async fn backend_token_reads_any_patient_with_system_scope() {
    let sb = start().await;
    let key = register_backend(&sb, BACKEND);
    let body: Value = backend_token(
        &sb,
        &assertion(&sb, BACKEND, &key),
        Some("system/Patient.rs"),
    )
    .await
    .json()
    .await
    .unwrap();
    let access = body["access_token"].as_str();
    let resp = read(&sb, "Patient/pat-2", access).await;
    assert_eq!(resp.status(), 200);
    let patient: Value = resp.json().await.unwrap();
    assert_eq!(patient["id"], "pat-2");
    assert_eq!(read(&sb, "Patient/pat-5", access).await.status(), 200);
    // system/Patient.rs does not reach Practitioner.
    let resp = read(&sb, "Practitioner/prac-1", access).await;
    assert_eq!(resp.status(), 403);
    assert!(header(&resp, "www-authenticate").contains("insufficient_scope"));
}

#[tokio::test]
async fn missing_scope_is_invalid_request() {
    let sb = start().await;
    let key = register_backend(&sb, BACKEND);
    let resp = backend_token(&sb, &assertion(&sb, BACKEND, &key), None).await;
    let d = oauth_error(resp, 400, "invalid_request").await;
    assert!(d.contains("scope is missing"), "{d}");
}

#[tokio::test]
async fn nothing_allowed_is_invalid_scope() {
    let sb = start().await;
    let key = register_backend(&sb, BACKEND);
    let resp = backend_token(
        &sb,
        &assertion(&sb, BACKEND, &key),
        Some("system/*.cruds user/*.rs launch"),
    )
    .await;
    oauth_error(resp, 400, "invalid_scope").await;
}

#[tokio::test]
async fn launch_client_is_unauthorized_for_client_credentials() {
    let sb = start().await;
    let resp = http()
        .post(token_url(&sb))
        .header("authorization", basic(CONFIDENTIAL, DEMO_SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "system/Patient.rs"),
        ])
        .send()
        .await
        .unwrap();
    let d = oauth_error(resp, 400, "unauthorized_client").await;
    assert!(d.contains("client_credentials"), "{d}");

    // A backend client cannot use the authorization endpoint either.
    let mut client = backend_client(BACKEND, inline_keys(&[&es384()]));
    client.redirect_uris = vec![smart_sandbox::DEMO_REDIRECT_URI.into()];
    client.context = LaunchDefaults::default();
    sb.register_client(client);
    let p = pkce();
    let resp = authorize(&sb, &auth_params(&sb, BACKEND, "system/Patient.rs", &p)).await;
    assert_eq!(redirect_params(&resp)["error"], "unauthorized_client");
}
