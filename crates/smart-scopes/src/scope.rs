//! One scope: the typed model, the tolerant parser and the canonical formatter.

use std::error::Error;
use std::fmt;
use std::str::FromStr;

use crate::Permissions;

/// The URI prefix of SMART scopes in URI form (matched case-insensitively, `http` or `https`).
pub const SMART_SCOPE_URI_PREFIX: &str = "http://smarthealthit.org/fhir/scopes/";
/// The URI prefix of OpenID Connect scopes in URI form (matched case-insensitively, `http` or `https`).
pub const OIDC_SCOPE_URI_PREFIX: &str = "http://openid.net/specs/openid-connect-core-1_0#";

/// The context part of a resource scope: whose data the scope reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScopeContext {
    /// `patient/`: data about the patient in context.
    Patient,
    /// `user/`: data the signed-in user may reach.
    User,
    /// `system/`: backend services, no user.
    System,
}

impl ScopeContext {
    /// The lowercase spelling used in scopes: `"patient"`, `"user"` or `"system"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeContext::Patient => "patient",
            ScopeContext::User => "user",
            ScopeContext::System => "system",
        }
    }

    /// Parses a context name case-insensitively (`Patient` is accepted).
    pub fn from_name(s: &str) -> Option<ScopeContext> {
        [
            ScopeContext::Patient,
            ScopeContext::User,
            ScopeContext::System,
        ]
        .into_iter()
        .find(|c| s.eq_ignore_ascii_case(c.as_str()))
    }
}

impl fmt::Display for ScopeContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The resource-type part of a resource scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    /// `*`: every resource type, current and future.
    Any,
    /// One FHIR resource type, for example `Observation` (case kept as written).
    Named(String),
}

impl ResourceType {
    /// `"*"` for [`ResourceType::Any`], the name otherwise.
    pub fn as_str(&self) -> &str {
        match self {
            ResourceType::Any => "*",
            ResourceType::Named(name) => name,
        }
    }

    /// True when this (granted) type covers the `resource_type` name: `*` covers every name,
    /// a named type only its own name (case-sensitive, as FHIR type names are).
    pub fn matches(&self, resource_type: &str) -> bool {
        match self {
            ResourceType::Any => true,
            ResourceType::Named(name) => name == resource_type,
        }
    }

    /// True when this (granted) type covers every type `other` can stand for.
    fn covers(&self, other: &ResourceType) -> bool {
        match (self, other) {
            (ResourceType::Any, _) => true,
            (ResourceType::Named(a), ResourceType::Named(b)) => a == b,
            (ResourceType::Named(_), ResourceType::Any) => false,
        }
    }
}

impl From<&str> for ResourceType {
    /// `"*"` becomes [`ResourceType::Any`], anything else [`ResourceType::Named`] (not validated).
    fn from(s: &str) -> ResourceType {
        if s == "*" {
            ResourceType::Any
        } else {
            ResourceType::Named(s.to_owned())
        }
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which grammar a resource scope's permissions were written in; kept so that formatting gives
/// back the form the server used (servers SHOULD answer v1 requests with v1 scopes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PermissionSyntax {
    /// `read`, `write` or `*`.
    V1,
    /// A subset of `cruds`.
    V2,
}

/// A resource scope: `context "/" (type | "*") "." perms ["?" param=value *("&" param=value)]`.
///
/// A value with [`PermissionSyntax::V1`] should hold permissions that have an exact v1 form
/// (`rs`, `cud`, `cruds`); otherwise it is formatted with v2 letters. Query values are kept raw
/// (not percent-decoded), so `|` and `:` stay as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceScope {
    /// `patient`, `user` or `system`.
    pub context: ScopeContext,
    /// The resource type or `*`.
    pub resource_type: ResourceType,
    /// The permissions, whatever grammar they were written in.
    pub permissions: Permissions,
    /// The grammar the permissions are written in.
    pub syntax: PermissionSyntax,
    /// The `?param=value&…` restriction, in order; empty for an unrestricted scope.
    pub query: Vec<(String, String)>,
}

impl ResourceScope {
    /// An unrestricted v2 resource scope.
    pub fn new(
        context: ScopeContext,
        resource_type: ResourceType,
        permissions: Permissions,
    ) -> ResourceScope {
        ResourceScope {
            context,
            resource_type,
            permissions,
            syntax: PermissionSyntax::V2,
            query: Vec::new(),
        }
    }

    /// True when this scope is about `context` and `resource_type` (a `*` scope matches every
    /// type). Permissions and query are not looked at.
    pub fn matches(&self, context: ScopeContext, resource_type: &str) -> bool {
        self.context == context && self.resource_type.matches(resource_type)
    }

    /// True when the scope carries a `?param=value` restriction.
    pub fn is_restricted(&self) -> bool {
        !self.query.is_empty()
    }

    /// Same meaning, ignoring the grammar and the order of query parameters.
    fn same_meaning(&self, other: &ResourceScope) -> bool {
        self.context == other.context
            && self.resource_type == other.resource_type
            && self.permissions == other.permissions
            && same_query(&self.query, &other.query)
    }
}

/// Query lists compared as multisets (order of parameters does not matter).
fn same_query(a: &[(String, String)], b: &[(String, String)]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut a: Vec<_> = a.iter().collect();
    let mut b: Vec<_> = b.iter().collect();
    a.sort();
    b.sort();
    a == b
}

impl fmt::Display for ResourceScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}.", self.context, self.resource_type)?;
        match (self.syntax, self.permissions.to_v1()) {
            (PermissionSyntax::V1, Some(v1)) => f.write_str(v1)?,
            _ => f.write_str(&self.permissions.to_v2_string())?,
        }
        for (i, (k, v)) in self.query.iter().enumerate() {
            let sep = if i == 0 { '?' } else { '&' };
            write!(f, "{sep}{k}={v}")?;
        }
        Ok(())
    }
}

/// One SMART scope.
///
/// [`Scope::parse`] is tolerant (case of keywords, contexts and actions; URI prefixes;
/// surrounding whitespace) and never fails: anything it does not recognise is kept verbatim in
/// [`Scope::Other`]. [`fmt::Display`] gives the canonical form, and `Scope::parse(&s.to_string())
/// == s` for every value the parser produces.
///
/// ```
/// use smart_scopes::{Permissions, PermissionSyntax, Scope, ScopeContext};
///
/// let s = Scope::parse("http://smarthealthit.org/FHIR/scopes/patient/Patient.Read");
/// let Scope::Resource(r) = &s else { panic!("not a resource scope") };
/// assert_eq!(r.context, ScopeContext::Patient);
/// assert_eq!(r.permissions, Permissions::READ | Permissions::SEARCH);
/// assert_eq!(r.syntax, PermissionSyntax::V1);
/// assert_eq!(s.to_string(), "patient/Patient.read");
/// assert_eq!(s.to_v2().to_string(), "patient/Patient.rs");
/// assert!(s.is_equivalent(&Scope::parse("patient/Patient.rs")));
///
/// assert_eq!(Scope::parse("Patient.read"), Scope::Other("Patient.read".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `patient/…`, `user/…`, `system/…` resource scopes.
    Resource(ResourceScope),
    /// `launch`: EHR launch, bound to the `launch` parameter.
    Launch,
    /// `launch/<type>` (type in lowercase, for example `patient`), optionally with one
    /// `?role=<absolute URI>`.
    LaunchContext {
        /// The lowercase resource type, for example `patient` or `encounter`.
        resource_type: String,
        /// The requested role (2.2), an absolute URI.
        role: Option<String>,
    },
    /// `openid`.
    OpenId,
    /// `fhirUser`.
    FhirUser,
    /// `profile`: the deprecated SMART 1.0 alias of `fhirUser` (kept distinct; not equivalent).
    Profile,
    /// `offline_access`.
    OfflineAccess,
    /// `online_access`.
    OnlineAccess,
    /// Anything else (extension scopes such as a full URI or `__name`, or malformed scopes),
    /// kept verbatim apart from trimming. Should hold a string that [`Scope::parse`] does not
    /// recognise, or formatting will not round-trip.
    Other(String),
}

impl Scope {
    /// Parses one scope tolerantly. Never panics and never fails.
    ///
    /// Tolerated: surrounding whitespace; the URI forms ([`SMART_SCOPE_URI_PREFIX`],
    /// [`OIDC_SCOPE_URI_PREFIX`], any case, `http` or `https`); any case in keywords (`OpenID`,
    /// `Launch/Patient`), contexts (`Patient/…`) and permissions (`.Read`, `.RS`).
    /// Resource type names and query values are kept as written.
    ///
    /// Anything not recognised (including `Patient.read` without a context, out-of-order
    /// permissions like `.dus`, a launch scope with two roles, and strings with inner
    /// whitespace) becomes [`Scope::Other`] with the trimmed input. An empty input gives
    /// `Other("")`; use [`FromStr`] to reject it.
    pub fn parse(s: &str) -> Scope {
        let t = s.trim();
        if let Some(rest) = strip_uri_prefix(t) {
            return match parse_bare(rest) {
                Scope::Other(_) => Scope::Other(t.to_owned()),
                known => known,
            };
        }
        parse_bare(t)
    }

    /// The resource scope inside, if this is one.
    pub fn as_resource(&self) -> Option<&ResourceScope> {
        match self {
            Scope::Resource(r) => Some(r),
            _ => None,
        }
    }

    /// The v1 form(s) of this scope, for servers that only advertise `permission-v1`.
    ///
    /// Rule: **exact or unchanged**. A resource scope whose permissions have an exact v1 form
    /// (`rs` → `read`, `cud` → `write`, `cruds` → `*`) gives one scope in v1 syntax (the query
    /// is kept). Any other permission set (for example `r` or `crs`) has no exact v1 meaning —
    /// a union of v1 scopes is always `rs`, `cud` or `cruds` — so the scope is returned
    /// unchanged, still in v2 syntax (check [`ResourceScope::syntax`] to detect this). Nothing is
    /// widened and nothing is dropped. Non-resource scopes are returned unchanged. The vector
    /// therefore always holds exactly one scope.
    pub fn to_v1(&self) -> Vec<Scope> {
        match self {
            Scope::Resource(r) if r.permissions.to_v1().is_some() => {
                vec![Scope::Resource(ResourceScope {
                    syntax: PermissionSyntax::V1,
                    ..r.clone()
                })]
            }
            other => vec![other.clone()],
        }
    }

    /// The v2 form: resource scopes switch to v2 letters (query kept); others are unchanged.
    pub fn to_v2(&self) -> Scope {
        match self {
            Scope::Resource(r) => Scope::Resource(ResourceScope {
                syntax: PermissionSyntax::V2,
                ..r.clone()
            }),
            other => other.clone(),
        }
    }

    /// Same meaning: resource scopes compare context, type, permission set and query (as a set
    /// of parameters), ignoring the grammar (`patient/Obs.read` ≡ `patient/Obs.rs`). Other
    /// scopes compare exactly.
    pub fn is_equivalent(&self, other: &Scope) -> bool {
        match (self, other) {
            (Scope::Resource(a), Scope::Resource(b)) => a.same_meaning(b),
            (a, b) => a == b,
        }
    }

    /// The permissions granted resource scope `self` contributes towards covering `requested`
    /// (same context, type or `*`, and no query or the same query), if it applies at all.
    pub(crate) fn contributes_to(&self, requested: &ResourceScope) -> Option<Permissions> {
        let g = self.as_resource()?;
        let applies = g.context == requested.context
            && g.resource_type.covers(&requested.resource_type)
            && (g.query.is_empty() || same_query(&g.query, &requested.query));
        applies.then_some(g.permissions)
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// Strips a SMART or OIDC URI prefix (any case, `http` or `https`).
pub(crate) fn strip_uri_prefix(s: &str) -> Option<&str> {
    let rest = strip_prefix_ci(s, "http://").or_else(|| strip_prefix_ci(s, "https://"))?;
    let smart = &SMART_SCOPE_URI_PREFIX["http://".len()..];
    let oidc = &OIDC_SCOPE_URI_PREFIX["http://".len()..];
    strip_prefix_ci(rest, smart).or_else(|| strip_prefix_ci(rest, oidc))
}

/// Parses a trimmed scope without URI prefix.
fn parse_bare(t: &str) -> Scope {
    if t.chars().any(char::is_whitespace) {
        return Scope::Other(t.to_owned());
    }
    const KEYWORDS: [(&str, Scope); 6] = [
        ("launch", Scope::Launch),
        ("openid", Scope::OpenId),
        ("fhirUser", Scope::FhirUser),
        ("profile", Scope::Profile),
        ("offline_access", Scope::OfflineAccess),
        ("online_access", Scope::OnlineAccess),
    ];
    if let Some((_, scope)) = KEYWORDS.iter().find(|(k, _)| t.eq_ignore_ascii_case(k)) {
        return scope.clone();
    }
    if let Some(rest) = strip_prefix_ci(t, "launch/") {
        if let Some(scope) = parse_launch_context(rest) {
            return scope;
        }
    } else if let Some(r) = parse_resource(t) {
        return Scope::Resource(r);
    }
    Scope::Other(t.to_owned())
}

pub(crate) fn is_type_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// RFC 3986 absolute URI, loosely: `scheme ":" something`.
fn is_absolute_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut bytes = scheme.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        && !rest.is_empty()
}

/// `<type>[?role=<absolute-uri>]` after `launch/`.
fn parse_launch_context(rest: &str) -> Option<Scope> {
    let (ty, query) = match rest.split_once('?') {
        Some((ty, q)) => (ty, Some(q)),
        None => (rest, None),
    };
    if !is_type_name(ty) {
        return None;
    }
    let role = match query {
        None => None,
        Some(q) => {
            if q.contains('&') {
                return None; // at most one role, and no other parameters
            }
            let (key, value) = q.split_once('=')?;
            if !key.eq_ignore_ascii_case("role") || !is_absolute_uri(value) {
                return None;
            }
            Some(value.to_owned())
        }
    };
    Some(Scope::LaunchContext {
        resource_type: ty.to_ascii_lowercase(),
        role,
    })
}

/// `context "/" type "." perms ["?" query]`.
fn parse_resource(t: &str) -> Option<ResourceScope> {
    let (ctx, rest) = t.split_once('/')?;
    let context = ScopeContext::from_name(ctx)?;
    let (base, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (ty, perms) = base.split_once('.')?;
    let resource_type = if ty == "*" {
        ResourceType::Any
    } else if is_type_name(ty) {
        ResourceType::Named(ty.to_owned())
    } else {
        return None;
    };
    let (permissions, syntax) = match Permissions::from_v2(perms) {
        Some(p) => (p, PermissionSyntax::V2),
        None => (Permissions::from_v1(perms)?, PermissionSyntax::V1),
    };
    let query = match query {
        None => Vec::new(),
        Some(q) => q
            .split('&')
            .map(|pair| {
                let (k, v) = pair.split_once('=')?;
                (!k.is_empty() && !v.is_empty()).then(|| (k.to_owned(), v.to_owned()))
            })
            .collect::<Option<Vec<_>>>()?,
    };
    Some(ResourceScope {
        context,
        resource_type,
        permissions,
        syntax,
        query,
    })
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Resource(r) => r.fmt(f),
            Scope::Launch => f.write_str("launch"),
            Scope::LaunchContext {
                resource_type,
                role,
            } => {
                write!(f, "launch/{resource_type}")?;
                if let Some(role) = role {
                    write!(f, "?role={role}")?;
                }
                Ok(())
            }
            Scope::OpenId => f.write_str("openid"),
            Scope::FhirUser => f.write_str("fhirUser"),
            Scope::Profile => f.write_str("profile"),
            Scope::OfflineAccess => f.write_str("offline_access"),
            Scope::OnlineAccess => f.write_str("online_access"),
            Scope::Other(s) => f.write_str(s),
        }
    }
}

/// Why a string is not one scope (see [`Scope`]'s [`FromStr`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeParseError {
    kind: ParseErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ParseErrorKind {
    Empty,
    ContainsWhitespace,
}

impl ScopeParseError {
    /// True when the input was empty or only whitespace.
    pub fn is_empty_input(&self) -> bool {
        self.kind == ParseErrorKind::Empty
    }
}

impl fmt::Display for ScopeParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ParseErrorKind::Empty => f.write_str("empty scope"),
            ParseErrorKind::ContainsWhitespace => {
                f.write_str("a scope cannot contain whitespace (use Scopes to parse a list)")
            }
        }
    }
}

impl Error for ScopeParseError {}

impl FromStr for Scope {
    type Err = ScopeParseError;

    /// Like [`Scope::parse`] (surrounding whitespace is trimmed), but fails on an empty or
    /// whitespace-only string and on a string with whitespace inside (a list of scopes).
    fn from_str(s: &str) -> Result<Scope, ScopeParseError> {
        let t = s.trim();
        if t.is_empty() {
            Err(ScopeParseError {
                kind: ParseErrorKind::Empty,
            })
        } else if t.chars().any(char::is_whitespace) {
            Err(ScopeParseError {
                kind: ParseErrorKind::ContainsWhitespace,
            })
        } else {
            Ok(Scope::parse(t))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(s: &Scope) -> &ResourceScope {
        s.as_resource().expect("resource scope")
    }

    #[test]
    fn parses_every_keyword_scope() {
        assert_eq!(Scope::parse("launch"), Scope::Launch);
        assert_eq!(Scope::parse("openid"), Scope::OpenId);
        assert_eq!(Scope::parse("fhirUser"), Scope::FhirUser);
        assert_eq!(Scope::parse("fhiruser"), Scope::FhirUser);
        assert_eq!(Scope::parse("profile"), Scope::Profile);
        assert_eq!(Scope::parse("offline_access"), Scope::OfflineAccess);
        assert_eq!(Scope::parse("online_access"), Scope::OnlineAccess);
        assert_eq!(Scope::parse("OpenID"), Scope::OpenId);
    }

    #[test]
    fn parses_resource_scope_parts() {
        let s = Scope::parse("user/*.cruds");
        let r = res(&s);
        assert_eq!(r.context, ScopeContext::User);
        assert_eq!(r.resource_type, ResourceType::Any);
        assert_eq!(r.permissions, Permissions::ALL);
        assert_eq!(r.syntax, PermissionSyntax::V2);
        assert!(r.query.is_empty());

        let s = Scope::parse("system/Encounter.write");
        let r = res(&s);
        assert_eq!(r.context, ScopeContext::System);
        assert_eq!(r.resource_type, ResourceType::Named("Encounter".into()));
        assert_eq!(
            r.permissions,
            Permissions::CREATE | Permissions::UPDATE | Permissions::DELETE
        );
        assert_eq!(r.syntax, PermissionSyntax::V1);
    }

    #[test]
    fn malformed_resource_scopes_are_kept_verbatim() {
        for s in [
            "patient/Observation.dus",
            "patient/Observation",
            "patient/.rs",
            "patient/Obs-ervation.rs",
            "patient/Observation.rs?",
            "patient/Observation.rs?category",
            "patient/Observation.rs?=x",
            "patient/Observation.rs?a=1&",
            "nurse/Observation.rs",
            "Patient.read",
            "launch/",
            "launch/patient?role=notauri",
            "launch/patient?role=https://a.org/x&role=https://b.org/y",
            "launch/patient?foo=https://a.org",
            "__profilePhoto.manage",
            "https://ehr.example.org/scopes/profilePhoto.manage",
        ] {
            assert_eq!(Scope::parse(s), Scope::Other(s.to_owned()), "{s}");
        }
    }

    #[test]
    fn uri_prefix_is_stripped_only_for_known_scopes() {
        assert_eq!(
            Scope::parse("http://openid.net/specs/openid-connect-core-1_0#openid"),
            Scope::OpenId
        );
        assert_eq!(
            Scope::parse("HTTPS://SmartHealthIT.org/fhir/scopes/launch/Patient"),
            Scope::LaunchContext {
                resource_type: "patient".into(),
                role: None
            }
        );
        let unknown = "http://smarthealthit.org/fhir/scopes/something";
        assert_eq!(Scope::parse(unknown), Scope::Other(unknown.into()));
        let bare = "http://smarthealthit.org/fhir/scopes/";
        assert_eq!(Scope::parse(bare), Scope::Other(bare.into()));
    }

    #[test]
    fn non_ascii_input_does_not_panic_in_prefix_matching() {
        for s in [
            "é",
            "http://é",
            "httpé://x",
            "launch/é",
            "patient/é.rs",
            "ü/ü.ü",
        ] {
            assert_eq!(Scope::parse(s), Scope::Other(s.into()));
        }
    }

    #[test]
    fn from_str_rejects_empty_and_inner_whitespace() {
        assert!(
            "".parse::<Scope>()
                .expect_err("empty must fail")
                .is_empty_input()
        );
        assert!(
            " \t\n"
                .parse::<Scope>()
                .expect_err("blank must fail")
                .is_empty_input()
        );
        let err = "openid profile"
            .parse::<Scope>()
            .expect_err("list must fail");
        assert!(!err.is_empty_input());
        assert!(err.to_string().contains("whitespace"));
        assert_eq!(" openid\n".parse::<Scope>(), Ok(Scope::OpenId));
        assert_eq!(Scope::parse("a b"), Scope::Other("a b".into()));
        assert_eq!(Scope::parse(""), Scope::Other(String::new()));
    }

    #[test]
    fn v1_format_falls_back_to_v2_for_inexact_sets() {
        let r = ResourceScope {
            syntax: PermissionSyntax::V1,
            ..ResourceScope::new(
                ScopeContext::Patient,
                ResourceType::from("Observation"),
                Permissions::READ,
            )
        };
        assert_eq!(r.to_string(), "patient/Observation.r");
    }

    #[test]
    fn to_v1_is_exact_or_unchanged() {
        let s = Scope::parse("patient/Observation.rs?category=laboratory");
        assert_eq!(
            s.to_v1(),
            vec![Scope::parse("patient/Observation.read?category=laboratory")]
        );
        let cr = Scope::parse("patient/Observation.cr");
        assert_eq!(cr.to_v1(), vec![cr.clone()]);
        assert_eq!(Scope::OpenId.to_v1(), vec![Scope::OpenId]);
        assert_eq!(
            Scope::parse("user/*.cruds").to_v1()[0].to_string(),
            "user/*.*"
        );
        assert_eq!(
            Scope::parse("user/*.cud").to_v1()[0].to_string(),
            "user/*.write"
        );
    }

    #[test]
    fn equivalence_ignores_syntax_and_query_order_only() {
        let a = Scope::parse("patient/Observation.read?a=1&b=2");
        assert!(a.is_equivalent(&Scope::parse("patient/Observation.rs?b=2&a=1")));
        assert!(!a.is_equivalent(&Scope::parse("patient/Observation.rs?a=1")));
        assert!(!a.is_equivalent(&Scope::parse("user/Observation.rs?a=1&b=2")));
        assert!(!a.is_equivalent(&Scope::parse("patient/Observation.r?a=1&b=2")));
        assert!(!Scope::Profile.is_equivalent(&Scope::FhirUser));
    }

    #[test]
    fn resource_scope_matches() {
        let any = Scope::parse("patient/*.rs");
        assert!(res(&any).matches(ScopeContext::Patient, "Observation"));
        assert!(!res(&any).matches(ScopeContext::User, "Observation"));
        let obs = Scope::parse("patient/Observation.rs");
        assert!(res(&obs).matches(ScopeContext::Patient, "Observation"));
        assert!(!res(&obs).matches(ScopeContext::Patient, "observation"));
        assert!(!res(&obs).matches(ScopeContext::Patient, "*"));
    }
}
