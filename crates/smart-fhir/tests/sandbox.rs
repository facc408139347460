//! The client against the embedded sandbox EHR over real HTTP: typed and dynamic reads and
//! searches, writes with versioning, paging through thousands of resources, scope errors,
//! concurrent refresh, token renewals after `401`s (a token found in the store and refused too,
//! the bound on renewals), injected rate limits and outages, and an ended session.

// The typed half needs the R4 models; without them (`--no-default-features`) this file is empty.
#![cfg(feature = "r4")]

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures_util::{StreamExt as _, TryStreamExt as _};
use serde_json::{Value, json};
use smart_fhir::r4::resources::{Observation, ObservationValue, Patient};
use smart_fhir::{FhirError, Search, TypedResource as _};
use support::*;

#[tokio::test]
async fn typed_read_of_the_patient_in_context() {
    let sandbox = sandbox().await;
    let (_smart, done, fhir) = session_fhir(&sandbox).await;
    assert_eq!(done.session.context.patient.as_deref(), Some("pat-1"));
    let patient = fhir.read::<Patient>("pat-1").await.expect("typed read");
    assert_eq!(patient.resource.resource_id(), Some("pat-1"));
    let name = patient.resource.name.first().expect("a name");
    let given: Vec<&str> = name
        .given
        .iter()
        .filter_map(|g| g.value.as_deref())
        .collect();
    let family = name.family.as_ref().and_then(|f| f.value.as_deref());
    assert_eq!(
        format!("{} {}", given.join(" "), family.unwrap_or("")),
        "Amelia Rose Rivera"
    );
    assert!(patient.etag.is_some(), "reads carry an ETag");
    assert!(patient.version_id.is_some());
}

#[tokio::test]
async fn typed_search_of_observations_keeps_decimals() {
    let sandbox = sandbox().await;
    let (_smart, _done, fhir) = session_fhir(&sandbox).await;
    let search = Search::new("Observation")
        .patient("pat-1")
        .param("category", "vital-signs")
        .count(50)
        .page_limit(2);
    let typed: Vec<smart_fhir::Typed<Observation>> = fhir
        .search::<Observation>(&search)
        .try_collect()
        .await
        .expect("typed search");
    let json: Vec<Value> = fhir.resources(&search).try_collect().await.expect("json");
    assert!(!typed.is_empty());
    assert_eq!(typed.len(), json.len());
    let mut fractional = 0;
    for (t, j) in typed.iter().zip(&json) {
        assert_eq!(t.resource_id(), j["id"].as_str());
        if let Some(ObservationValue::Quantity(q)) = &t.value {
            let typed_value = q
                .value
                .as_ref()
                .and_then(|d| d.value.clone())
                .expect("value");
            // The exact digits the server sent.
            assert_eq!(typed_value, j["valueQuantity"]["value"].to_string());
            if typed_value.contains('.') {
                fractional += 1;
            }
        }
    }
    assert!(fractional > 0, "the data set has decimal values like 72.5");
}

#[tokio::test]
async fn create_update_with_if_match_and_delete() {
    let sandbox = sandbox().await;
    register_public(
        &sandbox,
        "writer",
        "launch/patient patient/*.cruds offline_access",
    );
    let (_smart, _done, fhir) = session_fhir_as(
        &sandbox,
        "writer",
        "launch/patient patient/*.cruds offline_access",
    )
    .await;

    let observation = json!({
        "resourceType": "Observation",
        "status": "preliminary",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": "Patient/pat-1"},
        "valueQuantity": {"value": 61.25, "unit": "beats/minute", "system": "http://unitsofmeasure.org", "code": "/min"}
    });
    let created = fhir.create_json(&observation).await.expect("create");
    assert_eq!(created.status, 201);
    let id = created.resource["id"].as_str().expect("id").to_owned();
    assert!(created.etag.is_some());
    assert_eq!(
        created.resource["valueQuantity"]["value"].to_string(),
        "61.25"
    );

    // Update with the current ETag.
    let mut changed = created.resource.clone();
    changed["status"] = json!("final");
    let updated = fhir
        .update_json(&changed, created.etag.as_ref())
        .await
        .expect("update with If-Match");
    assert_ne!(updated.version_id, created.version_id);

    // A stale ETag: someone else changed it since our read.
    let err = fhir
        .update_json(&changed, created.etag.as_ref())
        .await
        .expect_err("stale If-Match");
    assert!(
        matches!(err, FhirError::PreconditionFailed { status: 412, .. }),
        "{err}"
    );
    assert!(err.outcome().is_some());

    // The typed path writes too.
    let mut typed: Observation = fhir
        .read::<Observation>(&id)
        .await
        .expect("read")
        .resource
        .into_inner();
    typed.status = "amended".into();
    let current = fhir.read_json("Observation", &id).await.expect("read");
    let again = fhir
        .update(&typed, current.etag.as_ref())
        .await
        .expect("typed update");
    assert_eq!(again.resource.status.value.as_deref(), Some("amended"));

    fhir.delete("Observation", &id).await.expect("delete");
    let err = fhir
        .read_json("Observation", &id)
        .await
        .expect_err("deleted");
    assert!(matches!(err, FhirError::Gone { status: 410, .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_client_streams_every_observation_through_every_page() {
    let sandbox = sandbox().await;
    let fhir = backend_fhir(&sandbox, "system/Observation.rs");
    let search = Search::new("Observation").count(200);
    let before = sandbox.counters();
    let mut ids = HashSet::new();
    let mut pages = 0usize;
    let mut stream = std::pin::pin!(fhir.pages(&search));
    while let Some(page) = stream.try_next().await.expect("page") {
        pages += 1;
        assert!(page.entries.len() <= 200);
        for resource in page.entries {
            assert_eq!(resource["resourceType"], "Observation");
            let id = resource["id"].as_str().expect("id").to_owned();
            assert!(ids.insert(id), "no resource is returned twice");
        }
    }
    assert!(ids.len() > 5_000, "{} observations", ids.len());
    assert!(pages >= ids.len() / 200);
    let after = sandbox.counters();
    assert_eq!(
        (after.fhir_searches - before.fhir_searches) as usize,
        pages,
        "one request per page"
    );
}

#[tokio::test]
async fn outcome_entries_are_outcomes_not_resources() {
    let sandbox = sandbox().await;
    let (_smart, _done, fhir) = session_fhir(&sandbox).await;
    let search = Search::new("Observation")
        .patient("pat-1")
        .param("not-a-parameter", "x");
    let page = fhir.search_json(&search).await.expect("search");
    assert!(
        !page.outcomes.is_empty(),
        "the ignored parameter is reported"
    );
    assert!(
        page.outcomes
            .iter()
            .all(|o| o["resourceType"] == "OperationOutcome")
    );
    assert!(!page.entries.is_empty());
    assert!(
        page.entries
            .iter()
            .all(|e| e["resourceType"] == "Observation")
    );
    let all: Vec<Value> = fhir
        .resources(&search.page_limit(2))
        .try_collect()
        .await
        .expect("stream");
    assert!(all.iter().all(|e| e["resourceType"] == "Observation"));
}

#[tokio::test]
async fn insufficient_scope_is_forbidden_without_a_refresh() {
    let sandbox = sandbox().await;
    let (_smart, _done, fhir) = session_fhir_as(
        &sandbox,
        "demo-public",
        "launch/patient patient/Patient.rs offline_access",
    )
    .await;
    let before = sandbox.counters().refresh_requests;
    let err = fhir
        .search_json(&Search::new("Observation").patient("pat-1"))
        .await
        .expect_err("no Observation scope");
    match &err {
        FhirError::Forbidden {
            insufficient_scope, ..
        } => assert!(*insufficient_scope, "{err}"),
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("new authorization"), "{err}");
    // Reading another patient with patient/ scopes: also insufficient scope.
    let err = fhir
        .read_json("Patient", "pat-2")
        .await
        .expect_err("not in context");
    assert!(
        matches!(
            err,
            FhirError::Forbidden {
                insufficient_scope: true,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        sandbox.counters().refresh_requests,
        before,
        "403 never refreshes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_reads_on_an_expired_token_refresh_once() {
    let sandbox = sandbox().await;
    let (_smart, _done, fhir) = session_fhir(&sandbox).await;
    fhir.read_json("Patient", "pat-1").await.expect("warm up");
    sandbox.expire_access_tokens();
    let before = sandbox.counters().refresh_requests;
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let fhir = fhir.clone();
            tokio::spawn(async move { fhir.read_json("Patient", "pat-1").await })
        })
        .collect();
    for task in tasks {
        let read = task.await.expect("task").expect("read after refresh");
        assert_eq!(read.resource["id"], "pat-1");
    }
    assert_eq!(
        sandbox.counters().refresh_requests - before,
        1,
        "exactly one refresh for 200 requests"
    );
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_after_waiting() {
    let sandbox = sandbox().await;
    let (_smart, _done, fhir) = session_fhir(&sandbox).await;
    sandbox.set_behavior(|b| {
        b.fhir_rate_limit = 1;
        b.fhir_retry_after_secs = 1;
    });
    let started = Instant::now();
    let patient = fhir.read_json("Patient", "pat-1").await.expect("retried");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(patient.resource["id"], "pat-1");
    assert_eq!(sandbox.counters().fhir_faults, 1);
}

#[tokio::test]
async fn a_create_is_not_retried_on_503_but_a_read_is() {
    let sandbox = sandbox().await;
    register_public(
        &sandbox,
        "writer",
        "launch/patient patient/*.cruds offline_access",
    );
    let (_smart, _done, fhir) = session_fhir_as(
        &sandbox,
        "writer",
        "launch/patient patient/*.cruds offline_access",
    )
    .await;
    let before = sandbox.counters();
    sandbox.set_behavior(|b| b.fhir_unavailable = 1);
    let err = fhir
        .create_json(&json!({
            "resourceType": "Observation", "status": "final",
            "code": {"text": "note"}, "subject": {"reference": "Patient/pat-1"}
        }))
        .await
        .expect_err("503 is returned");
    assert!(
        matches!(err, FhirError::Server { status: 503, .. }),
        "{err}"
    );
    let after = sandbox.counters();
    assert_eq!(
        after.fhir_writes - before.fhir_writes,
        1,
        "one write attempt"
    );

    sandbox.set_behavior(|b| b.fhir_unavailable = 1);
    fhir.read_json("Patient", "pat-1")
        .await
        .expect("read is retried");
    let last = sandbox.counters();
    assert_eq!(last.fhir_reads - after.fhir_reads, 2, "503, then success");
}

#[tokio::test]
async fn everything_batch_history_and_capabilities() {
    let sandbox = sandbox().await;
    let (_smart, _done, fhir) = session_fhir(&sandbox).await;
    let everything = fhir
        .operation_json("Patient/pat-1/$everything", None)
        .await
        .expect("$everything");
    assert_eq!(everything["resourceType"], "Bundle");
    let history = fhir
        .history_json("Patient", "pat-1")
        .await
        .expect("history");
    assert_eq!(history["type"], "history");
    let capabilities = fhir.capabilities_json().await.expect("metadata");
    assert_eq!(capabilities["resourceType"], "CapabilityStatement");
    let batch = fhir
        .batch_json(&json!({
            "resourceType": "Bundle", "type": "batch",
            "entry": [{"request": {"method": "GET", "url": "Patient/pat-1"}}]
        }))
        .await
        .expect("batch");
    assert_eq!(batch["type"], "batch-response");
}

#[tokio::test]
async fn an_ended_session_is_an_auth_error_that_says_relaunch() {
    let sandbox = sandbox().await;
    // With the client's bearer cache, as apps run it: the cached token is refused, the stale
    // version put back in the store is found and refused too, and its refresh token is spent.
    let (smart, done, fhir) = session_fhir(&sandbox).await;
    // Another copy of the app spends the rotating refresh token; ours is now stale.
    let stale = smart
        .session(&done.session_id)
        .await
        .expect("load")
        .expect("present");
    smart
        .refresh(&done.session_id, smart_core::RefreshOptions::default())
        .await
        .expect("refresh");
    let now = smart
        .session(&done.session_id)
        .await
        .expect("load")
        .expect("present");
    smart
        .store()
        .compare_and_swap_session(&done.session_id, now.version, &stale.value)
        .await
        .expect("put the stale tokens back");
    sandbox.expire_access_tokens();
    let refreshes = sandbox.counters().refresh_requests;
    let err = fhir.read_json("Patient", "pat-1").await.expect_err("ended");
    assert_eq!(
        sandbox.counters().refresh_requests - refreshes,
        1,
        "one refresh, with the spent refresh token"
    );
    assert!(
        matches!(
            err,
            FhirError::Auth(smart_core::BearerError::SessionEnded { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("start a new launch"), "{err}");
    // And it stays ended.
    let again: Vec<_> = fhir
        .pages(&Search::new("Observation").patient("pat-1"))
        .collect()
        .await;
    assert!(matches!(again[..], [Err(FhirError::Auth(_))]));
}

#[tokio::test]
async fn a_stored_token_the_server_refuses_too_leads_to_one_real_refresh() {
    let sandbox = sandbox().await;
    let (smart, done, fhir) = session_fhir(&sandbox).await;
    // The client now holds the launch's token in its bearer cache.
    fhir.read_json("Patient", "pat-1").await.expect("read");
    // Another copy of the app (or a restore) writes a session version to the shared store whose
    // access token the server refuses; its refresh token still works.
    let stored = smart
        .session(&done.session_id)
        .await
        .expect("load")
        .expect("present");
    let mut rewritten = stored.value.clone();
    rewritten.tokens.access_token = smart_core::secret::AccessToken::new("refused-by-the-server");
    let rewritten_version = smart
        .store()
        .compare_and_swap_session(&done.session_id, stored.version, &rewritten)
        .await
        .expect("rewrite the stored session");
    // And the server retires the cached token too.
    sandbox.expire_access_tokens();

    let before = sandbox.counters();
    let patient = fhir
        .read_json("Patient", "pat-1")
        .await
        .expect("read after the stored token was refused too");
    assert_eq!(patient.resource["id"], "pat-1");
    let after = sandbox.counters();
    assert_eq!(
        after.refresh_requests - before.refresh_requests,
        1,
        "exactly one real refresh"
    );
    assert_eq!(
        after.fhir_requests - before.fhir_requests,
        3,
        "the cached token refused, the stored one refused, the refreshed one accepted"
    );
    let now = smart
        .session(&done.session_id)
        .await
        .expect("load")
        .expect("present");
    assert!(now.version > rewritten_version, "the refresh was saved");
    assert_ne!(
        now.value.tokens.access_token.expose_secret(),
        "refused-by-the-server"
    );

    // The refreshed token is what the client serves next: no more refreshes.
    fhir.read_json("Patient", "pat-1").await.expect("read");
    assert_eq!(sandbox.counters().refresh_requests, after.refresh_requests);
}

#[tokio::test]
async fn token_renewals_after_401s_are_bounded() {
    let sandbox = sandbox().await;
    let (smart, done, fhir) = session_fhir(&sandbox).await;
    fhir.read_json("Patient", "pat-1").await.expect("read");
    // From now on the server refuses every token, even a freshly refreshed one.
    sandbox.set_behavior(|b| b.expire_tokens_after_calls = Some(0));

    // A token fetched by the renewal and refused: one renewal, two requests, then the 401.
    let before = sandbox.counters();
    let err = fhir
        .read_json("Patient", "pat-1")
        .await
        .expect_err("refused");
    assert!(
        matches!(err, FhirError::Unauthorized { status: 401, .. }),
        "{err}"
    );
    let after = sandbox.counters();
    assert_eq!(after.refresh_requests - before.refresh_requests, 1);
    assert_eq!(after.fhir_requests - before.fhir_requests, 2);

    // A token found renewed in the store and refused: one more renewal (a real refresh), three
    // requests at most, then the 401.
    let stored = smart
        .session(&done.session_id)
        .await
        .expect("load")
        .expect("present");
    let mut rewritten = stored.value.clone();
    rewritten.tokens.access_token = smart_core::secret::AccessToken::new("refused-by-the-server");
    smart
        .store()
        .compare_and_swap_session(&done.session_id, stored.version, &rewritten)
        .await
        .expect("rewrite the stored session");
    let before = sandbox.counters();
    let err = fhir
        .read_json("Patient", "pat-1")
        .await
        .expect_err("refused");
    assert!(
        matches!(err, FhirError::Unauthorized { status: 401, .. }),
        "{err}"
    );
    let after = sandbox.counters();
    assert_eq!(after.refresh_requests - before.refresh_requests, 1);
    assert_eq!(after.fhir_requests - before.fhir_requests, 3);
}

#[tokio::test]
async fn a_retry_after_http_date_is_honoured() {
    let sandbox = sandbox().await;
    let (_smart, _done, fhir) = session_fhir(&sandbox).await;
    sandbox.set_behavior(|b| {
        b.fhir_rate_limit = 1;
        b.fhir_retry_after_secs = 1;
        b.fhir_retry_after_http_date = true;
    });
    let started = Instant::now();
    fhir.read_json("Patient", "pat-1").await.expect("retried");
    // An HTTP date names a whole second: the wait is at least what is left of it.
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(sandbox.counters().fhir_faults, 1);
}

#[tokio::test]
async fn paging_survives_tokens_that_expire_mid_stream() {
    let sandbox = sandbox().await;
    let (_smart, _done, fhir) = session_fhir(&sandbox).await;
    sandbox.set_behavior(|b| b.expire_tokens_after_calls = Some(3));
    let before = sandbox.counters().refresh_requests;
    let search = Search::new("Observation")
        .patient("pat-1")
        .count(10)
        .page_limit(10);
    let mut ids = HashSet::new();
    let mut pages = 0;
    let mut stream = std::pin::pin!(fhir.pages(&search));
    while let Some(page) = stream.try_next().await.expect("every page") {
        pages += 1;
        for e in page.entries {
            ids.insert(e["id"].as_str().expect("id").to_owned());
        }
    }
    assert_eq!(pages, 10);
    assert_eq!(ids.len(), 100);
    let refreshes = sandbox.counters().refresh_requests - before;
    assert!(
        (3..=4).contains(&refreshes),
        "a refresh every three calls: {refreshes}"
    );
}
