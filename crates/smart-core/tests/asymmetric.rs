//! Asymmetric clients (`private_key_jwt`, RS384 and ES384) on every grant, backend services and
//! introspection, against the sandbox over real HTTP.

mod support;

use std::sync::Arc;

use smart_core::scope::Scopes;
use smart_core::secret::ClientSecret;
use smart_core::smart_jose::Algorithm;
use smart_core::{
    BackendError, ClientRegistration, IntrospectionAuth, IntrospectionError, RefreshOptions,
    StandaloneLaunch, TokenError,
};
use smart_sandbox::{DEMO_REDIRECT_URI, LaunchContextRequest, LaunchDefaults};
use support::*;

const LAUNCH_SCOPES: &str = "launch launch/patient patient/*.rs openid fhirUser offline_access";

fn launch_defaults() -> LaunchDefaults {
    LaunchDefaults {
        patient: Some("pat-2".into()),
        user: Some("Practitioner/prac-1".into()),
        ..LaunchDefaults::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asymmetric_client_launches_refreshes_and_introspects_with_rs384_and_es384() {
    for alg in [Algorithm::RS384, Algorithm::ES384] {
        let sandbox = sandbox().await;
        let base = sandbox.fhir_base();
        let client_id = format!("asym-{alg}");
        let keys = register_asymmetric(
            &sandbox,
            &client_id,
            alg,
            &["authorization_code"],
            LAUNCH_SCOPES,
            launch_defaults(),
        );
        let http = CountingHttp::new();
        let registration =
            ClientRegistration::confidential_asymmetric(&base, &client_id, keys, DEMO_REDIRECT_URI)
                .with_scopes(Scopes::parse(
                    "launch/patient patient/*.rs openid fhirUser offline_access",
                ));
        let client = client_with(
            vec![("asym", registration)],
            Arc::new(smart_adapter_generic::Generic),
            Some(http.clone()),
            None,
        );

        // Standalone launch, then an EHR launch.
        let standalone = standalone(&client, &base).await;
        assert_eq!(
            standalone.session.context.patient.as_deref(),
            Some("pat-2"),
            "{alg}"
        );
        let identity = standalone
            .session
            .identity
            .as_ref()
            .expect("openid was granted: identity verified");
        let user = identity.fhir_user.as_ref().expect("fhirUser");
        assert_eq!(
            (user.resource_type.as_str(), user.id.as_str()),
            ("Practitioner", "prac-1"),
            "{alg}"
        );
        assert_eq!(user.url, format!("{base}/Practitioner/prac-1"));

        let launch = sandbox
            .issue_launch(
                &client_id,
                LaunchContextRequest {
                    patient: Some("pat-4".into()),
                    ..Default::default()
                },
            )
            .expect("launch");
        let request = client
            .begin_ehr_launch(&base, &launch)
            .await
            .expect("begin");
        let callback = callback_for(&client, &request).await;
        let ehr = client
            .complete_launch(&callback)
            .await
            .expect("EHR launch with an assertion");
        assert_eq!(
            ehr.session.context.patient.as_deref(),
            Some("pat-4"),
            "{alg}"
        );

        // Refresh signs a fresh assertion.
        let refreshed = client
            .refresh(&ehr.session_id, RefreshOptions::default())
            .await
            .expect("refresh");
        assert_ne!(
            refreshed.value.tokens.access_token,
            ehr.session.tokens.access_token
        );

        // Introspection with client authentication (another assertion).
        let info = client
            .introspect(
                &base,
                &refreshed.value.tokens.access_token,
                IntrospectionAuth::Client,
            )
            .await
            .expect("introspect");
        assert!(info.active, "{alg}");
        assert_eq!(info.client_id.as_deref(), Some(client_id.as_str()));
        assert_eq!(info.context.patient.as_deref(), Some("pat-4"));
        assert!(
            info.sub.is_some() && info.fhir_user.is_some(),
            "id_token claims are echoed"
        );

        // Every request carried its own assertion: code exchange ×2, refresh, introspection.
        let assertions = http.form_values("client_assertion");
        assert_eq!(assertions.len(), 4, "{alg}");
        let unique: std::collections::HashSet<_> = assertions.iter().collect();
        assert_eq!(unique.len(), 4, "assertions are never reused");
        assert!(
            http.form_values("client_assertion_type")
                .iter()
                .all(|t| t == smart_core::client_auth::JWT_BEARER_ASSERTION)
        );
        assert!(http.form_values("client_secret").is_empty());
    }
}

#[tokio::test]
async fn introspection_with_bearer_and_of_an_unknown_token() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let client = public_client(&base);
    let done = standalone(&client, &base).await;
    let token = &done.session.tokens.access_token;
    let info = client
        .introspect(&base, token, IntrospectionAuth::Bearer(token.clone()))
        .await
        .expect("bearer-authenticated introspection");
    assert!(info.active);
    assert_eq!(
        info.scope.as_ref().map(ToString::to_string),
        done.session
            .tokens
            .granted_scopes
            .as_ref()
            .map(ToString::to_string)
    );
    let unknown = smart_core::secret::AccessToken::new("not-a-token-at-all");
    let info = client
        .introspect(&base, &unknown, IntrospectionAuth::Bearer(token.clone()))
        .await
        .expect("inactive is an answer, not an error");
    assert!(!info.active && info.client_id.is_none() && info.scope.is_none());
    // A public client has no credentials to introspect with.
    let err = client
        .introspect(&base, token, IntrospectionAuth::Client)
        .await
        .expect_err("public client");
    assert!(
        matches!(err, IntrospectionError::Refused { status: 401, .. }),
        "{err}"
    );
}

fn backend_client(
    sandbox: &smart_sandbox::Sandbox,
    alg: Algorithm,
    http: Option<Arc<CountingHttp>>,
) -> smart_core::SmartClient {
    let keys = register_asymmetric(
        sandbox,
        "backend",
        alg,
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
    client_with(
        vec![("backend", registration)],
        Arc::new(smart_adapter_generic::Generic),
        http.map(|h| h as Arc<dyn smart_core::http::HttpClient>),
        None,
    )
}

#[tokio::test]
async fn backend_token_has_system_scopes_reads_fhir_and_is_reused() {
    for alg in [Algorithm::RS384, Algorithm::ES384] {
        let sandbox = sandbox().await;
        let client = backend_client(&sandbox, alg, None);
        let source = client
            .backend_token_source("backend", Scopes::parse("system/Patient.rs"))
            .expect("source");
        let first = source.token().await.expect("backend token");
        assert_eq!(first.scopes.to_string(), "system/Patient.rs");
        let second = source.token().await.expect("cached");
        assert_eq!(
            first.access_token, second.access_token,
            "reused while far from expiry"
        );
        assert_eq!(sandbox.counters().token_requests, 1, "{alg}");

        // The token reads any patient with system/ scope.
        let request = http::Request::get(format!("{}/Patient/pat-3", sandbox.fhir_base()))
            .header(
                "authorization",
                format!("Bearer {}", first.access_token.expose_secret()),
            )
            .body(Vec::new())
            .expect("request");
        let response = client.http().execute(request).await.expect("FHIR read");
        assert_eq!(response.status(), 200);
    }
}

#[tokio::test]
async fn backend_token_is_renewed_when_it_nears_expiry() {
    let sandbox = sandbox().await;
    sandbox.set_behavior(|b| b.backend_token_lifetime = std::time::Duration::from_secs(30));
    let client = backend_client(&sandbox, Algorithm::ES384, None);
    // By default a 30 s token is renewed in the last 15 s of its life (half): reused now.
    let default_margin = client
        .backend_token_source("backend", Scopes::parse("system/Patient.rs"))
        .expect("source");
    let a = default_margin.token().await.expect("token");
    let b = default_margin.token().await.expect("token");
    assert_eq!(
        a.access_token, b.access_token,
        "15 s default margin: reused"
    );
    assert_eq!(sandbox.counters().token_requests, 1);
    let source = client
        .backend_token_source("backend", Scopes::parse("system/Patient.rs"))
        .expect("source")
        .with_margin(std::time::Duration::from_secs(60));
    let first = source.token().await.expect("token");
    let second = source.token().await.expect("token");
    assert_ne!(
        first.access_token, second.access_token,
        "30 s left is inside the 60 s margin: renewed"
    );
    assert_eq!(sandbox.counters().token_requests, 3);
    let long = source
        .clone()
        .with_margin(std::time::Duration::from_secs(5));
    let third = long.token().await.expect("token");
    let fourth = long.token().await.expect("token");
    assert_eq!(third.access_token, fourth.access_token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_callers_cause_one_token_request() {
    let sandbox = sandbox().await;
    let client = backend_client(&sandbox, Algorithm::RS384, None);
    let source = client
        .backend_token_source("backend", Scopes::parse("system/*.rs"))
        .expect("source");
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let source = source.clone();
        tasks.push(tokio::spawn(async move {
            source.token().await.map(|t| t.access_token)
        }));
    }
    let mut tokens = std::collections::HashSet::new();
    for t in tasks {
        tokens.insert(
            t.await
                .expect("task")
                .expect("token")
                .expose_secret()
                .to_owned(),
        );
    }
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        sandbox.counters().token_requests,
        1,
        "exactly one token request"
    );
}

#[tokio::test]
async fn backend_needs_keys_and_the_server_refuses_what_it_did_not_preauthorise() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let symmetric = ClientRegistration::confidential_symmetric(
        &base,
        "demo-confidential",
        ClientSecret::new("demo-secret"),
        DEMO_REDIRECT_URI,
    );
    let public = ClientRegistration::public(&base, "demo-public", DEMO_REDIRECT_URI);
    let client = client_with(
        vec![("sym", symmetric), ("public", public)],
        Arc::new(smart_adapter_generic::Generic),
        None,
        None,
    );
    let err = client
        .backend_token_source("public", Scopes::parse("system/*.rs"))
        .expect_err("public");
    assert!(matches!(err, BackendError::NotSupported(_)), "{err}");
    // A client secret is allowed by the client (Oracle Health's system accounts use one), but a
    // spec server accepts only private_key_jwt for client_credentials.
    let err = client
        .backend_token_source("sym", Scopes::parse("system/*.rs"))
        .expect("a symmetric source")
        .token()
        .await
        .expect_err("the generic server wants an assertion");
    match err {
        BackendError::Token(TokenError::OAuth { error, .. }) => {
            assert_eq!(error.code.as_str(), "unauthorized_client")
        }
        other => panic!("expected unauthorized_client, got {other}"),
    }

    let client = backend_client(&sandbox, Algorithm::ES384, None);
    let source = client
        .backend_token_source("backend", Scopes::parse("user/*.rs"))
        .expect("source");
    let err = source.token().await.expect_err("not pre-authorised");
    match err {
        BackendError::Token(TokenError::OAuth { error, .. }) => {
            assert_eq!(error.code.as_str(), "invalid_scope")
        }
        other => panic!("expected invalid_scope, got {other}"),
    }
}

#[tokio::test]
async fn a_backend_registration_cannot_launch() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let client = backend_client(&sandbox, Algorithm::ES384, None);
    let err = client
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .expect_err("no redirect uri");
    assert!(
        err.to_string()
            .contains("only be used for backend services"),
        "{err}"
    );
}
