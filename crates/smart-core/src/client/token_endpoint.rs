//! Sending a request to the token endpoint with the registration's client authentication, and
//! reading its answer.
//!
//! Under [`VendorPolicy::retry_bare_token_400`](crate::quirks::VendorPolicy::retry_bare_token_400)
//! a request of a grant that is safe to repeat ([`repeat_is_safe`]) and was answered by a bare
//! `400` is sent once more, because some servers (Epic) now and then answer a good request that
//! way and answer the same request correctly a moment later. The request is rebuilt, so a
//! `private_key_jwt` client signs a new assertion with a new `jti` (the server may have recorded
//! the first one, and would refuse it as a replay).

use http::header::{ACCEPT, CONTENT_TYPE, HeaderValue, LOCATION};
use serde_json::{Map, Value};
use tracing::Instrument as _;

use crate::config::ClientRegistration;
use crate::error::{OAuthError, TokenError};
use crate::http::{check_transport_security, redact_url};
use crate::quirks::{HookContext, TokenGrant, TokenRequestParts, VendorQuirks};
use crate::token::{TokenResponse, now_unix, parse_token_response};

use super::SmartClient;

impl SmartClient {
    /// Sends a token-endpoint request with the registration's client authentication and parses
    /// the response. `ctx` carries the grant ([`HookContext::grant`]).
    pub(crate) async fn token_call(
        &self,
        reg: &ClientRegistration,
        quirks: &dyn VendorQuirks,
        ctx: &HookContext<'_>,
        token_endpoint: &str,
        form: Vec<(String, String)>,
    ) -> Result<TokenResponse, TokenError> {
        let retry = quirks.policy().retry_bare_token_400 && ctx.grant().is_some_and(repeat_is_safe);
        // The form as the caller built it (no client authentication yet), kept for the repeat.
        let again = retry.then(|| form.clone());
        let mut response = self
            .send_token_request(reg, quirks, ctx, token_endpoint, form, None)
            .await?;
        if let Some(form) = again
            && crate::quirks::VendorPolicy::is_bare_token_400(
                response.status().as_u16(),
                response.body(),
            )
        {
            let delay = crate::quirks::VendorPolicy::BARE_TOKEN_400_RETRY_DELAY;
            tracing::info!(
                grant = ?ctx.grant(),
                endpoint = %redact_url(token_endpoint),
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "the token endpoint answered a bare 400; sending the request once more with new client authentication"
            );
            tokio::time::sleep(delay).await;
            response = self
                .send_token_request(reg, quirks, ctx, token_endpoint, form, None)
                .await?;
        }
        interpret_token_response(quirks, ctx, response, now_unix())
    }

    /// Sends a token-endpoint request with the registration's client authentication.
    pub(super) async fn send_token_request(
        &self,
        reg: &ClientRegistration,
        quirks: &dyn VendorQuirks,
        ctx: &HookContext<'_>,
        token_endpoint: &str,
        mut form: Vec<(String, String)>,
        refresh: Option<crate::quirks::RefreshFacts>,
    ) -> Result<crate::http::HttpResponse, TokenError> {
        let url = url::Url::parse(token_endpoint).map_err(|e| TokenError::InvalidResponse {
            status: 0,
            detail: format!("token endpoint is not a URL: {e}"),
        })?;
        check_transport_security(&url)?;
        let mut headers = http::HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        crate::client_auth::apply(reg, quirks, token_endpoint, &mut form, &mut headers)?;
        let mut parts = TokenRequestParts {
            form,
            headers,
            refresh,
        };
        quirks.token_request(ctx, &mut parts);
        let body = {
            let mut s = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &parts.form {
                s.append_pair(k, v);
            }
            s.finish()
        };
        let mut request = http::Request::post(token_endpoint)
            .body(body.into_bytes())
            .map_err(|e| TokenError::InvalidResponse {
                status: 0,
                detail: format!("could not build the token request: {e}"),
            })?;
        *request.headers_mut() = parts.headers;

        let span = tracing::debug_span!("smart.token_request", grant = ?ctx.grant(), endpoint = %redact_url(token_endpoint), status = tracing::field::Empty);
        let response = self
            .inner
            .http
            .execute(request)
            .instrument(span.clone())
            .await?;
        span.record("status", response.status().as_u16());
        Ok(response)
    }
}

/// Whether a token request of `grant` may be sent twice: only when the first request, whatever
/// the server did with it, spent nothing the second one needs.
fn repeat_is_safe(grant: TokenGrant) -> bool {
    match grant {
        // A new token from the same client credentials; the first request, if the server acted
        // on it, only issued a token nobody received.
        TokenGrant::ClientCredentials => true,
        // The code is single-use: the server may have redeemed it before failing, and a repeat
        // would then be refused (or, under RFC 6749 §4.1.2, revoke the tokens already issued).
        TokenGrant::AuthorizationCode => false,
        // The server may have rotated the refresh token before failing: a repeat with the old
        // one may be refused, or taken as token theft and revoke the grant. The refresh path
        // has its own recovery (it re-reads the store) instead.
        TokenGrant::RefreshToken => false,
    }
}

pub(super) fn interpret_token_response(
    quirks: &dyn VendorQuirks,
    ctx: &HookContext<'_>,
    response: crate::http::HttpResponse,
    now: u64,
) -> Result<TokenResponse, TokenError> {
    let status = response.status();
    if status.is_redirection() {
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(redact_url)
            .unwrap_or_default();
        return Err(TokenError::InvalidResponse {
            status: status.as_u16(),
            detail: format!(
                "the token endpoint redirected to `{location}`; redirects are never followed with credentials"
            ),
        });
    }
    let json: Option<Map<String, Value>> = serde_json::from_slice::<Value>(response.body())
        .ok()
        .and_then(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        });
    if status.is_success() {
        let mut body = json.ok_or_else(|| TokenError::InvalidResponse {
            status: status.as_u16(),
            detail: "the body is not a JSON object".into(),
        })?;
        quirks.normalize_token_response(ctx, &mut body);
        return parse_token_response(body, now).map_err(|e| TokenError::InvalidResponse {
            status: status.as_u16(),
            detail: e.to_string(),
        });
    }
    match json
        .as_ref()
        .and_then(|m| m.get("error"))
        .and_then(Value::as_str)
    {
        Some(code) => {
            let text = |k: &str| {
                json.as_ref()
                    .and_then(|m| m.get(k))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            let error = OAuthError {
                code: crate::quirks::spec::error_code(code),
                description: text("error_description"),
                uri: text("error_uri"),
            };
            Err(TokenError::OAuth {
                status: status.as_u16(),
                error: quirks.classify_oauth_error(ctx, Some(status.as_u16()), error),
            })
        }
        None => {
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none");
            Err(TokenError::InvalidResponse {
                status: status.as_u16(),
                detail: format!(
                    "an error without an OAuth error body (Content-Type {content_type})"
                ),
            })
        }
    }
}
