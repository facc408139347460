//! The state client-assertion checks keep between requests: the HTTP client
//! for registered JWKS URLs, the JWKS cache and the `jti` replay cache. It
//! lives apart from the checks ([`crate::assertion`]) so that the shared state
//! can hold it without importing the handlers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use smart_jose::Jwks;

use crate::locks::lock;
use crate::time::unix_now;

/// JWKS cache lifetime when the response has no `Cache-Control: max-age`.
pub(crate) const DEFAULT_JWKS_MAX_AGE: Duration = Duration::from_secs(300);

/// Longest JWKS cache lifetime, whatever the response says.
pub(crate) const MAX_JWKS_MAX_AGE: Duration = Duration::from_secs(86_400);

/// Largest JWKS document accepted.
pub(crate) const MAX_JWKS_BYTES: usize = 256 * 1024;

/// The shortest time between two unknown-`kid` refetches of one JWKS URL.
pub(crate) const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// Timeout of a JWKS fetch.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The assertion-related state of a sandbox: an HTTP client for JWKS URLs,
/// the JWKS cache and the `jti` replay cache.
#[derive(Default)]
pub(crate) struct AssertionCache {
    /// Built on the first fetch: most sandboxes never fetch a JWKS, and
    /// building a TLS client is not free.
    http: tokio::sync::OnceCell<reqwest::Client>,
    pub(crate) jwks_cache: Mutex<HashMap<String, CachedJwks>>,
    /// `(iss, jti)` → Unix time until which it is remembered.
    seen: Mutex<HashMap<(String, String), u64>>,
    /// JWKS URL → when it was last refetched for an unknown `kid`. Only
    /// registered URLs are keys, so this stays as small as the registry.
    refetched: Mutex<HashMap<String, Instant>>,
}

pub(crate) struct CachedJwks {
    pub(crate) jwks: Jwks,
    pub(crate) expires_at: Instant,
}

impl AssertionCache {
    pub(crate) async fn http(&self) -> Result<&reqwest::Client, reqwest::Error> {
        self.http
            .get_or_try_init(|| async {
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .timeout(FETCH_TIMEOUT)
                    .build()
            })
            .await
    }

    /// Whether `url` may be refetched for an unknown `kid` now (at most once
    /// per [`MIN_REFETCH_INTERVAL`]); records the refetch if so.
    pub(crate) fn may_refetch(&self, url: &str) -> bool {
        let now = Instant::now();
        let mut refetched = lock(&self.refetched);
        match refetched.get_mut(url) {
            Some(last) if now.saturating_duration_since(*last) < MIN_REFETCH_INTERVAL => false,
            Some(last) => {
                *last = now;
                true
            }
            None => {
                refetched.insert(url.to_owned(), now);
                true
            }
        }
    }

    /// Records `(iss, jti)`; false if it was already there.
    pub(crate) fn remember_jti(&self, iss: &str, jti: &str, until: u64) -> bool {
        let now = unix_now();
        let mut seen = lock(&self.seen);
        seen.retain(|_, until| *until > now);
        let key = (iss.to_owned(), jti.to_owned());
        if seen.contains_key(&key) {
            return false;
        }
        seen.insert(key, until);
        true
    }
}
