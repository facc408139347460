//! Backend services: `client_credentials` with a signed assertion, and a token source that
//! reuses the access token until it nears expiry.
//!
//! Backend tokens are short-lived (SMART recommends 300 s) and there is no refresh grant in this
//! flow: a new token is requested with a new assertion. [`BackendTokenSource::token`] hands out the
//! cached token while it has more than the margin left, and otherwise requests one — once, however
//! many tasks ask at the same moment (they wait on the same lock and then share the result).

use std::sync::Arc;
use std::time::Duration;

use smart_scopes::Scopes;
use tokio::sync::Mutex;

use crate::bearer::default_refresh_margin;
use crate::client::{LaunchError, SmartClient};
use crate::config::ClientAuth;
use crate::error::{ConfigError, DiscoveryError, TokenError};
use crate::protocol_strings::{ClientId, FhirBase};
use crate::quirks::{HookContext, TokenGrant, VendorQuirks};
use crate::secret::AccessToken;
use crate::token::{UnixTime, now_unix};

/// A backend access token.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendToken {
    /// The bearer token.
    pub access_token: AccessToken,
    /// When it expires (when the server said; otherwise the source assumes 300 s).
    pub expires_at: UnixTime,
    /// The granted scopes (the requested ones when the server did not say).
    pub scopes: Scopes,
    /// Counts the tokens this source has obtained (1 for the first).
    pub generation: u64,
}

/// Why a backend token could not be obtained.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The registration is missing or not asymmetric.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Discovery failed.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The server does not offer backend services to this client.
    #[error("{0}")]
    NotSupported(String),
    /// The token request failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// A check shared with launches refused the registration (e.g. the server does not
    /// advertise its client-authentication method); the launch error is kept whole.
    #[error(transparent)]
    Launch(Box<LaunchError>),
}

impl BackendError {
    /// What the failure means for the app (each wrapped layer keeps its kind).
    pub fn kind(&self) -> crate::error_kind::ErrorKind {
        match self {
            BackendError::Config(e) => e.kind(),
            BackendError::Discovery(e) => e.kind(),
            BackendError::NotSupported(_) => crate::error_kind::ErrorKind::Misconfigured,
            BackendError::Token(e) => e.kind(),
            BackendError::Launch(e) => e.kind(),
        }
    }

    /// Whether retrying later may succeed.
    pub fn is_temporary(&self) -> bool {
        self.kind().is_temporary()
    }
}

impl From<LaunchError> for BackendError {
    fn from(e: LaunchError) -> Self {
        match e {
            LaunchError::Discovery(d) => BackendError::Discovery(d),
            LaunchError::Token(t) => BackendError::Token(t),
            LaunchError::Config(c) => BackendError::Config(c),
            other => BackendError::Launch(Box::new(other)),
        }
    }
}

/// Hands out a backend access token, requesting a new one only when the cached one nears expiry.
#[derive(Debug, Clone)]
pub struct BackendTokenSource {
    client: SmartClient,
    registration: String,
    fhir_base: FhirBase,
    client_id: ClientId,
    adapter: Arc<dyn VendorQuirks>,
    scopes: Scopes,
    /// `None`: [`default_refresh_margin`] of each token's lifetime.
    margin: Option<Duration>,
    cached: Arc<Mutex<Option<Cached>>>,
}

/// A cached token and when it was obtained (for its lifetime).
#[derive(Debug, Clone)]
struct Cached {
    token: BackendToken,
    obtained_at: UnixTime,
}

impl Cached {
    /// Whether the token is still good for more than the margin: `margin`, or by default
    /// `min(60 s, lifetime / 2)`, so that a 60-second token is not renewed on every call.
    fn fresh(&self, now: UnixTime, margin: Option<Duration>) -> bool {
        let margin = margin.unwrap_or_else(|| {
            let lifetime = self.token.expires_at.saturating_sub(self.obtained_at);
            default_refresh_margin(Duration::from_secs(lifetime))
        });
        self.token.expires_at > now.saturating_add(margin.as_secs())
    }
}

/// The lifetime assumed when a server omits `expires_in` (SMART's recommended maximum).
const ASSUMED_LIFETIME: u64 = 300;

impl SmartClient {
    /// A token source for the backend-services registration `registration`, asking for `scopes`
    /// (usually `system/…`), renewing [`default_refresh_margin`] before expiry (60 s, or half the
    /// token's lifetime when that is shorter).
    ///
    /// SMART Backend Services authenticates with `private_key_jwt` (a confidential-asymmetric
    /// registration). A confidential-symmetric registration is accepted too and authenticates
    /// with its secret (`client_secret_basic`), as Oracle Health's system accounts do; the server
    /// must advertise that method. A public registration is refused.
    pub fn backend_token_source(
        &self,
        registration: &str,
        scopes: Scopes,
    ) -> Result<BackendTokenSource, BackendError> {
        let reg = self.registration_named(registration)?;
        if matches!(reg.auth, ClientAuth::Public) {
            return Err(BackendError::NotSupported(format!(
                "registration `{registration}` is public; backend services need a confidential registration (private_key_jwt, or a client secret where the server accepts one)"
            )));
        }
        let adapter = self.adapter_for(reg)?.clone();
        Ok(BackendTokenSource {
            client: self.clone(),
            registration: registration.to_owned(),
            fhir_base: FhirBase::new(reg.issuer.as_str()),
            client_id: reg.client_id.clone(),
            adapter,
            scopes,
            margin: None,
            cached: Arc::new(Mutex::new(None)),
        })
    }
}

impl BackendTokenSource {
    /// Renew when less than `margin` is left (instead of [`default_refresh_margin`]).
    pub fn with_margin(mut self, margin: Duration) -> Self {
        self.margin = Some(margin);
        self
    }

    /// A valid access token: the cached one, or a new one.
    #[tracing::instrument(name = "smart.backend_token", skip_all, fields(registration = %self.registration))]
    pub async fn token(&self) -> Result<BackendToken, BackendError> {
        let mut cached = self.cached.lock().await;
        if let Some(entry) = cached.as_ref()
            && entry.fresh(now_unix(), self.margin)
        {
            return Ok(entry.token.clone());
        }
        let generation = cached
            .as_ref()
            .map_or(1, |c| c.token.generation.saturating_add(1));
        let obtained_at = now_unix();
        let token = self.request(generation).await?;
        *cached = Some(Cached {
            token: token.clone(),
            obtained_at,
        });
        Ok(token)
    }

    /// After a 401 on the token of `generation`: a new token, unless one newer than it is
    /// already cached (another task got there first).
    pub async fn renew_unless_newer(&self, generation: u64) -> Result<BackendToken, BackendError> {
        {
            let mut cached = self.cached.lock().await;
            match cached.as_mut() {
                Some(entry) if entry.token.generation > generation => {
                    return Ok(entry.token.clone());
                }
                Some(entry) => entry.token.expires_at = 0,
                None => {}
            }
        }
        self.token().await
    }

    pub(crate) fn fhir_base_str(&self) -> &str {
        &self.fhir_base
    }

    pub(crate) fn client_id_str(&self) -> Option<&str> {
        Some(&self.client_id)
    }

    pub(crate) fn adapter_arc(&self) -> Arc<dyn VendorQuirks> {
        self.adapter.clone()
    }

    /// Drops the cached token (e.g. after the server answered 401 to it).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    async fn request(&self, generation: u64) -> Result<BackendToken, BackendError> {
        let reg = self.client.registration_named(&self.registration)?.clone();
        let choice = self
            .client
            .decide_adapter(&self.registration, &reg, &reg.issuer)
            .await?;
        let quirks = self.client.adapter_of(&self.registration, &choice)?;
        let ctx = HookContext::new(&reg.issuer)
            .with_registration(&self.registration, &reg)
            .with_grant(TokenGrant::ClientCredentials);
        let discovered = self.client.discover_with(&*quirks, &ctx).await?;
        let config = &discovered.configuration;
        if !config.grant_types_supported.is_empty()
            && !config
                .grant_types_supported
                .iter()
                .any(|g| g == "client_credentials")
        {
            return Err(BackendError::NotSupported(format!(
                "{} does not list client_credentials in grant_types_supported, so it offers no backend services",
                reg.issuer
            )));
        }
        crate::client::check_auth_method(config, &reg, &reg.issuer)?;
        let form = vec![
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("scope".to_owned(), self.scopes.to_string()),
        ];
        let response = self
            .client
            .token_call(&reg, &*quirks, &ctx, &config.token_endpoint, form)
            .await?;
        if response.tokens.refresh_token.is_some() {
            tracing::debug!(
                "the server issued a refresh token for client_credentials; ignoring it"
            );
        }
        let now = now_unix();
        Ok(BackendToken {
            access_token: response.tokens.access_token,
            expires_at: response
                .tokens
                .expires_at
                .unwrap_or_else(|| now.saturating_add(ASSUMED_LIFETIME)),
            scopes: response
                .tokens
                .granted_scopes
                .unwrap_or_else(|| self.scopes.clone()),
            generation,
        })
    }
}
