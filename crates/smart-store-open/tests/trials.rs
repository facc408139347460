//! The named store trials against memory, SQLite (a temp file), PostgreSQL and Redis, one line
//! per trial, plus a multi-process race on each shared backend.
//!
//! PostgreSQL and Redis are found at `SMART_TEST_POSTGRES_URL` and `SMART_TEST_REDIS_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test` and `redis://127.0.0.1:6379`). An
//! unreachable server is a failure, never a skip. `cargo test -p smart-store-open --test trials
//! -- FILTER` runs only the trials whose `backend/name` contains FILTER.
//!
//! The multi-process race re-runs this binary as child processes (`SMART_STORE_TRIAL_CHILD` set),
//! each opening the same store and racing for one pending launch, one compare-and-swap and one
//! lease at the same instant; the parent checks that each race had exactly one winner.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use smart_core::store::{SessionId, Store, StoreError, testsuite};
use smart_store::trials::{self, TrialTarget};
use smart_store::{Backend, Keyring, MemoryBackend, SealedStore};
use smart_store_redis::RedisBackend;
use smart_store_sql::SqlBackend;

const CHILD_ENV: &str = "SMART_STORE_TRIAL_CHILD";
const RACE_PROCESSES: usize = 4;

fn postgres_url() -> String {
    std::env::var("SMART_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn redis_url() -> String {
    std::env::var("SMART_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The backend `url` names (SQLite, PostgreSQL or Redis).
async fn open_backend(url: &str) -> Result<Arc<dyn Backend>, StoreError> {
    open_target(url).await.map(|target| target.backend)
}

/// A trial target on the backend `url` names, with that backend's raw read.
async fn open_target(url: &str) -> Result<TrialTarget, StoreError> {
    Ok(match url.split(':').next().unwrap_or_default() {
        "memory" => TrialTarget::dumping(Arc::new(MemoryBackend::new()), |b| async move {
            Ok(b.raw_dump())
        }),
        "sqlite" => TrialTarget::dumping(
            Arc::new(SqlBackend::open_sqlite(url).await?),
            |b| async move { b.raw_dump().await },
        ),
        "postgres" => TrialTarget::dumping(
            Arc::new(SqlBackend::open_postgres(url).await?),
            |b| async move { b.raw_dump().await },
        ),
        "redis" => TrialTarget::dumping(
            Arc::new(RedisBackend::connect(url).await?),
            |b| async move { b.raw_dump().await },
        ),
        other => panic!("no backend for {other}"),
    })
}

/// Prints one trial's line and counts it.
fn report(name: &str, outcome: Result<(), String>, passed: &mut usize, failed: &mut usize) {
    match outcome {
        Ok(()) => {
            println!("trial {name} ... ok");
            *passed += 1;
        }
        Err(message) => {
            println!("trial {name} ... FAILED: {message}");
            *failed += 1;
        }
    }
}

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        return runtime.block_on(race_child(&spec));
    }
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    // `cargo test -- --list` and friends: list nothing special, run as usual.
    runtime.block_on(run_all(filter))
}

async fn run_all(filter: Option<String>) -> ExitCode {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite_url = format!("sqlite://{}", dir.path().join("trials.db").display());
    let backends: Vec<(&str, String)> = vec![
        ("memory", "memory:".into()),
        ("sqlite", sqlite_url),
        ("postgres", postgres_url()),
        ("redis", redis_url()),
    ];
    let (mut passed, mut failed) = (0usize, 0usize);
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    for (backend, url) in &backends {
        if !trials::all()
            .iter()
            .any(|t| wanted(&format!("{backend}/{}", t.name)))
            && !wanted(&format!("{backend}/multi_process_race"))
        {
            continue;
        }
        let target = match open_target(url).await {
            Ok(target) => target,
            Err(e) => {
                // Unreachable is a failure: the services are part of the test environment.
                report(
                    &format!("{backend}/open"),
                    Err(e.to_string()),
                    &mut passed,
                    &mut failed,
                );
                continue;
            }
        };
        for trial in trials::all() {
            let name = format!("{backend}/{}", trial.name);
            if !wanted(&name) {
                continue;
            }
            let outcome = tokio::spawn(trial.run(target.clone())).await.map_err(|e| {
                e.try_into_panic()
                    .ok()
                    .and_then(|p| {
                        p.downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    })
                    .unwrap_or_else(|| "cancelled".into())
            });
            report(&name, outcome, &mut passed, &mut failed);
        }
        let name = format!("{backend}/multi_process_race");
        if *backend != "memory" && wanted(&name) {
            report(
                &name,
                multi_process_race(url).await,
                &mut passed,
                &mut failed,
            );
        }
    }
    println!();
    println!("trials: {passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The parent: one pending launch, one session at version 1, then `RACE_PROCESSES` children
/// that all try at the same instant to take it, to CAS from version 1 and to lease the session.
async fn multi_process_race(url: &str) -> Result<(), String> {
    let material = Keyring::generate_material("race").map_err(|e| e.to_string())?;
    let backend = open_backend(url).await.map_err(|e| e.to_string())?;
    let store = SealedStore::new(
        backend,
        Keyring::parse(&material).map_err(|e| e.to_string())?,
    );
    let state = format!("race-{}", SessionId::generate().as_str());
    let id = SessionId::generate();
    store
        .put_pending_launch(&state, &testsuite::sample_pending_launch(600))
        .await
        .map_err(|e| e.to_string())?;
    store
        .insert_session(&id, &testsuite::sample_session("a-0"))
        .await
        .map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let start_at = now_ms() + 2_000;
    let mut children = Vec::new();
    for i in 0..RACE_PROCESSES {
        let spec = format!(
            "{url}\n{material}\n{state}\n{}\n{start_at}\n{i}",
            id.as_str()
        );
        children.push(
            tokio::process::Command::new(&exe)
                .env(CHILD_ENV, spec)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| e.to_string())?,
        );
    }
    let (mut took, mut swapped, mut leased) = (0, 0, 0);
    for child in children {
        let output = child.wait_with_output().await.map_err(|e| e.to_string())?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "child failed: {}{}",
                stdout,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        took += stdout.lines().filter(|l| *l == "took").count();
        swapped += stdout.lines().filter(|l| *l == "swapped").count();
        leased += stdout.lines().filter(|l| *l == "leased").count();
    }
    let loaded = store
        .load_session(&id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the raced session is gone")?;
    if (took, swapped, leased) != (1, 1, 1) || loaded.version != 2 {
        return Err(format!(
            "{RACE_PROCESSES} processes: {took} took the launch, {swapped} swapped, {leased} leased \
             (each must be exactly 1); version now {}",
            loaded.version
        ));
    }
    store.delete_session(&id).await.map_err(|e| e.to_string())?;
    Ok(())
}

/// A child: waits for the common start instant, then races once on each operation.
async fn race_child(spec: &str) -> ExitCode {
    let parts: Vec<&str> = spec.split('\n').collect();
    let [url, material, state, id, start_at, me] = parts[..] else {
        eprintln!("bad child spec");
        return ExitCode::FAILURE;
    };
    let backend = match open_backend(url).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("open: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Ok(keyring) = Keyring::parse(material) else {
        return ExitCode::FAILURE;
    };
    let store = SealedStore::new(backend, keyring);
    let id = SessionId::new(id);
    let start_at: u64 = start_at.parse().unwrap_or(0);
    let wait = start_at.saturating_sub(now_ms());
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let session = testsuite::sample_session(&format!("a-{me}"));
    let owner = format!("process-{me}");
    let (take, cas, lease) = tokio::join!(
        store.take_pending_launch(state),
        store.compare_and_swap_session(&id, 1, &session),
        store.try_acquire_lease(&id, &owner, Duration::from_secs(30)),
    );
    match take {
        Ok(Some(_)) => println!("took"),
        Ok(None) => println!("missed"),
        Err(e) => {
            eprintln!("take: {e}");
            return ExitCode::FAILURE;
        }
    }
    match cas {
        Ok(_) => println!("swapped"),
        Err(StoreError::VersionConflict { .. }) => println!("conflict"),
        Err(e) => {
            eprintln!("cas: {e}");
            return ExitCode::FAILURE;
        }
    }
    match lease {
        Ok(Some(_)) => println!("leased"),
        Ok(None) => println!("busy"),
        Err(e) => {
            eprintln!("lease: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
