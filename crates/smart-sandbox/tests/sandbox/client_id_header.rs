//! The Epic profile's `Epic-Client-ID` header: checked against the
//! registered clients on discovery, OAuth and FHIR calls, and recorded per
//! endpoint kind.

use serde_json::Value;
use smart_sandbox::{
    DEMO_REDIRECT_URI, DEMO_SECRET, Endpoint, Sandbox, SandboxConfig, VendorProfile,
};

use crate::common::*;

const HEADER: &str = "Epic-Client-ID";

async fn epic() -> Sandbox {
    start_with(SandboxConfig {
        profile: VendorProfile::builtin("epic").unwrap(),
        ..SandboxConfig::default()
    })
    .await
}

async fn discovery(sb: &Sandbox, client_id: Option<&str>) -> reqwest::Response {
    let mut req = http().get(format!(
        "{}/.well-known/smart-configuration",
        sb.fhir_base()
    ));
    if let Some(id) = client_id {
        req = req.header(HEADER, id);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn epic_records_the_client_id_header_on_every_endpoint_kind() {
    let sb = epic().await;
    let id = CONFIDENTIAL;

    let doc: Value = {
        let resp = discovery(&sb, Some(id)).await;
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    };
    let authorize_url = doc["authorization_endpoint"].as_str().unwrap().to_owned();
    let token_url = doc["token_endpoint"].as_str().unwrap().to_owned();

    // Authorize, code exchange and a FHIR read, each with the header.
    let p = pkce();
    let resp = http()
        .get(&authorize_url)
        .header(HEADER, id)
        .query(&auth_params(&sb, id, "launch/patient patient/*.rs", &p))
        .send()
        .await
        .unwrap();
    let code = redirect_params(&resp)["code"].clone();
    let resp = http()
        .post(&token_url)
        .header(HEADER, id)
        .header("authorization", basic(id, DEMO_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", DEMO_REDIRECT_URI),
            ("code_verifier", p.verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    let resp = http()
        .get(format!("{}/Patient/pat-1", sb.fhir_base()))
        .header(HEADER, id)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    assert_eq!(
        sb.client_id_headers_seen(),
        [
            (Endpoint::Discovery, id.to_owned()),
            (Endpoint::Authorize, id.to_owned()),
            (Endpoint::Token, id.to_owned()),
            (Endpoint::Fhir, id.to_owned()),
        ]
    );

    // Requests without the header are not recorded and still work.
    assert_eq!(discovery(&sb, None).await.status(), 200);
    assert_eq!(sb.client_id_headers_seen().len(), 4);
}

#[tokio::test]
async fn epic_refuses_an_unknown_client_id_in_the_shape_of_each_endpoint() {
    let sb = epic().await;
    let wrong = "prod-client-id-used-in-non-prod";

    // Discovery: 400 OperationOutcome naming the unknown ID.
    let resp = discovery(&sb, Some(wrong)).await;
    assert_eq!(resp.status(), 400);
    let outcome: Value = resp.json().await.unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    let text = outcome["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(text.contains(wrong) && text.contains("unknown"), "{text}");

    // Token: an OAuth error, 400 invalid_client, even with valid Basic
    // credentials (the header is checked first).
    let resp = http()
        .post(sb.token_url())
        .header(HEADER, wrong)
        .header("authorization", basic(CONFIDENTIAL, DEMO_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let description = oauth_error(resp, 400, "invalid_client").await;
    assert!(description.contains("Epic-Client-ID"), "{description}");
    assert!(description.contains("unknown"), "{description}");

    // Authorize: an HTML page, no redirect.
    let p = pkce();
    let resp = http()
        .get(sb.authorize_url())
        .header(HEADER, wrong)
        .query(&auth_params(&sb, PUBLIC, "launch/patient patient/*.rs", &p))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
    assert!(header(&resp, "content-type").starts_with("text/html"));
    assert!(resp.text().await.unwrap().contains("unknown"));

    // FHIR: 400 OperationOutcome before the token is looked at.
    let token = access_token_epic(&sb).await;
    let resp = http()
        .get(format!("{}/Patient/pat-1", sb.fhir_base()))
        .header(HEADER, wrong)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let outcome: Value = resp.json().await.unwrap();
    assert_eq!(outcome["issue"][0]["code"], "invalid");

    // Every refused value was recorded with its endpoint kind.
    let seen = sb.client_id_headers_seen();
    let kinds: Vec<Endpoint> = seen.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds,
        [
            Endpoint::Discovery,
            Endpoint::Token,
            Endpoint::Authorize,
            Endpoint::Fhir
        ]
    );
    assert!(seen.iter().all(|(_, v)| v == wrong));

    // The same read with the right ID works.
    let resp = http()
        .get(format!("{}/Patient/pat-1", sb.fhir_base()))
        .header(HEADER, PUBLIC)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// A token for `demo-public` through a standalone launch, without the header.
async fn access_token_epic(sb: &Sandbox) -> String {
    let p = pkce();
    let resp = http()
        .get(sb.authorize_url())
        .query(&auth_params(sb, PUBLIC, "launch/patient patient/*.rs", &p))
        .send()
        .await
        .unwrap();
    let code = redirect_params(&resp)["code"].clone();
    let resp = http()
        .post(sb.token_url())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", DEMO_REDIRECT_URI),
            ("code_verifier", p.verifier.as_str()),
            ("client_id", PUBLIC),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn epic_refuses_a_repeated_or_malformed_client_id_header() {
    let sb = epic().await;
    let resp = http()
        .get(format!("{}/metadata", sb.fhir_base()))
        .header(HEADER, PUBLIC)
        .header(HEADER, CONFIDENTIAL)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("more than once"));

    let long = "x".repeat(300);
    let resp = discovery(&sb, Some(&long)).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("not a client ID"));
    assert!(sb.client_id_headers_seen().is_empty());
}

#[tokio::test]
async fn epic_preflight_allows_the_client_id_header() {
    let sb = epic().await;
    let resp = http()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/.well-known/smart-configuration", sb.fhir_base()),
        )
        .header("origin", "http://127.0.0.1:8765")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "epic-client-id")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert!(header(&resp, "access-control-allow-headers").contains(HEADER));
}

#[tokio::test]
async fn profiles_without_a_client_id_header_ignore_it() {
    for profile in ["generic", "cerner"] {
        let sb = start_with(SandboxConfig {
            profile: VendorProfile::builtin(profile).unwrap(),
            ..SandboxConfig::default()
        })
        .await;
        assert!(sb.profile().client_id_header.is_none());
        let resp = discovery(&sb, Some("no-such-client")).await;
        assert_eq!(resp.status(), 200, "{profile}");
        assert!(sb.client_id_headers_seen().is_empty(), "{profile}");
    }
}

#[test]
fn a_profile_client_id_header_must_be_a_vendor_header_name() {
    let with = |value: &str| {
        VendorProfile::from_toml_str(&format!(
            "extends = \"epic\"\nname = \"x\"\nclient_id_header = {value:?}\n"
        ))
    };
    assert!(with("X-Client-Id").is_ok());
    let err = with("Epic Client ID").unwrap_err().to_string();
    assert!(err.contains("client_id_header"), "{err}");
    let err = with("Authorization").unwrap_err().to_string();
    assert!(err.contains("already reads"), "{err}");
}
