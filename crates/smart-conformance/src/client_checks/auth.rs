//! Client authentication (Basic, assertions, `jti`), bearer use and backend services
//! (C-10, C-11, C-12, C-16).

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::Engine as _;
use smart_core::scope::Scopes;
use smart_core::smart_jose::{
    Validation, decode_claims_unverified, decode_header_unverified, verify,
};
use smart_fhir::FhirClient;

use super::env::{Env, Kind, SCOPES, form_field};
use super::{CLIENT_ID, CLIENT_SECRET, Harness, attempt, client_check, ensure};
use crate::model::Status;
use crate::recording::Exchange;

/// The `client_assertion_type` of RFC 7523.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

client_check!(
    C_10,
    "C-10",
    Shall,
    "Symmetric client: `Authorization: Basic` of the form-urlencoded `client_id:client_secret`, no secret in the body",
    "SMART App Launch 2.2 client-confidential-symmetric; RFC 6749 §2.3.1"
);
client_check!(
    C_11_1,
    "C-11.1",
    Shall,
    "Asymmetric client: the assertion has `alg` RS384/ES384, `kid`, `typ=JWT`, `iss`=`sub`=`client_id`, `aud`=token URL, `exp` ≤ 5 min, and verifies with the registered key",
    "SMART App Launch 2.2 client-confidential-asymmetric; RFC 7523 §3"
);
client_check!(
    C_11_2,
    "C-11.2",
    Shall,
    "Every client assertion has a `jti` never used before",
    "SMART App Launch 2.2 client-confidential-asymmetric (jti); RFC 7523 §3"
);
client_check!(
    C_11_3,
    "C-11.3",
    Shall,
    "Assertions are signed with RS384 as well as ES384 keys, each verifying with the registered JWKS",
    "SMART App Launch 2.2 client-confidential-asymmetric (RS384 and ES384)"
);
client_check!(
    C_12,
    "C-12",
    Shall,
    "FHIR requests carry `Authorization: Bearer` with an issued access token, to the FHIR base only",
    "SMART App Launch 2.2 app-launch §Access FHIR API; RFC 6750 §2.1"
);
client_check!(
    C_16,
    "C-16",
    Shall,
    "Backend services: `client_credentials` with `scope` and a client assertion; no authorize, no refresh",
    "SMART App Launch 2.2 backend-services §Obtain access token"
);

fn basic_expected() -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", enc(CLIENT_ID), enc(CLIENT_SECRET));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// C-10.
pub(crate) async fn c_10(h: Harness) -> Status {
    let env = attempt!("setup", Env::start(&h, Kind::Symmetric, SCOPES).await);
    let done = env.standalone().await;
    let tokens = env.token_requests();
    ensure!(!tokens.is_empty(), "no token request was sent");
    for e in &tokens {
        let header = e.header("authorization").unwrap_or("");
        ensure!(
            header == basic_expected(),
            "the token request's Authorization header is not Basic base64(urlencode(client_id):urlencode(secret)) ({})",
            if header.is_empty() {
                "missing"
            } else if header.starts_with("Basic ") {
                "other credentials"
            } else {
                "another scheme"
            }
        );
        ensure!(
            form_field(e, "client_secret").is_none(),
            "the secret was also sent in the body"
        );
    }
    attempt!("launch", done);
    Status::Pass
}

/// The client assertions sent, one per token request that has one.
fn assertions(env: &Env) -> Vec<(Exchange, String)> {
    env.token_requests()
        .into_iter()
        .filter_map(|e| form_field(&e, "client_assertion").map(|a| (e, a)))
        .collect()
}

/// C-11.1.
pub(crate) async fn c_11_1(h: Harness) -> Status {
    assertions_verify(h, Kind::Asymmetric, "ES384").await
}

/// C-11.3: C-11.1 with an RSA key (C-11.1 uses an EC key).
pub(crate) async fn c_11_3(h: Harness) -> Status {
    assertions_verify(h, Kind::AsymmetricRsa, "RS384").await
}

async fn assertions_verify(h: Harness, kind: Kind, expected_alg: &str) -> Status {
    let env = attempt!("setup", Env::start(&h, kind, SCOPES).await);
    let done = env.standalone().await;
    let token_url = env.sandbox.token_url();
    let jwks = match &env.keys {
        Some(k) => k.jwks(),
        None => return Status::Fail("no client keys".into()),
    };
    let sent = env.token_requests();
    ensure!(!sent.is_empty(), "no token request was sent");
    for e in &sent {
        ensure!(
            form_field(e, "client_assertion_type").as_deref() == Some(JWT_BEARER),
            "`client_assertion_type` is {:?}",
            form_field(e, "client_assertion_type")
        );
        let Some(assertion) = form_field(e, "client_assertion") else {
            return Status::Fail("a token request has no `client_assertion`".into());
        };
        let header = attempt!("assertion header", decode_header_unverified(&assertion));
        let alg = header.get("alg").and_then(|v| v.as_str()).unwrap_or("");
        ensure!(
            alg == expected_alg,
            "assertion `alg` is {alg:?}, expected {expected_alg} for this key"
        );
        ensure!(
            header.get("kid").and_then(|v| v.as_str()).is_some(),
            "assertion header has no `kid`"
        );
        ensure!(
            header.get("typ").and_then(|v| v.as_str()) == Some("JWT"),
            "assertion `typ` is {:?}, expected JWT",
            header.get("typ")
        );
        let verified = verify(
            &assertion,
            &jwks,
            &Validation::client_assertion(CLIENT_ID, &token_url),
        );
        attempt!("assertion", verified);
        let claims = attempt!("assertion claims", decode_claims_unverified(&assertion));
        ensure!(
            claims.get("sub").and_then(|v| v.as_str()) == Some(CLIENT_ID),
            "assertion `sub` is {:?}, expected the client_id",
            claims.get("sub")
        );
        ensure!(
            form_field(e, "client_secret").is_none(),
            "a secret was sent next to the assertion"
        );
    }
    attempt!("launch", done);
    Status::Pass
}

/// C-11.2: a launch, a refresh and two backend tokens; every `jti` distinct.
pub(crate) async fn c_11_2(h: Harness) -> Status {
    let env = attempt!("setup", Env::start(&h, Kind::Asymmetric, SCOPES).await);
    let done = attempt!("launch", env.standalone().await);
    let refreshed = env
        .client
        .refresh(&done.session_id, smart_core::RefreshOptions::default())
        .await;
    attempt!("refresh", refreshed);
    let source = attempt!(
        "backend token source",
        env.client
            .backend_token_source("backend", Scopes::parse("system/Patient.rs"))
    );
    attempt!("first backend token", source.token().await);
    source.invalidate().await;
    attempt!("second backend token", source.token().await);
    let all = assertions(&env);
    ensure!(
        all.len() >= 4,
        "expected 4 client assertions, saw {}",
        all.len()
    );
    let mut seen = BTreeSet::new();
    for (_, a) in &all {
        let claims = attempt!("assertion claims", decode_claims_unverified(a));
        let Some(jti) = claims
            .get("jti")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
        else {
            return Status::Fail("an assertion has no `jti`".into());
        };
        ensure!(seen.insert(jti), "a `jti` was sent twice");
    }
    Status::Pass
}

/// The access tokens the token endpoint issued, read from its responses.
fn issued_access_tokens(env: &Env) -> BTreeSet<String> {
    env.token_requests()
        .iter()
        .filter_map(|e| e.response_json())
        .filter_map(|v| v["access_token"].as_str().map(str::to_owned))
        .collect()
}

/// C-12.
pub(crate) async fn c_12(h: Harness) -> Status {
    let env = attempt!("setup", Env::start(&h, Kind::Public, SCOPES).await);
    let done = attempt!("launch", env.standalone().await);
    let bearer = attempt!(
        "session bearer",
        env.client.session_bearer(&done.session_id).await
    );
    let fhir = FhirClient::new(env.client.http().clone(), Arc::new(bearer));
    let patient = done.session.context.patient.clone().unwrap_or_default();
    let read = fhir.read_json("Patient", &patient).await;
    let issued = issued_access_tokens(&env);
    let reads = env.fhir_requests();
    ensure!(!reads.is_empty(), "no FHIR request was seen");
    for e in &reads {
        let header = e.header("authorization").unwrap_or("");
        let Some(token) = header.strip_prefix("Bearer ") else {
            return Status::Fail(format!(
                "a FHIR request's Authorization header does not use the `Bearer` scheme ({})",
                header.split(' ').next().unwrap_or("missing")
            ));
        };
        ensure!(
            issued.contains(token),
            "a FHIR request carried a token the server never issued"
        );
    }
    // Nothing with a token went anywhere but the FHIR base and the token endpoint.
    let token_url = env.sandbox.token_url();
    for e in env.rec.exchanges() {
        if e.header("authorization")
            .is_some_and(|v| v.starts_with("Bearer "))
        {
            ensure!(
                e.url.starts_with(&format!("{}/", env.base)) || e.url.starts_with(&token_url),
                "a bearer token was sent to {}",
                crate::recording::redact(&e.url)
            );
        }
    }
    attempt!("FHIR read", read);
    Status::Pass
}

/// C-16.
pub(crate) async fn c_16(h: Harness) -> Status {
    let env = attempt!("setup", Env::start(&h, Kind::Asymmetric, SCOPES).await);
    let source = attempt!(
        "backend token source",
        env.client
            .backend_token_source("backend", Scopes::parse("system/Patient.rs"))
    );
    let token = source.token().await;
    let sent = env.token_requests();
    ensure!(!sent.is_empty(), "no token request was sent");
    for e in &sent {
        let grant = form_field(e, "grant_type");
        ensure!(
            grant.as_deref() == Some("client_credentials"),
            "a backend token request has `grant_type` {grant:?}"
        );
        ensure!(
            !form_field(e, "scope").unwrap_or_default().trim().is_empty(),
            "a backend token request has no `scope`"
        );
        ensure!(
            form_field(e, "client_assertion_type").as_deref() == Some(JWT_BEARER),
            "`client_assertion_type` is {:?}",
            form_field(e, "client_assertion_type")
        );
        ensure!(
            form_field(e, "client_assertion").is_some(),
            "a backend token request has no `client_assertion`"
        );
    }
    ensure!(
        env.authorize_requests().is_empty(),
        "the backend flow sent an authorization request"
    );
    attempt!("backend token", token);
    // A second token after the first is dropped is a new client_credentials request, never a
    // refresh.
    source.invalidate().await;
    attempt!("second backend token", source.token().await);
    ensure!(
        env.grants("refresh_token").is_empty(),
        "the backend flow sent a refresh request"
    );
    ensure!(
        env.grants("client_credentials").len() == 2,
        "expected two client_credentials requests, saw {}",
        env.grants("client_credentials").len()
    );
    Status::Pass
}
