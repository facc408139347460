//! The `smart-conformance` binary as CI runs it: reports in every format under `--out`, the exit
//! code, and one-line usage errors.

use std::process::Command;

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_smart-conformance"))
}

#[test]
fn writes_the_three_reports_with_one_json_object_per_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = binary()
        .args(["--check", "C-7.2", "--check", "C-10", "--quiet"])
        .args([
            "--format", "json", "--format", "junit", "--format", "markdown",
        ])
        .arg("--out")
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = std::fs::read_to_string(dir.path().join("conformance.json")).expect("json");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).expect("a JSON array");
    assert_eq!(rows.len(), 2);
    for row in &rows {
        for key in ["id", "title", "reference", "level", "status"] {
            assert!(row.get(key).is_some(), "{key} missing in {row}");
        }
        assert_eq!(row["status"], "pass", "{row}");
    }
    let junit = std::fs::read_to_string(dir.path().join("conformance.junit.xml")).expect("junit");
    assert!(junit.contains("<testcase") && junit.contains("C-7.2"));
    let md = std::fs::read_to_string(dir.path().join("conformance.md")).expect("markdown");
    assert!(md.contains("**PASS**") && md.contains("| C-10 |"));
}

#[test]
fn a_bad_flag_is_one_line_and_exit_code_2() {
    let out = binary().args(["--format", "pdf"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("use json, junit or markdown"), "{err}");
}

#[test]
fn list_names_every_client_check() {
    let out = binary().arg("--list").output().expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for c in smart_conformance::client_checks::all() {
        assert!(text.contains(c.def.id), "{} missing from --list", c.def.id);
    }
}
