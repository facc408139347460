//! Vendor search codes (`VendorProfile::search_codes`, Epic 4113, 4122,
//! 4127, 59100) are a profile switch: the generic profile emits none of
//! them, and the same generic server with a `[search_codes]` table emits
//! each. The Epic profile itself is tested through the Epic adapter
//! (`adapters/epic/tests/search_outcomes.rs`).

use serde_json::Value;
use smart_sandbox::{Sandbox, SandboxConfig, VendorProfile};

use crate::common::*;

const OID: &str = "urn:oid:1.2.840.114350.1.13.0.1.7.2.657369";

/// The generic profile plus Epic's codes, with a Patient cap of 3 and paging
/// sessions that expire at once.
fn generic_with_codes() -> VendorProfile {
    VendorProfile::from_toml_str(&format!(
        r#"extends = "generic"
name = "generic-coded"
[search_codes]
details_system = "{OID}"
unknown_parameter = "4122"
ignored_parameter = "59100"
patient_search_limit = 3
too_many_results = "4127"
paging_session_lifetime_secs = 0
paging_session_expired = "4113"
"#
    ))
    .unwrap()
}

async fn start_profile(profile: VendorProfile) -> Sandbox {
    start_with(SandboxConfig {
        profile,
        ..SandboxConfig::default()
    })
    .await
}

/// The issues of a Bundle's `search.mode = outcome` entries.
fn outcome_issues(bundle: &Value) -> Vec<Value> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "outcome")
        .flat_map(|e| e["resource"]["issue"].as_array().unwrap().clone())
        .collect()
}

fn coded(issue: &Value) -> Option<&str> {
    issue["details"]["coding"][0]["code"].as_str()
}

#[tokio::test]
async fn generic_emits_no_search_codes() {
    let sb = start().await;
    let token = user_token(&sb).await;

    // 300 patients match: no cap.
    let all = get_json(&sb, "Patient?_count=2", &token, 200).await;
    assert_eq!(total(&all), 300, "{all}");
    // Unknown and ignored parameters: plain warnings, no vendor code.
    let warned = get_json(
        &sb,
        "Observation?patient=pat-1&foo=1&_summary=true&_count=1",
        &token,
        200,
    )
    .await;
    let issues = outcome_issues(&warned);
    assert_eq!(issues.len(), 2, "{warned}");
    for issue in &issues {
        assert_eq!(issue["severity"], "warning");
        assert!(issue.get("details").is_none(), "{issue}");
    }
    // Next links keep working: no paging session expiry.
    let next = link(&all, "next").unwrap();
    let page = get_url(&next, &token).await;
    assert_eq!(page.status(), 200);
    let page: Value = page.json().await.unwrap();
    let next = link(&page, "next").unwrap();
    assert_eq!(get_url(&next, &token).await.status(), 200);
}

#[tokio::test]
async fn the_search_codes_table_turns_each_code_on() {
    let sb = start_profile(generic_with_codes()).await;
    let token = user_token(&sb).await;

    // 4127: more than 3 patients is a fatal 400; 3 is not more than 3.
    let resp = read(&sb, "Patient?gender=female&_count=1", Some(&token)).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(header(&resp, "content-type"), "application/fhir+json");
    let outcome: Value = resp.json().await.unwrap();
    let issue = &outcome["issue"][0];
    assert_eq!(issue["severity"], "fatal", "{outcome}");
    assert_eq!(issue["code"], "too-costly");
    assert_eq!(coded(issue), Some("4127"));
    assert_eq!(issue["details"]["coding"][0]["system"], OID);
    let three = get_json(&sb, "Patient?_id=pat-1,pat-2,pat-3", &token, 200).await;
    assert_eq!(match_ids(&three).len(), 3);
    // Other types are not capped.
    let many = get_json(&sb, "Observation?_count=1", &token, 200).await;
    assert!(total(&many) > 3);

    // 4122 for the unknown parameter, 59100 for the known-but-ignored one;
    // the result is that of the search without them.
    let plain = get_json(&sb, "Observation?patient=pat-1&_count=5", &token, 200).await;
    let warned = get_json(
        &sb,
        "Observation?patient=pat-1&_count=5&foo=1&_summary=true",
        &token,
        200,
    )
    .await;
    assert_eq!(match_ids(&warned), match_ids(&plain));
    let issues = outcome_issues(&warned);
    let codes: Vec<Option<&str>> = issues.iter().map(coded).collect();
    assert_eq!(codes, [Some("4122"), Some("59100")], "{warned}");
    assert!(issues.iter().all(|i| i["severity"] == "warning"));
    assert!(issues[0]["diagnostics"].as_str().unwrap().contains("foo"));

    // 4113: with a lifetime of 0 the next link is dead at once.
    let next = link(&plain, "next").unwrap();
    let resp = get_url(&next, &token).await;
    assert_eq!(resp.status(), 400);
    let outcome: Value = resp.json().await.unwrap();
    assert_eq!(outcome["issue"][0]["severity"], "fatal", "{outcome}");
    assert_eq!(coded(&outcome["issue"][0]), Some("4113"));
    // $everything pages share the rule.
    let everything = get_json(&sb, "Patient/pat-1/$everything?_count=2", &token, 200).await;
    let next = link(&everything, "next").unwrap();
    let outcome: Value = get_url(&next, &token).await.json().await.unwrap();
    assert_eq!(coded(&outcome["issue"][0]), Some("4113"), "{outcome}");
}

#[test]
fn a_limit_or_lifetime_needs_its_code() {
    for (table, needle) in [
        ("patient_search_limit = 5", "needs too_many_results"),
        ("patient_search_limit = 0\ntoo_many_results = \"x\"", "is 0"),
        (
            "paging_session_lifetime_secs = 5",
            "needs paging_session_expired",
        ),
        (
            "paging_session_lifetime_secs = 86401\npaging_session_expired = \"x\"",
            "more than a day",
        ),
        ("unknown_parameter = \"a b\"", "without spaces"),
    ] {
        let text = format!("extends = \"generic\"\nname = \"x\"\n[search_codes]\n{table}\n");
        let err = VendorProfile::from_toml_str(&text).unwrap_err().to_string();
        assert!(err.contains(needle), "{table}: {err}");
    }
}
