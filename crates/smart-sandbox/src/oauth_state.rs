//! The OAuth area's state: launch tokens, authorization codes, grants,
//! access and refresh tokens (the [`Store`]), plus the client-assertion
//! caches and the `id_token` signing keys, composed as [`OAuthState`].
//!
//! The store lives behind one `std::sync` lock held only for short,
//! non-async critical sections, so each request gets an atomic view (a code
//! cannot be redeemed twice by racing requests).
//!
//! Everything in the store expires, so a long-running sandbox (or a client
//! looping over launches) does not grow without bound: launch tokens and
//! codes at their lifetime, access tokens when they expire, grants (with
//! their refresh tokens) after [`Behavior::grant_idle_lifetime`] without a
//! refresh, and used codes, expired access tokens and rotated-out refresh
//! tokens are remembered for [`Behavior::retired_token_memory`] so their
//! reuse is still reported precisely. Expired entries are dropped by an
//! amortised sweep ([`Store::prune`]): a full pass only after the store has
//! seen as many inserts as half its size, or a second has passed, never a
//! scan per request.
//!
//! Nothing here imports the shared state or a handler: the top
//! ([`crate::state::Shared`]) composes this with the other areas' state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use smart_scopes::Scopes;

use crate::assertion_cache::AssertionCache;
use crate::config::Behavior;
use crate::locks::lock;
use crate::random::random_token;
use crate::signing_keys::SigningKeys;
use crate::time::{instant_after, unix_now};

/// How long an EHR launch token stays usable.
pub(crate) const LAUNCH_LIFETIME: Duration = Duration::from_secs(300);

/// The least number of inserts between two full sweeps of the store.
const MIN_SWEEP_INSERTS: usize = 64;

/// The longest time between two full sweeps while entries are inserted.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Everything the OAuth endpoints keep between requests.
#[derive(Default)]
pub(crate) struct OAuthState {
    store: Mutex<Store>,
    /// JWKS cache and `jti` replay cache for client assertions.
    pub(crate) assertions: AssertionCache,
    /// The OpenID Connect signing keys.
    pub(crate) signing: SigningKeys,
}

impl OAuthState {
    /// A state whose store keeps retired entries as `behavior` says.
    pub(crate) fn new(behavior: &Behavior) -> OAuthState {
        OAuthState {
            store: Mutex::new(Store {
                retention: Retention::of(behavior),
                ..Store::default()
            }),
            ..OAuthState::default()
        }
    }

    /// The token store, locked.
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    /// Applies changed retention switches to the store.
    pub(crate) fn set_retention(&self, behavior: &Behavior) {
        self.store().retention = Retention::of(behavior);
    }
}

/// An EHR launch token waiting to be presented at the authorize endpoint.
pub(crate) struct LaunchRecord {
    pub(crate) client_id: String,
    pub(crate) patient: Option<String>,
    pub(crate) encounter: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) expires_at: Instant,
}

/// The launch context bound to a code and then to the grant.
#[derive(Debug, Clone, Default)]
pub(crate) struct GrantContext {
    pub(crate) patient: Option<String>,
    pub(crate) encounter: Option<String>,
    /// The simulated user as a relative reference (`Practitioner/prac-1`),
    /// the subject of `id_token`s.
    pub(crate) user: Option<String>,
    /// The `nonce` of the authorization request, echoed in the `id_token`.
    pub(crate) nonce: Option<String>,
    /// Whether this came from an EHR launch (banner and style apply).
    pub(crate) ehr_launch: bool,
    /// The `state` of the authorization request (some vendors echo it in
    /// the token response).
    pub(crate) state: Option<String>,
    pub(crate) need_patient_banner: bool,
    pub(crate) smart_style_url: Option<String>,
}

/// An authorization code and everything it is bound to.
pub(crate) struct CodeRecord {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) code_challenge: String,
    /// The challenge is `plain` (only under `Behavior::accept_plain_pkce`).
    pub(crate) pkce_plain: bool,
    pub(crate) scopes: Vec<String>,
    pub(crate) context: GrantContext,
    pub(crate) expires_at: Instant,
    /// Set on first redemption attempt; a second attempt is a replay.
    pub(crate) used: bool,
    /// The grant created from this code, revoked if the code is replayed.
    pub(crate) grant_id: Option<u64>,
}

/// One authorization grant: what a successful code exchange created. Access
/// and refresh tokens point at it; revoking it kills them all.
pub(crate) struct Grant {
    pub(crate) client_id: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) context: GrantContext,
    pub(crate) revoked: bool,
    /// The refresh token currently valid for this grant, if any.
    pub(crate) current_refresh: Option<String>,
    /// `iss`, `sub` and `fhirUser` of the first `id_token` issued for this
    /// grant, echoed by introspection.
    pub(crate) identity: Option<Identity>,
    /// When this grant was last refreshed (not set by the code exchange),
    /// for the profile's `refresh_min_interval_secs`.
    pub(crate) last_refresh: Option<Instant>,
    /// When the grant was created or last refreshed: it is dropped (with its
    /// refresh tokens) [`Behavior::grant_idle_lifetime`] after this, once
    /// its access tokens have expired too.
    pub(crate) last_active: Instant,
    /// When the latest access token issued for the grant expires.
    pub(crate) access_until: Instant,
}

impl Grant {
    /// A new, active grant.
    pub(crate) fn new(client_id: String, scopes: Vec<String>, context: GrantContext) -> Grant {
        let now = Instant::now();
        Grant {
            client_id,
            scopes,
            context,
            revoked: false,
            current_refresh: None,
            identity: None,
            last_refresh: None,
            last_active: now,
            access_until: now,
        }
    }
}

/// The identity claims of an issued `id_token`.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) iss: String,
    pub(crate) sub: String,
    pub(crate) fhir_user: Option<String>,
}

/// An issued access token.
pub(crate) struct AccessRecord {
    pub(crate) grant_id: u64,
    pub(crate) scopes: Vec<String>,
    /// `scopes`, parsed once at issue time: a FHIR request clones this
    /// pointer under the store lock instead of parsing the scopes there.
    pub(crate) parsed: Arc<Scopes>,
    pub(crate) expires_at: Instant,
    /// `iat` and `exp` as Unix times, for introspection.
    pub(crate) issued_at_unix: u64,
    pub(crate) expires_at_unix: u64,
    /// Forced expiry by [`Sandbox::expire_access_tokens`](crate::Sandbox::expire_access_tokens)
    /// or `Behavior::expire_tokens_after_calls`.
    pub(crate) force_expired: bool,
    /// FHIR requests authorized with this token so far.
    pub(crate) fhir_calls: u32,
}

/// How long the store keeps what can no longer be used (from [`Behavior`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retention {
    grant_idle: Duration,
    retired_memory: Duration,
}

impl Retention {
    fn of(behavior: &Behavior) -> Retention {
        Retention {
            grant_idle: behavior.grant_idle_lifetime,
            retired_memory: behavior.retired_token_memory,
        }
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention::of(&Behavior::default())
    }
}

/// A refresh token and its grant.
pub(crate) struct RefreshRecord {
    pub(crate) grant_id: u64,
    /// When it was rotated out (or its grant revoked); it is forgotten
    /// [`Behavior::retired_token_memory`] later.
    retired_at: Option<Instant>,
}

/// The in-memory token store.
#[derive(Default)]
pub(crate) struct Store {
    pub(crate) launches: HashMap<String, LaunchRecord>,
    pub(crate) codes: HashMap<String, CodeRecord>,
    pub(crate) grants: HashMap<u64, Grant>,
    pub(crate) access_tokens: HashMap<String, AccessRecord>,
    /// Refresh tokens mapped to their grant; only `Grant::current_refresh`
    /// is valid, the others are rotated out and remembered for a while so
    /// that their reuse revokes the grant.
    pub(crate) refresh_tokens: HashMap<String, RefreshRecord>,
    next_grant_id: u64,
    retention: Retention,
    /// Inserts since the last full sweep, and when that was.
    inserts_since_sweep: usize,
    last_sweep: Option<Instant>,
}

/// How many entries of each kind the store holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StoreSizes {
    pub(crate) launches: usize,
    pub(crate) codes: usize,
    pub(crate) grants: usize,
    pub(crate) access_tokens: usize,
    pub(crate) refresh_tokens: usize,
}

impl Store {
    /// Counts an insert and, when due, drops everything that can no longer
    /// be used. A full pass is due after as many inserts as half the store's
    /// size (at least [`MIN_SWEEP_INSERTS`]) or [`SWEEP_INTERVAL`] after the
    /// previous one, so its cost is amortised over the inserts that made the
    /// store grow.
    pub(crate) fn prune(&mut self, now: Instant) {
        self.inserts_since_sweep = self.inserts_since_sweep.saturating_add(1);
        let by_count = self.inserts_since_sweep >= (self.len() / 2).max(MIN_SWEEP_INSERTS);
        let by_time = self
            .last_sweep
            .is_none_or(|last| now.saturating_duration_since(last) >= SWEEP_INTERVAL);
        if by_count || by_time {
            self.sweep(now);
        }
    }

    /// Drops every entry that can no longer be used (a full pass).
    pub(crate) fn sweep(&mut self, now: Instant) {
        self.inserts_since_sweep = 0;
        self.last_sweep = Some(now);
        let Retention {
            grant_idle,
            retired_memory,
        } = self.retention;
        let kept = |until: Instant, extra: Duration| instant_after(until, extra) > now;
        self.launches.retain(|_, l| l.expires_at > now);
        self.codes.retain(|_, c| kept(c.expires_at, retired_memory));
        self.access_tokens
            .retain(|_, t| kept(t.expires_at, retired_memory));
        self.grants
            .retain(|_, g| g.access_until > now || kept(g.last_active, grant_idle));
        let grants = &self.grants;
        self.refresh_tokens.retain(|_, r| {
            grants.contains_key(&r.grant_id)
                && r.retired_at.is_none_or(|at| kept(at, retired_memory))
        });
    }

    /// The number of entries of all kinds.
    pub(crate) fn len(&self) -> usize {
        let s = self.sizes();
        s.launches + s.codes + s.grants + s.access_tokens + s.refresh_tokens
    }

    /// How many entries of each kind the store holds.
    pub(crate) fn sizes(&self) -> StoreSizes {
        StoreSizes {
            launches: self.launches.len(),
            codes: self.codes.len(),
            grants: self.grants.len(),
            access_tokens: self.access_tokens.len(),
            refresh_tokens: self.refresh_tokens.len(),
        }
    }

    pub(crate) fn new_grant(&mut self, grant: Grant) -> u64 {
        self.next_grant_id += 1;
        let id = self.next_grant_id;
        self.grants.insert(id, grant);
        id
    }

    /// Revokes a grant: its access tokens and refresh tokens stop working
    /// (they are checked against `Grant::revoked` on every use).
    pub(crate) fn revoke_grant(&mut self, grant_id: u64) {
        if let Some(g) = self.grants.get_mut(&grant_id) {
            g.revoked = true;
            if let Some(old) = g.current_refresh.take() {
                self.retire_refresh_token(&old, Instant::now());
            }
        }
    }

    fn retire_refresh_token(&mut self, token: &str, now: Instant) {
        if let Some(r) = self.refresh_tokens.get_mut(token) {
            r.retired_at.get_or_insert(now);
        }
    }

    /// Issues an access token for a grant.
    pub(crate) fn issue_access_token(
        &mut self,
        grant_id: u64,
        scopes: Vec<String>,
        lifetime: Duration,
    ) -> String {
        let now = Instant::now();
        self.prune(now);
        let token = random_token();
        let issued_at_unix = unix_now();
        let expires_at = instant_after(now, lifetime);
        if let Some(g) = self.grants.get_mut(&grant_id) {
            g.access_until = g.access_until.max(expires_at);
        }
        let parsed = Arc::new(Scopes::parse(&scopes.join(" ")));
        self.access_tokens.insert(
            token.clone(),
            AccessRecord {
                grant_id,
                scopes,
                parsed,
                expires_at,
                issued_at_unix,
                expires_at_unix: issued_at_unix.saturating_add(lifetime.as_secs()),
                force_expired: false,
                fhir_calls: 0,
            },
        );
        token
    }

    /// The record and grant of an access token that is currently usable:
    /// known, not expired (or force-expired) and its grant not revoked.
    pub(crate) fn active_access_token(&self, token: &str) -> Option<(&AccessRecord, &Grant)> {
        let record = self.access_tokens.get(token)?;
        let grant = self.grants.get(&record.grant_id)?;
        let live = !grant.revoked && !record.force_expired && record.expires_at > Instant::now();
        live.then_some((record, grant))
    }

    /// Issues a new refresh token for a grant and makes it the current one.
    pub(crate) fn issue_refresh_token(&mut self, grant_id: u64) -> String {
        let now = Instant::now();
        let token = random_token();
        self.refresh_tokens.insert(
            token.clone(),
            RefreshRecord {
                grant_id,
                retired_at: None,
            },
        );
        let mut retired = None;
        if let Some(g) = self.grants.get_mut(&grant_id) {
            g.last_active = now;
            retired = g.current_refresh.replace(token.clone());
        }
        if let Some(old) = retired {
            self.retire_refresh_token(&old, now);
        }
        token
    }

    pub(crate) fn expire_all_access_tokens(&mut self) {
        for t in self.access_tokens.values_mut() {
            t.force_expired = true;
        }
    }
}
