//! Bearer tokens for FHIR requests, kept fresh.
//!
//! A FHIR client should not care whether its token came from a launched session or a backend
//! service, nor when it expires. [`BearerSource`] hides both: [`bearer`](BearerSource::bearer)
//! returns a token refreshed ahead of expiry, and
//! [`after_unauthorized`](BearerSource::after_unauthorized) (or
//! [`renew_after_unauthorized`](BearerSource::renew_after_unauthorized)) is called when a server
//! answers `401 invalid_token` to it.
//!
//! Each [`Bearer`] carries the **generation** it came from (the session's store version). When
//! many requests fail with the same expired token at once, they all report that generation, and
//! the session refresh (single-flight through the store's lease) runs once: the first caller
//! refreshes, the others find the generation already moved on and take the new token.
//!
//! A fresh token costs no store read: the client keeps each session's bearer in process (the
//! `cache` module: bounded, expiring, replaced when the session version moves, dropped when a
//! server refuses its token). The store is read when the token is near expiry, when the entry
//! is older than its maximum age, and after a `401` — so a refresh made by another process is
//! picked up before this one would spend a refresh token of its own. A token picked up that way
//! has not been tried yet, and the store may hold one the server refuses too (tokens put back by
//! a restore, a revocation): it is marked as [found](Renewal::found_renewed), and a second `401`
//! on it leads to one real refresh rather than a failed call.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::backend::{BackendError, BackendTokenSource};
use crate::client::{RefreshError, RefreshOptions, RefreshOutcome, SmartClient};
use crate::quirks::VendorQuirks;
use crate::secret::AccessToken;
use crate::store::{SessionId, SessionStatus, StoreError};
use crate::token::now_unix;

mod cache;

pub(crate) use cache::{BearerCache, CachedSession};
pub use cache::{DEFAULT_BEARER_CACHE_CAPACITY, DEFAULT_BEARER_CACHE_MAX_AGE};

/// An access token and the generation it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bearer {
    /// The token.
    pub access_token: AccessToken,
    /// Increases every time the token is replaced.
    pub generation: u64,
}

/// Why no usable token is available.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BearerError {
    /// The session has ended (refresh token rejected, or no way to renew an expired token).
    #[error("the session has ended: {reason}{}", new_launch_advice(reason))]
    SessionEnded {
        /// Why.
        reason: String,
    },
    /// No such session.
    #[error("session not found; start a new launch")]
    NotFound,
    /// A refresh failed for a reason that may pass (network, server error).
    #[error("could not refresh the access token: {0}")]
    Refresh(#[source] RefreshError),
    /// A backend token could not be obtained.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The store failed.
    #[error("session storage failed: {0}")]
    Store(#[from] StoreError),
    /// The session's registration or adapter is gone.
    #[error(transparent)]
    Config(#[from] crate::error::ConfigError),
    /// A session recorded before adapters were recorded needed adapter detection, and the
    /// server's configuration could not be discovered.
    #[error(transparent)]
    Discovery(#[from] crate::error::DiscoveryError),
}

impl BearerError {
    /// What the failure means for the app: an ended or missing session means signing in again;
    /// the rest keep their layer's kind.
    pub fn kind(&self) -> crate::error_kind::ErrorKind {
        use crate::error_kind::ErrorKind;
        match self {
            BearerError::SessionEnded { .. } | BearerError::NotFound => ErrorKind::SessionEnded,
            BearerError::Refresh(e) => e.kind(),
            BearerError::Backend(e) => e.kind(),
            BearerError::Store(e) => e.kind(),
            BearerError::Config(e) => e.kind(),
            BearerError::Discovery(e) => e.kind(),
        }
    }

    /// Whether retrying later may succeed.
    pub fn is_temporary(&self) -> bool {
        self.kind().is_temporary()
    }
}

impl From<RefreshError> for BearerError {
    fn from(e: RefreshError) -> Self {
        match e {
            RefreshError::NotFound => BearerError::NotFound,
            RefreshError::Ended { reason } => BearerError::SessionEnded { reason },
            RefreshError::Rejected(e) => BearerError::SessionEnded {
                reason: format!("the server rejected the refresh token ({e})"),
            },
            RefreshError::NoRefreshToken => BearerError::SessionEnded {
                reason: "the access token expired and no refresh token was granted".into(),
            },
            other => BearerError::Refresh(other),
        }
    }
}

/// `; start a new launch`, unless `reason` already says so (it may carry a nested error's
/// hint): the advice appears once in a message.
fn new_launch_advice(reason: &str) -> &'static str {
    if reason.contains("start a new launch") {
        ""
    } else {
        "; start a new launch"
    }
}

/// The longest proactive-refresh margin: a token is renewed at most this long before it expires.
pub const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// The margin before expiry at which a token of `lifetime` is renewed by default:
/// `min(60 s, lifetime / 2)`, so that a short-lived token (say 60 s) is used for half its life
/// instead of being refreshed on every call.
///
/// ```
/// use std::time::Duration;
/// use smart_core::bearer::default_refresh_margin;
///
/// assert_eq!(default_refresh_margin(Duration::from_secs(3600)), Duration::from_secs(60));
/// assert_eq!(default_refresh_margin(Duration::from_secs(60)), Duration::from_secs(30));
/// ```
pub fn default_refresh_margin(lifetime: Duration) -> Duration {
    MAX_REFRESH_MARGIN.min(lifetime / 2)
}

/// Where a FHIR client gets its bearer token.
#[async_trait]
pub trait BearerSource: Send + Sync + fmt::Debug {
    /// The FHIR base the tokens are for. A client must never send them anywhere else.
    fn fhir_base(&self) -> &str;

    /// The vendor adapter (for FHIR request headers and error classification).
    fn adapter(&self) -> Arc<dyn VendorQuirks>;

    /// The client id the tokens were issued to, for the adapter's
    /// [`HookContext`](crate::quirks::HookContext). Default: unknown.
    fn client_id(&self) -> Option<&str> {
        None
    }

    /// A token to use now, refreshed ahead of expiry.
    async fn bearer(&self) -> Result<Bearer, BearerError>;

    /// `rejected` got `401 invalid_token`: renew it (once, however many callers report the same
    /// generation) and return the new token.
    async fn after_unauthorized(&self, rejected: &Bearer) -> Result<Bearer, BearerError>;

    /// [`after_unauthorized`](Self::after_unauthorized), also saying whether the new token was
    /// fetched for this renewal or [found already renewed](Renewal::found_renewed) elsewhere —
    /// which a FHIR client needs to know: a found token has not been tried yet, so a server that
    /// refuses it too deserves one more renewal (a real one), while a freshly fetched token that
    /// is refused will not be helped by another. Default: `after_unauthorized`, reported as
    /// fetched (so a client renews once).
    async fn renew_after_unauthorized(&self, rejected: &Bearer) -> Result<Renewal, BearerError> {
        self.after_unauthorized(rejected)
            .await
            .map(Renewal::fetched)
    }
}

/// What [`BearerSource::renew_after_unauthorized`] gives: the token to send next, and where it
/// came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Renewal {
    /// The token to send next.
    pub bearer: Bearer,
    /// `true` when no token request was made for this renewal because the token had already
    /// been renewed elsewhere (another process refreshed the session and saved it in the
    /// shared store). The server has not judged that token yet: if it refuses it too, renewing
    /// again (a real refresh this time) may help. `false`: the token was fetched for this
    /// renewal (or the source cannot tell).
    pub found_renewed: bool,
}

impl Renewal {
    /// A token fetched for this renewal.
    pub fn fetched(bearer: Bearer) -> Self {
        Renewal {
            bearer,
            found_renewed: false,
        }
    }

    /// A token found already renewed elsewhere, not yet tried against the server.
    pub fn found(bearer: Bearer) -> Self {
        Renewal {
            bearer,
            found_renewed: true,
        }
    }
}

/// When the app last saw its user act (keyboard, pointer, touch), shared between the app's
/// UI code and a [`SessionBearer`], whose refreshes report it
/// ([`RefreshOptions::user_active_at`]): Oracle Health keeps an `online_access` session alive
/// while the user works in the app. Cheap to clone; all clones share one record.
///
/// ```
/// use smart_core::UserActivity;
///
/// let activity = UserActivity::new();
/// assert!(activity.last().is_none());
/// activity.touch(); // call from the app's input handlers (debounced)
/// assert!(activity.last().is_some());
/// ```
#[derive(Debug, Clone, Default)]
pub struct UserActivity(Arc<std::sync::atomic::AtomicU64>);

impl UserActivity {
    /// No activity seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The user acted now.
    pub fn touch(&self) {
        self.touch_at(std::time::SystemTime::now());
    }

    /// The user acted at `at`; an earlier time than the one recorded is ignored.
    pub fn touch_at(&self, at: std::time::SystemTime) {
        let secs = at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.0.fetch_max(secs, std::sync::atomic::Ordering::Relaxed);
    }

    /// When the user last acted (whole seconds), if ever.
    pub fn last(&self) -> Option<std::time::SystemTime> {
        match self.0.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            secs => std::time::UNIX_EPOCH.checked_add(Duration::from_secs(secs)),
        }
    }
}

/// The bearer tokens of a launched session.
///
/// Cheap to create and to clone: a session's FHIR base and adapter come from the client's bearer
/// cache when it holds the session, so an app may build one per request.
#[derive(Debug, Clone)]
pub struct SessionBearer {
    client: SmartClient,
    session: SessionId,
    fhir_base: Arc<str>,
    client_id: Arc<str>,
    adapter: Arc<dyn VendorQuirks>,
    /// `None`: [`default_refresh_margin`] of each token's lifetime.
    margin: Option<Duration>,
    /// Reported on refreshes, when set.
    activity: Option<UserActivity>,
}

impl SmartClient {
    /// A [`BearerSource`] for a stored session, refreshing [`default_refresh_margin`] before
    /// expiry (60 s, or half the token's lifetime when that is shorter).
    ///
    /// Reads the store only when the client's bearer cache does not hold the session.
    pub async fn session_bearer(&self, session: &SessionId) -> Result<SessionBearer, BearerError> {
        if let Some(cached) = self.bearers().get(session) {
            return Ok(SessionBearer {
                client: self.clone(),
                session: session.clone(),
                fhir_base: cached.fhir_base,
                client_id: cached.client_id,
                adapter: cached.adapter,
                margin: None,
                activity: None,
            });
        }
        let stored = self.session(session).await?.ok_or(BearerError::NotFound)?;
        let registration = self.registration_named(&stored.value.registration)?.clone();
        let adapter = match &stored.value.adapter {
            Some(recorded) => self.adapter_of(&stored.value.registration, recorded)?,
            None => {
                let choice = self
                    .decide_adapter(
                        &stored.value.registration,
                        &registration,
                        &stored.value.fhir_base,
                    )
                    .await?;
                self.adapter_of(&stored.value.registration, &choice)?
            }
        };
        let fhir_base: Arc<str> = Arc::from(stored.value.fhir_base.as_str());
        let client_id: Arc<str> = Arc::from(stored.value.client_id.as_str());
        if let Some(snapshot) = CachedSession::of(
            &stored,
            fhir_base.clone(),
            client_id.clone(),
            adapter.clone(),
        ) {
            self.bearers().offer(session, snapshot);
        }
        Ok(SessionBearer {
            client: self.clone(),
            session: session.clone(),
            fhir_base,
            client_id,
            adapter,
            margin: None,
            activity: None,
        })
    }
}

impl SessionBearer {
    /// Refresh when less than `margin` of the token's life is left (instead of
    /// [`default_refresh_margin`]).
    pub fn with_refresh_margin(mut self, margin: Duration) -> Self {
        self.margin = Some(margin);
        self
    }

    /// Report the user's last activity from `activity` on every refresh
    /// ([`RefreshOptions::user_active_at`]).
    pub fn with_user_activity(mut self, activity: UserActivity) -> Self {
        self.activity = Some(activity);
        self
    }

    /// The session id.
    pub fn session_id(&self) -> &SessionId {
        &self.session
    }

    /// Whether `tokens` should be refreshed before use: inside the refresh margin, renewable,
    /// and not inside the server's minimum refresh interval while the token still works
    /// (Oracle Health throttles refreshes to about once a minute).
    fn needs_refresh(&self, snapshot: &CachedSession) -> bool {
        let now = now_unix();
        let throttled = snapshot.refreshed_at.is_some_and(|at| {
            now.saturating_sub(at) < self.adapter.policy().min_refresh_interval.as_secs()
        }) && snapshot.expires_at.is_some_and(|exp| exp > now);
        let margin = self.margin.unwrap_or_else(|| {
            // The lifetime the server granted: from receipt (launch or last refresh) to expiry.
            let lifetime = snapshot
                .expires_at
                .map_or(0, |at| at.saturating_sub(snapshot.received_at));
            default_refresh_margin(Duration::from_secs(lifetime))
        });
        let expiring = snapshot
            .expires_at
            .is_some_and(|at| at <= now.saturating_add(margin.as_secs()));
        expiring && snapshot.refreshable && !throttled
    }

    fn snapshot_of(
        &self,
        stored: &crate::store::Versioned<crate::store::Session>,
    ) -> Option<CachedSession> {
        CachedSession::of(
            stored,
            self.fhir_base.clone(),
            self.client_id.clone(),
            self.adapter.clone(),
        )
    }

    /// The token of a session version this process holds, recorded in the bearer cache.
    fn remember(&self, snapshot: CachedSession) -> Bearer {
        let bearer = Bearer {
            access_token: snapshot.access_token.clone(),
            generation: snapshot.version,
        };
        self.client.bearers().offer(&self.session, snapshot);
        bearer
    }

    /// A refresh (this process's or one it found in the store) ended in `stored`.
    fn after_refresh(
        &self,
        stored: crate::store::Versioned<crate::store::Session>,
    ) -> Result<Bearer, BearerError> {
        match self.snapshot_of(&stored) {
            Some(snapshot) => Ok(self.remember(snapshot)),
            // `refresh` returns only active sessions; an ended one here is a store race.
            None => Err(ended(&stored.value.status)),
        }
    }
}

fn ended(status: &SessionStatus) -> BearerError {
    match status {
        SessionStatus::Ended { reason, .. } => BearerError::SessionEnded {
            reason: reason.clone(),
        },
        SessionStatus::Active => BearerError::SessionEnded {
            reason: "the session could not be read as active".into(),
        },
    }
}

impl SessionBearer {
    fn user_active_at(&self) -> Option<std::time::SystemTime> {
        self.activity.as_ref().and_then(UserActivity::last)
    }
}

#[async_trait]
impl BearerSource for SessionBearer {
    fn fhir_base(&self) -> &str {
        &self.fhir_base
    }

    fn adapter(&self) -> Arc<dyn VendorQuirks> {
        self.adapter.clone()
    }

    fn client_id(&self) -> Option<&str> {
        Some(&self.client_id)
    }

    async fn bearer(&self) -> Result<Bearer, BearerError> {
        let cache = self.client.bearers();
        // The cached snapshot decides as the stored session would: it is that session version.
        if let Some(cached) = cache.get(&self.session)
            && !self.needs_refresh(&cached)
        {
            return Ok(Bearer {
                access_token: cached.access_token,
                generation: cached.version,
            });
        }
        let stored = match self.client.session(&self.session).await? {
            Some(stored) => stored,
            None => {
                cache.forget(&self.session);
                return Err(BearerError::NotFound);
            }
        };
        let Some(snapshot) = self.snapshot_of(&stored) else {
            cache.forget(&self.session);
            return Err(ended(&stored.value.status));
        };
        if self.needs_refresh(&snapshot) {
            let refreshed = self
                .client
                .refresh(
                    &self.session,
                    RefreshOptions {
                        if_version: Some(stored.version),
                        user_active_at: self.user_active_at(),
                        ..RefreshOptions::default()
                    },
                )
                .await?;
            return self.after_refresh(refreshed);
        }
        Ok(self.remember(snapshot))
    }

    async fn after_unauthorized(&self, rejected: &Bearer) -> Result<Bearer, BearerError> {
        self.renew_after_unauthorized(rejected)
            .await
            .map(|renewal| renewal.bearer)
    }

    /// After a `401`: a forced refresh, single-flight across callers that report the same
    /// generation. When the store already holds a newer version than the refused one (another
    /// process refreshed, before this call or while it waited for the lease), that version is
    /// taken as it is — no refresh token spent twice — and reported as
    /// [found](Renewal::found_renewed); a FHIR client that sees that token refused too calls
    /// again, and then the store holds the refused version, so this refreshes for real. Only a
    /// token this call requested itself is reported as fetched.
    async fn renew_after_unauthorized(&self, rejected: &Bearer) -> Result<Renewal, BearerError> {
        // The refused token must not be served again.
        self.client
            .bearers()
            .invalidate(&self.session, rejected.generation);
        let (refreshed, outcome) = self
            .client
            .refresh_with_outcome(
                &self.session,
                RefreshOptions {
                    if_version: Some(rejected.generation),
                    // The server just refused the token: refresh even inside a throttle window.
                    force: true,
                    user_active_at: self.user_active_at(),
                    ..RefreshOptions::default()
                },
            )
            .await?;
        let bearer = self.after_refresh(refreshed)?;
        Ok(match outcome {
            RefreshOutcome::Requested => Renewal::fetched(bearer),
            RefreshOutcome::FoundNewer | RefreshOutcome::Kept => Renewal::found(bearer),
        })
    }
}

#[async_trait]
impl BearerSource for BackendTokenSource {
    fn fhir_base(&self) -> &str {
        self.fhir_base_str()
    }

    fn adapter(&self) -> Arc<dyn VendorQuirks> {
        self.adapter_arc()
    }

    fn client_id(&self) -> Option<&str> {
        self.client_id_str()
    }

    async fn bearer(&self) -> Result<Bearer, BearerError> {
        let token = self.token().await?;
        Ok(Bearer {
            access_token: token.access_token,
            generation: token.generation,
        })
    }

    async fn after_unauthorized(&self, rejected: &Bearer) -> Result<Bearer, BearerError> {
        let token = self.renew_unless_newer(rejected.generation).await?;
        Ok(Bearer {
            access_token: token.access_token,
            generation: token.generation,
        })
    }
}
