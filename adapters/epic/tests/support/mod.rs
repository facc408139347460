//! What the Epic adapter's integration tests share: the sandbox's Epic profile with a public,
//! patient-facing app registered, a client for that app, and its standalone launch up to the
//! callback.

use std::sync::Arc;

use smart_core::scope::Scopes;
use smart_core::{CallbackParams, ClientRegistration, SmartClient, StandaloneLaunch};
use smart_sandbox::{ClientAuth, DEMO_REDIRECT_URI, LaunchDefaults, Sandbox, SandboxConfig};

/// The app's Epic client ID (a public, patient-facing app).
pub(crate) const APP: &str = "epic-patient-app";

/// The sandbox's Epic profile, with [`APP`] registered (patient `pat-3`).
pub(crate) async fn epic_sandbox() -> Sandbox {
    let sandbox = Sandbox::start(SandboxConfig {
        profile: smart_sandbox::VendorProfile::builtin("epic").expect("epic profile"),
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    sandbox.register_client(smart_sandbox::ClientRegistration {
        client_id: APP.into(),
        auth: ClientAuth::Public,
        redirect_uris: vec![DEMO_REDIRECT_URI.into()],
        launch_uri: None,
        scopes: "launch/patient openid fhirUser patient/*.rs".into(),
        context: LaunchDefaults {
            patient: Some("pat-3".into()),
            ..LaunchDefaults::default()
        },
        grant_types: vec!["authorization_code".into()],
    });
    sandbox
}

/// A client with the Epic adapter and one registration, named "r".
pub(crate) fn client_with(registration: ClientRegistration) -> SmartClient {
    SmartClient::builder()
        .registration("r", registration)
        .adapter(Arc::new(smart_adapter_epic::Epic::new()))
        .build()
        .expect("client")
}

/// A client for [`APP`] at `base`, requesting `scopes`, under the Epic adapter.
pub(crate) fn app_client(base: &str, scopes: &str) -> SmartClient {
    client_with(
        ClientRegistration::public(base, APP, DEMO_REDIRECT_URI)
            .with_scopes(Scopes::parse(scopes))
            .with_adapter(smart_adapter_epic::NAME),
    )
}

/// A standalone launch of `client` at `base`, authorized without a browser, up to the callback.
pub(crate) async fn authorized_callback(client: &SmartClient, base: &str) -> CallbackParams {
    let request = client
        .begin_standalone_launch(base, StandaloneLaunch::default())
        .await
        .expect("begin");
    smart_core::headless::authorize_headless(&**client.http(), &request, DEMO_REDIRECT_URI)
        .await
        .expect("authorize")
}
