//! SMART asymmetric client authentication (`private_key_jwt`, RFC 7523).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::{JoseError, JwtHeader, PrivateKey};

/// Longest client assertion lifetime SMART allows (`exp` at most five minutes ahead).
pub const MAX_ASSERTION_LIFETIME: Duration = Duration::from_secs(300);

/// Lifetime used by [`ClientAssertion::new`]: four minutes, leaving a minute for clock skew.
pub const DEFAULT_ASSERTION_LIFETIME: Duration = Duration::from_secs(240);

/// What goes into a client assertion (SMART `client-confidential-asymmetric`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAssertion<'a> {
    /// The registered `client_id`; used as both `iss` and `sub`.
    pub client_id: &'a str,
    /// The token endpoint URL, exactly as posted to; used as `aud`.
    pub audience: &'a str,
    /// Optional `jku` header: the registered JWKS URL. Usually simplest to omit.
    pub jku: Option<&'a str>,
    /// Time until `exp`; at most [`MAX_ASSERTION_LIFETIME`] (300 s).
    pub lifetime: Duration,
}

impl<'a> ClientAssertion<'a> {
    /// An assertion for `client_id` at the token URL `audience`, without `jku`, lasting
    /// [`DEFAULT_ASSERTION_LIFETIME`] (240 s).
    pub fn new(client_id: &'a str, audience: &'a str) -> ClientAssertion<'a> {
        ClientAssertion {
            client_id,
            audience,
            jku: None,
            lifetime: DEFAULT_ASSERTION_LIFETIME,
        }
    }
}

/// Signs a client assertion with `key` at unix time `now`.
///
/// Header: `alg` and `kid` from the key, `typ: "JWT"`, and `jku` when given.
/// Claims: `iss` = `sub` = `client_id`, `aud`, `iat` = `now`, `exp` = `now + lifetime`, and
/// `jti` = 32 random bytes as base64url (43 characters, unique per call).
///
/// # Errors
/// [`JoseError::LifetimeTooLong`] when `lifetime` exceeds 300 s, [`JoseError::Malformed`]
/// for an empty `client_id` or `audience` or a lifetime under one second,
/// [`JoseError::Signing`] if signing or the random number generator fails.
pub fn client_assertion(
    key: &PrivateKey,
    claims: &ClientAssertion<'_>,
    now: u64,
) -> Result<String, JoseError> {
    if claims.lifetime > MAX_ASSERTION_LIFETIME {
        return Err(JoseError::LifetimeTooLong {
            max: MAX_ASSERTION_LIFETIME.as_secs(),
        });
    }
    if claims.lifetime.as_secs() == 0 {
        return Err(JoseError::Malformed(
            "client assertion lifetime must be at least one second".into(),
        ));
    }
    if claims.client_id.is_empty() || claims.audience.is_empty() {
        return Err(JoseError::Malformed(
            "client assertion needs a non-empty client_id and token URL (audience)".into(),
        ));
    }
    let mut nonce = [0u8; 32];
    getrandom::fill(&mut nonce)
        .map_err(|e| JoseError::Signing(format!("random number generator failed: {e}")))?;
    let body = json!({
        "iss": claims.client_id,
        "sub": claims.client_id,
        "aud": claims.audience,
        "exp": now.saturating_add(claims.lifetime.as_secs()),
        "iat": now,
        "jti": URL_SAFE_NO_PAD.encode(nonce),
    });
    let header = JwtHeader {
        typ: Some("JWT".into()),
        jku: claims.jku.map(str::to_owned),
    };
    key.sign(&header, &body)
}
