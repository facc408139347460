//! What the CLI tells a person without failing: likely mistakes in `--scope`, and a refresh the
//! server answered oddly (issue 8 items 1 and 12). Both go to stderr as `warning:` lines; stdout
//! stays the command's result.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{runtime, sandbox, smart, smart_in, stderr_of, stdout_ok};

#[test]
fn likely_scope_mistakes_are_warned_about_with_a_suggestion() {
    let rt = runtime();
    let sandbox = sandbox(&rt, |_| {});
    let out = smart(&[
        "launch",
        "--iss",
        &sandbox.fhir_base(),
        "--client-id",
        "demo-public",
        "--redirect-uri",
        "http://127.0.0.1:8765/callback",
        "--scope",
        "launch/patient patient/Observation.sr offline-access",
        "--headless",
        "--json",
    ]);
    let err = stderr_of(&out);
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("warning: --scope:"))
        .collect();
    assert_eq!(warnings.len(), 2, "one warning per mistake: {err}");
    assert!(
        warnings.iter().any(|w| w.contains("offline_access")),
        "suggests offline_access: {err}"
    );
    assert!(
        warnings.iter().any(|w| w.contains(".rs")),
        "suggests the cruds order: {err}"
    );
}

#[test]
fn well_formed_scopes_give_no_warning() {
    let rt = runtime();
    let sandbox = sandbox(&rt, |_| {});
    let out = smart(&[
        "launch",
        "--iss",
        &sandbox.fhir_base(),
        "--client-id",
        "demo-public",
        "--redirect-uri",
        "http://127.0.0.1:8765/callback",
        "--scope",
        "launch/patient patient/*.rs offline_access",
        "--headless",
        "--json",
    ]);
    stdout_ok(&out);
    assert!(!stderr_of(&out).contains("warning"), "{}", stderr_of(&out));
}

#[test]
fn a_refreshed_id_token_without_aud_keeps_the_session_and_says_why() {
    let rt = runtime();
    let sandbox = sandbox(&rt, |b| {
        b.access_token_lifetime = Duration::from_secs(1);
        b.refreshed_id_token_omits_aud = true;
    });
    let data = tempfile::tempdir().expect("tmp");
    let launched: Value = serde_json::from_str(&stdout_ok(&smart_in(
        data.path(),
        &[
            "launch",
            "--iss",
            &sandbox.fhir_base(),
            "--client-id",
            "demo-public",
            "--redirect-uri",
            "http://127.0.0.1:8765/callback",
            "--scope",
            "launch/patient patient/*.rs openid fhirUser offline_access",
            "--headless",
            "--json",
        ],
    )))
    .expect("launch JSON");
    let sub = launched["identity"]["sub"].clone();
    assert!(sub.is_string(), "{launched}");

    std::thread::sleep(Duration::from_millis(1600));
    let refreshes = sandbox.counters().refresh_requests;
    let out = smart_in(data.path(), &["fhir", "get", "Patient/pat-1"]);
    let patient: Value = serde_json::from_str(&stdout_ok(&out)).expect("JSON");
    assert_eq!(patient["id"], "pat-1");
    assert_eq!(sandbox.counters().refresh_requests, refreshes + 1);
    let err = stderr_of(&out);
    assert!(
        err.lines()
            .any(|l| l.starts_with("warning: refresh:") && l.contains("aud")),
        "the odd id_token is reported: {err}"
    );

    // The refreshed tokens were stored, with the identity verified at launch.
    let shown: Value = serde_json::from_str(&stdout_ok(&smart_in(
        data.path(),
        &["sessions", "show", "--json"],
    )))
    .expect("JSON");
    let identity = shown["identity"].as_str().expect("identity");
    assert!(
        identity.ends_with(&format!(" {}", sub.as_str().expect("sub"))),
        "the identity verified at launch was kept: {shown}"
    );
    assert!(shown["refreshed_at"].is_u64(), "{shown}");
}
