//! The [`Epic`] adapter type, its options, and its [`VendorQuirks`] implementation.

use std::sync::Arc;
use std::time::Duration;

use crate::NAME;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};
use smart_core::config::AdapterOptions;
use smart_core::quirks::{
    AuthorizeMethod, BasicAuthEncoding, FhirQuirks, HookContext, IdTokenIssuer, LaunchKind,
    TokenRequestParts, VendorPolicy, VendorQuirks, parse_options, spec,
};
use smart_core::smart_jose::Algorithm;
use smart_core::{Capability, OAuthError, OAuthErrorCode, SmartConfiguration};

/// The typed form of the Epic adapter's `adapter_options`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EpicOptions {
    /// Sent as `Epic-Client-ID` on discovery.
    #[serde(default)]
    client_id_header: Option<String>,
    /// Also accept id_tokens with the pre-May-2020 issuer.
    #[serde(default)]
    accept_legacy_token_issuer: Option<bool>,
    /// Where else `Epic-Client-ID` is sent: `"oauth"` (token requests), `"fhir"` (FHIR calls).
    #[serde(default)]
    client_id_header_on: Vec<CallKind>,
}

/// A kind of call on which `Epic-Client-ID` can be sent besides discovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum CallKind {
    /// Token-endpoint requests (code exchange, refresh, backend).
    Oauth,
    /// FHIR API requests.
    Fhir,
}

/// The `Epic-Client-ID` header (sent in lower case, as HTTP/2 requires).
const EPIC_CLIENT_ID: HeaderName = HeaderName::from_static("epic-client-id");

/// The Epic adapter.
///
/// `Epic::default()` is right for most apps. Two options change its behaviour:
///
/// ```
/// use smart_adapter_epic::Epic;
///
/// let epic = Epic::new()
///     // Sent as `Epic-Client-ID` on discovery, so that customers who override endpoints per
///     // client get the right ones. Use the non-production ID against the sandbox.
///     .with_client_id("d45049c3-3441-40ef-ab4d-b9cd86a17225")
///     // Also accept id_tokens from Epic versions before May 2020 (`iss` = `…/oauth2/token`).
///     .accept_legacy_token_issuer(true);
/// assert_eq!(epic.client_id(), Some("d45049c3-3441-40ef-ab4d-b9cd86a17225"));
/// ```
///
/// Epic issues one non-production and one production client ID per app, shared by all its
/// customers, so the client ID comes from each registration's `adapter_options`
/// (`client_id_header`): the core configures one instance per registration.
#[derive(Debug, Clone, Default)]
pub struct Epic {
    client_id: Option<HeaderValue>,
    legacy_token_issuer: bool,
    /// Send `Epic-Client-ID` on token requests too.
    client_id_on_oauth: bool,
    /// Send `Epic-Client-ID` on FHIR requests too.
    client_id_on_fhir: bool,
}

impl Epic {
    /// The lifetime of `private_key_jwt` client assertions: 240 s, inside Epic's `exp ≤ now + 300`
    /// and `exp − iat ≤ 300` rules with a minute to spare for clock skew.
    pub const ASSERTION_LIFETIME: Duration = Duration::from_secs(240);

    /// The adapter with its defaults: no `Epic-Client-ID` header, current id_token issuer only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `Epic-Client-ID: <client_id>` on discovery requests.
    ///
    /// An ID that cannot be sent in a header (control characters) is ignored with a warning;
    /// Epic client IDs are UUIDs, so that only happens with a misconfiguration.
    pub fn with_client_id(mut self, client_id: &str) -> Self {
        match HeaderValue::from_str(client_id.trim()) {
            Ok(value) if !value.is_empty() => self.client_id = Some(value),
            _ => {
                tracing::warn!(
                    "the Epic client ID cannot be sent as an Epic-Client-ID header; discovery will go without it"
                );
                self.client_id = None;
            }
        }
        self
    }

    /// Whether to accept id_tokens whose `iss` is the pre-May-2020 form `{issuer}/token`.
    /// Off by default.
    pub fn accept_legacy_token_issuer(mut self, accept: bool) -> Self {
        self.legacy_token_issuer = accept;
        self
    }

    /// Also sends the configured `Epic-Client-ID` on token requests (`oauth`) and on FHIR API
    /// requests (`fhir`). Epic documents the header for discovery; some sites are reported to
    /// want it on the other calls too. Nothing is sent without [`Epic::with_client_id`].
    ///
    /// ```
    /// let epic = smart_adapter_epic::Epic::new()
    ///     .with_client_id("non-prod-id")
    ///     .send_client_id_on(true, true);
    /// assert_eq!(epic.client_id(), Some("non-prod-id"));
    /// ```
    pub fn send_client_id_on(mut self, oauth: bool, fhir: bool) -> Self {
        self.client_id_on_oauth = oauth;
        self.client_id_on_fhir = fhir;
        self
    }

    /// Quirk `epic-introspection-bearer` (row 19; `docs/vendors/epic.md#introspection`,
    /// Captured): Epic's introspection endpoint authenticates the caller with an access token
    /// (`Authorization: Bearer`), not with client credentials. This is how to call
    /// `SmartClient::introspect` for an Epic base: the app's own access token authenticates.
    ///
    /// ```
    /// use smart_core::IntrospectionAuth;
    /// use smart_core::secret::AccessToken;
    ///
    /// let auth = smart_adapter_epic::Epic::introspection_auth(&AccessToken::new("app-token"));
    /// assert!(matches!(auth, IntrospectionAuth::Bearer(t) if t.expose_secret() == "app-token"));
    /// ```
    pub fn introspection_auth(
        caller_token: &smart_core::secret::AccessToken,
    ) -> smart_core::IntrospectionAuth {
        smart_core::IntrospectionAuth::Bearer(caller_token.clone())
    }

    /// The client ID sent as `Epic-Client-ID`, if one is configured.
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_ref().and_then(|v| v.to_str().ok())
    }
}

/// Epic's fixed values.
///
/// Quirk `epic-basic-urlencode` (§5 row 19; Epic OAuth 2.0 Specification, Documented): the
/// Basic credential is `base64(urlencode(client_id) ":" urlencode(client_secret))`; Epic's
/// example secret `this-is-the-secret-2/7` becomes `this-is-the-secret-2%2F7` before base64.
/// This is also the RFC 6749 default; it is stated here so that a change of the default
/// cannot break Epic.
///
/// Quirk `epic-assertion-lifetime` (§5 row 21; Epic OAuth 2.0 Specification, Documented):
/// `exp` at most 5 minutes ahead, `exp − iat ≤ 300` and `exp − nbf ≤ 300`. The assertion is
/// signed for [`Epic::ASSERTION_LIFETIME`] (240 s).
///
/// Quirk `epic-id-token-rs256` (§5 row 34; Epic OAuth 2.0 Specification, Documented): Epic
/// signs `id_token`s with RS256 only, so nothing else is accepted.
const POLICY: VendorPolicy = VendorPolicy::SPEC
    .with_basic_auth_encoding(BasicAuthEncoding::FormUrlEncoded)
    .with_assertion_lifetime(Epic::ASSERTION_LIFETIME)
    .with_id_token_algorithms(&[Algorithm::RS256]);

/// Quirk `epic-launch-scope` (§5 row 14; Epic OAuth 2.0 Specification, Documented): Epic
/// requires the `launch` scope in EHR launches and rejects it in standalone ones. The core adds it
/// to every EHR launch and removes it from every standalone one, so this adapter deliberately
/// keeps the default (no-op) `adapt_requested_scopes` and `authorize_parameters`.
impl VendorQuirks for Epic {
    fn name(&self) -> &str {
        NAME
    }

    /// Per-registration options (`[clients.<name>.adapter_options]`, or the CLI's
    /// `--adapter-option key=value`): `client_id_header` (sent as `Epic-Client-ID` on discovery)
    /// and `accept_legacy_token_issuer` (a boolean). Anything else is refused.
    fn with_options(
        &self,
        options: &AdapterOptions,
    ) -> Result<Option<Arc<dyn VendorQuirks>>, String> {
        if options.is_empty() {
            return Ok(None);
        }
        let options: EpicOptions = parse_options(options)?;
        let mut epic = self.clone();
        if let Some(client_id) = options.client_id_header {
            let sendable = HeaderValue::from_str(client_id.trim()).is_ok_and(|v| !v.is_empty());
            if !sendable {
                return Err(
                    "client_id_header cannot be sent as an Epic-Client-ID header (empty or control characters)"
                        .into(),
                );
            }
            epic = epic.with_client_id(&client_id);
        }
        if let Some(accept) = options.accept_legacy_token_issuer {
            epic = epic.accept_legacy_token_issuer(accept);
        }
        if !options.client_id_header_on.is_empty() {
            if epic.client_id.is_none() {
                tracing::warn!(
                    "client_id_header_on has no effect without client_id_header (the client ID to send); add client_id_header = \"<Epic client ID>\""
                );
            }
            epic = epic.send_client_id_on(
                options.client_id_header_on.contains(&CallKind::Oauth),
                options.client_id_header_on.contains(&CallKind::Fhir),
            );
        }
        Ok(Some(Arc::new(epic)))
    }

    fn policy(&self) -> VendorPolicy {
        POLICY
    }

    fn fhir(&self) -> &dyn FhirQuirks {
        self
    }

    /// Epic returns per-client endpoints for the `Epic-Client-ID` sent, so discovery results are
    /// kept apart per client ID.
    fn discovery_variant(&self, _ctx: &HookContext<'_>) -> Option<String> {
        self.client_id().map(str::to_owned)
    }

    /// Quirk `epic-discovery-headers` (§5 row 2; Epic OAuth 2.0 Specification, Documented):
    /// `/metadata` answers XML unless asked for JSON, and a customer can override the authorize
    /// and token endpoints per client ID, returned only when `Epic-Client-ID` is sent.
    fn discovery_headers(&self, _ctx: &HookContext<'_>, headers: &mut HeaderMap) {
        spec::discovery_headers(headers);
        if let Some(client_id) = &self.client_id {
            headers.insert(EPIC_CLIENT_ID, client_id.clone());
        }
    }

    /// Quirk `epic-scopes-supported-incomplete` (§5 row 3; 2026 sandbox capture in
    /// `api-evangelist/epic-systems`, Captured): Epic lists five scopes
    /// (`epic.scanning.dmsusername fhirUser launch openid profile`) but grants resource scopes,
    /// `launch/patient` and `offline_access`. Nothing may filter a request against that list, so
    /// the list is removed.
    fn patch_configuration(&self, _ctx: &HookContext<'_>, configuration: &mut SmartConfiguration) {
        if configuration.scopes_supported.take().is_some() {
            tracing::debug!("Epic's scopes_supported is not exhaustive; ignoring it");
        }
    }

    /// Quirk `epic-authorize-post-ehr-only` (§5 row 13; Epic OAuth 2.0 Specification,
    /// Documented): Epic accepts a POSTed authorization request for EHR launches only, so a
    /// standalone launch always goes by GET, whatever the registration prefers.
    ///
    /// Quirk `epic-long-authorize-url` (§5 row 11; Epic OAuth 2.0 Specification, Documented): a
    /// JWT `launch` token plus `state` can push the URL past the server's limit (HTTP 404 or
    /// 500), and Epic recommends POST for EHR launches. So an EHR launch goes by POST whenever
    /// `authorize-post` is advertised, unless the registration explicitly asks for GET.
    fn authorize_method(
        &self,
        ctx: &HookContext<'_>,
        configuration: &SmartConfiguration,
        preferred: Option<AuthorizeMethod>,
        get_url_len: usize,
    ) -> AuthorizeMethod {
        let long = get_url_len > spec::LONG_AUTHORIZE_URL;
        match ctx.launch_kind().unwrap_or(LaunchKind::Standalone) {
            LaunchKind::Standalone => {
                if preferred == Some(AuthorizeMethod::Post) {
                    tracing::warn!(
                        "Epic does not accept POST for standalone launches; sending the authorization request by GET"
                    );
                }
                if long {
                    tracing::warn!(
                        url_len = get_url_len,
                        "long authorization URL for a standalone Epic launch; Epic may answer 404 or 500 (request fewer scopes)"
                    );
                }
                AuthorizeMethod::Get
            }
            LaunchKind::Ehr => {
                let post_ok = configuration.supports(&Capability::AuthorizePost);
                match preferred {
                    Some(AuthorizeMethod::Get) => AuthorizeMethod::Get,
                    _ if post_ok => AuthorizeMethod::Post,
                    _ => {
                        if long {
                            tracing::warn!(
                                url_len = get_url_len,
                                "long authorization URL and the server does not advertise authorize-post; Epic may answer 404 or 500"
                            );
                        }
                        AuthorizeMethod::Get
                    }
                }
            }
        }
    }

    /// Quirk `epic-id-token-issuer` (§5 row 33; Epic OAuth 2.0 Specification, Documented): the
    /// id_token `iss` is `https://<server>/oauth2`, not the FHIR base. It is discovery's `issuer`;
    /// where a server publishes none, it is the token endpoint `…/oauth2/token` without `/token`
    /// (Epic's rule of thumb: replace `/api/FHIR/R4` with `/oauth2`).
    ///
    /// Quirk `epic-id-token-legacy-issuer` (§5 row 33; Epic OAuth 2.0 Specification,
    /// Documented): before May 2020 the `iss` was `…/oauth2/token`. With
    /// [`Epic::accept_legacy_token_issuer`] that exact form is accepted too. The token is still
    /// verified against `{iss}/.well-known/openid-configuration`, which such servers may lack.
    fn id_token_issuer(
        &self,
        ctx: &HookContext<'_>,
        configuration: &SmartConfiguration,
        unverified_iss: Option<&str>,
    ) -> IdTokenIssuer {
        let issuer = configuration
            .issuer
            .clone()
            .or_else(|| issuer_from_token_endpoint(&configuration.token_endpoint))
            .unwrap_or_else(|| ctx.fhir_base().to_owned());
        if self.legacy_token_issuer
            && let Some(iss) = unverified_iss
            && iss == format!("{}/token", issuer.trim_end_matches('/'))
        {
            // The token names the old issuer; the keys are still published under the current one.
            return IdTokenIssuer {
                expected: iss.to_owned(),
                configuration: issuer,
            };
        }
        IdTokenIssuer::same(issuer)
    }

    fn recognizes(
        &self,
        ctx: &HookContext<'_>,
        configuration: &SmartConfiguration,
        capability_statement: Option<&Value>,
    ) -> Option<String> {
        let base = ctx.fhir_base_url()?;
        crate::recognize::recognizes(&base, configuration, capability_statement)
    }

    fn normalize_token_response(&self, _ctx: &HookContext<'_>, body: &mut Map<String, Value>) {
        normalize_token_type(body);
        coerce_need_patient_banner(body);
        drop_echoed_state(body);
    }

    /// Quirk `epic-backend-user-mapping` (row 37; `docs/vendors/epic.md#backend`, Documented):
    /// a backend-services client gets `400 unauthorized_client` until the customer's Epic
    /// administrator maps its client ID to an Epic user. The description says so; the code is
    /// kept.
    ///
    /// Quirk `epic-client-id-per-environment` (row 7;
    /// `docs/vendors/epic.md#client-id-per-environment`, Documented): `invalid_launch_token` most
    /// often means the launch token is redeemed at the other Epic environment, or with the other
    /// environment's client ID; the description says so.
    ///
    /// Quirk `epic-jwks-url-registration` (row 22; `docs/vendors/epic.md#jwks-url`, Documented):
    /// an `invalid_client` for a JWT-authenticated registration often means a static key Epic no
    /// longer accepts, a JWK Set URL that does not serve the signing key yet, or a `kid`/`jku`
    /// mismatch; the description says so (for asymmetric registrations, or when the registration
    /// is not known).
    fn classify_oauth_error(
        &self,
        ctx: &HookContext<'_>,
        _status: Option<u16>,
        mut error: OAuthError,
    ) -> OAuthError {
        let asymmetric = ctx.registration().is_none_or(|r| {
            matches!(
                r.auth,
                smart_core::config::ClientAuth::ConfidentialAsymmetric { .. }
            )
        });
        let hint = match &error.code {
            OAuthErrorCode::UnauthorizedClient => Some(
                "Epic: for backend services, the customer must first map this client ID to an Epic user",
            ),
            OAuthErrorCode::Other(code) if code == "invalid_launch_token" => Some(
                "Epic: the launch token is likely redeemed at the wrong environment (production versus non-production) or with the other environment's client ID; check the base and the registration's client ID",
            ),
            OAuthErrorCode::InvalidClient if asymmetric => Some(
                "Epic: for JWT client authentication, check that the key is served from the registered JWK Set URL (static uploads are no longer accepted for new and backend apps), that Epic's cache has it (up to 29 h), and that kid and jku match",
            ),
            _ => None,
        };
        if let Some(hint) = hint {
            error.description = Some(match error.description.take() {
                Some(d) if !d.is_empty() => format!("{d} ({hint})"),
                _ => hint.to_owned(),
            });
        }
        error
    }

    /// Quirk `epic-client-id-header-calls` (row 2;
    /// `docs/vendors/epic.md#client-id-per-environment`, Captured): with
    /// `client_id_header_on = ["oauth"]`, token requests carry `Epic-Client-ID` too.
    fn token_request(&self, _ctx: &HookContext<'_>, request: &mut TokenRequestParts) {
        if self.client_id_on_oauth
            && let Some(client_id) = &self.client_id
        {
            request.headers.insert(EPIC_CLIENT_ID, client_id.clone());
        }
    }
}

impl FhirQuirks for Epic {
    /// Quirk `epic-fhir-accept` (§5 row 43; Epic OAuth 2.0 Specification and third-party probe,
    /// Documented): without `Accept`, Epic answers XML, and an unknown media type gives an HTML
    /// 404. Every FHIR call asks for `application/fhir+json`.
    fn fhir_request_headers(&self, _ctx: &HookContext<'_>, headers: &mut HeaderMap) {
        spec::fhir_request_headers(headers);
        if self.client_id_on_fhir
            && let Some(client_id) = &self.client_id
        {
            headers.insert(EPIC_CLIENT_ID, client_id.clone());
        }
    }

    fn search_warnings(
        &self,
        _ctx: &HookContext<'_>,
        resource_type: &str,
        params: &[(String, String)],
    ) -> Vec<String> {
        crate::search::warnings(resource_type, params)
    }
}

/// `…/oauth2/token` → `…/oauth2`, Epic's OAuth server (and OIDC issuer) URL.
fn issuer_from_token_endpoint(token_endpoint: &str) -> Option<String> {
    token_endpoint
        .strip_suffix("/token")
        .filter(|s| s.ends_with("/oauth2"))
        .map(str::to_owned)
}

/// Quirk `epic-token-type-case` (§5 row 23; Epic OAuth 2.0 Specification, Documented): the
/// documentation says `token_type` is "always `bearer`", captured responses send `Bearer`. Any
/// case of `bearer` becomes `Bearer`, so that nothing downstream depends on the case.
fn normalize_token_type(body: &mut Map<String, Value>) {
    if let Some(Value::String(t)) = body.get_mut("token_type")
        && t.trim().eq_ignore_ascii_case("bearer")
    {
        *t = "Bearer".to_owned();
    }
}

/// Quirk `epic-string-need-patient-banner` (§5 row 31; Epic OAuth 2.0 Tutorial, a real R4 EHR
/// launch, Documented): `need_patient_banner` arrives as the string `"false"`. `"true"` and
/// `"false"` (any case) become booleans; other values are left for the core to keep in extras.
fn coerce_need_patient_banner(body: &mut Map<String, Value>) {
    let coerced = match body.get("need_patient_banner") {
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("true") => true,
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("false") => false,
        _ => return,
    };
    body.insert("need_patient_banner".to_owned(), Value::Bool(coerced));
}

/// Quirk `epic-echoed-state` (§5 row 30; Epic OAuth 2.0 Specification, Documented): Epic echoes
/// the authorization request's `state` in the token response. The callback already checked it;
/// keeping it would store a spent CSRF value in every session's context extras.
fn drop_echoed_state(body: &mut Map<String, Value>) {
    body.remove("state");
}

#[cfg(test)]
mod tests {

    use base64::Engine as _;
    use http::HeaderMap;
    use serde_json::{Map, Value, json};
    use smart_core::quirks::{
        AuthorizeMethod, AuthorizeParameters, BasicAuthEncoding, HookContext, LaunchKind,
        TokenGrant, VendorQuirks,
    };
    use smart_core::scope::{Scope, Scopes};
    use smart_core::{Capability, OAuthError, OAuthErrorCode, SmartConfiguration};

    use super::Epic;

    const BASE: &str = "https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4";
    const TOKEN: &str = "https://fhir.epic.com/interconnect-fhir-oauth/oauth2/token";
    const ISSUER: &str = "https://fhir.epic.com/interconnect-fhir-oauth/oauth2";

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    fn config_with_post() -> SmartConfiguration {
        let mut c = SmartConfiguration::new(TOKEN);
        c.capabilities.push(Capability::AuthorizePost);
        c
    }

    #[test]
    fn epic_discovery_headers() {
        let mut h = HeaderMap::new();
        Epic::new().discovery_headers(&HookContext::new(BASE), &mut h);
        assert_eq!(h["accept"], "application/json");
        assert!(
            !h.contains_key("epic-client-id"),
            "no header unless configured"
        );

        let mut h = HeaderMap::new();
        Epic::new()
            .with_client_id("0f7d6bd4-8d47-4c1a-9c0b-5f1f0e1c2a3b")
            .discovery_headers(&HookContext::new(BASE), &mut h);
        assert_eq!(h["accept"], "application/json");
        assert_eq!(h["Epic-Client-ID"], "0f7d6bd4-8d47-4c1a-9c0b-5f1f0e1c2a3b");

        let bad = Epic::new().with_client_id("bad\nid");
        assert_eq!(bad.client_id(), None);
    }

    #[test]
    fn epic_scopes_supported_incomplete() {
        let mut c = SmartConfiguration::new(TOKEN);
        c.scopes_supported = Some(
            [
                "epic.scanning.dmsusername",
                "fhirUser",
                "launch",
                "openid",
                "profile",
            ]
            .map(str::to_owned)
            .to_vec(),
        );
        Epic::new().patch_configuration(&HookContext::new(BASE), &mut c);
        assert_eq!(c.scopes_supported, None);
    }

    #[test]
    fn epic_long_authorize_url() {
        let epic = Epic::new();
        // Short URL, nothing asked: the spec would say GET; Epic's EHR launch goes by POST.
        assert_eq!(
            epic.authorize_method(
                &HookContext::new(BASE).with_launch_kind(LaunchKind::Ehr),
                &config_with_post(),
                None,
                100
            ),
            AuthorizeMethod::Post
        );
        // …but only where POST is advertised,
        assert_eq!(
            epic.authorize_method(
                &HookContext::new(BASE).with_launch_kind(LaunchKind::Ehr),
                &SmartConfiguration::new(TOKEN),
                None,
                5000
            ),
            AuthorizeMethod::Get
        );
        // and an explicit GET in the registration wins.
        assert_eq!(
            epic.authorize_method(
                &HookContext::new(BASE).with_launch_kind(LaunchKind::Ehr),
                &config_with_post(),
                Some(AuthorizeMethod::Get),
                5000
            ),
            AuthorizeMethod::Get
        );
    }

    #[test]
    fn epic_authorize_post_ehr_only() {
        let epic = Epic::new();
        for preferred in [
            None,
            Some(AuthorizeMethod::Post),
            Some(AuthorizeMethod::Get),
        ] {
            for len in [10, 5000] {
                assert_eq!(
                    epic.authorize_method(
                        &HookContext::new(BASE).with_launch_kind(LaunchKind::Standalone),
                        &config_with_post(),
                        preferred,
                        len
                    ),
                    AuthorizeMethod::Get,
                    "standalone launches never POST (preferred {preferred:?}, length {len})"
                );
            }
        }
        assert_eq!(
            epic.authorize_method(
                &HookContext::new(BASE).with_launch_kind(LaunchKind::Ehr),
                &SmartConfiguration::new(TOKEN),
                Some(AuthorizeMethod::Post),
                10
            ),
            AuthorizeMethod::Get,
            "POST only where authorize-post is advertised"
        );
    }

    #[test]
    fn epic_launch_scope() {
        // What the core hands the adapter: `launch` added for EHR launches, removed for
        // standalone ones. The adapter's hooks must leave it that way.
        let epic = Epic::new();
        let config = SmartConfiguration::new(TOKEN);
        let mut ehr = Scopes::parse("launch openid fhirUser patient/Observation.rs");
        epic.adapt_requested_scopes(
            &HookContext::new(BASE).with_launch_kind(LaunchKind::Ehr),
            &config,
            &mut ehr,
        );
        assert!(ehr.contains(&Scope::Launch));
        let mut params = AuthorizeParameters::default();
        params.set("scope", ehr.to_string());
        params.set("launch", "opaque-jwt");
        epic.authorize_parameters(
            &HookContext::new(BASE).with_launch_kind(LaunchKind::Ehr),
            &mut params,
        );
        assert_eq!(params.get("scope"), Some(ehr.to_string().as_str()));
        assert_eq!(params.get("launch"), Some("opaque-jwt"));

        let mut standalone = Scopes::parse("launch/patient openid fhirUser patient/Observation.rs");
        epic.adapt_requested_scopes(
            &HookContext::new(BASE).with_launch_kind(LaunchKind::Standalone),
            &config,
            &mut standalone,
        );
        assert!(!standalone.contains(&Scope::Launch));
        let mut params = AuthorizeParameters::default();
        params.set("scope", standalone.to_string());
        epic.authorize_parameters(
            &HookContext::new(BASE).with_launch_kind(LaunchKind::Standalone),
            &mut params,
        );
        assert!(
            !params
                .get("scope")
                .is_some_and(|s| s.split(' ').any(|t| t == "launch"))
        );
        assert_eq!(params.get("launch"), None);
    }

    #[test]
    fn epic_basic_urlencode() {
        // Built exactly as smart-core's client authentication builds it, from the hook's answer.
        let epic = Epic::new();
        let encode = |s: &str| -> String {
            match epic.policy().basic_auth_encoding {
                BasicAuthEncoding::FormUrlEncoded => {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
                }
                BasicAuthEncoding::Raw => s.to_owned(),
            }
        };
        let credentials = format!(
            "{}:{}",
            encode("my-client"),
            encode("this-is-the-secret-2/7")
        );
        assert_eq!(credentials, "my-client:this-is-the-secret-2%2F7");
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(credentials),
            "bXktY2xpZW50OnRoaXMtaXMtdGhlLXNlY3JldC0yJTJGNw=="
        );
    }

    #[test]
    fn epic_assertion_lifetime() {
        let lifetime = Epic::new().policy().assertion_lifetime;
        assert_eq!(lifetime.as_secs(), 240);
        // exp = iat + lifetime (smart-jose), so exp − iat ≤ 300 and exp ≤ now + 300.
        assert!(lifetime.as_secs() <= 300);
    }

    #[test]
    fn epic_token_type_case() {
        for sent in ["bearer", "BEARER", "Bearer"] {
            let mut body = obj(json!({"access_token": "a", "token_type": sent}));
            Epic::new().normalize_token_response(
                &HookContext::new(BASE).with_grant(TokenGrant::AuthorizationCode),
                &mut body,
            );
            assert_eq!(body["token_type"], "Bearer");
        }
        let mut body = obj(json!({"access_token": "a", "token_type": "mac"}));
        Epic::new().normalize_token_response(
            &HookContext::new(BASE).with_grant(TokenGrant::AuthorizationCode),
            &mut body,
        );
        assert_eq!(
            body["token_type"], "mac",
            "other types are left for the core to reject"
        );
    }

    #[test]
    fn epic_string_need_patient_banner() {
        let mut body = obj(json!({"need_patient_banner": "false"}));
        Epic::new().normalize_token_response(
            &HookContext::new(BASE).with_grant(TokenGrant::AuthorizationCode),
            &mut body,
        );
        assert_eq!(body["need_patient_banner"], json!(false));
        let mut body = obj(json!({"need_patient_banner": " TRUE "}));
        Epic::new().normalize_token_response(
            &HookContext::new(BASE).with_grant(TokenGrant::AuthorizationCode),
            &mut body,
        );
        assert_eq!(body["need_patient_banner"], json!(true));
        let mut body = obj(json!({"need_patient_banner": "maybe"}));
        Epic::new().normalize_token_response(
            &HookContext::new(BASE).with_grant(TokenGrant::AuthorizationCode),
            &mut body,
        );
        assert_eq!(body["need_patient_banner"], json!("maybe"));
    }

    #[test]
    fn epic_echoed_state() {
        let mut body = obj(json!({
            "access_token": "a", "token_type": "bearer", "state": "abc123",
            "patient": "eRp.3", "__epic.dstu2.patient": "T1B"
        }));
        Epic::new().normalize_token_response(
            &HookContext::new(BASE).with_grant(TokenGrant::AuthorizationCode),
            &mut body,
        );
        assert!(!body.contains_key("state"));
        assert_eq!(body["__epic.dstu2.patient"], "T1B", "other extras are kept");
    }

    #[test]
    fn epic_id_token_issuer() {
        let epic = Epic::new();
        let mut c = SmartConfiguration::new(TOKEN);
        c.issuer = Some(ISSUER.to_owned());
        assert_eq!(
            epic.id_token_issuer(&HookContext::new(BASE), &c, Some(ISSUER))
                .expected,
            ISSUER
        );
        // A token claiming another issuer is still checked against discovery's.
        assert_eq!(
            epic.id_token_issuer(
                &HookContext::new(BASE),
                &c,
                Some("https://evil.example/oauth2")
            )
            .expected,
            ISSUER
        );
        // No issuer published (metadata fallback): derived from the token endpoint, not the base.
        let c = SmartConfiguration::new(TOKEN);
        assert_eq!(
            epic.id_token_issuer(&HookContext::new(BASE), &c, None)
                .expected,
            ISSUER
        );
        // A token endpoint of another shape: the spec default (the FHIR base).
        let c = SmartConfiguration::new("https://ehr.example/auth/token");
        assert_eq!(
            epic.id_token_issuer(&HookContext::new(BASE), &c, None)
                .expected,
            BASE
        );
    }

    #[test]
    fn epic_id_token_legacy_issuer() {
        let legacy = format!("{ISSUER}/token");
        let mut c = SmartConfiguration::new(TOKEN);
        c.issuer = Some(ISSUER.to_owned());
        assert_eq!(
            Epic::new()
                .id_token_issuer(&HookContext::new(BASE), &c, Some(&legacy))
                .expected,
            ISSUER,
            "off by default"
        );
        let epic = Epic::new().accept_legacy_token_issuer(true);
        assert_eq!(
            epic.id_token_issuer(&HookContext::new(BASE), &c, Some(&legacy))
                .expected,
            legacy
        );
        assert_eq!(
            epic.id_token_issuer(&HookContext::new(BASE), &c, Some(ISSUER))
                .expected,
            ISSUER
        );
        assert_eq!(
            epic.id_token_issuer(
                &HookContext::new(BASE),
                &c,
                Some(&format!("{ISSUER}/token/x"))
            )
            .expected,
            ISSUER,
            "only the exact legacy form"
        );
    }

    #[test]
    fn epic_backend_user_mapping() {
        let e = OAuthError {
            code: OAuthErrorCode::UnauthorizedClient,
            description: None,
            uri: None,
        };
        let out = Epic::new().classify_oauth_error(&HookContext::new(BASE), Some(400), e);
        assert_eq!(out.code, OAuthErrorCode::UnauthorizedClient);
        assert!(
            out.description
                .as_deref()
                .is_some_and(|d| d.contains("map this client ID to an Epic user"))
        );
        let other = OAuthError {
            code: OAuthErrorCode::InvalidGrant,
            description: Some("expired".into()),
            uri: None,
        };
        assert_eq!(
            Epic::new().classify_oauth_error(&HookContext::new(BASE), Some(400), other.clone()),
            other
        );
    }

    #[test]
    fn epic_client_id_per_environment() {
        let e = OAuthError {
            code: OAuthErrorCode::Other("invalid_launch_token".into()),
            description: Some("The launch token is invalid".into()),
            uri: None,
        };
        let out = Epic::new().classify_oauth_error(&HookContext::new(BASE), Some(400), e);
        let d = out.description.expect("described");
        assert!(d.starts_with("The launch token is invalid"), "{d}");
        assert!(d.contains("production") && d.contains("client ID"), "{d}");
        assert_eq!(
            out.code,
            OAuthErrorCode::Other("invalid_launch_token".into()),
            "the code is kept"
        );
    }

    #[test]
    fn epic_jwks_url_registration() {
        let e = OAuthError {
            code: OAuthErrorCode::InvalidClient,
            description: None,
            uri: None,
        };
        let d = Epic::new()
            .classify_oauth_error(&HookContext::new(BASE), Some(400), e.clone())
            .description
            .expect("described");
        assert!(d.contains("JWK Set URL") && d.contains("kid"), "{d}");
        // A symmetric registration's invalid_client is about its secret: no key hint.
        let symmetric = smart_core::ClientRegistration::confidential_symmetric(
            BASE,
            "app",
            smart_core::secret::ClientSecret::new("s"),
            "https://app.example/cb",
        );
        let ctx = HookContext::new(BASE).with_registration("epic", &symmetric);
        let out = Epic::new().classify_oauth_error(&ctx, Some(401), e.clone());
        assert_eq!(out, e);
    }

    #[test]
    fn epic_client_id_header_calls() {
        let mut options = smart_core::config::AdapterOptions::new();
        options.insert("client_id_header".into(), json!("non-prod-id"));
        options.insert("client_id_header_on".into(), json!(["oauth", "fhir"]));
        let epic = Epic::new()
            .with_options(&options)
            .expect("valid")
            .expect("configured");
        let ctx = HookContext::new(BASE).with_grant(TokenGrant::AuthorizationCode);
        let mut parts = smart_core::quirks::TokenRequestParts::default();
        epic.token_request(&ctx, &mut parts);
        assert_eq!(parts.headers["epic-client-id"], "non-prod-id");
        let mut h = HeaderMap::new();
        epic.fhir().fhir_request_headers(&ctx, &mut h);
        assert_eq!(h["epic-client-id"], "non-prod-id");
        assert_eq!(h["accept"], "application/fhir+json");

        // Only where asked: discovery-only by default.
        let discovery_only = Epic::new().with_client_id("non-prod-id");
        let mut parts = smart_core::quirks::TokenRequestParts::default();
        discovery_only.token_request(&ctx, &mut parts);
        assert!(!parts.headers.contains_key("epic-client-id"));
        let mut h = HeaderMap::new();
        discovery_only.fhir().fhir_request_headers(&ctx, &mut h);
        assert!(!h.contains_key("epic-client-id"));

        // Without a client ID nothing is sent (and a warning says why); an unknown place is a
        // configuration error.
        let mut no_id = smart_core::config::AdapterOptions::new();
        no_id.insert("client_id_header_on".into(), json!(["fhir"]));
        let logged = warnings_logged(|| {
            let epic = Epic::new()
                .with_options(&no_id)
                .expect("accepted")
                .expect("configured");
            let mut h = HeaderMap::new();
            epic.fhir().fhir_request_headers(&ctx, &mut h);
            assert!(!h.contains_key("epic-client-id"));
        });
        assert!(logged.contains("client_id_header"), "{logged}");
        options.insert("client_id_header_on".into(), json!(["authorize"]));
        assert!(Epic::new().with_options(&options).is_err());
    }

    #[test]
    fn epic_smart_v1_v2_by_version() {
        // Epic's granted strings: `.Read`/`.read` duplicates and a trailing space.
        let granted = Scopes::parse("user/Binary.Read user/Binary.read launch/patient ");
        assert_eq!(granted.len(), 2, "{granted}");
        // A v1 grant covers the same reads as the v2 request (and the other way round).
        assert!(
            Scope::parse("patient/Observation.read")
                .is_equivalent(&Scope::parse("patient/Observation.rs"))
        );
    }

    #[test]
    fn epic_opaque_or_jwt_tokens() {
        // A JWT-shaped access token whose own `exp` lies in the past, 4 KB long: kept verbatim,
        // expiry from `expires_in` only.
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#);
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"exp":1,"sub":"x"}"#);
        let token = format!("{header}.{payload}.{}", "s".repeat(4000));
        let mut body = obj(json!({
            "access_token": token, "token_type": "bearer", "expires_in": 3600, "scope": "openid"
        }));
        Epic::new().normalize_token_response(
            &HookContext::new(BASE).with_grant(TokenGrant::AuthorizationCode),
            &mut body,
        );
        let now = 1_900_000_000;
        let parsed = smart_core::token::parse_token_response(body, now).expect("parsed");
        assert_eq!(parsed.tokens.access_token.expose_secret(), token);
        assert_eq!(parsed.tokens.expires_at, Some(now + 3600));
        // An opaque one reads the same way.
        let body = obj(json!({"access_token": "opaque", "token_type": "Bearer", "expires_in": 60}));
        let parsed = smart_core::token::parse_token_response(body, now).expect("parsed");
        assert_eq!(parsed.tokens.expires_at, Some(now + 60));
    }

    #[test]
    fn epic_fhir_accept() {
        let mut h = HeaderMap::new();
        Epic::new()
            .fhir()
            .fhir_request_headers(&HookContext::new(BASE), &mut h);
        assert_eq!(h["accept"], "application/fhir+json");
    }

    #[test]
    fn adapter_options_configure_the_client_id_header() {
        let mut options = smart_core::config::AdapterOptions::new();
        options.insert(
            "client_id_header".into(),
            json!("d45049c3-3441-40ef-ab4d-b9cd86a17225"),
        );
        options.insert("accept_legacy_token_issuer".into(), json!(true));
        let configured = Epic::new()
            .with_options(&options)
            .expect("valid options")
            .expect("a configured instance");
        let mut h = HeaderMap::new();
        configured.discovery_headers(&HookContext::new(BASE), &mut h);
        assert_eq!(h["epic-client-id"], "d45049c3-3441-40ef-ab4d-b9cd86a17225");
        assert_eq!(
            configured
                .discovery_variant(&HookContext::new(BASE))
                .as_deref(),
            Some("d45049c3-3441-40ef-ab4d-b9cd86a17225"),
            "discovery results are kept apart per client ID"
        );
        assert!(
            Epic::new()
                .with_options(&Default::default())
                .expect("none")
                .is_none()
        );

        options.insert("client_id_hedaer".into(), json!("typo"));
        let refused = Epic::new()
            .with_options(&options)
            .expect_err("unknown option");
        assert!(refused.contains("client_id_hedaer"), "{refused}");
        let mut wrong_type = smart_core::config::AdapterOptions::new();
        wrong_type.insert("accept_legacy_token_issuer".into(), json!("yes"));
        assert!(Epic::new().with_options(&wrong_type).is_err());
    }

    pub(crate) use smart_testkit::logs::warnings_logged;

    #[test]
    fn standalone_post_request_is_logged() {
        let logged = warnings_logged(|| {
            Epic::new().authorize_method(
                &HookContext::new(BASE).with_launch_kind(LaunchKind::Standalone),
                &config_with_post(),
                Some(AuthorizeMethod::Post),
                10,
            );
        });
        assert!(logged.contains("standalone"), "{logged}");
    }

    #[test]
    fn epic_id_token_rs256() {
        use smart_core::smart_jose::Algorithm;
        assert_eq!(
            Epic::new().policy().id_token_algorithms,
            &[Algorithm::RS256]
        );
    }
}
