//! The vendor-quirk extension point.
//!
//! EHRs differ from the specification in small, well-catalogued ways (see the quirk catalogue in
//! `docs/architecture.md`): headers needed for discovery, fields left out of the configuration,
//! booleans sent as strings, credentials encoded differently, scopes echoed or not. The core never
//! tests for a vendor; instead, each protocol step calls a hook on the adapter recorded for the
//! launch. Every hook has a default that does exactly what SMART App Launch 2.2 says, so an
//! adapter overrides only the steps where its vendor departs from it.
//!
//! An adapter has three parts, each in its own item:
//! - **behaviour hooks** ([`VendorQuirks`]), grouped and ordered by protocol step (configuration,
//!   discovery, authorization, token endpoint, `id_token`), each given one [`HookContext`]
//!   (registration, client id, FHIR base, launch kind, grant);
//! - **policy values** ([`VendorPolicy`]): the differences that are numbers or choices;
//! - **FHIR hooks** ([`FhirQuirks`]), which the FHIR client calls on every API request.
//!
//! What an adapter knows about its vendor, as data, is its catalogue ([`Quirk`] rows in its
//! [`AdapterDescriptor`](crate::descriptor::AdapterDescriptor)); each row names its typed handler
//! ([`HandledBy`]); a run-time test (`smart-fhir`'s `every_hook_runs`) checks that every hook is
//! called in a full flow, and this module's tests that every policy value is read.
//!
//! Hooks are synchronous and cheap: they edit a request before it is sent or a response before it
//! is parsed. Anything that needs I/O belongs in the [`HttpClient`](crate::http::HttpClient).

mod catalogue;
mod context;
mod fhir;
mod policy;

pub use catalogue::{Confidence, HandledBy, Hook, ProtocolStep, Quirk, check_catalogue};
pub use context::HookContext;
pub use fhir::{FhirQuirks, SpecFhir};
pub use policy::{PolicyField, VendorPolicy};

use std::fmt;

use http::HeaderMap;
use http::header::{ACCEPT, HeaderValue};
use serde_json::{Map, Value};

use crate::config::AdapterOptions;
use crate::error::{OAuthError, OAuthErrorCode};
pub use crate::protocol::{AuthorizeMethod, BasicAuthEncoding, LaunchKind, TokenGrant};
use crate::smart_configuration::{Capability, SmartConfiguration};

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
/// The methods are grouped by protocol step, in the order a launch meets them. Every behaviour
/// hook gets a [`HookContext`]; fixed values are in [`VendorQuirks::policy`], FHIR-level hooks in
/// [`VendorQuirks::fhir`].
///
/// # Example: a vendor that needs a header at discovery and sends strings for booleans
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use serde_json::{Map, Value};
/// use smart_core::quirks::{HookContext, VendorQuirks};
///
/// #[derive(Debug)]
/// struct Acme;
///
/// impl VendorQuirks for Acme {
///     fn name(&self) -> &str { "acme" }
///
///     fn discovery_headers(&self, ctx: &HookContext<'_>, headers: &mut HeaderMap) {
///         smart_core::quirks::spec::discovery_headers(headers);
///         // Acme returns per-client endpoints: tell it which client asks.
///         if let Some(client_id) = ctx.client_id().and_then(|id| HeaderValue::from_str(id).ok()) {
///             headers.insert("acme-client-id", client_id);
///         }
///     }
///
///     fn discovery_variant(&self, ctx: &HookContext<'_>) -> Option<String> {
///         ctx.client_id().map(str::to_owned)
///     }
///
///     fn normalize_token_response(&self, _ctx: &HookContext<'_>, body: &mut Map<String, Value>) {
///         if let Some(Value::String(s)) = body.get("acme_flag") {
///             let flag = s == "true";
///             body.insert("acme_flag".into(), Value::Bool(flag));
///         }
///     }
/// }
/// ```
pub trait VendorQuirks: Send + Sync + fmt::Debug {
    // ---- Configuration ----

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

    /// The vendor's fixed values (Basic encoding, assertion lifetime, refresh throttle,
    /// `id_token` algorithms). Default: [`VendorPolicy::SPEC`].
    fn policy(&self) -> VendorPolicy {
        VendorPolicy::SPEC
    }

    /// The FHIR-level hooks. Default: [`SpecFhir`]. An adapter that implements [`FhirQuirks`]
    /// returns `self`.
    fn fhir(&self) -> &dyn FhirQuirks {
        &SpecFhir
    }

    // ---- Discovery ----

    /// Headers for the `.well-known` and `/metadata` requests. Default: `Accept: application/json`.
    fn discovery_headers(&self, _ctx: &HookContext<'_>, headers: &mut HeaderMap) {
        spec::discovery_headers(headers);
    }

    /// What, in the context, changes this adapter's discovery results (e.g. the client ID a
    /// vendor uses to return per-client endpoints). Discovery results are cached per (adapter,
    /// variant, FHIR base), so a discovery hook may depend on the context only through what this
    /// returns. Default: nothing.
    fn discovery_variant(&self, _ctx: &HookContext<'_>) -> Option<String> {
        None
    }

    /// Fixes a discovered configuration (fields the vendor leaves out or under-advertises).
    /// Endpoints are already absolute. Default: no change.
    fn patch_configuration(&self, _ctx: &HookContext<'_>, _configuration: &mut SmartConfiguration) {
    }

    /// Whether this adapter recognises the server, and why: evidence from the FHIR base URL
    /// (`ctx.fhir_base()`), the SMART configuration and, when available, the
    /// CapabilityStatement. Used to pick an adapter when a registration says `auto`. Default:
    /// never.
    fn recognizes(
        &self,
        _ctx: &HookContext<'_>,
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
        _ctx: &HookContext<'_>,
        _configuration: &SmartConfiguration,
        _scopes: &mut smart_scopes::Scopes,
    ) {
    }

    /// Edits the authorization-request parameters after the core has set the spec ones. Default:
    /// no change.
    fn authorize_parameters(&self, _ctx: &HookContext<'_>, _params: &mut AuthorizeParameters) {}

    /// Chooses GET or POST for the authorization request. `preferred` is the registration's
    /// preference (`None` = automatic); `get_url_len` is the length of the GET URL.
    fn authorize_method(
        &self,
        ctx: &HookContext<'_>,
        configuration: &SmartConfiguration,
        preferred: Option<AuthorizeMethod>,
        get_url_len: usize,
    ) -> AuthorizeMethod {
        spec::authorize_method(
            configuration,
            ctx.launch_kind().unwrap_or(LaunchKind::Standalone),
            preferred,
            get_url_len,
        )
    }

    // ---- Token endpoint (code exchange, refresh, backend services) ----

    /// Edits a token request after client authentication was applied (`ctx.grant()` says which
    /// grant). Default: no change.
    fn token_request(&self, _ctx: &HookContext<'_>, _request: &mut TokenRequestParts) {}

    /// Normalises a token response's JSON object before it is parsed. The core parser already
    /// accepts any case of `token_type` and `"true"`/`"false"` strings for `need_patient_banner`.
    /// Default: no change.
    fn normalize_token_response(&self, _ctx: &HookContext<'_>, _body: &mut Map<String, Value>) {}

    /// Reclassifies an OAuth error (for vendors that use the wrong code, or whose errors need a
    /// hint naming the likely cause). `status` is the token endpoint's HTTP status, or `None`
    /// for an error returned to the redirect URI by the authorization endpoint (then
    /// `ctx.grant()` is `None` too). Default: unchanged.
    fn classify_oauth_error(
        &self,
        _ctx: &HookContext<'_>,
        _status: Option<u16>,
        error: OAuthError,
    ) -> OAuthError {
        error
    }

    // ---- id_token ----

    /// The issuer an `id_token` must carry, given the discovered configuration and the token's
    /// (not yet verified) `iss`. The token is then verified against that issuer's OpenID
    /// configuration and keys, so an adapter may only accept issuers its vendor really uses.
    /// Default: the configuration's `issuer`, or the FHIR base when the server does not publish
    /// one (the SMART reference servers' convention).
    fn id_token_issuer(
        &self,
        ctx: &HookContext<'_>,
        configuration: &SmartConfiguration,
        _unverified_iss: Option<&str>,
    ) -> IdTokenIssuer {
        IdTokenIssuer::same(
            configuration
                .issuer
                .clone()
                .unwrap_or_else(|| ctx.fhir_base().to_owned()),
        )
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

    // Hooks and policy values are proved at run time, over HTTP against the sandbox:
    // `crates/smart-fhir/tests/every_hook_runs.rs` (a recording adapter in a full flow) and
    // `crates/smart-core/tests/policy_values.rs` (each value changes what goes over the wire).

    #[test]
    fn hooks_are_listed_in_protocol_order() {
        let steps: Vec<ProtocolStep> = Hook::ALL.iter().map(|h| h.step()).collect();
        let mut sorted = steps.clone();
        sorted.sort();
        assert_eq!(steps, sorted);
    }
}
