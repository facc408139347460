//! The `id_token` of a refresh response, checked against the identity verified at launch.
//!
//! A refresh response may carry a new `id_token`. OpenID Connect Core §12.2 says what it must be:
//! the same `iss` and `sub` as the one issued at sign-in, with `aud` still naming the client, and
//! a valid signature. Servers get this wrong in ways that do not matter (the SMART reference
//! launcher omits `aud` in refreshed tokens) and, rarely, in ways that do (another `sub`).
//!
//! Neither case may cost the app the tokens the same response carries: by the time the `id_token`
//! is read, the server may already have rotated the refresh token, so throwing the response away
//! ends the session. So a refreshed `id_token` never fails a refresh. Instead:
//!
//! - one that verifies fully and names the same issuer and subject replaces the stored identity
//!   (its claims may be newer) and the stored `id_token`;
//! - anything else leaves the identity verified at launch, and the `id_token` issued with it, in
//!   place, and the refresh reports a [`RefreshWarning`] that says exactly what was wrong
//!   ([`Session::refresh_warnings`](crate::store::Session::refresh_warnings)).
//!
//! A token without `aud` whose signature, issuer and subject check out is accepted with a warning
//! ([`RefreshWarning::IdTokenAudienceMissing`]); a token naming another audience is not
//! ([`RefreshWarning::IdTokenWrongAudience`]). This module is a child of [`crate::identity`] so
//! that it checks signatures with the same cached keys as sign-in.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Expectations, IdTokenVerifier, IdentityError, VerifiedIdentity};
use crate::http::HttpClient;
use crate::server_text::excerpt;

/// Longest excerpt of a server-supplied claim kept in a warning.
const CLAIM_EXCERPT_CHARS: usize = 120;

/// Something a refresh found wrong, without losing the tokens it returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "warning", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefreshWarning {
    /// The refreshed `id_token` has no `aud` claim (the SMART reference launcher does this). Its
    /// signature, issuer and subject match the sign-in, so it was accepted; the identity verified
    /// at launch is kept.
    #[error(
        "the refreshed id_token has no `aud` (audience) claim; accepted because its signature, issuer and subject match the sign-in, and the identity verified at launch is kept"
    )]
    IdTokenAudienceMissing,
    /// The refreshed `id_token` names an audience that is not this client. It was ignored; the
    /// identity verified at launch is kept.
    #[error(
        "the refreshed id_token is for another audience ({audience}), not this client; it was ignored and the identity verified at launch is kept"
    )]
    IdTokenWrongAudience {
        /// The `aud` claim as sent (an excerpt, control characters escaped).
        audience: String,
    },
    /// The refreshed `id_token` names another subject than the sign-in. It was ignored; the
    /// identity verified at launch is kept. Treat this as a server fault: an app that must be
    /// sure who the tokens act for should end the session and sign the user in again.
    #[error(
        "the refreshed id_token names another user (sub `{refreshed}`, signed in as `{launch}`); it was ignored and the identity verified at launch is kept — sign in again to be sure who this session acts for"
    )]
    IdTokenSubjectChanged {
        /// The subject verified at launch.
        launch: String,
        /// The subject in the refreshed token (an excerpt, control characters escaped).
        refreshed: String,
    },
    /// The refreshed `id_token` names another issuer than the sign-in. It was ignored.
    #[error(
        "the refreshed id_token was issued by `{refreshed}`, not by `{launch}` as at sign-in; it was ignored and the identity verified at launch is kept"
    )]
    IdTokenIssuerChanged {
        /// The issuer verified at launch.
        launch: String,
        /// The issuer in the refreshed token (an excerpt, control characters escaped).
        refreshed: String,
    },
    /// The refreshed `id_token` failed verification (signature, expiry, a claim, or its keys could
    /// not be fetched). It was ignored.
    #[error(
        "the refreshed id_token did not verify ({reason}); it was ignored and the identity verified at launch is kept"
    )]
    IdTokenRejected {
        /// Why.
        reason: String,
    },
}

/// What to do with a refreshed `id_token`.
#[derive(Debug)]
pub(crate) enum RefreshedIdentity {
    /// It verified and names the sign-in's issuer and subject (or there was no sign-in identity):
    /// store it and this identity.
    Replace(VerifiedIdentity),
    /// Keep the launch identity and `id_token`; report the warning.
    Keep(RefreshWarning),
}

impl IdTokenVerifier {
    /// Checks a refreshed `id_token` per OpenID Connect Core §12.2 against `launch` (the identity
    /// verified at sign-in, if any). Never fails: a problem is a [`RefreshedIdentity::Keep`].
    pub(crate) async fn check_refreshed(
        &self,
        http: &dyn HttpClient,
        id_token: &str,
        expect: Expectations<'_>,
        launch: Option<&VerifiedIdentity>,
    ) -> RefreshedIdentity {
        let rejected = |e: IdentityError| {
            RefreshedIdentity::Keep(RefreshWarning::IdTokenRejected {
                reason: excerpt(&e.to_string(), 300),
            })
        };
        // Signature, `iss`, `exp`, `iat` and `sub` exactly as at sign-in; `aud` is judged below.
        let claims = match self.signed_claims(http, id_token, &expect, None).await {
            Ok(claims) => claims,
            Err(e) => return rejected(e),
        };
        let text = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or_default();
        if let Some(launch) = launch {
            if text("iss") != launch.iss {
                return RefreshedIdentity::Keep(RefreshWarning::IdTokenIssuerChanged {
                    launch: launch.iss.clone(),
                    refreshed: excerpt(text("iss"), CLAIM_EXCERPT_CHARS),
                });
            }
            if text("sub") != launch.sub {
                return RefreshedIdentity::Keep(RefreshWarning::IdTokenSubjectChanged {
                    launch: launch.sub.clone(),
                    refreshed: excerpt(text("sub"), CLAIM_EXCERPT_CHARS),
                });
            }
        }
        match claims.get("aud") {
            None | Some(Value::Null) => {
                return RefreshedIdentity::Keep(RefreshWarning::IdTokenAudienceMissing);
            }
            Some(aud) if !audience_contains(aud, expect.client_id) => {
                return RefreshedIdentity::Keep(RefreshWarning::IdTokenWrongAudience {
                    audience: excerpt(&aud.to_string(), CLAIM_EXCERPT_CHARS),
                });
            }
            Some(_) => {}
        }
        // Everything §12.2 asks holds: the full sign-in verification (azp, nonce-free, fhirUser)
        // gives the identity to store. The keys are cached by now.
        match self.verify(http, id_token, expect).await {
            Ok(identity) => RefreshedIdentity::Replace(identity),
            Err(e) => rejected(e),
        }
    }
}

/// Whether an `aud` claim (a string or an array of strings) names `client_id`.
fn audience_contains(aud: &Value, client_id: &str) -> bool {
    match aud {
        Value::String(s) => s == client_id,
        Value::Array(items) => items.iter().any(|v| v.as_str() == Some(client_id)),
        _ => false,
    }
}
