//! Epic's dynamic client registration over real HTTP against the sandbox's Epic profile: a
//! standalone launch, `POST …/oauth2/register` with its access token as the one-time initial
//! access token, then the `jwt-bearer` grant with the device key (audit M5).

mod support;

use http::HeaderMap;
use smart_core::SmartClient;
use smart_core::registration::{
    JWT_BEARER_GRANT, RegistrationError, RegistrationRequest, jwt_bearer_token, register,
};
use smart_core::smart_jose::{Algorithm, Jwks, PrivateKey};
use support::{APP, authorized_callback, epic_sandbox};

fn app_client(base: &str) -> SmartClient {
    support::app_client(
        base,
        "launch/patient patient/Patient.rs patient/Observation.rs",
    )
}

/// A standalone launch; returns its access token.
async fn standalone_token(client: &SmartClient, base: &str) -> smart_core::secret::AccessToken {
    let callback = authorized_callback(client, base).await;
    let done = client.complete_launch(&callback).await.expect("complete");
    done.session.tokens.access_token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epic_dynamic_client_registration() {
    let sandbox = epic_sandbox().await;
    let base = sandbox.fhir_base();
    let client = app_client(&base);

    let discovered = client.discover(&base).await.expect("discovery");
    let config = &discovered.configuration;
    assert!(
        config
            .grant_types_supported
            .iter()
            .any(|g| g == JWT_BEARER_GRANT),
        "the Epic profile advertises the jwt-bearer grant"
    );
    let endpoint = config
        .registration_endpoint
        .clone()
        .expect("registration_endpoint advertised");
    assert!(
        endpoint.ends_with("/interconnect-fhir-oauth/oauth2/register"),
        "{endpoint}"
    );

    let initial = standalone_token(&client, &base).await;
    let device_key = PrivateKey::generate(Algorithm::ES384).expect("key");
    let request = RegistrationRequest::software(APP, Jwks::new(vec![device_key.public_jwk()]));
    let registered = register(
        &**client.http(),
        &endpoint,
        Some(&initial),
        &request,
        &HeaderMap::new(),
    )
    .await
    .expect("registration");
    assert!(registered.client_id.starts_with('G'), "{registered:?}");
    assert_ne!(registered.client_id, APP);
    assert_eq!(registered.software_id.as_deref(), Some(APP));
    assert_eq!(
        registered.token_endpoint_auth_method.as_deref(),
        Some("none")
    );
    assert!(registered.uses_jwt_bearer());

    // The jwt-bearer grant with the device key: a token for the same patient, no refresh token.
    let token = jwt_bearer_token(
        &**client.http(),
        &config.token_endpoint,
        &registered.client_id,
        &device_key,
        &HeaderMap::new(),
    )
    .await
    .expect("jwt-bearer token");
    assert_eq!(token.context.patient.as_deref(), Some("pat-3"));
    assert!(token.tokens.refresh_token.is_none());
    assert_eq!(token.tokens.expires_at.map(|e| e > 0), Some(true));

    // The token works against the FHIR API.
    let response = reqwest_get(
        &format!("{base}/Patient/pat-3"),
        token.tokens.access_token.expose_secret(),
    )
    .await;
    assert_eq!(response, 200);

    // The initial access token is good for one registration only.
    let again = register(
        &**client.http(),
        &endpoint,
        Some(&initial),
        &request,
        &HeaderMap::new(),
    )
    .await
    .expect_err("one-time initial access token");
    match again {
        RegistrationError::Refused { status, code, .. } => {
            assert_eq!((status, code.as_str()), (401, "invalid_token"));
        }
        other => panic!("unexpected {other:?}"),
    }

    // Another key cannot use the dynamic client.
    let stranger = PrivateKey::generate(Algorithm::ES384).expect("key");
    let refused = jwt_bearer_token(
        &**client.http(),
        &config.token_endpoint,
        &registered.client_id,
        &stranger,
        &HeaderMap::new(),
    )
    .await
    .expect_err("wrong key");
    assert!(refused.to_string().contains("invalid_grant"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_refuses_a_software_id_other_than_the_launching_client() {
    let sandbox = epic_sandbox().await;
    let base = sandbox.fhir_base();
    let client = app_client(&base);
    let endpoint = client
        .discover(&base)
        .await
        .expect("discovery")
        .configuration
        .registration_endpoint
        .clone()
        .expect("endpoint");
    let initial = standalone_token(&client, &base).await;
    let key = PrivateKey::generate(Algorithm::ES384).expect("key");
    let err = register(
        &**client.http(),
        &endpoint,
        Some(&initial),
        &RegistrationRequest::software("another-app", Jwks::new(vec![key.public_jwk()])),
        &HeaderMap::new(),
    )
    .await
    .expect_err("software_id mismatch");
    assert!(
        matches!(&err, RegistrationError::Refused { status: 400, code, .. } if code == "invalid_client_metadata"),
        "{err:?}"
    );
    // Without a token: 401.
    let err = register(
        &**client.http(),
        &endpoint,
        None,
        &RegistrationRequest::software(APP, Jwks::new(vec![key.public_jwk()])),
        &HeaderMap::new(),
    )
    .await
    .expect_err("no initial access token");
    assert!(
        matches!(&err, RegistrationError::Refused { status: 401, .. }),
        "{err:?}"
    );
}

/// A GET with a bearer token through the crate's own transport; returns the status.
async fn reqwest_get(url: &str, token: &str) -> u16 {
    let http = smart_core::http::ReqwestHttpClient::new().expect("http");
    let request = http::Request::get(url)
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "application/fhir+json")
        .body(Vec::new())
        .expect("request");
    use smart_core::http::HttpClient as _;
    http.execute(request)
        .await
        .expect("response")
        .status()
        .as_u16()
}
