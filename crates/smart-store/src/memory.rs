//! An in-process [`Backend`]: the reference the database backends are tried against, and a way to
//! run the sealing layer without a server.
//!
//! Its clock can be replaced ([`MemoryBackend::with_clock`]) so that tests can move the store's
//! time independently of the app's, which is how "expiry on the store's clock" is tried.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use smart_core::store::{StoreError, duration_ms};

use crate::backend::{
    Backend, CasOutcome, HashedKey, Namespace, RecordLifetime, StoredRecord, ttl_at_creation,
};

/// A store clock, in Unix milliseconds.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(duration_ms)
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to: the system time at creation plus every
/// [`advance`](ManualClock::advance).
#[derive(Debug)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// Starts at the current system time.
    pub fn new() -> Arc<ManualClock> {
        Arc::new(ManualClock(AtomicU64::new(SystemClock.now_ms())))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(duration_ms(by), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Debug)]
struct MemoryRecord {
    bytes: Vec<u8>,
    version: u64,
    created_ms: u64,
    expires_at_ms: Option<u64>,
}

impl MemoryRecord {
    fn is_live(&self, now: u64) -> bool {
        self.expires_at_ms.is_none_or(|e| e > now)
    }
}

#[derive(Debug, Default)]
struct Maps {
    records: HashMap<(Namespace, HashedKey), MemoryRecord>,
    leases: HashMap<HashedKey, (HashedKey, u64)>,
}

impl Maps {
    fn live(
        &mut self,
        namespace: Namespace,
        key: &HashedKey,
        now: u64,
    ) -> Option<&mut MemoryRecord> {
        let slot = (namespace, key.clone());
        if self.records.get(&slot).is_some_and(|r| !r.is_live(now)) {
            self.records.remove(&slot);
        }
        self.records.get_mut(&slot)
    }
}

/// The most records a [`MemoryBackend`] holds by default.
pub const DEFAULT_MEMORY_RECORD_LIMIT: usize = 100_000;

/// Records and leases in a mutex-protected map.
///
/// Bounded: when [`DEFAULT_MEMORY_RECORD_LIMIT`] live records are held, new ones are refused with
/// a (temporary) error after expired ones have been purged.
#[derive(Debug)]
pub struct MemoryBackend {
    maps: Mutex<Maps>,
    clock: Arc<dyn Clock>,
    limit: usize,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        MemoryBackend::new()
    }
}

impl MemoryBackend {
    /// An empty backend on the system clock.
    pub fn new() -> MemoryBackend {
        MemoryBackend::with_clock(Arc::new(SystemClock))
    }

    /// An empty backend on `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> MemoryBackend {
        MemoryBackend {
            maps: Mutex::new(Maps::default()),
            clock,
            limit: DEFAULT_MEMORY_RECORD_LIMIT,
        }
    }

    /// This backend, holding at most `limit` records (at least one).
    pub fn with_record_limit(mut self, limit: usize) -> MemoryBackend {
        self.limit = limit.max(1);
        self
    }

    /// Every stored byte string (record bodies, hashed keys and owners), for audits: a test can
    /// check that no plaintext secret is among them.
    pub fn raw_dump(&self) -> Vec<Vec<u8>> {
        let maps = self.lock();
        let mut out = Vec::new();
        for ((_, key), record) in &maps.records {
            out.push(key.to_hex().into_bytes());
            out.push(record.bytes.clone());
        }
        for (key, (owner, _)) in &maps.leases {
            out.push(key.to_hex().into_bytes());
            out.push(owner.to_hex().into_bytes());
        }
        out
    }

    fn lock(&self) -> MutexGuard<'_, Maps> {
        // Every mutation is a single map operation, so a poisoned lock holds consistent maps.
        self.maps.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn purge(maps: &mut Maps, now: u64) -> u64 {
        let before = maps.records.len() + maps.leases.len();
        maps.records.retain(|_, r| r.is_live(now));
        maps.leases.retain(|_, (_, expires)| *expires > now);
        (before - maps.records.len() - maps.leases.len()) as u64
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn now_ms(&self) -> Result<u64, StoreError> {
        Ok(self.clock.now_ms())
    }

    async fn put_if_absent(
        &self,
        namespace: Namespace,
        key: &HashedKey,
        bytes: &[u8],
        lifetime: &RecordLifetime,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now_ms();
        let mut maps = self.lock();
        if maps.live(namespace, key, now).is_some() {
            return Ok(false);
        }
        if maps.records.len() >= self.limit {
            Self::purge(&mut maps, now);
            if maps.records.len() >= self.limit {
                return Err(StoreError::Driver {
                    backend: "memory",
                    operation: "insert",
                    temporary: true,
                    source: format!("the memory store is full ({} records)", self.limit).into(),
                });
            }
        }
        maps.records.insert(
            (namespace, key.clone()),
            MemoryRecord {
                bytes: bytes.to_vec(),
                version: 1,
                created_ms: now,
                expires_at_ms: ttl_at_creation(lifetime)
                    .map(|t| now.saturating_add(duration_ms(t))),
            },
        );
        Ok(true)
    }

    async fn take(
        &self,
        namespace: Namespace,
        key: &HashedKey,
    ) -> Result<Option<StoredRecord>, StoreError> {
        let now = self.clock.now_ms();
        let mut maps = self.lock();
        Ok(maps
            .records
            .remove(&(namespace, key.clone()))
            .filter(|r| r.is_live(now))
            .map(|r| StoredRecord {
                bytes: r.bytes,
                version: r.version,
            }))
    }

    async fn load(
        &self,
        namespace: Namespace,
        key: &HashedKey,
    ) -> Result<Option<StoredRecord>, StoreError> {
        let now = self.clock.now_ms();
        let mut maps = self.lock();
        Ok(maps.live(namespace, key, now).map(|r| StoredRecord {
            bytes: r.bytes.clone(),
            version: r.version,
        }))
    }

    async fn compare_and_swap(
        &self,
        namespace: Namespace,
        key: &HashedKey,
        expected_version: u64,
        bytes: &[u8],
        lifetime: &RecordLifetime,
    ) -> Result<CasOutcome, StoreError> {
        let now = self.clock.now_ms();
        let mut maps = self.lock();
        let Some(record) = maps.live(namespace, key, now) else {
            return Ok(CasOutcome::Missing);
        };
        if record.version != expected_version {
            return Ok(CasOutcome::Conflict(record.version));
        }
        record.version += 1;
        record.bytes = bytes.to_vec();
        record.expires_at_ms = lifetime.expires_at_ms(record.created_ms, now);
        Ok(CasOutcome::Swapped(record.version))
    }

    async fn delete(&self, namespace: Namespace, key: &HashedKey) -> Result<bool, StoreError> {
        let now = self.clock.now_ms();
        let mut maps = self.lock();
        maps.leases.remove(key);
        Ok(maps
            .records
            .remove(&(namespace, key.clone()))
            .is_some_and(|r| r.is_live(now)))
    }

    async fn try_lease(
        &self,
        key: &HashedKey,
        owner: &HashedKey,
        ttl: Duration,
    ) -> Result<Option<u64>, StoreError> {
        let now = self.clock.now_ms();
        let mut maps = self.lock();
        if maps.leases.get(key).is_some_and(|(_, e)| *e > now) {
            return Ok(None);
        }
        let expires = now.saturating_add(duration_ms(ttl));
        maps.leases.insert(key.clone(), (owner.clone(), expires));
        Ok(Some(expires))
    }

    async fn renew_lease(
        &self,
        key: &HashedKey,
        owner: &HashedKey,
        ttl: Duration,
    ) -> Result<Option<u64>, StoreError> {
        let now = self.clock.now_ms();
        let mut maps = self.lock();
        match maps.leases.get_mut(key) {
            Some((held_by, expires)) if held_by == owner && *expires > now => {
                *expires = now.saturating_add(duration_ms(ttl));
                Ok(Some(*expires))
            }
            _ => Ok(None),
        }
    }

    async fn release_lease(&self, key: &HashedKey, owner: &HashedKey) -> Result<bool, StoreError> {
        let mut maps = self.lock();
        if maps
            .leases
            .get(key)
            .is_some_and(|(held_by, _)| held_by == owner)
        {
            maps.leases.remove(key);
            return Ok(true);
        }
        Ok(false)
    }

    async fn purge_expired(&self) -> Result<u64, StoreError> {
        let now = self.clock.now_ms();
        Ok(Self::purge(&mut self.lock(), now))
    }
}
