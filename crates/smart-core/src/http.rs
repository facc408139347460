//! The HTTP extension point.
//!
//! Every network call the protocol makes (discovery, token, refresh, later FHIR and
//! introspection) goes through one object-safe trait, [`HttpClient`], held as
//! `Arc<dyn HttpClient>`. It is `dyn` rather than a generic parameter because the transport is
//! chosen at run time (from configuration, or swapped for an instrumented one in tests), and the
//! cost of one boxed future is nothing next to a network round trip. See
//! `docs/architecture.md` for the full argument.
//!
//! The contract every implementation must keep:
//! - **never follow redirects**: a token request that follows a 307 to another origin would hand
//!   the code, verifier or client secret to that origin; the caller sees the 3xx instead;
//! - cap the response body (a hostile server must not exhaust memory);
//! - apply a timeout.
//!
//! [`ReqwestHttpClient`] (feature `reqwest`, on by default) keeps all three. The
//! [`check_transport_security`] policy — TLS everywhere except loopback — is enforced by the core
//! before any request is built, so a custom transport cannot weaken it.

use std::fmt;
use std::net::IpAddr;

use async_trait::async_trait;
use bytes::Bytes;
use url::Url;

/// An outgoing HTTP request: the `http` crate's type with an in-memory body.
pub type HttpRequest = http::Request<Vec<u8>>;

/// A received HTTP response with its whole (size-capped) body.
pub type HttpResponse = http::Response<Bytes>;

/// Sends HTTP requests for the protocol layer.
///
/// # Example: a transport that counts requests
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use smart_core::http::{HttpClient, HttpError, HttpRequest, HttpResponse};
///
/// #[derive(Debug)]
/// struct Counting<T> { inner: T, sent: AtomicUsize }
///
/// #[async_trait::async_trait]
/// impl<T: HttpClient> HttpClient for Counting<T> {
///     async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
///         self.sent.fetch_add(1, Ordering::Relaxed);
///         self.inner.execute(request).await
///     }
/// }
/// ```
#[async_trait]
pub trait HttpClient: Send + Sync + fmt::Debug {
    /// Sends `request` and returns the response, whatever its status. Redirects are returned,
    /// not followed.
    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, HttpError>;
}

/// A transport failure: no HTTP response was received (or it could not be read).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The request did not complete in time.
    #[error("request to {url} timed out; check that the server is reachable or raise the timeout")]
    Timeout {
        /// The URL (without query) that timed out.
        url: String,
    },
    /// The connection could not be established.
    #[error(
        "could not connect to {url}: {}; check that the server is running and reachable",
        crate::server_text::escape_controls(message)
    )]
    Connect {
        /// The URL (without query).
        url: String,
        /// What the transport reported.
        message: String,
    },
    /// The response body exceeded the configured cap.
    #[error(
        "response from {url} is larger than the {limit}-byte limit; the server may be misbehaving"
    )]
    BodyTooLarge {
        /// The URL (without query).
        url: String,
        /// The cap in bytes.
        limit: usize,
    },
    /// The HTTP client itself could not be set up (no request was sent).
    #[error("could not set up the HTTP client: {message}")]
    Setup {
        /// What went wrong.
        message: String,
    },
    /// Any other transport failure.
    #[error(
        "HTTP request to {url} failed: {}",
        crate::server_text::escape_controls(message)
    )]
    Other {
        /// The URL (without query).
        url: String,
        /// What the transport reported.
        message: String,
    },
}

impl HttpError {
    /// What the failure means for the app: timeouts and connection or transfer failures are
    /// temporary, an oversized body is the server's problem, a transport that cannot be set up
    /// is a configuration problem.
    pub fn kind(&self) -> crate::error_kind::ErrorKind {
        use crate::error_kind::ErrorKind;
        match self {
            HttpError::Timeout { .. } | HttpError::Connect { .. } | HttpError::Other { .. } => {
                ErrorKind::Temporary
            }
            HttpError::BodyTooLarge { .. } => ErrorKind::ServerBroken,
            HttpError::Setup { .. } => ErrorKind::Misconfigured,
        }
    }

    /// Whether retrying later may succeed.
    pub fn is_temporary(&self) -> bool {
        self.kind().is_temporary()
    }
}

/// Why a URL may not carry credentials or protocol traffic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InsecureUrl {
    /// Plain `http` to a host that is not loopback.
    #[error("{url} uses plain http to a non-loopback host; SMART requires TLS (use https://)")]
    PlainHttp {
        /// The offending URL.
        url: String,
    },
    /// Plain `http` (even to loopback) for an endpoint of an `https` server.
    #[error(
        "{url} uses plain http but was advertised for the https server {base}; an https server's endpoints must use https"
    )]
    DowngradeFromHttps {
        /// The offending URL.
        url: String,
        /// The https base or issuer it came from.
        base: String,
    },
    /// A scheme other than http or https.
    #[error("{url} has unsupported scheme `{scheme}`; only https (or http on loopback) is allowed")]
    Scheme {
        /// The offending URL.
        url: String,
        /// Its scheme.
        scheme: String,
    },
}

/// TLS is required for every URL except loopback (`127.0.0.0/8`, `::1`, `localhost`), where
/// local development and the embedded sandbox run.
pub fn check_transport_security(url: &Url) -> Result<(), InsecureUrl> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(InsecureUrl::PlainHttp {
            url: url.to_string(),
        }),
        other => Err(InsecureUrl::Scheme {
            url: url.to_string(),
            scheme: other.to_owned(),
        }),
    }
}

/// [`check_transport_security`], and in addition: when `base` (the FHIR base or issuer the URL
/// was learned from) uses `https`, `url` must use `https` too.
///
/// Plain-http loopback is for local development, where the FHIR server itself runs on the
/// loopback interface. An `https` EHR whose discovery document points the token endpoint at
/// `http://127.0.0.1:…` would otherwise make the client send codes and secrets in clear text to
/// whatever listens on that port of the user's machine.
///
/// ```
/// use smart_core::http::check_transport_security_for;
/// use url::Url;
///
/// let https_base = Url::parse("https://ehr.example/fhir").expect("url");
/// let loopback_base = Url::parse("http://127.0.0.1:8080/fhir").expect("url");
/// let loopback_token = Url::parse("http://127.0.0.1:8080/auth/token").expect("url");
/// assert!(check_transport_security_for(&loopback_token, &https_base).is_err());
/// assert!(check_transport_security_for(&loopback_token, &loopback_base).is_ok());
/// ```
pub fn check_transport_security_for(url: &Url, base: &Url) -> Result<(), InsecureUrl> {
    check_transport_security(url)?;
    if base.scheme() == "https" && url.scheme() != "https" {
        return Err(InsecureUrl::DowngradeFromHttps {
            url: url.to_string(),
            base: base.to_string(),
        });
    }
    Ok(())
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// The URL without query or fragment, safe to put in errors and logs (an authorize URL's query
/// carries the state; a callback's carries the code).
pub(crate) fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            u.set_query(None);
            u.set_fragment(None);
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "<unparseable url>".to_owned(),
    }
}

#[cfg(feature = "reqwest")]
pub use self::reqwest_client::{ReqwestHttpClient, ReqwestHttpClientBuilder};

#[cfg(feature = "reqwest")]
mod reqwest_client {
    use std::sync::Arc;
    use std::time::Duration;

    use async_trait::async_trait;
    use bytes::{Bytes, BytesMut};
    use tokio::sync::OnceCell;

    use super::{HttpClient, HttpError, HttpRequest, HttpResponse, redact_url};

    /// The default transport: reqwest with rustls, connection pooling, no redirects, a timeout and
    /// a response-size cap.
    ///
    /// Loading the system's certificate store is the most expensive part of setting up a client
    /// (about half the CPU of a short CLI command), and plain-http loopback servers (the sandbox,
    /// local development) never need it. So there are two reqwest clients with the same settings:
    /// one for `http` URLs, built at once without any trust roots, and one for `https` URLs, built
    /// with the system's roots on the first `https` request ([`tls_initialised`] tells whether
    /// that has happened). If the roots cannot be loaded, that request fails with an error naming
    /// its URL, and the next `https` request tries again.
    ///
    /// [`tls_initialised`]: ReqwestHttpClient::tls_initialised
    ///
    /// ```
    /// # #[cfg(feature = "reqwest")] {
    /// use std::time::Duration;
    /// let http = smart_core::http::ReqwestHttpClient::builder()
    ///     .timeout(Duration::from_secs(10))
    ///     .max_response_bytes(2 * 1024 * 1024)
    ///     .build()
    ///     .expect("HTTP client");
    /// assert!(!http.tls_initialised());
    /// # }
    /// ```
    #[derive(Debug, Clone)]
    pub struct ReqwestHttpClient {
        plain: reqwest::Client,
        tls: Arc<OnceCell<reqwest::Client>>,
        settings: ReqwestHttpClientBuilder,
    }

    /// Builds a [`ReqwestHttpClient`].
    #[derive(Debug, Clone)]
    pub struct ReqwestHttpClientBuilder {
        timeout: Duration,
        connect_timeout: Duration,
        max_response_bytes: usize,
        user_agent: String,
    }

    impl ReqwestHttpClient {
        /// Defaults: 30 s total timeout, 10 s connect timeout, 16 MiB response cap.
        pub fn builder() -> ReqwestHttpClientBuilder {
            ReqwestHttpClientBuilder {
                timeout: Duration::from_secs(30),
                connect_timeout: Duration::from_secs(10),
                max_response_bytes: 16 * 1024 * 1024,
                user_agent: concat!("smart-core/", env!("CARGO_PKG_VERSION")).to_owned(),
            }
        }

        /// A client with the default settings.
        pub fn new() -> Result<Self, HttpError> {
            Self::builder().build()
        }

        /// Whether the `https` client (and so the system's certificate store) has been loaded,
        /// which happens on the first `https` request.
        pub fn tls_initialised(&self) -> bool {
            self.tls.initialized()
        }

        /// The client for `url`'s scheme, building the `https` one on first use.
        async fn client_for(&self, https: bool, url: &str) -> Result<&reqwest::Client, HttpError> {
            if !https {
                return Ok(&self.plain);
            }
            self.tls
                .get_or_try_init(|| async {
                    tracing::debug!("first https request: loading the system's trust roots");
                    self.settings
                        .common()
                        .build()
                        .map_err(|e| HttpError::Other {
                            url: url.to_owned(),
                            message: format!(
                                "could not set up TLS ({}); check the system's CA certificates (or SSL_CERT_FILE / SSL_CERT_DIR)",
                                error_chain(&e)
                            ),
                        })
                })
                .await
        }
    }

    impl ReqwestHttpClientBuilder {
        /// Total time allowed for one request, body included.
        pub fn timeout(mut self, timeout: Duration) -> Self {
            self.timeout = timeout;
            self
        }

        /// Time allowed to establish a connection.
        pub fn connect_timeout(mut self, timeout: Duration) -> Self {
            self.connect_timeout = timeout;
            self
        }

        /// The largest response body accepted; larger ones fail with [`HttpError::BodyTooLarge`].
        pub fn max_response_bytes(mut self, limit: usize) -> Self {
            self.max_response_bytes = limit;
            self
        }

        /// The `User-Agent` header value.
        pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
            self.user_agent = user_agent.into();
            self
        }

        /// The settings both clients share: no redirects, the timeouts, the user agent.
        fn common(&self) -> reqwest::ClientBuilder {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(self.timeout)
                .connect_timeout(self.connect_timeout)
                .user_agent(self.user_agent.clone())
                .https_only(false) // the core's check_transport_security decides, per URL
        }

        /// Builds the client. The system's trust roots are not loaded yet (see
        /// [`ReqwestHttpClient`]).
        pub fn build(self) -> Result<ReqwestHttpClient, HttpError> {
            // No trust roots at all: this client only ever sends plain-http requests, and would
            // fail any TLS handshake rather than trust anything.
            let plain = self
                .common()
                .tls_certs_only(Vec::new())
                .build()
                .map_err(|e| HttpError::Setup {
                    message: error_chain(&e),
                })?;
            Ok(ReqwestHttpClient {
                plain,
                tls: Arc::new(OnceCell::new()),
                settings: self,
            })
        }
    }

    #[async_trait]
    impl HttpClient for ReqwestHttpClient {
        async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
            let url = redact_url(&request.uri().to_string());
            let https = request.uri().scheme_str() != Some("http");
            let client = self.client_for(https, &url).await?;
            let max_response_bytes = self.settings.max_response_bytes;
            let request = reqwest::Request::try_from(request).map_err(|e| HttpError::Other {
                url: url.clone(),
                message: e.to_string(),
            })?;
            let mut response = client
                .execute(request)
                .await
                .map_err(|e| map_error(&url, e))?;
            if response
                .content_length()
                .is_some_and(|len| len > max_response_bytes as u64)
            {
                return Err(HttpError::BodyTooLarge {
                    url,
                    limit: max_response_bytes,
                });
            }
            let mut builder = http::Response::builder()
                .status(response.status())
                .version(response.version());
            if let Some(headers) = builder.headers_mut() {
                *headers = std::mem::take(response.headers_mut());
            }
            let mut body = BytesMut::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| map_error(&url, e))? {
                if body.len().saturating_add(chunk.len()) > max_response_bytes {
                    return Err(HttpError::BodyTooLarge {
                        url,
                        limit: max_response_bytes,
                    });
                }
                body.extend_from_slice(&chunk);
            }
            builder
                .body(Bytes::from(body))
                .map_err(|e| HttpError::Other {
                    url,
                    message: e.to_string(),
                })
        }
    }

    /// An error and its sources on one line.
    fn error_chain(e: &dyn std::error::Error) -> String {
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            let text = s.to_string();
            if !message.contains(&text) {
                message = format!("{message}: {text}");
            }
            source = s.source();
        }
        message
    }

    fn map_error(url: &str, e: reqwest::Error) -> HttpError {
        // reqwest's Display includes the full URL (and so the query); use our redacted one.
        let e = e.without_url();
        let message = error_chain(&e);
        if e.is_timeout() {
            HttpError::Timeout {
                url: url.to_owned(),
            }
        } else if e.is_connect() {
            HttpError::Connect {
                url: url.to_owned(),
                message,
            }
        } else {
            HttpError::Other {
                url: url.to_owned(),
                message,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_required_except_loopback() {
        let ok = [
            "https://ehr.example.org/fhir",
            "http://127.0.0.1:8080/fhir",
            "http://127.9.9.9/fhir",
            "http://localhost/fhir",
            "http://[::1]:9/fhir",
        ];
        for u in ok {
            assert_eq!(
                check_transport_security(&Url::parse(u).expect("url")),
                Ok(()),
                "{u}"
            );
        }
        let bad = [
            "http://ehr.example.org/fhir",
            "http://10.0.0.1/fhir",
            "ftp://127.0.0.1/x",
        ];
        for u in bad {
            assert!(
                check_transport_security(&Url::parse(u).expect("url")).is_err(),
                "{u}"
            );
        }
    }

    #[test]
    fn redacted_urls_lose_query_and_credentials() {
        assert_eq!(
            redact_url("https://user:pw@ehr/cb?code=abc&state=def#x"),
            "https://user@ehr/cb"
        );
    }
}
