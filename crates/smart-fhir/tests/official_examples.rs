//! Every official HL7 R4 example in `tests/fixtures/fhir-r4-examples/` (510 resources, one to
//! eight per resource type) converts to the typed model strictly and back to the same JSON up to
//! property order — as sent, with every object's keys reversed, with `resourceType` moved last,
//! and with every object's keys sorted (what `jq -S` or a key-sorting gateway does).

#![cfg(feature = "r4")]

use std::path::PathBuf;

use serde_json::{Map, Value};
use smart_fhir::ParseMode;
use smart_fhir::r4::{self, Resource};

fn fixtures() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fhir-r4-examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixture directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read");
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, serde_json::from_str(&text).expect("valid JSON"))
        })
        .collect()
}

/// Rebuilds every object (at every depth) with its keys in the order `arrange` gives.
/// Rearranges one object's members in place.
type Arrange = dyn Fn(&mut [(String, Value)]);

fn rearranged(value: &Value, arrange: &Arrange) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map
                .iter()
                .map(|(k, v)| (k.clone(), rearranged(v, arrange)))
                .collect();
            arrange(&mut entries);
            Value::Object(entries.into_iter().collect::<Map<_, _>>())
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| rearranged(v, arrange)).collect()),
        other => other.clone(),
    }
}

fn reversed(entries: &mut [(String, Value)]) {
    entries.reverse();
}

fn resource_type_last(entries: &mut [(String, Value)]) {
    if let Some(i) = entries.iter().position(|(k, _)| k == "resourceType") {
        entries[i..].rotate_left(1);
    }
}

fn sorted(entries: &mut [(String, Value)]) {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
}

/// Converts every fixture after `arrange`; returns the failures (name and message).
fn run(arrange: &Arrange) -> (usize, Vec<String>) {
    let all = fixtures();
    let mut failures = Vec::new();
    for (name, original) in &all {
        let input = rearranged(original, arrange);
        // Sanity: the rearrangement changed nothing but order (serde_json's map equality
        // ignores order), and it did change the text for non-trivial objects.
        assert_eq!(&input, original, "{name}: rearranging changed content");
        let typed: Resource =
            match r4::resource_from_json(input, ParseMode::Strict).map(|t| t.resource) {
                Ok(t) => t,
                Err(e) => {
                    failures.push(format!("{name}: {e}"));
                    continue;
                }
            };
        match r4::to_json(&typed) {
            Ok(back) if &back == original => {}
            Ok(back) => failures.push(format!(
                "{name}: round trip differs: {}",
                first_difference(original, &back, String::new())
            )),
            Err(e) => failures.push(format!("{name}: back to JSON: {e}")),
        }
    }
    (all.len(), failures)
}

/// The pointer of the first difference, for the failure message.
fn first_difference(a: &Value, b: &Value, at: String) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) if w == v => {}
                    Some(w) => return first_difference(v, w, format!("{at}/{k}")),
                    None => return format!("{at}/{k} missing"),
                }
            }
            for k in y.keys() {
                if !x.contains_key(k) {
                    return format!("{at}/{k} added");
                }
            }
            at
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                if v != w {
                    return first_difference(v, w, format!("{at}/{i}"));
                }
            }
            at
        }
        _ => format!("{at}: {a} vs {b}"),
    }
}

fn assert_all_parse(label: &str, arrange: &Arrange) {
    let (total, failures) = run(arrange);
    assert!(total >= 500, "the fixture set is incomplete: {total} files");
    assert!(
        failures.is_empty(),
        "{label}: {} of {total} examples fail:\n{}",
        failures.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn every_official_r4_example_parses_typed_and_round_trips() {
    assert_all_parse("as published", &|_| {});
}

#[test]
fn every_official_r4_example_parses_with_every_objects_keys_reversed() {
    assert_all_parse("keys reversed", &reversed);
}

#[test]
fn every_official_r4_example_parses_with_resource_type_last() {
    assert_all_parse("resourceType last", &resource_type_last);
}

#[test]
fn every_official_r4_example_parses_with_keys_sorted() {
    assert_all_parse("keys sorted", &sorted);
}
