//! Dynamic client registration in Epic's form (RFC 7591), for profiles with
//! a `registration_path`.
//!
//! Why it exists: Epic gives patient-facing public apps (native and
//! browser-based) persistent access without refresh tokens in the browser.
//! The app signs the user in once with a standalone launch; the access token
//! it gets is, exactly once, an RFC 7591 *initial access token* for
//! `POST …/oauth2/register`, whose body names the app (`software_id` = its
//! Epic client ID) and a public key generated on the device (`jwks`). The
//! answer is a new client, bound to that user and device, that obtains
//! access tokens with the RFC 7523 `jwt-bearer` grant: an assertion signed
//! with the device key (`iss` = `sub` = the new client ID, `aud` = the token
//! endpoint) is the grant. Epic's OAuth 2.0 specification documents the flow
//! (section "Offline Access for Native and Browser-Based Applications").
//!
//! What the sandbox checks, each refusal with its own description:
//!
//! * `Content-Type: application/json`, a body of at most
//!   [`MAX_REGISTRATION_BODY`] bytes (413 beyond);
//! * `Authorization: Bearer` with an active access token from an
//!   authorization-code grant (not a backend token), never used for a
//!   registration before (401 `invalid_token` otherwise);
//! * `software_id` equal to the client ID the token was issued to;
//! * `jwks` with 1 to [`MAX_KEYS`] public keys (private members refused);
//! * at most [`MAX_DYNAMIC_CLIENTS`] clients registered this way, so a
//!   client cannot grow the sandbox's memory without bound.
//!
//! The new client inherits the grant's scopes and its patient and user; the
//! token endpoint's `jwt-bearer` grant (in `token.rs`) issues tokens for it.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::config::{
    ClientAuth, ClientRegistration, GRANT_AUTHORIZATION_CODE, GRANT_JWT_BEARER, LaunchDefaults,
};
use crate::locks::lock;
use crate::random::random_token;
use crate::state::Shared;
use crate::time::unix_now;

/// The largest registration request body accepted (64 KiB).
pub(crate) const MAX_REGISTRATION_BODY: usize = 64 * 1024;
/// The most keys a registration's `jwks` may hold.
pub(crate) const MAX_KEYS: usize = 10;
/// The most clients dynamic registration may create in one sandbox.
pub(crate) const MAX_DYNAMIC_CLIENTS: usize = 1000;

/// What dynamic registration remembers: the initial access tokens already
/// spent (as SHA-256 digests, so no token is kept) and how many clients it
/// created.
#[derive(Default)]
pub(crate) struct DynamicRegistrations {
    inner: Mutex<Spent>,
}

#[derive(Default)]
struct Spent {
    digests: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
    created: usize,
}

impl DynamicRegistrations {
    /// Marks `token` as spent; `false` if it already was.
    fn spend(&self, token: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut spent = lock(&self.inner);
        if !spent.digests.insert(digest) {
            return false;
        }
        spent.order.push_back(digest);
        // One spent token per created client at most, so this bound holds.
        if spent.order.len() > MAX_DYNAMIC_CLIENTS
            && let Some(old) = spent.order.pop_front()
        {
            spent.digests.remove(&old);
        }
        true
    }

    /// Counts one more client, unless the cap is reached.
    fn reserve(&self) -> bool {
        let mut spent = lock(&self.inner);
        if spent.created >= MAX_DYNAMIC_CLIENTS {
            return false;
        }
        spent.created += 1;
        true
    }
}

/// A refused registration: an RFC 7591 section 3.2.2 error (or an RFC 6750 one for the bearer
/// token).
struct Refusal {
    status: StatusCode,
    code: &'static str,
    description: String,
}

fn error(status: StatusCode, code: &'static str, description: impl Into<String>) -> Refusal {
    Refusal {
        status,
        code,
        description: description.into(),
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            json!({ "error": self.code, "error_description": self.description }).to_string(),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED
            && let Ok(value) = HeaderValue::from_str(&format!("Bearer error=\"{}\"", self.code))
        {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

fn bad_metadata(description: impl Into<String>) -> Refusal {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
        description,
    )
}

/// `POST {registration_path}`.
pub(crate) async fn register(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match handle(&shared, &headers, &body) {
        Ok(response) => response,
        Err(refusal) => refusal.into_response(),
    }
}

fn handle(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<Response, Refusal> {
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return Err(bad_metadata(
            "the registration request must be a POST with Content-Type application/json",
        ));
    }
    if body.len() > MAX_REGISTRATION_BODY {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_client_metadata",
            format!(
                "the registration request is {} bytes; the limit is {MAX_REGISTRATION_BODY}",
                body.len()
            ),
        ));
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned())
        .ok_or_else(|| {
            error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "no initial access token; send Authorization: Bearer <the access token of a standalone launch>",
            )
        })?;
    let (parent_id, scopes, patient, user) = {
        let store = shared.store();
        let Some((record, grant)) = store.active_access_token(&token) else {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the initial access token is unknown or expired",
            ));
        };
        (
            grant.client_id.clone(),
            record.scopes.clone(),
            grant.context.patient.clone(),
            grant.context.user.clone(),
        )
    };
    let parent = shared.client(&parent_id).ok_or_else(|| {
        error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the client of the initial access token is no longer registered",
        )
    })?;
    if !parent.allows_grant(GRANT_AUTHORIZATION_CODE) {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the initial access token must come from a user's launch (authorization code), not from a backend grant",
        ));
    }
    let request: Value = serde_json::from_slice(body)
        .map_err(|e| bad_metadata(format!("the registration request is not JSON: {e}")))?;
    let software_id = request
        .get("software_id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            bad_metadata("software_id is missing; send the app's client ID as software_id")
        })?;
    if software_id != parent_id {
        return Err(bad_metadata(format!(
            "software_id {software_id:?} is not the client the initial access token was issued to"
        )));
    }
    let jwks = request.get("jwks").ok_or_else(|| {
        bad_metadata("jwks is missing; send the public key the new client will sign with")
    })?;
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_metadata("jwks must be a JWK Set: {\"keys\": [...]}"))?;
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(bad_metadata(format!(
            "jwks has {} keys; send 1 to {MAX_KEYS}",
            keys.len()
        )));
    }
    if keys
        .iter()
        .any(|k| k.get("d").is_some() || k.get("p").is_some())
    {
        return Err(bad_metadata(
            "jwks contains private key material; send only the public key",
        ));
    }
    let jwks: smart_jose::Jwks = serde_json::from_value(jwks.clone())
        .map_err(|e| bad_metadata(format!("jwks is not a valid JWK Set: {e}")))?;
    if !shared.dynamic.spend(&token) {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the initial access token was already used for a registration; it is good for one",
        ));
    }
    if !shared.dynamic.reserve() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            format!("this sandbox already registered {MAX_DYNAMIC_CLIENTS} dynamic clients"),
        ));
    }
    let client_id = format!("G{}", random_token());
    let issued_at = unix_now();
    let access_scopes: Vec<&str> = scopes
        .iter()
        .map(String::as_str)
        .filter(|s| *s != "offline_access" && *s != "online_access")
        .collect();
    shared.register_client(ClientRegistration {
        client_id: client_id.clone(),
        auth: ClientAuth::PrivateKeyJwt {
            jwks: Some(jwks.clone()),
            jwks_url: None,
        },
        redirect_uris: parent.redirect_uris.clone(),
        launch_uri: None,
        scopes: access_scopes.join(" "),
        grant_types: vec![GRANT_JWT_BEARER.to_owned()],
        context: LaunchDefaults {
            patient,
            user,
            ..LaunchDefaults::default()
        },
    });
    tracing::debug!(software_id, client_id = %client_id, "dynamic client registered");
    let body = json!({
        "client_id": client_id,
        "client_id_issued_at": issued_at,
        "token_endpoint_auth_method": "none",
        "grant_types": [GRANT_JWT_BEARER],
        "jwks": jwks,
        "software_id": software_id,
        "redirect_uris": parent.redirect_uris,
    });
    let mut response = (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_spent_once_and_the_memory_is_bounded() {
        let d = DynamicRegistrations::default();
        assert!(d.spend("t"));
        assert!(!d.spend("t"));
        for i in 0..MAX_DYNAMIC_CLIENTS + 10 {
            d.spend(&i.to_string());
        }
        let spent = lock(&d.inner);
        assert!(spent.order.len() <= MAX_DYNAMIC_CLIENTS);
        assert_eq!(
            spent.digests.len(),
            spent.order.len(),
            "set and queue agree"
        );
    }

    #[test]
    fn the_number_of_dynamic_clients_is_capped() {
        let d = DynamicRegistrations::default();
        for _ in 0..MAX_DYNAMIC_CLIENTS {
            assert!(d.reserve());
        }
        assert!(!d.reserve());
    }
}
