//! Refreshing a session once across tasks and processes, without ever losing a rotated
//! refresh token.

use std::time::{Duration, Instant};

use serde_json::Value;
use smart_scopes::Scopes;

use crate::error::{ConfigError, TokenError};
use crate::identity::{Expectations, RefreshWarning, RefreshedIdentity};
use crate::quirks::{HookContext, TokenGrant, VendorQuirks};
use crate::secret::RefreshToken;
use crate::store::{Session, SessionId, SessionStatus, StoreError, Versioned};
use crate::token::{LaunchContext, TokenResponse, now_unix};

use super::token_endpoint::interpret_token_response;
use super::{RefreshError, SmartClient};

/// Options for [`SmartClient::refresh`].
#[derive(Debug, Clone, Default)]
pub struct RefreshOptions {
    /// Ask for a subset of the granted scopes.
    pub scope: Option<Scopes>,
    /// Refresh only if the session is still at this version; if another worker already refreshed
    /// it (the version moved on), return that result instead. Default: the version read when
    /// `refresh` is called — which makes concurrent calls share one refresh.
    pub if_version: Option<u64>,
    /// Refresh even inside the adapter's minimum refresh interval (e.g. because the server just
    /// rejected the current token). Default: a session refreshed less than
    /// [`VendorPolicy::min_refresh_interval`](crate::quirks::VendorPolicy::min_refresh_interval) ago, whose token has not expired, is returned as is.
    pub force: bool,
    /// When the app last saw the user act (keyboard, pointer, touch). The adapter may pass it on
    /// ([`RefreshFacts::user_active_secs_ago`](crate::quirks::RefreshFacts)): Oracle Health's
    /// Active User Presence extension keeps an `online_access` session alive while the user
    /// works in the app. Default `None`: nothing is reported.
    pub user_active_at: Option<std::time::SystemTime>,
}

impl SmartClient {
    /// Refreshes a session's tokens, once however many tasks or processes ask at the same time.
    ///
    /// The new refresh token replaces the old one only when the server sent one (Oracle Health
    /// and Epic usually do not rotate). An `invalid_grant` ends the session.
    ///
    /// The client's bearer cache follows the result: a cached bearer moves to the refreshed
    /// version, and an ended or missing session is dropped from it.
    pub async fn refresh(
        &self,
        id: &SessionId,
        options: RefreshOptions,
    ) -> Result<Versioned<Session>, RefreshError> {
        self.refresh_with_outcome(id, options)
            .await
            .map(|(session, _)| session)
    }

    /// [`refresh`](SmartClient::refresh), also saying whether this call made the token request
    /// or took a result already in the store (another worker's refresh, or a session kept
    /// inside the throttle window). A bearer renewed after a `401` needs to know: a token this
    /// call fetched and the server refuses is final, while one found in the store may be the
    /// very token that was just refused elsewhere.
    pub(crate) async fn refresh_with_outcome(
        &self,
        id: &SessionId,
        options: RefreshOptions,
    ) -> Result<(Versioned<Session>, RefreshOutcome), RefreshError> {
        let result = self.refresh_single_flight(id, options).await;
        match &result {
            Ok((stored, _)) => self.inner.bearers.refreshed(id, stored),
            Err(
                RefreshError::NotFound | RefreshError::Ended { .. } | RefreshError::Rejected(_),
            ) => {
                self.inner.bearers.forget(id);
            }
            Err(_) => {}
        }
        result
    }

    #[tracing::instrument(name = "smart.refresh", skip_all, fields(client_id))]
    async fn refresh_single_flight(
        &self,
        id: &SessionId,
        options: RefreshOptions,
    ) -> Result<(Versioned<Session>, RefreshOutcome), RefreshError> {
        let store: &dyn crate::store::Store = &*self.inner.store;
        let first = store
            .load_session(id)
            .await?
            .ok_or(RefreshError::NotFound)?;
        tracing::Span::current().record("client_id", first.value.client_id.as_str());
        let baseline = options.if_version.unwrap_or(first.version);
        if first.version > baseline {
            return found_newer(first);
        }
        let owner = crate::random_token(12);
        let (owner_ref, lease_ttl) = (owner.as_str(), self.inner.lease_ttl);
        let deadline = Instant::now() + self.inner.lease_wait;
        let mut delay = Duration::from_millis(5);
        loop {
            // A temporary store failure (a dropped connection, a busy database) is retried
            // until the lease wait ends; anything else is returned at once.
            let acquired_at = Instant::now();
            if let Some(lease) = retry_temporary(
                move || store.try_acquire_lease(id, owner_ref, lease_ttl),
                deadline,
            )
            .await?
            {
                // The token request must finish while the lease is still ours, with a margin
                // for writing the result: past it another worker may take over.
                let lease_deadline =
                    acquired_at + self.inner.lease_ttl - lease_margin(self.inner.lease_ttl);
                let result = self
                    .refresh_under_lease(id, baseline, &options, lease_deadline)
                    .await;
                if let Err(e) = store.release_lease(&lease).await {
                    tracing::warn!(error = %e, "could not release the refresh lease; it will expire");
                }
                return result;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(100));
            let current = retry_temporary(move || store.load_session(id), deadline)
                .await?
                .ok_or(RefreshError::NotFound)?;
            if current.version > baseline {
                return found_newer(current);
            }
            if Instant::now() > deadline {
                return Err(RefreshError::LeaseTimeout);
            }
        }
    }

    async fn refresh_under_lease(
        &self,
        id: &SessionId,
        baseline: u64,
        options: &RefreshOptions,
        lease_deadline: Instant,
    ) -> Result<(Versioned<Session>, RefreshOutcome), RefreshError> {
        let store = &self.inner.store;
        let current = store
            .load_session(id)
            .await?
            .ok_or(RefreshError::NotFound)?;
        if current.version > baseline {
            // Someone refreshed between our first read and taking the lease.
            return found_newer(current);
        }
        let current = ensure_active(current)?;
        let session = &current.value;
        let refresh_token = session
            .tokens
            .refresh_token
            .clone()
            .ok_or(RefreshError::NoRefreshToken)?;
        let mut form = vec![
            ("grant_type".to_owned(), "refresh_token".to_owned()),
            (
                "refresh_token".to_owned(),
                refresh_token.expose_secret().to_owned(),
            ),
        ];
        if let Some(scope) = &options.scope {
            if let Some(extra) = scope.iter().find(|s| !session.effective_scopes().covers(s)) {
                return Err(RefreshError::ScopeNotGranted {
                    scope: extra.to_string(),
                });
            }
            form.push(("scope".to_owned(), scope.to_string()));
        }
        let reg = self
            .inner
            .registrations
            .get(&session.registration)
            .ok_or_else(|| ConfigError::Invalid {
                field: format!("clients.{}", session.registration),
                message: "the session's registration is no longer configured".into(),
            })?
            .clone();
        // The adapter recorded at launch; only records from before it was recorded decide again.
        let quirks = match &session.adapter {
            Some(recorded) => self.adapter_of(&session.registration, recorded)?,
            None => {
                let choice = self
                    .decide_adapter(&session.registration, &reg, &session.fhir_base)
                    .await?;
                self.adapter_of(&session.registration, &choice)?
            }
        };
        let ctx = HookContext::new(&session.fhir_base)
            .with_registration(&session.registration, &reg)
            .with_launch_kind(session.kind)
            .with_grant(TokenGrant::RefreshToken);
        let now = now_unix();
        let interval = quirks.policy().min_refresh_interval.as_secs();
        let recently_refreshed = session
            .refreshed_at
            .is_some_and(|at| now.saturating_sub(at) < interval);
        let still_valid = session.tokens.expires_at.is_some_and(|exp| exp > now);
        if !options.force && options.scope.is_none() && recently_refreshed && still_valid {
            tracing::debug!(
                "refreshed less than the server's minimum interval ago; keeping the current token"
            );
            return Ok((current, RefreshOutcome::Kept));
        }
        let budget = lease_deadline.saturating_duration_since(Instant::now());
        let http_response = tokio::time::timeout_at(
            lease_deadline.into(),
            self.send_token_request(
                &reg,
                &*quirks,
                &ctx,
                &session.token_endpoint,
                form,
                Some(crate::quirks::RefreshFacts {
                    granted_scopes: session.effective_scopes().clone(),
                    user_active_secs_ago: options.user_active_at.map(|at| {
                        std::time::SystemTime::now()
                            .duration_since(at)
                            .map_or(0, |ago| ago.as_secs())
                    }),
                }),
            ),
        )
        .await
        .map_err(|_| RefreshError::LeaseExpiring { budget })?
        .map_err(RefreshError::Token)?;
        // From here on the server may have rotated the refresh token: no path may drop it.
        let rotated_in_body = refresh_token_in_success_body(&http_response);
        match interpret_token_response(&*quirks, &ctx, http_response, now_unix()) {
            Ok(response) => {
                let refreshed_identity = match &response.tokens.id_token {
                    Some(id_token) => Some(
                        self.check_refreshed_id_token(
                            &*quirks,
                            &ctx,
                            session,
                            id_token.expose_secret(),
                        )
                        .await,
                    ),
                    None => None,
                };
                let mut updated = merge_refresh(session, response, refresh_token, now_unix());
                updated.refresh_warnings = Vec::new();
                match refreshed_identity {
                    Some(RefreshedIdentity::Replace(identity)) => {
                        updated.identity = Some(identity);
                    }
                    Some(RefreshedIdentity::Keep(warning)) => {
                        tracing::warn!(warning = %warning, "refreshed id_token not adopted");
                        // The launch's id_token stays with the launch's identity.
                        updated.tokens.id_token = session.tokens.id_token.clone();
                        updated.refresh_warnings.push(warning);
                    }
                    None => {}
                }
                let saved = self.save_refreshed(id, current.version, updated).await?;
                tracing::info!(
                    rotated = saved.value.tokens.refresh_token != session.tokens.refresh_token,
                    warnings = saved.value.refresh_warnings.len(),
                    "session refreshed"
                );
                Ok((saved, RefreshOutcome::Requested))
            }
            Err(e @ TokenError::OAuth { .. })
                if e.oauth_code() == Some(&crate::OAuthErrorCode::InvalidGrant) =>
            {
                let mut ended = session.clone();
                ended.status = SessionStatus::Ended {
                    reason: "the server rejected the refresh token (invalid_grant)".into(),
                    at: now_unix(),
                };
                if let Err(store_error) = store
                    .compare_and_swap_session(id, current.version, &ended)
                    .await
                {
                    tracing::warn!(error = %store_error, "could not mark the session ended");
                }
                Err(RefreshError::Rejected(e))
            }
            Err(e) => {
                // A success status with a body that does not parse (e.g. an unsupported
                // token_type) may still have rotated the refresh token: keep the new one.
                if let Some(rotated) = rotated_in_body
                    && Some(&rotated) != session.tokens.refresh_token.as_ref()
                {
                    let mut kept = session.clone();
                    kept.tokens.refresh_token = Some(rotated);
                    self.save_refreshed(id, current.version, kept).await?;
                    tracing::warn!(
                        "the refresh response was unusable but carried a new refresh token; it was saved"
                    );
                }
                Err(RefreshError::Token(e))
            }
        }
    }

    /// Writes a refreshed session. The server has already issued its tokens, so a lost
    /// compare-and-swap (another worker wrote meanwhile, e.g. after this worker's lease expired)
    /// is retried on the newer version — these tokens are the newest the server issued — and any
    /// other failure returns the session in [`RefreshError::NotSaved`].
    async fn save_refreshed(
        &self,
        id: &SessionId,
        mut expected_version: u64,
        updated: Session,
    ) -> Result<Versioned<Session>, RefreshError> {
        const ATTEMPTS: usize = 3;
        let store = &self.inner.store;
        let mut last_error = None;
        for _ in 0..ATTEMPTS {
            match store
                .compare_and_swap_session(id, expected_version, &updated)
                .await
            {
                Ok(version) => {
                    return Ok(Versioned {
                        value: updated,
                        version,
                    });
                }
                Err(StoreError::VersionConflict { current }) => {
                    tracing::warn!(
                        current,
                        "the session changed during the refresh; saving the new tokens over it"
                    );
                    expected_version = current;
                    last_error = Some(StoreError::VersionConflict { current });
                }
                Err(e) if e.is_temporary() => {
                    tracing::warn!(error = %e, "saving the refreshed session failed; retrying");
                    last_error = Some(e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => {
                    last_error = Some(e);
                    break;
                }
            }
        }
        Err(RefreshError::NotSaved {
            session: Box::new(updated),
            source: last_error.unwrap_or(StoreError::Backend("no attempt was made".into())),
        })
    }

    /// Checks a refreshed `id_token` against the identity verified at launch (OpenID Connect
    /// Core §12.2). Never fails: what is wrong becomes a warning.
    async fn check_refreshed_id_token(
        &self,
        quirks: &dyn VendorQuirks,
        ctx: &HookContext<'_>,
        session: &Session,
        id_token: &str,
    ) -> RefreshedIdentity {
        let fhir_base = &session.fhir_base;
        let discovered = match self.discover_with(quirks, ctx).await {
            Ok(d) => d,
            Err(e) => {
                return RefreshedIdentity::Keep(RefreshWarning::IdTokenRejected {
                    reason: crate::server_text::excerpt(&e.to_string(), 300),
                });
            }
        };
        let unverified_iss = smart_jose::decode_claims_unverified(id_token)
            .ok()
            .and_then(|c| c.get("iss").and_then(|v| v.as_str()).map(str::to_owned));
        let issuer =
            quirks.id_token_issuer(ctx, &discovered.configuration, unverified_iss.as_deref());
        self.inner
            .id_tokens
            .check_refreshed(
                &*self.inner.http,
                id_token,
                Expectations {
                    issuer: &issuer.expected,
                    configuration_issuer: &issuer.configuration,
                    algorithms: quirks.policy().id_token_algorithms,
                    client_id: ctx.client_id().unwrap_or_default(),
                    fhir_base,
                    nonce: None,
                },
                session.identity.as_ref(),
            )
            .await
    }
}

/// Where the session a refresh returns came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefreshOutcome {
    /// This call sent the refresh request and stored its answer.
    Requested,
    /// A newer version was already in the store (another worker refreshed).
    FoundNewer,
    /// The session was refreshed moments ago and kept as it is (throttle window).
    Kept,
}

fn found_newer(
    session: Versioned<Session>,
) -> Result<(Versioned<Session>, RefreshOutcome), RefreshError> {
    ensure_active(session).map(|s| (s, RefreshOutcome::FoundNewer))
}

fn ensure_active(session: Versioned<Session>) -> Result<Versioned<Session>, RefreshError> {
    match &session.value.status {
        SessionStatus::Active => Ok(session),
        SessionStatus::Ended { reason, .. } => Err(RefreshError::Ended {
            reason: reason.clone(),
        }),
    }
}

/// The `refresh_token` of a success response's JSON body, read without the rest of the response
/// having to be valid.
fn refresh_token_in_success_body(response: &crate::http::HttpResponse) -> Option<RefreshToken> {
    if !response.status().is_success() {
        return None;
    }
    match serde_json::from_slice::<Value>(response.body()).ok()? {
        Value::Object(mut body) => match body.remove("refresh_token") {
            Some(Value::String(token)) if !token.is_empty() => Some(RefreshToken::new(token)),
            _ => None,
        },
        _ => None,
    }
}

fn merge_refresh(
    session: &Session,
    response: TokenResponse,
    old_refresh: RefreshToken,
    now: u64,
) -> Session {
    let mut updated = session.clone();
    let TokenResponse { tokens, context } = response;
    updated.tokens.access_token = tokens.access_token;
    updated.tokens.expires_at = tokens.expires_at;
    updated.tokens.received_at = tokens.received_at;
    // Keep the old refresh token unless the server rotated it.
    updated.tokens.refresh_token = Some(tokens.refresh_token.unwrap_or(old_refresh));
    if tokens.id_token.is_some() {
        updated.tokens.id_token = tokens.id_token;
    }
    if tokens.granted_scopes.is_some() {
        updated.tokens.granted_scopes = tokens.granted_scopes;
    }
    merge_context(&mut updated.context, context);
    updated.refreshed_at = Some(now);
    updated
}

fn merge_context(into: &mut LaunchContext, from: LaunchContext) {
    fn keep<T>(slot: &mut Option<T>, new: Option<T>) {
        if new.is_some() {
            *slot = new;
        }
    }
    keep(&mut into.patient, from.patient);
    keep(&mut into.encounter, from.encounter);
    keep(&mut into.need_patient_banner, from.need_patient_banner);
    keep(&mut into.smart_style_url, from.smart_style_url);
    keep(&mut into.intent, from.intent);
    keep(&mut into.tenant, from.tenant);
    if !from.fhir_context.is_empty() {
        into.fhir_context = from.fhir_context;
    }
    into.extras.extend(from.extras);
}

/// How long before the lease ends the token request must have finished: a tenth of the lease,
/// between 1 and 5 seconds, leaving time to write the refreshed session while the lease holds.
pub(crate) fn lease_margin(lease_ttl: Duration) -> Duration {
    (lease_ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(5))
}

/// Runs a store call, calling it again with back-off while it fails with a temporary error
/// ([`StoreError::is_temporary`]: a dropped connection, a busy database) and `deadline` leaves
/// room; the last error is returned once it does not.
async fn retry_temporary<T, F, Fut>(mut call: F, deadline: Instant) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut delay = Duration::from_millis(20);
    loop {
        match call().await {
            Err(e) if e.is_temporary() && Instant::now() + delay < deadline => {
                tracing::warn!(error = %e, "temporary store failure during refresh; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(500));
            }
            result => return result,
        }
    }
}
