//! Acceptance test of issue 9: two widely used SMART clients that nobody here
//! wrote, the JS `fhirclient` (npm, 2.6.x) and the Python `fhirclient`
//! (PyPI, 4.4.x), complete standalone and EHR launches, as public and as
//! confidential clients, each with a read, a search and a refresh, against
//! the sandbox in every built-in profile.
//!
//! The packages are installed from the registries into
//! `target/peer-clients/` when missing (later runs reuse them). Node and
//! Python 3 with pip must be on the machine; without them the test fails with
//! a message saying what to install, it never skips.
//!
//! Each cell runs a driver script (`tests/peers/`) that uses the package as
//! an app would and plays the browser itself; the script reports which steps
//! completed. Every cell is printed before the test asserts, so a failure
//! shows exactly which cells pass.

#![allow(missing_docs, unreachable_pub, clippy::unwrap_used)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::time::Duration;

use serde_json::Value;
use smart_sandbox::{
    ClientAuth, ClientRegistration, DEMO_SECRET, Sandbox, SandboxConfig, VendorProfile,
};

/// The package versions this test pins (the ones the issue was found with).
const JS_PACKAGE: &str = "fhirclient@2.6";
const PY_PACKAGE: &str = "fhirclient==4.4.*";

/// User-level scopes every profile grants (Cerner supports no wildcards and
/// no `launch/patient`); the peers add `launch` for an EHR launch.
const SCOPE: &str = "openid fhirUser offline_access user/Patient.rs user/Observation.rs";

/// Every step a complete cell reports.
const ALL_STEPS: [&str; 5] = ["launch", "read", "search", "refresh", "read-after-refresh"];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Peer {
    Js,
    Python,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Launch {
    Standalone,
    Ehr,
}

/// `target/peer-clients`, next to the test binary's profile directory (this
/// follows `CARGO_TARGET_DIR`).
fn install_root() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<binary>
    let target = exe
        .ancestors()
        .nth(3)
        .expect("the test binary lives in target/<profile>/deps");
    target.join("peer-clients")
}

fn require_tool(program: &str, version_arg: &str, hint: &str) {
    let ok = StdCommand::new(program)
        .arg(version_arg)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(ok, "`{program}` is not available: {hint}");
}

/// Runs an install command, failing the test with its output if it fails.
fn install(what: &str, command: &mut StdCommand) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("installing {what}: {e}"));
    assert!(
        output.status.success(),
        "installing {what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Installs both packages under `root` unless they are there already.
/// Each goes to a scratch directory first and is renamed into place when
/// complete, so an interrupted install is never mistaken for a finished one.
fn ensure_installed(root: &Path) -> (PathBuf, PathBuf) {
    // The tests of this binary run in parallel; one installs, the others wait.
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INSTALLING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    std::fs::create_dir_all(root).expect("create target/peer-clients");
    let js = root.join("js");
    if !js.join("node_modules/fhirclient/package.json").is_file() {
        require_tool(
            "node",
            "--version",
            "install Node.js 20 (it runs the JS fhirclient package)",
        );
        require_tool(
            "npm",
            "--version",
            "install npm (it installs the JS fhirclient package from npmjs.com)",
        );
        let scratch = root.join(format!("js.partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        install(
            "the JS fhirclient package with npm",
            StdCommand::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
                .arg(&scratch)
                .arg(JS_PACKAGE),
        );
        let _ = std::fs::remove_dir_all(&js);
        std::fs::rename(&scratch, &js).expect("move the JS install into place");
    }
    let py = root.join("py");
    if !py.join("fhirclient/__init__.py").is_file() {
        require_tool(
            "python3",
            "--version",
            "install Python 3 (it runs the Python fhirclient package)",
        );
        require_tool(
            "python3",
            "-mpip",
            "install pip for python3 (it installs the Python fhirclient package from PyPI)",
        );
        let scratch = root.join(format!("py.partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        install(
            "the Python fhirclient package with pip",
            StdCommand::new("python3")
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-input",
                    "--target",
                ])
                .arg(&scratch)
                .arg(PY_PACKAGE),
        );
        let _ = std::fs::remove_dir_all(&py);
        std::fs::rename(&scratch, &py).expect("move the Python install into place");
    }
    (js, py)
}

/// A free loopback port for the JS app's redirect URI (the driver listens
/// on it; the Python driver never needs to).
///
/// The port comes from below Linux's ephemeral range (32768 and up), so no
/// outgoing connection of this test takes it between the check and the
/// driver's `listen`; a driver that still meets `EADDRINUSE` is retried.
fn free_port() -> u16 {
    use rand::Rng as _;
    let mut rng = rand::thread_rng();
    loop {
        let port = rng.gen_range(20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Registers a client for one cell: the demo registration with its own id
/// and redirect URI.
fn register(sb: &Sandbox, client_id: &str, secret: Option<&str>, redirect_uri: &str) {
    let mut client: ClientRegistration = SandboxConfig::demo_clients()[0].clone();
    client.client_id = client_id.to_owned();
    client.redirect_uris = vec![redirect_uri.to_owned()];
    client.auth = match secret {
        Some(secret) => ClientAuth::ClientSecretBasic {
            secret: secret.to_owned(),
        },
        None => ClientAuth::Public,
    };
    sb.register_client(client);
}

/// `POST /sandbox/launch`, as an EHR's launch button: the launch handle and
/// the `iss` to send the app.
async fn ehr_launch(sb: &Sandbox, client_id: &str) -> (String, String) {
    let resp = reqwest::Client::new()
        .post(format!("http://{}/sandbox/launch", sb.addr()))
        .json(&serde_json::json!({"client_id": client_id, "patient": "pat-1"}))
        .send()
        .await
        .expect("POST /sandbox/launch");
    assert_eq!(resp.status(), 200, "POST /sandbox/launch");
    let body: Value = resp.json().await.expect("launch json");
    (
        body["launch"].as_str().expect("launch").to_owned(),
        body["iss"].as_str().expect("iss").to_owned(),
    )
}

struct Cell {
    label: String,
    done: Vec<String>,
    report: Value,
    expected: Expected,
}

/// How a cell must end.
#[derive(Debug)]
enum Expected {
    /// Every step of [`ALL_STEPS`].
    Complete,
    /// Launch, read and search; then the driver reports that no refresh
    /// token was issued.
    NoRefreshToken,
    /// The code exchange fails with 401 `invalid_client`, the sandbox
    /// explaining that the Basic credentials were not form-encoded.
    LaunchRefused,
}

/// The outcome each cell must have. One Epic behaviour the profile
/// reproduces on purpose (see `profiles/epic.toml`) ends cells early:
///
/// * row 25: public clients get no refresh token. Epic's tutorial says
///   persistent access "is only available if your app is a confidential
///   client", so both peers launch, read and search, then find no refresh
///   token to use. The `epic/public-refresh` column turns that rule off
///   (`refresh_token_requires_confidential = false`) to show that both peers
///   refresh a public Epic grant once one is issued.
///
/// Epic echoes `offline_access` when it issues a refresh token (its
/// tutorial's real R4 token response), which the JS client's `refresh()`
/// requires; so the confidential cells complete.
fn expected_outcome(profile: &str, _peer: Peer, confidential: bool) -> Expected {
    match (profile, confidential) {
        ("epic", false) => Expected::NoRefreshToken,
        _ => Expected::Complete,
    }
}

impl Cell {
    fn passes(&self) -> bool {
        let error = self.report["error"].as_str();
        let steps = |n: usize| {
            self.done
                .iter()
                .map(String::as_str)
                .eq(ALL_STEPS[..n].iter().copied())
        };
        match self.expected {
            Expected::Complete => steps(ALL_STEPS.len()) && error.is_none(),
            Expected::NoRefreshToken => {
                steps(3) && error.is_none() && self.report["refresh"] == "no refresh token issued"
            }
            Expected::LaunchRefused => {
                steps(0)
                    && error.is_some_and(|e| e.contains("401") && e.contains("not form-urlencoded"))
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_cell(
    sb: &Sandbox,
    profile: &str,
    peer: Peer,
    launch: Launch,
    secret: Option<&str>,
    install: &Path,
    drivers: &Path,
) -> Cell {
    let confidential = secret.is_some();
    let kind = if confidential {
        "confidential"
    } else {
        "public"
    };
    let label = format!("{profile:<19} {peer:<6?} {launch:<10?} {kind}");
    let client_id = format!("peer-{peer:?}-{launch:?}-{kind}").to_lowercase();
    let mut attempts = 0;
    let report = loop {
        let redirect_uri = format!("http://127.0.0.1:{}/callback", free_port());
        register(sb, &client_id, secret, &redirect_uri);
        let (launch_handle, iss) = match launch {
            Launch::Ehr => {
                let (handle, iss) = ehr_launch(sb, &client_id).await;
                (Value::String(handle), iss)
            }
            Launch::Standalone => (Value::Null, sb.fhir_base()),
        };
        let config = serde_json::json!({
            "iss": iss,
            "client_id": client_id,
            "secret": secret,
            "redirect_uri": redirect_uri,
            "scope": SCOPE,
            "launch": launch_handle,
            "patient": "pat-1",
        });
        let mut command = match peer {
            Peer::Js => {
                let mut c = tokio::process::Command::new("node");
                c.arg(drivers.join("js_driver.cjs"));
                c
            }
            Peer::Python => {
                let mut c = tokio::process::Command::new("python3");
                c.arg(drivers.join("py_driver.py"));
                c
            }
        };
        command
            .arg(install)
            .arg(config.to_string())
            .kill_on_drop(true);
        let output = tokio::time::timeout(Duration::from_secs(60), command.output())
            .await
            .unwrap_or_else(|_| panic!("{label}: the driver did not finish within 60 s"))
            .unwrap_or_else(|e| panic!("{label}: running the driver: {e}"));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let report: Value = stdout
            .lines()
            .rev()
            .find_map(|line| serde_json::from_str(line).ok())
            .unwrap_or_else(|| {
                serde_json::json!({
                    "done": [],
                    "error": format!(
                        "no report from the driver ({}): {}",
                        output.status,
                        String::from_utf8_lossy(&output.stderr)
                    ),
                })
            });
        attempts += 1;
        let port_taken = report["error"]
            .as_str()
            .is_some_and(|e| e.contains("EADDRINUSE"));
        if !port_taken || attempts == 3 {
            break report;
        }
    };
    let done = report["done"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    // The Basic-encoding test sets its own expectation.
    let expected = expected_outcome(profile, peer, confidential);
    Cell {
        label,
        done,
        report,
        expected,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_and_python_fhirclient_complete_every_launch_in_every_profile() {
    let root = install_root();
    let (js, py) = ensure_installed(&root);
    let drivers = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers");

    let mut cells = Vec::new();
    // (column, built-in profile, public refresh forced on, client types)
    let columns: [(&str, &str, bool, &[Option<&str>]); 4] = [
        ("generic", "generic", false, &[None, Some(DEMO_SECRET)]),
        ("epic", "epic", false, &[None, Some(DEMO_SECRET)]),
        ("epic/public-refresh", "epic", true, &[None]),
        ("cerner", "cerner", false, &[None, Some(DEMO_SECRET)]),
    ];
    for (column, name, public_refresh, secrets) in columns {
        let mut profile = VendorProfile::builtin(name).expect("builtin profile");
        if public_refresh {
            profile.refresh_token_requires_confidential = false;
        }
        let sb = Sandbox::start(SandboxConfig {
            profile,
            ..SandboxConfig::default()
        })
        .await
        .expect("sandbox starts");
        for peer in [Peer::Js, Peer::Python] {
            let install = if peer == Peer::Js { &js } else { &py };
            for launch in [Launch::Standalone, Launch::Ehr] {
                for secret in secrets {
                    cells.push(
                        run_cell(&sb, column, peer, launch, *secret, install, &drivers).await,
                    );
                }
            }
        }
        sb.shutdown().await;
    }

    let (table, failures) = table(&cells);
    assert_eq!(
        cells.len(),
        28,
        "3 profiles x 2 peers x 2 launches x 2 client types, and 4 public Epic cells with public refresh on"
    );
    assert_eq!(failures, 0, "peer-client cells failed:\n{table}");
    println!("{table}");
}

/// The cells as a PASS/FAIL table, and the number of failures.
fn table(cells: &[Cell]) -> (String, usize) {
    let mut table = String::new();
    let mut failures = 0;
    for cell in cells {
        let ok = cell.passes();
        if !ok {
            failures += 1;
        }
        let mut line = format!(
            "{} {}  {}",
            if ok { "PASS" } else { "FAIL" },
            cell.label,
            cell.done.join(" ")
        );
        if let Some(note) = cell.report["refresh"].as_str() {
            let _ = write!(line, "  (refresh: {note})");
        }
        if let Some(error) = cell.report["error"].as_str() {
            let _ = write!(line, "\n      error: {}", error.replace('\n', " | "));
        }
        if !matches!(cell.expected, Expected::Complete) {
            let _ = write!(line, "\n      expected: {:?}", cell.expected);
        }
        table.push_str(&line);
        table.push('\n');
    }
    (table, failures)
}

/// A secret that changes under form-encoding (RFC 6749 §2.3.1).
const AWKWARD_SECRET: &str = "s3cr+t/with=100%";

/// Both peers base64 `client_id:client_secret` without form-encoding it
/// first. With a secret full of `+ / = %` the strict sandbox refuses them
/// and says why; `Behavior::accept_unencoded_basic_credentials` lets them
/// through (standalone launches in the `generic` profile).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unencoded_basic_credentials_of_both_peers_are_named_or_accepted_by_the_switch() {
    let root = install_root();
    let (js, py) = ensure_installed(&root);
    let drivers = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers");
    let mut cells = Vec::new();
    for accept in [false, true] {
        let sb = Sandbox::start(SandboxConfig::default())
            .await
            .expect("sandbox starts");
        sb.set_behavior(|b| b.accept_unencoded_basic_credentials = accept);
        for peer in [Peer::Js, Peer::Python] {
            let install = if peer == Peer::Js { &js } else { &py };
            let mut cell = run_cell(
                &sb,
                "generic",
                peer,
                Launch::Standalone,
                Some(AWKWARD_SECRET),
                install,
                &drivers,
            )
            .await;
            cell.label = format!("{}, accept switch {accept}", cell.label);
            if !accept {
                cell.expected = Expected::LaunchRefused;
            }
            cells.push(cell);
        }
        sb.shutdown().await;
    }
    let (table, failures) = table(&cells);
    assert_eq!(failures, 0, "peer-client cells failed:\n{table}");
    println!("{table}");
}
