//! `verify` must never panic, whatever it is given.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use smart_jose::{Algorithm, Jwks, PrivateKey, Validation, decode_header_unverified, verify};

fn keys() -> &'static [PrivateKey] {
    static KEYS: OnceLock<Vec<PrivateKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        vec![
            PrivateKey::generate(Algorithm::ES384).unwrap(),
            PrivateKey::generate(Algorithm::ES256).unwrap(),
            PrivateKey::generate_rsa(2048, Algorithm::RS256).unwrap(),
        ]
    })
}

fn jwks() -> &'static Jwks {
    static JWKS: OnceLock<Jwks> = OnceLock::new();
    JWKS.get_or_init(|| keys().iter().map(PrivateKey::public_jwk).collect())
}

fn validation() -> Validation {
    let mut v = Validation::new(&Algorithm::ALL);
    v.now = Some(1_700_000_000);
    v.issuer = Some("iss".into());
    v.audience = Some("aud".into());
    v.max_lifetime_from_now = Some(300);
    v
}

fn b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn verify_never_panics_on_arbitrary_strings(token in ".*") {
        let _ = verify(&token, jwks(), &validation());
        let _ = decode_header_unverified(&token);
    }

    #[test]
    fn verify_never_panics_on_jws_shaped_input(
        header in r#"\{("alg":"(ES384|ES256|RS256|none|HS256)")?(,"kid":"[a-z]{0,3}")?\}|.{0,40}"#,
        claims in r#"\{("exp":-?[0-9]{0,20}(\.[0-9]+)?)?(,"iss":"[a-z]{0,3}")?\}|.{0,40}"#,
        sig in proptest::collection::vec(any::<u8>(), 0..120),
        dots in 0usize..4,
    ) {
        let token = format!(
            "{}.{}.{}{}",
            b64(&header),
            b64(&claims),
            URL_SAFE_NO_PAD.encode(&sig),
            ".".repeat(dots)
        );
        let _ = verify(&token, jwks(), &validation());
    }

    /// Headers that select a real key, so arbitrary signatures and claims reach the
    /// signature check and the claim checks.
    #[test]
    fn verify_never_panics_with_a_real_kid(
        key_index in 0usize..3,
        alg in prop::sample::select(Algorithm::ALL.to_vec()),
        claims in r#"\{("exp":-?[0-9]{0,20}(\.[0-9]+)?)?(,"nbf":[0-9e.+-]{0,8})?(,"aud":(\[\]|"aud"|7|null))?\}|.{0,40}"#,
        sig in proptest::collection::vec(any::<u8>(), 0..300),
        resign in any::<bool>(),
    ) {
        let key = &keys()[key_index];
        let header = format!(r#"{{"alg":"{alg}","kid":"{}"}}"#, key.kid());
        let token = if resign {
            let claims = serde_json::from_str(&claims).unwrap_or(serde_json::Value::Null);
            match key.sign(&smart_jose::JwtHeader::default(), &claims) {
                Ok(token) => token,
                Err(_) => return Ok(()),
            }
        } else {
            format!("{}.{}.{}", b64(&header), b64(&claims), URL_SAFE_NO_PAD.encode(&sig))
        };
        let result = verify(&token, jwks(), &validation());
        if !resign {
            // Random bytes never make a valid signature.
            prop_assert!(result.is_err());
        }
    }
}
