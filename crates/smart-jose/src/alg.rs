//! Signature algorithms and key types.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::JoseError;
use crate::error::shorten;

/// A JWS signature algorithm supported by this crate (RFC 7518 §3).
///
/// SMART App Launch requires clients to produce both `RS384` and `ES384` client assertions
/// and servers to sign id_tokens with `RS256`. HMAC and `none` are deliberately absent.
/// Serializes as its JOSE name (`"RS384"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (OpenID Connect id_tokens).
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384 (SMART asymmetric client authentication).
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384 (SMART asymmetric client authentication).
    ES384,
}

impl Algorithm {
    /// All supported algorithms.
    pub const ALL: [Algorithm; 5] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::ES256,
        Algorithm::ES384,
    ];

    /// The type of key this algorithm signs with.
    pub fn key_type(self) -> KeyType {
        match self {
            Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => KeyType::Rsa,
            Algorithm::ES256 => KeyType::EcP256,
            Algorithm::ES384 => KeyType::EcP384,
        }
    }

    /// The JOSE name (`"RS384"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
        }
    }

    pub(crate) fn to_jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::RS384 => jsonwebtoken::Algorithm::RS384,
            Algorithm::RS512 => jsonwebtoken::Algorithm::RS512,
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::ES384 => jsonwebtoken::Algorithm::ES384,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = JoseError;

    /// Parses the exact (case-sensitive) JOSE name; anything else is
    /// [`JoseError::UnsupportedAlgorithm`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| JoseError::UnsupportedAlgorithm(shorten(s, 32)))
    }
}

/// The kind of key an [`Algorithm`] needs (JWK `kty` plus, for EC, `crv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// RSA (`kty: "RSA"`).
    Rsa,
    /// Elliptic curve P-256 (`kty: "EC"`, `crv: "P-256"`).
    EcP256,
    /// Elliptic curve P-384 (`kty: "EC"`, `crv: "P-384"`).
    EcP384,
}

impl KeyType {
    /// The JWK `kty` value (`"RSA"` or `"EC"`).
    pub fn kty(self) -> &'static str {
        match self {
            KeyType::Rsa => "RSA",
            KeyType::EcP256 | KeyType::EcP384 => "EC",
        }
    }

    /// The JWK `crv` value for EC keys.
    pub fn crv(self) -> Option<&'static str> {
        match self {
            KeyType::Rsa => None,
            KeyType::EcP256 => Some("P-256"),
            KeyType::EcP384 => Some("P-384"),
        }
    }

    /// The algorithm used when none is given: `RS384` for RSA, `ES256`/`ES384` for EC.
    pub fn default_algorithm(self) -> Algorithm {
        match self {
            KeyType::Rsa => Algorithm::RS384,
            KeyType::EcP256 => Algorithm::ES256,
            KeyType::EcP384 => Algorithm::ES384,
        }
    }

    /// Whether `alg` signs with this type of key.
    pub fn fits(self, alg: Algorithm) -> bool {
        alg.key_type() == self
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyType::Rsa => "RSA",
            KeyType::EcP256 => "EC P-256",
            KeyType::EcP384 => "EC P-384",
        })
    }
}
