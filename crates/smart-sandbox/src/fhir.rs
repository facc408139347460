//! The small FHIR R4 resource server: `Patient/{id}` and
//! `Practitioner/{id}` reads protected by the sandbox's access tokens.
//!
//! Its job is to give apps the same signals a real resource server gives
//! (RFC 6750 §3): `401` with a bare `Bearer` challenge when no token is sent,
//! `401 invalid_token` for an unknown, revoked or expired token (the signal a
//! client uses to refresh), and `403 insufficient_scope` when the grant does
//! not cover the read (the signal *not* to refresh). Bodies are FHIR
//! OperationOutcomes, as FHIR servers commonly send.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::data;
use crate::grants;
use crate::state::{CounterCells, Shared};

/// `application/fhir+json`, the FHIR JSON media type.
pub(crate) const FHIR_JSON: &str = "application/fhir+json";

const REALM: &str = "smart-sandbox";

/// What a validated access token carries.
struct TokenInfo {
    scopes: Vec<String>,
    patient: Option<String>,
}

/// `GET /fhir/Patient/{id}`.
pub(crate) async fn read_patient(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    CounterCells::bump(&shared.counters.fhir);
    let token = match bearer(&shared, &headers) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let access = grants::read_access(&token.scopes, "Patient");
    let in_context = token.patient.as_deref() == Some(id.as_str());
    if access.system || access.user || (access.patient && in_context) {
        return match data::patient(&id) {
            Some(p) => fhir_ok(p.to_fhir()),
            None => not_found("Patient", &id),
        };
    }
    let description = if access.patient {
        format!(
            "patient/ scopes only allow reading the patient in context ({}), not Patient/{id}",
            token.patient.as_deref().unwrap_or("none")
        )
    } else {
        "no granted scope permits reading Patient (need patient/Patient.r, user/Patient.r or system/Patient.r)"
            .to_owned()
    };
    insufficient_scope(
        &description,
        "patient/Patient.rs user/Patient.rs system/Patient.rs",
    )
}

/// `GET /fhir/Practitioner/{id}`: any `system/`, `user/` or `patient/` scope
/// that permits reading Practitioner works; no patient context is needed.
pub(crate) async fn read_practitioner(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    CounterCells::bump(&shared.counters.fhir);
    let token = match bearer(&shared, &headers) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let access = grants::read_access(&token.scopes, "Practitioner");
    if !(access.system || access.user || access.patient) {
        return insufficient_scope(
            "no granted scope permits reading Practitioner (need user/Practitioner.r, patient/Practitioner.r or system/Practitioner.r)",
            "user/Practitioner.rs",
        );
    }
    match data::practitioner(&id) {
        Some(p) => fhir_ok(p),
        None => not_found("Practitioner", &id),
    }
}

/// Any other path under `/fhir`.
pub(crate) async fn unsupported(State(shared): State<Arc<Shared>>) -> Response {
    CounterCells::bump(&shared.counters.fhir);
    outcome(
        StatusCode::NOT_FOUND,
        "not-supported",
        "the sandbox FHIR server supports only metadata, Patient/{id} and Practitioner/{id} reads",
    )
}

/// Why a request's bearer token was not accepted.
enum BearerError {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A token that is unknown, revoked or expired: OperationOutcome issue
    /// code and description.
    Invalid(&'static str, &'static str),
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        match self {
            BearerError::Missing => {
                let mut r = outcome(
                    StatusCode::UNAUTHORIZED,
                    "login",
                    "an access token is required: send Authorization: Bearer <access_token>",
                );
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"smart-sandbox\""),
                );
                r
            }
            BearerError::Invalid(code, description) => invalid_token(code, description),
        }
    }
}

/// Validates the bearer token of a request.
fn bearer(shared: &Shared, headers: &HeaderMap) -> Result<TokenInfo, BearerError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(BearerError::Missing);
    };
    let store = shared.store();
    let Some(record) = store.access_tokens.get(token) else {
        return Err(BearerError::Invalid("login", "the access token is unknown"));
    };
    let Some(grant) = store.grants.get(&record.grant_id) else {
        return Err(BearerError::Invalid("login", "the access token is unknown"));
    };
    if grant.revoked {
        return Err(BearerError::Invalid(
            "login",
            "the access token was revoked",
        ));
    }
    if record.force_expired || record.expires_at <= Instant::now() {
        return Err(BearerError::Invalid("expired", "the access token expired"));
    }
    Ok(TokenInfo {
        scopes: record.scopes.clone(),
        patient: grant.context.patient.clone(),
    })
}

fn invalid_token(code: &str, description: &str) -> Response {
    let mut r = outcome(StatusCode::UNAUTHORIZED, code, description);
    if let Ok(v) = HeaderValue::from_str(&format!(
        "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{}\"",
        quoted_string_safe(description)
    )) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

fn insufficient_scope(description: &str, scope_hint: &str) -> Response {
    let mut r = outcome(StatusCode::FORBIDDEN, "forbidden", description);
    if let Ok(v) = HeaderValue::from_str(&format!(
        "Bearer error=\"insufficient_scope\", error_description=\"{}\", scope=\"{scope_hint}\", realm=\"{REALM}\"",
        quoted_string_safe(description)
    )) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

/// Keeps only characters RFC 6750 allows in `error_description`
/// (printable ASCII except `"` and `\\`).
fn quoted_string_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if (' '..='~').contains(&c) && c != '"' && c != '\\' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn not_found(resource_type: &str, id: &str) -> Response {
    outcome(
        StatusCode::NOT_FOUND,
        "not-found",
        &format!("{resource_type}/{id} is not known to the sandbox"),
    )
}

fn fhir_ok(resource: Value) -> Response {
    fhir_json(StatusCode::OK, &resource)
}

/// Serialises a FHIR resource with the FHIR JSON media type.
pub(crate) fn fhir_json(status: StatusCode, resource: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, FHIR_JSON)],
        resource.to_string(),
    )
        .into_response()
}

/// An OperationOutcome response with one error issue.
fn outcome(status: StatusCode, code: &str, diagnostics: &str) -> Response {
    fhir_json(
        status,
        &json!({
            "resourceType": "OperationOutcome",
            "issue": [{
                "severity": "error",
                "code": code,
                "diagnostics": diagnostics
            }]
        }),
    )
}
