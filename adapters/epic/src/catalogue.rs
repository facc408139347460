//! The catalogue of Epic quirks this adapter handles.
//!
//! Every departure from SMART App Launch 2.2 that the adapter deals with is listed here as data,
//! with the row of the quirk × vendor table (the quirk table in `docs/adding-an-adapter.md`) it comes from, where it is
//! written down in this repository (`docs/vendors/epic.md`, which names the vendor's own source
//! and the date it was checked) and how sure we are of it. The list is what a reviewer checks the code against, what the
//! sandbox's Epic profile is built from, and what `smart-cli` can print when a flow misbehaves:
//! "this adapter assumes X because of source Y, with confidence Z".
//!
//! Each entry's `id` appears in the `///` doc of the code that handles it and names the unit test
//! that fails if the handling is removed (`epic-basic-urlencode` → `fn epic_basic_urlencode`).

pub use smart_core::quirks::{Confidence, Quirk};
use smart_core::quirks::{HandledBy, Hook, PolicyField};

/// Where each fact is written down, inside the repository: the page every row points to.
macro_rules! doc {
    ($anchor:literal) => {
        concat!("docs/vendors/epic.md#", $anchor)
    };
}

/// The catalogue, in quirk-table row order.
pub(crate) static QUIRKS: &[Quirk] = &[
    Quirk {
        id: "epic-discovery-headers",
        row: 2,
        summary: "Discovery needs `Accept: application/json` (/metadata answers XML without it) and, \
                  when configured, `Epic-Client-ID` from the registration (customers override \
                  endpoints per client ID)",
        source: doc!("discovery"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::DiscoveryHeaders),
    },
    Quirk {
        id: "epic-client-id-header-calls",
        row: 2,
        summary: "Some sites want `Epic-Client-ID` on token and FHIR requests too; sent there when \
                  the registration sets `client_id_header_on = [\"oauth\", \"fhir\"]`",
        source: doc!("client-id-per-environment"),
        confidence: Confidence::Captured,
        handled_by: HandledBy::Hook(Hook::TokenRequest),
    },
    Quirk {
        id: "epic-scopes-supported-incomplete",
        row: 3,
        summary: "`scopes_supported` lists only 5 scopes although Epic grants resource scopes, \
                  launch/patient and offline_access; it is patched to `None` (not exhaustive)",
        source: doc!("discovery"),
        confidence: Confidence::Captured,
        handled_by: HandledBy::Hook(Hook::PatchConfiguration),
    },
    Quirk {
        id: "epic-recognition",
        row: 5,
        summary: "Epic servers are recognised by host (`*.epic.com`, `*.epichosted.com`), the \
                  `/api/FHIR/` path, the `epic.scanning.dmsusername` scope or the \
                  CapabilityStatement's software name",
        source: doc!("discovery"),
        confidence: Confidence::Captured,
        handled_by: HandledBy::Hook(Hook::Recognizes),
    },
    Quirk {
        id: "epic-client-id-per-environment",
        row: 7,
        summary: "Each app has a production and a non-production client ID; `Epic-Client-ID` comes \
                  from the registration covering the base, and `invalid_launch_token` is explained \
                  as a wrong environment or client ID",
        source: doc!("client-id-per-environment"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::ClassifyOauthError),
    },
    Quirk {
        id: "epic-long-authorize-url",
        row: 11,
        summary: "A JWT launch token plus `state` can exceed Epic's URL limit (HTTP 404/500); EHR \
                  launches go by POST whenever `authorize-post` is advertised, not only when long",
        source: doc!("authorize"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::AuthorizeMethod),
    },
    Quirk {
        id: "epic-authorize-post-ehr-only",
        row: 13,
        summary: "POST to the authorize endpoint works for EHR launches only (Nov 2020+); a \
                  standalone launch is always sent by GET, even if the registration asks for POST",
        source: doc!("authorize"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::AuthorizeMethod),
    },
    Quirk {
        id: "epic-launch-scope",
        row: 14,
        summary: "`launch` is required in EHR launches and must not be sent in standalone ones; \
                  the core adds and removes it, and the adapter's scope hooks leave that intact",
        source: doc!("authorize"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Core(
            "SmartClient's launch; adapt_requested_scopes and authorize_parameters keep the default",
        ),
    },
    Quirk {
        id: "epic-smart-v1-v2-by-version",
        row: 17,
        summary: "SMART v2 scopes from Epic August/November 2024 only (v1 returned before); granted \
                  strings hold context-less API names and `.Read`/`.read` duplicates, which the \
                  core's scope parser reads alike",
        source: doc!("scopes"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Core(
            "smart_scopes::Scopes::parse folds the action's case, accepts context-less names, drops duplicates",
        ),
    },
    Quirk {
        id: "epic-basic-urlencode",
        row: 19,
        summary: "`client_secret_basic` form-urlencodes id and secret before base64 \
                  (`this-is-the-secret-2/7` is sent as `this-is-the-secret-2%2F7`)",
        source: doc!("client-authentication"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Policy(PolicyField::BasicAuthEncoding),
    },
    Quirk {
        id: "epic-introspection-bearer",
        row: 19,
        summary: "Introspection authenticates with the bearer access token, not with client \
                  credentials; `Epic::introspection_auth` builds that authentication",
        source: doc!("introspection"),
        confidence: Confidence::Captured,
        handled_by: HandledBy::AppHelper("Epic::introspection_auth"),
    },
    Quirk {
        id: "epic-assertion-lifetime",
        row: 21,
        summary: "Client assertions need `exp` at most 5 minutes ahead, `exp − iat ≤ 300`, \
                  `exp − nbf ≤ 300` and a `jti` of at most 151 characters; the adapter signs them \
                  for 240 s",
        source: doc!("client-authentication"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Policy(PolicyField::AssertionLifetime),
    },
    Quirk {
        id: "epic-jwks-url-registration",
        row: 22,
        summary: "JWT clients must register a JWK Set URL (static keys withdrawn for backend apps \
                  in 2025–26; Epic caches keys up to 29 h); `invalid_client` is explained with the \
                  likely key causes",
        source: doc!("jwks-url"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::ClassifyOauthError),
    },
    Quirk {
        id: "epic-token-type-case",
        row: 23,
        summary: "`token_type` is documented as `bearer` (lower case) and shown as `Bearer`; \
                  it is normalised to `Bearer`",
        source: doc!("tokens"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::NormalizeTokenResponse),
    },
    Quirk {
        id: "epic-opaque-or-jwt-tokens",
        row: 24,
        summary: "Tokens and codes may be JWTs or opaque; they are never decoded (expiry comes from \
                  `expires_in` only) and never truncated",
        source: doc!("opaque-tokens"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Core(
            "token::parse_token_response keeps access tokens opaque and takes expiry from expires_in",
        ),
    },
    Quirk {
        id: "epic-refresh-persistence",
        row: 25,
        summary: "Refresh tokens only for confidential clients with persistent access; plain, \
                  rolling or indefinite persistence (patient-chosen for patient apps); the old \
                  refresh token is kept unless a new one is returned",
        source: doc!("refresh"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Core(
            "SmartClient::refresh keeps the refresh token unless the response carries a new one",
        ),
    },
    Quirk {
        id: "epic-offline-access-echo",
        row: 25,
        summary: "Whether a session can refresh is decided by a returned `refresh_token`, never by \
                  `offline_access` in the echoed scope (Epic echoes it; older reports say it did not)",
        source: doc!("offline-access-echo"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Core(
            "SmartClient::refresh checks the session's refresh token, not its granted scopes",
        ),
    },
    Quirk {
        id: "epic-context-extras",
        row: 30,
        summary: "Token responses carry `__epic.dstu2.patient` (documented text: \
                  `epic.dstu2.patient`), `location`, `appointment` and `loginDepartment`; typed as \
                  `EpicContext` (patient IDs work across FHIR versions in Epic)",
        source: doc!("launch-context"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::AppHelper("EpicContext::from_context"),
    },
    Quirk {
        id: "epic-echoed-state",
        row: 30,
        summary: "Token responses echo the authorization `state`; it is dropped so that it is not \
                  kept in the session's context extras",
        source: doc!("launch-context"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::NormalizeTokenResponse),
    },
    Quirk {
        id: "epic-string-need-patient-banner",
        row: 31,
        summary: "`need_patient_banner` arrives as the string `\"false\"`; it is coerced to a \
                  boolean",
        source: doc!("launch-context"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::NormalizeTokenResponse),
    },
    Quirk {
        id: "epic-provider-standalone-no-patient",
        row: 32,
        summary: "Provider-facing standalone launches get no `patient` (and no encounter, location, \
                  appointment or loginDepartment); the missing context is reported, not invented",
        source: doc!("provider-standalone"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Core(
            "CompletedLaunch::missing_context lists launch/patient when no patient came back",
        ),
    },
    Quirk {
        id: "epic-id-token-issuer",
        row: 33,
        summary: "The id_token `iss` is the OAuth server (`…/oauth2`), not the FHIR base; taken \
                  from discovery's `issuer`, else from a `…/oauth2/token` token endpoint",
        source: doc!("id-token"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::IdTokenIssuer),
    },
    Quirk {
        id: "epic-id-token-legacy-issuer",
        row: 33,
        summary: "OUTDATED (Epic changed it in May 2020): the id_token `iss` was `…/oauth2/token`; \
                  accepted only when `Epic::accept_legacy_token_issuer(true)` is set",
        source: doc!("id-token"),
        confidence: Confidence::Outdated,
        handled_by: HandledBy::Hook(Hook::IdTokenIssuer),
    },
    Quirk {
        id: "epic-id-token-rs256",
        row: 34,
        summary: "id_tokens are signed RS256; no other algorithm is accepted",
        source: doc!("id-token"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Policy(PolicyField::IdTokenAlgorithms),
    },
    Quirk {
        id: "epic-authorize-html-error",
        row: 36,
        summary: "Configuration errors at the authorize endpoint show an HTML page (\"Something went \
                  wrong trying to authorize the client\") instead of redirecting; the page is \
                  recognised and explained",
        source: doc!("authorize-html-error"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::AppHelper("smart_adapter_epic::authorize_error_page"),
    },
    Quirk {
        id: "epic-token-bare-400",
        row: 36,
        summary: "Token requests are now and then answered by a bare 400 (no OAuth error body); \
                  `client_credentials` and `jwt-bearer` requests are sent once more with a new \
                  assertion, code exchanges and refreshes never",
        source: doc!("flaky-token-endpoint"),
        confidence: Confidence::Captured,
        handled_by: HandledBy::Policy(PolicyField::RetryBareToken400),
    },
    Quirk {
        id: "epic-backend-user-mapping",
        row: 37,
        summary: "Backend clients get `unauthorized_client` until the customer maps the client ID \
                  to an Epic user; the error description says so",
        source: doc!("backend"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::ClassifyOauthError),
    },
    Quirk {
        id: "epic-dynamic-client-registration",
        row: 38,
        summary: "Patient-facing public apps register a device-bound client at `…/oauth2/register` \
                  with a standalone launch's one-time access token, then use the `jwt-bearer` \
                  grant with `sub` = the new client",
        source: doc!("dynamic-client-registration"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::AppHelper(
            "smart_core::registration::register and jwt_bearer_token_with_policy (CLI: smart register)",
        ),
    },
    Quirk {
        id: "epic-search-requires-patient",
        row: 41,
        summary: "Patient-compartment searches (Observation, Condition, MedicationRequest, \
                  AllergyIntolerance, Encounter, …) fail without `patient` (outcome 4111)",
        source: doc!("search-required-params"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::SearchWarnings),
    },
    Quirk {
        id: "epic-search-patient-demographics",
        row: 41,
        summary: "Patient search needs `_id`, `identifier` or, by default, a demographic minimum \
                  (given + family + birthdate, or given + family + legal sex + phone/email); \
                  `birthdate` alone fails",
        source: doc!("search-required-params"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::SearchWarnings),
    },
    Quirk {
        id: "epic-search-observation-category",
        row: 41,
        summary: "Observation searches need `category` or `code` (outcome 59108); CarePlan \
                  searches need `category`; both are warned about",
        source: doc!("search-required-params"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::SearchWarnings),
    },
    Quirk {
        id: "epic-search-outcome-codes",
        row: 42,
        summary: "Search limits and paging: 4127 (Patient.Search over 100 results), 4113 (paging \
                  session expired), 4122 and 59100 (parameter unknown or ignored) are explained",
        source: doc!("search-codes"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::AppHelper("smart_adapter_epic::explain_outcome_code"),
    },
    Quirk {
        id: "epic-fhir-accept",
        row: 43,
        summary: "`/metadata` answers XML without `Accept`; every FHIR call sends \
                  `Accept: application/fhir+json` (resource calls defaulting to XML: no source)",
        source: doc!("discovery"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::FhirRequestHeaders),
    },
    Quirk {
        id: "epic-bodiless-403",
        row: 44,
        summary: "A 403 without a body means the API is not in the app's registration for this \
                  client ID (or not synced yet); insufficient_scope and user-security 403s are told \
                  apart",
        source: doc!("fhir-403"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::AppHelper("smart_adapter_epic::forbidden_hint"),
    },
];

#[cfg(test)]
mod tests {
    use super::QUIRKS;

    /// Every source file of the crate, for the checks that tie the catalogue to the code.
    const SOURCES: &[&str] = &[
        include_str!("adapter.rs"),
        include_str!("context.rs"),
        include_str!("recognize.rs"),
        include_str!("search.rs"),
        include_str!("errors.rs"),
        include_str!("lib.rs"),
        include_str!("../tests/epic_profile.rs"),
        include_str!("../tests/dynamic_registration.rs"),
        include_str!("../tests/bare_400_retry.rs"),
    ];

    /// Every row's source is a section of `docs/vendors/epic.md` that exists, so what `smart`
    /// prints as a quirk's source can be followed inside the repository.
    #[test]
    fn every_source_is_a_section_of_the_vendor_page() {
        const PAGE: &str = include_str!("../../../docs/vendors/epic.md");
        for q in QUIRKS {
            let anchor = q
                .source
                .strip_prefix("docs/vendors/epic.md#")
                .unwrap_or_else(|| {
                    panic!(
                        "{}: source {} is not in docs/vendors/epic.md",
                        q.id, q.source
                    )
                });
            assert!(
                PAGE.contains(&format!("<a id=\"{anchor}\"></a>")),
                "{}: docs/vendors/epic.md has no section #{anchor}",
                q.id
            );
        }
    }

    #[test]
    fn catalogue_matches_the_code() {
        assert_eq!(
            smart_core::quirks::check_catalogue("epic-", QUIRKS, SOURCES),
            Ok(())
        );
    }
}
