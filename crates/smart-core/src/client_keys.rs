//! An asymmetric client's signing keys ([`ClientKeys`]), rotatable while the app runs.
//!
//! A leaf module: the configuration holds keys and client authentication signs with them, and
//! neither has to import the other for the type.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use smart_jose::{Jwks, KeySet, PrivateKey};

use crate::token::now_unix;

/// An asymmetric client's signing keys, shareable and rotatable at run time.
///
/// Rotation follows the safe order: [`rotate`](Self::rotate) publishes the new key at once (serve
/// [`jwks`](Self::jwks) at your registered JWKS URL), signs with it only after the grace period
/// (so servers that cache the JWKS have seen it), and [`retire`](Self::retire) removes the old one.
#[derive(Clone)]
pub struct ClientKeys {
    keys: Arc<RwLock<KeySet>>,
    jku: Option<String>,
}

impl ClientKeys {
    /// Keys starting with `key`.
    pub fn new(key: PrivateKey) -> Self {
        ClientKeys {
            keys: Arc::new(RwLock::new(KeySet::new(key))),
            jku: None,
        }
    }

    /// Sends `jku` (the registered JWKS URL) in every assertion header. Only set it when the
    /// server expects it: it must equal the URL registered with the EHR.
    pub fn with_jku(mut self, jku: impl Into<String>) -> Self {
        self.jku = Some(jku.into());
        self
    }

    /// The `jku` sent, if any.
    pub fn jku(&self) -> Option<&str> {
        self.jku.as_deref()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, KeySet> {
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The key that signs now.
    pub fn signing_key(&self) -> PrivateKey {
        self.read().signing_key(now_unix()).clone()
    }

    /// The public keys to publish (all keys not yet retired).
    pub fn jwks(&self) -> Jwks {
        self.read().jwks()
    }

    /// Publishes `new_key` now; it signs from `grace` on.
    pub fn rotate(&self, new_key: PrivateKey, grace: Duration) {
        self.keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .rotate(new_key, grace, now_unix());
    }

    /// Stops publishing the key `kid` (never the current signing key).
    pub fn retire(&self, kid: &str) -> Result<(), smart_jose::JoseError> {
        self.keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retire(kid)
    }
}

impl fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<String> = self
            .read()
            .keys()
            .map(|k| format!("{} ({})", k.kid(), k.algorithm()))
            .collect();
        f.debug_struct("ClientKeys")
            .field("keys", &kids)
            .field("jku", &self.jku)
            .finish()
    }
}

impl PartialEq for ClientKeys {
    fn eq(&self, other: &Self) -> bool {
        self.jku == other.jku && self.jwks() == other.jwks()
    }
}

impl Eq for ClientKeys {}
