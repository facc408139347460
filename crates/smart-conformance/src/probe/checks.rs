//! The server checks, as data: ids, titles, references and levels.
//!
//! Ids follow the server checklist of the specification digest: `S-<requirement>.<n>`, so a
//! reader can go from a failure to the requirement it tests. Ids are stable; a withdrawn check
//! keeps its number retired. `S-0.1` is informational (vendor recognition), not a requirement.

use crate::model::{CheckDef, Family, Level};

macro_rules! check {
    ($name:ident, $id:literal, $title:literal, $reference:literal, $level:ident) => {
        #[doc = concat!("`", $id, "` (", stringify!($level), "): ", $title)]
        pub static $name: CheckDef = CheckDef {
            id: $id,
            title: $title,
            reference: $reference,
            level: Level::$level,
            family: Family::Server,
        };
    };
}

check!(
    S_0_1,
    "S-0.1",
    "The server is recognised as a catalogued vendor; its catalogued quirks are listed",
    "smart-adapters catalogue (vendor quirks, informational)",
    May
);
check!(
    S_1_1,
    "S-1.1",
    "`.well-known/smart-configuration` answers 200 with a JSON object and `Content-Type: application/json`",
    "SMART App Launch 2.2 conformance (Using .well-known)",
    Shall
);
check!(
    S_1_2,
    "S-1.2",
    "The configuration is JSON whatever the request's `Accept` header",
    "SMART App Launch 2.2 conformance (Using .well-known)",
    Shall
);
check!(
    S_1_3,
    "S-1.3",
    "Every endpoint URL in the configuration is absolute",
    "SMART App Launch 2.2 conformance (Metadata)",
    Shall
);
check!(
    S_2_1,
    "S-2.1",
    "`token_endpoint` is a string",
    "SMART App Launch 2.2 conformance (Metadata: required fields)",
    Shall
);
check!(
    S_2_2,
    "S-2.2",
    "`capabilities` is an array of strings",
    "SMART App Launch 2.2 conformance (Metadata: required fields)",
    Shall
);
check!(
    S_2_3,
    "S-2.3",
    "`grant_types_supported` is an array of strings",
    "SMART App Launch 2.2 conformance (Metadata: required fields)",
    Shall
);
check!(
    S_2_4,
    "S-2.4",
    "`code_challenge_methods_supported` contains `S256` and not `plain`",
    "SMART App Launch 2.2 conformance (Metadata); app-launch (PKCE)",
    Shall
);
check!(
    S_2_5,
    "S-2.5",
    "`authorization_endpoint` is a string when a `launch-*` capability is advertised",
    "SMART App Launch 2.2 conformance (Metadata: required fields)",
    Shall
);
check!(
    S_2_6,
    "S-2.6",
    "`issuer` and `jwks_uri` are strings when `sso-openid-connect` is advertised",
    "SMART App Launch 2.2 conformance (Metadata: required fields)",
    Shall
);
check!(
    S_3_1,
    "S-3.1",
    "`client-confidential-asymmetric` comes with `private_key_jwt` and RS384 or ES384 advertised",
    "SMART App Launch 2.2 client-confidential-asymmetric; conformance (Capabilities)",
    Shall
);
check!(
    S_3_2,
    "S-3.2",
    "`grant_types_supported` agrees with the capabilities (launch → `authorization_code`, `permission-offline` → `refresh_token`)",
    "SMART App Launch 2.2 conformance (Capabilities)",
    Should
);
check!(
    S_4_1,
    "S-4.1",
    "An authorization with an S256 challenge yields a code that the matching verifier exchanges for a token",
    "SMART App Launch 2.2 app-launch (PKCE); RFC 7636 §4",
    Shall
);
check!(
    S_4_2,
    "S-4.2",
    "`code_challenge_method=plain` (or no method, which means plain) is refused",
    "SMART App Launch 2.2 app-launch (PKCE: S256 only); RFC 7636 §4.3",
    Shall
);
check!(
    S_4_3,
    "S-4.3",
    "A code exchange without `code_verifier` is refused",
    "SMART App Launch 2.2 app-launch (PKCE); RFC 7636 §4.6",
    Shall
);
check!(
    S_4_4,
    "S-4.4",
    "A code exchange with a wrong `code_verifier` is refused",
    "SMART App Launch 2.2 app-launch (PKCE); RFC 7636 §4.6",
    Shall
);
check!(
    S_6_1,
    "S-6.1",
    "The redirect carries the request's `state` unchanged",
    "SMART App Launch 2.2 app-launch (authorization response); RFC 6749 §4.1.2",
    Shall
);
check!(
    S_6_2,
    "S-6.2",
    "An unregistered `redirect_uri` (foreign, longer path, added query) is never redirected to",
    "RFC 6749 §3.1.2.2, §4.1.2.1; SMART App Launch 2.2 app-launch",
    Shall
);
check!(
    S_6_3,
    "S-6.3",
    "An `aud` that is not the FHIR base byte for byte (other host, longer path, added slash) is refused",
    "SMART App Launch 2.2 app-launch (aud)",
    Shall
);
check!(
    S_6_4,
    "S-6.4",
    "An authorization code is single-use",
    "RFC 6749 §4.1.2; SMART App Launch 2.2 app-launch",
    Shall
);
check!(
    S_6_5,
    "S-6.5",
    "Replaying a code revokes the tokens issued for it",
    "RFC 6749 §4.1.2",
    Should
);
check!(
    S_6_6,
    "S-6.6",
    "A code is bound to its client: another client cannot redeem it",
    "RFC 6749 §4.1.3",
    Shall
);
check!(
    S_6_7,
    "S-6.7",
    "The exchange's `redirect_uri` must equal the authorization's",
    "RFC 6749 §4.1.3",
    Shall
);
check!(
    S_6_8,
    "S-6.8",
    "The authorization endpoint accepts POST when `authorize-post` is advertised",
    "SMART App Launch 2.2 app-launch (authorize by POST); conformance (authorize-post)",
    Should
);
check!(
    S_8_1,
    "S-8.1",
    "Token responses carry `access_token`, `token_type` Bearer (any case) and `scope`",
    "SMART App Launch 2.2 app-launch (token response); RFC 6749 §5.1",
    Shall
);
check!(
    S_8_2,
    "S-8.2",
    "Token responses carry a numeric `expires_in` of at most one hour",
    "SMART App Launch 2.2 app-launch (token response)",
    Should
);
check!(
    S_8_3,
    "S-8.3",
    "Every token response has `Cache-Control: no-store` and `Pragma: no-cache`",
    "SMART App Launch 2.2 app-launch (token response); RFC 6749 §5.1",
    Shall
);
check!(
    S_8_4,
    "S-8.4",
    "The token endpoint served the run without `temporarily_unavailable`",
    "RFC 6749 §5.2; SMART App Launch 2.2 app-launch",
    Should
);
check!(
    S_8_5,
    "S-8.5",
    "A confidential client's code exchange without, or with wrong, credentials is refused",
    "SMART App Launch 2.2 client-confidential-symmetric/asymmetric; RFC 6749 §3.2.1",
    Shall
);
check!(
    S_9_1,
    "S-9.1",
    "A granted `launch/patient` comes with a `patient` in the token response",
    "SMART App Launch 2.2 scopes-and-launch-context (launch context)",
    Shall
);
check!(
    S_10_1,
    "S-10.1",
    "A FHIR request without a token is refused with 401",
    "SMART App Launch 2.2 app-launch (access FHIR API); RFC 6750 §3",
    Shall
);
check!(
    S_10_2,
    "S-10.2",
    "A FHIR request with an unknown token is refused with 401",
    "SMART App Launch 2.2 app-launch (access FHIR API); RFC 6750 §3.1",
    Shall
);
check!(
    S_10_3,
    "S-10.3",
    "A FHIR request with an expired token is refused with 401",
    "SMART App Launch 2.2 app-launch (token response: expired tokens)",
    Shall
);
check!(
    S_10_4,
    "S-10.4",
    "A FHIR read outside the granted scopes is refused",
    "SMART App Launch 2.2 scopes-and-launch-context; app-launch (resource server)",
    Shall
);
check!(
    S_10_5,
    "S-10.5",
    "A FHIR write with read-only scopes is refused",
    "SMART App Launch 2.2 scopes-and-launch-context",
    Shall
);
check!(
    S_11_1,
    "S-11.1",
    "A refresh without `scope` returns `access_token`, `token_type`, `expires_in` and a `scope` within the grant",
    "SMART App Launch 2.2 app-launch (refresh)",
    Shall
);
check!(
    S_11_2,
    "S-11.2",
    "A refresh with a narrower `scope` grants at most that scope",
    "SMART App Launch 2.2 app-launch (refresh); RFC 6749 §6",
    Shall
);
check!(
    S_11_3,
    "S-11.3",
    "A refresh asking for more than the grant is refused",
    "SMART App Launch 2.2 app-launch (refresh); RFC 6749 §6",
    Shall
);
check!(
    S_11_4,
    "S-11.4",
    "A confidential client's refresh without client authentication is refused",
    "SMART App Launch 2.2 app-launch (refresh); RFC 6749 §6",
    Shall
);
check!(
    S_11_5,
    "S-11.5",
    "A rotated-out refresh token is refused when reused",
    "RFC 9700 §4.14.2; RFC 6749 §10.4",
    Should
);
check!(
    S_11_6,
    "S-11.6",
    "A refresh token is bound to its client: another client cannot use it",
    "SMART App Launch 2.2 app-launch (refresh); RFC 6749 §6",
    Shall
);
check!(
    S_12_1,
    "S-12.1",
    "`.well-known/openid-configuration` has the required fields and RS256 for id_tokens",
    "SMART App Launch 2.2 scopes-and-launch-context (OpenID Connect); OIDC Discovery §3",
    Shall
);
check!(
    S_12_2,
    "S-12.2",
    "The JWKS has at least one RSA key and only bare public keys",
    "SMART App Launch 2.2 (OpenID Connect); RFC 7517",
    Shall
);
check!(
    S_12_3,
    "S-12.3",
    "The `id_token` is RS256, its `kid` is in the JWKS, its signature verifies, `iss`, `aud` = client_id, `exp`, `sub` hold",
    "SMART App Launch 2.2 (OpenID Connect); OIDC Core §3.1.3.7",
    Shall
);
check!(
    S_12_4,
    "S-12.4",
    "`fhirUser` names a Patient, Practitioner, PractitionerRole, RelatedPerson or Person the token can read",
    "SMART App Launch 2.2 scopes-and-launch-context (fhirUser)",
    Shall
);
check!(
    S_13_1,
    "S-13.1",
    "A client assertion with a wrong `client_assertion_type` is refused",
    "SMART App Launch 2.2 client-confidential-asymmetric; RFC 7523 §2.2",
    Shall
);
check!(
    S_13_2,
    "S-13.2",
    "A client assertion with a bad signature is refused",
    "SMART App Launch 2.2 client-confidential-asymmetric; RFC 7523 §3",
    Shall
);
check!(
    S_13_3,
    "S-13.3",
    "A client assertion whose `aud` is not the token URL is refused",
    "SMART App Launch 2.2 client-confidential-asymmetric; RFC 7523 §3",
    Shall
);
check!(
    S_13_4,
    "S-13.4",
    "An expired client assertion is refused",
    "SMART App Launch 2.2 client-confidential-asymmetric; RFC 7523 §3",
    Shall
);
check!(
    S_13_5,
    "S-13.5",
    "A client assertion whose `jti` was already used is refused",
    "SMART App Launch 2.2 client-confidential-asymmetric (jti replay)",
    Shall
);
check!(
    S_13_6,
    "S-13.6",
    "Refused client assertions are answered `invalid_client`",
    "SMART App Launch 2.2 client-confidential-asymmetric; RFC 6749 §5.2",
    Should
);
check!(
    S_14_1,
    "S-14.1",
    "A valid backend request gets `access_token`, `token_type`, `expires_in` and `scope`",
    "SMART App Launch 2.2 backend-services (response)",
    Shall
);
check!(
    S_14_2,
    "S-14.2",
    "A token request with an unsupported `grant_type` is refused with 400",
    "SMART App Launch 2.2 backend-services; RFC 6749 §5.2",
    Shall
);
check!(
    S_14_3,
    "S-14.3",
    "Backend access tokens live at most 300 seconds",
    "SMART App Launch 2.2 backend-services (response)",
    Should
);
check!(
    S_14_4,
    "S-14.4",
    "Backend token responses carry no refresh token",
    "SMART App Launch 2.2 backend-services (response)",
    Should
);
check!(
    S_15_1,
    "S-15.1",
    "Introspection of an active token says `active: true` with `scope`, `client_id` and `exp`",
    "SMART App Launch 2.2 token-introspection; RFC 7662 §2.2",
    Should
);
check!(
    S_15_2,
    "S-15.2",
    "Introspection of an unknown token says `active: false`",
    "SMART App Launch 2.2 token-introspection; RFC 7662 §2.2",
    Should
);

/// Every server check, in report order.
pub static ALL: &[&CheckDef] = &[
    &S_0_1, &S_1_1, &S_1_2, &S_1_3, &S_2_1, &S_2_2, &S_2_3, &S_2_4, &S_2_5, &S_2_6, &S_3_1, &S_3_2,
    &S_4_1, &S_4_2, &S_4_3, &S_4_4, &S_6_1, &S_6_2, &S_6_3, &S_6_4, &S_6_5, &S_6_6, &S_6_7, &S_6_8,
    &S_8_1, &S_8_2, &S_8_3, &S_8_4, &S_8_5, &S_9_1, &S_10_1, &S_10_2, &S_10_3, &S_10_4, &S_10_5,
    &S_11_1, &S_11_2, &S_11_3, &S_11_4, &S_11_5, &S_11_6, &S_12_1, &S_12_2, &S_12_3, &S_12_4,
    &S_13_1, &S_13_2, &S_13_3, &S_13_4, &S_13_5, &S_13_6, &S_14_1, &S_14_2, &S_14_3, &S_14_4,
    &S_15_1, &S_15_2,
];
