//! Captures every `tracing` event (TRACE and up, the HTTP stack included) while the client
//! reads, searches, retries and refreshes, and checks that no token appears at any level and that
//! URLs — whose queries carry patient identifiers — appear only at DEBUG and below.

#[path = "support/mock.rs"]
mod mock;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mock::{Canned, MockServer, TestAuth};
use serde_json::json;
use smart_core::http::ReqwestHttpClient;
use smart_fhir::{FhirClient, RetryPolicy, Search};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn tokens_never_and_urls_only_at_debug() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start().await;
    let auth = TestAuth::new(&server.base());
    let client = FhirClient::new(Arc::new(ReqwestHttpClient::new().expect("http")), auth)
        .with_retry(RetryPolicy {
            initial_backoff: Duration::from_millis(5),
            ..RetryPolicy::default()
        });

    // A 401 (refresh to tok-2), a 503 retry, then a page with an outcome entry.
    server.push(Canned::text(401, "").header("www-authenticate", "Bearer error=\"invalid_token\""));
    server.push(Canned::text(503, "busy"));
    server.push(Canned::json(
        200,
        json!({
            "resourceType": "Bundle", "type": "searchset",
            "entry": [
                {"resource": {"resourceType": "Observation", "id": "o1"}, "search": {"mode": "match"}},
                {"resource": {"resourceType": "OperationOutcome", "issue": [{"severity": "warning", "code": "not-supported", "diagnostics": "parameter ignored"}]}, "search": {"mode": "outcome"}}
            ]
        }),
    ));
    let page = client
        .search_json(&Search::new("Observation").patient("pat-secret-77"))
        .await
        .expect("search");
    assert_eq!(page.outcomes.len(), 1);
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(
        seen[2].header("authorization").as_deref(),
        Some("Bearer tok-2")
    );

    let logs = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf8");
    assert!(logs.contains("fhir.request"), "the span is there:\n{logs}");
    assert!(
        logs.contains("parameter ignored"),
        "outcomes are warned about:\n{logs}"
    );
    for token in ["tok-1", "tok-2"] {
        assert!(!logs.contains(token), "token {token} in the logs:\n{logs}");
    }
    let mut url_seen_at_debug = false;
    for line in logs.lines() {
        let level = line.split_whitespace().nth(1).unwrap_or("");
        let verbose = matches!(level, "DEBUG" | "TRACE");
        if line.contains("pat-secret-77") {
            assert!(verbose, "patient data at {level}: {line}");
            url_seen_at_debug = true;
        }
    }
    assert!(url_seen_at_debug, "the URL is logged at DEBUG:\n{logs}");
    assert!(
        logs.lines()
            .any(|l| l.contains(" WARN ") && l.contains("status=503")),
        "the retry is a warning:\n{logs}"
    );
}
