//! Opens the store a `[store]` configuration names.
//!
//! smart-core must not depend on databases, and the backend crates must not depend on each
//! other; this small crate is where the URL scheme picks one, behind features (`sqlite`,
//! `postgres`, `redis`, all on by default):
//!
//! | URL | Backend |
//! |---|---|
//! | `memory:` | in-process ([`smart_store::MemoryBackend`]) |
//! | `sqlite://PATH`, `sqlite::memory:` | SQLite (`smart-store-sql`) |
//! | `postgres://…`, `postgresql://…` | PostgreSQL (`smart-store-sql`) |
//! | `redis://…` | Redis (`smart-store-redis`) |
//!
//! Every store comes back sealed ([`smart_store::SealedStore`]) and with its keys checked
//! against the data already stored, so a wrong key or a database written by a newer build fails
//! here, at startup, with a one-line [`OpenError`].
//!
//! ```
//! # async fn example() -> Result<(), smart_store_open::OpenError> {
//! let store = smart_store_open::open(&smart_store::StoreConfig::new("memory:")).await?;
//! # let _ = store; Ok(()) }
//! ```

use std::sync::Arc;

use smart_core::store::StoreError;
use smart_store::{Backend, KeySourceError, Keyring, MemoryBackend, SealedStore, StoreConfig};

/// Why a store could not be opened. Each message is one line and names no secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The URL's scheme is not one of `memory:`, `sqlite:`, `postgres:`, `redis:`.
    #[error(
        "store url {url}: unknown scheme (use memory:, sqlite://PATH, postgres://… or redis://…)"
    )]
    UnknownScheme {
        /// The URL, password redacted.
        url: String,
    },
    /// The scheme is known but this build was compiled without its feature.
    #[error("store url {url}: this build has no {feature} support (enable feature `{feature}`)")]
    NotBuilt {
        /// The URL, password redacted.
        url: String,
        /// The missing feature.
        feature: &'static str,
    },
    /// The key material is missing or invalid.
    #[error("store key: {0}")]
    Key(#[from] KeySourceError),
    /// The server could not be reached or the database opened.
    #[error("store {url} is unreachable: {source}")]
    Unreachable {
        /// The URL, password redacted.
        url: String,
        /// The driver's error.
        #[source]
        source: StoreError,
    },
    /// The keys do not open what is stored (or the data is from a newer build).
    #[error("store {url}: {source}")]
    Incompatible {
        /// The URL, password redacted.
        url: String,
        /// What the check found.
        #[source]
        source: StoreError,
    },
}

/// Opens, migrates and key-checks the store `config` names.
pub async fn open(config: &StoreConfig) -> Result<Arc<SealedStore>, OpenError> {
    let url = config.redacted_url();
    let keyring = config.keyring()?;
    let scheme = config.url.split(':').next().unwrap_or_default();
    let backend: Arc<dyn Backend> = match scheme {
        "memory" => Arc::new(MemoryBackend::new()),
        "sqlite" => open_sqlite(config, &url).await?,
        "postgres" | "postgresql" => open_postgres(config, &url).await?,
        "redis" => open_redis(config, &url).await?,
        _ => return Err(OpenError::UnknownScheme { url }),
    };
    let keyring = match keyring {
        Some(keyring) => keyring,
        // Nothing outlives a memory store, so a fresh key is as good as a configured one.
        None if scheme == "memory" => Keyring::ephemeral(),
        None => return Err(OpenError::Key(KeySourceError::Missing)),
    };
    let store = SealedStore::new(backend, keyring).with_session_lifetime(config.session_lifetime());
    store.verify_keys().await.map_err(|source| {
        if source.is_temporary() {
            OpenError::Unreachable {
                url: url.clone(),
                source,
            }
        } else {
            OpenError::Incompatible {
                url: url.clone(),
                source,
            }
        }
    })?;
    Ok(Arc::new(store))
}

#[cfg(feature = "sqlite")]
async fn open_sqlite(config: &StoreConfig, url: &str) -> Result<Arc<dyn Backend>, OpenError> {
    smart_store_sql::SqlBackend::open_sqlite(&config.url)
        .await
        .map(|b| Arc::new(b) as Arc<dyn Backend>)
        .map_err(|source| classify(url, source))
}

#[cfg(not(feature = "sqlite"))]
async fn open_sqlite(_: &StoreConfig, url: &str) -> Result<Arc<dyn Backend>, OpenError> {
    Err(OpenError::NotBuilt {
        url: url.to_owned(),
        feature: "sqlite",
    })
}

#[cfg(feature = "postgres")]
async fn open_postgres(config: &StoreConfig, url: &str) -> Result<Arc<dyn Backend>, OpenError> {
    smart_store_sql::SqlBackend::open_postgres(&config.url)
        .await
        .map(|b| Arc::new(b) as Arc<dyn Backend>)
        .map_err(|source| classify(url, source))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(_: &StoreConfig, url: &str) -> Result<Arc<dyn Backend>, OpenError> {
    Err(OpenError::NotBuilt {
        url: url.to_owned(),
        feature: "postgres",
    })
}

#[cfg(feature = "redis")]
async fn open_redis(config: &StoreConfig, url: &str) -> Result<Arc<dyn Backend>, OpenError> {
    smart_store_redis::RedisBackend::connect(&config.url)
        .await
        .map(|b| Arc::new(b) as Arc<dyn Backend>)
        .map_err(|source| classify(url, source))
}

#[cfg(not(feature = "redis"))]
async fn open_redis(_: &StoreConfig, url: &str) -> Result<Arc<dyn Backend>, OpenError> {
    Err(OpenError::NotBuilt {
        url: url.to_owned(),
        feature: "redis",
    })
}

/// A newer schema is an incompatibility; anything else while opening means the database is not
/// there (or not ours to open).
fn classify(url: &str, source: StoreError) -> OpenError {
    match source {
        StoreError::NewerFormat { .. } => OpenError::Incompatible {
            url: url.to_owned(),
            source,
        },
        source => OpenError::Unreachable {
            url: url.to_owned(),
            source,
        },
    }
}
