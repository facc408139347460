//! Bearer tokens for FHIR requests, kept fresh.
//!
//! A FHIR client should not care whether its token came from a launched session or a backend
//! service, nor when it expires. [`BearerSource`] hides both: [`bearer`](BearerSource::bearer)
//! returns a token refreshed ahead of expiry, and
//! [`after_unauthorized`](BearerSource::after_unauthorized) is called once when a server answers
//! `401 invalid_token` to it.
//!
//! Each [`Bearer`] carries the **generation** it came from (the session's store version). When
//! many requests fail with the same expired token at once, they all report that generation, and
//! the session refresh (single-flight through the store's lease) runs once: the first caller
//! refreshes, the others find the generation already moved on and take the new token.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::backend::{BackendError, BackendTokenSource};
use crate::client::{RefreshError, RefreshOptions, SmartClient};
use crate::quirks::VendorQuirks;
use crate::secret::AccessToken;
use crate::store::{SessionId, SessionStatus, StoreError};
use crate::token::now_unix;

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
}

/// The bearer tokens of a launched session.
#[derive(Debug, Clone)]
pub struct SessionBearer {
    client: SmartClient,
    session: SessionId,
    fhir_base: String,
    client_id: String,
    adapter: Arc<dyn VendorQuirks>,
    /// `None`: [`default_refresh_margin`] of each token's lifetime.
    margin: Option<Duration>,
}

impl SmartClient {
    /// A [`BearerSource`] for a stored session, refreshing [`default_refresh_margin`] before
    /// expiry (60 s, or half the token's lifetime when that is shorter).
    pub async fn session_bearer(&self, session: &SessionId) -> Result<SessionBearer, BearerError> {
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
        Ok(SessionBearer {
            client: self.clone(),
            session: session.clone(),
            fhir_base: stored.value.fhir_base,
            client_id: stored.value.client_id,
            adapter,
            margin: None,
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

    /// The session id.
    pub fn session_id(&self) -> &SessionId {
        &self.session
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
        let stored = self
            .client
            .session(&self.session)
            .await?
            .ok_or(BearerError::NotFound)?;
        if let SessionStatus::Ended { reason, .. } = &stored.value.status {
            return Err(BearerError::SessionEnded {
                reason: reason.clone(),
            });
        }
        let tokens = &stored.value.tokens;
        let now = now_unix();
        // Servers that throttle refreshes (Oracle Health: about once a minute) get no proactive
        // refresh inside their interval while the token still works.
        let throttled = stored.value.refreshed_at.is_some_and(|at| {
            now.saturating_sub(at) < self.adapter.policy().min_refresh_interval.as_secs()
        }) && tokens.expires_at.is_some_and(|exp| exp > now);
        let margin = self.margin.unwrap_or_else(|| {
            // The lifetime the server granted: from receipt (launch or last refresh) to expiry.
            let lifetime = tokens
                .expires_at
                .map_or(0, |at| at.saturating_sub(tokens.received_at));
            default_refresh_margin(Duration::from_secs(lifetime))
        });
        if tokens.expires_within(now, margin) && tokens.refresh_token.is_some() && !throttled {
            let refreshed = self
                .client
                .refresh(
                    &self.session,
                    RefreshOptions {
                        if_version: Some(stored.version),
                        ..RefreshOptions::default()
                    },
                )
                .await?;
            return Ok(Bearer {
                access_token: refreshed.value.tokens.access_token,
                generation: refreshed.version,
            });
        }
        Ok(Bearer {
            access_token: tokens.access_token.clone(),
            generation: stored.version,
        })
    }

    async fn after_unauthorized(&self, rejected: &Bearer) -> Result<Bearer, BearerError> {
        let refreshed = self
            .client
            .refresh(
                &self.session,
                RefreshOptions {
                    if_version: Some(rejected.generation),
                    // The server just refused the token: refresh even inside a throttle window.
                    force: true,
                    ..RefreshOptions::default()
                },
            )
            .await?;
        Ok(Bearer {
            access_token: refreshed.value.tokens.access_token,
            generation: refreshed.version,
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
