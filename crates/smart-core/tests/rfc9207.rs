//! Mix-up defence (RFC 9207, issue 8 item 5): the sandbox advertises
//! `authorization_response_iss_parameter_supported` and sends `iss` in every authorization
//! response; a missing or wrong one is refused before any token request.

mod support;

use smart_core::{CallbackParams, LaunchError, StandaloneLaunch};
use smart_sandbox::IssParameter;
use support::*;

#[tokio::test]
async fn the_sandbox_advertises_iss_and_a_matching_iss_is_accepted() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let client = public_client(&base);
    let discovered = client.discover(&base).await.expect("discovery");
    assert_eq!(
        discovered
            .configuration
            .extra
            .get("authorization_response_iss_parameter_supported"),
        Some(&serde_json::Value::Bool(true))
    );
    let request = client
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .expect("begin");
    let callback = callback_for(&client, &request).await;
    assert_eq!(
        callback.get("iss"),
        discovered.configuration.issuer.as_deref(),
        "iss is the configuration's issuer"
    );
    client
        .complete_launch(&callback)
        .await
        .expect("a matching iss is accepted");
}

async fn refused_without_a_token_request(behaviour: IssParameter) -> LaunchError {
    let sandbox = sandbox().await;
    sandbox.set_behavior(|b| b.authorization_response_iss = behaviour);
    let base = sandbox.fhir_base();
    let client = public_client(&base);
    let request = client
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .expect("begin");
    let callback = callback_for(&client, &request).await;
    assert!(
        callback.get("code").is_some(),
        "the server did issue a code"
    );
    let token_requests = sandbox.counters().token_requests;
    let err = client
        .complete_launch(&callback)
        .await
        .expect_err("refused");
    assert_eq!(
        sandbox.counters().token_requests,
        token_requests,
        "{behaviour:?}: no token request may be sent"
    );
    err
}

#[tokio::test]
async fn a_missing_iss_is_refused_when_the_server_advertises_it() {
    let err = refused_without_a_token_request(IssParameter::Omitted).await;
    assert!(
        matches!(err, LaunchError::MissingIssuerParameter { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("RFC 9207"), "{err}");
}

#[tokio::test]
async fn a_wrong_iss_is_refused() {
    let err = refused_without_a_token_request(IssParameter::Wrong).await;
    match &err {
        LaunchError::IssuerParameterMismatch { expected, found } => {
            assert!(found.ends_with("/other-authorization-server"), "{found}");
            assert_ne!(expected, found);
        }
        other => panic!("expected IssuerParameterMismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn an_error_redirect_with_a_wrong_iss_is_refused_as_a_mix_up_not_shown_as_the_servers_error()
{
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let client = public_client(&base);
    let request = client
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .expect("begin");
    // An error response planted by another authorization server, carrying its own issuer.
    let forged = CallbackParams::from_pairs([
        ("error", "access_denied"),
        ("error_description", "sign in at the other server"),
        ("state", request.state.expose()),
        ("iss", "https://attacker.example"),
    ])
    .with_browser_binding(request.browser_binding().clone());
    let err = client.complete_launch(&forged).await.expect_err("refused");
    assert!(
        matches!(err, LaunchError::IssuerParameterMismatch { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn without_the_advertisement_a_missing_iss_is_accepted_but_a_wrong_one_is_still_refused() {
    for (behaviour, accepted) in [(IssParameter::Omitted, true), (IssParameter::Wrong, false)] {
        let sandbox = sandbox().await;
        // Only the CapabilityStatement: no `authorization_response_iss_parameter_supported`.
        sandbox.set_behavior(|b| {
            b.discovery = smart_sandbox::DiscoveryMode::MissingWellKnown;
            b.authorization_response_iss = behaviour;
        });
        let base = sandbox.fhir_base();
        let client = public_client(&base);
        let discovered = client.discover(&base).await.expect("discovery");
        assert!(
            !discovered
                .configuration
                .extra
                .contains_key("authorization_response_iss_parameter_supported")
        );
        let request = client
            .begin_standalone_launch(&base, StandaloneLaunch::default())
            .await
            .expect("begin");
        let callback = callback_for(&client, &request).await;
        let result = client.complete_launch(&callback).await;
        if accepted {
            result.expect("no iss, none promised: accepted");
        } else {
            assert!(
                matches!(result, Err(LaunchError::IssuerParameterMismatch { .. })),
                "{behaviour:?}: {result:?}"
            );
        }
    }
}
