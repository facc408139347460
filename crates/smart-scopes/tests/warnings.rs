//! Likely mistakes in a scope list are reported with a "did you mean", and never change what is
//! parsed; a refresh token makes `offline_access` count as granted.

use smart_scopes::{MAX_SCOPES, MAX_WARNINGS, Scope, ScopeWarning, Scopes};

fn warnings(s: &str) -> Vec<ScopeWarning> {
    let (scopes, warnings) = Scopes::parse_with_warnings(s);
    assert_eq!(scopes, Scopes::parse(s), "warnings never change the list");
    warnings
}

fn only(s: &str) -> ScopeWarning {
    let mut w = warnings(s);
    assert_eq!(w.len(), 1, "{s}: {w:?}");
    w.remove(0)
}

#[test]
fn well_formed_lists_have_no_warnings() {
    for ok in [
        "launch/patient openid fhirUser offline_access patient/*.rs",
        "launch launch/encounter user/Observation.cruds system/Patient.read online_access profile",
        "patient/Observation.rs?code=http://loinc.org|1234,http://loinc.org|5678",
        "http://smarthealthit.org/fhir/scopes/patient/Patient.Read __epic.extension https://ehr.example.org/scopes/x",
        "",
    ] {
        assert_eq!(warnings(ok), vec![], "{ok}");
    }
}

#[test]
fn commas_are_separators_by_mistake() {
    let w = only("patient/*.read,launch openid");
    assert_eq!(
        w,
        ScopeWarning::Comma {
            written: "patient/*.read,launch".into(),
            suggestion: "patient/*.read launch".into()
        }
    );
    assert!(
        w.to_string()
            .contains("did you mean `patient/*.read launch`"),
        "{w}"
    );
    assert_eq!(
        only("openid,fhirUser,").suggestion(),
        Some("openid fhirUser")
    );
}

#[test]
fn unknown_r4_resource_types() {
    let w = only("patient/Observaton.rs");
    assert!(
        matches!(&w, ScopeWarning::UnknownResourceType { resource_type, suggestion: Some(s), .. }
            if resource_type == "Observaton" && s == "Observation"),
        "{w:?}"
    );
    assert!(w.to_string().contains("not a FHIR R4 resource type"), "{w}");
    assert_eq!(
        only("user/medicationrequest.r").suggestion(),
        Some("MedicationRequest")
    );
    let far = only("system/Spaceship.rs");
    assert!(
        matches!(
            &far,
            ScopeWarning::UnknownResourceType {
                suggestion: None,
                ..
            }
        ),
        "{far:?}"
    );
    // R5-only types are unknown to R4.
    assert!(matches!(
        only("patient/NutritionIntake.rs"),
        ScopeWarning::UnknownResourceType { .. }
    ));
}

#[test]
fn permissions_out_of_cruds_order() {
    let w = only("patient/Observation.sr");
    assert_eq!(w.suggestion(), Some("patient/Observation.rs"));
    assert!(w.to_string().contains("`cruds`"), "{w}");
    assert_eq!(only("user/*.dcr").suggestion(), Some("user/*.crd"));
    assert_eq!(
        only("Patient/Observation.rrs?category=lab").suggestion(),
        Some("patient/Observation.rs?category=lab")
    );
}

#[test]
fn near_misses_of_well_known_scopes() {
    for (written, meant) in [
        ("offline-access", "offline_access"),
        ("offlineaccess", "offline_access"),
        ("offline_acess", "offline_access"),
        ("online-access", "online_access"),
        ("launch-patient", "launch/patient"),
        ("launch_encounter", "launch/encounter"),
        ("open_id", "openid"),
        ("fhir-user", "fhirUser"),
        ("patients/Observation.rs", "patient/Observation.rs"),
        ("Observation.read", "patient/Observation.read"),
    ] {
        let w = only(written);
        assert!(
            matches!(&w, ScopeWarning::NearMiss { suggestion, .. } if suggestion == meant),
            "{written}: {w:?}"
        );
        assert!(
            w.to_string().contains(&format!("did you mean `{meant}`")),
            "{w}"
        );
    }
}

#[test]
fn recognised_scopes_in_a_form_servers_may_refuse() {
    for (written, canonical) in [
        ("openId", "openid"),
        ("fhiruser", "fhirUser"),
        ("Launch/Patient", "launch/patient"),
        ("patient/Observation.Read", "patient/Observation.read"),
        ("OFFLINE_ACCESS", "offline_access"),
    ] {
        assert_eq!(
            only(written),
            ScopeWarning::NotCanonical {
                written: written.into(),
                canonical: canonical.into()
            }
        );
    }
}

#[test]
fn warnings_are_bounded_and_escaped() {
    let many: Vec<String> = (0..1000).map(|i| format!("patient/Bad{i}.rs")).collect();
    assert_eq!(warnings(&many.join(" ")).len(), MAX_WARNINGS);
    let hostile = only("open\u{202e}id\u{1b}[");
    assert_eq!(hostile.suggestion(), Some("openid"));
    let shown = hostile.to_string();
    assert!(
        !shown.chars().any(|c| c.is_control() || c == '\u{202e}'),
        "{shown:?}"
    );
    let over: Vec<String> = (0..MAX_SCOPES + 3).map(|i| format!("__e{i}")).collect();
    let w = warnings(&over.join(" "));
    assert_eq!(
        w.last(),
        Some(&ScopeWarning::TooMany {
            kept: MAX_SCOPES,
            omitted: 3
        })
    );
}

#[test]
fn a_refresh_token_means_offline_access_was_granted() {
    let requested = Scopes::parse("launch/patient openid fhirUser offline_access patient/*.rs");
    let echoed_without = Scopes::parse("launch/patient openid fhirUser patient/*.rs");
    let plain = Scopes::compare(&requested, &echoed_without);
    assert!(plain.dropped.contains(&Scope::OfflineAccess));
    let with_refresh = Scopes::compare_with(&requested, &echoed_without, true);
    assert!(with_refresh.is_complete(), "{with_refresh:?}");
    assert!(
        with_refresh
            .granted_as_requested
            .contains(&Scope::OfflineAccess)
    );
    // Same for online_access; and a server that does echo it changes nothing.
    let online = Scopes::parse("openid online_access");
    assert!(Scopes::compare_with(&online, &Scopes::parse("openid"), true).is_complete());
    let echoed = Scopes::parse("launch/patient openid fhirUser offline_access patient/*.rs");
    assert_eq!(
        Scopes::compare_with(&requested, &echoed, true),
        Scopes::compare(&requested, &echoed)
    );
    // Without a refresh token a missing offline_access is still reported.
    assert!(!Scopes::compare_with(&requested, &echoed_without, false).is_complete());
}

#[test]
fn online_access_granted_instead_of_offline_access_is_reported() {
    // Oracle Health grants online_access only to an app registered for online access, with a
    // refresh token that ends with the user's session: offline_access was dropped.
    let requested = Scopes::parse("openid fhirUser offline_access online_access");
    let online_only = Scopes::parse("openid fhirUser online_access");
    let cmp = Scopes::compare_with(&requested, &online_only, true);
    assert_eq!(cmp.dropped.to_string(), "offline_access");
    assert!(cmp.granted_as_requested.contains(&Scope::OnlineAccess));
    // Only offline_access asked for, online_access granted: the same.
    let cmp = Scopes::compare_with(
        &Scopes::parse("openid offline_access"),
        &Scopes::parse("openid online_access"),
        true,
    );
    assert_eq!(cmp.dropped.to_string(), "offline_access");
    // The reverse (offline granted for online asked) loses nothing.
    assert!(
        Scopes::compare_with(
            &Scopes::parse("openid online_access"),
            &Scopes::parse("openid offline_access"),
            true,
        )
        .is_complete()
    );
    // Neither echoed: the refresh token stands for the requested one.
    assert!(
        Scopes::compare_with(
            &Scopes::parse("openid offline_access"),
            &Scopes::parse("openid"),
            true
        )
        .is_complete()
    );
}
