//! Client authentication at the token and introspection endpoints.
//!
//! SMART's three client types, exactly:
//!
//! * **public** clients name themselves with `client_id` in the body and
//!   send no credentials;
//! * **confidential symmetric** clients use HTTP Basic with form-urlencoded
//!   id and secret (RFC 6749 §2.3.1) and nothing else (`client_secret` in the
//!   body is rejected, since SMART does not use `client_secret_post`);
//! * **confidential asymmetric** clients send `client_assertion_type` and
//!   `client_assertion` (RFC 7523, see [`crate::assertion`]) and nothing else.
//!
//! A client that uses another client type's method, or more than one method
//! (RFC 6749 §2.3), gets `invalid_client` with a description saying what it
//! should send.
//!
//! The profile's `token_endpoint_auth_methods` is enforced: `client_secret_basic`
//! and `private_key_jwt` work only when listed, and a profile that lists
//! `client_secret_post` (Epic) also accepts a confidential-symmetric client's
//! `client_id` and `client_secret` in the body.

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::assertion;
use crate::config::{ClientAuth, ClientRegistration};
use crate::params::{Params, form_decode};
use crate::state::Shared;
use crate::token::{TokenError, err};

/// How the client of a request identified itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// A public client: `client_id` only, no credentials.
    None,
    /// HTTP Basic with the client secret.
    Basic,
    /// `client_id` and `client_secret` in the body (`client_secret_post`).
    Post,
    /// A verified `private_key_jwt` assertion.
    Assertion,
}

/// Authenticates the client of a token or introspection request.
pub(crate) async fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
    params: &Params,
) -> Result<(ClientRegistration, Method), TokenError> {
    let profile = &shared.profile;
    if let Some(secret) = params.get("client_secret") {
        if !profile.accepts_auth_method("client_secret_post") {
            return Err(err(
                "invalid_client",
                "client_secret in the request body (client_secret_post) is not supported; \
                 authenticate with HTTP Basic (client_secret_basic)",
            ));
        }
        return authenticate_post(shared, headers, params, secret);
    }
    if assertion::is_present(params) {
        if !profile.accepts_auth_method("private_key_jwt") {
            return Err(err(
                "invalid_client",
                "client assertions (private_key_jwt) are not supported by this server",
            ));
        }
        if headers.contains_key(header::AUTHORIZATION) {
            return Err(err(
                "invalid_client",
                "the request uses both an Authorization header and a client_assertion; \
                 use exactly one client authentication method",
            ));
        }
        let client = assertion::authenticate(shared, params).await?;
        return Ok((client, Method::Assertion));
    }
    let body_client_id = params.get("client_id");
    match headers.get(header::AUTHORIZATION) {
        Some(_) if !profile.accepts_auth_method("client_secret_basic") => Err(TokenError::basic(
            "invalid_client",
            "HTTP Basic (client_secret_basic) is not supported by this server".into(),
        )),
        Some(value) => {
            let basic_err = |description: String| TokenError::basic("invalid_client", description);
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
            let expected = match &client.auth {
                ClientAuth::ClientSecretBasic { secret } => secret,
                ClientAuth::Public => {
                    return Err(basic_err(format!(
                        "client {id:?} is a public client and must not authenticate; \
                         send only client_id in the body"
                    )));
                }
                ClientAuth::PrivateKeyJwt { .. } => {
                    return Err(basic_err(format!(
                        "client {id:?} is registered for private_key_jwt and must authenticate \
                         with client_assertion_type={} and a signed client_assertion, not HTTP Basic",
                        assertion::JWT_BEARER
                    )));
                }
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
            Ok((client, Method::Basic))
        }
        None => {
            let Some(id) = body_client_id else {
                return Err(err(
                    "invalid_client",
                    "no client authentication: public clients send client_id in the body, \
                     confidential clients use HTTP Basic or a client_assertion",
                ));
            };
            let client = shared
                .client(id)
                .ok_or_else(|| err("invalid_client", format!("unknown client_id {id:?}")))?;
            match client.auth {
                ClientAuth::Public => Ok((client, Method::None)),
                ClientAuth::ClientSecretBasic { .. } => Err(err(
                    "invalid_client",
                    format!(
                        "client {id:?} is confidential and must authenticate with HTTP Basic \
                         (Authorization: Basic base64(client_id:client_secret))"
                    ),
                )),
                ClientAuth::PrivateKeyJwt { .. } => Err(err(
                    "invalid_client",
                    format!(
                        "client {id:?} is registered for private_key_jwt and must authenticate \
                         with client_assertion_type={} and a signed client_assertion",
                        assertion::JWT_BEARER
                    ),
                )),
            }
        }
    }
}

/// `client_secret_post`: `client_id` and `client_secret` in the body, no
/// other credentials, for a confidential-symmetric client.
fn authenticate_post(
    shared: &Shared,
    headers: &HeaderMap,
    params: &Params,
    secret: &str,
) -> Result<(ClientRegistration, Method), TokenError> {
    if headers.contains_key(header::AUTHORIZATION) || assertion::is_present(params) {
        return Err(err(
            "invalid_client",
            "the request carries client_secret and another client authentication; \
             use exactly one client authentication method",
        ));
    }
    let Some(id) = params.get("client_id") else {
        return Err(err(
            "invalid_client",
            "client_secret without client_id; client_secret_post sends both in the body",
        ));
    };
    let client = shared
        .client(id)
        .ok_or_else(|| err("invalid_client", format!("unknown client_id {id:?}")))?;
    let ClientAuth::ClientSecretBasic { secret: expected } = &client.auth else {
        return Err(err(
            "invalid_client",
            format!("client {id:?} has no client secret; it must not send client_secret"),
        ));
    };
    if !constant_time_eq(secret.as_bytes(), expected.as_bytes()) {
        return Err(err(
            "invalid_client",
            format!("client authentication failed for {id:?}: wrong client secret"),
        ));
    }
    Ok((client, Method::Post))
}

/// Decodes `Basic base64(urlencode(id):urlencode(secret))`.
pub(crate) fn parse_basic(value: &HeaderValue) -> Option<(String, String)> {
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

/// Compares secrets without an early exit.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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
