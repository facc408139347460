//! Token responses that differ from the request in ways real servers differ: a server that
//! issues a refresh token without echoing `offline_access` in `scope` (Epic has been reported to
//! do both). The launch outcome must not report `offline_access` as dropped next to a working
//! refresh token. (Hostile numbers and a 100,000-entry `scope` over real HTTP are tested in
//! `smart-fhir`'s `tests/hostile.rs`, which has an axum server at hand.)

mod support;

use smart_core::scope::Scope;
use smart_sandbox::{Sandbox, SandboxConfig, ScopeEcho};

#[tokio::test]
async fn a_refresh_token_without_an_echoed_offline_access_is_not_a_dropped_scope() {
    let mut config = SandboxConfig::default();
    // Granted from the registration, as Epic does, with an echo that leaves offline_access out
    // although it earns a refresh token (reported of Epic in the past).
    config.profile.scope_echo = ScopeEcho::Registration;
    config.behavior.echo_omits_access_scopes = true;
    let sandbox = Sandbox::start(config).await.expect("sandbox starts");
    let base = sandbox.fhir_base();
    let client = support::public_client(&base);
    let done = support::standalone(&client, &base).await;

    assert!(done.session.tokens.refresh_token.is_some());
    let granted = done
        .session
        .tokens
        .granted_scopes
        .clone()
        .expect("the server sent scope");
    assert!(
        !granted.contains(&Scope::OfflineAccess),
        "the server is expected not to echo offline_access: {granted}"
    );
    assert!(
        !done.scopes.dropped.contains(&Scope::OfflineAccess),
        "{:?}",
        done.scopes
    );
    assert!(
        done.scopes
            .granted_as_requested
            .contains(&Scope::OfflineAccess),
        "{:?}",
        done.scopes
    );
}
