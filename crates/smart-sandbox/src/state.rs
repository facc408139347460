//! The shared state at the top: the server's configuration (URLs, profile,
//! registered clients, behaviour switches, counters) and each area's own
//! state, composed.
//!
//! Each area defines its state next to its code and imports nothing from
//! here: the OAuth endpoints' [`OAuthState`] (token store, assertion caches,
//! signing keys), the FHIR API's [`FhirState`] (data set and resource store)
//! and the client-ID header log. [`Shared`] holds one of each; the handlers
//! take `Shared` and reach into the area they serve. So the module graph has
//! one direction, from the handlers through this module down to the areas'
//! state and the vocabulary modules, and no circle.
//!
//! Lock poisoning is ignored on purpose ([`crate::locks`]).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::Duration;

use crate::client_id_header::{ClientIdHeaderLog, MAX_RECORDED_VALUES};
use crate::config::{BASE_PLACEHOLDER, Behavior, ClientRegistration, TokenUnavailableStatus};
use crate::counters::CounterCells;
use crate::dynamic_registration::DynamicRegistrations;
use crate::fhir::state::{DataConfig, FhirFault, FhirState};
use crate::fhir::store::ResourceStore;
use crate::locks::lock;
use crate::oauth_state::{OAuthState, Store};
use crate::profile::{Urls, VendorProfile};

/// State shared by all request handlers and the [`Sandbox`](crate::Sandbox)
/// handle.
pub(crate) struct Shared {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub(crate) origin: String,
    /// `http://127.0.0.1:PORT/fhir` (generic profile), no trailing slash.
    pub(crate) fhir_base: String,
    /// `http://127.0.0.1:PORT/auth/token` (generic profile): the `aud`
    /// client assertions must carry.
    pub(crate) token_url: String,
    /// Every path and URL, as the profile shapes them.
    pub(crate) urls: Urls,
    /// The vendor profile the handlers follow.
    pub(crate) profile: VendorProfile,
    clients: RwLock<HashMap<String, ClientRegistration>>,
    behavior: Mutex<Behavior>,
    pub(crate) counters: CounterCells,
    /// The OAuth area: token store, assertion caches, signing keys.
    pub(crate) oauth: OAuthState,
    /// The FHIR area: data set and resource store.
    pub(crate) fhir: FhirState,
    /// The vendor client-ID header values seen.
    pub(crate) client_id_headers: ClientIdHeaderLog,
    /// The `active_at` values of refresh requests, oldest first (profiles
    /// with `active_user_presence`); at most [`MAX_RECORDED_VALUES`].
    pub(crate) active_at_seen: Mutex<VecDeque<u64>>,
    /// The `jti` of each token request's assertion, oldest first, read before any check
    /// (so also of requests answered by a fault); at most [`MAX_RECORDED_VALUES`].
    pub(crate) token_jtis_seen: Mutex<VecDeque<String>>,
    /// Dynamic client registration (profiles with a `registration_path`).
    pub(crate) dynamic: DynamicRegistrations,
}

impl Shared {
    pub(crate) fn new(
        urls: Urls,
        profile: VendorProfile,
        clients: Vec<ClientRegistration>,
        behavior: Behavior,
        data: DataConfig,
    ) -> Self {
        let shared = Shared {
            origin: urls.origin.clone(),
            fhir_base: urls.fhir_base.clone(),
            token_url: urls.url(&urls.token_path),
            urls,
            profile,
            clients: RwLock::new(HashMap::new()),
            oauth: OAuthState::new(&behavior),
            behavior: Mutex::new(behavior),
            counters: CounterCells::default(),
            fhir: FhirState::new(data),
            client_id_headers: ClientIdHeaderLog::default(),
            active_at_seen: Mutex::new(VecDeque::new()),
            token_jtis_seen: Mutex::new(VecDeque::new()),
            dynamic: DynamicRegistrations::default(),
        };
        for c in clients {
            shared.register_client(c);
        }
        shared
    }

    /// Adds or replaces a client, resolving [`BASE_PLACEHOLDER`].
    pub(crate) fn register_client(&self, mut client: ClientRegistration) {
        if let Err(msg) = client.validate(self.fhir.data.patient_count) {
            tracing::warn!(client_id = %client.client_id, "registering a client with a problem: {msg}");
        }
        if let Some(url) = &client.context.smart_style_url {
            client.context.smart_style_url = Some(url.replace(BASE_PLACEHOLDER, &self.origin));
        }
        let mut clients = self.clients.write().unwrap_or_else(|e| e.into_inner());
        clients.insert(client.client_id.clone(), client);
    }

    pub(crate) fn client(&self, client_id: &str) -> Option<ClientRegistration> {
        let clients = self.clients.read().unwrap_or_else(|e| e.into_inner());
        clients.get(client_id).cloned()
    }

    /// Whether `origin` (scheme://host[:port]) is the origin of any
    /// registered redirect or launch URI; such origins get CORS access to the
    /// token endpoint and the FHIR API.
    pub(crate) fn is_registered_origin(&self, origin: &str) -> bool {
        let clients = self.clients.read().unwrap_or_else(|e| e.into_inner());
        clients.values().any(|c| {
            c.redirect_uris
                .iter()
                .chain(c.launch_uri.iter())
                .filter_map(|u| url::Url::parse(u).ok())
                .any(|u| u.origin().ascii_serialization() == origin)
        })
    }

    pub(crate) fn behavior(&self) -> Behavior {
        lock(&self.behavior).clone()
    }

    pub(crate) fn update_behavior(&self, f: impl FnOnce(&mut Behavior)) {
        let changed = {
            let mut behavior = lock(&self.behavior);
            f(&mut behavior);
            behavior.clone()
        };
        self.oauth.set_retention(&changed);
    }

    /// The OAuth token store, locked.
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.oauth.store()
    }

    /// The FHIR resource store, generating the data set on first use.
    pub(crate) fn resources(&self) -> &RwLock<ResourceStore> {
        self.fhir.resources()
    }

    /// Whether `id` names a patient of the data set.
    pub(crate) fn patient_exists(&self, id: &str) -> bool {
        self.fhir.patient_exists(id)
    }

    /// The delay and the fault (if any) for the next FHIR request; consumes
    /// one unit of `fhir_rate_limit`, `fhir_unavailable`, `fhir_server_errors`
    /// or `fhir_gateway_timeouts`.
    pub(crate) fn take_fhir_faults(&self) -> (Option<Duration>, Option<FhirFault>) {
        let mut b = lock(&self.behavior);
        let fault = if b.fhir_rate_limit > 0 {
            b.fhir_rate_limit -= 1;
            Some(FhirFault::RateLimited {
                secs: b.fhir_retry_after_secs,
                http_date: b.fhir_retry_after_http_date,
            })
        } else if b.fhir_unavailable > 0 {
            b.fhir_unavailable -= 1;
            Some(FhirFault::Unavailable)
        } else if b.fhir_server_errors > 0 {
            b.fhir_server_errors -= 1;
            Some(FhirFault::ServerError)
        } else if b.fhir_gateway_timeouts > 0 {
            b.fhir_gateway_timeouts -= 1;
            Some(FhirFault::GatewayTimeout)
        } else {
            None
        };
        (b.fhir_delay, fault)
    }

    /// Records the `active_at` of a refresh request (the oldest is dropped
    /// past [`MAX_RECORDED_VALUES`]).
    pub(crate) fn record_active_at(&self, seconds: u64) {
        let mut seen = lock(&self.active_at_seen);
        if seen.len() >= MAX_RECORDED_VALUES {
            seen.pop_front();
        }
        seen.push_back(seconds);
    }

    /// Whether the next FHIR request answers a bodiless 403; consumes one
    /// unit of `Behavior::fhir_forbidden_without_body`.
    pub(crate) fn take_forbidden_without_body(&self) -> bool {
        let mut b = lock(&self.behavior);
        let take = b.fhir_forbidden_without_body > 0;
        if take {
            b.fhir_forbidden_without_body -= 1;
        }
        take
    }

    /// Whether the next token request answers a bare 400; consumes one unit
    /// of `Behavior::token_bare_400`.
    pub(crate) fn take_token_bare_400(&self) -> bool {
        let mut b = lock(&self.behavior);
        let take = b.token_bare_400 > 0;
        if take {
            b.token_bare_400 -= 1;
        }
        take
    }

    /// Whether the next token request answers `temporarily_unavailable`
    /// (and with which status); consumes one unit of
    /// `Behavior::token_unavailable`.
    pub(crate) fn take_token_unavailable(&self) -> Option<TokenUnavailableStatus> {
        let mut b = lock(&self.behavior);
        (b.token_unavailable > 0).then(|| {
            b.token_unavailable -= 1;
            b.token_unavailable_status
        })
    }
}
