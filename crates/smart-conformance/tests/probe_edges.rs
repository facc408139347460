//! The probe at its edges: a server that gives no code makes the code checks skipped (not
//! failed), short-lived tokens let the expired-token check run, and a hostile discovery
//! document neither crashes the probe nor reaches the report unescaped.

use smart_conformance::model::{CheckResult, Status};
use smart_conformance::probe::{RedirectApprover, checks, probe, start_probe_sandbox};
use smart_conformance::report::Report;
use smart_core::http::ReqwestHttpClient;
use smart_sandbox::{Behavior, VendorProfile};

fn generic() -> VendorProfile {
    VendorProfile::builtin("generic").expect("generic profile")
}

fn http() -> ReqwestHttpClient {
    ReqwestHttpClient::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .expect("http client")
}

fn status<'a>(results: &'a [CheckResult], id: &str) -> &'a Status {
    &results
        .iter()
        .find(|r| r.def.id == id)
        .expect("reported")
        .status
}

#[tokio::test]
async fn without_a_code_the_code_checks_are_skipped_with_the_reason() {
    let (sandbox, mut target) = start_probe_sandbox(generic(), Behavior::default())
        .await
        .expect("sandbox");
    // Not registered: the server shows an error page and never redirects.
    target.app.client_id = "not-registered".to_owned();
    let results = probe(&target, &http(), &RedirectApprover).await;
    sandbox.shutdown().await;
    match status(&results, checks::S_4_1.id) {
        Status::Skipped(why) => assert!(why.contains("approval does not work"), "{why}"),
        other => panic!("S-4.1 {other:?}"),
    }
    for id in ["S-4.2", "S-6.3", "S-6.4", "S-10.1", "S-11.4"] {
        assert!(
            matches!(status(&results, id), Status::Skipped(_)),
            "{id}: {:?}",
            status(&results, id)
        );
    }
    // Discovery and the backend checks do not need a code.
    assert_eq!(status(&results, checks::S_2_4.id), &Status::Pass);
    assert_eq!(status(&results, checks::S_13_5.id), &Status::Pass);
    assert!(Report { results }.passed());
}

#[tokio::test]
async fn short_lived_tokens_let_the_expired_token_check_run() {
    let behavior = Behavior {
        access_token_lifetime: std::time::Duration::from_secs(2),
        ..Behavior::default()
    };
    let (sandbox, target) = start_probe_sandbox(generic(), behavior)
        .await
        .expect("sandbox");
    let results = probe(&target, &http(), &RedirectApprover).await;
    sandbox.shutdown().await;
    assert_eq!(status(&results, checks::S_10_3.id), &Status::Pass);
}

#[tokio::test]
async fn a_hostile_discovery_document_is_reported_escaped() {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hostile = serde_json::json!({
        "token_endpoint": format!("http://{addr}/token"),
        "capabilities": "\u{1b}[2Jnot an array",
        "grant_types_supported": ["authorization_code", 7],
        "code_challenge_methods_supported": ["plain"],
        "authorization_endpoint": "/relative\u{7}",
        "padding": "x".repeat(10_000),
    });
    let app = axum::Router::new().route(
        "/fhir/.well-known/smart-configuration",
        get(move || {
            let body = hostile.to_string();
            async move { ([(http::header::CONTENT_TYPE, "text/html")], body) }
        }),
    );
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let target = smart_conformance::probe::ProbeTarget::new(
        format!("http://{addr}/fhir"),
        smart_conformance::probe::AppClient::public("x", "http://127.0.0.1:9/cb"),
    );
    let results = probe(&target, &http(), &RedirectApprover).await;
    server.abort();
    assert_eq!(results.len(), checks::ALL.len());
    for id in ["S-1.1", "S-1.3", "S-2.2", "S-2.3", "S-2.4"] {
        assert!(
            matches!(status(&results, id), Status::Fail(_)),
            "{id}: {:?}",
            status(&results, id)
        );
    }
    let table = Report { results }.to_table();
    assert!(
        !table.contains('\u{1b}') && !table.contains('\u{7}'),
        "{table}"
    );
    assert!(table.lines().all(|l| l.len() < 1000), "{table}");
}

#[tokio::test]
async fn the_approver_submits_a_lone_consent_form_and_stops_at_the_redirect_uri() {
    use axum::routing::{get, post};
    use smart_conformance::probe::{Approver, Authorization};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    // The redirect URI is a port nothing listens on: reaching it would fail the walk.
    let redirect_uri = "http://127.0.0.1:9/cb";
    let app = axum::Router::new()
        .route(
            "/authorize",
            get(|| async {
                axum::response::Html(
                    "<html><form method=\"post\" action=\"/consent\">\
                     <input type=\"hidden\" name=\"txn\" value=\"t-1\">\
                     <button name=\"decision\" value=\"allow\">Allow</button>\
                     <button name=\"decision\" value=\"deny\">Deny</button></form></html>",
                )
            }),
        )
        .route(
            "/consent",
            post(move |body: String| async move {
                let ok = body.contains("txn=t-1") && body.contains("decision=allow");
                let location = if ok {
                    format!("{redirect_uri}?code=c-1&state=s")
                } else {
                    format!("{redirect_uri}?error=access_denied&state=s")
                };
                (
                    http::StatusCode::FOUND,
                    [(http::header::LOCATION, location)],
                )
            }),
        );
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let request = http::Request::builder()
        .uri(format!("http://{addr}/authorize?client_id=x"))
        .body(Vec::new())
        .expect("request");
    let outcome = RedirectApprover
        .authorize(&http(), request, &[redirect_uri])
        .await
        .expect("walk");
    server.abort();
    assert_eq!(outcome.code(), Some("c-1"), "{outcome:?}");
    assert!(matches!(outcome, Authorization::Redirected { ref to, .. } if to == redirect_uri));
}

#[tokio::test]
async fn id_token_faults_fail_the_id_token_check_and_lowercase_bearer_does_not() {
    use smart_sandbox::IdTokenFault;
    let cases = [
        (IdTokenFault::BadSignature, false, "signature"),
        (IdTokenFault::WrongAudience, false, "aud"),
        (IdTokenFault::AlgNone, false, "alg"),
        (IdTokenFault::None, true, ""),
    ];
    let mut runs = Vec::new();
    for (fault, lowercase, _) in cases {
        let behavior = Behavior {
            id_token_fault: fault,
            lowercase_token_type: lowercase,
            ..Behavior::default()
        };
        runs.push(tokio::spawn(async move {
            let (sandbox, target) = start_probe_sandbox(generic(), behavior)
                .await
                .expect("sandbox");
            let results = probe(&target, &http(), &RedirectApprover).await;
            sandbox.shutdown().await;
            results
        }));
    }
    for ((fault, _, word), run) in cases.into_iter().zip(runs) {
        let results = run.await.expect("probe");
        let s = status(&results, checks::S_12_3.id);
        if fault == IdTokenFault::None {
            assert_eq!(s, &Status::Pass);
            assert_eq!(status(&results, checks::S_8_1.id), &Status::Pass);
        } else {
            match s {
                Status::Fail(why) => assert!(why.contains(word), "{fault:?}: {why}"),
                other => panic!("{fault:?}: S-12.3 {other:?}"),
            }
        }
    }
}
