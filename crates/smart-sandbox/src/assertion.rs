//! Asymmetric client authentication: verifying `private_key_jwt` client
//! assertions (RFC 7523 §3 and SMART `client-confidential-asymmetric`,
//! server steps 1–6).
//!
//! The checks, in order, each failing with `invalid_client` and its own
//! description:
//!
//! 1. `client_assertion_type` is exactly
//!    `urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and
//!    `client_assertion` is present, with no other client authentication;
//! 2. the header (read unverified) has `typ: JWT` and a `kid`;
//! 3. the client is the unverified `iss` (or the `client_id` parameter, which
//!    must then equal `iss`), registered as `private_key_jwt`;
//! 4. a `jku` header must equal the registered JWKS URL;
//! 5. keys come from the registered JWKS, or from `GET jwks_url`
//!    (`Accept: application/json`, no redirects, 5 s timeout), cached for the
//!    response's `Cache-Control: max-age` (default 300 s, nothing on
//!    `no-store`/`no-cache`) and refetched once when the `kid` is unknown,
//!    at most once per [`MIN_REFETCH_INTERVAL`] per URL (the assertion is
//!    not verified yet, so anyone can send unknown `kid`s);
//! 6. `smart_jose::verify` with RS384/ES384 only, `iss` = client_id, `aud` =
//!    the exact token URL, `iss`/`sub`/`aud`/`exp`/`jti` required, `exp` at
//!    most 300 s ahead, 5 s leeway;
//! 7. `sub` = `iss`;
//! 8. `jti` not seen before for this `iss`; it is remembered until the
//!    assertion expires (at least 5 minutes).
//!
//! Assertions are never logged; only the client id and the outcome are.

use std::time::{Duration, Instant};

use axum::http::header;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use smart_jose::{Algorithm, JoseError, Jwks, Validation, VerifiedJwt};

use crate::assertion_cache::{
    CachedJwks, DEFAULT_JWKS_MAX_AGE, JtiOutcome, MAX_JWKS_BYTES, MAX_JWKS_MAX_AGE,
};
use crate::config::{ClientAuth, ClientRegistration};
use crate::counters::CounterCells;
use crate::locks::lock;
use crate::oauth_error::{TokenError, err};
use crate::params::Params;
use crate::state::Shared;
use crate::time::unix_now;

/// The only `client_assertion_type` SMART uses (RFC 7523 §2.2).
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Longest allowed assertion lifetime: `exp` at most this far ahead.
const MAX_LIFETIME: u64 = 300;

/// Clock skew tolerated on `exp`, `iat` and `nbf`.
const LEEWAY: u64 = 5;

/// How long a seen `jti` is remembered at least.
const MIN_JTI_MEMORY: u64 = 300;

fn invalid(description: impl Into<String>) -> TokenError {
    err("invalid_client", description)
}

/// Whether the request carries a client assertion (or tries to).
pub(crate) fn is_present(params: &Params) -> bool {
    params.get("client_assertion").is_some() || params.get("client_assertion_type").is_some()
}

/// Authenticates a request that carries `client_assertion_type` /
/// `client_assertion`; returns the client.
pub(crate) async fn authenticate(
    shared: &Shared,
    params: &Params,
) -> Result<ClientRegistration, TokenError> {
    match params.get("client_assertion_type") {
        Some(JWT_BEARER) => {}
        Some(other) => {
            return Err(invalid(format!(
                "client_assertion_type {other:?} is not supported; use {JWT_BEARER}"
            )));
        }
        None => {
            return Err(invalid(format!(
                "client_assertion_type is missing; send client_assertion_type={JWT_BEARER}"
            )));
        }
    }
    let Some(assertion) = params.get("client_assertion") else {
        return Err(invalid(
            "client_assertion is missing; send the signed JWT as client_assertion",
        ));
    };

    // Unverified look at the header and claims, to find the client and its keys.
    let header = smart_jose::decode_header_unverified(assertion)
        .map_err(|e| invalid(format!("client_assertion is not a well-formed JWT: {e}")))?;
    let unverified = unverified_claims(assertion)?;
    match header.get("typ").and_then(Value::as_str) {
        Some(t) if t.eq_ignore_ascii_case("JWT") => {}
        Some(t) => {
            return Err(invalid(format!(
                "the assertion header typ is {t:?}; SMART requires typ \"JWT\""
            )));
        }
        None => {
            return Err(invalid(
                "the assertion header has no typ; SMART requires typ \"JWT\"",
            ));
        }
    }
    let Some(kid) = header.get("kid").and_then(Value::as_str) else {
        return Err(invalid(
            "the assertion header has no kid; SMART requires the kid of the signing key",
        ));
    };
    let iss = unverified.get("iss").and_then(Value::as_str);
    let client_id = match (params.get("client_id"), iss) {
        (Some(id), Some(iss)) if id != iss => {
            return Err(invalid(format!(
                "the assertion's iss {iss:?} does not match client_id {id:?}; iss must be the client_id"
            )));
        }
        (Some(id), _) => id,
        (None, Some(iss)) => iss,
        (None, None) => {
            return Err(invalid(
                "the assertion has no iss claim; iss and sub must be the client_id",
            ));
        }
    };
    let client = shared
        .client(client_id)
        .ok_or_else(|| invalid(format!("unknown client_id {client_id:?}")))?;
    let ClientAuth::PrivateKeyJwt { jwks, jwks_url } = &client.auth else {
        return Err(invalid(format!(
            "client {client_id:?} is not registered for private_key_jwt; {}",
            match client.auth {
                ClientAuth::Public => "public clients send only client_id",
                _ => "confidential-symmetric clients use HTTP Basic",
            }
        )));
    };

    let jku = header.get("jku");
    let source = match (jku, jwks, jwks_url) {
        (Some(jku), _, Some(url)) if jku.as_str() == Some(url.as_str()) => {
            KeySource::Url(url.as_str())
        }
        (Some(_), _, _) => {
            return Err(invalid(
                "jku does not match the registered JWKS URL; omit jku or send exactly the registered jwks_url",
            ));
        }
        (None, Some(jwks), _) => KeySource::Inline(jwks),
        (None, None, Some(url)) => KeySource::Url(url.as_str()),
        (None, None, None) => {
            return Err(invalid(format!(
                "client {client_id:?} has no registered keys"
            )));
        }
    };

    let mut validation = Validation::client_assertion(client_id, &shared.token_url);
    validation.algorithms = vec![Algorithm::RS384, Algorithm::ES384];
    validation.leeway = LEEWAY;
    validation.max_lifetime_from_now = Some(MAX_LIFETIME);

    let verified = match source {
        KeySource::Inline(jwks) => smart_jose::verify(assertion, jwks, &validation),
        KeySource::Url(url) => {
            let (keys, fresh) = keys_from_url(shared, url, false).await?;
            match smart_jose::verify(assertion, &keys, &validation) {
                Err(JoseError::UnknownKey { .. })
                    if !fresh && shared.oauth.assertions.may_refetch(url) =>
                {
                    // The client may have rotated its keys: refetch once
                    // (rate-limited per URL).
                    let (keys, _) = keys_from_url(shared, url, true).await?;
                    smart_jose::verify(assertion, &keys, &validation)
                }
                other => other,
            }
        }
    }
    .map_err(|e| describe(&e, kid, client_id, &shared.token_url))?;

    check_subject_and_jti(shared, &verified)?;
    tracing::debug!(client_id, "client assertion accepted");
    Ok(client)
}

enum KeySource<'a> {
    Inline(&'a Jwks),
    Url(&'a str),
}

/// `sub` = `iss`, then the replay check (only for otherwise valid assertions,
/// so an attacker cannot burn a client's `jti`s with unsigned tokens).
fn check_subject_and_jti(shared: &Shared, verified: &VerifiedJwt) -> Result<(), TokenError> {
    let iss = verified.claim_str("iss").unwrap_or_default();
    match verified.claim_str("sub") {
        Some(sub) if sub == iss => {}
        _ => return Err(invalid("sub must equal iss (both are the client_id)")),
    }
    let Some(jti) = verified.claim_str("jti").filter(|j| !j.is_empty()) else {
        return Err(invalid("jti must be a non-empty string"));
    };
    let exp = verified
        .claims
        .get("exp")
        .and_then(Value::as_u64)
        .unwrap_or_default();
    let until = exp
        .saturating_add(LEEWAY)
        .max(unix_now().saturating_add(MIN_JTI_MEMORY));
    match shared.oauth.assertions.remember_jti(iss, jti, until) {
        JtiOutcome::Fresh => Ok(()),
        JtiOutcome::Replayed if shared.behavior().accept_replayed_jti => Ok(()),
        JtiOutcome::Replayed => Err(invalid(
            "jti was already used; sign a new assertion with a fresh jti for every request",
        )),
        JtiOutcome::Full => Err(err(
            "temporarily_unavailable",
            "too many client assertions are remembered for replay detection; retry once older ones expire",
        )),
    }
}

/// The claims of a JWT, without any verification.
fn unverified_claims(token: &str) -> Result<serde_json::Map<String, Value>, TokenError> {
    let malformed = || {
        invalid(
            "client_assertion is not a well-formed JWT: its claims are not a base64url JSON object",
        )
    };
    let claims = token.split('.').nth(1).ok_or_else(malformed)?;
    let bytes = URL_SAFE_NO_PAD.decode(claims).map_err(|_| malformed())?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(malformed()),
    }
}

/// The `invalid_client` description for a verification failure.
fn describe(e: &JoseError, kid: &str, client_id: &str, token_url: &str) -> TokenError {
    invalid(match e {
        JoseError::UnknownKey { .. } => format!(
            "no key with kid {kid:?} in the client's JWKS (for the assertion's alg); register the key or fix the kid"
        ),
        JoseError::AmbiguousKey { .. } => format!(
            "more than one key with kid {kid:?} in the client's JWKS; every key needs a unique kid"
        ),
        JoseError::BadSignature => {
            "signature does not verify with the registered key for this kid".to_owned()
        }
        JoseError::Expired => "assertion expired (exp is in the past)".to_owned(),
        JoseError::LifetimeTooLong { .. } => {
            "exp is more than 5 minutes in the future; SMART allows at most 300 seconds".to_owned()
        }
        JoseError::NotYetValid => {
            "the assertion is not valid yet (iat or nbf in the future)".to_owned()
        }
        JoseError::WrongIssuer { .. } => format!("iss must equal the client_id {client_id:?}"),
        JoseError::WrongAudience { .. } => {
            format!("aud must be {token_url}, the token endpoint URL exactly")
        }
        JoseError::MissingClaim(name) => {
            format!("the assertion has no {name} claim; iss, sub, aud, exp and jti are required")
        }
        JoseError::UnsupportedAlgorithm(alg) => {
            format!("alg {alg:?} is not accepted for client assertions; sign with RS384 or ES384")
        }
        JoseError::WeakKey { .. } | JoseError::InvalidKey(_) => {
            format!("the client's JWKS key for kid {kid:?} is not usable: {e}")
        }
        other => format!("client_assertion is not acceptable: {other}"),
    })
}

/// The JWKS at `url`, from the cache unless `refetch` or expired. The flag
/// is true when the keys were fetched by this call.
async fn keys_from_url(
    shared: &Shared,
    url: &str,
    refetch: bool,
) -> Result<(Jwks, bool), TokenError> {
    if !refetch {
        let cache = lock(&shared.oauth.assertions.jwks_cache);
        if let Some(hit) = cache.get(url)
            && hit.expires_at > Instant::now()
        {
            return Ok((hit.jwks.clone(), false));
        }
    }
    let (jwks, max_age) = fetch(shared, url).await?;
    let mut cache = lock(&shared.oauth.assertions.jwks_cache);
    if max_age.is_zero() {
        cache.remove(url);
    } else {
        cache.insert(
            url.to_owned(),
            CachedJwks {
                jwks: jwks.clone(),
                expires_at: crate::time::instant_after(Instant::now(), max_age),
            },
        );
    }
    Ok((jwks, true))
}

async fn fetch(shared: &Shared, url: &str) -> Result<(Jwks, Duration), TokenError> {
    CounterCells::bump(&shared.counters.jwks_fetches);
    tracing::debug!(jwks_url = url, "fetching a client JWKS");
    let fail = |why: String| invalid(format!("cannot use the client's JWKS at {url}: {why}"));
    let http = shared
        .oauth
        .assertions
        .http()
        .await
        .map_err(|e| fail(format!("the HTTP client cannot be built ({e})")))?;
    let mut response = http
        .get(url)
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| fail(format!("the request failed ({})", request_error_kind(&e))))?;
    if !response.status().is_success() {
        return Err(fail(format!(
            "it answered HTTP {} (redirects are not followed)",
            response.status().as_u16()
        )));
    }
    let max_age = response
        .headers()
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .fold(None, |acc, v| acc.or(cache_lifetime(v)))
        .unwrap_or(DEFAULT_JWKS_MAX_AGE)
        .min(MAX_JWKS_MAX_AGE);
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| fail(format!("reading it failed ({})", request_error_kind(&e))))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_JWKS_BYTES {
            return Err(fail(format!("it is larger than {MAX_JWKS_BYTES} bytes")));
        }
    }
    let jwks: Jwks = serde_json::from_slice(&body).map_err(|e| {
        fail(format!(
            "it is not a JWKS ({e}); expected {{\"keys\": [...]}}"
        ))
    })?;
    Ok((jwks, max_age))
}

fn request_error_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out after 5 s"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "HTTP error"
    }
}

/// The cache lifetime a `Cache-Control` value allows: `no-store`/`no-cache`
/// → zero, `max-age=N` → N seconds, otherwise `None`.
fn cache_lifetime(value: &str) -> Option<Duration> {
    let mut max_age = None;
    for directive in value.split(',').map(str::trim) {
        let (name, arg) = directive
            .split_once('=')
            .map_or((directive, None), |(n, a)| (n.trim(), Some(a.trim())));
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(Duration::ZERO);
        }
        if name.eq_ignore_ascii_case("max-age") {
            max_age = arg
                .map(|a| a.trim_matches('"'))
                .and_then(|a| a.parse::<u64>().ok())
                .map(Duration::from_secs);
        }
    }
    max_age
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_parsing() {
        assert_eq!(cache_lifetime("max-age=60"), Some(Duration::from_secs(60)));
        assert_eq!(
            cache_lifetime("public, Max-Age=\"120\""),
            Some(Duration::from_secs(120))
        );
        assert_eq!(cache_lifetime("no-store"), Some(Duration::ZERO));
        assert_eq!(cache_lifetime("max-age=60, no-cache"), Some(Duration::ZERO));
        assert_eq!(cache_lifetime("public"), None);
        assert_eq!(cache_lifetime("max-age=abc"), None);
    }

    #[test]
    fn unverified_claims_are_read() {
        let token = format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"ES384"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"iss":"app"}"#)
        );
        let claims = unverified_claims(&token)
            .map_err(|e| e.description)
            .unwrap_or_default();
        assert_eq!(claims.get("iss").and_then(Value::as_str), Some("app"));
        assert!(unverified_claims("a.!!.c").is_err());
        assert!(unverified_claims("abc").is_err());
    }
}
