//! Errors, one enum per layer.
//!
//! Each message says what failed and what to do next, because the person reading it is usually
//! an integrator looking at a log line from a hospital's deployment. No message or field ever
//! contains a token, code, verifier or secret: URLs are reduced to scheme, host and path, and
//! server-provided descriptions are the only free text carried over.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error_kind::ErrorKind;
use crate::http::{HttpError, InsecureUrl};
use crate::server_text::{escape_controls, excerpt};

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

    /// What the code means for the app: `access_denied` is a denial, `invalid_grant` needs a new
    /// launch, `server_error` and `temporarily_unavailable` are temporary, an unknown code is the
    /// server's problem, and every other code points at the registration or request.
    pub fn kind(&self) -> ErrorKind {
        match self {
            OAuthErrorCode::AccessDenied => ErrorKind::Denied,
            OAuthErrorCode::InvalidGrant => ErrorKind::RelaunchNeeded,
            OAuthErrorCode::ServerError | OAuthErrorCode::TemporarilyUnavailable => {
                ErrorKind::Temporary
            }
            OAuthErrorCode::Other(_) => ErrorKind::ServerBroken,
            OAuthErrorCode::InvalidRequest
            | OAuthErrorCode::InvalidClient
            | OAuthErrorCode::UnauthorizedClient
            | OAuthErrorCode::UnsupportedGrantType
            | OAuthErrorCode::UnsupportedResponseType
            | OAuthErrorCode::InvalidScope => ErrorKind::Misconfigured,
        }
    }

    /// What a person should do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            OAuthErrorCode::AccessDenied => {
                "the user or the EHR's policy denied access; offer to try again"
            }
            OAuthErrorCode::InvalidClient => {
                "the server did not accept the client credentials; check the registration's client_id and its secret or keys"
            }
            OAuthErrorCode::InvalidGrant => {
                "the code or refresh token was rejected (expired, already used, or another redirect_uri or PKCE verifier than the authorization request); it cannot be used again"
            }
            OAuthErrorCode::InvalidScope => {
                "the server rejected the requested scopes; its description should say which"
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

impl OAuthError {
    /// What the error means for the app ([`OAuthErrorCode::kind`]).
    pub fn kind(&self) -> ErrorKind {
        self.code.kind()
    }

    /// Whether retrying later may succeed.
    pub fn is_temporary(&self) -> bool {
        self.kind().is_temporary()
    }

    /// What a person should do about it: a hint recognised from the server's code and
    /// description ([`hint_for_server_text`]), or the code's general [`OAuthErrorCode::hint`].
    pub fn hint(&self) -> Cow<'static, str> {
        hint_for_server_text(Some(&self.code), self.description.as_deref().unwrap_or(""))
            .unwrap_or(Cow::Borrowed(self.code.hint()))
    }
}

/// The longest excerpt of an `error_description` put into a message.
pub(crate) const MAX_DESCRIPTION_CHARS: usize = 300;

impl fmt::Display for OAuthError {
    /// The code, the server's description and `error_uri` (control characters escaped, cut to
    /// a few hundred characters) and the hint.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", escape_controls(self.code.as_str()))?;
        if let Some(d) = &self.description {
            write!(f, " ({})", excerpt(d, MAX_DESCRIPTION_CHARS))?;
        }
        if let Some(u) = &self.uri {
            write!(f, " [see {}]", excerpt(u, MAX_DESCRIPTION_CHARS))?;
        }
        write!(f, ": {}", self.hint())
    }
}

/// A hint chosen from what a server said, when it is recognisable.
///
/// `text` is whatever the server sent as explanation: an `error_description`, or the visible text
/// of an error page. Recognised, in this order:
///
/// - an unregistered or mismatched **redirect URI**;
/// - an **unknown client** (`invalid_client` without a credentials complaint, "unknown client");
/// - an **`aud`** that is not the server's FHIR base, and specifically when a trailing `/` is the
///   only difference between two URLs the server quotes;
/// - a **scope** problem: wildcards refused, a syntax the server does not understand (SMART v1
///   `.read` against v2 `.rs`), scopes the client is not allowed, or no scope at all.
///
/// `None` when nothing is recognised; the caller then uses a general hint.
///
/// ```
/// use smart_core::error::hint_for_server_text;
///
/// let hint = hint_for_server_text(None, r#"aud "https://e/fhir/" does not match "https://e/fhir""#)
///     .expect("recognised");
/// assert!(hint.contains("trailing slash"));
/// assert!(hint_for_server_text(None, "the moon is made of cheese").is_none());
/// ```
pub fn hint_for_server_text(
    code: Option<&OAuthErrorCode>,
    text: &str,
) -> Option<Cow<'static, str>> {
    // Only the start of the text is looked at: recognition stays cheap whatever the server sent.
    let text = match text.char_indices().nth(2000) {
        Some((cut, _)) => &text[..cut],
        None => text,
    };
    let head = text.to_lowercase();
    let words: Vec<&str> = head
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
        .filter(|w| !w.is_empty())
        .collect();
    let has_word = |w: &str| words.contains(&w);
    let has = |needle: &str| head.contains(needle);
    let has_any = |needles: &[&str]| needles.iter().any(|n| head.contains(n));
    const REJECTED: &[&str] = &[
        "not registered",
        "unregistered",
        "mismatch",
        "does not match",
        "doesn't match",
        "not match",
        "invalid",
        "not allowed",
        "not permitted",
        "unknown",
        "not found",
        "not recognized",
        "not recognised",
    ];

    // Client and redirect-URI complaints are recognised per sentence: error pages often add a
    // general line ("the client_id or redirect_uri could not be verified") that names both.
    let sentences: Vec<&str> = head
        .split(". ")
        .flat_map(|s| s.split(['\n', ';', '!']))
        .collect();
    let mentions_redirect = |s: &str| {
        [
            "redirect_uri",
            "redirect uri",
            "redirect-uri",
            "redirecturi",
        ]
        .iter()
        .any(|n| s.contains(n))
    };
    let mentions_client_id = |s: &str| s.contains("client_id") || s.contains("client id");
    let rejects = |s: &str| REJECTED.iter().any(|n| s.contains(n));
    let credentials_complaint = has_any(&[
        "secret",
        "assertion",
        "signature",
        "password",
        "credential",
        "authenticat",
        "jwks",
        "kid",
    ]);
    let unknown_client_phrase = |s: &str| {
        [
            "unknown client",
            "client not found",
            "no such client",
            "unregistered client",
            "client is not registered",
            "client not registered",
        ]
        .iter()
        .any(|n| s.contains(n))
    };
    let redirect_sentence = sentences.iter().any(|s| {
        // "… is not registered for client X" is about the redirect URI; a sentence naming the
        // client_id too ("client_id or redirect_uri is invalid") is about neither in particular.
        let names_client_id_too = mentions_client_id(s) && !s.contains("for client");
        mentions_redirect(s) && rejects(s) && !names_client_id_too
    });
    let client_sentence = sentences.iter().any(|s| {
        !mentions_redirect(s)
            && (unknown_client_phrase(s)
                || (mentions_client_id(s)
                    && [
                        "unknown",
                        "not found",
                        "not registered",
                        "invalid",
                        "not recognized",
                    ]
                    .iter()
                    .any(|n| s.contains(n))))
    });
    if redirect_sentence && !client_sentence {
        return Some(Cow::Borrowed(
            "the EHR does not accept this redirect_uri for the client: register it with the EHR exactly as the app sends it (compared character for character), or fix the registration's redirect_uri",
        ));
    }
    if client_sentence && !credentials_complaint {
        return Some(Cow::Borrowed(
            "the EHR does not know this client_id: check the registration's client_id and that the app is registered with this EHR (test and production EHRs usually issue different ids)",
        ));
    }

    // An `aud` complaint with invalid_client is about a client assertion, not the FHIR base.
    if (has_word("aud") || has_word("audience")) && code != Some(&OAuthErrorCode::InvalidClient) {
        if differ_only_by_trailing_slash(text) {
            return Some(Cow::Borrowed(
                "the aud sent and the server's FHIR base differ only by a trailing slash: configure the FHIR base exactly as the server names it, with or without the final /",
            ));
        }
        return Some(Cow::Borrowed(
            "the aud parameter (the FHIR base URL the app sent) is not what the server expects: use the FHIR base URL exactly as the EHR publishes it",
        ));
    }

    let about_scope =
        code == Some(&OAuthErrorCode::InvalidScope) || has_word("scope") || has_word("scopes");
    if about_scope {
        if has("wildcard") || has("/*.") {
            return Some(Cow::Borrowed(
                "this server does not accept wildcard scopes: request each resource type explicitly, e.g. patient/Observation.rs",
            ));
        }
        if has_any(&[
            "syntax",
            "format",
            "malformed",
            "parse",
            "unsupported",
            "not supported",
        ]) || has_word("v1")
            || has_word("v2")
        {
            return Some(Cow::Borrowed(
                "the server does not understand the scope syntax: older servers want SMART v1 scopes (patient/Observation.read), newer ones v2 (patient/Observation.rs); check its scopes_supported",
            ));
        }
        if has_any(&[
            "not allowed",
            "not permitted",
            "not authorized",
            "not authorised",
            "none of the requested",
            "not registered",
            "exceed",
        ]) {
            return Some(Cow::Borrowed(
                "the client is not allowed these scopes: request only scopes its registration with the EHR allows",
            ));
        }
        if has_any(&["missing", "required", "empty"]) {
            return Some(Cow::Borrowed(
                "the request carried no usable scope: request the scopes the app needs, e.g. launch/patient patient/Observation.rs",
            ));
        }
    }
    None
}

/// Whether `text` quotes two URLs that are the same except for a trailing `/`.
fn differ_only_by_trailing_slash(text: &str) -> bool {
    let mut urls: Vec<&str> = Vec::new();
    let mut rest = text;
    while urls.len() < 16 {
        let Some(start) = rest.find("http://").or_else(|| rest.find("https://")) else {
            break;
        };
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| {
                c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | ')' | ',')
            })
            .unwrap_or(tail.len());
        urls.push(&tail[..end]);
        rest = &tail[end..];
    }
    urls.iter().enumerate().any(|(i, a)| {
        urls[i + 1..]
            .iter()
            .any(|b| a != b && a.trim_end_matches('/') == b.trim_end_matches('/'))
    })
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
    #[error(
        "{base} does not look like a SMART server: {}; check the FHIR base URL",
        escape_controls(detail)
    )]
    NotSmart {
        /// The FHIR base.
        base: String,
        /// What each source returned.
        detail: String,
    },
    /// Discovery of this base failed moments ago; it is not retried until the cache's negative
    /// TTL has passed (so that a failing or hostile server is not asked again for every request).
    #[error(
        "discovery of {base} failed moments ago and is retried in {retry_in_secs} s: {}",
        escape_controls(reason)
    )]
    RecentlyFailed {
        /// The FHIR base.
        base: String,
        /// The earlier failure's message.
        reason: String,
        /// Seconds until the next attempt is allowed (at least 1).
        retry_in_secs: u64,
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
    #[error(
        "token endpoint sent an invalid response (HTTP {status}): {}",
        escape_controls(detail)
    )]
    InvalidResponse {
        /// HTTP status.
        status: u16,
        /// What was wrong (never the body itself: it may hold tokens).
        detail: String,
    },
}

impl DiscoveryError {
    /// What the failure means for the app: a wrong or insecure base is a configuration problem,
    /// an unreachable server or a recently failed one is temporary, an invalid endpoint is the
    /// server's problem.
    pub fn kind(&self) -> ErrorKind {
        match self {
            DiscoveryError::InvalidBase { .. }
            | DiscoveryError::Insecure(_)
            | DiscoveryError::NotSmart { .. } => ErrorKind::Misconfigured,
            DiscoveryError::Http(e) => e.kind(),
            DiscoveryError::RecentlyFailed { .. } => ErrorKind::Temporary,
            DiscoveryError::InvalidEndpoint { .. } => ErrorKind::ServerBroken,
        }
    }

    /// Whether retrying later may succeed.
    pub fn is_temporary(&self) -> bool {
        self.kind().is_temporary()
    }
}

impl TokenError {
    /// What the failure means for the app: the OAuth code's kind when the server sent one; an
    /// invalid response is the server's problem (temporary when its status is 429 or 5xx).
    pub fn kind(&self) -> ErrorKind {
        match self {
            TokenError::Http(e) => e.kind(),
            TokenError::Insecure(_) | TokenError::ClientAuthentication(_) => {
                ErrorKind::Misconfigured
            }
            TokenError::OAuth { error, .. } => error.kind(),
            TokenError::InvalidResponse { status, .. } => {
                ErrorKind::from_status(*status, ErrorKind::ServerBroken)
            }
        }
    }

    /// Whether retrying later may succeed.
    pub fn is_temporary(&self) -> bool {
        self.kind().is_temporary()
    }

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

impl ConfigError {
    /// Always [`ErrorKind::Misconfigured`].
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Misconfigured
    }

    /// Never: configuration does not fix itself.
    pub fn is_temporary(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(code: Option<OAuthErrorCode>, text: &str) -> Option<String> {
        hint_for_server_text(code.as_ref(), text).map(Cow::into_owned)
    }

    #[test]
    fn hints_follow_what_the_server_said() {
        let scope = Some(OAuthErrorCode::InvalidScope);
        assert!(
            hint(
                scope.clone(),
                "unsupported scope syntax: patient/Observation.rs"
            )
            .expect("syntax")
            .contains("SMART v1 scopes")
        );
        assert!(
            hint(scope.clone(), "wildcard scopes are not supported")
                .expect("wildcard")
                .contains("wildcard")
        );
        assert!(hint(scope, "computer says no").is_none());
        assert!(
            hint(None, "aud https://a/fhir does not match https://b/fhir")
                .expect("aud")
                .contains("exactly as the EHR publishes it")
        );
        // An assertion's `aud` is a credentials problem, not the FHIR base.
        assert!(
            hint(
                Some(OAuthErrorCode::InvalidClient),
                "aud must be https://e/token"
            )
            .is_none()
        );
        // A bad secret is not an unknown client.
        assert!(
            hint(
                Some(OAuthErrorCode::InvalidClient),
                "invalid client_id or client secret"
            )
            .is_none()
        );
        assert!(
            hint(
                Some(OAuthErrorCode::InvalidClient),
                "unknown client_id \"x\""
            )
            .expect("unknown client")
            .contains("does not know this client_id")
        );
        assert!(
            hint(None, "Invalid redirect_uri for this application.")
                .expect("redirect")
                .contains("redirect_uri")
        );
        // A general line naming both is not enough for either.
        assert!(hint(None, "the client_id or redirect_uri is invalid").is_none());
    }

    #[test]
    fn descriptions_are_escaped_and_cut_in_messages() {
        let error = OAuthError {
            code: OAuthErrorCode::InvalidRequest,
            description: Some(format!("\x1b[2J{}", "x".repeat(5000))),
            uri: Some("https://e/\x07".into()),
        };
        let shown = error.to_string();
        assert!(!shown.chars().any(char::is_control), "{shown}");
        assert!(shown.len() < 1000);
    }
}
