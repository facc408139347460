//! The sealing layer on the memory backend: the store's clock decides expiry, and altered
//! records are refused. (The full named trials run in `smart-store-open`'s `trials` test.)

use std::sync::Arc;
use std::time::Duration;

use smart_core::store::{SessionId, Store, StoreError, testsuite};
use smart_store::{
    Backend, HashedKey, Keyring, ManualClock, MemoryBackend, Namespace, SealedStore,
};

fn store_on(backend: Arc<MemoryBackend>) -> SealedStore {
    SealedStore::new(backend, Keyring::ephemeral())
}

#[tokio::test]
async fn leases_and_launches_expire_on_the_store_clock_not_the_apps() {
    let clock = ManualClock::new();
    let store = store_on(Arc::new(MemoryBackend::with_clock(clock.clone())));
    let id = SessionId::generate();
    store
        .try_acquire_lease(&id, "a", Duration::from_secs(10))
        .await
        .expect("acquire")
        .expect("free");
    assert!(
        store
            .try_acquire_lease(&id, "b", Duration::from_secs(10))
            .await
            .expect("acquire")
            .is_none()
    );
    // The app's clock has not moved; the store's has.
    clock.advance(Duration::from_secs(11));
    assert!(
        store
            .try_acquire_lease(&id, "b", Duration::from_secs(10))
            .await
            .expect("acquire")
            .is_some(),
        "a lease past its expiry on the store's clock must be free"
    );
    store
        .put_pending_launch("state-1", &testsuite::sample_pending_launch(600))
        .await
        .expect("put");
    clock.advance(Duration::from_secs(601));
    assert!(
        store
            .take_pending_launch("state-1")
            .await
            .expect("take")
            .is_none(),
        "a pending launch past its lifetime on the store's clock must be gone"
    );
}

#[tokio::test]
async fn an_altered_record_is_refused() {
    let backend = Arc::new(MemoryBackend::new());
    let store = store_on(backend.clone());
    let id = SessionId::generate();
    store
        .insert_session(&id, &testsuite::sample_session("a"))
        .await
        .expect("insert");
    let key = HashedKey::of(id.as_str());
    let mut record = backend
        .load(Namespace::Session, &key)
        .await
        .expect("load")
        .expect("present");
    let last = record.bytes.len() - 1;
    record.bytes[last] ^= 1;
    backend
        .compare_and_swap(
            Namespace::Session,
            &key,
            1,
            &record.bytes,
            &Default::default(),
        )
        .await
        .expect("cas");
    assert!(matches!(
        store.load_session(&id).await,
        Err(StoreError::WrongKey { .. })
    ));
    // A sealed record moved under another key does not open either.
    let other = SessionId::generate();
    backend
        .insert(
            Namespace::Session,
            &HashedKey::of(other.as_str()),
            &store
                .seal(Namespace::Session, &key, &testsuite::sample_session("a"))
                .expect("seal"),
            &Default::default(),
        )
        .await
        .expect("insert");
    assert!(matches!(
        store.load_session(&other).await,
        Err(StoreError::WrongKey { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sealed_memory_store_passes_the_core_suite() {
    testsuite::run_all(Arc::new(store_on(Arc::new(MemoryBackend::new())))).await;
}

/// Sizing figures for docs/storage.md (`cargo test -p smart-store --test sealed_memory
/// record_sizes -- --nocapture`): sealing adds a fixed 42 bytes plus the key id to the JSON.
#[test]
fn record_sizes() {
    let store = store_on(Arc::new(MemoryBackend::new()));
    let key = HashedKey::of("size");
    let session = testsuite::sample_session(&"a".repeat(64));
    let json = serde_json::to_vec(&session).expect("json").len();
    let sealed = store
        .seal(Namespace::Session, &key, &session)
        .expect("seal")
        .len();
    let mut with_id_token = session.clone();
    with_id_token.tokens.id_token = Some(smart_core::secret::IdToken::new("x".repeat(1024)));
    let sealed_with_id_token = store
        .seal(Namespace::Session, &key, &with_id_token)
        .expect("seal")
        .len();
    let launch = store
        .seal(
            Namespace::PendingLaunch,
            &key,
            &testsuite::sample_pending_launch(600),
        )
        .expect("seal")
        .len();
    println!(
        "record_size session_json={json} session_sealed={sealed} session_with_1KiB_id_token_sealed={sealed_with_id_token} pending_launch_sealed={launch}"
    );
    // format byte + key id length byte + key id ("ephemeral") + nonce + tag.
    assert_eq!(sealed, json + 2 + "ephemeral".len() + 24 + 16);
}
