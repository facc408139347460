//! Oracle Health behaviours over real HTTP: this adapter and the core against the sandbox's
//! `cerner` profile on 127.0.0.1.
//!
//! Each test is named after the catalogue quirk it shows (`cerner-active-at` →
//! `cerner_active_at`), so the catalogue check finds the test of every row the core or the
//! adapter handles. A test starts its own sandbox and registers its own clients, so that one
//! test's refresh throttle or behaviour switches cannot touch another's.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use smart_adapter_cerner::Cerner;
use smart_core::headless::authorize_headless;
use smart_core::quirks::{SpecAdapter, VendorQuirks};
use smart_core::scope::{Scope, Scopes};
use smart_core::secret::{AccessToken, ClientSecret};
use smart_core::{
    Bearer, BearerError, BearerSource, ClientRegistration, CompletedLaunch, LaunchError,
    OAuthErrorCode, RefreshOptions, SmartClient, StandaloneLaunch,
};
use smart_fhir::{FhirClient, FhirError, RetryPolicy};
use smart_sandbox::{
    ClientAuth, DEMO_REDIRECT_URI, LaunchContextRequest, LaunchDefaults, Sandbox, SandboxConfig,
    VendorProfile,
};

const SECRET: &str = "system-account-secret";

async fn cerner_sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig {
        profile: VendorProfile::builtin("cerner").expect("the cerner profile"),
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox")
}

/// Registers a confidential-symmetric client allowed `scopes` (what the code Console
/// registration would allow), for `grant_types`.
fn register(sandbox: &Sandbox, client_id: &str, scopes: &str, grant_types: &[&str]) {
    sandbox.register_client(smart_sandbox::ClientRegistration {
        client_id: client_id.into(),
        auth: ClientAuth::ClientSecretBasic {
            secret: SECRET.into(),
        },
        redirect_uris: vec![DEMO_REDIRECT_URI.into()],
        launch_uri: None,
        scopes: scopes.into(),
        context: LaunchDefaults {
            patient: Some("pat-1".into()),
            user: Some("Practitioner/prac-1".into()),
            ..LaunchDefaults::default()
        },
        grant_types: grant_types.iter().map(|g| (*g).to_owned()).collect(),
    });
}

/// A client for one registration named "app", requesting `scopes`, with `adapter`.
fn client(
    base: &str,
    client_id: &str,
    scopes: &str,
    adapter: Arc<dyn VendorQuirks>,
) -> SmartClient {
    let name = adapter.name().to_owned();
    SmartClient::builder()
        .registration(
            "app",
            ClientRegistration::confidential_symmetric(
                base,
                client_id,
                ClientSecret::new(SECRET),
                DEMO_REDIRECT_URI,
            )
            .with_scopes(Scopes::parse(scopes))
            .with_adapter(name),
        )
        .adapter(adapter)
        .build()
        .expect("client")
}

async fn ehr_launch(client: &SmartClient, sandbox: &Sandbox, client_id: &str) -> CompletedLaunch {
    let launch = sandbox
        .issue_launch(
            client_id,
            LaunchContextRequest {
                patient: Some("pat-2".into()),
                ..Default::default()
            },
        )
        .expect("launch");
    let request = client
        .begin_ehr_launch(&sandbox.fhir_base(), &launch)
        .await
        .expect("begin");
    let callback = authorize_headless(&**client.http(), &request, DEMO_REDIRECT_URI)
        .await
        .expect("redirected back");
    client.complete_launch(&callback).await.expect("launch")
}

/// Quirk `cerner-active-at`: a refresh of an `online_access` session carries `active_at` when
/// the app reported the user's activity, and only then.
#[tokio::test]
async fn cerner_active_at() {
    let sandbox = cerner_sandbox().await;
    let base = sandbox.fhir_base();
    register(
        &sandbox,
        "online-app",
        "launch patient/Patient.rs online_access offline_access",
        &["authorization_code"],
    );
    let cerner: Arc<dyn VendorQuirks> = Arc::new(Cerner::new());

    // An online_access session whose user was active 30 s ago: the refresh says so.
    let online = client(
        &base,
        "online-app",
        "launch patient/Patient.rs online_access",
        cerner.clone(),
    );
    let done = ehr_launch(&online, &sandbox, "online-app").await;
    assert!(done.session.tokens.refresh_token.is_some());
    online
        .refresh(
            &done.session_id,
            RefreshOptions {
                user_active_at: Some(SystemTime::now() - Duration::from_secs(30)),
                ..RefreshOptions::default()
            },
        )
        .await
        .expect("refresh");
    let seen = sandbox.active_at_seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!((30..=32).contains(&seen[0]), "{seen:?}");

    // A FHIR client's proactive refresh reports what the app's UI recorded.
    let done = ehr_launch(&online, &sandbox, "online-app").await;
    let activity = smart_core::UserActivity::new();
    activity.touch_at(SystemTime::now() - Duration::from_secs(5));
    let bearer = online
        .session_bearer(&done.session_id)
        .await
        .expect("bearer")
        // Refresh before every call, so that the read below refreshes.
        .with_refresh_margin(Duration::from_secs(3600))
        .with_user_activity(activity);
    let fhir = FhirClient::new(online.http().clone(), Arc::new(bearer));
    fhir.read_json("Patient", "pat-2").await.expect("read");
    let seen = sandbox.active_at_seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!((5..=7).contains(&seen[1]), "{seen:?}");

    // No reported activity: nothing sent.
    let done = ehr_launch(&online, &sandbox, "online-app").await;
    online
        .refresh(&done.session_id, RefreshOptions::default())
        .await
        .expect("refresh");
    assert_eq!(sandbox.active_at_seen().len(), 2);

    // An offline_access session does not lapse with inactivity: nothing sent.
    let offline = client(
        &base,
        "online-app",
        "launch patient/Patient.rs offline_access",
        cerner,
    );
    let done = ehr_launch(&offline, &sandbox, "online-app").await;
    offline
        .refresh(
            &done.session_id,
            RefreshOptions {
                user_active_at: Some(SystemTime::now()),
                ..RefreshOptions::default()
            },
        )
        .await
        .expect("refresh");
    assert_eq!(sandbox.active_at_seen().len(), 2);
}

/// Quirk `cerner-silent-scope-drop`: scopes left out of a successful grant are listed in the
/// launch result and logged, `offline_access` included when only `online_access` came back.
#[tokio::test]
async fn cerner_silent_scope_drop() {
    let sandbox = cerner_sandbox().await;
    let base = sandbox.fhir_base();
    // Registered for online access only (code Console "Type of Access = Online").
    register(
        &sandbox,
        "online-only",
        "launch patient/Patient.rs patient/Observation.rs online_access",
        &["authorization_code"],
    );
    let logs = smart_testkit::logs::WarningLog::default();
    let _guard = logs.install();

    // offline_access is left out of a successful grant; online_access (and its refresh token)
    // is granted. The launch result says so, and a warning names it.
    let app = client(
        &base,
        "online-only",
        "launch patient/Patient.rs offline_access online_access",
        Arc::new(Cerner::new()),
    );
    let done = ehr_launch(&app, &sandbox, "online-only").await;
    assert!(done.session.tokens.refresh_token.is_some());
    assert_eq!(done.scopes.dropped.to_string(), "offline_access");
    let logged = logs.text();
    assert!(
        logged.contains("granted fewer scopes") && logged.contains("offline_access"),
        "{logged}"
    );

    // A spec-exact client's wildcard is dropped silently by Oracle Health: reported too.
    let spec = client(
        &base,
        "online-only",
        "launch patient/*.rs patient/Patient.rs",
        Arc::new(SpecAdapter),
    );
    let done = ehr_launch(&spec, &sandbox, "online-only").await;
    assert!(!done.scopes.is_complete());
    assert!(
        done.scopes.narrowed.contains(&Scope::parse("patient/*.rs")),
        "{:?}",
        done.scopes
    );
    // The Oracle Health adapter expands it instead, and nothing is dropped.
    let cerner = client(
        &base,
        "online-only",
        "launch patient/*.rs",
        Arc::new(Cerner::new().with_resource_types(["Patient", "Observation"])),
    );
    let done = ehr_launch(&cerner, &sandbox, "online-only").await;
    assert!(done.scopes.is_complete(), "{:?}", done.scopes);
}

/// Quirk `cerner-client-persona-mismatch`: the error redirect for a client of the other persona
/// becomes an error that says so.
#[tokio::test]
async fn cerner_client_persona_mismatch() {
    let sandbox = cerner_sandbox().await;
    let base = sandbox.fhir_base();
    register(
        &sandbox,
        "patient-persona-app",
        "launch/patient openid fhirUser patient/Patient.rs",
        &["authorization_code"],
    );
    sandbox.set_behavior(|b| b.wrong_persona_clients = vec!["patient-persona-app".into()]);
    let app = client(
        &base,
        "patient-persona-app",
        "launch/patient openid fhirUser patient/Patient.rs",
        Arc::new(Cerner::new()),
    );
    let request = app
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .expect("begin");
    let callback = authorize_headless(&**app.http(), &request, DEMO_REDIRECT_URI)
        .await
        .expect("an error redirect");
    let err = app.complete_launch(&callback).await.expect_err("refused");
    let LaunchError::Authorization(error) = &err else {
        panic!("expected an authorization error, got {err}");
    };
    assert_eq!(error.code, OAuthErrorCode::UnauthorizedClient);
    let uri = error.uri.as_deref().expect("Oracle sends an error_uri");
    assert!(uri.contains("client-persona-mismatch"), "{uri}");
    let hint = error.description.as_deref().unwrap_or_default();
    assert!(
        hint.starts_with("client registered for another Oracle Health persona")
            && hint.contains("(persona named: provider)"),
        "{hint}"
    );
    // What the user reads: the hint comes first, before any cut.
    let text = err.to_string();
    assert!(
        text.contains("registered for another Oracle Health persona"),
        "{text}"
    );
}

/// Quirk `cerner-backend-basic-auth`: a system account gets a backend token with HTTP Basic.
#[tokio::test]
async fn cerner_backend_basic_auth() {
    let sandbox = cerner_sandbox().await;
    let base = sandbox.fhir_base();
    register(
        &sandbox,
        "system-account",
        "system/Patient.rs system/Observation.rs",
        &["client_credentials"],
    );
    let app = client(
        &base,
        "system-account",
        "system/Patient.rs",
        Arc::new(Cerner::new()),
    );
    let source = app
        .backend_token_source("app", Scopes::parse("system/Patient.rs"))
        .expect("a symmetric registration is a backend source");
    let token = source.token().await.expect("a backend token with Basic");
    assert!(token.scopes.contains(&Scope::parse("system/Patient.rs")));
    assert_eq!(sandbox.counters().token_requests, 1);
    // And it reads FHIR.
    let fhir = FhirClient::new(app.http().clone(), Arc::new(source));
    let patient = fhir.read_json("Patient", "pat-1").await.expect("read");
    assert_eq!(patient.resource["id"], "pat-1");
}

/// Quirk `cerner-discovered-endpoints`: the client assertion's `aud` is the discovered,
/// host-specific token URL.
#[tokio::test]
async fn cerner_discovered_endpoints() {
    let sandbox = cerner_sandbox().await;
    let base = sandbox.fhir_base();
    // The token URL is tenant- and host-specific, unlike the documented one.
    let token_url = sandbox.token_url();
    assert!(
        token_url.contains("/tenants/") && token_url.contains("/hosts/"),
        "{token_url}"
    );
    let key =
        smart_core::smart_jose::PrivateKey::generate(smart_core::smart_jose::Algorithm::RS384)
            .expect("key");
    let keys = smart_core::ClientKeys::new(key);
    sandbox.register_client(smart_sandbox::ClientRegistration {
        client_id: "bulk".into(),
        auth: ClientAuth::PrivateKeyJwt {
            jwks: Some(keys.jwks()),
            jwks_url: None,
        },
        redirect_uris: vec![],
        launch_uri: None,
        scopes: "system/Patient.rs".into(),
        context: LaunchDefaults::default(),
        grant_types: vec!["client_credentials".into()],
    });
    let app = SmartClient::builder()
        .registration(
            "bulk",
            ClientRegistration::backend(&base, "bulk", keys, Scopes::parse("system/Patient.rs"))
                .with_adapter(smart_adapter_cerner::NAME),
        )
        .adapter(Arc::new(Cerner::new()))
        .build()
        .expect("client");
    // The sandbox refuses an assertion whose aud is not its token URL byte for byte, so a
    // token here means the discovered URL was used, hosts/ segment included.
    let token = app
        .backend_token_source("bulk", Scopes::parse("system/Patient.rs"))
        .expect("source")
        .token()
        .await
        .expect("a token with an assertion for the discovered URL");
    assert!(!token.access_token.expose_secret().is_empty());
}

/// A bearer source with a fixed token for a given base (to send a real token to another
/// tenant's base, or a wrong token to the right one).
#[derive(Debug)]
struct Fixed {
    base: String,
    token: String,
}

#[async_trait::async_trait]
impl BearerSource for Fixed {
    fn fhir_base(&self) -> &str {
        &self.base
    }
    fn adapter(&self) -> Arc<dyn VendorQuirks> {
        Arc::new(Cerner::new())
    }
    async fn bearer(&self) -> Result<Bearer, BearerError> {
        Ok(Bearer {
            access_token: AccessToken::new(self.token.clone()),
            generation: 1,
        })
    }
    /// The same token again: a second 401 is what the FHIR client reports.
    async fn after_unauthorized(&self, rejected: &Bearer) -> Result<Bearer, BearerError> {
        Ok(Bearer {
            access_token: AccessToken::new(self.token.clone()),
            generation: rejected.generation + 1,
        })
    }
}

/// Quirk `cerner-fhir-401-403`: the tenant 403 and the Bearer 401 are classified.
#[tokio::test]
async fn cerner_fhir_401_403() {
    let sandbox = cerner_sandbox().await;
    let base = sandbox.fhir_base();
    register(
        &sandbox,
        "reader",
        "launch patient/Patient.rs",
        &["authorization_code"],
    );
    let app = client(
        &base,
        "reader",
        "launch patient/Patient.rs",
        Arc::new(Cerner::new()),
    );
    let done = ehr_launch(&app, &sandbox, "reader").await;
    let token = done.session.tokens.access_token.expose_secret().to_owned();

    // 403: a tenant that has not enabled the app (here: another tenant's base).
    let tenant = sandbox.profile().tenant.clone().expect("a tenant");
    let other = base.replace(&tenant, "00000000-0000-0000-0000-000000000000");
    assert_ne!(other, base);
    let fhir = FhirClient::new(
        app.http().clone(),
        Arc::new(Fixed {
            base: other,
            token: token.clone(),
        }),
    );
    match fhir.read_json("Patient", "pat-2").await {
        Err(FhirError::Forbidden {
            insufficient_scope,
            body,
            ..
        }) => {
            assert!(
                !insufficient_scope,
                "a tenant refusal is not a scope problem"
            );
            assert!(
                body.to_string().contains("Tenant not valid or accessible"),
                "{body}"
            );
        }
        other => panic!("expected a 403, got {other:?}"),
    }

    // 401: a token the server does not know, with the Bearer challenge's error.
    let fhir = FhirClient::new(
        app.http().clone(),
        Arc::new(Fixed {
            base: base.clone(),
            token: "not-a-token".into(),
        }),
    );
    match fhir.read_json("Patient", "pat-2").await {
        Err(FhirError::Unauthorized { error, .. }) => {
            assert_eq!(error.as_deref(), Some("invalid_token"));
        }
        other => panic!("expected a 401, got {other:?}"),
    }
}

/// Quirk `cerner-ambiguous-5xx`: a 500 is not retried, a 504 on a read is.
#[tokio::test]
async fn cerner_ambiguous_5xx() {
    let sandbox = cerner_sandbox().await;
    let base = sandbox.fhir_base();
    register(
        &sandbox,
        "reader",
        "launch patient/Patient.rs",
        &["authorization_code"],
    );
    let app = client(
        &base,
        "reader",
        "launch patient/Patient.rs",
        Arc::new(Cerner::new()),
    );
    let done = ehr_launch(&app, &sandbox, "reader").await;
    let bearer = app.session_bearer(&done.session_id).await.expect("bearer");
    let fhir = FhirClient::new(app.http().clone(), Arc::new(bearer)).with_retry(RetryPolicy {
        initial_backoff: Duration::from_millis(10),
        jitter: false,
        ..RetryPolicy::default()
    });

    // A 500 may be permanent (a record missing a required field): never retried.
    let before = sandbox.counters().fhir_requests;
    sandbox.set_behavior(|b| b.fhir_server_errors = 1);
    let err = fhir
        .read_json("Patient", "pat-2")
        .await
        .expect_err("the 500 surfaces");
    assert!(err.to_string().contains("500"), "{err}");
    assert_eq!(sandbox.counters().fhir_requests - before, 1, "one attempt");

    // A 504 on a read is retried (reads are idempotent), within the retry budget.
    let before = sandbox.counters().fhir_requests;
    sandbox.set_behavior(|b| b.fhir_gateway_timeouts = 1);
    let patient = fhir
        .read_json("Patient", "pat-2")
        .await
        .expect("the retry succeeds");
    assert_eq!(patient.resource["id"], "pat-2");
    assert_eq!(sandbox.counters().fhir_requests - before, 2, "two attempts");
}

/// A refresh token the server no longer knows (here: a grant left unused past the sandbox's
/// idle lifetime, as Oracle Health revokes offline access unused for three months) ends the
/// session with an error that says what to do; an expired authorization code does not get that
/// advice, although Oracle sends an `error_uri` with it too.
#[tokio::test]
async fn a_refresh_of_a_revoked_grant_says_to_reapprove() {
    let sandbox = cerner_sandbox().await;
    let base = sandbox.fhir_base();
    register(
        &sandbox,
        "offline-app",
        "launch patient/Patient.rs offline_access",
        &["authorization_code"],
    );
    sandbox.set_behavior(|b| {
        b.access_token_lifetime = Duration::from_secs(1);
        b.grant_idle_lifetime = Duration::from_secs(1);
    });
    let app = client(
        &base,
        "offline-app",
        "launch patient/Patient.rs offline_access",
        Arc::new(Cerner::new()),
    );
    let done = ehr_launch(&app, &sandbox, "offline-app").await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    // Anything the sandbox stores runs its sweep, which forgets the idle grant.
    sandbox
        .issue_launch("offline-app", LaunchContextRequest::default())
        .expect("launch");
    let err = app
        .refresh(&done.session_id, RefreshOptions::default())
        .await
        .expect_err("the grant is gone");
    let smart_core::RefreshError::Rejected(smart_core::TokenError::OAuth { error, .. }) = &err
    else {
        panic!("expected a rejected refresh token, got {err}");
    };
    assert_eq!(error.code, OAuthErrorCode::InvalidGrant);
    assert!(error.uri.is_some(), "Oracle sends an error_uri");
    let hint = error.description.as_deref().unwrap_or_default();
    assert!(
        hint.contains("three months") && hint.contains("re-approve"),
        "{hint}"
    );

    // A code exchange that fails with invalid_grant (an expired code) gets no re-approval
    // advice, although it carries an error_uri too.
    sandbox.set_behavior(|b| b.code_lifetime = Duration::from_secs(1));
    let request = app
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .expect("begin");
    let callback = authorize_headless(&**app.http(), &request, DEMO_REDIRECT_URI)
        .await
        .expect("redirected back");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let err = app
        .complete_launch(&callback)
        .await
        .expect_err("the code expired");
    let LaunchError::Token(smart_core::TokenError::OAuth { error, .. }) = &err else {
        panic!("expected a token error, got {err}");
    };
    assert_eq!(error.code, OAuthErrorCode::InvalidGrant);
    assert!(
        error
            .uri
            .as_deref()
            .is_some_and(|u| u.contains("code-invalid-or-expired")),
        "{error:?}"
    );
    assert!(
        !error
            .description
            .as_deref()
            .unwrap_or_default()
            .contains("re-approve"),
        "{error:?}"
    );
}
