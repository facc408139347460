//! Discovery: `/.well-known/smart-configuration`, the CapabilityStatement at
//! `/metadata` (with the legacy `oauth-uris` extension), and the SMART style
//! document. (The OpenID configuration lives in [`crate::oidc`].)
//!
//! The advertised capabilities, grant types, authentication methods and
//! endpoints are exactly what this sandbox implements, because a capability
//! is a promise (SMART S-3): there is, for example, no
//! `context-standalone-encounter` and no revocation endpoint. Clients under
//! test can therefore trust what they discover here. [`DiscoveryMode`] can break discovery on
//! purpose to exercise client fallbacks.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::config::DiscoveryMode;
use crate::data;
use crate::fhir::Reply;
use crate::fhir::index::{self, RESOURCE_TYPES};
use crate::state::{CounterCells, Shared};

/// Capabilities this sandbox actually implements.
pub(crate) const CAPABILITIES: &[&str] = &[
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
];

/// `token_endpoint_auth_methods_supported`.
pub(crate) const AUTH_METHODS: &[&str] = &["client_secret_basic", "private_key_jwt"];

/// `grant_types_supported`.
pub(crate) const GRANT_TYPES: &[&str] =
    &["authorization_code", "refresh_token", "client_credentials"];

/// `token_endpoint_auth_signing_alg_values_supported`: what client
/// assertions may be signed with.
pub(crate) const ASSERTION_ALGS: &[&str] = &["RS384", "ES384"];

/// Scopes the sandbox fully supports (the list is not exhaustive).
pub(crate) const SCOPES_SUPPORTED: &[&str] = &[
    "openid",
    "fhirUser",
    "profile",
    "launch",
    "launch/patient",
    "launch/encounter",
    "offline_access",
    "online_access",
    "patient/*.rs",
    "patient/*.read",
    "patient/Patient.rs",
    "patient/Patient.read",
    "user/*.rs",
    "user/*.read",
    "user/Patient.rs",
    "user/Practitioner.rs",
    "system/*.rs",
    "system/*.read",
    "system/Patient.rs",
    "system/Practitioner.rs",
];

/// `GET /fhir/.well-known/smart-configuration`.
pub(crate) async fn smart_configuration(State(shared): State<Arc<Shared>>) -> Response {
    CounterCells::bump(&shared.counters.discovery);
    let mode = shared.behavior().discovery;
    let origin = &shared.origin;
    let endpoint = |path: &str| match mode {
        DiscoveryMode::RelativeUrls => format!("..{path}"),
        _ => format!("{origin}{path}"),
    };
    match mode {
        DiscoveryMode::MissingWellKnown => {
            return cors_any(
                (
                    StatusCode::NOT_FOUND,
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    "404 Not Found\n",
                )
                    .into_response(),
            );
        }
        DiscoveryMode::WellKnownNotJson => {
            return cors_any(
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    "<!DOCTYPE html><html><head><title>Portal</title></head>\
                     <body><p>Welcome to the patient portal.</p></body></html>\n",
                )
                    .into_response(),
            );
        }
        DiscoveryMode::RelativeUrls | DiscoveryMode::Normal => {}
    }
    let body = json!({
        // The OIDC issuer is an identifier, never relative.
        "issuer": shared.fhir_base,
        "jwks_uri": endpoint("/auth/jwks"),
        "authorization_endpoint": endpoint("/auth/authorize"),
        "token_endpoint": endpoint("/auth/token"),
        "introspection_endpoint": endpoint("/auth/introspect"),
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "grant_types_supported": GRANT_TYPES,
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "capabilities": CAPABILITIES,
        "code_challenge_methods_supported": ["S256"]
    });
    json_document(&body, "public, max-age=300")
}

/// A JSON document readable from any origin, with a `Cache-Control` value.
pub(crate) fn json_document(body: &Value, cache_control: &'static str) -> Response {
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    cors_any(response)
}

/// `GET /fhir/metadata`: an R4 CapabilityStatement with the SMART security
/// service and the `oauth-uris` extension (the pre-2.0 discovery mechanism,
/// still used as a fallback).
pub(crate) async fn metadata(State(shared): State<Arc<Shared>>) -> Response {
    CounterCells::bump(&shared.counters.metadata);
    let capability = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2024-05-01",
        "publisher": "smart-sandbox",
        "kind": "instance",
        "software": {
            "name": "smart-sandbox",
            "version": env!("CARGO_PKG_VERSION")
        },
        "implementation": {
            "description": "smart-sandbox: an embedded SMART App Launch 2.2 EHR simulator",
            "url": shared.fhir_base
        },
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "security": {
                "cors": true,
                "service": [{
                    "coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                        "display": "SMART-on-FHIR"
                    }],
                    "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)"
                }],
                "extension": [{
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [
                        { "url": "authorize", "valueUri": format!("{}/auth/authorize", shared.origin) },
                        { "url": "token", "valueUri": format!("{}/auth/token", shared.origin) }
                    ]
                }]
            },
            "resource": capability_resources(),
            "interaction": [{ "code": "batch" }, { "code": "transaction" }]
        }]
    });
    cors_any(Reply::new(StatusCode::OK, Some(capability)).into_http(false))
}

/// `CapabilityStatement.rest.resource`: what the FHIR server really does.
fn capability_resources() -> Vec<Value> {
    RESOURCE_TYPES
        .iter()
        .map(|t| {
            let mut params = vec![
                json!({ "name": "_id", "type": "token" }),
                json!({ "name": "_lastUpdated", "type": "date" }),
            ];
            params.extend(
                index::params(t)
                    .iter()
                    .map(|p| json!({ "name": p.name, "type": p.kind.as_str() })),
            );
            let includes: Vec<String> = index::params(t)
                .iter()
                .filter(|p| p.kind == index::Kind::Reference)
                .map(|p| format!("{t}:{}", p.name))
                .collect();
            let mut resource = json!({
                "type": t,
                "interaction": [
                    { "code": "read" }, { "code": "vread" }, { "code": "history-instance" },
                    { "code": "search-type" }, { "code": "create" }, { "code": "update" },
                    { "code": "delete" }
                ],
                "versioning": "versioned",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalUpdate": false,
                "conditionalDelete": "not-supported",
                "searchInclude": includes,
                "searchParam": params
            });
            if *t == "Patient" {
                resource["operation"] = json!([{
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"
                }]);
            }
            resource
        })
        .collect()
}

/// `GET /smart-style.json`.
pub(crate) async fn smart_style() -> Response {
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        data::smart_style().to_string(),
    )
        .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    cors_any(response)
}

/// `GET /`: a plain-text map of the sandbox, for humans who open it in a
/// browser.
pub(crate) async fn index(State(shared): State<Arc<Shared>>) -> Response {
    let base = &shared.fhir_base;
    let origin = &shared.origin;
    let patients: Vec<String> = data::patient_summaries()
        .into_iter()
        .map(|p| format!("  {}  {}", p.id, p.name))
        .collect();
    let text = format!(
        "smart-sandbox {version}: a SMART App Launch 2.2 EHR simulator (for testing only)\n\n\
         FHIR base (iss/aud):  {base}\n\
         Discovery:            {base}/.well-known/smart-configuration\n\
         CapabilityStatement:  {base}/metadata\n\
         OpenID configuration: {base}/.well-known/openid-configuration\n\
         Authorize:            {origin}/auth/authorize\n\
         Token:                {origin}/auth/token\n\
         Introspection:        POST {origin}/auth/introspect\n\
         JWKS (id_token keys): {origin}/auth/jwks\n\
         EHR launch (JSON):    POST {origin}/sandbox/launch\n\
         EHR launch (browser): GET {origin}/sandbox/ehr-launch?client_id=...&patient=...\n\n\
         Patients:\n{patients}\n  pat-6 … pat-{count}  generated (seed {seed:#x}); search {base}/Patient\n",
        version = env!("CARGO_PKG_VERSION"),
        patients = patients.join("\n"),
        count = shared.data.patient_count,
        seed = shared.data.seed,
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

/// Adds `Access-Control-Allow-Origin: *` (SMART S-5: discovery documents are
/// readable from any origin).
fn cors_any(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}
