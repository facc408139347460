//! Token introspection (RFC 7662, SMART token-introspection).

use serde_json::{Value, json};
use smart_sandbox::{DEMO_SECRET, LaunchContextRequest, Sandbox};

use crate::common::*;

fn introspect_url(sb: &Sandbox) -> String {
    format!("{}/auth/introspect", origin(sb))
}

/// Introspects `token` as demo-confidential (HTTP Basic).
async fn introspect_basic(sb: &Sandbox, token: &str) -> reqwest::Response {
    http()
        .post(introspect_url(sb))
        .header("authorization", basic(CONFIDENTIAL, DEMO_SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

async fn json_ok(resp: reqwest::Response) -> Value {
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "cache-control"), "no-store");
    resp.json().await.unwrap()
}

/// An EHR launch of demo-confidential with openid fhirUser; the token JSON.
async fn ehr_tokens(sb: &Sandbox) -> Value {
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
    let mut params = auth_params(sb, CONFIDENTIAL, "launch openid fhirUser patient/*.rs", &p);
    set(&mut params, "launch", Some(&launch));
    let q = redirect_params(&authorize(sb, &params).await);
    let resp = exchange(sb, CONFIDENTIAL, &q["code"], &p).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn active_token_describes_grant_context_and_identity() {
    let sb = start().await;
    let tokens = ehr_tokens(&sb).await;
    let access = tokens["access_token"].as_str().unwrap();
    let body = json_ok(introspect_basic(&sb, access).await).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["scope"], tokens["scope"]);
    assert_eq!(body["client_id"], CONFIDENTIAL);
    assert_eq!(body["token_type"], "Bearer");
    let exp = body["exp"].as_u64().unwrap();
    let iat = body["iat"].as_u64().unwrap();
    assert_eq!(exp - iat, 3600);
    assert!(iat.abs_diff(now()) < 60);
    assert_eq!(body["patient"], "pat-3");
    assert_eq!(body["encounter"], "enc-7");
    assert_eq!(body["need_patient_banner"], true);
    assert_eq!(body["smart_style_url"], tokens["smart_style_url"]);
    // iss, sub and fhirUser are those of the id_token.
    let (_, id_claims) = jwt_parts(tokens["id_token"].as_str().unwrap());
    assert_eq!(body["iss"], id_claims["iss"]);
    assert_eq!(body["sub"], id_claims["sub"]);
    assert_eq!(body["sub"], "prac-1");
    assert_eq!(body["fhirUser"], id_claims["fhirUser"]);
    assert_eq!(
        body["fhirUser"],
        format!("{}/Practitioner/prac-1", sb.fhir_base())
    );
    assert_eq!(sb.counters().introspection_requests, 1);

    // No id_token for the grant: no iss/sub/fhirUser.
    let plain = tokens_plain(&sb).await;
    let body = json_ok(introspect_basic(&sb, &plain).await).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["patient"], "pat-1");
    for absent in [
        "iss",
        "sub",
        "fhirUser",
        "need_patient_banner",
        "smart_style_url",
    ] {
        assert!(body.get(absent).is_none(), "{absent} in {body}");
    }
}

async fn tokens_plain(sb: &Sandbox) -> String {
    tokens(sb, PUBLIC, "launch/patient patient/*.rs offline_access").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn inactive_tokens_are_just_active_false() {
    let sb = start().await;
    let body = json_ok(introspect_basic(&sb, "invalid_token_value").await).await;
    assert_eq!(body, json!({"active": false}));

    // Expired.
    let access = tokens_plain(&sb).await;
    sb.expire_access_tokens();
    let body = json_ok(introspect_basic(&sb, &access).await).await;
    assert_eq!(body, json!({"active": false}));

    // Revoked (its code was replayed).
    let p = pkce();
    let c = code(&sb, PUBLIC, "launch/patient patient/*.rs", &p).await;
    let first: Value = exchange(&sb, PUBLIC, &c, &p).await.json().await.unwrap();
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(
        json_ok(introspect_basic(&sb, access).await).await["active"],
        true
    );
    assert_eq!(exchange(&sb, PUBLIC, &c, &p).await.status(), 400);
    let body = json_ok(introspect_basic(&sb, access).await).await;
    assert_eq!(body, json!({"active": false}));

    // A refresh token is not an access token.
    let refresh = tokens(&sb, PUBLIC, "launch/patient offline_access").await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json_ok(introspect_basic(&sb, &refresh).await).await;
    assert_eq!(body, json!({"active": false}));
}

#[tokio::test]
async fn unauthenticated_callers_get_401() {
    let sb = start().await;
    let access = tokens_plain(&sb).await;
    let url = introspect_url(&sb);

    // No authentication at all.
    let resp = http()
        .post(&url)
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(header(&resp, "www-authenticate").starts_with("Bearer"));

    // A public client cannot authenticate.
    let resp = http()
        .post(&url)
        .form(&[("token", access.as_str()), ("client_id", PUBLIC)])
        .send()
        .await
        .unwrap();
    invalid_client(resp).await;

    // A wrong secret.
    let resp = http()
        .post(&url)
        .header("authorization", basic(CONFIDENTIAL, "wrong"))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    invalid_client(resp).await;

    // A bearer token that is not active.
    let resp = http()
        .post(&url)
        .bearer_auth("not-a-token")
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(header(&resp, "www-authenticate").contains("invalid_token"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(sb.counters().introspection_requests, 4);
}

#[tokio::test]
async fn bearer_and_assertion_authenticated_callers() {
    let sb = start().await;
    let access = tokens_plain(&sb).await;

    // Any active access token authorizes introspection of any token.
    let other = tokens(&sb, CONFIDENTIAL, "user/*.rs").await;
    let resp = http()
        .post(introspect_url(&sb))
        .bearer_auth(other["access_token"].as_str().unwrap())
        .form(&[
            ("token", access.as_str()),
            ("token_type_hint", "access_token"),
        ])
        .send()
        .await
        .unwrap();
    let body = json_ok(resp).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], PUBLIC);

    // A backend service authenticates with an assertion and introspects its
    // own token.
    let key = register_backend(&sb, "backend-app");
    let backend: Value = backend_token(
        &sb,
        &assertion(&sb, "backend-app", &key),
        Some("system/Patient.rs"),
    )
    .await
    .json()
    .await
    .unwrap();
    let token = backend["access_token"].as_str().unwrap();
    let resp = post_with_assertion(
        &sb,
        "/auth/introspect",
        &assertion(&sb, "backend-app", &key),
        &[("token", token)],
    )
    .await;
    let body = json_ok(resp).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], "backend-app");
    assert_eq!(body["scope"], "system/Patient.rs");
    assert_eq!(
        body["exp"].as_u64().unwrap() - body["iat"].as_u64().unwrap(),
        300
    );
    assert!(body.get("patient").is_none());

    // The token parameter is required.
    let resp = http()
        .post(introspect_url(&sb))
        .header("authorization", basic(CONFIDENTIAL, DEMO_SECRET))
        .form(&[("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    oauth_error(resp, 400, "invalid_request").await;
}
