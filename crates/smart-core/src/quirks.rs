//! The vendor-quirk extension point.
//!
//! EHRs differ from the specification in small, well-catalogued ways (see the quirk catalogue in
//! `docs/architecture.md`): headers needed for discovery, fields left out of the configuration,
//! booleans sent as strings, credentials encoded differently, scopes echoed or not. The core never
//! tests for a vendor; instead, each protocol step calls a hook on the [`VendorQuirks`] chosen for
//! the registration. Every hook has a default that does exactly what SMART App Launch 2.2 says,
//! so an adapter overrides only the steps where its vendor departs from it.
//!
//! Hooks are synchronous and cheap: they edit a request before it is sent or a response before it
//! is parsed. Anything that needs I/O belongs in the [`HttpClient`](crate::http::HttpClient).

use std::fmt;

use http::HeaderMap;
use http::header::{ACCEPT, HeaderValue};
use serde_json::{Map, Value};
use url::Url;

use crate::config::AdapterOptions;
use crate::error::{OAuthError, OAuthErrorCode};
pub use crate::protocol::{AuthorizeMethod, BasicAuthEncoding, LaunchKind, TokenGrant};
use crate::smart_configuration::{Capability, SmartConfiguration};

/// How sure an adapter's catalogue is of a quirk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// Documented by the vendor, including the worked examples in its documentation.
    Documented,
    /// Seen in code or in a third-party capture of live endpoints; not promised by the vendor.
    Captured,
    /// Inferred from the above; a hypothesis to check against a real tenant.
    Inferred,
}

/// One vendor departure from the specification that an adapter handles, as data: what a
/// reviewer checks the code against and what tools print when a flow misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Quirk {
    /// Stable identifier, `<vendor>-…`; also the name of the quirk's unit test.
    pub id: &'static str,
    /// The row of the quirk × vendor table (`docs/adding-an-adapter.md`) it comes from.
    pub row: u8,
    /// What the vendor does and what the adapter does about it, in one sentence.
    pub summary: &'static str,
    /// Where it was learnt: a documentation URL or a named capture.
    pub source: &'static str,
    /// How sure we are.
    pub confidence: Confidence,
    /// What handles it: a hook the core calls, a typed reader the app calls, or the core itself.
    pub handled_by: HandledBy,
}

/// What handles a catalogued quirk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HandledBy {
    /// A [`VendorQuirks`] hook, which the core (or `smart-fhir`, for the FHIR hooks) calls.
    Hook(Hook),
    /// A typed reader the app calls (e.g. `EpicContext::from_context`).
    AppHelper(&'static str),
    /// The core already does what the vendor needs; the adapter's unit test pins it.
    Core(&'static str),
}

/// The protocol step a hook belongs to, in the order a launch meets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProtocolStep {
    /// Building the client from its registrations.
    Configuration,
    /// `.well-known/smart-configuration`, `/metadata`, adapter detection.
    Discovery,
    /// The authorization request.
    Authorize,
    /// Requests to the token endpoint and their answers.
    Token,
    /// Refreshing a session.
    Refresh,
    /// Verifying an `id_token`.
    IdToken,
    /// Requests to the FHIR API.
    Fhir,
}

/// Every behaviour hook of [`VendorQuirks`], as data, grouped by [`ProtocolStep`]. A catalogue
/// entry names the hook that handles it ([`HandledBy::Hook`]), and a test of the core checks
/// that each hook here is really called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Hook {
    /// [`VendorQuirks::with_options`]
    WithOptions,
    /// [`VendorQuirks::discovery_headers`]
    DiscoveryHeaders,
    /// [`VendorQuirks::discovery_variant`]
    DiscoveryVariant,
    /// [`VendorQuirks::patch_configuration`]
    PatchConfiguration,
    /// [`VendorQuirks::recognizes`]
    Recognizes,
    /// [`VendorQuirks::adapt_requested_scopes`]
    AdaptRequestedScopes,
    /// [`VendorQuirks::authorize_parameters`]
    AuthorizeParameters,
    /// [`VendorQuirks::authorize_method`]
    AuthorizeMethod,
    /// [`VendorQuirks::basic_auth_encoding`]
    BasicAuthEncoding,
    /// [`VendorQuirks::assertion_lifetime`]
    AssertionLifetime,
    /// [`VendorQuirks::token_request`]
    TokenRequest,
    /// [`VendorQuirks::normalize_token_response`]
    NormalizeTokenResponse,
    /// [`VendorQuirks::classify_oauth_error`]
    ClassifyOauthError,
    /// [`VendorQuirks::min_refresh_interval`]
    MinRefreshInterval,
    /// [`VendorQuirks::id_token_issuer`]
    IdTokenIssuer,
    /// [`VendorQuirks::id_token_algorithms`]
    IdTokenAlgorithms,
    /// [`VendorQuirks::fhir_request_headers`]
    FhirRequestHeaders,
    /// [`VendorQuirks::search_warnings`]
    SearchWarnings,
}

impl Hook {
    /// Every hook, in protocol order.
    pub const ALL: &'static [Hook] = &[
        Hook::WithOptions,
        Hook::DiscoveryHeaders,
        Hook::DiscoveryVariant,
        Hook::PatchConfiguration,
        Hook::Recognizes,
        Hook::AdaptRequestedScopes,
        Hook::AuthorizeParameters,
        Hook::AuthorizeMethod,
        Hook::BasicAuthEncoding,
        Hook::AssertionLifetime,
        Hook::TokenRequest,
        Hook::NormalizeTokenResponse,
        Hook::ClassifyOauthError,
        Hook::MinRefreshInterval,
        Hook::IdTokenIssuer,
        Hook::IdTokenAlgorithms,
        Hook::FhirRequestHeaders,
        Hook::SearchWarnings,
    ];

    /// The trait method's name.
    pub fn method(self) -> &'static str {
        match self {
            Hook::WithOptions => "with_options",
            Hook::DiscoveryHeaders => "discovery_headers",
            Hook::DiscoveryVariant => "discovery_variant",
            Hook::PatchConfiguration => "patch_configuration",
            Hook::Recognizes => "recognizes",
            Hook::AdaptRequestedScopes => "adapt_requested_scopes",
            Hook::AuthorizeParameters => "authorize_parameters",
            Hook::AuthorizeMethod => "authorize_method",
            Hook::BasicAuthEncoding => "basic_auth_encoding",
            Hook::AssertionLifetime => "assertion_lifetime",
            Hook::TokenRequest => "token_request",
            Hook::NormalizeTokenResponse => "normalize_token_response",
            Hook::ClassifyOauthError => "classify_oauth_error",
            Hook::MinRefreshInterval => "min_refresh_interval",
            Hook::IdTokenIssuer => "id_token_issuer",
            Hook::IdTokenAlgorithms => "id_token_algorithms",
            Hook::FhirRequestHeaders => "fhir_request_headers",
            Hook::SearchWarnings => "search_warnings",
        }
    }

    /// The protocol step the hook belongs to.
    pub fn step(self) -> ProtocolStep {
        match self {
            Hook::WithOptions => ProtocolStep::Configuration,
            Hook::DiscoveryHeaders
            | Hook::DiscoveryVariant
            | Hook::PatchConfiguration
            | Hook::Recognizes => ProtocolStep::Discovery,
            Hook::AdaptRequestedScopes | Hook::AuthorizeParameters | Hook::AuthorizeMethod => {
                ProtocolStep::Authorize
            }
            Hook::BasicAuthEncoding
            | Hook::AssertionLifetime
            | Hook::TokenRequest
            | Hook::NormalizeTokenResponse
            | Hook::ClassifyOauthError => ProtocolStep::Token,
            Hook::MinRefreshInterval => ProtocolStep::Refresh,
            Hook::IdTokenIssuer | Hook::IdTokenAlgorithms => ProtocolStep::IdToken,
            Hook::FhirRequestHeaders | Hook::SearchWarnings => ProtocolStep::Fhir,
        }
    }
}

impl fmt::Display for HandledBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandledBy::Hook(hook) => write!(f, "VendorQuirks::{}", hook.method()),
            HandledBy::AppHelper(item) => write!(f, "{item} (called by the app)"),
            HandledBy::Core(what) => write!(f, "core: {what}"),
        }
    }
}

/// Checks an adapter's catalogue against its source code, for the adapter's own tests: ids are
/// unique and start with `prefix`, rows are in order and within the quirk table, every field is
/// filled in, every quirk is named in a `Quirk `id`` doc comment of `sources`, and every quirk has
/// a unit test named after it (`epic-basic-urlencode` → `fn epic_basic_urlencode()`).
///
/// Returns the first problem found, so a test can `assert_eq!(check_catalogue(…), Ok(()))`.
pub fn check_catalogue(prefix: &str, quirks: &[Quirk], sources: &[&str]) -> Result<(), String> {
    let mut ids = std::collections::HashSet::new();
    let mut last_row = 0;
    for q in quirks {
        if !ids.insert(q.id) {
            return Err(format!("duplicate quirk id {}", q.id));
        }
        if !q.id.starts_with(prefix) {
            return Err(format!("{} must start with {prefix}", q.id));
        }
        if !(1..=47).contains(&q.row) {
            return Err(format!("{}: row {} is not in the quirk table", q.id, q.row));
        }
        if q.row < last_row {
            return Err(format!("{} is out of row order", q.id));
        }
        last_row = q.row;
        let handler_named = match q.handled_by {
            HandledBy::Hook(_) => true,
            HandledBy::AppHelper(s) | HandledBy::Core(s) => !s.is_empty(),
        };
        if q.summary.is_empty() || q.source.is_empty() || !handler_named {
            return Err(format!("{} has an empty field", q.id));
        }
        let doc = format!("Quirk `{}`", q.id);
        if !sources.iter().any(|s| s.contains(&doc)) {
            return Err(format!("no `///` doc names {doc}"));
        }
        let test = format!("fn {}()", q.id.replace('-', "_"));
        if !sources.iter().any(|s| s.contains(&test)) {
            return Err(format!("quirk {} has no unit test `{test}`", q.id));
        }
    }
    Ok(())
}

/// Which issuer an `id_token` must carry, and where that issuer's OpenID configuration lives.
///
/// They are the same URL for spec-following servers. A vendor that issued tokens under an older
/// `iss` while publishing its configuration under the current issuer (Epic before May 2020:
/// `…/oauth2/token` versus `…/oauth2`) sets them apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenIssuer {
    /// The exact `iss` the token must carry.
    pub expected: String,
    /// The issuer whose `/.well-known/openid-configuration` gives the keys; its `issuer` field must
    /// equal this value.
    pub configuration: String,
}

impl IdTokenIssuer {
    /// The common case: the token's `iss` is the configuration's issuer.
    pub fn same(issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        IdTokenIssuer {
            expected: issuer.clone(),
            configuration: issuer,
        }
    }
}

/// The ordered parameters of an authorization request, editable by [`VendorQuirks`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizeParameters {
    params: Vec<(String, String)>,
}

impl AuthorizeParameters {
    /// Sets `name` (replacing any value it had, keeping its position).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.params.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => self.params.push((name.to_owned(), value)),
        }
    }

    /// Removes `name`.
    pub fn remove(&mut self, name: &str) {
        self.params.retain(|(k, _)| k != name);
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All parameters, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The form-urlencoded form.
    pub fn to_form(&self) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.params {
            s.append_pair(k, v);
        }
        s.finish()
    }
}

/// A token-endpoint request before it is sent: form parameters and headers, editable by
/// [`VendorQuirks::token_request`].
#[derive(Debug, Clone, Default)]
pub struct TokenRequestParts {
    /// Form parameters in order. Values may be credentials: never log them.
    pub form: Vec<(String, String)>,
    /// Headers (client authentication already applied).
    pub headers: HeaderMap,
    /// For a refresh: what the adapter may need to know about the session. `None` for the
    /// other grants.
    pub refresh: Option<RefreshFacts>,
}

/// What a [`TokenRequestParts`] of a refresh tells the adapter about the session.
#[derive(Debug, Clone, Default)]
pub struct RefreshFacts {
    /// The session's granted scopes (the requested ones when the server did not say).
    pub granted_scopes: smart_scopes::Scopes,
    /// How many seconds ago the app last saw the user act, when the app reported it
    /// ([`RefreshOptions::user_active_at`](crate::RefreshOptions::user_active_at)); 0 for a
    /// time in the future.
    pub user_active_secs_ago: Option<u64>,
}

/// Vendor-specific behaviour at each protocol step. All defaults follow SMART App Launch 2.2.
///
/// # Example: a vendor that needs a header at discovery and sends strings for booleans
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use serde_json::{Map, Value};
/// use smart_core::quirks::{TokenGrant, VendorQuirks};
/// use url::Url;
///
/// #[derive(Debug)]
/// struct Acme;
///
/// impl VendorQuirks for Acme {
///     fn name(&self) -> &str { "acme" }
///
///     fn discovery_headers(&self, base: &Url, headers: &mut HeaderMap) {
///         smart_core::quirks::spec::discovery_headers(headers);
///         headers.insert("acme-client-id", HeaderValue::from_static("my-app"));
///     }
///
///     fn normalize_token_response(&self, grant: TokenGrant, body: &mut Map<String, Value>) {
///         if let Some(Value::String(s)) = body.get("acme_flag") {
///             let flag = s == "true";
///             body.insert("acme_flag".into(), Value::Bool(flag));
///         }
///     }
/// }
/// ```
pub trait VendorQuirks: Send + Sync + fmt::Debug {
    // ---- Identity and configuration ----

    /// The adapter's registry name (e.g. `generic`, `epic`), as used in registrations.
    fn name(&self) -> &str;

    /// This adapter configured with a registration's `adapter_options`, read into the adapter's
    /// own typed options (use [`parse_options`]). Called once per registration when the client
    /// is built; an error is a configuration error naming the registration. `Ok(None)` keeps
    /// this instance as it is. Default: no options accepted.
    fn with_options(
        &self,
        options: &AdapterOptions,
    ) -> Result<Option<std::sync::Arc<dyn VendorQuirks>>, String> {
        if options.is_empty() {
            Ok(None)
        } else {
            Err(format!(
                "adapter `{}` takes no options (got: {})",
                self.name(),
                options.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        }
    }

    // ---- Discovery ----

    /// Headers for the `.well-known` and `/metadata` requests. Default: `Accept: application/json`.
    fn discovery_headers(&self, _base: &Url, headers: &mut HeaderMap) {
        spec::discovery_headers(headers);
    }

    /// What distinguishes this instance's discovery results from another instance of the same
    /// adapter (e.g. the client ID a vendor uses to return per-client endpoints); part of the
    /// discovery cache key. Default: nothing.
    fn discovery_variant(&self) -> Option<String> {
        None
    }

    /// Fixes a discovered configuration (fields the vendor leaves out or under-advertises).
    /// Endpoints are already absolute. Default: no change.
    fn patch_configuration(&self, _base: &Url, _configuration: &mut SmartConfiguration) {}

    /// Whether this adapter recognises the server, and why: evidence from the FHIR base URL, the
    /// SMART configuration and, when available, the CapabilityStatement. Used to pick an adapter
    /// when a registration does not name one. Default: never.
    fn recognizes(
        &self,
        _base: &Url,
        _configuration: &SmartConfiguration,
        _capability_statement: Option<&serde_json::Value>,
    ) -> Option<String> {
        None
    }

    // ---- Authorization request ----

    /// Adjusts the scopes of an authorization request after the core wrote them in the server's
    /// syntax (e.g. a vendor without wildcard support). Default: no change.
    fn adapt_requested_scopes(
        &self,
        _kind: LaunchKind,
        _configuration: &SmartConfiguration,
        _scopes: &mut smart_scopes::Scopes,
    ) {
    }

    /// Edits the authorization-request parameters after the core has set the spec ones. Default:
    /// no change.
    fn authorize_parameters(&self, _kind: LaunchKind, _params: &mut AuthorizeParameters) {}

    /// Chooses GET or POST for the authorization request. `preferred` is the registration's
    /// preference (`None` = automatic); `get_url_len` is the length of the GET URL.
    fn authorize_method(
        &self,
        configuration: &SmartConfiguration,
        kind: LaunchKind,
        preferred: Option<AuthorizeMethod>,
        get_url_len: usize,
    ) -> AuthorizeMethod {
        spec::authorize_method(configuration, kind, preferred, get_url_len)
    }

    // ---- Token endpoint (code exchange, refresh, backend services) ----

    /// How Basic credentials are encoded. Default: RFC 6749 §2.3.1 form-urlencoding.
    fn basic_auth_encoding(&self) -> BasicAuthEncoding {
        BasicAuthEncoding::FormUrlEncoded
    }

    /// Lifetime of `private_key_jwt` assertions. Default: 4 minutes (SMART allows at most 5).
    fn assertion_lifetime(&self) -> std::time::Duration {
        crate::protocol::ASSERTION_LIFETIME
    }

    /// Edits a token request after client authentication was applied. Default: no change.
    fn token_request(&self, _grant: TokenGrant, _request: &mut TokenRequestParts) {}

    /// Normalises a token response's JSON object before it is parsed. The core parser already
    /// accepts any case of `token_type` and `"true"`/`"false"` strings for `need_patient_banner`.
    /// Default: no change.
    fn normalize_token_response(&self, _grant: TokenGrant, _body: &mut Map<String, Value>) {}

    /// Reclassifies an OAuth error (for vendors that use the wrong code). Called for
    /// authorization errors (status 302: they arrive on the redirect) and, through
    /// [`classify_token_error`](Self::classify_token_error), for token errors. Default:
    /// unchanged.
    fn classify_oauth_error(&self, _status: u16, error: OAuthError) -> OAuthError {
        error
    }

    /// Reclassifies a token-endpoint error knowing the grant it answered (an `invalid_grant`
    /// means one thing for a refresh and another for a code exchange). Part of the
    /// [`Hook::ClassifyOauthError`] hook. Default: [`classify_oauth_error`](Self::classify_oauth_error).
    fn classify_token_error(
        &self,
        _grant: TokenGrant,
        status: u16,
        error: OAuthError,
    ) -> OAuthError {
        self.classify_oauth_error(status, error)
    }

    // ---- Refresh ----

    /// The shortest time between two refreshes of one session that the server tolerates; a
    /// proactive refresh (ahead of expiry) waits until it has passed. Default: none.
    fn min_refresh_interval(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    // ---- id_token ----

    /// The issuer an `id_token` must carry, given the discovered configuration and the token's
    /// (not yet verified) `iss`. The token is then verified against that issuer's OpenID
    /// configuration and keys, so an adapter may only accept issuers its vendor really uses.
    /// Default: the configuration's `issuer`, or the FHIR base when the server does not publish
    /// one (the SMART reference servers' convention).
    fn id_token_issuer(
        &self,
        configuration: &SmartConfiguration,
        fhir_base: &str,
        _unverified_iss: Option<&str>,
    ) -> IdTokenIssuer {
        IdTokenIssuer::same(
            configuration
                .issuer
                .clone()
                .unwrap_or_else(|| fhir_base.to_owned()),
        )
    }

    /// The JWS algorithms accepted for `id_token` signatures. Default: RS256 (what SMART requires
    /// servers to use) plus RS384, RS512, ES256 and ES384 — never `none` or an HMAC.
    fn id_token_algorithms(&self) -> &'static [smart_jose::Algorithm] {
        crate::protocol::DEFAULT_ID_TOKEN_ALGORITHMS
    }

    // ---- FHIR API ----

    /// Headers for FHIR API requests to `base`. Default: `Accept: application/fhir+json`.
    fn fhir_request_headers(&self, _base: &Url, headers: &mut HeaderMap) {
        spec::fhir_request_headers(headers);
    }

    /// Soft checks on a FHIR search before it is sent (e.g. parameters a vendor requires);
    /// each returned message is logged as a warning. Default: none.
    fn search_warnings(&self, _resource_type: &str, _params: &[(String, String)]) -> Vec<String> {
        Vec::new()
    }

    // ---- Catalogue (data, not behaviour) ----

    /// The quirks this adapter handles, as data. Default: none.
    fn catalogue(&self) -> &'static [Quirk] {
        &[]
    }
}

/// Reads a registration's `adapter_options` into an adapter's typed options `T` (a
/// `#[derive(Deserialize)]` struct, ideally with `#[serde(deny_unknown_fields)]`), with an error
/// message that names the problem.
pub fn parse_options<T: serde::de::DeserializeOwned>(
    options: &AdapterOptions,
) -> Result<T, String> {
    serde_json::from_value(Value::Object(options.clone()))
        .map_err(|e| format!("invalid adapter_options: {e}"))
}

/// The spec-exact adapter built into the core, named [`SPEC_ADAPTER`](crate::SPEC_ADAPTER)
/// (`generic`): every hook keeps its SMART App Launch 2.2 default. A client built without any
/// adapter uses it for every server, so the core works on its own; vendor adapters add to it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpecAdapter;

impl VendorQuirks for SpecAdapter {
    fn name(&self) -> &str {
        crate::adapter_choice::SPEC_ADAPTER
    }
}

/// The specification's behaviour for each hook, for adapters that extend rather than replace it.
pub mod spec {
    use super::*;

    /// URLs longer than this switch an automatic authorization request to POST when the server
    /// advertises `authorize-post` (browsers and proxies start failing beyond ~2 KB).
    pub const LONG_AUTHORIZE_URL: usize = 2000;

    /// `Accept: application/json`.
    pub fn discovery_headers(headers: &mut HeaderMap) {
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    }

    /// `Accept: application/fhir+json`.
    pub fn fhir_request_headers(headers: &mut HeaderMap) {
        headers.insert(ACCEPT, HeaderValue::from_static("application/fhir+json"));
    }

    /// POST only where the server advertises `authorize-post`: when the registration asks for it,
    /// or automatically when the GET URL would be long. GET otherwise.
    pub fn authorize_method(
        configuration: &SmartConfiguration,
        _kind: LaunchKind,
        preferred: Option<AuthorizeMethod>,
        get_url_len: usize,
    ) -> AuthorizeMethod {
        let post_ok = configuration.supports(&Capability::AuthorizePost);
        match preferred {
            Some(AuthorizeMethod::Post) if post_ok => AuthorizeMethod::Post,
            Some(_) => AuthorizeMethod::Get,
            None if post_ok && get_url_len > LONG_AUTHORIZE_URL => AuthorizeMethod::Post,
            None => AuthorizeMethod::Get,
        }
    }

    /// The OAuth error code from a redirect or token response's `error` field.
    pub fn error_code(code: &str) -> OAuthErrorCode {
        OAuthErrorCode::from(code.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::{Hook, ProtocolStep};

    /// Every hook a catalogue can name is called somewhere: by the core, or (the FHIR hooks) by
    /// `smart-fhir`'s client. A hook nobody calls would let a catalogue claim a handling that
    /// never runs.
    #[test]
    fn every_hook_is_called() {
        let callers = [
            include_str!("client/builder.rs"),
            include_str!("client/detection.rs"),
            include_str!("client/launch.rs"),
            include_str!("client/refresh.rs"),
            include_str!("client/token_endpoint.rs"),
            include_str!("discovery.rs"),
            include_str!("client_auth.rs"),
            include_str!("bearer.rs"),
            include_str!("../../smart-fhir/src/client.rs"),
        ];
        for hook in Hook::ALL {
            let call = format!(".{}(", hook.method());
            assert!(
                callers.iter().any(|source| source.contains(&call)),
                "nothing calls VendorQuirks::{}",
                hook.method()
            );
        }
    }

    #[test]
    fn hooks_are_listed_in_protocol_order() {
        let steps: Vec<ProtocolStep> = Hook::ALL.iter().map(|h| h.step()).collect();
        let mut sorted = steps.clone();
        sorted.sort();
        assert_eq!(steps, sorted);
    }
}
