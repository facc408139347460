//! Client authentication at the token and introspection endpoints.
//!
//! One function, `apply`, adds a registration's credentials to a request, so every grant
//! (authorization code, refresh, client credentials) and introspection authenticate the same way:
//!
//! | Registration | What is sent |
//! |---|---|
//! | public | `client_id` in the body |
//! | symmetric, `client_secret_basic` | `Authorization: Basic` with RFC 6749 §2.3.1 encoding (adapter may change it) |
//! | symmetric, `client_secret_post` | `client_id` and `client_secret` in the body |
//! | asymmetric (`private_key_jwt`) | a fresh RS384/ES384 assertion per request: `iss` = `sub` = client id, `aud` = the exact endpoint URL, `exp` = now + 4 min, unique `jti` |
//!
//! A fresh assertion per request matters: servers keep a `jti` replay cache, and the best-known
//! JavaScript client signs only the code exchange, so its asymmetric apps cannot refresh.

use base64::Engine as _;
use http::HeaderMap;
use http::header::{AUTHORIZATION, HeaderValue};
use smart_jose::ClientAssertion;

pub use crate::client_keys::ClientKeys;
use crate::config::{ClientAuth, ClientRegistration, SymmetricMethod};
use crate::error::TokenError;
use crate::protocol::BasicAuthEncoding;
use crate::quirks::VendorQuirks;
use crate::token::now_unix;

/// `client_assertion_type` for JWT client assertions (RFC 7523).
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

pub use crate::protocol::ASSERTION_LIFETIME;

/// Adds `registration`'s client authentication. `token_endpoint` is the assertion audience (SMART
/// fixes it to the token URL, also for introspection).
pub(crate) fn apply(
    registration: &ClientRegistration,
    quirks: &dyn VendorQuirks,
    token_endpoint: &str,
    form: &mut Vec<(String, String)>,
    headers: &mut HeaderMap,
) -> Result<(), TokenError> {
    match &registration.auth {
        ClientAuth::Public => {
            form.push(("client_id".to_owned(), registration.client_id.to_string()))
        }
        ClientAuth::ConfidentialSymmetric {
            client_secret,
            method: SymmetricMethod::ClientSecretBasic,
        } => {
            let encode = |s: &str| match quirks.policy().basic_auth_encoding {
                BasicAuthEncoding::FormUrlEncoded => {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
                }
                BasicAuthEncoding::Raw => s.to_owned(),
            };
            let credentials = format!(
                "{}:{}",
                encode(&registration.client_id),
                encode(client_secret.expose_secret())
            );
            let value = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(credentials)
            );
            let mut value =
                HeaderValue::from_str(&value).map_err(|_| TokenError::InvalidResponse {
                    status: 0,
                    detail: "the client credentials cannot be sent in a header".into(),
                })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        ClientAuth::ConfidentialSymmetric {
            client_secret,
            method: SymmetricMethod::ClientSecretPost,
        } => {
            form.push(("client_id".to_owned(), registration.client_id.to_string()));
            form.push((
                "client_secret".to_owned(),
                client_secret.expose_secret().to_owned(),
            ));
        }
        ClientAuth::ConfidentialAsymmetric { keys } => {
            let assertion = smart_jose::client_assertion(
                &keys.signing_key(),
                &ClientAssertion {
                    client_id: &registration.client_id,
                    audience: token_endpoint,
                    jku: keys.jku(),
                    lifetime: quirks.policy().assertion_lifetime,
                },
                now_unix(),
            )
            .map_err(|e| TokenError::ClientAuthentication(e.to_string()))?;
            form.push((
                "client_assertion_type".to_owned(),
                JWT_BEARER_ASSERTION.to_owned(),
            ));
            form.push(("client_assertion".to_owned(), assertion));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use smart_jose::{Algorithm, PrivateKey, Validation};

    use super::*;

    #[test]
    fn rotation_publishes_first_and_signs_after_the_grace_period() {
        let old = PrivateKey::generate(Algorithm::ES384).expect("key");
        let new = PrivateKey::generate(Algorithm::ES384).expect("key");
        let keys = ClientKeys::new(old.clone());
        keys.rotate(new.clone(), Duration::from_secs(3600));
        let kids: Vec<String> = keys
            .jwks()
            .keys
            .iter()
            .filter_map(|k| k.kid().map(str::to_owned))
            .collect();
        assert_eq!(kids.len(), 2, "the new key is published at once");
        assert_eq!(
            keys.signing_key().kid(),
            old.kid(),
            "but signs only after the grace period"
        );

        let immediate = ClientKeys::new(old.clone());
        immediate.rotate(new.clone(), Duration::ZERO);
        assert_eq!(immediate.signing_key().kid(), new.kid());
        immediate.retire(old.kid()).expect("retire the old key");
        assert_eq!(immediate.jwks().keys.len(), 1);
        assert!(
            immediate.retire(new.kid()).is_err(),
            "the signing key cannot be retired"
        );
    }

    #[test]
    fn asymmetric_authentication_adds_a_verifiable_assertion() {
        let key = PrivateKey::generate(Algorithm::ES384).expect("key");
        let keys = ClientKeys::new(key).with_jku("https://app.example/jwks.json");
        let registration = ClientRegistration::backend(
            "https://ehr.example/fhir",
            "svc",
            keys.clone(),
            Default::default(),
        );
        let mut form = Vec::new();
        let mut headers = HeaderMap::new();
        apply(
            &registration,
            &Generic,
            "https://ehr.example/token",
            &mut form,
            &mut headers,
        )
        .expect("apply");
        assert!(headers.get(AUTHORIZATION).is_none());
        assert!(
            !form
                .iter()
                .any(|(k, _)| k == "client_id" || k == "client_secret")
        );
        let assertion = &form
            .iter()
            .find(|(k, _)| k == "client_assertion")
            .expect("assertion")
            .1;
        let header = smart_jose::decode_header_unverified(assertion).expect("header");
        assert_eq!(header["jku"], "https://app.example/jwks.json");
        assert_eq!(header["typ"], "JWT");
        let verified = smart_jose::verify(
            assertion,
            &keys.jwks(),
            &Validation::client_assertion("svc", "https://ehr.example/token"),
        )
        .expect("verifies against the published JWKS");
        assert_eq!(verified.claim_str("sub"), Some("svc"));
        let exp = verified.claims["exp"].as_u64().expect("exp");
        let iat = verified.claims["iat"].as_u64().expect("iat");
        assert_eq!(exp - iat, 240);
    }

    #[derive(Debug)]
    struct Generic;
    impl VendorQuirks for Generic {
        fn name(&self) -> &str {
            "generic"
        }
    }
}
