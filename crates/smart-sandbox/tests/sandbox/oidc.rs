//! OpenID Connect: configuration, JWKS, id_tokens and their fault switches.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use smart_jose::{Algorithm, JoseError, Jwks, Validation, VerifiedJwt};
use smart_sandbox::{
    ClientAuth, ClientRegistration, DEMO_REDIRECT_URI, IdTokenFault, LaunchDefaults, Sandbox,
};

use crate::common::*;

const IDENTITY: &str = "launch/patient openid fhirUser profile patient/*.rs offline_access";

async fn get_json(url: &str) -> (reqwest::header::HeaderMap, Value) {
    let resp = http().get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{url}");
    let headers = resp.headers().clone();
    (headers, resp.json().await.unwrap())
}

async fn jwks(sb: &Sandbox) -> Jwks {
    let (_, body) = get_json(&format!("{}/auth/jwks", origin(sb))).await;
    serde_json::from_value(body).unwrap()
}

fn validation(sb: &Sandbox, client_id: &str) -> Validation {
    Validation::id_token(&sb.fhir_base(), client_id, &[Algorithm::RS256])
}

async fn verify(sb: &Sandbox, client_id: &str, id_token: &str) -> Result<VerifiedJwt, JoseError> {
    smart_jose::verify(id_token, &jwks(sb).await, &validation(sb, client_id))
}

/// Authorize (with a nonce) and exchange; returns the token response.
async fn tokens_with_nonce(sb: &Sandbox, client_id: &str, scope: &str, nonce: &str) -> Value {
    let p = pkce();
    let mut params = auth_params(sb, client_id, scope, &p);
    set(&mut params, "nonce", Some(nonce));
    let q = redirect_params(&authorize(sb, &params).await);
    let resp = exchange(sb, client_id, &q["code"], &p).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn openid_configuration_fields() {
    let sb = start().await;
    let url = format!("{}/.well-known/openid-configuration", sb.fhir_base());
    let resp = http().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "application/json");
    assert_eq!(header(&resp, "access-control-allow-origin"), "*");
    let doc: Value = resp.json().await.unwrap();
    let o = origin(&sb);
    assert_eq!(doc["issuer"], sb.fhir_base());
    assert_eq!(doc["authorization_endpoint"], format!("{o}/auth/authorize"));
    assert_eq!(doc["token_endpoint"], format!("{o}/auth/token"));
    assert_eq!(doc["jwks_uri"], format!("{o}/auth/jwks"));
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        doc["subject_types_supported"],
        serde_json::json!(["public"])
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    let scopes = doc["scopes_supported"].as_array().unwrap();
    assert!(scopes.contains(&"openid".into()) && scopes.contains(&"fhirUser".into()));

    // SMART discovery agrees.
    let (_, smart) = get_json(&format!(
        "{}/.well-known/smart-configuration",
        sb.fhir_base()
    ))
    .await;
    assert_eq!(smart["issuer"], doc["issuer"]);
    assert_eq!(smart["jwks_uri"], doc["jwks_uri"]);
}

#[tokio::test]
async fn jwks_has_bare_public_keys_only() {
    let sb = start().await;
    let (headers, body) = get_json(&format!("{}/auth/jwks", origin(&sb))).await;
    assert_eq!(headers["cache-control"], "max-age=300");
    assert_eq!(headers["access-control-allow-origin"], "*");
    let keys = body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = keys[0].as_object().unwrap();
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert!(key["kid"].is_string() && key["n"].is_string() && key["e"].is_string());
    for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        assert!(!key.contains_key(private), "private member {private}");
    }
    assert!(!key.contains_key("x5c"));
    assert_eq!(sb.counters().oidc_jwks_requests, 1);
}

#[tokio::test]
async fn id_token_verifies_and_carries_fhir_user() {
    let sb = start().await;
    let body = tokens_with_nonce(&sb, PUBLIC, IDENTITY, "n-123").await;
    assert_eq!(body["scope"], IDENTITY);
    let id_token = body["id_token"].as_str().unwrap();
    let (header, _) = jwt_parts(id_token);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    let verified = verify(&sb, PUBLIC, id_token).await.unwrap();
    let kid = verified.kid().unwrap().to_owned();
    assert!(jwks(&sb).await.find(&kid).len() == 1);
    let fhir_user = format!("{}/Practitioner/prac-1", sb.fhir_base());
    assert_eq!(verified.claim_str("iss"), Some(sb.fhir_base().as_str()));
    assert_eq!(verified.claim_str("aud"), Some(PUBLIC));
    assert_eq!(verified.claim_str("sub"), Some("prac-1"));
    assert_eq!(verified.claim_str("fhirUser"), Some(fhir_user.as_str()));
    assert_eq!(verified.claim_str("profile"), Some(fhir_user.as_str()));
    assert_eq!(verified.claim_str("nonce"), Some("n-123"));
    let iat = verified.claims["iat"].as_u64().unwrap();
    let exp = verified.claims["exp"].as_u64().unwrap();
    assert_eq!(exp - iat, 3600);
    assert!(iat.abs_diff(now()) < 60);

    // The fhirUser resolves with the access token.
    let resp = http()
        .get(&fhir_user)
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let user: Value = resp.json().await.unwrap();
    assert_eq!(user["resourceType"], "Practitioner");

    // A refresh brings a new id_token for the same user, without the nonce.
    let resp = token_request(
        &sb,
        PUBLIC,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    let refreshed: Value = resp.json().await.unwrap();
    let again = verify(&sb, PUBLIC, refreshed["id_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(again.claim_str("sub"), Some("prac-1"));
    assert_eq!(again.claim_str("fhirUser"), Some(fhir_user.as_str()));
    assert!(again.claims.get("nonce").is_none());

    // openid without fhirUser or profile: an id_token without those claims.
    let body = tokens(&sb, CONFIDENTIAL, "openid patient/*.rs").await;
    let verified = verify(&sb, CONFIDENTIAL, body["id_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(verified.claim_str("aud"), Some(CONFIDENTIAL));
    assert!(verified.claims.get("fhirUser").is_none());
    assert!(verified.claims.get("profile").is_none());
    assert!(verified.claims.get("nonce").is_none());

    // No openid, no id_token.
    let body = tokens(&sb, PUBLIC, "fhirUser patient/*.rs").await;
    assert!(body.get("id_token").is_none());
}

#[tokio::test]
async fn a_patient_without_a_user_is_the_subject() {
    let sb = start().await;
    sb.register_client(ClientRegistration {
        client_id: "patient-app".into(),
        auth: ClientAuth::Public,
        redirect_uris: vec![DEMO_REDIRECT_URI.into()],
        launch_uri: None,
        scopes: IDENTITY.into(),
        grant_types: vec!["authorization_code".into()],
        context: LaunchDefaults {
            patient: Some("pat-3".into()),
            ..LaunchDefaults::default()
        },
    });
    let body = tokens(&sb, "patient-app", IDENTITY).await;
    let verified = verify(&sb, "patient-app", body["id_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(verified.claim_str("sub"), Some("pat-3"));
    assert_eq!(
        verified.claim_str("fhirUser"),
        Some(format!("{}/Patient/pat-3", sb.fhir_base()).as_str())
    );

    sb.set_behavior(|b| b.relative_fhir_user = true);
    let body = tokens(&sb, "patient-app", IDENTITY).await;
    let verified = verify(&sb, "patient-app", body["id_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(verified.claim_str("fhirUser"), Some("Patient/pat-3"));
    assert_eq!(verified.claim_str("profile"), Some("Patient/pat-3"));
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner = Sha256::new()
        .chain_update(block.map(|b| b ^ 0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(block.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

#[tokio::test]
async fn each_id_token_fault_has_its_defect() {
    let sb = start().await;
    let id_token = |fault: IdTokenFault| {
        sb.set_behavior(|b| b.id_token_fault = fault);
        let sb = &sb;
        async move {
            let body = tokens(sb, PUBLIC, IDENTITY).await;
            body["id_token"].as_str().unwrap().to_owned()
        }
    };

    let good = id_token(IdTokenFault::None).await;
    assert!(verify(&sb, PUBLIC, &good).await.is_ok());
    let (good_header, _) = jwt_parts(&good);

    let bad = id_token(IdTokenFault::BadSignature).await;
    assert_eq!(jwt_parts(&bad).0, good_header);
    assert_eq!(
        verify(&sb, PUBLIC, &bad).await.unwrap_err(),
        JoseError::BadSignature
    );

    let none = id_token(IdTokenFault::AlgNone).await;
    let (header, claims) = jwt_parts(&none);
    assert_eq!(header["alg"], "none");
    assert!(none.ends_with('.'), "empty signature");
    assert_eq!(claims["aud"], PUBLIC);
    assert!(matches!(
        verify(&sb, PUBLIC, &none).await,
        Err(JoseError::UnsupportedAlgorithm(_))
    ));

    let hs = id_token(IdTokenFault::Hs256WithPublicKey).await;
    let (header, _) = jwt_parts(&hs);
    assert_eq!(header["alg"], "HS256");
    // MACed with the served public JWK's JSON text as the secret.
    let (_, served) = get_json(&format!("{}/auth/jwks", origin(&sb))).await;
    let jwk_json = served["keys"][0].to_string();
    let (input, signature) = hs.rsplit_once('.').unwrap();
    assert_eq!(
        URL_SAFE_NO_PAD.decode(signature).unwrap(),
        hmac_sha256(jwk_json.as_bytes(), input.as_bytes())
    );
    assert!(matches!(
        verify(&sb, PUBLIC, &hs).await,
        Err(JoseError::UnsupportedAlgorithm(_))
    ));

    let aud = id_token(IdTokenFault::WrongAudience).await;
    assert!(matches!(
        verify(&sb, PUBLIC, &aud).await,
        Err(JoseError::WrongAudience { .. })
    ));

    let iss = id_token(IdTokenFault::WrongIssuer).await;
    assert!(matches!(
        verify(&sb, PUBLIC, &iss).await,
        Err(JoseError::WrongIssuer { .. })
    ));

    let expired = id_token(IdTokenFault::Expired).await;
    assert_eq!(
        verify(&sb, PUBLIC, &expired).await.unwrap_err(),
        JoseError::Expired
    );
    assert!(jwt_parts(&expired).1["exp"].as_u64().unwrap() < now());
}

#[tokio::test]
async fn rotate_signing_key_publishes_old_and_new() {
    let sb = start().await;
    let first = tokens(&sb, PUBLIC, IDENTITY).await["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let old_kid = jwt_parts(&first).0["kid"].as_str().unwrap().to_owned();

    let new_kid = sb.rotate_signing_key().unwrap();
    assert_ne!(new_kid, old_kid);
    let keys = jwks(&sb).await;
    let kids: Vec<&str> = keys.keys.iter().filter_map(|k| k.kid()).collect();
    assert_eq!(kids, [old_kid.as_str(), new_kid.as_str()]);

    let second = tokens(&sb, PUBLIC, IDENTITY).await["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(jwt_parts(&second).0["kid"], new_kid);
    assert!(verify(&sb, PUBLIC, &second).await.is_ok());
    // Tokens signed before the rotation still verify against the JWKS.
    assert!(verify(&sb, PUBLIC, &first).await.is_ok());
}

#[tokio::test]
async fn refresh_switches_drop_aud_or_change_sub_in_refreshed_id_tokens_only() {
    let sb = start().await;
    sb.set_behavior(|b| {
        b.refreshed_id_token_omits_aud = true;
        b.refreshed_id_token_changes_sub = true;
    });
    let body = tokens_with_nonce(&sb, PUBLIC, IDENTITY, "n-1").await;
    // The sign-in's id_token is untouched.
    let signed_in = verify(&sb, PUBLIC, body["id_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(signed_in.claim_str("aud"), Some(PUBLIC));
    let sub = signed_in.claim_str("sub").unwrap().to_owned();

    let resp = token_request(
        &sb,
        PUBLIC,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    let refreshed: Value = resp.json().await.unwrap();
    let mut no_aud = validation(&sb, PUBLIC);
    no_aud.audience = None;
    no_aud.required_claims.retain(|c| c != "aud");
    let again = smart_jose::verify(
        refreshed["id_token"].as_str().unwrap(),
        &jwks(&sb).await,
        &no_aud,
    )
    .expect("still correctly signed");
    assert!(again.claims.get("aud").is_none(), "{:?}", again.claims);
    assert_eq!(
        again.claim_str("sub"),
        Some(format!("{sub}-changed").as_str())
    );
}
