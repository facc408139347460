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
use crate::http::{HttpClient, HttpError, check_transport_security, redact_url};
use crate::quirks::AuthorizeMethod;

/// How many redirects are followed before giving up.
pub const MAX_REDIRECTS: usize = 10;

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
        "the authorization server answered HTTP {status} at {url} instead of redirecting{detail}; it needs a person to sign in, or rejected the client_id or redirect_uri"
    )]
    NoRedirect {
        /// Status.
        status: u16,
        /// Where (redacted).
        url: String,
        /// A short excerpt of a text body, when there is one.
        detail: String,
    },
    /// Too many redirects.
    #[error("gave up after {MAX_REDIRECTS} redirects without reaching the redirect URI")]
    TooManyRedirects,
    /// A redirect went somewhere unusable.
    #[error("the authorization server redirected to an invalid or insecure location: {0}")]
    BadLocation(String),
}

/// Performs `request` and returns the parameters of the redirect to `redirect_uri`.
#[tracing::instrument(name = "smart.authorize_headless", skip_all, fields(registration = %request.registration))]
pub async fn authorize_headless(
    http: &dyn HttpClient,
    request: &AuthorizationRequest,
    redirect_uri: &str,
) -> Result<CallbackParams, HeadlessError> {
    let mut next = match request.method {
        AuthorizeMethod::Get => build(http::Method::GET, &request.url, None)?,
        AuthorizeMethod::Post => build(http::Method::POST, &request.url, request.form.clone())?,
    };
    for _ in 0..MAX_REDIRECTS {
        let current_url = next.uri().to_string();
        let response = http.execute(next).await?;
        if !response.status().is_redirection() {
            let text = std::str::from_utf8(response.body()).unwrap_or("");
            let detail = excerpt(text);
            return Err(HeadlessError::NoRedirect {
                status: response.status().as_u16(),
                url: redact_url(&current_url),
                detail: if detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({detail})")
                },
            });
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
        if is_redirect_uri(target.as_str(), redirect_uri) {
            // This agent is the browser that began the launch: it carries the binding back.
            return Ok(CallbackParams::from_query(target.query().unwrap_or(""))
                .with_browser_binding(request.browser_binding().clone()));
        }
        check_transport_security(&target).map_err(|e| HeadlessError::BadLocation(e.to_string()))?;
        next = build(http::Method::GET, target.as_str(), None)?;
    }
    Err(HeadlessError::TooManyRedirects)
}

/// Whether `target` is `redirect_uri` (ignoring the query the server appended).
fn is_redirect_uri(target: &str, redirect_uri: &str) -> bool {
    let without_query = |s: &str| s.split(['?', '#']).next().unwrap_or("").to_owned();
    without_query(target) == without_query(redirect_uri)
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

/// The first line of visible text of an error page, shortened.
fn excerpt(body: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let joined = words.join(" ");
    joined.chars().take(160).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uri_comparison_ignores_added_query() {
        assert!(is_redirect_uri(
            "http://127.0.0.1:1/cb?code=x&state=y",
            "http://127.0.0.1:1/cb"
        ));
        assert!(!is_redirect_uri(
            "http://127.0.0.1:1/cb2?code=x",
            "http://127.0.0.1:1/cb"
        ));
    }

    #[test]
    fn excerpt_strips_markup() {
        assert_eq!(
            excerpt("<html><h1>Unknown client</h1><p>demo</p></html>"),
            "Unknown client demo"
        );
    }
}
