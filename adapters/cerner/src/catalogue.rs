//! The catalogue of Oracle Health (Cerner Millennium) quirks this adapter handles.
//!
//! Every departure from SMART App Launch 2.2 that the adapter deals with is listed here as data,
//! with the row of the quirk × vendor table (the quirk table in `docs/adding-an-adapter.md`) it comes from, where it was
//! learnt and how sure we are of it. The list is what a reviewer checks the code against, what the
//! sandbox's Cerner profile is built from, and what `smart-cli` can print when a flow misbehaves:
//! "this adapter assumes X because of source Y, with confidence Z".
//!
//! Each entry's `id` appears in the `///` doc of the code that handles it and names the unit test
//! that fails if the handling is removed (`cerner-refresh-throttle` → `fn cerner_refresh_throttle`).

pub use smart_core::quirks::{Confidence, Quirk};
use smart_core::quirks::{HandledBy, Hook, PolicyField};

const AUTHORIZATION: &str = "https://fhir.cerner.com/authorization/ (cerner/fhir.cerner.com \
                             content/authorization/authorization-specification.md, 2024-05-02)";
const PROVIDER_CAPTURE: &str =
    "api-evangelist/cerner well-known/cerner-smart-configuration.json (2026 capture)";
const PERSONA_CAPTURES: &str = "api-evangelist/cerner well-known/cerner-smart-configuration.json \
                                and cerner-smart-configuration-patient.json (2026 captures)";
const MILLENNIUM_R4: &str = "https://fhir.cerner.com/millennium/r4/ (cerner/fhir.cerner.com \
                             content/millennium/r4/**, 2024-05-02)";
const OPENID_CONNECT: &str = "https://fhir.cerner.com/authorization/openid-connect/ \
                              (cerner/fhir.cerner.com content/authorization/openid-connect.md)";
const ACTIVE_USER_PRESENCE: &str =
    "cerner/fhir.cerner.com content/authorization/active-user-presence.md";
const CLIENT_CODE: &str =
    "a TypeScript token-response interface in client code (repository not named)";

/// The catalogue, in quirk-table row order.
pub(crate) static QUIRKS: &[Quirk] = &[
    Quirk {
        id: "cerner-discovery-accept",
        row: 2,
        summary: "Discovery asks for JSON in both forms: `application/json` for the \
                  smart-configuration and the FHIR type for /metadata (`application/fhir+json`, \
                  `application/json+fhir` on DSTU2 bases); other types get 406",
        source: MILLENNIUM_R4,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::DiscoveryHeaders),
    },
    Quirk {
        id: "cerner-refresh-grant-missing",
        row: 4,
        summary: "`grant_types_supported` omits `refresh_token` although refresh works; it is \
                  added",
        source: PROVIDER_CAPTURE,
        confidence: Confidence::Captured,
        handled_by: HandledBy::Hook(Hook::PatchConfiguration),
    },
    Quirk {
        id: "cerner-recognition",
        row: 5,
        summary: "Oracle Health servers are recognised by host (`*.cerner.com`), the \
                  `/{r4|dstu2}/{tenant GUID}` path, `authorization.cerner.com` endpoints or the \
                  CapabilityStatement publisher (Cerner, Oracle)",
        source: MILLENNIUM_R4,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::Recognizes),
    },
    Quirk {
        id: "cerner-no-wildcard-scopes",
        row: 15,
        summary: "Wildcard scopes (`patient/*.read`) are rejected; each is expanded into one \
                  scope per resource type (default Millennium R4 list, narrowed to the persona's \
                  `scopes_supported`)",
        source: AUTHORIZATION,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::AdaptRequestedScopes),
    },
    Quirk {
        id: "cerner-scope-count-warning",
        row: 16,
        summary: "Too many scopes make the access token exceed HTTP header limits and the \
                  request fail; more than 50 scopes are warned about",
        source: AUTHORIZATION,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::AdaptRequestedScopes),
    },
    Quirk {
        id: "cerner-qualified-scopes",
        row: 18,
        summary: "Granted scopes may be fully qualified \
                  (`http://smarthealthit.org/FHIR/scopes/user/Observation.read`) and equal the \
                  short form; the core's scope parser strips the prefix",
        source: AUTHORIZATION,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Core("smart_scopes::Scope::parse; pinned by this adapter's test"),
    },
    Quirk {
        id: "cerner-no-rotated-refresh-token",
        row: 26,
        summary: "A refresh response never carries a new refresh token; the original must be \
                  kept, which the core does (it replaces the refresh token only when one is \
                  returned)",
        source: AUTHORIZATION,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Core(
            "the refresh merge; normalize_token_response leaves the body alone",
        ),
    },
    Quirk {
        id: "cerner-refresh-throttle",
        row: 27,
        summary: "Refreshing more often than once a minute may be throttled; proactive \
                  refreshes wait 60 s",
        source: AUTHORIZATION,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Policy(PolicyField::MinRefreshInterval),
    },
    Quirk {
        id: "cerner-active-user-presence",
        row: 29,
        summary: "Token responses with `online_access` may carry `active_ttl` (seconds until \
                  the session counts as inactive); typed in `CernerContext`",
        source: ACTIVE_USER_PRESENCE,
        confidence: Confidence::Documented,
        handled_by: HandledBy::AppHelper("CernerContext::from_context"),
    },
    Quirk {
        id: "cerner-context-extras",
        row: 30,
        summary: "Token responses carry `user` and `username` next to `tenant` (typed by the \
                  core); typed in `CernerContext`",
        source: CLIENT_CODE,
        confidence: Confidence::Captured,
        handled_by: HandledBy::AppHelper("CernerContext::from_context"),
    },
    Quirk {
        id: "cerner-standalone-provider-persona",
        row: 32,
        summary: "The provider persona has no `context-standalone-patient`; a standalone launch \
                  asking for `launch/patient` there is warned about (use the patient persona)",
        source: PERSONA_CAPTURES,
        confidence: Confidence::Captured,
        handled_by: HandledBy::Hook(Hook::AdaptRequestedScopes),
    },
    Quirk {
        id: "cerner-id-token-issuer",
        row: 33,
        summary: "The id_token `iss` is `{issuer}/oidc/idsps/{idsp}/`, not discovery's \
                  `issuer`; that exact shape (one path segment) is accepted",
        source: OPENID_CONNECT,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::IdTokenIssuer),
    },
    Quirk {
        id: "cerner-id-token-rs256",
        row: 34,
        summary: "id_tokens are signed RS256; no other algorithm is accepted",
        source: OPENID_CONNECT,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Policy(PolicyField::IdTokenAlgorithms),
    },
    Quirk {
        id: "cerner-error-uri-reapprove",
        row: 36,
        summary: "A suspended refresh token fails with `invalid_grant` and an `error_uri` the \
                  user must open to re-approve the app; the description says so",
        source: AUTHORIZATION,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::ClassifyOauthError),
    },
    Quirk {
        id: "cerner-search-required-params",
        row: 41,
        summary: "Most searches need `patient`, `subject` or `_id` (Encounter also `account`; \
                  Appointment `date` with a patient, practitioner or location; Location \
                  `-physicalType`); a plain-text 400 otherwise",
        source: MILLENNIUM_R4,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::SearchWarnings),
    },
    Quirk {
        id: "cerner-search-count-limits",
        row: 42,
        summary: "`_count` is capped per resource (Observation 200, DocumentReference 100, \
                  DiagnosticReport 100); larger values are warned about",
        source: MILLENNIUM_R4,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::SearchWarnings),
    },
    Quirk {
        id: "cerner-fhir-media-types",
        row: 43,
        summary: "R4 answers `application/fhir+json`, DSTU2 `application/json+fhir`; anything \
                  else gets 406. `Cerner::with_dstu2_media_type(true)` switches FHIR calls to \
                  the DSTU2 type",
        source: MILLENNIUM_R4,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::FhirRequestHeaders),
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
        include_str!("scopes.rs"),
        include_str!("search.rs"),
    ];

    #[test]
    fn catalogue_matches_the_code() {
        assert_eq!(
            smart_core::quirks::check_catalogue("cerner-", QUIRKS, SOURCES),
            Ok(())
        );
    }
}
