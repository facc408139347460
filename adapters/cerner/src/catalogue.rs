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

/// The integrator's page for Oracle Health in this repository; every row points at one of its
/// sections, which names the vendor document or capture behind the claim and the date checked.
macro_rules! page {
    ($anchor:literal) => {
        concat!("docs/vendors/oracle-health.md#", $anchor)
    };
}

/// The catalogue, in quirk-table row order.
pub(crate) static QUIRKS: &[Quirk] = &[
    Quirk {
        id: "cerner-discovery-accept",
        row: 2,
        summary: "Discovery asks for JSON in both forms: `application/json` for the \
                  smart-configuration and the FHIR type for /metadata (`application/fhir+json`, \
                  `application/json+fhir` on DSTU2 bases); types other than JSON get 406",
        source: page!("discovery"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::DiscoveryHeaders),
    },
    Quirk {
        id: "cerner-refresh-grant-missing",
        row: 4,
        summary: "`grant_types_supported` omits `refresh_token` although refresh works; it is \
                  added",
        source: page!("discovery"),
        confidence: Confidence::Captured,
        handled_by: HandledBy::Hook(Hook::PatchConfiguration),
    },
    Quirk {
        id: "cerner-recognition",
        row: 5,
        summary: "Oracle Health servers are recognised by host (`*.cerner.com`), the \
                  `/{r4|dstu2}/{tenant GUID}` path, `authorization.cerner.com` endpoints or the \
                  CapabilityStatement publisher (Cerner, Oracle Health)",
        source: page!("discovery"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::Recognizes),
    },
    Quirk {
        id: "cerner-discovered-endpoints",
        row: 6,
        summary: "Authorization endpoints are tenant- and host-specific (the live token URL has \
                  a `hosts/{fhir-host}` segment the documentation lacks): they are never built, \
                  always discovered, and a client assertion's `aud` is the discovered token URL \
                  byte for byte",
        source: page!("endpoints-are-tenant--and-host-specific"),
        confidence: Confidence::Captured,
        handled_by: HandledBy::Core(
            "discovery and client_auth: endpoints from the configuration, assertion aud = token_endpoint",
        ),
    },
    Quirk {
        id: "cerner-no-wildcard-scopes",
        row: 15,
        summary: "Wildcard scopes (`patient/*.read`) are not supported (silently left out of the \
                  grant); each is expanded into one scope per resource type (default Millennium \
                  R4 list, narrowed to the persona's `scopes_supported`)",
        source: page!("scopes"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::AdaptRequestedScopes),
    },
    Quirk {
        id: "cerner-scope-count-warning",
        row: 16,
        summary: "Too many scopes make the access token exceed HTTP header limits and the \
                  request fail; more than 50 scopes are warned about (50 is a heuristic, no \
                  number is published)",
        source: page!("scopes"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::AdaptRequestedScopes),
    },
    Quirk {
        id: "cerner-scope-version",
        row: 17,
        summary: "A registration is for SMART v1 or v2 scopes, and a v2 registration silently \
                  drops v1 scopes: wildcard expansions use the grammar of the registration's \
                  `scope_version` adapter option, not the wildcard's",
        source: page!("scopes"),
        confidence: Confidence::Captured,
        handled_by: HandledBy::Hook(Hook::AdaptRequestedScopes),
    },
    Quirk {
        id: "cerner-qualified-scopes",
        row: 18,
        summary: "Granted scopes may be fully qualified \
                  (`http://smarthealthit.org/FHIR/scopes/user/Observation.read`) and equal the \
                  short form; the core's scope parser strips the prefix",
        source: page!("scopes"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Core("smart_scopes::Scope::parse; pinned by this adapter's test"),
    },
    Quirk {
        id: "cerner-silent-scope-drop",
        row: 18,
        summary: "Requested scopes can be left out of a successful grant (wildcards, v1 scopes \
                  on a v2 registration, `offline_access` on an online registration); the launch \
                  result lists them as dropped and a warning is logged, `offline_access` \
                  included when only `online_access` was granted",
        source: page!("scopes"),
        confidence: Confidence::Captured,
        handled_by: HandledBy::Core(
            "Scopes::compare_with into CompletedLaunch::scopes, logged by complete_launch",
        ),
    },
    Quirk {
        id: "cerner-no-rotated-refresh-token",
        row: 26,
        summary: "A refresh response never carries a new refresh token; the original must be \
                  kept, which the core does (it replaces the refresh token only when one is \
                  returned)",
        source: page!("tokens-and-refresh"),
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
        source: page!("tokens-and-refresh"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Policy(PolicyField::MinRefreshInterval),
    },
    Quirk {
        id: "cerner-refresh-unused-revocation",
        row: 28,
        summary: "`offline_access` refresh tokens are revoked after three months unused (and \
                  suspended on certificate or DNS changes); a refresh `invalid_grant` is \
                  explained with those causes",
        source: page!("tokens-and-refresh"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::ClassifyOauthError),
    },
    Quirk {
        id: "cerner-active-user-presence",
        row: 29,
        summary: "Token responses with `online_access` may carry `active_ttl` (seconds until \
                  the session counts as inactive); typed in `CernerContext`",
        source: page!("tokens-and-refresh"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::AppHelper("CernerContext::from_context"),
    },
    Quirk {
        id: "cerner-active-at",
        row: 29,
        summary: "A refresh of an `online_access` session sends `active_at`, the seconds since \
                  the app last saw the user act (when the app reports it), so the session does \
                  not lapse while the user works in the app",
        source: page!("tokens-and-refresh"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::TokenRequest),
    },
    Quirk {
        id: "cerner-context-extras",
        row: 30,
        summary: "UNVERIFIED: `user`, `username` (and `tenant`) in token responses are seen \
                  only in unattributed client code, not in vendor text; they stay untyped extras \
                  of the launch context and nothing depends on them",
        source: page!("token-response-extras"),
        confidence: Confidence::Inferred,
        handled_by: HandledBy::Core("LaunchContext::extras keeps unmodelled fields untyped"),
    },
    Quirk {
        id: "cerner-standalone-provider-persona",
        row: 32,
        summary: "The provider persona has no `context-standalone-patient`; a standalone launch \
                  asking for `launch/patient` there is warned about (use the patient persona)",
        source: page!("personas"),
        confidence: Confidence::Captured,
        handled_by: HandledBy::Hook(Hook::AdaptRequestedScopes),
    },
    Quirk {
        id: "cerner-client-persona-mismatch",
        row: 32,
        summary: "A client used at the other persona's authorization endpoint gets \
                  `unauthorized_client` with a `client-persona-mismatch` error_uri; the error \
                  says so and names the fix",
        source: page!("personas"),
        confidence: Confidence::Captured,
        handled_by: HandledBy::Hook(Hook::ClassifyOauthError),
    },
    Quirk {
        id: "cerner-id-token-issuer",
        row: 33,
        summary: "The id_token `iss` is `{issuer}/oidc/idsps/{idsp}/`, not discovery's \
                  `issuer`; that exact shape (one path segment) is accepted",
        source: page!("discovery"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::IdTokenIssuer),
    },
    Quirk {
        id: "cerner-id-token-rs256",
        row: 34,
        summary: "id_tokens are signed RS256; no other algorithm is accepted",
        source: page!("discovery"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Policy(PolicyField::IdTokenAlgorithms),
    },
    Quirk {
        id: "cerner-error-uri-reapprove",
        row: 36,
        summary: "A suspended refresh token fails with `invalid_grant` and an `error_uri` the \
                  user must open to re-approve the app; only refresh failures get that hint, as \
                  every Oracle error (an expired code too) carries an `error_uri`",
        source: page!("tokens-and-refresh"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::ClassifyOauthError),
    },
    Quirk {
        id: "cerner-backend-basic-auth",
        row: 37,
        summary: "Backend `client_credentials` authenticates a system account with HTTP Basic \
                  (or a JWT); a confidential-symmetric registration gets a backend token with \
                  Basic",
        source: page!("backend-services"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Core("client_auth: client_secret_basic on every grant"),
    },
    Quirk {
        id: "cerner-search-required-params",
        row: 41,
        summary: "Most searches need `patient`, `subject` or `_id` (Encounter also `account`; \
                  Appointment `date` with a patient, practitioner or location; Location \
                  `-physicalType`); a plain-text 400 otherwise",
        source: page!("errors"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::SearchWarnings),
    },
    Quirk {
        id: "cerner-search-count-limits",
        row: 42,
        summary: "`_count` is capped per resource (Observation 200, DocumentReference 100, \
                  DiagnosticReport 100); larger values are warned about",
        source: page!("errors"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::SearchWarnings),
    },
    Quirk {
        id: "cerner-fhir-media-types",
        row: 43,
        summary: "R4 answers `application/fhir+json`, DSTU2 `application/json+fhir`; types other \
                  than JSON get 406. `Cerner::with_dstu2_media_type(true)` switches FHIR calls \
                  to the DSTU2 type",
        source: page!("errors"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Hook(Hook::FhirRequestHeaders),
    },
    Quirk {
        id: "cerner-fhir-401-403",
        row: 44,
        summary: "401 carries a Bearer challenge (`invalid_token`); 403 is the plain text \
                  `Tenant not valid or accessible` (unknown tenant, app not enabled): read as \
                  `FhirError::Unauthorized` and `FhirError::Forbidden` with the body kept",
        source: page!("errors"),
        confidence: Confidence::Documented,
        handled_by: HandledBy::Core("smart_fhir::FhirError::from_response"),
    },
    Quirk {
        id: "cerner-ambiguous-5xx",
        row: 45,
        summary: "500 and 504 are given for retryable and permanent failures alike: a 500 is \
                  never retried, a 504 only for idempotent FHIR requests within the retry budget, \
                  token requests never",
        source: page!("errors"),
        confidence: Confidence::Captured,
        handled_by: HandledBy::Core(
            "smart_fhir::RetryPolicy (429, 502, 503, 504; idempotent only)",
        ),
    },
];

#[cfg(test)]
mod tests {
    use super::QUIRKS;

    /// Every source file of the crate, for the checks that tie the catalogue to the code.
    const SOURCES: &[&str] = &[
        include_str!("adapter.rs"),
        include_str!("context.rs"),
        include_str!("errors.rs"),
        include_str!("recognize.rs"),
        include_str!("scopes.rs"),
        include_str!("search.rs"),
        // The tests over HTTP of the rows the core handles.
        include_str!("../tests/oracle_health.rs"),
    ];

    /// The integrator's page every row points at.
    const PAGE: &str = include_str!("../../../docs/vendors/oracle-health.md");

    /// The anchors of the page's headings, as Markdown renderers make them (lower case,
    /// punctuation other than `-` dropped, spaces to `-`).
    fn anchors(page: &str) -> Vec<String> {
        page.lines()
            .filter_map(|l| l.strip_prefix("## ").or_else(|| l.strip_prefix("### ")))
            .map(|heading| {
                heading
                    .trim()
                    .to_lowercase()
                    .chars()
                    .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-')
                    .map(|c| if c == ' ' { '-' } else { c })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_source_is_a_section_of_the_vendor_page() {
        let anchors = anchors(PAGE);
        assert!(anchors.contains(&"endpoints-are-tenant--and-host-specific".to_owned()));
        for q in QUIRKS {
            let anchor = q
                .source
                .strip_prefix("docs/vendors/oracle-health.md#")
                .unwrap_or_else(|| {
                    panic!("{}: source {} is not in the repository", q.id, q.source)
                });
            assert!(
                anchors.iter().any(|a| a == anchor),
                "{}: no section #{anchor} in docs/vendors/oracle-health.md",
                q.id
            );
            assert!(
                PAGE.contains(&format!("`{}`", q.id)),
                "{}: the page does not name the quirk",
                q.id
            );
        }
    }

    #[test]
    fn catalogue_matches_the_code() {
        assert_eq!(
            smart_core::quirks::check_catalogue("cerner-", QUIRKS, SOURCES),
            Ok(())
        );
    }
}
