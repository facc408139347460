//! Scope policy: which requested scopes are granted. (What a grant lets a
//! token do on the FHIR API is decided in `fhir::access`.)
//!
//! All scope semantics (v1/v2 grammar, wildcards, permission subsets) come
//! from `smart_scopes`, so the sandbox and the client framework agree on what
//! a scope means. This module keeps granted scopes as the exact tokens the
//! app requested: a v1 request gets v1 scopes back (SMART S-17), and the
//! `scope` in the token response is byte-comparable with the request.
//!
//! The profile's `scope_echo` changes that ([`finish`], [`echo`]): Epic
//! grants the registered resource scopes whatever was requested (and echoes
//! `offline_access` when it issues a refresh token, as the real R4 response
//! in Epic's tutorial shows); Cerner echoes fully qualified scopes.
//!
//! A request names at most [`MAX_REQUESTED_SCOPES`] scopes (see
//! [`too_many_scopes`]); every function here is linear in the number of
//! requested scopes times the (configured, small) registration, so a grant,
//! and each FHIR access check against it, stays cheap.

use std::collections::HashSet;

use smart_scopes::{ResourceType, Scope, ScopeContext, Scopes};

use crate::profile::{ScopeEcho, VendorProfile};

/// The most scope tokens one request (authorization, refresh,
/// `client_credentials`) may name. Real apps ask for a few dozen; more is
/// refused with `invalid_scope` rather than parsed and granted.
pub(crate) const MAX_REQUESTED_SCOPES: usize = 256;

/// Whether `requested` names more than [`MAX_REQUESTED_SCOPES`] scope
/// tokens (duplicates counted). Stops counting at the limit.
pub(crate) fn too_many_scopes(requested: &str) -> bool {
    requested
        .split(' ')
        .filter(|t| !t.is_empty())
        .nth(MAX_REQUESTED_SCOPES)
        .is_some()
}

/// The `invalid_scope` description for a request over
/// [`MAX_REQUESTED_SCOPES`].
pub(crate) fn too_many_scopes_message() -> String {
    format!(
        "the scope parameter names more than {MAX_REQUESTED_SCOPES} scopes; request only the scopes the app needs"
    )
}

/// The distinct non-empty tokens of a space-separated scope list, in order
/// (linear: a set remembers what was seen).
fn distinct_tokens(requested: &str) -> impl Iterator<Item = &str> {
    let mut seen = HashSet::new();
    requested
        .split(' ')
        .filter(|t| !t.is_empty())
        .filter(move |t| seen.insert(*t))
}

/// The requested scope tokens that the client's registration covers, in
/// request order, without duplicates.
pub(crate) fn grant(requested: &str, allowed: &str) -> Vec<String> {
    let allowed = Scopes::parse(allowed);
    distinct_tokens(requested)
        .filter(|token| covered_by(token, &allowed))
        .map(str::to_owned)
        .collect()
}

/// The grant for a `client_credentials` (Backend Services) request: like
/// [`grant`], but only resource scopes (`system/`, `user/`, `patient/`),
/// since a backend service has no launch, no user to identify and no refresh
/// token.
pub(crate) fn grant_backend(requested: &str, allowed: &str) -> Vec<String> {
    grant(requested, allowed)
        .into_iter()
        .filter(|t| matches!(Scope::parse(t), Scope::Resource(_)))
        .collect()
}

/// The first requested resource scope with a wildcard resource type
/// (`patient/*.rs`), for profiles that refuse them.
pub(crate) fn first_wildcard(requested: &str) -> Option<&str> {
    requested.split(' ').filter(|t| !t.is_empty()).find(
        |t| matches!(Scope::parse(t), Scope::Resource(r) if r.resource_type == ResourceType::Any),
    )
}

/// `requested` without its wildcard resource scopes (Oracle Health drops
/// them silently and grants the rest).
pub(crate) fn without_wildcards(requested: &str) -> String {
    requested
        .split(' ')
        .filter(|t| {
            !t.is_empty()
                && !matches!(Scope::parse(t), Scope::Resource(r) if r.resource_type == ResourceType::Any)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_resource(token: &str) -> bool {
    matches!(Scope::parse(token), Scope::Resource(_))
}

/// The grant as the profile decides it, from the requested-and-allowed
/// scopes (`granted`) and the client's registered scopes. `registration`:
/// the non-resource scopes of `granted`, then every registered resource
/// scope; otherwise `granted` unchanged.
pub(crate) fn finish(
    profile: &VendorProfile,
    granted: Vec<String>,
    registered: &str,
) -> Vec<String> {
    if profile.scope_echo != ScopeEcho::Registration {
        return granted;
    }
    let mut out: Vec<String> = granted.into_iter().filter(|t| !is_resource(t)).collect();
    let mut seen: HashSet<String> = out.iter().cloned().collect();
    for t in registered.split_whitespace() {
        if is_resource(t) && seen.insert(t.to_owned()) {
            out.push(t.to_owned());
        }
    }
    out
}

/// The Backend Services grant under the profile: `registration` grants the
/// registered resource scopes (and needs no `scope` parameter); otherwise
/// [`grant_backend`] of the requested scopes (`None` if `scope` is missing).
pub(crate) fn grant_backend_for(
    profile: &VendorProfile,
    requested: Option<&str>,
    allowed: &str,
) -> Option<Vec<String>> {
    if profile.scope_echo == ScopeEcho::Registration {
        return Some(finish(profile, Vec::new(), allowed));
    }
    requested.map(|r| grant_backend(r, allowed))
}

/// The `scope` of a token response (and of introspection) for granted
/// `scopes`, as the profile words it.
pub(crate) fn echo(profile: &VendorProfile, scopes: &[String]) -> String {
    match profile.scope_echo {
        ScopeEcho::Requested | ScopeEcho::Registration => scopes.join(" "),
        ScopeEcho::Qualified => {
            let prefix = profile
                .qualified_scope_prefix
                .as_deref()
                .unwrap_or_default();
            scopes
                .iter()
                .map(|t| {
                    if t.starts_with(prefix) {
                        t.clone()
                    } else {
                        format!("{prefix}{t}")
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        }
    }
}

/// `granted` without `offline_access` and `online_access`: what a grant that
/// earns no refresh token really gives.
pub(crate) fn without_access_scopes(granted: &[String]) -> Vec<String> {
    granted
        .iter()
        .filter(|t| !matches!(Scope::parse(t), Scope::OfflineAccess | Scope::OnlineAccess))
        .cloned()
        .collect()
}

/// Whether the grant contains `offline_access` (`offline`) or
/// `online_access`.
pub(crate) fn has_access_scope(granted: &[String], offline: bool) -> bool {
    granted.iter().any(|t| match Scope::parse(t) {
        Scope::OfflineAccess => offline,
        Scope::OnlineAccess => !offline,
        _ => false,
    })
}

/// Whether the scope `token` is covered by `by`.
fn covered_by(token: &str, by: &Scopes) -> bool {
    by.covers(&Scope::parse(token))
}

/// Whether each scope requested at refresh is covered by the original grant.
/// Returns the first scope that is not.
pub(crate) fn first_not_covered<'a>(requested: &'a str, original: &[String]) -> Option<&'a str> {
    let original = Scopes::parse(&original.join(" "));
    requested
        .split(' ')
        .filter(|t| !t.is_empty())
        .find(|t| !covered_by(t, &original))
}

/// Splits a refresh-time `scope` parameter into tokens, without duplicates.
pub(crate) fn tokens(requested: &str) -> Vec<String> {
    distinct_tokens(requested).map(str::to_owned).collect()
}

/// Whether the grant contains the `launch` scope.
pub(crate) fn has_launch(granted: &[String]) -> bool {
    Scopes::parse(&granted.join(" ")).contains(&Scope::Launch)
}

/// Whether the grant asks for a patient in context: `launch/patient` or any
/// `patient/` resource scope (SMART: if a `patient/` scope is granted, the
/// server must establish a patient).
pub(crate) fn wants_patient(granted: &[String]) -> bool {
    granted.iter().any(|t| match Scope::parse(t) {
        Scope::Resource(r) => r.context == ScopeContext::Patient,
        Scope::LaunchContext { resource_type, .. } => resource_type == "patient",
        _ => false,
    })
}

/// Whether the grant asks for an encounter in context (`launch/encounter`).
pub(crate) fn wants_encounter(granted: &[String]) -> bool {
    granted.iter().any(|t| {
        matches!(Scope::parse(t), Scope::LaunchContext { resource_type, .. } if resource_type == "encounter")
    })
}

/// Whether the grant earns a refresh token (`offline_access` or
/// `online_access`).
pub(crate) fn wants_refresh(granted: &[String]) -> bool {
    Scopes::parse(&granted.join(" ")).has_refresh()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn grant_keeps_requested_wording_and_drops_the_rest() {
        let allowed = "launch/patient patient/*.rs offline_access";
        assert_eq!(
            grant(
                "launch/patient  patient/Patient.read patient/*.cruds user/*.rs offline_access launch/patient",
                allowed
            ),
            v("launch/patient patient/Patient.read offline_access")
        );
        assert!(grant("system/*.rs", allowed).is_empty());
    }

    #[test]
    fn identity_scopes_are_granted_when_allowed() {
        let allowed = "launch/patient openid fhirUser profile patient/*.rs";
        assert_eq!(
            grant("openid fhirUser profile launch/patient", allowed),
            v("openid fhirUser profile launch/patient")
        );
        assert_eq!(
            grant("openid fhirUser", "patient/*.rs"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn backend_grants_only_resource_scopes() {
        let allowed = "system/*.rs openid offline_access";
        assert_eq!(
            grant_backend(
                "system/Patient.rs openid offline_access system/*.cud",
                allowed
            ),
            v("system/Patient.rs")
        );
        assert!(grant_backend("user/*.rs", allowed).is_empty());
    }

    #[test]
    fn scope_count_cap_and_linear_dedup() {
        let at_cap = vec!["openid"; MAX_REQUESTED_SCOPES].join(" ");
        assert!(!too_many_scopes(&at_cap));
        assert!(too_many_scopes(&format!("{at_cap} openid")));
        assert_eq!(tokens("a b  a c b"), v("a b c"));
    }

    #[test]
    fn context_and_refresh_detection() {
        assert!(wants_patient(&v("patient/Observation.rs")));
        assert!(wants_patient(&v("launch/patient")));
        assert!(!wants_patient(&v("user/*.rs launch/encounter")));
        assert!(wants_encounter(&v("launch/encounter")));
        assert!(wants_refresh(&v("online_access")));
        assert!(!wants_refresh(&v("launch/patient")));
        assert!(has_launch(&v("launch patient/*.rs")));
    }

    #[test]
    fn profile_grants_and_echoes() {
        let epic = VendorProfile::builtin("epic").unwrap();
        let registered = "launch/patient openid offline_access patient/*.rs user/Patient.read";
        let granted = finish(
            &epic,
            v("openid patient/Observation.rs offline_access"),
            registered,
        );
        assert_eq!(
            granted,
            v("openid offline_access patient/*.rs user/Patient.read")
        );
        assert_eq!(
            echo(&epic, &granted),
            "openid offline_access patient/*.rs user/Patient.read"
        );
        assert_eq!(
            without_access_scopes(&v("openid offline_access online_access patient/*.rs")),
            v("openid patient/*.rs")
        );
        assert_eq!(
            grant_backend_for(&epic, None, "system/*.rs openid"),
            Some(v("system/*.rs"))
        );

        let cerner = VendorProfile::builtin("cerner").unwrap();
        assert_eq!(
            echo(&cerner, &v("openid patient/Patient.rs")),
            "openid patient/Patient.rs"
        );
        let qualified = VendorProfile::from_toml_str(
            "extends = \"cerner\"\nname = \"q\"\nscope_echo = \"qualified\"\n\
             qualified_scope_prefix = \"http://smarthealthit.org/FHIR/scopes/\"\n",
        )
        .unwrap();
        assert_eq!(
            echo(&qualified, &v("openid patient/Patient.rs")),
            "http://smarthealthit.org/FHIR/scopes/openid http://smarthealthit.org/FHIR/scopes/patient/Patient.rs"
        );
        assert_eq!(
            without_wildcards("openid patient/*.read  user/Patient.rs"),
            "openid user/Patient.rs"
        );
        assert_eq!(first_wildcard("openid patient/*.rs"), Some("patient/*.rs"));
        assert_eq!(first_wildcard("openid patient/Patient.rs"), None);

        let generic = VendorProfile::default();
        assert_eq!(finish(&generic, v("a b"), "c"), v("a b"));
        assert_eq!(echo(&generic, &v("offline_access x")), "offline_access x");
        assert!(has_access_scope(&v("online_access"), false));
        assert!(!has_access_scope(&v("online_access"), true));
    }

    #[test]
    fn refresh_may_only_narrow() {
        let original = v("patient/*.rs offline_access");
        assert_eq!(first_not_covered("patient/Patient.r", &original), None);
        assert_eq!(
            first_not_covered("patient/Patient.r user/*.rs", &original),
            Some("user/*.rs")
        );
    }
}
