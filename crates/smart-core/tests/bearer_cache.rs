//! The in-process bearer cache: a FHIR call with a fresh token reads no store, a refresh made by
//! another client (another process, sharing the store) is picked up without spending a refresh
//! token twice (and said to be found, so that a refusal of it too leads to one real refresh),
//! and the cache stays within its capacity and maximum age.

mod support;

use std::sync::Arc;
use std::time::Duration;

use smart_core::bearer::DEFAULT_BEARER_CACHE_CAPACITY;
use smart_core::store::{SessionId, Store};
use smart_core::{Bearer, BearerError, BearerSource, RefreshOptions, SmartClient};
use smart_sandbox::Sandbox;
use support::*;

/// A client of the sandbox's public registration over `store`, with a bearer cache of
/// `capacity` entries kept at most `max_age`.
fn client_over(
    base: &str,
    store: Arc<dyn Store>,
    capacity: usize,
    max_age: Duration,
) -> SmartClient {
    SmartClient::builder()
        .registration("public", public_registration(base))
        .adapter(Arc::new(smart_adapter_generic::Generic))
        .store(store)
        .bearer_cache_capacity(capacity, max_age)
        .build()
        .expect("client builds")
}

/// One FHIR read as a FHIR client makes it: the source's token, and after a `401` the token
/// [`BearerSource::after_unauthorized`] gives, once. Returns the final status and the token used.
async fn read_patient(
    client: &SmartClient,
    source: &dyn BearerSource,
    patient: &str,
) -> (u16, Bearer) {
    let mut bearer = source.bearer().await.expect("bearer");
    for attempt in 0..2 {
        let request = http::Request::get(format!("{}/Patient/{patient}", source.fhir_base()))
            .header(
                "authorization",
                format!("Bearer {}", bearer.access_token.expose_secret()),
            )
            .body(Vec::new())
            .expect("request");
        let response = client.http().execute(request).await.expect("FHIR read");
        if response.status() == 401 && attempt == 0 {
            bearer = source.after_unauthorized(&bearer).await.expect("renewed");
            continue;
        }
        return (response.status().as_u16(), bearer);
    }
    unreachable!("the loop returns on its second attempt")
}

async fn launched(sandbox: &Sandbox, client: &SmartClient) -> (SessionId, String) {
    let done = standalone(client, &sandbox.fhir_base()).await;
    let patient = done
        .session
        .context
        .patient
        .clone()
        .expect("a patient in context");
    (done.session_id, patient)
}

#[tokio::test]
async fn fresh_tokens_cost_no_store_read_after_the_first() {
    const CALLS: usize = 50;
    let sandbox = sandbox().await;
    let store = CountingStore::new();
    let client = client_over(
        &sandbox.fhir_base(),
        store.clone(),
        DEFAULT_BEARER_CACHE_CAPACITY,
        Duration::from_secs(60),
    );
    let (session, patient) = launched(&sandbox, &client).await;
    let loads_before = store.count(StoreCall::LoadSession);

    let source = client.session_bearer(&session).await.expect("source");
    let (status, first) = read_patient(&client, &source, &patient).await;
    assert_eq!(status, 200);
    assert_eq!(store.count(StoreCall::LoadSession), loads_before + 1);
    for _ in 0..CALLS {
        // Apps often build a bearer source per request: that is served from the cache too.
        let per_request = client.session_bearer(&session).await.expect("source");
        let (status, used) = read_patient(&client, &per_request, &patient).await;
        assert_eq!(status, 200);
        assert_eq!(used, first);
    }
    assert_eq!(
        store.count(StoreCall::LoadSession),
        loads_before + 1,
        "{CALLS} FHIR calls with a fresh token read the store once, for the first"
    );
    assert_eq!(sandbox.counters().refresh_requests, 0);

    // The same calls without the cache read the store every time (what the cache saves).
    let uncached_store = CountingStore::new();
    let uncached = client_over(
        &sandbox.fhir_base(),
        uncached_store.clone(),
        0,
        Duration::from_secs(60),
    );
    let (session, patient) = launched(&sandbox, &uncached).await;
    let source = uncached.session_bearer(&session).await.expect("source");
    let loads_before = uncached_store.count(StoreCall::LoadSession);
    for _ in 0..CALLS {
        assert_eq!(read_patient(&uncached, &source, &patient).await.0, 200);
    }
    assert_eq!(
        uncached_store.count(StoreCall::LoadSession),
        loads_before + CALLS
    );
    assert_eq!(uncached.cached_bearers(), 0);
}

#[tokio::test]
async fn a_refresh_by_another_client_is_picked_up_after_a_401_without_a_second_refresh() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let shared: Arc<dyn Store> = Arc::new(smart_core::MemoryStore::new());
    let ours_store = CountingStore::over(shared.clone());
    let ours = client_over(&base, ours_store.clone(), 100, Duration::from_secs(60));
    let theirs = client_over(&base, shared.clone(), 100, Duration::from_secs(60));
    let (session, patient) = launched(&sandbox, &ours).await;
    let source = ours.session_bearer(&session).await.expect("source");
    let (status, before) = read_patient(&ours, &source, &patient).await;
    assert_eq!(status, 200);

    // The server retires our token, and the other process refreshes (rotating the refresh
    // token): only the store knows the new tokens.
    sandbox.expire_access_tokens();
    let refreshed = theirs
        .refresh(&session, RefreshOptions::default())
        .await
        .expect("the other client refreshes");
    assert_eq!(sandbox.counters().refresh_requests, 1);
    assert!(refreshed.version > before.generation);

    let loads = ours_store.count(StoreCall::LoadSession);
    let (status, after) = read_patient(&ours, &source, &patient).await;
    assert_eq!(
        status, 200,
        "the cached token was refused, the stored one works"
    );
    assert_eq!(after.generation, refreshed.version);
    assert_eq!(after.access_token, refreshed.value.tokens.access_token);
    assert_eq!(
        sandbox.counters().refresh_requests,
        1,
        "the newer version in the store was taken; no refresh token spent twice"
    );
    assert!(
        ours_store.count(StoreCall::LoadSession) > loads,
        "the store was read again"
    );

    // And it is what this client now serves, without reading the store.
    let loads = ours_store.count(StoreCall::LoadSession);
    assert_eq!(source.bearer().await.expect("bearer"), after);
    assert_eq!(ours_store.count(StoreCall::LoadSession), loads);

    // No token was lost: our own refresh uses the rotated refresh token the other client saved.
    let ours_refreshed = ours
        .refresh(
            &session,
            RefreshOptions {
                force: true,
                ..RefreshOptions::default()
            },
        )
        .await
        .expect("no invalid_grant");
    assert_eq!(sandbox.counters().refresh_requests, 2);
    assert_eq!(
        source.bearer().await.expect("bearer").generation,
        ours_refreshed.version,
        "this client's refresh moved its cached bearer"
    );
}

#[tokio::test]
async fn a_renewal_says_whether_it_found_the_token_or_fetched_it() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let shared: Arc<dyn Store> = Arc::new(smart_core::MemoryStore::new());
    let ours = client_over(&base, shared.clone(), 100, Duration::from_secs(60));
    let theirs = client_over(&base, shared.clone(), 100, Duration::from_secs(60));
    let (session, patient) = launched(&sandbox, &ours).await;
    let source = ours.session_bearer(&session).await.expect("source");
    let first = source.bearer().await.expect("bearer");

    // Another process refreshed: the renewal takes its version and says it found it.
    sandbox.expire_access_tokens();
    let elsewhere = theirs
        .refresh(&session, RefreshOptions::default())
        .await
        .expect("refresh elsewhere");
    let found = source
        .renew_after_unauthorized(&first)
        .await
        .expect("renewed");
    assert!(found.found_renewed, "{found:?}");
    assert_eq!(found.bearer.generation, elsewhere.version);
    assert_eq!(
        found.bearer.access_token,
        elsewhere.value.tokens.access_token
    );
    assert_eq!(sandbox.counters().refresh_requests, 1, "no token request");

    // The server refuses that one too (say, it was revoked): renewing it refreshes for real.
    sandbox.expire_access_tokens();
    let fetched = source
        .renew_after_unauthorized(&found.bearer)
        .await
        .expect("renewed");
    assert!(!fetched.found_renewed, "{fetched:?}");
    assert!(fetched.bearer.generation > found.bearer.generation);
    assert_eq!(sandbox.counters().refresh_requests, 2, "one real refresh");
    let (status, used) = read_patient(&ours, &source, &patient).await;
    assert_eq!(status, 200);
    assert_eq!(
        used, fetched.bearer,
        "the fetched token is served from now on"
    );

    // `after_unauthorized` is the same renewal without the flag.
    sandbox.expire_access_tokens();
    let renewed = source
        .after_unauthorized(&fetched.bearer)
        .await
        .expect("renewed");
    assert!(renewed.generation > fetched.bearer.generation);
    assert_eq!(sandbox.counters().refresh_requests, 3);
}

/// The window between the store read and the refresh lease: another process holds the lease and
/// refreshes while this renewal waits for it. The renewal takes that version without a token
/// request of its own, and must still report it as found (not fetched), so that a refusal of
/// it leads to a real refresh instead of a failed call.
#[tokio::test]
async fn a_refresh_made_while_the_renewal_waits_for_the_lease_counts_as_found() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let shared: Arc<dyn Store> = Arc::new(smart_core::MemoryStore::new());
    let ours = client_over(&base, shared.clone(), 100, Duration::from_secs(60));
    let (session, _) = launched(&sandbox, &ours).await;
    let source = ours.session_bearer(&session).await.expect("source");
    let first = source.bearer().await.expect("bearer");

    // The other process takes the refresh lease first.
    let lease = shared
        .try_acquire_lease(&session, "the-other-process", Duration::from_secs(30))
        .await
        .expect("store")
        .expect("lease");
    sandbox.expire_access_tokens();
    let renewal = tokio::spawn({
        let source = source.clone();
        let first = first.clone();
        async move { source.renew_after_unauthorized(&first).await }
    });
    // While the renewal waits, the other process stores its refresh and lets go of the lease.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut refreshed_elsewhere = shared
        .load_session(&session)
        .await
        .expect("store")
        .expect("session");
    refreshed_elsewhere.value.refreshed_at = Some(refreshed_elsewhere.value.created_at + 1);
    let version = shared
        .compare_and_swap_session(
            &session,
            refreshed_elsewhere.version,
            &refreshed_elsewhere.value,
        )
        .await
        .expect("stored");
    assert!(shared.release_lease(&lease).await.expect("released"));

    let found = renewal.await.expect("joined").expect("renewed");
    assert!(found.found_renewed, "{found:?}");
    assert_eq!(found.bearer.generation, version);
    assert_eq!(sandbox.counters().refresh_requests, 0, "no token request");

    // That token is refused too (it is the launch's, expired): one real refresh follows.
    let fetched = source
        .renew_after_unauthorized(&found.bearer)
        .await
        .expect("renewed");
    assert!(!fetched.found_renewed, "{fetched:?}");
    assert_eq!(sandbox.counters().refresh_requests, 1);
}

#[tokio::test]
async fn a_token_near_expiry_takes_a_refresh_made_elsewhere_from_the_store() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    sandbox.set_behavior(|b| b.access_token_lifetime = Duration::from_secs(30));
    let shared: Arc<dyn Store> = Arc::new(smart_core::MemoryStore::new());
    let ours = client_over(&base, shared.clone(), 100, Duration::from_secs(60));
    let theirs = client_over(&base, shared.clone(), 100, Duration::from_secs(60));
    let (session, _) = launched(&sandbox, &ours).await;
    // Our source caches the launch's token (30 s left, inside its 60 s margin: due for renewal).
    let source = ours
        .session_bearer(&session)
        .await
        .expect("source")
        .with_refresh_margin(Duration::from_secs(60));
    assert_eq!(ours.cached_bearers(), 1);

    // The other process renews first, and gets an hour.
    sandbox.set_behavior(|b| b.access_token_lifetime = Duration::from_secs(3600));
    let elsewhere = theirs
        .refresh(&session, RefreshOptions::default())
        .await
        .expect("refresh elsewhere");
    assert_eq!(sandbox.counters().refresh_requests, 1);

    let bearer = source.bearer().await.expect("bearer");
    assert_eq!(bearer.generation, elsewhere.version);
    assert_eq!(bearer.access_token, elsewhere.value.tokens.access_token);
    assert_eq!(
        sandbox.counters().refresh_requests,
        1,
        "the store's newer version was used instead of a second refresh"
    );
}

#[tokio::test]
async fn the_cache_never_holds_more_than_its_capacity() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let store = CountingStore::new();
    let client = client_over(
        &base,
        store.clone(),
        DEFAULT_BEARER_CACHE_CAPACITY,
        Duration::from_secs(600),
    );
    let done = standalone(&client, &base).await;
    // Sessions written straight to the store, as other processes' launches would be.
    let mut ids = Vec::new();
    for _ in 0..DEFAULT_BEARER_CACHE_CAPACITY + 1000 {
        let id = SessionId::generate();
        store
            .insert_session(&id, &done.session)
            .await
            .expect("insert");
        client.session_bearer(&id).await.expect("source");
        assert!(client.cached_bearers() <= DEFAULT_BEARER_CACHE_CAPACITY);
        ids.push(id);
    }
    assert_eq!(client.cached_bearers(), DEFAULT_BEARER_CACHE_CAPACITY);

    // The newest session is served from the cache; the oldest was evicted and reads the store.
    let loads = store.count(StoreCall::LoadSession);
    let newest = ids.last().expect("sessions");
    client.session_bearer(newest).await.expect("source");
    assert_eq!(store.count(StoreCall::LoadSession), loads);
    client.session_bearer(&ids[0]).await.expect("source");
    assert_eq!(store.count(StoreCall::LoadSession), loads + 1);
    assert_eq!(client.cached_bearers(), DEFAULT_BEARER_CACHE_CAPACITY);
}

#[tokio::test]
async fn a_session_deleted_elsewhere_stops_being_served_within_the_maximum_age() {
    const MAX_AGE: Duration = Duration::from_millis(300);
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let shared: Arc<dyn Store> = Arc::new(smart_core::MemoryStore::new());
    let ours = client_over(&base, shared.clone(), 100, MAX_AGE);
    let theirs = client_over(&base, shared.clone(), 100, MAX_AGE);
    let (session, _) = launched(&sandbox, &ours).await;
    let source = ours.session_bearer(&session).await.expect("source");
    source.bearer().await.expect("bearer");

    assert!(theirs.forget_session(&session).await.expect("delete"));
    // Within the maximum age the cached token (still valid at the server) may be served…
    tokio::time::sleep(MAX_AGE + Duration::from_millis(100)).await;
    // …past it, the store is read and the deletion seen.
    let err = source.bearer().await.expect_err("deleted");
    assert!(matches!(err, BearerError::NotFound), "{err}");
    assert_eq!(ours.cached_bearers(), 0);
}

#[tokio::test]
async fn forgetting_a_session_drops_its_cached_bearer_at_once() {
    let sandbox = sandbox().await;
    let client = public_client(&sandbox.fhir_base());
    let (session, _) = launched(&sandbox, &client).await;
    let source = client.session_bearer(&session).await.expect("source");
    source.bearer().await.expect("bearer");
    assert_eq!(client.cached_bearers(), 1);
    assert!(client.forget_session(&session).await.expect("delete"));
    let err = source.bearer().await.expect_err("forgotten");
    assert!(matches!(err, BearerError::NotFound), "{err}");
}
