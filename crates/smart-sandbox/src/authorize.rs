//! The authorization endpoint (`GET|POST /auth/authorize`).
//!
//! There is no login page: the simulated user approves or denies according
//! to the client's [`LaunchDefaults::approve`](crate::LaunchDefaults), so
//! flows run headless. Everything else is checked the way a strict EHR
//! checks it, in this order:
//!
//! 1. `client_id` is registered and `redirect_uri` is one of its registered
//!    URIs byte for byte. Otherwise the browser gets a 400 HTML page and the
//!    app gets **nothing** (RFC 6749 §4.1.2.1: never redirect to an
//!    unverified URI).
//! 2. `response_type=code`, `state`, `aud` equal to the FHIR base byte for
//!    byte, PKCE with `S256` (never `plain`), `scope`, and for EHR launch a
//!    live `launch` token issued to this client plus the `launch` scope.
//!    These errors redirect back with `error`, `error_description` and the
//!    exact `state`.
//! 3. Consent, then a single-use code bound to the client, redirect URI,
//!    PKCE challenge, granted scopes, launch context and OpenID Connect
//!    `nonce` (if sent).
//!
//! The [`VendorProfile`](crate::VendorProfile) adjusts this: the endpoint's
//! path, whether a standalone launch may POST (`authorize_post_standalone`),
//! whether `aud` is required, whether wildcard scopes are refused, whether
//! step-2 errors redirect or show the HTML page (`authorize_errors_redirect`),
//! and an `error_uri` on redirected errors.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::config::{ClientRegistration, GRANT_AUTHORIZATION_CODE, IssParameter};
use crate::counters::CounterCells;
use crate::data;
use crate::grants;
use crate::oauth_state::{CodeRecord, GrantContext};
use crate::params::{
    MAX_FORM_BODY, MAX_PARAMS, MAX_QUERY, Params, append_query, html_escape, is_form_content_type,
};
use crate::random::random_token;
use crate::state::Shared;

/// `GET /auth/authorize`.
pub(crate) async fn authorize_get(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    if query.len() > MAX_QUERY {
        CounterCells::bump(&shared.counters.authorize);
        return error_page(
            StatusCode::URI_TOO_LONG,
            &format!(
                "The authorization request's query is {} bytes; the limit is {MAX_QUERY}.",
                query.len()
            ),
            NOT_VERIFIED,
        );
    }
    let params = Params::parse(query.as_bytes());
    authorize(&shared, &params)
}

/// `POST /auth/authorize` with a form body (capability `authorize-post`).
pub(crate) async fn authorize_post(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !is_form_content_type(content_type) {
        CounterCells::bump(&shared.counters.authorize);
        return error_page(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "A POST authorization request must have Content-Type application/x-www-form-urlencoded.",
            NOT_VERIFIED,
        );
    }
    if body.len() > MAX_FORM_BODY {
        CounterCells::bump(&shared.counters.authorize);
        return error_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "The authorization request's body is {} bytes; the limit is {MAX_FORM_BODY}.",
                body.len()
            ),
            NOT_VERIFIED,
        );
    }
    let params = Params::parse(&body);
    if !shared.profile.authorize_post_standalone && params.get("launch").is_none() {
        CounterCells::bump(&shared.counters.authorize);
        tracing::debug!(outcome = "standalone POST refused", "authorize");
        return error_page(
            StatusCode::BAD_REQUEST,
            "This server accepts a POST to the authorization endpoint only for an EHR launch \
             (with a launch parameter); send a standalone authorization request with GET.",
            NOT_REDIRECTED,
        );
    }
    authorize(&shared, &params)
}

/// An error that is reported by redirecting back to the app.
struct RedirectError {
    error: &'static str,
    description: String,
}

fn redirect_err(error: &'static str, description: impl Into<String>) -> RedirectError {
    RedirectError {
        error,
        description: description.into(),
    }
}

fn authorize(shared: &Shared, params: &Params) -> Response {
    CounterCells::bump(&shared.counters.authorize);

    // 1. Client and redirect URI: failures never redirect.
    if params.too_many() {
        return error_page(
            StatusCode::BAD_REQUEST,
            &format!("The authorization request has more than {MAX_PARAMS} parameters."),
            NOT_VERIFIED,
        );
    }
    for name in ["client_id", "redirect_uri"] {
        if params.is_duplicated(name) {
            return error_page(
                StatusCode::BAD_REQUEST,
                &format!("The parameter {name} was sent more than once."),
                NOT_VERIFIED,
            );
        }
    }
    let Some(client_id) = params.get("client_id") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "The client_id parameter is missing.",
            NOT_VERIFIED,
        );
    };
    let Some(client) = shared.client(client_id) else {
        tracing::debug!(client_id, outcome = "unknown client", "authorize");
        return error_page(
            StatusCode::BAD_REQUEST,
            &format!("Unknown client_id \"{client_id}\". Register the app with the sandbox first."),
            NOT_VERIFIED,
        );
    };
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "The redirect_uri parameter is missing; SMART requires it in every authorization request.",
            NOT_VERIFIED,
        );
    };
    if !client.redirect_uris.iter().any(|r| r == redirect_uri) {
        tracing::debug!(
            client_id,
            outcome = "unregistered redirect_uri",
            "authorize"
        );
        return error_page(
            StatusCode::BAD_REQUEST,
            &format!(
                "The redirect_uri \"{redirect_uri}\" is not registered for client \"{client_id}\" \
                 (it must match a registered URI exactly, byte for byte). Registered: {}.",
                client.redirect_uris.join(", ")
            ),
            NOT_VERIFIED,
        );
    }

    // 2. Everything else is reported to the app.
    let state = params
        .get("state")
        .filter(|_| !params.is_duplicated("state"));
    // RFC 9207: every authorization response, success or error, names this
    // authorization server by its configuration `issuer`.
    let wrong_issuer = format!("{}/other-authorization-server", shared.urls.origin);
    let iss = match shared.behavior().authorization_response_iss {
        IssParameter::Omitted => None,
        IssParameter::Wrong => Some(wrong_issuer.as_str()),
        _ => Some(shared.urls.smart_issuer.as_str()),
    };
    match check_and_issue(shared, params, &client, redirect_uri) {
        Ok(code) => {
            tracing::debug!(client_id, outcome = "code issued", "authorize");
            let state = state.unwrap_or_default();
            let mut pairs = vec![("code", code.as_str()), ("state", state)];
            if let Some(iss) = iss {
                pairs.push(("iss", iss));
            }
            redirect(&append_query(redirect_uri, &pairs))
        }
        Err(e) => {
            tracing::debug!(client_id, error = e.error, "authorize rejected");
            if !shared.profile.authorize_errors_redirect && e.error != "access_denied" {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    &format!("{} ({})", e.description, e.error),
                    NOT_REDIRECTED,
                );
            }
            let error_uri = shared
                .profile
                .error_uri_for(&shared.urls, e.error, Some(client_id));
            let mut pairs = vec![
                ("error", e.error),
                ("error_description", e.description.as_str()),
            ];
            if let Some(uri) = &error_uri {
                pairs.push(("error_uri", uri));
            }
            if let Some(state) = state {
                pairs.push(("state", state));
            }
            if let Some(iss) = iss {
                pairs.push(("iss", iss));
            }
            redirect(&append_query(redirect_uri, &pairs))
        }
    }
}

fn check_and_issue(
    shared: &Shared,
    params: &Params,
    client: &ClientRegistration,
    redirect_uri: &str,
) -> Result<String, RedirectError> {
    if let Some(name) = params.first_duplicate() {
        return Err(redirect_err(
            "invalid_request",
            format!("the parameter {name} was sent more than once"),
        ));
    }
    if shared
        .behavior()
        .wrong_persona_clients
        .contains(&client.client_id)
    {
        // Oracle Health: a client registered for the other persona (a patient
        // app at the provider endpoint, or the reverse).
        return Err(redirect_err(
            "unauthorized_client",
            format!(
                "client {:?} is registered for another persona than this authorization endpoint's",
                client.client_id
            ),
        ));
    }
    if !client.allows_grant(GRANT_AUTHORIZATION_CODE) {
        return Err(redirect_err(
            "unauthorized_client",
            format!(
                "client {:?} is not registered for the authorization_code grant (its grant_types are {})",
                client.client_id,
                client.grant_types.join(", ")
            ),
        ));
    }
    match params.get("response_type") {
        None => {
            return Err(redirect_err(
                "invalid_request",
                "response_type is missing; SMART uses response_type=code",
            ));
        }
        Some("code") => {}
        Some(other) => {
            return Err(redirect_err(
                "unsupported_response_type",
                format!("response_type {other:?} is not supported; use response_type=code"),
            ));
        }
    }
    if params.get("state").is_none() {
        return Err(redirect_err(
            "invalid_request",
            "state is missing; send an unguessable state value (at least 122 bits of entropy)",
        ));
    }
    let behavior = shared.behavior();
    match params.get("aud") {
        _ if behavior.ignore_aud => {}
        None if !shared.profile.require_aud => {}
        None => {
            return Err(redirect_err(
                "invalid_request",
                format!(
                    "aud is missing; send the FHIR base URL the app will call: {}",
                    shared.fhir_base
                ),
            ));
        }
        Some(aud) if aud == shared.fhir_base => {}
        Some(aud) => {
            return Err(redirect_err(
                "invalid_request",
                format!(
                    "aud {aud:?} does not match this server's FHIR base URL {:?} (compared byte for byte)",
                    shared.fhir_base
                ),
            ));
        }
    }
    let Some(code_challenge) = params.get("code_challenge") else {
        return Err(redirect_err(
            "invalid_request",
            "code_challenge is missing; PKCE with S256 is required for every SMART app",
        ));
    };
    let pkce_plain = behavior.accept_plain_pkce
        && matches!(params.get("code_challenge_method"), None | Some("plain"));
    match params.get("code_challenge_method") {
        Some("S256") => {}
        _ if pkce_plain => {}
        Some("plain") => {
            return Err(redirect_err(
                "invalid_request",
                "code_challenge_method plain is not allowed; use S256",
            ));
        }
        None => {
            return Err(redirect_err(
                "invalid_request",
                "code_challenge_method is missing; it must be S256",
            ));
        }
        Some(other) => {
            return Err(redirect_err(
                "invalid_request",
                format!("code_challenge_method {other:?} is not supported; use S256"),
            ));
        }
    }
    if pkce_plain {
        // A plain challenge is the verifier itself (RFC 7636 §4.1).
        if !(43..=128).contains(&code_challenge.len())
            || !code_challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
        {
            return Err(redirect_err(
                "invalid_request",
                "code_challenge is not a plain challenge: 43-128 characters of [A-Za-z0-9-._~] (RFC 7636 §4.1)",
            ));
        }
    } else if code_challenge.len() != 43
        || !code_challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(redirect_err(
            "invalid_request",
            "code_challenge is not a S256 challenge; it must be BASE64URL-NOPAD(SHA256(code_verifier)), 43 characters",
        ));
    }
    let Some(requested) = params.get("scope") else {
        return Err(redirect_err(
            "invalid_scope",
            "scope is missing; request the scopes the app needs, e.g. \"launch/patient patient/*.rs\"",
        ));
    };
    if grants::too_many_scopes(requested) {
        return Err(redirect_err(
            "invalid_scope",
            grants::too_many_scopes_message(),
        ));
    }
    if shared.profile.reject_wildcard_scopes
        && let Some(wildcard) = grants::first_wildcard(requested)
    {
        return Err(redirect_err(
            "invalid_scope",
            format!(
                "scope {wildcard:?} uses a wildcard resource type, which this server does not support; \
                 request every resource type explicitly, e.g. patient/Observation.rs"
            ),
        ));
    }
    let kept;
    let requested = if shared.profile.drop_wildcard_scopes {
        kept = grants::without_wildcards(requested);
        kept.as_str()
    } else {
        requested
    };
    let granted = grants::grant(requested, &client.scopes);
    let requested_launch = grants::has_launch(&grants::tokens(requested));

    // EHR launch checks.
    let launch_record = match params.get("launch") {
        Some(launch) => {
            if !grants::has_launch(&grants::grant("launch", &client.scopes)) {
                return Err(redirect_err(
                    "unauthorized_client",
                    format!(
                        "client {:?} is not registered for EHR launch (its scopes do not include `launch`)",
                        client.client_id
                    ),
                ));
            }
            if !requested_launch {
                return Err(redirect_err(
                    "invalid_scope",
                    "a launch parameter was sent without the `launch` scope; add `launch` to scope",
                ));
            }
            let mut store = shared.store();
            let now = Instant::now();
            match store.launches.get(launch) {
                None => {
                    return Err(redirect_err(
                        "invalid_request",
                        "the launch parameter is unknown, expired or already used; start a new EHR launch",
                    ));
                }
                Some(l) if l.expires_at <= now => {
                    store.launches.remove(launch);
                    return Err(redirect_err(
                        "invalid_request",
                        "the launch parameter is unknown, expired or already used; start a new EHR launch",
                    ));
                }
                Some(l) if l.client_id != client.client_id => {
                    return Err(redirect_err(
                        "invalid_request",
                        "the launch parameter was issued for a different client",
                    ));
                }
                Some(_) => store.launches.remove(launch),
            }
        }
        None => {
            if requested_launch {
                return Err(redirect_err(
                    "invalid_request",
                    "the `launch` scope needs the launch parameter from an EHR launch; \
                     for a standalone launch request launch/patient instead",
                ));
            }
            None
        }
    };

    if granted.is_empty() {
        return Err(redirect_err(
            "invalid_scope",
            format!(
                "none of the requested scopes are allowed for client {:?}",
                client.client_id
            ),
        ));
    }
    if !client.context.approve {
        return Err(redirect_err(
            "access_denied",
            "the user denied the authorization request",
        ));
    }

    let nonce = params.get("nonce").map(str::to_owned);
    let state = params.get("state").map(str::to_owned);
    let context = match launch_record {
        Some(l) => GrantContext {
            patient: l.patient,
            encounter: l.encounter,
            user: l.user,
            nonce,
            ehr_launch: true,
            state,
            need_patient_banner: client.context.need_patient_banner,
            smart_style_url: client.context.smart_style_url.clone(),
        },
        None => GrantContext {
            patient: grants::wants_patient(&granted).then(|| {
                client
                    .context
                    .patient
                    .clone()
                    .unwrap_or_else(|| data::DEFAULT_PATIENT_ID.to_owned())
            }),
            encounter: if grants::wants_encounter(&granted) {
                client.context.encounter.clone()
            } else {
                None
            },
            user: client.context.user.clone(),
            nonce,
            ehr_launch: false,
            state,
            need_patient_banner: false,
            smart_style_url: None,
        },
    };

    let code = random_token();
    let lifetime = shared.behavior().code_lifetime;
    let now = Instant::now();
    let mut store = shared.store();
    store.prune(now);
    store.codes.insert(
        code.clone(),
        CodeRecord {
            client_id: client.client_id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            code_challenge: code_challenge.to_owned(),
            pkce_plain,
            scopes: grants::finish(&shared.profile, granted, &client.scopes),
            context,
            expires_at: crate::time::instant_after(now, lifetime),
            used: false,
            grant_id: None,
        },
    );
    Ok(code)
}

fn redirect(location: &str) -> Response {
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, location.to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response()
}

/// Why an error page did not redirect: the client could not be verified.
const NOT_VERIFIED: &str =
    "The app was not redirected because its client_id or redirect_uri could not be verified.";

/// Why an error page did not redirect: the profile shows errors as a page.
const NOT_REDIRECTED: &str = "Something went wrong trying to authorize the client. \
     Please try logging in again. (This server does not redirect authorization errors back to the app.)";

/// The 400 page for a request whose client could not be identified (a
/// vendor client-ID header naming no registered client): never a redirect.
pub(crate) fn unknown_client_page(description: &str) -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        &format!("invalid_client: {description}"),
        NOT_VERIFIED,
    )
}

fn error_page(status: StatusCode, message: &str, why: &str) -> Response {
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Authorization error - smart-sandbox</title></head>\n\
         <body><h1>Authorization error</h1>\n<p>{}</p>\n\
         <p>{}</p>\
         </body></html>\n",
        html_escape(message),
        html_escape(why)
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}
