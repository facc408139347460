//! Grant checks (`permits`, `query_grants`, `covers`) and request/grant comparison.

use smart_scopes::{Permissions, Scope, ScopeContext, Scopes};

const RS: Permissions = Permissions::READ.union(Permissions::SEARCH);

#[test]
fn permits_with_wildcard() {
    let g = Scopes::parse("patient/*.rs user/Practitioner.r");
    assert!(g.permits(ScopeContext::Patient, "Observation", RS));
    assert!(g.permits(ScopeContext::Patient, "Condition", Permissions::READ));
    assert!(g.permits(ScopeContext::Patient, "*", RS));
    assert!(!g.permits(ScopeContext::Patient, "Observation", Permissions::CREATE));
    assert!(!g.permits(ScopeContext::User, "Observation", Permissions::READ));
    assert!(g.permits(ScopeContext::User, "Practitioner", Permissions::READ));
    assert!(!g.permits(ScopeContext::User, "Practitioner", Permissions::SEARCH));
    assert!(!g.permits(ScopeContext::System, "Observation", Permissions::READ));
}

#[test]
fn permits_combines_several_scopes_and_grammars() {
    let g = Scopes::parse("patient/Observation.read patient/*.c patient/Observation.Write");
    assert!(g.permits(ScopeContext::Patient, "Observation", Permissions::ALL));
    assert!(g.permits(ScopeContext::Patient, "Patient", Permissions::CREATE));
    assert!(!g.permits(
        ScopeContext::Patient,
        "Patient",
        Permissions::CREATE | Permissions::READ
    ));
    // A named grant does not reach the wildcard type.
    assert!(!g.permits(ScopeContext::Patient, "*", Permissions::READ));
}

#[test]
fn permits_ignores_query_restricted_scopes_and_query_grants_lists_them() {
    let g = Scopes::parse(
        "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory \
         patient/*.s?_security=N patient/Observation.r?code=1234",
    );
    assert!(!g.permits(ScopeContext::Patient, "Observation", Permissions::SEARCH));
    let grants = g.query_grants(ScopeContext::Patient, "Observation", Permissions::SEARCH);
    assert_eq!(grants.len(), 2);
    assert_eq!(grants[0].query[0].0, "category");
    assert_eq!(grants[1].query[0], ("_security".into(), "N".into()));
    let read = g.query_grants(ScopeContext::Patient, "Observation", RS);
    assert_eq!(read.len(), 1);
    assert!(
        g.query_grants(ScopeContext::User, "Observation", Permissions::READ)
            .is_empty()
    );
    assert!(
        g.query_grants(ScopeContext::Patient, "Condition", Permissions::READ)
            .is_empty()
    );
}

#[test]
fn covers_rules() {
    let g = Scopes::parse("patient/*.rs patient/Observation.c user/Patient.read openid launch");
    let covered = [
        "patient/Observation.rs",
        "patient/Observation.read",
        "patient/Observation.crs",
        "patient/*.r",
        "patient/Condition.s?code=http://snomed.info/sct|1234",
        "user/Patient.rs",
        "user/Patient.r",
        "openid",
        "launch",
    ];
    for s in covered {
        assert!(g.covers(&Scope::parse(s)), "{s} should be covered");
    }
    let not_covered = [
        "patient/Observation.cruds",
        "patient/*.c",
        "user/Observation.r",
        "system/Patient.r",
        "launch/patient",
        "fhirUser",
        "__custom",
    ];
    for s in not_covered {
        assert!(!g.covers(&Scope::parse(s)), "{s} should not be covered");
    }
}

#[test]
fn covers_query_restricted_requests() {
    let q = "patient/Observation.rs?category=laboratory";
    let g = Scopes::parse(q);
    assert!(g.covers(&Scope::parse(q)));
    assert!(g.covers(&Scope::parse(
        "patient/Observation.read?category=laboratory"
    )));
    assert!(g.covers(&Scope::parse("patient/Observation.r?category=laboratory")));
    // A restricted grant does not cover an unrestricted request or a different restriction.
    assert!(!g.covers(&Scope::parse("patient/Observation.rs")));
    assert!(!g.covers(&Scope::parse("patient/Observation.rs?category=vital-signs")));
    // Parameter order does not matter.
    let two = Scopes::parse("patient/Observation.rs?a=1&b=2");
    assert!(two.covers(&Scope::parse("patient/Observation.rs?b=2&a=1")));
}

#[test]
fn compare_all_granted_with_v1_answer_to_v2_request() {
    let requested =
        Scopes::parse("launch/patient openid fhirUser patient/Observation.rs patient/Patient.cud");
    let granted = Scopes::parse(
        "patient/Observation.read patient/Patient.write launch/patient openid fhirUser",
    );
    let cmp = Scopes::compare(&requested, &granted);
    assert!(cmp.is_complete(), "{cmp:?}");
    assert_eq!(cmp.granted_as_requested, requested);
    assert!(cmp.narrowed.is_empty());
    assert!(cmp.dropped.is_empty());
    assert!(cmp.added.is_empty());
}

#[test]
fn compare_narrowed_dropped_and_added() {
    let requested = Scopes::parse(
        "launch/patient openid offline_access patient/*.rs patient/Condition.cruds user/Patient.rs",
    );
    let granted = Scopes::parse(
        "launch/patient openid patient/Observation.rs patient/Condition.read launch __vendor.extra",
    );
    let cmp = Scopes::compare(&requested, &granted);
    assert_eq!(
        cmp.granted_as_requested.to_string(),
        "launch/patient openid"
    );
    assert_eq!(
        cmp.narrowed.to_string(),
        "patient/*.rs patient/Condition.cruds"
    );
    assert_eq!(cmp.dropped.to_string(), "offline_access user/Patient.rs");
    assert_eq!(cmp.added.to_string(), "launch __vendor.extra");
    assert!(!cmp.is_complete());
}

#[test]
fn compare_wider_grant_is_granted_and_reported_as_added() {
    let requested = Scopes::parse("patient/Observation.rs");
    let granted = Scopes::parse("patient/*.cruds");
    let cmp = Scopes::compare(&requested, &granted);
    assert!(cmp.is_complete());
    assert_eq!(cmp.granted_as_requested, requested);
    assert_eq!(cmp.added, granted);
}

#[test]
fn compare_query_restricted_grant_narrows_unrestricted_request() {
    let requested = Scopes::parse("patient/Observation.rs");
    let granted = Scopes::parse("patient/Observation.rs?category=laboratory");
    let cmp = Scopes::compare(&requested, &granted);
    assert_eq!(cmp.narrowed, requested);
    assert!(
        cmp.added.is_empty(),
        "a restricted form of a requested scope is not new"
    );
}

#[test]
fn compare_split_grant_still_counts_as_granted() {
    let requested = Scopes::parse("patient/Observation.rs");
    let granted = Scopes::parse("patient/Observation.r patient/Observation.s");
    let cmp = Scopes::compare(&requested, &granted);
    assert!(cmp.is_complete());
    assert!(cmp.added.is_empty());
}

#[test]
fn compare_empty_grant_drops_everything() {
    let requested = Scopes::parse("openid patient/*.rs");
    let cmp = Scopes::compare(&requested, &Scopes::new());
    assert_eq!(cmp.dropped, requested);
    assert!(cmp.granted_as_requested.is_empty());
    assert!(!cmp.is_complete());
    let none = Scopes::compare(&Scopes::new(), &Scopes::new());
    assert!(none.is_complete());
}
