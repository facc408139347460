//! `SessionBearer`: tokens refreshed ahead of expiry, and once after a 401 however many ask.

mod support;

use std::time::Duration;

use smart_core::{BearerError, BearerSource, RefreshOptions};
use support::*;

#[tokio::test]
async fn a_token_near_expiry_is_refreshed_before_use() {
    let sandbox = sandbox().await;
    sandbox.set_behavior(|b| b.access_token_lifetime = Duration::from_secs(30));
    let base = sandbox.fhir_base();
    let client = public_client(&base);
    let done = standalone(&client, &base).await;
    // The default margin for a 30 s token is 15 s (half its life); ask for 60 s explicitly.
    let bearer = client
        .session_bearer(&done.session_id)
        .await
        .expect("bearer source")
        .with_refresh_margin(Duration::from_secs(60));
    assert_eq!(bearer.fhir_base(), base);
    let token = bearer.bearer().await.expect("token");
    assert_ne!(
        token.access_token, done.session.tokens.access_token,
        "30 s left is inside the 60 s margin"
    );
    assert_eq!(sandbox.counters().refresh_requests, 1);

    let relaxed = bearer.clone().with_refresh_margin(Duration::from_secs(5));
    let again = relaxed.bearer().await.expect("token");
    assert_eq!(again, token, "far enough from expiry: no refresh");
    assert_eq!(sandbox.counters().refresh_requests, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_unauthorized_callers_share_one_refresh() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let client = public_client(&base);
    let done = standalone(&client, &base).await;
    let source = client
        .session_bearer(&done.session_id)
        .await
        .expect("bearer source");
    let rejected = source.bearer().await.expect("token");
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let source = source.clone();
        let rejected = rejected.clone();
        tasks.push(tokio::spawn(async move {
            source.after_unauthorized(&rejected).await
        }));
    }
    let mut tokens = std::collections::HashSet::new();
    for t in tasks {
        let fresh = t.await.expect("task").expect("renewed");
        assert!(fresh.generation > rejected.generation);
        tokens.insert(fresh.access_token.expose_secret().to_owned());
    }
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        sandbox.counters().refresh_requests,
        1,
        "one refresh for every caller"
    );
}

#[tokio::test]
async fn an_ended_session_says_to_relaunch() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let client = public_client(&base);
    let done = standalone(&client, &base).await;
    let source = client
        .session_bearer(&done.session_id)
        .await
        .expect("bearer source");
    let first = source.bearer().await.expect("token");
    // Another copy of the app spends the (rotating) refresh token; ours is now stale.
    let stale = client
        .session(&done.session_id)
        .await
        .expect("load")
        .expect("present");
    client
        .refresh(&done.session_id, RefreshOptions::default())
        .await
        .expect("refresh");
    let now = client
        .session(&done.session_id)
        .await
        .expect("load")
        .expect("present");
    client
        .store()
        .compare_and_swap_session(&done.session_id, now.version, &stale.value)
        .await
        .expect("put the stale token back");
    let rejected = smart_core::Bearer {
        generation: now.version + 1,
        ..first
    };
    let err = source
        .after_unauthorized(&rejected)
        .await
        .expect_err("refresh rejected");
    assert!(matches!(err, BearerError::SessionEnded { .. }), "{err}");
    assert!(err.to_string().contains("start a new launch"));
    let err = source.bearer().await.expect_err("ended");
    assert!(matches!(err, BearerError::SessionEnded { .. }), "{err}");
}
