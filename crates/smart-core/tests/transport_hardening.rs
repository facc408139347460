//! Issue 8, transport side, over real HTTP: per-issuer key-cache slots (no head-of-line
//! blocking across EHRs), a bounded discovery cache that remembers failures only briefly, https
//! endpoints for https bases, redirect URIs compared as URLs, a refresh margin that fits short
//! tokens, TLS roots loaded only for https, and arithmetic on extreme server numbers.

mod support;

use smart_core::quirks::HookContext;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use smart_core::discovery::{DiscoveryCache, discover};
use smart_core::error::DiscoveryError;
use smart_core::headless::authorize_headless;
use smart_core::http::{
    HttpClient, HttpError, HttpRequest, HttpResponse, InsecureUrl, ReqwestHttpClient,
};
use smart_core::identity::{DEFAULT_ID_TOKEN_ALGORITHMS, Expectations, IdTokenVerifier};
use smart_core::scope::Scopes;
use smart_core::{BearerSource, ClientRegistration, StandaloneLaunch};
use smart_sandbox::{LaunchDefaults, Sandbox};
use support::*;

/// Binds 127.0.0.1 on a free port and serves the router built for that origin.
async fn serve(build: impl FnOnce(String) -> Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    let router = build(origin.clone());
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    origin
}

async fn get_bytes(http: &dyn HttpClient, url: &str) -> Vec<u8> {
    let request = http::Request::get(url).body(Vec::new()).expect("request");
    let response = http.execute(request).await.expect("response");
    assert!(response.status().is_success(), "{url}");
    response.body().to_vec()
}

// ---------------------------------------------------------------------------------------------
// Item 7: per-issuer slots in the id_token key cache.

/// An OpenID issuer that answers its configuration only after `delay`, and publishes another
/// issuer's keys (the sandbox's) as its own.
#[derive(Debug)]
struct SlowIssuer {
    origin: String,
    delay: Duration,
    jwks: Vec<u8>,
    configuration_fetches: AtomicUsize,
    jwks_fetches: AtomicUsize,
}

async fn slow_configuration(State(issuer): State<Arc<SlowIssuer>>) -> Response {
    issuer.configuration_fetches.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(issuer.delay).await;
    axum::Json(serde_json::json!({
        "issuer": issuer.origin,
        "jwks_uri": format!("{}/jwks", issuer.origin),
    }))
    .into_response()
}

async fn slow_jwks(State(issuer): State<Arc<SlowIssuer>>) -> Response {
    issuer.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    (
        [(header::CONTENT_TYPE, "application/json")],
        issuer.jwks.clone(),
    )
        .into_response()
}

async fn slow_issuer(sandbox: &Sandbox, delay: Duration) -> Arc<SlowIssuer> {
    let http = ReqwestHttpClient::new().expect("http");
    let configuration: serde_json::Value = serde_json::from_slice(
        &get_bytes(
            &http,
            &format!(
                "{}/.well-known/openid-configuration",
                sandbox.id_token_issuer()
            ),
        )
        .await,
    )
    .expect("json");
    let jwks_uri = configuration["jwks_uri"].as_str().expect("jwks_uri");
    let jwks = get_bytes(&http, jwks_uri).await;
    let cell: Arc<std::sync::OnceLock<Arc<SlowIssuer>>> = Arc::default();
    let shared = cell.clone();
    serve(move |origin| {
        let issuer = Arc::new(SlowIssuer {
            origin,
            delay,
            jwks,
            configuration_fetches: AtomicUsize::new(0),
            jwks_fetches: AtomicUsize::new(0),
        });
        let _ = shared.set(issuer.clone());
        Router::new()
            .route("/.well-known/openid-configuration", get(slow_configuration))
            .route("/jwks", get(slow_jwks))
            .with_state(issuer)
    })
    .await;
    cell.get().expect("issuer").clone()
}

/// A sandbox id_token for `demo-public`.
async fn sandbox_id_token(sandbox: &Sandbox) -> String {
    let base = sandbox.fhir_base();
    let client = public_client(&base);
    let request = client
        .begin_standalone_launch(
            &base,
            StandaloneLaunch {
                scopes: Some(Scopes::parse("launch/patient openid fhirUser patient/*.rs")),
                ..StandaloneLaunch::default()
            },
        )
        .await
        .expect("begin");
    let callback = callback_for(&client, &request).await;
    let done = client.complete_launch(&callback).await.expect("complete");
    done.session
        .tokens
        .id_token
        .expect("openid granted: id_token")
        .expose_secret()
        .to_owned()
}

fn expectations<'a>(
    issuer: &'a str,
    configuration_issuer: &'a str,
    base: &'a str,
) -> Expectations<'a> {
    Expectations {
        issuer,
        configuration_issuer,
        algorithms: DEFAULT_ID_TOKEN_ALGORITHMS,
        client_id: "demo-public",
        fhir_base: base,
        nonce: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_issuer_does_not_delay_sign_ins_at_another_issuer() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let id_token = sandbox_id_token(&sandbox).await;
    let slow = slow_issuer(&sandbox, Duration::from_secs(6)).await;
    let verifier = Arc::new(IdTokenVerifier::default());
    let http: Arc<ReqwestHttpClient> = Arc::new(ReqwestHttpClient::new().expect("http"));
    let sandbox_issuer = sandbox.id_token_issuer();

    let stalled = {
        let (verifier, http, token) = (verifier.clone(), http.clone(), id_token.clone());
        let (issuer, slow_origin, base) =
            (sandbox_issuer.clone(), slow.origin.clone(), base.clone());
        tokio::spawn(async move {
            verifier
                .verify(&*http, &token, expectations(&issuer, &slow_origin, &base))
                .await
        })
    };
    // Wait until the slow issuer's fetch is in flight (its slot is held).
    let deadline = Instant::now() + Duration::from_secs(5);
    while slow.configuration_fetches.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the slow issuer was never asked");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // With one global lock this waited the slow issuer's 6 s; 2 s is generous for a local fetch.
    let started = Instant::now();
    let identity = tokio::time::timeout(
        Duration::from_secs(2),
        verifier.verify(
            &*http,
            &id_token,
            expectations(&sandbox_issuer, &sandbox_issuer, &base),
        ),
    )
    .await
    .expect("the sandbox sign-in is not held up by the slow issuer")
    .expect("valid id_token");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(identity.iss, sandbox_issuer);
    assert!(
        !stalled.is_finished(),
        "the slow issuer is still being fetched"
    );
    let slow_identity = stalled.await.expect("task").expect("valid once fetched");
    assert_eq!(slow_identity.sub, identity.sub);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sign_ins_at_one_issuer_share_one_fetch() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let id_token = sandbox_id_token(&sandbox).await;
    let slow = slow_issuer(&sandbox, Duration::from_millis(300)).await;
    let verifier = Arc::new(IdTokenVerifier::default());
    let http: Arc<ReqwestHttpClient> = Arc::new(ReqwestHttpClient::new().expect("http"));
    let issuer = sandbox.id_token_issuer();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (verifier, http, token) = (verifier.clone(), http.clone(), id_token.clone());
        let (issuer, slow_origin, base) = (issuer.clone(), slow.origin.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            verifier
                .verify(&*http, &token, expectations(&issuer, &slow_origin, &base))
                .await
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("verified");
    }
    assert_eq!(slow.configuration_fetches.load(Ordering::SeqCst), 1);
    assert_eq!(slow.jwks_fetches.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------------------------------------
// Item 8: the discovery cache is bounded and remembers failures only for the negative TTL.

/// Answers `…/.well-known/smart-configuration` under any path (or 500 while `failing`), and 404
/// for everything else.
#[derive(Debug, Default)]
struct ConfigServer {
    origin: std::sync::OnceLock<String>,
    failing: AtomicBool,
    requests: AtomicUsize,
    /// Advertised token endpoint; `None`: `{origin}/token`.
    token_endpoint: std::sync::Mutex<Option<String>>,
    /// Advertised authorization endpoint; `None`: `{origin}/authorize`.
    authorization_endpoint: std::sync::Mutex<Option<String>>,
}

async fn any_configuration(State(server): State<Arc<ConfigServer>>, uri: Uri) -> Response {
    server.requests.fetch_add(1, Ordering::SeqCst);
    let origin = server.origin.get().cloned().unwrap_or_default();
    if uri.path() == "/authorize" {
        // A login step on plain http, on loopback.
        return (
            StatusCode::FOUND,
            [(header::LOCATION, format!("{origin}/login"))],
        )
            .into_response();
    }
    if !uri.path().ends_with("/.well-known/smart-configuration") {
        return StatusCode::NOT_FOUND.into_response();
    }
    if server.failing.load(Ordering::SeqCst) {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let token = server
        .token_endpoint
        .lock()
        .expect("lock")
        .clone()
        .unwrap_or_else(|| format!("{origin}/token"));
    axum::Json(serde_json::json!({
        "token_endpoint": token,
        "authorization_endpoint": server
            .authorization_endpoint
            .lock()
            .expect("lock")
            .clone()
            .unwrap_or_else(|| format!("{origin}/authorize")),
        "capabilities": ["launch-standalone", "client-public"],
    }))
    .into_response()
}

async fn config_server() -> (String, Arc<ConfigServer>) {
    let server = Arc::new(ConfigServer::default());
    let state = server.clone();
    let origin = serve(move |origin| {
        let _ = state.origin.set(origin);
        Router::new().fallback(any_configuration).with_state(state)
    })
    .await;
    (origin, server)
}

#[tokio::test]
async fn the_discovery_cache_keeps_at_most_its_capacity() {
    let (origin, server) = config_server().await;
    let http = ReqwestHttpClient::new().expect("http");
    let cache = DiscoveryCache::with_limits(Duration::from_secs(300), Duration::from_secs(10), 3);
    for i in 0..10 {
        cache
            .get_or_discover(
                &http,
                &smart_adapter_generic::Generic,
                &HookContext::new(&format!("{origin}/t{i}/fhir")),
            )
            .await
            .expect("discovered");
        assert!(
            cache.len() <= 3,
            "{} entries after {} bases",
            cache.len(),
            i + 1
        );
    }
    assert_eq!(cache.len(), 3);
    assert_eq!(server.requests.load(Ordering::SeqCst), 10);
    // The most recent base is still cached; the first was evicted and is fetched again.
    cache
        .get_or_discover(
            &http,
            &smart_adapter_generic::Generic,
            &HookContext::new(&format!("{origin}/t9/fhir")),
        )
        .await
        .expect("cached");
    assert_eq!(server.requests.load(Ordering::SeqCst), 10);
    cache
        .get_or_discover(
            &http,
            &smart_adapter_generic::Generic,
            &HookContext::new(&format!("{origin}/t0/fhir")),
        )
        .await
        .expect("discovered again");
    assert_eq!(server.requests.load(Ordering::SeqCst), 11);
    assert_eq!(cache.len(), 3);
}

#[tokio::test]
async fn a_failed_discovery_is_retried_after_the_negative_ttl_and_not_before() {
    let (origin, server) = config_server().await;
    server.failing.store(true, Ordering::SeqCst);
    let http = ReqwestHttpClient::new().expect("http");
    let negative_ttl = Duration::from_millis(800);
    let cache = DiscoveryCache::with_limits(Duration::from_secs(300), negative_ttl, 16);
    let base = format!("{origin}/fhir");
    let generic = smart_adapter_generic::Generic;

    let first = cache
        .get_or_discover(&http, &generic, &HookContext::new(&base))
        .await
        .expect_err("the server fails");
    assert!(matches!(first, DiscoveryError::NotSmart { .. }), "{first}");
    let asked = server.requests.load(Ordering::SeqCst);
    assert!(asked >= 1);
    let failed_at = Instant::now();

    // The server recovers, but inside the negative TTL nobody asks it.
    server.failing.store(false, Ordering::SeqCst);
    let remembered = cache
        .get_or_discover(&http, &generic, &HookContext::new(&base))
        .await
        .expect_err("remembered failure");
    assert!(
        failed_at.elapsed() < negative_ttl,
        "the test machine is too slow to check this"
    );
    assert!(
        matches!(remembered, DiscoveryError::RecentlyFailed { .. }),
        "{remembered}"
    );
    assert!(
        remembered
            .to_string()
            .contains("does not look like a SMART server"),
        "{remembered}"
    );
    assert_eq!(
        server.requests.load(Ordering::SeqCst),
        asked,
        "not retried inside the TTL"
    );

    tokio::time::sleep(negative_ttl + Duration::from_millis(100)).await;
    cache
        .get_or_discover(&http, &generic, &HookContext::new(&base))
        .await
        .expect("retried after the TTL");
    assert!(server.requests.load(Ordering::SeqCst) > asked);
}

// ---------------------------------------------------------------------------------------------
// Item 9a: an https base's endpoints must be https.

/// Sends requests for `https://ehr.test` to a local plain-http server: a TLS server cannot be
/// real here (no certificate the client trusts), everything else is.
#[derive(Debug)]
struct HttpsToLocal {
    inner: ReqwestHttpClient,
    origin: String,
}

#[async_trait]
impl HttpClient for HttpsToLocal {
    async fn execute(&self, mut request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let url = request.uri().to_string();
        if let Some(rest) = url.strip_prefix("https://ehr.test") {
            *request.uri_mut() = format!("{}{rest}", self.origin).parse().expect("uri");
        }
        self.inner.execute(request).await
    }
}

#[tokio::test]
async fn an_https_base_may_not_advertise_a_plain_http_loopback_token_endpoint() {
    let (origin, server) = config_server().await;
    *server.token_endpoint.lock().expect("lock") = Some(format!("{origin}/token"));
    let http = HttpsToLocal {
        inner: ReqwestHttpClient::new().expect("http"),
        origin: origin.clone(),
    };
    let generic = smart_adapter_generic::Generic;
    let err = discover(&http, &generic, &HookContext::new("https://ehr.test/fhir"))
        .await
        .expect_err("downgrade refused");
    assert!(
        matches!(
            err,
            DiscoveryError::Insecure(InsecureUrl::DowngradeFromHttps { .. })
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains(&format!("{origin}/token")),
        "{err}"
    );
    // The same document for a loopback base is fine: local development.
    discover(
        &http,
        &generic,
        &HookContext::new(&format!("{origin}/fhir")),
    )
    .await
    .expect("loopback base, loopback endpoints");
}

#[tokio::test]
async fn headless_mode_does_not_follow_an_https_server_to_plain_http() {
    let (origin, server) = config_server().await;
    *server.token_endpoint.lock().expect("lock") = Some("https://ehr.test/token".into());
    *server.authorization_endpoint.lock().expect("lock") =
        Some("https://ehr.test/authorize".into());
    let http = Arc::new(HttpsToLocal {
        inner: ReqwestHttpClient::new().expect("http"),
        origin: origin.clone(),
    });
    let base = "https://ehr.test/fhir";
    let client = client_with(
        vec![(
            "app",
            ClientRegistration::public(base, "app", "https://app.example/callback")
                .with_scopes(Scopes::parse("patient/*.rs")),
        )],
        Arc::new(smart_adapter_generic::Generic),
        Some(http.clone()),
        None,
    );
    let request = client
        .begin_standalone_launch(base, StandaloneLaunch::default())
        .await
        .expect("begin");
    let asked = server.requests.load(Ordering::SeqCst);
    let err = authorize_headless(&*http, &request, "https://app.example/callback")
        .await
        .expect_err("not followed");
    let message = err.to_string();
    assert!(message.contains(&format!("{origin}/login")), "{message}");
    assert!(message.contains("https server"), "{message}");
    // The authorize request was sent; the plain-http login page never was.
    assert_eq!(server.requests.load(Ordering::SeqCst), asked + 1);
}

// ---------------------------------------------------------------------------------------------
// Item 9b: headless mode compares the redirect target with the redirect URI as URLs.

#[tokio::test]
async fn headless_stops_at_a_redirect_uri_without_a_path_and_never_connects_to_it() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    // The app's redirect URI: a listener that counts connections and closes them.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let redirect_uri = format!("http://{}", listener.local_addr().expect("addr"));
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    sandbox.register_client(smart_sandbox::ClientRegistration {
        client_id: "bare-redirect".into(),
        auth: smart_sandbox::ClientAuth::Public,
        redirect_uris: vec![redirect_uri.clone()],
        launch_uri: None,
        scopes: STANDALONE_SCOPES.into(),
        context: LaunchDefaults {
            approve: true,
            ..LaunchDefaults::default()
        },
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
    });
    let registration = ClientRegistration::public(&base, "bare-redirect", &redirect_uri)
        .with_scopes(Scopes::parse(STANDALONE_SCOPES));
    let client = client_with(
        vec![("bare", registration)],
        Arc::new(smart_adapter_generic::Generic),
        None,
        None,
    );
    let request = client
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .expect("begin");
    let callback = authorize_headless(&**client.http(), &request, &redirect_uri)
        .await
        .expect("the redirect to the bare redirect URI is recognised");
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "never connected to the app"
    );
    client.complete_launch(&callback).await.expect("complete");
}

// ---------------------------------------------------------------------------------------------
// Item 9c: the refresh margin is min(60 s, lifetime / 2).

#[tokio::test]
async fn a_sixty_second_token_is_not_refreshed_on_every_call() {
    let sandbox = sandbox().await;
    sandbox.set_behavior(|b| b.access_token_lifetime = Duration::from_secs(60));
    let base = sandbox.fhir_base();
    let client = public_client(&base);
    let done = standalone(&client, &base).await;
    let source = client
        .session_bearer(&done.session_id)
        .await
        .expect("bearer source");
    for _ in 0..5 {
        let bearer = source.bearer().await.expect("token");
        assert_eq!(bearer.access_token, done.session.tokens.access_token);
    }
    // With a fixed 60 s margin, a 60 s token was "expiring" from the start: 5 refreshes.
    assert_eq!(sandbox.counters().refresh_requests, 0);
}

#[tokio::test]
async fn a_short_token_is_refreshed_in_the_second_half_of_its_life() {
    let sandbox = sandbox().await;
    sandbox.set_behavior(|b| b.access_token_lifetime = Duration::from_secs(4));
    let base = sandbox.fhir_base();
    let client = public_client(&base);
    let done = standalone(&client, &base).await;
    let source = client
        .session_bearer(&done.session_id)
        .await
        .expect("bearer source");
    let fresh = source.bearer().await.expect("token");
    assert_eq!(fresh.access_token, done.session.tokens.access_token);
    assert_eq!(
        sandbox.counters().refresh_requests,
        0,
        "4 s token, 2 s margin"
    );
    // Past half its life (whole seconds: up to 3 s), it is renewed before use.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let renewed = source.bearer().await.expect("token");
    assert_ne!(renewed.access_token, done.session.tokens.access_token);
    assert_eq!(sandbox.counters().refresh_requests, 1);
}

#[test]
fn the_default_margin_handles_extreme_lifetimes() {
    use smart_core::bearer::default_refresh_margin;
    assert_eq!(
        default_refresh_margin(Duration::MAX),
        Duration::from_secs(60)
    );
    assert_eq!(default_refresh_margin(Duration::ZERO), Duration::ZERO);
    assert_eq!(
        default_refresh_margin(Duration::from_secs(u64::MAX)),
        Duration::from_secs(60)
    );
    assert_eq!(
        default_refresh_margin(Duration::from_secs(1)),
        Duration::from_millis(500)
    );
}

// ---------------------------------------------------------------------------------------------
// Item 13: TLS roots only for https.

#[tokio::test]
async fn a_plain_http_launch_never_loads_the_tls_roots() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let http = Arc::new(ReqwestHttpClient::new().expect("http"));
    assert!(!http.tls_initialised());
    let client = client_with(
        vec![("public", public_registration(&base))],
        Arc::new(smart_adapter_generic::Generic),
        Some(http.clone()),
        None,
    );
    let done = standalone(&client, &base).await;
    client
        .refresh(&done.session_id, smart_core::RefreshOptions::default())
        .await
        .expect("refresh");
    assert!(
        !http.tls_initialised(),
        "plain-http loopback: no trust roots loaded"
    );

    // The first https request loads them (the connection itself is refused: nothing listens).
    let request = http::Request::get("https://127.0.0.1:1/fhir/metadata")
        .body(Vec::new())
        .expect("request");
    let err = http
        .execute(request)
        .await
        .expect_err("nothing listens on port 1");
    assert!(
        http.tls_initialised() || err.to_string().contains("could not set up TLS"),
        "{err}"
    );
}

const NO_ROOTS_CHILD: &str = "SMART_CORE_TEST_NO_ROOTS_CHILD";

/// Runs in a child process (see the next test) with an empty certificate store.
#[tokio::test]
async fn tls_roots_missing_child_process() {
    if std::env::var_os(NO_ROOTS_CHILD).is_none() {
        return; // only meaningful in the child process the next test starts
    }
    // Building the client does not touch the roots…
    let http = ReqwestHttpClient::new().expect("a client builds without trust roots");
    // …the first https request does, and names its URL (never its query).
    let request = http::Request::get("https://127.0.0.1:1/fhir/metadata?secret=abc")
        .body(Vec::new())
        .expect("request");
    let message = http
        .execute(request)
        .await
        .expect_err("no roots")
        .to_string();
    assert!(
        message.contains("https://127.0.0.1:1/fhir/metadata"),
        "{message}"
    );
    assert!(message.contains("could not set up TLS"), "{message}");
    assert!(!message.contains("secret=abc"), "{message}");
    assert!(!http.tls_initialised());
    println!("NO-ROOTS-CHECKED: {message}");
}

#[test]
fn a_machine_without_trust_roots_gets_an_error_naming_the_url() {
    let dir = std::env::temp_dir().join(format!("smart-core-no-roots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let empty_file = dir.join("empty.pem");
    std::fs::write(&empty_file, "").expect("file");
    let output = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["tls_roots_missing_child_process", "--exact", "--nocapture"])
        .env(NO_ROOTS_CHILD, "1")
        .env("SSL_CERT_FILE", &empty_file)
        .env("SSL_CERT_DIR", &dir)
        .output()
        .expect("child runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("NO-ROOTS-CHECKED"), "{stdout}");
    assert!(!stdout.contains("HTTP request to  failed"), "{stdout}");
}

// ---------------------------------------------------------------------------------------------
// Arithmetic on server numbers.

#[test]
fn introspection_times_at_the_extremes_do_not_panic() {
    use smart_core::introspection::parse_introspection;
    for (exp, expected) in [
        (serde_json::json!(u64::MAX), Some(u64::MAX)),
        (serde_json::json!(-1), None),
        (serde_json::json!(1e300), None),
        (serde_json::json!("18446744073709551616"), None),
    ] {
        let body = serde_json::json!({"active": true, "exp": exp, "iat": exp});
        let parsed = parse_introspection(
            body.as_object().expect("object").clone(),
            "https://ehr.example/fhir",
        )
        .expect("parsed");
        assert_eq!(parsed.exp, expected, "{exp}");
        assert_eq!(parsed.iat, expected, "{exp}");
    }
}

/// A backend-services token endpoint whose `expires_in` is chosen by the test.
#[derive(Debug, Default)]
struct ExtremeTokens {
    expires_in: std::sync::Mutex<serde_json::Value>,
    token_requests: AtomicUsize,
}

async fn extreme_token_server() -> (String, Arc<ExtremeTokens>) {
    let tokens = Arc::new(ExtremeTokens::default());
    let state = tokens.clone();
    let origin = serve(move |origin| {
        let configuration = serde_json::json!({
            "token_endpoint": format!("{origin}/token"),
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES384", "RS384"],
            "capabilities": ["client-confidential-asymmetric"],
        });
        Router::new()
            .route(
                "/fhir/.well-known/smart-configuration",
                get(move || async move { axum::Json(configuration.clone()) }),
            )
            .route(
                "/token",
                axum::routing::post(|State(tokens): State<Arc<ExtremeTokens>>| async move {
                    let n = tokens.token_requests.fetch_add(1, Ordering::SeqCst);
                    let expires_in = tokens.expires_in.lock().expect("lock").clone();
                    axum::Json(serde_json::json!({
                        "access_token": format!("token-{n}"),
                        "token_type": "Bearer",
                        "expires_in": expires_in,
                        "scope": "system/Patient.rs",
                    }))
                }),
            )
            .with_state(state)
    })
    .await;
    (origin, tokens)
}

#[tokio::test]
async fn backend_tokens_with_extreme_lifetimes_give_clean_results() {
    let (origin, tokens) = extreme_token_server().await;
    let base = format!("{origin}/fhir");
    let key =
        smart_core::smart_jose::PrivateKey::generate(smart_core::smart_jose::Algorithm::ES384)
            .expect("key");
    let registration = ClientRegistration::backend(
        &base,
        "backend",
        smart_core::ClientKeys::new(key),
        Scopes::parse("system/Patient.rs"),
    );
    let client = client_with(
        vec![("backend", registration)],
        Arc::new(smart_adapter_generic::Generic),
        None,
        None,
    );

    // u64::MAX seconds: clamped to the longest lifetime believed, reused, no overflow in the margin.
    *tokens.expires_in.lock().expect("lock") = serde_json::json!(u64::MAX);
    let source = client
        .backend_token_source("backend", Scopes::parse("system/Patient.rs"))
        .expect("source");
    let first = source.token().await.expect("token");
    let now = smart_core::token::now_unix();
    let max = now + smart_core::token::MAX_EXPIRES_IN;
    assert!(
        (max - 5..=max).contains(&first.expires_at),
        "clamped to a year: {}",
        first.expires_at
    );
    let again = source.token().await.expect("token");
    assert_eq!(again.access_token, first.access_token);
    assert_eq!(tokens.token_requests.load(Ordering::SeqCst), 1);
    // After a 401 the token is renewed, whatever its expiry said.
    let renewed = source
        .renew_unless_newer(first.generation)
        .await
        .expect("renewed");
    assert_ne!(renewed.access_token, first.access_token);

    // Negative, fractional and absurd values: the token is kept (never lost over a bad number)
    // with a sane expiry: unknown values get the assumed lifetime, huge ones the cap.
    for bad in [
        serde_json::json!(-1),
        serde_json::json!(1e300),
        serde_json::json!("18446744073709551616"),
        serde_json::json!("\u{1b}[2J soon"),
    ] {
        *tokens.expires_in.lock().expect("lock") = bad.clone();
        let fresh = client
            .backend_token_source("backend", Scopes::parse("system/Patient.rs"))
            .expect("source");
        let token = fresh
            .token()
            .await
            .expect("a token despite the odd expires_in");
        let now = smart_core::token::now_unix();
        assert!(
            token.expires_at > now && token.expires_at <= now + smart_core::token::MAX_EXPIRES_IN,
            "{bad}: expires_at {}",
            token.expires_at
        );
    }

    // Zero: usable once, renewed on the next call.
    *tokens.expires_in.lock().expect("lock") = serde_json::json!(0);
    let zero = client
        .backend_token_source("backend", Scopes::parse("system/Patient.rs"))
        .expect("source");
    let a = zero.token().await.expect("token");
    let b = zero.token().await.expect("token");
    assert_ne!(a.access_token, b.access_token);
}
