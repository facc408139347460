//! Token introspection (`POST /auth/introspect`, RFC 7662 and SMART's
//! token-introspection page).
//!
//! The endpoint is protected, as RFC 7662 §2.1 requires: the caller
//! authenticates like a client at the token endpoint (HTTP Basic for
//! confidential symmetric clients, an assertion for `private_key_jwt`
//! clients; public clients cannot) or, as SMART requires of a protected
//! endpoint, with `Authorization: Bearer <any active access token>`. Anything
//! else is a 401.
//!
//! An unknown, revoked or expired token is `{"active": false}` and nothing
//! else (RFC 7662 §2.2). An active access token is described with the fields
//! SMART asks for: `scope`, `client_id`, `exp`, the launch context of the
//! original token response, and `iss`/`sub`/`fhirUser` copied from the
//! `id_token` issued for the grant. Only access tokens are introspected;
//! refresh tokens are reported inactive.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::assertion;
use crate::client_auth::{self, Method};
use crate::counters::CounterCells;
use crate::grants;
use crate::oauth_error::{TokenError, err, error_response, no_store};
use crate::params::{MAX_FORM_BODY, Params, is_form_content_type};
use crate::state::Shared;

/// `POST /auth/introspect`.
pub(crate) async fn introspect(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    CounterCells::bump(&shared.counters.introspection);
    match handle(&shared, &headers, &body).await {
        Ok(body) => no_store(Json(body).into_response()),
        Err(response) => response,
    }
}

async fn handle(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<Value, Response> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !is_form_content_type(content_type) {
        return Err(error_response(
            shared,
            err(
                "invalid_request",
                "the introspection request must be a POST with Content-Type application/x-www-form-urlencoded",
            ),
        ));
    }
    if body.len() > MAX_FORM_BODY {
        return Err(error_response(
            shared,
            TokenError {
                too_large: true,
                ..err(
                    "invalid_request",
                    format!(
                        "the introspection request body is {} bytes; the limit is {MAX_FORM_BODY}",
                        body.len()
                    ),
                )
            },
        ));
    }
    let params = Params::parse(body);
    if let Some(name) = params.first_duplicate() {
        return Err(error_response(
            shared,
            err(
                "invalid_request",
                format!("the parameter {name} was sent more than once"),
            ),
        ));
    }
    let caller = authenticate(shared, headers, &params).await?;
    let Some(token) = params.get("token") else {
        return Err(error_response(
            shared,
            err(
                "invalid_request",
                "token is missing; send token=<the access token to introspect>",
            ),
        ));
    };
    let body = describe(shared, token);
    let active = body.get("active").and_then(|a| a.as_bool()) == Some(true);
    tracing::debug!(caller = %caller, active, "introspection");
    Ok(body)
}

/// Authenticates the caller; returns a label for logging.
async fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
    params: &Params,
) -> Result<String, Response> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let bearer = authorization
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    if let Some(bearer) = bearer {
        if assertion::is_present(params) {
            return Err(error_response(
                shared,
                err(
                    "invalid_client",
                    "the request uses both a bearer token and a client_assertion; use exactly one",
                ),
            ));
        }
        let store = shared.store();
        return match store.active_access_token(bearer) {
            Some((_, grant)) => Ok(format!("bearer of {}", grant.client_id)),
            None => Err(invalid_bearer()),
        };
    }
    if authorization.is_none()
        && !assertion::is_present(params)
        && params.get("client_id").is_none()
    {
        return Err(unauthenticated(
            shared,
            "introspection requires authentication: HTTP Basic (confidential-symmetric clients), \
             a client_assertion (private_key_jwt clients) or Authorization: Bearer <active access token>",
        ));
    }
    let (client, method) = client_auth::authenticate(shared, headers, params)
        .await
        .map_err(|e| error_response(shared, e))?;
    if method == Method::None {
        return Err(unauthenticated(
            shared,
            &format!(
                "client {:?} is a public client and cannot authenticate for introspection; \
             send Authorization: Bearer <active access token> instead",
                client.client_id
            ),
        ));
    }
    Ok(client.client_id)
}

fn unauthenticated(shared: &Shared, description: &str) -> Response {
    let mut response = error_response(shared, err("invalid_client", description));
    // A 401 with a Bearer challenge: the caller may authenticate with a token.
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"smart-sandbox\""),
    );
    response
}

fn invalid_bearer() -> Response {
    let mut response = no_store(
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({
                "error": "invalid_token",
                "error_description": "the bearer token is not an active access token"
            })),
        )
            .into_response(),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(
            "Bearer realm=\"smart-sandbox\", error=\"invalid_token\", \
             error_description=\"the bearer token is not an active access token\"",
        ),
    );
    response
}

/// The introspection response for `token`.
fn describe(shared: &Shared, token: &str) -> Value {
    let store = shared.store();
    let Some((record, grant)) = store.active_access_token(token) else {
        return json!({ "active": false });
    };
    let mut body = Map::new();
    body.insert("active".into(), json!(true));
    body.insert(
        "scope".into(),
        json!(grants::echo(&shared.profile, &record.scopes)),
    );
    body.insert("client_id".into(), json!(grant.client_id));
    body.insert("token_type".into(), json!(shared.profile.token_type));
    body.insert("exp".into(), json!(record.expires_at_unix));
    body.insert("iat".into(), json!(record.issued_at_unix));
    let context = &grant.context;
    if let Some(patient) = &context.patient {
        body.insert("patient".into(), json!(patient));
    }
    if let Some(encounter) = &context.encounter {
        body.insert("encounter".into(), json!(encounter));
    }
    if context.ehr_launch {
        body.insert(
            "need_patient_banner".into(),
            json!(context.need_patient_banner),
        );
        if let Some(url) = &context.smart_style_url {
            body.insert("smart_style_url".into(), json!(url));
        }
    }
    if let Some(identity) = &grant.identity {
        body.insert("iss".into(), json!(identity.iss));
        body.insert("sub".into(), json!(identity.sub));
        if let Some(fhir_user) = &identity.fhir_user {
            body.insert("fhirUser".into(), json!(fhir_user));
        }
    }
    Value::Object(body)
}
