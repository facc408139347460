//! Property tests: no parser in the core panics on arbitrary server or user input.

use proptest::prelude::*;
use serde_json::{Map, Value};
use smart_core::CallbackParams;
use smart_core::discovery::{SmartConfiguration, configuration_from_capability_statement};
use smart_core::token::parse_token_response;

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".*".prop_map(Value::String),
        prop_oneof![
            Just("true"),
            Just("false"),
            Just("Bearer"),
            Just("bearer"),
            Just("3600"),
            Just("Patient/1")
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Mostly the field names the parsers look at, so that the interesting paths are reached.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "access_token",
            "token_type",
            "expires_in",
            "refresh_token",
            "id_token",
            "scope",
            "patient",
            "encounter",
            "fhirContext",
            "need_patient_banner",
            "smart_style_url",
            "intent",
            "tenant",
            "reference",
            "canonical",
            "identifier",
            "type",
            "role",
            "token_endpoint",
            "authorization_endpoint",
            "capabilities",
            "rest",
            "security",
            "extension",
            "url",
            "valueUri",
        ])
        .prop_map(str::to_owned),
        "[a-z_]{1,12}",
    ]
}

fn arb_object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(field_name(), arb_json(), 0..12)
        .prop_map(|m| m.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn token_response_parser_never_panics(body in arb_object(), now in any::<u64>()) {
        let _ = parse_token_response(body, now);
    }

    #[test]
    fn valid_token_responses_always_parse(
        token in "[A-Za-z0-9._~-]{1,64}",
        expires in 0u64..100_000,
        extra in arb_object(),
    ) {
        let mut body = extra;
        for k in ["need_patient_banner", "fhirContext", "patient", "encounter", "intent", "tenant", "smart_style_url",
                  "scope", "refresh_token", "id_token"] {
            body.remove(k);
        }
        body.insert("access_token".into(), Value::String(token.clone()));
        body.insert("token_type".into(), Value::String("bEaReR".into()));
        body.insert("expires_in".into(), Value::from(expires));
        let parsed = parse_token_response(body, 1_000).expect("a valid response parses");
        prop_assert_eq!(parsed.tokens.access_token.expose_secret(), token.as_str());
        prop_assert_eq!(parsed.tokens.expires_at, Some(1_000 + expires));
    }

    #[test]
    fn configuration_parsers_never_panic(value in arb_json()) {
        let _ = serde_json::from_value::<SmartConfiguration>(value.clone());
        let _ = configuration_from_capability_statement(&value);
    }

    #[test]
    fn configuration_from_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = serde_json::from_slice::<SmartConfiguration>(&bytes);
    }

    #[test]
    fn callback_parsing_never_panics(query in ".*", url in ".*") {
        let params = CallbackParams::from_query(&query);
        let _ = params.get("state");
        let _ = CallbackParams::from_url(&url);
    }
}
