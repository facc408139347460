//! Building a [`SmartClient`](super::SmartClient) from registrations, adapters, a store and a
//! transport.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::adapter_choice::SPEC_ADAPTER;
use crate::config::{ClientRegistration, SmartConfig};
use crate::discovery::{DEFAULT_DISCOVERY_CACHE_CAPACITY, DiscoveryCache};
use crate::error::ConfigError;
use crate::http::HttpClient;
use crate::identity::IdTokenVerifier;
use crate::quirks::{SpecAdapter, VendorQuirks};
use crate::store::{MemoryStore, Store};

use super::{Inner, SmartClient};

/// The refresh lease TTL when none is configured.
pub const DEFAULT_REFRESH_LEASE_TTL: Duration = Duration::from_secs(60);

/// Builds a [`SmartClient`].
#[derive(Default)]
pub struct SmartClientBuilder {
    registrations: BTreeMap<String, ClientRegistration>,
    adapters: Vec<Arc<dyn VendorQuirks>>,
    store: Option<Arc<dyn Store>>,
    http: Option<Arc<dyn HttpClient>>,
    config: Option<SmartConfig>,
    lease_ttl: Option<Duration>,
    detection_retry_after: Option<Duration>,
    bearer_cache: Option<(usize, Duration)>,
}

impl fmt::Debug for SmartClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmartClientBuilder")
            .field(
                "registrations",
                &self.registrations.keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl SmartClientBuilder {
    /// Adds a registration under `name`.
    pub fn registration(
        mut self,
        name: impl Into<String>,
        registration: ClientRegistration,
    ) -> Self {
        self.registrations.insert(name.into(), registration);
        self
    }

    /// Takes registrations and settings from a loaded configuration.
    pub fn config(mut self, config: SmartConfig) -> Self {
        self.registrations.extend(config.clients.clone());
        self.config = Some(config);
        self
    }

    /// Installs a vendor adapter (looked up by [`VendorQuirks::name`]). Detection
    /// (`adapter = "auto"`, the default) asks the installed adapters in installation order
    /// whether they recognise a server. The first one installed is also the fallback when none
    /// does; with none installed, the core's built-in spec-exact adapter
    /// ([`SpecAdapter`](crate::quirks::SpecAdapter)) serves every server.
    pub fn adapter(mut self, adapter: Arc<dyn VendorQuirks>) -> Self {
        self.adapters.push(adapter);
        self
    }

    /// The store (default: a [`MemoryStore`]).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The HTTP transport (default: [`crate::http::ReqwestHttpClient`] with the configured
    /// timeouts).
    pub fn http(mut self, http: Arc<dyn HttpClient>) -> Self {
        self.http = Some(http);
        self
    }

    /// How long one refresh may hold a session's lease (default [`DEFAULT_REFRESH_LEASE_TTL`],
    /// 60 s). It must be longer than the HTTP timeout (`http.timeout_secs`), or
    /// [`build`](Self::build) refuses it: the refresh's token request is cut off a margin before
    /// the lease ends (a tenth of it, 1 to 5 s), so that no other worker can take the lease over
    /// while the request may still be spending the refresh token.
    pub fn refresh_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = Some(ttl);
        self
    }

    /// How long a failed adapter detection or discovery is remembered before the server is
    /// asked again (default [`DEFAULT_DETECTION_RETRY_AFTER`](super::DEFAULT_DETECTION_RETRY_AFTER),
    /// 10 s). Short enough that one network blip does not outlive it, long enough that a failing
    /// server is not asked again for every request.
    pub fn retry_failed_detection_after(mut self, back_off: Duration) -> Self {
        self.detection_retry_after = Some(back_off);
        self
    }

    /// How many sessions' bearer tokens are kept in process (default
    /// [`DEFAULT_BEARER_CACHE_CAPACITY`](crate::bearer::DEFAULT_BEARER_CACHE_CAPACITY), 10,000;
    /// 0 reads the store on every FHIR call) and for how long at most before the store is read
    /// again (default [`DEFAULT_BEARER_CACHE_MAX_AGE`](crate::bearer::DEFAULT_BEARER_CACHE_MAX_AGE),
    /// 30 s). A cached token is never used past its expiry or refresh margin, and is replaced as
    /// soon as this client refreshes the session or a server refuses it; the maximum age bounds
    /// how long a session deleted or ended by another process is still served here.
    ///
    /// ```
    /// use std::time::Duration;
    /// let client = smart_core::SmartClient::builder()
    ///     .bearer_cache_capacity(1_000, Duration::from_secs(10))
    ///     .build()?;
    /// # Ok::<(), smart_core::ConfigError>(())
    /// ```
    pub fn bearer_cache_capacity(mut self, capacity: usize, max_age: Duration) -> Self {
        self.bearer_cache = Some((capacity, max_age));
        self
    }

    /// Validates and builds.
    pub fn build(self) -> Result<SmartClient, ConfigError> {
        let config = self.config.unwrap_or_default();
        let default_adapter: Arc<dyn VendorQuirks> = match self.adapters.first() {
            Some(first) => first.clone(),
            None => Arc::new(SpecAdapter),
        };
        let mut adapter_order: Vec<String> = Vec::new();
        let mut adapters: HashMap<String, Arc<dyn VendorQuirks>> = HashMap::new();
        for adapter in self
            .adapters
            .iter()
            .chain(std::iter::once(&default_adapter))
        {
            if let std::collections::hash_map::Entry::Vacant(slot) =
                adapters.entry(adapter.name().to_owned())
            {
                adapter_order.push(slot.key().clone());
                slot.insert(adapter.clone());
            }
        }
        // The spec adapter is always there under its name, unless an app installed its own.
        adapters
            .entry(SPEC_ADAPTER.to_owned())
            .or_insert_with(|| Arc::new(SpecAdapter));
        for (name, registration) in &self.registrations {
            registration.validate(name)?;
            if let Some(named) = registration.adapter.named()
                && !adapters.contains_key(named)
            {
                return Err(ConfigError::Invalid {
                    field: format!("clients.{name}.adapter"),
                    message: format!(
                        "adapter `{}` is not installed (installed: {}); fix the name or build with that adapter",
                        registration.adapter,
                        adapter_order.join(", ")
                    ),
                });
            }
        }
        let configured = configure_adapters(&self.registrations, &adapters, &adapter_order)?;
        let http: Arc<dyn HttpClient> = match self.http {
            Some(http) => http,
            None => default_http(&config)?,
        };
        let lease_ttl = self.lease_ttl.unwrap_or(DEFAULT_REFRESH_LEASE_TTL);
        let http_timeout = Duration::from_secs(config.http.timeout_secs);
        if lease_ttl <= http_timeout {
            // A refresh bounded by a lease shorter than its own HTTP request would always be
            // abandoned, or outlive its lease and race another worker for the same token.
            return Err(ConfigError::Invalid {
                field: "refresh_lease_ttl".into(),
                message: format!(
                    "the refresh lease ({} s) must be longer than the HTTP timeout (http.timeout_secs = {} s)",
                    lease_ttl.as_secs_f64(),
                    config.http.timeout_secs
                ),
            });
        }
        let detection_retry_after = self
            .detection_retry_after
            .unwrap_or(super::DEFAULT_DETECTION_RETRY_AFTER);
        let (bearer_capacity, bearer_max_age) = self.bearer_cache.unwrap_or((
            crate::bearer::DEFAULT_BEARER_CACHE_CAPACITY,
            crate::bearer::DEFAULT_BEARER_CACHE_MAX_AGE,
        ));
        Ok(SmartClient {
            inner: Arc::new(Inner {
                registrations: self.registrations,
                adapters,
                default_adapter,
                adapter_order,
                configured,
                detections: Default::default(),
                detection_retry_after,
                store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
                http,
                discovery: DiscoveryCache::with_limits(
                    Duration::from_secs(config.discovery.cache_ttl_secs),
                    detection_retry_after,
                    DEFAULT_DISCOVERY_CACHE_CAPACITY,
                ),
                id_tokens: IdTokenVerifier::default(),
                state_ttl: config.state_ttl(),
                lease_ttl,
                lease_wait: lease_ttl + Duration::from_secs(5),
                bearers: crate::bearer::BearerCache::new(bearer_capacity, bearer_max_age),
            }),
        })
    }
}

/// Each registration's adapters configured with its `adapter_options`: the named adapter, or
/// under `auto` every installed adapter that accepts the options (at least one must).
fn configure_adapters(
    registrations: &BTreeMap<String, ClientRegistration>,
    adapters: &HashMap<String, Arc<dyn VendorQuirks>>,
    adapter_order: &[String],
) -> Result<super::ConfiguredAdapters, ConfigError> {
    let mut configured = HashMap::new();
    for (name, registration) in registrations {
        if registration.adapter_options.is_empty() {
            continue;
        }
        let candidates: Vec<&str> = match registration.adapter.named() {
            None => adapter_order.iter().map(String::as_str).collect(),
            Some(named) => vec![named],
        };
        let mut refusals = Vec::new();
        for adapter_name in candidates {
            let Some(adapter) = adapters.get(adapter_name) else {
                continue;
            };
            match adapter.with_options(&registration.adapter_options) {
                Ok(Some(with_options)) => {
                    configured.insert((name.clone(), adapter_name.to_owned()), with_options);
                }
                Ok(None) => {
                    configured.insert((name.clone(), adapter_name.to_owned()), adapter.clone());
                }
                Err(e) => refusals.push(format!("{adapter_name}: {e}")),
            }
        }
        let accepted = configured.keys().any(|(r, _)| r == name);
        if !accepted || (!registration.adapter.is_auto() && !refusals.is_empty()) {
            return Err(ConfigError::Invalid {
                field: format!("clients.{name}.adapter_options"),
                message: format!(
                    "no installed adapter accepts these options ({})",
                    refusals.join("; ")
                ),
            });
        }
    }
    Ok(configured)
}

#[cfg(feature = "reqwest")]
fn default_http(config: &SmartConfig) -> Result<Arc<dyn HttpClient>, ConfigError> {
    crate::http::ReqwestHttpClient::builder()
        .timeout(Duration::from_secs(config.http.timeout_secs))
        .max_response_bytes(config.http.max_response_bytes)
        .build()
        .map(|c| Arc::new(c) as Arc<dyn HttpClient>)
        .map_err(|e| ConfigError::Load(e.to_string()))
}

#[cfg(not(feature = "reqwest"))]
fn default_http(_config: &SmartConfig) -> Result<Arc<dyn HttpClient>, ConfigError> {
    Err(ConfigError::Invalid {
        field: "http".into(),
        message: "no HTTP transport: enable the `reqwest` feature or call .http(…)".into(),
    })
}
