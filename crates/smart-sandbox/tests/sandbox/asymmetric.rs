//! `private_key_jwt` client authentication (RFC 7523 + SMART
//! client-confidential-asymmetric): each rejected assertion gets 400
//! `invalid_client` with its own description.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use smart_jose::{Algorithm, ClientAssertion, Jwks, PrivateKey, PublicJwk, client_assertion};
use smart_sandbox::{ClientAuth, ClientRegistration, DEMO_REDIRECT_URI, LaunchDefaults, Sandbox};
use tokio::sync::RwLock;

use crate::common::*;

const BACKEND: &str = "backend-app";

#[tokio::test]
async fn replayed_jti_is_rejected() {
    let sb = start().await;
    let key = register_backend(&sb, BACKEND);
    let jwt = assertion(&sb, BACKEND, &key);
    let first = backend_token(&sb, &jwt, Some("system/Patient.rs")).await;
    assert_eq!(first.status(), 200);
    let d = invalid_client(backend_token(&sb, &jwt, Some("system/Patient.rs")).await).await;
    assert!(d.contains("jti was already used"), "{d}");
}

#[tokio::test]
async fn exp_more_than_five_minutes_ahead_is_rejected() {
    let sb = start().await;
    let key = register_backend(&sb, BACKEND);
    let mut claims = assertion_claims(&sb, BACKEND);
    claims["exp"] = json!(now() + 600);
    let resp = backend_token(&sb, &sign(&key, &claims, None), Some("system/Patient.rs")).await;
    let d = invalid_client(resp).await;
    assert!(
        d.contains("exp is more than 5 minutes in the future"),
        "{d}"
    );
}

#[tokio::test]
async fn expired_assertion_is_rejected() {
    let sb = start().await;
    let key = register_backend(&sb, BACKEND);
    let mut claims = assertion_claims(&sb, BACKEND);
    claims["iat"] = json!(now() - 400);
    claims["exp"] = json!(now() - 60);
    let resp = backend_token(&sb, &sign(&key, &claims, None), Some("system/Patient.rs")).await;
    let d = invalid_client(resp).await;
    assert!(d.contains("assertion expired"), "{d}");
}

#[tokio::test]
async fn wrong_aud_is_rejected() {
    let sb = start().await;
    let key = register_backend(&sb, BACKEND);
    let mut claims = assertion_claims(&sb, BACKEND);
    // The FHIR base is not the token endpoint.
    claims["aud"] = json!(sb.fhir_base());
    let resp = backend_token(&sb, &sign(&key, &claims, None), Some("system/Patient.rs")).await;
    let d = invalid_client(resp).await;
    assert!(
        d.contains(&format!("aud must be {}", token_url(&sb))),
        "{d}"
    );
}

#[tokio::test]
async fn unknown_kid_is_rejected() {
    let sb = start().await;
    register_backend(&sb, BACKEND);
    let stranger = es384();
    let claims = assertion_claims(&sb, BACKEND);
    let resp = backend_token(
        &sb,
        &sign(&stranger, &claims, None),
        Some("system/Patient.rs"),
    )
    .await;
    let d = invalid_client(resp).await;
    assert!(
        d.contains(&format!(
            "no key with kid \"{}\" in the client's JWKS",
            stranger.kid()
        )),
        "{d}"
    );
}

#[tokio::test]
async fn bad_signature_is_rejected() {
    let sb = start().await;
    // The registered key carries the signer's kid, but it is another key: the
    // assertion names a registered kid yet was not signed by that key.
    let signer = es384();
    let other = es384();
    let mut jwk = other.public_jwk().into_map();
    jwk.insert("kid".into(), json!(signer.kid()));
    sb.register_client(backend_client(
        BACKEND,
        ClientAuth::PrivateKeyJwt {
            jwks: Some(Jwks::new(vec![PublicJwk::from_map(jwk)])),
            jwks_url: None,
        },
    ));
    let jwt = assertion(&sb, BACKEND, &signer);
    let d = invalid_client(backend_token(&sb, &jwt, Some("system/Patient.rs")).await).await;
    assert!(d.contains("signature does not verify"), "{d}");
}

#[tokio::test]
async fn sub_must_equal_iss() {
    let sb = start().await;
    let key = register_backend(&sb, BACKEND);
    let mut claims = assertion_claims(&sb, BACKEND);
    claims["sub"] = json!("someone-else");
    let resp = backend_token(&sb, &sign(&key, &claims, None), Some("system/Patient.rs")).await;
    let d = invalid_client(resp).await;
    assert!(d.contains("sub must equal iss"), "{d}");
}

#[tokio::test]
async fn other_assertion_defects_are_invalid_client() {
    let sb = start().await;
    let key = register_backend(&sb, BACKEND);
    let url = token_url(&sb);
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "system/Patient.rs"),
    ];
    let mut descriptions = Vec::new();

    // Wrong client_assertion_type.
    let jwt = assertion(&sb, BACKEND, &key);
    let resp = http()
        .post(&url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "system/Patient.rs"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
            ),
            ("client_assertion", jwt.as_str()),
        ])
        .send()
        .await
        .unwrap();
    descriptions.push(invalid_client(resp).await);

    // Not a JWT.
    let resp = post_with_assertion(&sb, "/auth/token", "not-a-jwt", &form).await;
    descriptions.push(invalid_client(resp).await);

    // client_id parameter that differs from iss.
    let mut with_id = form.to_vec();
    with_id.push(("client_id", "demo-public"));
    let resp =
        post_with_assertion(&sb, "/auth/token", &assertion(&sb, BACKEND, &key), &with_id).await;
    let d = invalid_client(resp).await;
    assert!(d.contains("does not match client_id"), "{d}");
    descriptions.push(d);

    // An assertion for a client that is not private_key_jwt.
    let resp = post_with_assertion(
        &sb,
        "/auth/token",
        &assertion(&sb, CONFIDENTIAL, &key),
        &form,
    )
    .await;
    let d = invalid_client(resp).await;
    assert!(d.contains("not registered for private_key_jwt"), "{d}");
    descriptions.push(d);

    // A missing jti.
    let mut claims = assertion_claims(&sb, BACKEND);
    claims.as_object_mut().unwrap().remove("jti");
    let resp = backend_token(&sb, &sign(&key, &claims, None), Some("system/Patient.rs")).await;
    let d = invalid_client(resp).await;
    assert!(d.contains("no jti claim"), "{d}");
    descriptions.push(d);

    // An algorithm outside RS384/ES384 (ES256).
    let es256 = PrivateKey::generate(Algorithm::ES256).unwrap();
    sb.register_client(backend_client("es256-app", inline_keys(&[&es256])));
    let resp = backend_token(
        &sb,
        &assertion(&sb, "es256-app", &es256),
        Some("system/Patient.rs"),
    )
    .await;
    let d = invalid_client(resp).await;
    assert!(d.contains("RS384 or ES384"), "{d}");
    descriptions.push(d);

    // Both Basic and an assertion.
    let resp = http()
        .post(&url)
        .header("authorization", basic(BACKEND, "x"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "system/Patient.rs"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion(&sb, BACKEND, &key).as_str()),
        ])
        .send()
        .await
        .unwrap();
    descriptions.push(invalid_client(resp).await);

    let mut unique = descriptions.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), descriptions.len(), "{descriptions:#?}");
}

#[tokio::test]
async fn private_key_jwt_client_must_send_an_assertion() {
    let sb = start().await;
    register_backend(&sb, BACKEND);
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "system/Patient.rs"),
    ];
    let resp = http()
        .post(token_url(&sb))
        .header("authorization", basic(BACKEND, "secret"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(header(&resp, "www-authenticate").starts_with("Basic"));
    let d = invalid_client(resp).await;
    assert!(d.contains("private_key_jwt"), "{d}");

    let mut with_id = form.to_vec();
    with_id.push(("client_id", BACKEND));
    let resp = http()
        .post(token_url(&sb))
        .form(&with_id)
        .send()
        .await
        .unwrap();
    let d = invalid_client(resp).await;
    assert!(d.contains("client_assertion"), "{d}");
}

#[tokio::test]
async fn rs384_and_es384_assertions_work_with_inline_jwks() {
    let sb = start().await;
    let rsa = PrivateKey::generate_rsa(2048, Algorithm::RS384).unwrap();
    let ec = es384();
    sb.register_client(backend_client(BACKEND, inline_keys(&[&rsa, &ec])));
    for key in [&rsa, &ec] {
        let resp = backend_token(
            &sb,
            &assertion(&sb, BACKEND, key),
            Some("system/Patient.rs"),
        )
        .await;
        assert_eq!(resp.status(), 200, "{:?}", key.algorithm());
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["scope"], "system/Patient.rs");
    }
    assert_eq!(sb.counters().jwks_fetches, 0);
}

/// A tiny JWKS server for one client, counting its requests.
struct JwksServer {
    url: String,
    jwks: Arc<RwLock<Jwks>>,
    hits: Arc<AtomicU64>,
}

async fn jwks_server(keys: &[&PrivateKey]) -> JwksServer {
    let jwks = Arc::new(RwLock::new(Jwks::new(
        keys.iter().map(|k| k.public_jwk()).collect(),
    )));
    let hits = Arc::new(AtomicU64::new(0));
    let (j, h) = (jwks.clone(), hits.clone());
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let (j, h) = (j.clone(), h.clone());
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                assert_eq!(headers["accept"], "application/json");
                let body = serde_json::to_string(&*j.read().await).unwrap();
                (
                    [
                        ("content-type", "application/json"),
                        ("cache-control", "public, max-age=60"),
                    ],
                    body,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    JwksServer { url, jwks, hits }
}

fn url_client(url: &str) -> ClientRegistration {
    backend_client(
        BACKEND,
        ClientAuth::PrivateKeyJwt {
            jwks: None,
            jwks_url: Some(url.to_owned()),
        },
    )
}

#[tokio::test]
async fn jwks_url_is_fetched_cached_and_refetched_for_a_new_kid() {
    let sb = start().await;
    let key = es384();
    let server = jwks_server(&[&key]).await;
    sb.register_client(url_client(&server.url));

    // Two requests, one fetch (max-age=60).
    for _ in 0..2 {
        let resp = backend_token(
            &sb,
            &assertion(&sb, BACKEND, &key),
            Some("system/Patient.rs"),
        )
        .await;
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
    assert_eq!(sb.counters().jwks_fetches, 1);

    // The client rotates: the cached JWKS lacks the new kid, so the sandbox
    // refetches once.
    let rotated = es384();
    *server.jwks.write().await = Jwks::new(vec![key.public_jwk(), rotated.public_jwk()]);
    let resp = backend_token(
        &sb,
        &assertion(&sb, BACKEND, &rotated),
        Some("system/Patient.rs"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(sb.counters().jwks_fetches, 2);

    // A kid that is nowhere, right after that refetch: no second refetch
    // (unknown-kid refetches are rate-limited per URL), invalid_client.
    let stranger = es384();
    let d = invalid_client(
        backend_token(
            &sb,
            &assertion(&sb, BACKEND, &stranger),
            Some("system/Patient.rs"),
        )
        .await,
    )
    .await;
    assert!(d.contains("no key with kid"), "{d}");
    assert_eq!(sb.counters().jwks_fetches, 2);

    // jku equal to the registered URL is fine.
    let url = token_url(&sb);
    let with_jku = ClientAssertion {
        jku: Some(&server.url),
        ..ClientAssertion::new(BACKEND, &url)
    };
    let jwt = client_assertion(&key, &with_jku, now()).unwrap();
    assert_eq!(
        backend_token(&sb, &jwt, Some("system/Patient.rs"))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn jku_mismatch_is_rejected() {
    let sb = start().await;
    let key = es384();
    let server = jwks_server(&[&key]).await;
    sb.register_client(url_client(&server.url));
    let claims = assertion_claims(&sb, BACKEND);
    let jwt = sign(&key, &claims, Some("https://attacker.example/jwks.json"));
    let d = invalid_client(backend_token(&sb, &jwt, Some("system/Patient.rs")).await).await;
    assert!(
        d.contains("jku does not match the registered JWKS URL"),
        "{d}"
    );
    // Nothing was fetched from anywhere.
    assert_eq!(sb.counters().jwks_fetches, 0);

    // A client registered by value has no JWKS URL for a jku to match.
    let inline = register_backend(&sb, "inline-app");
    let claims = assertion_claims(&sb, "inline-app");
    let jwt = sign(&inline, &claims, Some(&server.url));
    let d = invalid_client(backend_token(&sb, &jwt, Some("system/Patient.rs")).await).await;
    assert!(d.contains("jku does not match"), "{d}");
}

#[tokio::test]
async fn unreachable_jwks_url_is_invalid_client() {
    let sb = start().await;
    // Bind and drop a listener to get a closed port.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    sb.register_client(url_client(&format!("http://{closed}/jwks.json")));
    let key = es384();
    let d = invalid_client(
        backend_token(
            &sb,
            &assertion(&sb, BACKEND, &key),
            Some("system/Patient.rs"),
        )
        .await,
    )
    .await;
    assert!(d.contains("cannot use the client's JWKS"), "{d}");
}

/// An app-launch client that authenticates with private_key_jwt.
fn asymmetric_launch_client(key: &PrivateKey) -> ClientRegistration {
    ClientRegistration {
        client_id: "asym-app".into(),
        auth: inline_keys(&[key]),
        redirect_uris: vec![DEMO_REDIRECT_URI.into()],
        launch_uri: None,
        scopes: "launch/patient patient/*.rs offline_access".into(),
        grant_types: vec!["authorization_code".into()],
        context: LaunchDefaults::default(),
    }
}

async fn code_exchange_with_assertion(sb: &Sandbox, key: &PrivateKey) -> reqwest::Response {
    let p = pkce();
    let c = code(
        sb,
        "asym-app",
        "launch/patient patient/*.rs offline_access",
        &p,
    )
    .await;
    post_with_assertion(
        sb,
        "/auth/token",
        &assertion(sb, "asym-app", key),
        &[
            ("grant_type", "authorization_code"),
            ("code", &c),
            ("redirect_uri", DEMO_REDIRECT_URI),
            ("code_verifier", &p.verifier),
        ],
    )
    .await
}

#[tokio::test]
async fn authorization_code_and_refresh_with_assertions() {
    let sb = start().await;
    let key = es384();
    sb.register_client(asymmetric_launch_client(&key));
    let resp = code_exchange_with_assertion(&sb, &key).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["patient"], "pat-1");
    let refresh = body["refresh_token"].as_str().unwrap();

    // Refresh with a fresh assertion.
    let resp = post_with_assertion(
        &sb,
        "/auth/token",
        &assertion(&sb, "asym-app", &key),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(resp.status(), 200);
    let refreshed: Value = resp.json().await.unwrap();
    assert_eq!(
        refreshed["scope"],
        "launch/patient patient/*.rs offline_access"
    );

    // Without an assertion the refresh is refused.
    let resp = http()
        .post(token_url(&sb))
        .form(&[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                refreshed["refresh_token"].as_str().unwrap(),
            ),
            ("client_id", "asym-app"),
        ])
        .send()
        .await
        .unwrap();
    invalid_client(resp).await;

    // This client may not use client_credentials.
    let resp = backend_token(&sb, &assertion(&sb, "asym-app", &key), Some("patient/*.rs")).await;
    oauth_error(resp, 400, "unauthorized_client").await;
}
