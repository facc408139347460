//! Scope lists: the `scope` parameter of requests and token responses, grant checks and
//! comparison of a grant with a request.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use crate::{Permissions, ResourceScope, Scope, ScopeContext};

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
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// An empty list.
    pub fn new() -> Scopes {
        Scopes(Vec::new())
    }

    /// Parses a scope list tolerantly: splits on any ASCII whitespace (spaces, tabs, newlines),
    /// trims each token, skips empty ones, parses each with [`Scope::parse`] and removes
    /// duplicates. Never panics and never fails.
    pub fn parse(s: &str) -> Scopes {
        s.split(|c: char| c.is_ascii_whitespace())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(Scope::parse)
            .collect()
    }

    /// The scopes in order.
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    /// The scopes in order, as a slice.
    pub fn as_slice(&self) -> &[Scope] {
        &self.0
    }

    /// The number of scopes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no scopes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when this exact scope is in the list (see [`Scopes::covers`] for meaning-aware checks).
    pub fn contains(&self, s: &Scope) -> bool {
        self.0.contains(s)
    }

    /// Appends `s` unless it is already present; returns true when it was added.
    pub fn insert(&mut self, s: Scope) -> bool {
        if self.0.contains(&s) {
            false
        } else {
            self.0.push(s);
            true
        }
    }

    /// Removes this exact scope; returns true when it was present.
    pub fn remove(&mut self, s: &Scope) -> bool {
        match self.0.iter().position(|x| x == s) {
            Some(i) => {
                self.0.remove(i);
                true
            }
            None => false,
        }
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
        self.iter().flat_map(Scope::to_v1).collect()
    }

    /// Every scope through [`Scope::to_v2`], de-duplicated (so `.read` and `.rs` merge).
    pub fn to_v2(&self) -> Scopes {
        self.iter().map(Scope::to_v2).collect()
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
    pub fn compare(requested: &Scopes, granted: &Scopes) -> ScopeComparison {
        let mut out = ScopeComparison::default();
        for r in requested {
            if granted.covers(r) {
                out.granted_as_requested.insert(r.clone());
            } else if granted.iter().any(|g| g.overlaps(r)) {
                out.narrowed.insert(r.clone());
            } else {
                out.dropped.insert(r.clone());
            }
        }
        for g in granted {
            if !requested.covers(g) {
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
        for (i, s) in self.0.iter().enumerate() {
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
        self.0.iter()
    }
}

impl IntoIterator for Scopes {
    type Item = Scope;
    type IntoIter = std::vec::IntoIter<Scope>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}
