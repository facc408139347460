//! OpenID Connect (SMART `sso-openid-connect`): the sandbox's RS256 signing
//! keys, `id_token`s, `{issuer}/.well-known/openid-configuration` and the
//! JWKS at `/auth/jwks` (the `generic` profile's issuer is the FHIR base; a
//! [`VendorProfile`](crate::VendorProfile) sets its own issuer, lifetime and
//! paths).
//!
//! SMART requires RS256 `id_token`s whose `fhirUser` claim names the user's
//! FHIR resource, and a JWKS of bare public keys. The signing key is an RSA
//! 2048 key generated on first use (the first `id_token` or JWKS request), so
//! starting a sandbox stays instant for the many tests that never need it;
//! [`Signing::rotate`] adds a new key and keeps publishing the old ones, the
//! way a real EHR rotates.
//!
//! [`IdTokenFault`] builds deliberately broken tokens by hand (base64url
//! header and claims), for testing the validation of clients: `alg: none`,
//! HS256 keyed with the public key, a bad signature, wrong `aud`/`iss`, or
//! an expired token.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use smart_jose::JwtHeader;

use crate::config::Behavior;
use crate::config::{ClientRegistration, IdTokenFault};
use crate::counters::CounterCells;
use crate::data;
use crate::discovery;
use crate::error::SandboxError;
use crate::oauth_state::{GrantContext, Identity};
use crate::state::Shared;

fn user_reference(client: &ClientRegistration, context: &GrantContext) -> String {
    context.user.clone().unwrap_or_else(|| {
        let patient = context
            .patient
            .clone()
            .or_else(|| client.context.patient.clone())
            .unwrap_or_else(|| data::DEFAULT_PATIENT_ID.to_owned());
        format!("Patient/{patient}")
    })
}

fn fhir_user_url(shared: &Shared, behavior: &Behavior, user: &str) -> String {
    if behavior.relative_fhir_user {
        user.to_owned()
    } else {
        format!("{}/{user}", shared.fhir_base)
    }
}

/// Whether `name` is one of the granted scope tokens.
pub(crate) fn has_scope(scopes: &[String], name: &str) -> bool {
    scopes.iter().any(|s| s == name)
}

/// What an `id_token` will say; signed by [`sign_id_token`] once the store
/// lock is released.
pub(crate) struct IdTokenPlan {
    client_id: String,
    identity: Identity,
    nonce: Option<String>,
    /// The `profile` claim (same value as `fhirUser`), when `profile` was
    /// granted.
    profile: Option<String>,
    /// Leave `aud` out ([`Behavior::refreshed_id_token_omits_aud`]).
    omit_aud: bool,
}

impl IdTokenPlan {
    /// Plans the `id_token` for a grant of `scopes` to `client`.
    ///
    /// The user is the launch's (or client's) `user`; a launch without one is
    /// a patient signing in, so the user is the patient in context (or the
    /// client's default patient, or `pat-1`). `sub` is the user's resource
    /// id; `fhirUser` and `profile` are included when those scopes were
    /// granted.
    pub(crate) fn new(
        shared: &Shared,
        behavior: &Behavior,
        client: &ClientRegistration,
        context: &GrantContext,
        scopes: &[String],
        nonce: Option<String>,
    ) -> IdTokenPlan {
        let user = user_reference(client, context);
        let sub = user.rsplit('/').next().unwrap_or(&user).to_owned();
        let url = fhir_user_url(shared, behavior, &user);
        IdTokenPlan {
            client_id: client.client_id.clone(),
            identity: Identity {
                iss: shared.urls.id_token_issuer.clone(),
                sub,
                fhir_user: has_scope(scopes, "fhirUser").then(|| url.clone()),
            },
            nonce,
            profile: has_scope(scopes, "profile").then_some(url),
            omit_aud: false,
        }
    }

    /// The plan for a refresh's `id_token`, with the refresh deviations of
    /// `behavior` built in (no `aud`, another `sub`).
    pub(crate) fn for_refresh(mut self, behavior: &Behavior) -> IdTokenPlan {
        self.omit_aud = behavior.refreshed_id_token_omits_aud;
        if behavior.refreshed_id_token_changes_sub {
            self.identity.sub.push_str("-changed");
        }
        self
    }

    /// The identity claims the token will carry.
    pub(crate) fn identity(&self) -> &Identity {
        &self.identity
    }
}

/// Signs an `id_token`, building in `behavior.id_token_fault`.
pub(crate) async fn sign_id_token(
    shared: &Shared,
    plan: &IdTokenPlan,
    fault: IdTokenFault,
) -> Result<String, SandboxError> {
    let key = shared.oauth.signing.current().await?;
    let now = crate::time::unix_now();
    let lifetime = shared.profile.id_token_lifetime_secs;
    let mut claims = json!({
        "iss": plan.identity.iss,
        "sub": plan.identity.sub,
        "aud": plan.client_id,
        "exp": now + lifetime,
        "iat": now,
    });
    if let Some(nonce) = &plan.nonce {
        claims["nonce"] = json!(nonce);
    }
    if let Some(fhir_user) = &plan.identity.fhir_user {
        claims["fhirUser"] = json!(fhir_user);
    }
    if let Some(profile) = &plan.profile {
        claims["profile"] = json!(profile);
    }
    if plan.omit_aud
        && let Some(object) = claims.as_object_mut()
    {
        object.remove("aud");
    }
    match fault {
        IdTokenFault::WrongAudience => {
            claims["aud"] = json!(format!("{}-other-app", plan.client_id))
        }
        IdTokenFault::WrongIssuer => {
            claims["iss"] = json!(format!("{}/other-issuer", shared.origin))
        }
        IdTokenFault::Expired => {
            claims["iat"] = json!(now.saturating_sub(lifetime + 3600));
            claims["exp"] = json!(now.saturating_sub(3600));
        }
        _ => {}
    }
    let header = JwtHeader {
        typ: Some("JWT".into()),
        jku: None,
    };
    let sign_err =
        |e: smart_jose::JoseError| SandboxError::Internal(format!("cannot sign the id_token: {e}"));
    match fault {
        IdTokenFault::AlgNone => {
            let signing_input = signing_input(&json!({"alg": "none", "typ": "JWT"}), &claims);
            Ok(format!("{signing_input}."))
        }
        IdTokenFault::Hs256WithPublicKey => {
            let header = json!({"alg": "HS256", "typ": "JWT", "kid": key.kid()});
            let signing_input = signing_input(&header, &claims);
            let secret = serde_json::to_string(&key.public_jwk())
                .map_err(|e| SandboxError::Internal(format!("cannot serialize the JWK: {e}")))?;
            let mac = hmac_sha256(secret.as_bytes(), signing_input.as_bytes());
            Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(mac)))
        }
        IdTokenFault::BadSignature => {
            let token = key.sign(&header, &claims).map_err(sign_err)?;
            Ok(corrupt_signature(&token))
        }
        _ => key.sign(&header, &claims).map_err(sign_err),
    }
}

fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// Flips one bit of a compact JWS's signature.
fn corrupt_signature(token: &str) -> String {
    let Some((input, signature)) = token.rsplit_once('.') else {
        return token.to_owned();
    };
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap_or_default();
    if let Some(b) = bytes.first_mut() {
        *b ^= 0x01;
    }
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// HMAC-SHA256 (RFC 2104); also signs the FHIR `_page` tokens.
pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

/// `GET {id_token issuer}/.well-known/openid-configuration` (and, if the
/// profile says so, `{fhir_base}/.well-known/openid-configuration`). The
/// `issuer` is the `id_token` issuer exactly, trailing slash included.
pub(crate) async fn openid_configuration(State(shared): State<Arc<Shared>>) -> Response {
    let urls = &shared.urls;
    let profile = &shared.profile;
    let body = json!({
        "issuer": urls.id_token_issuer,
        "authorization_endpoint": urls.url(&urls.authorize_path),
        "token_endpoint": shared.token_url,
        "jwks_uri": urls.url(&urls.jwks_path),
        "introspection_endpoint": urls.url(&urls.introspection_path),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": profile.token_endpoint_auth_methods,
        "grant_types_supported": profile.grant_types_supported,
        "scopes_supported": profile.scopes_supported,
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "fhirUser", "profile"]
    });
    discovery::json_document(&body, "public, max-age=300")
}

/// `GET /auth/jwks` (the profile's `jwks_path`): the public signing keys,
/// bare JWKs.
pub(crate) async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    CounterCells::bump(&shared.counters.oidc_jwks);
    match shared.oauth.signing.published().await {
        Ok(keys) => discovery::json_document(&json!({ "keys": keys }), "max-age=300"),
        Err(e) => {
            tracing::error!("cannot serve the JWKS: {e}");
            let mut r = (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "application/json")],
                json!({"error": "server_error", "error_description": e.to_string()}).to_string(),
            )
                .into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // RFC 4231 test case 2.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // A key longer than the block is hashed first (test case 6).
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn corrupting_keeps_the_shape() {
        let token = "aGVhZA.Ym9keQ.c2lnbmF0dXJl";
        let bad = corrupt_signature(token);
        assert!(bad.starts_with("aGVhZA.Ym9keQ."));
        assert_ne!(bad, token);
    }
}
