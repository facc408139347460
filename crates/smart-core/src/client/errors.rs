//! The errors of the launch and refresh flows.

use crate::error::{ConfigError, DiscoveryError, OAuthError, TokenError};
use crate::identity::IdentityError;
use crate::store::{Session, StoreError};

use super::launch::MIN_BROWSER_BINDING_CHARS;

/// Failure to begin or complete a launch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// No registration covers this issuer. Nothing was sent anywhere.
    #[error(
        "issuer {iss} is not registered; add a client registration for it (refusing to contact an unknown server)"
    )]
    UnknownIssuer {
        /// The issuer as received.
        iss: String,
    },
    /// A named registration does not exist.
    #[error("no client registration named `{name}`")]
    UnknownRegistration {
        /// The name.
        name: String,
    },
    /// A named registration does not cover the issuer.
    #[error("registration `{name}` is not for issuer {iss}")]
    RegistrationIssuerMismatch {
        /// The registration.
        name: String,
        /// The issuer.
        iss: String,
    },
    /// Discovery failed.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The server has no authorization endpoint (it only supports backend services).
    #[error(
        "{base} advertises no authorization_endpoint, so it cannot do EHR or standalone launches"
    )]
    NoAuthorizationEndpoint {
        /// The FHIR base.
        base: String,
    },
    /// The redirect carried no `state`. Nothing was exchanged.
    #[error(
        "the redirect has no `state` parameter; refusing it (possible CSRF). Start a new launch"
    )]
    MissingState,
    /// The `state` is unknown, expired or already used. Nothing was exchanged.
    #[error(
        "the redirect's `state` is unknown, expired or already used; refusing it (possible CSRF or replay). Start a new launch"
    )]
    UnknownState,
    /// The browser-binding value passed in the launch options is too short to be unguessable.
    #[error(
        "the browser-binding value passed to begin the launch has {chars} characters; use at least {MIN_BROWSER_BINDING_CHARS} random base64url characters (128 bits), or leave it out for a generated one"
    )]
    WeakBrowserBinding {
        /// Its length in characters.
        chars: usize,
    },
    /// The callback came without the launch's browser-binding value (the app did not pass the
    /// cookie it set at begin, or the redirect arrived in another browser). The pending launch is
    /// consumed; nothing was exchanged.
    #[error(
        "the redirect came without this launch's browser-binding value (the cookie set when the launch began); refusing it (possible login CSRF). Start a new launch in this browser"
    )]
    MissingBrowserBinding,
    /// The callback's browser-binding value is not the one issued with this launch's `state`. The
    /// pending launch is consumed; nothing was exchanged.
    #[error(
        "the redirect's `state` was issued to another browser (the browser-binding value does not match); refusing it (possible login CSRF or session swapping). Start a new launch"
    )]
    BrowserBindingMismatch,
    /// The server advertises `authorization_response_iss_parameter_supported`, but the
    /// authorization response has no `iss` (RFC 9207). Nothing was exchanged.
    #[error(
        "the redirect has no `iss` parameter although {expected} says it always sends one (RFC 9207); refusing it (possible mix-up attack). Start a new launch"
    )]
    MissingIssuerParameter {
        /// The authorization server issuer expected.
        expected: String,
    },
    /// The authorization response's `iss` is not the authorization server the request was sent
    /// to (RFC 9207). Nothing was exchanged.
    #[error(
        "the redirect's `iss` is `{found}`, but the authorization request went to {expected}; refusing it (possible mix-up attack). Start a new launch"
    )]
    IssuerParameterMismatch {
        /// The authorization server issuer expected.
        expected: String,
        /// The `iss` received (an excerpt, control characters escaped).
        found: String,
    },
    /// The redirect carried neither `code` nor `error`.
    #[error("the redirect has no authorization `code`; start a new launch")]
    MissingCode,
    /// The authorization server redirected back with an error.
    #[error("authorization failed: {0}")]
    Authorization(OAuthError),
    /// The code exchange failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The store failed.
    #[error("launch state storage failed: {0}")]
    Store(#[from] StoreError),
    /// The registration names an adapter that is not installed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The registration cannot launch (a backend-services registration has no redirect URI).
    #[error(
        "registration `{name}` has no redirect_uri, so it can only be used for backend services"
    )]
    NotALaunchRegistration {
        /// The registration.
        name: String,
    },
    /// The server does not advertise the registration's client-authentication method.
    #[error(
        "{base} does not advertise `{method}` in token_endpoint_auth_methods_supported (it offers: {offered}); change the registration's client type"
    )]
    AuthMethodNotAdvertised {
        /// The FHIR base.
        base: String,
        /// The method the registration needs.
        method: String,
        /// What the server offers.
        offered: String,
    },
    /// `openid` was granted but the `id_token` did not verify. No session was stored.
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

impl LaunchError {
    /// What the failure means for the app: a refused callback (state, browser binding, `iss`,
    /// missing code) needs a new launch; an authorization error keeps its OAuth code's kind
    /// (`access_denied` is a denial); configuration problems are
    /// [`ErrorKind::Misconfigured`](crate::error_kind::ErrorKind::Misconfigured); wrapped layers
    /// keep theirs.
    pub fn kind(&self) -> crate::error_kind::ErrorKind {
        use crate::error_kind::ErrorKind;
        match self {
            LaunchError::UnknownIssuer { .. }
            | LaunchError::UnknownRegistration { .. }
            | LaunchError::RegistrationIssuerMismatch { .. }
            | LaunchError::NoAuthorizationEndpoint { .. }
            | LaunchError::WeakBrowserBinding { .. }
            | LaunchError::NotALaunchRegistration { .. }
            | LaunchError::AuthMethodNotAdvertised { .. } => ErrorKind::Misconfigured,
            LaunchError::MissingState
            | LaunchError::UnknownState
            | LaunchError::MissingBrowserBinding
            | LaunchError::BrowserBindingMismatch
            | LaunchError::MissingIssuerParameter { .. }
            | LaunchError::IssuerParameterMismatch { .. }
            | LaunchError::MissingCode => ErrorKind::RelaunchNeeded,
            LaunchError::Discovery(e) => e.kind(),
            LaunchError::Authorization(e) => e.kind(),
            LaunchError::Token(e) => e.kind(),
            LaunchError::Store(e) => e.kind(),
            LaunchError::Config(e) => e.kind(),
            LaunchError::Identity(e) => e.kind(),
        }
    }

    /// Whether retrying later may succeed.
    pub fn is_temporary(&self) -> bool {
        self.kind().is_temporary()
    }
}

/// Failure to refresh a session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// No such session.
    #[error("session not found; start a new launch")]
    NotFound,
    /// The session has ended.
    #[error("the session has ended ({reason}); start a new launch")]
    Ended {
        /// Why it ended.
        reason: String,
    },
    /// The session has no refresh token (none was granted: request `offline_access` or
    /// `online_access`, and check the server's policy).
    #[error(
        "the session has no refresh token; request offline_access or online_access, or relaunch when the token expires"
    )]
    NoRefreshToken,
    /// A narrower scope was asked for that is not part of the grant.
    #[error("scope `{scope}` was not granted to this session, so a refresh cannot request it")]
    ScopeNotGranted {
        /// The scope.
        scope: String,
    },
    /// The server rejected the refresh token; the session is now ended.
    #[error(
        "the server rejected the refresh token, so the session has ended; start a new launch ({0})"
    )]
    Rejected(#[source] TokenError),
    /// The refresh request failed for another reason; the session is unchanged.
    #[error(transparent)]
    Token(TokenError),
    /// Another worker held the refresh lease for too long.
    #[error("timed out waiting for another worker's refresh of this session")]
    LeaseTimeout,
    /// The token request did not finish within the refresh lease (its TTL less a safety
    /// margin), so it was abandoned before another worker could take the lease over; the session
    /// is unchanged. Retry; if it keeps happening, raise the lease TTL.
    #[error(
        "the refresh request did not finish within the refresh lease ({budget:?} left); the session is unchanged, retry"
    )]
    LeaseExpiring {
        /// How long the request was given.
        budget: std::time::Duration,
    },
    /// The store failed.
    #[error("session storage failed: {0}")]
    Store(#[from] StoreError),
    /// The session's registration or adapter is no longer configured.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A session recorded before adapters were recorded needed adapter detection, and the
    /// server's configuration could not be discovered.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The server issued new tokens but the store could not save them. The refreshed session is
    /// here, new (possibly rotated) refresh token included: the old refresh token may no longer
    /// work, so save this one somewhere or the grant is lost.
    #[error(
        "the server issued new tokens but they could not be saved ({source}); the refreshed session is in this error, keep it or the grant may be lost"
    )]
    NotSaved {
        /// The refreshed session, new tokens included.
        session: Box<Session>,
        /// Why the store refused it.
        source: StoreError,
    },
}

impl RefreshError {
    /// What the failure means for the app: a missing, ended or rejected session means signing in
    /// again; a lease timeout is temporary; tokens that could not be saved are a storage problem;
    /// wrapped layers keep their kind.
    pub fn kind(&self) -> crate::error_kind::ErrorKind {
        use crate::error_kind::ErrorKind;
        match self {
            RefreshError::NotFound | RefreshError::Ended { .. } | RefreshError::Rejected(_) => {
                ErrorKind::SessionEnded
            }
            RefreshError::NoRefreshToken => ErrorKind::RelaunchNeeded,
            RefreshError::ScopeNotGranted { .. } | RefreshError::Config(_) => {
                ErrorKind::Misconfigured
            }
            RefreshError::Token(e) => e.kind(),
            RefreshError::LeaseTimeout | RefreshError::LeaseExpiring { .. } => ErrorKind::Temporary,
            RefreshError::Store(e) => e.kind(),
            RefreshError::Discovery(e) => e.kind(),
            RefreshError::NotSaved { .. } => ErrorKind::Storage,
        }
    }

    /// Whether retrying later may succeed.
    pub fn is_temporary(&self) -> bool {
        self.kind().is_temporary()
    }
}
