//! What can go wrong talking to a FHIR server, as one error type.
//!
//! An app needs to decide, per failure, *what to do next*: re-launch (the session ended), ask for
//! more scopes (`403 insufficient_scope`), reload and retry (`412`), wait (`429`), or report a bug
//! (`400`). [`FhirError`] has one variant per decision, and every message says which decision it is.
//!
//! Every variant that comes from an HTTP response carries the status and an [`ErrorBody`]: the
//! `OperationOutcome` when the server sent one (FHIR servers usually do), or a short excerpt of
//! whatever else it sent — some servers answer with plain text (Cerner's `400` for a missing
//! required search parameter) or an HTML page (Epic's `404` for an unknown media type).
//!
//! All of that text is the server's, so none of it reaches a message raw: it goes through
//! [`smart_core::server_text`] (HTML pages become their visible text, control characters and
//! bidirectional overrides are escaped, length is capped), and so do header values such as the
//! `WWW-Authenticate` parameters.

use std::fmt;
use std::time::Duration;

use serde_json::Value;
use smart_core::BearerError;
use smart_core::http::HttpError;
use smart_core::server_text::{excerpt, html_to_text, looks_like_html};

/// The longest excerpt of a non-FHIR error body kept in an error.
const EXCERPT_CHARS: usize = 200;

/// The longest issue code or header parameter kept in an error.
const SHORT_CHARS: usize = 64;

/// The body of an error response: an `OperationOutcome` or a short text excerpt.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ErrorBody {
    /// The `OperationOutcome`, when the body was one.
    pub outcome: Option<Value>,
    /// The first characters of a body that was not an `OperationOutcome` (plain text, HTML, other
    /// JSON), whitespace collapsed and control characters escaped; for an HTML page, its visible
    /// text. `None` for an empty body or an `OperationOutcome`.
    pub excerpt: Option<String>,
}

impl ErrorBody {
    /// Classifies a response body whose content type is unknown (an HTML page is recognised by
    /// its start).
    pub fn from_bytes(body: &[u8]) -> ErrorBody {
        ErrorBody::from_response(None, body)
    }

    /// Classifies a response body sent with `content_type`.
    pub fn from_response(content_type: Option<&str>, body: &[u8]) -> ErrorBody {
        if body.iter().all(u8::is_ascii_whitespace) {
            return ErrorBody::default();
        }
        if let Ok(value) = serde_json::from_slice::<Value>(body)
            && value.get("resourceType").and_then(Value::as_str) == Some("OperationOutcome")
        {
            return ErrorBody {
                outcome: Some(value),
                excerpt: None,
            };
        }
        let text = String::from_utf8_lossy(body);
        let excerpt = if looks_like_html(content_type, &text) {
            html_to_text(&text, EXCERPT_CHARS)
        } else {
            excerpt(&text, EXCERPT_CHARS)
        };
        ErrorBody {
            outcome: None,
            excerpt: Some(excerpt),
        }
    }

    /// A one-line summary: the first issue's diagnostics or details text (with its code), or the
    /// excerpt. Empty when the body was empty.
    pub fn summary(&self) -> String {
        if let Some(outcome) = &self.outcome {
            return outcome_summary(outcome);
        }
        self.excerpt.clone().unwrap_or_default()
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let summary = self.summary();
        if summary.is_empty() {
            Ok(())
        } else {
            write!(f, " (server said: {summary})")
        }
    }
}

/// `code: text` of an OperationOutcome's first issue (text from `diagnostics` or
/// `details.text`), whitespace collapsed, controls escaped and shortened.
pub(crate) fn outcome_summary(outcome: &Value) -> String {
    let Some(issue) = outcome
        .get("issue")
        .and_then(Value::as_array)
        .and_then(|i| i.first())
    else {
        return "OperationOutcome without issues".to_owned();
    };
    let code = issue.get("code").and_then(Value::as_str).unwrap_or("?");
    let text = issue
        .get("diagnostics")
        .and_then(Value::as_str)
        .or_else(|| {
            issue
                .get("details")
                .and_then(|d| d.get("text"))
                .and_then(Value::as_str)
        })
        .unwrap_or("");
    let code = excerpt(code, SHORT_CHARS);
    let text = excerpt(text, EXCERPT_CHARS);
    if text.is_empty() {
        code
    } else {
        format!("{code}: {text}")
    }
}

/// Why a FHIR request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FhirError {
    /// `404`: no such resource (or the server hides it from this user).
    #[error("FHIR {status}: not found; check the resource type and id{body}")]
    NotFound {
        /// The HTTP status.
        status: u16,
        /// The response body.
        body: ErrorBody,
    },
    /// `410`: the resource was deleted.
    #[error("FHIR {status}: the resource was deleted (gone); do not retry{body}")]
    Gone {
        /// The HTTP status.
        status: u16,
        /// The response body.
        body: ErrorBody,
    },
    /// `401` again after one token refresh and retry.
    #[error(
        "FHIR {status}: the access token was refused even after a refresh{}; start a new launch{body}",
        error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
    )]
    Unauthorized {
        /// The HTTP status.
        status: u16,
        /// The `error` of the `WWW-Authenticate: Bearer` challenge, when present.
        error: Option<String>,
        /// The response body.
        body: ErrorBody,
    },
    /// `403`: either the token lacks a scope (`insufficient_scope`) or the user's or app's
    /// permissions deny it. Refreshing does not help either way.
    #[error(
        "FHIR {status}: forbidden; {}{body}",
        if *insufficient_scope {
            format!(
                "the token lacks a scope{}: request it in a new authorization",
                scope.as_deref().map(|s| format!(" (server wants {s})")).unwrap_or_default()
            )
        } else {
            "the user's or app's permissions deny it: do not retry".to_owned()
        }
    )]
    Forbidden {
        /// The HTTP status.
        status: u16,
        /// `true` for `WWW-Authenticate: Bearer error="insufficient_scope"`; `false` for a policy
        /// denial.
        insufficient_scope: bool,
        /// The `scope` the challenge named, when present.
        scope: Option<String>,
        /// The response body.
        body: ErrorBody,
    },
    /// `409`: a version conflict or duplicate.
    #[error("FHIR {status}: conflict; reload the resource and apply the change again{body}")]
    Conflict {
        /// The HTTP status.
        status: u16,
        /// The response body.
        body: ErrorBody,
    },
    /// `412`: `If-Match` did not match (someone else changed the resource), or a conditional
    /// request matched more than one resource.
    #[error(
        "FHIR {status}: precondition failed; the resource changed since it was read: read it again and reapply the change{body}"
    )]
    PreconditionFailed {
        /// The HTTP status.
        status: u16,
        /// The response body.
        body: ErrorBody,
    },
    /// `422`: the resource failed the server's validation or business rules.
    #[error(
        "FHIR {status}: unprocessable; the server rejected the resource's content, see its OperationOutcome{body}"
    )]
    Unprocessable {
        /// The HTTP status.
        status: u16,
        /// The response body.
        body: ErrorBody,
    },
    /// `400`: the request is malformed (bad or missing search parameter, invalid resource).
    #[error("FHIR {status}: bad request; fix the request (parameters or resource){body}")]
    BadRequest {
        /// The HTTP status.
        status: u16,
        /// The response body.
        body: ErrorBody,
    },
    /// `429` (or `503` with `Retry-After`) after the retries ran out or were not allowed.
    #[error(
        "FHIR {status}: rate limited{}; slow down and try again later{body}",
        retry_after.map(|d| format!(" (server asked to wait {} s)", d.as_secs())).unwrap_or_default()
    )]
    RateLimited {
        /// The HTTP status.
        status: u16,
        /// What `Retry-After` asked for, when present, at most
        /// [`MAX_RETRY_AFTER`](crate::MAX_RETRY_AFTER) (one day).
        retry_after: Option<Duration>,
        /// The response body.
        body: ErrorBody,
    },
    /// `5xx` after the retries ran out or were not allowed.
    #[error(
        "FHIR {status}: server error; try again later or report it to the server's operator{body}"
    )]
    Server {
        /// The HTTP status.
        status: u16,
        /// The response body.
        body: ErrorBody,
    },
    /// Any other status this client does not expect (a redirect, `405`, `406`, `415` …).
    #[error(
        "FHIR {status}: unexpected response; check the server supports this interaction and media type{body}"
    )]
    UnexpectedStatus {
        /// The HTTP status.
        status: u16,
        /// The response body.
        body: ErrorBody,
    },
    /// No HTTP response (connection refused, timeout, body too large).
    #[error(transparent)]
    Http(HttpError),
    /// No usable token: the session ended, or a refresh failed.
    #[error("{0}")]
    Auth(BearerError),
    /// A URL (a server-supplied `next` link, a `Location`, a caller-supplied URL) is not under
    /// the FHIR base the token is for; nothing was sent.
    #[error(
        "refusing to send the access token to {url}: it is not under the FHIR base {base}; follow only links on the same server"
    )]
    ForeignUrl {
        /// The refused URL, without its query.
        url: String,
        /// The FHIR base the token belongs to.
        base: String,
    },
    /// The request could not be built from the arguments (bad id, resource without
    /// `resourceType`, …); nothing was sent.
    #[error("invalid FHIR request: {0}")]
    InvalidRequest(String),
    /// A successful response whose body is not what FHIR promises (not JSON, not a Bundle, …).
    #[error(
        "invalid FHIR response (status {status}): {reason}; the server is not behaving as FHIR requires"
    )]
    InvalidResponse {
        /// The HTTP status.
        status: u16,
        /// What was wrong.
        reason: String,
    },
    /// A resource could not be converted to or from its typed model (fhirbolt).
    #[error(
        "cannot convert {resource_type} to the typed model{}: {message}; use the *_json methods for this resource",
        typed_location(.pointer.as_deref(), .expected.as_deref())
    )]
    Typed {
        /// The resource type being converted.
        resource_type: String,
        /// Where in the resource, as a JSON pointer (RFC 6901), when known.
        pointer: Option<String>,
        /// The FHIR type or shape expected there, when known.
        expected: Option<String>,
        /// What was found, or what fhirbolt reported.
        message: String,
    },
    /// One entry of a typed search page could not be converted; the stream goes on with the
    /// next entry, and [`FhirClient::typed_pages`](crate::FhirClient::typed_pages) returns the
    /// page's other entries next to this one.
    #[error("search entry {index} cannot be read as a typed resource: {source}")]
    TypedEntry {
        /// The entry's position among the page's matches.
        index: usize,
        /// Why it could not be converted (a [`FhirError::Typed`]).
        source: Box<FhirError>,
        /// The entry's resource as the server sent it.
        raw: Box<serde_json::Value>,
    },
}

/// ` at /pointer (expected T)` for [`FhirError::Typed`] messages.
fn typed_location(pointer: Option<&str>, expected: Option<&str>) -> String {
    let mut text = String::new();
    if let Some(pointer) = pointer {
        text.push_str(" at ");
        text.push_str(if pointer.is_empty() {
            "the root"
        } else {
            pointer
        });
    }
    if let Some(expected) = expected {
        text.push_str(" (expected ");
        text.push_str(expected);
        text.push(')');
    }
    text
}

impl FhirError {
    /// What the failure means for the app, in the framework's one vocabulary
    /// ([`smart_core::ErrorKind`]): 401 after a refresh means signing in again, 403 is a denial,
    /// 404/410 not found, 409/412 a conflict, 400/422 an invalid request, 429/5xx temporary; a
    /// token problem keeps the kind of its [`BearerError`].
    pub fn kind(&self) -> smart_core::ErrorKind {
        use smart_core::ErrorKind;
        match self {
            FhirError::NotFound { .. } | FhirError::Gone { .. } => ErrorKind::NotFound,
            FhirError::Unauthorized { .. } => ErrorKind::SessionEnded,
            FhirError::Forbidden { .. } => ErrorKind::Denied,
            FhirError::Conflict { .. } | FhirError::PreconditionFailed { .. } => {
                ErrorKind::Conflict
            }
            FhirError::Unprocessable { .. }
            | FhirError::BadRequest { .. }
            | FhirError::ForeignUrl { .. }
            | FhirError::InvalidRequest(_) => ErrorKind::InvalidRequest,
            FhirError::RateLimited { .. } => ErrorKind::Temporary,
            FhirError::Server {
                status: 502..=504, ..
            } => ErrorKind::Temporary,
            FhirError::Server { .. } => ErrorKind::ServerBroken,
            FhirError::UnexpectedStatus { status, .. }
            | FhirError::InvalidResponse { status, .. } => {
                ErrorKind::from_status(*status, ErrorKind::ServerBroken)
            }
            FhirError::Http(e) => e.kind(),
            FhirError::Auth(e) => e.kind(),
            FhirError::Typed { .. } => ErrorKind::ServerBroken,
            FhirError::TypedEntry { source, .. } => source.kind(),
        }
    }

    /// The HTTP status of the response that caused this error, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            FhirError::NotFound { status, .. }
            | FhirError::Gone { status, .. }
            | FhirError::Unauthorized { status, .. }
            | FhirError::Forbidden { status, .. }
            | FhirError::Conflict { status, .. }
            | FhirError::PreconditionFailed { status, .. }
            | FhirError::Unprocessable { status, .. }
            | FhirError::BadRequest { status, .. }
            | FhirError::RateLimited { status, .. }
            | FhirError::Server { status, .. }
            | FhirError::UnexpectedStatus { status, .. }
            | FhirError::InvalidResponse { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The response body of an HTTP error.
    pub fn body(&self) -> Option<&ErrorBody> {
        match self {
            FhirError::NotFound { body, .. }
            | FhirError::Gone { body, .. }
            | FhirError::Unauthorized { body, .. }
            | FhirError::Forbidden { body, .. }
            | FhirError::Conflict { body, .. }
            | FhirError::PreconditionFailed { body, .. }
            | FhirError::Unprocessable { body, .. }
            | FhirError::BadRequest { body, .. }
            | FhirError::RateLimited { body, .. }
            | FhirError::Server { body, .. }
            | FhirError::UnexpectedStatus { body, .. } => Some(body),
            _ => None,
        }
    }

    /// The `OperationOutcome` the server sent with the error, if any.
    pub fn outcome(&self) -> Option<&Value> {
        self.body().and_then(|b| b.outcome.as_ref())
    }

    /// Whether the same request may succeed later without any change: rate limits, `502`/`503`/
    /// `504`, timeouts and connection failures. (The client already retried idempotent requests
    /// within its [`RetryPolicy`](crate::RetryPolicy) before returning these.)
    pub fn is_retryable(&self) -> bool {
        match self {
            FhirError::RateLimited { .. } => true,
            FhirError::Server { status, .. } => matches!(status, 502..=504),
            FhirError::Http(e) => is_transient(e),
            FhirError::Auth(BearerError::Refresh(_)) => true,
            _ => false,
        }
    }

    /// Whether the kind is [`ErrorKind::Temporary`](smart_core::ErrorKind::Temporary) (the same
    /// as [`FhirError::is_retryable`] except for a failed token refresh, whose own kind decides).
    pub fn is_temporary(&self) -> bool {
        self.kind().is_temporary()
    }

    /// Builds the error for a non-success response (other than the `401` handling, which the
    /// client does itself).
    pub(crate) fn from_response(
        status: u16,
        headers: &http::HeaderMap,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> FhirError {
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let body = ErrorBody::from_response(content_type, body);
        // Header values are the server's text too.
        let shown_param = |name: &str| {
            challenge_param(headers, name).map(|v| excerpt(&v, SHORT_CHARS.saturating_mul(4)))
        };
        match status {
            400 => FhirError::BadRequest { status, body },
            401 => FhirError::Unauthorized {
                status,
                error: shown_param("error"),
                body,
            },
            403 => FhirError::Forbidden {
                status,
                insufficient_scope: challenge_param(headers, "error").as_deref()
                    == Some("insufficient_scope"),
                scope: shown_param("scope"),
                body,
            },
            404 => FhirError::NotFound { status, body },
            409 => FhirError::Conflict { status, body },
            410 => FhirError::Gone { status, body },
            412 => FhirError::PreconditionFailed { status, body },
            422 => FhirError::Unprocessable { status, body },
            429 => FhirError::RateLimited {
                status,
                retry_after,
                body,
            },
            503 if retry_after.is_some() => FhirError::RateLimited {
                status,
                retry_after,
                body,
            },
            500..=599 => FhirError::Server { status, body },
            _ => FhirError::UnexpectedStatus { status, body },
        }
    }
}

impl From<BearerError> for FhirError {
    fn from(e: BearerError) -> Self {
        FhirError::Auth(e)
    }
}

impl From<HttpError> for FhirError {
    fn from(e: HttpError) -> Self {
        FhirError::Http(e)
    }
}

/// A transport failure that may pass: a timeout or a refused connection.
pub(crate) fn is_transient(e: &HttpError) -> bool {
    matches!(e, HttpError::Timeout { .. } | HttpError::Connect { .. })
}

/// A parameter of the `WWW-Authenticate: Bearer` challenge (RFC 6750 §3), e.g. `error`.
pub(crate) fn challenge_param(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| {
            let v = v.trim_start();
            let (scheme, rest) = v.split_once(char::is_whitespace).unwrap_or((v, ""));
            scheme.eq_ignore_ascii_case("bearer").then_some(rest)
        })
        .find_map(|params| auth_params(params).find(|(k, _)| k.eq_ignore_ascii_case(name)))
        .map(|(_, v)| v)
}

/// Parses `k="v", k2=v2` auth-params (quoted strings with `\` escapes, or tokens).
fn auth_params(s: &str) -> impl Iterator<Item = (String, String)> + '_ {
    let mut rest = s;
    std::iter::from_fn(move || {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        if rest.is_empty() {
            return None;
        }
        let eq = rest.find('=')?;
        let key = rest[..eq].trim().to_owned();
        rest = rest[eq + 1..].trim_start();
        let mut value = String::new();
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            value.push(next);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    other => value.push(other),
                }
            }
            rest = &quoted[end.min(quoted.len())..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        Some((key, value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_str(v).expect("header"),
        );
        h
    }

    #[test]
    fn challenge_params_are_parsed() {
        let h = headers(
            r#"Bearer realm="x", error="insufficient_scope", error_description="a, \"b\"", scope="patient/Observation.rs""#,
        );
        assert_eq!(
            challenge_param(&h, "error").as_deref(),
            Some("insufficient_scope")
        );
        assert_eq!(
            challenge_param(&h, "error_description").as_deref(),
            Some("a, \"b\"")
        );
        assert_eq!(
            challenge_param(&h, "scope").as_deref(),
            Some("patient/Observation.rs")
        );
        assert_eq!(challenge_param(&h, "missing"), None);
        let token = headers("bearer error=invalid_token, realm=r");
        assert_eq!(
            challenge_param(&token, "error").as_deref(),
            Some("invalid_token")
        );
        assert_eq!(challenge_param(&headers("Basic realm=x"), "realm"), None);
    }

    #[test]
    fn forbidden_distinguishes_scope_from_policy() {
        let scope = FhirError::from_response(
            403,
            &headers(r#"Bearer error="insufficient_scope""#),
            b"",
            None,
        );
        assert!(matches!(
            scope,
            FhirError::Forbidden {
                insufficient_scope: true,
                ..
            }
        ));
        assert!(scope.to_string().contains("new authorization"), "{scope}");
        let policy = FhirError::from_response(403, &HeaderMap::new(), b"Tenant not valid", None);
        assert!(matches!(
            policy,
            FhirError::Forbidden {
                insufficient_scope: false,
                ..
            }
        ));
        assert_eq!(
            policy.body().and_then(|b| b.excerpt.as_deref()),
            Some("Tenant not valid")
        );
    }

    #[test]
    fn bodies_keep_outcomes_or_a_short_excerpt() {
        let oo = br#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found","diagnostics":"Patient/x is unknown"}]}"#;
        let e = FhirError::from_response(404, &HeaderMap::new(), oo, None);
        assert_eq!(e.status(), Some(404));
        assert!(e.outcome().is_some());
        assert!(
            e.to_string().contains("not-found: Patient/x is unknown"),
            "{e}"
        );
        assert!(!e.to_string().contains('\n'));

        let long = "x ".repeat(1000);
        let e = FhirError::from_response(400, &HeaderMap::new(), long.as_bytes(), None);
        let excerpt = e.body().and_then(|b| b.excerpt.clone()).expect("excerpt");
        assert!(excerpt.chars().count() <= EXCERPT_CHARS + 1);
        assert!(e.outcome().is_none());

        let html = b"<html>\n<body>Not Found</body></html>";
        let e = FhirError::from_response(404, &HeaderMap::new(), html, None);
        assert_eq!(
            e.body().and_then(|b| b.excerpt.as_deref()),
            Some("Not Found")
        );
        let e = FhirError::from_response(500, &HeaderMap::new(), b"", None);
        assert_eq!(e.body(), Some(&ErrorBody::default()));
        assert!(e.to_string().ends_with("operator"), "{e}");
    }

    #[test]
    fn retryable_classification() {
        let h = HeaderMap::new();
        assert!(FhirError::from_response(429, &h, b"", None).is_retryable());
        assert!(FhirError::from_response(503, &h, b"", None).is_retryable());
        assert!(matches!(
            FhirError::from_response(503, &h, b"", Some(Duration::from_secs(2))),
            FhirError::RateLimited { .. }
        ));
        assert!(!FhirError::from_response(500, &h, b"", None).is_retryable());
        assert!(!FhirError::from_response(404, &h, b"", None).is_retryable());
        assert!(FhirError::Http(HttpError::Timeout { url: "u".into() }).is_retryable());
    }
}
