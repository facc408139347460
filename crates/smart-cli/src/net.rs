//! The HTTP transport every network command uses: the `--timeout` from the command line, and a
//! status line on stderr while a request is slow.
//!
//! A SMART launch is a chain of requests (discovery, authorize, token, JWKS, FHIR); when one
//! hangs, a silent terminal looks like a frozen program. After [`FIRST_STATUS_AFTER`] the CLI says
//! which URL it is waiting for, and repeats every [`STATUS_EVERY`]. Status lines are for people:
//! they are printed only when stderr is a terminal, so scripts that capture stderr still see
//! exactly one `error: …` line on failure.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use smart_core::SmartClientBuilder;
use smart_core::http::{HttpClient, HttpError, HttpRequest, HttpResponse, ReqwestHttpClient};

/// When the first status line appears.
pub(crate) const FIRST_STATUS_AFTER: Duration = Duration::from_secs(2);
/// How often it repeats while the request is still running.
pub(crate) const STATUS_EVERY: Duration = Duration::from_secs(5);
/// The connect timeout when `--timeout` does not ask for less.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest `--timeout` accepted: a day.
pub(crate) const MAX_TIMEOUT_SECS: u64 = 86_400;

static TIMEOUT: OnceLock<Duration> = OnceLock::new();

/// Sets the per-request timeout for the rest of the process (from `--timeout`).
pub(crate) fn set_timeout(timeout: Duration) {
    let _ = TIMEOUT.set(timeout);
}

/// Parses `--timeout SECS`: a whole number of seconds, 1 to a day.
pub(crate) fn parse_timeout(value: &str) -> Result<Duration, String> {
    let hint = format!("give whole seconds from 1 to {MAX_TIMEOUT_SECS}, e.g. --timeout 30");
    let secs: u64 = value
        .trim()
        .parse()
        .map_err(|_| format!("`{value}` is not a number of seconds; {hint}"))?;
    if secs == 0 || secs > MAX_TIMEOUT_SECS {
        return Err(format!("{secs} is out of range; {hint}"));
    }
    Ok(Duration::from_secs(secs))
}

/// The transport: reqwest with the configured timeout, reporting slow requests on a terminal.
pub(crate) fn http() -> Result<Arc<dyn HttpClient>, HttpError> {
    let mut builder = ReqwestHttpClient::builder();
    if let Some(timeout) = TIMEOUT.get() {
        builder = builder
            .timeout(*timeout)
            .connect_timeout((*timeout).min(CONNECT_TIMEOUT));
    }
    Ok(Arc::new(StatusReporting {
        inner: builder.build()?,
        report: crate::terminal::stderr_is_terminal(),
    }))
}

/// A `SmartClient` builder with the vendor adapters installed and [`http()`] as its transport.
pub(crate) fn client_builder() -> Result<SmartClientBuilder, HttpError> {
    Ok(smart_adapters::install(smart_core::SmartClient::builder()).http(http()?))
}

/// Wraps a transport and prints "waiting for URL (N s)…" on stderr while a request is slow.
#[derive(Debug)]
struct StatusReporting<T> {
    inner: T,
    report: bool,
}

#[async_trait]
impl<T: HttpClient> HttpClient for StatusReporting<T> {
    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        if !self.report {
            return self.inner.execute(request).await;
        }
        let url = shown_url(request.uri());
        let started = tokio::time::Instant::now();
        let work = self.inner.execute(request);
        tokio::pin!(work);
        let mut next = started + FIRST_STATUS_AFTER;
        loop {
            tokio::select! {
                result = &mut work => return result,
                () = tokio::time::sleep_until(next) => {
                    crate::terminal::eprint_line(&format!(
                        "waiting for {url} ({} s)…",
                        started.elapsed().as_secs()
                    ));
                    next += STATUS_EVERY;
                }
            }
        }
    }
}

/// The request URL without its query (which can be long, and carries parameters, not places).
fn shown_url(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("http");
    // Host and port only: never user information.
    let host = uri.host().unwrap_or("");
    let port = uri.port().map(|p| format!(":{p}")).unwrap_or_default();
    crate::terminal::clean(&format!("{scheme}://{host}{port}{}", uri.path())).into_owned()
}
