//! The one error type of this crate.

use crate::{Algorithm, KeyType};

/// Everything that can go wrong in `smart-jose`.
///
/// Every message is one line that says what is wrong and what to do about it. Messages never
/// contain key material or whole tokens; strings copied from a token (such as an `alg` or
/// `iss` value) are shortened.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    /// The key could not be read or used (bad encoding, wrong format, inconsistent members).
    #[error("invalid key: {0}")]
    InvalidKey(String),

    /// The RSA modulus is shorter than 2048 bits.
    #[error(
        "RSA key is too weak ({bits} bits): use a key of at least 2048 bits (3072 recommended)"
    )]
    WeakKey {
        /// Modulus length of the refused key.
        bits: usize,
    },

    /// The algorithm cannot be used with this type of key.
    #[error(
        "algorithm {alg} cannot be used with a {key} key: pick an algorithm for that key type or a different key"
    )]
    AlgorithmMismatch {
        /// The requested algorithm.
        alg: Algorithm,
        /// The type of the key it was requested for.
        key: KeyType,
    },

    /// A feature or key format this crate does not support.
    #[error("unsupported: {0}")]
    Unsupported(String),

    /// Input that is not well-formed (token, JWK, JSON, PEM, parameter).
    #[error("malformed input: {0}")]
    Malformed(String),

    /// The token's `alg` is not one of the accepted algorithms (this includes `none` and HMAC).
    #[error(
        "token algorithm {0:?} is not accepted: only the configured asymmetric algorithms are allowed"
    )]
    UnsupportedAlgorithm(String),

    /// No key in the JWKS matches the token's `kid` and algorithm.
    #[error(
        "no key in the JWKS matches kid {kid:?} and the token algorithm: refresh the JWKS or register the signing key"
    )]
    UnknownKey {
        /// The `kid` looked for (`None` when the token had none).
        kid: Option<String>,
    },

    /// More than one key in the JWKS matches the token's `kid` and algorithm.
    #[error(
        "more than one key in the JWKS matches kid {kid:?}: give every key a unique kid and put the kid in the JWT header"
    )]
    AmbiguousKey {
        /// The `kid` looked for (`None` when the token had none).
        kid: Option<String>,
    },

    /// The signature does not verify with the selected key.
    #[error(
        "signature verification failed: the token was not signed by the published key for its kid (or was altered)"
    )]
    BadSignature,

    /// `exp` is in the past (beyond the allowed clock leeway).
    #[error("token has expired: obtain a new token (check the clocks if this happens at once)")]
    Expired,

    /// `nbf` or `iat` is in the future (beyond the allowed clock leeway).
    #[error(
        "token is not valid yet (nbf or iat is in the future): check the clock of the issuer and of this host"
    )]
    NotYetValid,

    /// `exp` is further in the future than allowed, or a requested lifetime is too long.
    #[error("token lifetime is too long: exp must be at most {max} seconds from now")]
    LifetimeTooLong {
        /// Maximum allowed lifetime in seconds.
        max: u64,
    },

    /// `iss` is missing or differs from the expected issuer.
    #[error(
        "wrong issuer: expected {expected:?}, found {}; check the configured issuer",
        found.as_deref().map(|f| format!("{f:?}")).unwrap_or_else(|| "none".to_owned())
    )]
    WrongIssuer {
        /// The configured issuer.
        expected: String,
        /// The token's `iss` (shortened), if any.
        found: Option<String>,
    },

    /// `aud` is missing or does not contain the expected audience.
    #[error(
        "wrong audience: the token's aud does not contain {expected:?}; check the client_id or token URL used"
    )]
    WrongAudience {
        /// The configured audience.
        expected: String,
    },

    /// A required claim is absent.
    #[error("required claim {0:?} is missing from the token")]
    MissingClaim(String),

    /// Signing or key generation failed inside the crypto backend.
    #[error("cryptographic operation failed: {0}")]
    Signing(String),
}

/// Shortens a string copied from untrusted input for use in an error message.
pub(crate) fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}
