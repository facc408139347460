//! `smart probe`, run as an integrator would: against the strict sandbox it passes and writes
//! the three reports; against a sandbox with a defect switch on it reports that check failed
//! and exits 1; flag mistakes are one-line errors.

mod support;

use serde_json::Value;
use smart_conformance::probe::{Credential, ProbeTarget, sandbox_profiles, start_probe_sandbox};
use smart_sandbox::{Behavior, Sandbox, VendorProfile};
use support::{runtime, smart, smart_command, stderr_of};

/// A probe sandbox (generic profile) with `behavior`, and its target.
fn probe_sandbox(rt: &tokio::runtime::Runtime, behavior: Behavior) -> (Sandbox, ProbeTarget) {
    let profile = VendorProfile::builtin("generic").expect("generic profile");
    rt.block_on(start_probe_sandbox(profile, behavior))
        .expect("sandbox starts")
}

/// Runs `smart probe` against `target` with its three clients, writing reports to `out`.
fn run_probe(
    target: &ProbeTarget,
    key_file: &std::path::Path,
    out: &std::path::Path,
) -> std::process::Output {
    let Credential::Secret(secret) = &target.app.credential else {
        panic!("the probe sandbox's app is symmetric");
    };
    let other = target.other_app.as_ref().expect("a second app");
    let backend = target.backend.as_ref().expect("a backend client");
    smart_command(&[
        "probe",
        &target.fhir_base,
        "--client-id",
        &target.app.client_id,
        "--redirect-uri",
        &target.app.redirect_uri,
        "--other-client-id",
        &other.client_id,
        "--other-redirect-uri",
        &other.redirect_uri,
        "--backend-client-id",
        &backend.client_id,
        "--backend-key",
        key_file.to_str().expect("utf-8 path"),
        "--backend-scope",
        &backend.scopes,
        "--scope",
        &target.scopes,
        "--format",
        "json",
        "--format",
        "junit",
        "--format",
        "markdown",
        "--out",
        out.to_str().expect("utf-8 path"),
    ])
    .env("SMART_CLIENT_SECRET", secret)
    .output()
    .expect("smart runs")
}

fn write_key(dir: &std::path::Path, target: &ProbeTarget) -> std::path::PathBuf {
    let path = dir.join("backend.pem");
    let key = &target.backend.as_ref().expect("backend").key;
    std::fs::write(&path, key.to_pkcs8_pem().as_bytes()).expect("key written");
    path
}

fn json_report(out: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(out.join("conformance.json")).expect("JSON report");
    serde_json::from_str::<Value>(&text)
        .expect("JSON")
        .as_array()
        .expect("an array")
        .clone()
}

fn status_of<'a>(rows: &'a [Value], id: &str) -> &'a str {
    rows.iter()
        .find(|r| r["id"] == id)
        .and_then(|r| r["status"].as_str())
        .unwrap_or("missing")
}

#[test]
fn probe_passes_the_strict_sandbox_in_every_profile_and_writes_three_reports() {
    let rt = runtime();
    for (name, profile) in sandbox_profiles() {
        let (sandbox, target) = rt
            .block_on(start_probe_sandbox(profile, Behavior::default()))
            .expect("sandbox starts");
        let dir = tempfile::tempdir().expect("tempdir");
        let key = write_key(dir.path(), &target);
        let out_dir = dir.path().join("reports");
        let out = run_probe(&target, &key, &out_dir);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{name}: stderr: {}\n{stdout}",
            stderr_of(&out)
        );
        assert!(stdout.contains("PASS:"), "{name}: {stdout}");
        let rows = json_report(&out_dir);
        assert_eq!(rows.len(), smart_conformance::probe::checks::ALL.len());
        for row in &rows {
            for key in ["id", "title", "reference", "level", "status"] {
                assert!(row.get(key).is_some(), "{key} missing in {row}");
            }
            assert!(
                !(row["level"] == "SHALL" && row["status"] == "fail"),
                "{name}: {row}"
            );
        }
        for id in ["S-4.1", "S-4.2", "S-6.3", "S-8.3", "S-11.4", "S-13.5"] {
            assert_eq!(status_of(&rows, id), "pass", "{name} {id}\n{stdout}");
        }
        let junit = std::fs::read_to_string(out_dir.join("conformance.junit.xml")).expect("JUnit");
        assert!(!junit.contains("<failure"), "{name}: {junit}");
        let md = std::fs::read_to_string(out_dir.join("conformance.md")).expect("Markdown");
        assert!(md.contains("**PASS**"), "{name}: {md}");
        rt.block_on(sandbox.shutdown());
    }
}

#[test]
fn probe_reports_a_defect_and_exits_1() {
    let rt = runtime();
    let behavior = Behavior {
        accept_plain_pkce: true,
        ..Behavior::default()
    };
    let (sandbox, target) = probe_sandbox(&rt, behavior);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = write_key(dir.path(), &target);
    let out_dir = dir.path().join("reports");
    let out = run_probe(&target, &key, &out_dir);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let stderr = stderr_of(&out);
    assert!(stderr.contains("1 SHALL check(s) failed"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("S-4.2") && l.contains("fail")),
        "{stdout}"
    );
    let rows = json_report(&out_dir);
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| r["status"] == "fail")
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(failed, ["S-4.2"], "{stdout}");
    rt.block_on(sandbox.shutdown());
}

#[test]
fn probe_flag_mistakes_are_one_line_errors() {
    let out = smart(&[
        "probe",
        "http://127.0.0.1:9/fhir",
        "--client-id",
        "x",
        "--redirect-uri",
        "http://127.0.0.1:9/cb",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = stderr_of(&out);
    assert!(stderr.contains("--format needs --out DIR"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    let out = smart(&[
        "probe",
        "http://ehr.example/fhir",
        "--client-id",
        "x",
        "--redirect-uri",
        "http://127.0.0.1:9/cb",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = stderr_of(&out);
    assert!(stderr.contains("https"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}
