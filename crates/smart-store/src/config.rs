//! The `[store]` configuration section.
//!
//! ```toml
//! [store]
//! url = "postgres://app@db.internal:5432/smart"   # or sqlite://…, redis://…, memory:
//! key_env = "SMART_STORE_KEYS"                    # or key_file = "/run/secrets/store-keys"
//! session_absolute_secs = 2592000                 # optional: 30 days from creation
//! session_idle_secs = 604800                      # optional: 7 days since the last refresh
//! ```
//!
//! The key material is never in the configuration file itself: it is read from the named
//! environment variable or file, so that the file can be checked in.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use smart_core::store::SessionLifetime;

use crate::keyring::{Keyring, KeyringError};

/// The largest key file read.
pub const MAX_KEY_FILE_BYTES: u64 = 16 * 1024;

/// Where the store is and how its records are sealed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `memory:`, `sqlite://PATH` (`sqlite::memory:` too), `postgres://…` or `redis://…`.
    pub url: String,
    /// The environment variable holding the key material (see [`crate::keyring`]).
    #[serde(default)]
    pub key_env: Option<String>,
    /// The file holding the key material.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Sessions end this many seconds after their creation.
    #[serde(default)]
    pub session_absolute_secs: Option<u64>,
    /// Sessions end this many seconds after their last write (creation or refresh).
    #[serde(default)]
    pub session_idle_secs: Option<u64>,
}

/// Why the key material could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeySourceError {
    /// Neither `key_env` nor `key_file` is set, and the store outlives the process.
    #[error("no store key: set key_env (an environment variable name) or key_file in [store]")]
    Missing,
    /// Both are set.
    #[error("set one of key_env and key_file in [store], not both")]
    Both,
    /// The variable is unset or not UTF-8.
    #[error("store key variable {0} is not set")]
    EnvUnset(String),
    /// The file could not be read.
    #[error("store key file {path}: {source}")]
    File {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_KEY_FILE_BYTES`].
    #[error("store key file {0} is larger than {MAX_KEY_FILE_BYTES} bytes")]
    FileTooLarge(PathBuf),
    /// The material does not parse.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
}

impl StoreConfig {
    /// A configuration for `url` with keys in the environment variable `key_env`.
    pub fn new(url: impl Into<String>) -> StoreConfig {
        StoreConfig {
            url: url.into(),
            key_env: None,
            key_file: None,
            session_absolute_secs: None,
            session_idle_secs: None,
        }
    }

    /// This configuration with keys read from the environment variable `name`.
    pub fn with_key_env(mut self, name: impl Into<String>) -> StoreConfig {
        self.key_env = Some(name.into());
        self
    }

    /// The session lifetime the configuration asks for.
    pub fn session_lifetime(&self) -> SessionLifetime {
        SessionLifetime {
            absolute: self.session_absolute_secs.map(Duration::from_secs),
            idle: self.session_idle_secs.map(Duration::from_secs),
        }
    }

    /// Reads and parses the key material; `Ok(None)` when none is configured.
    pub fn keyring(&self) -> Result<Option<Keyring>, KeySourceError> {
        let material = match (&self.key_env, &self.key_file) {
            (Some(_), Some(_)) => return Err(KeySourceError::Both),
            (None, None) => return Ok(None),
            (Some(var), None) => zeroize::Zeroizing::new(
                std::env::var(var).map_err(|_| KeySourceError::EnvUnset(var.clone()))?,
            ),
            (None, Some(path)) => {
                let file_error = |source| KeySourceError::File {
                    path: path.clone(),
                    source,
                };
                let len = std::fs::metadata(path).map_err(file_error)?.len();
                if len > MAX_KEY_FILE_BYTES {
                    return Err(KeySourceError::FileTooLarge(path.clone()));
                }
                zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(file_error)?)
            }
        };
        Ok(Some(Keyring::parse(&material)?))
    }

    /// The URL with any password replaced by `***`, for messages.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

/// `scheme://user:password@host/…` with the password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/smart"),
            "postgres://app:***@db:5432/smart"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_url("memory:"), "memory:");
    }

    #[test]
    fn parses_the_store_section() {
        let config: StoreConfig =
            toml_like(r#"{"url":"sqlite:///tmp/x.db","key_file":"/k","session_idle_secs":60}"#);
        assert_eq!(config.key_file.as_deref(), Some(std::path::Path::new("/k")));
        assert_eq!(
            config.session_lifetime().idle,
            Some(Duration::from_secs(60))
        );
        assert!(serde_json::from_str::<StoreConfig>(r#"{"url":"memory:","keys":"x"}"#).is_err());
    }

    fn toml_like(json: &str) -> StoreConfig {
        serde_json::from_str(json).expect("config")
    }

    #[test]
    fn key_sources_fail_with_a_reason() {
        let both = StoreConfig {
            key_file: Some("/k".into()),
            ..StoreConfig::new("memory:").with_key_env("X")
        };
        assert!(matches!(both.keyring(), Err(KeySourceError::Both)));
        let unset = StoreConfig::new("memory:").with_key_env("SMART_STORE_TEST_UNSET_VARIABLE");
        assert_eq!(
            unset.keyring().expect_err("unset").to_string(),
            "store key variable SMART_STORE_TEST_UNSET_VARIABLE is not set"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys");
        std::fs::write(&path, Keyring::generate_material("k1").expect("material")).expect("write");
        let from_file = StoreConfig {
            key_file: Some(path),
            ..StoreConfig::new("memory:")
        };
        assert_eq!(
            from_file
                .keyring()
                .expect("read")
                .expect("some")
                .writer_id(),
            "k1"
        );
    }
}
