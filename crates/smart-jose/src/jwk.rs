//! Public JWKs (RFC 7517), RFC 7638 thumbprints and JWK Sets.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::{Algorithm, JoseError, KeyType};

/// JWK members that carry private key material (RFC 7518 §6.2.2, §6.3.2, §6.4). They are
/// removed from every [`PublicJwk`], however it was built.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Minimum RSA modulus length accepted for signing and verification.
pub(crate) const MIN_RSA_BITS: usize = 2048;

/// A public JSON Web Key: `kty`, `kid`, `alg`, `use: "sig"` and `n`/`e` (RSA) or
/// `crv`/`x`/`y` (EC), plus any other public members it was read with.
///
/// It can never hold private members: `d`, `p`, `q`, `dp`, `dq`, `qi`, `oth` and `k` are
/// stripped on construction and on deserialization, so a `PublicJwk` is always safe to
/// publish. Serializes as the bare JSON object.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PublicJwk(Map<String, Value>);

impl PublicJwk {
    /// Wraps a JSON object, removing any private members.
    pub fn from_map(mut map: Map<String, Value>) -> PublicJwk {
        for member in PRIVATE_MEMBERS {
            map.remove(member);
        }
        PublicJwk(map)
    }

    /// The `kid` member, if it is a string.
    pub fn kid(&self) -> Option<&str> {
        self.str_member("kid")
    }

    /// The `alg` member parsed as an [`Algorithm`]; `None` when absent or not supported.
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.str_member("alg").and_then(|a| a.parse().ok())
    }

    /// The key type from `kty` (and `crv` for EC); `None` for other key types and curves.
    pub fn key_type(&self) -> Option<KeyType> {
        match (self.str_member("kty")?, self.str_member("crv")) {
            ("RSA", _) => Some(KeyType::Rsa),
            ("EC", Some("P-256")) => Some(KeyType::EcP256),
            ("EC", Some("P-384")) => Some(KeyType::EcP384),
            _ => None,
        }
    }

    /// The RFC 7638 JWK thumbprint: SHA-256 over the required members in lexicographic order,
    /// base64url without padding. This is the `kid` that [`crate::PrivateKey`] uses.
    ///
    /// # Errors
    /// [`JoseError::Malformed`] when `kty` or a required member is missing or not a string,
    /// [`JoseError::Unsupported`] for key types other than RSA and EC.
    pub fn thumbprint(&self) -> Result<String, JoseError> {
        let kty = self
            .str_member("kty")
            .ok_or_else(|| JoseError::Malformed("JWK has no string \"kty\" member".into()))?;
        let members: &[&str] = match kty {
            "RSA" => &["e", "kty", "n"],
            "EC" => &["crv", "kty", "x", "y"],
            other => {
                return Err(JoseError::Unsupported(format!(
                    "JWK thumbprint for kty {:?}: only RSA and EC keys are supported",
                    crate::error::shorten(other, 16)
                )));
            }
        };
        let mut canonical = String::from("{");
        for (i, name) in members.iter().enumerate() {
            let value = self.str_member(name).ok_or_else(|| {
                JoseError::Malformed(format!("JWK has no string {name:?} member"))
            })?;
            if i > 0 {
                canonical.push(',');
            }
            // serde_json string escaping matches the JSON rules RFC 7638 §3.3 asks for.
            canonical.push_str(&Value::from(*name).to_string());
            canonical.push(':');
            canonical.push_str(&Value::from(value).to_string());
        }
        canonical.push('}');
        Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
    }

    /// The JSON members.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// Consumes the key and returns its JSON members.
    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }

    fn str_member(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }

    /// Whether this key may verify a signature made with `alg`: the key type fits, and the
    /// optional `alg` and `use` members do not say otherwise.
    pub(crate) fn usable_for(&self, alg: Algorithm) -> bool {
        if self.key_type() != Some(alg.key_type()) {
            return false;
        }
        if let Some(key_alg) = self.0.get("alg")
            && key_alg.as_str() != Some(alg.as_str())
        {
            return false;
        }
        if let Some(key_use) = self.0.get("use")
            && key_use.as_str() != Some("sig")
        {
            return false;
        }
        true
    }

    /// Builds the jsonwebtoken verification key for `alg` (whose key type must already fit).
    pub(crate) fn decoding_key(
        &self,
        alg: Algorithm,
    ) -> Result<jsonwebtoken::DecodingKey, JoseError> {
        let member = |name: &str| -> Result<Vec<u8>, JoseError> {
            let s = self.str_member(name).ok_or_else(|| {
                JoseError::InvalidKey(format!("JWK has no string {name:?} member"))
            })?;
            URL_SAFE_NO_PAD
                .decode(s)
                .map_err(|_| JoseError::InvalidKey(format!("JWK member {name:?} is not base64url")))
        };
        match alg.key_type() {
            KeyType::Rsa => {
                let n = member("n")?;
                let e = member("e")?;
                let bits = bit_length(&n);
                if bits < MIN_RSA_BITS {
                    return Err(JoseError::WeakKey { bits });
                }
                Ok(jsonwebtoken::DecodingKey::from_rsa_raw_components(&n, &e))
            }
            kt @ (KeyType::EcP256 | KeyType::EcP384) => {
                let size = if kt == KeyType::EcP256 { 32 } else { 48 };
                let x = member("x")?;
                let y = member("y")?;
                if x.len() != size || y.len() != size {
                    return Err(JoseError::InvalidKey(format!(
                        "JWK x and y must be {size} bytes each for {kt}"
                    )));
                }
                let mut point = Vec::with_capacity(1 + 2 * size);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Ok(jsonwebtoken::DecodingKey::from_ec_der(&point))
            }
        }
    }
}

/// Bit length of a big-endian unsigned integer.
pub(crate) fn bit_length(be: &[u8]) -> usize {
    match be.iter().position(|b| *b != 0) {
        None => 0,
        Some(i) => (be.len() - i) * 8 - be[i].leading_zeros() as usize,
    }
}

impl Serialize for PublicJwk {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PublicJwk {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::deserialize(deserializer).map(PublicJwk::from_map)
    }
}

impl From<PublicJwk> for Value {
    fn from(jwk: PublicJwk) -> Value {
        Value::Object(jwk.0)
    }
}

/// A JWK Set (RFC 7517 §5): `{"keys": [...]}` with public keys only.
#[derive(Default, Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Jwks {
    /// The public keys.
    pub keys: Vec<PublicJwk>,
}

impl Jwks {
    /// A set of the given keys.
    pub fn new(keys: Vec<PublicJwk>) -> Jwks {
        Jwks { keys }
    }

    /// All keys whose `kid` equals `kid`.
    pub fn find(&self, kid: &str) -> Vec<&PublicJwk> {
        self.keys.iter().filter(|k| k.kid() == Some(kid)).collect()
    }

    /// Selects the one key that may verify a token with header `kid` and `alg`
    /// (SMART client-confidential-asymmetric, server step 4; id_token validation step 3).
    ///
    /// Candidates are the keys whose `kid` equals `kid` (all keys when `kid` is `None`)
    /// and whose `kty`/`crv` fits `alg`. Keys whose optional `alg` member names another
    /// algorithm, or whose `use` member is not `"sig"`, are skipped as well.
    ///
    /// # Errors
    /// [`JoseError::UnknownKey`] when no key fits, [`JoseError::AmbiguousKey`] when more
    /// than one does.
    pub fn select(&self, kid: Option<&str>, alg: Algorithm) -> Result<&PublicJwk, JoseError> {
        let mut candidates = self
            .keys
            .iter()
            .filter(|k| kid.is_none_or(|kid| k.kid() == Some(kid)))
            .filter(|k| k.usable_for(alg));
        match (candidates.next(), candidates.next()) {
            (Some(key), None) => Ok(key),
            (None, _) => Err(JoseError::UnknownKey {
                kid: kid.map(|k| crate::error::shorten(k, 128)),
            }),
            (Some(_), Some(_)) => Err(JoseError::AmbiguousKey {
                kid: kid.map(|k| crate::error::shorten(k, 128)),
            }),
        }
    }
}

impl FromIterator<PublicJwk> for Jwks {
    fn from_iter<I: IntoIterator<Item = PublicJwk>>(iter: I) -> Self {
        Jwks {
            keys: iter.into_iter().collect(),
        }
    }
}
