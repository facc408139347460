//! Epic's search codes on real answers (audit M8, quirk `epic-search-outcome-codes`): the
//! smart-fhir client against the sandbox's Epic profile, over HTTP on 127.0.0.1, gets 4127 (a
//! Patient search over the limit), 4122 and 59100 (parameters unknown or ignored, as warnings in
//! the Bundle) and 4113 (an expired paging session), and `explain_outcome_code` explains each,
//! warnings as warnings and fatal codes as fatal.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use smart_core::scope::Scopes;
use smart_core::secret::ClientSecret;
use smart_core::{ClientRegistration, SmartClient, StandaloneLaunch};
use smart_fhir::{FhirClient, FhirError, Page, Search};
use smart_sandbox::{ClientAuth, DEMO_REDIRECT_URI, LaunchDefaults, Sandbox, SandboxConfig};

const SECRET: &str = "s3cret";
const CLIENT_ID: &str = "provider-app";
/// The paging session lifetime the tests give the Epic profile.
const PAGING_SECS: u64 = 3;

/// The Epic profile with a Patient search limit of 3 (Epic: 100) and paging sessions of
/// [`PAGING_SECS`].
async fn epic_sandbox() -> Sandbox {
    let mut profile = smart_sandbox::VendorProfile::builtin("epic").expect("epic profile");
    let codes = profile
        .search_codes
        .as_mut()
        .expect("epic has search codes");
    codes.patient_search_limit = Some(3);
    codes.paging_session_lifetime_secs = Some(PAGING_SECS);
    Sandbox::start(SandboxConfig {
        profile,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox")
}

/// A provider (user-level, no patient in context) signed in through the Epic adapter; the
/// FHIR client uses the session's token.
async fn provider_fhir(sandbox: &Sandbox) -> FhirClient {
    let base = sandbox.fhir_base();
    sandbox.register_client(smart_sandbox::ClientRegistration {
        client_id: CLIENT_ID.into(),
        auth: ClientAuth::ClientSecretBasic {
            secret: SECRET.into(),
        },
        redirect_uris: vec![DEMO_REDIRECT_URI.into()],
        launch_uri: None,
        scopes: "openid fhirUser user/*.rs".into(),
        context: LaunchDefaults {
            user: Some("Practitioner/prac-1".into()),
            ..LaunchDefaults::default()
        },
        grant_types: vec!["authorization_code".into()],
    });
    let registration = ClientRegistration::confidential_symmetric(
        &base,
        CLIENT_ID,
        ClientSecret::new(SECRET),
        DEMO_REDIRECT_URI,
    )
    .with_scopes(Scopes::parse("openid fhirUser user/*.rs"))
    .with_adapter(smart_adapter_epic::NAME);
    let client = SmartClient::builder()
        .adapter(Arc::new(smart_adapter_epic::Epic::new()))
        .registration("epic", registration)
        .build()
        .expect("client");
    let request = client
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .expect("begin");
    let callback =
        smart_core::headless::authorize_headless(&**client.http(), &request, DEMO_REDIRECT_URI)
            .await
            .expect("authorize");
    let done = client.complete_launch(&callback).await.expect("complete");
    let bearer = client
        .session_bearer(&done.session_id)
        .await
        .expect("bearer");
    FhirClient::new(client.http().clone(), Arc::new(bearer))
}

/// The one Epic code of a fatal 400, explained: the issue is `fatal` and the adapter calls the
/// code fatal too.
fn fatal_code(err: &FhirError) -> &'static smart_adapter_epic::OutcomeCode {
    assert!(
        matches!(err, FhirError::BadRequest { status: 400, .. }),
        "{err}"
    );
    let outcome = err.outcome().expect("an OperationOutcome body");
    let issue = &outcome["issue"][0];
    assert_eq!(issue["severity"], "fatal", "{outcome}");
    let codes = smart_adapter_epic::outcome_codes(outcome);
    assert_eq!(codes.len(), 1, "{outcome}");
    let code = issue["details"]["coding"][0]["code"]
        .as_str()
        .expect("code");
    let explained = smart_adapter_epic::explain_outcome_code(code).expect("explained");
    assert_eq!(explained, codes[0]);
    assert!(!explained.warning, "{code} is fatal in Epic's table");
    explained
}

fn ids(page: &Page) -> Vec<String> {
    page.entries
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}

/// The Epic profile as built in carries Epic's documented values.
#[test]
fn the_epic_profile_carries_the_documented_codes() {
    let profile = smart_sandbox::VendorProfile::builtin("epic").expect("epic profile");
    let codes = profile.search_codes.expect("search codes");
    assert_eq!(codes.patient_search_limit, Some(100));
    for (code, want) in [
        (codes.too_many_results, "4127"),
        (codes.paging_session_expired, "4113"),
        (codes.unknown_parameter, "4122"),
        (codes.ignored_parameter, "59100"),
    ] {
        assert_eq!(code.as_deref(), Some(want));
    }
    let generic = smart_sandbox::VendorProfile::builtin("generic").expect("generic");
    assert!(generic.search_codes.is_none());
}

/// 4127: a Patient search matching more than the limit is refused; a narrower one is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_search_over_the_limit_is_4127() {
    let sandbox = epic_sandbox().await;
    let fhir = provider_fhir(&sandbox).await;

    let err = fhir
        .search_json(&Search::new("Patient").param("gender", "female"))
        .await
        .expect_err("more than 3 patients");
    let explained = fatal_code(&err);
    assert_eq!(explained.code, "4127");
    assert!(explained.action.contains("narrow"), "{}", explained.action);

    let three = fhir
        .search_json(&Search::new("Patient").id("pat-1,pat-2,pat-3"))
        .await
        .expect("3 is within the limit");
    assert_eq!(ids(&three), ["pat-1", "pat-2", "pat-3"]);
}

/// 4122 and 59100: the search answers, ignoring the parameters, and says so in an outcome
/// entry whose issues are warnings the adapter explains as warnings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_ignored_parameters_are_4122_and_59100_warnings() {
    let sandbox = epic_sandbox().await;
    let fhir = provider_fhir(&sandbox).await;
    let plain = Search::new("Observation").patient("pat-1").count(10);

    let expected = fhir.search_json(&plain).await.expect("search");
    let page = fhir
        .search_json(
            &plain
                .clone()
                .param("colour", "blue")
                .param("_summary", "true"),
        )
        .await
        .expect("the search still answers");
    assert!(!page.entries.is_empty());
    assert_eq!(ids(&page), ids(&expected), "the parameters were ignored");
    assert!(expected.outcomes.is_empty(), "{:?}", expected.outcomes);

    assert_eq!(page.outcomes.len(), 1, "{:?}", page.outcomes);
    let outcome: &Value = &page.outcomes[0];
    let issues = outcome["issue"].as_array().expect("issues");
    assert!(
        issues.iter().all(|i| i["severity"] == "warning"),
        "{outcome}"
    );
    assert!(
        issues[0]["diagnostics"]
            .as_str()
            .is_some_and(|d| d.contains("colour")),
        "{outcome}"
    );
    let explained = smart_adapter_epic::outcome_codes(outcome);
    let codes: Vec<&str> = explained.iter().map(|c| c.code).collect();
    assert_eq!(codes, ["4122", "59100"], "{outcome}");
    assert!(
        explained.iter().all(|c| c.warning),
        "warnings in Epic's table"
    );
}

/// 4113: next links work within the paging session and stop when it expires, counted from the
/// search's first page (a later page does not renew it); running the search again works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_paging_session_is_4113() {
    let sandbox = epic_sandbox().await;
    let fhir = provider_fhir(&sandbox).await;
    let search = Search::new("Observation").patient("pat-1").count(2);

    let first = fhir.search_json(&search).await.expect("first page");
    assert!(first.next.is_some());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let second = fhir
        .next_page(&search, &first)
        .await
        .expect("within the session")
        .expect("a second page");
    assert_ne!(ids(&second), ids(&first));
    // Less than the lifetime after the second page, more than it after the first.
    tokio::time::sleep(Duration::from_millis(PAGING_SECS * 1000 - 800)).await;
    let err = fhir
        .next_page(&search, &second)
        .await
        .expect_err("the paging session expired");
    let explained = fatal_code(&err);
    assert_eq!(explained.code, "4113");
    assert!(
        explained.action.contains("first page"),
        "{}",
        explained.action
    );

    // What the explanation says to do works.
    let again = fhir.search_json(&search).await.expect("first page again");
    assert_eq!(ids(&again), ids(&first));
    assert!(
        fhir.next_page(&search, &again)
            .await
            .expect("a fresh session")
            .is_some()
    );
}
