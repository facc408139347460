//! `smart keys generate`, `smart jwks serve`, `smart backend token`, `smart launch --key` and
//! `smart introspect`, run as processes against a `smart sandbox` process.

mod support;

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

/// Starts `smart <args>` and returns it with the first stdout line that starts with `prefix`.
fn spawn_until(args: &[&str], prefix: &str) -> (Process, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut found = String::new();
    for line in lines.by_ref() {
        let line = line.expect("line");
        if line.trim_start().starts_with(prefix) {
            found = line.trim().to_owned();
            break;
        }
    }
    assert!(
        !found.is_empty(),
        "`smart {args:?}` printed a line starting with {prefix}"
    );
    std::thread::spawn(move || for _ in lines {});
    (Process(child), found)
}

fn smart(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        // Launches store their sessions: in this test process's own data directory.
        .env("XDG_DATA_HOME", support::data_home())
        .env_remove("SMART_STORE_KEY")
        .env_remove("SMART_STORE_URL")
        .env_remove("SMART_CLIENT_SECRET")
        .env_remove("SMART_TOKEN")
        .output()
        .expect("smart runs")
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
fn generated_keys_work_for_backend_launch_and_introspection() {
    let dir = tempfile::tempdir().expect("tmp");
    let keys = dir.path().join("keys");
    let keys_str = keys.to_str().expect("path");

    // Keys: ES384 for the backend client (served at a JWKS URL), RS384 for the launch client.
    let out = smart(&["keys", "generate", "--alg", "ES384", "--out", keys_str]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pem_path = keys.join("private-key.pem");
    let jwks: Value =
        serde_json::from_str(&std::fs::read_to_string(keys.join("jwks.json")).expect("jwks"))
            .expect("json");
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-384");
    assert!(key.get("d").is_none(), "the JWKS has no private members");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&pem_path)
            .expect("pem")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the private key is readable by its owner only"
        );
    }
    let again = smart(&["keys", "generate", "--alg", "ES384", "--out", keys_str]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "existing keys are not overwritten without --force"
    );

    let rsa_dir = dir.path().join("rsa");
    let out = smart(&[
        "keys",
        "generate",
        "--alg",
        "RS384",
        "--out",
        rsa_dir.to_str().expect("path"),
    ]);
    assert!(out.status.success());
    let rsa_jwks = std::fs::read_to_string(rsa_dir.join("jwks.json")).expect("jwks");

    // Host the backend JWKS, register both clients in a sandbox clients file.
    let (_jwks_server, line) = spawn_until(
        &[
            "jwks",
            "serve",
            "--jwks",
            keys.join("jwks.json").to_str().expect("p"),
        ],
        "serving",
    );
    let jwks_url = line.rsplit(' ').next().expect("url").to_owned();
    assert!(
        jwks_url.starts_with("http://127.0.0.1:") && jwks_url.ends_with("/jwks.json"),
        "{jwks_url}"
    );
    std::fs::write(dir.path().join("launch-jwks.json"), &rsa_jwks).expect("write");
    let clients = dir.path().join("clients.toml");
    std::fs::write(
        &clients,
        format!(
            r#"
include_demo_clients = true

[[clients]]
client_id = "exporter"
type = "confidential-asymmetric"
jwks_url = "{jwks_url}"
grant_types = ["client_credentials"]
scopes = "system/Patient.rs system/Observation.rs"

[[clients]]
client_id = "keyed-app"
type = "confidential-asymmetric"
jwks_file = "launch-jwks.json"
redirect_uris = ["http://127.0.0.1:8765/callback"]
scopes = "launch/patient patient/*.rs openid fhirUser offline_access"
[clients.context]
user = "Practitioner/prac-1"
"#
        ),
    )
    .expect("write clients");
    let (_sandbox, line) = spawn_until(
        &[
            "sandbox",
            "--port",
            "0",
            "--clients",
            clients.to_str().expect("p"),
        ],
        "FHIR base",
    );
    let base = line.rsplit(' ').next().expect("base").to_owned();

    // Backend token.
    let token = ok_json(&smart(&[
        "backend",
        "token",
        "--iss",
        &base,
        "--client-id",
        "exporter",
        "--key",
        pem_path.to_str().expect("p"),
        "--scope",
        "system/Patient.rs",
        "--json",
        "--show-tokens",
    ]));
    assert_eq!(token["scope"], "system/Patient.rs");
    assert!(token["expires_in"].as_u64().expect("expires_in") > 0);
    let access_token = token["access_token"].as_str().expect("token").to_owned();

    // Launch with a key: prints the verified identity.
    let launched = ok_json(&smart(&[
        "launch",
        "--iss",
        &base,
        "--client-id",
        "keyed-app",
        "--key",
        rsa_dir.join("private-key.pem").to_str().expect("p"),
        "--redirect-uri",
        "http://127.0.0.1:8765/callback",
        "--scope",
        "launch/patient patient/*.rs openid fhirUser",
        "--headless",
        "--json",
    ]));
    assert_eq!(launched["identity"]["fhirUser_type"], "Practitioner");
    assert!(
        launched["identity"]["fhirUser"]
            .as_str()
            .expect("fhirUser")
            .ends_with("/Practitioner/prac-1")
    );

    // The stored session of an asymmetric client: `smart fhir` needs the key again (the store
    // never holds one), through the same credential flags as `launch`.
    let session = launched["session"].as_str().expect("session name");
    let out = smart(&["fhir", "--session", session, "get", "Patient/pat-1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pass --key") && err.trim().lines().count() == 1,
        "{err}"
    );
    let patient = ok_json(&smart(&[
        "fhir",
        "--session",
        session,
        "--key",
        rsa_dir.join("private-key.pem").to_str().expect("p"),
        "get",
        "Patient/pat-1",
    ]));
    assert_eq!(patient["id"], "pat-1");

    // Introspect the backend token, authenticating as the backend client (another assertion).
    let info = ok_json(&smart(&[
        "introspect",
        "--iss",
        &base,
        "--token",
        &access_token,
        "--client-id",
        "exporter",
        "--key",
        pem_path.to_str().expect("p"),
        "--json",
    ]));
    assert_eq!(info["active"], true);
    assert_eq!(info["client_id"], "exporter");
    let info = ok_json(&smart(&[
        "introspect",
        "--iss",
        &base,
        "--token",
        "nonsense-token",
        "--bearer",
        &access_token,
        "--json",
    ]));
    assert_eq!(info["active"], false);
}

#[test]
fn key_errors_are_one_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = smart(&[
        "keys",
        "generate",
        "--alg",
        "HS256",
        "--out",
        dir.path().to_str().expect("p"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("use RS384 or ES384") && err.trim().lines().count() == 1,
        "{err}"
    );
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a key").expect("write");
    let out = smart(&[
        "backend",
        "token",
        "--iss",
        "http://127.0.0.1:1/fhir",
        "--client-id",
        "x",
        "--key",
        bogus.to_str().expect("p"),
        "--scope",
        "system/*.rs",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bogus.pem") && err.trim().lines().count() == 1,
        "{err}"
    );
    // The shared credential group: a missing flag is named, in one line.
    for (args, expected) in [
        (
            &[
                "backend",
                "token",
                "--iss",
                "http://127.0.0.1:1/fhir",
                "--client-id",
                "x",
                "--scope",
                "system/*.rs",
            ][..],
            "--key is missing",
        ),
        (
            &[
                "backend",
                "token",
                "--iss",
                "http://127.0.0.1:1/fhir",
                "--key",
                bogus.to_str().expect("p"),
                "--scope",
                "system/*.rs",
            ][..],
            "--client-id is missing",
        ),
        (
            &[
                "fhir",
                "--iss",
                "http://127.0.0.1:1/fhir",
                "--client-id",
                "x",
                "--scope",
                "system/*.rs",
                "get",
                "Patient/pat-1",
            ][..],
            "--key is missing",
        ),
    ] {
        let out = smart(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(expected) && err.trim().lines().count() == 1,
            "{args:?}: {err}"
        );
    }
}
