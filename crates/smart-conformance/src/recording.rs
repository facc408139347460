//! A recording transport: what the client sent, and what came back, as the server saw it.
//!
//! Client checks must judge the client by what reaches the wire, not by what its types say it
//! would send. The core sends every request through one [`HttpClient`] trait object, so wrapping
//! the real transport is enough to observe authorize, token, refresh and FHIR traffic without any
//! hook in the client or the sandbox. The recording is bounded (entries and body bytes) because
//! responses come from servers, and a conformance run against a hostile one must not grow without
//! limit.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use smart_core::http::{HttpClient, HttpError, HttpRequest, HttpResponse};
use url::Url;

/// Most exchanges kept; older ones are dropped first (and counted in
/// [`RecordingHttpClient::dropped`]).
pub const MAX_EXCHANGES: usize = 512;
/// Most bytes kept of each request or response body; the rest is cut off.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// One request as sent, and what came back.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// Method, e.g. `POST`.
    pub method: String,
    /// The full URL, query included.
    pub url: String,
    /// Request headers (names lower-case), in order.
    pub request_headers: Vec<(String, String)>,
    /// The request body, at most [`MAX_BODY_BYTES`].
    pub request_body: Vec<u8>,
    /// The response status, or `None` when the transport failed.
    pub status: Option<u16>,
    /// Response headers (names lower-case).
    pub response_headers: Vec<(String, String)>,
    /// The response body, at most [`MAX_BODY_BYTES`].
    pub response_body: Vec<u8>,
}

impl Exchange {
    /// The URL's path (empty when it does not parse).
    pub fn path(&self) -> String {
        Url::parse(&self.url)
            .map(|u| u.path().to_owned())
            .unwrap_or_default()
    }

    /// The query parameters, decoded.
    pub fn query(&self) -> Vec<(String, String)> {
        Url::parse(&self.url)
            .map(|u| u.query_pairs().into_owned().collect())
            .unwrap_or_default()
    }

    /// The request body as form fields (empty when it is not a form).
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.request_body)
            .into_owned()
            .collect()
    }

    /// The request's parameters: query and form fields together (authorize requests may be GET
    /// or POST).
    pub fn params(&self) -> Vec<(String, String)> {
        let mut p = self.query();
        if self.method == "POST" {
            p.extend(self.form());
        }
        p
    }

    /// The first value of parameter `name` (query or form).
    pub fn param(&self, name: &str) -> Option<String> {
        self.params()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// How many times parameter `name` appears.
    pub fn param_count(&self, name: &str) -> usize {
        self.params().iter().filter(|(k, _)| k == name).count()
    }

    /// The first request header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request_headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The response body as JSON, when it is.
    pub fn response_json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.response_body).ok()
    }
}

/// `url` without its query and fragment, for messages (a query may carry a code or a state).
///
/// ```
/// use smart_conformance::recording::redact;
/// assert_eq!(redact("http://127.0.0.1:1/cb?code=secret#x"), "http://127.0.0.1:1/cb");
/// ```
pub fn redact(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_owned()
}

/// Wraps a transport and keeps every exchange (bounded, see [`MAX_EXCHANGES`]).
///
/// ```
/// use std::sync::Arc;
/// use smart_conformance::recording::RecordingHttpClient;
/// use smart_core::http::{HttpClient, ReqwestHttpClient};
///
/// let inner: Arc<dyn HttpClient> = Arc::new(ReqwestHttpClient::new().expect("transport"));
/// let recording = RecordingHttpClient::new(inner);
/// assert!(recording.exchanges().is_empty());
/// ```
#[derive(Debug)]
pub struct RecordingHttpClient {
    inner: Arc<dyn HttpClient>,
    log: Mutex<Log>,
}

#[derive(Debug, Default)]
struct Log {
    exchanges: VecDeque<Exchange>,
    dropped: usize,
}

fn capped(bytes: &[u8]) -> Vec<u8> {
    bytes[..bytes.len().min(MAX_BODY_BYTES)].to_vec()
}

fn headers(map: &http::HeaderMap) -> Vec<(String, String)> {
    map.iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

impl RecordingHttpClient {
    /// Records what goes through `inner`.
    pub fn new(inner: Arc<dyn HttpClient>) -> Arc<Self> {
        Arc::new(RecordingHttpClient {
            inner,
            log: Mutex::new(Log::default()),
        })
    }

    /// Every exchange kept, oldest first.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.lock().exchanges.iter().cloned().collect()
    }

    /// How many exchanges were dropped for the bound.
    pub fn dropped(&self) -> usize {
        self.lock().dropped
    }

    /// Forgets everything recorded so far.
    pub fn clear(&self) {
        let mut log = self.lock();
        log.exchanges.clear();
        log.dropped = 0;
    }

    /// The exchanges whose URL path ends with `suffix`.
    pub fn to_path(&self, suffix: &str) -> Vec<Exchange> {
        self.exchanges()
            .into_iter()
            .filter(|e| e.path().ends_with(suffix))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        // A panic while holding the lock leaves a consistent log (pushes are atomic here).
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, exchange: Exchange) {
        let mut log = self.lock();
        if log.exchanges.len() == MAX_EXCHANGES {
            log.exchanges.pop_front();
            log.dropped = log.dropped.saturating_add(1);
        }
        log.exchanges.push_back(exchange);
    }
}

#[async_trait]
impl HttpClient for RecordingHttpClient {
    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let mut exchange = Exchange {
            method: request.method().as_str().to_owned(),
            url: request.uri().to_string(),
            request_headers: headers(request.headers()),
            request_body: capped(request.body()),
            status: None,
            response_headers: Vec::new(),
            response_body: Vec::new(),
        };
        let result = self.inner.execute(request).await;
        if let Ok(response) = &result {
            exchange.status = Some(response.status().as_u16());
            exchange.response_headers = headers(response.headers());
            exchange.response_body = capped(response.body());
        }
        self.push(exchange);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[derive(Debug)]
    struct Echo;

    #[async_trait]
    impl HttpClient for Echo {
        async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
            Ok(http::Response::builder()
                .status(200)
                .body(Bytes::from(vec![b'x'; request.body().len()]))
                .expect("response"))
        }
    }

    fn request(body: Vec<u8>) -> HttpRequest {
        http::Request::builder()
            .method("POST")
            .uri("http://127.0.0.1:1/auth/token?a=1")
            .body(body)
            .expect("request")
    }

    #[tokio::test]
    async fn the_log_keeps_at_most_the_bound_and_counts_what_it_dropped() {
        let r = RecordingHttpClient::new(Arc::new(Echo));
        for _ in 0..MAX_EXCHANGES + 3 {
            r.execute(request(b"grant_type=x".to_vec()))
                .await
                .expect("echo");
        }
        assert_eq!(r.exchanges().len(), MAX_EXCHANGES);
        assert_eq!(r.dropped(), 3);
        let e = &r.exchanges()[0];
        assert_eq!(e.param("grant_type").as_deref(), Some("x"));
        assert_eq!(e.param("a").as_deref(), Some("1"));
        assert_eq!(e.path(), "/auth/token");
    }

    #[tokio::test]
    async fn bodies_are_capped() {
        let r = RecordingHttpClient::new(Arc::new(Echo));
        r.execute(request(vec![b'a'; MAX_BODY_BYTES * 2]))
            .await
            .expect("echo");
        let e = &r.exchanges()[0];
        assert_eq!(e.request_body.len(), MAX_BODY_BYTES);
        assert_eq!(e.response_body.len(), MAX_BODY_BYTES);
    }
}
