//! The byte-level backend trait: what a database has to do for the sealing layer.
//!
//! A backend stores opaque, already-sealed bytes under a hashed key in one of a few namespaces,
//! with a version and an expiry, and keeps refresh leases. It never sees a token, a session id or
//! a `state`: [`SealedStore`](crate::SealedStore) hashes keys and encrypts records before calling
//! it. Keeping the backends this small is what lets SQLite, PostgreSQL, Redis and memory share one
//! implementation of serialization, encryption, record formats and key rotation.
//!
//! Every expiry is computed and compared on the **backend's** clock (`now()` in SQL, `TIME` in
//! Redis), so app instances with skewed clocks agree on what has expired.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use smart_core::store::{SessionLifetime, StoreError};

/// Which kind of record a key names. Each namespace is its own key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Namespace {
    /// Pending launches, keyed by `state`; taken once.
    PendingLaunch,
    /// Sessions, keyed by session id; versioned.
    Session,
    /// The sealing layer's own records (the key-check records).
    Meta,
}

impl Namespace {
    /// The short name stored in databases and Redis keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Namespace::PendingLaunch => "pending",
            Namespace::Session => "session",
            Namespace::Meta => "meta",
        }
    }
}

/// A record key as stored: the SHA-256 of the caller's key, never the key itself.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HashedKey([u8; 32]);

impl HashedKey {
    /// Hashes `key` (a session id, a `state`, a lease owner).
    pub fn of(key: &str) -> HashedKey {
        HashedKey(Sha256::digest(key.as_bytes()).into())
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, 64 characters: the form the SQL and Redis backends store.
    pub fn to_hex(&self) -> String {
        use fmt::Write as _;
        let mut out = String::with_capacity(64);
        for b in self.0 {
            let _ = write!(out, "{b:02x}");
        }
        out
    }
}

impl fmt::Debug for HashedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HashedKey({})", &self.to_hex()[..12])
    }
}

/// A stored record as a backend returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The sealed bytes, as written.
    pub bytes: Vec<u8>,
    /// 1 when inserted; every successful compare-and-swap adds 1.
    pub version: u64,
}

/// What a compare-and-swap did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasOutcome {
    /// Written; the record is now at this version.
    Swapped(u64),
    /// Not written: the record is at this other version.
    Conflict(u64),
    /// Not written: there is no live record.
    Missing,
}

/// How long a record lives, on the backend's clock: `absolute` from its insertion, `idle` from
/// its last write. A pending launch uses `absolute` only.
pub type RecordLifetime = SessionLifetime;

/// The time-to-live a record gets when written at creation: the shorter of the two limits.
pub fn ttl_at_creation(lifetime: &RecordLifetime) -> Option<Duration> {
    match (lifetime.absolute, lifetime.idle) {
        (Some(a), Some(i)) => Some(a.min(i)),
        (a, i) => a.or(i),
    }
}

/// A byte-level store of expiring, versioned records and refresh leases.
///
/// All methods are atomic on their own: `take`, `compare_and_swap` and the lease methods must
/// have at most one winner among any number of concurrent callers, in any number of processes.
/// Expired records and leases behave exactly as if absent, whether or not
/// [`purge_expired`](Backend::purge_expired) has run.
#[async_trait]
pub trait Backend: Send + Sync + fmt::Debug {
    /// The backend's name in errors and reports (`memory`, `sqlite`, `postgres`, `redis`).
    fn name(&self) -> &'static str;

    /// The backend's clock, in Unix milliseconds.
    async fn now_ms(&self) -> Result<u64, StoreError>;

    /// Writes a record at version 1 unless a live one exists; returns whether it wrote.
    async fn put_if_absent(
        &self,
        namespace: Namespace,
        key: &HashedKey,
        bytes: &[u8],
        lifetime: &RecordLifetime,
    ) -> Result<bool, StoreError>;

    /// Removes and returns the live record, atomically.
    async fn take(
        &self,
        namespace: Namespace,
        key: &HashedKey,
    ) -> Result<Option<StoredRecord>, StoreError>;

    /// Creates a record at version 1; fails with [`StoreError::AlreadyExists`] when a live one
    /// exists.
    async fn insert(
        &self,
        namespace: Namespace,
        key: &HashedKey,
        bytes: &[u8],
        lifetime: &RecordLifetime,
    ) -> Result<u64, StoreError> {
        if self.put_if_absent(namespace, key, bytes, lifetime).await? {
            Ok(1)
        } else {
            Err(StoreError::AlreadyExists)
        }
    }

    /// Reads the live record.
    async fn load(
        &self,
        namespace: Namespace,
        key: &HashedKey,
    ) -> Result<Option<StoredRecord>, StoreError>;

    /// Replaces the live record if it is at `expected_version`, and moves its expiry to the
    /// shorter of `lifetime.absolute` from its insertion and `lifetime.idle` from now.
    async fn compare_and_swap(
        &self,
        namespace: Namespace,
        key: &HashedKey,
        expected_version: u64,
        bytes: &[u8],
        lifetime: &RecordLifetime,
    ) -> Result<CasOutcome, StoreError>;

    /// Deletes the record and any lease on the same key; returns whether a live record existed.
    async fn delete(&self, namespace: Namespace, key: &HashedKey) -> Result<bool, StoreError>;

    /// Grants the lease on `key` to `owner` for `ttl` unless someone holds an unexpired one;
    /// returns its expiry (backend clock, Unix ms) when granted.
    async fn try_lease(
        &self,
        key: &HashedKey,
        owner: &HashedKey,
        ttl: Duration,
    ) -> Result<Option<u64>, StoreError>;

    /// Extends `owner`'s unexpired lease on `key` to `ttl` from now; returns the new expiry, or
    /// `None` when `owner` no longer holds it.
    async fn renew_lease(
        &self,
        key: &HashedKey,
        owner: &HashedKey,
        ttl: Duration,
    ) -> Result<Option<u64>, StoreError>;

    /// Removes the lease on `key` if `owner` holds it; returns whether it did.
    async fn release_lease(&self, key: &HashedKey, owner: &HashedKey) -> Result<bool, StoreError>;

    /// Deletes expired records and leases; returns how many. Backends whose server expires keys
    /// by itself may return 0.
    async fn purge_expired(&self) -> Result<u64, StoreError>;
}

/// Milliseconds as the `i64` SQL columns hold, saturating.
pub fn ms_i64(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
