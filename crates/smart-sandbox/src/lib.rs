//! `smart-sandbox`: an embedded SMART App Launch 2.2 EHR simulator.
//!
//! Integrators need somewhere to run their SMART on FHIR apps before they
//! meet a real EHR, and public sandboxes are slow, shared, and usually more
//! forgiving than production. This crate starts, inside a test or from the
//! `smart sandbox` command, a real OAuth 2.0 authorization server plus a small
//! FHIR R4 endpoint on `127.0.0.1` only. It is deliberately **strict**: it
//! rejects what a real EHR rejects (unregistered redirect URIs, a wrong
//! `aud`, missing or `plain` PKCE, reused codes, bad client authentication,
//! rotated-out refresh tokens …), each with a distinct error description,
//! so a flow that passes here has a good chance of passing in production.
//!
//! What it offers:
//!
//! * discovery at `{fhir_base}/.well-known/smart-configuration` and the
//!   legacy `oauth-uris` extension in `{fhir_base}/metadata`;
//! * `GET|POST /auth/authorize` (headless: the simulated user approves or
//!   denies per client) and `POST /auth/token` (authorization code with PKCE
//!   S256, refresh with rotation, Backend Services `client_credentials`;
//!   public, `client_secret_basic` and `private_key_jwt` clients, the last
//!   verified per RFC 7523 and SMART with a `jti` replay cache);
//! * OpenID Connect: RS256 `id_token`s with `fhirUser`,
//!   `{fhir_base}/.well-known/openid-configuration` and `GET /auth/jwks`;
//! * token introspection (RFC 7662) at `POST /auth/introspect`;
//! * EHR launch: [`Sandbox::issue_launch`], `POST /sandbox/launch` and
//!   `GET /sandbox/ehr-launch`;
//! * a FHIR R4 server under `{fhir_base}`: read, vread, history, search with
//!   opaque paging and `_include`, create (also conditional), update with
//!   `If-Match`, delete, batch and transaction, `Patient/$everything`, with
//!   RFC 6750 bearer checks and SMART v1/v2 scope enforcement (patient
//!   compartments, v2 query scopes), over a seeded synthetic data set of
//!   [`SandboxConfig::patient_count`] patients (300 by default, more than
//!   5,000 observations);
//! * [`Behavior`] switches that inject the deviations real servers show
//!   (missing discovery, relative URLs, lowercase `bearer`, no rotation,
//!   defective `id_token`s via [`IdTokenFault`], FHIR 429/503, slow responses,
//!   tokens that expire after N calls, a `temporarily_unavailable` token
//!   endpoint …), defect switches that turn off one conformance check each
//!   (accept `plain` PKCE, replayed codes or `jti`s, no `aud` check, no
//!   `no-store`, unauthenticated refresh, FHIR without a token) for testing
//!   conformance probes, and [`Sandbox::rotate_signing_key`];
//! * [`VendorProfile`]s, data files that make it emulate an EHR vendor
//!   (`generic`, the default; `epic`; `cerner`): URL shapes, issuers,
//!   discovery contents, grant and scope-echo rules, token lifetimes and
//!   extra fields, refresh throttling, `error_uri`s, search outcome entries
//!   and required search parameters. The paths above are the `generic` ones.
//!
//! Nothing is persisted; tokens and keys live in memory and die with the
//! sandbox. Tokens, codes, secrets, verifiers, client assertions and keys are
//! never logged.
//!
//! See `docs/sandbox.md` in the repository for the HTTP surface, the client
//! file format and curl examples.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

mod assertion;
mod assertion_cache;
mod authorize;
mod client_auth;
mod client_id_header;
mod config;
mod counters;
mod data;
mod discovery;
mod dynamic_registration;
mod error;
mod fhir;
mod grants;
mod introspect;
mod launch;
mod locks;
mod oauth_error;
mod oauth_state;
mod oidc;
mod params;
mod profile;
mod random;
mod rng;
mod server;
mod signing_keys;
mod state;
mod synth;
mod time;
mod token;

pub use client_id_header::Endpoint;
pub use config::{
    BASE_PLACEHOLDER, Behavior, ClientAuth, ClientRegistration, ConnectionLimits,
    DEFAULT_MAX_BUNDLE_ENTRIES, DEFAULT_MAX_BUNDLE_RESPONSE_BYTES, DEFAULT_PATIENT_COUNT,
    DEFAULT_SEED, DEMO_LAUNCH_URI, DEMO_REDIRECT_URI, DEMO_SCOPES, DEMO_SECRET, DiscoveryMode,
    IdTokenFault, IssParameter, LaunchDefaults, MAX_PATIENT_COUNT, SandboxConfig,
    TokenUnavailableStatus,
};
pub use data::PatientSummary;
pub use profile::{
    BUILTIN_PROFILES, ErrorFormat, FieldCondition, RequiredSearchParams, ScopeEcho, SearchCodes,
    SearchOutcome, TokenExtraField, VendorProfile,
};

pub use counters::Counters;
pub use error::SandboxError;
pub use launch::LaunchContextRequest;

use state::Shared;

/// Connections the kernel may queue before the sandbox accepts them: a
/// burst (a connection flood, or a test suite) beyond it makes new clients
/// wait for SYN retransmissions, a second or more each.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds and listens on `addr` with [`LISTEN_BACKLOG`].
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    // As `TcpListener::bind` does: a restart may reuse a port in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// How long [`Sandbox::shutdown`] waits for open connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running sandbox EHR. Dropping it or calling [`Sandbox::shutdown`] stops
/// the server.
///
/// # Example
///
/// ```
/// use smart_sandbox::{LaunchContextRequest, Sandbox, SandboxConfig};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), smart_sandbox::SandboxError> {
/// let sandbox = Sandbox::start(SandboxConfig::default()).await?;
/// let base = sandbox.fhir_base();
/// assert!(base.starts_with("http://127.0.0.1:") && base.ends_with("/fhir"));
///
/// // Simulate a clinician opening the demo app from pat-2's chart.
/// let launch = sandbox.issue_launch(
///     "demo-public",
///     LaunchContextRequest { patient: Some("pat-2".into()), ..Default::default() },
/// )?;
/// assert!(!launch.is_empty());
///
/// // Inject a deviation, and expire every issued access token to exercise a
/// // client's refresh path.
/// sandbox.set_behavior(|b| b.lowercase_token_type = true);
/// sandbox.expire_access_tokens();
/// sandbox.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct Sandbox {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("addr", &self.addr)
            .field("profile", &self.shared.profile.name())
            .field("fhir_base", &self.shared.fhir_base)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Validates the configuration, binds `127.0.0.1:port` and starts
    /// serving on the current Tokio runtime.
    pub async fn start(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        config.validate()?;
        let data = fhir::state::DataConfig {
            seed: config.seed,
            patient_count: config.patient_count,
            as_of_day: config.as_of_day()?,
        };
        let port = config.port;
        let listener = listen(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .map_err(|source| SandboxError::Bind { port, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| SandboxError::Bind { port, source })?;
        let urls = config.profile.resolve(&format!("http://{addr}"))?;
        let shared = Arc::new(Shared::new(
            urls,
            config.profile,
            config.clients,
            config.behavior,
            data,
        ));
        let app = server::router(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let limits = config.connections;
        // `stopped` resolves on an explicit stop and when the handle is dropped.
        let task = tokio::spawn(server::serve(listener, app, limits, stopped));
        tracing::info!(
            fhir_base = %shared.fhir_base,
            profile = shared.profile.name(),
            "smart-sandbox listening"
        );
        Ok(Sandbox {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The bound address (always on 127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The FHIR base URL, `http://127.0.0.1:{port}/fhir` (no trailing
    /// slash) under the `generic` profile, `http://127.0.0.1:{port}{fhir_path}`
    /// under another [`VendorProfile`]. This is the `iss` of EHR launches and
    /// the `aud` apps must send.
    pub fn fhir_base(&self) -> String {
        self.shared.fhir_base.clone()
    }

    /// The vendor profile this sandbox emulates.
    pub fn profile(&self) -> &VendorProfile {
        &self.shared.profile
    }

    /// The authorization endpoint URL (`http://127.0.0.1:{port}/auth/authorize`
    /// under the `generic` profile).
    pub fn authorize_url(&self) -> String {
        self.shared.urls.url(&self.shared.urls.authorize_path)
    }

    /// The token endpoint URL (`http://127.0.0.1:{port}/auth/token` under the
    /// `generic` profile), also the `aud` client assertions must carry.
    pub fn token_url(&self) -> String {
        self.shared.token_url.clone()
    }

    /// The `iss` of the `id_token`s this sandbox signs (the FHIR base under
    /// the `generic` profile); its OpenID configuration is at
    /// `{issuer without a trailing slash}/.well-known/openid-configuration`.
    pub fn id_token_issuer(&self) -> String {
        self.shared.urls.id_token_issuer.clone()
    }

    /// Registers a client on the running sandbox, replacing any client with
    /// the same `client_id`. [`BASE_PLACEHOLDER`] in its style URL is
    /// resolved.
    pub fn register_client(&self, client: ClientRegistration) {
        self.shared.register_client(client);
    }

    /// Changes the runtime behaviour switches; affects subsequent requests.
    pub fn set_behavior(&self, f: impl FnOnce(&mut Behavior)) {
        self.shared.update_behavior(f);
    }

    /// Issues an EHR launch token for `client_id` with the given context, as
    /// an EHR does when a user opens the app. The token is accepted once, by
    /// that client only, within five minutes; the app must send it as the
    /// `launch` parameter together with the `launch` scope.
    pub fn issue_launch(
        &self,
        client_id: &str,
        context: LaunchContextRequest,
    ) -> Result<String, SandboxError> {
        launch::issue(&self.shared, client_id, context)
    }

    /// Rotates the OpenID Connect signing key: generates a new RS256 key with
    /// a new `kid`, publishes it in `GET /auth/jwks` next to the previous
    /// one(s), and signs every later `id_token` with it. Use it to test that
    /// a client refetches the JWKS when it meets an unknown `kid`.
    ///
    /// RSA key generation takes a moment (typically well under a second);
    /// call it outside latency-sensitive code.
    ///
    /// Returns the new `kid`.
    pub fn rotate_signing_key(&self) -> Result<String, SandboxError> {
        self.shared.oauth.signing.rotate()
    }

    /// A snapshot of the request counters.
    pub fn counters(&self) -> Counters {
        self.shared.counters.snapshot()
    }

    /// How many launch tokens, codes, grants, access tokens and refresh
    /// tokens the sandbox currently remembers (all kinds added up). Expired
    /// entries are dropped by an amortised sweep, so this stays proportional
    /// to what is live (see [`Behavior::grant_idle_lifetime`] and
    /// [`Behavior::retired_token_memory`]), however many launches were run.
    pub fn stored_entries(&self) -> usize {
        self.shared.store().len()
    }

    /// The five named patients (`pat-1` … `pat-5`) with display names. The
    /// generated ones, `pat-6` … `pat-N`, are found with a FHIR search
    /// (`GET {fhir_base}/Patient`); see [`Sandbox::patient_count`].
    pub fn patients(&self) -> Vec<PatientSummary> {
        data::patient_summaries()
    }

    /// The number of built-in patients, `N` in `pat-1` … `pat-N`.
    pub fn patient_count(&self) -> usize {
        self.shared.fhir.data.patient_count
    }

    /// The seed of the synthetic data set.
    pub fn seed(&self) -> u64 {
        self.shared.fhir.data.seed
    }

    /// The values of the profile's client-ID header
    /// ([`VendorProfile::client_id_header`], Epic's `Epic-Client-ID`) the
    /// sandbox has seen, oldest first, each with the kind of endpoint it was
    /// sent to; values naming no registered client (which were refused) are
    /// included. Empty under a profile without such a header. At most the
    /// latest 1,024 are kept.
    pub fn client_id_headers_seen(&self) -> Vec<(Endpoint, String)> {
        self.shared.client_id_headers.snapshot()
    }

    /// Every `active_at` a refresh request carried (Oracle Health's Active
    /// User Presence: seconds since the app last saw the user act), oldest
    /// first; only under a profile with `active_user_presence` (the `cerner`
    /// profile), and only well-formed values (1 to 10 digits). At most the
    /// latest 1,024 are kept.
    pub fn active_at_seen(&self) -> Vec<u64> {
        crate::locks::lock(&self.shared.active_at_seen)
            .iter()
            .copied()
            .collect()
    }

    /// The `jti` of the client assertion (or `jwt-bearer` assertion) of every token request,
    /// oldest first, read unverified before any check, so requests answered by a fault such as
    /// [`Behavior::token_bare_400`] are included: a test can see that a repeated request was
    /// signed anew. At most the latest 1,024 are kept.
    pub fn token_jtis_seen(&self) -> Vec<String> {
        crate::locks::lock(&self.shared.token_jtis_seen)
            .iter()
            .cloned()
            .collect()
    }

    /// Test helper: every access token issued so far becomes expired (FHIR
    /// reads answer `401 invalid_token`); refresh tokens are unaffected.
    pub fn expire_access_tokens(&self) {
        self.shared.store().expire_all_access_tokens();
    }

    /// Stops the server: stops accepting, lets in-flight requests finish
    /// (for at most a few seconds) and returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::warn!("smart-sandbox server error: {e}"),
                Ok(Err(e)) => tracing::warn!("smart-sandbox server task failed: {e}"),
                Err(_) => task.abort(),
            }
        }
        tracing::info!("smart-sandbox stopped");
    }

    /// Serves until `shutdown` resolves (e.g. Ctrl-C in the CLI), then shuts
    /// down gracefully. Returns early if the server itself fails.
    pub async fn serve_until(mut self, shutdown: impl Future<Output = ()>) {
        let Some(mut task) = self.task.take() else {
            return;
        };
        tokio::select! {
            () = shutdown => {
                self.task = Some(task);
                self.shutdown().await;
            }
            result = &mut task => {
                match result {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!("smart-sandbox server error: {e}"),
                    Err(e) => tracing::error!("smart-sandbox server task failed: {e}"),
                }
            }
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
