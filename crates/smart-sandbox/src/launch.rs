//! The EHR-launch trigger: the part of a real EHR where a clinician clicks an
//! app inside a patient chart.
//!
//! `POST /sandbox/launch` (JSON) is for scripts and tests; `GET
//! /sandbox/ehr-launch` is for a browser and redirects straight to the app's
//! launch URL with `iss` and `launch` (SMART S-7). Both mint a launch token
//! bound to the client and the chosen context; the authorize endpoint accepts
//! it once, from that client only, within five minutes.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::params::{MAX_FORM_BODY, Params, append_query};
use std::time::Instant;

use crate::data;
use crate::error::SandboxError;
use crate::oauth_state::{LAUNCH_LIFETIME, LaunchRecord};
use crate::random::random_token;
use crate::state::Shared;
use crate::time::instant_after;

/// Context for an EHR launch; `None` fields fall back to the client's
/// [`LaunchDefaults`](crate::LaunchDefaults) (and the patient to the first synthetic patient).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaunchContextRequest {
    /// Patient id in context, e.g. `"pat-2"`.
    pub patient: Option<String>,
    /// Encounter id in context.
    pub encounter: Option<String>,
    /// The launching user, e.g. `"Practitioner/prac-1"`.
    pub user: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LaunchRequest {
    client_id: String,
    patient: Option<String>,
    encounter: Option<String>,
    user: Option<String>,
}

#[derive(Serialize)]
struct LaunchResponse {
    launch: String,
    iss: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    launch_url: Option<String>,
}

/// `POST /sandbox/launch` with `{client_id, patient?, encounter?, user?}`.
/// Bodies over [`MAX_FORM_BODY`] are refused with 413 before parsing.
pub(crate) async fn launch_json(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    if body.len() > MAX_FORM_BODY {
        return json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            &format!(
                "the launch request body is {} bytes; the limit is {MAX_FORM_BODY}",
                body.len()
            ),
        );
    }
    let request: LaunchRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!(
                    "expected a JSON body {{\"client_id\": …, \"patient\"?, \"encounter\"?, \"user\"?}}: {e}"
                ),
            );
        }
    };
    match launch(
        &shared,
        &request.client_id,
        LaunchContextRequest {
            patient: request.patient,
            encounter: request.encounter,
            user: request.user,
        },
    ) {
        Ok(r) => (StatusCode::OK, Json(r)).into_response(),
        Err(e) => launch_error(e),
    }
}

/// `GET /sandbox/ehr-launch?client_id=…&patient=…&encounter=…&user=…`:
/// redirects to the client's launch URL.
pub(crate) async fn launch_redirect(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    let Some(client_id) = params.get("client_id") else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id is missing",
        );
    };
    let request = LaunchContextRequest {
        patient: params.get("patient").map(str::to_owned),
        encounter: params.get("encounter").map(str::to_owned),
        user: params.get("user").map(str::to_owned),
    };
    match launch(&shared, client_id, request) {
        Ok(LaunchResponse {
            launch_url: Some(url),
            ..
        }) => (
            StatusCode::FOUND,
            [
                (header::LOCATION, url),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
        )
            .into_response(),
        Ok(_) => json_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("client {client_id:?} has no launch_uri registered; use POST /sandbox/launch"),
        ),
        Err(e) => launch_error(e),
    }
}

fn launch(
    shared: &Shared,
    client_id: &str,
    request: LaunchContextRequest,
) -> Result<LaunchResponse, SandboxError> {
    let launch = issue(shared, client_id, request)?;
    let launch_uri = shared.client(client_id).and_then(|c| c.launch_uri);
    let launch_url = launch_uri.map(|uri| {
        append_query(
            &uri,
            &[
                ("iss", shared.fhir_base.as_str()),
                ("launch", launch.as_str()),
            ],
        )
    });
    Ok(LaunchResponse {
        launch,
        iss: shared.fhir_base.clone(),
        launch_url,
    })
}

fn launch_error(e: SandboxError) -> Response {
    let status = match e {
        SandboxError::UnknownClient(_) | SandboxError::UnknownPatient(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    };
    json_error(status, "invalid_request", &e.to_string())
}

fn json_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

/// Creates an EHR launch token bound to `client_id` and a context.
pub(crate) fn issue(
    shared: &Shared,
    client_id: &str,
    request: LaunchContextRequest,
) -> Result<String, SandboxError> {
    let client = shared
        .client(client_id)
        .ok_or_else(|| SandboxError::UnknownClient(client_id.to_owned()))?;
    let patient = request
        .patient
        .or(client.context.patient.clone())
        .unwrap_or_else(|| data::DEFAULT_PATIENT_ID.to_owned());
    if !shared.patient_exists(&patient) {
        return Err(SandboxError::UnknownPatient(patient));
    }
    let record = LaunchRecord {
        client_id: client.client_id.clone(),
        patient: Some(patient),
        encounter: request.encounter.or(client.context.encounter.clone()),
        user: request.user.or(client.context.user.clone()),
        expires_at: instant_after(Instant::now(), LAUNCH_LIFETIME),
    };
    let token = random_token();
    let mut store = shared.store();
    store.prune(Instant::now());
    store.launches.insert(token.clone(), record);
    tracing::debug!(client_id, "issued an EHR launch token");
    Ok(token)
}
