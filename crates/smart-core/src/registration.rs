//! Dynamic client registration (RFC 7591) and the `jwt-bearer` grant (RFC 7523 §2.1) that
//! dynamically registered clients use.
//!
//! Why: a public app (a native or browser app) cannot keep a client secret, so it cannot hold a
//! refresh token safely either. Servers that advertise a `registration_endpoint` let such an app
//! register a client of its own, bound to a key generated on the device; from then on a JWT
//! signed with that key gets a new access token, and the key never leaves the device. Epic uses
//! this for patient-facing apps: the access token of one standalone launch is a one-time
//! *initial access token* for the registration (`software_id` = the app's Epic client ID, `jwks`
//! = the device's public key), and the registered client then uses the `jwt-bearer` grant with
//! `iss` = `sub` = its new client ID.
//!
//! The module is generic: [`register`] posts any [`RegistrationRequest`] to any registration
//! endpoint, and [`jwt_bearer_token`] requests a token for any registered key. Both treat the
//! server as hostile: bodies larger than [`MAX_RESPONSE_BYTES`] are refused, a `client_id` must
//! be 1 to [`MAX_CLIENT_ID_CHARS`] visible characters, lists keep at most [`MAX_LIST_ENTRIES`]
//! entries, error text is cut to one escaped line, and nothing is sent over plain HTTP except to
//! loopback. The initial access token and the assertion are never logged.
//!
//! [`jwt_bearer_token_with_policy`] takes a vendor's [`VendorPolicy`], so that a bare `400` from
//! a server known to send them (Epic) is repeated once with a new assertion
//! ([`VendorPolicy::retry_bare_token_400`]); [`jwt_bearer_token`] follows the specification.
//!
//! ```no_run
//! # async fn run() -> Result<(), smart_core::registration::RegistrationError> {
//! use smart_core::registration::{RegistrationRequest, jwt_bearer_token, register};
//! use smart_core::secret::AccessToken;
//! use smart_core::smart_jose::{Algorithm, Jwks, PrivateKey};
//!
//! let http = smart_core::http::ReqwestHttpClient::new().expect("http client");
//! let device_key = PrivateKey::generate(Algorithm::ES384).expect("key");
//! // The access token of a standalone launch with the app's Epic client ID.
//! let initial = AccessToken::new("eyJ…");
//! let request = RegistrationRequest::software("my-epic-client-id", Jwks::new(vec![device_key.public_jwk()]));
//! let client = register(
//!     &http,
//!     "https://fhir.example/interconnect-fhir-oauth/oauth2/register",
//!     Some(&initial),
//!     &request,
//!     &http::HeaderMap::new(),
//! )
//! .await?;
//! let token = jwt_bearer_token(
//!     &http,
//!     "https://fhir.example/interconnect-fhir-oauth/oauth2/token",
//!     &client.client_id,
//!     &device_key,
//!     &http::HeaderMap::new(),
//! )
//! .await?;
//! println!("patient {:?}", token.context.patient);
//! # Ok(()) }
//! ```

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde_json::{Map, Value};
use smart_jose::{ClientAssertion, Jwks, PrivateKey};

use crate::error::{OAuthError, TokenError};
use crate::http::{HttpClient, HttpError, InsecureUrl, check_transport_security, redact_url};
use crate::protocol_strings::ClientId;
use crate::quirks::VendorPolicy;
use crate::secret::AccessToken;
use crate::server_text::excerpt;
use crate::token::{TokenResponse, now_unix, parse_token_response};

/// The `grant_type` of RFC 7523 §2.1: a signed JWT is the grant.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The largest registration or token response read (64 KiB); a client description is a few
/// hundred bytes, so anything larger is a misbehaving server.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The longest `client_id` accepted from a server.
pub const MAX_CLIENT_ID_CHARS: usize = 256;

/// The most entries kept of each list in a registration response (`grant_types`,
/// `redirect_uris`); the rest are dropped.
pub const MAX_LIST_ENTRIES: usize = 32;

/// The longest server-provided text (an error description) kept, in characters.
const MAX_TEXT_CHARS: usize = 300;

/// The client metadata sent to a registration endpoint (RFC 7591 §2). Empty fields are left
/// out of the JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RegistrationRequest {
    /// The software the client is an instance of (Epic: the app's Epic client ID).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    /// The client's public keys, registered by value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Jwks>,
    /// The URL of the client's public keys, registered by reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Redirect URIs, for clients that will run authorization-code launches.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<String>,
    /// Grant types the client will use.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub grant_types: Vec<String>,
    /// How the client authenticates at the token endpoint (`private_key_jwt`, `none`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    /// A human-readable name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Space-separated scopes the client will ask for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl RegistrationRequest {
    /// The body Epic documents: `software_id` and `jwks`, nothing else.
    ///
    /// ```
    /// use smart_core::registration::RegistrationRequest;
    /// use smart_core::smart_jose::{Algorithm, Jwks, PrivateKey};
    ///
    /// let key = PrivateKey::generate(Algorithm::ES384).expect("key");
    /// let body = serde_json::to_value(RegistrationRequest::software("app-id", Jwks::new(vec![key.public_jwk()])))
    ///     .expect("json");
    /// assert_eq!(body["software_id"], "app-id");
    /// assert!(body["jwks"]["keys"][0].get("d").is_none(), "public key only");
    /// assert!(body.get("redirect_uris").is_none());
    /// ```
    pub fn software(software_id: impl Into<String>, jwks: Jwks) -> Self {
        RegistrationRequest {
            software_id: Some(software_id.into()),
            jwks: Some(jwks),
            ..RegistrationRequest::default()
        }
    }
}

/// A registered client, as the server described it (RFC 7591 §3.2.1), read defensively.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegisteredClient {
    /// The new client's ID (1 to [`MAX_CLIENT_ID_CHARS`] visible characters).
    pub client_id: ClientId,
    /// When it was issued (Unix time), if the server said.
    pub client_id_issued_at: Option<u64>,
    /// How it must authenticate (`none` for Epic's dynamic clients), if the server said.
    pub token_endpoint_auth_method: Option<String>,
    /// The grant types it may use (at most [`MAX_LIST_ENTRIES`]).
    pub grant_types: Vec<String>,
    /// The software it belongs to, if echoed.
    pub software_id: Option<String>,
    /// Its redirect URIs (at most [`MAX_LIST_ENTRIES`]).
    pub redirect_uris: Vec<String>,
}

impl RegisteredClient {
    /// Whether the server says the client may use the `jwt-bearer` grant (or said nothing).
    pub fn uses_jwt_bearer(&self) -> bool {
        self.grant_types.is_empty() || self.grant_types.iter().any(|g| g == JWT_BEARER_GRANT)
    }
}

/// Why a registration or a `jwt-bearer` token request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrationError {
    /// The endpoint is not `https` (or `http` on loopback).
    #[error(transparent)]
    Insecure(#[from] InsecureUrl),
    /// The endpoint is not a URL, or a request could not be built.
    #[error("{0}")]
    Request(String),
    /// No response.
    #[error("registration request failed: {0}")]
    Http(#[from] HttpError),
    /// The server refused with an RFC 7591 (or RFC 6750) error.
    #[error("the registration endpoint refused the request (HTTP {status}): {code}{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Refused {
        /// HTTP status.
        status: u16,
        /// The `error` code (`invalid_client_metadata`, `invalid_token`, …), escaped.
        code: String,
        /// The `error_description`, one escaped line of at most 300 characters.
        description: Option<String>,
    },
    /// The server answered with something that is not a usable registration.
    #[error("the registration endpoint sent an invalid response (HTTP {status}): {detail}")]
    InvalidResponse {
        /// HTTP status.
        status: u16,
        /// What was wrong (never the body: it may hold keys or tokens).
        detail: String,
    },
    /// The `jwt-bearer` token request failed.
    #[error(transparent)]
    Token(#[from] TokenError),
}

impl RegistrationError {
    /// What the failure means for the app.
    pub fn kind(&self) -> crate::error_kind::ErrorKind {
        use crate::error_kind::ErrorKind;
        match self {
            RegistrationError::Insecure(_) | RegistrationError::Request(_) => {
                ErrorKind::Misconfigured
            }
            RegistrationError::Http(e) => e.kind(),
            RegistrationError::Refused { status, .. } if *status >= 500 => ErrorKind::Temporary,
            RegistrationError::Refused { status: 401, .. } => ErrorKind::SessionEnded,
            RegistrationError::Refused { .. } => ErrorKind::Misconfigured,
            RegistrationError::InvalidResponse { .. } => ErrorKind::ServerBroken,
            RegistrationError::Token(e) => e.kind(),
        }
    }
}

/// Registers a client at `endpoint` (RFC 7591 §3.1), authorized by `initial_access_token` when
/// given, with `extra_headers` added (e.g. Epic's `Epic-Client-ID`).
///
/// # Errors
/// [`RegistrationError`]: an insecure endpoint, no response, a refusal (with the server's error
/// code and an escaped, shortened description) or a response without a usable `client_id`.
pub async fn register(
    http: &dyn HttpClient,
    endpoint: &str,
    initial_access_token: Option<&AccessToken>,
    request: &RegistrationRequest,
    extra_headers: &HeaderMap,
) -> Result<RegisteredClient, RegistrationError> {
    let url = url::Url::parse(endpoint).map_err(|e| {
        RegistrationError::Request(format!(
            "the registration endpoint {:?} is not a URL: {e}",
            excerpt(endpoint, 200)
        ))
    })?;
    check_transport_security(&url)?;
    let body = serde_json::to_vec(request)
        .map_err(|e| RegistrationError::Request(format!("could not encode the request: {e}")))?;
    let mut http_request = http::Request::post(endpoint)
        .body(body)
        .map_err(|e| RegistrationError::Request(format!("could not build the request: {e}")))?;
    let headers = http_request.headers_mut();
    headers.extend(extra_headers.clone());
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    if let Some(token) = initial_access_token {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
            .map_err(|_| {
                RegistrationError::Request(
                    "the initial access token cannot be sent in a header".into(),
                )
            })?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    tracing::debug!(endpoint = %redact_url(endpoint), "dynamic client registration");
    let response = http.execute(http_request).await?;
    let status = response.status();
    if response.body().len() > MAX_RESPONSE_BYTES {
        return Err(RegistrationError::InvalidResponse {
            status: status.as_u16(),
            detail: format!(
                "the response is {} bytes; the limit is {MAX_RESPONSE_BYTES}",
                response.body().len()
            ),
        });
    }
    let json = json_object(response.body());
    if !status.is_success() {
        return Err(refusal(status, json.as_ref()));
    }
    let json = json.ok_or_else(|| RegistrationError::InvalidResponse {
        status: status.as_u16(),
        detail: "the body is not a JSON object".into(),
    })?;
    parse_registered_client(&json).map_err(|detail| RegistrationError::InvalidResponse {
        status: status.as_u16(),
        detail,
    })
}

/// Requests an access token with the `jwt-bearer` grant (RFC 7523 §2.1) for the registered
/// `client_id`: the assertion is signed with `key`, `iss` = `sub` = `client_id`, `aud` =
/// `token_endpoint`, valid for 4 minutes, with a fresh `jti`; `client_id` is sent in the form as
/// Epic asks. The response is parsed like any token response (launch context included).
///
/// This follows the specification ([`VendorPolicy::SPEC`]): a `400` is final. Use
/// [`jwt_bearer_token_with_policy`] with the vendor's policy (e.g. Epic's) to have a bare `400`
/// repeated once.
///
/// # Errors
/// [`RegistrationError::Token`] for a refused or invalid token response,
/// [`RegistrationError::Insecure`] / [`RegistrationError::Request`] for a bad endpoint.
pub async fn jwt_bearer_token(
    http: &dyn HttpClient,
    token_endpoint: &str,
    client_id: &str,
    key: &PrivateKey,
    extra_headers: &HeaderMap,
) -> Result<TokenResponse, RegistrationError> {
    jwt_bearer_token_with_policy(
        http,
        token_endpoint,
        client_id,
        key,
        extra_headers,
        &VendorPolicy::SPEC,
    )
    .await
}

/// [`jwt_bearer_token`] under a vendor's `policy`: with
/// [`VendorPolicy::retry_bare_token_400`], a bare `400`
/// ([`VendorPolicy::is_bare_token_400`]) is answered by one more request, after
/// [`VendorPolicy::BARE_TOKEN_400_RETRY_DELAY`], with a newly signed assertion (new `jti`,
/// since the server may have recorded the first). The grant spends nothing on the server, so a
/// repeat is safe; a second bare `400` is returned as [`TokenError::InvalidResponse`].
///
/// ```no_run
/// # async fn run(http: &dyn smart_core::http::HttpClient, key: &smart_core::smart_jose::PrivateKey)
/// # -> Result<(), smart_core::registration::RegistrationError> {
/// use smart_core::quirks::VendorPolicy;
/// use smart_core::registration::jwt_bearer_token_with_policy;
///
/// // An adapter's policy (`VendorQuirks::policy`), or a policy of your own:
/// let policy = VendorPolicy::SPEC.with_retry_bare_token_400(true);
/// let token = jwt_bearer_token_with_policy(
///     http,
///     "https://fhir.example/oauth2/token",
///     "registered-client-id",
///     key,
///     &http::HeaderMap::new(),
///     &policy,
/// )
/// .await?;
/// # let _ = token; Ok(()) }
/// ```
///
/// # Errors
/// As [`jwt_bearer_token`].
pub async fn jwt_bearer_token_with_policy(
    http: &dyn HttpClient,
    token_endpoint: &str,
    client_id: &str,
    key: &PrivateKey,
    extra_headers: &HeaderMap,
    policy: &VendorPolicy,
) -> Result<TokenResponse, RegistrationError> {
    let url = url::Url::parse(token_endpoint).map_err(|e| {
        RegistrationError::Request(format!(
            "the token endpoint {:?} is not a URL: {e}",
            excerpt(token_endpoint, 200)
        ))
    })?;
    check_transport_security(&url)?;
    let (mut response, mut now) =
        send_jwt_bearer(http, token_endpoint, client_id, key, extra_headers).await?;
    if policy.retry_bare_token_400
        && VendorPolicy::is_bare_token_400(response.status().as_u16(), response.body())
    {
        let delay = VendorPolicy::BARE_TOKEN_400_RETRY_DELAY;
        tracing::info!(
            endpoint = %redact_url(token_endpoint),
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            "the token endpoint answered a bare 400 to a jwt-bearer request; sending it once more with a new assertion"
        );
        tokio::time::sleep(delay).await;
        (response, now) =
            send_jwt_bearer(http, token_endpoint, client_id, key, extra_headers).await?;
    }
    let status = response.status();
    if response.body().len() > MAX_RESPONSE_BYTES {
        return Err(TokenError::InvalidResponse {
            status: status.as_u16(),
            detail: format!(
                "the response is {} bytes; the limit is {MAX_RESPONSE_BYTES}",
                response.body().len()
            ),
        }
        .into());
    }
    let json = json_object(response.body());
    if !status.is_success() {
        let error = json
            .as_ref()
            .and_then(|m| m.get("error"))
            .and_then(Value::as_str)
            .map(|code| OAuthError {
                code: crate::quirks::spec::error_code(&excerpt(code, 64)),
                description: text(json.as_ref(), "error_description"),
                uri: text(json.as_ref(), "error_uri"),
            });
        return Err(match error {
            Some(error) => TokenError::OAuth {
                status: status.as_u16(),
                error,
            },
            None => TokenError::InvalidResponse {
                status: status.as_u16(),
                detail: "an error without an OAuth error body".into(),
            },
        }
        .into());
    }
    let body = json.ok_or(TokenError::InvalidResponse {
        status: status.as_u16(),
        detail: "the body is not a JSON object".into(),
    })?;
    parse_token_response(body, now).map_err(|e| {
        RegistrationError::Token(TokenError::InvalidResponse {
            status: status.as_u16(),
            detail: e.to_string(),
        })
    })
}

/// Signs a new assertion (new `jti`) and posts one `jwt-bearer` request; returns the answer and
/// the time the assertion was issued at.
async fn send_jwt_bearer(
    http: &dyn HttpClient,
    token_endpoint: &str,
    client_id: &str,
    key: &PrivateKey,
    extra_headers: &HeaderMap,
) -> Result<(crate::http::HttpResponse, u64), RegistrationError> {
    let now = now_unix();
    let assertion =
        smart_jose::client_assertion(key, &ClientAssertion::new(client_id, token_endpoint), now)
            .map_err(|e| TokenError::ClientAuthentication(e.to_string()))?;
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", JWT_BEARER_GRANT)
        .append_pair("assertion", &assertion)
        .append_pair("client_id", client_id)
        .finish();
    let mut request = http::Request::post(token_endpoint)
        .body(form.into_bytes())
        .map_err(|e| RegistrationError::Request(format!("could not build the request: {e}")))?;
    let headers = request.headers_mut();
    headers.extend(extra_headers.clone());
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    tracing::debug!(endpoint = %redact_url(token_endpoint), "jwt-bearer token request");
    let response = http.execute(request).await.map_err(TokenError::from)?;
    Ok((response, now))
}

fn json_object(body: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// A server-provided string field as one escaped line of at most [`MAX_TEXT_CHARS`].
fn text(json: Option<&Map<String, Value>>, key: &str) -> Option<String> {
    json.and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .map(|s| excerpt(s, MAX_TEXT_CHARS))
        .filter(|s| !s.is_empty())
}

fn refusal(status: StatusCode, json: Option<&Map<String, Value>>) -> RegistrationError {
    match text(json, "error") {
        Some(code) => RegistrationError::Refused {
            status: status.as_u16(),
            code: excerpt(&code, 64),
            description: text(json, "error_description"),
        },
        None => RegistrationError::InvalidResponse {
            status: status.as_u16(),
            detail: "an error without an RFC 7591 error body".into(),
        },
    }
}

/// Reads a registration response; the error says which field is unusable.
fn parse_registered_client(json: &Map<String, Value>) -> Result<RegisteredClient, String> {
    let client_id = match json.get("client_id") {
        Some(Value::String(id)) => id,
        Some(_) => return Err("client_id is not a string".into()),
        None => return Err("client_id is missing".into()),
    };
    if client_id.is_empty()
        || client_id.chars().count() > MAX_CLIENT_ID_CHARS
        || client_id
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(format!(
            "client_id is not 1 to {MAX_CLIENT_ID_CHARS} visible characters"
        ));
    }
    let list = |key: &str| -> Vec<String> {
        json.get(key)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .take(MAX_LIST_ENTRIES)
                    .map(|s| excerpt(s, 2048))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(RegisteredClient {
        client_id: ClientId::new(client_id.as_str()),
        client_id_issued_at: json.get("client_id_issued_at").and_then(Value::as_u64),
        token_endpoint_auth_method: text(Some(json), "token_endpoint_auth_method"),
        grant_types: list("grant_types"),
        software_id: text(Some(json), "software_id"),
        redirect_uris: list("redirect_uris"),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("an object literal"),
        }
    }

    #[test]
    fn reads_epics_documented_answer() {
        let client = parse_registered_client(&obj(json!({
            "redirect_uris": ["https://app.example/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": [JWT_BEARER_GRANT],
            "software_id": "d45049c3-3441-40ef-ab4d-b9cd86a17225",
            "client_id": "G65DA2AF4-1C91-11EC-9280-0050568B7514",
            "client_id_issued_at": 1632417134,
            "jwks": {"keys": [{"kty": "RSA", "n": "x", "e": "AQAB"}]}
        })))
        .expect("valid");
        assert_eq!(client.client_id, "G65DA2AF4-1C91-11EC-9280-0050568B7514");
        assert_eq!(client.client_id_issued_at, Some(1632417134));
        assert_eq!(client.token_endpoint_auth_method.as_deref(), Some("none"));
        assert!(client.uses_jwt_bearer());
    }

    #[test]
    fn refuses_unusable_client_ids() {
        for bad in [
            json!({}),
            json!({"client_id": 7}),
            json!({"client_id": ""}),
            json!({"client_id": "a b"}),
            json!({"client_id": "a\u{1b}[31m"}),
            json!({"client_id": "x".repeat(MAX_CLIENT_ID_CHARS + 1)}),
        ] {
            assert!(parse_registered_client(&obj(bad.clone())).is_err(), "{bad}");
        }
        let longest = "x".repeat(MAX_CLIENT_ID_CHARS);
        assert!(parse_registered_client(&obj(json!({ "client_id": longest }))).is_ok());
    }

    #[test]
    fn lists_are_capped() {
        let many: Vec<String> = (0..MAX_LIST_ENTRIES * 4).map(|i| format!("g{i}")).collect();
        let client = parse_registered_client(&obj(json!({
            "client_id": "c", "grant_types": many, "redirect_uris": many
        })))
        .expect("valid");
        assert_eq!(client.grant_types.len(), MAX_LIST_ENTRIES);
        assert_eq!(client.redirect_uris.len(), MAX_LIST_ENTRIES);
        assert!(
            !client.uses_jwt_bearer(),
            "listed grants without jwt-bearer"
        );
    }

    #[test]
    fn refusals_are_escaped_and_shortened() {
        let e = refusal(
            StatusCode::BAD_REQUEST,
            Some(&obj(json!({
                "error": "invalid_client_metadata\u{1b}[2J",
                "error_description": format!("bad\u{7}{}", "y".repeat(5000))
            }))),
        );
        let shown = e.to_string();
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
            "{shown}"
        );
        assert!(shown.chars().count() < 500, "{}", shown.len());
        assert!(matches!(e, RegistrationError::Refused { status: 400, .. }));
        assert!(matches!(
            refusal(StatusCode::BAD_GATEWAY, None),
            RegistrationError::InvalidResponse { status: 502, .. }
        ));
    }
}
