//! The FHIR interactions themselves: read, vread, history, search and
//! paging, `$everything`, create (also conditional), update, delete.
//!
//! Each takes the store it works on, so the same code serves a single HTTP
//! request (under the store lock) and a transaction entry (against the
//! transaction's private copy). Authorization is checked here, per
//! interaction and per resource, through [`Access`].

use std::collections::HashSet;
use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Value, json};
use smart_scopes::Permissions;

use super::access::Access;
use super::index::{self, Key, RESOURCE_TYPES, in_patient_compartment};
use super::search::{self, PageToken, Search};
use super::store::{Live, Origin, ResourceStore, Version};
use super::{Ctx, Reply, supported_type};
use crate::profile::{ErrorFormat, VendorProfile};
use crate::time::now_ms;

fn live_of<'a>(id: &'a str, version: &'a Arc<Version>) -> Live<'a> {
    Live {
        id,
        slot: 0,
        version,
    }
}

fn ok_resource(version: &Version, status: StatusCode) -> Reply {
    let mut r = Reply::text(status, version.resource_text());
    r.version = Some(version.version);
    r.last_modified = Some(version.last_updated);
    r
}

fn no_type_access(access: &Access, resource_type: &str, what: &str) -> Reply {
    Reply::forbidden(
        &format!(
            "no granted scope permits {what} {resource_type}; a scope such as {} is needed",
            access.needed
        ),
        &access.needed,
    )
}

fn denied_instance(
    ctx: &Ctx<'_>,
    access: &Access,
    permission: Permissions,
    what: &str,
    reference: &str,
) -> Reply {
    match access.only_compartment() {
        Some(p) => Reply::forbidden(
            &format!(
                "patient/ scopes only allow {what} the patient in context ({p}) and resources in its compartment, not {reference}"
            ),
            &access.needed_beyond_compartment(permission),
        ),
        None => Reply::forbidden(
            &format!(
                "the granted scopes do not cover {what} {reference}{}",
                if ctx.token.patient.is_some() {
                    " (outside the patient in context, or excluded by a scope's query)"
                } else {
                    " (excluded by a scope's query)"
                }
            ),
            &access.needed,
        ),
    }
}

// ---------------------------------------------------------------------------
// Reads

/// `GET /fhir/{type}/{id}`.
pub(super) fn read(ctx: &Ctx<'_>, store: &ResourceStore, t: &str, id: &str) -> Reply {
    let access = Access::of(ctx.token, t, Permissions::READ, ctx.base);
    if !access.any() {
        return no_type_access(&access, t, "reading");
    }
    let Some(current) = store.current(t, id) else {
        return Reply::not_found(t, id);
    };
    if let Some(v) = store.last_with_body(t, id)
        && !access.admits(&live_of(id, v))
    {
        return denied_instance(
            ctx,
            &access,
            Permissions::READ,
            "reading",
            &format!("{t}/{id}"),
        );
    }
    if current.is_deleted() {
        return Reply::gone(t, id, current.version, current.last_updated);
    }
    ok_resource(current, StatusCode::OK)
}

/// `GET /fhir/{type}/{id}/_history/{vid}`.
pub(super) fn vread(ctx: &Ctx<'_>, store: &ResourceStore, t: &str, id: &str, vid: &str) -> Reply {
    let access = Access::of(ctx.token, t, Permissions::READ, ctx.base);
    if !access.any() {
        return no_type_access(&access, t, "reading");
    }
    let Some(versions) = store.versions(t, id) else {
        return Reply::not_found(t, id);
    };
    let Some(version) = vid
        .parse::<u32>()
        .ok()
        .and_then(|n| versions.iter().find(|v| v.version == n))
    else {
        return Reply::error(
            StatusCode::NOT_FOUND,
            "not-found",
            &format!("{t}/{id} has no version {vid:?}"),
        );
    };
    let judged = if version.is_deleted() {
        store.last_with_body(t, id)
    } else {
        Some(version)
    };
    if let Some(v) = judged
        && !access.admits(&live_of(id, v))
    {
        return denied_instance(
            ctx,
            &access,
            Permissions::READ,
            "reading",
            &format!("{t}/{id}"),
        );
    }
    if version.is_deleted() {
        return Reply::gone(t, id, version.version, version.last_updated);
    }
    let mut r = ok_resource(version, StatusCode::OK);
    r.location = None;
    r
}

/// `GET /fhir/{type}/{id}/_history`.
pub(super) fn history(ctx: &Ctx<'_>, store: &ResourceStore, t: &str, id: &str) -> Reply {
    let access = Access::of(ctx.token, t, Permissions::READ, ctx.base);
    if !access.any() {
        return no_type_access(&access, t, "reading");
    }
    let Some(versions) = store.versions(t, id) else {
        return Reply::not_found(t, id);
    };
    if let Some(v) = store.last_with_body(t, id)
        && !access.admits(&live_of(id, v))
    {
        return denied_instance(
            ctx,
            &access,
            Permissions::READ,
            "reading",
            &format!("{t}/{id}"),
        );
    }
    let base = ctx.base;
    let entries: Vec<Value> = versions
        .iter()
        .rev()
        .map(|v| {
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
        Ok(s) => execute(ctx, store, s, 0, true),
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

fn page_url(base: &str, t: &str, q: &[(String, String)], offset: usize) -> String {
    let token = PageToken {
        v: 1,
        t: t.to_owned(),
        q: q.to_vec(),
        o: offset,
    };
    format!("{base}?_page={}", token.encode())
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
pub(super) fn page(ctx: &Ctx<'_>, store: &ResourceStore, params: &[(String, String)]) -> Reply {
    let token = params
        .iter()
        .find(|(k, _)| k == "_page")
        .and_then(|(_, v)| PageToken::decode(v));
    let Some(token) = token else {
        return Reply::invalid(
            "the _page token is not one this server issued; follow the next link exactly as given",
        );
    };
    let value = |name: &str| {
        token
            .q
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if token.t == "$everything" {
        let (Some(id), Some(count)) = (value("_id"), value("_count").and_then(|c| c.parse().ok()))
        else {
            return Reply::invalid("malformed _page token");
        };
        return everything_page(ctx, store, id, count, token.o, Vec::new());
    }
    let t = match supported_type(&token.t) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    match search::parse(t, &token.q, ctx.base, false) {
        Ok(s) => execute(ctx, store, s, token.o, false),
        Err(message) => Reply::invalid(&message),
    }
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
/// `search_outcome` issue (on every page) and one warning per ignored
/// parameter (on the first page); `None` when there is neither.
fn outcome_entry(ctx: &Ctx<'_>, warnings: &[String]) -> Option<String> {
    let mut issues: Vec<Value> = Vec::new();
    if let Some(o) = &ctx.profile.search_outcome {
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
    issues.extend(
        warnings
            .iter()
            .map(|w| json!({ "severity": "warning", "code": "not-supported", "diagnostics": w })),
    );
    (!issues.is_empty()).then(|| {
        json!({
            "resource": { "resourceType": "OperationOutcome", "issue": issues },
            "search": { "mode": "outcome" }
        })
        .to_string()
    })
}

fn match_entry(base: &str, t: &str, live: &Live<'_>, mode: &str) -> String {
    format!(
        "{{\"fullUrl\":{},\"resource\":{},\"search\":{{\"mode\":\"{mode}\"}}}}",
        Value::String(format!("{base}/{t}/{}", live.id)),
        live.version
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

fn execute(ctx: &Ctx<'_>, store: &ResourceStore, s: Search, offset: usize, first: bool) -> Reply {
    let t = s.resource_type;
    let access = Access::of(ctx.token, t, Permissions::SEARCH, ctx.base);
    if !access.any() {
        return no_type_access(&access, t, "searching");
    }
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
        .filter(|l| search::matches_all(l, &s.clauses) && access.admits(l))
        .collect();
    search::sort(&mut matches, &s.sort);
    let total = matches.len();
    let page: Vec<&Live<'_>> = matches.iter().skip(offset).take(s.count).collect();
    let base = ctx.base;
    let mut entries: Vec<String> = page
        .iter()
        .map(|l| match_entry(base, t, l, "match"))
        .collect();

    // _include: the referenced resources the token may read, once each.
    let mut seen: HashSet<String> = page.iter().map(|l| format!("{t}/{}", l.id)).collect();
    let mut read_access: Vec<(&str, Access)> = Vec::new();
    for include in &s.includes {
        for live in &page {
            for key in live.version.index.values(include.param.key) {
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
                if !read_access.iter().any(|(x, _)| *x == rt) {
                    read_access.push((rt, Access::of(ctx.token, rt, Permissions::READ, base)));
                }
                let allowed = read_access
                    .iter()
                    .find(|(x, _)| *x == rt)
                    .is_some_and(|(_, a)| a.admits(&live_of(rid, version)));
                if allowed {
                    seen.insert(r.clone());
                    entries.push(match_entry(base, rt, &live_of(rid, version), "include"));
                }
            }
        }
    }
    let warnings: &[String] = if first { &s.warnings } else { &[] };
    entries.extend(outcome_entry(ctx, warnings));

    let mut links = vec![(
        "self",
        if first {
            format!("{base}/{t}{}", query_string(&s.applied))
        } else {
            page_url(base, t, &s.applied, offset)
        },
    )];
    if s.count > 0 && offset + s.count < total {
        links.push(("next", page_url(base, t, &s.applied, offset + s.count)));
    }
    if offset > 0 {
        links.push((
            "previous",
            page_url(base, t, &s.applied, offset.saturating_sub(s.count.max(1))),
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
            other => warnings.push(format!(
                "parameter {other} not supported for $everything; it was ignored"
            )),
        }
    }
    if ctx.strict && !warnings.is_empty() {
        return Reply::invalid(&warnings.join("; "));
    }
    everything_page(ctx, store, id, count, 0, warnings)
}

fn everything_page(
    ctx: &Ctx<'_>,
    store: &ResourceStore,
    id: &str,
    count: usize,
    offset: usize,
    warnings: Vec<String>,
) -> Reply {
    let access = Access::of(ctx.token, "Patient", Permissions::READ, ctx.base);
    if !access.any() {
        return no_type_access(&access, "Patient", "reading");
    }
    let Some(current) = store.current("Patient", id) else {
        return Reply::not_found("Patient", id);
    };
    if let Some(v) = store.last_with_body("Patient", id)
        && !access.admits(&live_of(id, v))
    {
        return denied_instance(
            ctx,
            &access,
            Permissions::READ,
            "reading",
            &format!("Patient/{id}"),
        );
    }
    if current.is_deleted() {
        return Reply::gone("Patient", id, current.version, current.last_updated);
    }
    let mut all: Vec<(&str, Live<'_>)> = vec![("Patient", live_of(id, current))];
    for t in RESOURCE_TYPES
        .iter()
        .copied()
        .filter(|t| *t != "Patient" && in_patient_compartment(t))
    {
        let access = Access::of(ctx.token, t, Permissions::READ, ctx.base);
        if !access.any() {
            continue;
        }
        all.extend(
            store
                .compartment_live(t, id)
                .into_iter()
                .filter(|l| access.admits(l))
                .map(|l| (t, l)),
        );
    }
    let total = all.len();
    let base = ctx.base;
    let mut entries: Vec<String> = all
        .iter()
        .skip(offset)
        .take(count)
        .map(|(t, l)| match_entry(base, t, l, "match"))
        .collect();
    entries.extend(outcome_entry(ctx, &warnings));
    let q = vec![
        ("_id".to_owned(), id.to_owned()),
        ("_count".to_owned(), count.to_string()),
    ];
    let mut links = vec![(
        "self",
        if offset == 0 {
            format!("{base}/Patient/{id}/$everything?_count={count}")
        } else {
            page_url(base, "$everything", &q, offset)
        },
    )];
    if count > 0 && offset + count < total {
        links.push(("next", page_url(base, "$everything", &q, offset + count)));
    }
    if offset > 0 {
        links.push((
            "previous",
            page_url(base, "$everything", &q, offset.saturating_sub(count.max(1))),
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

/// A not-yet-stored version, to ask whether the grants admit it.
fn candidate(index: index::Index) -> Arc<Version> {
    Arc::new(Version {
        version: 0,
        last_updated: now_ms(),
        body: None,
        index,
        origin: Origin::Create,
    })
}

fn written(ctx: &Ctx<'_>, t: &str, id: &str, version: &Version, status: StatusCode) -> Reply {
    let mut r = ok_resource(version, status);
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
    let access = Access::of(ctx.token, t, Permissions::CREATE, ctx.base);
    if !access.any() {
        return no_type_access(&access, t, "creating");
    }
    let mut body = match check_body(t, body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
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
        let found: Vec<Live<'_>> = store
            .all_live(t)
            .into_iter()
            .filter(|l| search::matches_all(l, &s.clauses) && access.admits(l))
            .collect();
        match found.as_slice() {
            [] => {}
            [one] => {
                let mut r = ok_resource(one.version, StatusCode::OK);
                r.location = Some(format!(
                    "{}/{t}/{}/_history/{}",
                    ctx.base, one.id, one.version.version
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
    let probe = candidate(index.clone());
    if !access.admits(&live_of(&id, &probe)) {
        return denied_instance(
            ctx,
            &access,
            Permissions::CREATE,
            "creating",
            &format!("this {t}"),
        );
    }
    let version = store.write(t, &id, Some(body), index, now_ms(), Origin::Create);
    written(ctx, t, &id, &version, StatusCode::CREATED)
}

/// `PUT /fhir/{type}/{id}` (update, or create with a client-chosen id).
pub(super) fn update(
    ctx: &Ctx<'_>,
    store: &mut ResourceStore,
    t: &str,
    id: &str,
    body: Option<Value>,
    if_match: Option<&str>,
) -> Reply {
    let access = Access::of(ctx.token, t, Permissions::UPDATE, ctx.base);
    if !access.any() {
        return no_type_access(&access, t, "updating");
    }
    let body = match check_body(t, body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
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
    if let Some(previous) = store.live(t, id)
        && !access.admits(&live_of(id, previous))
    {
        return denied_instance(
            ctx,
            &access,
            Permissions::UPDATE,
            "updating",
            &format!("{t}/{id}"),
        );
    }
    if let Err(r) = check_if_match(if_match, store.current(t, id), t, id) {
        return *r;
    }
    let index = index::extract(t, &body, ctx.base);
    let probe = candidate(index.clone());
    if !access.admits(&live_of(id, &probe)) {
        return denied_instance(
            ctx,
            &access,
            Permissions::UPDATE,
            "writing",
            &format!("{t}/{id} with this content"),
        );
    }
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
    t: &str,
    id: &str,
    if_match: Option<&str>,
) -> Reply {
    let access = Access::of(ctx.token, t, Permissions::DELETE, ctx.base);
    if !access.any() {
        return no_type_access(&access, t, "deleting");
    }
    let Some(current) = store.current(t, id).cloned() else {
        return Reply::not_found(t, id);
    };
    if let Some(v) = store.last_with_body(t, id)
        && !access.admits(&live_of(id, v))
    {
        return denied_instance(
            ctx,
            &access,
            Permissions::DELETE,
            "deleting",
            &format!("{t}/{id}"),
        );
    }
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
