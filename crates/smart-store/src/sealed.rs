//! The one sealing layer: smart-core's typed [`Store`] on any byte-level [`Backend`].
//!
//! Everything a backend would otherwise have to get right by itself happens here, once:
//!
//! - **keys are hashed**: a session id, a `state` or a lease owner reaches the backend only as its
//!   SHA-256, so a database dump cannot be replayed as a cookie or a callback;
//! - **records are serialized** (JSON) behind a one-byte **record format version**; a record
//!   from a newer format is refused with [`StoreError::NewerFormat`] instead of being misread;
//! - **records are encrypted** with XChaCha20-Poly1305 under the keyring's writer key, with a
//!   random 192-bit nonce per write, and the key id stored in clear beside the ciphertext so that
//!   rotated-out keys still open old records. The namespace, hashed key, format and key id are
//!   authenticated data: a record copied under another key or namespace does not open.
//!
//! What a backend stores in clear is therefore: the hashed key, the version, creation and expiry
//! times, the record format byte, the key id, and for leases the hashed owner.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::Serialize;
use serde::de::DeserializeOwned;
use smart_core::store::{
    Lease, PendingLaunch, Session, SessionId, SessionLifetime, Store, StoreError, Versioned,
};

use crate::backend::{Backend, CasOutcome, HashedKey, Namespace, RecordLifetime};
use crate::keyring::Keyring;

/// The record format this build writes, and the newest it reads.
pub const RECORD_FORMAT: u8 = 1;

/// The largest sealed record written or read (1 MiB). A session with an `id_token` and a full
/// launch context is a few kilobytes.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// smart-core's [`Store`] on a byte-level [`Backend`], with hashed keys and encrypted records.
///
/// Cloning is cheap and shares the backend and the keys.
#[derive(Clone)]
pub struct SealedStore {
    backend: Arc<dyn Backend>,
    keyring: Arc<Keyring>,
    session_lifetime: SessionLifetime,
}

impl fmt::Debug for SealedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedStore")
            .field("backend", &self.backend.name())
            .field("keyring", &self.keyring)
            .field("session_lifetime", &self.session_lifetime)
            .finish()
    }
}

impl SealedStore {
    /// Seals records for `backend` with `keyring`; sessions live until deleted.
    pub fn new(backend: Arc<dyn Backend>, keyring: Keyring) -> SealedStore {
        SealedStore {
            backend,
            keyring: Arc::new(keyring),
            session_lifetime: SessionLifetime::UNLIMITED,
        }
    }

    /// This store, ending sessions past `lifetime` (measured on the backend's clock).
    pub fn with_session_lifetime(mut self, lifetime: SessionLifetime) -> SealedStore {
        self.session_lifetime = lifetime;
        self
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Checks that the configured keys fit the data already stored.
    ///
    /// The first time a key id is used, a small key-check record sealed with it is written; later,
    /// that record must open with the configured key of the same id. A wrong key (same id,
    /// different bytes) or a key-check record from a newer format is reported here, at startup,
    /// rather than on a user's first request.
    pub async fn verify_keys(&self) -> Result<(), StoreError> {
        for id in self.keyring.key_ids() {
            let key = HashedKey::of(&format!("key-check:{id}"));
            match self.backend.load(Namespace::Meta, &key).await? {
                Some(record) => {
                    let check: String = self.open(Namespace::Meta, &key, &record.bytes)?;
                    if check != id {
                        return Err(StoreError::Corrupt(
                            "key-check record names another key".into(),
                        ));
                    }
                }
                None if id == self.keyring.writer_id() => {
                    let bytes = self.seal(Namespace::Meta, &key, &id)?;
                    self.backend
                        .put_if_absent(Namespace::Meta, &key, &bytes, &SessionLifetime::UNLIMITED)
                        .await?;
                }
                None => {}
            }
        }
        Ok(())
    }

    fn aad(namespace: Namespace, key: &HashedKey, format: u8, key_id: &str) -> Vec<u8> {
        let mut aad = Vec::with_capacity(64 + key_id.len());
        aad.extend_from_slice(b"smart-store\0");
        aad.extend_from_slice(namespace.as_str().as_bytes());
        aad.push(0);
        aad.extend_from_slice(key.as_bytes());
        aad.push(format);
        aad.extend_from_slice(key_id.as_bytes());
        aad
    }

    /// Serializes and encrypts `value` for `key`: `format | key id length | key id | nonce |
    /// ciphertext and tag`.
    pub fn seal<T: Serialize + ?Sized>(
        &self,
        namespace: Namespace,
        key: &HashedKey,
        value: &T,
    ) -> Result<Vec<u8>, StoreError> {
        use rand::RngCore as _;
        let plaintext = zeroize::Zeroizing::new(
            serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        );
        let (key_id, key_bytes) = self.keyring.writer();
        let cipher = XChaCha20Poly1305::new(key_bytes.into());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = Self::aad(namespace, key, RECORD_FORMAT, key_id);
        let ciphertext = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| StoreError::Corrupt("encryption failed".into()))?;
        let mut out = Vec::with_capacity(2 + key_id.len() + NONCE_LEN + ciphertext.len());
        out.push(RECORD_FORMAT);
        // Key ids are at most 32 bytes (checked when the keyring was parsed).
        out.push(key_id.len() as u8);
        out.extend_from_slice(key_id.as_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        if out.len() > MAX_RECORD_BYTES {
            return Err(StoreError::Corrupt(format!(
                "record of {} bytes exceeds the {MAX_RECORD_BYTES}-byte limit",
                out.len()
            )));
        }
        Ok(out)
    }

    /// Decrypts and deserializes a record sealed by [`seal`](Self::seal).
    pub fn open<T: DeserializeOwned>(
        &self,
        namespace: Namespace,
        key: &HashedKey,
        bytes: &[u8],
    ) -> Result<T, StoreError> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(StoreError::Corrupt(format!(
                "record of {} bytes exceeds the {MAX_RECORD_BYTES}-byte limit",
                bytes.len()
            )));
        }
        let (&format, rest) = bytes
            .split_first()
            .ok_or_else(|| StoreError::Corrupt("empty record".into()))?;
        if format > RECORD_FORMAT {
            return Err(StoreError::NewerFormat {
                found: u32::from(format),
                supported: u32::from(RECORD_FORMAT),
            });
        }
        if format == 0 {
            return Err(StoreError::Corrupt("record format 0".into()));
        }
        let (&id_len, rest) = rest
            .split_first()
            .ok_or_else(|| StoreError::Corrupt("truncated record".into()))?;
        let id_len = usize::from(id_len);
        if rest.len() < id_len + NONCE_LEN + TAG_LEN {
            return Err(StoreError::Corrupt("truncated record".into()));
        }
        let (id, rest) = rest.split_at(id_len);
        let key_id = std::str::from_utf8(id)
            .map_err(|_| StoreError::Corrupt("key id is not UTF-8".into()))?;
        let key_bytes = self
            .keyring
            .get(key_id)
            .ok_or_else(|| StoreError::WrongKey {
                key_id: key_id.to_owned(),
                problem: "which is not among the configured keys",
            })?;
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let aad = Self::aad(namespace, key, format, key_id);
        let plaintext = zeroize::Zeroizing::new(
            XChaCha20Poly1305::new(key_bytes.into())
                .decrypt(
                    XNonce::from_slice(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| StoreError::WrongKey {
                    key_id: key_id.to_owned(),
                    problem: "and the configured key of that id does not open it (wrong key, or the record was altered)",
                })?,
        );
        serde_json::from_slice(&plaintext).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

fn session_key(id: &SessionId) -> HashedKey {
    HashedKey::of(id.as_str())
}

/// Lease owners are hashed too: they are per-attempt random ids, but nothing the app hands out
/// needs to be readable in the database.
fn owner_key(owner: &str) -> HashedKey {
    HashedKey::of(owner)
}

#[async_trait]
impl Store for SealedStore {
    async fn put_pending_launch(
        &self,
        state: &str,
        launch: &PendingLaunch,
    ) -> Result<(), StoreError> {
        let remaining = launch
            .expires_at
            .saturating_sub(smart_core::token::now_unix());
        if remaining == 0 {
            // Already void: storing it could only ever return `None`.
            return Ok(());
        }
        let key = HashedKey::of(state);
        let bytes = self.seal(Namespace::PendingLaunch, &key, launch)?;
        let lifetime = RecordLifetime {
            absolute: Some(Duration::from_secs(remaining)),
            idle: None,
        };
        if self
            .backend
            .put_if_absent(Namespace::PendingLaunch, &key, &bytes, &lifetime)
            .await?
        {
            Ok(())
        } else {
            Err(StoreError::AlreadyExists)
        }
    }

    async fn take_pending_launch(&self, state: &str) -> Result<Option<PendingLaunch>, StoreError> {
        let key = HashedKey::of(state);
        let Some(record) = self.backend.take(Namespace::PendingLaunch, &key).await? else {
            return Ok(None);
        };
        let launch: PendingLaunch = self.open(Namespace::PendingLaunch, &key, &record.bytes)?;
        Ok((launch.expires_at > smart_core::token::now_unix()).then_some(launch))
    }

    async fn insert_session(&self, id: &SessionId, session: &Session) -> Result<u64, StoreError> {
        let key = session_key(id);
        let bytes = self.seal(Namespace::Session, &key, session)?;
        self.backend
            .insert(Namespace::Session, &key, &bytes, &self.session_lifetime)
            .await
    }

    async fn load_session(&self, id: &SessionId) -> Result<Option<Versioned<Session>>, StoreError> {
        let key = session_key(id);
        let Some(record) = self.backend.load(Namespace::Session, &key).await? else {
            return Ok(None);
        };
        Ok(Some(Versioned {
            value: self.open(Namespace::Session, &key, &record.bytes)?,
            version: record.version,
        }))
    }

    async fn compare_and_swap_session(
        &self,
        id: &SessionId,
        expected_version: u64,
        session: &Session,
    ) -> Result<u64, StoreError> {
        let key = session_key(id);
        let bytes = self.seal(Namespace::Session, &key, session)?;
        match self
            .backend
            .compare_and_swap(
                Namespace::Session,
                &key,
                expected_version,
                &bytes,
                &self.session_lifetime,
            )
            .await?
        {
            CasOutcome::Swapped(version) => Ok(version),
            CasOutcome::Conflict(current) => Err(StoreError::VersionConflict { current }),
            CasOutcome::Missing => Err(StoreError::NotFound),
        }
    }

    async fn delete_session(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.backend
            .delete(Namespace::Session, &session_key(id))
            .await
    }

    async fn try_acquire_lease(
        &self,
        id: &SessionId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        Ok(self
            .backend
            .try_lease(&session_key(id), &owner_key(owner), ttl)
            .await?
            .map(|expires_at_ms| Lease {
                session: id.clone(),
                owner: owner.to_owned(),
                expires_at_ms,
            }))
    }

    async fn release_lease(&self, lease: &Lease) -> Result<bool, StoreError> {
        self.backend
            .release_lease(&session_key(&lease.session), &owner_key(&lease.owner))
            .await
    }

    async fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<Option<Lease>, StoreError> {
        Ok(self
            .backend
            .renew_lease(&session_key(&lease.session), &owner_key(&lease.owner), ttl)
            .await?
            .map(|expires_at_ms| Lease {
                expires_at_ms,
                ..lease.clone()
            }))
    }

    async fn purge_expired(&self) -> Result<u64, StoreError> {
        self.backend.purge_expired().await
    }
}
