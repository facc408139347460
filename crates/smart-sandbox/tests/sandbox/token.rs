use std::time::Duration;

use serde_json::Value;
use smart_sandbox::{DEMO_REDIRECT_URI, DEMO_SECRET};

use crate::common::*;

const SCOPE: &str = "launch/patient openid fhirUser patient/*.rs offline_access";
/// What is granted for `SCOPE`: everything (identity scopes included).
const GRANTED: &str = SCOPE;

#[tokio::test]
async fn public_code_flow() {
    let sb = start().await;
    let p = pkce();
    let c = code(&sb, PUBLIC, SCOPE, &p).await;
    let resp = exchange(&sb, PUBLIC, &c, &p).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "cache-control"), "no-store");
    assert_eq!(header(&resp, "pragma"), "no-cache");
    assert!(header(&resp, "content-type").starts_with("application/json"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], GRANTED);
    assert_eq!(body["patient"], "pat-1");
    // openid was granted: an id_token comes with the tokens.
    assert_eq!(body["id_token"].as_str().unwrap().split('.').count(), 3);
    assert!(body.get("encounter").is_none());
    // Standalone launch: no banner or style.
    assert!(body.get("need_patient_banner").is_none());
    assert!(body.get("smart_style_url").is_none());
    assert!(body.get("fhirContext").is_none());
    let access = body["access_token"].as_str().unwrap();
    let refresh = body["refresh_token"].as_str().unwrap();
    assert!(access.len() >= 22 && refresh.len() >= 22 && access != refresh);
    assert!(
        access
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    let counters = sb.counters();
    assert_eq!(counters.authorize_requests, 1);
    assert_eq!(counters.token_requests, 1);
    assert_eq!(counters.refresh_requests, 0);
}

#[tokio::test]
async fn confidential_basic_code_flow() {
    let sb = start().await;
    let body = tokens(&sb, CONFIDENTIAL, "patient/*.rs").await;
    assert_eq!(body["scope"], "patient/*.rs");
    assert_eq!(body["patient"], "pat-1");
    // No offline_access/online_access: no refresh token.
    assert!(body.get("refresh_token").is_none());

    // Credentials are form-urlencoded before base64 (RFC 6749 §2.3.1).
    let p = pkce();
    let c = code(&sb, CONFIDENTIAL, "patient/*.rs", &p).await;
    let encoded = format!("Basic {}", base64_of("demo-confidential:demo%2Dsecret"));
    let resp = http()
        .post(format!("{}/auth/token", origin(&sb)))
        .header("authorization", encoded)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", c.as_str()),
            ("redirect_uri", DEMO_REDIRECT_URI),
            ("code_verifier", p.verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn client_authentication_failures() {
    let sb = start().await;
    let url = format!("{}/auth/token", origin(&sb));
    let p = pkce();
    let c = code(&sb, CONFIDENTIAL, "patient/*.rs", &p).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", c.as_str()),
        ("redirect_uri", DEMO_REDIRECT_URI),
        ("code_verifier", p.verifier.as_str()),
    ];

    // Confidential client sending only client_id.
    let mut with_id = form.to_vec();
    with_id.push(("client_id", CONFIDENTIAL));
    let resp = http().post(&url).form(&with_id).send().await.unwrap();
    assert!(header(&resp, "www-authenticate").is_empty());
    // No HTTP authentication attempted: 400, not a 401 without a challenge.
    let d = oauth_error(resp, 400, "invalid_client").await;
    assert!(d.contains("HTTP Basic"), "{d}");

    // Wrong secret.
    let resp = http()
        .post(&url)
        .header("authorization", basic(CONFIDENTIAL, "wrong"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&resp, "www-authenticate"),
        "Basic realm=\"smart-sandbox\""
    );
    let d = oauth_error(resp, 401, "invalid_client").await;
    assert!(d.contains("secret"), "{d}");

    // client_secret_post is not accepted.
    let mut post = with_id.clone();
    post.push(("client_secret", DEMO_SECRET));
    let resp = http().post(&url).form(&post).send().await.unwrap();
    oauth_error(resp, 400, "invalid_client").await;

    // Unknown public client, and no client identification at all.
    let mut unknown = form.to_vec();
    unknown.push(("client_id", "nobody"));
    let resp = http().post(&url).form(&unknown).send().await.unwrap();
    oauth_error(resp, 400, "invalid_client").await;
    let resp = http().post(&url).form(&form).send().await.unwrap();
    oauth_error(resp, 400, "invalid_client").await;

    // Public client authenticating with Basic.
    let resp = http()
        .post(&url)
        .header("authorization", basic(PUBLIC, "x"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&resp, "www-authenticate"),
        "Basic realm=\"smart-sandbox\""
    );
    oauth_error(resp, 401, "invalid_client").await;

    // None of the failures consumed the code.
    let resp = exchange(&sb, CONFIDENTIAL, &c, &p).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn invalid_grant_descriptions_are_distinct() {
    let sb = start().await;
    let mut descriptions = Vec::new();

    // Reused code: the second exchange fails and the first tokens die.
    let p = pkce();
    let c = code(&sb, PUBLIC, SCOPE, &p).await;
    let first: Value = exchange(&sb, PUBLIC, &c, &p).await.json().await.unwrap();
    let access = first["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        read(&sb, "Patient/pat-1", Some(&access)).await.status(),
        200
    );
    let d = oauth_error(exchange(&sb, PUBLIC, &c, &p).await, 400, "invalid_grant").await;
    assert!(d.contains("already used"), "{d}");
    descriptions.push(d);
    assert_eq!(
        read(&sb, "Patient/pat-1", Some(&access)).await.status(),
        401
    );
    let resp = token_request(
        &sb,
        PUBLIC,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    oauth_error(resp, 400, "invalid_grant").await;

    // Wrong verifier.
    let p = pkce();
    let c = code(&sb, PUBLIC, SCOPE, &p).await;
    let other = pkce();
    let d = oauth_error(
        exchange(&sb, PUBLIC, &c, &other).await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(d.contains("code_verifier does not match"), "{d}");
    descriptions.push(d);

    // Wrong redirect_uri.
    let p = pkce();
    let c = code(&sb, PUBLIC, SCOPE, &p).await;
    let resp = token_request(
        &sb,
        PUBLIC,
        &[
            ("grant_type", "authorization_code"),
            ("code", &c),
            ("redirect_uri", "http://127.0.0.1:8765/other"),
            ("code_verifier", &p.verifier),
        ],
    )
    .await;
    let d = oauth_error(resp, 400, "invalid_grant").await;
    assert!(d.contains("redirect_uri"), "{d}");
    descriptions.push(d);

    // Missing verifier.
    let p = pkce();
    let c = code(&sb, PUBLIC, SCOPE, &p).await;
    let resp = token_request(
        &sb,
        PUBLIC,
        &[
            ("grant_type", "authorization_code"),
            ("code", &c),
            ("redirect_uri", DEMO_REDIRECT_URI),
        ],
    )
    .await;
    descriptions.push(oauth_error(resp, 400, "invalid_grant").await);

    // Code issued to another client.
    let p = pkce();
    let c = code(&sb, CONFIDENTIAL, SCOPE, &p).await;
    descriptions.push(oauth_error(exchange(&sb, PUBLIC, &c, &p).await, 400, "invalid_grant").await);

    // Unknown code.
    descriptions.push(
        oauth_error(
            exchange(&sb, PUBLIC, "no-such-code", &p).await,
            400,
            "invalid_grant",
        )
        .await,
    );

    // Expired code.
    sb.set_behavior(|b| b.code_lifetime = Duration::from_millis(1));
    let p = pkce();
    let c = code(&sb, PUBLIC, SCOPE, &p).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let d = oauth_error(exchange(&sb, PUBLIC, &c, &p).await, 400, "invalid_grant").await;
    assert!(d.contains("expired"), "{d}");
    descriptions.push(d);

    let mut unique = descriptions.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), descriptions.len(), "{descriptions:#?}");
}

#[tokio::test]
async fn request_format_errors() {
    let sb = start().await;
    let url = format!("{}/auth/token", origin(&sb));
    let resp = token_request(&sb, PUBLIC, &[("grant_type", "password")]).await;
    let d = oauth_error(resp, 400, "unsupported_grant_type").await;
    assert!(d.contains("client_credentials"), "{d}");
    let resp = token_request(&sb, PUBLIC, &[("code", "x")]).await;
    oauth_error(resp, 400, "invalid_request").await;
    let resp = http()
        .post(&url)
        .json(&serde_json::json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    oauth_error(resp, 400, "invalid_request").await;
    let resp = token_request(
        &sb,
        PUBLIC,
        &[
            ("grant_type", "refresh_token"),
            ("grant_type", "refresh_token"),
        ],
    )
    .await;
    oauth_error(resp, 400, "invalid_request").await;
}

async fn refresh(
    sb: &smart_sandbox::Sandbox,
    token: &str,
    scope: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    token_request(sb, PUBLIC, &form).await
}

#[tokio::test]
async fn refresh_rotation_and_reuse() {
    let sb = start().await;
    let first = tokens(&sb, PUBLIC, SCOPE).await;
    let r1 = first["refresh_token"].as_str().unwrap();

    let resp = refresh(&sb, r1, None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "cache-control"), "no-store");
    assert_eq!(header(&resp, "pragma"), "no-cache");
    let second: Value = resp.json().await.unwrap();
    assert_eq!(second["scope"], GRANTED);
    assert_eq!(second["patient"], "pat-1");
    assert_eq!(second["expires_in"], 3600);
    let r2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(r1, r2);
    let a2 = second["access_token"].as_str().unwrap();
    assert_eq!(read(&sb, "Patient/pat-1", Some(a2)).await.status(), 200);

    // Narrowing is allowed; widening is not.
    let resp = refresh(&sb, r2, Some("patient/Patient.rs")).await;
    let third: Value = resp.json().await.unwrap();
    assert_eq!(third["scope"], "patient/Patient.rs");
    let r3 = third["refresh_token"].as_str().unwrap();
    let d = oauth_error(
        refresh(&sb, r3, Some("user/*.rs")).await,
        400,
        "invalid_scope",
    )
    .await;
    assert!(d.contains("user/*.rs"), "{d}");

    // Reusing a rotated-out token fails and revokes the grant.
    let d = oauth_error(refresh(&sb, r1, None).await, 400, "invalid_grant").await;
    assert!(d.contains("already used"), "{d}");
    assert_eq!(read(&sb, "Patient/pat-1", Some(a2)).await.status(), 401);
    oauth_error(refresh(&sb, r3, None).await, 400, "invalid_grant").await;

    // Refresh token bound to its client.
    let other = tokens(&sb, CONFIDENTIAL, SCOPE).await;
    let resp = refresh(&sb, other["refresh_token"].as_str().unwrap(), None).await;
    oauth_error(resp, 400, "invalid_grant").await;
    assert_eq!(sb.counters().refresh_requests, 6);
}

#[tokio::test]
async fn refresh_behaviour_switches() {
    let sb = start().await;
    sb.set_behavior(|b| {
        b.refresh_returns_refresh_token = false;
        b.lowercase_token_type = true;
        b.access_token_lifetime = Duration::from_secs(120);
    });
    let first = tokens(&sb, PUBLIC, SCOPE).await;
    assert_eq!(first["token_type"], "bearer");
    assert_eq!(first["expires_in"], 120);
    let r1 = first["refresh_token"].as_str().unwrap();
    for _ in 0..2 {
        let body: Value = refresh(&sb, r1, None).await.json().await.unwrap();
        assert!(body.get("refresh_token").is_none(), "{body}");
        assert!(body["access_token"].is_string());
    }

    sb.set_behavior(|b| {
        b.refresh_returns_refresh_token = true;
        b.rotate_refresh_tokens = false;
    });
    for _ in 0..2 {
        let body: Value = refresh(&sb, r1, None).await.json().await.unwrap();
        assert_eq!(body["refresh_token"], r1);
    }
}
