//! Typed SMART App Launch 2.2 scopes.
//!
//! This crate exists so that the client core and the sandbox server share **one** scope model:
//! the client builds the `scope` parameter and checks the granted `scope` string against its
//! request, and the sandbox parses requests, decides what to grant and enforces it on FHIR
//! calls, with the same parser, the same v1 ↔ v2 mapping and the same coverage rules.
//!
//! - [`Scope`] is one scope: resource scopes (`patient/Observation.rs?category=…`, v1 and v2
//!   grammars), `launch`, `launch/<type>[?role=…]`, identity and refresh scopes, and
//!   [`Scope::Other`] for extension or unrecognised scopes, kept verbatim.
//! - [`Permissions`] is the `cruds` bit set both grammars map onto (`read` = `rs`,
//!   `write` = `cud`, `*` = `cruds`).
//! - [`Scopes`] is an ordered, de-duplicated list with grant checks ([`Scopes::permits`],
//!   [`Scopes::covers`]) and request/grant comparison ([`Scopes::compare`]), holding at most
//!   [`MAX_SCOPES`] scopes.
//! - [`Scopes::parse_with_warnings`] also reports likely mistakes ([`ScopeWarning`]): commas,
//!   resource types FHIR R4 does not have, permissions out of `cruds` order, near-misses of the
//!   well-known scopes.
//!
//! Parsing is tolerant of what real servers return: capitalised actions
//! (`patient/Patient.Read`), duplicates, tabs and newlines, the URI forms
//! (`http://smarthealthit.org/fhir/scopes/…`, any case), and v1 scopes granted for v2 requests.
//! Formatting is canonical, and parsing the canonical form gives the same value back.
//!
//! ```
//! use smart_scopes::{Permissions, Scope, ScopeContext, Scopes};
//!
//! let requested = Scopes::parse("launch/patient openid fhirUser patient/Observation.rs");
//! // The server answered in v1 syntax, with odd case and spacing.
//! let granted = Scopes::parse("launch/patient openid fhirUser\tpatient/Observation.Read ");
//! let cmp = Scopes::compare(&requested, &granted);
//! assert!(cmp.is_complete());
//! assert!(granted.permits(ScopeContext::Patient, "Observation", Permissions::READ));
//!
//! let s: Scope = "user/*.cruds".parse().unwrap();
//! assert_eq!(s.to_v1()[0].to_string(), "user/*.*");
//! ```

mod permissions;
mod resource_types;
mod scope;
mod scopes;
mod serde_impl;
mod warnings;

pub use permissions::Permissions;
pub use resource_types::R4_RESOURCE_TYPES;
pub use scope::{
    OIDC_SCOPE_URI_PREFIX, PermissionSyntax, ResourceScope, ResourceType, SMART_SCOPE_URI_PREFIX,
    Scope, ScopeContext, ScopeParseError,
};
pub use scopes::{MAX_SCOPES, ScopeComparison, Scopes};
pub use warnings::{KnownResourceTypes, MAX_WARNINGS, ScopeWarning};
