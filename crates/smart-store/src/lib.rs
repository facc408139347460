//! The storage boundary of the SMART framework: backends store bytes, this crate does the rest.
//!
//! [`smart_core::store::Store`] is what the client uses: pending launches, sessions, versions and
//! refresh leases. Writing it once per database would mean writing serialization, encryption,
//! key hashing, record versioning and key rotation once per database too, and getting each
//! subtly different. Instead a database implements the small byte-level [`Backend`] trait
//! (put-if-absent, take, insert, load, compare-and-swap, delete, leases, purge, all over hashed
//! keys and opaque bytes), and [`SealedStore`] turns any backend into a `Store`:
//!
//! - keys are SHA-256 hashed, so no session id or `state` is stored as is;
//! - records are JSON behind a record format version, encrypted with XChaCha20-Poly1305 under a
//!   [`Keyring`] (key id stored with each record, several keys accepted, one writing);
//! - every lifetime is measured on the backend's clock.
//!
//! Backends: [`MemoryBackend`] here; SQLite and PostgreSQL in `smart-store-sql`; Redis in
//! `smart-store-redis`. `smart-store-open` opens one from a [`StoreConfig`]. With the `trials`
//! feature, the `trials` module holds the named conformance trials every backend passes.
//!
//! ```
//! # async fn example() -> Result<(), smart_core::store::StoreError> {
//! use std::sync::Arc;
//! use smart_core::store::{SessionId, Store};
//! use smart_store::{Keyring, MemoryBackend, SealedStore};
//!
//! let store = SealedStore::new(Arc::new(MemoryBackend::new()), Keyring::ephemeral());
//! assert!(store.load_session(&SessionId::generate()).await?.is_none());
//! # Ok(()) }
//! ```

pub mod backend;
pub mod config;
pub mod keyring;
pub mod memory;
pub mod sealed;
#[cfg(feature = "trials")]
pub mod trials;

pub use crate::backend::{Backend, CasOutcome, HashedKey, Namespace, RecordLifetime, StoredRecord};
pub use crate::config::{KeySourceError, StoreConfig};
pub use crate::keyring::{Keyring, KeyringError};
pub use crate::memory::{Clock, ManualClock, MemoryBackend, SystemClock};
pub use crate::sealed::{MAX_RECORD_BYTES, RECORD_FORMAT, SealedStore};
