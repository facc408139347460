//! Defect switches: each test shows the strict default refusing a
//! non-conformant request (or answering normally) and the switch letting the
//! defect through, over real HTTP.

use serde_json::Value;
use smart_sandbox::{Sandbox, TokenUnavailableStatus};

use crate::common::*;

const SCOPE: &str = "launch/patient patient/*.rs offline_access";

#[tokio::test]
async fn plain_pkce_is_refused_unless_accept_plain_pkce() {
    let sb = start().await;
    // A plain challenge is the verifier itself.
    let verifier = pkce().verifier;
    let plain = Pkce {
        challenge: verifier.clone(),
        verifier,
    };
    let mut params = auth_params(&sb, PUBLIC, SCOPE, &plain);
    set(&mut params, "code_challenge_method", Some("plain"));

    let q = redirect_params(&authorize(&sb, &params).await);
    assert_eq!(q["error"], "invalid_request");
    assert!(q["error_description"].contains("plain"));

    sb.set_behavior(|b| b.accept_plain_pkce = true);
    let q = redirect_params(&authorize(&sb, &params).await);
    let code = q.get("code").expect("a code for a plain challenge");
    assert_eq!(exchange(&sb, PUBLIC, code, &plain).await.status(), 200);

    // The verifier must still equal the challenge.
    let q = redirect_params(&authorize(&sb, &params).await);
    let wrong = Pkce {
        verifier: pkce().verifier,
        challenge: String::new(),
    };
    let resp = exchange(&sb, PUBLIC, &q["code"], &wrong).await;
    oauth_error(resp, 400, "invalid_grant").await;
}

#[tokio::test]
async fn token_responses_are_no_store_unless_omit_token_no_store() {
    let sb = start().await;
    let p = pkce();
    let c = code(&sb, PUBLIC, SCOPE, &p).await;
    let resp = exchange(&sb, PUBLIC, &c, &p).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "cache-control"), "no-store");
    assert_eq!(header(&resp, "pragma"), "no-cache");

    sb.set_behavior(|b| b.omit_token_no_store = true);
    let p = pkce();
    let c = code(&sb, PUBLIC, SCOPE, &p).await;
    let resp = exchange(&sb, PUBLIC, &c, &p).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "cache-control"), "");
    assert_eq!(header(&resp, "pragma"), "");
}

#[tokio::test]
async fn a_replayed_code_is_refused_unless_accept_replayed_codes() {
    let sb = start().await;
    let p = pkce();
    let c = code(&sb, PUBLIC, SCOPE, &p).await;
    let first: Value = exchange(&sb, PUBLIC, &c, &p).await.json().await.unwrap();
    let description = oauth_error(exchange(&sb, PUBLIC, &c, &p).await, 400, "invalid_grant").await;
    assert!(description.contains("already used"), "{description}");
    // The strict server also revoked what the first redemption issued.
    let token = first["access_token"].as_str().unwrap();
    assert_eq!(read(&sb, "Patient/pat-1", Some(token)).await.status(), 401);

    sb.set_behavior(|b| b.accept_replayed_codes = true);
    let p = pkce();
    let c = code(&sb, PUBLIC, SCOPE, &p).await;
    let first: Value = exchange(&sb, PUBLIC, &c, &p).await.json().await.unwrap();
    let resp = exchange(&sb, PUBLIC, &c, &p).await;
    assert_eq!(resp.status(), 200, "the replay is accepted");
    let second: Value = resp.json().await.unwrap();
    assert_ne!(first["access_token"], second["access_token"]);
    for body in [&first, &second] {
        let token = body["access_token"].as_str().unwrap();
        assert_eq!(read(&sb, "Patient/pat-1", Some(token)).await.status(), 200);
    }
}

#[tokio::test]
async fn a_replayed_jti_is_refused_unless_accept_replayed_jti() {
    let sb = start().await;
    let key = register_backend(&sb, "backend-app");
    let assertion = assertion(&sb, "backend-app", &key);
    assert_eq!(
        backend_token(&sb, &assertion, Some(BACKEND_SCOPES))
            .await
            .status(),
        200
    );
    let description =
        invalid_client(backend_token(&sb, &assertion, Some(BACKEND_SCOPES)).await).await;
    assert!(
        description.contains("jti was already used"),
        "{description}"
    );

    sb.set_behavior(|b| b.accept_replayed_jti = true);
    let resp = backend_token(&sb, &assertion, Some(BACKEND_SCOPES)).await;
    assert_eq!(resp.status(), 200, "the replayed jti is accepted");
}

/// A refresh request with only the refresh token (and optionally `client_id`),
/// no client authentication.
async fn unauthenticated_refresh(
    sb: &Sandbox,
    refresh_token: &str,
    client_id: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    if let Some(id) = client_id {
        form.push(("client_id", id));
    }
    http().post(token_url(sb)).form(&form).send().await.unwrap()
}

#[tokio::test]
async fn a_confidential_refresh_needs_authentication_unless_skip_refresh_client_auth() {
    let sb = start().await;
    let body = tokens(&sb, CONFIDENTIAL, SCOPE).await;
    let refresh = body["refresh_token"].as_str().unwrap();
    for client_id in [None, Some(CONFIDENTIAL)] {
        let resp = unauthenticated_refresh(&sb, refresh, client_id).await;
        let description = oauth_error(resp, 400, "invalid_client").await;
        assert!(description.contains("confidential"), "{description}");
    }

    sb.set_behavior(|b| b.skip_refresh_client_auth = true);
    let resp = unauthenticated_refresh(&sb, refresh, None).await;
    assert_eq!(resp.status(), 200, "refreshed without authentication");
    let body: Value = resp.json().await.unwrap();
    let refresh = body["refresh_token"].as_str().unwrap();
    let resp = unauthenticated_refresh(&sb, refresh, Some(CONFIDENTIAL)).await;
    assert_eq!(resp.status(), 200);
    // Another client's id still does not pass for the owner.
    let body: Value = resp.json().await.unwrap();
    let refresh = body["refresh_token"].as_str().unwrap();
    let resp = unauthenticated_refresh(&sb, refresh, Some(PUBLIC)).await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn a_wrong_or_missing_aud_is_refused_unless_ignore_aud() {
    let sb = start().await;
    let p = pkce();
    let mut wrong = auth_params(&sb, PUBLIC, SCOPE, &p);
    set(&mut wrong, "aud", Some("https://other.example/fhir"));
    let mut missing = auth_params(&sb, PUBLIC, SCOPE, &p);
    set(&mut missing, "aud", None);
    for params in [&wrong, &missing] {
        let q = redirect_params(&authorize(&sb, params).await);
        assert_eq!(q["error"], "invalid_request");
        assert!(q["error_description"].contains("aud"));
    }

    sb.set_behavior(|b| b.ignore_aud = true);
    for params in [&wrong, &missing] {
        let q = redirect_params(&authorize(&sb, params).await);
        assert!(q.contains_key("code"), "{q:?}");
    }
}

#[tokio::test]
async fn fhir_needs_a_token_unless_fhir_without_token() {
    let sb = start().await;
    assert_eq!(read(&sb, "Patient/pat-1", None).await.status(), 401);

    sb.set_behavior(|b| b.fhir_without_token = true);
    let resp = read(&sb, "Patient/pat-2", None).await;
    assert_eq!(resp.status(), 200, "served without a token");
    let patient: Value = resp.json().await.unwrap();
    assert_eq!(patient["id"], "pat-2");
    // A token that is sent is still checked.
    assert_eq!(
        read(&sb, "Patient/pat-1", Some("not-a-token"))
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn the_token_endpoint_answers_temporarily_unavailable_when_asked() {
    let sb = start().await;
    let p = pkce();
    let c = code(&sb, PUBLIC, SCOPE, &p).await;

    sb.set_behavior(|b| b.token_unavailable = 1);
    let resp = exchange(&sb, PUBLIC, &c, &p).await;
    assert_eq!(header(&resp, "retry-after"), "1");
    oauth_error(resp, 503, "temporarily_unavailable").await;
    // Counted down: the next request is served, the code still unused.
    assert_eq!(exchange(&sb, PUBLIC, &c, &p).await.status(), 200);

    sb.set_behavior(|b| {
        b.token_unavailable = 1;
        b.token_unavailable_status = TokenUnavailableStatus::BadRequest;
    });
    let resp = token_request(&sb, PUBLIC, &[("grant_type", "refresh_token")]).await;
    assert_eq!(header(&resp, "retry-after"), "");
    oauth_error(resp, 400, "temporarily_unavailable").await;
    assert_eq!(sb.counters().token_requests, 3);
}
