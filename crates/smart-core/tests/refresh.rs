//! Refresh against the sandbox: rotation, non-rotation, single flight, rejection.

mod support;

use std::sync::Arc;

use smart_core::scope::Scopes;
use smart_core::store::SessionStatus;
use smart_core::{RefreshError, RefreshOptions};
use support::*;

#[tokio::test]
async fn rotated_refresh_token_replaces_the_old_one() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let client = public_client(&base);
    let done = standalone(&client, &base).await;
    let refreshed = client
        .refresh(&done.session_id, RefreshOptions::default())
        .await
        .expect("refresh");
    assert_eq!(refreshed.version, done.version + 1);
    let old = &done.session.tokens;
    let new = &refreshed.value.tokens;
    assert_ne!(new.access_token, old.access_token);
    assert_ne!(
        new.refresh_token, old.refresh_token,
        "the sandbox rotates by default"
    );
    assert!(refreshed.value.refreshed_at.is_some());
    assert_eq!(
        refreshed.value.context.patient.as_deref(),
        Some("pat-1"),
        "context survives a refresh"
    );
    // The stored session is the refreshed one, and refreshing again uses the new token.
    let again = client
        .refresh(&done.session_id, RefreshOptions::default())
        .await
        .expect("second refresh");
    assert_eq!(again.version, done.version + 2);
}

#[tokio::test]
async fn refresh_response_without_refresh_token_keeps_the_old_one() {
    let sandbox = sandbox().await;
    sandbox.set_behavior(|b| {
        b.refresh_returns_refresh_token = false;
        b.rotate_refresh_tokens = false;
    });
    let base = sandbox.fhir_base();
    let client = public_client(&base);
    let done = standalone(&client, &base).await;
    let refreshed = client
        .refresh(&done.session_id, RefreshOptions::default())
        .await
        .expect("refresh");
    assert_ne!(
        refreshed.value.tokens.access_token,
        done.session.tokens.access_token
    );
    assert_eq!(
        refreshed.value.tokens.refresh_token, done.session.tokens.refresh_token,
        "no refresh_token in the response means: keep the current one"
    );
    // And it still works for the next refresh.
    client
        .refresh(&done.session_id, RefreshOptions::default())
        .await
        .expect("second refresh");
    assert_eq!(sandbox.counters().refresh_requests, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_make_one_request() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let client = public_client(&base);
    let done = standalone(&client, &base).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let client = client.clone();
        let id = done.session_id.clone();
        let version = done.version;
        tasks.push(tokio::spawn(async move {
            client
                .refresh(
                    &id,
                    RefreshOptions {
                        if_version: Some(version),
                        ..RefreshOptions::default()
                    },
                )
                .await
        }));
    }
    let mut tokens = std::collections::HashSet::new();
    for t in tasks {
        let refreshed = t.await.expect("task").expect("refresh");
        tokens.insert(
            refreshed
                .value
                .tokens
                .access_token
                .expose_secret()
                .to_owned(),
        );
    }
    assert_eq!(
        sandbox.counters().refresh_requests,
        1,
        "one refresh for all callers"
    );
    assert_eq!(tokens.len(), 1, "every caller sees the same new token");
}

#[tokio::test]
async fn rejected_refresh_ends_the_session() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let client = public_client(&base);
    let done = standalone(&client, &base).await;
    // Spend the refresh token elsewhere (a second copy of the app that does not share the store),
    // so the server sees ours as reused.
    let mut stale = client
        .session(&done.session_id)
        .await
        .expect("load")
        .expect("present");
    client
        .refresh(&done.session_id, RefreshOptions::default())
        .await
        .expect("refresh");
    let current = client
        .session(&done.session_id)
        .await
        .expect("load")
        .expect("present");
    stale.value.status = SessionStatus::Active;
    client
        .store()
        .compare_and_swap_session(&done.session_id, current.version, &stale.value)
        .await
        .expect("restore the stale refresh token");
    let err = client
        .refresh(&done.session_id, RefreshOptions::default())
        .await
        .expect_err("reuse");
    assert!(matches!(err, RefreshError::Rejected(_)), "{err}");
    assert!(err.to_string().contains("start a new launch"), "{err}");
    let ended = client
        .session(&done.session_id)
        .await
        .expect("load")
        .expect("present");
    assert!(matches!(ended.value.status, SessionStatus::Ended { .. }));
    let again = client
        .refresh(&done.session_id, RefreshOptions::default())
        .await
        .expect_err("ended");
    assert!(matches!(again, RefreshError::Ended { .. }), "{again}");
}

#[tokio::test]
async fn narrower_scope_on_refresh_and_ungranted_scope_refused_locally() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let client = public_client(&base);
    let done = standalone(&client, &base).await;
    let before = sandbox.counters().refresh_requests;
    let err = client
        .refresh(
            &done.session_id,
            RefreshOptions {
                scope: Some(Scopes::parse("user/*.rs")),
                ..RefreshOptions::default()
            },
        )
        .await
        .expect_err("not granted");
    assert!(matches!(err, RefreshError::ScopeNotGranted { .. }), "{err}");
    assert_eq!(
        sandbox.counters().refresh_requests,
        before,
        "refused before any request"
    );
    let narrowed = client
        .refresh(
            &done.session_id,
            RefreshOptions {
                scope: Some(Scopes::parse("patient/Patient.rs")),
                ..RefreshOptions::default()
            },
        )
        .await
        .expect("narrower refresh");
    assert_eq!(
        narrowed
            .value
            .tokens
            .granted_scopes
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("patient/Patient.rs")
    );
}

#[tokio::test]
async fn refresh_without_refresh_token_says_what_to_do() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let registration =
        public_registration(&base).with_scopes(Scopes::parse("launch/patient patient/*.rs"));
    let client = client_with(
        vec![("p", registration)],
        Arc::new(smart_adapter_generic::Generic),
        None,
        None,
    );
    let done = standalone(&client, &base).await;
    assert!(done.session.tokens.refresh_token.is_none());
    let err = client
        .refresh(&done.session_id, RefreshOptions::default())
        .await
        .expect_err("no token");
    assert!(matches!(err, RefreshError::NoRefreshToken));
    assert!(err.to_string().contains("offline_access"));
}
