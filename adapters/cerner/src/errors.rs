//! What Oracle Health's OAuth errors mean, for the user and the developer.
//!
//! Oracle Health attaches an `error_uri` to every OAuth error, and its path names the real
//! reason (`…oauth2:grant:client-persona-mismatch`, `…oauth2:token:code-invalid-or-expired`),
//! which the bare OAuth code (`unauthorized_client`, `invalid_grant`) does not. Two situations
//! need words the code cannot carry: a client used under the wrong persona, and a refresh token
//! that was suspended or revoked (three months unused, a certificate or DNS change), which only
//! the user can fix by re-approving the app. The hints below are added in front of the server's
//! own description; the `error_uri` is kept as sent (the core shows it as server text).

use smart_core::quirks::TokenGrant;
use smart_core::{OAuthError, OAuthErrorCode};

/// The longest `error_uri` looked into; longer ones are kept but not searched (a hostile server
/// gains nothing from a megabyte of URI).
const MAX_URI_SCANNED: usize = 4096;

/// The hint for a refresh token that no longer works (kept short: error texts are cut when
/// shown).
pub(crate) const REFRESH_HINT: &str = "refresh token suspended or revoked (e.g. unused for more \
     than three months): open error_uri in a separate window to re-approve the app, or launch \
     again";

/// The hint for a client used at the other persona's endpoint.
pub(crate) const PERSONA_HINT: &str = "client registered for another Oracle Health persona (provider or patient) than this \
     endpoint's: launch from the base of the app's persona, or register it for this one";

/// Adds Oracle Health's meaning to an OAuth error. `grant` is the token request's grant, or
/// `None` for an authorization-endpoint error.
///
/// Quirk `cerner-client-persona-mismatch` (§5 row 32; a 2026 live probe of the Oracle sandbox,
/// Captured): `unauthorized_client` whose `error_uri` names `client-persona-mismatch` gets
/// [`PERSONA_HINT`], with the persona the server named when it is a plain word.
///
/// Quirk `cerner-error-uri-reapprove` (§5 row 36; Oracle Health authorization documentation,
/// Documented), with Quirk `cerner-refresh-unused-revocation` (§5 row 28, same source): an
/// `invalid_grant` **of a refresh** gets [`REFRESH_HINT`]. Not an `invalid_grant` of a code
/// exchange: Oracle sends an `error_uri` with every error, and re-approving does not help with an
/// expired code.
pub(crate) fn explain(grant: Option<TokenGrant>, mut error: OAuthError) -> OAuthError {
    let hint = match (&error.code, grant) {
        (OAuthErrorCode::UnauthorizedClient, _) if names_persona_mismatch(error.uri.as_deref()) => {
            Some(match persona_named(error.uri.as_deref()) {
                Some(persona) => format!("{PERSONA_HINT} (persona named: {persona})"),
                None => PERSONA_HINT.to_owned(),
            })
        }
        (OAuthErrorCode::InvalidGrant, Some(TokenGrant::RefreshToken)) => {
            Some(REFRESH_HINT.to_owned())
        }
        _ => None,
    };
    if let Some(hint) = hint {
        error.description = Some(match error.description.take() {
            Some(d) if !d.is_empty() => format!("{hint}: {d}"),
            _ => hint,
        });
    }
    error
}

/// Whether the `error_uri` names the persona-mismatch reason, raw or percent-encoded.
fn names_persona_mismatch(uri: Option<&str>) -> bool {
    uri.filter(|u| u.len() <= MAX_URI_SCANNED)
        .is_some_and(|u| u.to_ascii_lowercase().contains("client-persona-mismatch"))
}

/// The `persona=` query value of the `error_uri`, when it is a short plain word.
fn persona_named(uri: Option<&str>) -> Option<&str> {
    let uri = uri.filter(|u| u.len() <= MAX_URI_SCANNED)?;
    let query = uri.split_once('?')?.1;
    let value = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("persona="))?;
    (!value.is_empty() && value.len() <= 32 && value.bytes().all(|b| b.is_ascii_alphabetic()))
        .then_some(value)
}

#[cfg(test)]
mod tests {
    use smart_core::quirks::TokenGrant;
    use smart_core::{OAuthError, OAuthErrorCode};

    use super::{PERSONA_HINT, REFRESH_HINT, explain};

    const MISMATCH: &str = "https://authorization.cerner.com/errors/urn%3Acerner%3Aerror%3Aauthorization-server%3Aoauth2%3Agrant%3Aclient-persona-mismatch/instances/5e1c?persona=provider&client=abc&tenant=ec2458f2";

    fn error(code: OAuthErrorCode, uri: Option<&str>) -> OAuthError {
        OAuthError {
            code,
            description: None,
            uri: uri.map(str::to_owned),
        }
    }

    #[test]
    fn cerner_client_persona_mismatch() {
        let out = explain(
            None,
            error(OAuthErrorCode::UnauthorizedClient, Some(MISMATCH)),
        );
        let text = out.description.expect("a description");
        assert!(text.starts_with(PERSONA_HINT), "{text}");
        assert!(text.ends_with("(persona named: provider)"), "{text}");
        assert_eq!(out.uri.as_deref(), Some(MISMATCH), "error_uri kept");
        // Not percent-encoded, no persona in the query: still recognised, no persona claimed.
        let raw = "https://authorization.cerner.com/errors/urn:cerner:error:authorization-server:oauth2:grant:client-persona-mismatch/instances/1";
        let out = explain(None, error(OAuthErrorCode::UnauthorizedClient, Some(raw)));
        assert_eq!(out.description.as_deref(), Some(PERSONA_HINT));
        // A persona value that is not a plain word is not repeated.
        let odd = MISMATCH.replace("persona=provider", "persona=%3Cscript%3E");
        let out = explain(None, error(OAuthErrorCode::UnauthorizedClient, Some(&odd)));
        assert_eq!(out.description.as_deref(), Some(PERSONA_HINT));
        // Another unauthorized_client (no such reason) is left alone.
        let other = error(
            OAuthErrorCode::UnauthorizedClient,
            Some(
                "https://authorization.cerner.com/errors/urn%3Acerner%3Aerror%3Aother/instances/1",
            ),
        );
        assert_eq!(explain(None, other.clone()), other);
        // An absurdly long error_uri is kept but not searched.
        let long = format!("{MISMATCH}{}", "a".repeat(5000));
        let e = error(OAuthErrorCode::UnauthorizedClient, Some(&long));
        assert_eq!(explain(None, e.clone()), e);
    }

    #[test]
    fn cerner_error_uri_reapprove() {
        let uri = "https://authorization.cerner.com/errors/urn%3Acerner%3Aerror/instances/1";
        let suspended = OAuthError {
            code: OAuthErrorCode::InvalidGrant,
            description: Some("token suspended".into()),
            uri: Some(uri.into()),
        };
        let out = explain(Some(TokenGrant::RefreshToken), suspended.clone());
        assert_eq!(out.code, OAuthErrorCode::InvalidGrant);
        assert_eq!(out.uri.as_deref(), Some(uri), "error_uri is kept");
        assert_eq!(
            out.description,
            Some(format!("{REFRESH_HINT}: token suspended"))
        );
        // An expired code also carries an error_uri, but re-approving would not help.
        let expired_code = OAuthError {
            code: OAuthErrorCode::InvalidGrant,
            description: None,
            uri: Some("https://authorization.cerner.com/errors/urn%3Acerner%3Aerror%3Aauthorization-server%3Aoauth2%3Atoken%3Acode-invalid-or-expired/instances/1".into()),
        };
        assert_eq!(
            explain(Some(TokenGrant::AuthorizationCode), expired_code.clone()),
            expired_code
        );
        assert_eq!(explain(None, suspended.clone()), suspended);
    }

    #[test]
    fn cerner_refresh_unused_revocation() {
        // Without an error_uri (or a description) the refresh hint still names the causes.
        let out = explain(
            Some(TokenGrant::RefreshToken),
            error(OAuthErrorCode::InvalidGrant, None),
        );
        let text = out.description.expect("a description");
        assert!(text.contains("unused for more than three months"), "{text}");
        assert!(text.contains("re-approve"), "{text}");
        // Other refresh errors are not about revocation.
        let throttled = error(OAuthErrorCode::TemporarilyUnavailable, None);
        assert_eq!(
            explain(Some(TokenGrant::RefreshToken), throttled.clone()),
            throttled
        );
    }
}
