//! What a SMART server says it offers: [`SmartConfiguration`] and its [`Capability`] strings.
//!
//! The configuration is vocabulary used by discovery, the vendor hooks, client authentication and
//! the launch flow. It lives apart from the discovery code that fetches it so that those modules
//! can name it without importing each other.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use url::Url;

use crate::error::DiscoveryError;
use crate::http::redact_url;

/// A SMART capability string (SMART App Launch 2.2 §"Capabilities").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Capability {
    /// `launch-ehr`
    LaunchEhr,
    /// `launch-standalone`
    LaunchStandalone,
    /// `authorize-post`
    AuthorizePost,
    /// `client-public`
    ClientPublic,
    /// `client-confidential-symmetric`
    ClientConfidentialSymmetric,
    /// `client-confidential-asymmetric`
    ClientConfidentialAsymmetric,
    /// `sso-openid-connect`
    SsoOpenIdConnect,
    /// `context-banner`
    ContextBanner,
    /// `context-style`
    ContextStyle,
    /// `context-ehr-patient`
    ContextEhrPatient,
    /// `context-ehr-encounter`
    ContextEhrEncounter,
    /// `context-standalone-patient`
    ContextStandalonePatient,
    /// `context-standalone-encounter`
    ContextStandaloneEncounter,
    /// `permission-offline`
    PermissionOffline,
    /// `permission-online`
    PermissionOnline,
    /// `permission-patient`
    PermissionPatient,
    /// `permission-user`
    PermissionUser,
    /// `permission-v1`
    PermissionV1,
    /// `permission-v2`
    PermissionV2,
    /// `smart-app-state`
    SmartAppState,
    /// Any other capability, kept verbatim (extensions use full URIs).
    Other(String),
}

const CAPABILITY_NAMES: &[(&str, Capability)] = &[
    ("launch-ehr", Capability::LaunchEhr),
    ("launch-standalone", Capability::LaunchStandalone),
    ("authorize-post", Capability::AuthorizePost),
    ("client-public", Capability::ClientPublic),
    (
        "client-confidential-symmetric",
        Capability::ClientConfidentialSymmetric,
    ),
    (
        "client-confidential-asymmetric",
        Capability::ClientConfidentialAsymmetric,
    ),
    ("sso-openid-connect", Capability::SsoOpenIdConnect),
    ("context-banner", Capability::ContextBanner),
    ("context-style", Capability::ContextStyle),
    ("context-ehr-patient", Capability::ContextEhrPatient),
    ("context-ehr-encounter", Capability::ContextEhrEncounter),
    (
        "context-standalone-patient",
        Capability::ContextStandalonePatient,
    ),
    (
        "context-standalone-encounter",
        Capability::ContextStandaloneEncounter,
    ),
    ("permission-offline", Capability::PermissionOffline),
    ("permission-online", Capability::PermissionOnline),
    ("permission-patient", Capability::PermissionPatient),
    ("permission-user", Capability::PermissionUser),
    ("permission-v1", Capability::PermissionV1),
    ("permission-v2", Capability::PermissionV2),
    ("smart-app-state", Capability::SmartAppState),
];

impl Capability {
    /// Parses a capability string; unknown ones become [`Capability::Other`].
    pub fn parse(s: &str) -> Capability {
        CAPABILITY_NAMES
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, c)| c.clone())
            .unwrap_or_else(|| Capability::Other(s.to_owned()))
    }

    /// The wire form.
    pub fn as_str(&self) -> &str {
        match self {
            Capability::Other(s) => s,
            known => CAPABILITY_NAMES
                .iter()
                .find(|(_, c)| c == known)
                .map(|(name, _)| *name)
                .unwrap_or_default(),
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Capability {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Capability {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Capability::parse(&s))
    }
}

/// The server's `.well-known/smart-configuration` (or what the CapabilityStatement fallback could
/// tell), with every endpoint resolved to an absolute URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SmartConfiguration {
    /// OIDC issuer (present with `sso-openid-connect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The server's JWKS URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Authorization endpoint (required when a launch capability is advertised).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    /// Token endpoint (required).
    pub token_endpoint: String,
    /// Grant types, e.g. `authorization_code`, `client_credentials`.
    #[serde(default)]
    pub grant_types_supported: Vec<String>,
    /// Advertised capabilities.
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    /// PKCE methods; a conformant server lists `S256` and never `plain`.
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    /// Client authentication methods at the token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// JWS algorithms accepted for `private_key_jwt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
    /// Dynamic registration endpoint (RFC 7591).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// Scopes the server supports (not necessarily exhaustive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// Response types, e.g. `code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_types_supported: Option<Vec<String>>,
    /// Page where a user manages app grants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_endpoint: Option<String>,
    /// RFC 7662 introspection endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    /// RFC 7009 revocation endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// User-access brand bundle URL (2.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_access_brand_bundle: Option<String>,
    /// This server's primary brand identifier (2.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_access_brand_identifier: Option<Value>,
    /// Endpoints sharing this server's authorization (2.2, experimental).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub associated_endpoints: Option<Vec<AssociatedEndpoint>>,
    /// Every field not modelled above, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An `associated_endpoints` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssociatedEndpoint {
    /// The endpoint URL.
    pub url: String,
    /// Its capabilities.
    #[serde(default)]
    pub capabilities: Vec<Capability>,
}

impl SmartConfiguration {
    /// A configuration with only the required token endpoint set; the rest empty.
    pub fn new(token_endpoint: impl Into<String>) -> Self {
        SmartConfiguration {
            issuer: None,
            jwks_uri: None,
            authorization_endpoint: None,
            token_endpoint: token_endpoint.into(),
            grant_types_supported: Vec::new(),
            capabilities: Vec::new(),
            code_challenge_methods_supported: Vec::new(),
            token_endpoint_auth_methods_supported: None,
            token_endpoint_auth_signing_alg_values_supported: None,
            registration_endpoint: None,
            scopes_supported: None,
            response_types_supported: None,
            management_endpoint: None,
            introspection_endpoint: None,
            revocation_endpoint: None,
            user_access_brand_bundle: None,
            user_access_brand_identifier: None,
            associated_endpoints: None,
            extra: Map::new(),
        }
    }

    /// Whether `capability` is advertised.
    pub fn supports(&self, capability: &Capability) -> bool {
        self.capabilities.contains(capability)
    }

    /// Whether `method` (e.g. `client_secret_basic`) is listed in
    /// `token_endpoint_auth_methods_supported`. `None` when the server does not say.
    pub fn advertises_auth_method(&self, method: &str) -> Option<bool> {
        self.token_endpoint_auth_methods_supported
            .as_ref()
            .map(|m| m.iter().any(|x| x == method))
    }

    /// Resolves every endpoint against `base` (RFC 3986), turning relative URLs absolute.
    pub(crate) fn resolve_endpoints(&mut self, base: &Url) -> Result<(), DiscoveryError> {
        let base_dir = directory_of(base);
        let resolve = |field: &'static str, value: &mut String| -> Result<(), DiscoveryError> {
            let resolved =
                base_dir
                    .join(value.trim())
                    .map_err(|_| DiscoveryError::InvalidEndpoint {
                        field,
                        value: redact_url(value),
                    })?;
            *value = resolved.to_string();
            Ok(())
        };
        resolve("token_endpoint", &mut self.token_endpoint)?;
        let optional: [(&'static str, &mut Option<String>); 7] = [
            ("authorization_endpoint", &mut self.authorization_endpoint),
            ("jwks_uri", &mut self.jwks_uri),
            ("registration_endpoint", &mut self.registration_endpoint),
            ("management_endpoint", &mut self.management_endpoint),
            ("introspection_endpoint", &mut self.introspection_endpoint),
            ("revocation_endpoint", &mut self.revocation_endpoint),
            (
                "user_access_brand_bundle",
                &mut self.user_access_brand_bundle,
            ),
        ];
        for (field, value) in optional {
            if let Some(v) = value {
                resolve(field, v)?;
            }
        }
        Ok(())
    }
}

/// The base as a "directory" so that `join("auth/token")` keeps its last path segment.
fn directory_of(base: &Url) -> Url {
    let mut dir = base.clone();
    if !dir.path().ends_with('/') {
        let path = format!("{}/", dir.path());
        dir.set_path(&path);
    }
    dir
}
