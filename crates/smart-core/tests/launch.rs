//! End-to-end launches against the embedded sandbox, over real HTTP on 127.0.0.1.

mod support;

use std::sync::Arc;

use smart_core::quirks::AuthorizeMethod;
use smart_core::scope::{Scope, Scopes};
use smart_core::secret::ClientSecret;
use smart_core::{
    CallbackParams, ClientRegistration, DiscoverySource, EhrLaunch, LaunchError, OAuthErrorCode,
    SmartClient, StandaloneLaunch, TokenError,
};
use smart_sandbox::{ClientAuth, DEMO_REDIRECT_URI, DiscoveryMode, LaunchDefaults};
use support::*;

#[tokio::test]
async fn standalone_public_launch_carries_patient_context_and_scopes() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let client = public_client(&base);
    let done = standalone(&client, &base).await;
    let session = &done.session;
    assert_eq!(session.fhir_base, base);
    assert_eq!(session.context.patient.as_deref(), Some("pat-1"));
    assert!(
        session.tokens.refresh_token.is_some(),
        "offline_access grants a refresh token"
    );
    assert!(session.tokens.expires_at.is_some());
    assert!(
        done.scopes.is_complete(),
        "everything requested was granted: {:?}",
        done.scopes
    );
    assert!(done.missing_context.is_empty());
    assert!(
        !session.requested_scopes.contains(&Scope::Launch),
        "standalone launches never ask for `launch`"
    );
    let stored = client
        .session(&done.session_id)
        .await
        .expect("store")
        .expect("stored");
    assert_eq!(stored.value, done.session);
}

#[tokio::test]
async fn ehr_launch_public_and_symmetric_clients() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    for (client_id, registration) in [
        ("demo-public", public_registration(&base)),
        ("demo-confidential", confidential_registration(&base)),
    ] {
        let client = client_with(
            vec![("r", registration)],
            Arc::new(smart_adapter_generic::Generic),
            None,
            None,
        );
        let done = ehr(&client, &sandbox, client_id, "pat-3").await;
        let ctx = &done.session.context;
        assert_eq!(
            ctx.patient.as_deref(),
            Some("pat-3"),
            "{client_id}: the launch's patient"
        );
        assert_eq!(ctx.need_patient_banner, Some(true), "{client_id}");
        assert!(ctx.smart_style_url.is_some(), "{client_id}");
        assert!(
            done.session.requested_scopes.contains(&Scope::Launch),
            "EHR launches add `launch`"
        );
    }
}

#[tokio::test]
async fn authorization_request_has_every_spec_parameter() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let client = public_client(&base);
    let request = client
        .begin_ehr_launch(&base, "opaque-launch")
        .await
        .expect("begin");
    assert_eq!(request.method, AuthorizeMethod::Get);
    let url = url::Url::parse(&request.url).expect("url");
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "demo-public");
    assert_eq!(q["redirect_uri"], DEMO_REDIRECT_URI);
    assert_eq!(q["aud"], base, "aud is the issuer byte for byte");
    assert_eq!(q["launch"], "opaque-launch");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43, "base64url SHA-256");
    assert_eq!(q["state"], request.state.expose());
    assert!(
        request.state.expose().len() >= 43,
        "state carries at least 256 random bits"
    );
    assert!(Scopes::parse(&q["scope"]).contains(&Scope::Launch));
}

#[tokio::test]
async fn state_mismatch_sends_no_token_request() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let client = public_client(&base);
    let request = client
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .expect("begin");
    let callback = callback_for(&client, &request).await;
    let code = callback.get("code").expect("code").to_owned();
    let before = sandbox.counters().token_requests;

    let forged = CallbackParams::from_pairs([("code", code.as_str()), ("state", "forged-state")]);
    assert!(matches!(
        client.complete_launch(&forged).await,
        Err(LaunchError::UnknownState)
    ));
    let missing = CallbackParams::from_pairs([("code", code.as_str())]);
    assert!(matches!(
        client.complete_launch(&missing).await,
        Err(LaunchError::MissingState)
    ));
    assert_eq!(
        sandbox.counters().token_requests,
        before,
        "no token request for a bad state"
    );

    // The genuine callback still works once, and only once.
    client
        .complete_launch(&callback)
        .await
        .expect("genuine callback");
    assert!(matches!(
        client.complete_launch(&callback).await,
        Err(LaunchError::UnknownState)
    ));
    assert_eq!(sandbox.counters().token_requests, before + 1);
}

#[tokio::test]
async fn unregistered_issuer_is_refused_without_any_network_call() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let http = CountingHttp::new();
    let client = client_with(
        vec![("public", public_registration(&base))],
        Arc::new(smart_adapter_generic::Generic),
        Some(http.clone()),
        None,
    );
    let attacker = format!("{}/../evil/fhir", base);
    for iss in [
        attacker.as_str(),
        "https://evil.example/fhir",
        &format!("{base}/"),
    ] {
        let err = client
            .begin_ehr_launch(iss, "x")
            .await
            .expect_err("unknown issuer");
        assert!(
            matches!(err, LaunchError::UnknownIssuer { .. }),
            "{iss}: {err}"
        );
    }
    let err = client
        .begin_standalone_launch("https://evil.example/fhir", StandaloneLaunch::default())
        .await
        .expect_err("unknown issuer");
    assert!(matches!(err, LaunchError::UnknownIssuer { .. }));
    assert_eq!(
        http.count(),
        0,
        "nothing may be sent for an unregistered issuer"
    );
    assert_eq!(sandbox.counters().discovery_requests, 0);
}

async fn tampered_exchange(how: Tampering) -> TokenError {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let client = client_with(
        vec![("public", public_registration(&base))],
        Tamper::new(how),
        None,
        None,
    );
    if how == Tampering::ReplayFirstCode {
        standalone(&client, &base).await; // the first exchange succeeds and is recorded
    }
    let request = client
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .expect("begin");
    let callback = callback_for(&client, &request).await;
    match client.complete_launch(&callback).await {
        Err(LaunchError::Token(e)) => e,
        other => panic!("expected a token error, got {other:?}"),
    }
}

fn description(e: &TokenError) -> String {
    match e {
        TokenError::OAuth { error, .. } => {
            assert_eq!(error.code, OAuthErrorCode::InvalidGrant, "{e}");
            error.description.clone().unwrap_or_default()
        }
        other => panic!("expected an OAuth error, got {other}"),
    }
}

#[tokio::test]
async fn replayed_code_wrong_verifier_and_wrong_redirect_uri_each_fail_with_their_own_error() {
    let replay = description(&tampered_exchange(Tampering::ReplayFirstCode).await);
    let verifier = description(&tampered_exchange(Tampering::Verifier).await);
    let redirect = description(&tampered_exchange(Tampering::RedirectUri).await);
    assert!(replay.contains("already used"), "{replay}");
    assert!(verifier.contains("code_verifier"), "{verifier}");
    assert!(redirect.contains("redirect_uri"), "{redirect}");
    assert!(replay != verifier && verifier != redirect && replay != redirect);
}

#[tokio::test]
async fn access_denied_redirect_is_a_typed_error() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    sandbox.register_client(smart_sandbox::ClientRegistration {
        client_id: "denied-app".into(),
        auth: ClientAuth::Public,
        redirect_uris: vec![DEMO_REDIRECT_URI.into()],
        launch_uri: None,
        scopes: support::STANDALONE_SCOPES.into(),
        context: LaunchDefaults {
            approve: false,
            ..LaunchDefaults::default()
        },
        grant_types: vec!["authorization_code".into()],
    });
    let client = client_with(
        vec![(
            "denied",
            ClientRegistration::public(&base, "denied-app", DEMO_REDIRECT_URI),
        )],
        Arc::new(smart_adapter_generic::Generic),
        None,
        None,
    );
    let request = client
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .expect("begin");
    let callback = callback_for(&client, &request).await;
    let before = sandbox.counters().token_requests;
    match client.complete_launch(&callback).await {
        Err(LaunchError::Authorization(e)) => {
            assert_eq!(e.code, OAuthErrorCode::AccessDenied);
            assert!(e.to_string().contains("denied"), "{e}");
        }
        other => panic!("expected access_denied, got {other:?}"),
    }
    assert_eq!(sandbox.counters().token_requests, before);
}

#[tokio::test]
async fn wrong_client_secret_is_invalid_client() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let registration = ClientRegistration::confidential_symmetric(
        &base,
        "demo-confidential",
        ClientSecret::new("wrong"),
        DEMO_REDIRECT_URI,
    );
    let client = client_with(
        vec![("c", registration)],
        Arc::new(smart_adapter_generic::Generic),
        None,
        None,
    );
    let request = client
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .expect("begin");
    let callback = callback_for(&client, &request).await;
    let err = client
        .complete_launch(&callback)
        .await
        .expect_err("bad secret");
    match err {
        LaunchError::Token(TokenError::OAuth { status, error }) => {
            assert_eq!(error.code, OAuthErrorCode::InvalidClient);
            assert_eq!(status, 401);
        }
        other => panic!("expected invalid_client, got {other:?}"),
    }
}

#[tokio::test]
async fn relative_endpoint_urls_are_resolved_against_the_base() {
    let sandbox = sandbox().await;
    sandbox.set_behavior(|b| b.discovery = DiscoveryMode::RelativeUrls);
    let base = sandbox.fhir_base();
    let client = public_client(&base);
    let found = client.discover(&base).await.expect("discover");
    let token = &found.configuration.token_endpoint;
    assert!(
        token.starts_with("http://127.0.0.1:") && token.ends_with("/auth/token"),
        "{token}"
    );
    let done = standalone(&client, &base).await;
    assert_eq!(done.session.token_endpoint, *token);
}

#[tokio::test]
async fn capability_statement_fallback_when_well_known_is_missing_or_not_json() {
    for mode in [
        DiscoveryMode::MissingWellKnown,
        DiscoveryMode::WellKnownNotJson,
    ] {
        let sandbox = sandbox().await;
        sandbox.set_behavior(|b| b.discovery = mode);
        let base = sandbox.fhir_base();
        let client = public_client(&base);
        let found = client.discover(&base).await.expect("discover");
        assert!(
            matches!(found.source, DiscoverySource::CapabilityStatement { .. }),
            "{mode:?}: {:?}",
            found.source
        );
        let done = standalone(&client, &base).await;
        assert_eq!(
            done.session.context.patient.as_deref(),
            Some("pat-1"),
            "{mode:?}"
        );
        // Without capabilities the client assumes a SMART v1 server and writes v1 scopes.
        assert!(
            done.session
                .requested_scopes
                .to_string()
                .contains("patient/*.read"),
            "{mode:?}"
        );
        assert_eq!(
            sandbox.counters().metadata_requests,
            1,
            "{mode:?}: discovery is cached"
        );
    }
}

#[tokio::test]
async fn discovery_is_cached_per_base() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let client = public_client(&base);
    standalone(&client, &base).await;
    standalone(&client, &base).await;
    assert_eq!(sandbox.counters().discovery_requests, 1);
}

#[tokio::test]
async fn authorization_by_post_where_advertised() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let mut registration = public_registration(&base);
    registration.authorize_method = Some(AuthorizeMethod::Post);
    let client = client_with(
        vec![("p", registration)],
        Arc::new(smart_adapter_generic::Generic),
        None,
        None,
    );
    let request = client
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .expect("begin");
    assert_eq!(request.method, AuthorizeMethod::Post);
    assert!(
        !request.url.contains('?'),
        "POST keeps parameters out of the URL"
    );
    let form = request.html_form().expect("POST has a form");
    assert!(form.contains("code_challenge_method") && form.contains("method=\"post\""));
    let callback = callback_for(&client, &request).await;
    let done = client.complete_launch(&callback).await.expect("complete");
    assert_eq!(done.session.context.patient.as_deref(), Some("pat-1"));
}

#[tokio::test]
async fn narrower_grant_reports_dropped_scopes() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let client = public_client(&base);
    let request = client
        .begin_standalone_launch(
            &base,
            StandaloneLaunch {
                scopes: Some(Scopes::parse("launch/patient patient/*.rs system/*.rs")),
                ..StandaloneLaunch::default()
            },
        )
        .await
        .expect("begin");
    let callback = callback_for(&client, &request).await;
    let done = client.complete_launch(&callback).await.expect("complete");
    assert_eq!(done.scopes.dropped.to_string(), "system/*.rs");
    assert!(!done.scopes.is_complete());
}

#[tokio::test]
async fn named_registration_must_cover_the_issuer() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let client = client_with(
        vec![
            ("here", public_registration(&base)),
            (
                "elsewhere",
                ClientRegistration::public("https://other.example/fhir", "x", DEMO_REDIRECT_URI),
            ),
        ],
        Arc::new(smart_adapter_generic::Generic),
        None,
        None,
    );
    let err = client
        .begin_ehr_launch_with(
            &base,
            "l",
            EhrLaunch {
                registration: Some("elsewhere".into()),
                ..EhrLaunch::default()
            },
        )
        .await
        .expect_err("mismatch");
    assert!(
        matches!(err, LaunchError::RegistrationIssuerMismatch { .. }),
        "{err}"
    );
}

#[test]
fn unknown_adapter_is_a_configuration_error() {
    let err = SmartClient::builder()
        .registration(
            "x",
            ClientRegistration::public("https://e.example/fhir", "a", "https://a/cb")
                .with_adapter("epic"),
        )
        .adapter(Arc::new(smart_adapter_generic::Generic))
        .build()
        .expect_err("epic not installed");
    assert!(
        err.to_string().contains("adapter `epic` is not installed"),
        "{err}"
    );
}

#[tokio::test]
async fn an_auth_method_the_server_does_not_advertise_is_refused_before_authorizing() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let mut registration = confidential_registration(&base);
    registration.auth = smart_core::ClientAuth::ConfidentialSymmetric {
        client_secret: ClientSecret::new("demo-secret"),
        method: smart_core::config::SymmetricMethod::ClientSecretPost,
    };
    let client = client_with(
        vec![("post", registration)],
        Arc::new(smart_adapter_generic::Generic),
        None,
        None,
    );
    let err = client
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .expect_err("client_secret_post is not advertised by the sandbox");
    assert!(
        matches!(err, LaunchError::AuthMethodNotAdvertised { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("client_secret_post"), "{err}");
    assert_eq!(sandbox.counters().authorize_requests, 0);
}
