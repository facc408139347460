//! JWT verification against a JWKS.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::error::shorten;
use crate::{Algorithm, JoseError, Jwks};

/// Tokens longer than this are refused before any decoding (64 KiB).
const MAX_TOKEN_LEN: usize = 64 * 1024;

/// What [`verify`] checks besides the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    /// Accepted `alg` values. Anything else — including `none` and every HMAC algorithm — is
    /// [`JoseError::UnsupportedAlgorithm`].
    pub algorithms: Vec<Algorithm>,
    /// Expected `iss`, compared exactly; `None` skips the check.
    pub issuer: Option<String>,
    /// A value `aud` (a string or an array of strings) must contain; `None` skips the check.
    pub audience: Option<String>,
    /// Allowed clock skew in seconds for `exp`, `nbf`, `iat` and `max_lifetime_from_now`.
    pub leeway: u64,
    /// Refuse tokens whose `exp` is more than this many seconds (plus `leeway`) after now.
    /// SMART client assertions: 300.
    pub max_lifetime_from_now: Option<u64>,
    /// Claims that must be present and not `null`.
    pub required_claims: Vec<String>,
    /// The current unix time in seconds; `None` reads the system clock. For tests.
    pub now: Option<u64>,
}

impl Validation {
    /// Accepts `algorithms`, requires `exp`, allows 60 s of clock skew, and checks neither
    /// issuer nor audience until they are set.
    pub fn new(algorithms: &[Algorithm]) -> Validation {
        Validation {
            algorithms: algorithms.to_vec(),
            issuer: None,
            audience: None,
            leeway: 60,
            max_lifetime_from_now: None,
            required_claims: vec!["exp".to_owned()],
            now: None,
        }
    }

    /// Checks for a SMART client assertion received at `token_url`: `RS384`, `ES384` and
    /// `RS256`, `iss` = `client_id`, `aud` contains `token_url`, `exp` at most 300 s ahead, and
    /// `iss`, `sub`, `aud`, `exp`, `jti` present. The caller must still check `sub` = `iss`
    /// and that `jti` was not seen before.
    pub fn client_assertion(client_id: &str, token_url: &str) -> Validation {
        Validation {
            issuer: Some(client_id.to_owned()),
            audience: Some(token_url.to_owned()),
            max_lifetime_from_now: Some(300),
            required_claims: ["iss", "sub", "aud", "exp", "jti"]
                .map(str::to_owned)
                .to_vec(),
            ..Validation::new(&[Algorithm::RS384, Algorithm::ES384, Algorithm::RS256])
        }
    }

    /// Checks for an OpenID Connect id_token: `algorithms` (SMART requires `RS256`),
    /// `iss` = `issuer`, `aud` contains `client_id`, and `iss`, `sub`, `aud`, `exp`, `iat`
    /// present.
    pub fn id_token(issuer: &str, client_id: &str, algorithms: &[Algorithm]) -> Validation {
        Validation {
            issuer: Some(issuer.to_owned()),
            audience: Some(client_id.to_owned()),
            required_claims: ["iss", "sub", "aud", "exp", "iat"]
                .map(str::to_owned)
                .to_vec(),
            ..Validation::new(algorithms)
        }
    }
}

/// A token whose signature and claims passed [`verify`].
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedJwt {
    /// The JOSE header.
    pub header: Map<String, Value>,
    /// The claims.
    pub claims: Map<String, Value>,
}

impl VerifiedJwt {
    /// The header `kid`.
    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    /// The header `alg`.
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(|a| a.parse().ok())
    }

    /// A claim that is a string.
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }
}

/// Splits a compact JWS into its three base64url parts.
fn split(token: &str) -> Result<[&str; 3], JoseError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JoseError::Malformed(format!(
            "token is longer than {MAX_TOKEN_LEN} bytes"
        )));
    }
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(c), Some(s), None) => Ok([h, c, s]),
        _ => Err(JoseError::Malformed(
            "a JWT must have three base64url parts separated by dots (JWE is not supported)".into(),
        )),
    }
}

fn decode_object(part: &str, what: &str) -> Result<Map<String, Value>, JoseError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JoseError::Malformed(format!("JWT {what} is not base64url")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JoseError::Malformed(format!(
            "JWT {what} is not a JSON object"
        ))),
    }
}

/// Decodes the JOSE header without verifying anything, e.g. to read `kid` or `jku` and find
/// the right JWKS. Never trust what it returns; pass the token to [`verify`].
///
/// # Errors
/// [`JoseError::Malformed`] when the token is not a compact JWS with a JSON object header.
pub fn decode_header_unverified(token: &str) -> Result<Map<String, Value>, JoseError> {
    let [header, _, _] = split(token)?;
    decode_object(header, "header")
}

/// Decodes the claims without verifying anything, e.g. to read `iss` and decide which issuer's
/// keys to verify with. Never trust what it returns; pass the token to [`verify`].
///
/// # Errors
/// [`JoseError::Malformed`] when the token is not a compact JWS with a JSON object payload.
pub fn decode_claims_unverified(token: &str) -> Result<Map<String, Value>, JoseError> {
    let [_, claims, _] = split(token)?;
    decode_object(claims, "claims")
}

/// Reads a NumericDate claim, truncated to whole seconds.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, JoseError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(v), _) => Ok(Some(v)),
            (None, Some(f)) if f.is_finite() && f >= 0.0 => Ok(Some(f as u64)),
            _ => Err(JoseError::Malformed(format!(
                "claim {name:?} must be a non-negative number of seconds"
            ))),
        },
        Some(_) => Err(JoseError::Malformed(format!(
            "claim {name:?} must be a number of seconds since the epoch"
        ))),
    }
}

fn system_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Verifies a compact JWS against `jwks` and checks its claims.
///
/// Order of checks:
/// 1. the header parses and its `alg` is one of `validation.algorithms` (so `none` and HMAC
///    are refused before any key is looked at — a public key is never used as an HMAC
///    secret); a `crit` header is refused;
/// 2. the key is selected by `kid` and key type with [`Jwks::select`];
/// 3. the signature verifies;
/// 4. `exp` has not passed (with `leeway`), `nbf` and `iat` are not in the future (with
///    `leeway`), and `exp` is within `max_lifetime_from_now`;
/// 5. `iss` equals `issuer`, `aud` (string or array) contains `audience`;
/// 6. every required claim is present.
///
/// # Errors
/// The first failed check, as the matching [`JoseError`] variant.
pub fn verify(token: &str, jwks: &Jwks, validation: &Validation) -> Result<VerifiedJwt, JoseError> {
    let [header_b64, claims_b64, signature_b64] = split(token)?;
    let header = decode_object(header_b64, "header")?;

    let alg_name = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| JoseError::Malformed("JWT header has no string \"alg\"".into()))?;
    let alg = alg_name
        .parse::<Algorithm>()
        .ok()
        .filter(|a| validation.algorithms.contains(a))
        .ok_or_else(|| JoseError::UnsupportedAlgorithm(shorten(alg_name, 32)))?;
    if header.contains_key("crit") {
        return Err(JoseError::Unsupported(
            "JWT header \"crit\" extensions are not understood; the token must not use them".into(),
        ));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => {
            return Err(JoseError::Malformed(
                "JWT header \"kid\" must be a string".into(),
            ));
        }
    };

    let jwk = jwks.select(kid, alg)?;
    let key = jwk.decoding_key(alg)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| JoseError::Malformed("JWT signature is not base64url".into()))?;
    if signature.is_empty() {
        return Err(JoseError::BadSignature);
    }
    let signing_input_len = header_b64.len() + 1 + claims_b64.len();
    let signing_input = &token.as_bytes()[..signing_input_len];
    match jsonwebtoken::crypto::verify(signature_b64, signing_input, &key, alg.to_jsonwebtoken()) {
        Ok(true) => {}
        Ok(false) => return Err(JoseError::BadSignature),
        Err(e) => {
            return Err(match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidRsaKey(_)
                | jsonwebtoken::errors::ErrorKind::InvalidEcdsaKey
                | jsonwebtoken::errors::ErrorKind::InvalidKeyFormat => JoseError::InvalidKey(
                    "the JWKS key selected for this token is not a valid public key".into(),
                ),
                _ => JoseError::BadSignature,
            });
        }
    }

    let claims = decode_object(claims_b64, "claims")?;
    let now = validation.now.unwrap_or_else(system_now);
    let leeway = validation.leeway;
    let exp = numeric_date(&claims, "exp")?;
    if let Some(exp) = exp
        && exp.saturating_add(leeway) <= now
    {
        return Err(JoseError::Expired);
    }
    for name in ["nbf", "iat"] {
        if let Some(t) = numeric_date(&claims, name)?
            && t > now.saturating_add(leeway)
        {
            return Err(JoseError::NotYetValid);
        }
    }
    if let (Some(max), Some(exp)) = (validation.max_lifetime_from_now, exp)
        && exp > now.saturating_add(max).saturating_add(leeway)
    {
        return Err(JoseError::LifetimeTooLong { max });
    }
    if let Some(expected) = &validation.issuer {
        let found = claims.get("iss").and_then(Value::as_str);
        if found != Some(expected.as_str()) {
            return Err(JoseError::WrongIssuer {
                expected: expected.clone(),
                found: found.map(|f| shorten(f, 128)),
            });
        }
    }
    if let Some(expected) = &validation.audience {
        let ok = match claims.get("aud") {
            Some(Value::String(aud)) => aud == expected,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(expected)),
            _ => false,
        };
        if !ok {
            return Err(JoseError::WrongAudience {
                expected: expected.clone(),
            });
        }
    }
    for name in &validation.required_claims {
        if claims.get(name).is_none_or(Value::is_null) {
            return Err(JoseError::MissingClaim(name.clone()));
        }
    }
    Ok(VerifiedJwt { header, claims })
}
