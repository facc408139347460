//! Sandbox helpers for the integration tests: start a sandbox, launch a session (public client,
//! headless approval), register a backend client, and build a `FhirClient` on either.

#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod mock;

use std::sync::Arc;
use std::time::Duration;

use smart_core::headless::authorize_headless;
use smart_core::scope::Scopes;
use smart_core::smart_jose::{Algorithm, PrivateKey};
use smart_core::{ClientKeys, ClientRegistration, CompletedLaunch, SmartClient, StandaloneLaunch};
use smart_fhir::{FhirClient, RetryPolicy};
use smart_sandbox::{DEMO_REDIRECT_URI, LaunchDefaults, Sandbox, SandboxConfig};

pub async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox starts")
}

/// Fast retries for tests (Retry-After is still honoured).
pub fn test_retry() -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(20),
        ..RetryPolicy::default()
    }
}

/// Registers a public client `client_id` allowed `scopes`, with `pat-1` in context.
pub fn register_public(sandbox: &Sandbox, client_id: &str, scopes: &str) {
    sandbox.register_client(smart_sandbox::ClientRegistration {
        client_id: client_id.into(),
        auth: smart_sandbox::ClientAuth::Public,
        redirect_uris: vec![DEMO_REDIRECT_URI.into()],
        launch_uri: None,
        scopes: scopes.into(),
        grant_types: vec!["authorization_code".into()],
        context: LaunchDefaults {
            patient: Some("pat-1".into()),
            ..LaunchDefaults::default()
        },
    });
}

/// A SmartClient with one public registration `client_id` asking for `scopes`.
pub fn public_client(base: &str, client_id: &str, scopes: &str) -> SmartClient {
    SmartClient::builder()
        .registration(
            "app",
            ClientRegistration::public(base, client_id, DEMO_REDIRECT_URI)
                .with_scopes(Scopes::parse(scopes)),
        )
        .adapter(Arc::new(smart_adapter_generic::Generic))
        .build()
        .expect("client builds")
}

/// A standalone launch, approved headlessly.
pub async fn launch(client: &SmartClient, base: &str) -> CompletedLaunch {
    let request = client
        .begin_standalone_launch(base, StandaloneLaunch::default())
        .await
        .expect("begin");
    let callback = authorize_headless(&**client.http(), &request, DEMO_REDIRECT_URI)
        .await
        .expect("sandbox redirects back");
    client.complete_launch(&callback).await.expect("complete")
}

/// A launched session for `demo-public` (scopes `launch/patient patient/*.rs offline_access`)
/// and a FHIR client on it.
pub async fn session_fhir(sandbox: &Sandbox) -> (SmartClient, CompletedLaunch, FhirClient) {
    session_fhir_as(
        sandbox,
        "demo-public",
        "launch/patient patient/*.rs offline_access",
    )
    .await
}

/// A launched session for `client_id` with `scopes`, and a FHIR client on it.
pub async fn session_fhir_as(
    sandbox: &Sandbox,
    client_id: &str,
    scopes: &str,
) -> (SmartClient, CompletedLaunch, FhirClient) {
    let base = sandbox.fhir_base();
    let smart = public_client(&base, client_id, scopes);
    let done = launch(&smart, &base).await;
    let auth = smart
        .session_bearer(&done.session_id)
        .await
        .expect("bearer source");
    let fhir = FhirClient::new(smart.http().clone(), Arc::new(auth)).with_retry(test_retry());
    (smart, done, fhir)
}

/// A backend-services client (`private_key_jwt`, ES384) granted `scopes`, and a FHIR client on
/// its token source.
pub fn backend_fhir(sandbox: &Sandbox, scopes: &str) -> FhirClient {
    let key = PrivateKey::generate(Algorithm::ES384).expect("key");
    let keys = ClientKeys::new(key);
    sandbox.register_client(smart_sandbox::ClientRegistration {
        client_id: "backend".into(),
        auth: smart_sandbox::ClientAuth::PrivateKeyJwt {
            jwks: Some(keys.jwks()),
            jwks_url: None,
        },
        redirect_uris: vec![DEMO_REDIRECT_URI.into()],
        launch_uri: None,
        scopes: scopes.into(),
        context: LaunchDefaults::default(),
        grant_types: vec!["client_credentials".into()],
    });
    let registration =
        ClientRegistration::backend(sandbox.fhir_base(), "backend", keys, Scopes::parse(scopes));
    let smart = SmartClient::builder()
        .registration("backend", registration)
        .adapter(Arc::new(smart_adapter_generic::Generic))
        .build()
        .expect("client builds");
    let source = smart
        .backend_token_source("backend", Scopes::parse(scopes))
        .expect("token source");
    FhirClient::new(smart.http().clone(), Arc::new(source)).with_retry(test_retry())
}
