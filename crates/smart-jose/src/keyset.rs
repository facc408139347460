//! A set of signing keys with rotation.

use std::time::Duration;

use crate::{JoseError, Jwks, PrivateKey};

#[derive(Debug, Clone)]
struct Entry {
    key: PrivateKey,
    /// Unix time (seconds) from which this key is the signing key.
    signs_from: u64,
}

/// The signing keys of one party (a client or the sandbox server), with rotation.
///
/// Rotation follows SMART's advice (publish old and new keys together):
/// 1. [`KeySet::rotate`] publishes the new key at once; it becomes the signing key only after
///    a grace period, so verifiers that cache the JWKS have time to see it.
/// 2. Until then, and afterwards, the previous key stays published, so tokens it signed still
///    verify.
/// 3. [`KeySet::retire`] removes the previous key from the JWKS when its tokens have expired.
#[derive(Debug, Clone)]
pub struct KeySet {
    /// Published keys in order of `signs_from` (ties: order of insertion).
    entries: Vec<Entry>,
}

impl KeySet {
    /// A set whose only key signs from now on.
    pub fn new(key: PrivateKey) -> KeySet {
        KeySet {
            entries: vec![Entry { key, signs_from: 0 }],
        }
    }

    /// Publishes `new_key` at once; it becomes the signing key at `now + grace` (unix
    /// seconds). The previous signing key keeps signing until then and stays published until
    /// [`KeySet::retire`]d. Rotating to a key that is already in the set (same `kid`)
    /// reschedules it.
    pub fn rotate(&mut self, new_key: PrivateKey, grace: Duration, now: u64) {
        let signs_from = now.saturating_add(grace.as_secs());
        self.entries.retain(|e| e.key.kid() != new_key.kid());
        let pos = self.entries.partition_point(|e| e.signs_from <= signs_from);
        self.entries.insert(
            pos,
            Entry {
                key: new_key,
                signs_from,
            },
        );
    }

    /// The key to sign with at `now` (unix seconds): the most recently activated key. If a
    /// pending key is the only one left (its predecessor was retired early), it signs at once.
    pub fn signing_key(&self, now: u64) -> &PrivateKey {
        let active = self.entries.partition_point(|e| e.signs_from <= now);
        // `entries` is never empty (`retire` refuses to remove the newest key).
        let index = active
            .saturating_sub(1)
            .min(self.entries.len().saturating_sub(1));
        &self.entries[index].key
    }

    /// The JWKS to publish: the public keys of every key not yet retired.
    pub fn jwks(&self) -> Jwks {
        self.entries.iter().map(|e| e.key.public_jwk()).collect()
    }

    /// Stops publishing the key with this `kid`.
    ///
    /// The newest key — the one that signs now or will sign once its grace period ends — can
    /// never be retired. Retire a previous key only when every token it signed has expired;
    /// retiring it during the grace period makes the new key sign at once.
    ///
    /// # Errors
    /// [`JoseError::UnknownKey`] when no key has this `kid`, [`JoseError::Unsupported`] for the
    /// newest (signing) key.
    pub fn retire(&mut self, kid: &str) -> Result<(), JoseError> {
        let index = self
            .entries
            .iter()
            .position(|e| e.key.kid() == kid)
            .ok_or_else(|| JoseError::UnknownKey {
                kid: Some(kid.to_owned()),
            })?;
        if index + 1 == self.entries.len() {
            return Err(JoseError::Unsupported(
                "retiring the current signing key: rotate to a new key first, then retire this one"
                    .into(),
            ));
        }
        self.entries.remove(index);
        Ok(())
    }

    /// All keys in the set (published and pending), oldest first.
    pub fn keys(&self) -> impl Iterator<Item = &PrivateKey> {
        self.entries.iter().map(|e| &e.key)
    }
}
