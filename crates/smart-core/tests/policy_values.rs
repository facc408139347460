//! Every `VendorPolicy` value changes what goes over the wire.
//!
//! A catalogue row may name a policy field as its handling (`HandledBy::Policy`). This file shows
//! each field at work against the sandbox over HTTP: the same flow under the specification's
//! value and under another value gives a different, observable result. The last test fails
//! when a field is added to `PolicyField::ALL` without a test here, so no catalogue row can
//! claim a value nobody reads.

mod support;

use std::sync::Arc;
use std::time::Duration;

use smart_core::quirks::{BasicAuthEncoding, PolicyField, VendorPolicy, VendorQuirks};
use smart_core::scope::Scopes;
use smart_core::secret::ClientSecret;
use smart_core::smart_jose::Algorithm;
use smart_core::{
    ClientRegistration, LaunchError, RefreshOptions, SmartClient, StandaloneLaunch, TokenError,
};
use smart_sandbox::{ClientAuth, DEMO_REDIRECT_URI, LaunchDefaults, Sandbox};
use support::*;

/// An adapter that is the specification in everything but its policy.
#[derive(Debug)]
struct PolicyOnly(VendorPolicy);

impl VendorQuirks for PolicyOnly {
    fn name(&self) -> &str {
        "policy-only"
    }

    fn policy(&self) -> VendorPolicy {
        self.0
    }
}

fn client(registration: ClientRegistration, policy: VendorPolicy) -> SmartClient {
    client_with(
        vec![("app", registration.with_adapter("policy-only"))],
        Arc::new(PolicyOnly(policy)),
        None,
        None,
    )
}

async fn launch(
    client: &SmartClient,
    base: &str,
) -> Result<smart_core::CompletedLaunch, LaunchError> {
    let request = client
        .begin_standalone_launch(base, StandaloneLaunch::default())
        .await
        .expect("begin");
    let callback = callback_for(client, &request).await;
    client.complete_launch(&callback).await
}

/// A secret with characters that form-urlencoding changes.
const RESERVED_SECRET: &str = "s3cret/with+reserved=chars";

fn register_reserved_secret_client(sandbox: &Sandbox) {
    sandbox.register_client(smart_sandbox::ClientRegistration {
        client_id: "reserved".into(),
        auth: ClientAuth::ClientSecretBasic {
            secret: RESERVED_SECRET.into(),
        },
        redirect_uris: vec![DEMO_REDIRECT_URI.into()],
        launch_uri: None,
        scopes: "launch/patient patient/*.rs offline_access openid fhirUser".into(),
        context: LaunchDefaults::default(),
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
    });
}

fn reserved_secret_registration(base: &str) -> ClientRegistration {
    ClientRegistration::confidential_symmetric(
        base,
        "reserved",
        ClientSecret::new(RESERVED_SECRET),
        DEMO_REDIRECT_URI,
    )
    .with_scopes(Scopes::parse(STANDALONE_SCOPES))
}

/// `basic_auth_encoding`: RFC 6749's form-urlencoding is accepted; the raw form (what some
/// servers want) is refused by the sandbox, which follows the RFC, with its explanation.
#[tokio::test]
async fn basic_auth_encoding() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    register_reserved_secret_client(&sandbox);

    let spec = client(reserved_secret_registration(&base), VendorPolicy::SPEC);
    launch(&spec, &base)
        .await
        .expect("form-urlencoded credentials");

    let raw = client(
        reserved_secret_registration(&base),
        VendorPolicy::SPEC.with_basic_auth_encoding(BasicAuthEncoding::Raw),
    );
    let err = launch(&raw, &base).await.expect_err("raw credentials");
    assert!(err.to_string().contains("form-urlencoded"), "{err}");
}

fn backend_client(sandbox: &Sandbox, policy: VendorPolicy) -> SmartClient {
    let keys = register_asymmetric(
        sandbox,
        "backend",
        Algorithm::ES384,
        &["client_credentials"],
        "system/*.rs",
        LaunchDefaults::default(),
    );
    let registration = ClientRegistration::backend(
        sandbox.fhir_base(),
        "backend",
        keys,
        Scopes::parse("system/*.rs"),
    );
    client(registration, policy)
}

/// `assertion_lifetime`: the client assertion's `exp` follows it. A value within SMART's five
/// minutes works; one beyond is refused by the client itself before anything is sent (an
/// adapter cannot make the client sign what every conformant server must refuse).
#[tokio::test]
async fn assertion_lifetime() {
    let sandbox = sandbox().await;
    let scopes = Scopes::parse("system/Patient.rs");
    let spec = backend_client(&sandbox, VendorPolicy::SPEC);
    spec.backend_token_source("app", scopes.clone())
        .expect("source")
        .token()
        .await
        .expect("a 4-minute assertion");

    let short = backend_client(
        &sandbox,
        VendorPolicy::SPEC.with_assertion_lifetime(Duration::from_secs(60)),
    );
    short
        .backend_token_source("app", scopes.clone())
        .expect("source")
        .token()
        .await
        .expect("a 1-minute assertion");
    assert_eq!(sandbox.counters().token_requests, 2);

    let long = backend_client(
        &sandbox,
        VendorPolicy::SPEC.with_assertion_lifetime(Duration::from_secs(600)),
    );
    let err = long
        .backend_token_source("app", scopes)
        .expect("source")
        .token()
        .await
        .expect_err("a 10-minute assertion");
    assert!(err.to_string().contains("300 seconds"), "{err}");
    assert_eq!(sandbox.counters().token_requests, 2, "nothing sent");
}

/// `min_refresh_interval`: a refresh asked for right after another one keeps the session as it
/// is (no token request) inside the interval, and is sent under the specification's zero.
#[tokio::test]
async fn min_refresh_interval() {
    for (policy, expected_requests) in [
        (VendorPolicy::SPEC, 2),
        (
            VendorPolicy::SPEC.with_min_refresh_interval(Duration::from_secs(3600)),
            1,
        ),
    ] {
        let sandbox = sandbox().await;
        let base = sandbox.fhir_base();
        let client = client(confidential_registration(&base), policy);
        let done = launch(&client, &base).await.expect("launch");
        for _ in 0..2 {
            client
                .refresh(&done.session_id, RefreshOptions::default())
                .await
                .expect("refresh");
        }
        assert_eq!(
            sandbox.counters().refresh_requests,
            expected_requests,
            "{policy:?}"
        );
    }
}

/// `id_token_algorithms`: the sandbox signs RS256; an adapter that accepts only ES384 refuses
/// the `id_token`, naming the algorithm.
#[tokio::test]
async fn id_token_algorithms() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let registration = public_registration(&base)
        .with_scopes(Scopes::parse("launch/patient patient/*.rs openid fhirUser"));

    let spec = client(registration.clone(), VendorPolicy::SPEC);
    let done = launch(&spec, &base).await.expect("RS256 accepted");
    assert!(done.session.identity.is_some());

    const ES384_ONLY: &[Algorithm] = &[Algorithm::ES384];
    let strict = client(
        registration,
        VendorPolicy::SPEC.with_id_token_algorithms(ES384_ONLY),
    );
    match launch(&strict, &base).await {
        Err(LaunchError::Identity(e)) => assert!(e.to_string().contains("RS256"), "{e}"),
        other => panic!("expected an identity error, got {other:?}"),
    }
}

/// `retry_bare_token_400`: one bare `400` from the token endpoint is retried (backend services)
/// under the value, and returned under the specification.
#[tokio::test]
async fn retry_bare_token_400() {
    for (policy, succeeds) in [
        (VendorPolicy::SPEC, false),
        (VendorPolicy::SPEC.with_retry_bare_token_400(true), true),
    ] {
        let sandbox = sandbox().await;
        sandbox.set_behavior(|b| b.token_bare_400 = 1);
        let client = backend_client(&sandbox, policy);
        let result = client
            .backend_token_source("app", Scopes::parse("system/Patient.rs"))
            .expect("source")
            .token()
            .await;
        match (succeeds, result) {
            (true, Ok(_)) => assert_eq!(sandbox.counters().token_requests, 2),
            (false, Err(e)) => {
                assert!(
                    matches!(
                        e,
                        smart_core::BackendError::Token(TokenError::InvalidResponse { .. })
                    ),
                    "{e:?}"
                );
                assert_eq!(sandbox.counters().token_requests, 1);
            }
            (_, other) => panic!("{policy:?}: unexpected {other:?}"),
        }
    }
}

/// Each field of `PolicyField::ALL` has its test above (named after the field).
#[test]
fn every_policy_field_has_a_test_here() {
    let source = include_str!("policy_values.rs");
    for field in PolicyField::ALL {
        let test = format!("async fn {}()", field.field());
        assert!(
            source.contains(&test),
            "VendorPolicy::{} has no test in crates/smart-core/tests/policy_values.rs",
            field.field()
        );
    }
}
