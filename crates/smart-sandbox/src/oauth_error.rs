//! OAuth 2.0 error responses (RFC 6749 §5.2) of the token and introspection
//! endpoints, and `Cache-Control: no-store`. A module of its own because
//! client authentication, client assertions, the token endpoint and
//! introspection all answer with these errors; none of them owns it.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::state::Shared;

/// A token-endpoint error (RFC 6749 §5.2).
#[derive(Debug)]
pub(crate) struct TokenError {
    pub(crate) error: &'static str,
    pub(crate) description: String,
    /// Set when the client tried HTTP authentication (an `Authorization`
    /// header): `invalid_client` is then a 401 with a `WWW-Authenticate:
    /// Basic` challenge, otherwise a 400 (RFC 6749 §5.2).
    pub(crate) basic_used: bool,
    /// A status other than the one the error code implies (429 for a
    /// throttled refresh), with its `Retry-After` in seconds.
    pub(crate) throttled: Option<u64>,
    /// The profile's `error_uri`, set by [`error_response`].
    pub(crate) error_uri: Option<String>,
    /// 413 for a body over [`MAX_FORM_BODY`].
    pub(crate) too_large: bool,
}

impl TokenError {
    /// An error for a request that tried HTTP Basic.
    pub(crate) fn basic(error: &'static str, description: String) -> TokenError {
        TokenError {
            basic_used: true,
            ..err(error, description)
        }
    }
}

/// A token-endpoint error without a Basic challenge.
pub(crate) fn err(error: &'static str, description: impl Into<String>) -> TokenError {
    TokenError {
        error,
        description: description.into(),
        basic_used: false,
        throttled: None,
        error_uri: None,
        too_large: false,
    }
}

/// An OAuth error as an HTTP response, with the profile's `error_uri` (if
/// any). Every token and introspection error goes through here.
pub(crate) fn error_response(shared: &Shared, e: TokenError) -> Response {
    error_response_for(shared, e, None)
}

/// [`error_response`] for a request from `client` (its id goes into the
/// profile's `error_uri`, as Oracle Health's `client=` parameter).
pub(crate) fn error_response_for(
    shared: &Shared,
    mut e: TokenError,
    client: Option<&str>,
) -> Response {
    e.error_uri = shared.profile.error_uri_for(&shared.urls, e.error, client);
    e.into_response()
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_uri: Option<&'a str>,
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let status = match (self.throttled, self.error) {
            _ if self.too_large => StatusCode::PAYLOAD_TOO_LARGE,
            (Some(_), _) => StatusCode::TOO_MANY_REQUESTS,
            // RFC 6749 §5.2: 401 with a challenge when the client tried HTTP
            // authentication; 400 when it did not (no challenge to offer).
            (None, "invalid_client") if self.basic_used => StatusCode::UNAUTHORIZED,
            (None, "server_error") => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut response = (
            status,
            Json(ErrorBody {
                error: self.error,
                error_description: &self.description,
                error_uri: self.error_uri.as_deref(),
            }),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"smart-sandbox\""),
            );
        }
        if let Some(secs) = self.throttled {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        no_store(response)
    }
}

/// Adds `Cache-Control: no-store` and `Pragma: no-cache`.
pub(crate) fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
