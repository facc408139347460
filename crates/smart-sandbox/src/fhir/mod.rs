//! The FHIR R4 resource server under `/fhir`: read, vread, history, search
//! with paging, create/update/delete, batch and transaction, and
//! `Patient/$everything`, over the seeded data set, with SMART scope
//! enforcement on every request.
//!
//! Its job is to give apps the signals a real EHR gives, so that a client
//! tested here survives production:
//! * RFC 6750 §3: `401` with a bare `Bearer` challenge when no token is sent,
//!   `401 invalid_token` for an unknown, revoked or expired token (the signal
//!   to refresh), `403 insufficient_scope` when the grant does not cover the
//!   interaction (the signal *not* to refresh);
//! * the search behaviour of real servers: opaque `next` links, outcome
//!   entries for ignored parameters, `_include`d resources marked `include`;
//! * versioning with weak ETags, `If-Match` and `If-None-Exist`;
//! * injected faults ([`Behavior`](crate::Behavior) `fhir_*`): 429 with
//!   `Retry-After`, 503, slow responses, tokens that expire mid-session.
//!
//! Every request goes through [`entry`]: count, delay, faults, bearer check,
//! then [`route`]. Errors are OperationOutcomes.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::Value;
use smart_scopes::Scopes;

use crate::counters::CounterCells;
use crate::fhir::state::FhirFault;
use crate::params::{form_decode, is_form_content_type};
use crate::profile::VendorProfile;
use crate::state::Shared;
use crate::time::{http_date, now_ms};

pub(crate) mod access;
mod batch;
pub(crate) mod index;
mod ops;
pub(crate) mod reply;
pub(crate) mod search;
pub(crate) mod state;
pub(crate) mod store;

pub(crate) use reply::Reply;

use access::TokenInfo;
use store::ResourceStore;

/// What a request is about, after parsing the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `GET /fhir?_page=…`.
    Page,
    /// `POST /fhir` with a batch or transaction Bundle.
    Batch,
    /// `GET /fhir/{type}` or `POST /fhir/{type}/_search`.
    Search(&'static str, bool),
    Read(&'static str, String),
    VRead(&'static str, String, String),
    History(&'static str, String),
    Everything(String),
    Create(&'static str),
    Update(&'static str, String),
    Delete(&'static str, String),
}

/// The kind of interaction, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InteractionKind {
    Read,
    Search,
    Write,
}

impl Route {
    pub(crate) fn kind(&self) -> InteractionKind {
        match self {
            Route::Read(..) | Route::VRead(..) | Route::History(..) => InteractionKind::Read,
            Route::Page | Route::Search(..) | Route::Everything(_) => InteractionKind::Search,
            Route::Batch | Route::Create(_) | Route::Update(..) | Route::Delete(..) => {
                InteractionKind::Write
            }
        }
    }

    fn is_read_only(&self) -> bool {
        !matches!(self.kind(), InteractionKind::Write)
    }
}

fn supported_type(t: &str) -> Result<&'static str, Box<Reply>> {
    index::RESOURCE_TYPES
        .iter()
        .copied()
        .find(|x| *x == t)
        .ok_or_else(|| {
            Box::new(Reply::error(
                StatusCode::NOT_FOUND,
                "not-supported",
                &format!(
                    "resource type {t:?} is not supported; the sandbox serves {}",
                    index::RESOURCE_TYPES.join(", ")
                ),
            ))
        })
}

fn valid_id(id: &str) -> Result<String, Box<Reply>> {
    if index::is_valid_id(id) {
        Ok(id.to_owned())
    } else {
        Err(Box::new(Reply::invalid(&format!(
            "{id:?} is not a valid FHIR id ([A-Za-z0-9-.]{{1,64}})"
        ))))
    }
}

fn method_not_allowed(method: &str, path: &str) -> Reply {
    Reply::error(
        StatusCode::METHOD_NOT_ALLOWED,
        "not-supported",
        &format!("{method} is not supported on /fhir/{path}"),
    )
}

/// Parses a method and a path relative to the FHIR base (no leading `/`,
/// may be empty) into a route.
pub(crate) fn route(method: &str, path: &str, has_page: bool) -> Result<Route, Box<Reply>> {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| form_decode(s).unwrap_or_else(|| s.to_owned()))
        .collect();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let not_allowed = || Box::new(method_not_allowed(method, path));
    match (method, s.as_slice()) {
        ("GET", []) if has_page => Ok(Route::Page),
        ("GET", []) => Err(Box::new(Reply::invalid(
            "system-level search is not supported; search a type, e.g. GET /fhir/Observation?patient=pat-1",
        ))),
        ("POST", []) => Ok(Route::Batch),
        (_, []) => Err(not_allowed()),
        (m, [t]) => {
            let t = supported_type(t)?;
            match m {
                "GET" => Ok(Route::Search(t, false)),
                "POST" => Ok(Route::Create(t)),
                _ => Err(not_allowed()),
            }
        }
        (m, [t, "_search"]) => {
            let t = supported_type(t)?;
            match m {
                "POST" => Ok(Route::Search(t, true)),
                _ => Err(not_allowed()),
            }
        }
        (_, [t, "_history"]) => {
            supported_type(t)?;
            Err(Box::new(Reply::error(
                StatusCode::BAD_REQUEST,
                "not-supported",
                "type-level history is not supported; use /fhir/{type}/{id}/_history",
            )))
        }
        (m, [t, id]) => {
            let t = supported_type(t)?;
            let id = valid_id(id)?;
            match m {
                "GET" => Ok(Route::Read(t, id)),
                "PUT" => Ok(Route::Update(t, id)),
                "DELETE" => Ok(Route::Delete(t, id)),
                _ => Err(not_allowed()),
            }
        }
        (m, [t, id, op]) if op.starts_with('$') => {
            let t = supported_type(t)?;
            let id = valid_id(id)?;
            match (m, t, *op) {
                ("GET" | "POST", "Patient", "$everything") => Ok(Route::Everything(id)),
                _ => Err(Box::new(Reply::error(
                    StatusCode::NOT_FOUND,
                    "not-supported",
                    &format!(
                        "operation {op} is not supported on {t}; the sandbox has Patient/{{id}}/$everything"
                    ),
                ))),
            }
        }
        ("GET", [t, id, "_history"]) => Ok(Route::History(supported_type(t)?, valid_id(id)?)),
        ("GET", [t, id, "_history", vid]) => Ok(Route::VRead(
            supported_type(t)?,
            valid_id(id)?,
            (*vid).to_owned(),
        )),
        (_, [t, _, "_history", ..]) => {
            supported_type(t)?;
            Err(not_allowed())
        }
        (_, [t, ..]) => {
            supported_type(t)?;
            Err(Box::new(Reply::error(
                StatusCode::NOT_FOUND,
                "not-supported",
                &format!("/fhir/{path} is not a FHIR interaction the sandbox supports"),
            )))
        }
    }
}

/// Context shared by the interactions of one request.
pub(crate) struct Ctx<'a> {
    pub(crate) token: &'a TokenInfo,
    /// The FHIR base URL, no trailing slash.
    pub(crate) base: &'a str,
    /// The vendor profile (search outcome entries, required parameters).
    pub(crate) profile: &'a VendorProfile,
    /// `Prefer: handling=strict`.
    pub(crate) strict: bool,
}

/// One interaction to perform (an HTTP request, or a batch entry).
pub(crate) struct Op<'a> {
    pub(crate) route: Route,
    /// Search parameters (query string, plus form body for `_search`).
    pub(crate) params: Vec<(String, String)>,
    pub(crate) body: Option<Value>,
    pub(crate) if_match: Option<&'a str>,
    pub(crate) if_none_exist: Option<&'a str>,
    /// A server id assigned in advance (transaction `urn:uuid` entries).
    pub(crate) assigned_id: Option<String>,
}

fn read_lock(lock: &RwLock<ResourceStore>) -> RwLockReadGuard<'_, ResourceStore> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write_lock(lock: &RwLock<ResourceStore>) -> RwLockWriteGuard<'_, ResourceStore> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

/// Performs an interaction that does not write.
pub(crate) fn perform_read(ctx: &Ctx<'_>, store: &ResourceStore, op: &Op<'_>) -> Reply {
    match &op.route {
        Route::Read(t, id) => ops::read(ctx, store, t, id),
        Route::VRead(t, id, vid) => ops::vread(ctx, store, t, id, vid),
        Route::History(t, id) => ops::history(ctx, store, t, id),
        Route::Search(t, _) => ops::search(ctx, store, t, &op.params),
        Route::Page => ops::page(ctx, store, &op.params),
        Route::Everything(id) => ops::everything(ctx, store, id, &op.params),
        Route::Batch | Route::Create(_) | Route::Update(..) | Route::Delete(..) => Reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            "write routed as a read",
        ),
    }
}

/// Performs any interaction except batch/transaction against `store`.
pub(crate) fn perform(ctx: &Ctx<'_>, store: &mut ResourceStore, op: Op<'_>) -> Reply {
    match &op.route {
        Route::Create(t) => ops::create(ctx, store, t, op.body, op.if_none_exist, op.assigned_id),
        Route::Update(t, id) => ops::update(ctx, store, t, id, op.body, op.if_match),
        Route::Delete(t, id) => ops::delete(ctx, store, t, id, op.if_match),
        Route::Batch => Reply::invalid("a batch cannot contain a batch"),
        _ => perform_read(ctx, store, &op),
    }
}

/// The `Authorization: Bearer` checks.
enum BearerError {
    Missing,
    Invalid(&'static str, String),
}

/// Validates the bearer token and counts the call against
/// `expire_tokens_after_calls`.
fn bearer(shared: &Shared, headers: &HeaderMap) -> Result<TokenInfo, BearerError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(BearerError::Missing);
    };
    let limit = shared.behavior().expire_tokens_after_calls;
    let mut store = shared.store();
    let Some(record) = store.access_tokens.get(token) else {
        return Err(BearerError::Invalid(
            "login",
            "the access token is unknown".into(),
        ));
    };
    let Some(grant) = store.grants.get(&record.grant_id) else {
        return Err(BearerError::Invalid(
            "login",
            "the access token is unknown".into(),
        ));
    };
    if grant.revoked {
        return Err(BearerError::Invalid(
            "login",
            "the access token was revoked".into(),
        ));
    }
    if record.force_expired || record.expires_at <= Instant::now() {
        return Err(BearerError::Invalid(
            "expired",
            "the access token expired".into(),
        ));
    }
    let patient = grant.context.patient.clone();
    let Some(record) = store.access_tokens.get_mut(token) else {
        return Err(BearerError::Invalid(
            "login",
            "the access token is unknown".into(),
        ));
    };
    if let Some(limit) = limit
        && record.fhir_calls >= limit
    {
        record.force_expired = true;
        return Err(BearerError::Invalid(
            "expired",
            format!(
                "the access token expired (the sandbox expires tokens after {limit} FHIR calls)"
            ),
        ));
    }
    record.fhir_calls = record.fhir_calls.saturating_add(1);
    // The scopes were parsed when the token was issued; only the pointer is
    // copied under the store lock, the copy for this request is made after.
    let parsed = Arc::clone(&record.parsed);
    drop(store);
    Ok(TokenInfo {
        scopes: Scopes::clone(&parsed),
        patient,
    })
}

fn bearer_error_response(e: BearerError) -> Response {
    match e {
        BearerError::Missing => {
            let mut r = Reply::error(
                StatusCode::UNAUTHORIZED,
                "login",
                "an access token is required: send Authorization: Bearer <access_token>",
            );
            r.challenge = Some("Bearer realm=\"smart-sandbox\"".into());
            r.into_http(false)
        }
        BearerError::Invalid(code, description) => {
            Reply::invalid_token(code, &description).into_http(false)
        }
    }
}

fn fault_response(fault: FhirFault) -> Response {
    match fault {
        FhirFault::RateLimited {
            secs,
            http_date: as_date,
        } => {
            let mut r = Reply::error(
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                &format!("too many requests; retry after {secs} s (injected by fhir_rate_limit)"),
            )
            .into_http(false);
            let value = if as_date {
                http_date(now_ms() + i64::try_from(secs).unwrap_or(0).saturating_mul(1000))
            } else {
                secs.to_string()
            };
            if let Ok(v) = HeaderValue::from_str(&value) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        FhirFault::Unavailable => Reply::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "transient",
            "the FHIR server is temporarily unavailable (injected by fhir_unavailable)",
        )
        .into_http(false),
        FhirFault::ServerError => Reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            "the FHIR server failed (injected by fhir_server_errors)",
        )
        .into_http(false),
        FhirFault::GatewayTimeout => Reply::error(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            "the gateway timed out waiting for the FHIR server (injected by fhir_gateway_timeouts)",
        )
        .into_http(false),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &header::HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether an `Accept` header allows a JSON answer.
fn accepts_json(headers: &HeaderMap) -> bool {
    let Some(accept) = header_str(headers, &header::ACCEPT) else {
        return true;
    };
    accept.split(',').any(|media| {
        let media = media
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        media.is_empty()
            || media == "*/*"
            || media == "application/*"
            || media.ends_with("json")
            || media.ends_with("+json")
    })
}

fn is_json_content_type(value: Option<&str>) -> bool {
    value
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .is_none_or(|m| {
            m == "application/fhir+json" || m == "application/json" || m == "application/json+fhir"
        })
}

/// `ANY /fhir` and `ANY /fhir/{*rest}` (the profile's `fhir_path`; except
/// `metadata` and the `.well-known` documents, which have their own routes).
pub(crate) async fn entry(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    CounterCells::bump(&shared.counters.fhir);
    let path = uri
        .path()
        .strip_prefix(shared.urls.fhir_path.as_str())
        .unwrap_or("")
        .trim_start_matches('/')
        .to_owned();
    let mut params: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let has_page = params.iter().any(|(k, _)| k == "_page");
    let routed = route(method.as_str(), &path, has_page);
    match routed.as_ref().map(Route::kind) {
        Ok(InteractionKind::Read) => CounterCells::bump(&shared.counters.fhir_reads),
        Ok(InteractionKind::Search) => CounterCells::bump(&shared.counters.fhir_searches),
        Ok(InteractionKind::Write) => CounterCells::bump(&shared.counters.fhir_writes),
        Err(_) => {}
    }

    let (delay, fault) = shared.take_fhir_faults();
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    if let Some(f) = fault {
        CounterCells::bump(&shared.counters.fhir_faults);
        return fault_response(f);
    }

    let token = match bearer(&shared, &headers) {
        Ok(t) => t,
        Err(BearerError::Missing) if shared.behavior().fhir_without_token => TokenInfo {
            // Defect switch: an open endpoint, as if with full system access.
            scopes: Scopes::parse("system/*.cruds"),
            patient: None,
        },
        Err(e) => return bearer_error_response(e),
    };
    let route = match routed {
        Ok(r) => r,
        Err(reply) => return reply.into_http(false),
    };
    let wants_xml = params
        .iter()
        .any(|(k, v)| k == "_format" && v.to_ascii_lowercase().contains("xml"));
    if !accepts_json(&headers) || wants_xml {
        return Reply::error(
            StatusCode::NOT_ACCEPTABLE,
            "not-supported",
            "the sandbox answers only application/fhir+json; send Accept: application/fhir+json",
        )
        .into_http(false);
    }
    let prefer = header_str(&headers, &header::HeaderName::from_static("prefer")).unwrap_or("");
    let prefer_has = |p: &str| prefer.split([',', ';']).any(|x| x.trim() == p);
    let ctx = Ctx {
        token: &token,
        base: &shared.fhir_base,
        profile: &shared.profile,
        strict: prefer_has("handling=strict"),
    };
    let minimal = prefer_has("return=minimal");
    let content_type = header_str(&headers, &header::CONTENT_TYPE);

    let reply = match route {
        Route::Search(_, true) => {
            if !body.is_empty() {
                if !is_form_content_type(content_type) {
                    return Reply::error(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "not-supported",
                        "POST _search takes an application/x-www-form-urlencoded body",
                    )
                    .into_http(false);
                }
                params.extend(url::form_urlencoded::parse(&body).into_owned());
            }
            let op = op(route, params, None, &headers);
            perform_read(&ctx, &read_lock(shared.resources()), &op)
        }
        r if r.is_read_only() => {
            let op = op(r, params, None, &headers);
            perform_read(&ctx, &read_lock(shared.resources()), &op)
        }
        r => {
            let json = if matches!(r, Route::Delete(..)) {
                None
            } else {
                if !is_json_content_type(content_type) {
                    return Reply::error(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "not-supported",
                        "send resources as application/fhir+json",
                    )
                    .into_http(false);
                }
                match serde_json::from_slice::<Value>(&body) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        return Reply::invalid(&format!("the body is not valid JSON: {e}"))
                            .into_http(false);
                    }
                }
            };
            if r == Route::Batch {
                batch::batch(&ctx, shared.resources(), json, &shared.behavior())
            } else {
                let op = op(r, params, json, &headers);
                perform(&ctx, &mut write_lock(shared.resources()), op)
            }
        }
    };
    reply.into_http(minimal)
}

fn op(
    route: Route,
    params: Vec<(String, String)>,
    body: Option<Value>,
    headers: &HeaderMap,
) -> Op<'_> {
    Op {
        route,
        params,
        body,
        if_match: header_str(headers, &header::IF_MATCH),
        if_none_exist: header_str(headers, &header::HeaderName::from_static("if-none-exist")),
        assigned_id: None,
    }
}
