//! How the token endpoint identifies the client (issue 9, items 1 to 3):
//!
//! * a public client may refresh with only `grant_type` and `refresh_token`
//!   (RFC 6749 §6, SMART 2.2): the refresh token names the client; a
//!   confidential client's refresh token without credentials is refused;
//! * `invalid_client` is a 401 with a `WWW-Authenticate` challenge when the
//!   client tried HTTP authentication, and a 400 when it did not (RFC 6749
//!   §5.2, RFC 7235 §3.1);
//! * HTTP Basic credentials base64'd without the RFC 6749 §2.3.1
//!   form-encoding fail with a description saying so, unless
//!   `Behavior::accept_unencoded_basic_credentials` accepts them.
//!
//! Every check runs in the `generic`, `epic` and `cerner` profiles.

use std::collections::HashMap;

use serde_json::Value;
use smart_sandbox::{
    ClientAuth, DEMO_REDIRECT_URI, DEMO_SECRET, Sandbox, SandboxConfig, VendorProfile,
};

use crate::common::*;

const SCOPE: &str = "openid fhirUser offline_access user/Patient.rs";

/// The three profiles. Epic never gives a public client a refresh token
/// (its row 25), so its public-refresh check runs on an `epic` that does;
/// every other rule of the profile (auth methods, scopes, URLs) stays.
fn profiles() -> Vec<VendorProfile> {
    vec![
        VendorProfile::builtin("generic").expect("generic"),
        VendorProfile::from_toml_str(
            "extends = \"epic\"\nname = \"epic-public-refresh\"\n\
             refresh_token_requires_confidential = false\n",
        )
        .expect("epic variant"),
        VendorProfile::builtin("cerner").expect("cerner"),
    ]
}

async fn start_in(profile: VendorProfile, config: SandboxConfig) -> Sandbox {
    start_with(SandboxConfig { profile, ..config }).await
}

/// The token endpoint, from discovery (the URL differs per profile).
async fn token_endpoint(sb: &Sandbox) -> String {
    let doc: Value = http()
        .get(format!(
            "{}/.well-known/smart-configuration",
            sb.fhir_base()
        ))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    doc["token_endpoint"]
        .as_str()
        .expect("token_endpoint")
        .to_owned()
}

/// Runs the authorization step for `client_id` through discovery and
/// returns the code and its PKCE pair.
async fn authorized_code(sb: &Sandbox, client_id: &str) -> (String, Pkce) {
    let doc: Value = http()
        .get(format!(
            "{}/.well-known/smart-configuration",
            sb.fhir_base()
        ))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    let authorize = doc["authorization_endpoint"].as_str().expect("authorize");
    let p = pkce();
    let resp = http()
        .get(authorize)
        .query(&auth_params(sb, client_id, SCOPE, &p))
        .send()
        .await
        .expect("authorize");
    let mut query: HashMap<String, String> = redirect_params(&resp);
    (query.remove("code").expect("code"), p)
}

/// Authorizes `client_id` and exchanges the code (public: `client_id` in the
/// body; confidential: HTTP Basic), returning the token response.
async fn sign_in(sb: &Sandbox, client_id: &str) -> Value {
    let (code, p) = authorized_code(sb, client_id).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", DEMO_REDIRECT_URI),
        ("code_verifier", p.verifier.as_str()),
    ];
    let mut req = http().post(token_endpoint(sb).await);
    let mut form = form.to_vec();
    if client_id == PUBLIC {
        form.push(("client_id", PUBLIC));
    } else {
        req = req.header("authorization", basic(client_id, DEMO_SECRET));
    }
    let resp = req.form(&form).send().await.expect("exchange");
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("json")
}

/// A refresh with nothing but `grant_type` and `refresh_token`, as the JS
/// `fhirclient` sends it for a public client.
async fn bare_refresh(sb: &Sandbox, refresh_token: &str) -> reqwest::Response {
    http()
        .post(token_endpoint(sb).await)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .expect("refresh")
}

#[tokio::test]
async fn public_client_refreshes_without_client_id_in_every_profile() {
    for profile in profiles() {
        let name = profile.name().to_owned();
        let sb = start_in(profile, SandboxConfig::default()).await;
        let body = sign_in(&sb, PUBLIC).await;
        let refresh_token = body["refresh_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no refresh token: {body}"));
        let resp = bare_refresh(&sb, refresh_token).await;
        assert_eq!(resp.status(), 200, "{name}: {}", resp.text().await.unwrap());
        let refreshed: Value = resp.json().await.unwrap();
        let access = refreshed["access_token"].as_str().expect("access_token");
        let read = get_url(&format!("{}/Patient/pat-1", sb.fhir_base()), access).await;
        assert_eq!(read.status(), 200, "{name}: read with the refreshed token");

        // An unknown refresh token names no client: still invalid_client,
        // a 400 (no HTTP authentication was attempted).
        let resp = bare_refresh(&sb, "no-such-token").await;
        assert!(header(&resp, "www-authenticate").is_empty(), "{name}");
        let d = oauth_error(resp, 400, "invalid_client").await;
        assert!(d.contains("no client authentication"), "{name}: {d}");
    }
}

#[tokio::test]
async fn confidential_refresh_token_without_credentials_is_refused_in_every_profile() {
    for profile in profiles() {
        let name = profile.name().to_owned();
        let sb = start_in(profile, SandboxConfig::default()).await;
        let body = sign_in(&sb, CONFIDENTIAL).await;
        let refresh_token = body["refresh_token"].as_str().expect("refresh_token");
        let resp = bare_refresh(&sb, refresh_token).await;
        assert!(header(&resp, "www-authenticate").is_empty(), "{name}");
        let d = oauth_error(resp, 400, "invalid_client").await;
        assert!(
            d.contains("refresh token belongs to the confidential client"),
            "{name}: {d}"
        );

        // With its credentials the same token still refreshes: the refused
        // attempt did not consume or revoke it.
        let resp = http()
            .post(token_endpoint(&sb).await)
            .header("authorization", basic(CONFIDENTIAL, DEMO_SECRET))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{name}");
    }
}

#[tokio::test]
async fn invalid_client_is_401_with_challenge_only_after_http_authentication() {
    for profile in profiles() {
        let name = profile.name().to_owned();
        let sb = start_in(profile, SandboxConfig::default()).await;
        let url = token_endpoint(&sb).await;
        let form = [("grant_type", "client_credentials")];

        // HTTP Basic with a wrong secret, and a Basic header that does not
        // decode: 401 with a Basic challenge.
        for authorization in [basic(CONFIDENTIAL, "wrong"), "Basic !!!".to_owned()] {
            let resp = http()
                .post(&url)
                .header("authorization", &authorization)
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(
                header(&resp, "www-authenticate"),
                "Basic realm=\"smart-sandbox\"",
                "{name}: {authorization}"
            );
            oauth_error(resp, 401, "invalid_client").await;
        }

        // No HTTP authentication: an unknown client_id, a confidential
        // client naming itself only, no identification at all: 400, no
        // challenge.
        for body in [
            vec![("client_id", "nobody")],
            vec![("client_id", CONFIDENTIAL)],
            vec![],
        ] {
            let mut body = body;
            body.extend(form);
            let resp = http().post(&url).form(&body).send().await.unwrap();
            assert!(header(&resp, "www-authenticate").is_empty(), "{name}");
            oauth_error(resp, 400, "invalid_client").await;
        }
    }
}

/// A confidential client whose secret changes under form-encoding.
const AWKWARD_ID: &str = "awkward-app";
const AWKWARD_SECRET: &str = "s3cr+t/with=100%";

fn with_awkward_client(behaviour_accepts: bool) -> SandboxConfig {
    let mut config = SandboxConfig::default();
    let mut client = config.clients[1].clone();
    client.client_id = AWKWARD_ID.to_owned();
    client.auth = ClientAuth::ClientSecretBasic {
        secret: AWKWARD_SECRET.to_owned(),
    };
    config.clients.push(client);
    config.behavior.accept_unencoded_basic_credentials = behaviour_accepts;
    config
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

async fn exchange_with_basic(sb: &Sandbox, id: &str, secret: &str) -> reqwest::Response {
    let (code, p) = authorized_code(sb, AWKWARD_ID).await;
    http()
        .post(token_endpoint(sb).await)
        .header("authorization", basic(id, secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", DEMO_REDIRECT_URI),
            ("code_verifier", p.verifier.as_str()),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn basic_credentials_without_form_encoding_are_named_and_refused() {
    for profile in profiles() {
        let name = profile.name().to_owned();
        let sb = start_in(profile, with_awkward_client(false)).await;

        // RFC 6749 §2.3.1: form-encoded, then base64.
        let resp = exchange_with_basic(&sb, AWKWARD_ID, &form_encode(AWKWARD_SECRET)).await;
        assert_eq!(resp.status(), 200, "{name}");

        // The secret as is (what both fhirclient packages send).
        let resp = exchange_with_basic(&sb, AWKWARD_ID, AWKWARD_SECRET).await;
        assert_eq!(
            header(&resp, "www-authenticate"),
            "Basic realm=\"smart-sandbox\""
        );
        let d = oauth_error(resp, 401, "invalid_client").await;
        assert!(d.contains("not form-urlencoded"), "{name}: {d}");
        assert!(d.contains("RFC 6749 §2.3.1"), "{name}: {d}");

        // A plainly wrong secret says so, not the encoding hint.
        let resp = exchange_with_basic(&sb, AWKWARD_ID, "s3cr+t/other").await;
        let d = oauth_error(resp, 401, "invalid_client").await;
        assert!(d.contains("wrong client secret"), "{name}: {d}");
        assert!(!d.contains("form-urlencoded"), "{name}: {d}");
    }
}

#[tokio::test]
async fn behaviour_switch_accepts_basic_credentials_without_form_encoding() {
    for profile in profiles() {
        let name = profile.name().to_owned();
        let sb = start_in(profile, with_awkward_client(true)).await;
        let resp = exchange_with_basic(&sb, AWKWARD_ID, AWKWARD_SECRET).await;
        assert_eq!(resp.status(), 200, "{name}");
        let resp = exchange_with_basic(&sb, AWKWARD_ID, &form_encode(AWKWARD_SECRET)).await;
        assert_eq!(resp.status(), 200, "{name}");
        // Still no secret but the registered one.
        let resp = exchange_with_basic(&sb, AWKWARD_ID, "s3cr+t/other").await;
        oauth_error(resp, 401, "invalid_client").await;
    }
}
