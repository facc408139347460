//! Discovery: what an EHR's authorization server offers, and where.
//!
//! SMART 2.x servers publish `{base}/.well-known/smart-configuration`. Older ones only carry the
//! endpoints in their CapabilityStatement (`/metadata`, the `oauth-uris` extension). The client
//! tries the first and falls back to the second when it is missing or not JSON, and reports which
//! source won ([`DiscoverySource`]) so that an integrator can tell why a flow behaves as it does.
//!
//! Parsing is lenient where real servers are sloppy (relative endpoint URLs are resolved against
//! the base, `Content-Type` parameters are accepted, unknown fields and capabilities are kept) and
//! strict where safety depends on it (a missing token endpoint is an error; endpoint URLs must
//! pass the transport-security policy before any credential is sent to them).
//!
//! Results are cached per exact FHIR base string ([`DiscoveryCache`]): Cerner-style tenants put
//! the tenant in the path, so two bases on one host are two servers.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Mutex;
use url::Url;

use crate::error::DiscoveryError;
use crate::http::{HttpClient, check_transport_security, check_transport_security_for, redact_url};
use crate::protocol_strings::FhirBase;
use crate::quirks::HookContext;
use crate::quirks::VendorQuirks;
pub use crate::smart_configuration::{AssociatedEndpoint, Capability, SmartConfiguration};

/// Where a configuration came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DiscoverySource {
    /// `{base}/.well-known/smart-configuration`.
    WellKnown {
        /// The URL fetched.
        url: String,
    },
    /// The CapabilityStatement `oauth-uris` extension at `{base}/metadata`.
    CapabilityStatement {
        /// The URL fetched.
        url: String,
        /// Why `.well-known` was not used.
        well_known_failure: String,
    },
}

impl fmt::Display for DiscoverySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiscoverySource::WellKnown { url } => write!(f, "{url}"),
            DiscoverySource::CapabilityStatement {
                url,
                well_known_failure,
            } => write!(
                f,
                "{url} (CapabilityStatement oauth-uris fallback: .well-known {well_known_failure})"
            ),
        }
    }
}

/// A discovery result.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovered {
    /// The FHIR base exactly as given.
    pub fhir_base: FhirBase,
    /// The configuration, endpoints absolute.
    pub configuration: SmartConfiguration,
    /// Where it came from.
    pub source: DiscoverySource,
}

const OAUTH_URIS: &str = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris";

/// Fetches the configuration of the FHIR server at `ctx.fhir_base()`, through `quirks`' discovery
/// hooks.
///
/// The FHIR base is used byte for byte as the cache key and as `aud` later; only for building the
/// discovery URLs is a trailing `/` dropped.
#[tracing::instrument(name = "smart.discover", skip_all, fields(fhir_base = %ctx.fhir_base(), adapter = quirks.name()))]
pub async fn discover(
    http: &dyn HttpClient,
    quirks: &dyn VendorQuirks,
    ctx: &HookContext<'_>,
) -> Result<Discovered, DiscoveryError> {
    let fhir_base = ctx.fhir_base();
    let base = Url::parse(fhir_base).map_err(|e| DiscoveryError::InvalidBase {
        base: fhir_base.to_owned(),
        reason: e.to_string(),
    })?;
    check_transport_security(&base)?;
    let trimmed = fhir_base.trim_end_matches('/');
    let well_known_url = format!("{trimmed}/.well-known/smart-configuration");

    let well_known_failure = match fetch_json(http, quirks, ctx, &well_known_url).await {
        Ok(json) => match serde_json::from_value::<SmartConfiguration>(json) {
            Ok(mut configuration) => {
                configuration.resolve_endpoints(&base)?;
                quirks.patch_configuration(ctx, &mut configuration);
                check_endpoints(&base, &configuration)?;
                tracing::debug!(source = "well-known", "discovered");
                return Ok(Discovered {
                    fhir_base: fhir_base.into(),
                    configuration,
                    source: DiscoverySource::WellKnown {
                        url: well_known_url,
                    },
                });
            }
            Err(e) => format!("was not a SMART configuration ({e})"),
        },
        Err(FetchFailure::Transport(e)) => return Err(DiscoveryError::Http(e)),
        Err(other) => other.to_string(),
    };
    tracing::debug!(reason = %well_known_failure, "falling back to the CapabilityStatement");

    let metadata_url = format!("{trimmed}/metadata");
    let statement = match fetch_json(http, quirks, ctx, &metadata_url).await {
        Ok(json) => json,
        Err(FetchFailure::Transport(e)) => return Err(DiscoveryError::Http(e)),
        Err(other) => {
            return Err(DiscoveryError::NotSmart {
                base: fhir_base.to_owned(),
                detail: format!(".well-known {well_known_failure}; /metadata {other}"),
            });
        }
    };
    let mut configuration = configuration_from_capability_statement(&statement).ok_or_else(|| {
        DiscoveryError::NotSmart {
            base: fhir_base.to_owned(),
            detail: format!(
                ".well-known {well_known_failure}; /metadata has no oauth-uris extension with a token URI"
            ),
        }
    })?;
    configuration.resolve_endpoints(&base)?;
    quirks.patch_configuration(ctx, &mut configuration);
    check_endpoints(&base, &configuration)?;
    tracing::debug!(source = "capability-statement", "discovered");
    Ok(Discovered {
        fhir_base: fhir_base.into(),
        configuration,
        source: DiscoverySource::CapabilityStatement {
            url: metadata_url,
            well_known_failure,
        },
    })
}

/// Every advertised endpoint must pass the transport-security policy for `base`: TLS except on
/// loopback, and TLS whenever the base itself uses TLS (an `https` EHR may not send the client to
/// `http://127.0.0.1:…`).
fn check_endpoints(base: &Url, configuration: &SmartConfiguration) -> Result<(), DiscoveryError> {
    let endpoints = [
        ("token_endpoint", Some(&configuration.token_endpoint)),
        (
            "authorization_endpoint",
            configuration.authorization_endpoint.as_ref(),
        ),
        ("jwks_uri", configuration.jwks_uri.as_ref()),
        (
            "registration_endpoint",
            configuration.registration_endpoint.as_ref(),
        ),
        (
            "management_endpoint",
            configuration.management_endpoint.as_ref(),
        ),
        (
            "introspection_endpoint",
            configuration.introspection_endpoint.as_ref(),
        ),
        (
            "revocation_endpoint",
            configuration.revocation_endpoint.as_ref(),
        ),
    ];
    for (field, value) in endpoints {
        let Some(value) = value else { continue };
        let url = Url::parse(value).map_err(|_| DiscoveryError::InvalidEndpoint {
            field,
            value: redact_url(value),
        })?;
        check_transport_security_for(&url, base)?;
    }
    Ok(())
}

/// Reads the `oauth-uris` extension of a CapabilityStatement (R4) or Conformance (DSTU2).
///
/// Capabilities are unknown in this mode, so the result advertises none; callers then assume v1
/// scope syntax and still send PKCE S256, which older servers ignore.
pub fn configuration_from_capability_statement(statement: &Value) -> Option<SmartConfiguration> {
    let rests = statement.get("rest")?.as_array()?;
    let mut uris: HashMap<String, String> = HashMap::new();
    for rest in rests {
        let Some(exts) = rest
            .get("security")
            .and_then(|s| s.get("extension"))
            .and_then(Value::as_array)
        else {
            continue;
        };
        for ext in exts
            .iter()
            .filter(|e| e.get("url").and_then(Value::as_str) == Some(OAUTH_URIS))
        {
            for sub in ext
                .get("extension")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let (Some(name), Some(uri)) = (
                    sub.get("url").and_then(Value::as_str),
                    sub.get("valueUri")
                        .or_else(|| sub.get("valueUrl"))
                        .and_then(Value::as_str),
                ) {
                    uris.entry(name.to_owned())
                        .or_insert_with(|| uri.to_owned());
                }
            }
        }
    }
    let mut configuration = SmartConfiguration::new(uris.remove("token")?);
    configuration.authorization_endpoint = uris.remove("authorize");
    configuration.registration_endpoint = uris.remove("register");
    configuration.management_endpoint = uris.remove("manage");
    configuration.introspection_endpoint = uris.remove("introspect");
    configuration.revocation_endpoint = uris.remove("revoke");
    configuration.grant_types_supported = vec!["authorization_code".to_owned()];
    Some(configuration)
}

enum FetchFailure {
    Transport(crate::http::HttpError),
    Status(u16),
    NotJson(String),
}

impl fmt::Display for FetchFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchFailure::Transport(e) => write!(f, "failed: {e}"),
            FetchFailure::Status(s) => write!(f, "answered HTTP {s}"),
            FetchFailure::NotJson(why) => write!(f, "was not JSON ({why})"),
        }
    }
}

async fn fetch_json(
    http: &dyn HttpClient,
    quirks: &dyn VendorQuirks,
    ctx: &HookContext<'_>,
    url: &str,
) -> Result<Value, FetchFailure> {
    let mut request = http::Request::get(url)
        .body(Vec::new())
        .map_err(|e| FetchFailure::NotJson(e.to_string()))?;
    quirks.discovery_headers(ctx, request.headers_mut());
    let response = http
        .execute(request)
        .await
        .map_err(FetchFailure::Transport)?;
    if !response.status().is_success() {
        return Err(FetchFailure::Status(response.status().as_u16()));
    }
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.is_empty() && !is_json_media_type(content_type) {
        return Err(FetchFailure::NotJson(format!(
            "Content-Type {content_type}"
        )));
    }
    serde_json::from_slice::<Value>(response.body())
        .map_err(|e| FetchFailure::NotJson(e.to_string()))
        .and_then(|v| {
            if v.is_object() {
                Ok(v)
            } else {
                Err(FetchFailure::NotJson("not a JSON object".to_owned()))
            }
        })
}

/// `application/json`, `application/fhir+json`, `application/json+fhir`, with any parameters.
pub(crate) fn is_json_media_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence.ends_with("+json")
        || essence == "application/json+fhir"
}

/// How many FHIR bases a [`DiscoveryCache`] remembers by default. Bases come from `iss`
/// parameters, which an attacker controls under a wildcard registration, so the number is capped.
pub const DEFAULT_DISCOVERY_CACHE_CAPACITY: usize = 512;

/// How long a failed discovery is remembered by default before it is tried again.
pub const DEFAULT_DISCOVERY_NEGATIVE_TTL: Duration = Duration::from_secs(10);

/// Discovery results cached per exact FHIR base for a fixed time.
///
/// - Concurrent lookups of the same base while it is not cached make one request between them
///   (single flight per base); lookups of other bases never wait for it.
/// - At most [`capacity`](DiscoveryCache::with_limits) bases are remembered
///   ([`DEFAULT_DISCOVERY_CACHE_CAPACITY`]); when a new base arrives at capacity, expired entries
///   go first, then the least recently used one.
/// - A failure is remembered for a short negative TTL ([`DEFAULT_DISCOVERY_NEGATIVE_TTL`]): a
///   lookup inside it fails at once with [`DiscoveryError::RecentlyFailed`], without contacting
///   the server; the first lookup after it tries again.
#[derive(Debug)]
pub struct DiscoveryCache {
    slots: SlotCache<Arc<Discovered>>,
}

impl DiscoveryCache {
    /// A cache whose entries live for `ttl`, with the default capacity and negative TTL.
    pub fn new(ttl: Duration) -> Self {
        DiscoveryCache::with_limits(
            ttl,
            DEFAULT_DISCOVERY_NEGATIVE_TTL,
            DEFAULT_DISCOVERY_CACHE_CAPACITY,
        )
    }

    /// A cache whose entries live for `ttl`, whose failures are remembered for `negative_ttl`,
    /// holding at most `capacity` bases (at least one).
    pub fn with_limits(ttl: Duration, negative_ttl: Duration, capacity: usize) -> Self {
        DiscoveryCache {
            slots: SlotCache::new(ttl, negative_ttl, capacity),
        }
    }

    /// The cached result for `ctx.fhir_base()` as `quirks` discovers it, discovering it when
    /// absent or stale.
    pub async fn get_or_discover(
        &self,
        http: &dyn HttpClient,
        quirks: &dyn VendorQuirks,
        ctx: &HookContext<'_>,
    ) -> Result<Arc<Discovered>, DiscoveryError> {
        let fhir_base = ctx.fhir_base();
        // One entry per (adapter, variant, base): adapters patch the configuration differently,
        // so one adapter's result must never be served to another; and a variant (e.g. the
        // client ID a vendor returns per-client endpoints for) keeps registrations apart.
        let adapter = match quirks.discovery_variant(ctx) {
            Some(variant) => format!("{}#{variant}", quirks.name()),
            None => quirks.name().to_owned(),
        };
        let key = cache_key(&adapter, fhir_base);
        let lookup = self
            .slots
            .get_or_fetch(&key, None, || async {
                discover(http, quirks, ctx).await.map(Arc::new)
            })
            .await;
        match lookup {
            Ok((_, found)) => Ok(found),
            Err(SlotFailure::Fresh(e)) => Err(e),
            Err(SlotFailure::Remembered { reason, retry_in }) => {
                Err(DiscoveryError::RecentlyFailed {
                    base: fhir_base.to_owned(),
                    reason,
                    retry_in_secs: retry_in.as_secs().max(1),
                })
            }
        }
    }

    /// Forgets the entries for `fhir_base`, whichever adapter discovered them (e.g. after the
    /// server changed its endpoints).
    pub async fn invalidate(&self, fhir_base: &str) {
        self.slots.remove_where(|key| {
            key.split_once('\n')
                .is_some_and(|(_, base)| base == fhir_base)
        });
    }

    /// How many bases are remembered now (successes, recent failures and lookups in flight).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no base is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The cache key of `fhir_base` discovered by `adapter` (a newline cannot be in either part of a
/// valid key: adapter names are identifiers and bases are URLs).
fn cache_key(adapter: &str, fhir_base: &str) -> String {
    format!("{adapter}\n{fhir_base}")
}

impl Default for DiscoveryCache {
    /// Entries live for five minutes.
    fn default() -> Self {
        DiscoveryCache::new(Duration::from_secs(300))
    }
}

/// What a [`SlotCache`] slot holds.
#[derive(Debug)]
enum SlotState<V> {
    /// Never fetched, or forgotten.
    Empty,
    /// Fetched at `at`.
    Ready { at: Instant, value: V },
    /// Failed at `at` for `reason` (already safe to show).
    Failed { at: Instant, reason: String },
}

/// One key's slot: its async lock is held while that key (and only that key) is fetched.
#[derive(Debug)]
struct Slot<V> {
    state: Mutex<SlotState<V>>,
}

#[derive(Debug)]
struct SlotEntry<V> {
    slot: Arc<Slot<V>>,
    /// The last lookup, for least-recently-used eviction.
    used: Instant,
}

/// Why a [`SlotCache`] lookup failed.
#[derive(Debug)]
pub(crate) enum SlotFailure<E> {
    /// This lookup fetched, and the fetch failed.
    Fresh(E),
    /// A recent fetch failed; it is not retried before `retry_in` has passed.
    Remembered {
        /// The failure's message.
        reason: String,
        /// Time left in the negative TTL.
        retry_in: Duration,
    },
}

/// A bounded map of expiring values fetched by key, single flight per key.
///
/// The map itself sits behind a synchronous lock held only for map operations (never across an
/// await); each key has its own async lock, held while that key is fetched. A slow server thus
/// delays only the callers asking for the same key.
#[derive(Debug)]
pub(crate) struct SlotCache<V> {
    ttl: Duration,
    negative_ttl: Duration,
    capacity: usize,
    entries: std::sync::Mutex<HashMap<String, SlotEntry<V>>>,
}

impl<V: Clone> SlotCache<V> {
    pub(crate) fn new(ttl: Duration, negative_ttl: Duration, capacity: usize) -> Self {
        SlotCache {
            ttl,
            negative_ttl,
            capacity: capacity.max(1),
            entries: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn lock_entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, SlotEntry<V>>> {
        // A panic while holding the map lock cannot leave the map inconsistent (each operation
        // is a single insert or remove), so a poisoned lock is still usable.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn len(&self) -> usize {
        self.lock_entries().len()
    }

    pub(crate) fn remove_where(&self, mut matches: impl FnMut(&str) -> bool) {
        self.lock_entries().retain(|key, _| !matches(key));
    }

    /// The slot for `key`, created (evicting at capacity) when missing.
    fn slot(&self, key: &str) -> Arc<Slot<V>> {
        let now = Instant::now();
        let mut entries = self.lock_entries();
        if let Some(entry) = entries.get_mut(key) {
            entry.used = now;
            return entry.slot.clone();
        }
        if entries.len() >= self.capacity {
            self.evict(&mut entries, now);
        }
        let slot = Arc::new(Slot {
            state: Mutex::new(SlotState::Empty),
        });
        entries.insert(
            key.to_owned(),
            SlotEntry {
                slot: slot.clone(),
                used: now,
            },
        );
        slot
    }

    /// Makes room for one entry: drops every expired entry nobody is using, and when that frees
    /// nothing, the least recently used entry (a fetch in flight keeps its own reference and
    /// completes; its result is simply not kept).
    fn evict(&self, entries: &mut HashMap<String, SlotEntry<V>>, now: Instant) {
        entries.retain(|_, entry| {
            if Arc::strong_count(&entry.slot) > 1 {
                return true;
            }
            match entry.slot.state.try_lock() {
                Ok(state) => match &*state {
                    SlotState::Empty => false,
                    SlotState::Ready { at, .. } => now.duration_since(*at) < self.ttl,
                    SlotState::Failed { at, .. } => now.duration_since(*at) < self.negative_ttl,
                },
                Err(_) => true,
            }
        });
        while entries.len() >= self.capacity {
            let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, entry)| entry.used)
                .map(|(key, _)| key.clone())
            else {
                break;
            };
            entries.remove(&oldest);
        }
    }

    /// The value for `key` and when it was fetched: the cached one while fresh, else the result
    /// of `fetch` (run by one caller at a time per key).
    ///
    /// `stale_if_fetched_before`: treat a cached value fetched at or before this instant as stale
    /// (a caller that found the value unusable passes the fetch time it saw; when another caller
    /// has refetched since, the newer value is returned without another fetch).
    pub(crate) async fn get_or_fetch<F, Fut, E>(
        &self,
        key: &str,
        stale_if_fetched_before: Option<Instant>,
        fetch: F,
    ) -> Result<(Instant, V), SlotFailure<E>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<V, E>>,
        E: fmt::Display,
    {
        let slot = self.slot(key);
        let mut state = slot.state.lock().await;
        let now = Instant::now();
        match &*state {
            SlotState::Ready { at, value }
                if now.duration_since(*at) < self.ttl
                    && stale_if_fetched_before.is_none_or(|seen| *at > seen) =>
            {
                return Ok((*at, value.clone()));
            }
            SlotState::Failed { at, reason } if now.duration_since(*at) < self.negative_ttl => {
                return Err(SlotFailure::Remembered {
                    reason: reason.clone(),
                    retry_in: self.negative_ttl.saturating_sub(now.duration_since(*at)),
                });
            }
            _ => {}
        }
        match fetch().await {
            Ok(value) => {
                let at = Instant::now();
                *state = SlotState::Ready {
                    at,
                    value: value.clone(),
                };
                Ok((at, value))
            }
            Err(e) => {
                // A failed forced refetch keeps a value that is still within its TTL: only this
                // caller, who found that value unusable, gets the error.
                let keep =
                    matches!(&*state, SlotState::Ready { at, .. } if at.elapsed() < self.ttl);
                if !keep {
                    *state = SlotState::Failed {
                        at: Instant::now(),
                        reason: e.to_string(),
                    };
                }
                Err(SlotFailure::Fresh(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_round_trip_and_keep_unknown() {
        let caps: Vec<Capability> = serde_json::from_str(
            r#"["launch-ehr","permission-v2","https://vendor.example/cap/x"]"#,
        )
        .expect("parse");
        assert_eq!(caps[0], Capability::LaunchEhr);
        assert_eq!(caps[1], Capability::PermissionV2);
        assert_eq!(
            caps[2],
            Capability::Other("https://vendor.example/cap/x".into())
        );
        let back = serde_json::to_string(&caps).expect("serialize");
        assert_eq!(
            back,
            r#"["launch-ehr","permission-v2","https://vendor.example/cap/x"]"#
        );
    }

    #[test]
    fn unknown_fields_are_kept_and_relative_urls_resolved() {
        let mut c: SmartConfiguration = serde_json::from_str(
            r#"{"token_endpoint":"auth/token","authorization_endpoint":"/oauth/authorize",
                "capabilities":["launch-ehr"],"x_vendor":{"a":1}}"#,
        )
        .expect("parse");
        assert_eq!(c.extra.get("x_vendor"), Some(&serde_json::json!({"a":1})));
        let base = Url::parse("https://ehr.example/tenant-1/fhir").expect("url");
        c.resolve_endpoints(&base).expect("resolve");
        assert_eq!(
            c.token_endpoint,
            "https://ehr.example/tenant-1/fhir/auth/token"
        );
        assert_eq!(
            c.authorization_endpoint.as_deref(),
            Some("https://ehr.example/oauth/authorize")
        );
    }

    #[test]
    fn json_media_types() {
        assert!(is_json_media_type("application/json; charset=utf-8"));
        assert!(is_json_media_type("Application/FHIR+JSON"));
        assert!(!is_json_media_type("text/html"));
    }

    #[test]
    fn capability_statement_oauth_uris() {
        let cs = serde_json::json!({"resourceType":"CapabilityStatement","rest":[{"security":{"extension":[{
            "url": OAUTH_URIS,
            "extension":[{"url":"authorize","valueUri":"https://e/auth"},{"url":"token","valueUri":"https://e/token"},
                         {"url":"revoke","valueUri":"https://e/revoke"}]}]}}]});
        let c = configuration_from_capability_statement(&cs).expect("oauth-uris");
        assert_eq!(c.token_endpoint, "https://e/token");
        assert_eq!(c.authorization_endpoint.as_deref(), Some("https://e/auth"));
        assert_eq!(c.revocation_endpoint.as_deref(), Some("https://e/revoke"));
        assert!(configuration_from_capability_statement(&serde_json::json!({"rest":[]})).is_none());
    }

    #[tokio::test]
    async fn a_failed_forced_refetch_keeps_the_fresh_value() {
        let cache: SlotCache<u32> =
            SlotCache::new(Duration::from_secs(60), Duration::from_secs(60), 4);
        let (at, value) = cache
            .get_or_fetch("k", None, || async { Ok::<u32, String>(1) })
            .await
            .expect("fetched");
        assert_eq!(value, 1);
        let forced = cache
            .get_or_fetch("k", Some(at), || async {
                Err::<u32, String>("down".into())
            })
            .await;
        assert!(matches!(forced, Err(SlotFailure::Fresh(ref e)) if e == "down"));
        let (_, kept) = cache
            .get_or_fetch("k", None, || async {
                Err::<u32, String>("not called".into())
            })
            .await
            .expect("the fresh value is kept");
        assert_eq!(kept, 1);
        // Without a fresh value, the failure is remembered.
        let _ = cache
            .get_or_fetch("other", None, || async {
                Err::<u32, String>("down".into())
            })
            .await;
        let remembered = cache
            .get_or_fetch("other", None, || async { Ok::<u32, String>(2) })
            .await;
        assert!(matches!(remembered, Err(SlotFailure::Remembered { .. })));
    }
}
