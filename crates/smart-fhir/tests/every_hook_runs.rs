//! Every behaviour hook a quirk catalogue can name ([`Hook::ALL`]) is really called, shown at
//! run time rather than by searching the sources.
//!
//! A catalogue row that says "handled by hook X" is only true if the core (or this crate's FHIR
//! client) calls X during the flow the quirk belongs to. A recording adapter overrides every hook,
//! notes the call and then does what the default does; one complete flow against the sandbox over
//! real HTTP (client built with adapter options, `auto` detection, discovery, a launch with
//! `openid fhirUser`, a denied authorization, a refresh, a FHIR read and search) must touch
//! every hook. The test lives here, not in `smart-core`, because the FHIR hooks are called by
//! `smart-fhir`, which depends on the core.

#![allow(missing_docs)]

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use http::HeaderMap;
use serde_json::{Map, Value};
use smart_core::config::AdapterOptions;
use smart_core::headless::authorize_headless;
use smart_core::quirks::{
    AuthorizeMethod, AuthorizeParameters, FhirQuirks, Hook, HookContext, IdTokenIssuer,
    SpecAdapter, SpecFhir, TokenRequestParts, VendorQuirks, parse_options,
};
use smart_core::scope::Scopes;
use smart_core::{
    ClientRegistration, LaunchError, OAuthError, OAuthErrorCode, RefreshOptions, SmartClient,
    SmartConfiguration, StandaloneLaunch,
};
use smart_fhir::{FhirClient, Search};
use smart_sandbox::{DEMO_REDIRECT_URI, LaunchDefaults};
use support::*;

/// The recording adapter's registry name.
const RECORDER: &str = "recorder";

/// The options the recording adapter accepts, so that the client builder calls `with_options`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RecorderOptions {
    record: bool,
}

/// An adapter that notes every hook call, then behaves exactly like the spec adapter.
#[derive(Debug, Clone, Default)]
struct Recorder {
    calls: Arc<Mutex<Vec<Hook>>>,
}

impl Recorder {
    fn record(&self, hook: Hook) {
        self.calls.lock().expect("lock").push(hook);
    }

    /// The hooks called so far.
    fn seen(&self) -> HashSet<Hook> {
        self.calls.lock().expect("lock").iter().copied().collect()
    }

    /// The hooks of [`Hook::ALL`] not called yet, by trait and method name.
    fn missing(&self) -> Vec<String> {
        let seen = self.seen();
        Hook::ALL
            .iter()
            .filter(|hook| !seen.contains(hook))
            .map(|hook| format!("{}::{}", hook.trait_name(), hook.method()))
            .collect()
    }

    /// Asserts that each of `hooks` has been called by now, naming the step that should have.
    fn assert_called(&self, step: &str, hooks: &[Hook]) {
        let seen = self.seen();
        let missing: Vec<&str> = hooks
            .iter()
            .filter(|hook| !seen.contains(hook))
            .map(|hook| hook.method())
            .collect();
        assert!(missing.is_empty(), "after {step}, not called: {missing:?}");
    }
}

impl VendorQuirks for Recorder {
    fn name(&self) -> &str {
        RECORDER
    }

    fn with_options(
        &self,
        options: &AdapterOptions,
    ) -> Result<Option<Arc<dyn VendorQuirks>>, String> {
        self.record(Hook::WithOptions);
        let options: RecorderOptions = parse_options(options)?;
        assert!(options.record, "the test registers `record = true`");
        // The options are ours; the rest of the registration is the spec's business.
        SpecAdapter.with_options(&AdapterOptions::new())
    }

    fn fhir(&self) -> &dyn FhirQuirks {
        self
    }

    fn discovery_headers(&self, ctx: &HookContext<'_>, headers: &mut HeaderMap) {
        self.record(Hook::DiscoveryHeaders);
        SpecAdapter.discovery_headers(ctx, headers);
    }

    fn discovery_variant(&self, ctx: &HookContext<'_>) -> Option<String> {
        self.record(Hook::DiscoveryVariant);
        SpecAdapter.discovery_variant(ctx)
    }

    fn patch_configuration(&self, ctx: &HookContext<'_>, configuration: &mut SmartConfiguration) {
        self.record(Hook::PatchConfiguration);
        SpecAdapter.patch_configuration(ctx, configuration);
    }

    fn recognizes(
        &self,
        ctx: &HookContext<'_>,
        configuration: &SmartConfiguration,
        capability_statement: Option<&Value>,
    ) -> Option<String> {
        self.record(Hook::Recognizes);
        // The spec adapter recognises nothing; detection must pick this adapter for the flow to
        // go through it, so it claims the sandbox (evidence: a CapabilityStatement was served).
        SpecAdapter
            .recognizes(ctx, configuration, capability_statement)
            .or_else(|| {
                capability_statement
                    .map(|_| "the test's recording adapter claims every server".to_owned())
            })
    }

    fn adapt_requested_scopes(
        &self,
        ctx: &HookContext<'_>,
        configuration: &SmartConfiguration,
        scopes: &mut Scopes,
    ) {
        self.record(Hook::AdaptRequestedScopes);
        SpecAdapter.adapt_requested_scopes(ctx, configuration, scopes);
    }

    fn authorize_parameters(&self, ctx: &HookContext<'_>, params: &mut AuthorizeParameters) {
        self.record(Hook::AuthorizeParameters);
        SpecAdapter.authorize_parameters(ctx, params);
    }

    fn authorize_method(
        &self,
        ctx: &HookContext<'_>,
        configuration: &SmartConfiguration,
        preferred: Option<AuthorizeMethod>,
        get_url_len: usize,
    ) -> AuthorizeMethod {
        self.record(Hook::AuthorizeMethod);
        SpecAdapter.authorize_method(ctx, configuration, preferred, get_url_len)
    }

    fn token_request(&self, ctx: &HookContext<'_>, request: &mut TokenRequestParts) {
        self.record(Hook::TokenRequest);
        SpecAdapter.token_request(ctx, request);
    }

    fn normalize_token_response(&self, ctx: &HookContext<'_>, body: &mut Map<String, Value>) {
        self.record(Hook::NormalizeTokenResponse);
        SpecAdapter.normalize_token_response(ctx, body);
    }

    fn classify_oauth_error(
        &self,
        ctx: &HookContext<'_>,
        status: Option<u16>,
        error: OAuthError,
    ) -> OAuthError {
        self.record(Hook::ClassifyOauthError);
        SpecAdapter.classify_oauth_error(ctx, status, error)
    }

    fn id_token_issuer(
        &self,
        ctx: &HookContext<'_>,
        configuration: &SmartConfiguration,
        unverified_iss: Option<&str>,
    ) -> IdTokenIssuer {
        self.record(Hook::IdTokenIssuer);
        SpecAdapter.id_token_issuer(ctx, configuration, unverified_iss)
    }
}

impl FhirQuirks for Recorder {
    fn fhir_request_headers(&self, ctx: &HookContext<'_>, headers: &mut HeaderMap) {
        self.record(Hook::FhirRequestHeaders);
        SpecFhir.fhir_request_headers(ctx, headers);
    }

    fn search_warnings(
        &self,
        ctx: &HookContext<'_>,
        resource_type: &str,
        params: &[(String, String)],
    ) -> Vec<String> {
        self.record(Hook::SearchWarnings);
        SpecFhir.search_warnings(ctx, resource_type, params)
    }
}

/// The scopes of the launch: patient data, a refresh token, and an `id_token` with `fhirUser`.
const SCOPES: &str = "launch/patient patient/*.rs offline_access openid fhirUser";

#[tokio::test]
async fn every_catalogued_hook_is_called_in_a_full_flow() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    // A second sandbox client whose (simulated) user denies the authorization.
    sandbox.register_client(smart_sandbox::ClientRegistration {
        client_id: "denied-app".into(),
        auth: smart_sandbox::ClientAuth::Public,
        redirect_uris: vec![DEMO_REDIRECT_URI.into()],
        launch_uri: None,
        scopes: SCOPES.into(),
        grant_types: vec!["authorization_code".into()],
        context: LaunchDefaults {
            approve: false,
            ..LaunchDefaults::default()
        },
    });
    let recorder = Recorder::default();

    // Configuration: both registrations carry adapter options, so the builder hands them to the
    // adapter; both say `auto`, so the adapter is detected.
    let registration = |client_id: &str| {
        ClientRegistration::public(&base, client_id, DEMO_REDIRECT_URI)
            .with_scopes(Scopes::parse(SCOPES))
            .with_adapter_option("record", true)
    };
    let smart = SmartClient::builder()
        .registration("app", registration("demo-public"))
        .registration("denied", registration("denied-app"))
        // Installed first, the generic adapter is the fallback: the recorder must be chosen
        // by detection, not by default.
        .adapter(Arc::new(smart_adapter_generic::Generic))
        .adapter(Arc::new(recorder.clone()))
        .build()
        .expect("client builds");
    recorder.assert_called("building the client", &[Hook::WithOptions]);

    // Detection and discovery.
    let choice = smart
        .decide_adapter("app", &registration("demo-public"), &base)
        .await
        .expect("detection");
    assert_eq!(choice.adapter, RECORDER, "{choice:?}");
    smart.discover(&base).await.expect("discovery");
    recorder.assert_called(
        "detection and discovery",
        &[
            Hook::Recognizes,
            Hook::DiscoveryHeaders,
            Hook::DiscoveryVariant,
            Hook::PatchConfiguration,
        ],
    );

    // A standalone launch with `openid fhirUser`: authorization request, code exchange,
    // id_token verification.
    let request = smart
        .begin_standalone_launch(
            &base,
            StandaloneLaunch {
                registration: Some("app".into()),
                ..StandaloneLaunch::default()
            },
        )
        .await
        .expect("begin");
    recorder.assert_called(
        "the authorization request",
        &[
            Hook::AdaptRequestedScopes,
            Hook::AuthorizeParameters,
            Hook::AuthorizeMethod,
        ],
    );
    let callback = authorize_headless(&**smart.http(), &request, DEMO_REDIRECT_URI)
        .await
        .expect("the sandbox redirects back");
    let done = smart.complete_launch(&callback).await.expect("launch");
    assert!(
        done.session.identity.is_some(),
        "the id_token was verified and kept"
    );
    assert_eq!(
        done.session.adapter.as_ref().map(|a| a.adapter.as_str()),
        Some(RECORDER)
    );
    recorder.assert_called(
        "the code exchange",
        &[
            Hook::TokenRequest,
            Hook::NormalizeTokenResponse,
            Hook::IdTokenIssuer,
        ],
    );

    // A denied authorization comes back to the redirect URI as an OAuth error.
    let denied = smart
        .begin_standalone_launch(
            &base,
            StandaloneLaunch {
                registration: Some("denied".into()),
                ..StandaloneLaunch::default()
            },
        )
        .await
        .expect("begin");
    let callback = authorize_headless(&**smart.http(), &denied, DEMO_REDIRECT_URI)
        .await
        .expect("the sandbox redirects back");
    match smart.complete_launch(&callback).await {
        Err(LaunchError::Authorization(e)) => assert_eq!(e.code, OAuthErrorCode::AccessDenied),
        other => panic!("expected access_denied, got {other:?}"),
    }
    recorder.assert_called("a denied authorization", &[Hook::ClassifyOauthError]);

    // A refresh (token request and response of the refresh grant).
    let refreshes = sandbox.counters().refresh_requests;
    smart
        .refresh(
            &done.session_id,
            RefreshOptions {
                force: true,
                ..RefreshOptions::default()
            },
        )
        .await
        .expect("refresh");
    assert_eq!(sandbox.counters().refresh_requests, refreshes + 1);

    // The FHIR API through smart-fhir.
    let auth = smart
        .session_bearer(&done.session_id)
        .await
        .expect("bearer source");
    let fhir = FhirClient::new(smart.http().clone(), Arc::new(auth)).with_retry(test_retry());
    let patient = fhir.read_json("Patient", "pat-1").await.expect("read");
    assert_eq!(patient.resource["id"], "pat-1");
    recorder.assert_called("a FHIR read", &[Hook::FhirRequestHeaders]);
    let page = fhir
        .search_json(&Search::new("Observation").patient("pat-1").count(5))
        .await
        .expect("search");
    assert!(!page.entries.is_empty());
    recorder.assert_called("a FHIR search", &[Hook::SearchWarnings]);

    // Nothing in the catalogue's hook list was left out.
    let missing = recorder.missing();
    assert!(
        missing.is_empty(),
        "hooks never called in a full flow: {missing:?}"
    );
    let all: HashSet<Hook> = Hook::ALL.iter().copied().collect();
    assert_eq!(recorder.seen(), all);
}
