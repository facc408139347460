//! A refresh runs inside its lease: the token request is cut off before the lease ends,
//! `build()` refuses a lease not longer than the HTTP timeout, and temporary store failures
//! while waiting for the lease are retried.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use smart_core::config::SmartConfig;
use smart_core::http::{HttpClient, HttpError, HttpRequest, HttpResponse, ReqwestHttpClient};
use smart_core::store::StoreError;
use smart_core::{ConfigError, RefreshError, RefreshOptions, SmartClient};
use support::*;

/// Sends everything, except that while `stall` is set a refresh-token request waits forever
/// before it is sent: a refresher stuck before its request reaches the server.
#[derive(Debug)]
struct StallingHttp {
    inner: ReqwestHttpClient,
    stall: AtomicBool,
}

#[async_trait]
impl HttpClient for StallingHttp {
    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let is_refresh =
            String::from_utf8_lossy(request.body()).contains("grant_type=refresh_token");
        if is_refresh && self.stall.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.inner.execute(request).await
    }
}

fn config_with_http_timeout(secs: u64) -> SmartConfig {
    let mut config = SmartConfig::default();
    config.http.timeout_secs = secs;
    config
}

#[test]
fn build_refuses_a_lease_not_longer_than_the_http_timeout() {
    let refused = SmartClient::builder()
        .config(config_with_http_timeout(30))
        .refresh_lease_ttl(Duration::from_secs(30))
        .build();
    match refused {
        Err(ConfigError::Invalid { field, message }) => {
            assert_eq!(field, "refresh_lease_ttl");
            assert!(message.contains("http.timeout_secs"), "{message}");
        }
        other => panic!("expected a refused lease TTL, got {:?}", other.map(|_| ())),
    }
    assert!(
        SmartClient::builder()
            .config(config_with_http_timeout(30))
            .refresh_lease_ttl(Duration::from_secs(31))
            .build()
            .is_ok()
    );
}

#[tokio::test]
async fn a_refresh_stuck_before_sending_is_abandoned_within_its_lease() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let http = Arc::new(StallingHttp {
        inner: ReqwestHttpClient::new().expect("http"),
        stall: AtomicBool::new(false),
    });
    let client = SmartClient::builder()
        .config(config_with_http_timeout(1))
        .registration("public", public_registration(&base))
        .adapter(Arc::new(smart_adapter_generic::Generic))
        .http(http.clone())
        // 2 s lease, 1 s margin: the request gets 1 s.
        .refresh_lease_ttl(Duration::from_secs(2))
        .build()
        .expect("client");
    let done = standalone(&client, &base).await;

    http.stall.store(true, Ordering::SeqCst);
    let started = tokio::time::Instant::now();
    // Without the bound the refresh would wait forever: give it far longer than the lease.
    let stuck = tokio::time::timeout(
        Duration::from_secs(10),
        client.refresh(&done.session_id, RefreshOptions::default()),
    )
    .await
    .expect("the refresh must give up by itself inside its lease");
    assert!(
        matches!(stuck, Err(RefreshError::LeaseExpiring { .. })),
        "a request that cannot finish inside the lease must be abandoned, got {stuck:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "abandoned before the lease ended"
    );
    assert!(stuck.as_ref().err().is_some_and(RefreshError::is_temporary));
    assert_eq!(sandbox.counters().refresh_requests, 0);
    let unchanged = client
        .session(&done.session_id)
        .await
        .expect("load")
        .expect("present");
    assert_eq!(unchanged.version, done.version, "the session is unchanged");

    // The session is usable at once: the abandoned refresh released its lease.
    http.stall.store(false, Ordering::SeqCst);
    let refreshed = client
        .refresh(&done.session_id, RefreshOptions::default())
        .await
        .expect("refresh after the stuck one");
    assert_eq!(refreshed.version, done.version + 1);
    assert_eq!(sandbox.counters().refresh_requests, 1);
}

/// Refreshes a session while the store's lease calls fail three times, with a temporary error
/// (or a permanent one when `temporary` is false); returns the result and how many of the three
/// failures were left unused.
async fn refresh_with_flaky_leases(temporary: bool) -> (Result<u64, RefreshError>, usize) {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let store = CountingStore::new();
    let client = client_with(
        vec![("public", public_registration(&base))],
        Arc::new(smart_adapter_generic::Generic),
        None,
        Some(store.clone()),
    );
    let done = standalone(&client, &base).await;
    let failures_left = Arc::new(AtomicUsize::new(3));
    let left = failures_left.clone();
    store.fail_with(move |call| {
        if call != StoreCall::AcquireLease {
            return None;
        }
        left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .ok()
            .map(|_| StoreError::Driver {
                backend: "flaky",
                operation: "lease",
                temporary,
                source: "connection reset".into(),
            })
    });
    let result = client
        .refresh(&done.session_id, RefreshOptions::default())
        .await
        .map(|s| s.version);
    (result, failures_left.load(Ordering::SeqCst))
}

#[tokio::test]
async fn temporary_store_failures_during_a_refresh_are_retried() {
    let (result, left) = refresh_with_flaky_leases(true).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(left, 0, "every temporary failure was retried");
}

#[tokio::test]
async fn permanent_store_failures_during_a_refresh_are_returned_at_once() {
    let (result, left) = refresh_with_flaky_leases(false).await;
    assert!(
        matches!(result, Err(RefreshError::Store(StoreError::Driver { .. }))),
        "{result:?}"
    );
    assert_eq!(left, 2, "a permanent failure is not retried");
}
