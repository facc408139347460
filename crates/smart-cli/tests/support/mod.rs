//! Shared by the CLI test files: run the `smart` binary, and serve an in-process sandbox or a
//! small axum server on 127.0.0.1 from a runtime the test owns.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::process::{Command, Output};

use smart_sandbox::{Behavior, Sandbox, SandboxConfig};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_smart");

/// A data directory for this test process's `smart` runs, emptied when the process first asks
/// for it, so that launches never write to the user's own session store and stores do not grow
/// from one test run to the next.
pub fn data_home() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test binary path");
        let stem = exe
            .file_stem()
            .expect("test binary name")
            .to_string_lossy()
            .into_owned();
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("data-{stem}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("data directory");
        dir
    })
}

/// `smart ARGS` with a clean environment for the variables the CLI reads, and this process's
/// own data directory (see [`data_home`]).
pub fn smart_command(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("XDG_DATA_HOME", data_home())
        .env_remove("SMART_CLIENT_SECRET")
        .env_remove("SMART_STORE_KEY")
        .env_remove("SMART_STORE_URL")
        .env_remove("SMART_TOKEN")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR");
    command
}

/// [`smart_command`] with its store in `data` (an `XDG_DATA_HOME`) instead.
pub fn smart_in(data: &std::path::Path, args: &[&str]) -> Output {
    smart_command(args)
        .env("XDG_DATA_HOME", data)
        .output()
        .expect("smart runs")
}

/// Runs `smart ARGS` to completion.
pub fn smart(args: &[&str]) -> Output {
    smart_command(args).output().expect("smart runs")
}

/// Standard error as text.
pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts success and returns stdout as text.
pub fn stdout_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {}",
        out.status,
        stderr_of(out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A multi-threaded runtime that serves test servers while the test thread runs processes.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// An in-process sandbox with `behavior` changes applied.
pub fn sandbox(runtime: &tokio::runtime::Runtime, behavior: impl FnOnce(&mut Behavior)) -> Sandbox {
    let mut config = SandboxConfig {
        patient_count: 5,
        ..SandboxConfig::default()
    };
    behavior(&mut config.behavior);
    runtime
        .block_on(Sandbox::start(config))
        .expect("sandbox starts")
}

/// Serves the router `make` builds for its own address, on a free 127.0.0.1 port.
pub fn serve(
    runtime: &tokio::runtime::Runtime,
    make: impl FnOnce(SocketAddr) -> axum::Router,
) -> SocketAddr {
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let router = make(addr);
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        addr
    })
}
