//! The launch and token flows: [`SmartClient`].
//!
//! Order of operations matters for security, and this module fixes it:
//!
//! 1. **Begin** ([`SmartClient::begin_ehr_launch`], [`SmartClient::begin_standalone_launch`]):
//!    the issuer is looked up in the registrations *before any network call*, so an unknown `iss`
//!    never causes discovery, let alone a token request. Then discovery, PKCE S256, a 256-bit
//!    single-use `state` bound (in the [`Store`]) to the issuer, verifier, redirect URI and scopes,
//!    and `aud` equal to the FHIR base byte for byte.
//!    Each launch also gets a [`BrowserBinding`] (256 random bits) for the app to set as a cookie;
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
//!    refreshed `id_token` that does not check out becomes a [`RefreshWarning`], a lost
//!    compare-and-swap is retried on the newer version, and a store that cannot save them returns
//!    them in [`RefreshError::NotSaved`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{ACCEPT, CONTENT_TYPE, HeaderValue, LOCATION};
use serde_json::{Map, Value};
use smart_scopes::{PermissionSyntax, Scope, ScopeComparison, Scopes};
use tracing::Instrument as _;

use crate::config::{ClientRegistration, SmartConfig};
use crate::discovery::{
    Capability, Discovered, DiscoveryCache, DiscoverySource, SmartConfiguration,
};
use crate::error::{ConfigError, DiscoveryError, OAuthError, TokenError};
use crate::http::{HttpClient, check_transport_security, redact_url};
use crate::identity::{
    Expectations, IdTokenVerifier, IdentityError, RefreshWarning, RefreshedIdentity,
    VerifiedIdentity,
};
use crate::quirks::{
    AuthorizeMethod, AuthorizeParameters, LaunchKind, TokenGrant, TokenRequestParts, VendorQuirks,
};
use crate::secret::{BrowserBinding, LaunchHandle, PkceVerifier, RefreshToken};
use crate::store::{
    MemoryStore, PendingLaunch, Session, SessionId, SessionStatus, Store, StoreError, Versioned,
};
use crate::token::{LaunchContext, TokenResponse, now_unix, parse_token_response};

/// The registration adapter value that asks for detection.
pub const AUTO_ADAPTER: &str = "auto";

/// Which adapter was chosen for a server, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterChoice {
    /// The adapter's name.
    pub adapter: String,
    /// The evidence (e.g. "CapabilityStatement publisher is Epic Systems Corporation").
    pub reason: String,
}

/// Failure to begin or complete a launch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// No registration covers this issuer. Nothing was sent anywhere.
    #[error(
        "issuer {iss} is not registered; add a client registration for it (refusing to contact an unknown server)"
    )]
    UnknownIssuer {
        /// The issuer as received.
        iss: String,
    },
    /// A named registration does not exist.
    #[error("no client registration named `{name}`")]
    UnknownRegistration {
        /// The name.
        name: String,
    },
    /// A named registration does not cover the issuer.
    #[error("registration `{name}` is not for issuer {iss}")]
    RegistrationIssuerMismatch {
        /// The registration.
        name: String,
        /// The issuer.
        iss: String,
    },
    /// Discovery failed.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The server has no authorization endpoint (it only supports backend services).
    #[error(
        "{base} advertises no authorization_endpoint, so it cannot do EHR or standalone launches"
    )]
    NoAuthorizationEndpoint {
        /// The FHIR base.
        base: String,
    },
    /// The redirect carried no `state`. Nothing was exchanged.
    #[error(
        "the redirect has no `state` parameter; refusing it (possible CSRF). Start a new launch"
    )]
    MissingState,
    /// The `state` is unknown, expired or already used. Nothing was exchanged.
    #[error(
        "the redirect's `state` is unknown, expired or already used; refusing it (possible CSRF or replay). Start a new launch"
    )]
    UnknownState,
    /// The browser-binding value passed in the launch options is too short to be unguessable.
    #[error(
        "the browser-binding value passed to begin the launch has {chars} characters; use at least {MIN_BROWSER_BINDING_CHARS} random base64url characters (128 bits), or leave it out for a generated one"
    )]
    WeakBrowserBinding {
        /// Its length in characters.
        chars: usize,
    },
    /// The callback came without the launch's browser-binding value (the app did not pass the
    /// cookie it set at begin, or the redirect arrived in another browser). The pending launch is
    /// consumed; nothing was exchanged.
    #[error(
        "the redirect came without this launch's browser-binding value (the cookie set when the launch began); refusing it (possible login CSRF). Start a new launch in this browser"
    )]
    MissingBrowserBinding,
    /// The callback's browser-binding value is not the one issued with this launch's `state`. The
    /// pending launch is consumed; nothing was exchanged.
    #[error(
        "the redirect's `state` was issued to another browser (the browser-binding value does not match); refusing it (possible login CSRF or session swapping). Start a new launch"
    )]
    BrowserBindingMismatch,
    /// The server advertises `authorization_response_iss_parameter_supported`, but the
    /// authorization response has no `iss` (RFC 9207). Nothing was exchanged.
    #[error(
        "the redirect has no `iss` parameter although {expected} says it always sends one (RFC 9207); refusing it (possible mix-up attack). Start a new launch"
    )]
    MissingIssuerParameter {
        /// The authorization server issuer expected.
        expected: String,
    },
    /// The authorization response's `iss` is not the authorization server the request was sent
    /// to (RFC 9207). Nothing was exchanged.
    #[error(
        "the redirect's `iss` is `{found}`, but the authorization request went to {expected}; refusing it (possible mix-up attack). Start a new launch"
    )]
    IssuerParameterMismatch {
        /// The authorization server issuer expected.
        expected: String,
        /// The `iss` received (an excerpt, control characters escaped).
        found: String,
    },
    /// The redirect carried neither `code` nor `error`.
    #[error("the redirect has no authorization `code`; start a new launch")]
    MissingCode,
    /// The authorization server redirected back with an error.
    #[error("authorization failed: {0}")]
    Authorization(OAuthError),
    /// The code exchange failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The store failed.
    #[error("launch state storage failed: {0}")]
    Store(#[from] StoreError),
    /// The registration names an adapter that is not installed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The registration cannot launch (a backend-services registration has no redirect URI).
    #[error(
        "registration `{name}` has no redirect_uri, so it can only be used for backend services"
    )]
    NotALaunchRegistration {
        /// The registration.
        name: String,
    },
    /// The server does not advertise the registration's client-authentication method.
    #[error(
        "{base} does not advertise `{method}` in token_endpoint_auth_methods_supported (it offers: {offered}); change the registration's client type"
    )]
    AuthMethodNotAdvertised {
        /// The FHIR base.
        base: String,
        /// The method the registration needs.
        method: String,
        /// What the server offers.
        offered: String,
    },
    /// `openid` was granted but the `id_token` did not verify. No session was stored.
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

/// Failure to refresh a session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// No such session.
    #[error("session not found; start a new launch")]
    NotFound,
    /// The session has ended.
    #[error("the session has ended ({reason}); start a new launch")]
    Ended {
        /// Why it ended.
        reason: String,
    },
    /// The session has no refresh token (none was granted: request `offline_access` or
    /// `online_access`, and check the server's policy).
    #[error(
        "the session has no refresh token; request offline_access or online_access, or relaunch when the token expires"
    )]
    NoRefreshToken,
    /// A narrower scope was asked for that is not part of the grant.
    #[error("scope `{scope}` was not granted to this session, so a refresh cannot request it")]
    ScopeNotGranted {
        /// The scope.
        scope: String,
    },
    /// The server rejected the refresh token; the session is now ended.
    #[error(
        "the server rejected the refresh token, so the session has ended; start a new launch ({0})"
    )]
    Rejected(TokenError),
    /// The refresh request failed for another reason; the session is unchanged.
    #[error(transparent)]
    Token(TokenError),
    /// Another worker held the refresh lease for too long.
    #[error("timed out waiting for another worker's refresh of this session")]
    LeaseTimeout,
    /// The store failed.
    #[error("session storage failed: {0}")]
    Store(#[from] StoreError),
    /// The session's registration or adapter is no longer configured.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The server issued new tokens but the store could not save them. The refreshed session is
    /// here, new (possibly rotated) refresh token included: the old refresh token may no longer
    /// work, so save this one somewhere or the grant is lost.
    #[error(
        "the server issued new tokens but they could not be saved ({source}); the refreshed session is in this error, keep it or the grant may be lost"
    )]
    NotSaved {
        /// The refreshed session, new tokens included.
        session: Box<Session>,
        /// Why the store refused it.
        source: StoreError,
    },
}

/// The shortest browser-binding value accepted from an app: 22 base64url characters, 128 bits.
pub const MIN_BROWSER_BINDING_CHARS: usize = 22;

/// Where to send the user's browser to authorize.
#[derive(Clone)]
pub struct AuthorizationRequest {
    /// GET: the full URL (redirect the browser to it). POST: the authorization endpoint.
    pub url: String,
    /// GET or POST.
    pub method: AuthorizeMethod,
    /// The form body for POST (`application/x-www-form-urlencoded`).
    pub form: Option<String>,
    /// The `state` parameter (bound to this launch in the store).
    pub state: String,
    /// The registration used.
    pub registration: String,
    /// Where the configuration came from.
    pub discovery_source: DiscoverySource,
    /// The value binding this launch to the browser: set it as a cookie on the response that
    /// redirects the browser, and pass it back with the callback
    /// ([`CallbackParams::with_browser_binding`]). See [`AuthorizationRequest::browser_binding`].
    pub browser_binding: BrowserBinding,
}

impl fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationRequest")
            .field("endpoint", &redact_url(&self.url))
            .field("method", &self.method)
            .field("registration", &self.registration)
            .finish_non_exhaustive()
    }
}

impl AuthorizationRequest {
    /// The browser-binding value of this launch: the one passed in the launch options, or a
    /// fresh 256-bit random one. The app keeps it in the browser that is about to be redirected
    /// (a `__Host-` cookie, `HttpOnly; Secure; SameSite=Lax; Path=/`, a few minutes' `Max-Age`)
    /// and hands it to [`SmartClient::complete_launch`] with the callback, which refuses the
    /// callback without it. Only its SHA-256 is stored. Why and how:
    /// `docs/guides/browser-binding.md`.
    pub fn browser_binding(&self) -> &BrowserBinding {
        &self.browser_binding
    }

    /// For POST: a self-submitting HTML form to serve to the browser. `None` for GET.
    pub fn html_form(&self) -> Option<String> {
        let form = self.form.as_ref()?;
        let inputs: String = url::form_urlencoded::parse(form.as_bytes())
            .map(|(k, v)| {
                format!(
                    "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                    html_escape(&k),
                    html_escape(&v)
                )
            })
            .collect();
        Some(format!(
            "<!doctype html><html><head><title>Continue to sign in</title></head>\
             <body onload=\"document.forms[0].submit()\"><form method=\"post\" action=\"{}\">{inputs}\
             <noscript><button type=\"submit\">Continue</button></noscript></form></body></html>",
            html_escape(&self.url)
        ))
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&#39;")
}

/// The query parameters of the redirect back to the app.
///
/// Besides the query, a callback carries the launch's browser-binding value, read by the app from
/// the cookie it set when the launch began: [`CallbackParams::with_browser_binding`].
#[derive(Clone, Default)]
pub struct CallbackParams {
    params: BTreeMap<String, String>,
    browser_binding: Option<BrowserBinding>,
}

impl fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The values include the code and state: print only which parameters are present.
        f.debug_struct("CallbackParams")
            .field("keys", &self.params.keys().collect::<Vec<_>>())
            .field("browser_binding", &self.browser_binding.is_some())
            .finish()
    }
}

impl CallbackParams {
    /// From a raw query string (`code=…&state=…`). When a parameter repeats, the first wins.
    pub fn from_query(query: &str) -> Self {
        Self::from_pairs(url::form_urlencoded::parse(
            query.trim_start_matches('?').as_bytes(),
        ))
    }

    /// From the full redirect URL.
    pub fn from_url(url: &str) -> Option<Self> {
        let url = url::Url::parse(url).ok()?;
        Some(Self::from_query(url.query().unwrap_or("")))
    }

    /// From decoded name/value pairs.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut params = BTreeMap::new();
        for (k, v) in pairs {
            params.entry(k.into()).or_insert_with(|| v.into());
        }
        CallbackParams {
            params,
            browser_binding: None,
        }
    }

    /// Adds the browser-binding value the app stored in this browser when the launch began
    /// ([`AuthorizationRequest::browser_binding`]), typically read from its cookie.
    pub fn with_browser_binding(mut self, binding: BrowserBinding) -> Self {
        self.browser_binding = Some(binding);
        self
    }

    /// The browser-binding value, if one was added.
    pub fn browser_binding(&self) -> Option<&BrowserBinding> {
        self.browser_binding.as_ref()
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Options for an EHR launch beyond `iss` and `launch`.
#[derive(Debug, Clone, Default)]
pub struct EhrLaunch {
    /// Scopes to request instead of the registration's defaults (`launch` is always added).
    pub scopes: Option<Scopes>,
    /// Use this registration (it must cover the issuer) instead of looking one up.
    pub registration: Option<String>,
    /// Bind the launch to this value (e.g. one derived from the app's own session cookie)
    /// instead of a fresh random one. It must be unguessable: at least 128 random bits.
    pub browser_binding: Option<BrowserBinding>,
}

/// Options for a standalone launch.
#[derive(Debug, Clone, Default)]
pub struct StandaloneLaunch {
    /// Scopes to request instead of the registration's defaults (`launch` is always removed).
    pub scopes: Option<Scopes>,
    /// Use this registration (it must cover the FHIR base) instead of looking one up.
    pub registration: Option<String>,
    /// Bind the launch to this value instead of a fresh random one (see [`EhrLaunch`]).
    pub browser_binding: Option<BrowserBinding>,
}

/// Options for [`SmartClient::refresh`].
#[derive(Debug, Clone, Default)]
pub struct RefreshOptions {
    /// Ask for a subset of the granted scopes.
    pub scope: Option<Scopes>,
    /// Refresh only if the session is still at this version; if another worker already refreshed
    /// it (the version moved on), return that result instead. Default: the version read when
    /// `refresh` is called — which makes concurrent calls share one refresh.
    pub if_version: Option<u64>,
    /// Refresh even inside the adapter's minimum refresh interval (e.g. because the server just
    /// rejected the current token). Default: a session refreshed less than
    /// [`VendorQuirks::min_refresh_interval`] ago, whose token has not expired, is returned as is.
    pub force: bool,
}

/// A completed launch.
#[derive(Debug, Clone)]
pub struct CompletedLaunch {
    /// The new session's id.
    pub session_id: SessionId,
    /// The session (tokens, context, scopes).
    pub session: Session,
    /// The session's store version.
    pub version: u64,
    /// Requested versus granted scopes.
    pub scopes: ScopeComparison,
    /// Launch context that was requested (`launch/patient`, …) but not provided.
    pub missing_context: Vec<String>,
}

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

struct Inner {
    registrations: BTreeMap<String, ClientRegistration>,
    adapters: HashMap<String, Arc<dyn VendorQuirks>>,
    /// Installation order, for detection.
    adapter_order: Vec<String>,
    default_adapter: Arc<dyn VendorQuirks>,
    /// Adapters detected for `adapter = "auto"` registrations, by registration issuer.
    detected: std::sync::Mutex<HashMap<String, AdapterChoice>>,
    store: Arc<dyn Store>,
    http: Arc<dyn HttpClient>,
    discovery: DiscoveryCache,
    id_tokens: IdTokenVerifier,
    state_ttl: Duration,
    lease_ttl: Duration,
    lease_wait: Duration,
}

/// Builds a [`SmartClient`].
#[derive(Default)]
pub struct SmartClientBuilder {
    registrations: BTreeMap<String, ClientRegistration>,
    adapters: Vec<Arc<dyn VendorQuirks>>,
    store: Option<Arc<dyn Store>>,
    http: Option<Arc<dyn HttpClient>>,
    config: Option<SmartConfig>,
    lease_ttl: Option<Duration>,
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

    /// Installs a vendor adapter (looked up by [`VendorQuirks::name`]). The first one installed
    /// is also used for servers no registration names (e.g. plain discovery).
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

    /// How long one refresh may hold a session's lease (default 60 s, above the HTTP timeout).
    pub fn refresh_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = Some(ttl);
        self
    }

    /// Validates and builds.
    pub fn build(self) -> Result<SmartClient, ConfigError> {
        let config = self.config.unwrap_or_default();
        let Some(default_adapter) = self.adapters.first().cloned() else {
            return Err(ConfigError::Invalid {
                field: "adapters".into(),
                message: "no vendor adapter installed; add .adapter(Arc::new(smart_adapter_generic::Generic))".into(),
            });
        };
        let adapter_order: Vec<String> =
            self.adapters.iter().map(|a| a.name().to_owned()).collect();
        let adapters: HashMap<String, Arc<dyn VendorQuirks>> = self
            .adapters
            .into_iter()
            .map(|a| (a.name().to_owned(), a))
            .collect();
        for (name, registration) in &self.registrations {
            registration.validate(name)?;
            if registration.adapter != AUTO_ADAPTER && !adapters.contains_key(&registration.adapter)
            {
                return Err(ConfigError::Invalid {
                    field: format!("clients.{name}.adapter"),
                    message: format!(
                        "adapter `{}` is not installed (installed: {}); fix the name or build with that adapter",
                        registration.adapter,
                        adapters.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                });
            }
        }
        let http: Arc<dyn HttpClient> = match self.http {
            Some(http) => http,
            None => default_http(&config)?,
        };
        let lease_ttl = self.lease_ttl.unwrap_or(Duration::from_secs(60));
        Ok(SmartClient {
            inner: Arc::new(Inner {
                registrations: self.registrations,
                adapters,
                default_adapter,
                adapter_order,
                detected: std::sync::Mutex::new(HashMap::new()),
                store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
                http,
                discovery: DiscoveryCache::new(Duration::from_secs(
                    config.discovery.cache_ttl_secs,
                )),
                id_tokens: IdTokenVerifier::default(),
                state_ttl: config.state_ttl(),
                lease_ttl,
                lease_wait: lease_ttl + Duration::from_secs(5),
            }),
        })
    }
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

impl SmartClient {
    /// Starts building a client.
    pub fn builder() -> SmartClientBuilder {
        SmartClientBuilder::default()
    }

    /// The store sessions are kept in.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
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

    /// The adapter a registration uses. For `adapter = "auto"` this is the adapter detected for
    /// its issuer (see [`SmartClient::detect_adapter`]), or the default one before detection ran.
    pub fn adapter_for(
        &self,
        registration: &ClientRegistration,
    ) -> Result<&Arc<dyn VendorQuirks>, ConfigError> {
        let name = if registration.adapter == AUTO_ADAPTER {
            let detected = self
                .inner
                .detected
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match detected.get(&registration.issuer) {
                Some(choice) => choice.adapter.clone(),
                None => return Ok(&self.inner.default_adapter),
            }
        } else {
            registration.adapter.clone()
        };
        self.inner
            .adapters
            .get(&name)
            .ok_or_else(|| ConfigError::Invalid {
                field: "adapter".into(),
                message: format!("adapter `{name}` is not installed"),
            })
    }

    /// Runs detection for an `adapter = "auto"` registration the first time it meets `base`.
    pub(crate) async fn ensure_detected(&self, registration: &ClientRegistration, base: &str) {
        if registration.adapter != AUTO_ADAPTER {
            return;
        }
        let known = self
            .inner
            .detected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&registration.issuer);
        if !known {
            let choice = self.detect_adapter(base).await;
            tracing::info!(adapter = %choice.adapter, reason = %choice.reason, "adapter detected");
            self.inner
                .detected
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(registration.issuer.clone(), choice);
        }
    }

    /// Picks the installed adapter that recognises the server at `fhir_base` — from its URL, its
    /// SMART configuration and its CapabilityStatement (software name, publisher) — and says
    /// why. The default adapter when none does, or when the server cannot be reached.
    pub async fn detect_adapter(&self, fhir_base: &str) -> AdapterChoice {
        let default = AdapterChoice {
            adapter: self.inner.default_adapter.name().to_owned(),
            reason: String::new(),
        };
        let Ok(base) = url::Url::parse(fhir_base) else {
            return AdapterChoice {
                reason: "the FHIR base is not a URL".into(),
                ..default
            };
        };
        let discovered = match self
            .discover_with(&*self.inner.default_adapter, fhir_base)
            .await
        {
            Ok(d) => d,
            Err(e) => {
                return AdapterChoice {
                    reason: format!("discovery failed ({e}); no vendor evidence"),
                    ..default
                };
            }
        };
        let statement = self.capability_statement(fhir_base).await;
        for name in &self.inner.adapter_order {
            let Some(adapter) = self.inner.adapters.get(name) else {
                continue;
            };
            if let Some(reason) =
                adapter.recognizes(&base, &discovered.configuration, statement.as_ref())
            {
                return AdapterChoice {
                    adapter: name.clone(),
                    reason,
                };
            }
        }
        AdapterChoice {
            reason:
                "no installed vendor adapter recognised the server; using the spec-exact default"
                    .into(),
            ..default
        }
    }

    /// `GET {base}/metadata` as JSON, for adapter detection; `None` on any failure.
    async fn capability_statement(&self, fhir_base: &str) -> Option<Value> {
        let url = format!("{}/metadata", fhir_base.trim_end_matches('/'));
        check_transport_security(&url::Url::parse(&url).ok()?).ok()?;
        let request = http::Request::get(&url)
            .header(ACCEPT, "application/fhir+json, application/json")
            .body(Vec::new())
            .ok()?;
        let response = self.inner.http.execute(request).await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        serde_json::from_slice(response.body()).ok()
    }

    /// Discovers (through the cache) the configuration of `fhir_base`, with the adapter of the
    /// registration that covers it, or the default adapter.
    pub async fn discover(&self, fhir_base: &str) -> Result<Arc<Discovered>, DiscoveryError> {
        let quirks = match self.registration_for(fhir_base) {
            Some((_, r)) => self
                .inner
                .adapters
                .get(&r.adapter)
                .unwrap_or(&self.inner.default_adapter),
            None => &self.inner.default_adapter,
        };
        self.inner
            .discovery
            .get_or_discover(&*self.inner.http, &**quirks, fhir_base)
            .await
    }

    /// Begins an EHR launch from the `iss` and `launch` parameters the EHR sent to the app's
    /// launch URL.
    pub async fn begin_ehr_launch(
        &self,
        iss: &str,
        launch: &str,
    ) -> Result<AuthorizationRequest, LaunchError> {
        self.begin_ehr_launch_with(iss, launch, EhrLaunch::default())
            .await
    }

    /// [`begin_ehr_launch`](Self::begin_ehr_launch) with options.
    pub async fn begin_ehr_launch_with(
        &self,
        iss: &str,
        launch: &str,
        options: EhrLaunch,
    ) -> Result<AuthorizationRequest, LaunchError> {
        self.begin(
            LaunchKind::Ehr,
            iss,
            Some(LaunchHandle::new(launch)),
            options.scopes,
            options.registration,
            options.browser_binding,
        )
        .await
    }

    /// Begins a standalone launch against `fhir_base`.
    pub async fn begin_standalone_launch(
        &self,
        fhir_base: &str,
        options: StandaloneLaunch,
    ) -> Result<AuthorizationRequest, LaunchError> {
        self.begin(
            LaunchKind::Standalone,
            fhir_base,
            None,
            options.scopes,
            options.registration,
            options.browser_binding,
        )
        .await
    }

    fn resolve(
        &self,
        iss: &str,
        name: Option<String>,
    ) -> Result<(String, ClientRegistration), LaunchError> {
        match name {
            Some(name) => {
                let reg = self
                    .inner
                    .registrations
                    .get(&name)
                    .ok_or_else(|| LaunchError::UnknownRegistration { name: name.clone() })?;
                if !reg.matches_issuer(iss) {
                    return Err(LaunchError::RegistrationIssuerMismatch {
                        name,
                        iss: iss.to_owned(),
                    });
                }
                Ok((name, reg.clone()))
            }
            None => self
                .registration_for(iss)
                .map(|(n, r)| (n.to_owned(), r.clone()))
                .ok_or_else(|| LaunchError::UnknownIssuer {
                    iss: iss.to_owned(),
                }),
        }
    }

    #[tracing::instrument(name = "smart.begin_launch", skip_all, fields(iss = %iss, kind = ?kind, client_id))]
    async fn begin(
        &self,
        kind: LaunchKind,
        iss: &str,
        launch: Option<LaunchHandle>,
        scopes: Option<Scopes>,
        registration: Option<String>,
        browser_binding: Option<BrowserBinding>,
    ) -> Result<AuthorizationRequest, LaunchError> {
        // The allow-list check comes first: nothing is sent for an unknown issuer.
        let (name, reg) = self.resolve(iss, registration)?;
        let browser_binding = match browser_binding {
            Some(given) => {
                let chars = given.expose_secret().chars().count();
                if chars < MIN_BROWSER_BINDING_CHARS {
                    return Err(LaunchError::WeakBrowserBinding { chars });
                }
                given
            }
            None => BrowserBinding::generate(),
        };
        tracing::Span::current().record("client_id", reg.client_id.as_str());
        self.ensure_detected(&reg, iss).await;
        let redirect_uri = reg
            .redirect_uri
            .clone()
            .ok_or_else(|| LaunchError::NotALaunchRegistration { name: name.clone() })?;
        let quirks = self.adapter_for(&reg)?.clone();
        let discovered = self
            .inner
            .discovery
            .get_or_discover(&*self.inner.http, &*quirks, iss)
            .await?;
        let config = &discovered.configuration;
        let endpoint = config.authorization_endpoint.clone().ok_or_else(|| {
            LaunchError::NoAuthorizationEndpoint {
                base: iss.to_owned(),
            }
        })?;
        warn_about_capabilities(config, kind);
        check_auth_method(config, &reg, iss)?;

        let mut scopes = scopes.unwrap_or_else(|| reg.scopes.clone());
        match kind {
            LaunchKind::Ehr => {
                if !scopes.contains(&Scope::Launch) {
                    scopes.insert(Scope::Launch);
                }
            }
            LaunchKind::Standalone => {
                scopes.remove(&Scope::Launch);
            }
        }
        let mut scopes = adapt_scope_syntax(scopes, &discovered);
        quirks.adapt_requested_scopes(kind, config, &mut scopes);

        let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
        // 256 bits from the OS RNG, base64url (the spec asks for at least 122).
        let state = oauth2::CsrfToken::new_random_len(32).secret().clone();
        let mut params = AuthorizeParameters::default();
        params.set("response_type", "code");
        params.set("client_id", reg.client_id.clone());
        params.set("redirect_uri", redirect_uri.clone());
        if let Some(launch) = &launch {
            params.set("launch", launch.expose_secret());
        }
        params.set("scope", scopes.to_string());
        params.set("state", state.clone());
        params.set("aud", iss);
        params.set("code_challenge", challenge.as_str());
        params.set("code_challenge_method", "S256");
        quirks.authorize_parameters(kind, &mut params);

        let form = params.to_form();
        let separator = if endpoint.contains('?') { '&' } else { '?' };
        let get_url = format!("{endpoint}{separator}{form}");
        let method = quirks.authorize_method(config, kind, reg.authorize_method, get_url.len());

        // RFC 9207: the `iss` an authorization response may carry is the authorization server's
        // issuer identifier, its metadata `issuer`. SMART makes `issuer` optional, so without one
        // the issuer the adapter expects in id_tokens stands in (the FHIR base by default, the
        // reference servers' convention).
        let authorization_server_issuer = config
            .issuer
            .clone()
            .unwrap_or_else(|| quirks.id_token_issuer(config, iss, None).expected);
        let iss_parameter_required = config
            .extra
            .get("authorization_response_iss_parameter_supported")
            .and_then(Value::as_bool)
            == Some(true);

        let now = now_unix();
        let pending = PendingLaunch {
            registration: name.clone(),
            fhir_base: iss.to_owned(),
            kind,
            launch,
            redirect_uri,
            requested_scopes: scopes,
            pkce_verifier: PkceVerifier::new(verifier.secret().clone()),
            token_endpoint: config.token_endpoint.clone(),
            created_at: now,
            expires_at: now.saturating_add(self.inner.state_ttl.as_secs()),
            browser_binding_sha256: browser_binding.sha256(),
            authorization_server_issuer: Some(authorization_server_issuer),
            iss_parameter_required,
        };
        self.inner
            .store
            .put_pending_launch(&state, &pending)
            .await?;
        tracing::debug!(method = ?method, "authorization request ready");
        let (url, form) = match method {
            AuthorizeMethod::Get => (get_url, None),
            AuthorizeMethod::Post => (endpoint, Some(form)),
        };
        Ok(AuthorizationRequest {
            url,
            method,
            form,
            state,
            registration: name,
            discovery_source: discovered.source.clone(),
            browser_binding,
        })
    }

    /// Completes a launch from the redirect's query parameters: consumes `state`, checks the
    /// browser binding ([`CallbackParams::with_browser_binding`]) and the `iss` parameter
    /// (RFC 9207), surfaces authorization errors, exchanges the code and stores the new session.
    ///
    /// The pending launch is consumed whatever happens next, so a `state` works once.
    #[tracing::instrument(name = "smart.complete_launch", skip_all, fields(client_id, iss))]
    pub async fn complete_launch(
        &self,
        callback: &CallbackParams,
    ) -> Result<CompletedLaunch, LaunchError> {
        // `state` first, and nothing else until it has been matched and consumed.
        let state = callback
            .get("state")
            .filter(|s| !s.is_empty())
            .ok_or(LaunchError::MissingState)?;
        let pending = self
            .inner
            .store
            .take_pending_launch(state)
            .await?
            .ok_or(LaunchError::UnknownState)?;
        let span = tracing::Span::current();
        span.record("iss", pending.fhir_base.as_str());
        check_browser_binding(callback, &pending)?;
        check_issuer_parameter(callback, &pending)?;

        if let Some(code) = callback.get("error") {
            let error = OAuthError {
                code: crate::quirks::spec::error_code(code),
                description: callback.get("error_description").map(str::to_owned),
                uri: callback.get("error_uri").map(str::to_owned),
            };
            tracing::info!(error = %error.code, "authorization server returned an error");
            return Err(LaunchError::Authorization(error));
        }
        let code = callback
            .get("code")
            .filter(|c| !c.is_empty())
            .ok_or(LaunchError::MissingCode)?;

        let reg = self
            .inner
            .registrations
            .get(&pending.registration)
            .ok_or_else(|| LaunchError::UnknownRegistration {
                name: pending.registration.clone(),
            })?
            .clone();
        span.record("client_id", reg.client_id.as_str());
        self.ensure_detected(&reg, &pending.fhir_base).await;
        let quirks = self.adapter_for(&reg)?.clone();
        let form = vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), code.to_owned()),
            ("redirect_uri".to_owned(), pending.redirect_uri.clone()),
            (
                "code_verifier".to_owned(),
                pending.pkce_verifier.expose_secret().to_owned(),
            ),
        ];
        let response = self
            .token_call(
                &reg,
                &*quirks,
                &pending.token_endpoint,
                TokenGrant::AuthorizationCode,
                form,
            )
            .await?;

        let now = now_unix();
        let granted = response
            .tokens
            .granted_scopes
            .clone()
            .unwrap_or_else(|| pending.requested_scopes.clone());
        let identity = if granted.has_openid() {
            match &response.tokens.id_token {
                Some(id_token) => Some(
                    self.verify_id_token(
                        &reg,
                        &*quirks,
                        &pending.fhir_base,
                        id_token.expose_secret(),
                    )
                    .await?,
                ),
                None => {
                    tracing::warn!("openid was granted but no id_token was issued");
                    None
                }
            }
        } else {
            None
        };
        let scopes = Scopes::compare_with(
            &pending.requested_scopes,
            &granted,
            response.tokens.refresh_token.is_some(),
        );
        let missing_context = missing_context(&pending.requested_scopes, &response.context);
        if !missing_context.is_empty() {
            tracing::warn!(missing = ?missing_context, "requested launch context was not provided");
        }
        let session = Session {
            registration: pending.registration.clone(),
            client_id: reg.client_id.clone(),
            fhir_base: pending.fhir_base.clone(),
            token_endpoint: pending.token_endpoint.clone(),
            tokens: response.tokens,
            context: response.context,
            requested_scopes: pending.requested_scopes,
            kind: pending.kind,
            created_at: now,
            refreshed_at: None,
            status: SessionStatus::Active,
            identity,
            refresh_warnings: Vec::new(),
        };
        let session_id = SessionId::generate();
        let version = self
            .inner
            .store
            .insert_session(&session_id, &session)
            .await?;
        tracing::info!(
            dropped = scopes.dropped.len(),
            narrowed = scopes.narrowed.len(),
            "launch completed"
        );
        Ok(CompletedLaunch {
            session_id,
            session,
            version,
            scopes,
            missing_context,
        })
    }

    /// Deletes a session (the user signed out, or the app no longer needs it). Returns whether it
    /// existed. The tokens are not revoked at the server.
    pub async fn forget_session(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.inner.store.delete_session(id).await
    }

    /// The stored session.
    pub async fn session(&self, id: &SessionId) -> Result<Option<Versioned<Session>>, StoreError> {
        self.inner.store.load_session(id).await
    }

    /// Refreshes a session's tokens, once however many tasks or processes ask at the same time.
    ///
    /// The new refresh token replaces the old one only when the server sent one (Oracle Health
    /// and Epic usually do not rotate). An `invalid_grant` ends the session.
    #[tracing::instrument(name = "smart.refresh", skip_all, fields(client_id))]
    pub async fn refresh(
        &self,
        id: &SessionId,
        options: RefreshOptions,
    ) -> Result<Versioned<Session>, RefreshError> {
        let store = &self.inner.store;
        let first = store
            .load_session(id)
            .await?
            .ok_or(RefreshError::NotFound)?;
        tracing::Span::current().record("client_id", first.value.client_id.as_str());
        let baseline = options.if_version.unwrap_or(first.version);
        if first.version > baseline {
            return ensure_active(first);
        }
        let owner = crate::random_token(12);
        let deadline = Instant::now() + self.inner.lease_wait;
        let mut delay = Duration::from_millis(5);
        loop {
            if let Some(lease) = store
                .try_acquire_lease(id, &owner, self.inner.lease_ttl)
                .await?
            {
                let result = self.refresh_under_lease(id, baseline, &options).await;
                if let Err(e) = store.release_lease(&lease).await {
                    tracing::warn!(error = %e, "could not release the refresh lease; it will expire");
                }
                return result;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(100));
            let current = store
                .load_session(id)
                .await?
                .ok_or(RefreshError::NotFound)?;
            if current.version > baseline {
                return ensure_active(current);
            }
            if Instant::now() > deadline {
                return Err(RefreshError::LeaseTimeout);
            }
        }
    }

    async fn refresh_under_lease(
        &self,
        id: &SessionId,
        baseline: u64,
        options: &RefreshOptions,
    ) -> Result<Versioned<Session>, RefreshError> {
        let store = &self.inner.store;
        let current = store
            .load_session(id)
            .await?
            .ok_or(RefreshError::NotFound)?;
        if current.version > baseline {
            // Someone refreshed between our first read and taking the lease.
            return ensure_active(current);
        }
        let current = ensure_active(current)?;
        let session = &current.value;
        let refresh_token = session
            .tokens
            .refresh_token
            .clone()
            .ok_or(RefreshError::NoRefreshToken)?;
        let mut form = vec![
            ("grant_type".to_owned(), "refresh_token".to_owned()),
            (
                "refresh_token".to_owned(),
                refresh_token.expose_secret().to_owned(),
            ),
        ];
        if let Some(scope) = &options.scope {
            if let Some(extra) = scope.iter().find(|s| !session.effective_scopes().covers(s)) {
                return Err(RefreshError::ScopeNotGranted {
                    scope: extra.to_string(),
                });
            }
            form.push(("scope".to_owned(), scope.to_string()));
        }
        let reg = self
            .inner
            .registrations
            .get(&session.registration)
            .ok_or_else(|| ConfigError::Invalid {
                field: format!("clients.{}", session.registration),
                message: "the session's registration is no longer configured".into(),
            })?
            .clone();
        self.ensure_detected(&reg, &session.fhir_base).await;
        let quirks = self.adapter_for(&reg)?.clone();
        let now = now_unix();
        let interval = quirks.min_refresh_interval().as_secs();
        let recently_refreshed = session
            .refreshed_at
            .is_some_and(|at| now.saturating_sub(at) < interval);
        let still_valid = session.tokens.expires_at.is_some_and(|exp| exp > now);
        if !options.force && options.scope.is_none() && recently_refreshed && still_valid {
            tracing::debug!(
                "refreshed less than the server's minimum interval ago; keeping the current token"
            );
            return Ok(current);
        }
        let http_response = self
            .send_token_request(
                &reg,
                &*quirks,
                &session.token_endpoint,
                TokenGrant::RefreshToken,
                form,
            )
            .await
            .map_err(RefreshError::Token)?;
        // From here on the server may have rotated the refresh token: no path may drop it.
        let rotated_in_body = refresh_token_in_success_body(&http_response);
        match interpret_token_response(
            &*quirks,
            TokenGrant::RefreshToken,
            http_response,
            now_unix(),
        ) {
            Ok(response) => {
                let refreshed_identity = match &response.tokens.id_token {
                    Some(id_token) => Some(
                        self.check_refreshed_id_token(
                            &reg,
                            &*quirks,
                            session,
                            id_token.expose_secret(),
                        )
                        .await,
                    ),
                    None => None,
                };
                let mut updated = merge_refresh(session, response, refresh_token, now_unix());
                updated.refresh_warnings = Vec::new();
                match refreshed_identity {
                    Some(RefreshedIdentity::Replace(identity)) => {
                        updated.identity = Some(identity);
                    }
                    Some(RefreshedIdentity::Keep(warning)) => {
                        tracing::warn!(warning = %warning, "refreshed id_token not adopted");
                        // The launch's id_token stays with the launch's identity.
                        updated.tokens.id_token = session.tokens.id_token.clone();
                        updated.refresh_warnings.push(warning);
                    }
                    None => {}
                }
                let saved = self.save_refreshed(id, current.version, updated).await?;
                tracing::info!(
                    rotated = saved.value.tokens.refresh_token != session.tokens.refresh_token,
                    warnings = saved.value.refresh_warnings.len(),
                    "session refreshed"
                );
                Ok(saved)
            }
            Err(e @ TokenError::OAuth { .. })
                if e.oauth_code() == Some(&crate::OAuthErrorCode::InvalidGrant) =>
            {
                let mut ended = session.clone();
                ended.status = SessionStatus::Ended {
                    reason: "the server rejected the refresh token (invalid_grant)".into(),
                    at: now_unix(),
                };
                if let Err(store_error) = store
                    .compare_and_swap_session(id, current.version, &ended)
                    .await
                {
                    tracing::warn!(error = %store_error, "could not mark the session ended");
                }
                Err(RefreshError::Rejected(e))
            }
            Err(e) => {
                // A success status with a body that does not parse (e.g. an unsupported
                // token_type) may still have rotated the refresh token: keep the new one.
                if let Some(rotated) = rotated_in_body
                    && Some(&rotated) != session.tokens.refresh_token.as_ref()
                {
                    let mut kept = session.clone();
                    kept.tokens.refresh_token = Some(rotated);
                    self.save_refreshed(id, current.version, kept).await?;
                    tracing::warn!(
                        "the refresh response was unusable but carried a new refresh token; it was saved"
                    );
                }
                Err(RefreshError::Token(e))
            }
        }
    }

    /// Writes a refreshed session. The server has already issued its tokens, so a lost
    /// compare-and-swap (another worker wrote meanwhile, e.g. after this worker's lease expired)
    /// is retried on the newer version — these tokens are the newest the server issued — and any
    /// other failure returns the session in [`RefreshError::NotSaved`].
    async fn save_refreshed(
        &self,
        id: &SessionId,
        mut expected_version: u64,
        updated: Session,
    ) -> Result<Versioned<Session>, RefreshError> {
        const ATTEMPTS: usize = 3;
        let store = &self.inner.store;
        let mut last_error = None;
        for _ in 0..ATTEMPTS {
            match store
                .compare_and_swap_session(id, expected_version, &updated)
                .await
            {
                Ok(version) => {
                    return Ok(Versioned {
                        value: updated,
                        version,
                    });
                }
                Err(StoreError::VersionConflict { current }) => {
                    tracing::warn!(
                        current,
                        "the session changed during the refresh; saving the new tokens over it"
                    );
                    expected_version = current;
                    last_error = Some(StoreError::VersionConflict { current });
                }
                Err(e) => {
                    last_error = Some(e);
                    break;
                }
            }
        }
        Err(RefreshError::NotSaved {
            session: Box::new(updated),
            source: last_error.unwrap_or(StoreError::Backend("no attempt was made".into())),
        })
    }

    /// Checks a refreshed `id_token` against the identity verified at launch (OpenID Connect
    /// Core §12.2). Never fails: what is wrong becomes a warning.
    async fn check_refreshed_id_token(
        &self,
        registration: &ClientRegistration,
        quirks: &dyn VendorQuirks,
        session: &Session,
        id_token: &str,
    ) -> RefreshedIdentity {
        let fhir_base = &session.fhir_base;
        let discovered = match self
            .inner
            .discovery
            .get_or_discover(&*self.inner.http, quirks, fhir_base)
            .await
        {
            Ok(d) => d,
            Err(e) => {
                return RefreshedIdentity::Keep(RefreshWarning::IdTokenRejected {
                    reason: crate::server_text::excerpt(&e.to_string(), 300),
                });
            }
        };
        let unverified_iss = smart_jose::decode_claims_unverified(id_token)
            .ok()
            .and_then(|c| c.get("iss").and_then(|v| v.as_str()).map(str::to_owned));
        let issuer = quirks.id_token_issuer(
            &discovered.configuration,
            fhir_base,
            unverified_iss.as_deref(),
        );
        self.inner
            .id_tokens
            .check_refreshed(
                &*self.inner.http,
                id_token,
                Expectations {
                    issuer: &issuer.expected,
                    configuration_issuer: &issuer.configuration,
                    algorithms: quirks.id_token_algorithms(),
                    client_id: &registration.client_id,
                    fhir_base,
                    nonce: None,
                },
                session.identity.as_ref(),
            )
            .await
    }

    /// Verifies an `id_token` for `registration` against the issuer discovered for `fhir_base`.
    pub(crate) async fn verify_id_token(
        &self,
        registration: &ClientRegistration,
        quirks: &dyn VendorQuirks,
        fhir_base: &str,
        id_token: &str,
    ) -> Result<VerifiedIdentity, IdentityError> {
        let discovered = self
            .inner
            .discovery
            .get_or_discover(&*self.inner.http, quirks, fhir_base)
            .await
            .map_err(IdentityError::Discovery)?;
        let unverified_iss = smart_jose::decode_claims_unverified(id_token)
            .ok()
            .and_then(|c| c.get("iss").and_then(|v| v.as_str()).map(str::to_owned));
        let issuer = quirks.id_token_issuer(
            &discovered.configuration,
            fhir_base,
            unverified_iss.as_deref(),
        );
        let algorithms = quirks.id_token_algorithms();
        self.inner
            .id_tokens
            .verify(
                &*self.inner.http,
                id_token,
                Expectations {
                    issuer: &issuer.expected,
                    configuration_issuer: &issuer.configuration,
                    algorithms,
                    client_id: &registration.client_id,
                    fhir_base,
                    nonce: None,
                },
            )
            .await
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

    /// Discovery through the cache with a given adapter.
    pub(crate) async fn discover_with(
        &self,
        quirks: &dyn VendorQuirks,
        fhir_base: &str,
    ) -> Result<Arc<Discovered>, DiscoveryError> {
        self.inner
            .discovery
            .get_or_discover(&*self.inner.http, quirks, fhir_base)
            .await
    }

    /// Sends a token-endpoint request with the registration's client authentication and parses
    /// the response.
    pub(crate) async fn token_call(
        &self,
        reg: &ClientRegistration,
        quirks: &dyn VendorQuirks,
        token_endpoint: &str,
        grant: TokenGrant,
        form: Vec<(String, String)>,
    ) -> Result<TokenResponse, TokenError> {
        let response = self
            .send_token_request(reg, quirks, token_endpoint, grant, form)
            .await?;
        interpret_token_response(quirks, grant, response, now_unix())
    }

    /// Sends a token-endpoint request with the registration's client authentication.
    async fn send_token_request(
        &self,
        reg: &ClientRegistration,
        quirks: &dyn VendorQuirks,
        token_endpoint: &str,
        grant: TokenGrant,
        mut form: Vec<(String, String)>,
    ) -> Result<crate::http::HttpResponse, TokenError> {
        let url = url::Url::parse(token_endpoint).map_err(|e| TokenError::InvalidResponse {
            status: 0,
            detail: format!("token endpoint is not a URL: {e}"),
        })?;
        check_transport_security(&url)?;
        let mut headers = http::HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        crate::client_auth::apply(reg, quirks, token_endpoint, &mut form, &mut headers)?;
        let mut parts = TokenRequestParts { form, headers };
        quirks.token_request(grant, &mut parts);
        let body = {
            let mut s = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &parts.form {
                s.append_pair(k, v);
            }
            s.finish()
        };
        let mut request = http::Request::post(token_endpoint)
            .body(body.into_bytes())
            .map_err(|e| TokenError::InvalidResponse {
                status: 0,
                detail: format!("could not build the token request: {e}"),
            })?;
        *request.headers_mut() = parts.headers;

        let span = tracing::debug_span!("smart.token_request", grant = ?grant, endpoint = %redact_url(token_endpoint), status = tracing::field::Empty);
        let response = self
            .inner
            .http
            .execute(request)
            .instrument(span.clone())
            .await?;
        span.record("status", response.status().as_u16());
        Ok(response)
    }
}

/// Refuses a registration whose client-authentication method the server says it does not accept.
pub(crate) fn check_auth_method(
    config: &SmartConfiguration,
    registration: &ClientRegistration,
    base: &str,
) -> Result<(), LaunchError> {
    let Some(method) = registration.auth.method_name() else {
        return Ok(());
    };
    if config.advertises_auth_method(method) == Some(false) {
        return Err(LaunchError::AuthMethodNotAdvertised {
            base: base.to_owned(),
            method: method.to_owned(),
            offered: config
                .token_endpoint_auth_methods_supported
                .as_deref()
                .unwrap_or_default()
                .join(", "),
        });
    }
    Ok(())
}

/// Refuses a callback that does not come with the browser-binding value of its launch.
fn check_browser_binding(
    callback: &CallbackParams,
    pending: &PendingLaunch,
) -> Result<(), LaunchError> {
    let binding = callback
        .browser_binding()
        .ok_or(LaunchError::MissingBrowserBinding)?;
    if !binding.matches_sha256(&pending.browser_binding_sha256) {
        tracing::warn!("callback with another browser's binding value refused");
        return Err(LaunchError::BrowserBindingMismatch);
    }
    Ok(())
}

/// RFC 9207: an `iss` in the authorization response must be the authorization server the request
/// went to, and one that advertised `authorization_response_iss_parameter_supported` must send it.
fn check_issuer_parameter(
    callback: &CallbackParams,
    pending: &PendingLaunch,
) -> Result<(), LaunchError> {
    let expected = pending
        .authorization_server_issuer
        .as_deref()
        .unwrap_or(&pending.fhir_base);
    match callback.get("iss") {
        // Simple string comparison (RFC 9207 §2.4, RFC 3986 §6.2.1).
        Some(found) if found == expected => Ok(()),
        Some(found) => Err(LaunchError::IssuerParameterMismatch {
            expected: expected.to_owned(),
            found: crate::server_text::excerpt(found, 200),
        }),
        None if pending.iss_parameter_required => Err(LaunchError::MissingIssuerParameter {
            expected: expected.to_owned(),
        }),
        None => Ok(()),
    }
}

fn ensure_active(session: Versioned<Session>) -> Result<Versioned<Session>, RefreshError> {
    match &session.value.status {
        SessionStatus::Active => Ok(session),
        SessionStatus::Ended { reason, .. } => Err(RefreshError::Ended {
            reason: reason.clone(),
        }),
    }
}

fn interpret_token_response(
    quirks: &dyn VendorQuirks,
    grant: TokenGrant,
    response: crate::http::HttpResponse,
    now: u64,
) -> Result<TokenResponse, TokenError> {
    let status = response.status();
    if status.is_redirection() {
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(redact_url)
            .unwrap_or_default();
        return Err(TokenError::InvalidResponse {
            status: status.as_u16(),
            detail: format!(
                "the token endpoint redirected to `{location}`; redirects are never followed with credentials"
            ),
        });
    }
    let json: Option<Map<String, Value>> = serde_json::from_slice::<Value>(response.body())
        .ok()
        .and_then(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        });
    if status.is_success() {
        let mut body = json.ok_or_else(|| TokenError::InvalidResponse {
            status: status.as_u16(),
            detail: "the body is not a JSON object".into(),
        })?;
        quirks.normalize_token_response(grant, &mut body);
        return parse_token_response(body, now).map_err(|e| TokenError::InvalidResponse {
            status: status.as_u16(),
            detail: e.to_string(),
        });
    }
    match json
        .as_ref()
        .and_then(|m| m.get("error"))
        .and_then(Value::as_str)
    {
        Some(code) => {
            let text = |k: &str| {
                json.as_ref()
                    .and_then(|m| m.get(k))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            let error = OAuthError {
                code: crate::quirks::spec::error_code(code),
                description: text("error_description"),
                uri: text("error_uri"),
            };
            Err(TokenError::OAuth {
                status: status.as_u16(),
                error: quirks.classify_oauth_error(status.as_u16(), error),
            })
        }
        None => {
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none");
            Err(TokenError::InvalidResponse {
                status: status.as_u16(),
                detail: format!(
                    "an error without an OAuth error body (Content-Type {content_type})"
                ),
            })
        }
    }
}

/// The `refresh_token` of a success response's JSON body, read without the rest of the response
/// having to be valid.
fn refresh_token_in_success_body(response: &crate::http::HttpResponse) -> Option<RefreshToken> {
    if !response.status().is_success() {
        return None;
    }
    match serde_json::from_slice::<Value>(response.body()).ok()? {
        Value::Object(mut body) => match body.remove("refresh_token") {
            Some(Value::String(token)) if !token.is_empty() => Some(RefreshToken::new(token)),
            _ => None,
        },
        _ => None,
    }
}

fn merge_refresh(
    session: &Session,
    response: TokenResponse,
    old_refresh: RefreshToken,
    now: u64,
) -> Session {
    let mut updated = session.clone();
    let TokenResponse { tokens, context } = response;
    updated.tokens.access_token = tokens.access_token;
    updated.tokens.expires_at = tokens.expires_at;
    updated.tokens.received_at = tokens.received_at;
    // Keep the old refresh token unless the server rotated it.
    updated.tokens.refresh_token = Some(tokens.refresh_token.unwrap_or(old_refresh));
    if tokens.id_token.is_some() {
        updated.tokens.id_token = tokens.id_token;
    }
    if tokens.granted_scopes.is_some() {
        updated.tokens.granted_scopes = tokens.granted_scopes;
    }
    merge_context(&mut updated.context, context);
    updated.refreshed_at = Some(now);
    updated
}

fn merge_context(into: &mut LaunchContext, from: LaunchContext) {
    fn keep<T>(slot: &mut Option<T>, new: Option<T>) {
        if new.is_some() {
            *slot = new;
        }
    }
    keep(&mut into.patient, from.patient);
    keep(&mut into.encounter, from.encounter);
    keep(&mut into.need_patient_banner, from.need_patient_banner);
    keep(&mut into.smart_style_url, from.smart_style_url);
    keep(&mut into.intent, from.intent);
    keep(&mut into.tenant, from.tenant);
    if !from.fhir_context.is_empty() {
        into.fhir_context = from.fhir_context;
    }
    into.extras.extend(from.extras);
}

fn missing_context(requested: &Scopes, context: &LaunchContext) -> Vec<String> {
    requested
        .iter()
        .filter_map(|s| match s {
            Scope::LaunchContext { resource_type, .. } => {
                let present = match resource_type.as_str() {
                    "patient" => context.patient.is_some(),
                    "encounter" => context.encounter.is_some(),
                    other => context.fhir_context.iter().any(|item| {
                        item.resource_type
                            .as_deref()
                            .is_some_and(|t| t.eq_ignore_ascii_case(other))
                    }),
                };
                (!present).then(|| format!("launch/{resource_type}"))
            }
            _ => None,
        })
        .collect()
}

/// Writes scopes in the syntax the server understands: v2 where only v2 is advertised, v1 where
/// only v1 is advertised or the server predates `.well-known` (SMART 1.0); as written otherwise.
fn adapt_scope_syntax(scopes: Scopes, discovered: &Discovered) -> Scopes {
    let config = &discovered.configuration;
    let v1 = config.supports(&Capability::PermissionV1);
    let v2 = config.supports(&Capability::PermissionV2);
    let legacy = matches!(
        discovered.source,
        DiscoverySource::CapabilityStatement { .. }
    );
    if v2 && !v1 {
        scopes.to_v2()
    } else if (v1 && !v2) || legacy {
        let converted = scopes.to_v1();
        if converted.iter().any(|s| {
            s.as_resource()
                .is_some_and(|r| r.syntax == PermissionSyntax::V2)
        }) {
            tracing::warn!("some scopes have no exact v1 form and are sent in v2 syntax");
        }
        converted
    } else {
        scopes
    }
}

fn warn_about_capabilities(config: &SmartConfiguration, kind: LaunchKind) {
    if config.capabilities.is_empty() {
        return;
    }
    let needed = match kind {
        LaunchKind::Ehr => Capability::LaunchEhr,
        LaunchKind::Standalone => Capability::LaunchStandalone,
    };
    if !config.supports(&needed) {
        tracing::warn!(capability = %needed, "the server does not advertise this launch type; trying anyway");
    }
    if !config.code_challenge_methods_supported.is_empty()
        && !config
            .code_challenge_methods_supported
            .iter()
            .any(|m| m == "S256")
    {
        tracing::warn!(
            "the server does not advertise PKCE S256; sending it anyway (SMART 2.x requires it)"
        );
    }
}
