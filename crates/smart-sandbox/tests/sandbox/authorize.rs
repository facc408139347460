use smart_sandbox::{ClientAuth, ClientRegistration, LaunchDefaults, SandboxConfig};

use crate::common::*;

const SCOPE: &str = "launch/patient patient/*.rs offline_access";

/// Asserts a redirect error with the original state and returns the
/// description.
fn redirect_error(resp: &reqwest::Response, error: &str) -> String {
    let params = redirect_params(resp);
    assert_eq!(
        params.get("error").map(String::as_str),
        Some(error),
        "{params:?}"
    );
    assert_eq!(params.get("state").map(String::as_str), Some("st-123"));
    assert!(!params.contains_key("code"));
    params["error_description"].clone()
}

#[tokio::test]
async fn unknown_redirect_uri_is_not_redirected() {
    let sb = start().await;
    let p = pkce();
    for uri in [
        "http://127.0.0.1:8765/callback/",
        "http://127.0.0.1:8765/Callback",
        "http://localhost:8765/callback",
        "https://evil.example/callback",
    ] {
        let mut params = auth_params(&sb, PUBLIC, SCOPE, &p);
        set(&mut params, "redirect_uri", Some(uri));
        let resp = authorize(&sb, &params).await;
        assert_eq!(resp.status(), 400, "{uri}");
        assert!(resp.headers().get("location").is_none());
        assert!(header(&resp, "content-type").starts_with("text/html"));
        let body = resp.text().await.unwrap();
        assert!(body.contains("not registered"), "{body}");
    }
    // Unknown client and missing redirect_uri: also no redirect.
    let mut params = auth_params(&sb, "nobody", SCOPE, &p);
    let resp = authorize(&sb, &params).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
    set(&mut params, "client_id", Some(PUBLIC));
    set(&mut params, "redirect_uri", None);
    let resp = authorize(&sb, &params).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
}

#[tokio::test]
async fn pkce_is_required_and_plain_rejected() {
    let sb = start().await;
    let p = pkce();

    let mut params = auth_params(&sb, PUBLIC, SCOPE, &p);
    set(&mut params, "code_challenge_method", Some("plain"));
    set(&mut params, "code_challenge", Some(&p.verifier));
    let d = redirect_error(&authorize(&sb, &params).await, "invalid_request");
    assert!(d.contains("plain"), "{d}");

    let mut params = auth_params(&sb, PUBLIC, SCOPE, &p);
    set(&mut params, "code_challenge_method", None);
    let d = redirect_error(&authorize(&sb, &params).await, "invalid_request");
    assert!(d.contains("code_challenge_method"), "{d}");

    let mut params = auth_params(&sb, PUBLIC, SCOPE, &p);
    set(&mut params, "code_challenge", None);
    set(&mut params, "code_challenge_method", None);
    let d = redirect_error(&authorize(&sb, &params).await, "invalid_request");
    assert!(d.contains("code_challenge"), "{d}");
}

#[tokio::test]
async fn aud_must_match_byte_for_byte() {
    let sb = start().await;
    let p = pkce();
    let base = sb.fhir_base();
    for aud in [
        format!("{base}/"),
        base.replace("127.0.0.1", "localhost"),
        base.to_uppercase(),
    ] {
        let mut params = auth_params(&sb, PUBLIC, SCOPE, &p);
        set(&mut params, "aud", Some(&aud));
        let d = redirect_error(&authorize(&sb, &params).await, "invalid_request");
        assert!(d.contains("aud"), "{d}");
    }
    let mut params = auth_params(&sb, PUBLIC, SCOPE, &p);
    set(&mut params, "aud", None);
    redirect_error(&authorize(&sb, &params).await, "invalid_request");
}

#[tokio::test]
async fn other_request_errors() {
    let sb = start().await;
    let p = pkce();

    let mut params = auth_params(&sb, PUBLIC, SCOPE, &p);
    set(&mut params, "response_type", Some("token"));
    redirect_error(&authorize(&sb, &params).await, "unsupported_response_type");

    let mut params = auth_params(&sb, PUBLIC, SCOPE, &p);
    set(&mut params, "scope", None);
    redirect_error(&authorize(&sb, &params).await, "invalid_scope");

    let mut params = auth_params(&sb, PUBLIC, SCOPE, &p);
    params.push(("scope".into(), "patient/*.rs".into()));
    let d = redirect_error(&authorize(&sb, &params).await, "invalid_request");
    assert!(d.contains("more than once"), "{d}");

    // `launch` scope without a launch parameter.
    let params = auth_params(&sb, PUBLIC, "launch patient/*.rs", &p);
    redirect_error(&authorize(&sb, &params).await, "invalid_request");

    // Nothing requested is allowed for the client.
    let params = auth_params(&sb, PUBLIC, "system/*.rs", &p);
    redirect_error(&authorize(&sb, &params).await, "invalid_scope");

    // Missing state: error without state.
    let mut params = auth_params(&sb, PUBLIC, SCOPE, &p);
    set(&mut params, "state", None);
    let resp = authorize(&sb, &params).await;
    let q = redirect_params(&resp);
    assert_eq!(q["error"], "invalid_request");
    assert!(!q.contains_key("state"));
    assert_eq!(sb.counters().authorize_requests, 6);
}

#[tokio::test]
async fn post_authorize_and_scope_intersection() {
    let sb = start().await;
    let p = pkce();
    let params = auth_params(
        &sb,
        PUBLIC,
        "launch/patient patient/*.rs user/*.cruds system/*.rs offline_access",
        &p,
    );
    let resp = http()
        .post(format!("{}/auth/authorize", origin(&sb)))
        .form(&params)
        .send()
        .await
        .unwrap();
    let q = redirect_params(&resp);
    assert_eq!(q["state"], "st-123");
    let resp = exchange(&sb, PUBLIC, &q["code"], &p).await;
    let body: serde_json::Value = resp.json().await.unwrap();
    // user/*.cruds and system/*.rs are not allowed for the demo client.
    assert_eq!(body["scope"], "launch/patient patient/*.rs offline_access");
    assert_eq!(body["patient"], "pat-1");
}

#[tokio::test]
async fn denial_and_redirect_uri_with_query() {
    let redirect = "http://127.0.0.1:9000/cb?app=1";
    let client = ClientRegistration {
        client_id: "denier".into(),
        auth: ClientAuth::Public,
        redirect_uris: vec![redirect.into()],
        launch_uri: None,
        scopes: "launch/patient patient/*.rs".into(),
        grant_types: vec!["authorization_code".into()],
        context: LaunchDefaults {
            approve: false,
            ..LaunchDefaults::default()
        },
    };
    let sb = start_with(SandboxConfig {
        clients: vec![client.clone()],
        ..SandboxConfig::default()
    })
    .await;
    let p = pkce();
    let mut params = auth_params(&sb, "denier", SCOPE, &p);
    set(&mut params, "redirect_uri", Some(redirect));
    let resp = authorize(&sb, &params).await;
    assert_eq!(resp.status(), 302);
    let location = header(&resp, "location");
    assert!(location.starts_with(&format!("{redirect}&")), "{location}");
    assert!(location.contains("error=access_denied"));
    assert!(location.contains("state=st-123"));

    sb.register_client(ClientRegistration {
        context: LaunchDefaults::default(),
        ..client
    });
    let resp = authorize(&sb, &params).await;
    let location = header(&resp, "location");
    assert!(
        location.starts_with(&format!("{redirect}&code=")),
        "{location}"
    );
}

#[tokio::test]
async fn every_authorization_response_names_the_issuer_rfc_9207() {
    let sb = start().await;
    let p = pkce();
    let config: serde_json::Value = http()
        .get(format!(
            "{}/.well-known/smart-configuration",
            sb.fhir_base()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        config["authorization_response_iss_parameter_supported"],
        serde_json::json!(true)
    );
    let issuer = config["issuer"].as_str().unwrap().to_owned();

    // Success and error redirects alike carry the configuration's issuer.
    let q = redirect_params(&authorize(&sb, &auth_params(&sb, PUBLIC, SCOPE, &p)).await);
    assert!(q.contains_key("code"));
    assert_eq!(q.get("iss"), Some(&issuer), "{q:?}");
    let q = redirect_params(&authorize(&sb, &auth_params(&sb, PUBLIC, "system/*.rs", &p)).await);
    assert_eq!(q["error"], "invalid_scope");
    assert_eq!(q.get("iss"), Some(&issuer), "{q:?}");

    // The switches for client tests: no `iss`, or another server's.
    sb.set_behavior(|b| b.authorization_response_iss = smart_sandbox::IssParameter::Omitted);
    let q = redirect_params(&authorize(&sb, &auth_params(&sb, PUBLIC, SCOPE, &p)).await);
    assert!(q.contains_key("code") && !q.contains_key("iss"), "{q:?}");
    sb.set_behavior(|b| b.authorization_response_iss = smart_sandbox::IssParameter::Wrong);
    let q = redirect_params(&authorize(&sb, &auth_params(&sb, PUBLIC, SCOPE, &p)).await);
    assert!(q.contains_key("iss") && q["iss"] != issuer, "{q:?}");
}
