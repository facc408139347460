//! Headless authorization: drive the authorization request without a browser.
//!
//! Scripts, CI jobs and conformance runs need to complete launches against servers that
//! auto-approve (the embedded sandbox, test tenants). [`authorize_headless`] sends the
//! [`AuthorizationRequest`] itself (GET or POST), follows the server's redirects, and stops at the
//! first one that points at the app's redirect URI, **without ever connecting to it**. The query
//! of that redirect is handed back as [`CallbackParams`], to go through exactly the same
//! [`SmartClient::complete_launch`](crate::SmartClient::complete_launch) as a web app's callback.

use http::header::{CONTENT_TYPE, LOCATION};
use url::Url;

use crate::client::{AuthorizationRequest, CallbackParams};
use crate::error::hint_for_server_text;
use crate::http::{HttpClient, HttpError, check_transport_security_for, redact_url};
use crate::quirks::AuthorizeMethod;
use crate::server_text::{excerpt, html_to_text, looks_like_html};

/// How many redirects are followed before giving up.
pub const MAX_REDIRECTS: usize = 10;

/// The longest excerpt of an error page put into a message.
const MAX_PAGE_CHARS: usize = 300;

/// The hint when nothing in the server's answer is recognised.
const GENERAL_NO_REDIRECT_HINT: &str = "the server wants a person to sign in (headless mode only works with servers that approve automatically), or it rejected the request without saying why";

/// Why a headless authorization did not reach the redirect URI.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HeadlessError {
    /// Transport failure.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The server answered with a page instead of a redirect (it wants a person, or rejected the
    /// request without redirecting, as it must for an unknown client or redirect URI).
    #[error(
        "the authorization server answered HTTP {status} at {url} instead of redirecting{detail}; {hint}"
    )]
    NoRedirect {
        /// Status.
        status: u16,
        /// Where (redacted).
        url: String,
        /// A short excerpt of the page's text (controls escaped), when there is one, as
        /// ` (text)`.
        detail: String,
        /// What to do: recognised from the page's text (unknown client, unregistered redirect
        /// URI, …), or a general hint.
        hint: String,
    },
    /// Too many redirects.
    #[error("gave up after {MAX_REDIRECTS} redirects without reaching the redirect URI")]
    TooManyRedirects,
    /// A redirect went somewhere unusable.
    #[error("the authorization server redirected to an invalid or insecure location: {0}")]
    BadLocation(String),
}

impl HeadlessError {
    /// What the failure means for the caller: transport failures keep their kind; an
    /// authorization server that does not redirect as the protocol says is broken.
    pub fn kind(&self) -> crate::error_kind::ErrorKind {
        use crate::error_kind::ErrorKind;
        match self {
            HeadlessError::Http(e) => e.kind(),
            HeadlessError::NoRedirect { status, .. } => {
                ErrorKind::from_status(*status, ErrorKind::ServerBroken)
            }
            HeadlessError::TooManyRedirects | HeadlessError::BadLocation(_) => {
                ErrorKind::ServerBroken
            }
        }
    }

    /// Whether retrying later may succeed.
    pub fn is_temporary(&self) -> bool {
        self.kind().is_temporary()
    }
}

/// Performs `request` and returns the parameters of the redirect to `redirect_uri`.
///
/// A redirect is taken to be the redirect URI when scheme, host, port and path are equal (the
/// server adds the query); every other redirect is followed, after the same transport-security
/// check as discovered endpoints (an `https` authorization server may not send the client to
/// plain `http`, loopback included).
#[tracing::instrument(name = "smart.authorize_headless", skip_all, fields(registration = %request.registration))]
pub async fn authorize_headless(
    http: &dyn HttpClient,
    request: &AuthorizationRequest,
    redirect_uri: &str,
) -> Result<CallbackParams, HeadlessError> {
    let authorize_url = Url::parse(&request.url)
        .map_err(|e| HeadlessError::BadLocation(format!("{}: {e}", redact_url(&request.url))))?;
    let redirect = Url::parse(redirect_uri).map_err(|e| {
        HeadlessError::BadLocation(format!("redirect URI {}: {e}", redact_url(redirect_uri)))
    })?;
    let mut next = match request.method {
        AuthorizeMethod::Get => build(http::Method::GET, &request.url, None)?,
        AuthorizeMethod::Post => build(http::Method::POST, &request.url, request.form.clone())?,
    };
    for _ in 0..MAX_REDIRECTS {
        let current_url = next.uri().to_string();
        let response = http.execute(next).await?;
        if !response.status().is_redirection() {
            return Err(no_redirect(
                response.status().as_u16(),
                &current_url,
                response
                    .headers()
                    .get(CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok()),
                response.body(),
            ));
        }
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| HeadlessError::BadLocation("missing Location header".into()))?;
        let base =
            Url::parse(&current_url).map_err(|e| HeadlessError::BadLocation(e.to_string()))?;
        let target = base
            .join(location)
            .map_err(|_| HeadlessError::BadLocation(redact_url(location)))?;
        if is_redirect_uri(&target, &redirect) {
            // This agent is the browser that began the launch: it carries the binding back.
            return Ok(CallbackParams::from_query(target.query().unwrap_or(""))
                .with_browser_binding(request.browser_binding().clone()));
        }
        check_transport_security_for(&target, &authorize_url)
            .map_err(|e| HeadlessError::BadLocation(e.to_string()))?;
        next = build(http::Method::GET, target.as_str(), None)?;
    }
    Err(HeadlessError::TooManyRedirects)
}

/// The error for a non-redirect answer: the page's text, made safe, and a hint recognised from it.
fn no_redirect(status: u16, url: &str, content_type: Option<&str>, body: &[u8]) -> HeadlessError {
    let raw = String::from_utf8_lossy(body);
    let text = if looks_like_html(content_type, &raw) {
        html_to_text(&raw, MAX_PAGE_CHARS)
    } else {
        excerpt(&raw, MAX_PAGE_CHARS)
    };
    let hint = hint_for_server_text(None, &text)
        .map(|h| h.into_owned())
        .unwrap_or_else(|| GENERAL_NO_REDIRECT_HINT.to_owned());
    HeadlessError::NoRedirect {
        status,
        url: redact_url(url),
        detail: if text.is_empty() {
            String::new()
        } else {
            format!(" ({text})")
        },
        hint,
    }
}

/// Whether `target` is the redirect URI: same scheme, host, port and path (the query the server
/// appended, and any fragment, do not count).
fn is_redirect_uri(target: &Url, redirect_uri: &Url) -> bool {
    target.scheme() == redirect_uri.scheme()
        && target.host() == redirect_uri.host()
        && target.port_or_known_default() == redirect_uri.port_or_known_default()
        && target.path() == redirect_uri.path()
}

fn build(
    method: http::Method,
    url: &str,
    form: Option<String>,
) -> Result<crate::http::HttpRequest, HeadlessError> {
    let mut builder = http::Request::builder().method(method).uri(url);
    if form.is_some() {
        builder = builder.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    builder
        .body(form.unwrap_or_default().into_bytes())
        .map_err(|e| HeadlessError::BadLocation(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("url")
    }

    #[test]
    fn redirect_uri_comparison_ignores_added_query_only() {
        let cb = url("http://127.0.0.1:1/cb");
        assert!(is_redirect_uri(
            &url("http://127.0.0.1:1/cb?code=x&state=y"),
            &cb
        ));
        assert!(!is_redirect_uri(&url("http://127.0.0.1:1/cb2?code=x"), &cb));
        assert!(!is_redirect_uri(&url("http://127.0.0.1:2/cb?code=x"), &cb));
        assert!(!is_redirect_uri(&url("https://127.0.0.1:1/cb?code=x"), &cb));
        // A redirect URI without a path is `/`; so is a target without one.
        let bare = url("http://127.0.0.1:1");
        assert!(is_redirect_uri(&url("http://127.0.0.1:1/?code=x"), &bare));
        assert!(!is_redirect_uri(
            &url("http://127.0.0.1:1/other?code=x"),
            &bare
        ));
        assert!(is_redirect_uri(
            &url("https://app.example:443/cb"),
            &url("https://app.example/cb")
        ));
    }
}
