//! Routing, CORS, `Host` checks and connection handling.
//!
//! The sandbox approves authorizations without a user, so any page that can
//! make a browser talk to it can drive a launch. Two defences live here:
//! requests must name the sandbox in `Host` (a DNS-rebinding page sends its
//! own host name), and the server bounds what a connection may hold
//! (headers and bodies must arrive in time, requests end in time, and the
//! number of connections is capped, the oldest giving way to a new one).
//!
//! CORS follows SMART S-5: discovery documents and the JWKS are readable from
//! any origin; the token and introspection endpoints and the FHIR API only
//! from origins of registered redirect or launch URIs, so a browser app under test behaves here as it
//! would at a real EHR that registered it.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot, watch};
use tower::ServiceExt;
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::timeout::TimeoutBody;

use crate::authorize;
use crate::client_id_header::{Endpoint, MAX_VALUE_CHARS};
use crate::config::ConnectionLimits;
use crate::discovery;
use crate::fhir;
use crate::fhir::reply::Reply;
use crate::introspect;
use crate::launch;
use crate::oauth_error;
use crate::oidc;
use crate::state::Shared;
use crate::token;

/// Builds the sandbox router. Every path comes from the profile (the
/// `generic` ones are `/fhir`, `/auth/authorize`, `/auth/token`,
/// `/auth/introspect` and `/auth/jwks`).
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let urls = &shared.urls;
    let fhir = &urls.fhir_path;
    let mut router = Router::new()
        .route("/", get(discovery::index))
        .route(
            &urls.smart_configuration_path(),
            get(discovery::smart_configuration),
        )
        .route(&urls.metadata_path(), get(discovery::metadata));
    for path in &urls.openid_configuration_paths {
        router = router.route(path, get(oidc::openid_configuration));
    }
    let fhir_well_known = format!("{fhir}/.well-known/openid-configuration");
    if !urls.openid_configuration_paths.contains(&fhir_well_known) {
        // Not served at the FHIR base (Cerner): a plain 404, not a FHIR 401.
        router = router.route(&fhir_well_known, get(not_found));
    }
    if let Some(path) = &urls.registration_path {
        router = router.route(path, post(crate::dynamic_registration::register));
    }
    router
        .route(fhir, any(fhir::entry))
        .route(&format!("{fhir}/"), any(fhir::entry))
        .route(&format!("{fhir}/{{*rest}}"), any(fhir::entry))
        .route(
            &urls.authorize_path,
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route(&urls.token_path, post(token::token))
        .route(&urls.introspection_path, post(introspect::introspect))
        .route(&urls.jwks_path, get(oidc::jwks))
        .route("/sandbox/launch", post(launch::launch_json))
        .route("/sandbox/ehr-launch", get(launch::launch_redirect))
        .route("/smart-style.json", get(discovery::smart_style))
        .fallback(fallback)
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            check_client_id_header,
        ))
        .layer(middleware::from_fn_with_state(shared.clone(), cors))
        // Clients send `Accept-Encoding: gzip`; search pages are large.
        .layer(CompressionLayer::new().quality(CompressionLevel::Fastest))
        .layer(middleware::from_fn_with_state(
            Arc::new(served_hosts(&shared.fhir_base)),
            check_host,
        ))
        .with_state(shared)
}

/// The `Host` values that name this sandbox: `127.0.0.1`, `localhost` and
/// `[::1]` with its port, and the authority of its FHIR base.
fn served_hosts(fhir_base: &str) -> Vec<String> {
    let Ok(base) = url::Url::parse(fhir_base) else {
        return Vec::new();
    };
    let Some(port) = base.port_or_known_default() else {
        return Vec::new();
    };
    let mut hosts: Vec<String> = ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .map(|h| format!("{h}:{port}"))
        .collect();
    if let Some(host) = base.host_str() {
        hosts.push(format!("{host}:{port}").to_ascii_lowercase());
    }
    if base.port().is_none() {
        // A default port may be left out of `Host`.
        let bare: Vec<String> = hosts
            .iter()
            .filter_map(|h| h.rsplit_once(':').map(|(name, _)| name.to_owned()))
            .collect();
        hosts.extend(bare);
    }
    hosts
}

/// Refuses requests whose `Host` is not one of the sandbox's own addresses
/// (421 Misdirected Request): a page on another host name that rebinds its
/// DNS name to 127.0.0.1 reaches the port, but its requests carry its own
/// name.
async fn check_host(
    State(hosts): State<Arc<Vec<String>>>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase)
        .or_else(|| {
            request
                .uri()
                .authority()
                .map(|a| a.as_str().to_ascii_lowercase())
        });
    if host.as_ref().is_some_and(|h| hosts.contains(h)) {
        return next.run(request).await;
    }
    let shown = host.map_or_else(
        || "no Host header".to_owned(),
        |h| format!("Host {:?}", shown_text(&h)),
    );
    tracing::debug!("request refused: {shown} does not name the sandbox");
    (
        StatusCode::MISDIRECTED_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!(
            "421 Misdirected Request: {shown} does not name this sandbox; use one of {} \
             (other host names are refused so that a web page cannot reach the sandbox \
             through DNS rebinding)\n",
            hosts.join(", ")
        ),
    )
        .into_response()
}

/// A client-sent value, shortened and without control characters.
fn shown_text(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(100).collect()
}

/// Serves `app` on `listener` until `stop` resolves (or its sender is
/// dropped), then lets open connections finish their requests.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    stop: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    let table = Arc::new(Mutex::new(ConnectionTable::default()));
    let (shutdown, shutdown_seen) = watch::channel(());
    let mut stop = pin!(stop);
    loop {
        let stream = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait for
                    // connections to close instead of spinning.
                    tracing::debug!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let Some(slot) = ConnectionTable::admit(&table, limits.max_connections) else {
            drop(stream);
            continue;
        };
        tokio::spawn(serve_connection(
            stream,
            app.clone(),
            limits.clone(),
            slot,
            shutdown_seen.clone(),
        ));
    }
    drop(listener);
    drop(shutdown_seen);
    let _ = shutdown.send(());
    // Every connection task holds a receiver; they are done when all are gone.
    shutdown.closed().await;
    Ok(())
}

/// The open connections, oldest first, and how many tasks still run.
#[derive(Default)]
struct ConnectionTable {
    next_id: u64,
    /// Connections not yet asked to close, oldest first.
    open: VecDeque<(u64, Arc<Notify>)>,
    /// Connection tasks still running (including those asked to close).
    running: usize,
}

/// A connection's place in the [`ConnectionTable`], given back on drop.
struct ConnectionSlot {
    id: u64,
    close: Arc<Notify>,
    table: Arc<Mutex<ConnectionTable>>,
}

impl ConnectionTable {
    /// Admits a new connection. At `max` open connections the oldest is
    /// asked to close; at twice `max` running (closing ones finish their
    /// request first) the new one is refused.
    fn admit(table: &Arc<Mutex<ConnectionTable>>, max: usize) -> Option<ConnectionSlot> {
        let mut t = table.lock().unwrap_or_else(PoisonError::into_inner);
        if t.running >= max.saturating_mul(2) {
            return None;
        }
        while t.open.len() >= max {
            match t.open.pop_front() {
                Some((_, oldest)) => oldest.notify_one(),
                None => break,
            }
        }
        let id = t.next_id;
        t.next_id = t.next_id.wrapping_add(1);
        let close = Arc::new(Notify::new());
        t.open.push_back((id, close.clone()));
        t.running += 1;
        Some(ConnectionSlot {
            id,
            close,
            table: table.clone(),
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut t = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        t.running = t.running.saturating_sub(1);
        // Ids grow with age, so the entry is found by binary search.
        if let Ok(i) = t.open.binary_search_by_key(&self.id, |(id, _)| *id) {
            t.open.remove(i);
        }
    }
}

/// Serves one HTTP/1.1 connection with the header, body and request
/// timeouts of `limits`, until the peer closes it, a timeout fires, the
/// connection is evicted (`slot.close`) or the server stops.
async fn serve_connection(
    stream: TcpStream,
    app: Router,
    limits: ConnectionLimits,
    slot: ConnectionSlot,
    mut shutdown: watch::Receiver<()>,
) {
    let ConnectionLimits {
        body_read_timeout,
        request_timeout,
        header_read_timeout,
        ..
    } = limits;
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let request =
            request.map(|body| axum::body::Body::new(TimeoutBody::new(body_read_timeout, body)));
        let response = app.clone().oneshot(request);
        async move {
            match tokio::time::timeout(request_timeout, response).await {
                Ok(Ok(response)) => Ok::<_, Infallible>(response),
                Ok(Err(never)) => match never {},
                Err(_) => Ok(request_timed_out(request_timeout)),
            }
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let mut connection = pin!(builder.serve_connection(TokioIo::new(stream), service));
    let mut closing = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::trace!("connection ended: {e}");
                }
                break;
            }
            () = slot.close.notified(), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            _ = shutdown.changed(), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
    drop(slot);
}

/// 503 for a request that outlived [`ConnectionLimits::request_timeout`].
fn request_timed_out(limit: Duration) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!(
            "503 Service Unavailable: the request took longer than {} s and was abandoned\n",
            limit.as_secs_f64()
        ),
    )
        .into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "404 Not Found\n",
    )
        .into_response()
}

/// Unrouted paths: 404, or the profile's `unknown_tenant_body` (403, plain
/// text) under another tenant's FHIR base.
async fn fallback(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    match (
        &shared.profile.unknown_tenant_body,
        shared.profile.other_tenant(uri.path()),
    ) {
        (Some(body), Some(tenant)) => {
            tracing::debug!(tenant, "request for an unknown tenant");
            (
                StatusCode::FORBIDDEN,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                body.clone(),
            )
                .into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

impl Shared {
    fn is_public_document(&self, path: &str) -> bool {
        let urls = &self.urls;
        path == urls.smart_configuration_path()
            || urls.openid_configuration_paths.iter().any(|p| p == path)
            || path == urls.metadata_path()
            || path == urls.jwks_path
            || path == "/smart-style.json"
    }

    fn is_protected_api(&self, path: &str) -> bool {
        let urls = &self.urls;
        path == urls.token_path
            || path == urls.introspection_path
            || path == urls.fhir_path
            || path
                .strip_prefix(urls.fhir_path.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

async fn cors(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);

    if shared.is_public_document(&path) {
        if preflight {
            return preflight_response(&shared, HeaderValue::from_static("*"));
        }
        return next.run(request).await;
    }
    let allowed = origin
        .filter(|o| shared.is_protected_api(&path) && shared.is_registered_origin(o))
        .and_then(|o| HeaderValue::from_str(&o).ok());
    let Some(allowed) = allowed else {
        return next.run(request).await;
    };
    if preflight {
        return preflight_response(&shared, allowed);
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("WWW-Authenticate, Location, ETag, Last-Modified, Retry-After"),
    );
    response
}

fn preflight_response(shared: &Shared, origin: HeaderValue) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, PUT, DELETE, OPTIONS"),
    );
    let mut allowed =
        "Authorization, Content-Type, Accept, If-Match, If-None-Exist, Prefer".to_owned();
    if let Some(name) = &shared.profile.client_id_header {
        // A browser app sends the vendor's client-ID header too.
        allowed.push_str(", ");
        allowed.push_str(name);
    }
    if let Ok(value) = HeaderValue::from_str(&allowed) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, value);
    }
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    response
}

// ---------------------------------------------------------------------------
// The vendor client-ID header (`crate::client_id_header`)

/// Why a request's client-ID header was refused.
enum Refusal {
    /// The header appeared more than once.
    Repeated,
    /// Not visible ASCII, empty, or longer than [`MAX_VALUE_CHARS`].
    Malformed,
    /// No registered client has this ID.
    Unknown(String),
}

/// Checks and records the profile's client-ID header; a request without the
/// header, or under a profile without one, passes untouched.
async fn check_client_id_header(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(name) = shared.profile.client_id_header.as_deref() else {
        return next.run(request).await;
    };
    let Some(endpoint) = Endpoint::of(&shared.urls, request.uri().path()) else {
        return next.run(request).await;
    };
    let mut values = request.headers().get_all(name).iter();
    let Some(first) = values.next() else {
        return next.run(request).await;
    };
    let refusal = if values.next().is_some() {
        Some(Refusal::Repeated)
    } else {
        let text = first.to_str().ok().filter(|v| {
            !v.is_empty() && v.len() <= MAX_VALUE_CHARS && v.bytes().all(|b| b.is_ascii_graphic())
        });
        match text {
            None => Some(Refusal::Malformed),
            Some(value) => {
                let value = value.to_owned();
                shared.client_id_headers.record(endpoint, value.clone());
                shared
                    .client(&value)
                    .is_none()
                    .then_some(Refusal::Unknown(value))
            }
        }
    };
    match refusal {
        None => next.run(request).await,
        Some(refusal) => {
            let description = describe(name, &refusal);
            tracing::debug!(?endpoint, "request refused: {description}");
            refuse(&shared, endpoint, &description)
        }
    }
}

/// The error description for a refusal; a client-sent value is quoted with
/// escapes (it is visible ASCII and at most [`MAX_VALUE_CHARS`] long).
fn describe(name: &str, refusal: &Refusal) -> String {
    match refusal {
        Refusal::Repeated => format!("the {name} header was sent more than once"),
        Refusal::Malformed => format!(
            "the {name} header is not a client ID (1 to {MAX_VALUE_CHARS} visible ASCII characters, no spaces)"
        ),
        Refusal::Unknown(value) => format!(
            "the client ID {value:?} in the {name} header is unknown: no client is registered with it \
             (is it the client ID of another environment?)"
        ),
    }
}

/// The 400 a refused request gets, in the endpoint's own error shape: an
/// OAuth error for the OAuth endpoints, an OperationOutcome for discovery
/// and FHIR.
fn refuse(shared: &Shared, endpoint: Endpoint, description: &str) -> Response {
    match endpoint {
        Endpoint::Token | Endpoint::Introspection | Endpoint::Registration => {
            oauth_error::error_response(shared, oauth_error::err("invalid_client", description))
        }
        Endpoint::Authorize => authorize::unknown_client_page(description),
        Endpoint::Discovery | Endpoint::Fhir => {
            Reply::error(StatusCode::BAD_REQUEST, "invalid", description).into_http(false)
        }
    }
}
