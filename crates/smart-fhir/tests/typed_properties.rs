//! Property tests of the typed path on the shapes that broke it: any property order, empty
//! arrays, `null`s, unknown properties holding any JSON, and numbers of any size. Each case must
//! end in a typed value or a typed error — never a panic — and lenient mode must lose nothing.

#![cfg(feature = "r4")]

use proptest::prelude::*;
use serde_json::{Map, Number, Value, json};
use smart_fhir::r4;
use smart_fhir::{FhirError, ParseMode, TypedResource as _};

/// Valid R4 resources with nesting where order used to matter: contained resources, Bundle
/// entries with a resource before `search`, nested Parameters with a resource part.
fn bases() -> Vec<Value> {
    vec![
        json!({"resourceType": "Patient", "id": "p", "active": true,
               "name": [{"family": "F", "given": ["A", "B"], "_given": [null, {"extension": [{"url": "http://x", "valueString": "y"}]}]}],
               "contained": [{"resourceType": "Organization", "id": "o", "name": "Org"}],
               "managingOrganization": {"reference": "#o"}}),
        json!({"resourceType": "Bundle", "type": "searchset", "total": 2,
        "entry": [
          {"fullUrl": "http://e/Observation/1", "resource": {"resourceType": "Observation", "id": "1", "status": "final",
             "code": {"text": "hr"}, "valueQuantity": {"value": 72.50, "unit": "/min"}}, "search": {"mode": "match", "score": 1}},
          {"resource": {"resourceType": "Patient", "id": "2", "birthDate": "1970-01-01"}, "search": {"mode": "include"}}
        ]}),
        json!({"resourceType": "Parameters",
        "parameter": [{"name": "outer", "part": [
            {"name": "inner", "valueInteger": 3},
            {"name": "res", "resource": {"resourceType": "Patient", "id": "q", "gender": "other"}}
        ]}]}),
    ]
}

/// Rebuilds every object with its keys permuted by `seed`.
fn permuted(value: &Value, seed: &mut u64) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map
                .iter()
                .map(|(k, v)| (k.clone(), permuted(v, seed)))
                .collect();
            // Fisher–Yates with a small LCG: deterministic per seed.
            for i in (1..entries.len()).rev() {
                *seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let j = (*seed >> 33) as usize % (i + 1);
                entries.swap(i, j);
            }
            Value::Object(entries.into_iter().collect::<Map<_, _>>())
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| permuted(v, seed)).collect()),
        other => other.clone(),
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        "[0-9]{1,30}".prop_map(|d| {
            let digits = d.trim_start_matches('0');
            let digits = if digits.is_empty() { "0" } else { digits };
            Value::Number(serde_json::from_str::<Number>(digits).expect("digits"))
        }),
        "[a-z ]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(("[a-zA-Z_]{1,6}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Every object of `value`, as JSON pointers.
fn object_pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            out.push(at.clone());
            for (k, v) in map {
                object_pointers(v, format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                object_pointers(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn property_order_never_changes_the_typed_result(base in 0usize..3, seed in any::<u64>()) {
        let original = bases()[base].clone();
        let expected = r4::to_json(&r4::resource_from_json(original.clone(), ParseMode::Strict).map(|t| t.resource).expect("valid")).expect("json");
        let mut s = seed;
        let shuffled = permuted(&original, &mut s);
        let typed = r4::resource_from_json(shuffled, ParseMode::Strict).expect("any order").resource;
        prop_assert_eq!(r4::to_json(&typed).expect("json"), expected);
    }

    #[test]
    fn hostile_insertions_end_in_a_value_or_a_typed_error(
        base in 0usize..3,
        spot in any::<prop::sample::Index>(),
        key in prop_oneof![Just("identifier".to_owned()), Just("extension".to_owned()), Just("text".to_owned()), "[a-z]{1,8}".prop_map(|k| format!("vendor{k}"))],
        value in prop_oneof![Just(json!([])), Just(Value::Null), Just(json!({})), arb_json()],
    ) {
        let mut resource = bases()[base].clone();
        let mut spots = Vec::new();
        object_pointers(&resource, String::new(), &mut spots);
        let at = spots[spot.index(spots.len())].clone();
        let target = resource.pointer_mut(&at).and_then(Value::as_object_mut).expect("object");
        if key == "resourceType" || target.contains_key(&key) {
            return Ok(());
        }
        target.insert(key.clone(), value.clone());
        for mode in [ParseMode::Strict, ParseMode::Lenient] {
            let result = r4::resource_from_json(resource.clone(), mode);
            if mode == ParseMode::Lenient && key.starts_with("vendor") {
                prop_assert!(result.is_ok(), "lenient refused an unknown property: {:?}", result.err());
            }
            match result {
                Ok(typed) => {
                    if mode == ParseMode::Lenient && key.starts_with("vendor") && !value.is_null() {
                        // Nothing lost: the unknown property is kept and written back.
                        let pointer = format!("{at}/{key}");
                        let kept = typed.extras().get(&pointer);
                        let empty = matches!(&value, Value::Array(a) if a.is_empty()) || matches!(&value, Value::Object(o) if o.is_empty());
                        prop_assert!(kept == Some(&value) || empty, "{pointer} not kept: {:?}", typed.extras());
                        let mut back = r4::to_json(&typed.resource).expect("json");
                        typed.extras().merge_into(&mut back);
                        if kept.is_some() {
                            prop_assert_eq!(back.pointer(&pointer), Some(&value));
                        }
                    }
                }
                Err(FhirError::Typed { .. }) => {}
                Err(other) => prop_assert!(false, "not a typed error: {other}"),
            }
        }
    }

    #[test]
    fn decimals_of_any_size_keep_their_digits(int in "-?[1-9][0-9]{0,39}", frac in proptest::option::of("[0-9]{1,20}")) {
        let digits = match frac { Some(f) => format!("{int}.{f}"), None => int };
        let text = format!(r#"{{"resourceType":"Observation","status":"final","code":{{"text":"x"}},"valueQuantity":{{"value":{digits}}}}}"#);
        let json: Value = serde_json::from_str(&text).expect("json");
        for mode in [ParseMode::Strict, ParseMode::Lenient] {
            let o = r4::resources::Observation::from_json_with(json.clone(), mode).expect("decimal");
            prop_assert_eq!(o.to_json().expect("json")["valueQuantity"]["value"].to_string(), digits.clone());
        }
    }

    #[test]
    fn integers_are_kept_exactly_or_refused(n in any::<i128>()) {
        let json = json!({"resourceType": "Patient", "multipleBirthInteger": serde_json::from_str::<Number>(&n.to_string()).expect("number")});
        for mode in [ParseMode::Strict, ParseMode::Lenient] {
            match r4::from_json_with::<r4::resources::Patient>(json.clone(), mode) {
                Ok(p) => {
                    prop_assert!(i32::try_from(n).is_ok());
                    prop_assert_eq!(p.to_json().expect("json")["multipleBirthInteger"].to_string(), n.to_string());
                }
                Err(FhirError::Typed { pointer, .. }) => {
                    prop_assert!(i32::try_from(n).is_err(), "{n} refused");
                    prop_assert_eq!(pointer.as_deref(), Some("/multipleBirthInteger"));
                }
                Err(other) => prop_assert!(false, "{other}"),
            }
        }
    }
}
