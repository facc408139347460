//! The multi-process proof: several processes share one store and one sandbox whose refresh
//! tokens rotate (a reused refresh token revokes its grant), and keep sessions whose access
//! tokens expire every 2 s alive for a while.
//!
//! Passes when no session is lost or ended, no refresh is refused (`invalid_grant`), and the
//! sandbox saw exactly as many refresh requests as the sessions' versions moved (every refresh
//! was needed and stored; none was made twice). Also: a launch begun in this process completes
//! its callback in a child process.
//!
//! Runs on PostgreSQL and on Redis (`SMART_TEST_POSTGRES_URL`, `SMART_TEST_REDIS_URL`, defaults
//! as in the trials). `SMART_MULTI_PROCESS_SECS` sets the hammering time (default 30).

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use smart_core::http::{HttpClient, HttpError, HttpRequest, HttpResponse, ReqwestHttpClient};
use smart_core::scope::Scopes;
use smart_core::store::{SessionId, SessionStatus, Store};
use smart_core::token::now_unix;
use smart_core::{
    BrowserBinding, CallbackParams, ClientRegistration, RefreshError, RefreshOptions, SmartClient,
    StandaloneLaunch,
};
use smart_sandbox::{DEMO_REDIRECT_URI, Sandbox, SandboxConfig};
use smart_store::{Keyring, StoreConfig};

const CHILD_ENV: &str = "SMART_MULTI_PROCESS_CHILD";
const PROCESSES: usize = 4;
const SESSIONS: usize = 20;
const TOKEN_LIFETIME: Duration = Duration::from_secs(2);
const SCOPES: &str = "launch/patient patient/*.rs offline_access";

/// Sends through reqwest and remembers the last `Location` header it saw, so that the redirect
/// back to the app can be handed to another process.
#[derive(Debug)]
struct LocationRecorder {
    inner: ReqwestHttpClient,
    last_location: Mutex<Option<String>>,
}

#[async_trait]
impl HttpClient for LocationRecorder {
    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let response = self.inner.execute(request).await?;
        if let Some(location) = response
            .headers()
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
        {
            *self.last_location.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(location.to_owned());
        }
        Ok(response)
    }
}

fn client(base: &str, store: Arc<dyn Store>, http: Arc<dyn HttpClient>) -> SmartClient {
    SmartClient::builder()
        .registration(
            "public",
            ClientRegistration::public(base, "demo-public", DEMO_REDIRECT_URI)
                .with_scopes(Scopes::parse(SCOPES)),
        )
        .adapter(Arc::new(smart_adapter_generic::Generic))
        .store(store)
        .http(http)
        .build()
        .expect("client builds")
}

async fn open_store(url: &str, key_file: &str) -> Arc<dyn Store> {
    let config = StoreConfig {
        key_file: Some(key_file.into()),
        ..StoreConfig::new(url)
    };
    smart_store_open::open(&config)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        return runtime.block_on(child(&spec));
    }
    let seconds: u64 = std::env::var("SMART_MULTI_PROCESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let backends = [
        (
            "postgres",
            std::env::var("SMART_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
        ),
        (
            "redis",
            std::env::var("SMART_TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        ),
    ];
    let (mut passed, mut failed) = (0, 0);
    for (name, url) in backends {
        match runtime.block_on(prove(&url, Duration::from_secs(seconds))) {
            Ok(figures) => {
                println!("multi_process {name} ... ok: {figures}");
                passed += 1;
            }
            Err(message) => {
                println!("multi_process {name} ... FAILED: {message}");
                failed += 1;
            }
        }
    }
    println!();
    println!("multi_process: {passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn run_child(args: &[&str]) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = tokio::process::Command::new(exe)
        .env(CHILD_ENV, args.join("\n"))
        .output()
        .await
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(format!(
            "child {} failed: {stdout}{}",
            args[0],
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(stdout)
}

async fn prove(url: &str, duration: Duration) -> Result<String, String> {
    let mut config = SandboxConfig::default();
    config.behavior.access_token_lifetime = TOKEN_LIFETIME;
    config.behavior.rotate_refresh_tokens = true;
    let sandbox = Sandbox::start(config).await.map_err(|e| e.to_string())?;
    let base = sandbox.fhir_base();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let key_file = dir.path().join("keys");
    let id = format!("mp-{}", &SessionId::generate().as_str()[..10]);
    std::fs::write(
        &key_file,
        Keyring::generate_material(&id).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let key_file = key_file.display().to_string();
    let store = open_store(url, &key_file).await;
    let http = Arc::new(LocationRecorder {
        inner: ReqwestHttpClient::new().map_err(|e| e.to_string())?,
        last_location: Mutex::new(None),
    });
    let app = client(&base, store.clone(), http.clone());

    // A launch begun here completes in another process.
    let request = app
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .map_err(|e| e.to_string())?;
    smart_core::headless::authorize_headless(&*http, &request, DEMO_REDIRECT_URI)
        .await
        .map_err(|e| e.to_string())?;
    let location = http
        .last_location
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .ok_or("no redirect back to the app")?;
    let completed = run_child(&[
        "complete",
        url,
        &key_file,
        &base,
        &location,
        request.browser_binding.expose_secret(),
    ])
    .await?;
    let completed_id = SessionId::new(completed.trim());
    if store
        .load_session(&completed_id)
        .await
        .map_err(|e| e.to_string())?
        .is_none()
    {
        return Err("the session completed in the child is not in the store".into());
    }

    let mut ids = Vec::new();
    for _ in 0..SESSIONS {
        let request = app
            .begin_standalone_launch(&base, StandaloneLaunch::default())
            .await
            .map_err(|e| e.to_string())?;
        let callback =
            smart_core::headless::authorize_headless(&*http, &request, DEMO_REDIRECT_URI)
                .await
                .map_err(|e| e.to_string())?;
        let done = app
            .complete_launch(&callback)
            .await
            .map_err(|e| e.to_string())?;
        ids.push(done.session_id.as_str().to_owned());
    }
    let refreshes_before = sandbox.counters().refresh_requests;
    let started = Instant::now();
    let ids_arg = ids.join(",");
    let secs = duration.as_secs().to_string();
    let mut children = Vec::new();
    for _ in 0..PROCESSES {
        let args = [
            "hammer".to_owned(),
            url.to_owned(),
            key_file.clone(),
            base.clone(),
            ids_arg.clone(),
            secs.clone(),
        ];
        children.push(tokio::spawn(async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_child(&args).await
        }));
    }
    let (mut refreshed, mut rejected, mut other_errors) = (0u64, 0u64, 0u64);
    for child in children {
        let out = child.await.map_err(|e| e.to_string())??;
        for line in out.lines() {
            let mut parts = line.split('=');
            let (Some(key), Some(value)) = (parts.next(), parts.next()) else {
                continue;
            };
            let value: u64 = value.parse().unwrap_or(0);
            match key {
                "refreshed" => refreshed += value,
                "rejected" => rejected += value,
                "errors" => other_errors += value,
                _ => {}
            }
        }
    }
    let elapsed = started.elapsed();
    let refresh_requests = sandbox.counters().refresh_requests - refreshes_before;
    let (mut versions_moved, mut lost, mut ended) = (0u64, 0, 0);
    for id in &ids {
        match store
            .load_session(&SessionId::new(id.as_str()))
            .await
            .map_err(|e| e.to_string())?
        {
            None => lost += 1,
            Some(s) => {
                versions_moved += s.version - 1;
                if s.value.status != SessionStatus::Active {
                    ended += 1;
                }
            }
        }
    }
    let expiries = SESSIONS as f64 * elapsed.as_secs_f64() / TOKEN_LIFETIME.as_secs_f64();
    let figures = format!(
        "{PROCESSES} processes, {SESSIONS} sessions, {:.1} s: {refresh_requests} refresh requests \
         (about {expiries:.0} token lifetimes elapsed), {versions_moved} stored refreshes, \
         {refreshed} successful refresh calls in the workers, {rejected} invalid_grant, {other_errors} other errors, \
         {lost} lost, {ended} ended",
        elapsed.as_secs_f64()
    );
    if lost > 0 || ended > 0 || rejected > 0 || other_errors > 0 {
        return Err(figures);
    }
    if refresh_requests != versions_moved {
        return Err(format!(
            "the sandbox's refresh count must equal the refreshes stored: {figures}"
        ));
    }
    // Every session was kept fresh: expiry is seen with whole-second precision and a 100 ms
    // sweep on a loaded machine, so a refresh cycle takes up to lifetime + 1.5 s; allow two
    // cycles at the ends of the run.
    let cycle = TOKEN_LIFETIME.as_secs_f64() + 1.5;
    let minimum = (SESSIONS as f64 * (elapsed.as_secs_f64() / cycle - 2.0)).max(0.0) as u64;
    if refresh_requests < minimum {
        return Err(format!(
            "too few refreshes to have kept every token fresh: {figures}"
        ));
    }
    for id in &ids {
        store
            .delete_session(&SessionId::new(id.as_str()))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(figures)
}

async fn child(spec: &str) -> ExitCode {
    let args: Vec<&str> = spec.split('\n').collect();
    let result = match args.as_slice() {
        ["complete", url, key_file, base, location, binding] => {
            complete(url, key_file, base, location, binding).await
        }
        ["hammer", url, key_file, base, ids, secs] => hammer(url, key_file, base, ids, secs).await,
        _ => Err("bad child arguments".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn complete(
    url: &str,
    key_file: &str,
    base: &str,
    location: &str,
    binding: &str,
) -> Result<(), String> {
    let store = open_store(url, key_file).await;
    let http = Arc::new(ReqwestHttpClient::new().map_err(|e| e.to_string())?);
    let app = client(base, store, http);
    let callback = CallbackParams::from_url(location)
        .ok_or("bad redirect URL")?
        .with_browser_binding(BrowserBinding::new(binding));
    let done = app
        .complete_launch(&callback)
        .await
        .map_err(|e| e.to_string())?;
    println!("{}", done.session_id.as_str());
    Ok(())
}

/// Keeps every session's access token fresh until the time is up: whenever a session's token has
/// expired, refresh it from the version just read (so that a refresh another process already
/// made is returned instead of repeated).
async fn hammer(
    url: &str,
    key_file: &str,
    base: &str,
    ids: &str,
    secs: &str,
) -> Result<(), String> {
    let store = open_store(url, key_file).await;
    let http = Arc::new(ReqwestHttpClient::new().map_err(|e| e.to_string())?);
    let app = client(base, store.clone(), http);
    let ids: Vec<SessionId> = ids.split(',').map(SessionId::new).collect();
    let until = Instant::now() + Duration::from_secs(secs.parse().map_err(|_| "bad secs")?);
    let (mut refreshed, mut rejected, mut errors) = (0u64, 0u64, 0u64);
    while Instant::now() < until {
        for id in &ids {
            let current = match store.load_session(id).await {
                Ok(Some(current)) => current,
                Ok(None) => {
                    errors += 1;
                    continue;
                }
                Err(e) if e.is_temporary() => continue,
                Err(e) => return Err(e.to_string()),
            };
            let expired = current
                .value
                .tokens
                .expires_at
                .is_some_and(|at| at <= now_unix());
            if !expired {
                continue;
            }
            let options = RefreshOptions {
                if_version: Some(current.version),
                ..RefreshOptions::default()
            };
            match app.refresh(id, options).await {
                // This process's refresh, or the one another process made meanwhile.
                Ok(_) => refreshed += 1,
                Err(RefreshError::Rejected(_) | RefreshError::Ended { .. }) => rejected += 1,
                Err(e) if e.is_temporary() => {}
                Err(e) => {
                    eprintln!("refresh: {e}");
                    errors += 1;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("refreshed={refreshed}");
    println!("rejected={rejected}");
    println!("errors={errors}");
    Ok(())
}
