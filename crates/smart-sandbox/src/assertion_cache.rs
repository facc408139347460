//! The state client-assertion checks keep between requests: the HTTP client
//! for registered JWKS URLs, the JWKS cache and the `jti` replay cache. It
//! lives apart from the checks ([`crate::assertion`]) so that the shared state
//! can hold it without importing the handlers.

use std::collections::{BTreeSet, HashMap};
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
    /// The `jti` replay cache.
    seen: Mutex<JtiCache>,
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

    /// Records `(iss, jti)` until `until` (Unix seconds).
    pub(crate) fn remember_jti(&self, iss: &str, jti: &str, until: u64) -> JtiOutcome {
        lock(&self.seen).remember(iss, jti, until, unix_now())
    }
}

/// The most `(iss, jti)` pairs remembered at once. Only assertions with a
/// valid signature reach the cache, so filling it takes a registered key;
/// at the cap new assertions are refused (until entries expire) rather than
/// forgetting unexpired ones, which would re-open replay.
pub(crate) const MAX_REMEMBERED_JTIS: usize = 100_000;

/// What [`AssertionCache::remember_jti`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JtiOutcome {
    /// First use: now remembered.
    Fresh,
    /// Already used and not yet expired.
    Replayed,
    /// The cache holds [`MAX_REMEMBERED_JTIS`] unexpired entries.
    Full,
}

/// `(iss, jti)` pairs with their expiry: a map for the replay look-up and a
/// set ordered by expiry, so each request drops the expired entries from the
/// front (amortised O(log n) per entry) instead of scanning everything.
#[derive(Default)]
pub(crate) struct JtiCache {
    until: HashMap<(String, String), u64>,
    by_expiry: BTreeSet<(u64, String, String)>,
    cap: Option<usize>,
}

impl JtiCache {
    /// A cache holding at most `cap` entries (tests use small caps).
    #[cfg(test)]
    fn with_cap(cap: usize) -> JtiCache {
        JtiCache {
            cap: Some(cap),
            ..JtiCache::default()
        }
    }

    fn remember(&mut self, iss: &str, jti: &str, until: u64, now: u64) -> JtiOutcome {
        while let Some(first) = self.by_expiry.first() {
            if first.0 > now {
                break;
            }
            if let Some((_, iss, jti)) = self.by_expiry.pop_first() {
                self.until.remove(&(iss, jti));
            }
        }
        let key = (iss.to_owned(), jti.to_owned());
        if self.until.contains_key(&key) {
            return JtiOutcome::Replayed;
        }
        if self.until.len() >= self.cap.unwrap_or(MAX_REMEMBERED_JTIS) {
            return JtiOutcome::Full;
        }
        self.by_expiry.insert((until, key.0.clone(), key.1.clone()));
        self.until.insert(key, until);
        JtiOutcome::Fresh
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.until.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_is_refused_until_it_expires_then_forgotten() {
        let mut cache = JtiCache::default();
        assert_eq!(cache.remember("a", "1", 100, 10), JtiOutcome::Fresh);
        assert_eq!(cache.remember("a", "1", 100, 50), JtiOutcome::Replayed);
        // Another issuer's identical jti is its own entry.
        assert_eq!(cache.remember("b", "1", 100, 50), JtiOutcome::Fresh);
        assert_eq!(cache.len(), 2);
        // At the expiry both go, on the next request.
        assert_eq!(cache.remember("c", "2", 300, 100), JtiOutcome::Fresh);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.remember("a", "1", 400, 100), JtiOutcome::Fresh);
    }

    #[test]
    fn the_cache_is_bounded_and_never_forgets_an_unexpired_jti() {
        let mut cache = JtiCache::with_cap(3);
        for jti in ["1", "2", "3"] {
            assert_eq!(cache.remember("a", jti, 100, 0), JtiOutcome::Fresh);
        }
        assert_eq!(cache.remember("a", "4", 100, 0), JtiOutcome::Full);
        assert_eq!(cache.len(), 3);
        // A replay is still a replay when full.
        assert_eq!(cache.remember("a", "1", 100, 0), JtiOutcome::Replayed);
        // Room again once entries expire.
        assert_eq!(cache.remember("a", "4", 200, 100), JtiOutcome::Fresh);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn expired_entries_leave_the_map_and_the_order_together() {
        let mut cache = JtiCache::default();
        for i in 0..1_000u64 {
            cache.remember("a", &i.to_string(), i, 0);
        }
        cache.remember("a", "late", 5_000, 999);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.by_expiry.len(), 1);
    }
}
