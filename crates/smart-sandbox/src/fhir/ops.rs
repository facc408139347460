//! The FHIR interactions themselves: read, vread, history, search and
//! paging, `$everything`, create (also conditional), update, delete.
//!
//! Each takes the store it works on, so the same code serves a single HTTP
//! request (under the store lock) and a transaction entry (against the
//! transaction's private copy). Authorization goes through one
//! [`Gate`] per interaction and type: stored resources reach a response only
//! as [`Visible`] values, which only a gate hands out.

use std::collections::HashSet;
use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Value, json};
use smart_scopes::Permissions;

use super::access::{Gate, Visible};
use super::index::{self, Key, RESOURCE_TYPES, in_patient_compartment};
use super::search::{self, PageToken, Search, Warning, WarningKind};
use super::store::{Live, Origin, ResourceStore, Version};
use super::{Ctx, Reply, supported_type};
use crate::profile::{ErrorFormat, VendorProfile};
use crate::time::now_ms;

fn ok_version(version: &Version, status: StatusCode) -> Reply {
    let mut r = Reply::text(status, version.resource_text());
    r.version = Some(version.version);
    r.last_modified = Some(version.last_updated);
    r
}

/// A stored resource as the body of a response.
fn ok_resource(visible: &Visible<'_>, status: StatusCode) -> Reply {
    ok_version(visible.version(), status)
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(reply) => return *reply,
        }
    };
}

// ---------------------------------------------------------------------------
// Reads

/// `GET /fhir/{type}/{id}`.
pub(super) fn read(ctx: &Ctx<'_>, store: &ResourceStore, t: &'static str, id: &str) -> Reply {
    let gate = tri!(Gate::open(ctx, t, Permissions::READ));
    let current = tri!(gate.current(store, id));
    let v = current.version();
    if v.is_deleted() {
        return Reply::gone(t, id, v.version, v.last_updated);
    }
    ok_resource(&current, StatusCode::OK)
}

/// `GET /fhir/{type}/{id}/_history/{vid}`.
pub(super) fn vread(
    ctx: &Ctx<'_>,
    store: &ResourceStore,
    t: &'static str,
    id: &str,
    vid: &str,
) -> Reply {
    let gate = tri!(Gate::open(ctx, t, Permissions::READ));
    let version = tri!(gate.version(store, id, vid));
    let v = version.version();
    if v.is_deleted() {
        return Reply::gone(t, id, v.version, v.last_updated);
    }
    let mut r = ok_resource(&version, StatusCode::OK);
    r.location = None;
    r
}

/// `GET /fhir/{type}/{id}/_history`: the versions the token may see.
pub(super) fn history(ctx: &Ctx<'_>, store: &ResourceStore, t: &'static str, id: &str) -> Reply {
    let gate = tri!(Gate::open(ctx, t, Permissions::READ));
    let versions = tri!(gate.history(store, id));
    let base = ctx.base;
    let entries: Vec<Value> = versions
        .iter()
        .map(|visible| {
            let v = visible.version();
            let (method, url, status) = match v.origin {
                Origin::Create => ("POST", t.to_owned(), "201 Created"),
                Origin::Update if v.version == 1 => ("PUT", format!("{t}/{id}"), "201 Created"),
                Origin::Update => ("PUT", format!("{t}/{id}"), "200 OK"),
                Origin::Delete => ("DELETE", format!("{t}/{id}"), "204 No Content"),
            };
            let mut entry = json!({ "fullUrl": format!("{base}/{t}/{id}") });
            if let Some(resource) = v.resource() {
                entry["resource"] = resource;
            }
            entry["request"] = json!({ "method": method, "url": url });
            entry["response"] = json!({
                "status": status,
                "etag": format!("W/\"{}\"", v.version),
                "lastModified": crate::time::format_instant(v.last_updated)
            });
            entry
        })
        .collect();
    Reply::new(
        StatusCode::OK,
        Some(json!({
            "resourceType": "Bundle",
            "type": "history",
            "total": entries.len(),
            "link": [{ "relation": "self", "url": format!("{base}/{t}/{id}/_history") }],
            "entry": entries
        })),
    )
}

// ---------------------------------------------------------------------------
// Search

/// `GET /fhir/{type}?…` and `POST /fhir/{type}/_search`.
pub(super) fn search(
    ctx: &Ctx<'_>,
    store: &ResourceStore,
    t: &'static str,
    params: &[(String, String)],
) -> Reply {
    if let Some(reply) = missing_required_param(ctx.profile, t, params) {
        return reply;
    }
    match search::parse(t, params, ctx.base, ctx.strict) {
        Ok(s) => execute(ctx, store, s, 0, true, session_start(ctx.profile, None)),
        Err(message) => Reply::invalid(&message),
    }
}

/// The profile's 400 when a search of `t` lacks every parameter of a
/// required-parameter rule (a name with a modifier, `subject:Patient`, counts).
fn missing_required_param(
    profile: &VendorProfile,
    t: &str,
    params: &[(String, String)],
) -> Option<Reply> {
    let used = |name: &str| {
        params.iter().any(|(k, v)| {
            !v.is_empty() && k.split_once(':').map_or(k.as_str(), |(base, _)| base) == name
        })
    };
    let rule = profile
        .required_search_params
        .iter()
        .find(|r| r.resource_types.iter().any(|x| x == t) && !r.any_of.iter().any(|p| used(p)))?;
    Some(match rule.format {
        ErrorFormat::Text => Reply::plain_text(StatusCode::BAD_REQUEST, &rule.message),
        ErrorFormat::OperationOutcome => {
            let mut issue = json!({
                "severity": "error",
                "code": "required",
                "diagnostics": rule.message
            });
            if let Some(code) = &rule.details_code {
                issue["details"] = details(rule.details_system.as_deref(), code, &rule.message);
            }
            Reply::new(
                StatusCode::BAD_REQUEST,
                Some(json!({ "resourceType": "OperationOutcome", "issue": [issue] })),
            )
        }
    })
}

/// A CodeableConcept with one coding and a text.
fn details(system: Option<&str>, code: &str, text: &str) -> Value {
    let mut coding = json!({ "code": code });
    if let Some(s) = system {
        coding["system"] = json!(s);
    }
    json!({ "coding": [coding], "text": text })
}

fn page_url(
    base: &str,
    store: &ResourceStore,
    t: &str,
    q: &[(String, String)],
    offset: usize,
    session: Option<i64>,
) -> String {
    let token = PageToken {
        v: 1,
        t: t.to_owned(),
        q: q.to_vec(),
        o: offset,
        i: session,
    };
    format!("{base}?_page={}", token.encode(store.page_key()))
}

fn query_string(pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("?{encoded}")
}

/// `GET /fhir?_page=…`: a later page of a search or `$everything`.
///
/// Tokens are signed by the server (see [`PageToken`]), so a forged or
/// edited one is a 400. They are not bound to the token that started the
/// search: the access check runs again, with the caller's token, on every
/// page, so replaying another client's page token yields only what the
/// caller could have searched itself.
pub(super) fn page(ctx: &Ctx<'_>, store: &ResourceStore, params: &[(String, String)]) -> Reply {
    let token = params
        .iter()
        .find(|(k, _)| k == "_page")
        .and_then(|(_, v)| PageToken::decode(v, store.page_key()));
    let Some(token) = token else {
        return Reply::invalid(
            "the _page token is not one this server issued; follow the next link exactly as given",
        );
    };
    if let Some(reply) = expired_paging_session(ctx.profile, token.i) {
        return reply;
    }
    let session = session_start(ctx.profile, token.i);
    let value = |name: &str| {
        token
            .q
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if token.t == "$everything" {
        let (Some(id), Some(count)) = (
            value("_id"),
            value("_count").and_then(|c| c.parse::<usize>().ok()),
        ) else {
            return Reply::invalid("malformed _page token");
        };
        let count = count.min(search::MAX_COUNT);
        return everything_page(ctx, store, id, count, token.o, Vec::new(), session);
    }
    let t = match supported_type(&token.t) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    match search::parse(t, &token.q, ctx.base, false) {
        Ok(s) => execute(ctx, store, s, token.o, false, session),
        Err(message) => Reply::invalid(&message),
    }
}

/// The start of a paging session to record in page links: the one `carried`
/// by the link being followed, or now for a first page; `None` (no time in
/// the links) under a profile whose sessions do not expire, so that the
/// same data gives the same bytes there.
fn session_start(profile: &VendorProfile, carried: Option<i64>) -> Option<i64> {
    profile
        .search_codes
        .as_ref()
        .and_then(|c| c.paging_session_lifetime_secs)
        .map(|_| carried.unwrap_or_else(now_ms))
}

/// The profile's 400 for a page link whose paging session (started at
/// `started`, Unix ms) has outlived
/// [`paging_session_lifetime_secs`](crate::SearchCodes::paging_session_lifetime_secs):
/// one `fatal` issue with the vendor's code (Epic 4113). 400, the status of
/// the sandbox's other refusals of a page link (a forged or edited token),
/// so that a client treats it as a request to fix (start the search again),
/// not as a token problem (401) or a deleted resource (410).
fn expired_paging_session(profile: &VendorProfile, started: Option<i64>) -> Option<Reply> {
    let codes = profile.search_codes.as_ref()?;
    let lifetime_ms = i64::try_from(codes.paging_session_lifetime_secs?)
        .unwrap_or(i64::MAX)
        .saturating_mul(1000);
    let code = codes.paging_session_expired.as_deref()?;
    let age = now_ms().saturating_sub(started?);
    (age >= lifetime_ms).then(|| {
        coded_error(
            StatusCode::BAD_REQUEST,
            "processing",
            codes.details_system.as_deref(),
            code,
            "Paging session expired",
            "the paging session of this search expired; run the search again from its first page",
        )
    })
}

/// An OperationOutcome error with one `fatal` issue carrying a vendor code in
/// `details` (the shape of Epic's coded answers, as `required_search_params`
/// and `search_outcome` send them).
fn coded_error(
    status: StatusCode,
    issue_code: &str,
    system: Option<&str>,
    code: &str,
    text: &str,
    diagnostics: &str,
) -> Reply {
    let issue = json!({
        "severity": "fatal",
        "code": issue_code,
        "diagnostics": diagnostics,
        "details": details(system, code, text)
    });
    Reply::new(
        status,
        Some(json!({ "resourceType": "OperationOutcome", "issue": [issue] })),
    )
}

/// The profile's 400 when a Patient search matches more patients than
/// [`patient_search_limit`](crate::SearchCodes::patient_search_limit) (Epic
/// 4127, over 100).
fn too_many_patients(profile: &VendorProfile, t: &str, total: usize) -> Option<Reply> {
    let codes = profile.search_codes.as_ref()?;
    let limit = codes.patient_search_limit?;
    let code = codes.too_many_results.as_deref()?;
    (t == "Patient" && total > limit).then(|| {
        coded_error(
            StatusCode::BAD_REQUEST,
            "too-costly",
            codes.details_system.as_deref(),
            code,
            "Too many results",
            &format!(
                "the search matches more than {limit} patients; narrow it (an identifier, or more demographics)"
            ),
        )
    })
}

/// The single patient a search is about through its compartment parameter
/// (`subject`/`patient` = one Patient), so the search can start from that
/// compartment instead of the whole table.
fn single_patient(s: &Search) -> Option<String> {
    let compartment_key = match s.resource_type {
        "AllergyIntolerance" => "patient",
        "Patient" | "Practitioner" => return None,
        _ => "subject",
    };
    s.clauses
        .iter()
        .find_map(|c| match (&c.target, c.alts.as_slice()) {
            (search::Target::Param(def, _), [search::Alt::Reference { resource_type, id }])
                if def.key == compartment_key
                    && resource_type.as_deref().or(def.target) == Some("Patient") =>
            {
                Some(id.clone())
            }
            _ => None,
        })
}

/// The `search.mode = outcome` entry of a search page: the profile's
/// `search_outcome` issue (on every page, or only on a page without matches
/// when it is `only_when_empty`) and one warning per ignored parameter (on
/// the first page); `None` when there is neither.
fn outcome_entry(ctx: &Ctx<'_>, warnings: &[Warning], empty: bool) -> Option<String> {
    let mut issues: Vec<Value> = Vec::new();
    if let Some(o) = ctx
        .profile
        .search_outcome
        .as_ref()
        .filter(|o| empty || !o.only_when_empty)
    {
        let mut issue = json!({
            "severity": o.severity,
            "code": o.code,
            "diagnostics": o.text
        });
        if let Some(code) = &o.details_code {
            issue["details"] = details(o.details_system.as_deref(), code, &o.text);
        }
        issues.push(issue);
    }
    let codes = ctx.profile.search_codes.as_ref();
    issues.extend(warnings.iter().map(|w| {
        let mut issue =
            json!({ "severity": "warning", "code": "not-supported", "diagnostics": w.message });
        // The vendor's code for the kind of warning (Epic 4122 / 59100).
        let coded = codes.and_then(|c| match w.kind {
            WarningKind::Unknown => c
                .unknown_parameter
                .as_deref()
                .map(|code| (c, code, "Unknown search parameter")),
            WarningKind::Ignored => c
                .ignored_parameter
                .as_deref()
                .map(|code| (c, code, "Search parameter ignored")),
        });
        if let Some((c, code, text)) = coded {
            issue["details"] = details(c.details_system.as_deref(), code, text);
        }
        issue
    }));
    (!issues.is_empty()).then(|| {
        json!({
            "resource": { "resourceType": "OperationOutcome", "issue": issues },
            "search": { "mode": "outcome" }
        })
        .to_string()
    })
}

fn match_entry(base: &str, visible: &Visible<'_>, mode: &str) -> String {
    format!(
        "{{\"fullUrl\":{},\"resource\":{},\"search\":{{\"mode\":\"{mode}\"}}}}",
        Value::String(format!(
            "{base}/{}/{}",
            visible.resource_type(),
            visible.id()
        )),
        visible
            .version()
            .resource_text()
            .unwrap_or_else(|| "null".into())
    )
}

/// A `searchset` Bundle, written as text: pages hold up to 200 resources.
fn searchset(total: Option<usize>, links: Vec<(&str, String)>, entries: Vec<String>) -> Reply {
    let links: Vec<Value> = links
        .into_iter()
        .map(|(relation, url)| json!({ "relation": relation, "url": url }))
        .collect();
    let mut out = String::from("{\"resourceType\":\"Bundle\",\"type\":\"searchset\"");
    if let Some(total) = total {
        out.push_str(&format!(",\"total\":{total}"));
    }
    out.push_str(",\"link\":");
    out.push_str(&Value::Array(links).to_string());
    out.push_str(",\"entry\":[");
    out.push_str(&entries.join(","));
    out.push_str("]}");
    Reply::text(StatusCode::OK, Some(out))
}

/// Runs a search and renders the page at `offset` (`first`: the request
/// was the search itself, not a page link); `session`: the paging session
/// start its links carry (see [`session_start`]).
fn execute(
    ctx: &Ctx<'_>,
    store: &ResourceStore,
    s: Search,
    offset: usize,
    first: bool,
    session: Option<i64>,
) -> Reply {
    let t = s.resource_type;
    let gate = tri!(Gate::open(ctx, t, Permissions::SEARCH));
    let access = gate.access();
    let named = search::named_patients(&s);
    if let Some(p) = access.foreign_patient(&named) {
        return Reply::forbidden(
            &format!(
                "patient/ scopes only allow searching the compartment of the patient in context ({}), not Patient/{p}",
                ctx.token.patient.as_deref().unwrap_or("none")
            ),
            &access.needed_beyond_compartment(Permissions::SEARCH),
        );
    }
    let candidates = match access.only_compartment() {
        Some(p) => store.compartment_live(t, p),
        None => match single_patient(&s) {
            Some(p) => store.compartment_live(t, &p),
            None => store.all_live(t),
        },
    };
    let mut matches: Vec<Live<'_>> = candidates
        .into_iter()
        .filter(|l| search::matches_all(l, &s.clauses))
        .collect();
    search::sort(&mut matches, &s.sort);
    let matches = gate.filter(matches);
    let total = matches.len();
    if let Some(reply) = too_many_patients(ctx.profile, t, total) {
        return reply;
    }
    let page: Vec<&Visible<'_>> = matches.iter().skip(offset).take(s.count).collect();
    let base = ctx.base;
    let mut entries: Vec<String> = page.iter().map(|v| match_entry(base, v, "match")).collect();

    // _include: the referenced resources the token may read, once each.
    let mut seen: HashSet<String> = page.iter().map(|v| format!("{t}/{}", v.id())).collect();
    let mut read_gates: Vec<(&str, Option<Gate<'_>>)> = Vec::new();
    for include in &s.includes {
        for visible in &page {
            for key in visible.version().index.values(include.param.key) {
                let Key::Reference(r) = key else { continue };
                let Some((rt, rid)) = r.split_once('/') else {
                    continue;
                };
                let wanted = include.target.as_deref().or(include.param.target);
                if wanted.is_some_and(|w| w != rt) || seen.contains(r) {
                    continue;
                }
                let Ok(rt) = supported_type(rt) else { continue };
                let Some(version) = store.live(rt, rid) else {
                    continue;
                };
                if !read_gates.iter().any(|(x, _)| *x == rt) {
                    read_gates.push((rt, Gate::open(ctx, rt, Permissions::READ).ok()));
                }
                let Some(gate) = read_gates
                    .iter()
                    .find(|(x, _)| *x == rt)
                    .and_then(|(_, g)| g.as_ref())
                else {
                    continue;
                };
                let candidate = Live {
                    id: rid,
                    slot: 0,
                    version,
                };
                if let Some(included) = gate.filter(vec![candidate]).first() {
                    seen.insert(r.clone());
                    entries.push(match_entry(base, included, "include"));
                }
            }
        }
    }
    let warnings: &[Warning] = if first { &s.warnings } else { &[] };
    let empty = entries.is_empty();
    entries.extend(outcome_entry(ctx, warnings, empty));

    let mut links = vec![(
        "self",
        if first {
            format!("{base}/{t}{}", query_string(&s.applied))
        } else {
            page_url(base, store, t, &s.applied, offset, session)
        },
    )];
    let next = offset.saturating_add(s.count);
    if s.count > 0 && next < total {
        links.push(("next", page_url(base, store, t, &s.applied, next, session)));
    }
    if offset > 0 {
        links.push((
            "previous",
            page_url(
                base,
                store,
                t,
                &s.applied,
                offset.saturating_sub(s.count.max(1)),
                session,
            ),
        ));
    }
    searchset(s.total.then_some(total), links, entries)
}

/// `GET /fhir/Patient/{id}/$everything`.
pub(super) fn everything(
    ctx: &Ctx<'_>,
    store: &ResourceStore,
    id: &str,
    params: &[(String, String)],
) -> Reply {
    let mut count = search::DEFAULT_COUNT;
    let mut warnings = Vec::new();
    for (name, value) in params {
        match name.as_str() {
            "_count" => match value.parse::<usize>() {
                Ok(n) => count = n.min(search::MAX_COUNT),
                Err(_) => {
                    return Reply::invalid(&format!(
                        "_count must be a non-negative integer, not {value:?}"
                    ));
                }
            },
            "_format" | "_pretty" => {}
            other => warnings.push(Warning::unknown(format!(
                "parameter {other} not supported for $everything; it was ignored"
            ))),
        }
    }
    if ctx.strict && !warnings.is_empty() {
        let messages: Vec<&str> = warnings.iter().map(|w| w.message.as_str()).collect();
        return Reply::invalid(&messages.join("; "));
    }
    let session = session_start(ctx.profile, None);
    everything_page(ctx, store, id, count, 0, warnings, session)
}

fn everything_page(
    ctx: &Ctx<'_>,
    store: &ResourceStore,
    id: &str,
    count: usize,
    offset: usize,
    warnings: Vec<Warning>,
    session: Option<i64>,
) -> Reply {
    let gate = tri!(Gate::open(ctx, "Patient", Permissions::READ));
    let patient = tri!(gate.current(store, id));
    let v = patient.version();
    if v.is_deleted() {
        return Reply::gone("Patient", id, v.version, v.last_updated);
    }
    let mut all: Vec<Visible<'_>> = vec![patient];
    for t in RESOURCE_TYPES
        .iter()
        .copied()
        .filter(|t| *t != "Patient" && in_patient_compartment(t))
    {
        let Ok(gate) = Gate::open(ctx, t, Permissions::READ) else {
            continue;
        };
        all.extend(gate.filter(store.compartment_live(t, id)));
    }
    let total = all.len();
    let base = ctx.base;
    let mut entries: Vec<String> = all
        .iter()
        .skip(offset)
        .take(count)
        .map(|v| match_entry(base, v, "match"))
        .collect();
    let empty = entries.is_empty();
    entries.extend(outcome_entry(ctx, &warnings, empty));
    let q = vec![
        ("_id".to_owned(), id.to_owned()),
        ("_count".to_owned(), count.to_string()),
    ];
    let mut links = vec![(
        "self",
        if offset == 0 {
            format!("{base}/Patient/{id}/$everything?_count={count}")
        } else {
            page_url(base, store, "$everything", &q, offset, session)
        },
    )];
    let next = offset.saturating_add(count);
    if count > 0 && next < total {
        links.push((
            "next",
            page_url(base, store, "$everything", &q, next, session),
        ));
    }
    if offset > 0 {
        links.push((
            "previous",
            page_url(
                base,
                store,
                "$everything",
                &q,
                offset.saturating_sub(count.max(1)),
                session,
            ),
        ));
    }
    searchset(Some(total), links, entries)
}

// ---------------------------------------------------------------------------
// Writes

/// Elements a resource must have (R4 cardinality 1..1 and common sense);
/// a real server rejects a resource without them.
fn required_elements(t: &str) -> &'static [&'static [&'static str]] {
    match t {
        "Observation" => &[&["status"], &["code"]],
        "Encounter" => &[&["status"], &["class"]],
        "Condition" => &[&["subject"]],
        "MedicationRequest" => &[
            &["status"],
            &["intent"],
            &["subject"],
            &["medicationCodeableConcept", "medicationReference"],
        ],
        "AllergyIntolerance" => &[&["patient"]],
        _ => &[],
    }
}

/// Checks a resource body for a write to `t`.
fn check_body(t: &str, body: Option<Value>) -> Result<Value, Box<Reply>> {
    let Some(body) = body.filter(Value::is_object) else {
        return Err(Box::new(Reply::invalid(&format!(
            "the body must be a FHIR {t} resource (a JSON object)"
        ))));
    };
    match body.get("resourceType").and_then(Value::as_str) {
        Some(rt) if rt == t => {}
        Some(rt) => {
            return Err(Box::new(Reply::invalid(&format!(
                "the body is a {rt}, but the URL is for {t}"
            ))));
        }
        None => {
            return Err(Box::new(Reply::invalid(
                "the body has no resourceType; every FHIR resource names its type",
            )));
        }
    }
    for alternatives in required_elements(t) {
        if !alternatives
            .iter()
            .any(|e| body.get(*e).is_some_and(|v| !v.is_null()))
        {
            return Err(Box::new(Reply::error(
                StatusCode::BAD_REQUEST,
                "required",
                &format!("{t}.{} is required", alternatives.join(" or ")),
            )));
        }
    }
    Ok(body)
}

fn written(ctx: &Ctx<'_>, t: &str, id: &str, version: &Version, status: StatusCode) -> Reply {
    let mut r = ok_version(version, status);
    r.location = Some(format!(
        "{}/{t}/{id}/_history/{}",
        ctx.base, version.version
    ));
    r
}

/// Parses `W/"3"`, `"3"` or `3`.
fn parse_etag(value: &str) -> Option<u32> {
    let v = value.trim();
    let v = v.strip_prefix("W/").unwrap_or(v);
    let v = v.trim_matches('"');
    v.parse().ok()
}

fn check_if_match(
    if_match: Option<&str>,
    current: Option<&Arc<Version>>,
    t: &str,
    id: &str,
) -> Result<(), Box<Reply>> {
    let Some(raw) = if_match else {
        return Ok(());
    };
    let Some(wanted) = parse_etag(raw) else {
        return Err(Box::new(Reply::invalid(&format!(
            "If-Match {raw:?} is not an ETag; send W/\"<versionId>\""
        ))));
    };
    match current {
        Some(c) if c.version == wanted => Ok(()),
        Some(c) => Err(Box::new(Reply::error(
            StatusCode::PRECONDITION_FAILED,
            "conflict",
            &format!(
                "If-Match W/\"{wanted}\" does not match the current version W/\"{}\" of {t}/{id}; read it again and retry",
                c.version
            ),
        ))),
        None => Err(Box::new(Reply::error(
            StatusCode::PRECONDITION_FAILED,
            "conflict",
            &format!("If-Match was sent, but {t}/{id} does not exist"),
        ))),
    }
}

/// `POST /fhir/{type}`, with optional `If-None-Exist`.
pub(super) fn create(
    ctx: &Ctx<'_>,
    store: &mut ResourceStore,
    t: &'static str,
    body: Option<Value>,
    if_none_exist: Option<&str>,
    assigned_id: Option<String>,
) -> Reply {
    let gate = tri!(Gate::open(ctx, t, Permissions::CREATE));
    let mut body = tri!(check_body(t, body));
    if let Some(query) = if_none_exist {
        // `If-None-Exist: identifier=x`, also written `?identifier=x` or
        // `Type?identifier=x`.
        let query = query.split_once('?').map_or(query, |(_, q)| q);
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let s = match search::parse(t, &pairs, ctx.base, true) {
            Ok(s) if !s.clauses.is_empty() => s,
            Ok(_) => return Reply::invalid("If-None-Exist has no search criteria"),
            Err(m) => return Reply::invalid(&format!("If-None-Exist: {m}")),
        };
        // The match is a search: it needs search scope, and sees only what
        // a search by this token would (other matches count as absent).
        let matcher = tri!(Gate::open(ctx, t, Permissions::SEARCH));
        let found = matcher.filter(
            store
                .all_live(t)
                .into_iter()
                .filter(|l| search::matches_all(l, &s.clauses))
                .collect(),
        );
        match found.as_slice() {
            [] => {}
            [one] => {
                let mut r = ok_resource(one, StatusCode::OK);
                r.location = Some(format!(
                    "{}/{t}/{}/_history/{}",
                    ctx.base,
                    one.id(),
                    one.version().version
                ));
                return r;
            }
            many => {
                return Reply::error(
                    StatusCode::PRECONDITION_FAILED,
                    "duplicate",
                    &format!(
                        "If-None-Exist matches {} resources; make the criteria select at most one",
                        many.len()
                    ),
                );
            }
        }
    }
    let id = assigned_id.unwrap_or_else(|| store.new_id(t));
    body["id"] = Value::String(id.clone());
    let index = index::extract(t, &body, ctx.base);
    tri!(gate.check_new(&id, &index, &format!("this {t}")));
    let version = store.write(t, &id, Some(body), index, now_ms(), Origin::Create);
    written(ctx, t, &id, &version, StatusCode::CREATED)
}

/// `PUT /fhir/{type}/{id}` (update, or create with a client-chosen id).
pub(super) fn update(
    ctx: &Ctx<'_>,
    store: &mut ResourceStore,
    t: &'static str,
    id: &str,
    body: Option<Value>,
    if_match: Option<&str>,
) -> Reply {
    let gate = tri!(Gate::open(ctx, t, Permissions::UPDATE));
    let body = tri!(check_body(t, body));
    match body.get("id").and_then(Value::as_str) {
        Some(b) if b == id => {}
        Some(b) => {
            return Reply::invalid(&format!(
                "the body's id {b:?} does not match the id in the URL ({id:?})"
            ));
        }
        None => {
            return Reply::invalid(&format!(
                "the body has no id; an update must carry the id of the URL ({id:?})"
            ));
        }
    }
    if store.live(t, id).is_some() {
        tri!(gate.check_stored(store, id));
    }
    if let Err(r) = check_if_match(if_match, store.current(t, id), t, id) {
        return *r;
    }
    let index = index::extract(t, &body, ctx.base);
    tri!(gate.check_new(id, &index, &format!("{t}/{id} with this content")));
    let created = store.live(t, id).is_none();
    let version = store.write(t, id, Some(body), index, now_ms(), Origin::Update);
    written(
        ctx,
        t,
        id,
        &version,
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
    )
}

/// `DELETE /fhir/{type}/{id}`.
pub(super) fn delete(
    ctx: &Ctx<'_>,
    store: &mut ResourceStore,
    t: &'static str,
    id: &str,
    if_match: Option<&str>,
) -> Reply {
    let gate = tri!(Gate::open(ctx, t, Permissions::DELETE));
    let Some(current) = store.current(t, id).cloned() else {
        return Reply::not_found(t, id);
    };
    tri!(gate.check_stored(store, id));
    if let Err(r) = check_if_match(if_match, Some(&current), t, id) {
        return *r;
    }
    let version = if current.is_deleted() {
        current
    } else {
        store.write(
            t,
            id,
            None,
            index::Index::default(),
            now_ms(),
            Origin::Delete,
        )
    };
    let mut r = Reply::new(StatusCode::NO_CONTENT, None);
    r.version = Some(version.version);
    r.last_modified = Some(version.last_updated);
    r
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Page tokens are signed, so only the server can put numbers in them;
    /// still, a signed token with extreme numbers (as a future bug or an
    /// old token format might produce) neither overflows nor escapes the
    /// `_count` cap.
    #[test]
    fn signed_page_tokens_with_extreme_numbers_are_safe() {
        let store = ResourceStore::generate(1, 3, 20_000);
        let token = super::super::access::TokenInfo {
            scopes: smart_scopes::Scopes::parse("user/*.rs"),
            patient: None,
        };
        let profile = VendorProfile::default();
        let ctx = Ctx {
            token: &token,
            base: "http://127.0.0.1/fhir",
            profile: &profile,
            strict: false,
        };
        let signed = |t: &str, q: Vec<(&str, &str)>, o: usize| {
            let token = PageToken {
                v: 1,
                t: t.to_owned(),
                q: q.into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
                o,
                i: None,
            };
            vec![("_page".to_owned(), token.encode(store.page_key()))]
        };
        for o in [usize::MAX, usize::MAX - 1, 1] {
            let r = page(
                &ctx,
                &store,
                &signed("Observation", vec![("_count", "200")], o),
            );
            assert_eq!(r.status, StatusCode::OK);
            let r = page(
                &ctx,
                &store,
                &signed(
                    "$everything",
                    vec![("_id", "pat-1"), ("_count", "1000000")],
                    o,
                ),
            );
            assert_eq!(r.status, StatusCode::OK);
            let body = r.body_value().unwrap();
            let entries = body["entry"].as_array().unwrap().len();
            assert!(entries <= search::MAX_COUNT, "{entries}");
            if o == 1 {
                assert!(body["total"].as_u64().unwrap() > 201, "{body}");
                assert_eq!(entries, search::MAX_COUNT);
            }
        }
    }

    /// A signed token with an extreme session start neither panics nor
    /// overflows: far in the past is expired (4113), in the future is not.
    #[test]
    fn extreme_session_starts_are_safe() {
        let store = ResourceStore::generate(1, 5, 20_000);
        let token = super::super::access::TokenInfo {
            scopes: smart_scopes::Scopes::parse("user/*.rs"),
            patient: None,
        };
        let profile = VendorProfile::builtin("epic").unwrap();
        let ctx = Ctx {
            token: &token,
            base: "http://127.0.0.1/fhir",
            profile: &profile,
            strict: false,
        };
        for (i, expired) in [
            (Some(i64::MIN), true),
            (Some(0), true),
            (Some(i64::MAX), false),
            (None, false),
        ] {
            let token = PageToken {
                v: 1,
                t: "Patient".into(),
                q: vec![("_count".into(), "1".into())],
                o: 1,
                i,
            };
            let params = vec![("_page".to_owned(), token.encode(store.page_key()))];
            let r = page(&ctx, &store, &params);
            let body = r.body_value().unwrap();
            let code = &body["issue"][0]["details"]["coding"][0]["code"];
            if expired {
                assert_eq!(r.status, StatusCode::BAD_REQUEST, "{i:?}");
                assert_eq!(code, "4113", "{i:?}");
            } else {
                assert_eq!(r.status, StatusCode::OK, "{i:?}: {body}");
            }
        }
    }

    #[test]
    fn etags() {
        assert_eq!(parse_etag("W/\"3\""), Some(3));
        assert_eq!(parse_etag("\"12\""), Some(12));
        assert_eq!(parse_etag("7"), Some(7));
        assert_eq!(parse_etag("W/\"x\""), None);
    }

    #[test]
    fn bodies_are_checked() {
        assert!(check_body("Patient", None).is_err());
        assert!(check_body("Patient", Some(json!([]))).is_err());
        assert!(check_body("Patient", Some(json!({"resourceType": "Observation"}))).is_err());
        let r = check_body(
            "Observation",
            Some(json!({"resourceType": "Observation", "status": "final"})),
        )
        .unwrap_err();
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(check_body("Patient", Some(json!({"resourceType": "Patient"}))).is_ok());
    }
}
