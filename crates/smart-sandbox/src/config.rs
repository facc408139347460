//! Sandbox configuration: registered clients, their launch defaults and the
//! runtime behaviour switches.
//!
//! A real EHR only talks to apps that were registered out of band (SMART App
//! Launch §2.1), so the sandbox needs the same registration data: client id,
//! client type, exact redirect URIs, launch URL and the scopes the client may
//! be granted. This module holds those types, the built-in demo clients, and
//! the TOML file format used by `smart sandbox --clients FILE`. Parsing is
//! strict (unknown keys are errors) because a typo in a registration file
//! would otherwise silently produce a client that behaves differently from
//! what the integrator expects; every error is a single line that names the
//! offending client and says how to fix it.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::data;
use crate::error::SandboxError;
use crate::profile::{VendorProfile, toml_error_line};

/// Placeholder that may appear in [`LaunchDefaults::smart_style_url`]; it is
/// replaced by the sandbox origin (`http://127.0.0.1:PORT`) when the sandbox
/// starts or when the client is registered on a running sandbox.
///
/// The built-in demo clients use `"{base}/smart-style.json"`, which becomes an
/// absolute URL pointing at the sandbox's own style document.
pub const BASE_PLACEHOLDER: &str = "{base}";

/// The scopes the built-in demo clients are allowed to be granted.
pub const DEMO_SCOPES: &str = "launch launch/patient launch/encounter openid fhirUser profile \
offline_access online_access patient/*.rs patient/*.read user/*.rs user/*.read";

/// The redirect URI registered for the built-in demo clients.
pub const DEMO_REDIRECT_URI: &str = "http://127.0.0.1:8765/callback";

/// The launch URI registered for the built-in demo clients.
pub const DEMO_LAUNCH_URI: &str = "http://127.0.0.1:8765/launch";

/// The client secret of the built-in `demo-confidential` client.
pub const DEMO_SECRET: &str = "demo-secret";

/// The default [`SandboxConfig::seed`] of the synthetic data set.
pub const DEFAULT_SEED: u64 = 0x5EED_5A4D_B0C5_2024;

/// The default [`SandboxConfig::patient_count`].
pub const DEFAULT_PATIENT_COUNT: usize = 300;

/// The largest [`SandboxConfig::patient_count`] accepted (about 25
/// observations each, all in memory).
pub const MAX_PATIENT_COUNT: usize = 20_000;

/// Everything needed to start a [`Sandbox`](crate::Sandbox).
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// TCP port to bind on 127.0.0.1; `0` picks a free ephemeral port.
    pub port: u16,
    /// The registered clients (apps) the authorization server knows.
    pub clients: Vec<ClientRegistration>,
    /// Runtime switches; the default is spec-conformant behaviour.
    pub behavior: Behavior,
    /// Seed of the synthetic data set ([`DEFAULT_SEED`] by default): the same
    /// seed (and [`SandboxConfig::data_as_of`]) gives byte-identical data.
    pub seed: u64,
    /// Number of patients, `pat-1` … `pat-N` (default
    /// [`DEFAULT_PATIENT_COUNT`]; at least 5, at most [`MAX_PATIENT_COUNT`]).
    /// `pat-1` … `pat-5` are the named patients; the rest are generated.
    pub patient_count: usize,
    /// The day the synthetic history ends, `YYYY-MM-DD` (exclusive): data
    /// spans the three years before it. `None` (default): today (UTC). Pin it
    /// when a test compares data across days.
    pub data_as_of: Option<String>,
    /// The EHR vendor to emulate: URL shapes, discovery, grants, token
    /// responses and FHIR error shapes (default: the `generic` profile, a
    /// spec-conformant server). See [`VendorProfile::builtin`].
    pub profile: VendorProfile,
    /// Connection limits and timeouts (see [`ConnectionLimits`]).
    pub connections: ConnectionLimits,
}

/// How the sandbox's HTTP server protects itself from clients that open
/// many connections or send slowly.
///
/// The sandbox listens on a port any local process and any web page in a
/// local browser can reach, so an idle or slow connection must not hold
/// resources for ever: every connection has to finish its request headers
/// within [`ConnectionLimits::header_read_timeout`] (also while idle between
/// requests), and at most [`ConnectionLimits::max_connections`] are served
/// at once. When a new connection arrives at the cap, the oldest open
/// connection is closed (after its request in flight, if any), so a new
/// client gets through however many idle connections were opened before it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionLimits {
    /// Connections served at once (default 512). At the cap a new
    /// connection closes the oldest one; connections still finishing a
    /// request after being asked to close count too, and at twice this
    /// number new connections are closed at once.
    pub max_connections: usize,
    /// Time a connection may take to send a request's headers, counted from
    /// the moment it opens or finished its previous request (default 10 s).
    pub header_read_timeout: Duration,
    /// Longest wait for the next chunk of a request body (default 10 s).
    pub body_read_timeout: Duration,
    /// Time from the request headers to the response (default 30 s); a
    /// request that takes longer is answered 503.
    pub request_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 512,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl ConnectionLimits {
    /// Checks that every limit is usable.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.max_connections == 0 || self.max_connections > 1 << 20 {
            return Err(format!(
                "connections.max_connections {} is out of range; use 1 to 1048576 (default 512)",
                self.max_connections
            ));
        }
        for (name, value) in [
            ("header_read_timeout", self.header_read_timeout),
            ("body_read_timeout", self.body_read_timeout),
            ("request_timeout", self.request_timeout),
        ] {
            if value.is_zero() || value > Duration::from_secs(24 * 3600) {
                return Err(format!(
                    "connections.{name} {value:?} is out of range; use more than 0 and at most a day"
                ));
            }
        }
        Ok(())
    }
}

impl Default for SandboxConfig {
    /// Port 0, the two built-in demo clients (see [`SandboxConfig::demo_clients`]),
    /// [`Behavior::default`], [`DEFAULT_SEED`], [`DEFAULT_PATIENT_COUNT`]
    /// patients, data up to today and the `generic` profile.
    fn default() -> Self {
        SandboxConfig {
            port: 0,
            clients: Self::demo_clients(),
            behavior: Behavior::default(),
            seed: DEFAULT_SEED,
            patient_count: DEFAULT_PATIENT_COUNT,
            data_as_of: None,
            profile: VendorProfile::default(),
            connections: ConnectionLimits::default(),
        }
    }
}

impl SandboxConfig {
    /// The built-in demo clients: `demo-public` (public) and
    /// `demo-confidential` (client_secret_basic, secret [`DEMO_SECRET`]).
    ///
    /// Both are registered with redirect URI [`DEMO_REDIRECT_URI`], launch URI
    /// [`DEMO_LAUNCH_URI`], allowed scopes [`DEMO_SCOPES`], patient `pat-1`,
    /// user `Practitioner/prac-1`, auto-approval, `need_patient_banner = true`
    /// and `smart_style_url = "{base}/smart-style.json"`.
    pub fn demo_clients() -> Vec<ClientRegistration> {
        let demo = |client_id: &str, auth: ClientAuth| ClientRegistration {
            client_id: client_id.to_owned(),
            auth,
            redirect_uris: vec![DEMO_REDIRECT_URI.to_owned()],
            launch_uri: Some(DEMO_LAUNCH_URI.to_owned()),
            scopes: DEMO_SCOPES.to_owned(),
            grant_types: vec![GRANT_AUTHORIZATION_CODE.to_owned()],
            context: LaunchDefaults {
                patient: Some(data::DEFAULT_PATIENT_ID.to_owned()),
                encounter: None,
                user: Some(format!("Practitioner/{}", data::PRACTITIONER_ID)),
                approve: true,
                need_patient_banner: true,
                smart_style_url: Some(format!("{BASE_PLACEHOLDER}/smart-style.json")),
            },
        };
        vec![
            demo("demo-public", ClientAuth::Public),
            demo(
                "demo-confidential",
                ClientAuth::ClientSecretBasic {
                    secret: DEMO_SECRET.to_owned(),
                },
            ),
        ]
    }

    /// Reads a client registration file (TOML, see `docs/sandbox.md`).
    ///
    /// The returned config has port 0 and default behaviour; its clients are
    /// the ones in the file (plus the demo clients if the file says
    /// `include_demo_clients = true`), its profile the file's `profile`
    /// (a built-in name) or `profile_file` (a profile TOML file, relative to
    /// the clients file), else `generic`.
    pub fn from_toml_file(path: &Path) -> Result<Self, SandboxError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            SandboxError::Config(format!(
                "{}: cannot read the clients file: {e}; check the path",
                path.display()
            ))
        })?;
        parse_toml(&text, path.parent())
            .map_err(|msg| SandboxError::Config(format!("{}: {msg}", path.display())))
    }

    /// Parses client registrations from TOML text (same format as
    /// [`SandboxConfig::from_toml_file`]). A relative `jwks_file` or
    /// `profile_file` is resolved against the current directory.
    pub fn from_toml_str(s: &str) -> Result<Self, SandboxError> {
        parse_toml(s, None).map_err(SandboxError::Config)
    }

    /// The day the data ends, in days since 1970-01-01 (today if unset).
    pub(crate) fn as_of_day(&self) -> Result<i64, SandboxError> {
        match &self.data_as_of {
            Some(d) => crate::time::parse_day(d).ok_or_else(|| {
                SandboxError::Config(format!(
                    "data_as_of {d:?} is not a date; write it as YYYY-MM-DD, e.g. \"2025-01-31\""
                ))
            }),
            None => Ok(crate::time::now_ms().div_euclid(crate::time::DAY_MS)),
        }
    }

    /// Checks the data set parameters and every client registration; the
    /// error names the first problem.
    pub(crate) fn validate(&self) -> Result<(), SandboxError> {
        if !(5..=MAX_PATIENT_COUNT).contains(&self.patient_count) {
            return Err(SandboxError::Config(format!(
                "patient_count {} is out of range; use 5 (the named patients) to {MAX_PATIENT_COUNT}",
                self.patient_count
            )));
        }
        self.as_of_day()?;
        self.connections.validate().map_err(SandboxError::Config)?;
        self.profile.validate().map_err(SandboxError::Config)?;
        self.validate_lifetimes()?;
        let mut seen = std::collections::HashSet::new();
        for (i, c) in self.clients.iter().enumerate() {
            c.validate(self.patient_count).map_err(|m| {
                SandboxError::Config(format!("clients[{i}] ({}): {m}", c.client_id))
            })?;
            if !seen.insert(c.client_id.as_str()) {
                return Err(SandboxError::Config(format!(
                    "clients[{i}] ({}): duplicate client_id; every client needs a unique client_id",
                    c.client_id
                )));
            }
        }
        Ok(())
    }
}

impl SandboxConfig {
    /// Checks every configured lifetime (profile and behaviour) against
    /// [`MAX_LIFETIME`].
    fn validate_lifetimes(&self) -> Result<(), SandboxError> {
        let p = &self.profile;
        for (name, secs) in [
            (
                "profile access_token_lifetime_secs",
                p.access_token_lifetime_secs,
            ),
            (
                "profile backend_token_lifetime_secs",
                p.backend_token_lifetime_secs,
            ),
            ("profile id_token_lifetime_secs", p.id_token_lifetime_secs),
        ] {
            check_lifetime(name, Duration::from_secs(secs))?;
        }
        let b = &self.behavior;
        for (name, lifetime) in [
            ("behavior access_token_lifetime", b.access_token_lifetime),
            ("behavior backend_token_lifetime", b.backend_token_lifetime),
            ("behavior code_lifetime", b.code_lifetime),
            ("behavior grant_idle_lifetime", b.grant_idle_lifetime),
            ("behavior retired_token_memory", b.retired_token_memory),
        ] {
            check_lifetime(name, lifetime)?;
        }
        Ok(())
    }
}

/// One registered app, as an EHR administrator would register it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientRegistration {
    /// The OAuth `client_id`.
    pub client_id: String,
    /// How the client authenticates at the token endpoint.
    pub auth: ClientAuth,
    /// Registered redirect URIs; the authorization request must use one of
    /// them byte for byte.
    pub redirect_uris: Vec<String>,
    /// The app's launch URL for EHR launch (`?iss=…&launch=…` is appended).
    pub launch_uri: Option<String>,
    /// The scopes this client may be granted, space-separated. A grant is the
    /// part of the requested scopes covered by these.
    pub scopes: String,
    /// The OAuth grant types this client may use (RFC 7591 `grant_types`):
    /// `"authorization_code"` (app launch; refresh tokens come with it),
    /// `"client_credentials"` (SMART Backend Services: for
    /// [`ClientAuth::PrivateKeyJwt`] clients, and for
    /// [`ClientAuth::ClientSecretBasic`] ones under a profile with
    /// `client_credentials_basic`, like Oracle Health's system accounts) and, as an alias that changes
    /// nothing, `"refresh_token"` next to `"authorization_code"`. The TOML
    /// default and the demo clients' value is `["authorization_code"]`.
    /// `redirect_uris` may be empty only when `authorization_code` is absent.
    pub grant_types: Vec<String>,
    /// Launch context and consent used when this client is authorized.
    pub context: LaunchDefaults,
}

impl fmt::Debug for ClientRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientRegistration")
            .field("client_id", &self.client_id)
            .field("auth", &self.auth)
            .field("redirect_uris", &self.redirect_uris)
            .field("launch_uri", &self.launch_uri)
            .field("scopes", &self.scopes)
            .field("grant_types", &self.grant_types)
            .field("context", &self.context)
            .finish()
    }
}

impl ClientRegistration {
    /// Checks the registration against a data set of `patient_count`
    /// patients; the error is a fix-it message without the client prefix.
    pub(crate) fn validate(&self, patient_count: usize) -> Result<(), String> {
        if self.client_id.trim().is_empty() {
            return Err("client_id is empty; give the client a non-empty client_id".into());
        }
        if self.client_id.chars().any(|c| c.is_control() || c == ':') {
            return Err(
                "client_id contains ':' or control characters; use letters, digits, '-', '_' or '.'"
                    .into(),
            );
        }
        match &self.auth {
            ClientAuth::Public => {}
            ClientAuth::ClientSecretBasic { secret } => {
                if secret.is_empty() {
                    return Err("the client secret is empty; set a non-empty `secret`".into());
                }
            }
            ClientAuth::PrivateKeyJwt { jwks, jwks_url } => {
                if jwks.is_none() && jwks_url.is_none() {
                    return Err(
                        "a private_key_jwt client needs its public keys: set `jwks_url` (preferred) or `jwks_file`"
                            .into(),
                    );
                }
                if let Some(url) = jwks_url {
                    check_jwks_url(url)?;
                }
                if let Some(jwks) = jwks {
                    check_public_jwks(jwks)?;
                }
            }
        }
        self.check_grant_types()?;
        if self.redirect_uris.is_empty() && self.allows_grant(GRANT_AUTHORIZATION_CODE) {
            return Err(
                "no redirect_uris; register at least one, e.g. redirect_uris = [\"http://127.0.0.1:8765/callback\"], \
                 or set grant_types = [\"client_credentials\"] for a backend service"
                    .into(),
            );
        }
        for uri in &self.redirect_uris {
            check_absolute_url(uri, "redirect_uri")?;
        }
        if let Some(uri) = &self.launch_uri {
            check_absolute_url(uri, "launch_uri")?;
        }
        if self.scopes.split_whitespace().next().is_none() {
            return Err("scopes is empty; list the scopes this client may be granted".into());
        }
        if let Some(p) = &self.context.patient
            && data::builtin_patient_number(p, patient_count).is_none()
        {
            return Err(format!(
                "context.patient {p:?} is not a sandbox patient; use one of pat-1 … pat-{patient_count}"
            ));
        }
        if let Some(u) = &self.context.user
            && !u.contains('/')
        {
            return Err(format!(
                "context.user {u:?} is not a relative FHIR reference; write it like \"Practitioner/prac-1\""
            ));
        }
        Ok(())
    }

    /// Whether `grant_types` lists `grant_type`.
    pub(crate) fn allows_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }

    fn check_grant_types(&self) -> Result<(), String> {
        if self.grant_types.is_empty() {
            return Err(
                "grant_types is empty; list \"authorization_code\" and/or \"client_credentials\""
                    .into(),
            );
        }
        for g in &self.grant_types {
            match g.as_str() {
                GRANT_AUTHORIZATION_CODE => {}
                GRANT_REFRESH_TOKEN => {
                    if !self.allows_grant(GRANT_AUTHORIZATION_CODE) {
                        return Err(
                            "grant type \"refresh_token\" needs \"authorization_code\" (refresh tokens only come from code grants); add it or remove \"refresh_token\""
                                .into(),
                        );
                    }
                }
                GRANT_CLIENT_CREDENTIALS => {
                    if matches!(self.auth, ClientAuth::Public) {
                        return Err(
                            "grant type \"client_credentials\" (Backend Services) needs a confidential client (private_key_jwt, or a Basic secret where the profile allows it); change the type or remove the grant"
                                .into(),
                        );
                    }
                }
                other => {
                    return Err(format!(
                        "unknown grant type {other:?}; use \"authorization_code\" and/or \"client_credentials\""
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `grant_types` value for the authorization-code flow (app launch).
pub(crate) const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";
/// `grant_types` value accepted as an alias next to `authorization_code`.
pub(crate) const GRANT_REFRESH_TOKEN: &str = "refresh_token";
/// `grant_types` value for SMART Backend Services.
pub(crate) const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";

/// A JWKS URL must be `https`, or `http` on a loopback host (the sandbox is a
/// local test tool, so a client's JWKS server may run next to it).
fn check_jwks_url(uri: &str) -> Result<(), String> {
    let parsed = url::Url::parse(uri).map_err(|e| {
        format!("jwks_url {uri:?} is not an absolute URL ({e}); write it in full, e.g. \"https://app.example/jwks.json\"")
    })?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&parsed) => Ok(()),
        _ => Err(format!(
            "jwks_url {uri:?} must be https (or http on 127.0.0.1, [::1] or localhost)"
        )),
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Members that only private JWKs carry (RFC 7518 §6.2.2, §6.3.2, §6.4).
const PRIVATE_JWK_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A registered JWKS must hold at least one key, every key with `kty` and
/// `kid` (SMART: the assertion names its key by `kid`).
fn check_public_jwks(jwks: &smart_jose::Jwks) -> Result<(), String> {
    if jwks.keys.is_empty() {
        return Err("the JWKS has no keys; register at least one public key".into());
    }
    for (i, key) in jwks.keys.iter().enumerate() {
        for member in ["kty", "kid"] {
            if key
                .as_map()
                .get(member)
                .and_then(serde_json::Value::as_str)
                .is_none()
            {
                return Err(format!(
                    "JWKS key {i} has no {member:?}; every key needs \"kty\" and \"kid\""
                ));
            }
        }
    }
    Ok(())
}

fn check_absolute_url(uri: &str, what: &str) -> Result<(), String> {
    let parsed = url::Url::parse(uri)
        .map_err(|e| format!("{what} {uri:?} is not an absolute URL ({e}); write it in full, e.g. \"http://127.0.0.1:8765/callback\""))?;
    if parsed.fragment().is_some() {
        return Err(format!(
            "{what} {uri:?} has a #fragment, which OAuth forbids (RFC 6749 §3.1.2); remove it"
        ));
    }
    Ok(())
}

/// How a client authenticates at the token endpoint.
#[derive(Clone)]
#[non_exhaustive]
pub enum ClientAuth {
    /// A public client (`client-public`): no authentication, `client_id` in
    /// the token request body.
    Public,
    /// A confidential symmetric client (`client-confidential-symmetric`):
    /// `Authorization: Basic base64(urlencode(client_id):urlencode(secret))`.
    ClientSecretBasic {
        /// The shared client secret.
        secret: String,
    },
    /// A confidential asymmetric client (`client-confidential-asymmetric`,
    /// `private_key_jwt`): it authenticates with a JWT assertion (RFC 7523)
    /// signed with RS384 or ES384 by a key whose public half is registered
    /// here. At least one of the two must be set; when both are, an assertion
    /// with a `jku` header uses the URL and one without uses `jwks`.
    PrivateKeyJwt {
        /// The public keys registered by value.
        jwks: Option<smart_jose::Jwks>,
        /// The URL of the client's JWKS (`https`, or `http` on a loopback
        /// host), fetched with `GET` and cached per its `Cache-Control`.
        jwks_url: Option<String>,
    },
}

impl PartialEq for ClientAuth {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ClientAuth::Public, ClientAuth::Public) => true,
            (
                ClientAuth::ClientSecretBasic { secret: a },
                ClientAuth::ClientSecretBasic { secret: b },
            ) => a == b,
            (
                ClientAuth::PrivateKeyJwt {
                    jwks: a,
                    jwks_url: ua,
                },
                ClientAuth::PrivateKeyJwt {
                    jwks: b,
                    jwks_url: ub,
                },
            ) => ua == ub && a == b,
            _ => false,
        }
    }
}

impl Eq for ClientAuth {}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientAuth::Public => f.write_str("Public"),
            ClientAuth::ClientSecretBasic { .. } => f
                .debug_struct("ClientSecretBasic")
                .field("secret", &"<redacted>")
                .finish(),
            ClientAuth::PrivateKeyJwt { jwks, jwks_url } => f
                .debug_struct("PrivateKeyJwt")
                .field("jwks_keys", &jwks.as_ref().map(|j| j.keys.len()))
                .field("jwks_url", jwks_url)
                .finish(),
        }
    }
}

/// Launch context and consent for a client: what the simulated EHR user has
/// open when the app launches, and whether the user approves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchDefaults {
    /// Patient id in context (standalone launch, and EHR launches that do not
    /// name one). `None` means the first synthetic patient.
    pub patient: Option<String>,
    /// Encounter id in context, if any.
    pub encounter: Option<String>,
    /// The simulated user, as a relative reference such as
    /// `"Practitioner/prac-1"`.
    pub user: Option<String>,
    /// `true`: the user approves; `false`: the user denies and the app is
    /// redirected with `error=access_denied`.
    pub approve: bool,
    /// Value of `need_patient_banner` in EHR-launch token responses.
    pub need_patient_banner: bool,
    /// Value of `smart_style_url` in EHR-launch token responses; may use
    /// [`BASE_PLACEHOLDER`].
    pub smart_style_url: Option<String>,
}

impl Default for LaunchDefaults {
    /// No explicit context, approve, show the banner, no style URL.
    fn default() -> Self {
        LaunchDefaults {
            patient: None,
            encounter: None,
            user: None,
            approve: true,
            need_patient_banner: true,
            smart_style_url: None,
        }
    }
}

/// How `.well-known/smart-configuration` is served; used to test client
/// discovery fallbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DiscoveryMode {
    /// Spec-conformant JSON with absolute URLs.
    #[default]
    Normal,
    /// `.well-known/smart-configuration` answers 404, so clients must fall
    /// back to the `oauth-uris` extension in `/metadata`.
    MissingWellKnown,
    /// `.well-known/smart-configuration` answers 200 with an HTML page.
    WellKnownNotJson,
    /// Endpoint URLs are relative to the FHIR base (e.g. `../auth/token`), as
    /// some legacy servers do.
    RelativeUrls,
}

/// The default [`Behavior::access_token_lifetime`].
pub(crate) const DEFAULT_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// The default [`Behavior::backend_token_lifetime`].
pub(crate) const DEFAULT_BACKEND_TOKEN_LIFETIME: Duration = Duration::from_secs(300);

pub(crate) use crate::time::MAX_LIFETIME;

/// Checks that a configured lifetime is at most [`MAX_LIFETIME`] (the
/// profile's own validation already refuses 0 for its lifetimes).
fn check_lifetime(name: &str, lifetime: Duration) -> Result<(), SandboxError> {
    let max = MAX_LIFETIME.as_secs();
    if lifetime > MAX_LIFETIME {
        return Err(SandboxError::Config(format!(
            "{name} is {} s, out of range; use 1 to {max} seconds (one year)",
            lifetime.as_secs()
        )));
    }
    Ok(())
}

/// Runtime switches for robustness tests. The default is spec-conformant;
/// the switches are deviations on top of the [`VendorProfile`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Behavior {
    /// How the discovery document is served.
    pub discovery: DiscoveryMode,
    /// `true` (default): a refresh returns a new refresh token and the old one
    /// stops working (if the profile's `rotate_refresh_tokens` is true too);
    /// `false`: the same refresh token is returned.
    pub rotate_refresh_tokens: bool,
    /// `true` (default): refresh responses carry a `refresh_token` (if the
    /// profile's `refresh_response_includes_refresh_token` is true too);
    /// `false`: they omit it and the old one stays valid.
    pub refresh_returns_refresh_token: bool,
    /// Lifetime of access tokens (`expires_in`); default one hour. Left at
    /// the default, the profile's `access_token_lifetime_secs` applies (one
    /// hour for `generic`; Cerner 570 s); any other value overrides it.
    pub access_token_lifetime: Duration,
    /// Lifetime of authorization codes; default 60 seconds.
    pub code_lifetime: Duration,
    /// `true`: token responses say `"token_type": "bearer"` instead of
    /// `"Bearer"` (both are legal; clients must compare case-insensitively).
    /// `false` (default): the profile's `token_type`.
    pub lowercase_token_type: bool,
    /// Lifetime of `client_credentials` (Backend Services) access tokens;
    /// default 300 seconds, the SMART recommendation. Left at the default,
    /// the profile's `backend_token_lifetime_secs` applies (300 s for
    /// `generic`); any other value overrides it.
    pub backend_token_lifetime: Duration,
    /// A defect to build into every `id_token` issued from now on, to test a
    /// client's `id_token` validation; default [`IdTokenFault::None`].
    pub id_token_fault: IdTokenFault,
    /// `true`: the `fhirUser` (and `profile`) claim is a relative reference
    /// such as `Practitioner/prac-1` instead of an absolute URL (both are
    /// legal; clients resolve relative ones against the FHIR base).
    pub relative_fhir_user: bool,
    /// The next N FHIR requests (under `/fhir`, except `metadata` and the
    /// `.well-known` documents) answer `429 Too Many Requests` with
    /// `Retry-After`; each such answer counts one down. Default 0.
    pub fhir_rate_limit: u32,
    /// The `Retry-After` of those 429s, in seconds; default 1.
    pub fhir_retry_after_secs: u64,
    /// `true`: `Retry-After` is an HTTP-date (`Wed, 21 Oct 2026 07:28:00
    /// GMT`, now + `fhir_retry_after_secs`) instead of delay-seconds; clients
    /// must handle both (RFC 9110 §10.2.3).
    pub fhir_retry_after_http_date: bool,
    /// The next N FHIR requests answer `503 Service Unavailable` (after any
    /// pending 429s); each counts one down. Default 0.
    pub fhir_unavailable: u32,
    /// Every FHIR response (including injected faults) is delayed this long,
    /// to test client timeouts. Default `None`.
    pub fhir_delay: Option<Duration>,
    /// An access token expires after this many FHIR requests made with it
    /// (counted since it was issued): the next one answers `401
    /// invalid_token`, as when a token expires mid-session. Default `None`.
    pub expire_tokens_after_calls: Option<u32>,
    /// `true`: `id_token`s issued by a refresh have no `aud` claim, as the
    /// SMART reference launcher's do (OpenID Connect Core §12.2 asks for the
    /// sign-in's `aud`). Default `false`.
    pub refreshed_id_token_omits_aud: bool,
    /// `true`: `id_token`s issued by a refresh name another subject than the
    /// sign-in (`sub` gets the suffix `-changed`). Default `false`.
    pub refreshed_id_token_changes_sub: bool,
    /// The `iss` parameter of authorization responses (RFC 9207), on
    /// successful and error redirects alike; default [`IssParameter::Correct`].
    /// The configuration always advertises
    /// `authorization_response_iss_parameter_supported`.
    pub authorization_response_iss: IssParameter,
    /// Most entries a `batch` or `transaction` Bundle may have (default
    /// [`DEFAULT_MAX_BUNDLE_ENTRIES`]); a larger Bundle is refused with 413
    /// and an OperationOutcome.
    pub max_bundle_entries: usize,
    /// Most bytes of JSON a `batch-response` or `transaction-response` may
    /// hold (default [`DEFAULT_MAX_BUNDLE_RESPONSE_BYTES`]). The sandbox
    /// stops running entries once the answer would be larger and refuses the
    /// Bundle with 400 `too-costly` (a transaction applies nothing).
    pub max_bundle_response_bytes: usize,
    /// How long a grant lives without a refresh (once its access tokens have
    /// expired): after that it is forgotten with its refresh tokens, as when
    /// a real EHR's refresh token expires. Default 8 hours.
    pub grant_idle_lifetime: Duration,
    /// How long used codes, expired access tokens and rotated-out refresh
    /// tokens are remembered, so their reuse is reported as such (a replayed
    /// code or refresh token revokes its grant) rather than as unknown.
    /// Default 10 minutes.
    pub retired_token_memory: Duration,
    /// `true`: HTTP Basic client credentials that were base64'd without the
    /// form-urlencoding RFC 6749 §2.3.1 asks for are accepted too (they
    /// differ only for ids or secrets with characters such as `+ / = %`).
    /// `false` (default, every profile): they fail with an
    /// `error_description` saying the credentials were not form-encoded.
    pub accept_unencoded_basic_credentials: bool,
    /// `true`: the token response's `scope` leaves out `offline_access` and
    /// `online_access` even when they were granted with a refresh token, as
    /// some servers have been reported to do (older reports say Epic did). A
    /// client must decide on a refresh from the `refresh_token` it got, not
    /// from the echo. `false` (default, every profile): they are echoed.
    pub echo_omits_access_scopes: bool,

    // Defect switches: each turns off one check a conformant server makes,
    // so that a conformance probe can be shown to notice. All `false` (or 0)
    // by default, in every profile.
    /// DEFECT. `true`: the authorization endpoint accepts
    /// `code_challenge_method=plain` (and a missing method, which RFC 7636
    /// §4.3 defines as `plain`), and the code exchange then compares the
    /// verifier with the challenge as is. SMART requires S256.
    pub accept_plain_pkce: bool,
    /// DEFECT. `true`: successful token responses carry no `Cache-Control:
    /// no-store` (nor `Pragma: no-cache`), which RFC 6749 §5.1 requires.
    pub omit_token_no_store: bool,
    /// DEFECT. `true`: an authorization code can be redeemed again (each time
    /// a new grant), instead of `invalid_grant` and the revocation of what
    /// the first redemption issued (RFC 6749 §4.1.2).
    pub accept_replayed_codes: bool,
    /// DEFECT. `true`: a client assertion whose `jti` was already used is
    /// accepted (SMART Backend Services and RFC 7523 §3 ask for the replay
    /// check).
    pub accept_replayed_jti: bool,
    /// DEFECT. `true`: a refresh of a confidential client's grant needs no
    /// client authentication; the refresh token alone (with or without the
    /// `client_id`) is enough (RFC 6749 §6 requires it).
    pub skip_refresh_client_auth: bool,
    /// DEFECT. `true`: the authorization endpoint ignores `aud`, missing or
    /// wrong (SMART App Launch requires it to be the FHIR base).
    pub ignore_aud: bool,
    /// DEFECT. `true`: a FHIR request without an `Authorization` header is
    /// served as if it carried a `system/*.cruds` token (an open endpoint);
    /// an invalid or expired token is still refused.
    pub fhir_without_token: bool,
    /// The next N token requests answer the OAuth error
    /// `temporarily_unavailable`, before client authentication (as a gateway
    /// would), with [`token_unavailable_status`](Self::token_unavailable_status);
    /// each counts one down. Default 0.
    pub token_unavailable: u32,
    /// The HTTP status of those answers; default
    /// [`TokenUnavailableStatus::ServiceUnavailable`].
    pub token_unavailable_status: TokenUnavailableStatus,
    /// The next N FHIR requests (after pending 429s and 503s) answer `500
    /// Internal Server Error` with an OperationOutcome `exception`; each
    /// counts one down. Default 0. Oracle Health gives 500s for permanent and
    /// passing failures alike, so a client must not count on a retry.
    pub fhir_server_errors: u32,
    /// The next N FHIR requests (after pending 500s) answer `504 Gateway
    /// Timeout`, as a gateway would; each counts one down. Default 0.
    pub fhir_gateway_timeouts: u32,
    /// Client IDs registered for another persona than the one this server's
    /// authorization endpoint serves (Oracle Health's provider and patient
    /// personas): their authorization requests are refused with
    /// `unauthorized_client` (under a profile with an `error_uri`, its
    /// reason is `grant:client-persona-mismatch`), after the `redirect_uri`
    /// check, so the app gets the error redirect. Default empty.
    pub wrong_persona_clients: Vec<String>,
}

/// The HTTP status of a `temporarily_unavailable` token error
/// ([`Behavior::token_unavailable`]). RFC 6749 §5.2 puts every token error
/// in a 400, and defines `temporarily_unavailable` only for the
/// authorization endpoint; servers answer it at the token endpoint with a
/// 503 or a 400, so a client must handle both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TokenUnavailableStatus {
    /// 503 Service Unavailable, with `Retry-After: 1`.
    #[default]
    ServiceUnavailable,
    /// 400 Bad Request (the status RFC 6749 §5.2 gives every token error).
    BadRequest,
}

/// The default [`Behavior::max_bundle_entries`].
pub const DEFAULT_MAX_BUNDLE_ENTRIES: usize = 100;
/// The default [`Behavior::max_bundle_response_bytes`] (4 MiB).
pub const DEFAULT_MAX_BUNDLE_RESPONSE_BYTES: usize = 4 << 20;

/// What the sandbox sends as `iss` in authorization responses
/// ([`Behavior::authorization_response_iss`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IssParameter {
    /// The configuration's `issuer`, as RFC 9207 requires.
    #[default]
    Correct,
    /// No `iss` parameter, although the configuration advertises it.
    Omitted,
    /// Another issuer's identifier (a mix-up attack as the client sees it).
    Wrong,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            discovery: DiscoveryMode::Normal,
            rotate_refresh_tokens: true,
            refresh_returns_refresh_token: true,
            access_token_lifetime: DEFAULT_ACCESS_TOKEN_LIFETIME,
            code_lifetime: Duration::from_secs(60),
            lowercase_token_type: false,
            backend_token_lifetime: DEFAULT_BACKEND_TOKEN_LIFETIME,
            id_token_fault: IdTokenFault::None,
            relative_fhir_user: false,
            fhir_rate_limit: 0,
            fhir_retry_after_secs: 1,
            fhir_retry_after_http_date: false,
            fhir_unavailable: 0,
            fhir_delay: None,
            expire_tokens_after_calls: None,
            refreshed_id_token_omits_aud: false,
            refreshed_id_token_changes_sub: false,
            authorization_response_iss: IssParameter::Correct,
            max_bundle_entries: DEFAULT_MAX_BUNDLE_ENTRIES,
            max_bundle_response_bytes: DEFAULT_MAX_BUNDLE_RESPONSE_BYTES,
            grant_idle_lifetime: Duration::from_secs(8 * 3600),
            retired_token_memory: Duration::from_secs(600),
            accept_unencoded_basic_credentials: false,
            echo_omits_access_scopes: false,
            accept_plain_pkce: false,
            omit_token_no_store: false,
            accept_replayed_codes: false,
            accept_replayed_jti: false,
            skip_refresh_client_auth: false,
            ignore_aud: false,
            fhir_without_token: false,
            token_unavailable: 0,
            token_unavailable_status: TokenUnavailableStatus::ServiceUnavailable,
            fhir_server_errors: 0,
            fhir_gateway_timeouts: 0,
            wrong_persona_clients: Vec::new(),
        }
    }
}

/// A deliberate defect in issued `id_token`s ([`Behavior::id_token_fault`]).
/// A client that validates `id_token`s per OpenID Connect Core §3.1.3.7 must
/// reject every variant except `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IdTokenFault {
    /// A correct RS256 `id_token`.
    #[default]
    None,
    /// Correct header and claims, but the RS256 signature does not verify.
    BadSignature,
    /// An unsecured JWT: header `"alg": "none"` and an empty signature.
    AlgNone,
    /// Header `"alg": "HS256"`, MACed with HMAC-SHA256 keyed with the bytes
    /// of the sandbox's public JWK JSON (as served in the JWKS): the classic
    /// algorithm-confusion attack.
    Hs256WithPublicKey,
    /// Correctly signed, but `aud` is not the client's `client_id`.
    WrongAudience,
    /// Correctly signed, but `iss` is not the profile's `id_token` issuer
    /// (the FHIR base for the `generic` profile).
    WrongIssuer,
    /// Correctly signed, but `exp` (and `iat`) lie an hour in the past.
    Expired,
}

// ---------------------------------------------------------------------------
// TOML file format

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    include_demo_clients: bool,
    profile: Option<String>,
    profile_file: Option<String>,
    seed: Option<u64>,
    patient_count: Option<usize>,
    data_as_of: Option<String>,
    #[serde(default)]
    clients: Vec<FileClient>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileClient {
    client_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    secret: Option<String>,
    jwks_url: Option<String>,
    jwks_file: Option<String>,
    grant_types: Option<Vec<String>>,
    redirect_uris: Option<Vec<String>>,
    launch_uri: Option<String>,
    scopes: Option<String>,
    #[serde(default)]
    context: FileContext,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileContext {
    patient: Option<String>,
    encounter: Option<String>,
    user: Option<String>,
    approve: Option<bool>,
    need_patient_banner: Option<bool>,
    smart_style_url: Option<String>,
}

fn parse_toml(text: &str, base_dir: Option<&Path>) -> Result<SandboxConfig, String> {
    let file: FileConfig = toml::from_str(text).map_err(|e| toml_error_line(text, &e))?;
    let profile = match (&file.profile, &file.profile_file) {
        (Some(_), Some(_)) => {
            return Err(
                "both `profile` and `profile_file` are set; keep one (a built-in name or a profile file)"
                    .into(),
            );
        }
        (Some(name), None) => VendorProfile::builtin(name).map_err(|e| format!("profile: {e}"))?,
        (None, Some(file)) => read_profile_file(file, base_dir)?,
        (None, None) => VendorProfile::default(),
    };
    let mut clients = if file.include_demo_clients {
        SandboxConfig::demo_clients()
    } else {
        Vec::new()
    };
    for (i, c) in file.clients.into_iter().enumerate() {
        let client = file_client(c, base_dir).map_err(|(id, m)| match id {
            Some(id) => format!("clients[{i}] ({id}): {m}"),
            None => format!("clients[{i}]: {m}"),
        })?;
        clients.push(client);
    }
    if clients.is_empty() {
        return Err(
            "no clients; add at least one [[clients]] table or set include_demo_clients = true"
                .into(),
        );
    }
    let config = SandboxConfig {
        port: 0,
        clients,
        behavior: Behavior::default(),
        seed: file.seed.unwrap_or(DEFAULT_SEED),
        patient_count: file.patient_count.unwrap_or(DEFAULT_PATIENT_COUNT),
        data_as_of: file.data_as_of,
        profile,
        connections: ConnectionLimits::default(),
    };
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

fn file_client(
    c: FileClient,
    base_dir: Option<&Path>,
) -> Result<ClientRegistration, (Option<String>, String)> {
    let Some(client_id) = c.client_id else {
        return Err((
            None,
            "missing `client_id`; add client_id = \"my-app\"".into(),
        ));
    };
    let err = |m: String| (Some(client_id.clone()), m);
    let kind = c.kind.as_deref();
    let key_file = [
        ("jwks_url", c.jwks_url.is_some()),
        ("jwks_file", c.jwks_file.is_some()),
    ]
    .into_iter()
    .find_map(|(k, present)| present.then_some(k));
    if kind != Some("confidential-asymmetric")
        && let Some(key) = key_file
    {
        return Err(err(format!(
            "`{key}` is only for type = \"confidential-asymmetric\"; remove it or change the type"
        )));
    }
    let auth = match kind {
        None => {
            return Err(err(
                "missing `type`; add type = \"public\", \"confidential-symmetric\" or \"confidential-asymmetric\""
                    .into(),
            ));
        }
        Some("public") => {
            if c.secret.is_some() {
                return Err(err(
                    "type \"public\" cannot have a `secret`; remove it or use type = \"confidential-symmetric\""
                        .into(),
                ));
            }
            ClientAuth::Public
        }
        Some("confidential-symmetric") => match c.secret {
            Some(secret) => ClientAuth::ClientSecretBasic { secret },
            None => {
                return Err(err(
                    "type \"confidential-symmetric\" needs a `secret`; add secret = \"...\"".into(),
                ));
            }
        },
        Some("confidential-asymmetric") => {
            if c.secret.is_some() {
                return Err(err(
                    "type \"confidential-asymmetric\" cannot have a `secret` (it authenticates with a signed JWT); remove it"
                        .into(),
                ));
            }
            let jwks = match &c.jwks_file {
                Some(file) => Some(read_jwks_file(file, base_dir).map_err(err)?),
                None => None,
            };
            if jwks.is_none() && c.jwks_url.is_none() {
                return Err(err(
                    "type \"confidential-asymmetric\" needs its public keys; add jwks_url = \"https://…/jwks.json\" or jwks_file = \"jwks.json\""
                        .into(),
                ));
            }
            ClientAuth::PrivateKeyJwt {
                jwks,
                jwks_url: c.jwks_url,
            }
        }
        Some(other) => {
            return Err(err(format!(
                "unknown type {other:?}; use \"public\", \"confidential-symmetric\" or \"confidential-asymmetric\""
            )));
        }
    };
    let grant_types = c
        .grant_types
        .unwrap_or_else(|| vec![GRANT_AUTHORIZATION_CODE.to_owned()]);
    let needs_redirect = grant_types.iter().any(|g| g == GRANT_AUTHORIZATION_CODE);
    let redirect_uris = match c.redirect_uris {
        Some(uris) => uris,
        None if needs_redirect => {
            return Err(err(
                "missing `redirect_uris`; add redirect_uris = [\"http://127.0.0.1:8765/callback\"] \
                 (or grant_types = [\"client_credentials\"] for a backend service)"
                    .into(),
            ));
        }
        None => Vec::new(),
    };
    let defaults = LaunchDefaults::default();
    Ok(ClientRegistration {
        client_id: client_id.clone(),
        auth,
        redirect_uris,
        launch_uri: c.launch_uri,
        scopes: c.scopes.unwrap_or_else(|| DEMO_SCOPES.to_owned()),
        grant_types,
        context: LaunchDefaults {
            patient: c.context.patient,
            encounter: c.context.encounter,
            user: c.context.user,
            approve: c.context.approve.unwrap_or(defaults.approve),
            need_patient_banner: c
                .context
                .need_patient_banner
                .unwrap_or(defaults.need_patient_banner),
            smart_style_url: c.context.smart_style_url,
        },
    })
}

/// Reads a `profile_file` (relative paths are relative to the clients file).
fn read_profile_file(file: &str, base_dir: Option<&Path>) -> Result<VendorProfile, String> {
    let path = match base_dir {
        Some(dir) if Path::new(file).is_relative() => dir.join(file),
        _ => Path::new(file).to_path_buf(),
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "cannot read profile_file {}: {e}; the path is relative to the clients file",
            path.display()
        )
    })?;
    VendorProfile::from_toml_str(&text).map_err(|e| format!("profile_file {}: {e}", path.display()))
}

/// Reads a `jwks_file` (relative paths are relative to the clients file).
fn read_jwks_file(file: &str, base_dir: Option<&Path>) -> Result<smart_jose::Jwks, String> {
    let path = match base_dir {
        Some(dir) if Path::new(file).is_relative() => dir.join(file),
        _ => Path::new(file).to_path_buf(),
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "cannot read jwks_file {}: {e}; the path is relative to the clients file",
            path.display()
        )
    })?;
    let not_jwks = |e: String| {
        format!(
            "jwks_file {} is not a JWKS ({e}); it must be {{\"keys\": [<public JWK>, …]}}",
            path.display()
        )
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| not_jwks(e.to_string()))?;
    // A JWKS with private members would be silently stripped; a real EHR
    // refuses it, since the private key has then been shared.
    let keys = value.get("keys").and_then(serde_json::Value::as_array);
    for (i, key) in keys.into_iter().flatten().enumerate() {
        if let Some(m) = PRIVATE_JWK_MEMBERS.iter().find(|m| key.get(**m).is_some()) {
            return Err(format!(
                "jwks_file {}: key {i} contains the private member {m:?}; register only the public keys",
                path.display()
            ));
        }
    }
    serde_json::from_value(value).map_err(|e| not_jwks(e.to_string()))
}
