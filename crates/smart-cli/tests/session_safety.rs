//! Stored sessions (issue 12 item 5): `smart launch` stores the session in the sealed SQLite
//! store under the data directory and prints a name; `smart fhir` in a later process finds it
//! with no file argument; `smart sessions list|show|rm|import` manage them; and a session is
//! never lost: a refresh is written (compare-and-swap through the store) before the new token is
//! used, so a command that then fails, loses its stdout or is killed leaves the rotated refresh
//! token in the store, and the next run still works.
//!
//! The sandbox runs in-process with refresh-token rotation and reuse detection (reusing a
//! rotated-out refresh token revokes the grant, as at real servers); the tests that refresh give
//! it one-second access tokens, so every `smart fhir` run after a short pause refreshes first.
//! Each test has its own data directory (`XDG_DATA_HOME`), hence its own store and key.

mod support;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use smart_sandbox::Sandbox;
use support::{runtime, sandbox, smart_command, smart_in, stderr_of, stdout_ok};

/// Longer than an access token's one-second life, so the next command must refresh.
const LET_TOKEN_EXPIRE: Duration = Duration::from_millis(1600);

fn short_lived_sandbox(rt: &tokio::runtime::Runtime) -> Sandbox {
    sandbox(rt, |b| {
        b.access_token_lifetime = Duration::from_secs(1);
        b.rotate_refresh_tokens = true;
    })
}

/// `smart launch --headless --json --show-tokens` as `demo-public` into the store in `data`;
/// returns the printed JSON (with the session's name under `session`).
fn launch(data: &Path, base: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "launch",
        "--iss",
        base,
        "--client-id",
        "demo-public",
        "--redirect-uri",
        "http://127.0.0.1:8765/callback",
        "--scope",
        "launch/patient patient/*.rs offline_access",
        "--headless",
        "--json",
        "--show-tokens",
    ];
    args.extend(extra);
    serde_json::from_str(&stdout_ok(&smart_in(data, &args))).expect("launch JSON")
}

fn name_of(launched: &Value) -> String {
    launched["session"]
        .as_str()
        .expect("the launch printed a session name")
        .to_owned()
}

fn fhir_get(data: &Path, session: Option<&str>, reference: &str) -> Output {
    let mut args = vec!["fhir"];
    if let Some(name) = session {
        args.extend(["--session", name]);
    }
    args.extend(["get", reference]);
    smart_in(data, &args)
}

fn one_line_error(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(out));
    let err = stderr_of(out);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    err
}

#[test]
fn launch_then_fhir_get_in_a_new_process_needs_no_file() {
    let rt = runtime();
    let sandbox = sandbox(&rt, |_| {});
    let data = tempfile::tempdir().expect("tmp");
    let launched = launch(data.path(), &sandbox.fhir_base(), &[]);
    let name = name_of(&launched);
    assert_eq!(name, "demo-public-1", "a short, human name: {launched}");
    assert!(
        launched.get("session_id").is_none(),
        "the session id (a credential) is not printed: {launched}"
    );

    // A new process, no file, no --session: the most recent session.
    let patient: Value =
        serde_json::from_str(&stdout_ok(&fhir_get(data.path(), None, "Patient/pat-1")))
            .expect("JSON");
    assert_eq!(patient["id"], "pat-1");
    // And by name.
    let patient: Value = serde_json::from_str(&stdout_ok(&fhir_get(
        data.path(),
        Some(&name),
        "Patient/pat-1",
    )))
    .expect("JSON");
    assert_eq!(patient["resourceType"], "Patient");

    // The store is where the docs say, private, and holds no token in clear.
    let dir = data.path().join("smart");
    let key = dir.join("sessions.key");
    assert!(dir.join("sessions.db").is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode(&key), 0o600, "the key file");
        assert_eq!(mode(&dir.join("sessions.db")), 0o600, "the database");
        assert_eq!(mode(&dir), 0o700, "the store directory");
    }
    let access = launched["access_token"].as_str().expect("--show-tokens");
    let refresh = launched["refresh_token"].as_str().expect("--show-tokens");
    for entry in std::fs::read_dir(&dir).expect("store directory") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        for secret in [access, refresh] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds a token in clear",
                path.display()
            );
        }
    }
}

#[test]
fn sessions_list_show_and_rm() {
    let rt = runtime();
    let sandbox = sandbox(&rt, |_| {});
    let data = tempfile::tempdir().expect("tmp");
    let first = launch(data.path(), &sandbox.fhir_base(), &[]);
    let second = launch(data.path(), &sandbox.fhir_base(), &["--name", "work"]);
    assert_eq!(name_of(&second), "work");

    let list = stdout_ok(&smart_in(data.path(), &["sessions", "list"]));
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two sessions: {list}");
    assert!(lines[0].starts_with("NAME") && lines[0].contains("STATUS"));
    for (line, name) in lines[1..].iter().zip(["demo-public-1", "work"]) {
        assert!(line.starts_with(name), "{list}");
        assert!(line.contains("demo-public"), "registration: {list}");
        assert!(line.contains(&sandbox.fhir_base()), "FHIR base: {list}");
        assert!(line.contains("pat-1"), "patient: {list}");
        assert!(line.contains("in "), "expiry: {list}");
        assert!(line.trim_end().ends_with("active"), "status: {list}");
    }
    let json: Value = serde_json::from_str(&stdout_ok(&smart_in(
        data.path(),
        &["sessions", "list", "--json"],
    )))
    .expect("JSON");
    assert_eq!(json[1]["name"], "work");
    assert_eq!(json[1]["status"], "active");

    // show: the details, never a token.
    let shown = stdout_ok(&smart_in(data.path(), &["sessions", "show", "work"]));
    assert!(
        shown.contains("pat-1") && shown.contains("demo-public"),
        "{shown}"
    );
    for session in [&first, &second] {
        for token in ["access_token", "refresh_token"] {
            let token = session[token].as_str().expect("token");
            assert!(!shown.contains(token), "show printed a token: {shown}");
        }
    }
    let shown: Value = serde_json::from_str(&stdout_ok(&smart_in(
        data.path(),
        &["sessions", "show", "--json"],
    )))
    .expect("JSON");
    assert_eq!(shown["name"], "work", "the most recent by default");
    assert_eq!(shown["refresh_token"], true);

    // rm: gone from the list, from the store, and `--session` says so in one line.
    let removed = stdout_ok(&smart_in(data.path(), &["sessions", "rm", "work"]));
    assert_eq!(removed.trim(), "removed work");
    let list = stdout_ok(&smart_in(data.path(), &["sessions", "list"]));
    assert!(
        !list.contains("work") && list.contains("demo-public-1"),
        "{list}"
    );
    let err = one_line_error(&fhir_get(data.path(), Some("work"), "Patient/pat-1"));
    assert!(err.contains("no session named `work`"), "{err}");
    // The most recent is now the first one again.
    stdout_ok(&fhir_get(data.path(), None, "Patient/pat-1"));
    let err = one_line_error(&smart_in(data.path(), &["sessions", "rm", "work"]));
    assert!(err.contains("sessions list"), "{err}");
}

#[test]
fn concurrent_launches_keep_every_name() {
    let rt = runtime();
    let sandbox = sandbox(&rt, |_| {});
    let data = tempfile::tempdir().expect("tmp");
    let base = sandbox.fhir_base();
    let names: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| name_of(&launch(data.path(), &base, &[]))))
            .collect();
        runs.into_iter()
            .map(|r| r.join().expect("launch"))
            .collect()
    });
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 4, "four distinct names: {names:?}");
    let list: Value = serde_json::from_str(&stdout_ok(&smart_in(
        data.path(),
        &["sessions", "list", "--json"],
    )))
    .expect("JSON");
    let listed: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    for name in &names {
        assert!(listed.contains(&name.as_str()), "{name} in {listed:?}");
    }
}

/// What `smart launch --save FILE` wrote (format 1), made with the library as the old CLI did.
fn write_format_1_file(rt: &tokio::runtime::Runtime, base: &str, file: &Path) {
    use smart_core::headless::authorize_headless;
    use smart_core::{ClientRegistration, SmartClient, StandaloneLaunch};
    let redirect = "http://127.0.0.1:8765/callback";
    let done = rt.block_on(async {
        let client = smart_adapters::install(SmartClient::builder())
            .registration(
                "cli",
                ClientRegistration::public(base, "demo-public", redirect).with_scopes(
                    smart_core::scope::Scopes::parse("launch/patient patient/*.rs offline_access"),
                ),
            )
            .build()
            .expect("client");
        let request = client
            .begin_standalone_launch(base, StandaloneLaunch::default())
            .await
            .expect("begin");
        let callback = authorize_headless(&**client.http(), &request, redirect)
            .await
            .expect("authorize");
        client.complete_launch(&callback).await.expect("complete")
    });
    let saved = serde_json::json!({
        "format": 1,
        "session_id": done.session_id,
        "session": done.session,
        "client_type": "public",
        "redirect_uri": redirect,
    });
    std::fs::write(file, serde_json::to_vec_pretty(&saved).expect("JSON")).expect("write");
}

#[test]
fn a_format_1_file_is_imported_and_the_file_options_are_retired() {
    let rt = runtime();
    let sandbox = short_lived_sandbox(&rt);
    let data = tempfile::tempdir().expect("tmp");
    let file = data.path().join("session.json");
    let file_arg = file.to_str().expect("path");
    write_format_1_file(&rt, &sandbox.fhir_base(), &file);

    let out = smart_in(data.path(), &["sessions", "import", file_arg]);
    let name = stdout_ok(&out).trim().to_owned();
    assert_eq!(name, "demo-public-1");
    assert!(
        stderr_of(&out).contains("delete the file"),
        "{}",
        stderr_of(&out)
    );

    // The imported session reads, and refreshes through the store (twice: the second refresh
    // spends the refresh token the first one stored; reusing a rotated-out one would fail).
    for _ in 0..2 {
        std::thread::sleep(LET_TOKEN_EXPIRE);
        let refreshes = sandbox.counters().refresh_requests;
        let patient: Value = serde_json::from_str(&stdout_ok(&fhir_get(
            data.path(),
            Some(&name),
            "Patient/pat-1",
        )))
        .expect("JSON");
        assert_eq!(patient["id"], "pat-1");
        assert_eq!(sandbox.counters().refresh_requests, refreshes + 1);
    }

    // The retired file options say where to go, in one line, before any request.
    let before = sandbox.counters();
    let err = one_line_error(&fhir_get(data.path(), Some(file_arg), "Patient/pat-1"));
    assert!(err.contains("smart sessions import"), "{err}");
    let err = one_line_error(&smart_in(
        data.path(),
        &[
            "launch",
            "--iss",
            &sandbox.fhir_base(),
            "--client-id",
            "demo-public",
            "--redirect-uri",
            "http://127.0.0.1:8765/callback",
            "--headless",
            "--save",
            file_arg,
        ],
    ));
    assert!(
        err.contains("--save is retired") && err.contains("smart sessions import"),
        "{err}"
    );
    assert_eq!(sandbox.counters().token_requests, before.token_requests);
    assert_eq!(
        sandbox.counters().authorize_requests,
        before.authorize_requests
    );

    // Not a session file: one line.
    std::fs::write(&file, "{\"format\": 2}").expect("write");
    let err = one_line_error(&smart_in(data.path(), &["sessions", "import", file_arg]));
    assert!(err.contains("not a session file"), "{err}");
}

#[test]
fn killing_smart_fhir_right_after_a_refresh_loses_nothing() {
    let rt = runtime();
    let sandbox = short_lived_sandbox(&rt);
    let data = tempfile::tempdir().expect("tmp");
    let name = name_of(&launch(data.path(), &sandbox.fhir_base(), &[]));

    // The FHIR server now takes a minute to answer: the command refreshes (the token endpoint
    // is not delayed), sends its FHIR request with the new token, and waits.
    sandbox.set_behavior(|b| b.fhir_delay = Some(Duration::from_secs(60)));
    std::thread::sleep(LET_TOKEN_EXPIRE);
    let before = sandbox.counters();
    let mut child = smart_command(&["fhir", "--session", &name, "get", "Patient/pat-1"])
        .env("XDG_DATA_HOME", data.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    // The FHIR request reaching the server means the refresh has been answered and used.
    let deadline = Instant::now() + Duration::from_secs(30);
    while sandbox.counters().fhir_requests == before.fhir_requests {
        assert!(
            Instant::now() < deadline,
            "the command never sent its FHIR request"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        child.try_wait().expect("status"),
        None,
        "the command was still waiting for the FHIR server"
    );
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert_eq!(
        sandbox.counters().refresh_requests,
        before.refresh_requests + 1,
        "the killed command had refreshed (rotating the refresh token)"
    );

    // The next run must refresh with the rotated refresh token: the one it replaced is spent,
    // and spending it again would revoke the grant.
    sandbox.set_behavior(|b| b.fhir_delay = None);
    std::thread::sleep(LET_TOKEN_EXPIRE);
    let patient: Value = serde_json::from_str(&stdout_ok(&fhir_get(
        data.path(),
        Some(&name),
        "Patient/pat-1",
    )))
    .expect("JSON");
    assert_eq!(patient["id"], "pat-1");
    assert_eq!(
        sandbox.counters().refresh_requests,
        before.refresh_requests + 2
    );
    let list = stdout_ok(&smart_in(data.path(), &["sessions", "list"]));
    assert!(list.trim_end().ends_with("active"), "{list}");
}

#[test]
fn a_refreshed_session_survives_a_failing_command_and_a_closed_stdout() {
    let rt = runtime();
    let sandbox = short_lived_sandbox(&rt);
    let data = tempfile::tempdir().expect("tmp");
    launch(data.path(), &sandbox.fhir_base(), &[]);

    std::thread::sleep(LET_TOKEN_EXPIRE);
    let refreshes = sandbox.counters().refresh_requests;
    let out = fhir_get(data.path(), None, "Observation/no-such-observation");
    assert!(one_line_error(&out).contains("404"));
    assert_eq!(sandbox.counters().refresh_requests, refreshes + 1);

    // `| head -c1` that has already exited: the reader is gone before anything is printed.
    std::thread::sleep(LET_TOKEN_EXPIRE);
    let mut child = smart_command(&["fhir", "search", "Observation", "-p", "patient=pat-1"])
        .env("XDG_DATA_HOME", data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(sandbox.counters().refresh_requests, refreshes + 2);

    // Both refreshes were kept: the next run refreshes with the latest token and works.
    std::thread::sleep(LET_TOKEN_EXPIRE);
    stdout_ok(&fhir_get(data.path(), None, "Patient/pat-1"));
    assert_eq!(sandbox.counters().refresh_requests, refreshes + 3);
}

#[test]
fn an_ended_session_says_so_without_asking_the_server() {
    let rt = runtime();
    let sandbox = short_lived_sandbox(&rt);
    let data = tempfile::tempdir().expect("tmp");
    let file = data.path().join("session.json");
    let file_arg = file.to_str().expect("path");
    write_format_1_file(&rt, &sandbox.fhir_base(), &file);
    // Imported twice: two stored sessions holding the same refresh token.
    let first = stdout_ok(&smart_in(data.path(), &["sessions", "import", file_arg]));
    let stale = stdout_ok(&smart_in(
        data.path(),
        &["sessions", "import", file_arg, "--name", "stale"],
    ));
    assert_eq!(stale.trim(), "stale");

    // Rotate the refresh token through the first; `stale` keeps the rotated-out one.
    std::thread::sleep(LET_TOKEN_EXPIRE);
    stdout_ok(&fhir_get(data.path(), Some(first.trim()), "Patient/pat-1"));
    // Spending the rotated-out token: the server refuses (and revokes the grant).
    one_line_error(&fhir_get(data.path(), Some("stale"), "Patient/pat-1"));
    let shown: Value = serde_json::from_str(&stdout_ok(&smart_in(
        data.path(),
        &["sessions", "show", "stale", "--json"],
    )))
    .expect("JSON");
    assert_eq!(shown["status"], "ended", "{shown}");

    // The next run says so at once, without a token or FHIR request.
    let before = sandbox.counters();
    let err = one_line_error(&fhir_get(data.path(), Some("stale"), "Patient/pat-1"));
    assert!(
        err.contains("has ended") && err.contains("smart launch"),
        "{err}"
    );
    let after = sandbox.counters();
    assert_eq!(after.token_requests, before.token_requests);
    assert_eq!(after.fhir_requests, before.fhir_requests);
}

#[test]
fn store_errors_are_one_line() {
    let data = tempfile::tempdir().expect("tmp");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--store", "mysql://127.0.0.1/x", "sessions", "list"],
            "unknown scheme",
        ),
        (
            &[
                "--store",
                "postgres://127.0.0.1:1/nothing-listens-here",
                "sessions",
                "list",
            ],
            "unreachable",
        ),
        (&["fhir", "get", "Patient/pat-1"], "no session in"),
        (&["sessions", "show", "nope"], "no session named `nope`"),
        (
            &[
                "launch",
                "--iss",
                "http://127.0.0.1:9/fhir",
                "--client-id",
                "x",
                "--redirect-uri",
                "http://127.0.0.1:8765/callback",
                "--name",
                "bad name",
            ],
            "session name `bad name` is invalid",
        ),
    ];
    for (args, expected) in cases {
        let err = one_line_error(&smart_in(data.path(), args));
        assert!(err.contains(expected), "{args:?}: {err}");
    }

    // A key that does not open the store: one line naming the problem.
    stdout_ok(&smart_in(data.path(), &["sessions", "list"]));
    let out = smart_command(&["sessions", "list"])
        .env("XDG_DATA_HOME", data.path())
        .env(
            "SMART_STORE_KEY",
            "cli-other:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )
        .output()
        .expect("smart runs");
    // A different key id simply sees its own (empty) list; the same id with other bytes fails.
    stdout_ok(&out);
    let key_file = data.path().join("smart/sessions.key");
    let material = std::fs::read_to_string(&key_file).expect("key file");
    let id = material.split(':').next().expect("key id");
    let out = smart_command(&["sessions", "list"])
        .env("XDG_DATA_HOME", data.path())
        .env(
            "SMART_STORE_KEY",
            format!("{id}:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        )
        .output()
        .expect("smart runs");
    let err = one_line_error(&out);
    assert!(err.contains("does not open"), "{err}");

    // A key file others can read is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = one_line_error(&smart_in(data.path(), &["sessions", "list"]));
        assert!(err.contains("chmod 600"), "{err}");
    }
}

#[test]
fn server_text_in_a_stored_session_is_escaped_and_files_are_bounded() {
    let rt = runtime();
    let sandbox = sandbox(&rt, |_| {});
    let data = tempfile::tempdir().expect("tmp");
    let file = data.path().join("session.json");
    let file_arg = file.to_str().expect("path");
    write_format_1_file(&rt, &sandbox.fhir_base(), &file);
    // A server that put terminal controls in the patient id.
    let mut saved: Value =
        serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("JSON");
    saved["session"]["context"]["patient"] =
        Value::String("pat-1\u{1b}]0;owned\u{7}\u{1b}[2J".into());
    std::fs::write(&file, serde_json::to_vec(&saved).expect("JSON")).expect("write");
    stdout_ok(&smart_in(data.path(), &["sessions", "import", file_arg]));
    for args in [&["sessions", "list"][..], &["sessions", "show"][..]] {
        let out = smart_in(data.path(), args);
        let text = stdout_ok(&out);
        assert!(text.contains("pat-1"), "{args:?}: {text}");
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{args:?} printed raw controls: {text:?}"
        );
    }

    // A file far larger than any session is refused before it is parsed.
    std::fs::write(&file, vec![b' '; 2 * 1024 * 1024]).expect("write");
    let err = one_line_error(&smart_in(data.path(), &["sessions", "import", file_arg]));
    assert!(err.contains("larger than a session file can be"), "{err}");
}

/// PostgreSQL for the `--store` test: `SMART_TEST_POSTGRES_URL`, or the local default the store
/// trials use. Unreachable is a failure, not a skip.
fn postgres_url() -> String {
    std::env::var("SMART_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

#[test]
fn the_store_flag_puts_sessions_in_postgres() {
    let rt = runtime();
    let sandbox = sandbox(&rt, |_| {});
    let data = tempfile::tempdir().expect("tmp");
    let url = postgres_url();
    // A key of its own (a fresh key id), hence an index of its own in the shared database.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .subsec_nanos();
    let key = smart_store::Keyring::generate_material(&format!("t{}-{nanos}", std::process::id()))
        .expect("key");
    let run = |args: &[&str]| {
        let mut full = vec!["--store", url.as_str()];
        full.extend(args);
        smart_command(&full)
            .env("XDG_DATA_HOME", data.path())
            .env("SMART_STORE_KEY", &key)
            .output()
            .expect("smart runs")
    };
    let launched: Value = serde_json::from_str(&stdout_ok(&run(&[
        "launch",
        "--iss",
        &sandbox.fhir_base(),
        "--client-id",
        "demo-public",
        "--redirect-uri",
        "http://127.0.0.1:8765/callback",
        "--headless",
        "--json",
    ])))
    .expect("JSON");
    let name = name_of(&launched);
    let patient: Value =
        serde_json::from_str(&stdout_ok(&run(&["fhir", "get", "Patient/pat-1"]))).expect("JSON");
    assert_eq!(patient["id"], "pat-1");
    let list: Value =
        serde_json::from_str(&stdout_ok(&run(&["sessions", "list", "--json"]))).expect("JSON");
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["name"], name.as_str());
    // Nothing went to the SQLite default, and with the key in SMART_STORE_KEY no key file was
    // made either.
    assert!(!data.path().join("smart").exists());
    stdout_ok(&run(&["sessions", "rm", &name]));
}
