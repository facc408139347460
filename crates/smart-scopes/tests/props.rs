//! Property tests: round trips, tolerance of arbitrary input, v2 equivalence.

use proptest::prelude::*;
use smart_scopes::{
    PermissionSyntax, Permissions, ResourceScope, ResourceType, Scope, ScopeContext, Scopes,
};

fn context() -> impl Strategy<Value = ScopeContext> {
    prop_oneof![
        Just(ScopeContext::Patient),
        Just(ScopeContext::User),
        Just(ScopeContext::System)
    ]
}

fn resource_type() -> impl Strategy<Value = ResourceType> {
    prop_oneof![
        1 => Just(ResourceType::Any),
        4 => "[A-Z][A-Za-z0-9]{0,15}".prop_map(ResourceType::Named),
    ]
}

fn v2_permissions() -> impl Strategy<Value = Permissions> {
    (1u8..32).prop_map(|bits| {
        [
            Permissions::CREATE,
            Permissions::READ,
            Permissions::UPDATE,
            Permissions::DELETE,
            Permissions::SEARCH,
        ]
        .into_iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .fold(Permissions::NONE, |acc, (_, p)| acc | p)
    })
}

fn permissions_and_syntax() -> impl Strategy<Value = (Permissions, PermissionSyntax)> {
    prop_oneof![
        v2_permissions().prop_map(|p| (p, PermissionSyntax::V2)),
        prop_oneof![Just("read"), Just("write"), Just("*")].prop_map(|w| (
            Permissions::from_v1(w).unwrap_or(Permissions::ALL),
            PermissionSyntax::V1
        )),
    ]
}

fn query() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(
        ("[a-z_][a-zA-Z0-9_.:-]{0,10}", "[A-Za-z0-9:|/._=?%-]{1,30}"),
        0..3,
    )
}

fn resource_scope() -> impl Strategy<Value = ResourceScope> {
    (
        context(),
        resource_type(),
        permissions_and_syntax(),
        query(),
    )
        .prop_map(
            |(context, resource_type, (permissions, syntax), query)| ResourceScope {
                context,
                resource_type,
                permissions,
                syntax,
                query,
            },
        )
}

fn scope() -> impl Strategy<Value = Scope> {
    prop_oneof![
        6 => resource_scope().prop_map(Scope::Resource),
        1 => Just(Scope::Launch),
        2 => (
            "[a-z][a-z0-9]{0,12}",
            proptest::option::of("(https://[a-z]{1,10}\\.org/[a-z/]{0,10}|urn:[a-z]{1,5}:[a-z0-9]{1,5})")
        )
            .prop_map(|(resource_type, role)| Scope::LaunchContext { resource_type, role }),
        1 => Just(Scope::OpenId),
        1 => Just(Scope::FhirUser),
        1 => Just(Scope::Profile),
        1 => Just(Scope::OfflineAccess),
        1 => Just(Scope::OnlineAccess),
        2 => prop_oneof![
            "__[A-Za-z0-9._]{1,12}",
            "https://ehr\\.example\\.org/scopes/[a-zA-Z.]{1,12}",
        ]
        .prop_map(Scope::Other),
    ]
}

proptest! {
    #[test]
    fn scope_format_parse_round_trip(s in scope()) {
        let text = s.to_string();
        prop_assert_eq!(Scope::parse(&text), s.clone());
        prop_assert_eq!(text.parse::<Scope>(), Ok(s.clone()));
        // The URI form parses back to the same scope too (except extension scopes).
        if !matches!(s, Scope::Other(_)) {
            let uri = format!("http://smarthealthit.org/fhir/scopes/{text}");
            prop_assert_eq!(Scope::parse(&uri), s);
        }
    }

    #[test]
    fn scopes_format_parse_round_trip(list in prop::collection::vec(scope(), 0..8)) {
        let scopes: Scopes = list.into_iter().collect();
        let text = scopes.to_string();
        prop_assert_eq!(Scopes::parse(&text), scopes.clone());
        let json = serde_json::to_string(&scopes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: Scopes = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, scopes);
    }

    #[test]
    fn parse_of_arbitrary_strings_never_panics_and_is_idempotent(input in any::<String>()) {
        let once = Scopes::parse(&input);
        let text = once.to_string();
        let twice = Scopes::parse(&text);
        prop_assert_eq!(&twice, &once);
        prop_assert_eq!(twice.to_string(), text);
        // Single-scope parsing never panics either.
        let _ = Scope::parse(&input);
        let _ = input.parse::<Scope>();
    }

    #[test]
    fn parse_of_scope_like_noise_is_idempotent(
        input in "[ \t\n\r\u{0b}\u{a0}a-zA-Z/.*?=&|:_#éü-]{0,60}"
    ) {
        let once = Scopes::parse(&input);
        let text = once.to_string();
        prop_assert_eq!(Scopes::parse(&text).to_string(), text);
    }

    #[test]
    fn to_v2_is_equivalent(r in resource_scope()) {
        let s = Scope::Resource(r);
        let v2 = s.to_v2();
        prop_assert!(v2.is_equivalent(&s));
        prop_assert!(s.is_equivalent(&v2));
        prop_assert_eq!(v2.as_resource().map(|r| r.syntax), Some(PermissionSyntax::V2));
        // to_v1 never changes the meaning either.
        for v1 in s.to_v1() {
            prop_assert!(v1.is_equivalent(&s));
        }
    }

    #[test]
    fn granted_list_covers_its_own_scopes(list in prop::collection::vec(scope(), 0..6)) {
        let scopes: Scopes = list.into_iter().collect();
        let cmp = Scopes::compare(&scopes, &scopes);
        prop_assert!(cmp.is_complete());
        prop_assert!(cmp.added.is_empty());
        prop_assert_eq!(cmp.granted_as_requested, scopes.clone());
        let cmp_v1 = Scopes::compare(&scopes, &scopes.to_v1());
        prop_assert!(cmp_v1.is_complete());
    }
}

/// The definitions of [`Scopes::compare`], written out naively (quadratic) from the public API.
fn naive_overlaps(granted: &Scopes, requested: &Scope) -> bool {
    let Scope::Resource(r) = requested else {
        return false;
    };
    granted.iter().filter_map(Scope::as_resource).any(|g| {
        let types_overlap = g.resource_type == ResourceType::Any
            || r.resource_type == ResourceType::Any
            || g.resource_type == r.resource_type;
        g.context == r.context
            && types_overlap
            && !g.permissions.intersection(r.permissions).is_empty()
    })
}

fn small_scope() -> impl Strategy<Value = Scope> {
    let types = prop_oneof![
        Just(ResourceType::Any),
        Just(ResourceType::Named("Observation".into())),
        Just(ResourceType::Named("Patient".into())),
    ];
    let query = prop_oneof![
        Just(Vec::new()),
        Just(vec![("a".to_owned(), "1".to_owned())]),
        Just(vec![
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "2".to_owned())
        ]),
        Just(vec![
            ("b".to_owned(), "2".to_owned()),
            ("a".to_owned(), "1".to_owned())
        ]),
    ];
    prop_oneof![
        3 => (
            prop_oneof![Just(ScopeContext::Patient), Just(ScopeContext::User)],
            types,
            permissions_and_syntax(),
            query
        )
            .prop_map(|(context, resource_type, (permissions, syntax), query)| {
                Scope::Resource(ResourceScope {
                    context,
                    resource_type,
                    permissions,
                    syntax,
                    query,
                })
            }),
        1 => prop_oneof![
            Just(Scope::OpenId),
            Just(Scope::OfflineAccess),
            Just(Scope::Launch),
            Just(Scope::Other("__x".into())),
        ],
    ]
}

proptest! {
    #[test]
    fn indexed_comparison_matches_the_definitions(
        requested in prop::collection::vec(small_scope(), 0..8),
        granted in prop::collection::vec(small_scope(), 0..8),
    ) {
        let requested: Scopes = requested.into_iter().collect();
        let granted: Scopes = granted.into_iter().collect();
        let cmp = Scopes::compare(&requested, &granted);
        for r in &requested {
            let expected = if granted.covers(r) {
                &cmp.granted_as_requested
            } else if naive_overlaps(&granted, r) {
                &cmp.narrowed
            } else {
                &cmp.dropped
            };
            prop_assert!(expected.contains(r), "{} misfiled: {:?}", r, cmp);
        }
        for g in &granted {
            prop_assert_eq!(cmp.added.contains(g), !requested.covers(g), "{}", g);
        }
    }
}
