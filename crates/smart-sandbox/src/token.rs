//! The token endpoint (`POST /auth/token`): authorization-code exchange,
//! refresh, and Backend Services `client_credentials`.
//!
//! Client authentication ([`crate::client_auth`]) follows SMART's client
//! types exactly: public, confidential symmetric (HTTP Basic only) and
//! confidential asymmetric (`private_key_jwt` assertions only). Every failure
//! is an RFC 6749 §5.2 JSON error with a distinct `error_description`, so an
//! integrator can tell *which* check their app failed.
//!
//! When `openid` is granted, code exchanges and refreshes also return an
//! RS256 `id_token` ([`crate::oidc`]).
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
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::client_auth::{self, constant_time_eq};
use crate::config::{
    ClientAuth, ClientRegistration, GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS,
};
use crate::oidc::{self, IdTokenPlan};
use crate::params::{Params, is_form_content_type};
use crate::state::{CounterCells, Grant, GrantContext, Shared, Store};
use crate::{Behavior, grants};

/// A token-endpoint error (RFC 6749 §5.2).
#[derive(Debug)]
pub(crate) struct TokenError {
    pub(crate) error: &'static str,
    pub(crate) description: String,
    /// Set when the client tried HTTP Basic: a 401 then carries a
    /// `WWW-Authenticate: Basic` challenge.
    basic_used: bool,
}

impl TokenError {
    /// An error for a request that tried HTTP Basic.
    pub(crate) fn basic(error: &'static str, description: String) -> TokenError {
        TokenError {
            error,
            description,
            basic_used: true,
        }
    }
}

/// A token-endpoint error without a Basic challenge.
pub(crate) fn err(error: &'static str, description: impl Into<String>) -> TokenError {
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
        let status = match self.error {
            "invalid_client" => StatusCode::UNAUTHORIZED,
            "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
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

/// Adds `Cache-Control: no-store` and `Pragma: no-cache`.
pub(crate) fn no_store(mut response: Response) -> Response {
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
    id_token: Option<String>,
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
    match handle(&shared, &headers, &body).await {
        Ok(response) => no_store(Json(response).into_response()),
        Err(e) => e.into_response(),
    }
}

/// A successful grant, and the `id_token` to sign for it, if any.
type Issued = (TokenResponse, Option<IdTokenPlan>);

async fn handle(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<TokenResponse, TokenError> {
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
    let (client, _method) = client_auth::authenticate(shared, headers, &params).await?;
    let grant_type = params.get("grant_type");
    let behavior = shared.behavior();
    let outcome: Result<Issued, TokenError> = match grant_type {
        None => Err(err("invalid_request", "grant_type is missing")),
        Some("authorization_code") => exchange_code(shared, &behavior, &client, &params),
        Some("refresh_token") => {
            CounterCells::bump(&shared.counters.refresh);
            refresh(shared, &behavior, &client, &params)
        }
        Some("client_credentials") => {
            client_credentials(shared, &behavior, &client, &params).map(|r| (r, None))
        }
        Some(other) => Err(err(
            "unsupported_grant_type",
            format!(
                "grant_type {other:?} is not supported; use authorization_code, refresh_token or client_credentials"
            ),
        )),
    };
    let outcome = match outcome {
        Ok((mut response, Some(plan))) => {
            match oidc::sign_id_token(shared, &plan, behavior.id_token_fault).await {
                Ok(id_token) => {
                    response.id_token = Some(id_token);
                    Ok(response)
                }
                Err(e) => Err(err("server_error", e.to_string())),
            }
        }
        Ok((response, None)) => Ok(response),
        Err(e) => Err(e),
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

/// Rejects clients whose registration lacks the `authorization_code` grant.
fn require_code_grant(client: &ClientRegistration, grant_type: &str) -> Result<(), TokenError> {
    if client.allows_grant(GRANT_AUTHORIZATION_CODE) {
        return Ok(());
    }
    Err(err(
        "unauthorized_client",
        format!(
            "client {:?} is not registered for {grant_type} (its grant_types are {})",
            client.client_id,
            client.grant_types.join(", ")
        ),
    ))
}

/// `grant_type=authorization_code`.
fn exchange_code(
    shared: &Shared,
    behavior: &Behavior,
    client: &ClientRegistration,
    params: &Params,
) -> Result<Issued, TokenError> {
    require_code_grant(client, "the authorization_code grant")?;
    let code = params
        .get("code")
        .ok_or_else(|| err("invalid_request", "code is missing"))?;
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
    let plan = oidc::has_scope(&scopes, "openid").then(|| {
        IdTokenPlan::new(
            shared,
            behavior,
            client,
            &context,
            &scopes,
            context.nonce.clone(),
        )
    });
    let grant_id = store.new_grant(Grant {
        client_id: client.client_id.clone(),
        scopes: scopes.clone(),
        context: context.clone(),
        revoked: false,
        current_refresh: None,
        identity: plan.as_ref().map(|p| p.identity().clone()),
    });
    if let Some(record) = store.codes.get_mut(code) {
        record.grant_id = Some(grant_id);
    }
    let refresh_token = grants::wants_refresh(&scopes).then(|| store.issue_refresh_token(grant_id));
    let response = respond(
        &mut store,
        behavior,
        grant_id,
        scopes,
        &context,
        refresh_token,
    );
    Ok((response, plan))
}

/// `grant_type=refresh_token`.
fn refresh(
    shared: &Shared,
    behavior: &Behavior,
    client: &ClientRegistration,
    params: &Params,
) -> Result<Issued, TokenError> {
    require_code_grant(client, "the refresh_token grant")?;
    let token = params
        .get("refresh_token")
        .ok_or_else(|| err("invalid_request", "refresh_token is missing"))?;
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
    // A new id_token when the (possibly narrowed) grant still has openid;
    // OpenID Connect Core §12.2: same iss, sub and aud, a new iat, no nonce.
    let plan = oidc::has_scope(&scopes, "openid")
        .then(|| IdTokenPlan::new(shared, behavior, client, &context, &scopes, None));
    if let Some(plan) = &plan
        && let Some(grant) = store.grants.get_mut(&grant_id)
        && grant.identity.is_none()
    {
        grant.identity = Some(plan.identity().clone());
    }
    let response = respond(
        &mut store,
        behavior,
        grant_id,
        scopes,
        &context,
        refresh_token,
    );
    Ok((response, plan))
}

/// `grant_type=client_credentials` (SMART Backend Services).
fn client_credentials(
    shared: &Shared,
    behavior: &Behavior,
    client: &ClientRegistration,
    params: &Params,
) -> Result<TokenResponse, TokenError> {
    if !matches!(client.auth, ClientAuth::PrivateKeyJwt { .. })
        || !client.allows_grant(GRANT_CLIENT_CREDENTIALS)
    {
        return Err(err(
            "unauthorized_client",
            format!(
                "client {:?} is not registered for the client_credentials grant; Backend Services \
                 need a private_key_jwt client whose grant_types include client_credentials",
                client.client_id
            ),
        ));
    }
    let Some(requested) = params.get("scope") else {
        return Err(err(
            "invalid_request",
            "scope is missing; a client_credentials request must name the scopes it needs, e.g. system/Patient.rs",
        ));
    };
    let scopes = grants::grant_backend(requested, &client.scopes);
    if scopes.is_empty() {
        return Err(err(
            "invalid_scope",
            format!(
                "none of the requested scopes are allowed for client {:?} (it may be granted: {})",
                client.client_id, client.scopes
            ),
        ));
    }
    let lifetime = behavior.backend_token_lifetime;
    let mut store = shared.store();
    let grant_id = store.new_grant(Grant {
        client_id: client.client_id.clone(),
        scopes: scopes.clone(),
        context: GrantContext::default(),
        revoked: false,
        current_refresh: None,
        identity: None,
    });
    let scope = scopes.join(" ");
    let access_token = store.issue_access_token(grant_id, scopes, lifetime);
    Ok(TokenResponse {
        access_token,
        token_type: token_type(behavior),
        expires_in: lifetime.as_secs(),
        scope,
        refresh_token: None,
        id_token: None,
        patient: None,
        encounter: None,
        need_patient_banner: None,
        smart_style_url: None,
        fhir_context: Vec::new(),
    })
}

fn token_type(behavior: &Behavior) -> &'static str {
    if behavior.lowercase_token_type {
        "bearer"
    } else {
        "Bearer"
    }
}

fn respond(
    store: &mut Store,
    behavior: &Behavior,
    grant_id: u64,
    scopes: Vec<String>,
    context: &GrantContext,
    refresh_token: Option<String>,
) -> TokenResponse {
    let scope = scopes.join(" ");
    let access_token = store.issue_access_token(grant_id, scopes, behavior.access_token_lifetime);
    TokenResponse {
        access_token,
        token_type: token_type(behavior),
        expires_in: behavior.access_token_lifetime.as_secs(),
        scope,
        refresh_token,
        id_token: None,
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
