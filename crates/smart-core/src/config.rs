//! Configuration: client registrations and framework settings, from TOML and `SMART_` variables.
//!
//! An integrator registers one app with many EHRs; each registration binds a `client_id`, its
//! credentials and redirect URI to **one issuer** (or an issuer pattern). That binding is the
//! allow-list that refuses a launch from an unknown `iss` before any network call, so a forged
//! launch link can never make the app send its secret to an attacker's token endpoint.
//!
//! ```toml
//! [clients.sandbox]
//! issuer = "http://127.0.0.1:8080/fhir"
//! client_id = "demo-confidential"
//! client_type = "confidential-symmetric"
//! client_secret = "demo-secret"          # or SMART_CLIENTS__SANDBOX__CLIENT_SECRET
//! redirect_uri = "http://127.0.0.1:8765/callback"
//! scopes = "launch/patient patient/*.rs openid fhirUser offline_access"
//!
//! [clients.acme_tenants]
//! issuer = "https://fhir.acme.example/r4/*"   # `*` matches one path segment or host label
//! client_id = "acme-app"
//! client_type = "public"
//! redirect_uri = "https://app.example/callback"
//! ```
//!
//! Environment variables override the file: `SMART_CLIENTS__SANDBOX__CLIENT_SECRET=…`,
//! `SMART_LAUNCH__STATE_TTL_SECS=300`. Keep secrets in the environment, not in the file.
//!
//! Only variables that name a configuration section are read: `SMART_CLIENTS__…`,
//! `SMART_LAUNCH__…`, `SMART_DISCOVERY__…` and `SMART_HTTP__…` (`__` separates levels, case does
//! not matter). Every other `SMART_*` variable — `SMART_CLIENT_SECRET` and `SMART_TOKEN` used by
//! the `smart` command, or anything another tool sets — is ignored, so it cannot break loading.
//! Within a section, an unknown key is still an error (a typo such as
//! `SMART_LAUNCH__STATE_TTL=300` is reported, not silently dropped).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize};
use smart_jose::PrivateKey;
use smart_scopes::Scopes;
use url::Url;

use crate::client_keys::ClientKeys;
use crate::error::ConfigError;
use crate::http::check_transport_security;
use crate::protocol::AuthorizeMethod;
use crate::protocol_strings::{AdapterName, ClientId, IssuerPattern, RedirectUri};
use crate::secret::ClientSecret;

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuth {
    /// A public client: `client_id` in the body, no secret (`client-public`).
    Public,
    /// A confidential client with a shared secret (`client-confidential-symmetric`).
    ConfidentialSymmetric {
        /// The secret.
        client_secret: ClientSecret,
        /// `client_secret_basic` (the SMART profile, default) or `client_secret_post` (only for
        /// servers that advertise nothing else).
        method: SymmetricMethod,
    },
    /// A confidential client with a key pair (`client-confidential-asymmetric`,
    /// `private_key_jwt`); also the only kind allowed for backend services.
    ConfidentialAsymmetric {
        /// The signing keys (rotatable).
        keys: ClientKeys,
    },
}

impl ClientAuth {
    /// The `token_endpoint_auth_methods_supported` value this authentication needs (`None` for
    /// public clients, which do not authenticate).
    pub fn method_name(&self) -> Option<&'static str> {
        match self {
            ClientAuth::Public => None,
            ClientAuth::ConfidentialSymmetric {
                method: SymmetricMethod::ClientSecretBasic,
                ..
            } => Some("client_secret_basic"),
            ClientAuth::ConfidentialSymmetric {
                method: SymmetricMethod::ClientSecretPost,
                ..
            } => Some("client_secret_post"),
            ClientAuth::ConfidentialAsymmetric { .. } => Some("private_key_jwt"),
        }
    }
}

/// How a shared secret is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SymmetricMethod {
    /// HTTP Basic (RFC 6749 §2.3.1).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// One app registration with one EHR (or a family of tenant URLs).
///
/// In TOML, the client type and credentials are flat keys: `client_type = "public"`;
/// `client_type = "confidential-symmetric"` with `client_secret` (and optionally
/// `client_secret_method = "client_secret_post"`); or `client_type = "confidential-asymmetric"`
/// with `private_key_file` (PEM or JWK) or `private_key` (the PEM or JWK text, e.g. from
/// `SMART_CLIENTS__<NAME>__PRIVATE_KEY`), and optionally `signing_alg` (`RS384`, `ES384`) and `jku`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RegistrationFile")]
#[non_exhaustive]
pub struct ClientRegistration {
    /// The FHIR base this registration is for, byte for byte, or a pattern where `*` stands for
    /// one host label or path segment.
    pub issuer: IssuerPattern,
    /// The client id the EHR assigned.
    pub client_id: ClientId,
    /// Client type and credentials.
    pub auth: ClientAuth,
    /// The registered redirect URI (sent byte for byte). `None` for backend-service
    /// registrations, which never launch.
    pub redirect_uri: Option<RedirectUri>,
    /// Default scopes to request.
    pub scopes: Scopes,
    /// The vendor adapter (`generic`, `epic`, `cerner`, …), or `auto` (the default) to pick the
    /// installed adapter that recognises the server when a launch begins.
    pub adapter: AdapterName,
    /// Force GET or POST for the authorization request; automatic when absent.
    pub authorize_method: Option<AuthorizeMethod>,
    /// Options for the vendor adapter (`[clients.<name>.adapter_options]` in TOML), e.g. Epic's
    /// `client_id_header`. Each adapter reads them into its own typed options
    /// ([`VendorQuirks::with_options`](crate::quirks::VendorQuirks::with_options)) when the
    /// client is built, so a misspelt or mistyped option is a configuration error at start-up.
    pub adapter_options: AdapterOptions,
}

/// The raw adapter options of a registration: a table of names to values, read by the adapter
/// into its own typed options.
pub type AdapterOptions = serde_json::Map<String, serde_json::Value>;

/// The flat file form of a [`ClientRegistration`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrationFile {
    issuer: IssuerPattern,
    client_id: ClientId,
    client_type: ClientType,
    #[serde(default)]
    client_secret: Option<ClientSecret>,
    #[serde(default)]
    client_secret_method: Option<SymmetricMethod>,
    #[serde(default)]
    private_key: Option<ClientSecret>,
    #[serde(default)]
    private_key_file: Option<std::path::PathBuf>,
    #[serde(default)]
    signing_alg: Option<String>,
    #[serde(default)]
    jku: Option<String>,
    #[serde(default)]
    redirect_uri: Option<RedirectUri>,
    #[serde(default = "default_scopes")]
    scopes: Scopes,
    #[serde(default)]
    adapter: AdapterName,
    #[serde(default)]
    authorize_method: Option<AuthorizeMethod>,
    #[serde(default)]
    adapter_options: AdapterOptions,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum ClientType {
    Public,
    ConfidentialSymmetric,
    ConfidentialAsymmetric,
}

/// Loads a private key from PEM or JWK text.
pub fn load_private_key(text: &str, alg: Option<&str>) -> Result<PrivateKey, String> {
    let alg = alg
        .map(|a| {
            a.parse::<smart_jose::Algorithm>()
                .map_err(|_| format!("signing_alg `{a}` is not supported; use RS384 or ES384"))
        })
        .transpose()?;
    let text = text.trim();
    if text.starts_with('{') {
        let jwk: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| format!("the private key is not valid JWK JSON ({e})"))?;
        PrivateKey::from_jwk(&jwk).map_err(|e| e.to_string())
    } else {
        PrivateKey::from_pem(text, alg).map_err(|e| e.to_string())
    }
}

impl TryFrom<RegistrationFile> for ClientRegistration {
    type Error = String;

    fn try_from(f: RegistrationFile) -> Result<Self, String> {
        let has_key = f.private_key.is_some() || f.private_key_file.is_some();
        if has_key && !matches!(f.client_type, ClientType::ConfidentialAsymmetric) {
            return Err(
                "private_key/private_key_file need client_type = \"confidential-asymmetric\""
                    .into(),
            );
        }
        if let ClientType::ConfidentialAsymmetric = f.client_type {
            if f.client_secret.is_some() {
                return Err("an asymmetric client has no client_secret; remove it".into());
            }
            let text = match (&f.private_key, &f.private_key_file) {
                (Some(inline), None) => inline.expose_secret().to_owned(),
                (None, Some(path)) => std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read private_key_file {}: {e}", path.display()))?,
                (Some(_), Some(_)) => {
                    return Err("set private_key or private_key_file, not both".into());
                }
                (None, None) => {
                    return Err("client_type \"confidential-asymmetric\" needs private_key_file (a PEM or JWK file; `smart keys generate` makes one) or private_key".into());
                }
            };
            let key = load_private_key(&text, f.signing_alg.as_deref())?;
            let mut keys = ClientKeys::new(key);
            if let Some(jku) = f.jku {
                keys = keys.with_jku(jku);
            }
            return Ok(ClientRegistration {
                issuer: f.issuer,
                client_id: f.client_id,
                auth: ClientAuth::ConfidentialAsymmetric { keys },
                redirect_uri: f.redirect_uri,
                scopes: f.scopes,
                adapter: f.adapter,
                authorize_method: f.authorize_method,
                adapter_options: f.adapter_options,
            });
        }
        let auth = match (f.client_type, f.client_secret) {
            (ClientType::Public, None) => ClientAuth::Public,
            (ClientType::Public, Some(_)) => {
                return Err("a public client has no client_secret; remove it or set client_type = \"confidential-symmetric\"".into());
            }
            (ClientType::ConfidentialSymmetric, Some(client_secret)) => {
                ClientAuth::ConfidentialSymmetric {
                    client_secret,
                    method: f.client_secret_method.unwrap_or_default(),
                }
            }
            (ClientType::ConfidentialSymmetric, None) => {
                return Err("client_type \"confidential-symmetric\" needs a client_secret (set it in SMART_CLIENTS__<NAME>__CLIENT_SECRET)".into());
            }
            (ClientType::ConfidentialAsymmetric, _) => unreachable!("handled above"),
        };
        Ok(ClientRegistration {
            issuer: f.issuer,
            client_id: f.client_id,
            auth,
            redirect_uri: f.redirect_uri,
            scopes: f.scopes,
            adapter: f.adapter,
            authorize_method: f.authorize_method,
            adapter_options: f.adapter_options,
        })
    }
}

fn default_scopes() -> Scopes {
    Scopes::parse("launch/patient patient/*.rs openid fhirUser")
}

impl ClientRegistration {
    /// A public-client registration with default scopes and adapter detection (`auto`).
    pub fn public(
        issuer: impl Into<IssuerPattern>,
        client_id: impl Into<ClientId>,
        redirect_uri: impl Into<RedirectUri>,
    ) -> Self {
        ClientRegistration {
            issuer: issuer.into(),
            client_id: client_id.into(),
            auth: ClientAuth::Public,
            redirect_uri: Some(redirect_uri.into()),
            scopes: default_scopes(),
            adapter: AdapterName::Auto,
            authorize_method: None,
            adapter_options: AdapterOptions::new(),
        }
    }

    /// A confidential-symmetric registration (`client_secret_basic`).
    pub fn confidential_symmetric(
        issuer: impl Into<IssuerPattern>,
        client_id: impl Into<ClientId>,
        client_secret: ClientSecret,
        redirect_uri: impl Into<RedirectUri>,
    ) -> Self {
        ClientRegistration {
            auth: ClientAuth::ConfidentialSymmetric {
                client_secret,
                method: SymmetricMethod::ClientSecretBasic,
            },
            ..Self::public(issuer, client_id, redirect_uri)
        }
    }

    /// A confidential-asymmetric registration (`private_key_jwt`) for launches.
    pub fn confidential_asymmetric(
        issuer: impl Into<IssuerPattern>,
        client_id: impl Into<ClientId>,
        keys: ClientKeys,
        redirect_uri: impl Into<RedirectUri>,
    ) -> Self {
        ClientRegistration {
            auth: ClientAuth::ConfidentialAsymmetric { keys },
            ..Self::public(issuer, client_id, redirect_uri)
        }
    }

    /// A backend-services registration: asymmetric keys, no redirect URI, `system/` scopes.
    pub fn backend(
        issuer: impl Into<IssuerPattern>,
        client_id: impl Into<ClientId>,
        keys: ClientKeys,
        scopes: Scopes,
    ) -> Self {
        ClientRegistration {
            issuer: issuer.into(),
            client_id: client_id.into(),
            auth: ClientAuth::ConfidentialAsymmetric { keys },
            redirect_uri: None,
            scopes,
            adapter: AdapterName::Auto,
            authorize_method: None,
            adapter_options: AdapterOptions::new(),
        }
    }

    /// Replaces the default scopes.
    pub fn with_scopes(mut self, scopes: Scopes) -> Self {
        self.scopes = scopes;
        self
    }

    /// Sets one adapter option (see [`ClientRegistration::adapter_options`]).
    pub fn with_adapter_option(
        mut self,
        name: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.adapter_options.insert(name.into(), value.into());
        self
    }

    /// Selects the vendor adapter by name (`"auto"` or [`AdapterName::Auto`] for detection).
    pub fn with_adapter(mut self, adapter: impl Into<AdapterName>) -> Self {
        self.adapter = adapter.into();
        self
    }

    /// Checks the registration; `name` is used in messages.
    pub fn validate(&self, name: &str) -> Result<(), ConfigError> {
        let field = |f: &str| format!("clients.{name}.{f}");
        if self.client_id.trim().is_empty() {
            return Err(ConfigError::Invalid {
                field: field("client_id"),
                message: "is empty; set it to the client id the EHR assigned".into(),
            });
        }
        let probe = self.issuer.replace('*', "x");
        let url = Url::parse(&probe).map_err(|e| ConfigError::Invalid {
            field: field("issuer"),
            message: format!("`{}` is not an absolute URL ({e}); use the EHR's FHIR base, e.g. https://ehr.example.org/fhir", self.issuer),
        })?;
        check_transport_security(&url).map_err(|e| ConfigError::Invalid {
            field: field("issuer"),
            message: e.to_string(),
        })?;
        if self.issuer.contains('*')
            && url
                .host_str()
                .is_some_and(|h| h.starts_with('x') && !h.contains('.'))
        {
            return Err(ConfigError::Invalid {
                field: field("issuer"),
                message: "a pattern must fix the registrable domain (e.g. https://*.ehr.example.org/fhir)".into(),
            });
        }
        if let Some(redirect_uri) = &self.redirect_uri {
            let redirect = Url::parse(redirect_uri).map_err(|e| ConfigError::Invalid {
                field: field("redirect_uri"),
                message: format!("`{redirect_uri}` is not an absolute URL ({e})"),
            })?;
            if redirect.fragment().is_some() {
                return Err(ConfigError::Invalid {
                    field: field("redirect_uri"),
                    message: "must not contain a fragment (#…)".into(),
                });
            }
        }
        if let ClientAuth::ConfidentialSymmetric { client_secret, .. } = &self.auth
            && client_secret.expose_secret().is_empty()
        {
            return Err(ConfigError::Invalid {
                field: field("client_secret"),
                message: format!(
                    "is empty; set it in the file or in SMART_CLIENTS__{}__CLIENT_SECRET",
                    name.to_ascii_uppercase()
                ),
            });
        }
        Ok(())
    }

    /// Whether this registration covers `iss` (exact match, or the `*` pattern).
    pub fn matches_issuer(&self, iss: &str) -> bool {
        self.issuer.matches(iss)
    }
}

/// Launch settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LaunchSettings {
    /// How long a pending launch (its `state`) stays valid, in seconds.
    pub state_ttl_secs: u64,
}

impl Default for LaunchSettings {
    fn default() -> Self {
        LaunchSettings {
            state_ttl_secs: 600,
        }
    }
}

/// Discovery settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscoverySettings {
    /// How long a discovered configuration is reused, in seconds.
    pub cache_ttl_secs: u64,
}

impl Default for DiscoverySettings {
    fn default() -> Self {
        DiscoverySettings {
            cache_ttl_secs: 300,
        }
    }
}

/// HTTP settings for the default transport.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Total time per request, in seconds.
    pub timeout_secs: u64,
    /// Largest accepted response body, in bytes.
    pub max_response_bytes: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            timeout_secs: 30,
            max_response_bytes: 16 * 1024 * 1024,
        }
    }
}

/// The top-level sections of [`SmartConfig`], the only ones read from `SMART_*` variables.
const ENV_SECTIONS: [&str; 4] = ["clients", "launch", "discovery", "http"];

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmartConfig {
    /// Registrations by name.
    pub clients: BTreeMap<String, ClientRegistration>,
    /// Launch settings.
    pub launch: LaunchSettings,
    /// Discovery settings.
    pub discovery: DiscoverySettings,
    /// HTTP settings.
    pub http: HttpSettings,
}

impl SmartConfig {
    /// Loads `path` (if given) and then `SMART_*` environment variables (`__` separates levels).
    pub fn load(path: Option<&Path>) -> Result<SmartConfig, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = path {
            if !path.exists() {
                return Err(ConfigError::Load(format!(
                    "{} does not exist; pass the path of your smart.toml",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        Self::from_figment(figment.merge(Self::env_provider()))
    }

    /// The `SMART_*` environment variables that belong to the configuration: those naming one of
    /// its sections (see the module docs). Other `SMART_*` variables are left alone.
    pub fn env_provider() -> Env {
        Env::prefixed("SMART_")
            .filter(|key| {
                ENV_SECTIONS
                    .iter()
                    .any(|section| key.starts_with(&format!("{section}__")))
            })
            .split("__")
    }

    /// Extracts and validates the configuration from any figment (for apps that merge their own
    /// providers).
    pub fn from_figment(figment: Figment) -> Result<SmartConfig, ConfigError> {
        let config: SmartConfig = figment.extract().map_err(|e| {
            let e = e
                .into_iter()
                .next()
                .map(|e| e.to_string())
                .unwrap_or_default();
            ConfigError::Load(e)
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every registration and setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, registration) in &self.clients {
            registration.validate(name)?;
        }
        if self.launch.state_ttl_secs == 0 {
            return Err(ConfigError::Invalid {
                field: "launch.state_ttl_secs".into(),
                message: "must be greater than 0 (600 is a good value)".into(),
            });
        }
        Ok(())
    }

    /// The pending-launch lifetime.
    pub fn state_ttl(&self) -> Duration {
        Duration::from_secs(self.launch.state_ttl_secs)
    }
}

#[cfg(test)]
// figment's Jail API fixes the closure's error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_one_label_or_segment_only() {
        let mut r = ClientRegistration::public("https://*.ehr.example/fhir/*", "c", "https://a/cb");
        assert!(r.matches_issuer("https://east.ehr.example/fhir/tenant-1"));
        assert!(!r.matches_issuer("https://evil.example/x.ehr.example/fhir/t"));
        assert!(!r.matches_issuer("https://a.b.ehr.example/fhir/t"));
        assert!(!r.matches_issuer("https://east.ehr.example/fhir/t/extra"));
        assert!(!r.matches_issuer("https://east.ehr.example/fhir/"));
        assert!(!r.matches_issuer("https://evil.com?.ehr.example/fhir/t"));
        r.issuer = "https://ehr.example/fhir".into();
        assert!(r.matches_issuer("https://ehr.example/fhir"));
        assert!(!r.matches_issuer("https://ehr.example/fhir/"));
    }

    #[test]
    fn loads_toml_and_env_with_secrets_from_env() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "smart.toml",
                r#"
                [clients.sandbox]
                issuer = "http://127.0.0.1:9/fhir"
                client_id = "demo"
                client_type = "confidential-symmetric"
                client_secret = "from-file"
                redirect_uri = "http://127.0.0.1:8765/callback"
                scopes = "launch patient/*.rs"
                "#,
            )?;
            jail.set_env("SMART_CLIENTS__SANDBOX__CLIENT_SECRET", "from-env");
            jail.set_env("SMART_LAUNCH__STATE_TTL_SECS", "120");
            let config = SmartConfig::load(Some(Path::new("smart.toml"))).expect("valid");
            let reg = &config.clients["sandbox"];
            match &reg.auth {
                ClientAuth::ConfidentialSymmetric {
                    client_secret,
                    method,
                } => {
                    assert_eq!(client_secret.expose_secret(), "from-env");
                    assert_eq!(*method, SymmetricMethod::ClientSecretBasic);
                }
                other => panic!("unexpected auth {other:?}"),
            }
            assert_eq!(config.launch.state_ttl_secs, 120);
            assert_eq!(reg.adapter, crate::AUTO_ADAPTER);
            assert_eq!(reg.scopes.to_string(), "launch patient/*.rs");
            Ok(())
        });
    }

    #[test]
    fn unrelated_smart_variables_are_ignored() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "smart.toml",
                r#"
                [clients.sandbox]
                issuer = "http://127.0.0.1:9/fhir"
                client_id = "demo"
                client_type = "public"
                redirect_uri = "http://127.0.0.1:8765/callback"
                "#,
            )?;
            // Variables the `smart` command and other tools use, which are not configuration.
            jail.set_env("SMART_CLIENT_SECRET", "cli-secret");
            jail.set_env("SMART_TOKEN", "some-access-token");
            jail.set_env("SMART_SOMETHING_ELSE", "1");
            jail.set_env("SMART_CLIENTS", "not-a-table");
            jail.set_env("SMART_HTTP__TIMEOUT_SECS", "7");
            let config = SmartConfig::load(Some(Path::new("smart.toml"))).expect("loads");
            assert_eq!(config.clients["sandbox"].client_id, "demo");
            assert_eq!(config.http.timeout_secs, 7, "section variables still apply");
            // A typo inside a section is still reported.
            jail.set_env("SMART_LAUNCH__STATE_TTL", "300");
            let err = SmartConfig::load(Some(Path::new("smart.toml"))).expect_err("typo");
            assert!(err.to_string().contains("state_ttl"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn bad_values_get_one_line_fixes() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "smart.toml",
                r#"
                [clients.prod]
                issuer = "http://ehr.example.org/fhir"
                client_id = "app"
                client_type = "public"
                redirect_uri = "https://app/cb"
                "#,
            )?;
            let err = SmartConfig::load(Some(Path::new("smart.toml"))).expect_err("plain http");
            let msg = err.to_string();
            assert!(
                msg.contains("clients.prod.issuer") && msg.contains("https://"),
                "{msg}"
            );
            assert!(!msg.contains('\n'));
            jail.create_file(
                "typo.toml",
                r#"
                [clients.prod]
                issuer = "https://ehr.example.org/fhir"
                client_id = "app"
                client_type = "public"
                redirect_url = "https://app/cb"
                "#,
            )?;
            let err = SmartConfig::load(Some(Path::new("typo.toml"))).expect_err("typo");
            assert!(err.to_string().contains("redirect_url"), "{err}");
            jail.create_file(
                "nosecret.toml",
                r#"
                [clients.prod]
                issuer = "https://ehr.example.org/fhir"
                client_id = "app"
                client_type = "confidential-symmetric"
                redirect_uri = "https://app/cb"
                "#,
            )?;
            let err = SmartConfig::load(Some(Path::new("nosecret.toml"))).expect_err("no secret");
            assert!(err.to_string().contains("needs a client_secret"), "{err}");
            let err = SmartConfig::load(Some(Path::new("missing.toml"))).expect_err("missing");
            assert!(err.to_string().contains("does not exist"));
            Ok(())
        });
    }
}
