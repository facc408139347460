//! Verified identity: OpenID Connect `id_token` validation and `fhirUser`.
//!
//! When `openid` is granted the token response carries an `id_token`. It is only worth anything
//! once verified, which most SMART clients skip. The [`IdTokenVerifier`] does it properly:
//!
//! 1. the expected issuer comes from discovery (the adapter's [`id_token_issuer`] hook: Epic and
//!    Oracle Health issue `id_token`s from another URL than the FHIR base);
//! 2. `{issuer}/.well-known/openid-configuration` is fetched (cached) and must name the same
//!    issuer; its `jwks_uri` gives the keys (cached, and refetched **once** on an unknown `kid`,
//!    which is how key rotation shows up);
//! 3. the signature is checked with an algorithm allowlist (never `none`, never an HMAC keyed with
//!    a public key), then `iss`, `aud` ∋ client id (and `azp` when present), `exp` and `iat` with
//!    60 s leeway, `nonce` when one was sent, and a non-empty `sub` of at most 255 characters;
//! 4. `fhirUser` (or the older `profile` claim) is normalised to `{type, id, absolute URL}`,
//!    whether the server sent it absolute or relative to the FHIR base.
//!
//! [`id_token_issuer`]: crate::quirks::VendorQuirks::id_token_issuer

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use smart_jose::{Algorithm, JoseError, Jwks, Validation};
use url::Url;

use crate::discovery::{SlotCache, SlotFailure};
use crate::http::{HttpClient, HttpError, check_transport_security_for, redact_url};
use crate::server_text::{escape_controls, excerpt};

/// The resource types a `fhirUser` may name.
pub const FHIR_USER_TYPES: &[&str] = &[
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "RelatedPerson",
    "Person",
];

/// The algorithms accepted for `id_token` signatures by default (RS256 is what SMART requires
/// servers to use).
pub const DEFAULT_ID_TOKEN_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// The user a `fhirUser` claim points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FhirUser {
    /// `Patient`, `Practitioner`, `PractitionerRole`, `RelatedPerson` or `Person`.
    pub resource_type: String,
    /// The resource id.
    pub id: String,
    /// The absolute URL of the resource.
    pub url: String,
}

impl FhirUser {
    /// Parses an absolute or relative (`Practitioner/123`) reference, resolving relative ones
    /// against `fhir_base`. `None` when it does not name one of [`FHIR_USER_TYPES`].
    pub fn parse(value: &str, fhir_base: &str) -> Option<FhirUser> {
        let value = value.trim();
        let absolute = if value.starts_with("http://") || value.starts_with("https://") {
            value.to_owned()
        } else {
            format!(
                "{}/{}",
                fhir_base.trim_end_matches('/'),
                value.trim_start_matches('/')
            )
        };
        let url = url::Url::parse(&absolute).ok()?;
        let segments: Vec<&str> = url.path_segments()?.filter(|s| !s.is_empty()).collect();
        // …/Type/id or …/Type/id/_history/n
        let (resource_type, id) = match segments.as_slice() {
            [.., t, id, "_history", _] => (*t, *id),
            [.., t, id] => (*t, *id),
            _ => return None,
        };
        if !FHIR_USER_TYPES.contains(&resource_type) || id.is_empty() {
            return None;
        }
        Some(FhirUser {
            resource_type: resource_type.to_owned(),
            id: id.to_owned(),
            url: absolute,
        })
    }
}

/// A verified `id_token`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifiedIdentity {
    /// The issuer.
    pub iss: String,
    /// The subject.
    pub sub: String,
    /// The user as a FHIR resource, from `fhirUser` or the older `profile` claim.
    pub fhir_user: Option<FhirUser>,
    /// All claims, verified.
    pub claims: Map<String, Value>,
}

/// Why an `id_token` was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The OIDC configuration or JWKS could not be fetched.
    #[error("could not fetch {what} from {url}: {}", excerpt(reason, 300))]
    Fetch {
        /// `openid-configuration` or `JWKS`.
        what: &'static str,
        /// Where (redacted).
        url: String,
        /// Why.
        reason: String,
    },
    /// The OIDC configuration names another issuer than expected.
    #[error("the OpenID configuration at {url} names issuer `{found}`, expected `{expected}`")]
    IssuerMismatch {
        /// Where.
        url: String,
        /// Expected issuer.
        expected: String,
        /// Issuer found.
        found: String,
    },
    /// The token failed verification.
    #[error("the id_token was rejected: {}; refusing the sign-in", escape_controls(&.0.to_string()))]
    Invalid(#[from] JoseError),
    /// A claim check beyond the signature failed.
    #[error("the id_token was rejected: {}; refusing the sign-in", escape_controls(.0))]
    Claim(String),
    /// The issuer's configuration could not be discovered.
    #[error(transparent)]
    Discovery(crate::error::DiscoveryError),
    /// `openid` was granted but no `id_token` came back.
    #[error("openid was granted but the token response has no id_token")]
    Missing,
}

impl IdentityError {
    /// What the failure means for the app: keys or configuration that cannot be fetched are
    /// temporary; an `id_token` that does not check out is the server's problem (or an attack),
    /// and the sign-in is refused.
    pub fn kind(&self) -> crate::error_kind::ErrorKind {
        use crate::error_kind::ErrorKind;
        match self {
            IdentityError::Fetch { .. } => ErrorKind::Temporary,
            IdentityError::Discovery(e) => e.kind(),
            IdentityError::IssuerMismatch { .. }
            | IdentityError::Invalid(_)
            | IdentityError::Claim(_)
            | IdentityError::Missing => ErrorKind::ServerBroken,
        }
    }

    /// Whether retrying later may succeed.
    pub fn is_temporary(&self) -> bool {
        self.kind().is_temporary()
    }
}

#[derive(Debug, Clone, Deserialize)]
struct OidcConfiguration {
    issuer: String,
    jwks_uri: String,
}

#[derive(Debug, Clone)]
struct IssuerKeys {
    jwks: Jwks,
}

/// How many issuers' keys an [`IdTokenVerifier`] keeps at most.
pub const MAX_CACHED_ISSUERS: usize = 256;

/// How long a failed fetch of an issuer's configuration or keys is remembered before it is tried
/// again (so that callers queued behind a failing issuer do not each wait for their own timeout).
pub const KEY_FETCH_NEGATIVE_TTL: Duration = Duration::from_secs(5);

/// Verifies `id_token`s, caching each issuer's configuration and keys.
///
/// Each issuer has its own cache slot: fetching one issuer's OpenID configuration and JWKS (which
/// may take as long as the HTTP timeout) delays only the sign-ins at that issuer, and concurrent
/// sign-ins at it share one fetch. At most [`MAX_CACHED_ISSUERS`] issuers are kept; entries expire
/// after the verifier's TTL, failures after [`KEY_FETCH_NEGATIVE_TTL`].
#[derive(Debug)]
pub struct IdTokenVerifier {
    algorithms: Vec<Algorithm>,
    cache: SlotCache<IssuerKeys>,
}

impl Default for IdTokenVerifier {
    fn default() -> Self {
        IdTokenVerifier::new(DEFAULT_ID_TOKEN_ALGORITHMS, Duration::from_secs(3600))
    }
}

/// What the verifier checks a token against.
#[derive(Debug, Clone, Copy)]
pub struct Expectations<'a> {
    /// The `iss` the token must carry.
    pub issuer: &'a str,
    /// The issuer whose OpenID configuration gives the keys (usually the same as `issuer`).
    pub configuration_issuer: &'a str,
    /// The accepted signature algorithms.
    pub algorithms: &'a [Algorithm],
    /// The client id (must be in `aud`).
    pub client_id: &'a str,
    /// The FHIR base, for relative `fhirUser` values.
    pub fhir_base: &'a str,
    /// The nonce sent in the authorization request, if any.
    pub nonce: Option<&'a str>,
}

impl IdTokenVerifier {
    /// A verifier accepting `algorithms`, caching keys for `ttl`.
    pub fn new(algorithms: &[Algorithm], ttl: Duration) -> Self {
        IdTokenVerifier {
            algorithms: algorithms.to_vec(),
            cache: SlotCache::new(ttl, KEY_FETCH_NEGATIVE_TTL, MAX_CACHED_ISSUERS),
        }
    }

    /// Verifies `id_token`.
    #[tracing::instrument(name = "smart.verify_id_token", skip_all, fields(issuer = %expect.issuer))]
    pub async fn verify(
        &self,
        http: &dyn HttpClient,
        id_token: &str,
        expect: Expectations<'_>,
    ) -> Result<VerifiedIdentity, IdentityError> {
        let claims = self
            .signed_claims(http, id_token, &expect, Some(expect.client_id))
            .await?;
        let text = |k: &str| claims.get(k).and_then(Value::as_str);
        let sub = text("sub").unwrap_or_default();
        if sub.is_empty() || sub.len() > 255 {
            return Err(IdentityError::Claim(
                "`sub` must be 1 to 255 characters".into(),
            ));
        }
        let multiple_audiences = claims
            .get("aud")
            .and_then(Value::as_array)
            .is_some_and(|a| a.len() > 1);
        match text("azp") {
            Some(azp) if azp != expect.client_id => {
                return Err(IdentityError::Claim(format!(
                    "`azp` is `{}`, not this client",
                    excerpt(azp, 100)
                )));
            }
            None if multiple_audiences => {
                return Err(IdentityError::Claim(
                    "several audiences and no `azp`".into(),
                ));
            }
            _ => {}
        }
        if let Some(sent) = expect.nonce
            && text("nonce") != Some(sent)
        {
            return Err(IdentityError::Claim(
                "`nonce` does not match the one sent".into(),
            ));
        }
        let fhir_user = text("fhirUser")
            .or_else(|| text("profile"))
            .and_then(|v| {
                let parsed = FhirUser::parse(v, expect.fhir_base);
                if parsed.is_none() {
                    tracing::warn!("fhirUser does not name a Patient, Practitioner, PractitionerRole, RelatedPerson or Person; ignored");
                }
                parsed
            });
        Ok(VerifiedIdentity {
            iss: text("iss").unwrap_or_default().to_owned(),
            sub: sub.to_owned(),
            fhir_user,
            claims,
        })
    }

    /// Checks the signature with the issuer's keys (refetched once on an unknown `kid`) and
    /// `iss`, `sub`, `exp`, `iat` — and `aud` when `audience` is given — and returns the claims.
    /// Sign-in verification and the refreshed-`id_token` comparison share it.
    async fn signed_claims(
        &self,
        http: &dyn HttpClient,
        id_token: &str,
        expect: &Expectations<'_>,
        audience: Option<&str>,
    ) -> Result<Map<String, Value>, IdentityError> {
        let algorithms: Vec<Algorithm> = expect
            .algorithms
            .iter()
            .copied()
            .filter(|a| self.algorithms.contains(a))
            .collect();
        let mut validation = Validation::new(&algorithms);
        validation.issuer = Some(expect.issuer.to_owned());
        validation.leeway = 60;
        let mut required = vec!["iss", "sub", "exp", "iat"];
        if let Some(audience) = audience {
            validation.audience = Some(audience.to_owned());
            required.push("aud");
        }
        validation.required_claims = required.into_iter().map(str::to_owned).collect();

        let (fetched_at, keys) = self.keys(http, expect.configuration_issuer, None).await?;
        let verified = match smart_jose::verify(id_token, &keys.jwks, &validation) {
            Err(JoseError::UnknownKey { .. }) => {
                tracing::debug!("unknown kid: refetching the issuer's JWKS once");
                let (_, keys) = self
                    .keys(http, expect.configuration_issuer, Some(fetched_at))
                    .await?;
                smart_jose::verify(id_token, &keys.jwks, &validation)?
            }
            other => other?,
        };
        Ok(verified.claims)
    }

    /// The issuer's keys and when they were fetched. `stale_if_fetched_before`: refetch unless
    /// the keys are newer than that (an unknown `kid` with keys fetched then).
    async fn keys(
        &self,
        http: &dyn HttpClient,
        issuer: &str,
        stale_if_fetched_before: Option<Instant>,
    ) -> Result<(Instant, IssuerKeys), IdentityError> {
        let lookup = self
            .cache
            .get_or_fetch(issuer, stale_if_fetched_before, || {
                fetch_issuer_keys(http, issuer)
            })
            .await;
        match lookup {
            Ok(found) => Ok(found),
            Err(SlotFailure::Fresh(e)) => Err(e),
            Err(SlotFailure::Remembered { reason, retry_in }) => Err(IdentityError::Fetch {
                what: "keys",
                url: redact_url(issuer),
                reason: format!(
                    "a fetch moments ago failed, retried in {} s: {reason}",
                    retry_in.as_secs().max(1)
                ),
            }),
        }
    }
}

/// Fetches `{issuer}/.well-known/openid-configuration`, checks that it names `issuer`, and fetches
/// its JWKS. For an `https` issuer the JWKS must be `https` too.
async fn fetch_issuer_keys(
    http: &dyn HttpClient,
    issuer: &str,
) -> Result<IssuerKeys, IdentityError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let issuer_url = Url::parse(&url).map_err(|e| IdentityError::Fetch {
        what: "openid-configuration",
        url: redact_url(&url),
        reason: e.to_string(),
    })?;
    let config: OidcConfiguration =
        fetch_json(http, &url, &issuer_url, "openid-configuration").await?;
    if config.issuer != issuer {
        return Err(IdentityError::IssuerMismatch {
            url: redact_url(&url),
            expected: issuer.to_owned(),
            found: excerpt(&config.issuer, 200),
        });
    }
    let jwks: Jwks = fetch_json(http, &config.jwks_uri, &issuer_url, "JWKS").await?;
    Ok(IssuerKeys { jwks })
}

async fn fetch_json<T: serde::de::DeserializeOwned>(
    http: &dyn HttpClient,
    url: &str,
    issuer_url: &Url,
    what: &'static str,
) -> Result<T, IdentityError> {
    let fail = |reason: String| IdentityError::Fetch {
        what,
        url: redact_url(url),
        reason,
    };
    let parsed = url::Url::parse(url).map_err(|e| fail(e.to_string()))?;
    check_transport_security_for(&parsed, issuer_url).map_err(|e| fail(e.to_string()))?;
    let request = http::Request::get(url)
        .header(http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|e| fail(e.to_string()))?;
    let response = http
        .execute(request)
        .await
        .map_err(|e: HttpError| fail(e.to_string()))?;
    if !response.status().is_success() {
        return Err(fail(format!("HTTP {}", response.status())));
    }
    serde_json::from_slice(response.body()).map_err(|e| fail(format!("invalid JSON: {e}")))
}

// Refreshed `id_token`s (OpenID Connect Core §12.2) are checked with this module's cached keys.
#[path = "refresh_identity.rs"]
mod refresh_identity;
pub use refresh_identity::RefreshWarning;
pub(crate) use refresh_identity::RefreshedIdentity;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fhir_user_absolute_relative_and_history() {
        let base = "https://ehr.example/fhir";
        let rel = FhirUser::parse("Practitioner/123", base).expect("relative");
        assert_eq!(rel.url, "https://ehr.example/fhir/Practitioner/123");
        assert_eq!(
            (rel.resource_type.as_str(), rel.id.as_str()),
            ("Practitioner", "123")
        );
        let abs = FhirUser::parse("https://other.example/r4/Patient/p9/_history/2", base)
            .expect("absolute");
        assert_eq!(
            (abs.resource_type.as_str(), abs.id.as_str()),
            ("Patient", "p9")
        );
        assert!(FhirUser::parse("Observation/1", base).is_none());
        assert!(FhirUser::parse("Patient", base).is_none());
        assert!(FhirUser::parse("PractitionerRole/r1", base).is_some());
    }
}
