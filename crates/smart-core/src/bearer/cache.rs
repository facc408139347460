//! The in-process bearer cache: what a FHIR call needs from a session, kept between calls.
//!
//! Without it every FHIR request reads (and, with a sealed store, decrypts) the session from the
//! store only to find the token still fresh — a database round trip per FHIR call. The cache
//! keeps, per session, the access token with the session version it came from, and the facts
//! the freshness decision needs (expiry, receipt, last refresh, whether a refresh token exists),
//! plus the FHIR base and adapter a [`SessionBearer`](super::SessionBearer) is built from.
//!
//! **Staleness.** An entry is a snapshot of one session version. It is replaced when this
//! process refreshes the session (the version moves), dropped when a server answers `401` to
//! its token (another process may have refreshed and the server retired the old token: the
//! store is read again before any refresh), dropped when the session is forgotten or found
//! ended, and it is never used past the token's expiry nor longer than its maximum age, so a
//! session deleted or ended by another process stops being served from here within that age.
//!
//! **Bounds.** Sessions are keyed by ids that arrive in cookies, so the map is bounded: at most
//! `capacity` entries; a full cache first drops an expired entry if the oldest is one, and
//! otherwise evicts the entry inserted longest ago (the next call for that session reads the
//! store once). Insertion is O(1) amortised: entries are kept in insertion order.
//!
//! **Locking.** One `std::sync::Mutex`, held only for map operations — never across I/O or an
//! `.await`.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::quirks::VendorQuirks;
use crate::secret::AccessToken;
use crate::store::{Session, SessionId, SessionStatus, Versioned};
use crate::token::{UnixTime, now_unix};

/// How many sessions a client's bearer cache holds by default.
///
/// Ten thousand sessions with a token each is a few megabytes, more than one process serves at
/// once in most apps; past it the oldest entries make way (and cost one store read when used).
pub const DEFAULT_BEARER_CACHE_CAPACITY: usize = 10_000;

/// How long a cached bearer is used at most before the store is read again, by default.
///
/// It bounds how long this process keeps serving a session that another process deleted or
/// ended, and costs one store read per session per interval.
pub const DEFAULT_BEARER_CACHE_MAX_AGE: Duration = Duration::from_secs(30);

/// What a FHIR call needs from one session version.
#[derive(Clone)]
pub(crate) struct CachedSession {
    /// The session version the token belongs to (the [`Bearer`](super::Bearer) generation).
    pub(crate) version: u64,
    pub(crate) access_token: AccessToken,
    pub(crate) expires_at: Option<UnixTime>,
    pub(crate) received_at: UnixTime,
    pub(crate) refreshed_at: Option<UnixTime>,
    /// Whether a refresh token was granted.
    pub(crate) refreshable: bool,
    pub(crate) fhir_base: Arc<str>,
    pub(crate) client_id: Arc<str>,
    pub(crate) adapter: Arc<dyn VendorQuirks>,
}

impl CachedSession {
    /// The snapshot of an active stored session; `None` for an ended one (never cached).
    pub(crate) fn of(
        stored: &Versioned<Session>,
        fhir_base: Arc<str>,
        client_id: Arc<str>,
        adapter: Arc<dyn VendorQuirks>,
    ) -> Option<CachedSession> {
        let session = &stored.value;
        if !matches!(session.status, SessionStatus::Active) {
            return None;
        }
        Some(CachedSession {
            version: stored.version,
            access_token: session.tokens.access_token.clone(),
            expires_at: session.tokens.expires_at,
            received_at: session.tokens.received_at,
            refreshed_at: session.refreshed_at,
            refreshable: session.tokens.refresh_token.is_some(),
            fhir_base,
            client_id,
            adapter,
        })
    }
}

impl fmt::Debug for CachedSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedSession")
            .field("version", &self.version)
            .field("access_token", &self.access_token)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

struct Entry {
    /// Matches the `order` record of this entry; older records for the key are stale.
    sequence: u64,
    /// Not used at or after this instant (the maximum age).
    stale_at: Instant,
    value: CachedSession,
}

impl Entry {
    fn usable(&self, now: Instant, now_unix: UnixTime) -> bool {
        now < self.stale_at && self.value.expires_at.is_none_or(|at| now_unix < at)
    }
}

#[derive(Default)]
struct Entries {
    map: HashMap<SessionId, Entry>,
    /// `(sequence, id)` in insertion order; a record whose sequence no longer matches the map
    /// (the entry was replaced or removed) is stale and skipped, and stale records are
    /// compacted away in bulk.
    order: VecDeque<(u64, SessionId)>,
    next_sequence: u64,
}

/// A bounded, expiring map from session id to the bearer of one session version.
pub(crate) struct BearerCache {
    capacity: usize,
    max_age: Duration,
    entries: Mutex<Entries>,
}

impl fmt::Debug for BearerCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerCache")
            .field("capacity", &self.capacity)
            .field("max_age", &self.max_age)
            .field("len", &self.len())
            .finish()
    }
}

impl BearerCache {
    /// A cache of at most `capacity` sessions (0: caching off), each used for at most `max_age`.
    pub(crate) fn new(capacity: usize, max_age: Duration) -> BearerCache {
        BearerCache {
            capacity,
            max_age,
            entries: Mutex::new(Entries::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves a consistent map (every operation completes its
        // changes before anything can panic), so a poisoned lock is still usable.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many sessions are cached (expired entries not yet dropped included).
    pub(crate) fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// The usable snapshot of `id`, if any; an expired one is dropped.
    pub(crate) fn get(&self, id: &SessionId) -> Option<CachedSession> {
        if self.capacity == 0 {
            return None;
        }
        let (now, now_unix) = (Instant::now(), now_unix());
        let mut entries = self.lock();
        match entries.map.get(id) {
            Some(entry) if entry.usable(now, now_unix) => Some(entry.value.clone()),
            Some(_) => {
                entries.map.remove(id);
                None
            }
            None => None,
        }
    }

    /// Caches `value` for `id` unless a newer session version is cached already.
    pub(crate) fn offer(&self, id: &SessionId, value: CachedSession) {
        if self.capacity == 0 {
            return;
        }
        let now = Instant::now();
        let mut entries = self.lock();
        if entries
            .map
            .get(id)
            .is_some_and(|cached| cached.value.version > value.version)
        {
            return;
        }
        if !entries.map.contains_key(id) {
            entries.make_room(self.capacity, now, now_unix());
        }
        let sequence = entries.next_sequence;
        entries.next_sequence += 1;
        entries.order.push_back((sequence, id.clone()));
        entries.map.insert(
            id.clone(),
            Entry {
                sequence,
                stale_at: now + self.max_age,
                value,
            },
        );
        entries.compact();
    }

    /// A refresh (by this process) produced `stored`: the cached entry, if any, moves to it.
    /// Only an existing entry is updated — it holds the FHIR base and adapter a new one would
    /// need — and an ended session's entry is dropped.
    pub(crate) fn refreshed(&self, id: &SessionId, stored: &Versioned<Session>) {
        let existing = {
            let entries = self.lock();
            entries.map.get(id).map(|e| {
                (
                    e.value.fhir_base.clone(),
                    e.value.client_id.clone(),
                    e.value.adapter.clone(),
                )
            })
        };
        let Some((fhir_base, client_id, adapter)) = existing else {
            return;
        };
        match CachedSession::of(stored, fhir_base, client_id, adapter) {
            Some(value) => self.offer(id, value),
            None => self.forget(id),
        }
    }

    /// Drops the entry of `id` if it is at `version` or older: a server refused its token.
    pub(crate) fn invalidate(&self, id: &SessionId, version: u64) {
        let mut entries = self.lock();
        if entries
            .map
            .get(id)
            .is_some_and(|cached| cached.value.version <= version)
        {
            entries.map.remove(id);
        }
    }

    /// Drops the entry of `id` whatever its version (the session was deleted or has ended).
    pub(crate) fn forget(&self, id: &SessionId) {
        self.lock().map.remove(id);
    }
}

impl Entries {
    /// Frees a slot when the map is full: drops stale order records from the front, then the
    /// oldest entry (expired or not).
    fn make_room(&mut self, capacity: usize, now: Instant, now_unix: UnixTime) {
        while self.map.len() >= capacity {
            let Some((sequence, id)) = self.order.pop_front() else {
                // Unreachable while every entry has an order record; never loop forever.
                self.map.clear();
                return;
            };
            if self.map.get(&id).is_some_and(|e| e.sequence == sequence) {
                let entry = self.map.remove(&id);
                if entry.is_some_and(|e| e.usable(now, now_unix)) {
                    tracing::debug!("bearer cache full; evicted the oldest session entry");
                }
            }
        }
    }

    /// Drops stale order records once they outnumber the live ones, so that `order` stays within
    /// twice the map's size (plus a little): O(1) amortised per insert.
    fn compact(&mut self) {
        if self.order.len() > 2 * self.map.len() + 32 {
            let map = &self.map;
            self.order
                .retain(|(sequence, id)| map.get(id).is_some_and(|e| e.sequence == *sequence));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quirks::SpecAdapter;

    fn snapshot(version: u64, expires_in: Option<u64>) -> CachedSession {
        let now = now_unix();
        CachedSession {
            version,
            access_token: AccessToken::new(format!("token-{version}")),
            expires_at: expires_in.map(|s| now + s),
            received_at: now,
            refreshed_at: None,
            refreshable: true,
            fhir_base: Arc::from("http://127.0.0.1:1/fhir"),
            client_id: Arc::from("client"),
            adapter: Arc::new(SpecAdapter),
        }
    }

    #[test]
    fn an_older_version_never_replaces_a_newer_one() {
        let cache = BearerCache::new(10, Duration::from_secs(60));
        let id = SessionId::generate();
        cache.offer(&id, snapshot(3, Some(600)));
        cache.offer(&id, snapshot(2, Some(600)));
        assert_eq!(cache.get(&id).map(|c| c.version), Some(3));
        cache.offer(&id, snapshot(4, Some(600)));
        assert_eq!(cache.get(&id).map(|c| c.version), Some(4));
    }

    #[test]
    fn invalidation_drops_only_the_refused_version_or_older() {
        let cache = BearerCache::new(10, Duration::from_secs(60));
        let id = SessionId::generate();
        cache.offer(&id, snapshot(5, Some(600)));
        cache.invalidate(&id, 4);
        assert!(cache.get(&id).is_some(), "a newer entry survives");
        cache.invalidate(&id, 5);
        assert!(cache.get(&id).is_none());
    }

    #[test]
    fn expired_tokens_and_old_entries_are_not_served() {
        let cache = BearerCache::new(10, Duration::from_secs(60));
        let expired = SessionId::generate();
        cache.offer(&expired, snapshot(1, Some(0)));
        assert!(cache.get(&expired).is_none(), "token past its expiry");
        assert_eq!(cache.len(), 0, "and dropped when found");

        let aged = BearerCache::new(10, Duration::ZERO);
        let id = SessionId::generate();
        aged.offer(&id, snapshot(1, None));
        assert!(aged.get(&id).is_none(), "entry past its maximum age");
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        let cache = BearerCache::new(0, Duration::from_secs(60));
        let id = SessionId::generate();
        cache.offer(&id, snapshot(1, Some(600)));
        assert!(cache.get(&id).is_none());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_full_cache_evicts_the_oldest_and_its_order_stays_bounded() {
        let cache = BearerCache::new(100, Duration::from_secs(60));
        let first = SessionId::generate();
        cache.offer(&first, snapshot(1, Some(600)));
        let kept: Vec<SessionId> = (0..99).map(|_| SessionId::generate()).collect();
        for id in &kept {
            cache.offer(id, snapshot(1, Some(600)));
        }
        // Re-offering existing entries many times must not grow the order records unboundedly.
        for round in 2..50 {
            for id in &kept {
                cache.offer(id, snapshot(round, Some(600)));
            }
        }
        let newcomer = SessionId::generate();
        cache.offer(&newcomer, snapshot(1, Some(600)));
        assert_eq!(cache.len(), 100);
        assert!(cache.get(&first).is_none(), "the oldest entry was evicted");
        assert!(cache.get(&newcomer).is_some());
        assert!(kept.iter().all(|id| cache.get(id).is_some()));
        let order = cache.lock().order.len();
        assert!(order <= 2 * 100 + 32 + 1, "order records: {order}");
    }
}
