//! Likely mistakes in a scope list, found before the list is sent.
//!
//! The parser is tolerant on purpose (servers answer with odd case and old grammars), so a typo
//! in an app's configuration does not fail: it quietly becomes an extension scope that the
//! server ignores or refuses, and the app learns it only from a narrowed grant or an
//! `invalid_scope` error. [`Scopes::parse_with_warnings`] parses the same way but also returns a
//! [`ScopeWarning`] for each scope that is probably not what was meant, with a "did you mean":
//! commas used as separators, resource types the FHIR version does not have, permissions out of
//! `cruds` order, near-misses of the well-known scopes (`offline-access`, `launch-patient`), and
//! recognised scopes written in a form servers may not accept (`openId`). Warnings never change
//! the parsed list.
//!
//! Every check looks at one scope at a time and at most [`MAX_WARNINGS`] warnings are built, so
//! checking stays linear in the length of the list.

use std::fmt;

use crate::resource_types::R4_RESOURCE_TYPES;
use crate::scope::{is_type_name, strip_uri_prefix};
use crate::{MAX_SCOPES, Permissions, ResourceType, Scope, ScopeContext, Scopes};

/// The most warnings [`Scopes::parse_with_warnings`] returns (a [`ScopeWarning::TooMany`] comes
/// on top when the list was cut).
pub const MAX_WARNINGS: usize = 64;

/// The resource type names of one FHIR version, to check resource scopes against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownResourceTypes<'a> {
    /// The FHIR version, for messages (`"R4"`).
    pub fhir_version: &'a str,
    /// The type names, sorted in byte order.
    pub names: &'a [&'a str],
}

impl KnownResourceTypes<'static> {
    /// FHIR R4 (4.0.1).
    pub const R4: KnownResourceTypes<'static> = KnownResourceTypes {
        fhir_version: "R4",
        names: R4_RESOURCE_TYPES,
    };
}

impl KnownResourceTypes<'_> {
    /// True when `name` is one of the types.
    pub fn contains(&self, name: &str) -> bool {
        self.names.binary_search(&name).is_ok()
    }

    /// The type probably meant by `name`: the same name in another case, else the closest name
    /// at most two edits away.
    fn closest(&self, name: &str) -> Option<&str> {
        if let Some(same) = self.names.iter().find(|n| n.eq_ignore_ascii_case(name)) {
            return Some(same);
        }
        closest_within(name, self.names.iter().copied(), 2)
    }
}

/// A scope that is probably not what was meant. Display gives one line with a "did you mean".
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScopeWarning {
    /// Commas between scopes: scopes are separated by spaces, so `patient/*.read,launch` is one
    /// unrecognised scope.
    Comma {
        /// The scope as written.
        written: String,
        /// The same scopes separated by spaces.
        suggestion: String,
    },
    /// A resource scope names a type the FHIR version does not have.
    UnknownResourceType {
        /// The scope as written.
        written: String,
        /// The unknown type name.
        resource_type: String,
        /// The FHIR version checked against.
        fhir_version: String,
        /// The type probably meant, if one is close.
        suggestion: Option<String>,
    },
    /// Permissions that are `cruds` letters but not in that order (or repeated), such as `.sr`.
    PermissionOrder {
        /// The scope as written.
        written: String,
        /// The scope with its permissions in `cruds` order.
        suggestion: String,
    },
    /// An unrecognised scope close to a well-known one (`offline-access`, `launch-patient`,
    /// `patients/Observation.rs`, `Observation.rs` without a context).
    NearMiss {
        /// The scope as written.
        written: String,
        /// The well-known scope probably meant.
        suggestion: String,
    },
    /// A recognised scope written in another form than the specification's (`openId`,
    /// `fhiruser`, `patient/Observation.Read`): this parser accepts it, but servers compare
    /// scopes exactly and may not.
    NotCanonical {
        /// The scope as written.
        written: String,
        /// The specification's spelling.
        canonical: String,
    },
    /// The list held more than [`MAX_SCOPES`] scopes; the rest were left out.
    TooMany {
        /// Scopes kept.
        kept: usize,
        /// Scopes left out.
        omitted: usize,
    },
}

impl ScopeWarning {
    /// The scope the warning is about, as written (`None` for [`ScopeWarning::TooMany`]).
    pub fn written(&self) -> Option<&str> {
        match self {
            ScopeWarning::Comma { written, .. }
            | ScopeWarning::UnknownResourceType { written, .. }
            | ScopeWarning::PermissionOrder { written, .. }
            | ScopeWarning::NearMiss { written, .. }
            | ScopeWarning::NotCanonical { written, .. } => Some(written),
            ScopeWarning::TooMany { .. } => None,
        }
    }

    /// The replacement probably meant: the whole corrected scope (or scopes, for a comma), or
    /// the type name for an unknown type.
    pub fn suggestion(&self) -> Option<&str> {
        match self {
            ScopeWarning::Comma { suggestion, .. }
            | ScopeWarning::PermissionOrder { suggestion, .. }
            | ScopeWarning::NearMiss { suggestion, .. } => Some(suggestion),
            ScopeWarning::NotCanonical { canonical, .. } => Some(canonical),
            ScopeWarning::UnknownResourceType { suggestion, .. } => suggestion.as_deref(),
            ScopeWarning::TooMany { .. } => None,
        }
    }
}

/// Quotes text for a message, with control and other non-printable characters escaped.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.0.escape_debug())
    }
}

impl fmt::Display for ScopeWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScopeWarning::Comma {
                written,
                suggestion,
            } => write!(
                f,
                "scope {} contains a comma; scopes are separated by spaces: did you mean {}?",
                Quoted(written),
                Quoted(suggestion)
            ),
            ScopeWarning::UnknownResourceType {
                written,
                resource_type,
                fhir_version,
                suggestion,
            } => {
                write!(
                    f,
                    "scope {}: {} is not a FHIR {} resource type",
                    Quoted(written),
                    Quoted(resource_type),
                    fhir_version.escape_debug()
                )?;
                match suggestion {
                    Some(s) => write!(f, "; did you mean {}?", Quoted(s)),
                    None => Ok(()),
                }
            }
            ScopeWarning::PermissionOrder {
                written,
                suggestion,
            } => write!(
                f,
                "scope {}: permissions must be letters of `cruds` in that order; did you mean {}?",
                Quoted(written),
                Quoted(suggestion)
            ),
            ScopeWarning::NearMiss {
                written,
                suggestion,
            } => write!(
                f,
                "scope {} is not a SMART scope; did you mean {}?",
                Quoted(written),
                Quoted(suggestion)
            ),
            ScopeWarning::NotCanonical { written, canonical } => write!(
                f,
                "scope {} is accepted here, but servers compare scopes exactly; did you mean {}?",
                Quoted(written),
                Quoted(canonical)
            ),
            ScopeWarning::TooMany { kept, omitted } => write!(
                f,
                "the list holds more than {MAX_SCOPES} scopes: {kept} kept, {omitted} left out"
            ),
        }
    }
}

impl Scopes {
    /// [`Scopes::parse`], and the likely mistakes in the list checked against FHIR R4's resource
    /// types (see [`ScopeWarning`]). The parsed list is the same as [`Scopes::parse`] gives.
    ///
    /// ```
    /// use smart_scopes::{ScopeWarning, Scopes};
    ///
    /// let (scopes, warnings) = Scopes::parse_with_warnings("patient/Observation.sr offline-access openid");
    /// assert_eq!(scopes, Scopes::parse("patient/Observation.sr offline-access openid"));
    /// assert_eq!(warnings[0].suggestion(), Some("patient/Observation.rs"));
    /// assert!(matches!(&warnings[1], ScopeWarning::NearMiss { suggestion, .. } if suggestion == "offline_access"));
    /// assert_eq!(warnings.len(), 2);
    /// ```
    pub fn parse_with_warnings(s: &str) -> (Scopes, Vec<ScopeWarning>) {
        Scopes::parse_with_warnings_for(s, KnownResourceTypes::R4)
    }

    /// [`Scopes::parse_with_warnings`] against another FHIR version's resource types.
    pub fn parse_with_warnings_for(
        s: &str,
        types: KnownResourceTypes<'_>,
    ) -> (Scopes, Vec<ScopeWarning>) {
        let mut scopes = Scopes::new();
        let mut warnings = Vec::new();
        for token in s
            .split(|c: char| c.is_ascii_whitespace())
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let scope = Scope::parse(token);
            if scopes.contains(&scope) {
                continue;
            }
            // Only scopes that will be kept are checked, so at most MAX_SCOPES checks are made.
            let checked = warnings.len() < MAX_WARNINGS && scopes.len() < MAX_SCOPES;
            let warning = checked.then(|| check(token, &scope, types)).flatten();
            if scopes.insert(scope)
                && let Some(w) = warning
            {
                warnings.push(w);
            }
        }
        if scopes.omitted() > 0 {
            warnings.push(ScopeWarning::TooMany {
                kept: scopes.len(),
                omitted: scopes.omitted(),
            });
        }
        (scopes, warnings)
    }
}

/// The warning for one scope, if any.
fn check(written: &str, scope: &Scope, types: KnownResourceTypes<'_>) -> Option<ScopeWarning> {
    let head = written.split('?').next().unwrap_or(written);
    if head.contains(',') {
        let parts: Vec<&str> = written.split(',').filter(|p| !p.is_empty()).collect();
        return Some(ScopeWarning::Comma {
            written: written.to_owned(),
            suggestion: parts.join(" "),
        });
    }
    if strip_uri_prefix(written).is_some() {
        // The URI forms are legitimate and never canonical; nothing to say.
        return None;
    }
    match scope {
        Scope::Resource(r) => {
            if let ResourceType::Named(name) = &r.resource_type
                && !types.contains(name)
            {
                return Some(ScopeWarning::UnknownResourceType {
                    written: written.to_owned(),
                    resource_type: name.clone(),
                    fhir_version: types.fhir_version.to_owned(),
                    suggestion: types.closest(name).map(str::to_owned),
                });
            }
            not_canonical(written, scope)
        }
        Scope::Other(_) => permission_order(written).or_else(|| near_miss(written)),
        _ => not_canonical(written, scope),
    }
}

fn not_canonical(written: &str, scope: &Scope) -> Option<ScopeWarning> {
    let canonical = scope.to_string();
    (canonical != written).then(|| ScopeWarning::NotCanonical {
        written: written.to_owned(),
        canonical,
    })
}

/// `context/type.perms[?query]` whose permissions are `cruds` letters in the wrong order or
/// repeated.
fn permission_order(written: &str) -> Option<ScopeWarning> {
    let (ctx, rest) = written.split_once('/')?;
    let context = ScopeContext::from_name(ctx)?;
    let (base, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (ty, perms) = base.split_once('.')?;
    if ty != "*" && !is_type_name(ty) {
        return None;
    }
    let mut wanted = Permissions::NONE;
    for c in perms.chars() {
        wanted |= Permissions::from_v2(&c.to_string())?;
    }
    if wanted.is_empty() {
        return None;
    }
    let mut suggestion = format!("{context}/{ty}.{wanted}");
    if let Some(q) = query {
        suggestion.push('?');
        suggestion.push_str(q);
    }
    Some(ScopeWarning::PermissionOrder {
        written: written.to_owned(),
        suggestion,
    })
}

/// The well-known scopes a near-miss is compared with.
const WELL_KNOWN: [&str; 8] = [
    "launch",
    "openid",
    "fhirUser",
    "profile",
    "offline_access",
    "online_access",
    "launch/patient",
    "launch/encounter",
];

/// Scopes longer than this are not compared for near-misses (no well-known scope is that long).
const NEAR_MISS_MAX_LEN: usize = 40;

/// An unrecognised scope close to a well-known one, a resource scope with a misspelt context,
/// or a resource scope without a context.
fn near_miss(written: &str) -> Option<ScopeWarning> {
    if written.len() > NEAR_MISS_MAX_LEN * 4 || written.starts_with("__") || written.contains("://")
    {
        return None;
    }
    let suggestion = if let Some((ctx, rest)) = written.split_once('/')
        && ScopeContext::from_name(ctx).is_none()
        && ctx.len() <= NEAR_MISS_MAX_LEN
        && let Some(context) = closest_within(
            &ctx.to_ascii_lowercase(),
            ["patient", "user", "system"].into_iter(),
            2,
        )
        && let fixed @ Scope::Resource(_) = Scope::parse(&format!("{context}/{rest}"))
    {
        Some(fixed.to_string())
    } else if !written.contains('/')
        && written.contains('.')
        && let fixed @ Scope::Resource(_) = Scope::parse(&format!("patient/{written}"))
    {
        Some(fixed.to_string())
    } else if written.len() <= NEAR_MISS_MAX_LEN {
        let squashed = squash(written);
        WELL_KNOWN
            .iter()
            .find(|k| squash(k) == squashed)
            .copied()
            .or_else(|| {
                let lower = written.to_ascii_lowercase();
                let limit = if written.chars().count() < 8 { 1 } else { 2 };
                closest_within(&lower, WELL_KNOWN.iter().copied(), limit)
            })
            .map(str::to_owned)
    } else {
        None
    }?;
    Some(ScopeWarning::NearMiss {
        written: written.to_owned(),
        suggestion,
    })
}

/// Lower-case ASCII letters and digits only: `offline-access`, `Offline_Access` and
/// `offlineaccess` all squash to `offlineaccess`.
fn squash(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The candidate with the fewest edits from `word` (compared case-insensitively), if that is at
/// most `limit` and at least one. Words longer than 64 characters are not compared.
fn closest_within<'c>(
    word: &str,
    candidates: impl Iterator<Item = &'c str>,
    limit: usize,
) -> Option<&'c str> {
    if word.chars().count() > 64 {
        return None;
    }
    let word: Vec<char> = word.chars().map(|c| c.to_ascii_lowercase()).collect();
    candidates
        .filter_map(|c| {
            let d = edit_distance(&word, c, limit)?;
            (1..=limit).contains(&d).then_some((d, c))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance between `a` (lower case) and `b` (compared in lower case), or `None`
/// when the lengths alone show it exceeds `limit`.
fn edit_distance(a: &[char], b: &str, limit: usize) -> Option<usize> {
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    Some(previous[b.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_r4_list_is_sorted_and_complete_enough() {
        assert!(R4_RESOURCE_TYPES.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(R4_RESOURCE_TYPES.len(), 146);
        for t in [
            "Observation",
            "Patient",
            "MedicationRequest",
            "Bundle",
            "Binary",
        ] {
            assert!(KnownResourceTypes::R4.contains(t), "{t}");
        }
        assert!(!KnownResourceTypes::R4.contains("observation"));
    }

    #[test]
    fn edit_distances() {
        let d = |a: &str, b: &str| edit_distance(&a.chars().collect::<Vec<_>>(), b, 10);
        assert_eq!(d("openid", "openid"), Some(0));
        assert_eq!(d("opneid", "openid"), Some(2));
        assert_eq!(d("offline_acess", "offline_access"), Some(1));
        assert_eq!(edit_distance(&['a'], "abcdef", 2), None);
    }
}
