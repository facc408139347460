use serde_json::Value;
use smart_sandbox::DiscoveryMode;

use crate::common::*;

#[tokio::test]
async fn well_known_fields_and_headers() {
    let sb = start().await;
    let resp = http()
        .get(format!(
            "{}/.well-known/smart-configuration",
            sb.fhir_base()
        ))
        .header("accept", "text/html") // JSON whatever Accept says
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "application/json");
    assert_eq!(header(&resp, "access-control-allow-origin"), "*");
    assert!(header(&resp, "cache-control").contains("max-age"));
    let doc: Value = resp.json().await.unwrap();
    let o = origin(&sb);
    assert_eq!(doc["authorization_endpoint"], format!("{o}/auth/authorize"));
    assert_eq!(doc["token_endpoint"], format!("{o}/auth/token"));
    assert_eq!(
        doc["grant_types_supported"],
        serde_json::json!(["authorization_code", "refresh_token", "client_credentials"])
    );
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "private_key_jwt"])
    );
    assert_eq!(
        doc["token_endpoint_auth_signing_alg_values_supported"],
        serde_json::json!(["RS384", "ES384"])
    );
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    let scopes: Vec<&str> = doc["scopes_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    for s in [
        "openid",
        "fhirUser",
        "launch",
        "patient/*.rs",
        "user/*.rs",
        "system/*.rs",
    ] {
        assert!(scopes.contains(&s), "missing scope {s}");
    }
    // sso-openid-connect requires issuer (= the FHIR base) and jwks_uri.
    assert_eq!(doc["issuer"], sb.fhir_base());
    assert_eq!(doc["jwks_uri"], format!("{o}/auth/jwks"));
    assert_eq!(
        doc["introspection_endpoint"],
        format!("{o}/auth/introspect")
    );
    assert!(doc.get("revocation_endpoint").is_none());
    assert!(doc.get("registration_endpoint").is_none());
    let caps: Vec<&str> = doc["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for c in [
        "launch-ehr",
        "launch-standalone",
        "authorize-post",
        "client-public",
        "client-confidential-symmetric",
        "client-confidential-asymmetric",
        "sso-openid-connect",
        "context-banner",
        "context-style",
        "context-ehr-patient",
        "context-ehr-encounter",
        "context-standalone-patient",
        "permission-offline",
        "permission-online",
        "permission-patient",
        "permission-user",
        "permission-v1",
        "permission-v2",
    ] {
        assert!(caps.contains(&c), "missing capability {c}");
    }
    assert!(!caps.contains(&"context-standalone-encounter"));
    assert_eq!(caps.len(), 18, "{caps:?}");
    assert_eq!(sb.counters().discovery_requests, 1);
}

#[tokio::test]
async fn metadata_has_oauth_uris() {
    let sb = start().await;
    let resp = http()
        .get(format!("{}/metadata", sb.fhir_base()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "application/fhir+json");
    assert_eq!(header(&resp, "access-control-allow-origin"), "*");
    let cs: Value = resp.json().await.unwrap();
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    assert_eq!(cs["software"]["name"], "smart-sandbox");
    let security = &cs["rest"][0]["security"];
    assert_eq!(
        security["service"][0]["coding"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/restful-security-service"
    );
    assert_eq!(security["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
    let ext = security["extension"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
        })
        .expect("oauth-uris extension");
    let uri = |name: &str| {
        ext["extension"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["url"] == name)
            .map(|e| e["valueUri"].as_str().unwrap().to_owned())
    };
    let o = origin(&sb);
    assert_eq!(uri("authorize"), Some(format!("{o}/auth/authorize")));
    assert_eq!(uri("token"), Some(format!("{o}/auth/token")));
    assert_eq!(sb.counters().metadata_requests, 1);
}

#[tokio::test]
async fn discovery_modes() {
    let sb = start().await;
    let url = format!("{}/.well-known/smart-configuration", sb.fhir_base());

    sb.set_behavior(|b| b.discovery = DiscoveryMode::MissingWellKnown);
    assert_eq!(http().get(&url).send().await.unwrap().status(), 404);

    sb.set_behavior(|b| b.discovery = DiscoveryMode::WellKnownNotJson);
    let resp = http().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(header(&resp, "content-type").starts_with("text/html"));

    sb.set_behavior(|b| b.discovery = DiscoveryMode::RelativeUrls);
    let doc: Value = http().get(&url).send().await.unwrap().json().await.unwrap();
    let token = doc["token_endpoint"].as_str().unwrap();
    assert_eq!(token, "../auth/token");
    assert_eq!(doc["jwks_uri"], "../auth/jwks");
    // The issuer is an identifier and stays absolute.
    assert_eq!(doc["issuer"], sb.fhir_base());
    let base = url::Url::parse(&sb.fhir_base()).unwrap();
    assert_eq!(
        base.join(token).unwrap().as_str(),
        format!("{}/auth/token", origin(&sb))
    );

    sb.set_behavior(|b| b.discovery = DiscoveryMode::Normal);
    assert_eq!(http().get(&url).send().await.unwrap().status(), 200);
    assert_eq!(sb.counters().discovery_requests, 4);
}

#[tokio::test]
async fn style_document() {
    let sb = start().await;
    let doc: Value = http()
        .get(format!("{}/smart-style.json", origin(&sb)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["color_background"].is_string());
}
