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

use crate::SandboxError;
use crate::data;

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

/// Everything needed to start a [`Sandbox`](crate::Sandbox).
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// TCP port to bind on 127.0.0.1; `0` picks a free ephemeral port.
    pub port: u16,
    /// The registered clients (apps) the authorization server knows.
    pub clients: Vec<ClientRegistration>,
    /// Runtime switches; the default is spec-conformant behaviour.
    pub behavior: Behavior,
}

impl Default for SandboxConfig {
    /// Port 0, the two built-in demo clients (see [`SandboxConfig::demo_clients`])
    /// and [`Behavior::default`].
    fn default() -> Self {
        SandboxConfig {
            port: 0,
            clients: Self::demo_clients(),
            behavior: Behavior::default(),
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
    /// `include_demo_clients = true`).
    pub fn from_toml_file(path: &Path) -> Result<Self, SandboxError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            SandboxError::Config(format!(
                "{}: cannot read the clients file: {e}; check the path",
                path.display()
            ))
        })?;
        parse_toml(&text).map_err(|msg| SandboxError::Config(format!("{}: {msg}", path.display())))
    }

    /// Parses client registrations from TOML text (same format as
    /// [`SandboxConfig::from_toml_file`]).
    pub fn from_toml_str(s: &str) -> Result<Self, SandboxError> {
        parse_toml(s).map_err(SandboxError::Config)
    }

    /// Checks every client registration; the error names the first bad one.
    pub(crate) fn validate(&self) -> Result<(), SandboxError> {
        let mut seen = std::collections::HashSet::new();
        for (i, c) in self.clients.iter().enumerate() {
            c.validate().map_err(|m| {
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
            .field("context", &self.context)
            .finish()
    }
}

impl ClientRegistration {
    /// Checks the registration; the error is a fix-it message without the
    /// client prefix.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.client_id.trim().is_empty() {
            return Err("client_id is empty; give the client a non-empty client_id".into());
        }
        if self.client_id.chars().any(|c| c.is_control() || c == ':') {
            return Err(
                "client_id contains ':' or control characters; use letters, digits, '-', '_' or '.'"
                    .into(),
            );
        }
        if let ClientAuth::ClientSecretBasic { secret } = &self.auth
            && secret.is_empty()
        {
            return Err("the client secret is empty; set a non-empty `secret`".into());
        }
        if self.redirect_uris.is_empty() {
            return Err(
                "no redirect_uris; register at least one, e.g. redirect_uris = [\"http://127.0.0.1:8765/callback\"]"
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
            && data::patient(p).is_none()
        {
            return Err(format!(
                "context.patient {p:?} is not a sandbox patient; use one of {}",
                data::patient_ids().join(", ")
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
#[derive(Clone, PartialEq, Eq)]
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
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientAuth::Public => f.write_str("Public"),
            ClientAuth::ClientSecretBasic { .. } => f
                .debug_struct("ClientSecretBasic")
                .field("secret", &"<redacted>")
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

/// Runtime switches for robustness tests. The default is spec-conformant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Behavior {
    /// How the discovery document is served.
    pub discovery: DiscoveryMode,
    /// `true` (default): a refresh returns a new refresh token and the old one
    /// stops working; `false`: the same refresh token is returned.
    pub rotate_refresh_tokens: bool,
    /// `true` (default): refresh responses carry a `refresh_token`; `false`:
    /// they omit it and the old one stays valid.
    pub refresh_returns_refresh_token: bool,
    /// Lifetime of access tokens (`expires_in`); default one hour.
    pub access_token_lifetime: Duration,
    /// Lifetime of authorization codes; default 60 seconds.
    pub code_lifetime: Duration,
    /// `true`: token responses say `"token_type": "bearer"` instead of
    /// `"Bearer"` (both are legal; clients must compare case-insensitively).
    pub lowercase_token_type: bool,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            discovery: DiscoveryMode::Normal,
            rotate_refresh_tokens: true,
            refresh_returns_refresh_token: true,
            access_token_lifetime: Duration::from_secs(3600),
            code_lifetime: Duration::from_secs(60),
            lowercase_token_type: false,
        }
    }
}

// ---------------------------------------------------------------------------
// TOML file format

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    include_demo_clients: bool,
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

fn parse_toml(text: &str) -> Result<SandboxConfig, String> {
    let file: FileConfig = toml::from_str(text).map_err(|e| toml_error_line(text, &e))?;
    let mut clients = if file.include_demo_clients {
        SandboxConfig::demo_clients()
    } else {
        Vec::new()
    };
    for (i, c) in file.clients.into_iter().enumerate() {
        let client = file_client(c).map_err(|(id, m)| match id {
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
    };
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

fn file_client(c: FileClient) -> Result<ClientRegistration, (Option<String>, String)> {
    let Some(client_id) = c.client_id else {
        return Err((
            None,
            "missing `client_id`; add client_id = \"my-app\"".into(),
        ));
    };
    let err = |m: String| (Some(client_id.clone()), m);
    let auth = match c.kind.as_deref() {
        None => {
            return Err(err(
                "missing `type`; add type = \"public\" or type = \"confidential-symmetric\"".into(),
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
            return Err(err(
                "type \"confidential-asymmetric\" (private_key_jwt) is not supported by the sandbox yet; use \"public\" or \"confidential-symmetric\""
                    .into(),
            ));
        }
        Some(other) => {
            return Err(err(format!(
                "unknown type {other:?}; use \"public\" or \"confidential-symmetric\""
            )));
        }
    };
    let Some(redirect_uris) = c.redirect_uris else {
        return Err(err(
            "missing `redirect_uris`; add redirect_uris = [\"http://127.0.0.1:8765/callback\"]"
                .into(),
        ));
    };
    let defaults = LaunchDefaults::default();
    Ok(ClientRegistration {
        client_id: client_id.clone(),
        auth,
        redirect_uris,
        launch_uri: c.launch_uri,
        scopes: c.scopes.unwrap_or_else(|| DEMO_SCOPES.to_owned()),
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

/// Renders a TOML error as one line: `line N: message`.
fn toml_error_line(text: &str, e: &toml::de::Error) -> String {
    let msg = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let hint = if msg.starts_with("unknown field") {
        "; fix or remove the key"
    } else {
        ""
    };
    match e.span() {
        Some(span) => {
            let line = text
                .get(..span.start)
                .map(|s| s.matches('\n').count() + 1)
                .unwrap_or(1);
            format!("line {line}: {msg}{hint}")
        }
        None => format!("{msg}{hint}"),
    }
}
