//! `id_token` verification against the sandbox's OIDC endpoints.

mod support;

use std::sync::Arc;

use smart_core::scope::Scopes;
use smart_core::{ClientRegistration, LaunchError, SmartClient, StandaloneLaunch};
use smart_sandbox::{DEMO_REDIRECT_URI, IdTokenFault};
use support::*;

fn oidc_client(base: &str) -> SmartClient {
    let registration = ClientRegistration::public(base, "demo-public", DEMO_REDIRECT_URI)
        .with_scopes(Scopes::parse("launch/patient patient/*.rs openid fhirUser"));
    client_with(
        vec![("p", registration)],
        Arc::new(smart_adapter_generic::Generic),
        None,
        None,
    )
}

async fn try_launch(
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

#[tokio::test]
async fn verified_identity_with_absolute_or_relative_fhir_user() {
    for relative in [false, true] {
        let sandbox = sandbox().await;
        sandbox.set_behavior(|b| b.relative_fhir_user = relative);
        let base = sandbox.fhir_base();
        let done = try_launch(&oidc_client(&base), &base)
            .await
            .expect("launch");
        let identity = done.session.identity.expect("identity");
        assert_eq!(identity.iss, base);
        assert!(!identity.sub.is_empty());
        let user = identity.fhir_user.expect("fhirUser");
        assert_eq!(
            user.url,
            format!("{base}/{}/{}", user.resource_type, user.id),
            "relative={relative}"
        );
        assert!(smart_core::identity::FHIR_USER_TYPES.contains(&user.resource_type.as_str()));
    }
}

#[tokio::test]
async fn bad_id_tokens_are_rejected_each_for_its_reason() {
    let cases = [
        (IdTokenFault::BadSignature, "signature"),
        (IdTokenFault::AlgNone, "none"),
        (IdTokenFault::Hs256WithPublicKey, "HS256"),
        (IdTokenFault::WrongAudience, "aud"),
        (IdTokenFault::WrongIssuer, "iss"),
        (IdTokenFault::Expired, "expired"),
    ];
    for (fault, hint) in cases {
        let sandbox = sandbox().await;
        sandbox.set_behavior(|b| b.id_token_fault = fault);
        let base = sandbox.fhir_base();
        let client = oidc_client(&base);
        match try_launch(&client, &base).await {
            Err(LaunchError::Identity(e)) => {
                let text = e.to_string();
                assert!(
                    text.to_lowercase().contains(&hint.to_lowercase()),
                    "{fault:?}: {text}"
                );
            }
            other => panic!("{fault:?}: expected an identity error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn key_rotation_is_accepted_after_one_jwks_refetch() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let client = oidc_client(&base);
    try_launch(&client, &base).await.expect("first launch");
    assert_eq!(sandbox.counters().oidc_jwks_requests, 1);
    try_launch(&client, &base)
        .await
        .expect("second launch, cached keys");
    assert_eq!(
        sandbox.counters().oidc_jwks_requests,
        1,
        "the JWKS is cached"
    );
    sandbox.rotate_signing_key().expect("rotate");
    let done = try_launch(&client, &base)
        .await
        .expect("launch after rotation");
    assert!(done.session.identity.is_some());
    assert_eq!(
        sandbox.counters().oidc_jwks_requests,
        2,
        "exactly one refetch on the new kid"
    );
}
