//! Beginning and completing EHR and standalone launches: the authorization request, the
//! callback checks (state, browser binding, RFC 9207 `iss`) and the code exchange.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;
use smart_scopes::{PermissionSyntax, Scope, ScopeComparison, Scopes};

use crate::config::ClientRegistration;
use crate::discovery::{Capability, Discovered, DiscoverySource, SmartConfiguration};
use crate::error::OAuthError;
use crate::http::redact_url;
use crate::identity::{Expectations, IdentityError, VerifiedIdentity};
use crate::protocol_strings::LaunchState;
use crate::quirks::{
    AuthorizeMethod, AuthorizeParameters, HookContext, LaunchKind, TokenGrant, VendorQuirks,
};
use crate::secret::{BrowserBinding, LaunchHandle, PkceVerifier};
use crate::store::{PendingLaunch, Session, SessionId, SessionStatus, StoreError, Versioned};
use crate::token::{LaunchContext, now_unix};

use super::{LaunchError, SmartClient};
use crate::adapter_choice::AdapterChoice;

/// The shortest browser-binding value accepted from an app: 22 base64url characters, 128 bits.
pub const MIN_BROWSER_BINDING_CHARS: usize = 22;

/// Where to send the user's browser to authorize.
#[derive(Clone)]
#[non_exhaustive]
pub struct AuthorizationRequest {
    /// GET: the full URL (redirect the browser to it). POST: the authorization endpoint.
    pub url: String,
    /// GET or POST.
    pub method: AuthorizeMethod,
    /// The form body for POST (`application/x-www-form-urlencoded`).
    pub form: Option<String>,
    /// The `state` parameter (bound to this launch in the store); redacted in `Debug`.
    pub state: LaunchState,
    /// The registration used.
    pub registration: String,
    /// Where the configuration came from.
    pub discovery_source: DiscoverySource,
    /// The value binding this launch to the browser: set it as a cookie on the response that
    /// redirects the browser, and pass it back with the callback
    /// ([`CallbackParams::with_browser_binding`]). See [`AuthorizationRequest::browser_binding`].
    pub browser_binding: BrowserBinding,
    /// The vendor adapter decided for this launch, and why (recorded with the pending launch,
    /// then the session).
    pub adapter: AdapterChoice,
}

impl fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationRequest")
            .field("endpoint", &redact_url(&self.url))
            .field("method", &self.method)
            .field("registration", &self.registration)
            .field("adapter", &self.adapter.adapter)
            .finish_non_exhaustive()
    }
}

impl AuthorizationRequest {
    /// The browser-binding value of this launch: the one passed in the launch options, or a
    /// fresh 256-bit random one. The app keeps it in the browser that is about to be redirected
    /// (a `__Host-` cookie, `HttpOnly; Secure; SameSite=Lax; Path=/`, a few minutes' `Max-Age`)
    /// and hands it to [`SmartClient::complete_launch`] with the callback, which refuses the
    /// callback without it. Only its SHA-256 is stored. Why and how:
    /// `docs/guides/browser-binding.md`.
    pub fn browser_binding(&self) -> &BrowserBinding {
        &self.browser_binding
    }

    /// For POST: a self-submitting HTML form to serve to the browser. `None` for GET.
    pub fn html_form(&self) -> Option<String> {
        let form = self.form.as_ref()?;
        let inputs: String = url::form_urlencoded::parse(form.as_bytes())
            .map(|(k, v)| {
                format!(
                    "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                    html_escape(&k),
                    html_escape(&v)
                )
            })
            .collect();
        Some(format!(
            "<!doctype html><html><head><title>Continue to sign in</title></head>\
             <body onload=\"document.forms[0].submit()\"><form method=\"post\" action=\"{}\">{inputs}\
             <noscript><button type=\"submit\">Continue</button></noscript></form></body></html>",
            html_escape(&self.url)
        ))
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&#39;")
}

/// The query parameters of the redirect back to the app.
///
/// Besides the query, a callback carries the launch's browser-binding value, read by the app from
/// the cookie it set when the launch began: [`CallbackParams::with_browser_binding`].
#[derive(Clone, Default)]
pub struct CallbackParams {
    params: BTreeMap<String, String>,
    browser_binding: Option<BrowserBinding>,
}

impl fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The values include the code and state: print only which parameters are present.
        f.debug_struct("CallbackParams")
            .field("keys", &self.params.keys().collect::<Vec<_>>())
            .field("browser_binding", &self.browser_binding.is_some())
            .finish()
    }
}

impl CallbackParams {
    /// From a raw query string (`code=…&state=…`). When a parameter repeats, the first wins.
    pub fn from_query(query: &str) -> Self {
        Self::from_pairs(url::form_urlencoded::parse(
            query.trim_start_matches('?').as_bytes(),
        ))
    }

    /// From the full redirect URL.
    pub fn from_url(url: &str) -> Option<Self> {
        let url = url::Url::parse(url).ok()?;
        Some(Self::from_query(url.query().unwrap_or("")))
    }

    /// From decoded name/value pairs.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut params = BTreeMap::new();
        for (k, v) in pairs {
            params.entry(k.into()).or_insert_with(|| v.into());
        }
        CallbackParams {
            params,
            browser_binding: None,
        }
    }

    /// Adds the browser-binding value the app stored in this browser when the launch began
    /// ([`AuthorizationRequest::browser_binding`]), typically read from its cookie.
    pub fn with_browser_binding(mut self, binding: BrowserBinding) -> Self {
        self.browser_binding = Some(binding);
        self
    }

    /// The browser-binding value, if one was added.
    pub fn browser_binding(&self) -> Option<&BrowserBinding> {
        self.browser_binding.as_ref()
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Options for an EHR launch beyond `iss` and `launch`.
#[derive(Debug, Clone, Default)]
pub struct EhrLaunch {
    /// Scopes to request instead of the registration's defaults (`launch` is always added).
    pub scopes: Option<Scopes>,
    /// Use this registration (it must cover the issuer) instead of looking one up.
    pub registration: Option<String>,
    /// Bind the launch to this value (e.g. one derived from the app's own session cookie)
    /// instead of a fresh random one. It must be unguessable: at least 128 random bits.
    pub browser_binding: Option<BrowserBinding>,
}

/// Options for a standalone launch.
#[derive(Debug, Clone, Default)]
pub struct StandaloneLaunch {
    /// Scopes to request instead of the registration's defaults (`launch` is always removed).
    pub scopes: Option<Scopes>,
    /// Use this registration (it must cover the FHIR base) instead of looking one up.
    pub registration: Option<String>,
    /// Bind the launch to this value instead of a fresh random one (see [`EhrLaunch`]).
    pub browser_binding: Option<BrowserBinding>,
}

/// A completed launch.
#[derive(Debug, Clone)]
pub struct CompletedLaunch {
    /// The new session's id.
    pub session_id: SessionId,
    /// The session (tokens, context, scopes).
    pub session: Session,
    /// The session's store version.
    pub version: u64,
    /// Requested versus granted scopes.
    pub scopes: ScopeComparison,
    /// Launch context that was requested (`launch/patient`, …) but not provided.
    pub missing_context: Vec<String>,
}

impl SmartClient {
    /// Begins an EHR launch from the `iss` and `launch` parameters the EHR sent to the app's
    /// launch URL.
    pub async fn begin_ehr_launch(
        &self,
        iss: &str,
        launch: &str,
    ) -> Result<AuthorizationRequest, LaunchError> {
        self.begin_ehr_launch_with(iss, launch, EhrLaunch::default())
            .await
    }

    /// [`begin_ehr_launch`](Self::begin_ehr_launch) with options.
    pub async fn begin_ehr_launch_with(
        &self,
        iss: &str,
        launch: &str,
        options: EhrLaunch,
    ) -> Result<AuthorizationRequest, LaunchError> {
        self.begin(
            LaunchKind::Ehr,
            iss,
            Some(LaunchHandle::new(launch)),
            options.scopes,
            options.registration,
            options.browser_binding,
        )
        .await
    }

    /// Begins a standalone launch against `fhir_base`.
    pub async fn begin_standalone_launch(
        &self,
        fhir_base: &str,
        options: StandaloneLaunch,
    ) -> Result<AuthorizationRequest, LaunchError> {
        self.begin(
            LaunchKind::Standalone,
            fhir_base,
            None,
            options.scopes,
            options.registration,
            options.browser_binding,
        )
        .await
    }

    fn resolve(
        &self,
        iss: &str,
        name: Option<String>,
    ) -> Result<(String, ClientRegistration), LaunchError> {
        match name {
            Some(name) => {
                let reg = self
                    .inner
                    .registrations
                    .get(&name)
                    .ok_or_else(|| LaunchError::UnknownRegistration { name: name.clone() })?;
                if !reg.matches_issuer(iss) {
                    return Err(LaunchError::RegistrationIssuerMismatch {
                        name,
                        iss: iss.to_owned(),
                    });
                }
                Ok((name, reg.clone()))
            }
            None => self
                .registration_for(iss)
                .map(|(n, r)| (n.to_owned(), r.clone()))
                .ok_or_else(|| LaunchError::UnknownIssuer {
                    iss: iss.to_owned(),
                }),
        }
    }

    #[tracing::instrument(name = "smart.begin_launch", skip_all, fields(iss = %iss, kind = ?kind, client_id, adapter))]
    async fn begin(
        &self,
        kind: LaunchKind,
        iss: &str,
        launch: Option<LaunchHandle>,
        scopes: Option<Scopes>,
        registration: Option<String>,
        browser_binding: Option<BrowserBinding>,
    ) -> Result<AuthorizationRequest, LaunchError> {
        // The allow-list check comes first: nothing is sent for an unknown issuer.
        let (name, reg) = self.resolve(iss, registration)?;
        let browser_binding = match browser_binding {
            Some(given) => {
                let chars = given.expose_secret().chars().count();
                if chars < MIN_BROWSER_BINDING_CHARS {
                    return Err(LaunchError::WeakBrowserBinding { chars });
                }
                given
            }
            None => BrowserBinding::generate(),
        };
        tracing::Span::current().record("client_id", reg.client_id.as_str());
        let redirect_uri = reg
            .redirect_uri
            .clone()
            .ok_or_else(|| LaunchError::NotALaunchRegistration { name: name.clone() })?;
        // The adapter is decided here, once, and recorded with the launch.
        let adapter = self.decide_adapter(&name, &reg, iss).await?;
        let quirks = self.adapter_of(&name, &adapter)?;
        tracing::Span::current().record("adapter", adapter.adapter.as_str());
        let ctx = HookContext::new(iss)
            .with_registration(&name, &reg)
            .with_launch_kind(kind);
        let discovered = self.discover_with(&*quirks, &ctx).await?;
        let config = &discovered.configuration;
        let endpoint = config.authorization_endpoint.clone().ok_or_else(|| {
            LaunchError::NoAuthorizationEndpoint {
                base: iss.to_owned(),
            }
        })?;
        warn_about_capabilities(config, kind);
        check_auth_method(config, &reg, iss)?;

        let mut scopes = scopes.unwrap_or_else(|| reg.scopes.clone());
        match kind {
            LaunchKind::Ehr => {
                if !scopes.contains(&Scope::Launch) {
                    scopes.insert(Scope::Launch);
                }
            }
            LaunchKind::Standalone => {
                scopes.remove(&Scope::Launch);
            }
        }
        let mut scopes = adapt_scope_syntax(scopes, &discovered);
        quirks.adapt_requested_scopes(&ctx, config, &mut scopes);

        let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
        // 256 bits from the OS RNG, base64url (the spec asks for at least 122).
        let state = oauth2::CsrfToken::new_random_len(32).secret().clone();
        let mut params = AuthorizeParameters::default();
        params.set("response_type", "code");
        params.set("client_id", reg.client_id.clone());
        params.set("redirect_uri", redirect_uri.clone());
        if let Some(launch) = &launch {
            params.set("launch", launch.expose_secret());
        }
        params.set("scope", scopes.to_string());
        params.set("state", state.clone());
        params.set("aud", iss);
        params.set("code_challenge", challenge.as_str());
        params.set("code_challenge_method", "S256");
        quirks.authorize_parameters(&ctx, &mut params);

        let form = params.to_form();
        let separator = if endpoint.contains('?') { '&' } else { '?' };
        let get_url = format!("{endpoint}{separator}{form}");
        let method = quirks.authorize_method(&ctx, config, reg.authorize_method, get_url.len());

        // RFC 9207: the `iss` an authorization response may carry is the authorization server's
        // issuer identifier, its metadata `issuer`. SMART makes `issuer` optional, so without one
        // the issuer the adapter expects in id_tokens stands in (the FHIR base by default, the
        // reference servers' convention).
        let authorization_server_issuer = config
            .issuer
            .clone()
            .unwrap_or_else(|| quirks.id_token_issuer(&ctx, config, None).expected);
        let iss_parameter_required = config
            .extra
            .get("authorization_response_iss_parameter_supported")
            .and_then(Value::as_bool)
            == Some(true);

        let now = now_unix();
        let pending = PendingLaunch {
            registration: name.clone(),
            fhir_base: iss.into(),
            kind,
            launch,
            redirect_uri,
            requested_scopes: scopes,
            pkce_verifier: PkceVerifier::new(verifier.secret().clone()),
            token_endpoint: config.token_endpoint.clone(),
            created_at: now,
            expires_at: now.saturating_add(self.inner.state_ttl.as_secs()),
            browser_binding_sha256: browser_binding.sha256(),
            authorization_server_issuer: Some(authorization_server_issuer),
            iss_parameter_required,
            adapter: Some(adapter.clone()),
        };
        self.inner
            .store
            .put_pending_launch(&state, &pending)
            .await?;
        tracing::debug!(method = ?method, "authorization request ready");
        let (url, form) = match method {
            AuthorizeMethod::Get => (get_url, None),
            AuthorizeMethod::Post => (endpoint, Some(form)),
        };
        Ok(AuthorizationRequest {
            url,
            method,
            form,
            state: LaunchState::new(state),
            registration: name,
            discovery_source: discovered.source.clone(),
            browser_binding,
            adapter,
        })
    }

    /// Completes a launch from the redirect's query parameters: consumes `state`, checks the
    /// browser binding ([`CallbackParams::with_browser_binding`]) and the `iss` parameter
    /// (RFC 9207), surfaces authorization errors, exchanges the code and stores the new session.
    ///
    /// The pending launch is consumed whatever happens next, so a `state` works once.
    #[tracing::instrument(name = "smart.complete_launch", skip_all, fields(client_id, iss))]
    pub async fn complete_launch(
        &self,
        callback: &CallbackParams,
    ) -> Result<CompletedLaunch, LaunchError> {
        // `state` first, and nothing else until it has been matched and consumed.
        let state = callback
            .get("state")
            .filter(|s| !s.is_empty())
            .ok_or(LaunchError::MissingState)?;
        let pending = self
            .inner
            .store
            .take_pending_launch(state)
            .await?
            .ok_or(LaunchError::UnknownState)?;
        let span = tracing::Span::current();
        span.record("iss", pending.fhir_base.as_str());
        check_browser_binding(callback, &pending)?;
        check_issuer_parameter(callback, &pending)?;

        if let Some(code) = callback.get("error") {
            let mut error = OAuthError {
                code: crate::quirks::spec::error_code(code),
                description: callback.get("error_description").map(str::to_owned),
                uri: callback.get("error_uri").map(str::to_owned),
            };
            // The recorded adapter may explain the error (e.g. which registration value is
            // likely wrong); no decision is made again here, so no network call.
            if let (Some(recorded), Some(reg)) = (
                &pending.adapter,
                self.inner.registrations.get(&pending.registration),
            ) && let Ok(quirks) = self.adapter_of(&pending.registration, recorded)
            {
                let ctx = HookContext::new(&pending.fhir_base)
                    .with_registration(&pending.registration, reg)
                    .with_launch_kind(pending.kind);
                error = quirks.classify_oauth_error(&ctx, None, error);
            }
            tracing::info!(error = %error.code, "authorization server returned an error");
            return Err(LaunchError::Authorization(error));
        }
        let code = callback
            .get("code")
            .filter(|c| !c.is_empty())
            .ok_or(LaunchError::MissingCode)?;

        let reg = self
            .inner
            .registrations
            .get(&pending.registration)
            .ok_or_else(|| LaunchError::UnknownRegistration {
                name: pending.registration.clone(),
            })?
            .clone();
        span.record("client_id", reg.client_id.as_str());
        // The adapter recorded when the launch began: no second decision, no network call.
        let adapter = match &pending.adapter {
            Some(recorded) => recorded.clone(),
            None => {
                self.decide_adapter(&pending.registration, &reg, &pending.fhir_base)
                    .await?
            }
        };
        let quirks = self.adapter_of(&pending.registration, &adapter)?;
        let ctx = HookContext::new(&pending.fhir_base)
            .with_registration(&pending.registration, &reg)
            .with_launch_kind(pending.kind)
            .with_grant(TokenGrant::AuthorizationCode);
        let form = vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), code.to_owned()),
            ("redirect_uri".to_owned(), pending.redirect_uri.to_string()),
            (
                "code_verifier".to_owned(),
                pending.pkce_verifier.expose_secret().to_owned(),
            ),
        ];
        let response = self
            .token_call(&reg, &*quirks, &ctx, &pending.token_endpoint, form)
            .await?;

        let now = now_unix();
        let granted = response
            .tokens
            .granted_scopes
            .clone()
            .unwrap_or_else(|| pending.requested_scopes.clone());
        let identity = if granted.has_openid() {
            match &response.tokens.id_token {
                Some(id_token) => Some(
                    self.verify_id_token(&*quirks, &ctx, id_token.expose_secret())
                        .await?,
                ),
                None => {
                    tracing::warn!("openid was granted but no id_token was issued");
                    None
                }
            }
        } else {
            None
        };
        let scopes = Scopes::compare_with(
            &pending.requested_scopes,
            &granted,
            response.tokens.refresh_token.is_some(),
        );
        let missing_context = missing_context(&pending.requested_scopes, &response.context);
        if !missing_context.is_empty() {
            tracing::warn!(missing = ?missing_context, "requested launch context was not provided");
        }
        let session = Session {
            registration: pending.registration.clone(),
            client_id: reg.client_id.clone(),
            fhir_base: pending.fhir_base.clone(),
            token_endpoint: pending.token_endpoint.clone(),
            tokens: response.tokens,
            context: response.context,
            requested_scopes: pending.requested_scopes,
            kind: pending.kind,
            created_at: now,
            refreshed_at: None,
            status: SessionStatus::Active,
            identity,
            refresh_warnings: Vec::new(),
            adapter: Some(adapter),
        };
        let session_id = SessionId::generate();
        let version = self
            .inner
            .store
            .insert_session(&session_id, &session)
            .await?;
        if !scopes.is_complete() {
            // Servers may grant less than requested without an error (Oracle Health drops
            // wildcards, v1 scopes of a v2 registration, offline_access of an online one).
            tracing::warn!(
                dropped = %scopes.dropped,
                narrowed = %scopes.narrowed,
                "the server granted fewer scopes than requested (CompletedLaunch::scopes lists them)"
            );
        }
        tracing::info!(
            dropped = scopes.dropped.len(),
            narrowed = scopes.narrowed.len(),
            "launch completed"
        );
        Ok(CompletedLaunch {
            session_id,
            session,
            version,
            scopes,
            missing_context,
        })
    }

    /// Deletes a session (the user signed out, or the app no longer needs it). Returns whether it
    /// existed. The tokens are not revoked at the server.
    pub async fn forget_session(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.inner.bearers.forget(id);
        self.inner.store.delete_session(id).await
    }

    /// The stored session.
    pub async fn session(&self, id: &SessionId) -> Result<Option<Versioned<Session>>, StoreError> {
        self.inner.store.load_session(id).await
    }

    /// Verifies an `id_token` for the context's registration (its client id is the expected
    /// `aud`) against the issuer discovered for the context's FHIR base.
    pub(crate) async fn verify_id_token(
        &self,
        quirks: &dyn VendorQuirks,
        ctx: &HookContext<'_>,
        id_token: &str,
    ) -> Result<VerifiedIdentity, IdentityError> {
        let fhir_base = ctx.fhir_base();
        let client_id = ctx.client_id().unwrap_or_default();
        let discovered = self
            .discover_with(quirks, ctx)
            .await
            .map_err(IdentityError::Discovery)?;
        let unverified_iss = smart_jose::decode_claims_unverified(id_token)
            .ok()
            .and_then(|c| c.get("iss").and_then(|v| v.as_str()).map(str::to_owned));
        let issuer =
            quirks.id_token_issuer(ctx, &discovered.configuration, unverified_iss.as_deref());
        let algorithms = quirks.policy().id_token_algorithms;
        self.inner
            .id_tokens
            .verify(
                &*self.inner.http,
                id_token,
                Expectations {
                    issuer: &issuer.expected,
                    configuration_issuer: &issuer.configuration,
                    algorithms,
                    client_id,
                    fhir_base,
                    nonce: None,
                },
            )
            .await
    }
}

/// Refuses a registration whose client-authentication method the server says it does not accept.
pub(crate) fn check_auth_method(
    config: &SmartConfiguration,
    registration: &ClientRegistration,
    base: &str,
) -> Result<(), LaunchError> {
    let Some(method) = registration.auth.method_name() else {
        return Ok(());
    };
    if config.advertises_auth_method(method) == Some(false) {
        return Err(LaunchError::AuthMethodNotAdvertised {
            base: base.to_owned(),
            method: method.to_owned(),
            offered: config
                .token_endpoint_auth_methods_supported
                .as_deref()
                .unwrap_or_default()
                .join(", "),
        });
    }
    Ok(())
}

/// Refuses a callback that does not come with the browser-binding value of its launch.
fn check_browser_binding(
    callback: &CallbackParams,
    pending: &PendingLaunch,
) -> Result<(), LaunchError> {
    let binding = callback
        .browser_binding()
        .ok_or(LaunchError::MissingBrowserBinding)?;
    if !binding.matches_sha256(&pending.browser_binding_sha256) {
        tracing::warn!("callback with another browser's binding value refused");
        return Err(LaunchError::BrowserBindingMismatch);
    }
    Ok(())
}

/// RFC 9207: an `iss` in the authorization response must be the authorization server the request
/// went to, and one that advertised `authorization_response_iss_parameter_supported` must send it.
fn check_issuer_parameter(
    callback: &CallbackParams,
    pending: &PendingLaunch,
) -> Result<(), LaunchError> {
    let expected = pending
        .authorization_server_issuer
        .as_deref()
        .unwrap_or(&pending.fhir_base);
    match callback.get("iss") {
        // Simple string comparison (RFC 9207 §2.4, RFC 3986 §6.2.1).
        Some(found) if found == expected => Ok(()),
        Some(found) => Err(LaunchError::IssuerParameterMismatch {
            expected: expected.to_owned(),
            found: crate::server_text::excerpt(found, 200),
        }),
        None if pending.iss_parameter_required => Err(LaunchError::MissingIssuerParameter {
            expected: expected.to_owned(),
        }),
        None => Ok(()),
    }
}

fn missing_context(requested: &Scopes, context: &LaunchContext) -> Vec<String> {
    requested
        .iter()
        .filter_map(|s| match s {
            Scope::LaunchContext { resource_type, .. } => {
                let present = match resource_type.as_str() {
                    "patient" => context.patient.is_some(),
                    "encounter" => context.encounter.is_some(),
                    other => context.fhir_context.iter().any(|item| {
                        item.resource_type
                            .as_deref()
                            .is_some_and(|t| t.eq_ignore_ascii_case(other))
                    }),
                };
                (!present).then(|| format!("launch/{resource_type}"))
            }
            _ => None,
        })
        .collect()
}

/// Writes scopes in the syntax the server understands: v2 where only v2 is advertised, v1 where
/// only v1 is advertised or the server predates `.well-known` (SMART 1.0); as written otherwise.
fn adapt_scope_syntax(scopes: Scopes, discovered: &Discovered) -> Scopes {
    let config = &discovered.configuration;
    let v1 = config.supports(&Capability::PermissionV1);
    let v2 = config.supports(&Capability::PermissionV2);
    let legacy = matches!(
        discovered.source,
        DiscoverySource::CapabilityStatement { .. }
    );
    if v2 && !v1 {
        scopes.to_v2()
    } else if (v1 && !v2) || legacy {
        let converted = scopes.to_v1();
        if converted.iter().any(|s| {
            s.as_resource()
                .is_some_and(|r| r.syntax == PermissionSyntax::V2)
        }) {
            tracing::warn!("some scopes have no exact v1 form and are sent in v2 syntax");
        }
        converted
    } else {
        scopes
    }
}

fn warn_about_capabilities(config: &SmartConfiguration, kind: LaunchKind) {
    if config.capabilities.is_empty() {
        return;
    }
    let needed = match kind {
        LaunchKind::Ehr => Capability::LaunchEhr,
        LaunchKind::Standalone => Capability::LaunchStandalone,
    };
    if !config.supports(&needed) {
        tracing::warn!(capability = %needed, "the server does not advertise this launch type; trying anyway");
    }
    if !config.code_challenge_methods_supported.is_empty()
        && !config
            .code_challenge_methods_supported
            .iter()
            .any(|m| m == "S256")
    {
        tracing::warn!(
            "the server does not advertise PKCE S256; sending it anyway (SMART 2.x requires it)"
        );
    }
}
