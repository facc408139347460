//! `smart fhir --session FILE` never loses a session (issue 8 item 2): the file is rewritten the
//! moment a refresh succeeds, so a command that then fails, is cut off by a closed pipe or is
//! killed leaves the rotated refresh token on disk, and the next run still works. A session the
//! server ended is recorded as ended. Session and key files are private and never written through
//! a symbolic link.
//!
//! The sandbox runs in-process with one-second access tokens and refresh-token rotation (reusing a
//! rotated-out refresh token revokes the grant, as at real servers), so every `smart fhir` run
//! after a short pause refreshes first.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use smart_sandbox::Sandbox;
use support::{runtime, sandbox, smart, smart_command, stderr_of, stdout_ok};

/// Longer than an access token's one-second life, so the next command must refresh.
const LET_TOKEN_EXPIRE: Duration = Duration::from_millis(1600);

fn short_lived_sandbox(rt: &tokio::runtime::Runtime) -> Sandbox {
    sandbox(rt, |b| {
        b.access_token_lifetime = Duration::from_secs(1);
        b.rotate_refresh_tokens = true;
    })
}

fn launch_and_save(base: &str, file: &Path) {
    stdout_ok(&smart(&[
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
        "--save",
        file.to_str().expect("path"),
    ]));
}

/// The saved refresh token.
fn saved_refresh_token(file: &Path) -> String {
    let saved: Value =
        serde_json::from_slice(&std::fs::read(file).expect("session file")).expect("session JSON");
    let token = &saved["session"]["tokens"]["refresh_token"];
    token
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| token.to_string())
}

fn fhir_get(file: &Path, reference: &str) -> std::process::Output {
    smart(&[
        "fhir",
        "--session",
        file.to_str().expect("path"),
        "get",
        reference,
    ])
}

#[test]
fn a_refreshed_session_survives_a_failing_command() {
    let rt = runtime();
    let sandbox = short_lived_sandbox(&rt);
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("session.json");
    launch_and_save(&sandbox.fhir_base(), &file);
    let before = saved_refresh_token(&file);

    std::thread::sleep(LET_TOKEN_EXPIRE);
    let refreshes = sandbox.counters().refresh_requests;
    let out = fhir_get(&file, "Observation/no-such-observation");
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("404"), "{}", stderr_of(&out));
    assert_eq!(
        sandbox.counters().refresh_requests,
        refreshes + 1,
        "the failing command refreshed first"
    );
    assert_ne!(
        saved_refresh_token(&file),
        before,
        "the rotated refresh token reached the file although the command failed"
    );

    // The next run refreshes with the saved (current) refresh token and works.
    std::thread::sleep(LET_TOKEN_EXPIRE);
    let patient: Value =
        serde_json::from_str(&stdout_ok(&fhir_get(&file, "Patient/pat-1"))).expect("JSON");
    assert_eq!(patient["id"], "pat-1");
}

#[test]
fn a_refreshed_session_survives_a_closed_stdout() {
    let rt = runtime();
    let sandbox = short_lived_sandbox(&rt);
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("session.json");
    launch_and_save(&sandbox.fhir_base(), &file);
    let before = saved_refresh_token(&file);

    std::thread::sleep(LET_TOKEN_EXPIRE);
    // `| head -c1` that has already exited: the reader is gone before anything is printed.
    let mut child = smart_command(&[
        "fhir",
        "--session",
        file.to_str().expect("path"),
        "search",
        "Observation",
        "-p",
        "patient=pat-1",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let err = stderr_of(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "a closed pipe is not a failure: {err}"
    );
    assert_ne!(saved_refresh_token(&file), before, "the refresh was saved");

    std::thread::sleep(LET_TOKEN_EXPIRE);
    stdout_ok(&fhir_get(&file, "Patient/pat-1"));
}

#[test]
fn a_refreshed_session_survives_being_killed() {
    let rt = runtime();
    let sandbox = short_lived_sandbox(&rt);
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("session.json");
    launch_and_save(&sandbox.fhir_base(), &file);
    let before = saved_refresh_token(&file);

    // The FHIR server now takes a minute to answer: the command refreshes (the token endpoint is
    // not delayed) and then waits for the FHIR response until it is killed.
    sandbox.set_behavior(|b| b.fhir_delay = Some(Duration::from_secs(60)));
    std::thread::sleep(LET_TOKEN_EXPIRE);
    let mut child = smart_command(&[
        "fhir",
        "--session",
        file.to_str().expect("path"),
        "get",
        "Patient/pat-1",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut saved = false;
    while Instant::now() < deadline {
        if saved_refresh_token(&file) != before {
            saved = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        child.try_wait().expect("status"),
        None,
        "the command was still waiting for the FHIR server"
    );
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert!(
        saved,
        "the refreshed session was saved before the FHIR request finished"
    );

    sandbox.set_behavior(|b| b.fhir_delay = None);
    std::thread::sleep(LET_TOKEN_EXPIRE);
    stdout_ok(&fhir_get(&file, "Patient/pat-1"));
}

#[test]
fn an_ended_session_says_so_without_asking_the_server() {
    let rt = runtime();
    let sandbox = short_lived_sandbox(&rt);
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("session.json");
    let stale = dir.path().join("stale.json");
    launch_and_save(&sandbox.fhir_base(), &file);
    std::fs::copy(&file, &stale).expect("copy");

    // Rotate the refresh token through `file`; `stale` keeps the rotated-out one.
    std::thread::sleep(LET_TOKEN_EXPIRE);
    stdout_ok(&fhir_get(&file, "Patient/pat-1"));

    // Spending the rotated-out token: the server refuses (and revokes the grant).
    let out = fhir_get(&stale, "Patient/pat-1");
    assert_eq!(out.status.code(), Some(1));
    let saved: Value = serde_json::from_slice(&std::fs::read(&stale).expect("read")).expect("json");
    assert_eq!(
        saved["session"]["status"]["status"], "ended",
        "the rejection is recorded in the file: {saved}"
    );

    // The next run says so at once, without a token or FHIR request.
    let before = sandbox.counters();
    let out = fhir_get(&stale, "Patient/pat-1");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(
        err.contains("has ended") && err.contains("smart launch --save"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let after = sandbox.counters();
    assert_eq!(after.token_requests, before.token_requests);
    assert_eq!(after.fhir_requests, before.fhir_requests);
}

#[cfg(unix)]
#[test]
fn session_and_key_files_are_private_even_when_they_existed() {
    use std::os::unix::fs::PermissionsExt;
    let rt = runtime();
    let sandbox = short_lived_sandbox(&rt);
    let dir = tempfile::tempdir().expect("tmp");
    let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;

    let file = dir.path().join("session.json");
    std::fs::write(&file, "{}").expect("write");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    launch_and_save(&sandbox.fhir_base(), &file);
    assert_eq!(mode(&file), 0o600, "launch --save over a 0644 file");

    // A refresh rewrites it private too.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    std::thread::sleep(LET_TOKEN_EXPIRE);
    stdout_ok(&fhir_get(&file, "Patient/pat-1"));
    assert_eq!(mode(&file), 0o600, "the refresh rewrite");

    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).expect("mkdir");
    let key = keys.join("private-key.pem");
    std::fs::write(&key, "old").expect("write");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    stdout_ok(&smart(&[
        "keys",
        "generate",
        "--out",
        keys.to_str().expect("path"),
        "--force",
    ]));
    assert_eq!(mode(&key), 0o600, "keys generate --force over a 0644 key");
    assert!(
        std::fs::read_to_string(&key)
            .expect("read")
            .contains("PRIVATE KEY")
    );
}

#[cfg(unix)]
#[test]
fn links_are_never_written_through() {
    let rt = runtime();
    let sandbox = short_lived_sandbox(&rt);
    let dir = tempfile::tempdir().expect("tmp");
    let target = dir.path().join("elsewhere.txt");
    std::fs::write(&target, "untouched").expect("write");

    // launch --save to a link.
    let link = dir.path().join("session.json");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let out = smart(&[
        "launch",
        "--iss",
        &sandbox.fhir_base(),
        "--client-id",
        "demo-public",
        "--redirect-uri",
        "http://127.0.0.1:8765/callback",
        "--headless",
        "--save",
        link.to_str().expect("path"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(std::fs::read_to_string(&target).expect("read"), "untouched");

    // fhir --session through a link is refused before any request.
    let real = dir.path().join("real.json");
    launch_and_save(&sandbox.fhir_base(), &real);
    let session_link = dir.path().join("session-link.json");
    std::os::unix::fs::symlink(&real, &session_link).expect("symlink");
    let before = sandbox.counters();
    let out = fhir_get(&session_link, "Patient/pat-1");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("symbolic link"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(sandbox.counters().token_requests, before.token_requests);

    // keys generate into a directory whose private-key.pem is a link.
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).expect("mkdir");
    std::os::unix::fs::symlink(&target, keys.join("private-key.pem")).expect("symlink");
    let out = smart(&[
        "keys",
        "generate",
        "--out",
        keys.to_str().expect("path"),
        "--force",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("symbolic link"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(std::fs::read_to_string(&target).expect("read"), "untouched");
}
