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
//!
//! The [`VendorProfile`](crate::VendorProfile) decides the rest: lifetimes,
//! `token_type`, rotation, who gets refresh tokens, refresh throttling, how
//! the `scope` is granted and echoed, `need_patient_banner`'s type, extra
//! response fields and an `error_uri` on errors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::client_auth::{self, constant_time_eq};
use crate::config::Behavior;
use crate::config::TokenUnavailableStatus;
use crate::config::{
    ClientAuth, ClientRegistration, DEFAULT_ACCESS_TOKEN_LIFETIME, DEFAULT_BACKEND_TOKEN_LIFETIME,
    GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_JWT_BEARER, MAX_LIFETIME,
};
use crate::counters::CounterCells;
use crate::grants;
use crate::oauth_error::{TokenError, err, error_response, error_response_for, no_store};
use crate::oauth_state::{Grant, GrantContext, Store};
use crate::oidc::{self, IdTokenPlan};
use crate::params::{MAX_FORM_BODY, Params, is_form_content_type};
use crate::profile::{FieldCondition, dstu2_patient_id, substitute};
use crate::state::Shared;

/// The success body (RFC 6749 §5.1 plus SMART launch context).
#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
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
    /// A boolean, or a string under `need_patient_banner_as_string`.
    #[serde(skip_serializing_if = "Option::is_none")]
    need_patient_banner: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    smart_style_url: Option<String>,
    #[serde(rename = "fhirContext", skip_serializing_if = "Vec::is_empty")]
    fhir_context: Vec<Value>,
    /// The profile's `token_extra_fields`.
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// What the profile and the behaviour switches make of a token response.
struct Rules {
    access_lifetime: Duration,
    backend_lifetime: Duration,
    token_type: String,
    /// A refresh returns a new refresh token and retires the old one.
    rotate: bool,
    /// A refresh response carries a refresh token at all.
    refresh_in_response: bool,
    /// The echoed `scope` leaves out `offline_access`/`online_access`.
    echo_omits_access_scopes: bool,
}

impl Rules {
    /// Behaviour switches left at their defaults defer to the profile.
    fn new(shared: &Shared, behavior: &Behavior) -> Rules {
        let profile = &shared.profile;
        // Clamped to MAX_LIFETIME: the configuration is validated at start,
        // but `set_behavior` can still set anything at run time.
        let pick = |b: Duration, default: Duration, p: u64| {
            if b == default {
                Duration::from_secs(p)
            } else {
                b
            }
            .min(MAX_LIFETIME)
        };
        Rules {
            access_lifetime: pick(
                behavior.access_token_lifetime,
                DEFAULT_ACCESS_TOKEN_LIFETIME,
                profile.access_token_lifetime_secs,
            ),
            backend_lifetime: pick(
                behavior.backend_token_lifetime,
                DEFAULT_BACKEND_TOKEN_LIFETIME,
                profile.backend_token_lifetime_secs,
            ),
            token_type: if behavior.lowercase_token_type {
                "bearer".to_owned()
            } else {
                profile.token_type.clone()
            },
            rotate: behavior.rotate_refresh_tokens && profile.rotate_refresh_tokens,
            refresh_in_response: behavior.refresh_returns_refresh_token
                && profile.refresh_response_includes_refresh_token,
            echo_omits_access_scopes: behavior.echo_omits_access_scopes,
        }
    }
}

/// `POST /auth/token`.
pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    CounterCells::bump(&shared.counters.token);
    record_assertion_jti(&shared, &body);
    if let Some(status) = shared.take_token_unavailable() {
        return unavailable_response(&shared, status);
    }
    if shared.take_token_bare_400() {
        return StatusCode::BAD_REQUEST.into_response();
    }
    match handle(&shared, &headers, &body).await {
        Ok(response) if shared.behavior().omit_token_no_store => Json(response).into_response(),
        Ok(response) => no_store(Json(response).into_response()),
        Err(e) => {
            let client = requesting_client(&headers, &body);
            error_response_for(&shared, e, client.as_deref())
        }
    }
}

/// Records the unverified `jti` of the request's `client_assertion` (or `jwt-bearer`
/// `assertion`), for [`Sandbox::token_jtis_seen`](crate::Sandbox::token_jtis_seen): at most
/// 256 characters, never of an oversized body, at most the latest
/// [`MAX_RECORDED_VALUES`](crate::client_id_header::MAX_RECORDED_VALUES).
fn record_assertion_jti(shared: &Shared, body: &[u8]) {
    if body.len() > MAX_FORM_BODY {
        return;
    }
    let params = Params::parse(body);
    let Some(jwt) = params
        .get("client_assertion")
        .or_else(|| params.get("assertion"))
    else {
        return;
    };
    let Some(jti) = jwt
        .split('.')
        .nth(1)
        .and_then(|claims| URL_SAFE_NO_PAD.decode(claims).ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|claims| {
            claims
                .get("jti")?
                .as_str()
                .map(|j| j.chars().take(256).collect())
        })
    else {
        return;
    };
    let mut seen = crate::locks::lock(&shared.token_jtis_seen);
    if seen.len() >= crate::client_id_header::MAX_RECORDED_VALUES {
        seen.pop_front();
    }
    seen.push_back(jti);
}

/// The client a token request names (body `client_id`, else the HTTP Basic
/// user), for the `error_uri`; not authenticated, and never for an
/// oversized body.
fn requesting_client(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    if body.len() <= MAX_FORM_BODY
        && let Some(id) = Params::parse(body).get("client_id")
    {
        return Some(id.to_owned());
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(client_auth::basic_user)
}

/// The answer of a token request under [`Behavior::token_unavailable`]:
/// `temporarily_unavailable`, as a 503 with `Retry-After: 1` or as a 400.
fn unavailable_response(shared: &Shared, status: TokenUnavailableStatus) -> Response {
    let e = err(
        "temporarily_unavailable",
        "the authorization server is temporarily unable to issue tokens; try again later",
    );
    let mut response = error_response(shared, e);
    if status == TokenUnavailableStatus::ServiceUnavailable {
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
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
    if body.len() > MAX_FORM_BODY {
        return Err(TokenError {
            too_large: true,
            ..err(
                "invalid_request",
                format!(
                    "the token request body is {} bytes; the limit is {MAX_FORM_BODY}",
                    body.len()
                ),
            )
        });
    }
    let params = Params::parse(body);
    if params.too_many() {
        return Err(err(
            "invalid_request",
            format!(
                "the token request has more than {} parameters",
                crate::params::MAX_PARAMS
            ),
        ));
    }
    if let Some(name) = params.first_duplicate() {
        return Err(err(
            "invalid_request",
            format!("the parameter {name} was sent more than once"),
        ));
    }
    if params.get("scope").is_some_and(grants::too_many_scopes) {
        return Err(err("invalid_scope", grants::too_many_scopes_message()));
    }
    if params.get("grant_type") == Some(GRANT_JWT_BEARER) && shared.urls.registration_path.is_some()
    {
        let behavior = shared.behavior();
        return jwt_bearer(shared, &Rules::new(shared, &behavior), &params).await;
    }
    let (client, method) = client_auth::authenticate(shared, headers, &params).await?;
    let grant_type = params.get("grant_type");
    let behavior = shared.behavior();
    let rules = Rules::new(shared, &behavior);
    let outcome: Result<Issued, TokenError> = match grant_type {
        None => Err(err("invalid_request", "grant_type is missing")),
        Some("authorization_code") => exchange_code(shared, &behavior, &rules, &client, &params),
        Some("refresh_token") => {
            CounterCells::bump(&shared.counters.refresh);
            refresh(shared, &behavior, &rules, &client, &params)
        }
        Some("client_credentials") => {
            client_credentials(shared, &rules, &client, method, &params).map(|r| (r, None))
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
    rules: &Rules,
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
    if record.used && !behavior.accept_replayed_codes {
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
    let computed = if record.pkce_plain {
        verifier.to_owned()
    } else {
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
    };
    if !constant_time_eq(computed.as_bytes(), record.code_challenge.as_bytes()) {
        return Err(err(
            "invalid_grant",
            "code_verifier does not match code_challenge",
        ));
    }

    let public = matches!(client.auth, ClientAuth::Public);
    let earns_refresh = grants::wants_refresh(&record.scopes)
        && !(shared.profile.refresh_token_requires_confidential && public);
    // A grant that earns no refresh token does not carry offline or online
    // access either, so the echoed `scope` never claims what was not given
    // (a client reading `offline_access` in the echo would expect a refresh
    // token, as the JS `fhirclient` does).
    let scopes = if earns_refresh {
        record.scopes.clone()
    } else {
        grants::without_access_scopes(&record.scopes)
    };
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
        identity: plan.as_ref().map(|p| p.identity().clone()),
        ..Grant::new(client.client_id.clone(), scopes.clone(), context.clone())
    });
    if let Some(record) = store.codes.get_mut(code) {
        record.grant_id = Some(grant_id);
    }
    let refresh_token = earns_refresh.then(|| store.issue_refresh_token(grant_id));
    let response = respond(
        shared,
        &mut store,
        rules,
        client,
        Issue {
            grant_id,
            scopes,
            context: &context,
            refresh_token,
            refresh: false,
        },
    );
    Ok((response, plan))
}

/// `grant_type=refresh_token`.
fn refresh(
    shared: &Shared,
    behavior: &Behavior,
    rules: &Rules,
    client: &ClientRegistration,
    params: &Params,
) -> Result<Issued, TokenError> {
    require_code_grant(client, "the refresh_token grant")?;
    let token = params
        .get("refresh_token")
        .ok_or_else(|| err("invalid_request", "refresh_token is missing"))?;
    let mut store = shared.store();
    let grant_id = store
        .refresh_tokens
        .get(token)
        .ok_or_else(|| err("invalid_grant", "refresh token is unknown"))?
        .grant_id;
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
    if shared.profile.active_user_presence
        && let Some(seconds) = params.get("active_at").and_then(parse_active_at)
    {
        shared.record_active_at(seconds);
    }
    let now = Instant::now();
    let min_interval = Duration::from_secs(shared.profile.refresh_min_interval_secs);
    if let Some(last) = grant.last_refresh
        && now.duration_since(last) < min_interval
    {
        return Err(throttled(min_interval, now.duration_since(last)));
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
    let refresh_token = if !rules.refresh_in_response {
        None
    } else if rules.rotate {
        Some(store.issue_refresh_token(grant_id))
    } else {
        Some(token.to_owned())
    };
    if let Some(grant) = store.grants.get_mut(&grant_id) {
        grant.last_refresh = Some(now);
        grant.last_active = now;
    }
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
    let plan = plan.map(|p| p.for_refresh(behavior));
    let response = respond(
        shared,
        &mut store,
        rules,
        client,
        Issue {
            grant_id,
            scopes,
            context: &context,
            refresh_token,
            refresh: true,
        },
    );
    Ok((response, plan))
}

/// An `active_at` value (Active User Presence: `1*DIGIT` seconds), or `None`
/// for anything else, which the extension says to treat as absent (negative
/// values included). At most 10 digits, so the value always fits.
fn parse_active_at(value: &str) -> Option<u64> {
    if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// 429 `temporarily_unavailable` for a refresh within the profile's
/// `refresh_min_interval_secs` of the previous one.
fn throttled(min_interval: Duration, elapsed: Duration) -> TokenError {
    let secs = min_interval.as_secs();
    let per = if secs == 60 {
        "per minute".to_owned()
    } else {
        format!("every {secs} s")
    };
    let wait = (min_interval - elapsed).as_secs_f64().ceil().max(1.0) as u64;
    TokenError {
        throttled: Some(wait),
        ..err(
            "temporarily_unavailable",
            format!("refresh throttled: at most one refresh {per}"),
        )
    }
}

/// `grant_type=client_credentials` (SMART Backend Services).
fn client_credentials(
    shared: &Shared,
    rules: &Rules,
    client: &ClientRegistration,
    method: client_auth::Method,
    params: &Params,
) -> Result<TokenResponse, TokenError> {
    // private_key_jwt always; a Basic secret (a system account) only where
    // the profile allows it (Oracle Health).
    let authenticated_as_allowed = match client.auth {
        ClientAuth::PrivateKeyJwt { .. } => true,
        ClientAuth::ClientSecretBasic { .. } => {
            shared.profile.client_credentials_basic && method == client_auth::Method::Basic
        }
        ClientAuth::Public => false,
    };
    if !authenticated_as_allowed || !client.allows_grant(GRANT_CLIENT_CREDENTIALS) {
        let allowed = if shared.profile.client_credentials_basic {
            "a private_key_jwt client, or a client_secret_basic system account authenticating with HTTP Basic,"
        } else {
            "a private_key_jwt client"
        };
        return Err(err(
            "unauthorized_client",
            format!(
                "client {:?} is not registered for the client_credentials grant; Backend Services \
                 need {allowed} whose grant_types include client_credentials",
                client.client_id
            ),
        ));
    }
    let Some(scopes) =
        grants::grant_backend_for(&shared.profile, params.get("scope"), &client.scopes)
    else {
        return Err(err(
            "invalid_request",
            "scope is missing; a client_credentials request must name the scopes it needs, e.g. system/Patient.rs",
        ));
    };
    if scopes.is_empty() {
        return Err(err(
            "invalid_scope",
            format!(
                "none of the requested scopes are allowed for client {:?} (it may be granted: {})",
                client.client_id, client.scopes
            ),
        ));
    }
    let lifetime = rules.backend_lifetime;
    let mut store = shared.store();
    let grant_id = store.new_grant(Grant::new(
        client.client_id.clone(),
        scopes.clone(),
        GrantContext::default(),
    ));
    let scope = grants::echo(&shared.profile, &scopes);
    let access_token = store.issue_access_token(grant_id, scopes, lifetime);
    Ok(TokenResponse {
        access_token,
        token_type: rules.token_type.clone(),
        expires_in: lifetime.as_secs(),
        scope,
        refresh_token: None,
        id_token: None,
        patient: None,
        encounter: None,
        need_patient_banner: None,
        smart_style_url: None,
        fhir_context: Vec::new(),
        extra: Map::new(),
    })
}

/// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` (RFC 7523
/// section 2.1), for clients created by dynamic registration
/// ([`crate::dynamic_registration`]; Epic's flow): the `assertion`, signed
/// with the key registered for the client, is the grant. It is verified as a
/// client assertion is (`iss` = `sub` = the client, `aud` = this endpoint,
/// short-lived, `jti` not replayed); the token carries the scopes and the
/// patient the client was registered with, and no refresh token (a new
/// assertion gets a new token).
async fn jwt_bearer(
    shared: &Shared,
    rules: &Rules,
    params: &Params,
) -> Result<TokenResponse, TokenError> {
    let Some(assertion) = params.get("assertion") else {
        return Err(err(
            "invalid_request",
            "assertion is missing; send the JWT signed with the registered key as assertion",
        ));
    };
    let as_client_assertion = {
        // Not held across the await below: the serializer is not `Send`.
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("client_assertion_type", crate::assertion::JWT_BEARER);
        form.append_pair("client_assertion", assertion);
        if let Some(id) = params.get("client_id") {
            form.append_pair("client_id", id);
        }
        Params::parse(form.finish().as_bytes())
    };
    let client = crate::assertion::authenticate(shared, &as_client_assertion)
        .await
        .map_err(|e| TokenError {
            // The assertion is the grant here, not client authentication.
            error: if e.error == "invalid_client" {
                "invalid_grant"
            } else {
                e.error
            },
            ..e
        })?;
    if !client.allows_grant(GRANT_JWT_BEARER) {
        return Err(err(
            "unauthorized_client",
            format!(
                "client {:?} is not registered for the jwt-bearer grant; register one dynamically first",
                client.client_id
            ),
        ));
    }
    let scopes = grants::tokens(&client.scopes);
    let context = GrantContext {
        patient: client.context.patient.clone(),
        user: client.context.user.clone(),
        ..GrantContext::default()
    };
    let mut store = shared.store();
    let grant_id = store.new_grant(Grant::new(
        client.client_id.clone(),
        scopes.clone(),
        context.clone(),
    ));
    let issue = Issue {
        grant_id,
        scopes,
        context: &context,
        refresh_token: None,
        refresh: false,
    };
    tracing::debug!(client_id = %client.client_id, "jwt-bearer grant issued");
    Ok(respond(shared, &mut store, rules, &client, issue))
}

/// What one launch token response is issued for.
struct Issue<'a> {
    grant_id: u64,
    scopes: Vec<String>,
    context: &'a GrantContext,
    refresh_token: Option<String>,
    /// A refresh (not a code exchange).
    refresh: bool,
}

fn respond(
    shared: &Shared,
    store: &mut Store,
    rules: &Rules,
    client: &ClientRegistration,
    issue: Issue<'_>,
) -> TokenResponse {
    let profile = &shared.profile;
    let context = issue.context;
    let scope = if rules.echo_omits_access_scopes {
        grants::echo(profile, &grants::without_access_scopes(&issue.scopes))
    } else {
        grants::echo(profile, &issue.scopes)
    };
    let extra = extra_fields(shared, client, &issue);
    let access_token =
        store.issue_access_token(issue.grant_id, issue.scopes, rules.access_lifetime);
    let banner = |b: bool| {
        if profile.need_patient_banner_as_string {
            Value::String(b.to_string())
        } else {
            Value::Bool(b)
        }
    };
    TokenResponse {
        access_token,
        token_type: rules.token_type.clone(),
        expires_in: rules.access_lifetime.as_secs(),
        scope,
        refresh_token: issue.refresh_token,
        id_token: None,
        patient: context.patient.clone(),
        encounter: context.encounter.clone(),
        need_patient_banner: context
            .ehr_launch
            .then(|| banner(context.need_patient_banner)),
        smart_style_url: if context.ehr_launch {
            context.smart_style_url.clone()
        } else {
            None
        },
        fhir_context: Vec::new(),
        extra,
    }
}

/// The profile's `token_extra_fields` for one response: conditions checked,
/// placeholders filled, fields whose placeholders have no value left out.
fn extra_fields(
    shared: &Shared,
    client: &ClientRegistration,
    issue: &Issue<'_>,
) -> Map<String, Value> {
    let profile = &shared.profile;
    let mut out = Map::new();
    if profile.token_extra_fields.is_empty() {
        return out;
    }
    let context = issue.context;
    let user = context
        .user
        .clone()
        .or_else(|| context.patient.as_ref().map(|p| format!("Patient/{p}")));
    let (user_type, user_id) = match user.as_deref().and_then(|u| u.rsplit_once('/')) {
        Some((t, id)) => (Some(t.to_owned()), Some(id.to_owned())),
        None => (None, None),
    };
    let dstu2 = context.patient.as_deref().map(dstu2_patient_id);
    let vars: [(&str, Option<&str>); 12] = [
        ("patient", context.patient.as_deref()),
        ("patient_dstu2", dstu2.as_deref()),
        ("encounter", context.encounter.as_deref()),
        ("user", user.as_deref()),
        ("user_id", user_id.as_deref()),
        ("user_type", user_type.as_deref()),
        ("state", context.state.as_deref()),
        ("client_id", Some(client.client_id.as_str())),
        ("tenant", profile.tenant.as_deref()),
        ("idsp", profile.idsp.as_deref()),
        ("root", Some(shared.origin.as_str())),
        ("fhir_base", Some(shared.fhir_base.as_str())),
    ];
    for field in &profile.token_extra_fields {
        let applies = field.when.iter().all(|c| match c {
            FieldCondition::EhrLaunch => context.ehr_launch,
            FieldCondition::Standalone => !context.ehr_launch,
            FieldCondition::CodeExchange => !issue.refresh,
            FieldCondition::Refresh => issue.refresh,
            FieldCondition::OnlineAccess => grants::has_access_scope(&issue.scopes, false),
            FieldCondition::OfflineAccess => grants::has_access_scope(&issue.scopes, true),
        });
        if !applies {
            continue;
        }
        let value = match &field.value {
            Value::String(template) => match substitute(template, &vars) {
                Ok(s) => Value::String(s),
                Err(_) => continue,
            },
            other => other.clone(),
        };
        out.insert(field.name.clone(), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::parse_active_at;

    #[test]
    fn active_at_is_digits_only_and_bounded() {
        assert_eq!(parse_active_at("0"), Some(0));
        assert_eq!(parse_active_at("42"), Some(42));
        assert_eq!(parse_active_at("9999999999"), Some(9_999_999_999));
        for ignored in ["", "-5", "+5", "1.5", " 5", "5s", "12345678901", "\u{0661}"] {
            assert_eq!(parse_active_at(ignored), None, "{ignored:?}");
        }
    }
}
