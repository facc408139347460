//! Vendor profiles: the differences between EHR vendors, as data.
//!
//! Real EHRs differ in URL shapes, discovery documents, what they grant and
//! how they echo it, token lifetimes, refresh rules, extra token fields and
//! FHIR error shapes (the quirk table in `docs/adding-an-adapter.md`). A [`VendorProfile`] lists those
//! differences as plain fields, read from a TOML file; the request handlers
//! read the fields and never ask which vendor they emulate. Three profiles are
//! built in (`profiles/*.toml`, embedded in the binary): `generic` (the
//! default, a spec-conformant server), `epic` and `cerner`.
//!
//! Parsing is strict like the clients file: unknown keys are errors, every
//! error is one line, and a profile is validated again when a sandbox
//! starts (its fields are public and may have been changed in code).

use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

use crate::error::SandboxError;
use crate::fhir::index::RESOURCE_TYPES;

const GENERIC: &str = include_str!("../profiles/generic.toml");
const EPIC: &str = include_str!("../profiles/epic.toml");
const CERNER: &str = include_str!("../profiles/cerner.toml");

/// The names of the built-in profiles, for [`VendorProfile::builtin`].
pub const BUILTIN_PROFILES: &[&str] = &["generic", "epic", "cerner"];

/// Token response fields a [`TokenExtraField`] may not replace.
const STANDARD_TOKEN_FIELDS: &[&str] = &[
    "access_token",
    "token_type",
    "expires_in",
    "scope",
    "refresh_token",
    "id_token",
    "patient",
    "encounter",
    "need_patient_banner",
    "smart_style_url",
    "fhirContext",
];

/// Placeholders a path may use.
const PATH_VARS: &[&str] = &["tenant", "idsp"];
/// Placeholders an issuer may use.
const ISSUER_VARS: &[&str] = &["root", "fhir_base", "tenant", "idsp"];
/// Placeholders `error_uri` may use.
const ERROR_URI_VARS: &[&str] = &[
    "root",
    "fhir_base",
    "tenant",
    "idsp",
    "error",
    "instance",
    "reason",
    "client",
];
/// Placeholders a token extra field's string value may use.
const FIELD_VARS: &[&str] = &[
    "patient",
    "patient_dstu2",
    "encounter",
    "user",
    "user_id",
    "user_type",
    "state",
    "client_id",
    "tenant",
    "idsp",
    "root",
    "fhir_base",
];

/// Everything that distinguishes one simulated EHR vendor from another, as
/// read from a profile TOML file (see `docs/sandbox.md`, "Vendor profiles",
/// and the built-in `profiles/*.toml`, which comment every key with its row
/// in the quirk table).
///
/// Get one with [`VendorProfile::builtin`] or [`VendorProfile::from_toml_str`]
/// and put it in [`SandboxConfig::profile`](crate::SandboxConfig::profile).
/// The default is the `generic` profile, the sandbox's spec-conformant
/// behaviour.
///
/// Paths may use the placeholders `{tenant}` and `{idsp}` (the values of
/// [`tenant`](Self::tenant) and [`idsp`](Self::idsp)); issuers and
/// [`error_uri`](Self::error_uri) may also use `{root}` (the sandbox origin,
/// `http://127.0.0.1:PORT`) and `{fhir_base}` (root + [`fhir_path`](Self::fhir_path)).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct VendorProfile {
    /// The profile's name, e.g. `"epic"`: lowercase letters, digits, `-`, `_`.
    pub name: String,
    /// One line describing what the profile emulates.
    pub description: String,
    /// The value of `{tenant}` (Cerner: the tenant GUID in every URL).
    #[serde(default)]
    pub tenant: Option<String>,
    /// The value of `{idsp}` (Cerner: the identity provider in the id_token issuer).
    #[serde(default)]
    pub idsp: Option<String>,

    /// Path of the FHIR base: the launch `iss` and the `aud` apps must send
    /// are `{root}{fhir_path}` (generic `/fhir`).
    pub fhir_path: String,
    /// Path of the authorization endpoint (GET and POST).
    pub authorize_path: String,
    /// Path of the token endpoint; client assertions must carry
    /// `aud = {root}{token_path}` exactly.
    pub token_path: String,
    /// Path of the token introspection endpoint.
    pub introspection_path: String,
    /// Path of the JWKS with the `id_token` signing keys (`jwks_uri`).
    pub jwks_path: String,

    /// `issuer` of `.well-known/smart-configuration` (a template, e.g.
    /// `"{fhir_base}"`).
    pub smart_issuer: String,
    /// `iss` of `id_token`s (a template). `{issuer without a trailing
    /// slash}/.well-known/openid-configuration` is served, with `issuer` equal
    /// to this value exactly (trailing slash included).
    pub id_token_issuer: String,
    /// Whether `{fhir_base}/.well-known/openid-configuration` is served too
    /// (Epic yes; Cerner no: 404).
    pub openid_configuration_at_fhir_base: bool,

    /// Whether `{fhir_base}/.well-known/smart-configuration` exists (else 404).
    pub smart_configuration: bool,
    /// `scopes_supported` in the discovery documents.
    pub scopes_supported: Vec<String>,
    /// `grant_types_supported` in the discovery documents (advertised only:
    /// the grants a client may use come from its registration).
    pub grant_types_supported: Vec<String>,
    /// `token_endpoint_auth_methods_supported`, also **enforced**: a client
    /// may authenticate with `client_secret_basic`, `client_secret_post` and
    /// `private_key_jwt` only when listed here (`none`, public clients, is
    /// always allowed).
    pub token_endpoint_auth_methods: Vec<String>,
    /// `capabilities` in `.well-known/smart-configuration` (advertised only:
    /// the behaviours come from the other fields).
    pub capabilities: Vec<String>,

    /// Whether an authorization request without `aud` is rejected (a wrong
    /// `aud` always is).
    pub require_aud: bool,
    /// Whether a POST to the authorization endpoint is accepted for a
    /// standalone launch (no `launch` parameter); `false`: 400 HTML page, no
    /// redirect (Epic).
    pub authorize_post_standalone: bool,
    /// Whether requested wildcard resource scopes (`patient/*.rs`) are
    /// rejected with `invalid_scope`.
    pub reject_wildcard_scopes: bool,
    /// Whether requested wildcard resource scopes are silently left out of
    /// the grant, the rest granted with a successful token (Oracle Health).
    /// Exclusive with [`reject_wildcard_scopes`](Self::reject_wildcard_scopes).
    #[serde(default)]
    pub drop_wildcard_scopes: bool,
    /// Whether `client_credentials` also accepts a
    /// [`ClientAuth::ClientSecretBasic`](crate::ClientAuth::ClientSecretBasic)
    /// client authenticating with HTTP Basic (Oracle Health's system
    /// accounts); `private_key_jwt` is always accepted. Default `false`.
    #[serde(default)]
    pub client_credentials_basic: bool,
    /// Whether authorization errors found after the `redirect_uri` check
    /// redirect back to the app (`false`: a 400 HTML page and no redirect,
    /// like Epic; the user's denial still redirects with `access_denied`).
    pub authorize_errors_redirect: bool,

    /// `expires_in` of authorization-code access tokens, unless
    /// [`Behavior::access_token_lifetime`](crate::Behavior::access_token_lifetime)
    /// was changed from its default.
    pub access_token_lifetime_secs: u64,
    /// `expires_in` of `client_credentials` tokens, unless
    /// [`Behavior::backend_token_lifetime`](crate::Behavior::backend_token_lifetime)
    /// was changed from its default.
    pub backend_token_lifetime_secs: u64,
    /// `exp - iat` of `id_token`s.
    pub id_token_lifetime_secs: u64,
    /// `token_type` in token responses: `"Bearer"` or `"bearer"`
    /// ([`Behavior::lowercase_token_type`](crate::Behavior::lowercase_token_type)
    /// forces `"bearer"`).
    pub token_type: String,
    /// Whether a refresh issues a new refresh token and retires the old one
    /// (both this and [`Behavior::rotate_refresh_tokens`](crate::Behavior::rotate_refresh_tokens)
    /// must be true).
    pub rotate_refresh_tokens: bool,
    /// Whether refresh responses carry a `refresh_token` (both this and
    /// [`Behavior::refresh_returns_refresh_token`](crate::Behavior::refresh_returns_refresh_token)
    /// must be true); without one the original stays valid.
    pub refresh_response_includes_refresh_token: bool,
    /// Whether only confidential clients get refresh tokens (Epic): a public
    /// client never gets one, whatever it was granted.
    pub refresh_token_requires_confidential: bool,
    /// A second refresh of the same grant within this many seconds of the
    /// previous refresh answers 429 `temporarily_unavailable` with
    /// `Retry-After` (Cerner 60). The first refresh after the code exchange
    /// is never throttled. 0: no throttling.
    pub refresh_min_interval_secs: u64,
    /// How the granted scopes appear in token responses (and are granted).
    pub scope_echo: ScopeEcho,
    /// The prefix of fully qualified scopes; required when
    /// [`scope_echo`](Self::scope_echo) is [`ScopeEcho::Qualified`].
    #[serde(default)]
    pub qualified_scope_prefix: Option<String>,
    /// Whether `need_patient_banner` is the string `"true"`/`"false"` (Epic)
    /// instead of a boolean.
    pub need_patient_banner_as_string: bool,
    /// A template for an `error_uri` added to every OAuth error (token and
    /// introspection JSON errors, authorization error redirects): `{error}` is
    /// the error code, `{instance}` a fresh random id (Cerner).
    #[serde(default)]
    pub error_uri: Option<String>,
    /// Extra fields of launch token responses (not `client_credentials`).
    #[serde(default)]
    pub token_extra_fields: Vec<TokenExtraField>,

    /// When set, search Bundles (search pages and `$everything`) carry one
    /// `search.mode = outcome` OperationOutcome entry with this issue (Epic:
    /// only when a page has no matches), merged with the warnings about
    /// ignored parameters.
    #[serde(default)]
    pub search_outcome: Option<SearchOutcome>,
    /// When set, the vendor's codes for search problems and the limits that
    /// produce them (Epic 4113, 4122, 4127, 59100): coded warnings for
    /// ignored parameters, a cap on Patient searches, and paging sessions
    /// that expire. `None` (generic, Cerner): uncoded warnings, no cap, page
    /// links that never expire.
    #[serde(default)]
    pub search_codes: Option<SearchCodes>,
    /// Searches that need one of some parameters (Epic, Cerner).
    #[serde(default)]
    pub required_search_params: Vec<RequiredSearchParams>,
    /// When set (the [`fhir_path`](Self::fhir_path) must use `{tenant}`), a
    /// request under another tenant's FHIR base answers 403 with this plain
    /// text (Cerner `Tenant not valid or accessible`).
    #[serde(default)]
    pub unknown_tenant_body: Option<String>,
    /// When set, the name of a request header in which an app may name its
    /// client ID on discovery, OAuth and FHIR calls (Epic's
    /// `Epic-Client-ID`). A request that carries it must name a registered
    /// client, otherwise it is refused with a 400; every value is recorded
    /// ([`Sandbox::client_id_headers_seen`](crate::Sandbox::client_id_headers_seen)).
    #[serde(default)]
    pub client_id_header: Option<String>,
    /// Whether refresh requests may carry `active_at` (Oracle Health's Active
    /// User Presence extension: the seconds since the app last saw the user
    /// act). A value of 1 to 10 digits is accepted and recorded
    /// ([`Sandbox::active_at_seen`](crate::Sandbox::active_at_seen)); any other
    /// value (negative, not a number) is ignored, as the extension requires.
    /// Default `false`: the parameter is ignored unrecorded.
    #[serde(default)]
    pub active_user_presence: bool,
    /// When set, the path of an RFC 7591 dynamic client registration
    /// endpoint in Epic's form (`POST …/oauth2/register`, authorized by a
    /// one-time initial access token from a standalone launch, answered with a
    /// client that then uses the `jwt-bearer` grant), advertised as
    /// `registration_endpoint` in the SMART configuration and as `register`
    /// in `/metadata`'s `oauth-uris`. See `docs/sandbox.md`.
    #[serde(default)]
    pub registration_path: Option<String>,
}

/// How granted scopes are decided and echoed in the token response's `scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ScopeEcho {
    /// `"requested"`: the requested scopes the registration covers, worded as
    /// requested (SMART).
    Requested,
    /// `"registration"` (Epic): the grant's resource scopes are the client's
    /// registered resource scopes, whatever was requested; the other granted
    /// scopes are kept, `offline_access` included (Epic's tutorial shows a real
    /// R4 token response ending `… launch/patient offline_access openid`). A
    /// `client_credentials` request may omit `scope`.
    Registration,
    /// `"qualified"` (Cerner): as `requested`, but every echoed scope is
    /// prefixed with [`VendorProfile::qualified_scope_prefix`].
    Qualified,
}

/// One extra field of token responses ([`VendorProfile::token_extra_fields`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TokenExtraField {
    /// The JSON member name, e.g. `"__epic.dstu2.patient"`.
    pub name: String,
    /// A string, number or boolean. In a string, `{patient}`,
    /// `{patient_dstu2}` (a DSTU2-style id derived from the patient id),
    /// `{encounter}`, `{user}` (`Practitioner/prac-1`), `{user_id}`,
    /// `{user_type}`, `{state}` (of the authorization request), `{client_id}`,
    /// `{tenant}`, `{idsp}`, `{root}` and `{fhir_base}` are replaced; the
    /// field is left out when one of them has no value.
    pub value: Value,
    /// Conditions that must all hold (default: none, always present).
    #[serde(default)]
    pub when: Vec<FieldCondition>,
}

/// When a [`TokenExtraField`] is present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FieldCondition {
    /// The grant comes from an EHR launch.
    EhrLaunch,
    /// The grant comes from a standalone launch.
    Standalone,
    /// The response is a code exchange (not a refresh).
    CodeExchange,
    /// The response is a refresh.
    Refresh,
    /// `online_access` was granted.
    OnlineAccess,
    /// `offline_access` was granted.
    OfflineAccess,
}

/// The issue of the outcome entry in search Bundles
/// ([`VendorProfile::search_outcome`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SearchOutcome {
    /// `issue.severity`: `fatal`, `error`, `warning` or `information`.
    pub severity: String,
    /// `issue.code` (a FHIR IssueType), e.g. `informational`.
    pub code: String,
    /// `issue.details.coding.system`, e.g. Epic's OID.
    #[serde(default)]
    pub details_system: Option<String>,
    /// `issue.details.coding.code`, e.g. `4101`.
    #[serde(default)]
    pub details_code: Option<String>,
    /// `issue.details.text` and `issue.diagnostics`.
    pub text: String,
    /// Whether the entry is added only to a Bundle page without matches
    /// (Epic's 4101 "no results"); default `false`: on every page.
    #[serde(default)]
    pub only_when_empty: bool,
}

/// The longest [`SearchCodes::paging_session_lifetime_secs`] (a day).
const MAX_PAGING_SESSION_SECS: u64 = 24 * 3600;

/// A vendor's codes for search problems and the limits behind them
/// ([`VendorProfile::search_codes`]). Every code is sent as
/// `issue.details.coding` (`system` = [`details_system`](Self::details_system)),
/// the shape of the profile's other vendor codes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SearchCodes {
    /// `issue.details.coding.system` of the codes below, e.g. Epic's OID.
    #[serde(default)]
    pub details_system: Option<String>,
    /// The code on the warning for a parameter the server does not know
    /// (Epic `4122`); the search still answers, ignoring it.
    #[serde(default)]
    pub unknown_parameter: Option<String>,
    /// The code on the warning for a parameter the server knows but did not
    /// apply (Epic `59100`): `_revinclude`, `_summary`, `_elements` and other
    /// FHIR-wide parameters, an unsupported `_sort` key or `_include`, a chain
    /// on a known parameter.
    #[serde(default)]
    pub ignored_parameter: Option<String>,
    /// A Patient search that matches more patients than this (of those the
    /// token may see) is refused: 400 with one `fatal` issue coded
    /// [`too_many_results`](Self::too_many_results) (Epic 100, code `4127`).
    #[serde(default)]
    pub patient_search_limit: Option<usize>,
    /// The code of that refusal; required with `patient_search_limit`.
    #[serde(default)]
    pub too_many_results: Option<String>,
    /// A search's `next`/`previous` links stop working this many seconds after
    /// its first page was served (0: at once): 400 with one `fatal` issue
    /// coded [`paging_session_expired`](Self::paging_session_expired) (Epic
    /// `4113`). At most a day.
    #[serde(default)]
    pub paging_session_lifetime_secs: Option<u64>,
    /// The code of that refusal; required with `paging_session_lifetime_secs`.
    #[serde(default)]
    pub paging_session_expired: Option<String>,
}

impl SearchCodes {
    /// Checks the codes and limits; the error names the key.
    fn validate(&self) -> Result<(), String> {
        for (key, value) in [
            ("details_system", &self.details_system),
            ("unknown_parameter", &self.unknown_parameter),
            ("ignored_parameter", &self.ignored_parameter),
            ("too_many_results", &self.too_many_results),
            ("paging_session_expired", &self.paging_session_expired),
        ] {
            if let Some(v) = value
                && (v.is_empty() || v.len() > 256 || v.chars().any(char::is_whitespace))
            {
                return Err(format!(
                    "search_codes.{key} {v:?} must be 1 to 256 characters without spaces"
                ));
            }
        }
        match (self.patient_search_limit, &self.too_many_results) {
            (Some(0), _) => {
                return Err(
                    "search_codes.patient_search_limit is 0; use at least 1 (Epic 100)".into(),
                );
            }
            (Some(_), None) => {
                return Err(
                    "search_codes.patient_search_limit needs too_many_results, e.g. \"4127\""
                        .into(),
                );
            }
            _ => {}
        }
        match (
            self.paging_session_lifetime_secs,
            &self.paging_session_expired,
        ) {
            (Some(s), _) if s > MAX_PAGING_SESSION_SECS => {
                return Err(format!(
                    "search_codes.paging_session_lifetime_secs {s} is more than a day ({MAX_PAGING_SESSION_SECS})"
                ));
            }
            (Some(_), None) => {
                return Err(
                    "search_codes.paging_session_lifetime_secs needs paging_session_expired, e.g. \"4113\""
                        .into(),
                );
            }
            _ => {}
        }
        Ok(())
    }
}

/// A required-parameter rule ([`VendorProfile::required_search_params`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RequiredSearchParams {
    /// The resource types the rule applies to.
    pub resource_types: Vec<String>,
    /// A search must use at least one of these parameters (modifiers such as
    /// `subject:Patient` count); otherwise 400.
    pub any_of: Vec<String>,
    /// The shape of the 400 body.
    pub format: ErrorFormat,
    /// The message: the whole body (`text`) or the issue's diagnostics.
    pub message: String,
    /// `issue.details.coding.system` of the OperationOutcome.
    #[serde(default)]
    pub details_system: Option<String>,
    /// `issue.details.coding.code` of the OperationOutcome, e.g. `4111`.
    #[serde(default)]
    pub details_code: Option<String>,
}

/// The body of a FHIR error response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ErrorFormat {
    /// `"operation-outcome"`: an OperationOutcome (`application/fhir+json`)
    /// with one `error` issue of code `required`.
    OperationOutcome,
    /// `"text"`: the message as `text/plain` (Cerner).
    Text,
}

impl Default for VendorProfile {
    /// The `generic` profile.
    fn default() -> Self {
        VendorProfile::builtin("generic").expect("the built-in generic profile is valid")
    }
}

fn builtin_text(name: &str) -> Option<&'static str> {
    match name {
        "generic" => Some(GENERIC),
        "epic" => Some(EPIC),
        "cerner" => Some(CERNER),
        _ => None,
    }
}

fn unknown_builtin(name: &str) -> String {
    format!(
        "unknown vendor profile {name:?}; use one of {}",
        BUILTIN_PROFILES.join(", ")
    )
}

impl VendorProfile {
    /// A built-in profile: `"generic"` (the default), `"epic"` or `"cerner"`.
    /// Any other name is a one-line [`SandboxError::Config`] listing them.
    pub fn builtin(name: &str) -> Result<VendorProfile, SandboxError> {
        static PARSED: OnceLock<Vec<Result<VendorProfile, String>>> = OnceLock::new();
        let parsed = PARSED.get_or_init(|| {
            BUILTIN_PROFILES
                .iter()
                .map(|n| {
                    builtin_text(n)
                        .ok_or_else(|| unknown_builtin(n))
                        .and_then(parse)
                })
                .collect()
        });
        let index = BUILTIN_PROFILES
            .iter()
            .position(|n| *n == name)
            .ok_or_else(|| SandboxError::Config(unknown_builtin(name)))?;
        match &parsed[index] {
            Ok(p) => Ok(p.clone()),
            Err(e) => Err(SandboxError::Config(format!(
                "built-in profile {name}: {e}"
            ))),
        }
    }

    /// Parses and validates a profile (the format of `profiles/*.toml`).
    ///
    /// A top-level `extends = "epic"` (a built-in name) starts from that
    /// profile and replaces the keys the text sets (tables and arrays of
    /// tables as a whole); such a profile must set its own `name`. Errors are
    /// one line, e.g. `profile: line 3: unknown field ...` or
    /// `profile "my-epic": fhir_path ...`.
    pub fn from_toml_str(s: &str) -> Result<VendorProfile, SandboxError> {
        parse(s).map_err(SandboxError::Config)
    }

    /// The profile's name, e.g. `"epic"`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether `token_endpoint_auth_methods` lists `method`.
    pub(crate) fn accepts_auth_method(&self, method: &str) -> bool {
        self.token_endpoint_auth_methods.iter().any(|m| m == method)
    }

    fn path_vars(&self) -> Vec<(&'static str, Option<&str>)> {
        vec![
            ("tenant", self.tenant.as_deref()),
            ("idsp", self.idsp.as_deref()),
        ]
    }

    /// Resolves a path template (already validated).
    fn path(&self, template: &str) -> String {
        substitute(template, &self.path_vars()).unwrap_or_else(|_| template.to_owned())
    }

    /// Checks every field; the error is one line naming the key.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let named = |m: String| format!("profile {:?}: {m}", self.name);
        self.validate_inner().map_err(named)
    }

    fn validate_inner(&self) -> Result<(), String> {
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "name {:?} is not valid; use lowercase letters, digits, '-' and '_'",
                self.name
            ));
        }
        for (key, value) in [("tenant", &self.tenant), ("idsp", &self.idsp)] {
            if let Some(v) = value
                && (v.is_empty() || !v.bytes().all(is_path_byte) || v.contains('/'))
            {
                return Err(format!(
                    "{key} {v:?} is not a valid path segment; use letters, digits, '-', '.', '_' or '~'"
                ));
            }
        }
        let vars = self.path_vars();
        let mut paths: Vec<(&str, String)> = Vec::new();
        for (key, template) in [
            ("fhir_path", &self.fhir_path),
            ("authorize_path", &self.authorize_path),
            ("token_path", &self.token_path),
            ("introspection_path", &self.introspection_path),
            ("jwks_path", &self.jwks_path),
        ]
        .into_iter()
        .chain(
            self.registration_path
                .as_ref()
                .map(|p| ("registration_path", p)),
        ) {
            let path = substitute(template, &vars).map_err(|e| e.message(key, PATH_VARS))?;
            check_path(key, &path, false)?;
            paths.push((key, path));
        }
        let fhir = paths[0].1.clone();
        for (key, path) in &paths[1..] {
            if *path == fhir || path.starts_with(&format!("{fhir}/")) {
                return Err(format!(
                    "{key} {path:?} lies under the FHIR base {fhir:?}; put the OAuth endpoints outside it"
                ));
            }
        }
        for (i, (key, path)) in paths.iter().enumerate() {
            if let Some((other, _)) = paths[..i].iter().find(|(_, p)| p == path) {
                return Err(format!(
                    "{key} and {other} are both {path:?}; every endpoint needs its own path"
                ));
            }
        }
        for (key, template) in [
            ("smart_issuer", &self.smart_issuer),
            ("id_token_issuer", &self.id_token_issuer),
        ] {
            self.check_issuer(key, template)?;
        }
        if let Some(template) = &self.error_uri {
            let mut vars = self.issuer_vars("http://127.0.0.1:1", "http://127.0.0.1:1/fhir");
            vars.push(("error", Some("invalid_request")));
            vars.push(("instance", Some("x")));
            vars.push(("reason", Some("grant:denied-by-server")));
            vars.push(("client", Some("x")));
            let uri =
                substitute(template, &vars).map_err(|e| e.message("error_uri", ERROR_URI_VARS))?;
            url::Url::parse(&uri).map_err(|e| {
                format!(
                    "error_uri {template:?} is not an absolute URL ({e}); start it with {{root}}"
                )
            })?;
        }
        for (key, list) in [
            ("scopes_supported", &self.scopes_supported),
            ("grant_types_supported", &self.grant_types_supported),
            (
                "token_endpoint_auth_methods",
                &self.token_endpoint_auth_methods,
            ),
            ("capabilities", &self.capabilities),
        ] {
            if let Some(bad) = list
                .iter()
                .find(|s| s.is_empty() || s.chars().any(char::is_whitespace))
            {
                return Err(format!(
                    "{key} has the entry {bad:?}; entries are single words without spaces"
                ));
            }
        }
        const AUTH_METHODS: &[&str] = &[
            "none",
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ];
        if let Some(bad) = self
            .token_endpoint_auth_methods
            .iter()
            .find(|m| !AUTH_METHODS.contains(&m.as_str()))
        {
            return Err(format!(
                "token_endpoint_auth_methods has {bad:?}; use {}",
                AUTH_METHODS.join(", ")
            ));
        }
        for (key, secs) in [
            (
                "access_token_lifetime_secs",
                self.access_token_lifetime_secs,
            ),
            (
                "backend_token_lifetime_secs",
                self.backend_token_lifetime_secs,
            ),
            ("id_token_lifetime_secs", self.id_token_lifetime_secs),
        ] {
            if secs == 0 {
                return Err(format!(
                    "{key} is 0; tokens need a lifetime of at least 1 s"
                ));
            }
        }
        if !self.token_type.eq_ignore_ascii_case("bearer") {
            return Err(format!(
                "token_type {:?} is not a spelling of Bearer; use \"Bearer\" or \"bearer\"",
                self.token_type
            ));
        }
        if self.reject_wildcard_scopes && self.drop_wildcard_scopes {
            return Err(
                "reject_wildcard_scopes and drop_wildcard_scopes exclude each other; set one"
                    .into(),
            );
        }
        match (&self.scope_echo, &self.qualified_scope_prefix) {
            (ScopeEcho::Qualified, None) => {
                return Err(
                    "scope_echo \"qualified\" needs qualified_scope_prefix, e.g. \"http://smarthealthit.org/FHIR/scopes/\""
                        .into(),
                );
            }
            (ScopeEcho::Qualified, Some(p)) if p.is_empty() || p.contains(' ') => {
                return Err(format!(
                    "qualified_scope_prefix {p:?} must be non-empty without spaces"
                ));
            }
            _ => {}
        }
        for (i, field) in self.token_extra_fields.iter().enumerate() {
            self.check_extra_field(field)
                .map_err(|m| format!("token_extra_fields[{i}] ({}): {m}", field.name))?;
            if self.token_extra_fields[..i]
                .iter()
                .any(|f| f.name == field.name)
            {
                return Err(format!(
                    "token_extra_fields[{i}] ({}): the name is used twice; keep one",
                    field.name
                ));
            }
        }
        if let Some(o) = &self.search_outcome {
            const SEVERITIES: &[&str] = &["fatal", "error", "warning", "information"];
            if !SEVERITIES.contains(&o.severity.as_str()) {
                return Err(format!(
                    "search_outcome.severity {:?} is not a FHIR severity; use {}",
                    o.severity,
                    SEVERITIES.join(", ")
                ));
            }
            if o.code.is_empty() || o.text.is_empty() {
                return Err("search_outcome needs a non-empty code and text".into());
            }
        }
        if let Some(codes) = &self.search_codes {
            codes.validate()?;
        }
        for (i, rule) in self.required_search_params.iter().enumerate() {
            let at = |m: String| format!("required_search_params[{i}]: {m}");
            if rule.resource_types.is_empty() || rule.any_of.is_empty() {
                return Err(at("resource_types and any_of must not be empty".into()));
            }
            if let Some(t) = rule
                .resource_types
                .iter()
                .find(|t| !RESOURCE_TYPES.contains(&t.as_str()))
            {
                return Err(at(format!(
                    "resource type {t:?} is not served; use {}",
                    RESOURCE_TYPES.join(", ")
                )));
            }
            if rule.message.is_empty() {
                return Err(at("message is empty".into()));
            }
        }
        if let Some(name) = &self.client_id_header {
            check_header_name(name)?;
        }
        if let Some(body) = &self.unknown_tenant_body {
            if !self.fhir_path.contains("{tenant}") {
                return Err(
                    "unknown_tenant_body needs a fhir_path with {tenant}, e.g. \"/r4/{tenant}\""
                        .into(),
                );
            }
            if body.is_empty() {
                return Err("unknown_tenant_body is empty".into());
            }
        }
        Ok(())
    }

    fn issuer_vars<'a>(
        &'a self,
        root: &'a str,
        fhir_base: &'a str,
    ) -> Vec<(&'static str, Option<&'a str>)> {
        let mut vars = self.path_vars();
        vars.push(("root", Some(root)));
        vars.push(("fhir_base", Some(fhir_base)));
        vars
    }

    fn check_issuer(&self, key: &str, template: &str) -> Result<(), String> {
        let rest = template
            .strip_prefix("{root}")
            .or_else(|| template.strip_prefix("{fhir_base}"))
            .ok_or_else(|| {
                format!(
                    "{key} {template:?} must start with {{root}} or {{fhir_base}}: the issuer is served by the sandbox"
                )
            })?;
        let path = substitute(rest, &self.path_vars()).map_err(|e| e.message(key, ISSUER_VARS))?;
        if !path.is_empty() {
            check_path(key, &path, true)?;
        }
        Ok(())
    }

    fn check_extra_field(&self, field: &TokenExtraField) -> Result<(), String> {
        if field.name.is_empty() {
            return Err("name is empty".into());
        }
        if STANDARD_TOKEN_FIELDS.contains(&field.name.as_str()) {
            return Err(format!(
                "{:?} is a standard token response field; extra fields cannot replace it",
                field.name
            ));
        }
        match &field.value {
            Value::String(s) => {
                let vars: Vec<(&str, Option<&str>)> =
                    FIELD_VARS.iter().map(|v| (*v, Some("x"))).collect();
                substitute(s, &vars).map_err(|e| e.message("value", FIELD_VARS))?;
                Ok(())
            }
            Value::Number(_) | Value::Bool(_) => Ok(()),
            _ => Err("value must be a string, a number or a boolean".into()),
        }
    }

    /// Resolves every URL against the sandbox origin `root`.
    pub(crate) fn resolve(&self, root: &str) -> Result<Urls, SandboxError> {
        self.validate().map_err(SandboxError::Config)?;
        let fhir_path = self.path(&self.fhir_path);
        let fhir_base = format!("{root}{fhir_path}");
        let vars = self.issuer_vars(root, &fhir_base);
        let issuer = |template: &str| {
            substitute(template, &vars).map_err(|e| {
                SandboxError::Config(format!(
                    "profile {:?}: {}",
                    self.name,
                    e.message("issuer", ISSUER_VARS)
                ))
            })
        };
        let smart_issuer = issuer(&self.smart_issuer)?;
        let id_token_issuer = issuer(&self.id_token_issuer)?;
        let issuer_path = id_token_issuer
            .strip_prefix(root)
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_owned();
        let mut openid_configuration_paths =
            vec![format!("{issuer_path}/.well-known/openid-configuration")];
        let at_base = format!("{fhir_path}/.well-known/openid-configuration");
        if self.openid_configuration_at_fhir_base && !openid_configuration_paths.contains(&at_base)
        {
            openid_configuration_paths.push(at_base);
        }
        let urls = Urls {
            origin: root.to_owned(),
            fhir_base,
            authorize_path: self.path(&self.authorize_path),
            token_path: self.path(&self.token_path),
            introspection_path: self.path(&self.introspection_path),
            jwks_path: self.path(&self.jwks_path),
            registration_path: self.registration_path.as_deref().map(|p| self.path(p)),
            fhir_path,
            smart_issuer,
            id_token_issuer,
            openid_configuration_paths,
        };
        let fixed = [
            urls.authorize_path.as_str(),
            urls.token_path.as_str(),
            urls.introspection_path.as_str(),
            urls.jwks_path.as_str(),
            "/sandbox/launch",
            "/sandbox/ehr-launch",
            "/smart-style.json",
        ];
        for p in &urls.openid_configuration_paths {
            if fixed.contains(&p.as_str()) || p.starts_with("/sandbox/") {
                return Err(SandboxError::Config(format!(
                    "profile {:?}: the OpenID configuration path {p:?} collides with another endpoint; change id_token_issuer",
                    self.name
                )));
            }
        }
        for p in std::iter::once(urls.fhir_path.as_str()).chain(fixed[..4].iter().copied()) {
            if p == "/sandbox" || p.starts_with("/sandbox/") || p == "/smart-style.json" {
                return Err(SandboxError::Config(format!(
                    "profile {:?}: {p:?} is reserved for the sandbox's own endpoints; choose another path",
                    self.name
                )));
            }
        }
        Ok(urls)
    }

    /// If `path` lies under the FHIR base of a tenant other than this
    /// profile's (for a `{tenant}` FHIR path), the other tenant.
    pub(crate) fn other_tenant<'a>(&self, path: &'a str) -> Option<&'a str> {
        let tenant = self.tenant.as_deref()?;
        let (before, after) = self.fhir_path.split_once("{tenant}")?;
        let before = substitute(before, &self.path_vars()).ok()?;
        let after = substitute(after, &self.path_vars()).ok()?;
        let rest = path.strip_prefix(&before)?;
        let (segment, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let under = tail
            .strip_prefix(&after)
            .is_some_and(|t| t.is_empty() || t.starts_with('/'));
        (under && !segment.is_empty() && segment != tenant).then_some(segment)
    }

    /// The `error_uri` for an OAuth error, if the profile adds one;
    /// `client` is the requesting client's id when known (else empty).
    pub(crate) fn error_uri_for(
        &self,
        urls: &Urls,
        error: &str,
        client: Option<&str>,
    ) -> Option<String> {
        let template = self.error_uri.as_ref()?;
        let instance = crate::random::random_token();
        let client: String =
            url::form_urlencoded::byte_serialize(client.unwrap_or("").as_bytes()).collect();
        let mut vars = self.issuer_vars(&urls.origin, &urls.fhir_base);
        vars.push(("error", Some(error)));
        vars.push(("instance", Some(&instance)));
        vars.push(("reason", Some(error_reason(error))));
        vars.push(("client", Some(&client)));
        substitute(template, &vars).ok()
    }
}

/// The URLs of a running sandbox under its profile.
#[derive(Debug, Clone)]
pub(crate) struct Urls {
    /// `http://127.0.0.1:PORT`.
    pub(crate) origin: String,
    /// `{origin}{fhir_path}`.
    pub(crate) fhir_base: String,
    pub(crate) fhir_path: String,
    pub(crate) authorize_path: String,
    pub(crate) token_path: String,
    pub(crate) introspection_path: String,
    pub(crate) jwks_path: String,
    /// The dynamic client registration endpoint, when the profile has one.
    pub(crate) registration_path: Option<String>,
    pub(crate) smart_issuer: String,
    pub(crate) id_token_issuer: String,
    /// Where `.well-known/openid-configuration` is served.
    pub(crate) openid_configuration_paths: Vec<String>,
}

impl Urls {
    /// `{origin}{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// `{fhir_path}/.well-known/smart-configuration`.
    pub(crate) fn smart_configuration_path(&self) -> String {
        format!("{}/.well-known/smart-configuration", self.fhir_path)
    }

    /// `{fhir_path}/metadata`.
    pub(crate) fn metadata_path(&self) -> String {
        format!("{}/metadata", self.fhir_path)
    }

    /// `path` relative to the FHIR base taken as a directory (`../auth/token`
    /// for the generic profile), for [`DiscoveryMode::RelativeUrls`](crate::DiscoveryMode::RelativeUrls).
    pub(crate) fn relative_to_fhir_base(&self, path: &str) -> String {
        let depth = self.fhir_path.split('/').filter(|s| !s.is_empty()).count();
        format!("{}{}", "../".repeat(depth), path.trim_start_matches('/'))
    }
}

/// Headers the sandbox reads for their own meaning; a client-ID header may
/// not be one of them.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "host",
    "content-type",
    "content-length",
    "accept",
    "accept-encoding",
    "origin",
    "if-match",
    "if-none-exist",
    "prefer",
    "transfer-encoding",
    "connection",
];

/// Checks `client_id_header`: an HTTP header name (RFC 9110 token) the
/// sandbox does not otherwise read.
fn check_header_name(name: &str) -> Result<(), String> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || name.len() > 64 || !name.bytes().all(token) {
        return Err(format!(
            "client_id_header {name:?} is not an HTTP header name (1 to 64 letters, digits and - _ .), \
             e.g. \"Epic-Client-ID\""
        ));
    }
    if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "client_id_header {name:?} is a header the sandbox already reads; use a vendor header such as \"Epic-Client-ID\""
        ));
    }
    Ok(())
}

fn is_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/')
}

/// A path must be absolute, without a trailing slash (unless allowed), with
/// only unreserved characters and no empty, `.` or `..` segments.
fn check_path(key: &str, path: &str, trailing_slash: bool) -> Result<(), String> {
    let body = if trailing_slash {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    };
    let segments_ok = body.strip_prefix('/').is_some_and(|rest| {
        rest.split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
    });
    if !segments_ok || !path.bytes().all(is_path_byte) {
        return Err(format!(
            "{key} {path:?} is not a valid path; write it like \"/fhir\": a leading '/', no trailing '/', \
             segments of letters, digits, '-', '.', '_' or '~'"
        ));
    }
    Ok(())
}

/// Why a template could not be filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TemplateError {
    /// `{name}` is not a placeholder of this template kind.
    Unknown(String),
    /// `{name}` has no value (e.g. `{tenant}` without `tenant`).
    Missing(String),
    /// A `{` without its `}`.
    Unclosed,
}

impl TemplateError {
    fn message(&self, key: &str, allowed: &[&str]) -> String {
        match self {
            TemplateError::Unknown(name) => format!(
                "{key} uses the unknown placeholder {{{name}}}; it may use {}",
                allowed
                    .iter()
                    .map(|a| format!("{{{a}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            TemplateError::Missing(name) => {
                format!("{key} uses {{{name}}}, but the profile sets no {name}; add {name} = \"…\"")
            }
            TemplateError::Unclosed => format!("{key} has a '{{' without a closing '}}'"),
        }
    }
}

/// Replaces `{name}` placeholders. `vars` lists the placeholders allowed and
/// their values (`None`: allowed but without a value).
/// The `{reason}` of an `error_uri`: Oracle Health's reason slug for an
/// OAuth error, percent-encoded for a path segment. The three slugs are the
/// ones its documentation and a 2026 live probe show (`grant:denied-by-server`
/// for a denied grant, `token:code-invalid-or-expired` for a bad code,
/// `grant:client-persona-mismatch` for a client used under the wrong
/// persona); every other error uses the OAuth error code (no source).
fn error_reason(error: &str) -> &'static str {
    match error {
        "access_denied" => "grant%3Adenied-by-server",
        "invalid_grant" => "token%3Acode-invalid-or-expired",
        "unauthorized_client" => "grant%3Aclient-persona-mismatch",
        "invalid_request" => "invalid_request",
        "invalid_client" => "invalid_client",
        "invalid_scope" => "invalid_scope",
        "unsupported_grant_type" => "unsupported_grant_type",
        "unsupported_response_type" => "unsupported_response_type",
        "temporarily_unavailable" => "temporarily_unavailable",
        "server_error" => "server_error",
        _ => "error",
    }
}

pub(crate) fn substitute(
    template: &str,
    vars: &[(&str, Option<&str>)],
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after.find('}').ok_or(TemplateError::Unclosed)?;
        let name = &after[..end];
        match vars.iter().find(|(n, _)| *n == name) {
            Some((_, Some(value))) => out.push_str(value),
            Some((_, None)) => return Err(TemplateError::Missing(name.to_owned())),
            None => return Err(TemplateError::Unknown(name.to_owned())),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Renders a TOML error as one line: `line N: message`.
pub(crate) fn toml_error_line(text: &str, e: &toml::de::Error) -> String {
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

/// Parses profile text, with `extends` support. Errors start with
/// `profile: ` (format) or `profile "name": ` (validation).
fn parse(text: &str) -> Result<VendorProfile, String> {
    parse_unchecked(text)
        .map_err(|e| format!("profile: {e}"))
        .and_then(|p| p.validate().map(|()| p))
}

fn parse_unchecked(text: &str) -> Result<VendorProfile, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| toml_error_line(text, &e))?;
    let profile = match table.get("extends") {
        None => toml::from_str::<VendorProfile>(text).map_err(|e| toml_error_line(text, &e))?,
        Some(toml::Value::String(base)) => {
            let base_text =
                builtin_text(base).ok_or_else(|| format!("extends: {}", unknown_builtin(base)))?;
            if !table.contains_key("name") {
                return Err(format!(
                    "a profile that extends {base:?} must set its own name, e.g. name = \"my-{base}\""
                ));
            }
            let mut merged: toml::Table =
                toml::from_str(base_text).map_err(|e| toml_error_line(base_text, &e))?;
            for (key, value) in table {
                if key != "extends" {
                    merged.insert(key, value);
                }
            }
            toml::Value::Table(merged)
                .try_into::<VendorProfile>()
                .map_err(|e| toml_error_line("", &e))?
        }
        Some(_) => return Err("extends must be a string naming a built-in profile".into()),
    };
    Ok(profile)
}

/// A DSTU2-style id for a patient (Epic gives each patient a different id per
/// FHIR version): `T` + 24 uppercase hex digits of a hash + `B`.
pub(crate) fn dstu2_patient_id(patient: &str) -> String {
    use sha2::{Digest as _, Sha256};
    let digest = Sha256::digest(format!("dstu2:{patient}").as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02X}")).collect();
    format!("T{hex}B")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_and_validate() {
        for name in BUILTIN_PROFILES {
            let p = VendorProfile::builtin(name).unwrap();
            assert_eq!(p.name(), *name);
            p.resolve("http://127.0.0.1:1").unwrap();
        }
        let err = VendorProfile::builtin("meditech").unwrap_err().to_string();
        assert!(
            err.contains("generic, epic, cerner") && !err.contains('\n'),
            "{err}"
        );
    }

    #[test]
    fn urls_follow_the_profile() {
        let root = "http://127.0.0.1:9";
        let g = VendorProfile::default().resolve(root).unwrap();
        assert_eq!(g.fhir_base, "http://127.0.0.1:9/fhir");
        assert_eq!(g.token_path, "/auth/token");
        assert_eq!(g.id_token_issuer, g.fhir_base);
        assert_eq!(
            g.openid_configuration_paths,
            ["/fhir/.well-known/openid-configuration"]
        );
        assert_eq!(g.relative_to_fhir_base("/auth/token"), "../auth/token");

        let c = VendorProfile::builtin("cerner").unwrap();
        let u = c.resolve(root).unwrap();
        let t = "ec2458f2-1e24-41c8-b71b-0e701af7583d";
        assert_eq!(u.fhir_base, format!("{root}/r4/{t}"));
        assert_eq!(u.smart_issuer, format!("{root}/tenants/{t}"));
        assert_eq!(
            u.id_token_issuer,
            format!("{root}/tenants/{t}/oidc/idsps/a1b2c3/")
        );
        assert_eq!(
            u.openid_configuration_paths,
            [format!(
                "/tenants/{t}/oidc/idsps/a1b2c3/.well-known/openid-configuration"
            )]
        );
        assert_eq!(c.other_tenant("/r4/other/Patient"), Some("other"));
        assert_eq!(c.other_tenant("/r4/other"), Some("other"));
        assert_eq!(c.other_tenant(&format!("/r4/{t}/Patient")), None);
        assert_eq!(c.other_tenant("/r4x/other"), None);
        assert!(
            c.error_uri_for(&u, "invalid_grant", Some("my app"))
                .unwrap()
                .starts_with(&format!(
                    "{root}/errors/urn%3Acerner%3Aerror%3Aauthorization-server%3Aoauth2%3Atoken%3Acode-invalid-or-expired/instances/"
                ))
        );
        assert!(
            c.error_uri_for(&u, "invalid_grant", Some("my app"))
                .unwrap()
                .ends_with(&format!("?persona=provider&client=my+app&tenant={t}"))
        );
    }

    #[test]
    fn templates() {
        let vars = [("a", Some("1")), ("b", None)];
        assert_eq!(substitute("x{a}y", &vars).unwrap(), "x1y");
        assert_eq!(
            substitute("{b}", &vars),
            Err(TemplateError::Missing("b".into()))
        );
        assert_eq!(
            substitute("{c}", &vars),
            Err(TemplateError::Unknown("c".into()))
        );
        assert_eq!(substitute("{a", &vars), Err(TemplateError::Unclosed));
    }

    #[test]
    fn extends_and_errors_are_one_line() {
        let p = VendorProfile::from_toml_str(
            "extends = \"epic\"\nname = \"my-epic\"\naccess_token_lifetime_secs = 60\n",
        )
        .unwrap();
        assert_eq!(p.name(), "my-epic");
        assert_eq!(p.access_token_lifetime_secs, 60);
        assert_eq!(p.token_type, "bearer");
        // The example of docs/sandbox.md, "Adding a profile".
        let doc = VendorProfile::from_toml_str(
            r#"extends = "cerner"
name = "cerner-patient"
authorize_path = "/tenants/{tenant}/protocols/oauth2/profiles/smart-v1/personas/patient/authorize"
capabilities = ["launch-standalone", "client-public", "context-standalone-patient",
                "permission-patient", "permission-offline", "permission-v2", "sso-openid-connect"]
"#,
        )
        .unwrap();
        assert_eq!(doc.capabilities.len(), 7);
        assert_eq!(doc.scope_echo, ScopeEcho::Requested);
        assert!(doc.drop_wildcard_scopes && doc.client_credentials_basic);
        for (text, needle) in [
            ("extends = \"epic\"\nfoo = 1\n", "must set its own name"),
            (
                "extends = \"epic\"\nname = \"x\"\nfoo = 1\n",
                "unknown field `foo`",
            ),
            (
                "extends = \"nope\"\nname = \"x\"\n",
                "unknown vendor profile",
            ),
            (
                "extends = \"generic\"\nname = \"x\"\nfhir_path = \"/r4/{tenant}\"\n",
                "add tenant",
            ),
            (
                "extends = \"generic\"\nname = \"x\"\ntoken_path = \"/fhir/token\"\n",
                "lies under the FHIR base",
            ),
            (
                "extends = \"generic\"\nname = \"x\"\nscope_echo = \"qualified\"\n",
                "qualified_scope_prefix",
            ),
            ("name = \"x\"\n", "missing field"),
        ] {
            let err = VendorProfile::from_toml_str(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn dstu2_ids_differ_and_are_stable() {
        let a = dstu2_patient_id("pat-1");
        assert_eq!(a, dstu2_patient_id("pat-1"));
        assert_ne!(a, dstu2_patient_id("pat-2"));
        assert!(a.starts_with('T') && a.ends_with('B') && a.len() == 26);
    }
}
