//! Errors, one enum per layer.
//!
//! Each message says what failed and what to do next, because the person reading it is usually
//! an integrator looking at a log line from a hospital's deployment. No message or field ever
//! contains a token, code, verifier or secret: URLs are reduced to scheme, host and path, and
//! server-provided descriptions are the only free text carried over.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::http::{HttpError, InsecureUrl};

/// An OAuth 2.0 error code (RFC 6749 §4.1.2.1 and §5.2), from a redirect or a token response.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
#[non_exhaustive]
pub enum OAuthErrorCode {
    /// `invalid_request`
    InvalidRequest,
    /// `invalid_client`
    InvalidClient,
    /// `invalid_grant`
    InvalidGrant,
    /// `unauthorized_client`
    UnauthorizedClient,
    /// `unsupported_grant_type`
    UnsupportedGrantType,
    /// `unsupported_response_type`
    UnsupportedResponseType,
    /// `invalid_scope`
    InvalidScope,
    /// `access_denied`
    AccessDenied,
    /// `server_error`
    ServerError,
    /// `temporarily_unavailable`
    TemporarilyUnavailable,
    /// Any other code, verbatim.
    Other(String),
}

impl OAuthErrorCode {
    /// The wire form.
    pub fn as_str(&self) -> &str {
        match self {
            OAuthErrorCode::InvalidRequest => "invalid_request",
            OAuthErrorCode::InvalidClient => "invalid_client",
            OAuthErrorCode::InvalidGrant => "invalid_grant",
            OAuthErrorCode::UnauthorizedClient => "unauthorized_client",
            OAuthErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            OAuthErrorCode::UnsupportedResponseType => "unsupported_response_type",
            OAuthErrorCode::InvalidScope => "invalid_scope",
            OAuthErrorCode::AccessDenied => "access_denied",
            OAuthErrorCode::ServerError => "server_error",
            OAuthErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            OAuthErrorCode::Other(s) => s,
        }
    }

    /// Whether retrying later may succeed.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            OAuthErrorCode::ServerError | OAuthErrorCode::TemporarilyUnavailable
        )
    }

    /// What a person should do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            OAuthErrorCode::AccessDenied => {
                "the user or the EHR's policy denied access; offer to try again"
            }
            OAuthErrorCode::InvalidClient => {
                "the server did not accept the client credentials; check client_id, secret or keys in the registration"
            }
            OAuthErrorCode::InvalidGrant => {
                "the code or refresh token was rejected (expired, reused, wrong redirect_uri or PKCE verifier); start a new launch"
            }
            OAuthErrorCode::InvalidScope => {
                "the server rejected the requested scopes; request fewer scopes or the other scope syntax (v1/v2)"
            }
            OAuthErrorCode::UnauthorizedClient => {
                "the client is not allowed this grant or launch; check the app's registration with the EHR"
            }
            OAuthErrorCode::UnsupportedGrantType | OAuthErrorCode::UnsupportedResponseType => {
                "the server does not support this flow; check its smart-configuration"
            }
            OAuthErrorCode::InvalidRequest => {
                "the server rejected the request as malformed; this is likely a configuration or interoperability problem"
            }
            OAuthErrorCode::ServerError | OAuthErrorCode::TemporarilyUnavailable => {
                "the server had a temporary problem; try again later"
            }
            OAuthErrorCode::Other(_) => "see the server's error description",
        }
    }
}

impl From<String> for OAuthErrorCode {
    fn from(s: String) -> Self {
        match s.as_str() {
            "invalid_request" => OAuthErrorCode::InvalidRequest,
            "invalid_client" => OAuthErrorCode::InvalidClient,
            "invalid_grant" => OAuthErrorCode::InvalidGrant,
            "unauthorized_client" => OAuthErrorCode::UnauthorizedClient,
            "unsupported_grant_type" => OAuthErrorCode::UnsupportedGrantType,
            "unsupported_response_type" => OAuthErrorCode::UnsupportedResponseType,
            "invalid_scope" => OAuthErrorCode::InvalidScope,
            "access_denied" => OAuthErrorCode::AccessDenied,
            "server_error" => OAuthErrorCode::ServerError,
            "temporarily_unavailable" => OAuthErrorCode::TemporarilyUnavailable,
            _ => OAuthErrorCode::Other(s),
        }
    }
}

impl From<OAuthErrorCode> for String {
    fn from(c: OAuthErrorCode) -> String {
        c.as_str().to_owned()
    }
}

impl fmt::Display for OAuthErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An OAuth error as the server reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthError {
    /// The error code.
    pub code: OAuthErrorCode,
    /// `error_description`, if sent.
    pub description: Option<String>,
    /// `error_uri`, if sent (Oracle Health sends one with `invalid_client`).
    pub uri: Option<String>,
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(d) = &self.description {
            write!(f, " ({d})")?;
        }
        if let Some(u) = &self.uri {
            write!(f, " [see {u}]")?;
        }
        write!(f, ": {}", self.code.hint())
    }
}

/// Failure to discover a server's SMART configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The FHIR base is not a URL.
    #[error(
        "FHIR base `{base}` is not a valid URL ({reason}); pass an absolute URL such as https://ehr.example.org/fhir"
    )]
    InvalidBase {
        /// The base as given.
        base: String,
        /// The parser's complaint.
        reason: String,
    },
    /// The base or an endpoint fails the TLS policy.
    #[error(transparent)]
    Insecure(#[from] InsecureUrl),
    /// The server could not be reached.
    #[error("discovery failed: {0}")]
    Http(#[from] HttpError),
    /// Neither `.well-known/smart-configuration` nor the CapabilityStatement described a SMART
    /// authorization server.
    #[error("{base} does not look like a SMART server: {detail}; check the FHIR base URL")]
    NotSmart {
        /// The FHIR base.
        base: String,
        /// What each source returned.
        detail: String,
    },
    /// An advertised endpoint is not a usable URL.
    #[error("the server advertises an invalid {field}: `{value}`")]
    InvalidEndpoint {
        /// The configuration field.
        field: &'static str,
        /// Its (redacted) value.
        value: String,
    },
}

/// Failure at the token endpoint (code exchange or refresh).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// No response.
    #[error("token request failed: {0}")]
    Http(#[from] HttpError),
    /// The token endpoint fails the TLS policy.
    #[error(transparent)]
    Insecure(#[from] InsecureUrl),
    /// The server answered with an OAuth error.
    #[error("token endpoint refused the request (HTTP {status}): {error}")]
    OAuth {
        /// HTTP status.
        status: u16,
        /// The server's error.
        error: OAuthError,
    },
    /// The client could not authenticate (e.g. the assertion could not be signed).
    #[error("client authentication failed before sending: {0}")]
    ClientAuthentication(String),
    /// The server answered with something that is not a valid token response.
    #[error("token endpoint sent an invalid response (HTTP {status}): {detail}")]
    InvalidResponse {
        /// HTTP status.
        status: u16,
        /// What was wrong (never the body itself: it may hold tokens).
        detail: String,
    },
}

impl TokenError {
    /// The OAuth error code, when the server sent one.
    pub fn oauth_code(&self) -> Option<&OAuthErrorCode> {
        match self {
            TokenError::OAuth { error, .. } => Some(&error.code),
            _ => None,
        }
    }
}

/// Failure to load the framework's configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file or environment could not be read or has the wrong shape.
    #[error("configuration error: {0}")]
    Load(String),
    /// A value is present but wrong.
    #[error("configuration error in {field}: {message}")]
    Invalid {
        /// Where (e.g. `clients[0].redirect_uri`).
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}
