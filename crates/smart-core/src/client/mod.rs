//! The launch and token flows: [`SmartClient`].
//!
//! Order of operations matters for security, and this module fixes it:
//!
//! 1. **Begin** ([`SmartClient::begin_ehr_launch`], [`SmartClient::begin_standalone_launch`]):
//!    the issuer is looked up in the registrations *before any network call*, so an unknown `iss`
//!    never causes discovery, let alone a token request. Then discovery, PKCE S256, a 256-bit
//!    single-use `state` bound (in the [`Store`]) to the issuer, verifier, redirect URI and scopes,
//!    and `aud` equal to the FHIR base byte for byte.
//!    Each launch also gets a [`BrowserBinding`](crate::secret::BrowserBinding) (256 random bits) for the app to set as a cookie;
//!    only its SHA-256 is stored with the pending launch.
//! 2. **Complete** ([`SmartClient::complete_launch`]): `state` is looked up and consumed before any
//!    other parameter is read. Then the browser binding must match (so a redirect planted in
//!    another browser — login CSRF, session swapping — is refused), then `iss` must name the
//!    authorization server the request went to (RFC 9207 mix-up defence; required when the
//!    server advertises `authorization_response_iss_parameter_supported`). Only then is `error=`
//!    turned into a typed error or the code exchanged, with the client authentication the
//!    registration names.
//! 3. **Refresh** ([`SmartClient::refresh`]): single-flight through the store's lease, with a
//!    compare-and-swap write, so concurrent callers — in one process or many — spend a rotating
//!    refresh token once. Once the server has answered with new tokens, nothing loses them: a
//!    refreshed `id_token` that does not check out becomes a [`RefreshWarning`](crate::identity::RefreshWarning), a lost
//!    compare-and-swap is retried on the newer version, and a store that cannot save them returns
//!    them in [`RefreshError::NotSaved`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::config::ClientRegistration;
use crate::discovery::DiscoveryCache;
use crate::error::ConfigError;
use crate::http::HttpClient;
use crate::identity::IdTokenVerifier;
use crate::quirks::VendorQuirks;
use crate::store::Store;

mod builder;
mod detection;
mod errors;
mod launch;
mod refresh;
mod token_endpoint;

pub use crate::adapter_choice::{AUTO_ADAPTER, AdapterChoice};
pub use builder::{DEFAULT_REFRESH_LEASE_TTL, SmartClientBuilder};
pub use detection::DEFAULT_DETECTION_RETRY_AFTER;
pub use errors::{LaunchError, RefreshError};
pub(crate) use launch::check_auth_method;
pub use launch::{
    AuthorizationRequest, CallbackParams, CompletedLaunch, EhrLaunch, MIN_BROWSER_BINDING_CHARS,
    StandaloneLaunch,
};
pub use refresh::RefreshOptions;
pub(crate) use refresh::RefreshOutcome;

/// The SMART client: registrations, adapters, transport and store.
#[derive(Clone)]
pub struct SmartClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for SmartClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmartClient")
            .field(
                "registrations",
                &self.inner.registrations.keys().collect::<Vec<_>>(),
            )
            .field("adapters", &self.inner.adapters.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Adapters configured with a registration's options, by (registration name, adapter name).
type ConfiguredAdapters = HashMap<(String, String), Arc<dyn VendorQuirks>>;

struct Inner {
    registrations: BTreeMap<String, ClientRegistration>,
    adapters: HashMap<String, Arc<dyn VendorQuirks>>,
    /// Installation order, for detection.
    adapter_order: Vec<String>,
    default_adapter: Arc<dyn VendorQuirks>,
    /// Adapters configured with a registration's `adapter_options`, by (registration, adapter).
    configured: ConfiguredAdapters,
    /// Adapters detected for `adapter = "auto"` registrations, by FHIR base.
    detections: detection::Detections,
    /// How long a failed detection is remembered.
    detection_retry_after: Duration,
    store: Arc<dyn Store>,
    http: Arc<dyn HttpClient>,
    discovery: DiscoveryCache,
    id_tokens: IdTokenVerifier,
    state_ttl: Duration,
    lease_ttl: Duration,
    lease_wait: Duration,
    /// Each session's current bearer, so that a fresh token costs no store read.
    bearers: crate::bearer::BearerCache,
}

impl SmartClient {
    /// Starts building a client.
    pub fn builder() -> SmartClientBuilder {
        SmartClientBuilder::default()
    }

    /// The store sessions are kept in.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The in-process bearer cache.
    pub(crate) fn bearers(&self) -> &crate::bearer::BearerCache {
        &self.inner.bearers
    }

    /// How many sessions' bearers this client holds in process (at most the capacity given to
    /// [`SmartClientBuilder::bearer_cache_capacity`]).
    ///
    /// ```
    /// let client = smart_core::SmartClient::builder().build()?;
    /// assert_eq!(client.cached_bearers(), 0);
    /// # Ok::<(), smart_core::ConfigError>(())
    /// ```
    pub fn cached_bearers(&self) -> usize {
        self.inner.bearers.len()
    }

    /// The HTTP transport.
    pub fn http(&self) -> &Arc<dyn HttpClient> {
        &self.inner.http
    }

    /// The registrations, by name.
    pub fn registrations(&self) -> &BTreeMap<String, ClientRegistration> {
        &self.inner.registrations
    }

    /// The registration (and its name) that covers `iss`: an exact issuer match first, then the
    /// first pattern that matches (in name order).
    pub fn registration_for(&self, iss: &str) -> Option<(&str, &ClientRegistration)> {
        let regs = &self.inner.registrations;
        regs.iter()
            .find(|(_, r)| r.issuer == iss)
            .or_else(|| regs.iter().find(|(_, r)| r.matches_issuer(iss)))
            .map(|(n, r)| (n.as_str(), r))
    }

    /// The registration called `name`.
    pub(crate) fn registration_named(
        &self,
        name: &str,
    ) -> Result<&ClientRegistration, ConfigError> {
        self.inner
            .registrations
            .get(name)
            .ok_or_else(|| ConfigError::Invalid {
                field: format!("clients.{name}"),
                message: "no such registration".into(),
            })
    }
}
