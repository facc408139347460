//! Server-sized input: a grant with 100,000 scopes is parsed, de-duplicated and compared in
//! linear time, and the list is capped at `MAX_SCOPES` with the cut made visible.

use std::time::{Duration, Instant};

use smart_scopes::{MAX_SCOPES, Scope, Scopes};

/// 100,000 distinct scopes, about 1.6 MB: resource scopes over made-up types, extension scopes,
/// and every 10th one a duplicate (in upper case) of the next.
fn huge_scope_string() -> String {
    let mut s = String::with_capacity(1_700_000);
    for i in 0..100_000u32 {
        let scope = match i % 10 {
            0 => format!("patient/Ob{}.RS", i + 1),
            1..=4 => format!("patient/Ob{i}.rs"),
            5..=7 => format!("user/T{i}.cruds"),
            _ => format!("__ext{i}"),
        };
        s.push_str(&scope);
        s.push(' ');
    }
    s
}

#[test]
fn a_100000_scope_grant_parses_and_compares_in_linear_time() {
    let text = huge_scope_string();
    assert!(text.len() > 1_500_000, "{}", text.len());
    let started = Instant::now();
    let granted = Scopes::parse(&text);
    let requested = Scopes::parse("launch/patient patient/Ob11.rs openid offline_access");
    let cmp = Scopes::compare(&requested, &granted);
    // The worst case the other way round: a huge request against a huge grant.
    let both = Scopes::compare(&granted, &Scopes::parse(&text));
    let elapsed = started.elapsed();
    // Generous bound for debug builds on a shared machine: the quadratic de-duplication and
    // comparison took 25 s of CPU in a release build on this input.
    assert!(
        elapsed < Duration::from_secs(5),
        "parsing and comparing took {elapsed:?}"
    );
    assert_eq!(granted.len(), MAX_SCOPES);
    // 90,000 distinct scopes; duplicates of kept ones are not counted as left out.
    assert!((90_000 - MAX_SCOPES..=100_000 - MAX_SCOPES).contains(&granted.omitted()));
    assert_eq!(cmp.granted_omitted, granted.omitted());
    assert_eq!(
        cmp.dropped.to_string(),
        "launch/patient openid offline_access"
    );
    assert_eq!(both.granted_as_requested.len(), MAX_SCOPES);
    assert!(both.dropped.is_empty() && both.narrowed.is_empty() && both.added.is_empty());
}

#[test]
fn checking_a_100000_scope_list_for_mistakes_is_bounded_too() {
    // Scopes close in length to the well-known ones, so each would need the edit-distance
    // comparison: only the kept ones (MAX_SCOPES) are checked.
    let text: String = (0..100_000).map(|i| format!("ofline{i} ")).collect();
    let started = Instant::now();
    let (scopes, warnings) = Scopes::parse_with_warnings(&text);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(scopes, Scopes::parse(&text));
    assert!(warnings.len() <= smart_scopes::MAX_WARNINGS + 1);
}

#[test]
fn the_cap_is_explicit_and_duplicates_are_not_counted_as_left_out() {
    let mut scopes = Scopes::new();
    for i in 0..MAX_SCOPES {
        assert!(scopes.insert(Scope::Other(format!("__s{i}"))));
    }
    assert_eq!(scopes.omitted(), 0);
    // A duplicate is not "left out"; a new scope past the cap is.
    assert!(!scopes.insert(Scope::Other("__s0".into())));
    assert_eq!(scopes.omitted(), 0);
    assert!(!scopes.insert(Scope::OpenId));
    assert_eq!(scopes.omitted(), 1);
    assert!(!scopes.contains(&Scope::OpenId));
    // Removing makes room again, and membership follows removals.
    assert!(scopes.remove(&Scope::Other("__s7".into())));
    assert!(!scopes.contains(&Scope::Other("__s7".into())));
    assert!(scopes.insert(Scope::OpenId));
    assert_eq!(scopes.len(), MAX_SCOPES);
    assert_eq!(scopes.as_slice().last(), Some(&Scope::OpenId));
    // The count survives the grammar conversions.
    assert_eq!(scopes.to_v2().omitted(), 1);
}

#[test]
fn insertion_order_and_duplicate_rules_are_unchanged() {
    let s = Scopes::parse(
        "openid patient/Observation.Read OPENID patient/Observation.read patient/Observation.rs launch",
    );
    assert_eq!(
        s.to_string(),
        "openid patient/Observation.read patient/Observation.rs launch"
    );
    assert_eq!(s.omitted(), 0);
    let mut t = s.clone();
    assert!(t.remove(&Scope::OpenId));
    assert!(!t.remove(&Scope::OpenId));
    assert_eq!(
        t.to_string(),
        "patient/Observation.read patient/Observation.rs launch"
    );
    assert_ne!(s, t);
    assert!(t.insert(Scope::OpenId));
    assert_eq!(
        t.to_string(),
        "patient/Observation.read patient/Observation.rs launch openid"
    );
}
