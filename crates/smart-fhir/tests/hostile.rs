//! Hostile servers over real HTTP: numbers chosen to overflow (`Retry-After`, `expires_in`), a
//! 100,000-entry granted `scope`, and error bodies built to mess up a terminal. Every case ends
//! in a clean result or typed error, quickly, and no server text reaches a message raw.

#[path = "support/mock.rs"]
mod mock;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::{get, post};
use mock::{Canned, MockServer, TestAuth};
use serde_json::json;
use smart_core::http::ReqwestHttpClient;
use smart_core::scope::Scopes;
use smart_core::smart_jose::{Algorithm, PrivateKey};
use smart_core::token::{MAX_EXPIRES_IN, now_unix};
use smart_core::{ClientKeys, ClientRegistration, SmartClient};
use smart_fhir::{FhirClient, FhirError, MAX_RETRY_AFTER, RetryPolicy};

/// The default retry policy (30 s budget, 4 attempts), with short backoffs.
fn fhir(server: &MockServer) -> FhirClient {
    FhirClient::new(
        Arc::new(ReqwestHttpClient::new().expect("http")),
        TestAuth::new(&server.base()),
    )
    .with_retry(RetryPolicy {
        initial_backoff: Duration::from_millis(10),
        ..RetryPolicy::default()
    })
    .with_timeout(Duration::from_secs(5))
}

/// True for characters that must never reach a terminal raw: C0, C1, DEL, bidi controls.
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[tokio::test]
async fn an_overflowing_retry_after_is_a_clean_rate_limit_error() {
    for (status, retry_after) in [
        (429, "18446744073709551615"),
        (503, "18446744073709551615"),
        (429, "99999999999999999999999999999999"),
        (503, "Fri, 31 Dec 9999 23:59:59 GMT"),
    ] {
        let server = MockServer::start().await;
        let client = fhir(&server);
        server.push(Canned::text(status, "slow down").header("retry-after", retry_after));
        let started = Instant::now();
        let err = client
            .read_json("Patient", "p1")
            .await
            .expect_err("rate limited");
        // Before the fix this panicked ("overflow when adding durations") for the first three.
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{retry_after}: {:?}",
            started.elapsed()
        );
        match &err {
            FhirError::RateLimited {
                status: s,
                retry_after: Some(wait),
                ..
            } => {
                assert_eq!(*s, status);
                assert_eq!(*wait, MAX_RETRY_AFTER, "{retry_after}");
                // A caller can add it to an Instant.
                let _ = Instant::now() + *wait;
            }
            other => panic!("{retry_after}: {other:?}"),
        }
        assert!(err.is_retryable());
        assert!(err.to_string().contains("86400 s"), "{err}");
        assert_eq!(server.seen().len(), 1, "no retry beyond the budget");
    }
}

#[tokio::test]
async fn an_overflowing_retry_after_after_a_slow_response_does_not_panic() {
    // More than a second into the request, `elapsed + Retry-After` no longer fits a Duration:
    // this is where the unclamped, unchecked sum panicked.
    let server = MockServer::start().await;
    let client = fhir(&server);
    server.push(
        Canned::text(429, "slow down")
            .header("retry-after", "18446744073709551615")
            .delayed(Duration::from_millis(1_100)),
    );
    let started = Instant::now();
    let err = client
        .read_json("Patient", "p1")
        .await
        .expect_err("rate limited");
    // The server's own 1.1 s delay, and no more than a moment on top.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(err, FhirError::RateLimited { retry_after: Some(wait), .. } if wait == MAX_RETRY_AFTER),
        "{err:?}"
    );
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn negative_and_garbage_retry_after_fall_back_to_backoff() {
    for retry_after in ["-5", "soon", "1e9", "Sat, 99 Foo 2024 99:99:99 GMT", ""] {
        let server = MockServer::start().await;
        let client = fhir(&server);
        for _ in 0..4 {
            server.push(Canned::text(429, "busy").header("retry-after", retry_after));
        }
        let started = Instant::now();
        let err = client
            .read_json("Patient", "p1")
            .await
            .expect_err("rate limited");
        assert!(started.elapsed() < Duration::from_secs(1), "{retry_after}");
        assert!(
            matches!(
                err,
                FhirError::RateLimited {
                    status: 429,
                    retry_after: None,
                    ..
                }
            ),
            "{retry_after}: {err:?}"
        );
        assert_eq!(
            server.seen().len(),
            4,
            "{retry_after}: retried with backoff"
        );
    }
}

#[tokio::test]
async fn an_html_error_page_becomes_readable_text() {
    let server = MockServer::start().await;
    let client = fhir(&server);
    let page = "<!DOCTYPE html><html><head><title>Error</title><style>body{color:red}</style>\
                <script>document.write('\u{1b}[2J owned')</script></head>\
                <body><h1>Bad&nbsp;Request</h1><p>Parameter &quot;code&quot; &amp; &lt;date&gt; \
                are invalid&#x1b;[31m</p></body></html>";
    server.push(Canned {
        status: 400,
        headers: vec![("content-type".into(), "text/html; charset=utf-8".into())],
        body: page.into(),
        delay: Duration::ZERO,
    });
    let err = client
        .read_json("Patient", "p1")
        .await
        .expect_err("bad request");
    let shown = err.to_string();
    assert!(matches!(err, FhirError::BadRequest { .. }), "{err:?}");
    assert!(
        shown.contains(r#"Bad Request Parameter "code" & <date> are invalid\u{1b}[31m"#),
        "{shown}"
    );
    assert!(
        !shown.contains("<h1>") && !shown.contains("&amp;"),
        "{shown}"
    );
    assert!(
        !shown.contains("document.write") && !shown.contains("color:red"),
        "{shown}"
    );
    assert!(!shown.chars().any(is_unsafe), "{shown:?}");
}

#[tokio::test]
async fn operation_outcome_text_and_header_values_are_escaped() {
    let server = MockServer::start().await;
    let client = fhir(&server);
    let outcome = json!({"resourceType": "OperationOutcome", "issue": [{
        "severity": "error",
        "code": "invalid\u{1b}]0;title\u{7}",
        "diagnostics": "Patient\u{1b}[2J\u{1b}[H is \u{202e}lanigiro\u{202c} \u{9b}31m bad\nline two"
    }]});
    server.push(Canned::json(422, outcome));
    let err = client
        .read_json("Patient", "p1")
        .await
        .expect_err("unprocessable");
    let shown = err.to_string();
    assert!(!shown.chars().any(is_unsafe), "{shown:?}");
    assert!(
        shown.contains(
            r"Patient\u{1b}[2J\u{1b}[H is \u{202e}lanigiro\u{202c} \u{9b}31m bad line two"
        ),
        "{shown}"
    );
    assert!(shown.contains(r"invalid\u{1b}]0;title\u{7}"), "{shown}");

    // Plain-text bodies are escaped too, and a huge header parameter is cut.
    server.push(Canned::text(403, "denied\u{1b}[2J\u{202e}").header(
        "www-authenticate",
        &format!(
            r#"Bearer error="insufficient_scope", scope="{}""#,
            "patient/Observation.rs ".repeat(500)
        ),
    ));
    let err = client
        .read_json("Patient", "p1")
        .await
        .expect_err("forbidden");
    let shown = err.to_string();
    assert!(!shown.chars().any(is_unsafe), "{shown:?}");
    assert!(shown.contains(r"denied\u{1b}[2J\u{202e}"), "{shown}");
    assert!(shown.len() < 1_000, "{} bytes: {shown}", shown.len());
}

// -------------------------------------------------------------------------------------------
// Token responses (smart_core's token parser over real HTTP, through a backend-services flow)
// -------------------------------------------------------------------------------------------

/// A SMART server with a `client_credentials` token endpoint that answers with `token_body`.
struct TokenServer {
    base: String,
    token_body: Arc<Mutex<String>>,
}

impl TokenServer {
    async fn start() -> TokenServer {
        let token_body = Arc::new(Mutex::new(String::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let config = json!({
            "token_endpoint": format!("http://{addr}/token"),
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES384"],
            "capabilities": ["client-confidential-asymmetric"],
        });
        let app = axum::Router::new()
            .route(
                "/fhir/.well-known/smart-configuration",
                get(move || {
                    let config = config.clone();
                    async move { axum::Json(config) }
                }),
            )
            .route(
                "/token",
                post(|State(body): State<Arc<Mutex<String>>>| async move {
                    let body = body.lock().expect("lock").clone();
                    ([("content-type", "application/json")], body)
                }),
            )
            .with_state(token_body.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TokenServer {
            base: format!("http://{addr}/fhir"),
            token_body,
        }
    }

    fn answer(&self, body: String) {
        *self.token_body.lock().expect("lock") = body;
    }

    fn client(&self) -> SmartClient {
        let keys = ClientKeys::new(PrivateKey::generate(Algorithm::ES384).expect("key"));
        let registration = ClientRegistration::backend(
            self.base.clone(),
            "backend",
            keys,
            Scopes::parse("system/*.rs"),
        );
        SmartClient::builder()
            .registration("backend", registration)
            .adapter(Arc::new(smart_adapter_generic::Generic))
            .build()
            .expect("client builds")
    }
}

#[tokio::test]
async fn hostile_expires_in_gives_tokens_with_a_sane_expiry() {
    let server = TokenServer::start().await;
    let smart = server.client();
    let year_from_now = now_unix() + MAX_EXPIRES_IN;
    for (expires_in, expect_unknown) in [
        ("18446744073709551615", false),
        ("\"18446744073709551615999999\"", false),
        ("1e300", false),
        ("3600.75", false),
        ("-1", true),
        ("-1e300", true),
        ("\"soon\"", true),
        ("[]", true),
    ] {
        let value: serde_json::Value = serde_json::from_str(expires_in).expect("JSON value");
        server.answer(
            json!({"access_token": format!("at-{expires_in}"), "token_type": "Bearer",
                   "expires_in": value, "scope": "system/*.rs"})
            .to_string(),
        );
        let source = smart
            .backend_token_source("backend", Scopes::parse("system/*.rs"))
            .expect("source");
        let started = Instant::now();
        let token = source
            .token()
            .await
            .unwrap_or_else(|e| panic!("{expires_in}: {e}"));
        assert!(started.elapsed() < Duration::from_secs(2), "{expires_in}");
        assert_eq!(
            token.access_token.expose_secret(),
            format!("at-{expires_in}")
        );
        let lifetime = token.expires_at.saturating_sub(now_unix());
        if expect_unknown {
            // Unknown expiry: the backend source assumes SMART's 5 minutes.
            assert!(lifetime <= 300, "{expires_in}: {lifetime}");
        } else {
            assert!(lifetime >= 3_590, "{expires_in}: {lifetime}");
            assert!(token.expires_at <= year_from_now + 5, "{expires_in}");
        }
    }
}

#[tokio::test]
async fn a_100000_scope_grant_is_parsed_quickly_and_capped() {
    let server = TokenServer::start().await;
    let smart = server.client();
    let scope: Vec<String> = (0..100_000).map(|i| format!("system/Type{i}.rs")).collect();
    let scope = scope.join(" ");
    assert!(scope.len() > 1_600_000);
    server.answer(
        json!({"access_token": "at", "token_type": "Bearer", "expires_in": 300, "scope": scope})
            .to_string(),
    );
    let source = smart
        .backend_token_source("backend", Scopes::parse("system/*.rs"))
        .expect("source");
    let started = Instant::now();
    let token = source.token().await.expect("token");
    // Generous for a debug build on a shared machine (HTTP included): the quadratic
    // de-duplication took 25 s of CPU in a release build on this input.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(token.scopes.len(), smart_core::scope::MAX_SCOPES);
    assert_eq!(
        token.scopes.omitted(),
        100_000 - smart_core::scope::MAX_SCOPES
    );
    let cmp = Scopes::compare(&Scopes::parse("system/*.rs"), &token.scopes);
    assert_eq!(cmp.granted_omitted, token.scopes.omitted());
}
