//! The sandbox's OpenID Connect signing keys, generated lazily and rotated on
//! request. Kept apart from `id_token` issuance ([`crate::oidc`]) so that the
//! shared state can hold them without importing the handlers.

use std::sync::{Arc, Mutex};

use smart_jose::{Algorithm, PrivateKey, PublicJwk};

use crate::error::SandboxError;
use crate::locks::lock;

/// RSA modulus size of the signing keys.
const RSA_BITS: usize = 2048;

/// The current signing key and every public key published so far.
struct Keys {
    current: Arc<PrivateKey>,
    published: Vec<PublicJwk>,
}

impl Keys {
    fn new(key: PrivateKey) -> Keys {
        Keys {
            published: vec![key.public_jwk()],
            current: Arc::new(key),
        }
    }

    fn rotate(&mut self, key: PrivateKey) {
        self.published.push(key.public_jwk());
        self.current = Arc::new(key);
    }
}

/// The sandbox's OpenID Connect signing keys, generated lazily.
#[derive(Default)]
pub(crate) struct SigningKeys {
    keys: Mutex<Option<Keys>>,
    /// Makes concurrent first uses wait for one key generation.
    first: tokio::sync::OnceCell<()>,
}

fn generate() -> Result<PrivateKey, SandboxError> {
    PrivateKey::generate_rsa(RSA_BITS, Algorithm::RS256).map_err(|e| {
        SandboxError::Internal(format!("cannot generate the id_token signing key: {e}"))
    })
}

impl SigningKeys {
    /// Generates the first key unless one exists.
    async fn ensure(&self) -> Result<(), SandboxError> {
        if lock(&self.keys).is_some() {
            return Ok(());
        }
        self.first
            .get_or_try_init(|| async {
                if lock(&self.keys).is_some() {
                    return Ok(());
                }
                let key = tokio::task::spawn_blocking(generate)
                    .await
                    .map_err(|e| SandboxError::Internal(format!("key generation failed: {e}")))??;
                let mut keys = lock(&self.keys);
                if keys.is_none() {
                    *keys = Some(Keys::new(key));
                }
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// The key that signs new `id_token`s.
    pub(crate) async fn current(&self) -> Result<Arc<PrivateKey>, SandboxError> {
        self.ensure().await?;
        lock(&self.keys)
            .as_ref()
            .map(|k| k.current.clone())
            .ok_or_else(|| SandboxError::Internal("no signing key".into()))
    }

    /// Every published public key, oldest first.
    pub(crate) async fn published(&self) -> Result<Vec<PublicJwk>, SandboxError> {
        self.ensure().await?;
        Ok(lock(&self.keys)
            .as_ref()
            .map(|k| k.published.clone())
            .unwrap_or_default())
    }

    /// Adds a new current key (creating the first one too if none exists
    /// yet, so that the JWKS then holds an old and a new key). Returns the new
    /// `kid`.
    pub(crate) fn rotate(&self) -> Result<String, SandboxError> {
        let initial = if lock(&self.keys).is_none() {
            Some(generate()?)
        } else {
            None
        };
        let key = generate()?;
        let kid = key.kid().to_owned();
        let mut keys = lock(&self.keys);
        if keys.is_none()
            && let Some(initial) = initial
        {
            *keys = Some(Keys::new(initial));
        }
        match keys.as_mut() {
            Some(k) => k.rotate(key),
            None => *keys = Some(Keys::new(key)),
        }
        tracing::info!(kid = %kid, "rotated the id_token signing key");
        Ok(kid)
    }
}
