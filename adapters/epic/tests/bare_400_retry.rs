//! Epic's bare `400` from the token endpoint (`docs/vendors/epic.md#flaky-token-endpoint`, quirk
//! `epic-token-bare-400`), over real HTTP against the sandbox's Epic profile with
//! `Behavior::token_bare_400`: the Epic policy sends a `client_credentials` or `jwt-bearer`
//! request once more, signed anew; the specification's policy does not; a code exchange never is,
//! and neither is a 400 that carries an OAuth error.

mod support;

use std::time::Instant;

use http::HeaderMap;
use smart_core::quirks::{VendorPolicy, VendorQuirks as _};
use smart_core::registration::{
    RegistrationError, RegistrationRequest, jwt_bearer_token, jwt_bearer_token_with_policy,
    register,
};
use smart_core::scope::Scopes;
use smart_core::smart_jose::{Algorithm, Jwks, PrivateKey};
use smart_core::{
    BackendError, ClientKeys, ClientRegistration, LaunchError, SmartClient, TokenError,
};
use smart_sandbox::{ClientAuth, LaunchDefaults, Sandbox};
use support::{APP, app_client, authorized_callback, client_with, epic_sandbox};

/// A backend (`client_credentials`, `private_key_jwt`) client.
const BACKEND: &str = "epic-backend";

/// A client with the backend registration, registered in the sandbox, using `adapter`.
fn backend_client(sandbox: &Sandbox, adapter: &str) -> SmartClient {
    let keys = ClientKeys::new(PrivateKey::generate(Algorithm::ES384).expect("key"));
    sandbox.register_client(smart_sandbox::ClientRegistration {
        client_id: BACKEND.into(),
        auth: ClientAuth::PrivateKeyJwt {
            jwks: Some(keys.jwks()),
            jwks_url: None,
        },
        redirect_uris: Vec::new(),
        launch_uri: None,
        scopes: "system/*.rs".into(),
        context: LaunchDefaults::default(),
        grant_types: vec!["client_credentials".into()],
    });
    client_with(
        ClientRegistration::backend(
            sandbox.fhir_base(),
            BACKEND,
            keys,
            Scopes::parse("system/*.rs"),
        )
        .with_adapter(adapter),
    )
}

fn token_requests(sandbox: &Sandbox) -> u64 {
    sandbox.counters().token_requests
}

fn is_bare_400(e: &TokenError) -> bool {
    matches!(e, TokenError::InvalidResponse { status: 400, .. })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epic_backend_bare_400_is_retried_once_with_a_new_jti() {
    let sandbox = epic_sandbox().await;
    let client = backend_client(&sandbox, smart_adapter_epic::NAME);
    let source = client
        .backend_token_source("r", Scopes::parse("system/Patient.rs"))
        .expect("source");
    sandbox.set_behavior(|b| b.token_bare_400 = 1);

    let started = Instant::now();
    let token = source.token().await.expect("a token after one retry");
    assert!(!token.access_token.expose_secret().is_empty());
    assert!(
        started.elapsed() >= VendorPolicy::BARE_TOKEN_400_RETRY_DELAY,
        "the retry waits {:?} first (took {:?})",
        VendorPolicy::BARE_TOKEN_400_RETRY_DELAY,
        started.elapsed()
    );
    assert_eq!(token_requests(&sandbox), 2, "the bare 400, then the retry");
    let jtis = sandbox.token_jtis_seen();
    assert_eq!(jtis.len(), 2, "{jtis:?}");
    assert_ne!(jtis[0], jtis[1], "the retry is signed anew (new jti)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epic_backend_retries_only_once() {
    let sandbox = epic_sandbox().await;
    let client = backend_client(&sandbox, smart_adapter_epic::NAME);
    let source = client
        .backend_token_source("r", Scopes::parse("system/Patient.rs"))
        .expect("source");
    sandbox.set_behavior(|b| b.token_bare_400 = 2);

    let err = source.token().await.expect_err("two bare 400s");
    assert!(
        matches!(&err, BackendError::Token(e) if is_bare_400(e)),
        "{err:?}"
    );
    assert_eq!(
        token_requests(&sandbox),
        2,
        "one request and one retry only"
    );

    // The fault is used up: the next call needs one request.
    source.token().await.expect("token");
    assert_eq!(token_requests(&sandbox), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_policy_does_not_retry_a_bare_400() {
    let sandbox = epic_sandbox().await;
    // The same server and client, under the spec adapter (retry_bare_token_400 = false).
    let client = backend_client(&sandbox, smart_core::SPEC_ADAPTER);
    let source = client
        .backend_token_source("r", Scopes::parse("system/Patient.rs"))
        .expect("source");
    sandbox.set_behavior(|b| b.token_bare_400 = 1);

    let err = source.token().await.expect_err("a bare 400 is final");
    assert!(
        matches!(&err, BackendError::Token(e) if is_bare_400(e)),
        "{err:?}"
    );
    assert_eq!(token_requests(&sandbox), 1, "no retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epic_oauth_error_400_is_not_retried() {
    let sandbox = epic_sandbox().await;
    // A backend client the server does not know: `invalid_client`, an OAuth error body.
    let keys = ClientKeys::new(PrivateKey::generate(Algorithm::ES384).expect("key"));
    let client = client_with(
        ClientRegistration::backend(
            sandbox.fhir_base(),
            "not-registered",
            keys,
            Scopes::parse("system/*.rs"),
        )
        .with_adapter(smart_adapter_epic::NAME),
    );
    let source = client
        .backend_token_source("r", Scopes::parse("system/Patient.rs"))
        .expect("source");

    let err = source.token().await.expect_err("unknown client");
    assert!(
        matches!(&err, BackendError::Token(TokenError::OAuth { .. })),
        "{err:?}"
    );
    assert_eq!(token_requests(&sandbox), 1, "an OAuth error is final");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epic_code_exchange_is_never_retried() {
    let sandbox = epic_sandbox().await;
    let base = sandbox.fhir_base();
    let client = app_client(&base, "launch/patient patient/Patient.rs");
    let callback = authorized_callback(&client, &base).await;
    sandbox.set_behavior(|b| b.token_bare_400 = 1);

    let err = client
        .complete_launch(&callback)
        .await
        .expect_err("a bare 400 to the code exchange is final");
    assert!(
        matches!(&err, LaunchError::Token(e) if is_bare_400(e)),
        "{err:?}"
    );
    assert_eq!(
        token_requests(&sandbox),
        1,
        "the code may have been spent: no retry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epic_jwt_bearer_bare_400_is_retried_once_with_a_new_assertion() {
    let sandbox = epic_sandbox().await;
    let base = sandbox.fhir_base();
    let client = app_client(&base, "launch/patient patient/Patient.rs");
    // Epic's flow: a standalone launch, its access token registers a device-bound client.
    let callback = authorized_callback(&client, &base).await;
    let initial = client
        .complete_launch(&callback)
        .await
        .expect("complete")
        .session
        .tokens
        .access_token;
    let discovered = client.discover(&base).await.expect("discovery");
    let config = &discovered.configuration;
    let endpoint = config.registration_endpoint.clone().expect("registration");
    let device_key = PrivateKey::generate(Algorithm::ES384).expect("key");
    let registered = register(
        &**client.http(),
        &endpoint,
        Some(&initial),
        &RegistrationRequest::software(APP, Jwks::new(vec![device_key.public_jwk()])),
        &HeaderMap::new(),
    )
    .await
    .expect("registration");
    let epic_policy = smart_adapter_epic::Epic::new().policy();

    // Under Epic's policy: one bare 400, then a token.
    let before = token_requests(&sandbox);
    let jtis_before = sandbox.token_jtis_seen().len();
    sandbox.set_behavior(|b| b.token_bare_400 = 1);
    let token = jwt_bearer_token_with_policy(
        &**client.http(),
        &config.token_endpoint,
        &registered.client_id,
        &device_key,
        &HeaderMap::new(),
        &epic_policy,
    )
    .await
    .expect("a token after one retry");
    assert_eq!(token.context.patient.as_deref(), Some("pat-3"));
    assert_eq!(token_requests(&sandbox), before + 2);
    let jtis = sandbox.token_jtis_seen();
    let ours = &jtis[jtis_before..];
    assert_eq!(ours.len(), 2, "{ours:?}");
    assert_ne!(ours[0], ours[1], "the retry is signed anew (new jti)");

    // Two bare 400s: one retry only.
    sandbox.set_behavior(|b| b.token_bare_400 = 2);
    let err = jwt_bearer_token_with_policy(
        &**client.http(),
        &config.token_endpoint,
        &registered.client_id,
        &device_key,
        &HeaderMap::new(),
        &epic_policy,
    )
    .await
    .expect_err("two bare 400s");
    assert!(
        matches!(&err, RegistrationError::Token(e) if is_bare_400(e)),
        "{err:?}"
    );
    assert_eq!(token_requests(&sandbox), before + 4);

    // The spec function (no policy): a bare 400 is final.
    sandbox.set_behavior(|b| b.token_bare_400 = 1);
    let err = jwt_bearer_token(
        &**client.http(),
        &config.token_endpoint,
        &registered.client_id,
        &device_key,
        &HeaderMap::new(),
    )
    .await
    .expect_err("a bare 400 is final under the spec");
    assert!(
        matches!(&err, RegistrationError::Token(e) if is_bare_400(e)),
        "{err:?}"
    );
    assert_eq!(token_requests(&sandbox), before + 5, "no retry");
}
