//! The Epic adapter against the sandbox's Epic profile, over real HTTP on 127.0.0.1: one test
//! per catalogued behaviour the sandbox can emulate (`docs/vendors/epic.md`).

use std::sync::Arc;

use serde_json::json;
use smart_core::http::{HttpClient as _, ReqwestHttpClient};
use smart_core::scope::Scopes;
use smart_core::secret::ClientSecret;
use smart_core::{ClientRegistration, RefreshOptions, SmartClient, StandaloneLaunch};
use smart_sandbox::{
    ClientAuth, DEMO_REDIRECT_URI, Endpoint, LaunchDefaults, Sandbox, SandboxConfig, VendorProfile,
};

const SECRET: &str = "s3cret/with+reserved=chars";

async fn epic_sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig {
        profile: VendorProfile::builtin("epic").expect("epic profile"),
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox")
}

/// Registers a confidential (Basic) or public app in the sandbox.
fn register_app(sandbox: &Sandbox, client_id: &str, confidential: bool, user: &str) {
    sandbox.register_client(smart_sandbox::ClientRegistration {
        client_id: client_id.into(),
        auth: if confidential {
            ClientAuth::ClientSecretBasic {
                secret: SECRET.into(),
            }
        } else {
            ClientAuth::Public
        },
        redirect_uris: vec![DEMO_REDIRECT_URI.into()],
        launch_uri: None,
        scopes: "launch launch/patient openid fhirUser offline_access patient/*.rs user/*.rs"
            .into(),
        context: LaunchDefaults {
            patient: Some("pat-2".into()),
            user: Some(user.into()),
            ..LaunchDefaults::default()
        },
        grant_types: vec!["authorization_code".into()],
    });
}

fn registration(
    base: &str,
    client_id: &str,
    confidential: bool,
    scopes: &str,
) -> ClientRegistration {
    let r = if confidential {
        ClientRegistration::confidential_symmetric(
            base,
            client_id,
            ClientSecret::new(SECRET),
            DEMO_REDIRECT_URI,
        )
    } else {
        ClientRegistration::public(base, client_id, DEMO_REDIRECT_URI)
    };
    r.with_scopes(Scopes::parse(scopes))
        .with_adapter(smart_adapter_epic::NAME)
}

fn client_with(registrations: Vec<(&str, ClientRegistration)>) -> SmartClient {
    let mut builder = SmartClient::builder().adapter(Arc::new(smart_adapter_epic::Epic::new()));
    for (name, r) in registrations {
        builder = builder.registration(name, r);
    }
    builder.build().expect("client")
}

async fn standalone(client: &SmartClient, base: &str) -> smart_core::CompletedLaunch {
    let request = client
        .begin_standalone_launch(base, StandaloneLaunch::default())
        .await
        .expect("begin");
    let callback =
        smart_core::headless::authorize_headless(&**client.http(), &request, DEMO_REDIRECT_URI)
            .await
            .expect("authorize");
    client.complete_launch(&callback).await.expect("complete")
}

/// Issue 13 item 1 (audit M1): a non-production and a production registration, each with its
/// own client ID, one client and one adapter instance. Each environment sees only its own ID, on
/// discovery and (as configured) on token and FHIR calls; the sandbox refuses unknown IDs, so a
/// crossed header would fail the launch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_epic_registrations_send_their_own_client_id_header() {
    let non_prod = epic_sandbox().await;
    let prod = epic_sandbox().await;
    register_app(&non_prod, "app-non-prod-id", true, "Practitioner/prac-1");
    register_app(&prod, "app-prod-id", true, "Practitioner/prac-1");
    let scopes = "launch/patient patient/Patient.rs";
    let client = client_with(vec![
        (
            "epic-non-prod",
            registration(&non_prod.fhir_base(), "app-non-prod-id", true, scopes)
                .with_adapter_option("client_id_header", "app-non-prod-id")
                .with_adapter_option("client_id_header_on", json!(["oauth", "fhir"])),
        ),
        (
            "epic-prod",
            registration(&prod.fhir_base(), "app-prod-id", true, scopes)
                .with_adapter_option("client_id_header", "app-prod-id")
                .with_adapter_option("client_id_header_on", json!(["oauth", "fhir"])),
        ),
    ]);
    for (sandbox, id) in [(&non_prod, "app-non-prod-id"), (&prod, "app-prod-id")] {
        let base = sandbox.fhir_base();
        let done = standalone(&client, &base).await;
        let bearer = client
            .session_bearer(&done.session_id)
            .await
            .expect("bearer");
        let fhir = smart_fhir::FhirClient::new(client.http().clone(), Arc::new(bearer));
        fhir.read_json("Patient", "pat-2").await.expect("read");

        let seen = sandbox.client_id_headers_seen();
        assert!(
            seen.iter().all(|(_, v)| v == id),
            "{id}'s environment saw {seen:?}"
        );
        for endpoint in [Endpoint::Discovery, Endpoint::Token, Endpoint::Fhir] {
            assert!(
                seen.iter().any(|(e, _)| *e == endpoint),
                "no Epic-Client-ID on {endpoint:?}: {seen:?}"
            );
        }
    }
}

/// Quirk `epic-refresh-persistence`: a public client gets no refresh token; a confidential one
/// refreshes repeatedly with the refresh token it kept (Epic's refresh responses carry none).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epic_refresh_persistence() {
    let sandbox = epic_sandbox().await;
    let base = sandbox.fhir_base();
    register_app(&sandbox, "public-app", false, "Patient/pat-2");
    register_app(&sandbox, "confidential-app", true, "Patient/pat-2");
    let scopes = "launch/patient patient/Patient.rs offline_access";
    let public = client_with(vec![(
        "p",
        registration(&base, "public-app", false, scopes),
    )]);
    let done = standalone(&public, &base).await;
    assert!(
        done.session.tokens.refresh_token.is_none(),
        "Epic gives public clients no refresh token"
    );

    let confidential = client_with(vec![(
        "c",
        registration(&base, "confidential-app", true, scopes),
    )]);
    let done = standalone(&confidential, &base).await;
    let first = done
        .session
        .tokens
        .refresh_token
        .clone()
        .expect("a refresh token for the confidential client");
    for _ in 0..2 {
        let refreshed = confidential
            .refresh(&done.session_id, RefreshOptions::default())
            .await
            .expect("refresh");
        assert_eq!(
            refreshed
                .value
                .tokens
                .refresh_token
                .as_ref()
                .map(|t| t.expose_secret()),
            Some(first.expose_secret()),
            "the original refresh token is kept"
        );
    }
}

/// Quirk `epic-offline-access-echo`: with the echo leaving out `offline_access`, the session
/// still refreshes, because refresh depends on the refresh token it got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epic_offline_access_echo() {
    let sandbox = epic_sandbox().await;
    let base = sandbox.fhir_base();
    register_app(&sandbox, "confidential-app", true, "Patient/pat-2");
    sandbox.set_behavior(|b| b.echo_omits_access_scopes = true);
    let client = client_with(vec![(
        "c",
        registration(
            &base,
            "confidential-app",
            true,
            "launch/patient patient/Patient.rs offline_access",
        ),
    )]);
    let done = standalone(&client, &base).await;
    let granted = done.session.tokens.granted_scopes.clone().expect("echoed");
    assert!(
        !granted.has_refresh(),
        "the echo leaves out offline_access: {granted}"
    );
    client
        .refresh(&done.session_id, RefreshOptions::default())
        .await
        .expect("refresh despite the echo");
}

/// Quirk `epic-provider-standalone-no-patient`: a provider's standalone launch asking for
/// `launch/patient` gets no patient, and the launch says so instead of inventing one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epic_provider_standalone_no_patient() {
    let sandbox = epic_sandbox().await;
    let base = sandbox.fhir_base();
    register_app(&sandbox, "provider-app", true, "Practitioner/prac-1");
    sandbox.set_behavior(|b| b.provider_standalone_without_patient = true);
    let client = client_with(vec![(
        "c",
        registration(
            &base,
            "provider-app",
            true,
            "launch/patient user/Patient.rs",
        ),
    )]);
    let done = standalone(&client, &base).await;
    assert_eq!(done.session.context.patient, None);
    assert!(
        done.missing_context.iter().any(|m| m == "launch/patient"),
        "{:?}",
        done.missing_context
    );
}

/// Quirk `epic-authorize-html-error` over HTTP: an authorization request without `aud` gets
/// Epic's HTML page (no redirect), and the adapter recognises it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epic_authorize_html_error_page_is_recognised() {
    let sandbox = epic_sandbox().await;
    let base = sandbox.fhir_base();
    register_app(&sandbox, "app", true, "Patient/pat-2");
    let client = client_with(vec![(
        "c",
        registration(&base, "app", true, "launch/patient patient/Patient.rs"),
    )]);
    let request = client
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .expect("begin");
    let mut url = url::Url::parse(&request.url).expect("url");
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "aud")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut().clear().extend_pairs(&kept);
    let http = ReqwestHttpClient::new().expect("http");
    let response = http
        .execute(
            http::Request::get(url.as_str())
                .body(Vec::new())
                .expect("request"),
        )
        .await
        .expect("response");
    assert!(response.headers().get("location").is_none(), "no redirect");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = String::from_utf8_lossy(response.body()).into_owned();
    let hint = smart_adapter_epic::authorize_error_page(
        response.status().as_u16(),
        content_type.as_deref(),
        &body,
    )
    .expect("Epic's authorize error page is recognised");
    assert!(hint.contains("aud"), "{hint}");
}

/// Quirk `epic-bodiless-403` over HTTP: the Epic profile's switch answers a FHIR read with a 403
/// without a body; the adapter explains it as an API missing from the registration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epic_bodiless_403_is_explained() {
    let sandbox = epic_sandbox().await;
    let base = sandbox.fhir_base();
    register_app(&sandbox, "app", true, "Patient/pat-2");
    let client = client_with(vec![(
        "c",
        registration(&base, "app", true, "launch/patient patient/Patient.rs"),
    )]);
    let done = standalone(&client, &base).await;
    sandbox.set_behavior(|b| b.fhir_forbidden_without_body = 1);
    let http = ReqwestHttpClient::new().expect("http");
    let read = |token: &str| {
        http::Request::get(format!("{base}/Patient/pat-2"))
            .header("authorization", format!("Bearer {token}"))
            .header("accept", "application/fhir+json")
            .body(Vec::new())
            .expect("request")
    };
    let token = done.session.tokens.access_token.expose_secret();
    let response = http.execute(read(token)).await.expect("response");
    assert_eq!(response.status(), 403);
    assert!(response.body().is_empty());
    let hint = smart_adapter_epic::forbidden_hint(
        403,
        response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        response.body().len(),
    )
    .expect("hint");
    assert!(hint.contains("registration"), "{hint}");
    // The switch counted down: the next read is served.
    let response = http.execute(read(token)).await.expect("response");
    assert_eq!(response.status(), 200);
}

/// Quirk `epic-introspection-bearer` over HTTP: the app's access token authenticates the
/// introspection of itself at the Epic profile's endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epic_introspection_bearer() {
    let sandbox = epic_sandbox().await;
    let base = sandbox.fhir_base();
    register_app(&sandbox, "app", true, "Patient/pat-2");
    let client = client_with(vec![(
        "c",
        registration(&base, "app", true, "launch/patient patient/Patient.rs"),
    )]);
    let done = standalone(&client, &base).await;
    let token = done.session.tokens.access_token.clone();
    let info = client
        .introspect(
            &base,
            &token,
            smart_adapter_epic::Epic::introspection_auth(&token),
        )
        .await
        .expect("introspection");
    assert!(info.active);
    assert_eq!(info.client_id.as_deref(), Some("app"));
    assert_eq!(info.context.patient.as_deref(), Some("pat-2"));
    let other = smart_core::secret::AccessToken::new("not-a-token");
    let inactive = client
        .introspect(
            &base,
            &other,
            smart_adapter_epic::Epic::introspection_auth(&token),
        )
        .await
        .expect("introspection");
    assert!(!inactive.active);
}
