//! The [`Cerner`] adapter type, its options, and its [`VendorQuirks`] implementation.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use http::header::{ACCEPT, HeaderValue};
use serde_json::Value;
use smart_core::config::AdapterOptions;
use smart_core::quirks::{
    FhirQuirks, HookContext, IdTokenIssuer, LaunchKind, TokenGrant, TokenRequestParts,
    VendorPolicy, VendorQuirks, parse_options, spec,
};
use smart_core::scope::{Scope, Scopes};
use smart_core::smart_jose::Algorithm;
use smart_core::{OAuthError, SmartConfiguration};
use url::Url;

use crate::NAME;

/// The SMART scope grammar an Oracle Health registration was made for (code Console: SMART v1
/// or SMART v2). A v2 registration silently drops v1 scopes from the grant, so the adapter writes
/// the scopes it generates in the registration's grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ScopeVersion {
    /// SMART v1: `patient/Observation.read`.
    V1,
    /// SMART v2: `patient/Observation.rs`.
    V2,
}

/// The typed form of the Oracle Health adapter's `adapter_options`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CernerOptions {
    /// The registration's SMART version, `"v1"` or `"v2"`.
    #[serde(default)]
    scope_version: Option<ScopeVersion>,
    /// The resource types a wildcard scope expands to.
    #[serde(default)]
    resource_types: Option<Vec<String>>,
    /// Warn when a launch requests more scopes than this.
    #[serde(default)]
    scope_warning_threshold: Option<usize>,
    /// Send the DSTU2 media type on every FHIR call.
    #[serde(default)]
    dstu2_media_type: Option<bool>,
}

/// The Oracle Health (Cerner Millennium) adapter.
///
/// `Cerner::default()` is right for most R4 apps. The options:
///
/// ```
/// use smart_adapter_cerner::Cerner;
///
/// let cerner = Cerner::new()
///     // Expand `patient/*.rs` into these types instead of the default Millennium R4 list.
///     .with_resource_types(["Patient", "Observation", "Condition"])
///     // Warn from 30 scopes on (the default is 50).
///     .with_scope_warning_threshold(30);
/// assert_eq!(cerner.resource_types().len(), 3);
/// ```
///
/// One instance serves every registration that names the `cerner` adapter.
#[derive(Debug, Clone)]
pub struct Cerner {
    pub(crate) resource_types: Vec<String>,
    pub(crate) scope_warning_threshold: usize,
    dstu2_media_type: bool,
    scope_version: Option<ScopeVersion>,
}

impl Default for Cerner {
    fn default() -> Self {
        Cerner {
            resource_types: Self::DEFAULT_RESOURCE_TYPES
                .iter()
                .map(|t| (*t).to_owned())
                .collect(),
            scope_warning_threshold: Self::SCOPE_WARNING_THRESHOLD,
            dstu2_media_type: false,
            scope_version: None,
        }
    }
}

impl Cerner {
    /// The resource types a wildcard scope is expanded into by default: the Millennium R4
    /// resources that apps commonly read (the US Core set plus Provenance and
    /// QuestionnaireResponse). Types the server's persona does not list in `scopes_supported`
    /// are left out at request time.
    pub const DEFAULT_RESOURCE_TYPES: &'static [&'static str] = &[
        "AllergyIntolerance",
        "Appointment",
        "CarePlan",
        "CareTeam",
        "Condition",
        "Coverage",
        "Device",
        "DiagnosticReport",
        "DocumentReference",
        "Encounter",
        "Goal",
        "Immunization",
        "Location",
        "Medication",
        "MedicationAdministration",
        "MedicationRequest",
        "Observation",
        "Organization",
        "Patient",
        "Practitioner",
        "Procedure",
        "Provenance",
        "QuestionnaireResponse",
        "RelatedPerson",
        "ServiceRequest",
    ];

    /// The shortest time between two refreshes of a session: Oracle Health may throttle
    /// refreshes made more often than once a minute.
    pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

    /// The default number of requested scopes above which a warning is logged (the token would
    /// risk exceeding the 4–8 KB header limit).
    pub const SCOPE_WARNING_THRESHOLD: usize = 50;

    /// The adapter with its defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the resource types that wildcard scopes are expanded into.
    pub fn with_resource_types<I, S>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.resource_types = types.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the number of requested scopes above which a warning is logged.
    pub fn with_scope_warning_threshold(mut self, threshold: usize) -> Self {
        self.scope_warning_threshold = threshold;
        self
    }

    /// Sends `Accept: application/json+fhir` (the DSTU2 media type) on FHIR calls instead of
    /// `application/fhir+json` on every base, not only those with `/dstu2/` in the path (which
    /// get the DSTU2 type anyway). For apps that talk to DSTU2 bases at other paths.
    pub fn with_dstu2_media_type(mut self, dstu2: bool) -> Self {
        self.dstu2_media_type = dstu2;
        self
    }

    /// The resource types wildcard scopes are expanded into.
    pub fn resource_types(&self) -> &[String] {
        &self.resource_types
    }

    /// Sets the SMART version the registration was made for: wildcard expansions are written in
    /// its grammar (`patient/Observation.read` for v1, `patient/Observation.rs` for v2) whatever
    /// the wildcard's own grammar, because a v2 registration silently drops v1 scopes. `None`
    /// (the default) keeps the wildcard's grammar.
    ///
    /// ```
    /// use smart_adapter_cerner::{Cerner, ScopeVersion};
    ///
    /// let cerner = Cerner::new().with_scope_version(Some(ScopeVersion::V2));
    /// assert_eq!(cerner.scope_version(), Some(ScopeVersion::V2));
    /// ```
    pub fn with_scope_version(mut self, version: Option<ScopeVersion>) -> Self {
        self.scope_version = version;
        self
    }

    /// The SMART version of the registration, when set.
    pub fn scope_version(&self) -> Option<ScopeVersion> {
        self.scope_version
    }
}

/// Whether `name` looks like a FHIR resource type (`[A-Z][A-Za-z]*`, at most 64 characters).
fn is_resource_type_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphabetic())
}

/// Whether the FHIR base is a DSTU2 one (`/dstu2/` in its path, any case).
fn is_dstu2_base(base: &Url) -> bool {
    base.path_segments()
        .is_some_and(|mut s| s.any(|seg| seg.eq_ignore_ascii_case("dstu2")))
}

/// Oracle Health's fixed values.
///
/// Quirk `cerner-refresh-throttle` (§5 row 27; Oracle Health authorization specification,
/// Documented): refreshing more often than once a minute may be throttled, so a proactive
/// refresh waits at least [`Cerner::MIN_REFRESH_INTERVAL`] after the previous one.
///
/// Quirk `cerner-id-token-rs256` (§5 row 34; Oracle Health OpenID Connect documentation,
/// Documented): `id_token`s are signed RS256, so nothing else is accepted.
const POLICY: VendorPolicy = VendorPolicy::SPEC
    .with_min_refresh_interval(Cerner::MIN_REFRESH_INTERVAL)
    .with_id_token_algorithms(&[Algorithm::RS256]);

/// Quirk `cerner-qualified-scopes` (§5 row 18; Oracle Health authorization specification,
/// "Disambiguation of Scopes", Documented): granted scopes may come back fully qualified
/// (`http://smarthealthit.org/FHIR/scopes/user/Observation.read`). The core's scope parser
/// treats them as the short form, so nothing is overridden here; a test pins that behaviour.
///
/// Quirk `cerner-no-rotated-refresh-token` (§5 row 26; Oracle Health authorization
/// specification, Documented): a refresh response never carries a new refresh token. The core
/// replaces the stored refresh token only when the response has one, so the original is kept;
/// `normalize_token_response` is deliberately left as the (no-op) default.
impl VendorQuirks for Cerner {
    fn name(&self) -> &str {
        NAME
    }

    /// Per-registration options (`[clients.<name>.adapter_options]`, or the CLI's
    /// `--adapter-option key=value`): `resource_types` (a list), `scope_warning_threshold` (a
    /// number) and `dstu2_media_type` (a boolean). Anything else is refused.
    fn with_options(
        &self,
        options: &AdapterOptions,
    ) -> Result<Option<Arc<dyn VendorQuirks>>, String> {
        if options.is_empty() {
            return Ok(None);
        }
        let options: CernerOptions = parse_options(options)?;
        let mut cerner = self.clone();
        if let Some(version) = options.scope_version {
            cerner = cerner.with_scope_version(Some(version));
        }
        if let Some(types) = options.resource_types {
            if let Some(bad) = types.iter().find(|t| !is_resource_type_name(t)) {
                return Err(format!(
                    "resource_types: `{}` is not a FHIR resource type name",
                    smart_core::server_text::escape_controls(bad)
                ));
            }
            cerner = cerner.with_resource_types(types);
        }
        if let Some(threshold) = options.scope_warning_threshold {
            cerner = cerner.with_scope_warning_threshold(threshold);
        }
        if let Some(dstu2) = options.dstu2_media_type {
            cerner = cerner.with_dstu2_media_type(dstu2);
        }
        Ok(Some(Arc::new(cerner)))
    }

    fn policy(&self) -> VendorPolicy {
        POLICY
    }

    fn fhir(&self) -> &dyn FhirQuirks {
        self
    }

    /// Quirk `cerner-discovery-accept` (§5 row 2; Millennium R4/DSTU2 documentation,
    /// Documented): the smart-configuration is `application/json`, the CapabilityStatement a FHIR
    /// resource, and any type Oracle Health does not serve gets an empty 406. One hook serves
    /// both requests, so both types are listed: `application/fhir+json` on R4 bases,
    /// `application/json+fhir` on DSTU2 ones (`/dstu2/` in the path).
    fn discovery_headers(&self, ctx: &HookContext<'_>, headers: &mut HeaderMap) {
        let dstu2 = ctx.fhir_base_url().is_some_and(|base| is_dstu2_base(&base));
        let value = if dstu2 {
            "application/json, application/json+fhir"
        } else {
            "application/json, application/fhir+json"
        };
        headers.insert(ACCEPT, HeaderValue::from_static(value));
    }

    /// Quirk `cerner-refresh-grant-missing` (§5 row 4; 2026 capture of the provider-persona
    /// smart-configuration, Captured): `grant_types_supported` is
    /// `[authorization_code, client_credentials]` although refresh tokens are issued and work.
    /// `refresh_token` is added so that nothing gates refresh on the list.
    fn patch_configuration(&self, _ctx: &HookContext<'_>, configuration: &mut SmartConfiguration) {
        if !configuration
            .grant_types_supported
            .iter()
            .any(|g| g == "refresh_token")
        {
            configuration
                .grant_types_supported
                .push("refresh_token".to_owned());
        }
    }

    fn adapt_requested_scopes(
        &self,
        ctx: &HookContext<'_>,
        configuration: &SmartConfiguration,
        scopes: &mut Scopes,
    ) {
        crate::scopes::expand_wildcards(
            &self.resource_types,
            self.scope_version,
            configuration,
            scopes,
        );
        crate::scopes::warn_if_too_many(self.scope_warning_threshold, scopes);
        let kind = ctx.launch_kind().unwrap_or(LaunchKind::Standalone);
        crate::scopes::warn_about_persona(kind, configuration, scopes);
    }

    /// Quirk `cerner-id-token-issuer` (§5 row 33; Oracle Health OpenID Connect documentation,
    /// Documented): discovery's `issuer` is `…/tenants/{tenant}`, the id_token's `iss` is
    /// `…/tenants/{tenant}/oidc/idsps/{idsp}/`, and the OIDC configuration lives under the
    /// latter. The unverified `iss` is accepted only when it is exactly
    /// `{issuer}/oidc/idsps/{one segment}` with an optional trailing slash (so it stays on the
    /// tenant's authorization server); otherwise discovery's `issuer` is expected and the token
    /// fails verification.
    fn id_token_issuer(
        &self,
        ctx: &HookContext<'_>,
        configuration: &SmartConfiguration,
        unverified_iss: Option<&str>,
    ) -> IdTokenIssuer {
        let Some(issuer) = configuration.issuer.as_deref() else {
            return IdTokenIssuer::same(ctx.fhir_base());
        };
        match unverified_iss {
            // The identity provider's issuer publishes its own OpenID configuration.
            Some(iss) if is_idsp_issuer(issuer, iss) => IdTokenIssuer::same(iss),
            _ => IdTokenIssuer::same(issuer),
        }
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

    /// Quirk `cerner-active-at` (§5 row 29; Oracle Health Active User Presence documentation,
    /// Documented): an `online_access` refresh token lapses `active_ttl` seconds after the last
    /// user activity the server knows of, and a refresh may carry `active_at`, the seconds since
    /// the app last saw the user act. Added to refreshes of sessions granted `online_access`
    /// when the app reported the user's activity (`RefreshOptions::user_active_at`); never to
    /// other grants, and never twice.
    fn token_request(&self, ctx: &HookContext<'_>, request: &mut TokenRequestParts) {
        if ctx.grant() != Some(TokenGrant::RefreshToken)
            || request.form.iter().any(|(k, _)| k == "active_at")
        {
            return;
        }
        let Some(facts) = &request.refresh else {
            return;
        };
        if let Some(ago) = facts.user_active_secs_ago
            && facts.granted_scopes.contains(&Scope::OnlineAccess)
        {
            request.form.push(("active_at".to_owned(), ago.to_string()));
        }
    }

    /// Oracle Health's reasons behind OAuth errors, by grant (quirks
    /// `cerner-client-persona-mismatch`, `cerner-error-uri-reapprove`,
    /// `cerner-refresh-unused-revocation`: only a refresh `invalid_grant` is told to re-approve;
    /// see `errors.rs`).
    fn classify_oauth_error(
        &self,
        ctx: &HookContext<'_>,
        _status: Option<u16>,
        error: OAuthError,
    ) -> OAuthError {
        crate::errors::explain(ctx.grant(), error)
    }
}

impl FhirQuirks for Cerner {
    /// Quirk `cerner-fhir-media-types` (§5 row 43; Millennium R4 and DSTU2 documentation,
    /// Documented): R4 serves `application/fhir+json`, DSTU2 `application/json+fhir`, and any
    /// other type gets an empty 406. R4 is the default; [`Cerner::with_dstu2_media_type`]
    /// switches to the DSTU2 type.
    fn fhir_request_headers(&self, ctx: &HookContext<'_>, headers: &mut HeaderMap) {
        let dstu2_base = ctx.fhir_base_url().is_some_and(|base| is_dstu2_base(&base));
        if self.dstu2_media_type || dstu2_base {
            headers.insert(ACCEPT, HeaderValue::from_static("application/json+fhir"));
        } else {
            spec::fhir_request_headers(headers);
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

/// Whether `iss` is `{issuer}/oidc/idsps/{idsp}` or `…/{idsp}/`, with `idsp` one plain path
/// segment (unreserved characters, not `.` or `..`).
fn is_idsp_issuer(issuer: &str, iss: &str) -> bool {
    let prefix = format!("{}/oidc/idsps/", issuer.trim_end_matches('/'));
    let Some(rest) = iss.strip_prefix(&prefix) else {
        return false;
    };
    let idsp = rest.strip_suffix('/').unwrap_or(rest);
    !idsp.is_empty()
        && idsp != "."
        && idsp != ".."
        && idsp
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::HeaderMap;
    use serde_json::{Map, Value, json};
    use smart_core::SmartConfiguration;
    use smart_core::quirks::{HookContext, TokenGrant, VendorQuirks};
    use smart_core::scope::Scopes;
    use url::Url;

    use super::Cerner;

    const BASE: &str = "https://fhir-ehr.cerner.com/r4/ec2458f2-1e24-41c8-b71b-0e701af7583d";
    const TENANT: &str = "ec2458f2-1e24-41c8-b71b-0e701af7583d";

    fn issuer() -> String {
        format!("https://authorization.cerner.com/tenants/{TENANT}")
    }

    fn base() -> String {
        format!("https://fhir-ehr-code.cerner.com/r4/{TENANT}")
    }

    #[test]
    fn options_are_typed_and_checked() {
        let options = |v: Value| match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let configured = Cerner::new()
            .with_options(&options(json!({
                "resource_types": ["Patient", "Observation"],
                "scope_warning_threshold": 10,
                "dstu2_media_type": true
            })))
            .expect("valid options")
            .expect("a configured adapter");
        let mut h = HeaderMap::new();
        configured
            .fhir()
            .fhir_request_headers(&HookContext::new(BASE), &mut h);
        assert_eq!(
            h["accept"], "application/json+fhir",
            "dstu2_media_type applied"
        );
        let e = Cerner::new()
            .with_options(&options(json!({"resource_types": ["patient/*"]})))
            .expect_err("not a type name");
        assert!(e.contains("not a FHIR resource type"), "{e}");
        let e = Cerner::new()
            .with_options(&options(json!({"resource_type": ["Patient"]})))
            .expect_err("unknown option");
        assert!(e.contains("resource_type"), "{e}");
        // The registration's SMART version (quirk cerner-scope-version).
        let v2 = Cerner::new()
            .with_options(&options(json!({"scope_version": "v2"})))
            .expect("valid")
            .expect("configured");
        let mut scopes = Scopes::parse("patient/*.read");
        v2.adapt_requested_scopes(
            &HookContext::new(BASE),
            &SmartConfiguration::new(format!("{}/token", issuer())),
            &mut scopes,
        );
        assert!(
            scopes.to_string().contains("patient/Observation.rs"),
            "{scopes}"
        );
        assert!(!scopes.to_string().contains(".read"), "{scopes}");
        let e = Cerner::new()
            .with_options(&options(json!({"scope_version": "v3"})))
            .expect_err("no such version");
        assert!(e.contains("v3"), "{e}");
    }

    #[test]
    fn cerner_discovery_accept() {
        let mut h = HeaderMap::new();
        let r4 = Url::parse(&base()).expect("url");
        Cerner::new().discovery_headers(&HookContext::new(r4.as_str()), &mut h);
        assert_eq!(h["accept"], "application/json, application/fhir+json");
        let mut h = HeaderMap::new();
        let dstu2 =
            Url::parse(&format!("https://fhir-ehr.cerner.com/dstu2/{TENANT}/")).expect("url");
        Cerner::new().discovery_headers(&HookContext::new(dstu2.as_str()), &mut h);
        assert_eq!(h["accept"], "application/json, application/json+fhir");
    }

    #[test]
    fn cerner_refresh_grant_missing() {
        let base = Url::parse(&base()).expect("url");
        let mut c = SmartConfiguration::new(format!("{}/token", issuer()));
        c.grant_types_supported = vec!["authorization_code".into(), "client_credentials".into()];
        Cerner::new().patch_configuration(&HookContext::new(base.as_str()), &mut c);
        assert_eq!(
            c.grant_types_supported,
            ["authorization_code", "client_credentials", "refresh_token"]
        );
        // Idempotent: not added twice.
        Cerner::new().patch_configuration(&HookContext::new(base.as_str()), &mut c);
        assert_eq!(c.grant_types_supported.len(), 3);
    }

    #[test]
    fn cerner_qualified_scopes() {
        assert_eq!(
            Scopes::parse("http://smarthealthit.org/FHIR/scopes/user/Observation.read"),
            Scopes::parse("user/Observation.read")
        );
    }

    #[test]
    fn cerner_no_rotated_refresh_token() {
        // The adapter must not touch a refresh response: no refresh_token invented or removed,
        // so that the core's "replace only when present" merge keeps the original.
        let mut body: Map<String, Value> = match json!({
            "access_token": "a", "token_type": "Bearer", "expires_in": 570, "scope": "user/Patient.read"
        }) {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let before = body.clone();
        Cerner::new().normalize_token_response(
            &HookContext::new(BASE).with_grant(TokenGrant::RefreshToken),
            &mut body,
        );
        assert_eq!(body, before);
    }

    #[test]
    fn cerner_refresh_throttle() {
        assert_eq!(
            Cerner::new().policy().min_refresh_interval,
            Duration::from_secs(60)
        );
    }

    #[test]
    fn cerner_id_token_issuer() {
        let cerner = Cerner::new();
        let mut c = SmartConfiguration::new(format!("{}/token", issuer()));
        c.issuer = Some(issuer());
        let idsp = format!("{}/oidc/idsps/{TENANT}/", issuer());
        assert_eq!(
            cerner
                .id_token_issuer(&HookContext::new(&base()), &c, Some(&idsp))
                .expected,
            idsp
        );
        let no_slash = format!("{}/oidc/idsps/abc-123", issuer());
        assert_eq!(
            cerner
                .id_token_issuer(&HookContext::new(&base()), &c, Some(&no_slash))
                .expected,
            no_slash
        );
        for bad in [
            format!("{}/oidc/idsps/", issuer()),
            format!("{}/oidc/idsps/a/b/", issuer()),
            format!("{}/oidc/idsps/../", issuer()),
            format!("{}/oidc/idsps/a?x=1", issuer()),
            "https://evil.example/tenants/x/oidc/idsps/y/".to_owned(),
            format!("https://authorization.cerner.com/tenants/other/oidc/idsps/{TENANT}/"),
        ] {
            assert_eq!(
                cerner
                    .id_token_issuer(&HookContext::new(&base()), &c, Some(&bad))
                    .expected,
                issuer(),
                "{bad} must not be accepted"
            );
        }
        assert_eq!(
            cerner
                .id_token_issuer(&HookContext::new(&base()), &c, None)
                .expected,
            issuer()
        );
        // Without a published issuer: the spec default.
        let c = SmartConfiguration::new(format!("{}/token", issuer()));
        assert_eq!(
            cerner
                .id_token_issuer(&HookContext::new(&base()), &c, Some(&idsp))
                .expected,
            base()
        );
    }

    #[test]
    fn cerner_fhir_media_types() {
        let mut h = HeaderMap::new();
        let r4 = Url::parse("https://fhir-ehr.cerner.com/r4/ec2458f2-1e24-41c8-b71b-0e701af7583d")
            .expect("url");
        let dstu2 =
            Url::parse("https://fhir-ehr.cerner.com/dstu2/ec2458f2-1e24-41c8-b71b-0e701af7583d/")
                .expect("url");
        Cerner::new()
            .fhir()
            .fhir_request_headers(&HookContext::new(r4.as_str()), &mut h);
        assert_eq!(h["accept"], "application/fhir+json");
        let mut h = HeaderMap::new();
        Cerner::new()
            .with_dstu2_media_type(true)
            .fhir()
            .fhir_request_headers(&HookContext::new(r4.as_str()), &mut h);
        assert_eq!(h["accept"], "application/json+fhir");
        let mut h = HeaderMap::new();
        Cerner::new()
            .fhir()
            .fhir_request_headers(&HookContext::new(dstu2.as_str()), &mut h);
        assert_eq!(
            h["accept"], "application/json+fhir",
            "DSTU2 bases are recognised by their path"
        );
    }

    #[test]
    fn cerner_active_at() {
        use smart_core::quirks::{RefreshFacts, TokenRequestParts};
        let parts = |scopes: &str, ago: Option<u64>| TokenRequestParts {
            form: vec![("grant_type".into(), "refresh_token".into())],
            refresh: Some(RefreshFacts {
                granted_scopes: Scopes::parse(scopes),
                user_active_secs_ago: ago,
            }),
            ..TokenRequestParts::default()
        };
        let active_at = |p: &TokenRequestParts| -> Vec<String> {
            p.form
                .iter()
                .filter(|(k, _)| k == "active_at")
                .map(|(_, v)| v.clone())
                .collect()
        };
        let refresh = HookContext::new(BASE).with_grant(TokenGrant::RefreshToken);
        let code = HookContext::new(BASE).with_grant(TokenGrant::AuthorizationCode);
        let cerner = Cerner::new();
        let mut online = parts("launch user/Patient.rs online_access", Some(42));
        cerner.token_request(&refresh, &mut online);
        assert_eq!(active_at(&online), ["42"]);
        cerner.token_request(&refresh, &mut online);
        assert_eq!(active_at(&online), ["42"], "never twice");
        // Not without online_access, not without a reported activity, not on other grants.
        let mut offline = parts("launch user/Patient.rs offline_access", Some(42));
        cerner.token_request(&refresh, &mut offline);
        assert!(active_at(&offline).is_empty());
        let mut unknown = parts("online_access", None);
        cerner.token_request(&refresh, &mut unknown);
        assert!(active_at(&unknown).is_empty());
        let mut by_code = parts("online_access", Some(1));
        cerner.token_request(&code, &mut by_code);
        assert!(active_at(&by_code).is_empty());
    }

    #[test]
    fn cerner_id_token_rs256() {
        use smart_core::smart_jose::Algorithm;
        assert_eq!(
            Cerner::new().policy().id_token_algorithms,
            &[Algorithm::RS256]
        );
    }
}
