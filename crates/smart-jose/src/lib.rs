//! JOSE for SMART App Launch 2.2: signing keys, JWKS, client assertions and JWT verification.
//!
//! # Why this crate exists
//!
//! Both sides of SMART's asymmetric flows need the same JOSE layer, and getting it subtly
//! different on each side is how interoperability bugs and security holes happen:
//!
//! * the **client** signs `private_key_jwt` client assertions ([`client_assertion`], RS384 or
//!   ES384, SMART `client-confidential-asymmetric`), publishes its public keys
//!   ([`PrivateKey::public_jwk`], [`KeySet::jwks`]) and validates OpenID Connect id_tokens
//!   ([`verify`] with [`Validation::id_token`]);
//! * the **sandbox** server verifies client assertions against the registered JWKS
//!   ([`verify`] with [`Validation::client_assertion`], key selection by `kid` and key type
//!   with [`Jwks::select`]) and signs id_tokens with RS256 ([`PrivateKey::sign`]).
//!
//! Key ids are RFC 7638 thumbprints, so a key has the same `kid` however it is loaded, and
//! [`KeySet`] implements rotation (publish the new key, sign with it after a grace period,
//! retire the old one).
//!
//! # Why jsonwebtoken + rsa + p384
//!
//! Everything is pure Rust; no OpenSSL or other system library is needed. `jsonwebtoken` 12
//! (with its RustCrypto backend) does the JWS signature primitives; `rsa` 0.10 and
//! `p384`/`p256` 0.14 generate keys and read and write PKCS#1, PKCS#8 and SEC1. `rsa` 0.10
//! is free of the Marvin timing issue (RUSTSEC-2023-0071). Header parsing, algorithm
//! allow-listing, key selection and claim checks are done here, so the rules SMART asks for
//! (never `none`, never HMAC with a public key, exactly one key per `kid` and key type,
//! assertions at most five minutes long) are enforced in one place.
//!
//! # Secrets
//!
//! Private key material is never logged or printed: [`PrivateKey`]'s `Debug` shows only its
//! `kid` and algorithm, error messages never contain keys or whole tokens, and key bytes
//! are zeroized on drop. [`PublicJwk`] cannot hold private JWK members.
//!
//! # Example: a client assertion, verified as the server would
//!
//! ```
//! use smart_jose::{Algorithm, ClientAssertion, PrivateKey, Validation, client_assertion, verify};
//!
//! # fn main() -> Result<(), smart_jose::JoseError> {
//! let key = PrivateKey::generate(Algorithm::ES384)?;
//! let now = 1_700_000_000;
//! let claims = ClientAssertion::new("my-app", "https://ehr.example.org/token");
//! let jwt = client_assertion(&key, &claims, now)?;
//!
//! // The server looks the key up in the JWKS the client registered.
//! let registered_jwks = smart_jose::Jwks::new(vec![key.public_jwk()]);
//! let mut validation = Validation::client_assertion("my-app", "https://ehr.example.org/token");
//! validation.now = Some(now + 5);
//! let verified = verify(&jwt, &registered_jwks, &validation)?;
//! assert_eq!(verified.claim_str("sub"), Some("my-app"));
//! assert_eq!(verified.kid(), Some(key.kid()));
//! # Ok(())
//! # }
//! ```
//!
//! # Example: an RS256 id_token, with a key set
//!
//! ```
//! use serde_json::json;
//! use smart_jose::{Algorithm, JwtHeader, KeySet, PrivateKey, Validation, verify};
//!
//! # fn main() -> Result<(), smart_jose::JoseError> {
//! let keys = KeySet::new(PrivateKey::generate_rsa(2048, Algorithm::RS256)?);
//! let now = 1_700_000_000;
//! let id_token = keys.signing_key(now).sign(
//!     &JwtHeader { typ: Some("JWT".into()), jku: None },
//!     &json!({
//!         "iss": "https://ehr.example.org", "sub": "u-123", "aud": "my-app",
//!         "iat": now, "exp": now + 300, "fhirUser": "Practitioner/123",
//!     }),
//! )?;
//!
//! // The client fetched `keys.jwks()` from the server's jwks_uri.
//! let jwks = keys.jwks();
//! let mut validation = Validation::id_token("https://ehr.example.org", "my-app", &[Algorithm::RS256]);
//! validation.now = Some(now);
//! let verified = verify(&id_token, &jwks, &validation)?;
//! assert_eq!(verified.claim_str("fhirUser"), Some("Practitioner/123"));
//!
//! // Anything but the allowed algorithms is refused before a key is even looked at.
//! let strict = Validation::id_token("https://ehr.example.org", "my-app", &[Algorithm::ES384]);
//! assert!(matches!(
//!     verify(&id_token, &jwks, &strict),
//!     Err(smart_jose::JoseError::UnsupportedAlgorithm(_))
//! ));
//! # Ok(())
//! # }
//! ```

mod alg;
mod assertion;
mod error;
mod jwk;
mod key;
mod keyset;
mod verify;

pub use alg::{Algorithm, KeyType};
pub use assertion::{
    ClientAssertion, DEFAULT_ASSERTION_LIFETIME, MAX_ASSERTION_LIFETIME, client_assertion,
};
pub use error::JoseError;
pub use jwk::{Jwks, PublicJwk};
pub use key::{JwtHeader, PrivateKey};
pub use keyset::KeySet;
pub use verify::{
    Validation, VerifiedJwt, decode_claims_unverified, decode_header_unverified, verify,
};
