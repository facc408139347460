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
//! Two cases real clients need (issue 9):
//!
//! * a refresh that names no client at all (`grant_type=refresh_token` and
//!   `refresh_token` only, as RFC 6749 §6 allows a public client) belongs to
//!   the client the refresh token was issued to: a public client proceeds, a
//!   confidential one must still authenticate;
//! * Basic credentials base64'd without the §2.3.1 form-encoding fail with a
//!   description that says so (they are recognised because they match only
//!   when read without decoding), unless
//!   [`crate::Behavior::accept_unencoded_basic_credentials`] accepts them.
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
use crate::oauth_error::{TokenError, err};
use crate::params::{Params, form_decode};
use crate::state::Shared;

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
            let raw = parse_basic_raw(value).ok_or_else(|| {
                basic_err(
                    "the Authorization header is not valid HTTP Basic: expected \
                     Basic base64(urlencode(client_id):urlencode(client_secret))"
                        .into(),
                )
            })?;
            let (client, id) = match basic_client(shared, &raw) {
                Ok(found) => found,
                Err(BasicFailure::Malformed) => {
                    return Err(basic_err(
                        "the Authorization header is not valid HTTP Basic: expected \
                         Basic base64(urlencode(client_id):urlencode(client_secret))"
                            .into(),
                    ));
                }
                Err(BasicFailure::Described(description)) => return Err(basic_err(description)),
            };
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
            if shared.behavior().skip_refresh_client_auth
                && let Some(owner) = refresh_token_owner(shared, params)
                && body_client_id.is_none_or(|id| id == owner.client_id)
            {
                // Defect switch: the refresh token alone identifies the client.
                return Ok((owner, Method::None));
            }
            let Some(id) = body_client_id else {
                if let Some(client) = refresh_token_owner(shared, params) {
                    return public_from_refresh_token(client);
                }
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

/// The client of a refresh request that names no client (RFC 6749 §6 lets
/// a public client refresh with only `grant_type` and `refresh_token`): the
/// client the refresh token was issued to, if the token is known.
///
/// Only the token endpoint's `refresh_token` grant identifies a client this
/// way; the grant itself still checks the token (replay, revocation) later.
fn refresh_token_owner(shared: &Shared, params: &Params) -> Option<ClientRegistration> {
    if params.get("grant_type") != Some("refresh_token") {
        return None;
    }
    let token = params.get("refresh_token")?;
    let client_id = {
        let store = shared.store();
        let record = store.refresh_tokens.get(token)?;
        store.grants.get(&record.grant_id)?.client_id.clone()
    };
    shared.client(&client_id)
}

/// A refresh that sent no credentials proceeds for a public client; a
/// confidential client must still authenticate.
fn public_from_refresh_token(
    client: ClientRegistration,
) -> Result<(ClientRegistration, Method), TokenError> {
    match client.auth {
        ClientAuth::Public => Ok((client, Method::None)),
        ClientAuth::ClientSecretBasic { .. } | ClientAuth::PrivateKeyJwt { .. } => Err(err(
            "invalid_client",
            format!(
                "the refresh token belongs to the confidential client {:?}, which must \
                 authenticate to refresh (HTTP Basic or a client_assertion)",
                client.client_id
            ),
        )),
    }
}

/// Why HTTP Basic credentials did not authenticate a client.
enum BasicFailure {
    /// Not `urlencode(id):urlencode(secret)` in any reading.
    Malformed,
    /// A description for the `invalid_client` answer.
    Described(String),
}

/// Finds the confidential-symmetric client of HTTP Basic credentials and
/// checks its secret, returning the client and its id.
///
/// RFC 6749 §2.3.1 form-encodes id and secret before base64. Many clients
/// skip that step, which only shows with characters such as `+ / = %`. When
/// the credentials fail as form-encoded but match as sent, the answer says
/// exactly that, unless [`crate::Behavior::accept_unencoded_basic_credentials`]
/// accepts them.
fn basic_client(
    shared: &Shared,
    raw: &(String, String),
) -> Result<(ClientRegistration, String), BasicFailure> {
    let (raw_id, raw_secret) = raw;
    let decoded = form_decode(raw_id)
        .filter(|id| !id.is_empty())
        .zip(form_decode(raw_secret));
    let encoded_result = match &decoded {
        Some((id, secret)) => check_secret(shared, id, secret),
        None => Err(BasicFailure::Malformed),
    };
    let Err(failure) = encoded_result else {
        return encoded_result;
    };
    if decoded.as_ref().map(|(id, secret)| (id, secret)) == Some((raw_id, raw_secret)) {
        return Err(failure);
    }
    // The credentials as sent, without form-decoding.
    if raw_id.is_empty() || check_secret(shared, raw_id, raw_secret).is_err() {
        return Err(failure);
    }
    if shared.behavior().accept_unencoded_basic_credentials {
        return check_secret(shared, raw_id, raw_secret);
    }
    Err(BasicFailure::Described(format!(
        "client authentication failed for {raw_id:?}: the HTTP Basic credentials were not \
         form-urlencoded before base64 (RFC 6749 §2.3.1); they match only when read without \
         decoding. Encode client_id and client_secret with application/x-www-form-urlencoded \
         first (e.g. '+' as %2B, '/' as %2F, '=' as %3D, '%' as %25)"
    )))
}

/// Checks `secret` against the registration of `id`.
fn check_secret(
    shared: &Shared,
    id: &str,
    secret: &str,
) -> Result<(ClientRegistration, String), BasicFailure> {
    let described = |d: String| BasicFailure::Described(d);
    let client = shared
        .client(id)
        .ok_or_else(|| described(format!("unknown client_id {id:?}")))?;
    let expected = match &client.auth {
        ClientAuth::ClientSecretBasic { secret } => secret,
        ClientAuth::Public => {
            return Err(described(format!(
                "client {id:?} is a public client and must not authenticate; \
                 send only client_id in the body"
            )));
        }
        ClientAuth::PrivateKeyJwt { .. } => {
            return Err(described(format!(
                "client {id:?} is registered for private_key_jwt and must authenticate \
                 with client_assertion_type={} and a signed client_assertion, not HTTP Basic",
                assertion::JWT_BEARER
            )));
        }
    };
    if !constant_time_eq(secret.as_bytes(), expected.as_bytes()) {
        return Err(described(format!(
            "client authentication failed for {id:?}: wrong client secret"
        )));
    }
    Ok((client, id.to_owned()))
}

/// The user part of an HTTP Basic header (as sent), unverified.
pub(crate) fn basic_user(value: &HeaderValue) -> Option<String> {
    parse_basic_raw(value).map(|(user, _)| form_decode(&user).unwrap_or(user))
}

/// Splits `Basic base64(id:secret)` into id and secret as sent, without
/// form-decoding them.
fn parse_basic_raw(value: &HeaderValue) -> Option<(String, String)> {
    let value = value.to_str().ok()?;
    let (scheme, credentials) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(credentials.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// Decodes `Basic base64(urlencode(id):urlencode(secret))`.
#[cfg(test)]
fn parse_basic(value: &HeaderValue) -> Option<(String, String)> {
    let (id, secret) = parse_basic_raw(value)?;
    let id = form_decode(&id)?;
    if id.is_empty() {
        return None;
    }
    Some((id, form_decode(&secret)?))
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
