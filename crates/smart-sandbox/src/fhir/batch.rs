//! `POST /fhir` with a `batch` or `transaction` Bundle.
//!
//! Every entry is routed and authorized exactly as if it had been sent on its
//! own (SMART: batch and transaction requests are authorized entry by entry).
//! A batch runs the entries in order, independently, and reports each
//! status. A transaction is all or nothing: it runs against a private copy
//! of the store, in FHIR's order (DELETE, POST, PUT, GET), with `urn:uuid:`
//! references between its entries resolved to the ids the server assigns
//! (or, for a conditional create that finds a match, to that resource);
//! the first failing entry aborts it and its error becomes the response, and
//! only a fully successful transaction replaces the live store.
//!
//! A few bytes of Bundle can ask for a lot of work (every entry a search of
//! a full page), so Bundles are bounded: at most
//! [`Behavior::max_bundle_entries`] entries, and the answer is assembled as
//! JSON text that may not grow past [`Behavior::max_bundle_response_bytes`];
//! the first entry that would pass it stops the Bundle.

use std::collections::HashMap;
use std::sync::RwLock;

use axum::http::StatusCode;
use serde_json::Value;

use super::store::ResourceStore;
use super::{Ctx, Op, Reply, Route, perform, perform_read, read_lock, route, write_lock};
use crate::config::Behavior;

/// One parsed entry.
struct EntryRequest {
    method: String,
    url: String,
    route: Route,
    params: Vec<(String, String)>,
    resource: Option<Value>,
    if_match: Option<String>,
    if_none_exist: Option<String>,
    full_url: Option<String>,
}

impl EntryRequest {
    fn op(&self, resource: Option<Value>, assigned_id: Option<String>) -> Op<'_> {
        Op {
            route: self.route.clone(),
            params: self.params.clone(),
            body: resource,
            if_match: self.if_match.as_deref(),
            if_none_exist: self.if_none_exist.as_deref(),
            assigned_id,
        }
    }
}

fn parse_entry(i: usize, entry: &Value, base: &str) -> Result<EntryRequest, Box<Reply>> {
    let request = entry
        .get("request")
        .filter(|r| r.is_object())
        .ok_or_else(|| Box::new(Reply::invalid(&format!("entry {i} has no request"))))?;
    let text = |name: &str| request.get(name).and_then(Value::as_str).map(str::to_owned);
    let method = text("method")
        .ok_or_else(|| Box::new(Reply::invalid(&format!("entry {i} has no request.method"))))?
        .to_ascii_uppercase();
    if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "DELETE") {
        return Err(Box::new(Reply::error(
            StatusCode::BAD_REQUEST,
            "not-supported",
            &format!(
                "entry {i}: request.method {method} is not supported (GET, POST, PUT, DELETE)"
            ),
        )));
    }
    let url = text("url")
        .ok_or_else(|| Box::new(Reply::invalid(&format!("entry {i} has no request.url"))))?;
    let relative = match url.strip_prefix(base) {
        Some(rest) => rest.trim_start_matches('/'),
        None if url.contains("://") => {
            return Err(Box::new(Reply::invalid(&format!(
                "entry {i}: request.url {url:?} is not on this server; use a URL relative to {base}"
            ))));
        }
        None => url.trim_start_matches('/'),
    };
    let (path, query) = relative.split_once('?').unwrap_or((relative, ""));
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let has_page = params.iter().any(|(k, _)| k == "_page");
    let route = route(&method, path, has_page)?;
    if route == Route::Batch {
        return Err(Box::new(Reply::invalid(&format!(
            "entry {i}: a Bundle cannot be nested"
        ))));
    }
    Ok(EntryRequest {
        method,
        url: url.clone(),
        route,
        params,
        resource: entry.get("resource").cloned(),
        if_match: text("ifMatch"),
        if_none_exist: text("ifNoneExist"),
        full_url: entry
            .get("fullUrl")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// Replaces `{"reference": "urn:uuid:…"}` by the server references of the
/// entries created in this transaction.
fn resolve_references(value: &mut Value, map: &HashMap<String, String>) {
    match value {
        Value::Object(obj) => {
            for (k, v) in obj.iter_mut() {
                if k == "reference"
                    && let Some(target) = v.as_str().and_then(|r| map.get(r))
                {
                    *v = Value::String(target.clone());
                } else {
                    resolve_references(v, map);
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                resolve_references(v, map);
            }
        }
        _ => {}
    }
}

/// The response entries as JSON text, with the running size checked
/// against [`Behavior::max_bundle_response_bytes`].
struct ResponseEntries {
    texts: Vec<String>,
    bytes: usize,
    max_bytes: usize,
}

impl ResponseEntries {
    fn new(count: usize, limits: &Behavior) -> Self {
        ResponseEntries {
            texts: vec![String::new(); count],
            bytes: 0,
            max_bytes: limits.max_bundle_response_bytes,
        }
    }

    /// Stores entry `i`'s response, or the refusal if the answer would grow
    /// too large.
    fn set(&mut self, i: usize, reply: Reply) -> Result<(), Box<Reply>> {
        let text = reply.into_entry_text();
        self.bytes = self.bytes.saturating_add(text.len() + 1);
        if self.bytes > self.max_bytes {
            return Err(Box::new(Reply::error(
                StatusCode::BAD_REQUEST,
                "too-costly",
                &format!(
                    "the response to this Bundle would be larger than {} bytes (reached at entry {i}); \
                     send fewer entries or smaller searches (a lower _count) per Bundle",
                    self.max_bytes
                ),
            )));
        }
        self.texts[i] = text;
        Ok(())
    }

    fn into_bundle(self, kind: &str) -> Reply {
        let mut text = String::with_capacity(self.bytes + 64);
        text.push_str("{\"resourceType\":\"Bundle\",\"type\":\"");
        text.push_str(kind);
        text.push_str("\",\"entry\":[");
        text.push_str(&self.texts.join(","));
        text.push_str("]}");
        Reply::text(StatusCode::OK, Some(text))
    }
}

/// Handles a `batch` or `transaction` Bundle.
pub(super) fn batch(
    ctx: &Ctx<'_>,
    lock: &RwLock<ResourceStore>,
    body: Option<Value>,
    limits: &Behavior,
) -> Reply {
    let Some(bundle) =
        body.filter(|b| b.get("resourceType").and_then(Value::as_str) == Some("Bundle"))
    else {
        return Reply::invalid(
            "POST /fhir takes a Bundle of type batch or transaction; to create a resource, POST it to /fhir/{type}",
        );
    };
    let kind = bundle.get("type").and_then(Value::as_str).unwrap_or("");
    if kind != "batch" && kind != "transaction" {
        return Reply::invalid(&format!(
            "Bundle.type must be batch or transaction, not {kind:?}"
        ));
    }
    let entries: &[Value] = match bundle.get("entry") {
        None => &[],
        Some(Value::Array(a)) => a,
        Some(_) => return Reply::invalid("Bundle.entry must be an array"),
    };
    if entries.len() > limits.max_bundle_entries {
        return Reply::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-costly",
            &format!(
                "the Bundle has {} entries; this sandbox takes at most {} per batch or transaction; split it into several Bundles",
                entries.len(),
                limits.max_bundle_entries
            ),
        );
    }
    let parsed: Vec<Result<EntryRequest, Box<Reply>>> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| parse_entry(i, e, ctx.base))
        .collect();
    let mut responses = ResponseEntries::new(parsed.len(), limits);
    if kind == "batch" {
        for (i, p) in parsed.into_iter().enumerate() {
            let reply = match p {
                Err(reply) => *reply,
                Ok(e) => {
                    let op = e.op(e.resource.clone(), None);
                    if e.route.is_read_only() {
                        perform_read(ctx, &read_lock(lock), &op)
                    } else {
                        perform(ctx, &mut write_lock(lock), op)
                    }
                }
            };
            if let Err(refusal) = responses.set(i, reply) {
                return *refusal;
            }
        }
        return responses.into_bundle("batch-response");
    }
    transaction(ctx, lock, parsed, responses)
}

fn transaction(
    ctx: &Ctx<'_>,
    lock: &RwLock<ResourceStore>,
    parsed: Vec<Result<EntryRequest, Box<Reply>>>,
    mut responses: ResponseEntries,
) -> Reply {
    let mut requests = Vec::with_capacity(parsed.len());
    for (i, p) in parsed.into_iter().enumerate() {
        match p {
            Ok(r) => requests.push(r),
            Err(reply) => return failed(i, None, *reply),
        }
    }
    let mut live = write_lock(lock);
    let mut work: ResourceStore = live.clone();

    // Server ids for created entries, so entries can refer to each other.
    let mut assigned: Vec<Option<String>> = vec![None; requests.len()];
    let mut references: HashMap<String, String> = HashMap::new();
    for (i, r) in requests.iter().enumerate() {
        if let Route::Create(t) = r.route {
            let id = work.new_id(t);
            if let Some(full_url) = &r.full_url
                && (full_url.starts_with("urn:uuid:") || full_url.starts_with("urn:oid:"))
            {
                references.insert(full_url.clone(), format!("{t}/{id}"));
            }
            assigned[i] = Some(id);
        }
    }

    // Conditional creates run before the other POSTs, so that references to
    // an entry that turns out to exist already resolve to that resource.
    let rank = |r: &EntryRequest| match r.method.as_str() {
        "DELETE" => 0,
        "POST" if r.if_none_exist.is_some() => 1,
        "POST" => 2,
        "PUT" => 3,
        _ => 4,
    };
    let mut order: Vec<usize> = (0..requests.len()).collect();
    order.sort_by_key(|&i| rank(&requests[i]));

    for i in order {
        let r = &requests[i];
        let mut resource = r.resource.clone();
        if let Some(res) = resource.as_mut() {
            resolve_references(res, &references);
        }
        let reply = perform(ctx, &mut work, r.op(resource, assigned[i].take()));
        if !reply.status.is_success() {
            return failed(i, Some(r), reply);
        }
        if let (Route::Create(t), true, Some(full_url)) =
            (&r.route, reply.status == StatusCode::OK, &r.full_url)
            && let Some(existing) = reply
                .body_value()
                .as_ref()
                .and_then(|b| b.get("id"))
                .and_then(Value::as_str)
            && references.contains_key(full_url)
        {
            references.insert(full_url.clone(), format!("{t}/{existing}"));
        }
        if let Err(refusal) = responses.set(i, reply) {
            return failed(i, Some(r), *refusal);
        }
    }
    *live = work;
    responses.into_bundle("transaction-response")
}

/// The response of a failed transaction: the failing entry's status and
/// error, saying which entry it was and that nothing was applied.
fn failed(i: usize, request: Option<&EntryRequest>, reply: Reply) -> Reply {
    let body = reply.body_value();
    let issue = body
        .as_ref()
        .and_then(|b| b.get("issue"))
        .and_then(|issues| issues.get(0));
    let code = issue
        .and_then(|i| i.get("code"))
        .and_then(Value::as_str)
        .unwrap_or("processing");
    let diagnostics = issue
        .and_then(|i| i.get("diagnostics"))
        .and_then(Value::as_str)
        .unwrap_or("failed");
    let what = request.map_or_else(String::new, |r| format!(" ({} {})", r.method, r.url));
    let status = if reply.status.is_client_error() || reply.status.is_server_error() {
        reply.status
    } else {
        StatusCode::BAD_REQUEST
    };
    let mut r = Reply::error(
        status,
        code,
        &format!("transaction failed at entry {i}{what}: {diagnostics}; nothing was applied"),
    );
    r.challenge = reply.challenge;
    r
}
