//! Scope lists: the `scope` parameter of requests and token responses, grant checks and
//! comparison of a grant with a request.
//!
//! A granted `scope` string comes from a server, so everything here is linear in its length:
//! de-duplication goes through a hash index kept next to the ordered list, the comparison of a
//! grant with a request builds one index per side instead of scanning one list per entry, and a
//! list never holds more than [`MAX_SCOPES`] scopes (what is left out is counted, see
//! [`Scopes::omitted`]).

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use crate::{Permissions, ResourceScope, ResourceType, Scope, ScopeContext};

/// The most scopes one [`Scopes`] keeps.
///
/// Real requests and grants hold tens of scopes, a few hundred at most (one per resource type
/// and context); a server answering with far more is broken or hostile. Scopes past the limit
/// are not kept: [`Scopes::insert`] returns `false` for them and [`Scopes::omitted`] counts them,
/// so a caller can tell a list was cut (and a grant comparison reports it in
/// [`ScopeComparison::granted_omitted`]).
pub const MAX_SCOPES: usize = 4_096;

/// An ordered, de-duplicated list of scopes (a `scope` parameter).
///
/// Insertion order is kept. Exact duplicates are dropped, and so are case variants of
/// recognised scopes (`patient/Patient.Read` and `patient/Patient.read` parse to the same
/// [`Scope`]). [`Scope::Other`] values are compared exactly. Scopes with the same meaning in
/// different grammars (`.read` and `.rs`) are both kept; use [`Scopes::to_v2`] to merge them.
///
/// ```
/// use smart_scopes::{Permissions, ScopeContext, Scopes};
///
/// let granted = Scopes::parse(" launch/patient\tpatient/Observation.Read patient/Observation.read\n openid ");
/// assert_eq!(granted.to_string(), "launch/patient patient/Observation.read openid");
/// assert!(granted.permits(ScopeContext::Patient, "Observation", Permissions::SEARCH));
/// assert!(!granted.permits(ScopeContext::Patient, "Observation", Permissions::CREATE));
///
/// let requested = Scopes::parse("launch/patient patient/*.rs openid offline_access");
/// let cmp = Scopes::compare(&requested, &granted);
/// assert_eq!(cmp.narrowed.to_string(), "patient/*.rs");
/// assert_eq!(cmp.dropped.to_string(), "offline_access");
/// assert!(!cmp.is_complete());
/// ```
///
/// At most [`MAX_SCOPES`] scopes are kept; see [`Scopes::omitted`].
#[derive(Clone, Default)]
pub struct Scopes {
    /// The scopes in insertion order.
    list: Vec<Scope>,
    /// The same scopes, for constant-time membership checks.
    index: HashSet<Scope>,
    /// Scopes left out because the list was full.
    omitted: usize,
}

impl Scopes {
    /// An empty list.
    pub fn new() -> Scopes {
        Scopes::default()
    }

    /// Parses a scope list tolerantly: splits on any ASCII whitespace (spaces, tabs, newlines),
    /// trims each token, skips empty ones, parses each with [`Scope::parse`] and removes
    /// duplicates. Never panics and never fails; linear in the length of `s`. Scopes past
    /// [`MAX_SCOPES`] are counted in [`Scopes::omitted`], not kept. See
    /// [`Scopes::parse_with_warnings`] to also learn about likely mistakes.
    pub fn parse(s: &str) -> Scopes {
        let mut out = Scopes::new();
        out.extend_parsed(s);
        out
    }

    /// Parses `s` as [`Scopes::parse`] does and inserts each scope in order.
    pub(crate) fn extend_parsed(&mut self, s: &str) {
        for token in s
            .split(|c: char| c.is_ascii_whitespace())
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            self.insert(Scope::parse(token));
        }
    }

    /// The scopes in order.
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.list.iter()
    }

    /// The scopes in order, as a slice.
    pub fn as_slice(&self) -> &[Scope] {
        &self.list
    }

    /// The number of scopes.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when there are no scopes.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// True when this exact scope is in the list (see [`Scopes::covers`] for meaning-aware checks).
    pub fn contains(&self, s: &Scope) -> bool {
        self.index.contains(s)
    }

    /// Appends `s` unless it is already present or the list already holds [`MAX_SCOPES`]
    /// scopes (then it is counted in [`Scopes::omitted`]); returns true when it was added.
    pub fn insert(&mut self, s: Scope) -> bool {
        if self.index.contains(&s) {
            return false;
        }
        if self.list.len() >= MAX_SCOPES {
            self.omitted = self.omitted.saturating_add(1);
            return false;
        }
        self.index.insert(s.clone());
        self.list.push(s);
        true
    }

    /// Removes this exact scope; returns true when it was present.
    pub fn remove(&mut self, s: &Scope) -> bool {
        if !self.index.remove(s) {
            return false;
        }
        if let Some(i) = self.list.iter().position(|x| x == s) {
            self.list.remove(i);
        }
        true
    }

    /// How many scopes were left out because the list already held [`MAX_SCOPES`] (0 for every
    /// list of a sensible size). A scope left out several times is counted each time.
    ///
    /// ```
    /// use smart_scopes::{MAX_SCOPES, Scopes};
    ///
    /// let huge: Vec<String> = (0..MAX_SCOPES + 5).map(|i| format!("__x{i}")).collect();
    /// let scopes = Scopes::parse(&huge.join(" "));
    /// assert_eq!(scopes.len(), MAX_SCOPES);
    /// assert_eq!(scopes.omitted(), 5);
    /// ```
    pub fn omitted(&self) -> usize {
        self.omitted
    }

    /// True when `openid` is present.
    pub fn has_openid(&self) -> bool {
        self.contains(&Scope::OpenId)
    }

    /// True when `offline_access` or `online_access` is present (a refresh token is asked for).
    pub fn has_refresh(&self) -> bool {
        self.contains(&Scope::OfflineAccess) || self.contains(&Scope::OnlineAccess)
    }

    /// Every scope through [`Scope::to_v1`] (exact or unchanged), de-duplicated.
    pub fn to_v1(&self) -> Scopes {
        let mut out: Scopes = self.iter().flat_map(Scope::to_v1).collect();
        out.omitted = out.omitted.saturating_add(self.omitted);
        out
    }

    /// Every scope through [`Scope::to_v2`], de-duplicated (so `.read` and `.rs` merge).
    pub fn to_v2(&self) -> Scopes {
        let mut out: Scopes = self.iter().map(Scope::to_v2).collect();
        out.omitted = out.omitted.saturating_add(self.omitted);
        out
    }

    /// True when the unrestricted (query-free) resource scopes for `context` and
    /// `resource_type` (including `*` scopes) together grant every permission in `wanted`.
    /// Scopes with a `?query` are not counted; see [`Scopes::query_grants`].
    /// `wanted` = [`Permissions::NONE`] is always permitted.
    pub fn permits(&self, context: ScopeContext, resource_type: &str, wanted: Permissions) -> bool {
        self.resource_scopes()
            .filter(|r| r.query.is_empty() && r.matches(context, resource_type))
            .fold(Permissions::NONE, |acc, r| acc | r.permissions)
            .contains(wanted)
    }

    /// The query-restricted resource scopes for `context` and `resource_type` (including `*`
    /// scopes) that each grant every permission in `wanted`, in order. A server that cannot
    /// answer through [`Scopes::permits`] may still serve the request filtered by one of these.
    pub fn query_grants(
        &self,
        context: ScopeContext,
        resource_type: &str,
        wanted: Permissions,
    ) -> Vec<&ResourceScope> {
        self.resource_scopes()
            .filter(|r| {
                !r.query.is_empty()
                    && r.matches(context, resource_type)
                    && r.permissions.contains(wanted)
            })
            .collect()
    }

    /// True when this (granted) list covers `s`:
    /// - some scope here is [equivalent](Scope::is_equivalent) to `s`; or
    /// - `s` is a resource scope and the union of the permissions of the resource scopes here
    ///   with the same context, the same type or `*`, and either no query or the same query
    ///   (as a set of parameters) contains `s`'s permissions. So `patient/*.rs` and
    ///   `patient/Observation.read` both cover `patient/Observation.rs?category=laboratory`,
    ///   and `patient/Observation.r` + `patient/Observation.s` cover `patient/Observation.rs`.
    pub fn covers(&self, s: &Scope) -> bool {
        if self.iter().any(|g| g.is_equivalent(s)) {
            return true;
        }
        let Scope::Resource(requested) = s else {
            return false;
        };
        self.iter()
            .filter_map(|g| g.contributes_to(requested))
            .fold(Permissions::NONE, |acc, p| acc | p)
            .contains(requested.permissions)
    }

    /// Compares a grant with a request.
    ///
    /// - `granted_as_requested`: requested scopes the grant [covers](Scopes::covers) (in the
    ///   requested form; a v1 grant for a v2 request counts);
    /// - `narrowed`: requested resource scopes only partly covered: some granted resource scope
    ///   in the same context shares a permission on an overlapping type (for example
    ///   `patient/*.rs` requested, `patient/Observation.rs` granted; or `.rs` requested, `.r`
    ///   granted; or a query-restricted grant for an unrestricted request);
    /// - `dropped`: requested scopes not covered at all;
    /// - `added`: granted scopes the request does not cover (new scopes, or wider ones).
    ///
    /// Linear in the sizes of both lists. When a refresh token was issued, use
    /// [`Scopes::compare_with`] so that `offline_access` is not reported as dropped.
    pub fn compare(requested: &Scopes, granted: &Scopes) -> ScopeComparison {
        Scopes::compare_with(requested, granted, false)
    }

    /// [`Scopes::compare`], knowing whether the token response carried a refresh token.
    ///
    /// A refresh token is what `offline_access` and `online_access` ask for, so when one was
    /// issued a requested refresh scope counts as granted whatever the server's `scope` says:
    /// servers differ on whether they echo it, and reporting it as dropped next to a working
    /// refresh token would be wrong. The exception is an echo that names the *other* refresh
    /// scope only: `offline_access` requested, `online_access` granted (Oracle Health does that
    /// for an app registered for online access) means the refresh token lasts only as long as the
    /// user's session, so `offline_access` is reported as dropped.
    ///
    /// ```
    /// use smart_scopes::Scopes;
    ///
    /// let requested = Scopes::parse("openid fhirUser offline_access");
    /// let granted = Scopes::parse("openid fhirUser");
    /// assert_eq!(Scopes::compare(&requested, &granted).dropped.to_string(), "offline_access");
    /// let cmp = Scopes::compare_with(&requested, &granted, true);
    /// assert!(cmp.is_complete());
    /// assert!(cmp.dropped.is_empty());
    ///
    /// // Online access granted instead of offline access: reported, refresh token or not.
    /// let requested = Scopes::parse("openid offline_access online_access");
    /// let granted = Scopes::parse("openid online_access");
    /// let cmp = Scopes::compare_with(&requested, &granted, true);
    /// assert_eq!(cmp.dropped.to_string(), "offline_access");
    /// ```
    pub fn compare_with(
        requested: &Scopes,
        granted: &Scopes,
        refresh_token_issued: bool,
    ) -> ScopeComparison {
        let mut out = ScopeComparison {
            granted_omitted: granted.omitted,
            ..ScopeComparison::default()
        };
        let granted_index = CoverIndex::new(granted);
        // An echo that names `online_access` but not a requested `offline_access` says the
        // refresh token lasts only for the user's session: it does not stand for
        // `offline_access`. (The reverse, offline granted for online asked, loses nothing.)
        let online_echoed = granted.contains(&Scope::OnlineAccess);
        for r in requested {
            let refresh_token_stands_for_it = refresh_token_issued
                && match r {
                    Scope::OfflineAccess => !online_echoed,
                    Scope::OnlineAccess => true,
                    _ => false,
                };
            if granted_index.covers(r) || refresh_token_stands_for_it {
                out.granted_as_requested.insert(r.clone());
            } else if granted_index.overlaps(r) {
                out.narrowed.insert(r.clone());
            } else {
                out.dropped.insert(r.clone());
            }
        }
        let requested_index = CoverIndex::new(requested);
        for g in granted {
            if !requested_index.covers(g) {
                out.added.insert(g.clone());
            }
        }
        out
    }

    fn resource_scopes(&self) -> impl Iterator<Item = &ResourceScope> {
        self.iter().filter_map(Scope::as_resource)
    }
}

/// The outcome of [`Scopes::compare`]: how a granted scope list relates to the requested one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeComparison {
    /// Requested scopes that were fully granted (possibly in another grammar or through wider scopes).
    pub granted_as_requested: Scopes,
    /// Requested resource scopes only partly covered by the grant.
    pub narrowed: Scopes,
    /// Requested scopes not covered at all.
    pub dropped: Scopes,
    /// Granted scopes that no requested scope covers.
    pub added: Scopes,
    /// How many granted scopes were left out of the granted list for being past
    /// [`MAX_SCOPES`] ([`Scopes::omitted`] of the grant). When not 0, a scope reported as
    /// dropped or narrowed may be among them.
    pub granted_omitted: usize,
}

impl ScopeComparison {
    /// True when every requested scope was granted: nothing dropped or narrowed
    /// (added scopes do not count).
    pub fn is_complete(&self) -> bool {
        self.dropped.is_empty() && self.narrowed.is_empty()
    }
}

/// Scopes separated by single spaces, each in canonical form.
impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.list.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            fmt::Display::fmt(s, f)?;
        }
        Ok(())
    }
}

impl FromStr for Scopes {
    type Err = Infallible;

    /// Same as [`Scopes::parse`]; never fails.
    fn from_str(s: &str) -> Result<Scopes, Infallible> {
        Ok(Scopes::parse(s))
    }
}

impl FromIterator<Scope> for Scopes {
    /// Collects in order, dropping duplicates.
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Scopes {
        let mut out = Scopes::new();
        out.extend(iter);
        out
    }
}

impl Extend<Scope> for Scopes {
    /// Inserts each scope in order, dropping duplicates.
    fn extend<I: IntoIterator<Item = Scope>>(&mut self, iter: I) {
        for s in iter {
            self.insert(s);
        }
    }
}

impl<'a> IntoIterator for &'a Scopes {
    type Item = &'a Scope;
    type IntoIter = std::slice::Iter<'a, Scope>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

impl IntoIterator for Scopes {
    type Item = Scope;
    type IntoIter = std::vec::IntoIter<Scope>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.into_iter()
    }
}

/// Two lists are equal when they hold the same scopes in the same order and left out as many.
impl PartialEq for Scopes {
    fn eq(&self, other: &Scopes) -> bool {
        self.list == other.list && self.omitted == other.omitted
    }
}

impl Eq for Scopes {}

impl Hash for Scopes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.list.hash(state);
        self.omitted.hash(state);
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut t = f.debug_tuple("Scopes");
        t.field(&self.list);
        if self.omitted > 0 {
            t.field(&format_args!("omitted: {}", self.omitted));
        }
        t.finish()
    }
}

/// A query restriction as a sorted list, so that equal multisets of parameters compare equal.
type QueryKey<'a> = Vec<(&'a str, &'a str)>;

fn query_key(query: &[(String, String)]) -> QueryKey<'_> {
    let mut key: QueryKey<'_> = query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    key.sort_unstable();
    key
}

/// One list's scopes indexed for [`Scopes::covers`]- and overlap-questions in constant time,
/// so that comparing two lists is linear rather than quadratic.
struct CoverIndex<'a> {
    /// The whole list (exact matches of non-resource scopes).
    scopes: &'a Scopes,
    /// Union of the permissions of resource scopes per context, type and query.
    by_target: HashMap<(ScopeContext, &'a ResourceType, QueryKey<'a>), Permissions>,
    /// Union of the permissions of resource scopes per context and type, any query.
    by_type: HashMap<(ScopeContext, &'a ResourceType), Permissions>,
    /// Union of the permissions of resource scopes per context, any type and query.
    by_context: HashMap<ScopeContext, Permissions>,
}

impl<'a> CoverIndex<'a> {
    fn new(scopes: &'a Scopes) -> CoverIndex<'a> {
        let mut index = CoverIndex {
            scopes,
            by_target: HashMap::new(),
            by_type: HashMap::new(),
            by_context: HashMap::new(),
        };
        for r in scopes.resource_scopes() {
            *index
                .by_target
                .entry((r.context, &r.resource_type, query_key(&r.query)))
                .or_default() |= r.permissions;
            *index
                .by_type
                .entry((r.context, &r.resource_type))
                .or_default() |= r.permissions;
            *index.by_context.entry(r.context).or_default() |= r.permissions;
        }
        index
    }

    /// Same answer as [`Scopes::covers`] on the indexed list: the union of the permissions of
    /// the resource scopes with the same context, the same type or `*`, and no query or the
    /// same query.
    fn covers(&self, s: &Scope) -> bool {
        let Scope::Resource(requested) = s else {
            return self.scopes.contains(s);
        };
        let any = ResourceType::Any;
        let query = query_key(&requested.query);
        let mut types = vec![&requested.resource_type];
        if requested.resource_type != ResourceType::Any {
            types.push(&any);
        }
        let mut granted = Permissions::NONE;
        for ty in types {
            let unrestricted = (requested.context, ty, QueryKey::new());
            granted |= self
                .by_target
                .get(&unrestricted)
                .copied()
                .unwrap_or_default();
            if !query.is_empty() {
                let same_query = (requested.context, ty, query.clone());
                granted |= self.by_target.get(&same_query).copied().unwrap_or_default();
            }
        }
        granted.contains(requested.permissions)
    }

    /// True when some indexed resource scope shares a permission with `s` on an overlapping type
    /// in the same context (queries ignored).
    fn overlaps(&self, s: &Scope) -> bool {
        let Scope::Resource(requested) = s else {
            return false;
        };
        let reachable = match &requested.resource_type {
            ResourceType::Any => self
                .by_context
                .get(&requested.context)
                .copied()
                .unwrap_or_default(),
            named => {
                let get = |ty: &ResourceType| {
                    self.by_type
                        .get(&(requested.context, ty))
                        .copied()
                        .unwrap_or_default()
                };
                get(named) | get(&ResourceType::Any)
            }
        };
        !reachable.intersection(requested.permissions).is_empty()
    }
}
