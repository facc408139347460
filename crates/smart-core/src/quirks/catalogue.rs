//! The quirk catalogue as data: [`Quirk`] rows, what handles each ([`HandledBy`]), and
//! [`check_catalogue`] for the adapters' own tests.
//!
//! The catalogue is the adapter's claim of what it knows about its vendor; a reviewer checks the
//! code against it and tools (the conformance run, `smart adapters`) print it. It has one source:
//! the `catalogue` of each adapter's [`AdapterDescriptor`](crate::descriptor::AdapterDescriptor).
//! A row's handler is typed, so a row cannot claim a handling that never runs: a recording
//! adapter driven through a whole launch, refresh and FHIR session over HTTP
//! (`crates/smart-fhir/tests/every_hook_runs.rs`) shows every [`Hook`] is called, and
//! `crates/smart-core/tests/policy_values.rs` shows every [`PolicyField`] change what goes over
//! the wire.

use std::fmt;

use super::policy::PolicyField;

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
    /// Claimed somewhere but not confirmed by any vendor document or capture; the handling is
    /// deliberately lenient (e.g. fields kept as untyped extras).
    Unverified,
    /// Documented once, but the vendor's current documents describe other behaviour; kept for
    /// older servers.
    Outdated,
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
    /// Where it was learnt: a page of `docs/vendors/`, which names the vendor document and the
    /// date it was checked.
    pub source: &'static str,
    /// How sure we are.
    pub confidence: Confidence,
    /// What handles it: a hook the core calls, a policy value the core reads, a typed reader the
    /// app calls, or the core itself.
    pub handled_by: HandledBy,
}

/// What handles a catalogued quirk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HandledBy {
    /// A behaviour hook of [`VendorQuirks`](super::VendorQuirks) or
    /// [`FhirQuirks`](super::FhirQuirks), which the core (or `smart-fhir`) calls.
    Hook(Hook),
    /// A [`VendorPolicy`](super::VendorPolicy) value, which the core reads.
    Policy(PolicyField),
    /// A typed reader the app calls (e.g. `EpicContext::from_context`).
    AppHelper(&'static str),
    /// The core already does what the vendor needs; the adapter's unit test pins it.
    Core(&'static str),
    /// Nothing in code: the row documents a rule the integrator must follow (registration
    /// values, an administrator's step); the text says where it is explained.
    Documentation(&'static str),
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
    /// Verifying an `id_token`.
    IdToken,
    /// Requests to the FHIR API.
    Fhir,
}

/// Every behaviour hook, as data, in protocol order. A catalogue row names the hook that handles
/// it ([`HandledBy::Hook`]), and a test of the core checks that each hook here is really called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Hook {
    /// [`VendorQuirks::with_options`](super::VendorQuirks::with_options)
    WithOptions,
    /// [`VendorQuirks::discovery_headers`](super::VendorQuirks::discovery_headers)
    DiscoveryHeaders,
    /// [`VendorQuirks::discovery_variant`](super::VendorQuirks::discovery_variant)
    DiscoveryVariant,
    /// [`VendorQuirks::patch_configuration`](super::VendorQuirks::patch_configuration)
    PatchConfiguration,
    /// [`VendorQuirks::recognizes`](super::VendorQuirks::recognizes)
    Recognizes,
    /// [`VendorQuirks::adapt_requested_scopes`](super::VendorQuirks::adapt_requested_scopes)
    AdaptRequestedScopes,
    /// [`VendorQuirks::authorize_parameters`](super::VendorQuirks::authorize_parameters)
    AuthorizeParameters,
    /// [`VendorQuirks::authorize_method`](super::VendorQuirks::authorize_method)
    AuthorizeMethod,
    /// [`VendorQuirks::token_request`](super::VendorQuirks::token_request)
    TokenRequest,
    /// [`VendorQuirks::normalize_token_response`](super::VendorQuirks::normalize_token_response)
    NormalizeTokenResponse,
    /// [`VendorQuirks::classify_oauth_error`](super::VendorQuirks::classify_oauth_error)
    ClassifyOauthError,
    /// [`VendorQuirks::id_token_issuer`](super::VendorQuirks::id_token_issuer)
    IdTokenIssuer,
    /// [`FhirQuirks::fhir_request_headers`](super::FhirQuirks::fhir_request_headers)
    FhirRequestHeaders,
    /// [`FhirQuirks::search_warnings`](super::FhirQuirks::search_warnings)
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
        Hook::TokenRequest,
        Hook::NormalizeTokenResponse,
        Hook::ClassifyOauthError,
        Hook::IdTokenIssuer,
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
            Hook::TokenRequest => "token_request",
            Hook::NormalizeTokenResponse => "normalize_token_response",
            Hook::ClassifyOauthError => "classify_oauth_error",
            Hook::IdTokenIssuer => "id_token_issuer",
            Hook::FhirRequestHeaders => "fhir_request_headers",
            Hook::SearchWarnings => "search_warnings",
        }
    }

    /// The trait the hook belongs to.
    pub fn trait_name(self) -> &'static str {
        match self {
            Hook::FhirRequestHeaders | Hook::SearchWarnings => "FhirQuirks",
            _ => "VendorQuirks",
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
            Hook::TokenRequest | Hook::NormalizeTokenResponse | Hook::ClassifyOauthError => {
                ProtocolStep::Token
            }
            Hook::IdTokenIssuer => ProtocolStep::IdToken,
            Hook::FhirRequestHeaders | Hook::SearchWarnings => ProtocolStep::Fhir,
        }
    }
}

impl fmt::Display for HandledBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandledBy::Hook(hook) => write!(f, "{}::{}", hook.trait_name(), hook.method()),
            HandledBy::Policy(field) => write!(f, "VendorPolicy::{}", field.field()),
            HandledBy::AppHelper(item) => write!(f, "{item} (called by the app)"),
            HandledBy::Core(what) => write!(f, "core: {what}"),
            HandledBy::Documentation(what) => write!(f, "documented: {what}"),
        }
    }
}

/// Checks an adapter's catalogue against its source code, for the adapter's own tests: ids are
/// unique and start with `prefix`, rows are in order and within the quirk table, every field is
/// filled in, every
/// quirk is named in a `Quirk `id`` doc comment of `sources`, and every quirk has a unit test
/// named after it (`epic-basic-urlencode` → `fn epic_basic_urlencode()`).
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
        if !(1..=99).contains(&q.row) {
            return Err(format!("{}: row {} is not in the quirk table", q.id, q.row));
        }
        if q.row < last_row {
            return Err(format!("{} is out of row order", q.id));
        }
        last_row = q.row;
        let handler_named = match q.handled_by {
            HandledBy::Hook(_) | HandledBy::Policy(_) => true,
            HandledBy::AppHelper(s) | HandledBy::Core(s) | HandledBy::Documentation(s) => {
                !s.trim().is_empty()
            }
        };
        if q.summary.trim().is_empty() || q.source.trim().is_empty() || !handler_named {
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
