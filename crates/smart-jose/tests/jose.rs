//! Behavioural tests for smart-jose. RSA keys are generated once per process and shared.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p384::elliptic_curve::Generate as _;
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use rsa::traits::{PrivateKeyParts as _, PublicKeyParts as _};
use serde_json::{Map, Value, json};
use smart_jose::{
    Algorithm, ClientAssertion, JoseError, Jwks, JwtHeader, KeySet, KeyType, PrivateKey, PublicJwk,
    Validation, client_assertion, decode_header_unverified, verify,
};

const NOW: u64 = 1_700_000_000;
const CLIENT: &str = "https://bili-monitor.example.com";
const TOKEN_URL: &str = "https://authorize.smarthealthit.org/token";

fn rng() -> rsa::rand_core::UnwrapErr<getrandom::SysRng> {
    rsa::rand_core::UnwrapErr(getrandom::SysRng)
}

/// A 2048-bit RSA key from the rsa crate, shared by the tests.
fn raw_rsa() -> &'static rsa::PrivateKey {
    static KEY: OnceLock<rsa::PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| rsa::PrivateKey::new(&mut rng(), 2048).unwrap())
}

/// `raw_rsa()` loaded as an RS384 key.
fn rs384() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let pem = raw_rsa().to_pkcs8_pem(LineEnding::LF).unwrap();
        PrivateKey::from_pem(&pem, None).unwrap()
    })
}

/// A second, different RSA key.
fn other_rsa() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate_rsa(2048, Algorithm::RS384).unwrap())
}

fn es384() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate(Algorithm::ES384).unwrap())
}

fn jwks_of(keys: &[&PrivateKey]) -> Jwks {
    Jwks::new(keys.iter().map(|k| k.public_jwk()).collect())
}

fn validation(algs: &[Algorithm]) -> Validation {
    let mut v = Validation::new(algs);
    v.now = Some(NOW);
    v
}

fn claims(exp: u64) -> Value {
    json!({ "iss": CLIENT, "sub": CLIENT, "aud": TOKEN_URL, "exp": exp, "iat": NOW, "jti": "j-1" })
}

fn sign(key: &PrivateKey, claims: &Value) -> String {
    key.sign(&JwtHeader::default(), claims).unwrap()
}

fn b64(json: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(json).unwrap())
}

fn part(token: &str, i: usize) -> Map<String, Value> {
    let bytes = URL_SAFE_NO_PAD
        .decode(token.split('.').nth(i).unwrap())
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

// ---------------------------------------------------------------------------------------
// Key ids, JWKs, algorithms

#[test]
fn rfc7638_example_thumbprint() {
    // RFC 7638 §3.1.
    let jwk: PublicJwk = serde_json::from_value(json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    }))
    .unwrap();
    assert_eq!(
        jwk.thumbprint().unwrap(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
    assert_eq!(jwk.kid(), Some("2011-04-29"));
    assert_eq!(jwk.key_type(), Some(KeyType::Rsa));
}

#[test]
fn thumbprint_needs_required_members() {
    let jwk = PublicJwk::from_map(
        json!({"kty": "EC", "crv": "P-384", "x": "AA"})
            .as_object()
            .unwrap()
            .clone(),
    );
    assert!(matches!(jwk.thumbprint(), Err(JoseError::Malformed(_))));
    let jwk = PublicJwk::from_map(
        json!({"kty": "OKP", "x": "AA"})
            .as_object()
            .unwrap()
            .clone(),
    );
    assert!(matches!(jwk.thumbprint(), Err(JoseError::Unsupported(_))));
}

#[test]
fn kid_is_thumbprint_of_public_jwk() {
    for key in [rs384(), es384()] {
        let jwk = key.public_jwk();
        assert_eq!(jwk.kid(), Some(key.kid()));
        assert_eq!(jwk.thumbprint().unwrap(), key.kid());
        assert_eq!(key.kid().len(), 43);
        assert_eq!(jwk.as_map()["alg"], key.algorithm().as_str());
        assert_eq!(jwk.as_map()["use"], "sig");
        assert_eq!(jwk.key_type(), Some(key.algorithm().key_type()));
    }
    let ec = es384().public_jwk();
    assert_eq!(ec.as_map()["kty"], "EC");
    assert_eq!(ec.as_map()["crv"], "P-384");
    for m in ["x", "y"] {
        let raw = URL_SAFE_NO_PAD
            .decode(ec.as_map()[m].as_str().unwrap())
            .unwrap();
        assert_eq!(raw.len(), 48, "{m} must be the full 48-byte coordinate");
    }
    let rsa = rs384().public_jwk();
    assert_eq!(rsa.as_map()["kty"], "RSA");
    assert_eq!(rsa.as_map()["e"], "AQAB");
}

#[test]
fn public_jwk_never_has_private_members() {
    for key in [rs384(), es384()] {
        let jwk = serde_json::to_value(key.public_jwk()).unwrap();
        for m in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(jwk.get(m).is_none(), "public JWK has {m}");
        }
    }
    // Deserializing a private JWK as a PublicJwk strips the private members.
    let parsed: PublicJwk = serde_json::from_value(json!({
        "kty": "RSA", "n": "AQAB", "e": "AQAB", "d": "secret", "p": "s", "q": "s",
        "dp": "s", "dq": "s", "qi": "s", "oth": [], "k": "s", "kid": "x"
    }))
    .unwrap();
    let out = serde_json::to_value(&parsed).unwrap();
    assert_eq!(
        out,
        json!({"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "x"})
    );
    // A JWKS too.
    let jwks: Jwks =
        serde_json::from_value(json!({"keys": [{"kty": "EC", "d": "secret"}]})).unwrap();
    assert_eq!(
        serde_json::to_value(&jwks).unwrap(),
        json!({"keys": [{"kty": "EC"}]})
    );
}

#[test]
fn debug_never_prints_key_material() {
    let key = rs384();
    let debug = format!("{key:?}");
    assert_eq!(
        debug,
        format!("PrivateKey {{ kid: {:?}, alg: RS384 }}", key.kid())
    );
    let n = key.public_jwk().as_map()["n"].as_str().unwrap().to_owned();
    assert!(!debug.contains(&n[..20]));
    let keyset = KeySet::new(es384().clone());
    let debug = format!("{keyset:?}");
    let pem = es384().to_pkcs8_pem();
    let body: String = pem.lines().nth(1).unwrap().chars().take(30).collect();
    assert!(!debug.contains(&body));
}

#[test]
fn algorithm_names_and_key_types() {
    for alg in Algorithm::ALL {
        assert_eq!(alg.to_string().parse::<Algorithm>().unwrap(), alg);
        assert_eq!(serde_json::to_value(alg).unwrap(), json!(alg.as_str()));
        assert_eq!(
            serde_json::from_value::<Algorithm>(json!(alg.as_str())).unwrap(),
            alg
        );
    }
    assert_eq!(Algorithm::RS384.to_string(), "RS384");
    assert_eq!(Algorithm::RS256.key_type(), KeyType::Rsa);
    assert_eq!(Algorithm::ES256.key_type(), KeyType::EcP256);
    assert_eq!(Algorithm::ES384.key_type(), KeyType::EcP384);
    for bad in ["none", "HS256", "rs384", "PS256", ""] {
        assert!(matches!(
            bad.parse::<Algorithm>(),
            Err(JoseError::UnsupportedAlgorithm(_))
        ));
    }
}

// ---------------------------------------------------------------------------------------
// Generation, loading, export

#[test]
fn generate_sign_verify_each_algorithm() {
    let rs384_3072 = PrivateKey::generate(Algorithm::RS384).unwrap();
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(rs384_3072.public_jwk().as_map()["n"].as_str().unwrap())
            .unwrap()
            .len()
            * 8,
        3072
    );
    let keys = [
        rs384_3072,
        PrivateKey::generate(Algorithm::ES384).unwrap(),
        PrivateKey::generate(Algorithm::ES256).unwrap(),
        PrivateKey::from_pem(&rs384().to_pkcs8_pem(), Some(Algorithm::RS256)).unwrap(),
        PrivateKey::from_pem(&rs384().to_pkcs8_pem(), Some(Algorithm::RS512)).unwrap(),
    ];
    let expected = [
        Algorithm::RS384,
        Algorithm::ES384,
        Algorithm::ES256,
        Algorithm::RS256,
        Algorithm::RS512,
    ];
    for (key, alg) in keys.iter().zip(expected) {
        assert_eq!(key.algorithm(), alg);
        let token = sign(key, &claims(NOW + 60));
        let header = decode_header_unverified(&token).unwrap();
        assert_eq!(header["alg"], alg.as_str());
        assert_eq!(header["kid"], key.kid());
        let verified = verify(&token, &jwks_of(&[key]), &validation(&[alg])).unwrap();
        assert_eq!(verified.algorithm(), Some(alg));
        assert_eq!(verified.kid(), Some(key.kid()));
        assert_eq!(verified.claim_str("iss"), Some(CLIENT));
        // The same key material under another algorithm is a different signature scheme.
        let wrong = Algorithm::ALL
            .into_iter()
            .find(|a| *a != alg && a.key_type() == alg.key_type());
        if let Some(wrong) = wrong {
            let mut jwk = key.public_jwk().into_map();
            jwk.remove("alg");
            let jwks = Jwks::new(vec![PublicJwk::from_map(jwk)]);
            // Re-label the header as the other algorithm: the signature must not verify.
            let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
            let mut h = part(&token, 0);
            h.insert("alg".into(), json!(wrong.as_str()));
            parts[0] = b64(&Value::Object(h));
            let relabelled = parts.join(".");
            assert!(matches!(
                verify(&relabelled, &jwks, &validation(&[wrong])),
                Err(JoseError::BadSignature)
            ));
        }
    }
}

#[test]
fn generate_rsa_refuses_weak_keys_and_wrong_algorithms() {
    assert_eq!(
        PrivateKey::generate_rsa(1024, Algorithm::RS384).unwrap_err(),
        JoseError::WeakKey { bits: 1024 }
    );
    assert_eq!(
        PrivateKey::generate_rsa(2048, Algorithm::ES384).unwrap_err(),
        JoseError::AlgorithmMismatch {
            alg: Algorithm::ES384,
            key: KeyType::Rsa
        }
    );
}

#[test]
fn pkcs8_pem_round_trip_keeps_kid() {
    for key in [rs384(), es384()] {
        let pem = key.to_pkcs8_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let again = PrivateKey::from_pem(&pem, None).unwrap();
        assert_eq!(again.kid(), key.kid());
        assert_eq!(again.algorithm(), key.algorithm());
        // It really is the same private key: a token it signs verifies with the original's JWK.
        let token = sign(&again, &claims(NOW + 60));
        verify(&token, &jwks_of(&[key]), &validation(&[key.algorithm()])).unwrap();
    }
    let es256 = PrivateKey::generate(Algorithm::ES256).unwrap();
    let again = PrivateKey::from_pem(&es256.to_pkcs8_pem(), None).unwrap();
    assert_eq!(
        (again.kid(), again.algorithm()),
        (es256.kid(), Algorithm::ES256)
    );
}

#[test]
fn pkcs1_rsa_pem_loads() {
    let pem = raw_rsa().to_pkcs1_pem(LineEnding::LF).unwrap();
    assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let key = PrivateKey::from_pem(&pem, None).unwrap();
    assert_eq!(key.algorithm(), Algorithm::RS384);
    assert_eq!(key.kid(), rs384().kid());
    let crlf = raw_rsa().to_pkcs1_pem(LineEnding::CRLF).unwrap();
    assert_eq!(
        PrivateKey::from_pem(&crlf, Some(Algorithm::RS256))
            .unwrap()
            .kid(),
        rs384().kid()
    );
}

#[test]
fn sec1_ec_pem_loads() {
    let secret = p384::SecretKey::generate();
    let sec1 = secret.to_sec1_pem(LineEnding::LF).unwrap();
    assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"));
    let from_sec1 = PrivateKey::from_pem(&sec1, None).unwrap();
    assert_eq!(from_sec1.algorithm(), Algorithm::ES384);
    let from_pkcs8 =
        PrivateKey::from_pem(&secret.to_pkcs8_pem(LineEnding::LF).unwrap(), None).unwrap();
    assert_eq!(from_sec1.kid(), from_pkcs8.kid());
    let token = sign(&from_sec1, &claims(NOW + 60));
    verify(
        &token,
        &jwks_of(&[&from_pkcs8]),
        &validation(&[Algorithm::ES384]),
    )
    .unwrap();

    let p256 = p256::SecretKey::generate();
    let key = PrivateKey::from_pem(&p256.to_sec1_pem(LineEnding::LF).unwrap(), None).unwrap();
    assert_eq!(key.algorithm(), Algorithm::ES256);
}

#[test]
fn rsa_1024_is_refused() {
    let weak = rsa::PrivateKey::new(&mut rng(), 1024).unwrap();
    let pkcs8 = weak.to_pkcs8_pem(LineEnding::LF).unwrap();
    let err = PrivateKey::from_pem(&pkcs8, None).unwrap_err();
    assert_eq!(err, JoseError::WeakKey { bits: 1024 });
    assert!(err.to_string().contains("2048"), "{err}");
    let pkcs1 = weak.to_pkcs1_pem(LineEnding::LF).unwrap();
    assert_eq!(
        PrivateKey::from_pem(&pkcs1, None).unwrap_err(),
        JoseError::WeakKey { bits: 1024 }
    );
    // And as a JWK, and as a verification key.
    let n = URL_SAFE_NO_PAD.encode(weak.n_bytes());
    let jwk = json!({"kty": "RSA", "n": n, "e": "AQAB", "d": URL_SAFE_NO_PAD.encode(weak.d().to_be_bytes())});
    assert_eq!(
        PrivateKey::from_jwk(&jwk).unwrap_err(),
        JoseError::WeakKey { bits: 1024 }
    );
    let jwks = Jwks::new(vec![PublicJwk::from_map(
        json!({"kty": "RSA", "n": n, "e": "AQAB", "kid": "weak"})
            .as_object()
            .unwrap()
            .clone(),
    )]);
    let token = format!(
        "{}.{}.AAAA",
        b64(&json!({"alg": "RS256", "kid": "weak"})),
        b64(&claims(NOW + 60))
    );
    assert_eq!(
        verify(&token, &jwks, &validation(&[Algorithm::RS256])).unwrap_err(),
        JoseError::WeakKey { bits: 1024 }
    );
}

#[test]
fn from_pem_checks_algorithm_and_input() {
    let pem = rs384().to_pkcs8_pem();
    assert_eq!(
        PrivateKey::from_pem(&pem, Some(Algorithm::ES384)).unwrap_err(),
        JoseError::AlgorithmMismatch {
            alg: Algorithm::ES384,
            key: KeyType::Rsa
        }
    );
    assert_eq!(
        PrivateKey::from_pem(&es384().to_pkcs8_pem(), Some(Algorithm::ES256)).unwrap_err(),
        JoseError::AlgorithmMismatch {
            alg: Algorithm::ES256,
            key: KeyType::EcP384
        }
    );
    assert!(matches!(
        PrivateKey::from_pem("not a pem", None),
        Err(JoseError::InvalidKey(_))
    ));
    let public = raw_rsa()
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    assert!(matches!(
        PrivateKey::from_pem(&public, None),
        Err(JoseError::InvalidKey(_))
    ));
    // Corrupt body: the message must not echo the key.
    let body_line = pem.lines().nth(3).unwrap().to_owned();
    let corrupt = pem.replace(&body_line, &"A".repeat(body_line.len()));
    let err = PrivateKey::from_pem(&corrupt, None).unwrap_err();
    assert!(matches!(err, JoseError::InvalidKey(_)), "{err:?}");
    assert!(!err.to_string().contains(&pem.lines().nth(1).unwrap()[..16]));
    let encrypted =
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n";
    assert!(matches!(
        PrivateKey::from_pem(encrypted, None),
        Err(JoseError::Unsupported(_))
    ));
}

#[test]
fn private_jwk_round_trip() {
    let raw = raw_rsa();
    let primes = raw.primes();
    let enc = |b: &rsa::BoxedUint| URL_SAFE_NO_PAD.encode(b.to_be_bytes_trimmed_vartime());
    let jwk = json!({
        "kty": "RSA",
        "kid": "ignored",
        "n": URL_SAFE_NO_PAD.encode(raw.n_bytes()),
        "e": URL_SAFE_NO_PAD.encode(raw.e_bytes()),
        "d": enc(raw.d()),
        "p": enc(primes[0].as_ref()),
        "q": enc(primes[1].as_ref()),
    });
    let key = PrivateKey::from_jwk(&jwk).unwrap();
    assert_eq!(key.kid(), rs384().kid());
    assert_eq!(key.algorithm(), Algorithm::RS384);
    let mut with_alg = jwk.clone();
    with_alg["alg"] = json!("RS256");
    assert_eq!(
        PrivateKey::from_jwk(&with_alg).unwrap().algorithm(),
        Algorithm::RS256
    );
    with_alg["alg"] = json!("ES384");
    assert!(matches!(
        PrivateKey::from_jwk(&with_alg),
        Err(JoseError::AlgorithmMismatch { .. })
    ));
    with_alg["alg"] = json!("HS256");
    assert!(matches!(
        PrivateKey::from_jwk(&with_alg),
        Err(JoseError::UnsupportedAlgorithm(_))
    ));
    let mut wrong_n = jwk.clone();
    wrong_n["e"] = json!("AQAC");
    assert!(matches!(
        PrivateKey::from_jwk(&wrong_n),
        Err(JoseError::InvalidKey(_))
    ));

    // EC P-384: d plus the public members.
    let secret = p384::SecretKey::generate();
    let reference =
        PrivateKey::from_pem(&secret.to_pkcs8_pem(LineEnding::LF).unwrap(), None).unwrap();
    let mut ec = reference.public_jwk().into_map();
    ec.insert("d".into(), json!(URL_SAFE_NO_PAD.encode(secret.to_bytes())));
    ec.insert("kid".into(), json!("ignored"));
    let key = PrivateKey::from_jwk(&Value::Object(ec.clone())).unwrap();
    assert_eq!(
        (key.kid(), key.algorithm()),
        (reference.kid(), Algorithm::ES384)
    );
    // x that does not belong to d is refused.
    ec.insert("x".into(), es384().public_jwk().as_map()["x"].clone());
    assert!(matches!(
        PrivateKey::from_jwk(&Value::Object(ec)),
        Err(JoseError::InvalidKey(_))
    ));
    assert!(matches!(
        PrivateKey::from_jwk(&json!({"kty": "EC", "crv": "P-521", "d": "AA"})),
        Err(JoseError::Unsupported(_))
    ));
    assert!(matches!(
        PrivateKey::from_jwk(&json!({"kty": "oct", "k": "AA"})),
        Err(JoseError::Unsupported(_))
    ));
    assert!(matches!(
        PrivateKey::from_jwk(&json!([1])),
        Err(JoseError::InvalidKey(_))
    ));
}

// ---------------------------------------------------------------------------------------
// Client assertions

#[test]
fn client_assertion_claims_and_header() {
    for key in [rs384(), es384()] {
        let token = client_assertion(key, &ClientAssertion::new(CLIENT, TOKEN_URL), NOW).unwrap();
        let header = part(&token, 0);
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["alg"], key.algorithm().as_str());
        assert_eq!(header["kid"], key.kid());
        assert!(!header.contains_key("jku"));
        assert_eq!(header.len(), 3);
        let claims = part(&token, 1);
        assert_eq!(claims["iss"], CLIENT);
        assert_eq!(claims["sub"], CLIENT);
        assert_eq!(claims["aud"], TOKEN_URL);
        assert_eq!(claims["iat"], NOW);
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            240
        );
        let jti = claims["jti"].as_str().unwrap();
        assert!(jti.len() <= 151);
        assert_eq!(URL_SAFE_NO_PAD.decode(jti).unwrap().len(), 32);

        // The server-side validation accepts it.
        let mut v = Validation::client_assertion(CLIENT, TOKEN_URL);
        v.now = Some(NOW + 10);
        verify(&token, &jwks_of(&[key]), &v).unwrap();
    }
    let with_jku = ClientAssertion {
        jku: Some("https://bili-monitor.example.com/jwks.json"),
        ..ClientAssertion::new(CLIENT, TOKEN_URL)
    };
    let token = client_assertion(es384(), &with_jku, NOW).unwrap();
    assert_eq!(
        part(&token, 0)["jku"],
        "https://bili-monitor.example.com/jwks.json"
    );
}

#[test]
fn client_assertion_jti_is_unique() {
    let claims = ClientAssertion::new(CLIENT, TOKEN_URL);
    let jtis: HashSet<String> = (0..100)
        .map(|_| {
            let token = client_assertion(es384(), &claims, NOW).unwrap();
            part(&token, 1)["jti"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(jtis.len(), 100);
    assert!(jtis.iter().all(|j| j.len() == 43));
}

#[test]
fn client_assertion_lifetime_is_bounded() {
    let mut claims = ClientAssertion::new(CLIENT, TOKEN_URL);
    claims.lifetime = Duration::from_secs(301);
    assert_eq!(
        client_assertion(es384(), &claims, NOW).unwrap_err(),
        JoseError::LifetimeTooLong { max: 300 }
    );
    claims.lifetime = Duration::from_secs(300);
    let token = client_assertion(es384(), &claims, NOW).unwrap();
    assert_eq!(part(&token, 1)["exp"], NOW + 300);
    claims.lifetime = Duration::ZERO;
    assert!(matches!(
        client_assertion(es384(), &claims, NOW),
        Err(JoseError::Malformed(_))
    ));
}

// ---------------------------------------------------------------------------------------
// Verification failures

#[test]
fn rejects_alg_none() {
    let kid = rs384().kid();
    let jwks = jwks_of(&[rs384()]);
    for sig in ["", "AAAA"] {
        let token = format!(
            "{}.{}.{sig}",
            b64(&json!({"alg": "none", "kid": kid})),
            b64(&claims(NOW + 60))
        );
        assert_eq!(
            verify(&token, &jwks, &validation(&Algorithm::ALL)).unwrap_err(),
            JoseError::UnsupportedAlgorithm("none".into())
        );
    }
    let token = format!(
        "{}.{}.",
        b64(&json!({"alg": "None"})),
        b64(&claims(NOW + 60))
    );
    assert!(matches!(
        verify(&token, &jwks, &validation(&Algorithm::ALL)),
        Err(JoseError::UnsupportedAlgorithm(_))
    ));
}

#[test]
fn rejects_hmac_signed_with_the_public_key() {
    let key = rs384();
    let jwks = jwks_of(&[key]);
    let jwk_bytes = serde_json::to_vec(&key.public_jwk()).unwrap();
    let pem_bytes = raw_rsa()
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap()
        .into_bytes();
    let n_bytes = URL_SAFE_NO_PAD
        .decode(key.public_jwk().as_map()["n"].as_str().unwrap())
        .unwrap();
    for secret in [jwk_bytes, pem_bytes, n_bytes] {
        for alg in [
            jsonwebtoken::Algorithm::HS256,
            jsonwebtoken::Algorithm::HS384,
        ] {
            let mut header = jsonwebtoken::Header::new(alg);
            header.kid = Some(key.kid().to_owned());
            let token = jsonwebtoken::encode(
                &header,
                &claims(NOW + 60),
                &jsonwebtoken::EncodingKey::from_secret(&secret).unwrap(),
            )
            .unwrap();
            let err = verify(&token, &jwks, &validation(&Algorithm::ALL)).unwrap_err();
            assert!(
                matches!(err, JoseError::UnsupportedAlgorithm(ref a) if a.starts_with("HS")),
                "{err:?}"
            );
        }
    }
}

#[test]
fn rejects_algorithm_not_in_validation() {
    let token = sign(rs384(), &claims(NOW + 60));
    assert_eq!(
        verify(
            &token,
            &jwks_of(&[rs384()]),
            &validation(&[Algorithm::RS256, Algorithm::ES384])
        )
        .unwrap_err(),
        JoseError::UnsupportedAlgorithm("RS384".into())
    );
}

#[test]
fn rejects_token_signed_by_another_key_with_same_kid() {
    for (genuine, attacker) in [
        (rs384(), other_rsa()),
        (es384(), &PrivateKey::generate(Algorithm::ES384).unwrap()),
    ] {
        let alg = genuine.algorithm();
        // The attacker's token claims the kid of the genuine key, whose JWK is the only one
        // published under that kid.
        let forged = sign(attacker, &claims(NOW + 60));
        let mut jwk = genuine.public_jwk().into_map();
        jwk.insert("kid".into(), json!(attacker.kid()));
        let jwks = Jwks::new(vec![PublicJwk::from_map(jwk)]);
        assert_eq!(
            verify(&forged, &jwks, &validation(&[alg])).unwrap_err(),
            JoseError::BadSignature
        );
    }
    // A genuine token whose claims were altered.
    let token = sign(rs384(), &claims(NOW + 60));
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = b64(&json!({"iss": "evil", "exp": NOW + 60}));
    assert_eq!(
        verify(
            &parts.join("."),
            &jwks_of(&[rs384()]),
            &validation(&[Algorithm::RS384])
        )
        .unwrap_err(),
        JoseError::BadSignature
    );
    // Splicing another key's signature.
    let other = sign(other_rsa(), &claims(NOW + 60));
    let spliced = format!(
        "{}.{}",
        &token[..token.rfind('.').unwrap()],
        other.rsplit('.').next().unwrap()
    );
    assert_eq!(
        verify(
            &spliced,
            &jwks_of(&[rs384()]),
            &validation(&[Algorithm::RS384])
        )
        .unwrap_err(),
        JoseError::BadSignature
    );
}

#[test]
fn rejects_unknown_kid_and_wrong_key_type() {
    let token = sign(rs384(), &claims(NOW + 60));
    assert_eq!(
        verify(
            &token,
            &jwks_of(&[other_rsa(), es384()]),
            &validation(&[Algorithm::RS384])
        )
        .unwrap_err(),
        JoseError::UnknownKey {
            kid: Some(rs384().kid().to_owned())
        }
    );
    // The kid matches, but it is an EC key and the token says RS384.
    let mut jwk = es384().public_jwk().into_map();
    jwk.insert("kid".into(), json!(rs384().kid()));
    assert!(matches!(
        verify(
            &token,
            &Jwks::new(vec![PublicJwk::from_map(jwk)]),
            &validation(&[Algorithm::RS384])
        ),
        Err(JoseError::UnknownKey { .. })
    ));
    assert!(matches!(
        verify(&token, &Jwks::default(), &validation(&[Algorithm::RS384])),
        Err(JoseError::UnknownKey { .. })
    ));
}

#[test]
fn time_checks() {
    let jwks = jwks_of(&[es384()]);
    let v = validation(&[Algorithm::ES384]);
    // exp passed, beyond the 60 s leeway.
    let token = sign(es384(), &claims(NOW - 61));
    assert_eq!(verify(&token, &jwks, &v).unwrap_err(), JoseError::Expired);
    // Within the leeway it is still accepted.
    let token = sign(es384(), &claims(NOW - 30));
    verify(&token, &jwks, &v).unwrap();
    let strict = Validation {
        leeway: 0,
        ..v.clone()
    };
    assert_eq!(
        verify(&token, &jwks, &strict).unwrap_err(),
        JoseError::Expired
    );
    // nbf / iat in the future.
    let mut c = claims(NOW + 600);
    c["nbf"] = json!(NOW + 120);
    assert_eq!(
        verify(&sign(es384(), &c), &jwks, &v).unwrap_err(),
        JoseError::NotYetValid
    );
    let mut c = claims(NOW + 600);
    c["iat"] = json!(NOW + 120);
    assert_eq!(
        verify(&sign(es384(), &c), &jwks, &v).unwrap_err(),
        JoseError::NotYetValid
    );
    // exp too far ahead for an assertion.
    let long = Validation {
        max_lifetime_from_now: Some(300),
        ..v.clone()
    };
    let token = sign(es384(), &claims(NOW + 3600));
    assert_eq!(
        verify(&token, &jwks, &long).unwrap_err(),
        JoseError::LifetimeTooLong { max: 300 }
    );
    verify(&token, &jwks, &v).unwrap();
    verify(&sign(es384(), &claims(NOW + 300)), &jwks, &long).unwrap();
    // exp that is not a number.
    let mut c = claims(NOW + 60);
    c["exp"] = json!("tomorrow");
    assert!(matches!(
        verify(&sign(es384(), &c), &jwks, &v),
        Err(JoseError::Malformed(_))
    ));
}

#[test]
fn issuer_audience_and_required_claims() {
    let jwks = jwks_of(&[es384()]);
    let token = sign(es384(), &claims(NOW + 60));
    let mut v = validation(&[Algorithm::ES384]);
    v.issuer = Some("https://other.example.com".into());
    assert_eq!(
        verify(&token, &jwks, &v).unwrap_err(),
        JoseError::WrongIssuer {
            expected: "https://other.example.com".into(),
            found: Some(CLIENT.into())
        }
    );
    v.issuer = Some(CLIENT.into());
    v.audience = Some("https://other.example.com/token".into());
    assert_eq!(
        verify(&token, &jwks, &v).unwrap_err(),
        JoseError::WrongAudience {
            expected: "https://other.example.com/token".into()
        }
    );
    v.audience = Some(TOKEN_URL.into());
    verify(&token, &jwks, &v).unwrap();
    // aud as an array.
    let mut c = claims(NOW + 60);
    c["aud"] = json!(["a", TOKEN_URL]);
    verify(&sign(es384(), &c), &jwks, &v).unwrap();
    c["aud"] = json!(["a", "b"]);
    assert!(matches!(
        verify(&sign(es384(), &c), &jwks, &v),
        Err(JoseError::WrongAudience { .. })
    ));
    // Required claims.
    let mut c = claims(NOW + 60);
    c.as_object_mut().unwrap().remove("jti");
    v.required_claims = vec!["exp".into(), "jti".into()];
    assert_eq!(
        verify(&sign(es384(), &c), &jwks, &v).unwrap_err(),
        JoseError::MissingClaim("jti".into())
    );
    let mut c = claims(NOW + 60);
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        verify(&sign(es384(), &c), &jwks, &v).unwrap_err(),
        JoseError::MissingClaim("exp".into())
    );
    // Issuer missing entirely.
    let mut c = claims(NOW + 60);
    c.as_object_mut().unwrap().remove("iss");
    assert_eq!(
        verify(&sign(es384(), &c), &jwks, &v).unwrap_err(),
        JoseError::WrongIssuer {
            expected: CLIENT.into(),
            found: None
        }
    );
}

#[test]
fn key_selection_without_kid() {
    let strip = |k: &PrivateKey| {
        let mut m = k.public_jwk().into_map();
        m.remove("kid");
        PublicJwk::from_map(m)
    };
    let two = Jwks::new(vec![strip(rs384()), strip(other_rsa()), strip(es384())]);
    assert_eq!(
        two.select(None, Algorithm::RS384).unwrap_err(),
        JoseError::AmbiguousKey { kid: None }
    );
    // Through verify: a header without kid.
    let token = format!(
        "{}.{}.AAAA",
        b64(&json!({"alg": "RS384"})),
        b64(&claims(NOW + 60))
    );
    assert_eq!(
        verify(&token, &two, &validation(&[Algorithm::RS384])).unwrap_err(),
        JoseError::AmbiguousKey { kid: None }
    );
    // With one RSA key (and an EC key) the RSA key is chosen.
    let one = Jwks::new(vec![strip(rs384()), strip(es384())]);
    assert_eq!(one.select(None, Algorithm::RS384).unwrap(), &strip(rs384()));
    assert_eq!(one.select(None, Algorithm::ES384).unwrap(), &strip(es384()));
    assert!(matches!(
        one.select(None, Algorithm::ES256),
        Err(JoseError::UnknownKey { kid: None })
    ));
    // Same kid twice is ambiguous.
    let dup = Jwks::new(vec![rs384().public_jwk(), rs384().public_jwk()]);
    assert!(matches!(
        dup.select(Some(rs384().kid()), Algorithm::RS384),
        Err(JoseError::AmbiguousKey { .. })
    ));
    assert_eq!(dup.find(rs384().kid()).len(), 2);
    // A JWK whose alg member names another algorithm is not used.
    let jwks = jwks_of(&[rs384()]);
    assert!(matches!(
        jwks.select(Some(rs384().kid()), Algorithm::RS256),
        Err(JoseError::UnknownKey { .. })
    ));
}

#[test]
fn malformed_tokens() {
    let jwks = jwks_of(&[es384()]);
    let v = validation(&[Algorithm::ES384]);
    for bad in [
        "",
        "a",
        "a.b",
        "a.b.c.d",
        "a.b.c",
        "e30.e30.",
        "!!.e30.AA",
        "W10.e30.AA",
    ] {
        assert!(
            matches!(verify(bad, &jwks, &v), Err(JoseError::Malformed(_))),
            "{bad}"
        );
    }
    let header_no_alg = format!("{}.e30.AA", b64(&json!({"kid": "x"})));
    assert!(matches!(
        verify(&header_no_alg, &jwks, &v),
        Err(JoseError::Malformed(_))
    ));
    let crit = format!(
        "{}.e30.AA",
        b64(&json!({"alg": "ES384", "crit": ["b64"], "b64": false}))
    );
    assert!(matches!(
        verify(&crit, &jwks, &v),
        Err(JoseError::Unsupported(_))
    ));
    let huge = "a".repeat(70_000);
    assert!(matches!(
        verify(&huge, &jwks, &v),
        Err(JoseError::Malformed(_))
    ));
    // Error messages never contain the token.
    let token = sign(es384(), &claims(NOW - 3600));
    let err = verify(&token, &jwks, &v).unwrap_err();
    assert!(!err.to_string().contains(token.split('.').nth(2).unwrap()));
    assert!(decode_header_unverified("x.y").is_err());
    assert_eq!(
        decode_header_unverified(&token).unwrap()["kid"],
        es384().kid()
    );
}

// ---------------------------------------------------------------------------------------
// Rotation

#[test]
fn keyset_rotation() {
    let old = es384().clone();
    let new = PrivateKey::generate(Algorithm::ES384).unwrap();
    let mut set = KeySet::new(old.clone());
    assert_eq!(set.signing_key(NOW).kid(), old.kid());
    assert_eq!(set.jwks().keys.len(), 1);

    set.rotate(new.clone(), Duration::from_secs(3600), NOW);
    let kids: Vec<_> = set
        .jwks()
        .keys
        .iter()
        .map(|k| k.kid().unwrap().to_owned())
        .collect();
    assert_eq!(kids, vec![old.kid().to_owned(), new.kid().to_owned()]);
    assert_eq!(set.keys().count(), 2);
    assert_eq!(set.signing_key(NOW).kid(), old.kid());
    assert_eq!(set.signing_key(NOW + 3599).kid(), old.kid());
    assert_eq!(set.signing_key(NOW + 3600).kid(), new.kid());
    assert_eq!(set.signing_key(NOW + 100_000).kid(), new.kid());

    // Tokens from both keys verify against the published JWKS during the overlap.
    let jwks = set.jwks();
    for key in [set.signing_key(NOW), set.signing_key(NOW + 3600)] {
        verify(
            &sign(key, &claims(NOW + 60)),
            &jwks,
            &validation(&[Algorithm::ES384]),
        )
        .unwrap();
    }

    // The signing key cannot be retired; the old one can.
    assert!(matches!(
        set.retire(new.kid()),
        Err(JoseError::Unsupported(_))
    ));
    assert!(matches!(
        set.retire("no-such-kid"),
        Err(JoseError::UnknownKey { .. })
    ));
    set.retire(old.kid()).unwrap();
    assert_eq!(set.jwks().keys.len(), 1);
    assert_eq!(set.jwks().keys[0].kid(), Some(new.kid()));
    assert_eq!(set.signing_key(NOW + 3600).kid(), new.kid());
    assert!(matches!(
        set.retire(new.kid()),
        Err(JoseError::Unsupported(_))
    ));

    // A lone key cannot be retired either.
    let mut single = KeySet::new(old.clone());
    assert!(single.retire(old.kid()).is_err());
    assert_eq!(single.jwks().keys.len(), 1);
}
