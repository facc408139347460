//! The storage extension point: pending launches and sessions.
//!
//! A SMART app keeps two kinds of state between HTTP requests:
//!
//! - **pending launches**, keyed by the `state` parameter: written when the app redirects to the
//!   EHR, consumed exactly once when the EHR redirects back. Take-once is what makes `state`
//!   single-use, so [`Store::take_pending_launch`] must be atomic even across processes.
//! - **sessions**: tokens, launch context and the registration they belong to. Refresh tokens may
//!   rotate, and spending one twice can revoke the whole grant, so every session carries a
//!   version for compare-and-swap updates ([`Store::compare_and_swap_session`]) and a lease
//!   ([`Store::try_acquire_lease`]) that lets exactly one worker, in any process, refresh at a
//!   time.
//!
//! The trait is shaped for SQL (a version column, `UPDATE … WHERE version = $1`, a lease row with
//! an expiry) and Redis (`GETDEL`, `SET NX PX`, a Lua CAS) as much as for memory. Every
//! implementation must pass the conformance checks in `testsuite` (feature `testsuite`), which
//! include concurrent take-once, CAS and lease races; the `smart-store` crate runs them as named
//! trials against memory, SQLite, PostgreSQL and Redis.
//!
//! ## Time
//!
//! Every lifetime a store enforces (a pending launch's, a lease's, a session's) is measured on the
//! **store's** clock: a shared store compares expiries with its own `now()`, so app instances whose
//! clocks disagree still agree on who holds a lease. Callers pass durations ([`Duration`]), never
//! instants, except for [`PendingLaunch::expires_at`], which a store converts to a duration from
//! the app's `now` once, at insertion.
//!
//! ## The version is the write fence
//!
//! A lease only says who *should* be refreshing; it can expire while its holder is still working
//! (a paused process, a slow network). What keeps a stale holder from overwriting a newer session
//! is the version: every write is a [`Store::compare_and_swap_session`] from the version the
//! writer read, so a holder whose lease expired and was taken over fails with
//! [`StoreError::VersionConflict`] as soon as the new holder has written.
//!
//! ## Session lifetime
//!
//! A store may end sessions by itself ([`SessionLifetime`]): an **absolute** limit counted from
//! the session's creation and an **idle** limit counted from its last write (creation or a
//! refresh). A session past either is gone: [`Store::load_session`] returns `None` and
//! [`Store::purge_expired`] deletes it.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use smart_scopes::Scopes;

use crate::adapter_choice::AdapterChoice;
use crate::protocol::LaunchKind;
use crate::protocol_strings::{ClientId, FhirBase, RedirectUri};
use crate::secret::{LaunchHandle, PkceVerifier};
use crate::token::{LaunchContext, TokenSet, UnixTime, now_unix};

/// A random, unguessable session identifier (256 bits, base64url).
///
/// It is a credential (it usually becomes the app's session cookie), so `Debug` and `Display`
/// show only that it is one; [`SessionId::as_str`] gives the value to put in the cookie.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(String);

impl SessionId {
    /// A new random id.
    pub fn generate() -> SessionId {
        SessionId(crate::random_token(32))
    }

    /// Wraps an existing id (e.g. read from a cookie).
    pub fn new(id: impl Into<String>) -> SessionId {
        SessionId(id.into())
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[session id redacted]")
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId([redacted])")
    }
}

/// What the app remembers between redirecting to the EHR and the EHR redirecting back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PendingLaunch {
    /// The registration that started the launch.
    pub registration: String,
    /// The FHIR base, byte for byte as sent in `aud`.
    pub fhir_base: FhirBase,
    /// EHR or standalone.
    pub kind: LaunchKind,
    /// The EHR's `launch` handle (EHR launch only).
    pub launch: Option<LaunchHandle>,
    /// The `redirect_uri` sent (the code exchange must repeat it exactly).
    pub redirect_uri: RedirectUri,
    /// The scopes requested.
    pub requested_scopes: Scopes,
    /// The PKCE verifier.
    pub pkce_verifier: PkceVerifier,
    /// The token endpoint discovered for this launch.
    pub token_endpoint: String,
    /// When the launch began.
    pub created_at: UnixTime,
    /// After this the pending launch is void.
    pub expires_at: UnixTime,
    /// The SHA-256 (base64url) of the [`BrowserBinding`](crate::secret::BrowserBinding) handed
    /// to the browser that began the launch; the callback must come with the value itself.
    /// Empty in records written before browser binding existed, which therefore never complete.
    #[serde(default)]
    pub browser_binding_sha256: String,
    /// The authorization server's issuer identifier, which an `iss` parameter in the
    /// authorization response must equal (RFC 9207): the configuration's `issuer`, else the
    /// issuer the adapter expects in `id_token`s.
    #[serde(default)]
    pub authorization_server_issuer: Option<String>,
    /// Whether the server advertised `authorization_response_iss_parameter_supported`, so the
    /// authorization response must carry `iss` (RFC 9207 §2.4).
    #[serde(default)]
    pub iss_parameter_required: bool,
    /// The vendor adapter decided when the launch began, and why; the callback uses it without
    /// deciding again. `None` in records written before the decision was recorded.
    #[serde(default)]
    pub adapter: Option<AdapterChoice>,
}

/// Whether a session can still be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SessionStatus {
    /// Usable.
    Active,
    /// The server rejected the refresh token (or the app ended it); a new launch is needed.
    Ended {
        /// Why.
        reason: String,
        /// When.
        at: UnixTime,
    },
}

/// A launched session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Session {
    /// The registration whose client credentials the session uses.
    pub registration: String,
    /// The client id.
    pub client_id: ClientId,
    /// The FHIR base (`aud`) the tokens are for; no token is ever sent elsewhere.
    pub fhir_base: FhirBase,
    /// The token endpoint used for refreshes.
    pub token_endpoint: String,
    /// The tokens.
    pub tokens: TokenSet,
    /// The launch context.
    pub context: LaunchContext,
    /// The scopes the app asked for.
    pub requested_scopes: Scopes,
    /// EHR or standalone.
    pub kind: LaunchKind,
    /// When the session was created.
    pub created_at: UnixTime,
    /// When the tokens were last refreshed.
    pub refreshed_at: Option<UnixTime>,
    /// Active or ended.
    pub status: SessionStatus,
    /// The verified `id_token` identity, when `openid` was granted. A refresh replaces it only
    /// with a refreshed `id_token` that verifies and names the same issuer and subject.
    #[serde(default)]
    pub identity: Option<crate::identity::VerifiedIdentity>,
    /// What the most recent refresh found wrong without losing the tokens it returned (e.g. a
    /// refreshed `id_token` without `aud`); empty after a clean refresh. Show these to the user
    /// or operator: see [`RefreshWarning`](crate::identity::RefreshWarning).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refresh_warnings: Vec<crate::identity::RefreshWarning>,
    /// The vendor adapter decided when the launch began, and why; refreshes and bearer tokens
    /// use it without deciding again. `None` in records written before it was recorded.
    #[serde(default)]
    pub adapter: Option<AdapterChoice>,
}

impl Session {
    /// The scopes in force: the granted ones, or the requested ones when the server did not say.
    pub fn effective_scopes(&self) -> &Scopes {
        self.tokens
            .granted_scopes
            .as_ref()
            .unwrap_or(&self.requested_scopes)
    }
}

/// A value with the version it was stored at.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// Its version; every successful write increments it.
    pub version: u64,
}

/// An exclusive, expiring right to refresh one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The session.
    pub session: SessionId,
    /// Who holds it (unique per attempt).
    pub owner: String,
    /// Unix time in milliseconds, **on the store's clock**, after which the lease is void. Only a
    /// hint for the holder: compare it with the store's time, not the app's.
    pub expires_at_ms: u64,
}

/// How long a store keeps a session without being asked to delete it.
///
/// Both limits are measured on the store's clock. `None` means no limit of that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionLifetime {
    /// From the session's creation, whatever happens to it.
    pub absolute: Option<Duration>,
    /// From the session's last write (creation or a refresh). Refreshes happen when a request
    /// finds the access token expired, so this ends sessions nobody used for this long, give or
    /// take one access-token lifetime.
    pub idle: Option<Duration>,
}

impl SessionLifetime {
    /// Sessions live until deleted.
    pub const UNLIMITED: SessionLifetime = SessionLifetime {
        absolute: None,
        idle: None,
    };

    /// When a session created at `created_ms` and last written at `written_ms` expires (Unix
    /// milliseconds), or `None` when it never does.
    pub fn expires_at_ms(&self, created_ms: u64, written_ms: u64) -> Option<u64> {
        let absolute = self
            .absolute
            .map(|d| created_ms.saturating_add(duration_ms(d)));
        let idle = self.idle.map(|d| written_ms.saturating_add(duration_ms(d)));
        match (absolute, idle) {
            (Some(a), Some(i)) => Some(a.min(i)),
            (a, i) => a.or(i),
        }
    }
}

/// A duration in whole milliseconds, saturating.
pub fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A boxed error from a storage backend's driver.
pub type BackendSource = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Storage failures.
///
/// [`StoreError::is_temporary`] tells a caller whether trying again later may succeed (a lost
/// connection, a timeout, a busy database) or not (a corrupt record, a wrong key).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A record with this key already exists.
    #[error("a record with this key already exists")]
    AlreadyExists,
    /// The session does not exist.
    #[error("session not found")]
    NotFound,
    /// A compare-and-swap lost: the session changed since it was read.
    #[error("the session was changed concurrently (now at version {current}); reload and retry")]
    VersionConflict {
        /// The version now stored.
        current: u64,
    },
    /// The backend failed.
    #[error("storage backend error: {0}")]
    Backend(String),
    /// A stored record could not be decoded.
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    /// The backend's driver failed; the source says how.
    #[error("{backend} store: {operation} failed: {source}")]
    Driver {
        /// Which backend (`sqlite`, `postgres`, `redis`, …).
        backend: &'static str,
        /// What the store was doing.
        operation: &'static str,
        /// Whether trying again later may succeed (connection lost, timeout, busy, pool full).
        temporary: bool,
        /// The driver's error.
        #[source]
        source: BackendSource,
    },
    /// A record was written by a newer record format than this build reads.
    #[error(
        "stored record has format version {found}, newer than this build reads (up to {supported}); upgrade this program"
    )]
    NewerFormat {
        /// The record's format version.
        found: u32,
        /// The newest this build reads.
        supported: u32,
    },
    /// A record could not be opened with the configured keys.
    #[error("stored record is sealed with key id {key_id:?}, {problem}")]
    WrongKey {
        /// The key id stored with the record.
        key_id: String,
        /// What went wrong: the key is not configured, or it does not open the record.
        problem: &'static str,
    },
}

impl StoreError {
    /// What the failure means for the app: a concurrent change is a
    /// [`Conflict`](crate::error_kind::ErrorKind::Conflict) (reload and retry); a driver failure
    /// that may pass (lost connection, timeout, busy database) is
    /// [`Temporary`](crate::error_kind::ErrorKind::Temporary); anything else (a corrupt record, a
    /// wrong key, a newer record format) is [`Storage`](crate::error_kind::ErrorKind::Storage).
    pub fn kind(&self) -> crate::error_kind::ErrorKind {
        use crate::error_kind::ErrorKind;
        match self {
            StoreError::VersionConflict { .. } => ErrorKind::Conflict,
            StoreError::Driver {
                temporary: true, ..
            } => ErrorKind::Temporary,
            _ => ErrorKind::Storage,
        }
    }

    /// Whether the same call may succeed if tried again later: a lost connection, a timeout or a
    /// busy database. Conflicts, missing records, corrupt records and wrong keys are not
    /// temporary.
    pub fn is_temporary(&self) -> bool {
        self.kind().is_temporary()
    }
}

/// Storage for pending launches, sessions and refresh leases.
///
/// Implementations must be safe to share between tasks and, for out-of-process backends, between
/// processes. See the module docs for the contract and the `testsuite` module (feature `testsuite`) for its tests.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// Stores a pending launch under `state` until `launch.expires_at`.
    /// Fails with [`StoreError::AlreadyExists`] if `state` is taken.
    async fn put_pending_launch(
        &self,
        state: &str,
        launch: &PendingLaunch,
    ) -> Result<(), StoreError>;

    /// Atomically removes and returns the pending launch for `state`. Returns `None` when there is
    /// none or it has expired. Of any number of concurrent callers, at most one gets `Some`.
    async fn take_pending_launch(&self, state: &str) -> Result<Option<PendingLaunch>, StoreError>;

    /// Creates a session at version 1. Fails with [`StoreError::AlreadyExists`] if `id` is taken.
    async fn insert_session(&self, id: &SessionId, session: &Session) -> Result<u64, StoreError>;

    /// Loads a session with its version.
    async fn load_session(&self, id: &SessionId) -> Result<Option<Versioned<Session>>, StoreError>;

    /// Replaces the session if it is still at `expected_version`, returning the new version.
    /// Fails with [`StoreError::VersionConflict`] otherwise, or [`StoreError::NotFound`].
    async fn compare_and_swap_session(
        &self,
        id: &SessionId,
        expected_version: u64,
        session: &Session,
    ) -> Result<u64, StoreError>;

    /// Deletes a session (and its lease). Returns whether it existed.
    async fn delete_session(&self, id: &SessionId) -> Result<bool, StoreError>;

    /// Takes the refresh lease of `id` for `ttl` if nobody holds an unexpired one.
    async fn try_acquire_lease(
        &self,
        id: &SessionId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError>;

    /// Releases `lease` if it is still held by its owner. Returns whether it was.
    async fn release_lease(&self, lease: &Lease) -> Result<bool, StoreError>;

    /// Extends `lease` to `ttl` from now (store clock) if its owner still holds it unexpired;
    /// returns the renewed lease, or `None` when it was lost (expired, taken over or released).
    ///
    /// The default never renews (returns `None`): a store that cannot renew makes long refreshes
    /// give up rather than run without a lease.
    async fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<Option<Lease>, StoreError> {
        let _ = (lease, ttl);
        Ok(None)
    }

    /// Deletes expired pending launches, leases and sessions; returns how many records went.
    ///
    /// Expired records are never returned whether or not this runs; it only reclaims space.
    /// Backends with their own expiry (Redis TTLs) may return 0. The default does nothing.
    async fn purge_expired(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// How many pending launches a [`MemoryStore`] keeps by default.
///
/// A pending launch is created for every visit to an app's launch URL, before anyone has signed
/// in, so their number is in an anonymous visitor's hands. Ten thousand launches started within
/// one `state` lifetime (ten minutes by default) is far beyond what one process serves, and costs
/// a few megabytes.
pub const DEFAULT_PENDING_LAUNCH_LIMIT: usize = 10_000;

/// An in-process store. Fine for one process; use a shared store when several processes serve
/// the same users.
///
/// Pending launches are bounded: at most [`DEFAULT_PENDING_LAUNCH_LIMIT`] (or the limit given to
/// [`MemoryStore::with_pending_launch_limit`]). Each insert first drops the expired ones, oldest
/// first, and when the store is still full it **evicts the oldest** pending launch. Refusing new
/// launches instead would let a flood of launch-URL visits lock every user out until the flood's
/// launches expire; evicting the oldest keeps the app usable and costs at most the sign-ins that
/// began longest ago (their user starts again). Inserting is O(1) amortised: launches are kept in
/// insertion order, which is expiry order when they share a lifetime, as one client's do.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<MemoryInner>,
    pending_limit: usize,
    session_lifetime: SessionLifetime,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::with_pending_launch_limit(DEFAULT_PENDING_LAUNCH_LIMIT)
    }
}

#[derive(Debug, Default)]
struct MemoryInner {
    /// Pending launches by `state`, each with its insertion sequence number.
    pending: HashMap<String, (u64, PendingLaunch)>,
    /// `(sequence, state)` in insertion order. An entry whose sequence no longer matches the map
    /// (the launch was taken) is stale and skipped; stale entries are compacted away in bulk.
    pending_order: VecDeque<(u64, String)>,
    next_sequence: u64,
    sessions: HashMap<SessionId, MemorySession>,
    leases: HashMap<SessionId, Lease>,
}

/// A session with the times its lifetime is counted from.
#[derive(Debug)]
struct MemorySession {
    current: Versioned<Session>,
    created_ms: u64,
    expires_at_ms: Option<u64>,
}

impl MemorySession {
    fn is_live(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_none_or(|e| e > now_ms)
    }
}

impl MemoryInner {
    /// The session, unless it is missing or past its lifetime (then it is dropped).
    fn live_session(&mut self, id: &SessionId, now_ms: u64) -> Option<&mut MemorySession> {
        if self.sessions.get(id).is_some_and(|s| !s.is_live(now_ms)) {
            self.sessions.remove(id);
            self.leases.remove(id);
        }
        self.sessions.get_mut(id)
    }

    fn is_live(&self, sequence: u64, state: &str) -> bool {
        self.pending.get(state).is_some_and(|(s, _)| *s == sequence)
    }

    /// Drops expired launches from the front, then the oldest while more than `limit` remain.
    fn sweep_pending(&mut self, now: UnixTime, limit: usize) {
        while let Some((sequence, state)) = self.pending_order.front() {
            let (sequence, state) = (*sequence, state.clone());
            let live = self.is_live(sequence, &state);
            let expired = self
                .pending
                .get(&state)
                .is_some_and(|(_, p)| p.expires_at <= now);
            if live && !expired && self.pending.len() <= limit {
                break;
            }
            self.pending_order.pop_front();
            if live {
                self.pending.remove(&state);
            }
        }
        // Taken launches leave stale entries behind; compact once they outnumber the live ones,
        // so the queue stays within twice the map and the work is O(1) amortised per insert.
        if self.pending_order.len() > 2 * self.pending.len() + 64 {
            let pending = &self.pending;
            self.pending_order
                .retain(|(sequence, state)| pending.get(state).is_some_and(|(s, _)| s == sequence));
        }
    }
}

impl MemoryStore {
    /// An empty store keeping at most [`DEFAULT_PENDING_LAUNCH_LIMIT`] pending launches.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store keeping at most `limit` pending launches (at least one).
    pub fn with_pending_launch_limit(limit: usize) -> Self {
        MemoryStore {
            inner: Mutex::new(MemoryInner::default()),
            pending_limit: limit.max(1),
            session_lifetime: SessionLifetime::UNLIMITED,
        }
    }

    /// This store, ending sessions past `lifetime` (absolute and idle limits).
    pub fn with_session_lifetime(mut self, lifetime: SessionLifetime) -> Self {
        self.session_lifetime = lifetime;
        self
    }

    /// How many pending launches are held, expired ones not yet swept included.
    pub fn pending_launch_count(&self) -> usize {
        self.lock().pending.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        // A panic while holding the lock cannot leave the maps half-updated (every mutation is a
        // single insert or remove), so a poisoned lock is safe to keep using.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn put_pending_launch(
        &self,
        state: &str,
        launch: &PendingLaunch,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let now = now_unix();
        // Room for the new one: sweep down to limit - 1.
        inner.sweep_pending(now, self.pending_limit - 1);
        if inner.pending.contains_key(state) {
            return Err(StoreError::AlreadyExists);
        }
        let sequence = inner.next_sequence;
        inner.next_sequence += 1;
        inner
            .pending
            .insert(state.to_owned(), (sequence, launch.clone()));
        inner.pending_order.push_back((sequence, state.to_owned()));
        Ok(())
    }

    async fn take_pending_launch(&self, state: &str) -> Result<Option<PendingLaunch>, StoreError> {
        let taken = self.lock().pending.remove(state).map(|(_, p)| p);
        Ok(taken.filter(|p| p.expires_at > now_unix()))
    }

    async fn insert_session(&self, id: &SessionId, session: &Session) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let now = now_ms();
        if inner.live_session(id, now).is_some() {
            return Err(StoreError::AlreadyExists);
        }
        inner.sessions.insert(
            id.clone(),
            MemorySession {
                current: Versioned {
                    value: session.clone(),
                    version: 1,
                },
                created_ms: now,
                expires_at_ms: self.session_lifetime.expires_at_ms(now, now),
            },
        );
        Ok(1)
    }

    async fn load_session(&self, id: &SessionId) -> Result<Option<Versioned<Session>>, StoreError> {
        Ok(self
            .lock()
            .live_session(id, now_ms())
            .map(|s| s.current.clone()))
    }

    async fn compare_and_swap_session(
        &self,
        id: &SessionId,
        expected_version: u64,
        session: &Session,
    ) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let now = now_ms();
        let slot = inner.live_session(id, now).ok_or(StoreError::NotFound)?;
        if slot.current.version != expected_version {
            return Err(StoreError::VersionConflict {
                current: slot.current.version,
            });
        }
        slot.current.version += 1;
        slot.current.value = session.clone();
        slot.expires_at_ms = self.session_lifetime.expires_at_ms(slot.created_ms, now);
        Ok(slot.current.version)
    }

    async fn delete_session(&self, id: &SessionId) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let existed = inner.live_session(id, now_ms()).is_some();
        inner.leases.remove(id);
        inner.sessions.remove(id);
        Ok(existed)
    }

    async fn try_acquire_lease(
        &self,
        id: &SessionId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let mut inner = self.lock();
        let now = now_ms();
        if inner.leases.get(id).is_some_and(|l| l.expires_at_ms > now) {
            return Ok(None);
        }
        let lease = Lease {
            session: id.clone(),
            owner: owner.to_owned(),
            expires_at_ms: now.saturating_add(duration_ms(ttl)),
        };
        inner.leases.insert(id.clone(), lease.clone());
        Ok(Some(lease))
    }

    async fn release_lease(&self, lease: &Lease) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if inner
            .leases
            .get(&lease.session)
            .is_some_and(|l| l.owner == lease.owner)
        {
            inner.leases.remove(&lease.session);
            return Ok(true);
        }
        Ok(false)
    }

    async fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<Option<Lease>, StoreError> {
        let mut inner = self.lock();
        let now = now_ms();
        match inner.leases.get_mut(&lease.session) {
            Some(held) if held.owner == lease.owner && held.expires_at_ms > now => {
                held.expires_at_ms = now.saturating_add(duration_ms(ttl));
                Ok(Some(held.clone()))
            }
            _ => Ok(None),
        }
    }

    async fn purge_expired(&self) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let now = now_ms();
        let now_secs = now_unix();
        let before = inner.pending.len() + inner.leases.len() + inner.sessions.len();
        inner.pending.retain(|_, (_, p)| p.expires_at > now_secs);
        inner.leases.retain(|_, l| l.expires_at_ms > now);
        inner.sessions.retain(|_, s| s.is_live(now));
        let after = inner.pending.len() + inner.leases.len() + inner.sessions.len();
        Ok((before - after) as u64)
    }
}

#[cfg(any(test, feature = "testsuite"))]
pub mod testsuite {
    //! The conformance suite every [`Store`] implementation must pass.
    //!
    //! Call [`run_all`] from a `#[tokio::test(flavor = "multi_thread")]` in the store's crate,
    //! with a fresh, empty store:
    //!
    //! ```
    //! # async fn example() {
    //! use std::sync::Arc;
    //! smart_core::store::testsuite::run_all(Arc::new(smart_core::store::MemoryStore::new())).await;
    //! # }
    //! ```
    //!
    //! Each check panics with a message naming the broken guarantee.

    use std::sync::Arc;
    use std::time::Duration;

    use smart_scopes::Scopes;

    use super::*;
    use crate::secret::{AccessToken, PkceVerifier, RefreshToken};

    const RACERS: usize = 32;

    /// A pending launch for tests, expiring `ttl_secs` from now.
    pub fn sample_pending_launch(ttl_secs: u64) -> PendingLaunch {
        let now = now_unix();
        PendingLaunch {
            registration: "test".into(),
            fhir_base: "https://ehr.example/fhir".into(),
            kind: LaunchKind::Standalone,
            launch: None,
            redirect_uri: "https://app.example/cb".into(),
            requested_scopes: Scopes::parse("launch/patient patient/*.rs"),
            pkce_verifier: PkceVerifier::new("v".repeat(43)),
            token_endpoint: "https://ehr.example/token".into(),
            created_at: now,
            expires_at: now + ttl_secs,
            browser_binding_sha256: crate::secret::BrowserBinding::new("test-binding").sha256(),
            authorization_server_issuer: None,
            iss_parameter_required: false,
            adapter: None,
        }
    }

    /// A session for tests.
    pub fn sample_session(access_token: &str) -> Session {
        let now = now_unix();
        Session {
            registration: "test".into(),
            client_id: "app".into(),
            fhir_base: "https://ehr.example/fhir".into(),
            token_endpoint: "https://ehr.example/token".into(),
            tokens: TokenSet {
                access_token: AccessToken::new(access_token),
                expires_at: Some(now + 3600),
                refresh_token: Some(RefreshToken::new("r-1")),
                id_token: None,
                granted_scopes: Some(Scopes::parse("patient/*.rs offline_access")),
                received_at: now,
            },
            context: LaunchContext {
                patient: Some("p1".into()),
                ..LaunchContext::default()
            },
            requested_scopes: Scopes::parse("launch/patient patient/*.rs offline_access"),
            kind: LaunchKind::Standalone,
            created_at: now,
            refreshed_at: None,
            status: SessionStatus::Active,
            identity: None,
            refresh_warnings: Vec::new(),
            adapter: None,
        }
    }

    /// Runs every check.
    pub async fn run_all(store: Arc<dyn Store>) {
        pending_launch_round_trip(&*store).await;
        pending_launch_is_single_use(&*store).await;
        pending_launch_duplicate_state_refused(&*store).await;
        expired_pending_launch_is_gone(&*store).await;
        concurrent_take_has_one_winner(store.clone()).await;
        session_round_trip_and_versions(&*store).await;
        compare_and_swap_detects_conflicts(&*store).await;
        concurrent_compare_and_swap_has_one_winner(store.clone()).await;
        lease_is_exclusive_until_released(&*store).await;
        lease_expires(&*store).await;
        concurrent_lease_has_one_winner(store.clone()).await;
        delete_session_removes_it(&*store).await;
        renew_lease_extends_only_the_holders_lease(&*store).await;
        stale_lease_holder_cannot_write(&*store).await;
        purge_keeps_live_records(&*store).await;
    }

    fn unique(prefix: &str) -> String {
        format!("{prefix}-{}", crate::random_token(12))
    }

    /// What was put is what is taken, secrets included.
    pub async fn pending_launch_round_trip(store: &dyn Store) {
        let state = unique("state");
        let launch = sample_pending_launch(600);
        store
            .put_pending_launch(&state, &launch)
            .await
            .expect("put");
        let taken = store.take_pending_launch(&state).await.expect("take");
        assert_eq!(taken, Some(launch), "take must return exactly what was put");
    }

    /// A state can be consumed once.
    pub async fn pending_launch_is_single_use(store: &dyn Store) {
        let state = unique("state");
        store
            .put_pending_launch(&state, &sample_pending_launch(600))
            .await
            .expect("put");
        assert!(
            store
                .take_pending_launch(&state)
                .await
                .expect("take")
                .is_some()
        );
        assert!(
            store
                .take_pending_launch(&state)
                .await
                .expect("take")
                .is_none(),
            "a pending launch must not be returned twice"
        );
    }

    /// A state already in use cannot be overwritten.
    pub async fn pending_launch_duplicate_state_refused(store: &dyn Store) {
        let state = unique("state");
        store
            .put_pending_launch(&state, &sample_pending_launch(600))
            .await
            .expect("put");
        assert!(
            matches!(
                store
                    .put_pending_launch(&state, &sample_pending_launch(600))
                    .await,
                Err(StoreError::AlreadyExists)
            ),
            "putting an existing state must fail with AlreadyExists"
        );
    }

    /// An expired launch is never returned.
    pub async fn expired_pending_launch_is_gone(store: &dyn Store) {
        let state = unique("state");
        let mut launch = sample_pending_launch(0);
        launch.expires_at = now_unix().saturating_sub(1);
        store
            .put_pending_launch(&state, &launch)
            .await
            .expect("put");
        assert!(
            store
                .take_pending_launch(&state)
                .await
                .expect("take")
                .is_none(),
            "an expired pending launch must not be returned"
        );
    }

    /// Of many concurrent takers of one state, exactly one wins.
    pub async fn concurrent_take_has_one_winner(store: Arc<dyn Store>) {
        let state = unique("state");
        store
            .put_pending_launch(&state, &sample_pending_launch(600))
            .await
            .expect("put");
        let mut tasks = Vec::new();
        for _ in 0..RACERS {
            let store = store.clone();
            let state = state.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .take_pending_launch(&state)
                    .await
                    .expect("take")
                    .is_some()
            }));
        }
        let mut winners = 0;
        for t in tasks {
            winners += usize::from(t.await.expect("task"));
        }
        assert_eq!(winners, 1, "exactly one concurrent take may succeed");
    }

    /// Sessions are stored at version 1 and read back intact.
    pub async fn session_round_trip_and_versions(store: &dyn Store) {
        let id = SessionId::generate();
        let session = sample_session("a-1");
        assert_eq!(
            store.insert_session(&id, &session).await.expect("insert"),
            1
        );
        let loaded = store
            .load_session(&id)
            .await
            .expect("load")
            .expect("present");
        assert_eq!(loaded.version, 1);
        assert_eq!(loaded.value, session);
        assert!(matches!(
            store.insert_session(&id, &session).await,
            Err(StoreError::AlreadyExists)
        ));
        assert!(
            store
                .load_session(&SessionId::generate())
                .await
                .expect("load")
                .is_none()
        );
    }

    /// A CAS against a stale version fails and changes nothing.
    pub async fn compare_and_swap_detects_conflicts(store: &dyn Store) {
        let id = SessionId::generate();
        store
            .insert_session(&id, &sample_session("a-1"))
            .await
            .expect("insert");
        let v2 = store
            .compare_and_swap_session(&id, 1, &sample_session("a-2"))
            .await
            .expect("cas from the current version");
        assert_eq!(v2, 2);
        let stale = store
            .compare_and_swap_session(&id, 1, &sample_session("a-x"))
            .await;
        assert!(
            matches!(stale, Err(StoreError::VersionConflict { current: 2 })),
            "a stale CAS must report the current version, got {stale:?}"
        );
        let loaded = store
            .load_session(&id)
            .await
            .expect("load")
            .expect("present");
        assert_eq!(loaded.value.tokens.access_token.expose_secret(), "a-2");
        assert!(matches!(
            store
                .compare_and_swap_session(&SessionId::generate(), 1, &sample_session("a"))
                .await,
            Err(StoreError::NotFound)
        ));
    }

    /// Of many concurrent CAS writers from the same version, exactly one wins.
    pub async fn concurrent_compare_and_swap_has_one_winner(store: Arc<dyn Store>) {
        let id = SessionId::generate();
        store
            .insert_session(&id, &sample_session("a-0"))
            .await
            .expect("insert");
        let mut tasks = Vec::new();
        for i in 0..RACERS {
            let store = store.clone();
            let id = id.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .compare_and_swap_session(&id, 1, &sample_session(&format!("a-{i}")))
                    .await
                    .is_ok()
            }));
        }
        let mut winners = 0;
        for t in tasks {
            winners += usize::from(t.await.expect("task"));
        }
        assert_eq!(
            winners, 1,
            "exactly one CAS from the same version may succeed"
        );
        let loaded = store
            .load_session(&id)
            .await
            .expect("load")
            .expect("present");
        assert_eq!(loaded.version, 2);
    }

    /// A held lease blocks others until released; only its owner can release it.
    pub async fn lease_is_exclusive_until_released(store: &dyn Store) {
        let id = SessionId::generate();
        store
            .insert_session(&id, &sample_session("a"))
            .await
            .expect("insert");
        let lease = store
            .try_acquire_lease(&id, "owner-a", Duration::from_secs(30))
            .await
            .expect("acquire")
            .expect("free lease");
        assert!(
            store
                .try_acquire_lease(&id, "owner-b", Duration::from_secs(30))
                .await
                .expect("acquire")
                .is_none(),
            "a held lease must not be granted to another owner"
        );
        let impostor = Lease {
            owner: "owner-b".into(),
            ..lease.clone()
        };
        assert!(
            !store.release_lease(&impostor).await.expect("release"),
            "only the owner may release a lease"
        );
        assert!(store.release_lease(&lease).await.expect("release"));
        assert!(
            store
                .try_acquire_lease(&id, "owner-b", Duration::from_secs(30))
                .await
                .expect("acquire")
                .is_some(),
            "a released lease must be available"
        );
    }

    /// An expired lease can be taken over.
    pub async fn lease_expires(store: &dyn Store) {
        let id = SessionId::generate();
        store
            .insert_session(&id, &sample_session("a"))
            .await
            .expect("insert");
        let first = store
            .try_acquire_lease(&id, "owner-a", Duration::from_millis(200))
            .await
            .expect("acquire")
            .expect("free");
        tokio::time::sleep(Duration::from_millis(400)).await;
        let second = store
            .try_acquire_lease(&id, "owner-b", Duration::from_secs(30))
            .await
            .expect("acquire");
        assert!(second.is_some(), "an expired lease must be available");
        assert!(
            !store.release_lease(&first).await.expect("release"),
            "releasing an expired, re-acquired lease must not free the new holder's lease"
        );
    }

    /// Of many concurrent lease requests, exactly one wins.
    pub async fn concurrent_lease_has_one_winner(store: Arc<dyn Store>) {
        let id = SessionId::generate();
        store
            .insert_session(&id, &sample_session("a"))
            .await
            .expect("insert");
        let mut tasks = Vec::new();
        for i in 0..RACERS {
            let store = store.clone();
            let id = id.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .try_acquire_lease(&id, &format!("owner-{i}"), Duration::from_secs(30))
                    .await
                    .expect("acquire")
                    .is_some()
            }));
        }
        let mut winners = 0;
        for t in tasks {
            winners += usize::from(t.await.expect("task"));
        }
        assert_eq!(
            winners, 1,
            "exactly one concurrent lease request may succeed"
        );
    }

    /// Deleting a session removes it.
    pub async fn delete_session_removes_it(store: &dyn Store) {
        let id = SessionId::generate();
        store
            .insert_session(&id, &sample_session("a"))
            .await
            .expect("insert");
        assert!(store.delete_session(&id).await.expect("delete"));
        assert!(store.load_session(&id).await.expect("load").is_none());
        assert!(!store.delete_session(&id).await.expect("delete"));
    }

    /// Renewing extends a held lease; a lease that was released, expired or never held is not
    /// renewed.
    pub async fn renew_lease_extends_only_the_holders_lease(store: &dyn Store) {
        let id = SessionId::generate();
        store
            .insert_session(&id, &sample_session("a"))
            .await
            .expect("insert");
        let lease = store
            .try_acquire_lease(&id, "owner-a", Duration::from_millis(300))
            .await
            .expect("acquire")
            .expect("free lease");
        let renewed = store
            .renew_lease(&lease, Duration::from_secs(30))
            .await
            .expect("renew")
            .expect("the holder must be able to renew its unexpired lease");
        assert_eq!(renewed.owner, "owner-a");
        assert!(
            renewed.expires_at_ms > lease.expires_at_ms,
            "renewing must move the expiry later"
        );
        // Past the original expiry the renewed lease still holds.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            store
                .try_acquire_lease(&id, "owner-b", Duration::from_secs(30))
                .await
                .expect("acquire")
                .is_none(),
            "a renewed lease must outlive its first expiry"
        );
        let impostor = Lease {
            owner: "owner-b".into(),
            ..renewed.clone()
        };
        assert!(
            store
                .renew_lease(&impostor, Duration::from_secs(30))
                .await
                .expect("renew")
                .is_none(),
            "only the holder may renew"
        );
        assert!(store.release_lease(&renewed).await.expect("release"));
        assert!(
            store
                .renew_lease(&renewed, Duration::from_secs(30))
                .await
                .expect("renew")
                .is_none(),
            "a released lease cannot be renewed"
        );
    }

    /// The version is the write fence: a holder whose lease expired and was taken over cannot
    /// overwrite what the new holder wrote, nor renew or release the new holder's lease.
    pub async fn stale_lease_holder_cannot_write(store: &dyn Store) {
        let id = SessionId::generate();
        store
            .insert_session(&id, &sample_session("a-1"))
            .await
            .expect("insert");
        let stale = store
            .try_acquire_lease(&id, "slow-holder", Duration::from_millis(200))
            .await
            .expect("acquire")
            .expect("free lease");
        let read_by_stale = store
            .load_session(&id)
            .await
            .expect("load")
            .expect("present");
        tokio::time::sleep(Duration::from_millis(400)).await;
        let fresh = store
            .try_acquire_lease(&id, "new-holder", Duration::from_secs(30))
            .await
            .expect("acquire")
            .expect("an expired lease must be available");
        let v2 = store
            .compare_and_swap_session(&id, read_by_stale.version, &sample_session("a-2"))
            .await
            .expect("the new holder writes");
        let late = store
            .compare_and_swap_session(&id, read_by_stale.version, &sample_session("a-stale"))
            .await;
        assert!(
            matches!(late, Err(StoreError::VersionConflict { current }) if current == v2),
            "a stale holder's write must fail on the version, got {late:?}"
        );
        assert!(
            store
                .renew_lease(&stale, Duration::from_secs(30))
                .await
                .expect("renew")
                .is_none(),
            "a stale holder must not renew the new holder's lease"
        );
        assert!(!store.release_lease(&stale).await.expect("release"));
        let loaded = store
            .load_session(&id)
            .await
            .expect("load")
            .expect("present");
        assert_eq!(loaded.value.tokens.access_token.expose_secret(), "a-2");
        assert!(store.release_lease(&fresh).await.expect("release"));
    }

    /// Purging expired records leaves live ones alone.
    pub async fn purge_keeps_live_records(store: &dyn Store) {
        let id = SessionId::generate();
        store
            .insert_session(&id, &sample_session("a"))
            .await
            .expect("insert");
        let lease = store
            .try_acquire_lease(&id, "owner-a", Duration::from_secs(30))
            .await
            .expect("acquire")
            .expect("free lease");
        let state = unique("state");
        store
            .put_pending_launch(&state, &sample_pending_launch(600))
            .await
            .expect("put");
        let expired_state = unique("state");
        let mut expired = sample_pending_launch(0);
        expired.expires_at = now_unix().saturating_sub(1);
        store
            .put_pending_launch(&expired_state, &expired)
            .await
            .expect("put");
        store.purge_expired().await.expect("purge");
        assert!(store.load_session(&id).await.expect("load").is_some());
        assert!(
            store
                .try_acquire_lease(&id, "owner-b", Duration::from_secs(30))
                .await
                .expect("acquire")
                .is_none(),
            "purge must keep a live lease"
        );
        assert!(store.release_lease(&lease).await.expect("release"));
        assert!(
            store
                .take_pending_launch(&state)
                .await
                .expect("take")
                .is_some(),
            "purge must keep a live pending launch"
        );
        assert!(
            store
                .take_pending_launch(&expired_state)
                .await
                .expect("take")
                .is_none()
        );
    }

    /// A store built with `lifetime` (both limits set, `absolute` more than twice `idle`) ends
    /// idle sessions, keeps written ones alive until the absolute limit, and purges both.
    pub async fn session_lifetime_is_enforced(store: &dyn Store, lifetime: SessionLifetime) {
        let idle = lifetime.idle.expect("an idle limit");
        let absolute = lifetime.absolute.expect("an absolute limit");
        assert!(absolute > idle * 2, "absolute must exceed twice idle");
        let start = tokio::time::Instant::now();
        // Idle: untouched, gone after `idle`.
        let untouched = SessionId::generate();
        store
            .insert_session(&untouched, &sample_session("a"))
            .await
            .expect("insert");
        // Written every idle/2: alive past idle, gone after absolute.
        let busy = SessionId::generate();
        let mut version = store
            .insert_session(&busy, &sample_session("b"))
            .await
            .expect("insert");
        let mut untouched_gone = false;
        let mut survived_idle = false;
        while start.elapsed() < absolute + idle {
            tokio::time::sleep(idle / 3).await;
            if start.elapsed() > idle + idle / 4 && !untouched_gone {
                assert!(
                    store
                        .load_session(&untouched)
                        .await
                        .expect("load")
                        .is_none(),
                    "a session idle past its idle limit must be gone"
                );
                untouched_gone = true;
            }
            match store
                .compare_and_swap_session(&busy, version, &sample_session("b"))
                .await
            {
                Ok(v) => {
                    version = v;
                    if start.elapsed() > idle * 2 {
                        survived_idle = true;
                    }
                }
                Err(StoreError::NotFound) => {
                    assert!(
                        start.elapsed() >= absolute,
                        "a written session must live until its absolute limit"
                    );
                    break;
                }
                Err(e) => panic!("cas: {e}"),
            }
        }
        assert!(untouched_gone && survived_idle);
        assert!(
            store.load_session(&busy).await.expect("load").is_none(),
            "a session past its absolute limit must be gone, however busy"
        );
        store.purge_expired().await.expect("purge");
        assert!(!store.delete_session(&busy).await.expect("delete"));
    }
}
