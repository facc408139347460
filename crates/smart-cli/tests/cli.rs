//! The `smart` binary, run as a user would: a `smart sandbox` process, `smart launch --headless`
//! processes against it, `smart discover`, `smart demo`, and the one-line errors.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_smart");

/// A `smart sandbox --port 0` child process, killed on drop.
struct SandboxProcess {
    child: Child,
    base: String,
    addr: String,
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sandbox(extra: &[&str]) -> SandboxProcess {
    let mut child = Command::new(BIN)
        .args(["sandbox", "--port", "0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("smart sandbox starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut base = String::new();
    let mut addr = String::new();
    for line in lines.by_ref() {
        let line = line.expect("line");
        if let Some(rest) = line.strip_prefix("smart sandbox listening on http://") {
            addr = rest.trim().to_owned();
        }
        if let Some(rest) = line.trim().strip_prefix("FHIR base (iss): ") {
            base = rest.trim().to_owned();
        }
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    assert!(
        !base.is_empty() && !addr.is_empty(),
        "the sandbox printed its address"
    );
    std::thread::spawn(move || for _ in lines {});
    SandboxProcess { child, base, addr }
}

fn smart(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        // Launches store their sessions: in this test process's own data directory.
        .env("XDG_DATA_HOME", support::data_home())
        .env_remove("SMART_STORE_KEY")
        .env_remove("SMART_STORE_URL")
        .env_remove("SMART_CLIENT_SECRET")
        .env_remove("RUST_LOG")
        .output()
        .expect("smart runs")
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

fn launch_args<'a>(base: &'a str, client_id: &'a str) -> Vec<&'a str> {
    vec![
        "launch",
        "--iss",
        base,
        "--client-id",
        client_id,
        "--redirect-uri",
        "http://127.0.0.1:8765/callback",
        "--scope",
        "launch/patient patient/*.rs offline_access",
        "--headless",
        "--json",
    ]
}

fn issue_launch(addr: &str, client_id: &str, patient: &str) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let body: Value = reqwest::Client::new()
            .post(format!("http://{addr}/sandbox/launch"))
            .json(&serde_json::json!({"client_id": client_id, "patient": patient}))
            .send()
            .await
            .expect("sandbox answers")
            .json()
            .await
            .expect("json");
        body["launch"].as_str().expect("launch token").to_owned()
    })
}

#[test]
fn headless_launches_against_a_running_sandbox() {
    let sandbox = start_sandbox(&[]);
    let base = sandbox.base.as_str();

    // Standalone, public client.
    let out = json_of(&smart(&launch_args(base, "demo-public")));
    assert_eq!(out["context"]["patient"], "pat-1");
    assert_eq!(out["launch"], "standalone");
    assert_eq!(out["scopes"]["dropped"], "");
    assert_eq!(
        out["access_token"], "[redacted]",
        "tokens are redacted by default"
    );
    assert_eq!(out["refresh_token"], "[redacted]");

    // Standalone, symmetric client, tokens shown on request.
    let mut args = launch_args(base, "demo-confidential");
    args.extend(["--client-secret", "demo-secret", "--show-tokens"]);
    let out = json_of(&smart(&args));
    assert_eq!(out["client_id"], "demo-confidential");
    let token = out["access_token"].as_str().expect("token");
    assert!(token != "[redacted]" && token.len() >= 20);

    // EHR launches for both client types.
    for (client_id, secret) in [
        ("demo-public", None),
        ("demo-confidential", Some("demo-secret")),
    ] {
        let launch = issue_launch(&sandbox.addr, client_id, "pat-5");
        let mut args = launch_args(base, client_id);
        args.extend(["--launch", launch.as_str()]);
        if let Some(secret) = secret {
            args.extend(["--client-secret", secret]);
        }
        let out = json_of(&smart(&args));
        assert_eq!(out["launch"], "ehr", "{client_id}");
        assert_eq!(out["context"]["patient"], "pat-5", "{client_id}");
        assert_eq!(out["context"]["need_patient_banner"], true, "{client_id}");
        assert!(
            out["scopes"]["requested"]
                .as_str()
                .expect("scopes")
                .starts_with("launch"),
            "{client_id}"
        );
    }

    // Human output lists granted and dropped scopes and the expiry.
    let mut args = launch_args(base, "demo-public");
    args.retain(|a| *a != "--json");
    args[8] = "launch/patient patient/*.rs system/*.rs";
    let out = smart(&args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("granted        launch/patient patient/*.rs"),
        "{text}"
    );
    assert!(text.contains("dropped        system/*.rs"), "{text}");
    assert!(text.contains("expires in"), "{text}");
}

#[test]
fn wrong_secret_and_denied_launches_fail_with_one_line() {
    let sandbox = start_sandbox(&[]);
    let mut args = launch_args(&sandbox.base, "demo-confidential");
    args.extend(["--client-secret", "not-the-secret"]);
    let out = smart(&args);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("invalid_client"),
        "{err}"
    );
    assert!(!err.contains("not-the-secret"));
}

#[test]
fn clients_file_and_access_denied() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("clients.toml");
    std::fs::write(
        &file,
        r#"
[[clients]]
client_id = "shy-app"
type = "public"
redirect_uris = ["http://127.0.0.1:9999/cb"]
scopes = "launch/patient patient/*.rs"
[clients.context]
approve = false
"#,
    )
    .expect("write");
    let sandbox = start_sandbox(&["--clients", file.to_str().expect("path")]);
    let out = smart(&[
        "launch",
        "--iss",
        &sandbox.base,
        "--client-id",
        "shy-app",
        "--redirect-uri",
        "http://127.0.0.1:9999/cb",
        "--scope",
        "launch/patient patient/*.rs",
        "--headless",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("access_denied"), "{err}");
}

#[test]
fn discover_reports_source_and_endpoints() {
    let sandbox = start_sandbox(&[]);
    let out = json_of(&smart(&["discover", &sandbox.base, "--json"]));
    assert_eq!(out["source"]["source"], "well_known");
    assert_eq!(
        out["configuration"]["token_endpoint"],
        format!("http://{}/auth/token", sandbox.addr)
    );
    let text = String::from_utf8_lossy(&smart(&["discover", &sandbox.base]).stdout).to_string();
    assert!(
        text.contains("launch-ehr") && text.contains("token_endpoint"),
        "{text}"
    );
}

#[test]
fn demo_runs_both_launches_a_read_and_a_refresh() {
    let out = smart(&["demo"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Patient/pat-1: Amelia Rose Rivera"), "{text}");
    assert!(text.contains("Patient/pat-2:"), "{text}");
    assert!(
        text.contains("granted        launch/patient patient/*.rs offline_access"),
        "{text}"
    );
    assert!(text.contains("new access token issued: true"), "{text}");
    assert!(text.contains("Done:"), "{text}");
}

#[test]
fn bad_user_input_gets_a_one_line_fix() {
    let cases: [(&[&str], &str); 4] = [
        (&["discover", "not a url"], "not a valid URL"),
        (&["discover", "http://ehr.example.org/fhir"], "https://"),
        (
            &[
                "launch",
                "--iss",
                "http://ehr.example.org/fhir",
                "--client-id",
                "a",
                "--redirect-uri",
                "https://a/cb",
                "--headless",
            ],
            "use https://",
        ),
        (
            &["sandbox", "--clients", "/nonexistent/clients.toml"],
            "cannot read the clients file",
        ),
    ];
    for (args, expected) in cases {
        let out = smart(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[test]
fn fhir_commands_with_a_stored_session() {
    let sandbox = start_sandbox(&[]);
    let mut args = launch_args(&sandbox.base, "demo-public");
    args.extend(["--name", "cli-fhir-commands"]);
    let launched = json_of(&smart(&args));
    assert_eq!(launched["session"], "cli-fhir-commands");
    let session_str = "cli-fhir-commands";

    let patient = json_of(&smart(&[
        "fhir",
        "--session",
        session_str,
        "get",
        "Patient/pat-1",
    ]));
    assert_eq!(patient["resourceType"], "Patient");
    assert_eq!(patient["id"], "pat-1");

    let found = json_of(&smart(&[
        "fhir",
        "--session",
        session_str,
        "search",
        "Observation",
        "-p",
        "patient=pat-1",
        "-p",
        "category=laboratory",
        "--limit",
        "5",
    ]));
    let found = found.as_array().expect("array");
    assert_eq!(found.len(), 5);
    assert!(found.iter().all(|o| o["resourceType"] == "Observation"));

    // A patient-scoped session cannot read another patient: a one-line error, exit 1.
    let out = smart(&["fhir", "--session", session_str, "get", "Patient/pat-2"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("403") || err.to_lowercase().contains("forbidden"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn demo_and_discover_with_vendor_profiles() {
    // Every adapter this build includes that recognises its servers (vendor-specific builds
    // include fewer): against its own sandbox profile, detection picks it.
    let recognising = smart_adapters::descriptors()
        .iter()
        .filter(|d| d.recognition != smart_core::descriptor::Recognition::Fallback);
    for profile in recognising.map(|d| d.name) {
        let out = smart(&["demo", "--profile", profile]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{profile}: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains(&format!("adapter: {profile} (")),
            "{profile}: {text}"
        );
        assert!(text.contains("Done:"), "{profile}: {text}");

        let sandbox = start_sandbox(&["--profile", profile]);
        let text = String::from_utf8_lossy(&smart(&["discover", &sandbox.base]).stdout).to_string();
        assert!(
            text.contains(&format!("adapter                   {profile} (")),
            "{profile}: {text}"
        );
    }
}

#[test]
fn adapter_options_flag_reaches_the_epic_adapter() {
    // The single-adapter builds (`cargo xtask single-adapter cerner`) have no Epic adapter to
    // configure; every build with it runs this test.
    if !smart_adapters::descriptors()
        .iter()
        .any(|d| d.name == "epic")
    {
        return;
    }
    // In-process, so that the test can ask the sandbox which Epic-Client-ID headers arrived
    // (the Epic profile checks the header names a registered client).
    let rt = support::runtime();
    let profile = match smart_adapters::descriptor("epic")
        .expect("the Epic adapter")
        .sandbox_profile
    {
        smart_core::descriptor::SandboxProfile::Toml(text) => {
            smart_sandbox::VendorProfile::from_toml_str(text)
        }
        smart_core::descriptor::SandboxProfile::Builtin(name) => {
            smart_sandbox::VendorProfile::builtin(name)
        }
        other => panic!("a sandbox profile kind this test does not know: {other:?}"),
    }
    .expect("the Epic profile");
    let sandbox = rt
        .block_on(smart_sandbox::Sandbox::start(
            smart_sandbox::SandboxConfig {
                profile,
                ..smart_sandbox::SandboxConfig::default()
            },
        ))
        .expect("sandbox");
    let base = sandbox.fhir_base();

    // Without the option no header is sent.
    let out = json_of(&smart(&launch_args(&base, "demo-public")));
    assert_eq!(out["adapter"], "epic", "{out}");
    assert!(
        sandbox.client_id_headers_seen().is_empty(),
        "{:?}",
        sandbox.client_id_headers_seen()
    );

    let mut args = launch_args(&base, "demo-public");
    args.extend(["--adapter-option", "client_id_header=demo-public"]);
    let out = json_of(&smart(&args));
    assert_eq!(out["launch"], "standalone");
    assert_eq!(out["adapter"], "epic", "{out}");
    let seen = sandbox.client_id_headers_seen();
    assert!(
        seen.iter().any(
            |(endpoint, value)| *endpoint == smart_sandbox::Endpoint::Discovery
                && value == "demo-public"
        ),
        "Epic-Client-ID: demo-public reached discovery: {seen:?}"
    );
    assert!(
        seen.iter().all(|(_, value)| value == "demo-public"),
        "{seen:?}"
    );

    // A misspelt option is refused by Epic's typed options before anything is sent.
    let mut args = launch_args(&base, "demo-public");
    args.extend([
        "--adapter",
        "epic",
        "--adapter-option",
        "client_id_hedaer=x",
    ]);
    let out = smart(&args);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("adapter_options"), "{stderr}");
    assert!(stderr.contains("client_id_hedaer"), "{stderr}");
}

#[test]
fn help_lists_the_registered_adapters_and_profiles() {
    let descriptors = smart_adapters::descriptors();
    assert!(!descriptors.is_empty());
    let launch = smart(&["launch", "--help"]);
    assert!(launch.status.success());
    let launch = String::from_utf8_lossy(&launch.stdout);
    for command in [vec!["demo", "--help"], vec!["sandbox", "--help"]] {
        let out = smart(&command);
        assert!(out.status.success(), "{command:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        for d in descriptors {
            assert!(
                text.contains(d.name),
                "{command:?} lists {}: {text}",
                d.name
            );
        }
    }
    for d in descriptors {
        assert!(
            launch.contains(d.name) && launch.contains(d.vendor),
            "launch --help lists {} ({}): {launch}",
            d.name,
            d.vendor
        );
    }
    assert!(launch.contains("auto"), "{launch}");

    // A name outside the registry is refused before anything runs, listing the valid ones.
    let out = smart(&["demo", "--profile", "no-such-vendor"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-vendor") && err.contains(descriptors[0].name),
        "{err}"
    );
}
