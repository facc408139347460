//! Private signing keys: generation, PEM and JWK import, PKCS#8 export, JWS signing.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::elliptic_curve::Generate as _;
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _};
use rsa::pkcs8::der::{Decode as _, SecretDocument};
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding, ObjectIdentifier};
use rsa::traits::PublicKeyParts as _;
use serde::Serialize;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::jwk::{MIN_RSA_BITS, bit_length};
use crate::{Algorithm, JoseError, KeyType, PublicJwk};

/// Largest RSA modulus we generate or load (the rsa crate's own limit).
const MAX_RSA_BITS: usize = 8192;

const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// The parsed secret key. Every variant zeroizes its secret values on drop.
#[derive(Clone)]
enum Secret {
    Rsa(Box<rsa::PrivateKey>),
    P256(p256::SecretKey),
    P384(p384::SecretKey),
}

impl Secret {
    fn key_type(&self) -> KeyType {
        match self {
            Secret::Rsa(_) => KeyType::Rsa,
            Secret::P256(_) => KeyType::EcP256,
            Secret::P384(_) => KeyType::EcP384,
        }
    }
}

/// A private signing key (RSA 2048–8192 bits, EC P-256 or EC P-384) bound to one
/// [`Algorithm`], with its RFC 7638 thumbprint as `kid`.
///
/// Key material is never printed: `Debug` shows `PrivateKey { kid: "...", alg: RS384 }`.
/// All copies of secret values (the parsed key and the DER handed to jsonwebtoken) are
/// zeroized when the key is dropped.
#[derive(Clone)]
pub struct PrivateKey {
    alg: Algorithm,
    kid: String,
    secret: Secret,
    /// PKCS#1 DER (RSA) or PKCS#8 DER (EC), as jsonwebtoken wants it; zeroized on drop.
    encoding: jsonwebtoken::EncodingKey,
    public: PublicJwk,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}

/// Header parameters chosen by the caller when signing; `alg` and `kid` always come from
/// the [`PrivateKey`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JwtHeader {
    /// `typ`, e.g. `"JWT"` (omitted when `None`).
    pub typ: Option<String>,
    /// `jku`, the URL of the signer's JWKS (omitted when `None`).
    pub jku: Option<String>,
}

#[derive(Serialize)]
struct WireHeader<'a> {
    alg: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    typ: Option<&'a str>,
    kid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    jku: Option<&'a str>,
}

fn sys_rng() -> rsa::rand_core::UnwrapErr<getrandom::SysRng> {
    rsa::rand_core::UnwrapErr(getrandom::SysRng)
}

impl PrivateKey {
    /// Generates a new key for `alg`: RSA 3072 bits for `RS*`, P-256 for `ES256`, P-384 for
    /// `ES384`. RSA generation takes a second or more.
    ///
    /// # Errors
    /// [`JoseError::Signing`] if the operating system's random number generator fails.
    pub fn generate(alg: Algorithm) -> Result<PrivateKey, JoseError> {
        match alg.key_type() {
            KeyType::Rsa => PrivateKey::generate_rsa(rsa::PrivateKey::DEFAULT_BITS, alg),
            KeyType::EcP256 => {
                let key = p256::SecretKey::try_generate()
                    .map_err(|e| JoseError::Signing(format!("EC key generation failed: {e}")))?;
                PrivateKey::from_secret(Secret::P256(key), alg)
            }
            KeyType::EcP384 => {
                let key = p384::SecretKey::try_generate()
                    .map_err(|e| JoseError::Signing(format!("EC key generation failed: {e}")))?;
                PrivateKey::from_secret(Secret::P384(key), alg)
            }
        }
    }

    /// Generates an RSA key of `bits` bits (2048–8192) for an `RS*` algorithm.
    ///
    /// # Errors
    /// [`JoseError::WeakKey`] below 2048 bits, [`JoseError::Unsupported`] above 8192,
    /// [`JoseError::AlgorithmMismatch`] when `alg` is not an RSA algorithm.
    pub fn generate_rsa(bits: usize, alg: Algorithm) -> Result<PrivateKey, JoseError> {
        if alg.key_type() != KeyType::Rsa {
            return Err(JoseError::AlgorithmMismatch {
                alg,
                key: KeyType::Rsa,
            });
        }
        if bits < MIN_RSA_BITS {
            return Err(JoseError::WeakKey { bits });
        }
        if bits > MAX_RSA_BITS {
            return Err(JoseError::Unsupported(format!(
                "RSA keys of {bits} bits: use at most {MAX_RSA_BITS}"
            )));
        }
        let key = rsa::PrivateKey::new(&mut sys_rng(), bits)
            .map_err(|e| JoseError::Signing(format!("RSA key generation failed: {e}")))?;
        PrivateKey::from_secret(Secret::Rsa(Box::new(key)), alg)
    }

    /// Loads an unencrypted private key from PEM: PKCS#8 (`PRIVATE KEY`, RSA, P-256 or
    /// P-384), PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`, P-256 or P-384).
    ///
    /// `alg` defaults to `RS384` for RSA, `ES384` for P-384 and `ES256` for P-256.
    ///
    /// # Errors
    /// [`JoseError::InvalidKey`] for unreadable input, [`JoseError::Unsupported`] for
    /// encrypted keys and other key types, [`JoseError::WeakKey`] for RSA keys below 2048 bits,
    /// [`JoseError::AlgorithmMismatch`] when `alg` does not fit the key.
    pub fn from_pem(pem: &str, alg: Option<Algorithm>) -> Result<PrivateKey, JoseError> {
        let (label, doc) = SecretDocument::from_pem(pem.trim()).map_err(|_| {
            JoseError::InvalidKey(
                "not a PEM document: expected -----BEGIN PRIVATE KEY----- (PKCS#8), RSA PRIVATE KEY or EC PRIVATE KEY".into(),
            )
        })?;
        let der = doc.as_bytes();
        let secret = match label {
            "PRIVATE KEY" => secret_from_pkcs8(der)?,
            "RSA PRIVATE KEY" => rsa_from_pkcs1(der)?,
            "EC PRIVATE KEY" => {
                if let Ok(key) = p384::SecretKey::from_sec1_der(der) {
                    Secret::P384(key)
                } else if let Ok(key) = p256::SecretKey::from_sec1_der(der) {
                    Secret::P256(key)
                } else {
                    return Err(JoseError::InvalidKey(
                        "EC PRIVATE KEY is not a valid SEC1 key on P-256 or P-384".into(),
                    ));
                }
            }
            "ENCRYPTED PRIVATE KEY" => {
                return Err(JoseError::Unsupported(
                    "encrypted PKCS#8 keys: decrypt the key first (e.g. `openssl pkcs8 -in key.pem -nocrypt`)".into(),
                ));
            }
            other => {
                return Err(JoseError::InvalidKey(format!(
                    "PEM label {:?} is not a private key: expected PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY",
                    crate::error::shorten(other, 32)
                )));
            }
        };
        let alg = alg.unwrap_or_else(|| secret.key_type().default_algorithm());
        PrivateKey::from_secret(secret, alg)
    }

    /// Loads a private JWK: RSA (`n`, `e`, `d`, and `p`, `q`; `dp`, `dq`, `qi` are
    /// recomputed) or EC P-256/P-384 (`crv`, `x`, `y`, `d`).
    ///
    /// The `alg` member is used if present (it must fit the key), otherwise the default for
    /// the key type. The `kid` member is ignored: the key id is always the RFC 7638
    /// thumbprint.
    ///
    /// # Errors
    /// [`JoseError::InvalidKey`] for missing or inconsistent members,
    /// [`JoseError::WeakKey`], [`JoseError::AlgorithmMismatch`],
    /// [`JoseError::UnsupportedAlgorithm`] for an unknown `alg`, [`JoseError::Unsupported`]
    /// for other key types.
    pub fn from_jwk(jwk: &Value) -> Result<PrivateKey, JoseError> {
        let obj = jwk
            .as_object()
            .ok_or_else(|| JoseError::InvalidKey("a JWK must be a JSON object".into()))?;
        let text = |name: &str| obj.get(name).and_then(Value::as_str);
        let bytes = |name: &str| -> Result<Zeroizing<Vec<u8>>, JoseError> {
            let s = text(name).ok_or_else(|| {
                JoseError::InvalidKey(format!("private JWK has no string {name:?} member"))
            })?;
            URL_SAFE_NO_PAD
                .decode(s)
                .map(Zeroizing::new)
                .map_err(|_| JoseError::InvalidKey(format!("JWK member {name:?} is not base64url")))
        };
        let secret = match (text("kty"), text("crv")) {
            (Some("RSA"), _) => {
                let n = bytes("n")?;
                let bits = bit_length(&n);
                if bits < MIN_RSA_BITS {
                    return Err(JoseError::WeakKey { bits });
                }
                if bits > MAX_RSA_BITS {
                    return Err(JoseError::Unsupported(format!(
                        "RSA keys of {bits} bits: use at most {MAX_RSA_BITS}"
                    )));
                }
                let precision = u32::try_from(n.len() * 8)
                    .map_err(|_| JoseError::InvalidKey("RSA modulus is too large".into()))?;
                let uint = |b: &[u8]| {
                    rsa::BoxedUint::from_be_slice(b, precision).map_err(|_| {
                        JoseError::InvalidKey("RSA JWK member is larger than the modulus".into())
                    })
                };
                let e = bytes("e")?;
                let d = bytes("d")?;
                let primes = match (obj.contains_key("p"), obj.contains_key("q")) {
                    (true, true) => vec![uint(&bytes("p")?)?, uint(&bytes("q")?)?],
                    (false, false) => Vec::new(),
                    _ => {
                        return Err(JoseError::InvalidKey(
                            "RSA JWK has only one of \"p\" and \"q\": give both or neither".into(),
                        ));
                    }
                };
                if obj.contains_key("oth") {
                    return Err(JoseError::Unsupported(
                        "multi-prime RSA keys (\"oth\" member)".into(),
                    ));
                }
                let key = rsa::PrivateKey::from_components(uint(&n)?, uint(&e)?, uint(&d)?, primes)
                    .map_err(|_| {
                        JoseError::InvalidKey(
                            "RSA JWK members do not form a valid key (check n, e, d, p, q)".into(),
                        )
                    })?;
                Secret::Rsa(Box::new(key))
            }
            (Some("EC"), Some("P-384")) => {
                Secret::P384(p384::SecretKey::from_slice(&bytes("d")?).map_err(|_| {
                    JoseError::InvalidKey("EC JWK \"d\" is not a valid P-384 scalar".into())
                })?)
            }
            (Some("EC"), Some("P-256")) => {
                Secret::P256(p256::SecretKey::from_slice(&bytes("d")?).map_err(|_| {
                    JoseError::InvalidKey("EC JWK \"d\" is not a valid P-256 scalar".into())
                })?)
            }
            (Some("EC"), crv) => {
                return Err(JoseError::Unsupported(format!(
                    "EC curve {:?}: only P-256 and P-384 are supported",
                    crv.map(|c| crate::error::shorten(c, 16))
                )));
            }
            (Some(kty), _) => {
                return Err(JoseError::Unsupported(format!(
                    "JWK kty {:?}: only RSA and EC private keys are supported",
                    crate::error::shorten(kty, 16)
                )));
            }
            (None, _) => {
                return Err(JoseError::InvalidKey(
                    "JWK has no string \"kty\" member".into(),
                ));
            }
        };
        let alg = match text("alg") {
            Some(a) => a.parse()?,
            None => secret.key_type().default_algorithm(),
        };
        let key = PrivateKey::from_secret(secret, alg)?;
        // The public members, when given, must belong to the private ones.
        for member in ["n", "e", "x", "y"] {
            if let (Some(given), Some(derived)) = (obj.get(member), key.public.as_map().get(member))
                && given != derived
            {
                return Err(JoseError::InvalidKey(format!(
                    "JWK member {member:?} does not match the private key"
                )));
            }
        }
        Ok(key)
    }

    /// Exports the key as unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, LF line
    /// endings). The string is wrapped in [`Zeroizing`] so it is wiped when dropped; it
    /// dereferences to `str` and can be passed to [`PrivateKey::from_pem`] as `&pem`.
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        let pem = match &self.secret {
            Secret::Rsa(key) => key.to_pkcs8_pem(LineEnding::LF),
            Secret::P256(key) => key.to_pkcs8_pem(LineEnding::LF),
            Secret::P384(key) => key.to_pkcs8_pem(LineEnding::LF),
        };
        // Encoding a key we already hold in memory cannot fail short of allocation failure.
        pem.unwrap_or_else(|_| Zeroizing::new(String::new()))
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The type of this key.
    pub fn key_type(&self) -> KeyType {
        self.secret.key_type()
    }

    /// The key id: the RFC 7638 JWK thumbprint (SHA-256, base64url without padding) of the
    /// public key. It depends only on the public key, so the same key always gets the same
    /// `kid`, whatever format it was loaded from.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWK to publish: `kty`, `kid`, `alg`, `use: "sig"`, and `n`/`e` or
    /// `crv`/`x`/`y`.
    pub fn public_jwk(&self) -> PublicJwk {
        self.public.clone()
    }

    /// Signs `claims` (a JSON object) as a compact JWS. The header carries `alg` and `kid`
    /// from this key and `typ`/`jku` from `header`.
    ///
    /// # Errors
    /// [`JoseError::Malformed`] when `claims` is not a JSON object, [`JoseError::Signing`]
    /// if the backend fails.
    pub fn sign(&self, header: &JwtHeader, claims: &Value) -> Result<String, JoseError> {
        if !claims.is_object() {
            return Err(JoseError::Malformed(
                "JWT claims must be a JSON object".into(),
            ));
        }
        let wire = WireHeader {
            alg: self.alg.as_str(),
            typ: header.typ.as_deref(),
            kid: &self.kid,
            jku: header.jku.as_deref(),
        };
        let header_json = serde_json::to_vec(&wire)
            .map_err(|e| JoseError::Signing(format!("cannot serialize header: {e}")))?;
        let claims_json = serde_json::to_vec(claims)
            .map_err(|e| JoseError::Signing(format!("cannot serialize claims: {e}")))?;
        let mut token = URL_SAFE_NO_PAD.encode(header_json);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(claims_json, &mut token);
        let signature = jsonwebtoken::crypto::sign(
            token.as_bytes(),
            &self.encoding,
            self.alg.to_jsonwebtoken(),
        )
        .map_err(|e| JoseError::Signing(format!("{} signing failed: {e}", self.alg)))?;
        token.push('.');
        token.push_str(&signature);
        Ok(token)
    }

    fn from_secret(secret: Secret, alg: Algorithm) -> Result<PrivateKey, JoseError> {
        let key_type = secret.key_type();
        if !key_type.fits(alg) {
            return Err(JoseError::AlgorithmMismatch { alg, key: key_type });
        }
        let mut public = Map::new();
        let encoding = match &secret {
            Secret::Rsa(key) => {
                let n = key.n_bytes();
                let bits = bit_length(&n);
                if bits < MIN_RSA_BITS {
                    return Err(JoseError::WeakKey { bits });
                }
                public.insert("kty".into(), "RSA".into());
                public.insert("n".into(), URL_SAFE_NO_PAD.encode(&n).into());
                public.insert("e".into(), URL_SAFE_NO_PAD.encode(key.e_bytes()).into());
                let der = key.to_pkcs1_der().map_err(encode_failed)?;
                jsonwebtoken::EncodingKey::from_rsa_der(der.as_bytes())
            }
            Secret::P256(key) => {
                insert_ec_point(&mut public, key_type, &key.public_key().to_sec1_bytes())?;
                let der = key.to_pkcs8_der().map_err(encode_failed)?;
                jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes())
            }
            Secret::P384(key) => {
                insert_ec_point(&mut public, key_type, &key.public_key().to_sec1_bytes())?;
                let der = key.to_pkcs8_der().map_err(encode_failed)?;
                jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes())
            }
        };
        let kid = PublicJwk::from_map(public.clone()).thumbprint()?;
        public.insert("kid".into(), kid.clone().into());
        public.insert("alg".into(), alg.as_str().into());
        public.insert("use".into(), "sig".into());
        Ok(PrivateKey {
            alg,
            kid,
            secret,
            encoding,
            public: PublicJwk::from_map(public),
        })
    }
}

fn encode_failed<E>(_: E) -> JoseError {
    JoseError::InvalidKey("cannot encode the key as DER".into())
}

fn insert_ec_point(
    public: &mut Map<String, Value>,
    key_type: KeyType,
    point: &[u8],
) -> Result<(), JoseError> {
    let size = (point.len().saturating_sub(1)) / 2;
    if point.first() != Some(&0x04) || point.len() != 1 + 2 * size {
        return Err(JoseError::InvalidKey(
            "EC public key is not an uncompressed point".into(),
        ));
    }
    public.insert("kty".into(), "EC".into());
    public.insert("crv".into(), key_type.crv().unwrap_or_default().into());
    public.insert("x".into(), URL_SAFE_NO_PAD.encode(&point[1..=size]).into());
    public.insert(
        "y".into(),
        URL_SAFE_NO_PAD.encode(&point[1 + size..]).into(),
    );
    Ok(())
}

/// Decodes a PKCS#1 RSA private key, refusing weak keys before any expensive work.
fn rsa_from_pkcs1(der: &[u8]) -> Result<Secret, JoseError> {
    let parsed = rsa::pkcs1::RsaPrivateKeyRef::from_der(der)
        .map_err(|_| JoseError::InvalidKey("not a valid PKCS#1 RSA private key".into()))?;
    let bits = bit_length(parsed.modulus.as_bytes());
    if bits < MIN_RSA_BITS {
        return Err(JoseError::WeakKey { bits });
    }
    if bits > MAX_RSA_BITS {
        return Err(JoseError::Unsupported(format!(
            "RSA keys of {bits} bits: use at most {MAX_RSA_BITS}"
        )));
    }
    let key = rsa::PrivateKey::from_pkcs1_der(der).map_err(|_| {
        JoseError::InvalidKey("RSA private key is inconsistent or unsupported".into())
    })?;
    Ok(Secret::Rsa(Box::new(key)))
}

/// Decodes a PKCS#8 private key by its algorithm identifier.
fn secret_from_pkcs8(der: &[u8]) -> Result<Secret, JoseError> {
    let info = rsa::pkcs8::PrivateKeyInfoRef::from_der(der)
        .map_err(|_| JoseError::InvalidKey("not a valid PKCS#8 private key".into()))?;
    let (oid, params) = info
        .algorithm
        .oids()
        .map_err(|_| JoseError::InvalidKey("PKCS#8 algorithm parameters are malformed".into()))?;
    if oid == OID_RSA_ENCRYPTION {
        rsa_from_pkcs1(info.private_key.as_bytes())
    } else if oid == OID_EC_PUBLIC_KEY && params == Some(OID_SECP384R1) {
        p384::SecretKey::from_pkcs8_der(der)
            .map(Secret::P384)
            .map_err(|_| JoseError::InvalidKey("not a valid PKCS#8 P-384 private key".into()))
    } else if oid == OID_EC_PUBLIC_KEY && params == Some(OID_SECP256R1) {
        p256::SecretKey::from_pkcs8_der(der)
            .map(Secret::P256)
            .map_err(|_| JoseError::InvalidKey("not a valid PKCS#8 P-256 private key".into()))
    } else if oid == OID_EC_PUBLIC_KEY {
        Err(JoseError::Unsupported(
            "this EC curve: only P-256 and P-384 keys are supported".into(),
        ))
    } else {
        Err(JoseError::Unsupported(format!(
            "PKCS#8 key algorithm {oid}: only RSA, EC P-256 and EC P-384 keys are supported"
        )))
    }
}
