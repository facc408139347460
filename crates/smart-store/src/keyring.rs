//! The record keys: several accepted for reading, one used for writing.
//!
//! Rotation works by adding a new key first in the list (it becomes the writer) while keeping the
//! old ones: records sealed with an old key still open, and every write re-seals with the new one.
//! Once every record has been rewritten or has expired, the old key can go.
//!
//! Key material is text: entries separated by commas, whitespace or newlines, each
//! `KEY_ID:BASE64URL` where the base64url (or standard base64) decodes to exactly 32 bytes. The
//! first entry is the writer. A key id is 1 to 32 characters of `A-Z a-z 0-9 - _ .`; it is stored
//! in clear with every record so that the right key can be picked.

use std::fmt;

use base64::Engine as _;
use zeroize::Zeroizing;

/// The longest key id accepted.
pub const MAX_KEY_ID_LEN: usize = 32;
/// The most keys one keyring holds.
pub const MAX_KEYS: usize = 16;

/// Why key material was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// No entry at all.
    #[error("the store key material is empty")]
    Empty,
    /// An entry is not `KEY_ID:BASE64URL`.
    #[error("store key entry {index} is not KEY_ID:BASE64URL")]
    Malformed {
        /// 1-based entry number.
        index: usize,
    },
    /// A key id is empty, too long or has characters outside `A-Z a-z 0-9 - _ .`.
    #[error(
        "store key entry {index} has an invalid key id (1 to {MAX_KEY_ID_LEN} of A-Z a-z 0-9 - _ .)"
    )]
    BadKeyId {
        /// 1-based entry number.
        index: usize,
    },
    /// A key does not decode to 32 bytes.
    #[error("store key entry {index} does not decode to 32 bytes of base64url")]
    BadKey {
        /// 1-based entry number.
        index: usize,
    },
    /// The same key id twice.
    #[error("store key id {0:?} appears twice")]
    DuplicateId(String),
    /// More than [`MAX_KEYS`] entries.
    #[error("more than {MAX_KEYS} store keys")]
    TooMany,
}

/// One 256-bit record key with its id.
struct RecordKey {
    id: String,
    bytes: Zeroizing<[u8; 32]>,
}

/// The keys a [`SealedStore`](crate::SealedStore) seals and opens records with.
pub struct Keyring {
    /// The first is the writer.
    keys: Vec<RecordKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("writer", &self.writer_id())
            .field(
                "key_ids",
                &self.keys.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_KEY_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Keyring {
    /// Parses key material (see the module docs).
    pub fn parse(material: &str) -> Result<Keyring, KeyringError> {
        let mut keys: Vec<RecordKey> = Vec::new();
        for (i, entry) in material
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let index = i + 1;
            if keys.len() == MAX_KEYS {
                return Err(KeyringError::TooMany);
            }
            let (id, encoded) = entry
                .split_once(':')
                .ok_or(KeyringError::Malformed { index })?;
            if !valid_key_id(id) {
                return Err(KeyringError::BadKeyId { index });
            }
            let decoded = Zeroizing::new(
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(encoded.trim_end_matches('='))
                    .or_else(|_| base64::engine::general_purpose::STANDARD.decode(encoded))
                    .map_err(|_| KeyringError::BadKey { index })?,
            );
            let bytes: [u8; 32] = decoded
                .as_slice()
                .try_into()
                .map_err(|_| KeyringError::BadKey { index })?;
            if keys.iter().any(|k| k.id == id) {
                return Err(KeyringError::DuplicateId(id.to_owned()));
            }
            keys.push(RecordKey {
                id: id.to_owned(),
                bytes: Zeroizing::new(bytes),
            });
        }
        if keys.is_empty() {
            return Err(KeyringError::Empty);
        }
        Ok(Keyring { keys })
    }

    /// A keyring with one fresh random key, for stores that do not outlive the process (memory).
    pub fn ephemeral() -> Keyring {
        use rand::RngCore as _;
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        Keyring {
            keys: vec![RecordKey {
                id: "ephemeral".into(),
                bytes,
            }],
        }
    }

    /// New key material for one key with id `id`, as `smart-store` reads it
    /// (`id:BASE64URL`). For operators generating keys.
    pub fn generate_material(id: &str) -> Result<String, KeyringError> {
        use rand::RngCore as _;
        if !valid_key_id(id) {
            return Err(KeyringError::BadKeyId { index: 1 });
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        Ok(format!(
            "{id}:{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref())
        ))
    }

    /// The id of the key new records are sealed with.
    pub fn writer_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Every key id, the writer first.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.id.as_str())
    }

    pub(crate) fn writer(&self) -> (&str, &[u8; 32]) {
        (&self.keys[0].id, &self.keys[0].bytes)
    }

    pub(crate) fn get(&self, id: &str) -> Option<&[u8; 32]> {
        self.keys.iter().find(|k| k.id == id).map(|k| &*k.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rotation_lists_with_the_writer_first() {
        let a = Keyring::generate_material("k2").expect("material");
        let b = Keyring::generate_material("k1").expect("material");
        let ring = Keyring::parse(&format!("{a},\n {b}")).expect("parse");
        assert_eq!(ring.writer_id(), "k2");
        assert_eq!(ring.key_ids().collect::<Vec<_>>(), ["k2", "k1"]);
        assert!(!format!("{ring:?}").contains(a.split_once(':').expect("id").1));
    }

    #[test]
    fn refuses_bad_material_with_a_reason() {
        assert!(matches!(Keyring::parse(" "), Err(KeyringError::Empty)));
        assert!(matches!(
            Keyring::parse("nocolon"),
            Err(KeyringError::Malformed { index: 1 })
        ));
        assert!(matches!(
            Keyring::parse("bad id:AAAA"),
            Err(KeyringError::Malformed { .. } | KeyringError::BadKeyId { .. })
        ));
        assert!(matches!(
            Keyring::parse("k:AAAA"),
            Err(KeyringError::BadKey { index: 1 })
        ));
        let a = Keyring::generate_material("k").expect("material");
        assert!(matches!(
            Keyring::parse(&format!("{a} {a}")),
            Err(KeyringError::DuplicateId(_))
        ));
    }
}
