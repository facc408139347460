//! The `smart sandbox` process under attack, measured from outside: peak
//! memory while batch Bundles ask for huge answers, and a new client's
//! launch while twenty thousand idle connections are open.
//!
//! The sandbox runs as a child process so that its peak RSS (`VmHWM`) and
//! its file descriptors are its own, as they would be for a user.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_smart");

struct SandboxProcess {
    child: Child,
    base: String,
    addr: SocketAddr,
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SandboxProcess {
    fn start() -> SandboxProcess {
        let mut child = Command::new(BIN)
            .args(["sandbox", "--port", "0"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("smart sandbox starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut base = String::new();
        let mut addr = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("line");
            if let Some(rest) = line.strip_prefix("smart sandbox listening on http://") {
                addr = rest.trim().parse().ok();
            }
            if let Some(rest) = line.trim().strip_prefix("FHIR base (iss): ") {
                base = rest.trim().to_owned();
            }
            if line.starts_with("Press Ctrl-C") {
                break;
            }
        }
        SandboxProcess {
            child,
            base,
            addr: addr.expect("the sandbox prints its address"),
        }
    }

    /// A field of `/proc/PID/status` in kB (`VmHWM`: peak RSS).
    fn status_kb(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{field} in {status}"))
    }
}

/// Runs `smart ARGS`, killing it after `limit`; `None` if it did not finish.
fn smart_within(args: &[&str], limit: Duration) -> Option<std::process::Output> {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("SMART_CLIENT_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("smart runs");
    let started = Instant::now();
    while started.elapsed() < limit {
        if child.try_wait().expect("wait").is_some() {
            return Some(child.wait_with_output().expect("output"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A headless launch of `demo-public` with `scope`, stored in the session store `store` (a URL).
fn launch(base: &str, scope: &str, store: &str, limit: Duration) -> Option<Value> {
    let out = smart_within(
        &[
            "launch",
            "--iss",
            base,
            "--client-id",
            "demo-public",
            "--redirect-uri",
            "http://127.0.0.1:8765/callback",
            "--scope",
            scope,
            "--headless",
            "--json",
            "--show-tokens",
            "--store",
            store,
        ],
        limit,
    )?;
    assert!(
        out.status.success(),
        "launch failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("launch JSON"))
}

fn find_string<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    match value {
        Value::Object(map) => map
            .get(key)
            .and_then(Value::as_str)
            .or_else(|| map.values().find_map(|v| find_string(v, key))),
        Value::Array(items) => items.iter().find_map(|v| find_string(v, key)),
        _ => None,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Issue 9's batch attack: Bundles of 500 (and of 100) searches for full
/// pages, four at a time, three rounds. Before entries and answer size were
/// capped, one such Bundle made an 80 MB answer and the sandbox peaked at
/// 1.84 GiB.
#[test]
fn batch_attack_keeps_the_sandbox_under_200_mb() {
    let sandbox = SandboxProcess::start();
    let dir = tempfile::tempdir().expect("tmp");
    let store = format!("sqlite://{}", dir.path().join("sessions.db").display());
    let launched = launch(&sandbox.base, "user/*.rs", &store, Duration::from_secs(60))
        .expect("launch finishes");
    let token = find_string(&launched, "access_token")
        .expect("access_token shown")
        .to_owned();
    let bundle = |entries: usize| {
        let entry: Vec<Value> = (0..entries)
            .map(|_| json!({"request": {"method": "GET", "url": "Observation?_count=200"}}))
            .collect();
        json!({"resourceType": "Bundle", "type": "batch", "entry": entry}).to_string()
    };
    let before_kb = sandbox.status_kb("VmHWM");
    let statuses = runtime().block_on(async {
        let http = reqwest::Client::new();
        let mut statuses = Vec::new();
        for _round in 0..3 {
            let mut tasks = Vec::new();
            for i in 0..4 {
                let request = http
                    .post(&sandbox.base)
                    .bearer_auth(&token)
                    .header("content-type", "application/fhir+json")
                    .body(bundle(if i % 2 == 0 { 500 } else { 100 }));
                tasks.push(tokio::spawn(async move {
                    let resp = request.send().await.expect("batch request");
                    let status = resp.status().as_u16();
                    let body = resp.bytes().await.expect("body");
                    (status, body.len())
                }));
            }
            for task in tasks {
                statuses.push(task.await.expect("task"));
            }
        }
        statuses
    });
    let peak_kb = sandbox.status_kb("VmHWM");
    eprintln!(
        "sandbox VmHWM: {before_kb} kB before the attack, {peak_kb} kB after; answers {statuses:?}"
    );
    // Each Bundle is refused (413: too many entries, 400: answer too large)
    // with a small OperationOutcome instead of tens of megabytes.
    assert!(
        statuses
            .iter()
            .all(|&(status, len)| (status == 413 || status == 400) && len < 10_000),
        "{statuses:?}"
    );
    assert!(peak_kb < 200 * 1024, "peak RSS {peak_kb} kB");
}

/// Raises this process's open-file limit as far as it goes (root may raise
/// the hard limit too) and returns the soft limit now in force. The one
/// `unsafe` of this file: two libc calls on a struct owned here.
#[allow(unsafe_code)]
fn raise_open_file_limit(wanted: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        let raised = libc::rlimit {
            rlim_cur: wanted.max(limit.rlim_cur),
            rlim_max: wanted.max(limit.rlim_max),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            return raised.rlim_cur;
        }
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
            return limit.rlim_cur;
        }
        limit.rlim_cur
    }
}

/// How many idle connections each of the two processes opens: half of
/// [`IDLE_CONNECTIONS`], unless the open-file limit (raised as far as it
/// goes) is lower.
fn per_process() -> usize {
    let limit = raise_open_file_limit(IDLE_CONNECTIONS as u64);
    let room = usize::try_from(limit.saturating_sub(100)).unwrap_or(usize::MAX);
    (IDLE_CONNECTIONS / 2).min(room)
}

/// Opens up to `count` connections to `addr` within `budget`.
fn open_idle(addr: SocketAddr, count: usize, budget: Duration) -> Vec<TcpStream> {
    let started = Instant::now();
    let mut idle = Vec::with_capacity(count);
    while idle.len() < count && started.elapsed() < budget {
        if let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            idle.push(stream);
        }
    }
    idle
}

/// Set in the copy of this test that holds half of the idle connections
/// (one process may not hold 20,000 sockets: the open-file limit here is
/// often exactly 20,000 and cannot be raised).
const HOLDER_ENV: &str = "SMART_TEST_IDLE_HOLDER";
const IDLE_CONNECTIONS: usize = 20_000;
const TEST_NAME: &str = "twenty_thousand_idle_connections_do_not_stop_a_launch";

/// Issue 9: 20,000 idle connections used to exhaust the sandbox's file
/// descriptors, and legitimate requests timed out. Now idle connections are
/// closed after the header timeout and, beyond the connection cap, the
/// oldest give way to new ones: a new client completes a launch (authorize,
/// token, FHIR read) while they are open.
#[test]
fn twenty_thousand_idle_connections_do_not_stop_a_launch() {
    if let Ok(addr) = std::env::var(HOLDER_ENV) {
        // The holder copy: open its half, report, hold until stdin closes.
        let addr: SocketAddr = addr.parse().expect("holder address");
        let idle = open_idle(addr, per_process(), Duration::from_secs(120));
        println!("idle-holder opened {}", idle.len());
        let mut rest = String::new();
        let _ = std::io::stdin().read_line(&mut rest);
        drop(idle);
        return;
    }
    let sandbox = SandboxProcess::start();
    let half = per_process();
    if half * 2 < IDLE_CONNECTIONS {
        eprintln!(
            "the open-file limit allows {half} sockets per process: opening {} idle connections, not {IDLE_CONNECTIONS}",
            half * 2
        );
    }
    let started = Instant::now();
    let mut holder = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(HOLDER_ENV, sandbox.addr.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("holder starts");
    let idle = open_idle(sandbox.addr, half, Duration::from_secs(120));
    let mut holder_out = BufReader::new(holder.stdout.take().expect("holder stdout"));
    let held_by_holder: usize = (&mut holder_out)
        .lines()
        .map_while(Result::ok)
        // The harness prints "test NAME ... " without a newline first.
        .find_map(|l| {
            l.split("idle-holder opened ")
                .nth(1)
                .and_then(|n| n.trim().parse().ok())
        })
        .expect("the holder reports");
    let opened = idle.len() + held_by_holder;
    eprintln!(
        "{opened} idle connections opened in {:?}",
        started.elapsed()
    );
    assert_eq!(opened, half * 2);

    let dir = tempfile::tempdir().expect("tmp");
    let store = format!("sqlite://{}", dir.path().join("sessions.db").display());
    let launch_started = Instant::now();
    // Generous for a debug build on a busy machine.
    let launched = launch(
        &sandbox.base,
        "launch/patient patient/*.rs",
        &store,
        Duration::from_secs(20),
    );
    assert!(
        launched.is_some(),
        "the launch did not finish within 20 s while {opened} idle connections were open"
    );
    let read = smart_within(
        &["fhir", "--store", &store, "get", "Patient/pat-1"],
        Duration::from_secs(10),
    )
    .expect("the FHIR read finishes");
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let patient: Value = serde_json::from_slice(&read.stdout).expect("Patient JSON");
    assert_eq!(patient["id"], "pat-1");
    eprintln!("launch and read took {:?}", launch_started.elapsed());
    drop(holder.stdin.take());
    // Read the holder's last words so that it does not write into a closed pipe.
    let _ = std::io::Read::read_to_end(&mut holder_out, &mut Vec::new());
    let _ = holder.wait();
    drop(idle);
}
