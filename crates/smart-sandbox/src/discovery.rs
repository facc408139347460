//! Discovery: `/.well-known/smart-configuration`, the CapabilityStatement at
//! `/metadata` (with the legacy `oauth-uris` extension), and the SMART style
//! document. (The OpenID configuration lives in [`crate::oidc`].)
//!
//! The contents come from the [`VendorProfile`](crate::VendorProfile). Under
//! the `generic` profile the advertised capabilities, grant types,
//! authentication methods and endpoints are exactly what this sandbox
//! implements, because a capability is a promise (SMART S-3): there is, for
//! example, no `context-standalone-encounter` and no revocation endpoint.
//! Vendor profiles advertise what the vendor advertises (Epic: five
//! `scopes_supported`; Cerner: no `refresh_token` grant, although refresh
//! works). [`DiscoveryMode`] can break discovery on purpose to exercise client
//! fallbacks.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::config::DiscoveryMode;
use crate::counters::CounterCells;
use crate::data;
use crate::fhir::Reply;
use crate::fhir::index::{self, RESOURCE_TYPES};
use crate::state::Shared;

/// `token_endpoint_auth_signing_alg_values_supported`: what client
/// assertions may be signed with.
pub(crate) const ASSERTION_ALGS: &[&str] = &["RS384", "ES384"];

/// `GET {fhir_base}/.well-known/smart-configuration`.
pub(crate) async fn smart_configuration(State(shared): State<Arc<Shared>>) -> Response {
    CounterCells::bump(&shared.counters.discovery);
    let mode = shared.behavior().discovery;
    let urls = &shared.urls;
    let profile = &shared.profile;
    let endpoint = |path: &str| match mode {
        DiscoveryMode::RelativeUrls => urls.relative_to_fhir_base(path),
        _ => urls.url(path),
    };
    let missing = mode == DiscoveryMode::MissingWellKnown || !profile.smart_configuration;
    match mode {
        _ if missing => {
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
        _ => {}
    }
    let mut body = json!({
        // The OIDC issuer is an identifier, never relative.
        "issuer": urls.smart_issuer,
        "jwks_uri": endpoint(&urls.jwks_path),
        "authorization_endpoint": endpoint(&urls.authorize_path),
        "token_endpoint": endpoint(&urls.token_path),
        "introspection_endpoint": endpoint(&urls.introspection_path),
        "token_endpoint_auth_methods_supported": profile.token_endpoint_auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "grant_types_supported": profile.grant_types_supported,
        "scopes_supported": profile.scopes_supported,
        "response_types_supported": ["code"],
        "capabilities": profile.capabilities,
        "code_challenge_methods_supported": ["S256"],
        // RFC 9207: every authorization response names the issuer (see authorize.rs).
        "authorization_response_iss_parameter_supported": true
    });
    if let Some(path) = &urls.registration_path {
        body["registration_endpoint"] = json!(endpoint(path));
    }
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

/// `GET {fhir_base}/metadata`: an R4 CapabilityStatement with the SMART security
/// service and the `oauth-uris` extension (the pre-2.0 discovery mechanism,
/// still used as a fallback).
pub(crate) async fn metadata(State(shared): State<Arc<Shared>>) -> Response {
    CounterCells::bump(&shared.counters.metadata);
    let mut oauth_uris = vec![
        json!({ "url": "authorize", "valueUri": shared.urls.url(&shared.urls.authorize_path) }),
        json!({ "url": "token", "valueUri": shared.token_url }),
    ];
    if let Some(path) = &shared.urls.registration_path {
        oauth_uris.push(json!({ "url": "register", "valueUri": shared.urls.url(path) }));
    }
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
                    "extension": oauth_uris
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
    let urls = &shared.urls;
    let patients: Vec<String> = data::patient_summaries()
        .into_iter()
        .map(|p| format!("  {}  {}", p.id, p.name))
        .collect();
    let profile = if shared.profile.name() == "generic" {
        String::new()
    } else {
        format!(
            "Vendor profile:       {} ({})\n",
            shared.profile.name(),
            shared.profile.description
        )
    };
    let text = format!(
        "smart-sandbox {version}: a SMART App Launch 2.2 EHR simulator (for testing only)\n\n\
         {profile}\
         FHIR base (iss/aud):  {base}\n\
         Discovery:            {base}/.well-known/smart-configuration\n\
         CapabilityStatement:  {base}/metadata\n\
         OpenID configuration: {openid}\n\
         Authorize:            {authorize}\n\
         Token:                {token}\n\
         Introspection:        POST {introspect}\n\
         JWKS (id_token keys): {jwks}\n\
         EHR launch (JSON):    POST {origin}/sandbox/launch\n\
         EHR launch (browser): GET {origin}/sandbox/ehr-launch?client_id=...&patient=...\n\n\
         Patients:\n{patients}\n  pat-6 … pat-{count}  generated (seed {seed:#x}); search {base}/Patient\n",
        version = env!("CARGO_PKG_VERSION"),
        origin = urls.origin,
        openid = urls.url(&urls.openid_configuration_paths[0]),
        authorize = urls.url(&urls.authorize_path),
        token = shared.token_url,
        introspect = urls.url(&urls.introspection_path),
        jwks = urls.url(&urls.jwks_path),
        patients = patients.join("\n"),
        count = shared.fhir.data.patient_count,
        seed = shared.fhir.data.seed,
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
