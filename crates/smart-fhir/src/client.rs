//! The FHIR REST client: one request pipeline, a dynamic JSON API on top of it, and paging.
//!
//! Every interaction goes through one private pipeline so that the rules that protect patients
//! and tokens are written once:
//!
//! 1. **The URL must be under the FHIR base** the token was issued for (same scheme, host, port
//!    and path prefix). This covers caller-supplied URLs and, above all, server-supplied `next`
//!    links: a token sent to the wrong origin is a token leaked. A refused URL is never sent.
//! 2. **Headers** come from the vendor adapter (`Accept: application/fhir+json` by default), plus
//!    `Authorization: Bearer …` marked sensitive so that HTTP tooling does not log it.
//! 3. **Token lifecycle**: a token is asked of the [`BearerSource`] for each request (it is
//!    refreshed ahead of expiry there). On a `401` the client reports the rejected token with
//!    [`BearerSource::renew_after_unauthorized`] — which refreshes once however many requests
//!    report it — and repeats the request. Once, as a rule; twice at most, when the first
//!    renewal only found a token renewed elsewhere (another process's refresh, in the shared
//!    store) with a newer generation: the server had not judged that one, and if it refuses it
//!    too the second renewal is a real refresh. A `403` never causes a refresh: a new token
//!    has the same scopes.
//! 4. **Retries** of idempotent requests on `429`/`502`/`503`/`504` and transport failures, per
//!    [`RetryPolicy`].
//! 5. **Tracing**: one `fhir.request` span per request at INFO with the method, resource type,
//!    interaction, status and attempt. URLs (which may carry patient identifiers in the query)
//!    appear only in DEBUG events; tokens never appear.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_core::Stream;
use futures_util::{TryStreamExt as _, stream};
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use serde_json::Value;
use smart_core::http::{HttpClient, HttpError, HttpRequest, check_transport_security};
use smart_core::quirks::HookContext;
use smart_core::{Bearer, BearerSource};
use tracing::Instrument as _;
use url::Url;

use crate::error::{FhirError, is_transient, outcome_summary};
use crate::mode::ParseMode;
use crate::retry::{RetryPolicy, parse_retry_after};
use crate::search::{Page, Search};
use crate::versioned::{ETag, Versioned};

/// The FHIR JSON media type.
pub(crate) const FHIR_JSON: &str = "application/fhir+json";
const FORM: &str = "application/x-www-form-urlencoded";
const IF_MATCH: HeaderName = http::header::IF_MATCH;
const IF_NONE_EXIST: HeaderName = HeaderName::from_static("if-none-exist");
const PREFER: HeaderName = HeaderName::from_static("prefer");
/// The most token renewals one request makes after `401`s: the usual one, plus one when the
/// first only found a token renewed elsewhere and the server refused that too.
const MAX_TOKEN_RENEWALS: u32 = 2;

/// A FHIR REST client bound to one FHIR server and one token source.
///
/// Cloning is cheap (two `Arc`s and a few numbers); clones share the transport and the token
/// source, so concurrent requests share one refresh.
///
/// ```no_run
/// use std::sync::Arc;
/// use smart_fhir::{FhirClient, Search};
/// use futures_util::TryStreamExt as _;
///
/// # async fn run(smart: smart_core::SmartClient, session: smart_core::SessionId)
/// # -> Result<(), Box<dyn std::error::Error>> {
/// // After a launch: the session's tokens, refreshed as needed.
/// let auth = Arc::new(smart.session_bearer(&session).await?);
/// let fhir = FhirClient::new(smart.http().clone(), auth);
///
/// let patient = fhir.read_json("Patient", "pat-1").await?;
/// println!("version {:?}", patient.version_id);
///
/// let search = Search::new("Observation").patient("pat-1").code("http://loinc.org|8867-4");
/// let mut observations = std::pin::pin!(fhir.resources(&search));
/// while let Some(observation) = observations.try_next().await? {
///     println!("{}", observation["id"]);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct FhirClient {
    http: Arc<dyn HttpClient>,
    auth: Arc<dyn BearerSource>,
    base: Arc<Base>,
    retry: RetryPolicy,
    timeout: Duration,
    parse_mode: ParseMode,
}

/// The FHIR base, parsed once.
#[derive(Debug)]
struct Base {
    /// As configured, without a trailing slash.
    text: String,
    /// Parsed, or why it could not be.
    url: Result<Url, String>,
}

/// One request, before the token is added.
struct Call<'a> {
    method: Method,
    url: Url,
    body: Option<(Vec<u8>, &'static str)>,
    headers: Vec<(HeaderName, HeaderValue)>,
    idempotent: bool,
    resource_type: &'a str,
    interaction: &'static str,
}

/// A path segment after the resource type: a caller's id (validated) or one of ours.
enum Seg<'a> {
    Id(&'a str),
    Lit(&'static str),
}

/// A successful response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

impl FhirClient {
    /// A client for `auth.fhir_base()`, sending through `http`, with the default
    /// [`RetryPolicy`] and a 30 s timeout per attempt.
    pub fn new(http: Arc<dyn HttpClient>, auth: Arc<dyn BearerSource>) -> FhirClient {
        let text = auth.fhir_base().trim_end_matches('/').to_owned();
        let url = Url::parse(&text)
            .map_err(|e| format!("the FHIR base {text} is not a valid URL ({e})"))
            .and_then(|u| {
                check_transport_security(&u)
                    .map(|()| u)
                    .map_err(|e| e.to_string())
            });
        FhirClient {
            http,
            auth,
            base: Arc::new(Base { text, url }),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            parse_mode: ParseMode::default(),
        }
    }

    /// Replaces the retry policy.
    pub fn with_retry(mut self, policy: RetryPolicy) -> FhirClient {
        self.retry = policy;
        self
    }

    /// The time allowed for each HTTP exchange (each attempt; the [`RetryPolicy::budget`]
    /// bounds the whole request). Default 30 s. The transport's own timeout also applies.
    pub fn with_timeout(mut self, timeout: Duration) -> FhirClient {
        self.timeout = timeout;
        self
    }

    /// How typed interactions convert responses: [`ParseMode::Lenient`] (the default) keeps
    /// vendor deviations aside and reports them, [`ParseMode::Strict`] refuses them. Cloning a
    /// client is cheap, so `fhir.with_parse_mode(ParseMode::Strict).read::<Patient>(id)` sets
    /// it for one request.
    pub fn with_parse_mode(&self, mode: ParseMode) -> FhirClient {
        let mut client = self.clone();
        client.parse_mode = mode;
        client
    }

    /// The parse mode of typed interactions.
    pub fn parse_mode(&self) -> ParseMode {
        self.parse_mode
    }

    /// The FHIR base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base.text
    }

    /// The token source.
    pub fn auth(&self) -> &Arc<dyn BearerSource> {
        &self.auth
    }

    /// The retry policy in force.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    // ---------------------------------------------------------------------------------------
    // Dynamic (JSON) interactions
    // ---------------------------------------------------------------------------------------

    /// `GET [base]/{resource_type}/{id}`.
    pub async fn read_json(
        &self,
        resource_type: &str,
        id: &str,
    ) -> Result<Versioned<Value>, FhirError> {
        let url = self.resource_url(resource_type, &[Seg::Id(id)])?;
        let reply = self.execute(Call::get(url, resource_type, "read")).await?;
        reply.versioned()
    }

    /// `GET [base]/{resource_type}/{id}/_history/{version_id}`.
    pub async fn vread_json(
        &self,
        resource_type: &str,
        id: &str,
        version_id: &str,
    ) -> Result<Versioned<Value>, FhirError> {
        let url = self.resource_url(
            resource_type,
            &[Seg::Id(id), Seg::Lit("_history"), Seg::Id(version_id)],
        )?;
        let reply = self.execute(Call::get(url, resource_type, "vread")).await?;
        reply.versioned()
    }

    /// `GET` of an absolute URL (or a path relative to the base) that must be under the FHIR
    /// base: a `Reference.reference`, a `Location`, a link. URLs elsewhere fail with
    /// [`FhirError::ForeignUrl`] without being sent.
    pub async fn get_json(&self, url: &str) -> Result<Versioned<Value>, FhirError> {
        let url = self.checked_url(url)?;
        let resource_type = self.type_in(&url);
        let reply = self.execute(Call::get(url, &resource_type, "get")).await?;
        reply.versioned()
    }

    /// The first page of a search (`GET [base]/{type}?…`, or `POST [base]/{type}/_search` after
    /// [`Search::post`]).
    pub async fn search_json(&self, search: &Search) -> Result<Page, FhirError> {
        let resource_type = search.resource_type();
        // The adapter's soft checks (e.g. searches a vendor answers only with a patient).
        let adapter = self.auth.adapter();
        let ctx = self.hook_context();
        for warning in adapter
            .fhir()
            .search_warnings(&ctx, resource_type, search.parameters())
        {
            tracing::warn!(
                resource_type,
                warning = %smart_core::server_text::escape_controls(&warning),
                "the vendor adapter flags this search"
            );
        }
        let query = search.query_string();
        let call = if search.is_post() {
            let url = self.resource_url(resource_type, &[Seg::Lit("_search")])?;
            Call {
                method: Method::POST,
                body: Some((query.into_bytes(), FORM)),
                // POST _search reads; repeating it is harmless.
                idempotent: true,
                ..Call::get(url, resource_type, "search")
            }
        } else {
            let mut url = self.resource_url(resource_type, &[])?;
            if !query.is_empty() {
                url.set_query(Some(&query));
            }
            Call::get(url, resource_type, "search")
        };
        let reply = self.execute(call).await?;
        reply.page(resource_type)
    }

    /// The page after `page` (by its `next` link), or `None` on the last page.
    pub async fn next_page(&self, search: &Search, page: &Page) -> Result<Option<Page>, FhirError> {
        match &page.next {
            Some(next) => self.page_at(next, search.resource_type()).await.map(Some),
            None => Ok(None),
        }
    }

    /// The pages of a search, fetched one at a time as the stream is polled, following only the
    /// server's `next` links (each checked to be under the base), up to
    /// [`Search::page_limit`]. An error ends the stream.
    pub fn pages(
        &self,
        search: &Search,
    ) -> impl Stream<Item = Result<Page, FhirError>> + Send + 'static {
        enum Cursor {
            First,
            Next(String),
            Done,
        }
        let client = self.clone();
        let search = Arc::new(search.clone());
        stream::unfold((Cursor::First, 0usize), move |(cursor, fetched)| {
            let client = client.clone();
            let search = search.clone();
            async move {
                if search.max_pages().is_some_and(|limit| fetched >= limit) {
                    return None;
                }
                let (result, current) = match cursor {
                    Cursor::Done => return None,
                    Cursor::First => (client.search_json(&search).await, None),
                    Cursor::Next(url) => {
                        let result = client.page_at(&url, search.resource_type()).await;
                        (result, Some(url))
                    }
                };
                match result {
                    Ok(page) => {
                        let next = match &page.next {
                            Some(next) if current.as_deref() == Some(next.as_str()) => {
                                tracing::warn!(
                                    resource_type = search.resource_type(),
                                    "the server's next link points to the same page; stopping"
                                );
                                Cursor::Done
                            }
                            Some(next) => Cursor::Next(next.clone()),
                            None => Cursor::Done,
                        };
                        Some((Ok(page), (next, fetched.saturating_add(1))))
                    }
                    Err(e) => Some((Err(e), (Cursor::Done, fetched.saturating_add(1)))),
                }
            }
        })
    }

    /// The matching resources of a search across all pages (see [`pages`](Self::pages)); only
    /// one page is held in memory at a time. Included resources and outcomes are skipped
    /// (outcomes are logged as warnings); use [`pages`](Self::pages) to see them.
    pub fn resources(
        &self,
        search: &Search,
    ) -> impl Stream<Item = Result<Value, FhirError>> + Send + 'static {
        self.pages(search)
            .map_ok(|page| stream::iter(page.entries.into_iter().map(Ok)))
            .try_flatten()
    }

    /// `POST [base]/{resourceType}`: creates the resource. Never retried (a retry could create
    /// it twice); use [`create_json_conditional`](Self::create_json_conditional) for a create
    /// that is safe to retry.
    pub async fn create_json(&self, resource: &Value) -> Result<Versioned<Value>, FhirError> {
        self.create_inner(resource, None).await
    }

    /// `POST [base]/{resourceType}` with `If-None-Exist: {query}` (e.g. `identifier=sys|123`):
    /// creates the resource unless one matches the query (then the server answers `200` with
    /// it, or `412` if several match). Idempotent, so retried.
    pub async fn create_json_conditional(
        &self,
        resource: &Value,
        if_none_exist: &str,
    ) -> Result<Versioned<Value>, FhirError> {
        self.create_inner(resource, Some(if_none_exist)).await
    }

    async fn create_inner(
        &self,
        resource: &Value,
        if_none_exist: Option<&str>,
    ) -> Result<Versioned<Value>, FhirError> {
        let resource_type = resource_type_of(resource)?;
        let url = self.resource_url(resource_type, &[])?;
        let mut headers = vec![(PREFER, HeaderValue::from_static("return=representation"))];
        if let Some(query) = if_none_exist {
            let value = HeaderValue::from_str(query).map_err(|_| {
                FhirError::InvalidRequest(
                    "If-None-Exist must be a URL query string (visible ASCII)".into(),
                )
            })?;
            headers.push((IF_NONE_EXIST, value));
        }
        let call = Call {
            method: Method::POST,
            body: Some((json_body(resource)?, FHIR_JSON)),
            headers,
            idempotent: if_none_exist.is_some(),
            ..Call::get(url, resource_type, "create")
        };
        let reply = self.execute(call).await?;
        reply.written(resource)
    }

    /// `PUT [base]/{resourceType}/{id}` with the resource's own `id`, and `If-Match` when
    /// given (then a concurrent change fails with [`FhirError::PreconditionFailed`]).
    pub async fn update_json(
        &self,
        resource: &Value,
        if_match: Option<&ETag>,
    ) -> Result<Versioned<Value>, FhirError> {
        let resource_type = resource_type_of(resource)?;
        let id = resource.get("id").and_then(Value::as_str).ok_or_else(|| {
            FhirError::InvalidRequest(format!(
                "the {resource_type} to update has no id; set `id` or use create"
            ))
        })?;
        let url = self.resource_url(resource_type, &[Seg::Id(id)])?;
        let mut headers = vec![(PREFER, HeaderValue::from_static("return=representation"))];
        if let Some(tag) = if_match {
            let value = HeaderValue::from_str(tag.as_str()).map_err(|_| {
                FhirError::InvalidRequest(format!("the ETag {tag} is not a valid header value"))
            })?;
            headers.push((IF_MATCH, value));
        }
        let call = Call {
            method: Method::PUT,
            body: Some((json_body(resource)?, FHIR_JSON)),
            headers,
            idempotent: true,
            ..Call::get(url, resource_type, "update")
        };
        let reply = self.execute(call).await?;
        reply.written(resource)
    }

    /// `DELETE [base]/{resource_type}/{id}`.
    pub async fn delete(&self, resource_type: &str, id: &str) -> Result<(), FhirError> {
        let url = self.resource_url(resource_type, &[Seg::Id(id)])?;
        let call = Call {
            method: Method::DELETE,
            ..Call::get(url, resource_type, "delete")
        };
        self.execute(call).await.map(drop)
    }

    /// `GET [base]/{resource_type}/{id}/_history`: the history Bundle (first page).
    pub async fn history_json(&self, resource_type: &str, id: &str) -> Result<Value, FhirError> {
        let url = self.resource_url(resource_type, &[Seg::Id(id), Seg::Lit("_history")])?;
        let reply = self
            .execute(Call::get(url, resource_type, "history"))
            .await?;
        reply.json()
    }

    /// An operation, e.g. `Patient/pat-1/$everything` or `$export` (a path relative to the
    /// base, optionally with a query). Without `parameters` it is a `GET` (retried); with them,
    /// a `POST` of the `Parameters` resource (never retried, as operations may change data).
    /// Returns the response body (`Value::Null` when empty).
    pub async fn operation_json(
        &self,
        path: &str,
        parameters: Option<&Value>,
    ) -> Result<Value, FhirError> {
        let url = self.relative_url(path)?;
        let resource_type = path
            .split(['/', '?'])
            .next()
            .filter(|s| !s.starts_with('$'))
            .unwrap_or("");
        let call = match parameters {
            None => Call::get(url, resource_type, "operation"),
            Some(p) => Call {
                method: Method::POST,
                body: Some((json_body(p)?, FHIR_JSON)),
                idempotent: false,
                ..Call::get(url, resource_type, "operation")
            },
        };
        let reply = self.execute(call).await?;
        reply.json()
    }

    /// `POST [base]` of a `batch` or `transaction` Bundle; returns the response Bundle. Never
    /// retried.
    pub async fn batch_json(&self, bundle: &Value) -> Result<Value, FhirError> {
        if resource_type_of(bundle)? != "Bundle" {
            return Err(FhirError::InvalidRequest(
                "batch_json needs a Bundle".into(),
            ));
        }
        let kind = bundle.get("type").and_then(Value::as_str).unwrap_or("");
        if kind != "batch" && kind != "transaction" {
            return Err(FhirError::InvalidRequest(format!(
                "batch_json needs Bundle.type batch or transaction, not `{kind}`"
            )));
        }
        let url = self.base_url()?.clone();
        let call = Call {
            method: Method::POST,
            body: Some((json_body(bundle)?, FHIR_JSON)),
            idempotent: false,
            ..Call::get(
                url,
                "Bundle",
                if kind == "batch" {
                    "batch"
                } else {
                    "transaction"
                },
            )
        };
        let reply = self.execute(call).await?;
        reply.json()
    }

    /// `GET [base]/metadata`: the CapabilityStatement.
    pub async fn capabilities_json(&self) -> Result<Value, FhirError> {
        let url = self.relative_url("metadata")?;
        let reply = self
            .execute(Call::get(url, "CapabilityStatement", "capabilities"))
            .await?;
        reply.json()
    }

    // ---------------------------------------------------------------------------------------
    // URLs
    // ---------------------------------------------------------------------------------------

    /// The context the adapter's FHIR hooks see: the FHIR base the tokens are for and the client
    /// id they were issued to.
    fn hook_context(&self) -> HookContext<'_> {
        let ctx = HookContext::new(self.auth.fhir_base());
        match self.auth.client_id() {
            Some(client_id) => ctx.with_client_id(client_id),
            None => ctx,
        }
    }

    fn base_url(&self) -> Result<&Url, FhirError> {
        self.base
            .url
            .as_ref()
            .map_err(|e| FhirError::InvalidRequest(e.clone()))
    }

    /// `[base]/{type}/{segments…}`, each part checked against FHIR's id grammar.
    fn resource_url(&self, resource_type: &str, segments: &[Seg<'_>]) -> Result<Url, FhirError> {
        if !is_resource_type(resource_type) {
            return Err(FhirError::InvalidRequest(format!(
                "`{resource_type}` is not a FHIR resource type name"
            )));
        }
        for s in segments {
            if let Seg::Id(id) = s
                && !is_fhir_id(id)
            {
                return Err(FhirError::InvalidRequest(format!(
                    "`{id}` is not a valid FHIR id (1-64 of A-Z a-z 0-9 - .)"
                )));
            }
        }
        let mut url = self.base_url()?.clone();
        {
            let mut path = url.path_segments_mut().map_err(|()| {
                FhirError::InvalidRequest("the FHIR base cannot have paths".into())
            })?;
            path.pop_if_empty()
                .push(resource_type)
                .extend(segments.iter().map(|s| match s {
                    Seg::Id(id) => *id,
                    Seg::Lit(lit) => lit,
                }));
        }
        Ok(url)
    }

    /// A path relative to the base (`Patient/1/$everything?start=2024`), checked.
    fn relative_url(&self, path: &str) -> Result<Url, FhirError> {
        let (path_part, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let ok_segment = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '$'))
        };
        if !path_part.split('/').all(ok_segment) {
            return Err(FhirError::InvalidRequest(format!(
                "`{path_part}` is not a relative FHIR path like `Patient/123/$everything`"
            )));
        }
        let mut url = self.base_url()?.clone();
        {
            let mut segments = url.path_segments_mut().map_err(|()| {
                FhirError::InvalidRequest("the FHIR base cannot have paths".into())
            })?;
            segments.pop_if_empty().extend(path_part.split('/'));
        }
        url.set_query(query);
        self.ensure_under_base(url)
    }

    /// An absolute URL, or one relative to the base, that must be under the base.
    fn checked_url(&self, raw: &str) -> Result<Url, FhirError> {
        let base = self.base_url()?;
        let url = match Url::parse(raw) {
            Ok(u) => u,
            Err(url::ParseError::RelativeUrlWithoutBase) => {
                let mut dir = base.clone();
                if !dir.path().ends_with('/') {
                    let path = format!("{}/", dir.path());
                    dir.set_path(&path);
                }
                dir.join(raw.trim_start_matches('/')).map_err(|e| {
                    FhirError::InvalidRequest(format!("`{raw}` is not a valid URL ({e})"))
                })?
            }
            Err(e) => {
                return Err(FhirError::InvalidRequest(format!(
                    "`{}` is not a valid URL ({e})",
                    redact(raw)
                )));
            }
        };
        self.ensure_under_base(url)
    }

    /// Same scheme, host and port as the base, no credentials, and a path at or below the base
    /// path (segment-wise: `/fhir2` is not under `/fhir`).
    fn ensure_under_base(&self, url: Url) -> Result<Url, FhirError> {
        let base = self.base_url()?;
        let base_path = base.path().trim_end_matches('/');
        let path = url.path();
        let path_ok = path == base_path
            || path
                .strip_prefix(base_path)
                .is_some_and(|rest| rest.starts_with('/'));
        let same_origin = url.scheme() == base.scheme()
            && url.host() == base.host()
            && url.port_or_known_default() == base.port_or_known_default();
        if same_origin && path_ok && url.username().is_empty() && url.password().is_none() {
            Ok(url)
        } else {
            Err(FhirError::ForeignUrl {
                url: redact(url.as_str()),
                base: self.base.text.clone(),
            })
        }
    }

    /// The resource type a URL under the base names (its first path segment after the base), for
    /// tracing; empty when it names none.
    fn type_in(&self, url: &Url) -> String {
        let base_path = self
            .base_url()
            .map(|b| b.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        url.path()
            .strip_prefix(&base_path)
            .and_then(|rest| rest.trim_start_matches('/').split('/').next())
            .filter(|t| is_resource_type(t))
            .unwrap_or("")
            .to_owned()
    }

    async fn page_at(&self, url: &str, resource_type: &str) -> Result<Page, FhirError> {
        let url = self.checked_url(url)?;
        let reply = self
            .execute(Call::get(url, resource_type, "search-page"))
            .await?;
        reply.page(resource_type)
    }

    // ---------------------------------------------------------------------------------------
    // The pipeline
    // ---------------------------------------------------------------------------------------

    async fn execute(&self, call: Call<'_>) -> Result<Reply, FhirError> {
        let span = tracing::info_span!(
            "fhir.request",
            method = %call.method,
            resource_type = call.resource_type,
            interaction = call.interaction,
            status = tracing::field::Empty,
            attempt = tracing::field::Empty,
        );
        self.execute_in_span(call, &span)
            .instrument(span.clone())
            .await
    }

    async fn execute_in_span(
        &self,
        call: Call<'_>,
        span: &tracing::Span,
    ) -> Result<Reply, FhirError> {
        // Also checked by the callers; this is the last line of defence for the token.
        let url = self.ensure_under_base(call.url.clone())?;
        let started = Instant::now();
        let adapter = self.auth.adapter();
        let mut bearer: Option<Bearer> = None;
        let mut renewals = 0u32;
        let mut may_renew = true;
        let mut sent = 0u32;
        let mut tries = 0u32; // attempts that count against the retry policy
        loop {
            let token = match bearer.take() {
                Some(b) => b,
                None => self.auth.bearer().await?,
            };
            sent = sent.saturating_add(1);
            tries = tries.saturating_add(1);
            span.record("attempt", sent);
            tracing::debug!(url = %url, attempt = sent, "FHIR request");

            let mut headers = HeaderMap::new();
            adapter
                .fhir()
                .fhir_request_headers(&self.hook_context(), &mut headers);
            let mut auth_value =
                HeaderValue::from_str(&format!("Bearer {}", token.access_token.expose_secret()))
                    .map_err(|_| {
                        FhirError::InvalidRequest(
                            "the access token contains characters not allowed in a header".into(),
                        )
                    })?;
            auth_value.set_sensitive(true);
            headers.insert(AUTHORIZATION, auth_value);
            if let Some((_, content_type)) = &call.body {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            }
            for (name, value) in &call.headers {
                headers.insert(name.clone(), value.clone());
            }
            let mut request: HttpRequest = http::Request::new(
                call.body
                    .as_ref()
                    .map(|(b, _)| b.clone())
                    .unwrap_or_default(),
            );
            *request.method_mut() = call.method.clone();
            *request.uri_mut() = url
                .as_str()
                .parse()
                .map_err(|_| FhirError::InvalidRequest("the URL is not a valid HTTP URI".into()))?;
            *request.headers_mut() = headers;

            let result = match tokio::time::timeout(self.timeout, self.http.execute(request)).await
            {
                Ok(result) => result,
                Err(_) => Err(HttpError::Timeout {
                    url: redact(url.as_str()),
                }),
            };

            let response = match result {
                Ok(response) => response,
                Err(e) => {
                    let retry = call.idempotent && is_transient(&e);
                    match self.retry_wait(retry, tries, started, None) {
                        Some(delay) => {
                            tracing::warn!(
                                attempt = sent,
                                delay_ms = millis(delay),
                                error = %e,
                                "FHIR request failed; retrying"
                            );
                            tokio::time::sleep(delay).await;
                            continue;
                        }
                        None => return Err(FhirError::Http(e)),
                    }
                }
            };

            let status = response.status();
            span.record("status", status.as_u16());
            let (parts, body) = response.into_parts();
            if status.is_success() {
                return Ok(Reply {
                    status: status.as_u16(),
                    headers: parts.headers,
                    body,
                });
            }
            if status == StatusCode::UNAUTHORIZED {
                if !may_renew {
                    return Err(FhirError::from_response(401, &parts.headers, &body, None));
                }
                renewals = renewals.saturating_add(1);
                tracing::debug!(
                    generation = token.generation,
                    renewal = renewals,
                    "FHIR server refused the token; renewing it"
                );
                let renewal = self.auth.renew_after_unauthorized(&token).await?;
                // Another renewal only for a token found renewed elsewhere that the server has
                // not judged yet; bounded, and only while the generation moves forward.
                may_renew = renewal.found_renewed
                    && renewal.bearer.generation > token.generation
                    && renewals < MAX_TOKEN_RENEWALS;
                bearer = Some(renewal.bearer);
                tries = tries.saturating_sub(1); // the token retry does not use up the retry policy
                continue;
            }
            let retry_after = parse_retry_after(&parts.headers, SystemTime::now());
            let retryable_status = matches!(status.as_u16(), 429 | 502 | 503 | 504);
            match self.retry_wait(
                call.idempotent && retryable_status,
                tries,
                started,
                retry_after,
            ) {
                Some(delay) => {
                    tracing::warn!(
                        status = status.as_u16(),
                        attempt = sent,
                        delay_ms = millis(delay),
                        "FHIR server asked to retry; waiting"
                    );
                    tokio::time::sleep(delay).await;
                }
                None => {
                    return Err(FhirError::from_response(
                        status.as_u16(),
                        &parts.headers,
                        &body,
                        retry_after,
                    ));
                }
            }
        }
    }

    /// How long to wait before another try, or `None` to give up: not retryable, attempts used
    /// up, or the wait would end past the budget.
    fn retry_wait(
        &self,
        retryable: bool,
        tries: u32,
        started: Instant,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        if !retryable || tries >= self.retry.max_attempts {
            return None;
        }
        let delay = self.retry.delay(tries, retry_after);
        // Saturating: `delay` may come from the server's `Retry-After`.
        if started.elapsed().saturating_add(delay) > self.retry.budget {
            tracing::debug!(
                delay_ms = millis(delay),
                "retry would exceed the retry budget; giving up"
            );
            return None;
        }
        Some(delay)
    }
}

impl<'a> Call<'a> {
    fn get(url: Url, resource_type: &'a str, interaction: &'static str) -> Call<'a> {
        Call {
            method: Method::GET,
            url,
            body: None,
            headers: Vec::new(),
            idempotent: true,
            resource_type,
            interaction,
        }
    }
}

impl Reply {
    /// The body as JSON (`Null` when empty).
    fn json(&self) -> Result<Value, FhirError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|e| FhirError::InvalidResponse {
            status: self.status,
            reason: format!("the body is not JSON ({e})"),
        })
    }

    /// A resource body with its version information.
    fn versioned(self) -> Result<Versioned<Value>, FhirError> {
        let resource = self.json()?;
        if !resource.is_object() {
            return Err(FhirError::InvalidResponse {
                status: self.status,
                reason: "expected a resource, got an empty or non-object body".into(),
            });
        }
        Ok(Versioned::from_parts(self.status, &self.headers, resource))
    }

    /// The result of a create or update: the returned resource, or — if the server ignored
    /// `Prefer: return=representation` — the sent one with the id and version from `Location`.
    fn written(self, sent: &Value) -> Result<Versioned<Value>, FhirError> {
        if !self.body.iter().all(u8::is_ascii_whitespace) {
            return self.versioned();
        }
        let mut resource = sent.clone();
        let mut versioned = Versioned::from_parts(self.status, &self.headers, Value::Null);
        if let (Some(location), Value::Object(map)) = (&versioned.location, &mut resource) {
            let parts: Vec<&str> = location
                .split('?')
                .next()
                .unwrap_or("")
                .split('/')
                .collect();
            if let Some(i) = parts.iter().rposition(|p| *p == "_history") {
                if i >= 1 {
                    map.insert("id".into(), Value::String(parts[i - 1].to_owned()));
                }
                if let Some(vid) = parts.get(i + 1) {
                    versioned
                        .version_id
                        .get_or_insert_with(|| (*vid).to_owned());
                }
            } else if let Some(id) = parts.last().filter(|p| !p.is_empty()) {
                map.insert("id".into(), Value::String((*id).to_owned()));
            }
        }
        versioned.resource = resource;
        Ok(versioned)
    }

    /// A searchset page; outcomes are logged.
    fn page(self, resource_type: &str) -> Result<Page, FhirError> {
        let status = self.status;
        let bundle = self.json()?;
        let page = Page::from_bundle(bundle, resource_type)
            .map_err(|reason| FhirError::InvalidResponse { status, reason })?;
        for outcome in &page.outcomes {
            let severity = outcome
                .pointer("/issue/0/severity")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            tracing::warn!(
                resource_type,
                severity,
                "search returned an OperationOutcome entry: {}",
                outcome_summary(outcome)
            );
        }
        Ok(page)
    }
}

/// `resourceType` of a resource to send.
fn resource_type_of(resource: &Value) -> Result<&str, FhirError> {
    resource
        .get("resourceType")
        .and_then(Value::as_str)
        .filter(|t| is_resource_type(t))
        .ok_or_else(|| FhirError::InvalidRequest("the resource has no valid `resourceType`".into()))
}

fn json_body(resource: &Value) -> Result<Vec<u8>, FhirError> {
    serde_json::to_vec(resource)
        .map_err(|e| FhirError::InvalidRequest(format!("cannot serialize the resource ({e})")))
}

/// A resource type name: an ASCII letter followed by letters (FHIR type names are CamelCase).
fn is_resource_type(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.chars().all(|c| c.is_ascii_alphabetic())
}

/// FHIR `id`: `[A-Za-z0-9\-\.]{1,64}`.
fn is_fhir_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && s != "."
        && s != ".."
}

/// Whole milliseconds for logs, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A URL without query, fragment or credentials, for errors and logs.
fn redact(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut u) => {
            u.set_query(None);
            u.set_fragment(None);
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "<invalid URL>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use smart_core::quirks::VendorQuirks;
    use smart_core::secret::AccessToken;
    use smart_core::{Bearer, BearerError};

    #[derive(Debug)]
    struct Spec;
    impl VendorQuirks for Spec {
        fn name(&self) -> &str {
            "spec"
        }
    }

    #[derive(Debug)]
    struct Fixed(String);

    #[async_trait]
    impl BearerSource for Fixed {
        fn fhir_base(&self) -> &str {
            &self.0
        }
        fn adapter(&self) -> Arc<dyn VendorQuirks> {
            Arc::new(Spec)
        }
        async fn bearer(&self) -> Result<Bearer, BearerError> {
            Ok(Bearer {
                access_token: AccessToken::new("t"),
                generation: 1,
            })
        }
        async fn after_unauthorized(&self, rejected: &Bearer) -> Result<Bearer, BearerError> {
            Ok(rejected.clone())
        }
    }

    #[derive(Debug)]
    struct Unreachable;
    #[async_trait]
    impl HttpClient for Unreachable {
        async fn execute(
            &self,
            _request: HttpRequest,
        ) -> Result<smart_core::http::HttpResponse, HttpError> {
            panic!("nothing may be sent in these tests")
        }
    }

    fn client(base: &str) -> FhirClient {
        FhirClient::new(Arc::new(Unreachable), Arc::new(Fixed(base.into())))
    }

    #[test]
    fn only_urls_under_the_base_pass() {
        let c = client("https://ehr.example.org/fhir/r4/");
        assert_eq!(c.base(), "https://ehr.example.org/fhir/r4");
        for ok in [
            "https://ehr.example.org/fhir/r4",
            "https://ehr.example.org/fhir/r4/Patient/1",
            "https://EHR.example.org:443/fhir/r4/Observation?page=2",
            "Observation?page=3",
            "/Observation?page=3",
        ] {
            let url = c.checked_url(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert!(
                url.as_str().starts_with("https://ehr.example.org/fhir/r4"),
                "{url}"
            );
        }
        for bad in [
            "http://ehr.example.org/fhir/r4/Patient/1",
            "https://ehr.example.org:8443/fhir/r4/Patient/1",
            "https://evil.example.org/fhir/r4/Patient/1",
            "https://ehr.example.org.evil.org/fhir/r4/Patient/1",
            "https://ehr.example.org/fhir/r4x/Patient/1",
            "https://ehr.example.org/fhir/Patient/1",
            "https://ehr.example.org/fhir/r4/../admin",
            "https://ehr.example.org/fhir/r4/%2e%2e/admin",
            "https://user:pw@ehr.example.org/fhir/r4/Patient/1",
            "../admin?x=1",
        ] {
            let err = c.checked_url(bad).expect_err(bad);
            assert!(matches!(err, FhirError::ForeignUrl { .. }), "{bad}: {err}");
            assert!(!err.to_string().contains("x=1"), "queries are redacted");
        }
    }

    #[test]
    fn resource_urls_are_validated_and_escaped() {
        let c = client("http://127.0.0.1:8080/fhir");
        assert_eq!(
            c.resource_url(
                "Patient",
                &[Seg::Id("a-1.2"), Seg::Lit("_history"), Seg::Id("3")]
            )
            .expect("url")
            .as_str(),
            "http://127.0.0.1:8080/fhir/Patient/a-1.2/_history/3"
        );
        for (t, id) in [
            ("Patient", "../x"),
            ("Patient", "a/b"),
            ("Patient", ""),
            ("patient", "1"),
            ("Pat/ient", "1"),
            ("Patient", "a?b"),
            ("Patient", "_history"),
        ] {
            assert!(
                matches!(
                    c.resource_url(t, &[Seg::Id(id)]),
                    Err(FhirError::InvalidRequest(_))
                ),
                "{t}/{id}"
            );
        }
        assert_eq!(
            c.relative_url("Patient/p1/$everything?_count=10")
                .expect("op")
                .as_str(),
            "http://127.0.0.1:8080/fhir/Patient/p1/$everything?_count=10"
        );
        assert!(c.relative_url("Patient/../../admin").is_err());
        assert!(c.relative_url("//evil.org/x").is_err());
        assert!(c.relative_url("http://evil.org/x").is_err());
    }

    #[test]
    fn insecure_bases_are_refused_before_sending() {
        let c = client("http://ehr.example.org/fhir");
        assert!(matches!(
            c.resource_url("Patient", &[Seg::Id("1")]),
            Err(FhirError::InvalidRequest(_))
        ));
    }

    #[test]
    fn written_falls_back_to_location() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::LOCATION,
            HeaderValue::from_static("http://h/fhir/Patient/new-1/_history/2"),
        );
        let reply = Reply {
            status: 201,
            headers,
            body: Bytes::new(),
        };
        let v = reply
            .written(&serde_json::json!({"resourceType": "Patient"}))
            .expect("written");
        assert_eq!(v.resource["id"], "new-1");
        assert_eq!(v.version_id.as_deref(), Some("2"));
        assert_eq!(v.status, 201);
    }
}
