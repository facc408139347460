//! Reading Epic's error answers that the protocol hooks never see: the authorize endpoint's HTML
//! page, bodiless 403s from the FHIR API, and the numeric codes in Epic's OperationOutcomes.
//!
//! Why: each of these looks like something else to a client written to the specification. The
//! HTML page is not a redirect, so an app waits for a callback that never comes; a 403 without a
//! body reads as "forbidden" when it means "this API is not in your registration"; and a search
//! that answers with code 4101 is an empty result, not a failure, while 4113 means "start the
//! paging again". These readers turn them into one sentence an app can log or show. They only
//! look at bounded prefixes of server text, never echo it, and allocate nothing per call.

/// How much of a page body is searched for Epic's authorize error text.
const MAX_SCANNED_BYTES: usize = 64 * 1024;

/// The sentence Epic's authorize error page shows.
const AUTHORIZE_ERROR_TEXT: &str = "something went wrong trying to authorize the client";

/// Quirk `epic-authorize-html-error` (row 36; `docs/vendors/epic.md#authorize-html-error`,
/// Documented): Epic answers configuration errors at the authorize endpoint (wrong redirect URI,
/// unknown client ID, missing or wrong `aud`, wrong POST content type) with an HTML page and no
/// redirect. Given the authorize endpoint's answer, returns what it most likely means, or `None`
/// when it is not that page (a redirect, JSON, another page).
///
/// ```
/// let page = "<html><body><p>Something went wrong trying to authorize the client. \
///             Please try logging in again.</p></body></html>";
/// let hint = smart_adapter_epic::authorize_error_page(200, Some("text/html; charset=utf-8"), page)
///     .expect("recognised");
/// assert!(hint.contains("redirect_uri"));
/// assert_eq!(smart_adapter_epic::authorize_error_page(302, None, ""), None);
/// ```
pub fn authorize_error_page(
    status: u16,
    content_type: Option<&str>,
    body: &str,
) -> Option<&'static str> {
    if (300..400).contains(&status) {
        return None;
    }
    let html = content_type.is_some_and(|t| {
        t.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/html"))
    });
    if !html {
        return None;
    }
    let mut end = body.len().min(MAX_SCANNED_BYTES);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    let scanned = &body.as_bytes()[..end];
    let needle = AUTHORIZE_ERROR_TEXT.as_bytes();
    let found = scanned
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle));
    found.then_some(
        "Epic refused the authorization request with its error page (no redirect to the app): \
         check that redirect_uri matches the registration byte for byte, that the client ID \
         belongs to this environment (production or non-production) and has synced, that aud is \
         the FHIR base exactly, and that a POSTed request is form-encoded",
    )
}

/// Quirk `epic-bodiless-403` (row 44; `docs/vendors/epic.md#fhir-403`, Documented): what a FHIR
/// API 403 from Epic means, from its `WWW-Authenticate` header and whether it had a body.
/// `None` for other statuses.
///
/// ```
/// use smart_adapter_epic::forbidden_hint;
///
/// assert!(forbidden_hint(403, None, 0).expect("hint").contains("not in the app's registration"));
/// assert!(forbidden_hint(403, Some(r#"Bearer error="insufficient_scope""#), 0)
///     .expect("hint")
///     .contains("scope"));
/// assert_eq!(forbidden_hint(404, None, 0), None);
/// ```
pub fn forbidden_hint(
    status: u16,
    www_authenticate: Option<&str>,
    body_len: usize,
) -> Option<&'static str> {
    if status != 403 {
        return None;
    }
    if www_authenticate.is_some_and(|h| h.contains("insufficient_scope")) {
        return Some(
            "Epic: the access token lacks the scope for this request; request the scope and check that the API is in the app's registration",
        );
    }
    if body_len == 0 {
        return Some(
            "Epic: a 403 without a body means the API is not in the app's registration for this client ID \
             (or the registration has not synced yet, which takes about 30 minutes)",
        );
    }
    Some(
        "Epic: the signed-in user is not allowed to see this data (user security); the app cannot fix this",
    )
}

/// One code of Epic's FHIR error table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutcomeCode {
    /// The numeric code, as Epic sends it in `details.coding.code`.
    pub code: &'static str,
    /// `true` for a warning (the request was served), `false` for a fatal error.
    pub warning: bool,
    /// What it means.
    pub meaning: &'static str,
    /// What to do about it.
    pub action: &'static str,
}

const OUTCOME_CODES: &[OutcomeCode] = &[
    OutcomeCode {
        code: "4101",
        warning: true,
        meaning: "the search matched nothing",
        action: "treat it as an empty result, not as an error",
    },
    OutcomeCode {
        code: "4110",
        warning: false,
        meaning: "the search has no parameters",
        action: "add the parameters this resource type requires",
    },
    OutcomeCode {
        code: "4111",
        warning: false,
        meaning: "a required search parameter is missing",
        action: "add patient=<id> (and any other required parameter)",
    },
    OutcomeCode {
        code: "4113",
        warning: false,
        meaning: "the paging session expired",
        action: "run the search again from its first page",
    },
    OutcomeCode {
        code: "4122",
        warning: true,
        meaning: "a search parameter is not known to Epic",
        action: "remove or correct it; the results ignore it",
    },
    OutcomeCode {
        code: "4127",
        warning: false,
        meaning: "Patient.Search would return more than 100 results",
        action: "narrow the search (more demographics, or an identifier)",
    },
    OutcomeCode {
        code: "59100",
        warning: true,
        meaning: "a search parameter was ignored",
        action: "expect broader results than asked for, or remove the parameter",
    },
    OutcomeCode {
        code: "59108",
        warning: false,
        meaning: "a required element is missing (Observation needs category or code)",
        action: "add category=<category> or code=<code>",
    },
    OutcomeCode {
        code: "59159",
        warning: false,
        meaning: "a business rule failed (generic)",
        action: "read the diagnostics; a missing patient is the documented example",
    },
];

/// Quirk `epic-search-outcome-codes` (row 42; `docs/vendors/epic.md#search-codes`,
/// Documented): the meaning of a code from Epic's FHIR error table (4101, 4110, 4111, 4113, 4122,
/// 4127, 59100, 59108, 59159), or `None` for a code it does not list.
///
/// ```
/// let code = smart_adapter_epic::explain_outcome_code("4113").expect("known");
/// assert!(code.action.contains("first page"));
/// assert!(smart_adapter_epic::explain_outcome_code("4101").expect("known").warning);
/// assert!(smart_adapter_epic::explain_outcome_code("1").is_none());
/// ```
pub fn explain_outcome_code(code: &str) -> Option<&'static OutcomeCode> {
    OUTCOME_CODES.iter().find(|c| c.code == code.trim())
}

/// The Epic codes in an OperationOutcome (`issue[].details.coding[].code`), explained, in
/// order; at most 16 issues are read.
///
/// ```
/// let outcome = serde_json::json!({"resourceType": "OperationOutcome", "issue": [
///     {"severity": "warning", "code": "processing",
///      "details": {"coding": [{"system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.657369", "code": "4101"}]}}
/// ]});
/// let codes = smart_adapter_epic::outcome_codes(&outcome);
/// assert_eq!(codes.len(), 1);
/// assert_eq!(codes[0].code, "4101");
/// ```
pub fn outcome_codes(outcome: &serde_json::Value) -> Vec<&'static OutcomeCode> {
    outcome
        .get("issue")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .take(16)
        .filter_map(|issue| issue.pointer("/details/coding"))
        .filter_map(serde_json::Value::as_array)
        .flat_map(|codings| codings.iter().take(8))
        .filter_map(|c| c.get("code").and_then(serde_json::Value::as_str))
        .filter_map(explain_outcome_code)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epic_authorize_html_error() {
        let page = "<!DOCTYPE html><html><body><h1>Error</h1><p>Something went wrong trying to \
                    authorize the client. Please try logging in again.</p></body></html>";
        assert!(authorize_error_page(200, Some("text/html"), page).is_some());
        assert!(authorize_error_page(400, Some("TEXT/HTML; charset=utf-8"), page).is_some());
        // Not that page: a redirect, JSON, another HTML page, or the text past the scan bound.
        assert_eq!(authorize_error_page(302, Some("text/html"), page), None);
        assert_eq!(
            authorize_error_page(200, Some("application/json"), page),
            None
        );
        assert_eq!(
            authorize_error_page(200, Some("text/html"), "<p>Log in</p>"),
            None
        );
        let far = format!("{}{page}", " ".repeat(MAX_SCANNED_BYTES));
        assert_eq!(authorize_error_page(200, Some("text/html"), &far), None);
        // A multi-byte character at the bound does not panic.
        let multibyte = "é".repeat(MAX_SCANNED_BYTES);
        assert_eq!(
            authorize_error_page(200, Some("text/html"), &multibyte),
            None
        );
    }

    #[test]
    fn epic_bodiless_403() {
        assert!(
            forbidden_hint(403, None, 0)
                .expect("hint")
                .contains("registration")
        );
        assert!(
            forbidden_hint(403, Some("Bearer error=\"insufficient_scope\""), 120)
                .expect("hint")
                .contains("scope")
        );
        assert!(
            forbidden_hint(403, None, 80)
                .expect("hint")
                .contains("user")
        );
        assert_eq!(forbidden_hint(401, None, 0), None);
    }

    #[test]
    fn epic_search_outcome_codes() {
        for code in [
            "4101", "4110", "4111", "4113", "4122", "4127", "59100", "59108", "59159",
        ] {
            assert!(explain_outcome_code(code).is_some(), "{code}");
        }
        assert!(
            explain_outcome_code("59159")
                .expect("known")
                .meaning
                .contains("generic")
        );
        assert!(!explain_outcome_code("4127").expect("known").warning);
        assert!(explain_outcome_code("59100").expect("known").warning);
        // A hostile outcome with many issues is read only up to the bound.
        let issue = serde_json::json!({"details": {"coding": [{"code": "4101"}]}});
        let outcome = serde_json::json!({"issue": vec![issue; 1000]});
        assert_eq!(outcome_codes(&outcome).len(), 16);
        assert!(outcome_codes(&serde_json::json!({"issue": "x"})).is_empty());
    }
}
