//! `smart register` as a process against `smart sandbox --profile epic`: a standalone launch's
//! access token registers a device key (Epic's dynamic client registration), and the new client
//! gets a token with the jwt-bearer grant.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_smart");

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sandbox_base() -> (Process, String) {
    let mut child = Command::new(BIN)
        .args(["sandbox", "--port", "0", "--profile", "epic"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut base = String::new();
    for line in lines.by_ref() {
        let line = line.expect("line");
        if line.trim_start().starts_with("FHIR base") {
            base = line.trim().rsplit(' ').next().expect("base").to_owned();
            break;
        }
    }
    assert!(!base.is_empty(), "the sandbox printed its FHIR base");
    std::thread::spawn(move || for _ in lines {});
    (Process(child), base)
}

fn smart(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove("SMART_INITIAL_TOKEN")
        .env_remove("SMART_TOKEN");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("smart runs")
}

fn ok_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn register_then_jwt_bearer_token_against_the_epic_profile() {
    let (_sandbox, base) = sandbox_base();
    let dir = tempfile::tempdir().expect("tmp");
    let keys = dir.path().join("device");
    let out = smart(
        &[
            "keys",
            "generate",
            "--alg",
            "ES384",
            "--out",
            keys.to_str().expect("path"),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = keys.join("private-key.pem");

    let launched = ok_json(&smart(
        &[
            "launch",
            "--iss",
            &base,
            "--client-id",
            "demo-public",
            "--redirect-uri",
            "http://127.0.0.1:8765/callback",
            "--scope",
            "launch/patient patient/Patient.rs",
            "--headless",
            "--json",
            "--show-tokens",
        ],
        &[],
    ));
    let initial = launched["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();

    let args = [
        "register",
        "--iss",
        &base,
        "--software-id",
        "demo-public",
        "--key",
        key.to_str().expect("path"),
        "--token",
        "--json",
    ];
    let registered = ok_json(&smart(&args, &[("SMART_INITIAL_TOKEN", &initial)]));
    assert!(
        registered["client_id"]
            .as_str()
            .is_some_and(|id| id.starts_with('G')),
        "{registered}"
    );
    assert_eq!(registered["software_id"], "demo-public");
    assert_eq!(registered["token"]["patient"], "pat-1");
    assert!(
        registered["token"].get("access_token").is_none(),
        "the token is printed only with --show-token"
    );

    // The initial access token was spent: one line saying so, exit code 1.
    let again = smart(&args, &[("SMART_INITIAL_TOKEN", &initial)]);
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("invalid_token"), "{stderr}");
}
