//! Scope enforcement for FHIR interactions.
//!
//! A token's scopes become, per resource type and interaction, a list of
//! [`Grant`]s: "anything" (`user/` and `system/` scopes), "this patient's
//! compartment" (`patient/` scopes with the launch patient), and either of
//! those narrowed by a v2 query (`patient/Observation.rs?category=laboratory`).
//! A resource is allowed if any grant admits it. The scope grammar and the
//! permission letters come from `smart_scopes`, so the sandbox and the client
//! agree on what a scope means; the query of a scope is parsed with the
//! search parser, so `?category=…` means here what it means in a search.
//!
//! Rules (documented in `docs/sandbox.md`):
//! * read, vread, history need `r`; search, paging and `$everything` need
//!   `s` (`$everything` needs `r` on Patient); create `c`, update `u`,
//!   delete `d` (SMART App Launch §4.2).
//! * `patient/` scopes reach the launch patient and resources whose
//!   `subject`/`patient` is that patient. Practitioner has no patient
//!   compartment, so a `patient/Practitioner.rs` scope reads any
//!   practitioner (as before this module existed).
//! * A read outside what the grants admit is a 403; a search names another
//!   patient explicitly is a 403; any other search is silently narrowed to
//!   what the grants admit (never another patient's data).

use smart_scopes::{Permissions, ResourceScope, ScopeContext, Scopes};

use crate::fhir::index::in_patient_compartment;
use crate::fhir::search::{self, Clause, Parsed};
use crate::fhir::store::Live;

/// What a validated access token carries.
#[derive(Debug, Clone)]
pub(crate) struct TokenInfo {
    pub(crate) scopes: Scopes,
    /// The launch patient, if the grant has one.
    pub(crate) patient: Option<String>,
}

/// The query part of a grant.
#[derive(Debug, Clone)]
enum Filter {
    None,
    Clauses(Vec<Clause>),
    /// The scope's query uses something the sandbox cannot evaluate: the
    /// grant admits nothing (fail closed).
    Unusable,
}

/// One way a token may touch resources of one type.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    /// Restricted to this patient's compartment.
    pub(crate) patient: Option<String>,
    filter: Filter,
}

impl Grant {
    fn admits(&self, resource_type: &str, live: &Live<'_>) -> bool {
        if let Some(p) = &self.patient
            && in_patient_compartment(resource_type)
            && live.version.index.patient.as_deref() != Some(p.as_str())
        {
            return false;
        }
        match &self.filter {
            Filter::None => true,
            Filter::Clauses(c) => search::matches_all(live, c),
            Filter::Unusable => false,
        }
    }
}

/// The grants of a token for one type and permission.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    pub(crate) resource_type: String,
    pub(crate) grants: Vec<Grant>,
    /// The scope an app would need, for `WWW-Authenticate: … scope="…"`.
    pub(crate) needed: String,
}

/// The v2 letter of a single permission.
fn letter(p: Permissions) -> &'static str {
    if p == Permissions::CREATE {
        "c"
    } else if p == Permissions::READ {
        "r"
    } else if p == Permissions::UPDATE {
        "u"
    } else if p == Permissions::DELETE {
        "d"
    } else {
        "s"
    }
}

fn filter_of(scope: &ResourceScope, resource_type: &str, fhir_base: &str) -> Filter {
    let mut clauses = Vec::new();
    for (name, value) in &scope.query {
        let value = crate::params::form_decode(value).unwrap_or_else(|| value.clone());
        match search::parse_clause(resource_type, name, &value, fhir_base) {
            Ok(Parsed::Clause(c)) => clauses.push(c),
            Ok(Parsed::Unknown(_)) | Err(_) => return Filter::Unusable,
        }
    }
    Filter::Clauses(clauses)
}

impl Access {
    /// What `token` may do with `permission` on `resource_type`.
    pub(crate) fn of(
        token: &TokenInfo,
        resource_type: &str,
        permission: Permissions,
        fhir_base: &str,
    ) -> Access {
        let mut grants = Vec::new();
        let scopes = &token.scopes;
        if scopes.permits(ScopeContext::System, resource_type, permission)
            || scopes.permits(ScopeContext::User, resource_type, permission)
        {
            grants.push(Grant {
                patient: None,
                filter: Filter::None,
            });
        }
        for context in [ScopeContext::System, ScopeContext::User] {
            for q in scopes.query_grants(context, resource_type, permission) {
                grants.push(Grant {
                    patient: None,
                    filter: filter_of(q, resource_type, fhir_base),
                });
            }
        }
        if let Some(patient) = &token.patient {
            if scopes.permits(ScopeContext::Patient, resource_type, permission) {
                grants.push(Grant {
                    patient: Some(patient.clone()),
                    filter: Filter::None,
                });
            }
            for q in scopes.query_grants(ScopeContext::Patient, resource_type, permission) {
                grants.push(Grant {
                    patient: Some(patient.clone()),
                    filter: filter_of(q, resource_type, fhir_base),
                });
            }
        }
        let has = |c: ScopeContext| {
            scopes
                .iter()
                .filter_map(|s| s.as_resource())
                .any(|r| r.context == c)
        };
        let context = if token.patient.is_some() && has(ScopeContext::Patient) {
            "patient"
        } else if has(ScopeContext::User) || !has(ScopeContext::System) {
            "user"
        } else {
            "system"
        };
        Access {
            resource_type: resource_type.to_owned(),
            grants,
            needed: format!("{context}/{resource_type}.{}", letter(permission)),
        }
    }

    /// Whether any grant exists (otherwise the interaction is a 403).
    pub(crate) fn any(&self) -> bool {
        !self.grants.is_empty()
    }

    /// Whether some grant admits the resource.
    pub(crate) fn admits(&self, live: &Live<'_>) -> bool {
        self.grants
            .iter()
            .any(|g| g.admits(&self.resource_type, live))
    }

    /// The single patient compartment all grants are limited to, if they
    /// all are (then a search can start from that compartment).
    pub(crate) fn only_compartment(&self) -> Option<&str> {
        if !in_patient_compartment(&self.resource_type) {
            return None;
        }
        let first = self.grants.first()?.patient.as_deref()?;
        self.grants
            .iter()
            .all(|g| g.patient.as_deref() == Some(first))
            .then_some(first)
    }

    /// Patients outside every grant's compartment among `named`: a search
    /// naming one of them is refused rather than silently emptied.
    pub(crate) fn foreign_patient<'a>(&self, named: &'a [String]) -> Option<&'a str> {
        if !in_patient_compartment(&self.resource_type)
            || self.grants.iter().any(|g| g.patient.is_none())
        {
            return None;
        }
        named
            .iter()
            .find(|p| {
                !self
                    .grants
                    .iter()
                    .any(|g| g.patient.as_deref() == Some(p.as_str()))
            })
            .map(String::as_str)
    }

    /// The `scope` for the challenge when a compartment is the problem: only
    /// a `user/` scope would do.
    pub(crate) fn needed_beyond_compartment(&self, permission: Permissions) -> String {
        format!("user/{}.{}", self.resource_type, letter(permission))
    }
}
