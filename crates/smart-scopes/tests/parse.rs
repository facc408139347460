//! Parsing, formatting and tolerance of real-world scope strings.

use smart_scopes::{
    PermissionSyntax, Permissions, ResourceScope, ResourceType, Scope, ScopeContext, Scopes,
};

fn resource(s: &str) -> ResourceScope {
    match Scope::parse(s) {
        Scope::Resource(r) => r,
        other => panic!("{s:?} parsed as {other:?}"),
    }
}

#[test]
fn every_scope_kind_parses_and_formats_canonically() {
    let cases: &[(&str, Scope)] = &[
        ("launch", Scope::Launch),
        (
            "launch/patient",
            Scope::LaunchContext {
                resource_type: "patient".into(),
                role: None,
            },
        ),
        (
            "launch/list?role=https://example.org/roles/worklist",
            Scope::LaunchContext {
                resource_type: "list".into(),
                role: Some("https://example.org/roles/worklist".into()),
            },
        ),
        ("openid", Scope::OpenId),
        ("fhirUser", Scope::FhirUser),
        ("profile", Scope::Profile),
        ("offline_access", Scope::OfflineAccess),
        ("online_access", Scope::OnlineAccess),
        (
            "__profilePhoto.manage",
            Scope::Other("__profilePhoto.manage".into()),
        ),
        (
            "https://ehr.example.org/scopes/profilePhoto.manage",
            Scope::Other("https://ehr.example.org/scopes/profilePhoto.manage".into()),
        ),
        (
            "patient/Observation.rs",
            Scope::Resource(ResourceScope::new(
                ScopeContext::Patient,
                ResourceType::Named("Observation".into()),
                Permissions::READ | Permissions::SEARCH,
            )),
        ),
        (
            "system/*.read",
            Scope::Resource(ResourceScope {
                syntax: PermissionSyntax::V1,
                ..ResourceScope::new(
                    ScopeContext::System,
                    ResourceType::Any,
                    Permissions::READ | Permissions::SEARCH,
                )
            }),
        ),
    ];
    for (text, expected) in cases {
        let parsed = Scope::parse(text);
        assert_eq!(&parsed, expected, "{text}");
        assert_eq!(parsed.to_string(), *text);
        assert_eq!(text.parse::<Scope>().as_ref(), Ok(expected));
    }
}

#[test]
fn every_v2_permission_combination_and_v1_word() {
    assert_eq!(
        resource("user/Appointment.cruds").permissions,
        Permissions::ALL
    );
    assert_eq!(
        resource("system/Encounter.cud").permissions,
        Permissions::CREATE | Permissions::UPDATE | Permissions::DELETE
    );
    assert_eq!(resource("patient/Patient.r").permissions, Permissions::READ);
    assert_eq!(
        resource("patient/Patient.s").permissions,
        Permissions::SEARCH
    );
    assert_eq!(
        resource("patient/Patient.d").permissions,
        Permissions::DELETE
    );
    let w = resource("user/Patient.write");
    assert_eq!(w.syntax, PermissionSyntax::V1);
    assert_eq!(w.permissions.to_v2_string(), "cud");
    let star = resource("user/Patient.*");
    assert_eq!(star.syntax, PermissionSyntax::V1);
    assert_eq!(star.permissions, Permissions::ALL);
    assert_eq!(Scope::parse("user/*.*").to_string(), "user/*.*");
}

#[test]
fn capitalised_actions_are_case_folded() {
    let r = resource("patient/Patient.Read");
    assert_eq!(r.permissions, Permissions::READ | Permissions::SEARCH);
    assert_eq!(r.syntax, PermissionSyntax::V1);
    assert_eq!(
        Scope::parse("patient/Patient.Read").to_string(),
        "patient/Patient.read"
    );
    assert_eq!(
        Scope::parse("patient/Patient.RS").to_string(),
        "patient/Patient.rs"
    );
    assert_eq!(
        Scope::parse("Patient/Patient.WRITE").to_string(),
        "patient/Patient.write"
    );
    assert_eq!(Scope::parse("LAUNCH").to_string(), "launch");
    assert_eq!(Scope::parse("Launch/Patient").to_string(), "launch/patient");
    assert_eq!(Scope::parse("OFFLINE_ACCESS"), Scope::OfflineAccess);
}

#[test]
fn resource_type_case_is_kept() {
    assert_eq!(
        resource("patient/observation.rs").resource_type,
        ResourceType::Named("observation".into())
    );
}

#[test]
fn duplicates_and_case_variant_duplicates_are_removed_in_order() {
    let s = Scopes::parse(
        "patient/Patient.Read patient/Patient.read openid launch openid patient/Patient.read ",
    );
    assert_eq!(s.to_string(), "patient/Patient.read openid launch");
    assert_eq!(s.len(), 3);
}

#[test]
fn tabs_newlines_and_extra_spaces_are_tolerated() {
    let s = Scopes::parse("\n\t openid\t\tfhirUser\r\n  launch/patient \n");
    assert_eq!(s.to_string(), "openid fhirUser launch/patient");
    assert!(Scopes::parse(" \t\n").is_empty());
    assert!(Scopes::parse("").is_empty());
}

#[test]
fn uri_prefix_forms_are_stripped() {
    let s = Scopes::parse(
        "http://smarthealthit.org/fhir/scopes/patient/Observation.rs \
         http://smarthealthit.org/FHIR/scopes/launch \
         HTTP://SMARTHEALTHIT.ORG/FHIR/SCOPES/offline_access \
         http://openid.net/specs/openid-connect-core-1_0#openid \
         http://openid.net/specs/openid-connect-core-1_0#fhirUser",
    );
    assert_eq!(
        s.to_string(),
        "patient/Observation.rs launch offline_access openid fhirUser"
    );
    // The prefixed and bare forms are the same scope, so they de-duplicate.
    let dup = Scopes::parse("openid http://openid.net/specs/openid-connect-core-1_0#openid");
    assert_eq!(dup.len(), 1);
}

#[test]
fn names_without_context_are_kept_verbatim() {
    assert_eq!(
        Scope::parse("Patient.read"),
        Scope::Other("Patient.read".into())
    );
    assert_eq!(
        Scope::parse(" Patient.read\t"),
        Scope::Other("Patient.read".into())
    );
    let s = Scopes::parse("Patient.read Observation.Read");
    assert_eq!(s.to_string(), "Patient.read Observation.Read");
}

#[test]
fn query_values_keep_pipes_and_colons() {
    let text = "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory";
    let r = resource(text);
    assert_eq!(r.permissions, Permissions::READ | Permissions::SEARCH);
    assert_eq!(
        r.query,
        vec![(
            "category".to_owned(),
            "http://terminology.hl7.org/CodeSystem/observation-category|laboratory".to_owned()
        )]
    );
    assert_eq!(Scope::parse(text).to_string(), text);

    let multi = "user/Basic.cruds?code=https://myapp.example.org|display-preferences&code:in=http://x.org/vs&patient.birthdate=ge2000";
    let r = resource(multi);
    assert_eq!(r.query.len(), 3);
    assert_eq!(r.query[1].0, "code:in");
    assert_eq!(r.query[2], ("patient.birthdate".into(), "ge2000".into()));
    assert_eq!(Scope::parse(multi).to_string(), multi);

    // A value may contain '=' and '?'; only the first '=' of each pair splits.
    let r = resource("patient/Observation.rs?_filter=code=x?y");
    assert_eq!(r.query, vec![("_filter".into(), "code=x?y".into())]);
}

#[test]
fn launch_roles() {
    assert_eq!(
        Scope::parse("launch/list?role=https://example.org/roles/worklist"),
        Scope::LaunchContext {
            resource_type: "list".into(),
            role: Some("https://example.org/roles/worklist".into())
        }
    );
    assert_eq!(
        Scope::parse("launch/encounter?role=urn:example:role"),
        Scope::LaunchContext {
            resource_type: "encounter".into(),
            role: Some("urn:example:role".into())
        }
    );
    // Two roles in one scope, or a relative role, are not valid: kept verbatim.
    for bad in [
        "launch/list?role=https://a.org/r&role=https://b.org/r",
        "launch/list?role=relative/path",
        "launch/list?role=",
    ] {
        assert_eq!(Scope::parse(bad), Scope::Other(bad.into()));
    }
    // Several roles as several scopes are fine and distinct.
    let s = Scopes::parse(
        "launch/list?role=https://a.org/r launch/list?role=https://b.org/r launch/list",
    );
    assert_eq!(s.len(), 3);
}

#[test]
fn scopes_set_operations() {
    let mut s = Scopes::new();
    assert!(s.is_empty());
    assert!(s.insert(Scope::OpenId));
    assert!(!s.insert(Scope::parse("OpenId")));
    assert!(s.insert(Scope::parse("patient/Observation.rs")));
    assert!(s.contains(&Scope::parse("patient/Observation.rs")));
    // `contains` is exact: the v1 form is a different value.
    assert!(!s.contains(&Scope::parse("patient/Observation.read")));
    assert!(s.has_openid());
    assert!(!s.has_refresh());
    assert!(s.insert(Scope::OnlineAccess));
    assert!(s.has_refresh());
    assert!(s.remove(&Scope::OnlineAccess));
    assert!(!s.remove(&Scope::OnlineAccess));
    assert!(!s.has_refresh());
    assert!(Scopes::parse("offline_access").has_refresh());
    assert_eq!(s.iter().count(), 2);
    assert_eq!((&s).into_iter().next(), Some(&Scope::OpenId));
    let collected: Scopes = vec![Scope::Launch, Scope::Launch, Scope::Profile]
        .into_iter()
        .collect();
    assert_eq!(collected.to_string(), "launch profile");
    let parsed: Scopes = "openid launch".parse().unwrap_or_default();
    assert_eq!(parsed.len(), 2);
    assert_eq!(Scopes::default(), Scopes::new());
}

#[test]
fn scopes_v1_v2_conversion() {
    let s = Scopes::parse(
        "patient/Observation.rs patient/Patient.r user/*.cruds system/Encounter.cud openid",
    );
    assert_eq!(
        s.to_v1().to_string(),
        "patient/Observation.read patient/Patient.r user/*.* system/Encounter.write openid"
    );
    let v1 = Scopes::parse("patient/Observation.read patient/Observation.rs user/*.* launch");
    assert_eq!(v1.len(), 4);
    // Converting to v2 merges the equivalent forms.
    assert_eq!(
        v1.to_v2().to_string(),
        "patient/Observation.rs user/*.cruds launch"
    );
}
