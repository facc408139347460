//! Redacting wrappers for every credential the protocol handles.
//!
//! Tokens, codes, verifiers and client secrets travel through many layers: HTTP bodies, the
//! store, error values, `tracing` spans. The surest way to keep them out of logs is a type whose
//! `Debug` and `Display` cannot print the value. Reading the value takes an explicit
//! [`expose_secret`](AccessToken::expose_secret) call, which is easy to find in review.
//!
//! The values are zeroised on drop (through [`secrecy`]). They serialize transparently so that
//! stores can persist them; a store that writes them to disk is responsible for encryption at rest.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! secret_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// Wraps a value. The value is never printed by `Debug` or `Display`.
            pub fn new(value: impl Into<String>) -> Self {
                Self(SecretString::from(value.into()))
            }

            /// The raw value, for the one place that must send or compare it.
            pub fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[redacted]")
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                constant_time_eq(self.expose_secret().as_bytes(), other.expose_secret().as_bytes())
            }
        }

        impl Eq for $name {}

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.expose_secret())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map(Self::new)
            }
        }
    };
}

secret_type!(
    /// An OAuth access token (opaque to the client: never decoded).
    AccessToken
);
secret_type!(
    /// An OAuth refresh token.
    RefreshToken
);
secret_type!(
    /// An OpenID Connect `id_token` (a JWT; its claims are read only after verification).
    IdToken
);
secret_type!(
    /// A confidential client's shared secret (`client_secret_basic`).
    ClientSecret
);
secret_type!(
    /// A single-use authorization code from the redirect.
    AuthorizationCode
);
secret_type!(
    /// A PKCE `code_verifier` (RFC 7636).
    PkceVerifier
);
secret_type!(
    /// The EHR's opaque `launch` handle. Not a credential by itself, but it binds a launch to a
    /// user session in the EHR, so it is kept out of logs too.
    LaunchHandle
);

secret_type!(
    /// The value that ties a launch's `state` to the browser that began it (SMART checklist:
    /// bind `state` to the user's session). The app sets it as a cookie when it redirects to the
    /// EHR and hands it back to [`SmartClient::complete_launch`](crate::SmartClient::complete_launch)
    /// with the callback; only its SHA-256 is stored. See `docs/guides/browser-binding.md`.
    BrowserBinding
);

impl BrowserBinding {
    /// A fresh value: 256 bits from the OS random number generator, base64url without padding
    /// (43 characters, safe in a cookie).
    pub fn generate() -> Self {
        Self::new(crate::random_token(32))
    }

    /// The SHA-256 of the value, base64url without padding: what a pending launch keeps.
    pub fn sha256(&self) -> String {
        use base64::Engine as _;
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(self.expose_secret().as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    }

    /// Whether this value hashes to `expected_sha256`, compared in constant time.
    pub fn matches_sha256(&self, expected_sha256: &str) -> bool {
        constant_time_eq(self.sha256().as_bytes(), expected_sha256.as_bytes())
    }
}

/// Compares two byte strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let token = AccessToken::new("very-secret-value");
        assert_eq!(format!("{token:?}"), "AccessToken([redacted])");
        assert_eq!(format!("{token}"), "[redacted]");
        assert_eq!(token.expose_secret(), "very-secret-value");
        let nested = Some(ClientSecret::new("s3cr3t"));
        assert!(!format!("{nested:?}").contains("s3cr3t"));
    }

    #[test]
    fn serializes_transparently_for_stores() {
        let token = RefreshToken::new("r1");
        let json = serde_json::to_string(&token).expect("serialize");
        assert_eq!(json, "\"r1\"");
        let back: RefreshToken = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, token);
        assert_ne!(back, RefreshToken::new("r2"));
    }
}
