//! The named store trials: one list, run against every backend.
//!
//! Each [`Trial`] has a stable name and checks one guarantee; a harness runs them all against a
//! [`TrialTarget`] and prints one line per trial (`trial sqlite/lease_expires ... ok`). The
//! conformance checks of `smart_core::store::testsuite` are all here, plus the ones only a sealed,
//! byte-level store can be asked: expiry stamped on the store's clock, purge, key rotation,
//! record format versions, and a raw read of the backend that must find no plaintext secret.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use smart_core::secret::{AccessToken, LaunchHandle, PkceVerifier, RefreshToken};
use smart_core::store::testsuite;
use smart_core::store::{SessionId, SessionLifetime, Store, StoreError};

use crate::backend::{Backend, HashedKey, Namespace, RecordLifetime};
use crate::keyring::Keyring;
use crate::sealed::SealedStore;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Reads every byte the backend holds (record bodies, keys, lease owners), bypassing the
/// sealing layer.
pub type RawDump = Arc<dyn Fn() -> BoxFuture<Result<Vec<Vec<u8>>, StoreError>> + Send + Sync>;

/// What a trial runs against.
#[derive(Clone)]
pub struct TrialTarget {
    /// The backend.
    pub backend: Arc<dyn Backend>,
    /// A sealed store on it, with no session lifetime.
    pub store: SealedStore,
    /// The raw read of the backend.
    pub raw_dump: RawDump,
}

impl TrialTarget {
    /// A target on `backend` with a fresh random key.
    pub fn new(backend: Arc<dyn Backend>, raw_dump: RawDump) -> TrialTarget {
        TrialTarget {
            store: SealedStore::new(backend.clone(), trial_keyring("trial-k1")),
            backend,
            raw_dump,
        }
    }

    /// A target on `backend` whose raw read is `dump` of that backend (its own `raw_dump`
    /// method, typically).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use smart_store::MemoryBackend;
    /// use smart_store::trials::TrialTarget;
    ///
    /// let target = TrialTarget::dumping(Arc::new(MemoryBackend::new()), |b| async move {
    ///     Ok(b.raw_dump())
    /// });
    /// # let _ = target;
    /// ```
    pub fn dumping<B, F, Fut>(backend: Arc<B>, dump: F) -> TrialTarget
    where
        B: Backend + 'static,
        F: Fn(Arc<B>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<Vec<u8>>, StoreError>> + Send + 'static,
    {
        let dumped = backend.clone();
        let raw_dump: RawDump = Arc::new(move || Box::pin(dump(dumped.clone())));
        TrialTarget::new(backend, raw_dump)
    }
}

/// One named check.
pub struct Trial {
    /// Stable name, unique in [`all`].
    pub name: &'static str,
    run: fn(TrialTarget) -> BoxFuture<()>,
}

impl Trial {
    /// Runs the trial; it panics with a message naming the broken guarantee.
    pub fn run(&self, target: TrialTarget) -> BoxFuture<()> {
        (self.run)(target)
    }
}

macro_rules! suite_trial {
    ($name:ident, shared) => {
        Trial {
            name: stringify!($name),
            run: |t| {
                Box::pin(async move {
                    let store: Arc<dyn Store> = Arc::new(t.store);
                    testsuite::$name(store).await
                })
            },
        }
    };
    ($name:ident) => {
        Trial {
            name: stringify!($name),
            run: |t| Box::pin(async move { testsuite::$name(&t.store).await }),
        }
    };
}

/// Every trial, in a stable order.
pub fn all() -> Vec<Trial> {
    vec![
        suite_trial!(pending_launch_round_trip),
        suite_trial!(pending_launch_is_single_use),
        suite_trial!(pending_launch_duplicate_state_refused),
        suite_trial!(expired_pending_launch_is_gone),
        suite_trial!(concurrent_take_has_one_winner, shared),
        suite_trial!(session_round_trip_and_versions),
        suite_trial!(compare_and_swap_detects_conflicts),
        suite_trial!(concurrent_compare_and_swap_has_one_winner, shared),
        suite_trial!(lease_is_exclusive_until_released),
        suite_trial!(lease_expires),
        suite_trial!(concurrent_lease_has_one_winner, shared),
        suite_trial!(delete_session_removes_it),
        suite_trial!(renew_lease_extends_only_the_holders_lease),
        suite_trial!(stale_lease_holder_cannot_write),
        suite_trial!(purge_keeps_live_records),
        Trial {
            name: "session_lifetime_is_enforced",
            run: |t| Box::pin(session_lifetime_is_enforced(t)),
        },
        Trial {
            name: "expiry_on_the_store_clock",
            run: |t| Box::pin(expiry_on_the_store_clock(t)),
        },
        Trial {
            name: "purge_reclaims_expired_records",
            run: |t| Box::pin(purge_reclaims_expired_records(t)),
        },
        Trial {
            name: "key_rotation_and_wrong_keys",
            run: |t| Box::pin(key_rotation_and_wrong_keys(t)),
        },
        Trial {
            name: "newer_record_format_is_refused",
            run: |t| Box::pin(newer_record_format_is_refused(t)),
        },
        Trial {
            name: "raw_read_finds_no_plaintext",
            run: |t| Box::pin(raw_read_finds_no_plaintext(t)),
        },
    ]
}

/// A keyring with one random key of id `id`.
pub fn trial_keyring(id: &str) -> Keyring {
    let material = Keyring::generate_material(id).expect("valid trial key id");
    Keyring::parse(&material).expect("generated material parses")
}

async fn session_lifetime_is_enforced(t: TrialTarget) {
    let lifetime = SessionLifetime {
        absolute: Some(Duration::from_millis(1500)),
        idle: Some(Duration::from_millis(400)),
    };
    let store = t.store.with_session_lifetime(lifetime);
    testsuite::session_lifetime_is_enforced(&store, lifetime).await;
}

/// Lease and record expiries are computed by the backend from its own clock.
async fn expiry_on_the_store_clock(t: TrialTarget) {
    let id = SessionId::generate();
    let before = t.backend.now_ms().await.expect("store clock");
    let lease = t
        .store
        .try_acquire_lease(&id, "clock-owner", Duration::from_secs(60))
        .await
        .expect("acquire")
        .expect("free lease");
    let after = t.backend.now_ms().await.expect("store clock");
    assert!(
        lease.expires_at_ms >= before + 60_000 && lease.expires_at_ms <= after + 60_000,
        "a lease's expiry must be the store's now plus the TTL ({before}..{after} + 60000, got {})",
        lease.expires_at_ms
    );
    let key = HashedKey::of(&format!("clock-{}", id.as_str()));
    let short = RecordLifetime {
        absolute: Some(Duration::from_millis(300)),
        idle: None,
    };
    assert!(
        t.backend
            .put_if_absent(Namespace::Meta, &key, b"x", &short)
            .await
            .expect("put")
    );
    assert!(
        t.backend
            .load(Namespace::Meta, &key)
            .await
            .expect("load")
            .is_some()
    );
    // Wait until the store's clock, not ours, has passed the expiry.
    let deadline = before + 300;
    while t.backend.now_ms().await.expect("store clock") <= deadline + 50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        t.backend
            .load(Namespace::Meta, &key)
            .await
            .expect("load")
            .is_none(),
        "a record must be gone once the store's clock passes its expiry"
    );
    assert!(
        t.backend
            .put_if_absent(Namespace::Meta, &key, b"y", &short)
            .await
            .expect("put"),
        "an expired record must not block a new one"
    );
}

async fn purge_reclaims_expired_records(t: TrialTarget) {
    let key = HashedKey::of(&format!("purge-{}", SessionId::generate().as_str()));
    let owner = HashedKey::of("purge-owner");
    let short = RecordLifetime {
        absolute: Some(Duration::from_millis(100)),
        idle: None,
    };
    t.backend
        .put_if_absent(Namespace::Meta, &key, b"x", &short)
        .await
        .expect("put");
    t.backend
        .try_lease(&key, &owner, Duration::from_millis(100))
        .await
        .expect("lease")
        .expect("free");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let purged = t.backend.purge_expired().await.expect("purge");
    if t.backend.name() != "redis" {
        // Redis expires keys by itself, so there is nothing left for purge to count.
        assert!(
            purged >= 2,
            "purge must delete the expired record and lease (deleted {purged})"
        );
    }
    assert!(
        t.backend
            .load(Namespace::Meta, &key)
            .await
            .expect("load")
            .is_none()
    );
    assert!(
        t.backend
            .try_lease(&key, &HashedKey::of("other"), Duration::from_secs(1))
            .await
            .expect("lease")
            .is_some()
    );
}

async fn key_rotation_and_wrong_keys(t: TrialTarget) {
    // Key-check records outlive the trial in shared databases: fresh key ids for every run.
    let suffix = SessionId::generate().as_str()[..10].to_owned();
    let (old_id, new_id) = (format!("old-{suffix}"), format!("new-{suffix}"));
    let old_material = Keyring::generate_material(&old_id).expect("material");
    let new_material = Keyring::generate_material(&new_id).expect("material");
    let old_only = SealedStore::new(
        t.backend.clone(),
        Keyring::parse(&old_material).expect("keys"),
    );
    let rotated = SealedStore::new(
        t.backend.clone(),
        Keyring::parse(&format!("{new_material},{old_material}")).expect("keys"),
    );
    let id = SessionId::generate();
    old_only
        .insert_session(&id, &testsuite::sample_session("a-old"))
        .await
        .expect("insert");
    let read = rotated
        .load_session(&id)
        .await
        .expect("a rotated keyring opens records sealed with its old keys")
        .expect("present");
    rotated
        .compare_and_swap_session(&id, read.version, &testsuite::sample_session("a-new"))
        .await
        .expect("cas");
    let unreadable = old_only.load_session(&id).await;
    assert!(
        matches!(&unreadable, Err(StoreError::WrongKey { key_id, .. }) if *key_id == new_id),
        "a record sealed with an unknown key id must fail with WrongKey, got {unreadable:?}"
    );
    let impostor = SealedStore::new(
        t.backend.clone(),
        Keyring::parse(&Keyring::generate_material(&new_id).expect("material")).expect("keys"),
    );
    let wrong = impostor.load_session(&id).await;
    assert!(
        matches!(&wrong, Err(StoreError::WrongKey { .. })),
        "a different key under the same id must fail with WrongKey, got {wrong:?}"
    );
    // The startup check finds the same, before any user does.
    rotated.verify_keys().await.expect("the right keys verify");
    assert!(matches!(
        impostor.verify_keys().await,
        Err(StoreError::WrongKey { .. })
    ));
}

async fn newer_record_format_is_refused(t: TrialTarget) {
    let id = SessionId::generate();
    let key = HashedKey::of(id.as_str());
    let mut bytes = t
        .store
        .seal(Namespace::Session, &key, &testsuite::sample_session("a"))
        .expect("seal");
    bytes[0] = crate::sealed::RECORD_FORMAT + 1;
    t.backend
        .insert(
            Namespace::Session,
            &key,
            &bytes,
            &SessionLifetime::UNLIMITED,
        )
        .await
        .expect("insert");
    let loaded = t.store.load_session(&id).await;
    assert!(
        matches!(loaded, Err(StoreError::NewerFormat { found, .. }) if found == u32::from(crate::sealed::RECORD_FORMAT) + 1),
        "a record from a newer format must be refused, got {loaded:?}"
    );
    let message = t
        .store
        .load_session(&id)
        .await
        .expect_err("refused")
        .to_string();
    assert!(message.contains("newer"), "{message}");
}

/// A raw read of everything the backend holds finds none of the secrets just stored.
async fn raw_read_finds_no_plaintext(t: TrialTarget) {
    let marker = |what: &str| format!("{what}-PLAINTEXT-{}", SessionId::generate().as_str());
    let access = marker("access");
    let refresh = marker("refresh");
    let verifier = marker("verifier");
    let launch_handle = marker("launch");
    let state = marker("state");
    let owner = marker("owner");
    let id = SessionId::new(marker("session"));

    let mut session = testsuite::sample_session(&access);
    session.tokens.refresh_token = Some(RefreshToken::new(refresh.clone()));
    t.store.insert_session(&id, &session).await.expect("insert");
    session.tokens.access_token = AccessToken::new(format!("{access}-2"));
    t.store
        .compare_and_swap_session(&id, 1, &session)
        .await
        .expect("cas");
    let mut launch = testsuite::sample_pending_launch(600);
    launch.pkce_verifier = PkceVerifier::new(verifier.clone());
    launch.launch = Some(LaunchHandle::new(launch_handle.clone()));
    t.store
        .put_pending_launch(&state, &launch)
        .await
        .expect("put");
    t.store
        .try_acquire_lease(&id, &owner, Duration::from_secs(60))
        .await
        .expect("lease")
        .expect("free");

    let dump = (t.raw_dump)().await.expect("raw dump");
    assert!(!dump.is_empty(), "the raw dump must see the stored records");
    let everything: Vec<u8> = dump.concat();
    for secret in [
        access.as_str(),
        refresh.as_str(),
        verifier.as_str(),
        launch_handle.as_str(),
        state.as_str(),
        owner.as_str(),
        id.as_str(),
    ] {
        assert!(
            !contains(&everything, secret.as_bytes()),
            "the backend holds a secret in clear: {}",
            secret.split('-').next().unwrap_or("?")
        );
    }
    // The dump does hold the records, sealed: the hashed session key is there.
    assert!(
        contains(&everything, HashedKey::of(id.as_str()).to_hex().as_bytes())
            || contains(&everything, HashedKey::of(id.as_str()).as_bytes()),
        "the raw dump must include the session's hashed key"
    );
    t.store.delete_session(&id).await.expect("delete");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
