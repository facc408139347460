//! `state` bound to the browser that began the launch (issue 8 item 6; SMART checklist: bind
//! `state` to the user's session). Against the sandbox over real HTTP.

mod support;

use smart_core::secret::BrowserBinding;
use smart_core::{CallbackParams, LaunchError, StandaloneLaunch};
use support::*;

/// The redirect's parameters as another browser would deliver them: without the cookie.
fn without_binding(callback: &CallbackParams) -> CallbackParams {
    let pairs: Vec<(&str, &str)> = ["code", "state", "iss"]
        .into_iter()
        .filter_map(|k| callback.get(k).map(|v| (k, v)))
        .collect();
    CallbackParams::from_pairs(pairs)
}

#[tokio::test]
async fn a_callback_without_the_binding_is_refused_and_the_state_is_spent() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let client = public_client(&base);
    let request = client
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .expect("begin");
    let callback = callback_for(&client, &request).await;
    let token_requests = sandbox.counters().token_requests;
    let err = client
        .complete_launch(&without_binding(&callback))
        .await
        .expect_err("refused");
    assert!(matches!(err, LaunchError::MissingBrowserBinding), "{err:?}");
    assert_eq!(
        sandbox.counters().token_requests,
        token_requests,
        "no code exchange"
    );
    // Single use: even the right browser cannot use this state any more.
    assert!(matches!(
        client.complete_launch(&callback).await,
        Err(LaunchError::UnknownState)
    ));
}

#[tokio::test]
async fn a_callback_with_another_browsers_binding_is_refused() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let client = public_client(&base);
    // The attacker begins a launch in their own browser and signs in ...
    let attacker = client
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .expect("begin");
    let attacker_callback = callback_for(&client, &attacker).await;
    // ... and plants the redirect in the victim's browser, which holds its own binding.
    let victim_binding = BrowserBinding::generate();
    let planted = without_binding(&attacker_callback).with_browser_binding(victim_binding);
    let token_requests = sandbox.counters().token_requests;
    let err = client.complete_launch(&planted).await.expect_err("refused");
    assert!(
        matches!(err, LaunchError::BrowserBindingMismatch),
        "{err:?}"
    );
    assert_eq!(
        sandbox.counters().token_requests,
        token_requests,
        "no code exchange"
    );
    assert!(matches!(
        client.complete_launch(&attacker_callback).await,
        Err(LaunchError::UnknownState)
    ));
}

#[tokio::test]
async fn an_app_supplied_binding_is_used_and_only_its_hash_is_stored() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let client = public_client(&base);
    let binding = BrowserBinding::generate();
    assert_eq!(binding.expose_secret().len(), 43, "256 bits, base64url");
    assert_eq!(format!("{binding:?}"), "BrowserBinding([redacted])");

    // The pending launch keeps the hash, never the value.
    let probe = client
        .begin_standalone_launch(
            &base,
            StandaloneLaunch {
                browser_binding: Some(binding.clone()),
                ..StandaloneLaunch::default()
            },
        )
        .await
        .expect("begin");
    assert_eq!(probe.browser_binding(), &binding);
    let pending = client
        .store()
        .take_pending_launch(probe.state.expose())
        .await
        .expect("take")
        .expect("pending");
    assert_eq!(pending.browser_binding_sha256, binding.sha256());
    let stored = serde_json::to_string(&pending).expect("json");
    assert!(
        !stored.contains(binding.expose_secret()),
        "the value itself is not stored"
    );

    // A launch with the app's binding completes when the callback carries it.
    let request = client
        .begin_standalone_launch(
            &base,
            StandaloneLaunch {
                browser_binding: Some(binding.clone()),
                ..StandaloneLaunch::default()
            },
        )
        .await
        .expect("begin");
    let callback =
        without_binding(&callback_for(&client, &request).await).with_browser_binding(binding);
    client.complete_launch(&callback).await.expect("complete");
}

#[tokio::test]
async fn a_short_app_supplied_binding_is_refused_before_any_request() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let http = CountingHttp::new();
    let client = client_with(
        vec![("public", public_registration(&base))],
        std::sync::Arc::new(smart_adapter_generic::Generic),
        Some(http.clone()),
        None,
    );
    let err = client
        .begin_standalone_launch(
            &base,
            StandaloneLaunch {
                browser_binding: Some(BrowserBinding::new("session-1")),
                ..StandaloneLaunch::default()
            },
        )
        .await
        .expect_err("too short");
    assert!(
        matches!(err, LaunchError::WeakBrowserBinding { chars: 9 }),
        "{err:?}"
    );
    assert_eq!(http.count(), 0, "nothing was sent");
}
