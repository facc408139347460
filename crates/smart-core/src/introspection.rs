//! Token introspection (RFC 7662 with SMART's fields).
//!
//! Resource servers and apps ask the authorization server whether a token is active and what it
//! carries. SMART lets a protected introspection endpoint accept either client authentication (the
//! registration's, including `private_key_jwt`) or a bearer token with suitable scope; both are
//! offered through [`IntrospectionAuth`].

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::{Map, Value};
use smart_scopes::Scopes;

use crate::client::{LaunchError, SmartClient};
use crate::error::{
    ConfigError, DiscoveryError, MAX_DESCRIPTION_CHARS, OAuthError, TokenError,
    hint_for_server_text,
};
use crate::http::{HttpError, check_transport_security, check_transport_security_for, redact_url};
use crate::identity::FhirUser;
use crate::secret::AccessToken;
use crate::server_text::{excerpt, html_to_text, looks_like_html};
use crate::token::{LaunchContext, UnixTime, launch_context_from};

/// How the introspection request authenticates.
#[derive(Debug, Clone)]
pub enum IntrospectionAuth {
    /// With the client authentication of the registration that covers the FHIR base.
    Client,
    /// With `Authorization: Bearer` (a SMART app or backend token the server accepts).
    Bearer(AccessToken),
}

/// What the server said about a token.
#[derive(Debug, Clone, PartialEq)]
pub struct Introspection {
    /// Whether the token is active. When false, every other field is empty.
    pub active: bool,
    /// Granted scopes.
    pub scope: Option<Scopes>,
    /// The client the token was issued to.
    pub client_id: Option<String>,
    /// Expiry.
    pub exp: Option<UnixTime>,
    /// Issue time.
    pub iat: Option<UnixTime>,
    /// `sub` of the `id_token` issued with it.
    pub sub: Option<String>,
    /// `iss` of the `id_token` issued with it.
    pub iss: Option<String>,
    /// `fhirUser` of the `id_token` issued with it, normalised.
    pub fhir_user: Option<FhirUser>,
    /// The launch context of the original token response.
    pub context: LaunchContext,
}

/// Why introspection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IntrospectionError {
    /// No registration, or a public one asked to authenticate.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Discovery failed.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The server advertises no introspection endpoint.
    #[error("{0} advertises no introspection_endpoint")]
    NotSupported(String),
    /// Transport failure.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The request could not be authenticated or built.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The server refused the request.
    #[error("introspection refused (HTTP {status}){}", refusal_reason(error.as_ref(), detail.as_deref()))]
    Refused {
        /// HTTP status.
        status: u16,
        /// The OAuth error, when one was sent.
        error: Option<OAuthError>,
        /// Without an OAuth error: the text of the server's answer (an HTML page's visible text,
        /// or plain text), control characters escaped and cut short.
        detail: Option<String>,
    },
    /// The response was not an introspection response.
    #[error("invalid introspection response: {0}")]
    InvalidResponse(String),
    /// A check shared with launches refused the registration (e.g. the server does not
    /// advertise its client-authentication method); the launch error is kept whole.
    #[error(transparent)]
    Launch(Box<LaunchError>),
}

impl IntrospectionError {
    /// What the failure means for the app: a refusal with 401 or 403 means the resource
    /// server's credentials are wrong; 429 and 5xx are temporary; the rest keep their layer's
    /// kind.
    pub fn kind(&self) -> crate::error_kind::ErrorKind {
        use crate::error_kind::ErrorKind;
        match self {
            IntrospectionError::Config(e) => e.kind(),
            IntrospectionError::Discovery(e) => e.kind(),
            IntrospectionError::NotSupported(_) => ErrorKind::Misconfigured,
            IntrospectionError::Http(e) => e.kind(),
            IntrospectionError::Token(e) => e.kind(),
            IntrospectionError::Refused {
                status: 401 | 403, ..
            } => ErrorKind::Misconfigured,
            IntrospectionError::Refused { status, .. } => {
                ErrorKind::from_status(*status, ErrorKind::ServerBroken)
            }
            IntrospectionError::InvalidResponse(_) => ErrorKind::ServerBroken,
            IntrospectionError::Launch(e) => e.kind(),
        }
    }

    /// Whether retrying later may succeed.
    pub fn is_temporary(&self) -> bool {
        self.kind().is_temporary()
    }
}

/// The server's reason for refusing introspection: its OAuth error (code, description and a hint
/// recognised from them), or the text it sent instead.
fn refusal_reason(error: Option<&OAuthError>, detail: Option<&str>) -> String {
    match (error, detail) {
        (Some(e), _) => format!(": {e}"),
        (None, Some(text)) if !text.is_empty() => {
            let hint = hint_for_server_text(None, text)
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            format!(": {text}{hint}")
        }
        _ => String::new(),
    }
}

impl From<LaunchError> for IntrospectionError {
    fn from(e: LaunchError) -> Self {
        match e {
            LaunchError::Discovery(d) => IntrospectionError::Discovery(d),
            LaunchError::Token(t) => IntrospectionError::Token(t),
            LaunchError::Config(c) => IntrospectionError::Config(c),
            other => IntrospectionError::Launch(Box::new(other)),
        }
    }
}

impl SmartClient {
    /// Asks the authorization server of `fhir_base` about `token`.
    #[tracing::instrument(name = "smart.introspect", skip_all, fields(fhir_base = %fhir_base))]
    pub async fn introspect(
        &self,
        fhir_base: &str,
        token: &AccessToken,
        auth: IntrospectionAuth,
    ) -> Result<Introspection, IntrospectionError> {
        let (name, reg) = self
            .registration_for(fhir_base)
            .ok_or_else(|| ConfigError::Invalid {
                field: "clients".into(),
                message: format!("no registration covers {fhir_base}"),
            })?;
        let (name, reg) = (name.to_owned(), reg.clone());
        let choice = self.decide_adapter(&name, &reg, fhir_base).await?;
        let quirks = self.adapter_of(&name, &choice)?;
        let ctx = crate::quirks::HookContext::new(fhir_base).with_registration(&name, &reg);
        let discovered = self.discover_with(&*quirks, &ctx).await?;
        let endpoint = discovered
            .configuration
            .introspection_endpoint
            .clone()
            .ok_or_else(|| IntrospectionError::NotSupported(fhir_base.to_owned()))?;
        let url = url::Url::parse(&endpoint)
            .map_err(|e| IntrospectionError::InvalidResponse(format!("bad endpoint: {e}")))?;
        match url::Url::parse(fhir_base) {
            Ok(base) => check_transport_security_for(&url, &base),
            Err(_) => check_transport_security(&url),
        }
        .map_err(TokenError::from)?;

        let mut form = vec![
            ("token".to_owned(), token.expose_secret().to_owned()),
            ("token_type_hint".to_owned(), "access_token".to_owned()),
        ];
        let mut headers = http::HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        match &auth {
            IntrospectionAuth::Client => {
                // SMART's asymmetric profile fixes an assertion's `aud` to the token URL, whichever
                // endpoint it is presented to.
                let audience = &discovered.configuration.token_endpoint;
                crate::client_auth::apply(&reg, &*quirks, audience, &mut form, &mut headers)?;
            }
            IntrospectionAuth::Bearer(bearer) => {
                let mut value =
                    HeaderValue::from_str(&format!("Bearer {}", bearer.expose_secret())).map_err(
                        |_| IntrospectionError::InvalidResponse("token is not header-safe".into()),
                    )?;
                value.set_sensitive(true);
                headers.insert(AUTHORIZATION, value);
            }
        }
        let body = serde_urlencoded::to_string(&form)
            .map_err(|e| IntrospectionError::InvalidResponse(e.to_string()))?;
        let mut request = http::Request::post(&endpoint)
            .body(body.into_bytes())
            .map_err(|e| IntrospectionError::InvalidResponse(e.to_string()))?;
        *request.headers_mut() = headers;
        let response = self.http().execute(request).await?;
        let status = response.status().as_u16();
        let json: Option<Map<String, Value>> = serde_json::from_slice(response.body()).ok();
        if !response.status().is_success() {
            let error = json.as_ref().and_then(|m| {
                let code = m.get("error")?.as_str()?;
                Some(OAuthError {
                    code: crate::quirks::spec::error_code(code),
                    description: m
                        .get("error_description")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    uri: m
                        .get("error_uri")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                })
            });
            let detail = if error.is_none() {
                let raw = String::from_utf8_lossy(response.body());
                let content_type = response
                    .headers()
                    .get(CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok());
                Some(if looks_like_html(content_type, &raw) {
                    html_to_text(&raw, MAX_DESCRIPTION_CHARS)
                } else {
                    excerpt(&raw, MAX_DESCRIPTION_CHARS)
                })
            } else {
                None
            };
            return Err(IntrospectionError::Refused {
                status,
                error,
                detail,
            });
        }
        let body = json.ok_or_else(|| {
            IntrospectionError::InvalidResponse(format!(
                "not a JSON object (from {})",
                redact_url(&endpoint)
            ))
        })?;
        parse_introspection(body, fhir_base)
    }
}

/// Parses an introspection response object.
pub fn parse_introspection(
    mut body: Map<String, Value>,
    fhir_base: &str,
) -> Result<Introspection, IntrospectionError> {
    let active = match body.remove("active") {
        Some(Value::Bool(b)) => b,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
        _ => {
            return Err(IntrospectionError::InvalidResponse(
                "`active` is missing or not a boolean".into(),
            ));
        }
    };
    if !active {
        return Ok(Introspection {
            active,
            scope: None,
            client_id: None,
            exp: None,
            iat: None,
            sub: None,
            iss: None,
            fhir_user: None,
            context: LaunchContext::default(),
        });
    }
    let text = |body: &mut Map<String, Value>, k: &str| match body.remove(k) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let number = |body: &mut Map<String, Value>, k: &str| body.remove(k).and_then(|v| v.as_u64());
    let scope = text(&mut body, "scope").map(|s| Scopes::parse(&s));
    let client_id = text(&mut body, "client_id");
    let exp = number(&mut body, "exp");
    let iat = number(&mut body, "iat");
    let sub = text(&mut body, "sub");
    let iss = text(&mut body, "iss");
    let fhir_user = text(&mut body, "fhirUser").and_then(|u| FhirUser::parse(&u, fhir_base));
    body.remove("token_type");
    // The rest is launch context, read exactly as in a token response.
    let context = launch_context_from(body);
    Ok(Introspection {
        active,
        scope,
        client_id,
        exp,
        iat,
        sub,
        iss,
        fhir_user,
        context,
    })
}
