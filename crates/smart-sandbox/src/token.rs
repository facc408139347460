//! The token endpoint (`POST /auth/token`): authorization-code exchange and
//! refresh.
//!
//! Client authentication follows SMART's two symmetric profiles exactly:
//! public clients name themselves with `client_id` in the body; confidential
//! symmetric clients must use HTTP Basic with form-urlencoded id and secret
//! (RFC 6749 §2.3.1) and nothing else (`client_secret` in the body is
//! rejected, since SMART does not use `client_secret_post`). Every failure is
//! an RFC 6749 §5.2 JSON error with a distinct `error_description`, so an
//! integrator can tell *which* check their app failed.
//!
//! Replay protection follows OAuth 2.1: a code is single use and replaying it
//! revokes everything issued from it; refresh tokens rotate (unless switched
//! off) and reusing a rotated-out refresh token revokes the grant.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::config::{ClientAuth, ClientRegistration};
use crate::grants;
use crate::params::{Params, form_decode, is_form_content_type};
use crate::state::{CounterCells, Grant, GrantContext, Shared, Store};

/// A token-endpoint error (RFC 6749 §5.2).
#[derive(Debug)]
pub(crate) struct TokenError {
    error: &'static str,
    description: String,
    /// Set when the client tried HTTP Basic: a 401 then carries a
    /// `WWW-Authenticate: Basic` challenge.
    basic_used: bool,
}

fn err(error: &'static str, description: impl Into<String>) -> TokenError {
    TokenError {
        error,
        description: description.into(),
        basic_used: false,
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let status = if self.error == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        let mut response = (
            status,
            Json(ErrorBody {
                error: self.error,
                error_description: &self.description,
            }),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED && self.basic_used {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"smart-sandbox\""),
            );
        }
        no_store(response)
    }
}

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// The success body (RFC 6749 §5.1 plus SMART launch context).
#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patient: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encounter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    need_patient_banner: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    smart_style_url: Option<String>,
    #[serde(rename = "fhirContext", skip_serializing_if = "Vec::is_empty")]
    fhir_context: Vec<serde_json::Value>,
}

/// `POST /auth/token`.
pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    CounterCells::bump(&shared.counters.token);
    match handle(&shared, &headers, &body) {
        Ok(response) => no_store(Json(response).into_response()),
        Err(e) => e.into_response(),
    }
}

fn handle(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<TokenResponse, TokenError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !is_form_content_type(content_type) {
        return Err(err(
            "invalid_request",
            "the token request must be a POST with Content-Type application/x-www-form-urlencoded",
        ));
    }
    let params = Params::parse(body);
    if let Some(name) = params.first_duplicate() {
        return Err(err(
            "invalid_request",
            format!("the parameter {name} was sent more than once"),
        ));
    }
    let client = authenticate(shared, headers, &params)?;
    let grant_type = params.get("grant_type");
    let outcome = match grant_type {
        None => Err(err("invalid_request", "grant_type is missing")),
        Some("authorization_code") => exchange_code(shared, &client, &params),
        Some("refresh_token") => {
            CounterCells::bump(&shared.counters.refresh);
            refresh(shared, &client, &params)
        }
        Some(other) => Err(err(
            "unsupported_grant_type",
            format!(
                "grant_type {other:?} is not supported; use authorization_code or refresh_token"
            ),
        )),
    };
    match &outcome {
        Ok(_) => tracing::debug!(
            client_id = %client.client_id,
            grant_type = grant_type.unwrap_or_default(),
            outcome = "issued",
            "token"
        ),
        Err(e) => tracing::debug!(
            client_id = %client.client_id,
            grant_type = grant_type.unwrap_or_default(),
            error = e.error,
            "token rejected"
        ),
    }
    outcome
}

/// Client authentication (SMART `client-public` and
/// `client-confidential-symmetric`).
fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
    params: &Params,
) -> Result<ClientRegistration, TokenError> {
    if params.get("client_secret").is_some() {
        return Err(err(
            "invalid_client",
            "client_secret in the request body (client_secret_post) is not supported; \
             authenticate with HTTP Basic (client_secret_basic)",
        ));
    }
    if params.get("client_assertion").is_some() || params.get("client_assertion_type").is_some() {
        return Err(err(
            "invalid_client",
            "private_key_jwt client assertions are not supported by this sandbox yet",
        ));
    }
    let body_client_id = params.get("client_id");
    match headers.get(header::AUTHORIZATION) {
        Some(value) => {
            let basic_err = |description: String| TokenError {
                error: "invalid_client",
                description,
                basic_used: true,
            };
            let (id, secret) = parse_basic(value).ok_or_else(|| {
                basic_err(
                    "the Authorization header is not valid HTTP Basic: expected \
                     Basic base64(urlencode(client_id):urlencode(client_secret))"
                        .into(),
                )
            })?;
            let client = shared
                .client(&id)
                .ok_or_else(|| basic_err(format!("unknown client_id {id:?}")))?;
            let ClientAuth::ClientSecretBasic { secret: expected } = &client.auth else {
                return Err(basic_err(format!(
                    "client {id:?} is a public client and must not authenticate; \
                     send only client_id in the body"
                )));
            };
            if !constant_time_eq(secret.as_bytes(), expected.as_bytes()) {
                return Err(basic_err(format!(
                    "client authentication failed for {id:?}: wrong client secret"
                )));
            }
            if let Some(body_id) = body_client_id
                && body_id != id
            {
                return Err(basic_err(format!(
                    "client_id {body_id:?} in the body does not match the authenticated client {id:?}"
                )));
            }
            Ok(client)
        }
        None => {
            let Some(id) = body_client_id else {
                return Err(err(
                    "invalid_client",
                    "no client authentication: public clients send client_id in the body, \
                     confidential clients use HTTP Basic",
                ));
            };
            let client = shared
                .client(id)
                .ok_or_else(|| err("invalid_client", format!("unknown client_id {id:?}")))?;
            if !matches!(client.auth, ClientAuth::Public) {
                return Err(err(
                    "invalid_client",
                    format!(
                        "client {id:?} is confidential and must authenticate with HTTP Basic \
                         (Authorization: Basic base64(client_id:client_secret))"
                    ),
                ));
            }
            Ok(client)
        }
    }
}

/// Decodes `Basic base64(urlencode(id):urlencode(secret))`.
fn parse_basic(value: &HeaderValue) -> Option<(String, String)> {
    let value = value.to_str().ok()?;
    let (scheme, credentials) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(credentials.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let id = form_decode(id)?;
    if id.is_empty() {
        return None;
    }
    Some((id, form_decode(secret)?))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `grant_type=authorization_code`.
fn exchange_code(
    shared: &Shared,
    client: &ClientRegistration,
    params: &Params,
) -> Result<TokenResponse, TokenError> {
    let code = params
        .get("code")
        .ok_or_else(|| err("invalid_request", "code is missing"))?;
    let behavior = shared.behavior();
    let now = Instant::now();
    let mut store = shared.store();
    let record = store
        .codes
        .get_mut(code)
        .ok_or_else(|| err("invalid_grant", "authorization code is unknown"))?;
    if record.client_id != client.client_id {
        return Err(err(
            "invalid_grant",
            "authorization code was issued to a different client",
        ));
    }
    if record.used {
        let grant_id = record.grant_id;
        if let Some(grant_id) = grant_id {
            store.revoke_grant(grant_id);
        }
        return Err(err(
            "invalid_grant",
            "authorization code was already used; tokens issued from it have been revoked",
        ));
    }
    // Any further attempt with this code is a replay, whatever happens next.
    record.used = true;
    if record.expires_at <= now {
        return Err(err("invalid_grant", "authorization code expired"));
    }
    match params.get("redirect_uri") {
        None => {
            return Err(err(
                "invalid_request",
                "redirect_uri is missing; send the same redirect_uri as in the authorization request",
            ));
        }
        Some(uri) if uri != record.redirect_uri => {
            return Err(err(
                "invalid_grant",
                "redirect_uri does not match the authorization request",
            ));
        }
        Some(_) => {}
    }
    let Some(verifier) = params.get("code_verifier") else {
        return Err(err(
            "invalid_grant",
            "code_verifier is missing; PKCE is required",
        ));
    };
    if !(43..=128).contains(&verifier.len())
        || !verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    {
        return Err(err(
            "invalid_grant",
            "code_verifier is malformed: it must be 43-128 characters of [A-Za-z0-9-._~] (RFC 7636 §4.1)",
        ));
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if !constant_time_eq(computed.as_bytes(), record.code_challenge.as_bytes()) {
        return Err(err(
            "invalid_grant",
            "code_verifier does not match code_challenge",
        ));
    }

    let scopes = record.scopes.clone();
    let context = record.context.clone();
    let grant_id = store.new_grant(Grant {
        client_id: client.client_id.clone(),
        scopes: scopes.clone(),
        context: context.clone(),
        revoked: false,
        current_refresh: None,
    });
    if let Some(record) = store.codes.get_mut(code) {
        record.grant_id = Some(grant_id);
    }
    let refresh_token = grants::wants_refresh(&scopes).then(|| store.issue_refresh_token(grant_id));
    Ok(respond(
        &mut store,
        &behavior,
        grant_id,
        scopes,
        &context,
        refresh_token,
    ))
}

/// `grant_type=refresh_token`.
fn refresh(
    shared: &Shared,
    client: &ClientRegistration,
    params: &Params,
) -> Result<TokenResponse, TokenError> {
    let token = params
        .get("refresh_token")
        .ok_or_else(|| err("invalid_request", "refresh_token is missing"))?;
    let behavior = shared.behavior();
    let mut store = shared.store();
    let grant_id = *store
        .refresh_tokens
        .get(token)
        .ok_or_else(|| err("invalid_grant", "refresh token is unknown"))?;
    let grant = store
        .grants
        .get(&grant_id)
        .ok_or_else(|| err("invalid_grant", "refresh token is unknown"))?;
    if grant.client_id != client.client_id {
        return Err(err(
            "invalid_grant",
            "refresh token was issued to a different client",
        ));
    }
    if grant.revoked {
        return Err(err(
            "invalid_grant",
            "refresh token was revoked (its grant was revoked after a replay)",
        ));
    }
    if grant.current_refresh.as_deref() != Some(token) {
        store.revoke_grant(grant_id);
        return Err(err(
            "invalid_grant",
            "refresh token was already used (it was rotated out); the grant has been revoked",
        ));
    }
    let original = grant.scopes.clone();
    let context = grant.context.clone();
    let scopes = match params.get("scope") {
        None => original,
        Some(requested) => {
            if let Some(extra) = grants::first_not_covered(requested, &original) {
                return Err(err(
                    "invalid_scope",
                    format!(
                        "scope {extra:?} was not part of the original grant; \
                         a refresh may only narrow the granted scopes"
                    ),
                ));
            }
            grants::tokens(requested)
        }
    };
    let refresh_token = if !behavior.refresh_returns_refresh_token {
        None
    } else if behavior.rotate_refresh_tokens {
        Some(store.issue_refresh_token(grant_id))
    } else {
        Some(token.to_owned())
    };
    Ok(respond(
        &mut store,
        &behavior,
        grant_id,
        scopes,
        &context,
        refresh_token,
    ))
}

fn respond(
    store: &mut Store,
    behavior: &crate::Behavior,
    grant_id: u64,
    scopes: Vec<String>,
    context: &GrantContext,
    refresh_token: Option<String>,
) -> TokenResponse {
    let scope = scopes.join(" ");
    let access_token = store.issue_access_token(grant_id, scopes, behavior.access_token_lifetime);
    TokenResponse {
        access_token,
        token_type: if behavior.lowercase_token_type {
            "bearer"
        } else {
            "Bearer"
        },
        expires_in: behavior.access_token_lifetime.as_secs(),
        scope,
        refresh_token,
        patient: context.patient.clone(),
        encounter: context.encounter.clone(),
        need_patient_banner: context.ehr_launch.then_some(context.need_patient_banner),
        smart_style_url: if context.ehr_launch {
            context.smart_style_url.clone()
        } else {
            None
        },
        fhir_context: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let raw = STANDARD.encode("my%20app:s%3Acret+x");
        let value = HeaderValue::from_str(&format!("Basic {raw}")).expect("header");
        assert_eq!(
            parse_basic(&value),
            Some(("my app".to_owned(), "s:cret x".to_owned()))
        );
        let bearer = HeaderValue::from_static("Bearer abc");
        assert_eq!(parse_basic(&bearer), None);
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
