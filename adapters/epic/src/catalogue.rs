//! The catalogue of Epic quirks this adapter handles.
//!
//! Every departure from SMART App Launch 2.2 that the adapter deals with is listed here as data,
//! with the row of the quirk × vendor table (the quirk table in `docs/adding-an-adapter.md`) it comes from, where it was
//! learnt and how sure we are of it. The list is what a reviewer checks the code against, what the
//! sandbox's Epic profile is built from, and what `smart-cli` can print when a flow misbehaves:
//! "this adapter assumes X because of source Y, with confidence Z".
//!
//! Each entry's `id` appears in the `///` doc of the code that handles it and names the unit test
//! that fails if the handling is removed (`epic-basic-urlencode` → `fn epic_basic_urlencode`).

pub use smart_core::quirks::{Confidence, Quirk};
use smart_core::quirks::{HandledBy, Hook, PolicyField};

const OAUTH2_SPEC: &str = "https://fhir.epic.com/Documentation?docId=oauth2";
const OAUTH2_TUTORIAL: &str = "https://fhir.epic.com/Documentation?docId=oauth2tutorial";
const SANDBOX_CAPTURE: &str =
    "api-evangelist/epic-systems authentication/epic-systems-authentication.yml (2026 capture)";
const PROBE: &str = "https://mock.health/map/epic (third-party probe of the Epic sandbox)";

/// The catalogue, in quirk-table row order.
pub(crate) static QUIRKS: &[Quirk] = &[
    Quirk {
        id: "epic-discovery-headers",
        row: 2,
        summary: "Discovery needs `Accept: application/json` (/metadata answers XML without it) and, \
                  when configured, `Epic-Client-ID` (customers override endpoints per client ID)",
        source: OAUTH2_SPEC,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::DiscoveryHeaders),
    },
    Quirk {
        id: "epic-scopes-supported-incomplete",
        row: 3,
        summary: "`scopes_supported` lists only 5 scopes although Epic grants resource scopes, \
                  launch/patient and offline_access; it is patched to `None` (not exhaustive)",
        source: SANDBOX_CAPTURE,
        confidence: Confidence::Captured,
        handled_by: HandledBy::Hook(Hook::PatchConfiguration),
    },
    Quirk {
        id: "epic-recognition",
        row: 5,
        summary: "Epic servers are recognised by host (`*.epic.com`, `*.epichosted.com`), the \
                  `/api/FHIR/` path, the `epic.scanning.dmsusername` scope or the \
                  CapabilityStatement's software/publisher",
        source: OAUTH2_SPEC,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::Recognizes),
    },
    Quirk {
        id: "epic-long-authorize-url",
        row: 11,
        summary: "A JWT launch token plus `state` can exceed Epic's URL limit (HTTP 404/500); EHR \
                  launches go by POST whenever `authorize-post` is advertised, not only when long",
        source: OAUTH2_SPEC,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::AuthorizeMethod),
    },
    Quirk {
        id: "epic-authorize-post-ehr-only",
        row: 13,
        summary: "POST to the authorize endpoint works for EHR launches only (Nov 2020+); a \
                  standalone launch is always sent by GET, even if the registration asks for POST",
        source: OAUTH2_SPEC,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::AuthorizeMethod),
    },
    Quirk {
        id: "epic-launch-scope",
        row: 14,
        summary: "`launch` is required in EHR launches and must not be sent in standalone ones; \
                  the core adds and removes it, and the adapter's scope hooks leave that intact",
        source: OAUTH2_SPEC,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Core(
            "SmartClient's launch; adapt_requested_scopes and authorize_parameters keep the default",
        ),
    },
    Quirk {
        id: "epic-basic-urlencode",
        row: 19,
        summary: "`client_secret_basic` form-urlencodes id and secret before base64 \
                  (`this-is-the-secret-2/7` is sent as `this-is-the-secret-2%2F7`)",
        source: OAUTH2_SPEC,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Policy(PolicyField::BasicAuthEncoding),
    },
    Quirk {
        id: "epic-assertion-lifetime",
        row: 21,
        summary: "Client assertions need `exp` at most 5 minutes ahead and `exp − iat ≤ 300`; \
                  the adapter signs them for 240 s",
        source: OAUTH2_SPEC,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Policy(PolicyField::AssertionLifetime),
    },
    Quirk {
        id: "epic-token-type-case",
        row: 23,
        summary: "`token_type` is documented as `bearer` (lower case) and captured as `Bearer`; \
                  it is normalised to `Bearer`",
        source: OAUTH2_SPEC,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::NormalizeTokenResponse),
    },
    Quirk {
        id: "epic-context-extras",
        row: 30,
        summary: "Token responses carry `__epic.dstu2.patient` (documented text: \
                  `epic.dstu2.patient`), `location`, `appointment` and `loginDepartment`; typed as \
                  `EpicContext`, with the patient ID chosen by the base's FHIR version",
        source: OAUTH2_TUTORIAL,
        confidence: Confidence::Documented,
        handled_by: HandledBy::AppHelper("EpicContext::from_context"),
    },
    Quirk {
        id: "epic-echoed-state",
        row: 30,
        summary: "Token responses echo the authorization `state`; it is dropped so that it is not \
                  kept in the session's context extras",
        source: OAUTH2_SPEC,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::NormalizeTokenResponse),
    },
    Quirk {
        id: "epic-string-need-patient-banner",
        row: 31,
        summary: "`need_patient_banner` arrives as the string `\"false\"`; it is coerced to a \
                  boolean",
        source: OAUTH2_TUTORIAL,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::NormalizeTokenResponse),
    },
    Quirk {
        id: "epic-id-token-issuer",
        row: 33,
        summary: "The id_token `iss` is the OAuth server (`…/oauth2`), not the FHIR base; taken \
                  from discovery's `issuer`, else from a `…/oauth2/token` token endpoint",
        source: OAUTH2_SPEC,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::IdTokenIssuer),
    },
    Quirk {
        id: "epic-id-token-legacy-issuer",
        row: 33,
        summary: "Before May 2020 the id_token `iss` was `…/oauth2/token`; accepted only when \
                  `Epic::accept_legacy_token_issuer(true)` is set",
        source: OAUTH2_SPEC,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::IdTokenIssuer),
    },
    Quirk {
        id: "epic-id-token-rs256",
        row: 34,
        summary: "id_tokens are signed RS256; no other algorithm is accepted",
        source: OAUTH2_SPEC,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Policy(PolicyField::IdTokenAlgorithms),
    },
    Quirk {
        id: "epic-backend-user-mapping",
        row: 37,
        summary: "Backend clients get `unauthorized_client` until the customer maps the client ID \
                  to an Epic user; the error description says so",
        source: OAUTH2_SPEC,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::ClassifyOauthError),
    },
    Quirk {
        id: "epic-search-requires-patient",
        row: 41,
        summary: "Patient-compartment searches (Observation, Condition, MedicationRequest, \
                  AllergyIntolerance, Encounter, …) fail without `patient` (outcome 4111)",
        source: OAUTH2_SPEC,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::SearchWarnings),
    },
    Quirk {
        id: "epic-search-patient-demographics",
        row: 41,
        summary: "Patient search needs `_id`, `identifier` or a demographic minimum (given + \
                  family + birthdate, or given + family + legal sex + phone/email); `birthdate` \
                  alone fails (outcome 59159)",
        source: OAUTH2_SPEC,
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::SearchWarnings),
    },
    Quirk {
        id: "epic-search-observation-category",
        row: 41,
        summary: "Some searches also need `category`; Observation without `category` or `code` \
                  is warned about",
        source: PROBE,
        confidence: Confidence::Inferred,
        handled_by: HandledBy::Hook(Hook::SearchWarnings),
    },
    Quirk {
        id: "epic-fhir-accept",
        row: 43,
        summary: "FHIR calls default to XML without `Accept`; every call sends \
                  `Accept: application/fhir+json`",
        source: OAUTH2_SPEC,
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
        include_str!("search.rs"),
    ];

    #[test]
    fn catalogue_matches_the_code() {
        assert_eq!(
            smart_core::quirks::check_catalogue("epic-", QUIRKS, SOURCES),
            Ok(())
        );
    }
}
