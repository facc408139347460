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
//! * A version is judged by its own content; a deletion by the content it
//!   deleted. So `_history` shows only the versions the token may see: a
//!   resource id re-used by another patient after a deletion does not carry
//!   the first patient's versions into the second patient's history.
//! * The match of a conditional create (`If-None-Exist`) is a search: it
//!   needs `s` on the type (else 403, before anything is looked up), and
//!   matches the token may not see count as absent, so the answer never
//!   reveals that another patient's resource exists.
//!
//! # One gate
//!
//! Every interaction that returns stored resources goes through a [`Gate`]:
//! [`Gate::open`] refuses a token without any grant for the type and
//! permission, and the gate is then the only source of [`Visible`] values,
//! which are what the response builders in `ops` take. A [`Visible`] cannot
//! be built outside this module, so an interaction cannot return a stored
//! resource without the check, whichever path (HTTP request, batch or
//! transaction entry, page token, `$everything`, `_include`, conditional
//! match) it came from.

use std::sync::Arc;

use smart_scopes::{Permissions, ResourceScope, ScopeContext, Scopes};

use crate::fhir::index::{Index, in_patient_compartment};
use crate::fhir::search::{self, Clause, Parsed};
use crate::fhir::store::{Live, Origin, ResourceStore, Version};
use crate::fhir::{Ctx, Reply};

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

/// A stored resource version that passed the access check of a [`Gate`].
/// Only a gate makes one (the fields are private to this module).
#[derive(Debug, Clone)]
pub(crate) struct Visible<'s> {
    resource_type: &'static str,
    live: Live<'s>,
}

impl<'s> Visible<'s> {
    /// The resource type.
    pub(crate) fn resource_type(&self) -> &'static str {
        self.resource_type
    }

    /// The resource id.
    pub(crate) fn id(&self) -> &'s str {
        self.live.id
    }

    /// The version (possibly a deletion).
    pub(crate) fn version(&self) -> &'s Arc<Version> {
        self.live.version
    }
}

/// The version whose content decides access to `versions[i]`: the version
/// itself, or for a deletion the last earlier version with a body.
fn judged(versions: &[Arc<Version>], i: usize) -> Option<&Arc<Version>> {
    versions.get(..=i)?.iter().rev().find(|v| !v.is_deleted())
}

/// The access check of one interaction on one resource type: see the
/// module docs.
pub(crate) struct Gate<'c> {
    ctx: &'c Ctx<'c>,
    resource_type: &'static str,
    access: Access,
    permission: Permissions,
    /// "reading", "searching", … for messages.
    what: &'static str,
}

fn what_of(permission: Permissions) -> &'static str {
    if permission == Permissions::CREATE {
        "creating"
    } else if permission == Permissions::UPDATE {
        "updating"
    } else if permission == Permissions::DELETE {
        "deleting"
    } else if permission == Permissions::SEARCH {
        "searching"
    } else {
        "reading"
    }
}

impl<'c> Gate<'c> {
    /// The gate for `permission` on `resource_type`, or the 403 when no
    /// granted scope covers it at all.
    pub(crate) fn open(
        ctx: &'c Ctx<'c>,
        resource_type: &'static str,
        permission: Permissions,
    ) -> Result<Gate<'c>, Box<Reply>> {
        let access = Access::of(ctx.token, resource_type, permission, ctx.base);
        let what = what_of(permission);
        if !access.any() {
            return Err(Box::new(Reply::forbidden(
                &format!(
                    "no granted scope permits {what} {resource_type}; a scope such as {} is needed",
                    access.needed
                ),
                &access.needed,
            )));
        }
        Ok(Gate {
            ctx,
            resource_type,
            access,
            permission,
            what,
        })
    }

    /// The grants behind the gate (compartment shortcuts of a search).
    pub(crate) fn access(&self) -> &Access {
        &self.access
    }

    fn admits(&self, id: &str, version: &Arc<Version>) -> bool {
        self.access.admits(&Live {
            id,
            slot: 0,
            version,
        })
    }

    /// The 403 for an instance outside the grants.
    pub(crate) fn denied(&self, reference: &str) -> Box<Reply> {
        let what = self.what;
        Box::new(match self.access.only_compartment() {
            Some(p) => Reply::forbidden(
                &format!(
                    "patient/ scopes only allow {what} the patient in context ({p}) and resources in its compartment, not {reference}"
                ),
                &self.access.needed_beyond_compartment(self.permission),
            ),
            None => Reply::forbidden(
                &format!(
                    "the granted scopes do not cover {what} {reference}{}",
                    if self.ctx.token.patient.is_some() {
                        " (outside the patient in context, or excluded by a scope's query)"
                    } else {
                        " (excluded by a scope's query)"
                    }
                ),
                &self.access.needed,
            ),
        })
    }

    fn versions<'s>(
        &self,
        store: &'s ResourceStore,
        id: &str,
    ) -> Result<&'s [Arc<Version>], Box<Reply>> {
        store
            .versions(self.resource_type, id)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Box::new(Reply::not_found(self.resource_type, id)))
    }

    fn visible<'s>(&self, id: &'s str, version: &'s Arc<Version>) -> Visible<'s> {
        Visible {
            resource_type: self.resource_type,
            live: Live {
                id,
                slot: 0,
                version,
            },
        }
    }

    /// The current version of `id` (possibly a deletion, for a 410): 404
    /// when it never existed, 403 when its content is outside the grants.
    pub(crate) fn current<'s>(
        &self,
        store: &'s ResourceStore,
        id: &'s str,
    ) -> Result<Visible<'s>, Box<Reply>> {
        let versions = self.versions(store, id)?;
        let last = versions.len() - 1;
        if judged(versions, last).is_some_and(|v| !self.admits(id, v)) {
            return Err(self.denied(&format!("{}/{id}", self.resource_type)));
        }
        Ok(self.visible(id, &versions[last]))
    }

    /// Version `vid` of `id`, judged by its own content.
    pub(crate) fn version<'s>(
        &self,
        store: &'s ResourceStore,
        id: &'s str,
        vid: &str,
    ) -> Result<Visible<'s>, Box<Reply>> {
        let t = self.resource_type;
        let versions = self.versions(store, id)?;
        let Some(i) = vid
            .parse::<u32>()
            .ok()
            .and_then(|n| versions.iter().position(|v| v.version == n))
        else {
            return Err(Box::new(Reply::error(
                axum::http::StatusCode::NOT_FOUND,
                "not-found",
                &format!("{t}/{id} has no version {vid:?}"),
            )));
        };
        if judged(versions, i).is_some_and(|v| !self.admits(id, v)) {
            return Err(self.denied(&format!("{t}/{id}")));
        }
        Ok(self.visible(id, &versions[i]))
    }

    /// The history of `id`, newest first: 403 when the current content is
    /// outside the grants, otherwise every version the grants admit (each
    /// judged by its own content).
    pub(crate) fn history<'s>(
        &self,
        store: &'s ResourceStore,
        id: &'s str,
    ) -> Result<Vec<Visible<'s>>, Box<Reply>> {
        self.current(store, id)?;
        let versions = self.versions(store, id)?;
        Ok((0..versions.len())
            .rev()
            .filter(|&i| judged(versions, i).is_some_and(|v| self.admits(id, v)))
            .map(|i| self.visible(id, &versions[i]))
            .collect())
    }

    /// The candidates the grants admit, in order.
    pub(crate) fn filter<'s>(&self, candidates: Vec<Live<'s>>) -> Vec<Visible<'s>> {
        candidates
            .into_iter()
            .filter(|l| self.access.admits(l))
            .map(|live| Visible {
                resource_type: self.resource_type,
                live,
            })
            .collect()
    }

    /// For an update or delete: 403 unless the grants admit the stored
    /// content of `id` (if there is any).
    pub(crate) fn check_stored(&self, store: &ResourceStore, id: &str) -> Result<(), Box<Reply>> {
        match store.last_with_body(self.resource_type, id) {
            Some(v) if !self.admits(id, v) => {
                Err(self.denied(&format!("{}/{id}", self.resource_type)))
            }
            _ => Ok(()),
        }
    }

    /// For a create or update: 403 unless the grants admit the new content.
    pub(crate) fn check_new(&self, id: &str, index: &Index, what: &str) -> Result<(), Box<Reply>> {
        let probe = Arc::new(Version {
            version: 0,
            last_updated: crate::time::now_ms(),
            body: None,
            index: index.clone(),
            origin: Origin::Create,
        });
        if self.admits(id, &probe) {
            Ok(())
        } else {
            Err(self.denied(what))
        }
    }
}
