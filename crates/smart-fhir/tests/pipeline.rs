//! The request pipeline against a scripted FHIR server over real HTTP: headers, token refresh on
//! 401, retries and their limits, the base check on `next` links, error bodies, timeouts.

#[path = "support/mock.rs"]
mod mock;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::{StreamExt as _, TryStreamExt as _};
use mock::{Canned, MockServer, TestAuth};
use serde_json::json;
use smart_core::http::ReqwestHttpClient;
use smart_fhir::{ETag, FhirClient, FhirError, RetryPolicy, Search};

fn fhir(server: &MockServer, auth: Arc<TestAuth>) -> FhirClient {
    let client = FhirClient::new(Arc::new(ReqwestHttpClient::new().expect("http")), auth)
        .with_retry(RetryPolicy {
            initial_backoff: Duration::from_millis(10),
            ..RetryPolicy::default()
        })
        .with_timeout(Duration::from_secs(5));
    assert_eq!(client.base(), server.base());
    client
}

fn outcome(code: &str, text: &str) -> serde_json::Value {
    json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": text}]})
}

#[tokio::test]
async fn requests_carry_fhir_headers_and_the_bearer_token() {
    let server = MockServer::start().await;
    let auth = TestAuth::new(&server.base());
    let client = fhir(&server, auth);
    server.push(
        Canned::json(
            200,
            json!({"resourceType": "Patient", "id": "p1", "meta": {"versionId": "7"}}),
        )
        .header("etag", "W/\"7\"")
        .header(
            "last-modified",
            &httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        ),
    );
    let read = client.read_json("Patient", "p1").await.expect("read");
    assert_eq!(read.etag, Some(ETag::new("W/\"7\"")));
    assert_eq!(read.version_id.as_deref(), Some("7"));
    assert_eq!(
        read.last_modified,
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
    );

    server.push(Canned::json(
        200,
        json!({"resourceType": "Patient", "id": "p1"}),
    ));
    client
        .update_json(&read.resource, read.etag.as_ref())
        .await
        .expect("update");
    server.push(Canned::json(
        201,
        json!({"resourceType": "Patient", "id": "p2"}),
    ));
    client
        .create_json_conditional(&json!({"resourceType": "Patient"}), "identifier=urn:x|1")
        .await
        .expect("create");
    server.push(Canned::json(
        200,
        json!({"resourceType": "Bundle", "type": "searchset"}),
    ));
    client
        .search_json(&Search::new("Observation").patient("p1").post())
        .await
        .expect("search");

    let seen = server.seen();
    assert_eq!(seen.len(), 4);
    for s in &seen {
        assert_eq!(s.header("authorization").as_deref(), Some("Bearer tok-1"));
        assert_eq!(s.header("accept").as_deref(), Some("application/fhir+json"));
    }
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path_and_query, "/fhir/Patient/p1");
    assert_eq!(seen[1].method, "PUT");
    assert_eq!(seen[1].path_and_query, "/fhir/Patient/p1");
    assert_eq!(seen[1].header("if-match").as_deref(), Some("W/\"7\""));
    assert_eq!(
        seen[1].header("content-type").as_deref(),
        Some("application/fhir+json")
    );
    assert_eq!(seen[2].method, "POST");
    assert_eq!(seen[2].path_and_query, "/fhir/Patient");
    assert_eq!(
        seen[2].header("if-none-exist").as_deref(),
        Some("identifier=urn:x|1")
    );
    assert_eq!(
        seen[2].header("prefer").as_deref(),
        Some("return=representation")
    );
    assert_eq!(seen[3].method, "POST");
    assert_eq!(seen[3].path_and_query, "/fhir/Observation/_search");
    assert_eq!(
        seen[3].header("content-type").as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        seen[3].body, "patient=p1",
        "POST _search keeps the patient out of the URL"
    );
}

#[tokio::test]
async fn a_401_refreshes_once_and_retries_once() {
    let server = MockServer::start().await;
    let auth = TestAuth::new(&server.base());
    let client = fhir(&server, auth.clone());

    // Expired token: one refresh, the retry carries the new token and succeeds.
    server.push(
        Canned::json(401, outcome("expired", "the access token expired"))
            .header("www-authenticate", "Bearer error=\"invalid_token\""),
    );
    let read = client
        .read_json("Patient", "p1")
        .await
        .expect("read after refresh");
    assert_eq!(read.resource["id"], "unscripted");
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].header("authorization").as_deref(),
        Some("Bearer tok-1")
    );
    assert_eq!(
        seen[1].header("authorization").as_deref(),
        Some("Bearer tok-2")
    );
    assert_eq!(auth.refreshes(), 1);

    // Refused again after the refresh (a bare 401, no error code): Unauthorized, one refresh.
    server.push(Canned::text(401, "").header("www-authenticate", "Bearer realm=\"x\""));
    server.push(Canned::text(401, "").header("www-authenticate", "Bearer realm=\"x\""));
    let err = client
        .read_json("Patient", "p1")
        .await
        .expect_err("401 twice");
    assert!(
        matches!(err, FhirError::Unauthorized { status: 401, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("start a new launch"), "{err}");
    assert_eq!(auth.refreshes(), 2, "exactly one more refresh");
    assert_eq!(server.seen().len(), 4);

    // A 401 on a plain create is also repeated once: the server refused it before acting.
    server.push(Canned::text(401, "").header("www-authenticate", "Bearer error=\"invalid_token\""));
    server.push(Canned::json(
        201,
        json!({"resourceType": "Patient", "id": "new"}),
    ));
    let created = client
        .create_json(&json!({"resourceType": "Patient"}))
        .await
        .expect("create after refresh");
    assert_eq!(created.status, 201);
}

#[tokio::test]
async fn a_403_never_refreshes() {
    let server = MockServer::start().await;
    let auth = TestAuth::new(&server.base());
    let client = fhir(&server, auth.clone());
    server.push(
        Canned::json(403, outcome("forbidden", "no scope for Observation")).header(
            "www-authenticate",
            "Bearer error=\"insufficient_scope\", scope=\"patient/Observation.rs\"",
        ),
    );
    let err = client
        .read_json("Observation", "o1")
        .await
        .expect_err("403");
    match &err {
        FhirError::Forbidden {
            insufficient_scope,
            scope,
            ..
        } => {
            assert!(*insufficient_scope);
            assert_eq!(scope.as_deref(), Some("patient/Observation.rs"));
        }
        other => panic!("{other}"),
    }
    assert!(err.outcome().is_some());
    // Epic's bare 403: a policy denial.
    server.push(Canned::text(403, ""));
    let err = client
        .read_json("Observation", "o1")
        .await
        .expect_err("403");
    assert!(
        matches!(
            err,
            FhirError::Forbidden {
                insufficient_scope: false,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(auth.refreshes(), 0);
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn the_session_ending_surfaces_as_an_auth_error() {
    let server = MockServer::start().await;
    let auth = TestAuth::ending(&server.base());
    let client = fhir(&server, auth);
    server.push(Canned::text(401, "").header("www-authenticate", "Bearer error=\"invalid_token\""));
    let err = client.read_json("Patient", "p1").await.expect_err("ended");
    assert!(
        matches!(
            err,
            FhirError::Auth(smart_core::BearerError::SessionEnded { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("start a new launch"), "{err}");
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    let server = MockServer::start().await;
    let client = fhir(&server, TestAuth::new(&server.base()));
    let at = SystemTime::now() + Duration::from_secs(1);
    server
        .push(Canned::text(503, "maintenance").header("retry-after", &httpdate::fmt_http_date(at)));
    let started = Instant::now();
    client.read_json("Patient", "p1").await.expect("retried");
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    // HTTP dates have whole seconds: the retry comes no earlier than the named second.
    let named_second = httpdate::parse_http_date(&httpdate::fmt_http_date(at)).expect("date");
    assert!(SystemTime::now() >= named_second);
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn waits_beyond_the_budget_are_not_made() {
    let server = MockServer::start().await;
    let client = fhir(&server, TestAuth::new(&server.base()));
    server.push(Canned::text(429, "slow down").header("retry-after", "120"));
    let started = Instant::now();
    let err = client
        .read_json("Patient", "p1")
        .await
        .expect_err("gives up");
    assert!(started.elapsed() < Duration::from_secs(2));
    match &err {
        FhirError::RateLimited {
            retry_after, body, ..
        } => {
            assert_eq!(*retry_after, Some(Duration::from_secs(120)));
            assert_eq!(body.excerpt.as_deref(), Some("slow down"));
        }
        other => panic!("{other}"),
    }
    assert!(err.is_retryable());
    assert_eq!(server.seen().len(), 1);

    // Attempts run out: 4 tries in all by default.
    for _ in 0..4 {
        server.push(Canned::text(502, "bad gateway"));
    }
    let err = client
        .read_json("Patient", "p1")
        .await
        .expect_err("gives up");
    assert!(
        matches!(err, FhirError::Server { status: 502, .. }),
        "{err}"
    );
    assert_eq!(server.seen().len(), 5);
}

#[tokio::test]
async fn only_idempotent_requests_are_retried() {
    let server = MockServer::start().await;
    let client = fhir(&server, TestAuth::new(&server.base()));
    let patient = json!({"resourceType": "Patient", "id": "p1"});

    server.push(Canned::text(503, "busy"));
    let err = client.create_json(&patient).await.expect_err("not retried");
    assert!(
        matches!(err, FhirError::Server { status: 503, .. }),
        "{err}"
    );
    assert_eq!(server.seen().len(), 1);

    let batch = json!({"resourceType": "Bundle", "type": "transaction", "entry": []});
    server.push(Canned::text(503, "busy"));
    client.batch_json(&batch).await.expect_err("not retried");
    assert_eq!(server.seen().len(), 2);
    assert_eq!(server.seen()[1].path_and_query, "/fhir");

    server.push(Canned::text(503, "busy"));
    client
        .operation_json(
            "Patient/p1/$everything",
            Some(&json!({"resourceType": "Parameters"})),
        )
        .await
        .expect_err("POST operation not retried");
    assert_eq!(server.seen().len(), 3);

    // Idempotent: GET, PUT, DELETE, POST _search, conditional create.
    server.push(Canned::text(503, "busy"));
    client
        .read_json("Patient", "p1")
        .await
        .expect("GET retried");
    server.push(Canned::text(504, "busy"));
    client
        .update_json(&patient, None)
        .await
        .expect("PUT retried");
    server.push(Canned::text(429, "busy"));
    server.push(Canned::text(204, ""));
    client
        .delete("Patient", "p1")
        .await
        .expect("DELETE retried");
    server.push(Canned::text(503, "busy"));
    server.push(Canned::json(
        200,
        json!({"resourceType": "Bundle", "type": "searchset"}),
    ));
    client
        .search_json(&Search::new("Patient").param("name", "x").post())
        .await
        .expect("POST _search retried");
    server.push(Canned::text(503, "busy"));
    client
        .create_json_conditional(&patient, "identifier=a|b")
        .await
        .expect("conditional create retried");
    assert_eq!(server.seen().len(), 3 + 2 * 5);

    // With retries off, nothing is retried.
    let no_retry = client.clone().with_retry(RetryPolicy::none());
    server.push(Canned::text(503, "busy"));
    no_retry
        .read_json("Patient", "p1")
        .await
        .expect_err("no retry");
    assert_eq!(server.seen().len(), 14);
}

#[tokio::test]
async fn timeouts_are_retried_for_reads_only() {
    let server = MockServer::start().await;
    let client =
        fhir(&server, TestAuth::new(&server.base())).with_timeout(Duration::from_millis(200));
    server.push(
        Canned::json(200, json!({"resourceType": "Patient", "id": "slow"}))
            .delayed(Duration::from_secs(2)),
    );
    let read = client.read_json("Patient", "p1").await.expect("second try");
    assert_eq!(read.resource["id"], "unscripted");

    server.push(
        Canned::json(201, json!({"resourceType": "Patient", "id": "slow"}))
            .delayed(Duration::from_secs(2)),
    );
    let err = client
        .create_json(&json!({"resourceType": "Patient"}))
        .await
        .expect_err("create not retried");
    assert!(
        matches!(
            err,
            FhirError::Http(smart_core::http::HttpError::Timeout { .. })
        ),
        "{err}"
    );
    assert!(err.is_retryable());
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn foreign_next_links_are_refused_without_sending() {
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    let client = fhir(&server, TestAuth::new(&server.base()));
    let bundle = |next: &str| {
        json!({
            "resourceType": "Bundle", "type": "searchset",
            "link": [{"relation": "next", "url": next}],
            "entry": [{"resource": {"resourceType": "Observation", "id": "o"}}]
        })
    };
    server.push(Canned::json(
        200,
        bundle(&format!("{}/Observation?page=2", server.base())),
    ));
    server.push(Canned::json(
        200,
        bundle(&format!("{}/Observation?page=3", elsewhere.base())),
    ));
    let pages: Vec<_> = client
        .pages(&Search::new("Observation").patient("p1"))
        .collect()
        .await;
    assert_eq!(pages.len(), 3);
    assert!(pages[0].is_ok() && pages[1].is_ok());
    let err = pages[2].as_ref().expect_err("foreign");
    assert!(matches!(err, FhirError::ForeignUrl { .. }), "{err}");
    assert!(
        !err.to_string().contains("page=3"),
        "the query is not echoed: {err}"
    );
    assert_eq!(server.seen().len(), 2);
    assert!(
        elsewhere.seen().is_empty(),
        "the token never left for the other server"
    );
    assert_eq!(
        server.seen()[0].path_and_query,
        "/fhir/Observation?patient=p1"
    );
    assert_eq!(server.seen()[1].path_and_query, "/fhir/Observation?page=2");

    // Same host, other path: also foreign. So are explicit URLs elsewhere.
    let err = client
        .get_json(&format!("http://{}/admin/Patient/1", server.addr))
        .await
        .expect_err("other path");
    assert!(matches!(err, FhirError::ForeignUrl { .. }), "{err}");
    let err = client
        .get_json(&format!("{}/Patient/1", elsewhere.base()))
        .await
        .expect_err("other port");
    assert!(matches!(err, FhirError::ForeignUrl { .. }), "{err}");
    assert!(elsewhere.seen().is_empty());
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn pages_stop_at_the_limit_and_at_a_self_loop() {
    let server = MockServer::start().await;
    let client = fhir(&server, TestAuth::new(&server.base()));
    let page = |next: &str| {
        json!({
            "resourceType": "Bundle", "type": "searchset",
            "link": [{"relation": "next", "url": format!("{}/Observation?page={next}", server.base())}],
            "entry": [{"resource": {"resourceType": "Observation", "id": "o"}}]
        })
    };
    for n in 2..5 {
        server.push(Canned::json(200, page(&n.to_string())));
    }
    let found: Vec<_> = client
        .resources(&Search::new("Observation").page_limit(3))
        .try_collect()
        .await
        .expect("three pages");
    assert_eq!(found.len(), 3);
    assert_eq!(server.seen().len(), 3);

    // Without a limit, a next link that points to the page just fetched ends the stream.
    server.push(Canned::json(200, page("again")));
    server.push(Canned::json(200, page("again")));
    server.push(Canned::json(200, page("again")));
    let all: Vec<_> = client
        .resources(&Search::new("Observation"))
        .try_collect()
        .await
        .expect("stops");
    assert_eq!(all.len(), 2);
    assert_eq!(server.seen().len(), 5);
}

#[tokio::test]
async fn error_bodies_keep_outcomes_and_plain_text() {
    let server = MockServer::start().await;
    let client = fhir(&server, TestAuth::new(&server.base()));
    server.push(Canned::text(
        400,
        "The search parameter patient or subject is required.",
    ));
    let err = client
        .search_json(&Search::new("Observation"))
        .await
        .expect_err("400");
    assert!(
        matches!(err, FhirError::BadRequest { status: 400, .. }),
        "{err}"
    );
    assert_eq!(
        err.body().and_then(|b| b.excerpt.as_deref()),
        Some("The search parameter patient or subject is required.")
    );
    assert!(err.outcome().is_none());

    for (status, check) in [
        (
            404,
            (|e: &FhirError| matches!(e, FhirError::NotFound { .. })) as fn(&FhirError) -> bool,
        ),
        (410, |e| matches!(e, FhirError::Gone { .. })),
        (409, |e| matches!(e, FhirError::Conflict { .. })),
        (412, |e| matches!(e, FhirError::PreconditionFailed { .. })),
        (422, |e| matches!(e, FhirError::Unprocessable { .. })),
        (500, |e| matches!(e, FhirError::Server { .. })),
        (405, |e| matches!(e, FhirError::UnexpectedStatus { .. })),
    ] {
        server.push(Canned::json(status, outcome("processing", "why")));
        let err = client.read_json("Patient", "p1").await.expect_err("error");
        assert!(check(&err), "{status}: {err}");
        assert_eq!(err.status(), Some(status));
        assert!(err.outcome().is_some(), "{status}");
        assert!(err.to_string().contains("processing: why"), "{err}");
    }

    // A 200 that is not FHIR.
    server.push(Canned::text(200, "<html>login</html>"));
    let err = client.read_json("Patient", "p1").await.expect_err("html");
    assert!(
        matches!(err, FhirError::InvalidResponse { status: 200, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn invalid_arguments_fail_before_sending() {
    let server = MockServer::start().await;
    let client = fhir(&server, TestAuth::new(&server.base()));
    for result in [
        client.read_json("Patient", "../../admin").await,
        client.read_json("patient", "1").await,
        client
            .update_json(&json!({"resourceType": "Patient"}), None)
            .await,
        client.create_json(&json!({"id": "x"})).await,
    ] {
        assert!(
            matches!(result, Err(FhirError::InvalidRequest(_))),
            "{result:?}"
        );
    }
    let err = client
        .batch_json(&json!({"resourceType": "Bundle", "type": "searchset"}))
        .await
        .expect_err("not a batch");
    assert!(matches!(err, FhirError::InvalidRequest(_)), "{err}");
    assert!(server.seen().is_empty());
}
