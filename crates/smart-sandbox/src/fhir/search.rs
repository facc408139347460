//! FHIR search: parsing parameters, matching them against the index,
//! sorting, and the opaque paging token.
//!
//! Parsing is strict where real servers are strict (a malformed date or an
//! unsupported modifier is a 400) and lenient where Epic is lenient: an
//! unknown parameter is ignored and reported back as an OperationOutcome
//! entry with `search.mode = outcome` (vendor quirk 39/40), so clients learn
//! to filter those entries out and to compare the `self` link, which lists
//! only the parameters that were applied. With `Prefer: handling=strict`
//! unknown parameters are a 400, as the FHIR spec allows.
//!
//! The `next` link is `{base}?_page=<token>`, where the token is the
//! base64url of the *applied* query and the offset. Clients must follow it as
//! is; it does not repeat the parameters in a form a client could edit, which
//! is how Epic and Cerner behave and what the quirk catalogue tells clients
//! to expect (row 42).
//!
//! Vendors code the two ways a parameter goes unapplied differently (Epic
//! 4122 for an unknown one, 59100 for one it knows but ignored), so each
//! warning keeps its [`WarningKind`]; the profile's `search_codes` decides
//! whether the outcome entry carries a code. Under a profile whose paging
//! sessions expire (Epic 4113) the page token also carries when its search's
//! first page was served, so old links are refused without any per-search
//! state on the server: the token is the whole session, signed, and nothing
//! grows with the number of searches. Other profiles leave the time out, so
//! the same seed still gives the same bytes.

use std::cmp::Ordering;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::fhir::index::{self, Key, Kind, ParamDef, date_key, relative_reference};
use crate::fhir::store::Live;
use crate::time::{Interval, parse_fhir_date};

/// Default `_count`.
pub(crate) const DEFAULT_COUNT: usize = 50;
/// Largest `_count` honoured; larger values are clamped.
pub(crate) const MAX_COUNT: usize = 200;

/// Date comparison prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prefix {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Sa,
    Eb,
}

/// One alternative of a parameter (values separated by `,` are ORed).
#[derive(Debug, Clone)]
pub(crate) enum Alt {
    /// `code`, `system|code`, `|code` (`system: Some("")`), `system|`.
    Token {
        system: Option<String>,
        code: Option<String>,
    },
    Date(Prefix, Interval),
    /// A reference: `id`, `Type/id` or an absolute URL on this server.
    Reference {
        resource_type: Option<String>,
        id: String,
    },
    Text(String),
}

/// String matching mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextMode {
    Starts,
    Exact,
    Contains,
}

/// What a clause tests.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Id,
    LastUpdated,
    Param(&'static ParamDef, TextMode),
}

/// One parameter occurrence: the resource matches if any alternative
/// matches. Clauses are ANDed.
#[derive(Debug, Clone)]
pub(crate) struct Clause {
    pub(crate) target: Target,
    pub(crate) alts: Vec<Alt>,
}

/// A sort key.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SortField {
    Id,
    LastUpdated,
    Date(&'static str),
}

/// An `_include` that was understood.
#[derive(Debug, Clone)]
pub(crate) struct Include {
    pub(crate) param: &'static ParamDef,
    pub(crate) target: Option<String>,
}

/// A parsed search on one type.
#[derive(Debug, Clone)]
pub(crate) struct Search {
    pub(crate) resource_type: &'static str,
    pub(crate) clauses: Vec<Clause>,
    pub(crate) sort: Vec<(SortField, bool)>,
    pub(crate) count: usize,
    pub(crate) includes: Vec<Include>,
    pub(crate) total: bool,
    /// The parameters that were applied, in order, for the `self` link and
    /// the paging token.
    pub(crate) applied: Vec<(String, String)>,
    /// Parameters that were ignored, with the reason.
    pub(crate) warnings: Vec<Warning>,
}

/// Why a parameter was ignored: vendors code the two cases differently
/// (Epic 4122 for an unknown parameter, 59100 for one it knows but did not
/// apply; see [`VendorProfile::search_codes`](crate::VendorProfile::search_codes)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WarningKind {
    /// The server does not know the parameter.
    Unknown,
    /// A FHIR parameter the server knows but did not apply.
    Ignored,
}

/// One ignored parameter: its kind and the message for `diagnostics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Warning {
    pub(crate) kind: WarningKind,
    pub(crate) message: String,
}

impl Warning {
    /// A parameter the server does not know.
    pub(crate) fn unknown(message: String) -> Warning {
        Warning {
            kind: WarningKind::Unknown,
            message,
        }
    }

    fn ignored(message: String) -> Warning {
        Warning {
            kind: WarningKind::Ignored,
            message,
        }
    }
}

/// FHIR-wide search parameters (R4 §3.1.1.5, search result parameters)
/// that the sandbox recognises but does not apply: ignoring one of them is
/// [`WarningKind::Ignored`], not [`WarningKind::Unknown`].
const KNOWN_NOT_APPLIED: &[&str] = &[
    "_revinclude",
    "_summary",
    "_elements",
    "_contained",
    "_containedType",
    "_has",
    "_list",
    "_text",
    "_content",
    "_filter",
    "_query",
    "_security",
    "_tag",
    "_profile",
    "_source",
    "_type",
];

/// How an unsupported parameter name is classified: a FHIR-wide parameter
/// the sandbox does not apply, or a chain (`patient.name`) on one of the
/// type's parameters, is known but ignored; anything else is unknown.
fn classify_unsupported(resource_type: &str, name: &str) -> WarningKind {
    let base = name.split([':', '.']).next().unwrap_or(name);
    let chained_known = name.contains('.') && index::param(resource_type, base).is_some();
    if KNOWN_NOT_APPLIED.contains(&base) || chained_known {
        WarningKind::Ignored
    } else {
        WarningKind::Unknown
    }
}

/// Parameters that are accepted and have no effect on the result.
const HARMLESS: &[&str] = &["_format", "_pretty"];

/// Parses a date search value with an optional prefix.
fn parse_date_alt(raw: &str) -> Result<Alt, String> {
    // A `+` in a zone offset arrives as a space when the client forgot to
    // percent-encode it; take it back.
    let raw = raw.replace(' ', "+");
    let (prefix, rest) = match raw.get(..2) {
        Some("eq") => (Prefix::Eq, &raw[2..]),
        Some("ne") => (Prefix::Ne, &raw[2..]),
        Some("lt") => (Prefix::Lt, &raw[2..]),
        Some("le") => (Prefix::Le, &raw[2..]),
        Some("gt") => (Prefix::Gt, &raw[2..]),
        Some("ge") => (Prefix::Ge, &raw[2..]),
        Some("sa") => (Prefix::Sa, &raw[2..]),
        Some("eb") => (Prefix::Eb, &raw[2..]),
        _ => (Prefix::Eq, raw.as_str()),
    };
    parse_fhir_date(rest)
        .map(|i| Alt::Date(prefix, i))
        .ok_or_else(|| {
            format!(
                "invalid date {raw:?}: use [eq|ne|lt|le|gt|ge|sa|eb]YYYY[-MM[-DD[Thh:mm[:ss][Z|±hh:mm]]]]"
            )
        })
}

fn parse_token_alt(raw: &str) -> Alt {
    match raw.split_once('|') {
        Some((system, code)) => Alt::Token {
            system: Some(system.to_owned()),
            code: (!code.is_empty()).then(|| code.to_owned()),
        },
        None => Alt::Token {
            system: None,
            code: Some(raw.to_owned()),
        },
    }
}

fn parse_reference_alt(
    raw: &str,
    fhir_base: &str,
    type_modifier: Option<&str>,
) -> Result<Alt, String> {
    if let Some(relative) = relative_reference(raw, fhir_base) {
        let (t, id) = relative.split_once('/').unwrap_or(("", relative.as_str()));
        return Ok(Alt::Reference {
            resource_type: Some(t.to_owned()),
            id: id.to_owned(),
        });
    }
    if index::is_valid_id(raw) {
        return Ok(Alt::Reference {
            resource_type: type_modifier.map(str::to_owned),
            id: raw.to_owned(),
        });
    }
    Err(format!(
        "invalid reference {raw:?}: use an id, Type/id or {fhir_base}/Type/id"
    ))
}

/// Splits a comma-separated value list (`\,` escapes a comma).
fn split_alternatives(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            ',' => out.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    out.push(current);
    out.retain(|s| !s.is_empty());
    out
}

/// The outcome of parsing one `name=value`.
pub(crate) enum Parsed {
    Clause(Clause),
    /// Not a supported parameter: ignored, with this warning.
    Unknown(String),
}

/// Parses one filter parameter (not `_count`, `_sort` …) of a type.
pub(crate) fn parse_clause(
    resource_type: &str,
    name: &str,
    value: &str,
    fhir_base: &str,
) -> Result<Parsed, String> {
    let (base, modifier) = match name.split_once(':') {
        Some((b, m)) => (b, Some(m)),
        None => (name, None),
    };
    let values = split_alternatives(value);
    let target = match base {
        "_id" => Target::Id,
        "_lastUpdated" => Target::LastUpdated,
        _ => match index::param(resource_type, base) {
            Some(def) => Target::Param(def, TextMode::Starts),
            None => {
                return Ok(Parsed::Unknown(format!(
                    "parameter {name} not supported for {resource_type}; it was ignored"
                )));
            }
        },
    };
    let unsupported_modifier = |m: &str| Err(format!("modifier :{m} is not supported on {base}"));
    let (target, alts) = match target {
        Target::Id => {
            if let Some(m) = modifier {
                return unsupported_modifier(m);
            }
            let alts = values
                .iter()
                .map(|v| Alt::Token {
                    system: None,
                    code: Some(v.clone()),
                })
                .collect();
            (Target::Id, alts)
        }
        Target::LastUpdated => {
            if let Some(m) = modifier {
                return unsupported_modifier(m);
            }
            let alts = values
                .iter()
                .map(|v| parse_date_alt(v))
                .collect::<Result<_, _>>()?;
            (Target::LastUpdated, alts)
        }
        Target::Param(def, _) => match def.kind {
            Kind::Token => {
                if let Some(m) = modifier {
                    return unsupported_modifier(m);
                }
                let alts = values.iter().map(|v| parse_token_alt(v)).collect();
                (Target::Param(def, TextMode::Starts), alts)
            }
            Kind::Date => {
                if let Some(m) = modifier {
                    return unsupported_modifier(m);
                }
                let alts = values
                    .iter()
                    .map(|v| parse_date_alt(v))
                    .collect::<Result<_, _>>()?;
                (Target::Param(def, TextMode::Starts), alts)
            }
            Kind::Reference => {
                // `subject:Patient=…` names the target type.
                let type_modifier = match modifier {
                    None => def.target,
                    Some(m) if index::type_index(m).is_some() => {
                        if def.target.is_some_and(|t| t != m) {
                            return Err(format!(
                                "{base} can only refer to {}",
                                def.target.unwrap_or("")
                            ));
                        }
                        index::RESOURCE_TYPES.iter().copied().find(|t| *t == m)
                    }
                    Some(m) => return unsupported_modifier(m),
                };
                let alts = values
                    .iter()
                    .map(|v| parse_reference_alt(v, fhir_base, type_modifier))
                    .collect::<Result<Vec<_>, _>>()?;
                // A typed modifier or param also constrains typed values.
                if let Some(t) = type_modifier {
                    for a in &alts {
                        if let Alt::Reference {
                            resource_type: Some(rt),
                            ..
                        } = a
                            && rt != t
                        {
                            return Err(format!("{name} must refer to {t}, not {rt}"));
                        }
                    }
                }
                (Target::Param(def, TextMode::Starts), alts)
            }
            Kind::String => {
                let mode = match modifier {
                    None => TextMode::Starts,
                    Some("exact") => TextMode::Exact,
                    Some("contains") => TextMode::Contains,
                    Some(m) => return unsupported_modifier(m),
                };
                let alts = values.iter().map(|v| Alt::Text(v.clone())).collect();
                (Target::Param(def, mode), alts)
            }
        },
    };
    Ok(Parsed::Clause(Clause { target, alts }))
}

/// Parses a whole search. `strict`: unknown parameters are errors
/// (`Prefer: handling=strict`).
pub(crate) fn parse(
    resource_type: &'static str,
    pairs: &[(String, String)],
    fhir_base: &str,
    strict: bool,
) -> Result<Search, String> {
    let mut search = Search {
        resource_type,
        clauses: Vec::new(),
        sort: Vec::new(),
        count: DEFAULT_COUNT,
        includes: Vec::new(),
        total: true,
        applied: Vec::new(),
        warnings: Vec::new(),
    };
    for (name, value) in pairs {
        if value.is_empty() || HARMLESS.contains(&name.as_str()) {
            continue;
        }
        let warn = |search: &mut Search, warning: Warning| -> Result<(), String> {
            if strict {
                Err(warning.message)
            } else {
                search.warnings.push(warning);
                Ok(())
            }
        };
        match name.as_str() {
            "_count" => {
                let n: usize = value
                    .parse()
                    .map_err(|_| format!("_count must be a non-negative integer, not {value:?}"))?;
                search.count = n.min(MAX_COUNT);
                search.applied.retain(|(k, _)| k != "_count");
                search
                    .applied
                    .push(("_count".into(), search.count.to_string()));
            }
            "_total" => match value.as_str() {
                "none" => {
                    search.total = false;
                    search.applied.push((name.clone(), value.clone()));
                }
                "accurate" | "estimate" => {
                    search.total = true;
                    search.applied.push((name.clone(), value.clone()));
                }
                _ => {
                    return Err(format!(
                        "_total must be none, estimate or accurate, not {value:?}"
                    ));
                }
            },
            "_sort" => {
                let mut used = Vec::new();
                for key in value.split(',').filter(|k| !k.is_empty()) {
                    let (desc, field) = match key.strip_prefix('-') {
                        Some(f) => (true, f),
                        None => (false, key),
                    };
                    let sort = match field {
                        "_id" => Some(SortField::Id),
                        "_lastUpdated" => Some(SortField::LastUpdated),
                        "date" => date_key(resource_type).map(SortField::Date),
                        other => index::param(resource_type, other)
                            .filter(|d| d.kind == Kind::Date)
                            .map(|d| SortField::Date(d.key)),
                    };
                    match sort {
                        Some(s) => {
                            search.sort.push((s, desc));
                            used.push(key);
                        }
                        None => warn(
                            &mut search,
                            Warning::ignored(format!(
                                "_sort by {field} is not supported for {resource_type}; it was ignored"
                            )),
                        )?,
                    }
                }
                if !used.is_empty() {
                    search.applied.push(("_sort".into(), used.join(",")));
                }
            }
            "_include" => {
                let mut parts = value.splitn(3, ':');
                let (source, param, target) = (parts.next(), parts.next(), parts.next());
                let def = match (source, param) {
                    (Some(s), Some(p)) if s == resource_type || s == "*" => {
                        index::param(resource_type, p).filter(|d| d.kind == Kind::Reference)
                    }
                    _ => None,
                };
                let target_ok = target.is_none_or(|t| index::type_index(t).is_some());
                match def {
                    Some(def) if target_ok => {
                        search.includes.push(Include {
                            param: def,
                            target: target.map(str::to_owned),
                        });
                        search.applied.push((name.clone(), value.clone()));
                    }
                    // `*:patient` on a type without `patient` is not an error.
                    None if source == Some("*") => {}
                    _ => warn(
                        &mut search,
                        Warning::ignored(format!(
                            "_include={value} not supported for {resource_type}; it was ignored"
                        )),
                    )?,
                }
            }
            _ => match parse_clause(resource_type, name, value, fhir_base)? {
                Parsed::Clause(c) => {
                    search.clauses.push(c);
                    search.applied.push((name.clone(), value.clone()));
                }
                Parsed::Unknown(message) => {
                    let warning = Warning {
                        kind: classify_unsupported(resource_type, name),
                        message,
                    };
                    warn(&mut search, warning)?
                }
            },
        }
    }
    Ok(search)
}

fn token_matches(key: &Key, system: Option<&str>, code: Option<&str>) -> bool {
    let Key::Token {
        system: ks,
        code: kc,
    } = key
    else {
        return false;
    };
    let code_ok = code.is_none_or(|c| c == kc.as_ref());
    let system_ok = match system {
        None => true,
        Some("") => ks.is_none(),
        Some(s) => ks.as_deref() == Some(s),
    };
    code_ok && system_ok
}

fn date_matches(target: Interval, prefix: Prefix, value: Interval) -> bool {
    let eq = target.within(&value);
    match prefix {
        Prefix::Eq => eq,
        Prefix::Ne => !eq,
        Prefix::Gt => target.end > value.end,
        Prefix::Lt => target.start < value.start,
        Prefix::Ge => target.end > value.end || eq,
        Prefix::Le => target.start < value.start || eq,
        Prefix::Sa => target.start >= value.end,
        Prefix::Eb => target.end <= value.start,
    }
}

fn alt_matches(live: &Live<'_>, target: &Target, alt: &Alt) -> bool {
    match (target, alt) {
        (Target::Id, Alt::Token { code: Some(c), .. }) => live.id == c,
        (Target::LastUpdated, Alt::Date(prefix, value)) => {
            date_matches(Interval::at(live.version.last_updated, 1), *prefix, *value)
        }
        (Target::Param(def, mode), alt) => live
            .version
            .index
            .values(def.key)
            .any(|key| key_matches(def, *mode, key, alt)),
        _ => false,
    }
}

fn key_matches(def: &ParamDef, mode: TextMode, key: &Key, alt: &Alt) -> bool {
    match (alt, key) {
        (Alt::Token { system, code }, _) => token_matches(key, system.as_deref(), code.as_deref()),
        (Alt::Date(prefix, value), Key::Date(target)) => date_matches(*target, *prefix, *value),
        (Alt::Reference { resource_type, id }, Key::Reference(r)) => {
            let (rt, rid) = r.split_once('/').unwrap_or(("", r.as_str()));
            let wanted_type = resource_type.as_deref().or(def.target);
            rid == id && wanted_type.is_none_or(|t| t == rt)
        }
        (Alt::Text(wanted), Key::Text(have)) => {
            let wanted = wanted.to_lowercase();
            match mode {
                TextMode::Starts => have.starts_with(&wanted),
                TextMode::Exact => *have == wanted,
                TextMode::Contains => have.contains(&wanted),
            }
        }
        _ => false,
    }
}

/// Whether a resource satisfies every clause.
pub(crate) fn matches_all(live: &Live<'_>, clauses: &[Clause]) -> bool {
    clauses
        .iter()
        .all(|c| c.alts.iter().any(|a| alt_matches(live, &c.target, a)))
}

/// The patients a search names explicitly through `patient`/`subject` (or
/// `_id` on Patient), for compartment enforcement. `None` entries are
/// references to non-patients.
pub(crate) fn named_patients(search: &Search) -> Vec<String> {
    let mut out = Vec::new();
    for clause in &search.clauses {
        match &clause.target {
            Target::Id if search.resource_type == "Patient" => {
                for alt in &clause.alts {
                    if let Alt::Token { code: Some(c), .. } = alt {
                        out.push(c.clone());
                    }
                }
            }
            Target::Param(def, _)
                if def.kind == Kind::Reference
                    && (def.key == "subject" || def.key == "patient") =>
            {
                for alt in &clause.alts {
                    if let Alt::Reference { resource_type, id } = alt
                        && resource_type
                            .as_deref()
                            .or(def.target)
                            .is_none_or(|t| t == "Patient")
                    {
                        out.push(id.clone());
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn sort_value(live: &Live<'_>, field: SortField) -> Option<i64> {
    match field {
        SortField::LastUpdated => Some(live.version.last_updated),
        SortField::Date(key) => live.version.index.first_date(key).map(|i| i.start),
        SortField::Id => None,
    }
}

/// Sorts matches by the `_sort` keys; ties (and no keys) keep insertion
/// order. Resources without a value sort last in both directions.
pub(crate) fn sort(matches: &mut [Live<'_>], keys: &[(SortField, bool)]) {
    if keys.is_empty() {
        return;
    }
    matches.sort_by(|a, b| {
        for &(field, desc) in keys {
            let ord = match field {
                SortField::Id => a.id.cmp(b.id),
                _ => match (sort_value(a, field), sort_value(b, field)) {
                    (Some(x), Some(y)) => x.cmp(&y),
                    (Some(_), None) => return Ordering::Less,
                    (None, Some(_)) => return Ordering::Greater,
                    (None, None) => Ordering::Equal,
                },
            };
            let ord = if desc { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        a.slot.cmp(&b.slot)
    });
}

/// What a `next`/`previous` link encodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PageToken {
    /// Format version.
    pub(crate) v: u8,
    /// The search type, or `$everything` for Patient/$everything.
    pub(crate) t: String,
    /// The applied parameters (for `$everything`: the patient id as `_id`,
    /// and `_count`).
    pub(crate) q: Vec<(String, String)>,
    /// The offset of the page.
    pub(crate) o: usize,
    /// When the search's first page was served (Unix ms): the start of its
    /// paging session, carried from page to page; only under a profile whose
    /// paging sessions expire ([`SearchCodes::paging_session_lifetime_secs`](crate::SearchCodes::paging_session_lifetime_secs)).
    /// Signed with the rest, so a client cannot extend it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) i: Option<i64>,
}

/// The longest `_page` value accepted (tokens this server issues are far
/// shorter: the applied parameters are capped by the query length).
const MAX_PAGE_TOKEN_LEN: usize = 16 * 1024;

impl PageToken {
    /// `base64url(json) "." base64url(HMAC-SHA256(key, json))`: opaque to
    /// clients, and unforgeable without the sandbox's random `key`, so the
    /// offset, count and parameters in it are ones this server chose.
    pub(crate) fn encode(&self, key: &[u8]) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let mac = crate::oidc::hmac_sha256(key, &json);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&json),
            URL_SAFE_NO_PAD.encode(mac)
        )
    }

    /// The token, if `key` signed it.
    pub(crate) fn decode(token: &str, key: &[u8]) -> Option<PageToken> {
        if token.len() > MAX_PAGE_TOKEN_LEN {
            return None;
        }
        let (payload, mac) = token.split_once('.')?;
        let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        let expected = crate::oidc::hmac_sha256(key, &json);
        // Constant time: no early exit on the first differing byte.
        let same = mac.len() == expected.len()
            && mac
                .iter()
                .zip(expected.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !same {
            return None;
        }
        let t: PageToken = serde_json::from_slice(&json).ok()?;
        (t.v == 1).then_some(t)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::time::DAY_MS;

    #[test]
    fn date_prefixes_follow_the_range_semantics() {
        let day = parse_fhir_date("2023-05-01").unwrap();
        let noon = parse_fhir_date("2023-05-01T12:00:00Z").unwrap();
        let may = parse_fhir_date("2023-05").unwrap();
        assert!(date_matches(noon, Prefix::Eq, day));
        assert!(!date_matches(noon, Prefix::Ne, day));
        assert!(date_matches(noon, Prefix::Eq, may));
        assert!(!date_matches(day, Prefix::Eq, noon));
        assert!(date_matches(noon, Prefix::Ge, day));
        assert!(date_matches(noon, Prefix::Le, day));
        assert!(!date_matches(noon, Prefix::Gt, day));
        assert!(!date_matches(noon, Prefix::Lt, day));
        let next = Interval::at(day.start + DAY_MS, DAY_MS);
        assert!(date_matches(next, Prefix::Gt, day));
        assert!(date_matches(next, Prefix::Sa, day));
        assert!(date_matches(day, Prefix::Eb, next));
        assert!(date_matches(day, Prefix::Lt, next));
        assert!(!date_matches(day, Prefix::Sa, day));
    }

    #[test]
    fn ignored_parameters_are_told_apart_from_unknown_ones() {
        let pairs: Vec<(String, String)> = [
            ("foo", "1"),
            ("_revinclude", "Provenance:target"),
            ("_summary", "true"),
            ("subject.name", "x"),
            ("nope.name", "x"),
            ("_sort", "status"),
            ("_include", "Observation:code"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let s = parse("Observation", &pairs, "http://x/fhir", false).unwrap();
        let kinds: Vec<WarningKind> = s.warnings.iter().map(|w| w.kind).collect();
        use WarningKind::{Ignored, Unknown};
        assert_eq!(
            kinds,
            [
                Unknown, Ignored, Ignored, Ignored, Unknown, Ignored, Ignored
            ]
        );
    }

    #[test]
    fn alternatives_and_escapes() {
        assert_eq!(split_alternatives("a,b\\,c,,d"), vec!["a", "b,c", "d"]);
    }

    #[test]
    fn tokens_and_unknown_parameters() {
        let pairs = vec![
            (
                "code".to_owned(),
                "http://loinc.org|8867-4,2339-0".to_owned(),
            ),
            ("category".to_owned(), "laboratory".to_owned()),
            ("foo".to_owned(), "bar".to_owned()),
            ("_count".to_owned(), "1000".to_owned()),
        ];
        let s = parse("Observation", &pairs, "http://x/fhir", false).unwrap();
        assert_eq!(s.clauses.len(), 2);
        assert_eq!(s.count, MAX_COUNT);
        assert_eq!(s.warnings.len(), 1);
        assert!(s.warnings[0].message.contains("foo"));
        assert_eq!(s.warnings[0].kind, WarningKind::Unknown);
        assert!(!s.applied.iter().any(|(k, _)| k == "foo"));
        assert!(parse("Observation", &pairs, "http://x/fhir", true).is_err());
        let bad = vec![("date".to_owned(), "ge2023-13-01".to_owned())];
        assert!(parse("Observation", &bad, "http://x/fhir", false).is_err());
        let bad = vec![("code:text".to_owned(), "x".to_owned())];
        assert!(parse("Observation", &bad, "http://x/fhir", false).is_err());
    }

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        let t = PageToken {
            v: 1,
            t: "Observation".into(),
            q: vec![("code".into(), "x".into())],
            o: 50,
            i: Some(1_700_000_000_000),
        };
        let key = [7u8; 32];
        let encoded = t.encode(&key);
        assert_eq!(PageToken::decode(&encoded, &key), Some(t.clone()));
        assert_eq!(PageToken::decode(&encoded, &[8u8; 32]), None);
        assert_eq!(PageToken::decode("not-a-token", &key), None);
        // The same content with another offset, unsigned or re-signed with
        // the wrong key, is refused.
        let forged = PageToken {
            o: usize::MAX,
            ..t.clone()
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let (_, mac) = encoded.split_once('.').unwrap();
        assert_eq!(PageToken::decode(&format!("{payload}.{mac}"), &key), None);
        assert_eq!(PageToken::decode(&payload, &key), None);
        assert_eq!(PageToken::decode(&forged.encode(&[8u8; 32]), &key), None);
    }
}
