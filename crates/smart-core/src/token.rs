//! Token responses: the tokens, when they expire, what was granted, and the launch context.
//!
//! The JSON a token endpoint returns is read field by field rather than through a derived
//! struct, so that every oddity seen in the field (a `token_type` of `bearer`, `expires_in` as a
//! string, `need_patient_banner` as `"false"`, `fhirContext` as 2.0 strings or 2.1+ objects) is
//! accepted where it is harmless and reported as a typed error where it is not. Fields the
//! framework does not model are kept in [`LaunchContext::extras`]; nothing the server sent is
//! lost. Access tokens are never decoded: their format is the server's business.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use smart_scopes::Scopes;

use crate::secret::{AccessToken, IdToken, RefreshToken};

/// Seconds since the Unix epoch, the unit every stored time uses (portable across processes
/// and stores).
pub type UnixTime = u64;

/// The current time in [`UnixTime`].
pub fn now_unix() -> UnixTime {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The tokens of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenSet {
    /// The bearer token for FHIR calls.
    pub access_token: AccessToken,
    /// When the access token expires, if the server said (`expires_in`, counted from receipt).
    pub expires_at: Option<UnixTime>,
    /// The refresh token, if one was granted.
    pub refresh_token: Option<RefreshToken>,
    /// The OpenID Connect `id_token`, if one was issued (not yet verified).
    pub id_token: Option<IdToken>,
    /// The granted scopes. `None` when the server did not say (then assume the request).
    pub granted_scopes: Option<Scopes>,
    /// When this token set was received.
    pub received_at: UnixTime,
}

impl TokenSet {
    /// Whether the access token expires within `margin` of `now` (or already has). Tokens without
    /// a known expiry never count as expiring.
    pub fn expires_within(&self, now: UnixTime, margin: Duration) -> bool {
        self.expires_at
            .is_some_and(|at| at <= now.saturating_add(margin.as_secs()))
    }
}

/// One `fhirContext` entry: 2.0 sent relative-reference strings, 2.1+ sends objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FhirContextItem {
    /// A relative reference `Type/id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// A canonical URL, optionally `|version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canonical: Option<String>,
    /// A FHIR Identifier object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Value>,
    /// The resource type (recommended with `canonical` or `identifier`).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    /// The role URI; absent means `launch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl FhirContextItem {
    /// The role, with the spec's default `launch` when absent.
    pub fn role(&self) -> &str {
        self.role.as_deref().unwrap_or("launch")
    }

    fn from_value(v: &Value) -> Option<FhirContextItem> {
        match v {
            Value::String(reference) if !reference.trim().is_empty() => Some(FhirContextItem {
                reference: Some(reference.clone()),
                canonical: None,
                identifier: None,
                resource_type: reference.split('/').next().map(str::to_owned),
                role: None,
            }),
            Value::Object(_) => {
                let item: FhirContextItem = serde_json::from_value(v.clone()).ok()?;
                let has_target = item.reference.is_some()
                    || item.canonical.is_some()
                    || item.identifier.is_some();
                has_target.then_some(item)
            }
            _ => None,
        }
    }
}

/// The launch context a token response carries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LaunchContext {
    /// Patient id in context (a resource id, not a URL).
    pub patient: Option<String>,
    /// Encounter id in context.
    pub encounter: Option<String>,
    /// Other context resources.
    pub fhir_context: Vec<FhirContextItem>,
    /// Whether the app must show a patient banner. `None` = not said (show one to be safe).
    pub need_patient_banner: Option<bool>,
    /// URL of the EHR's style sheet for embedded apps.
    pub smart_style_url: Option<String>,
    /// Launch intent agreed out of band.
    pub intent: Option<String>,
    /// Opaque id of the launching organisation.
    pub tenant: Option<String>,
    /// Every other non-token field of the response (vendor keys, `__`-prefixed extensions,
    /// values of modelled fields that had an unusable type), verbatim.
    pub extras: Map<String, Value>,
}

/// A parsed token response.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenResponse {
    /// The tokens and their lifetime.
    pub tokens: TokenSet,
    /// The launch context.
    pub context: LaunchContext,
}

/// What makes a token response unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenResponseError {
    /// The body is not a JSON object.
    #[error("the body is not a JSON object")]
    NotAnObject,
    /// A required field is missing or empty.
    #[error("required field `{0}` is missing or empty")]
    Missing(&'static str),
    /// A field has a type or value the framework cannot use.
    #[error("field `{field}` is invalid: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

impl TokenResponseError {
    /// Always [`ErrorKind::ServerBroken`](crate::error_kind::ErrorKind::ServerBroken): the server
    /// sent a token response that breaks the protocol.
    pub fn kind(&self) -> crate::error_kind::ErrorKind {
        crate::error_kind::ErrorKind::ServerBroken
    }

    /// Whether retrying later may succeed.
    pub fn is_temporary(&self) -> bool {
        self.kind().is_temporary()
    }
}

const TOKEN_FIELDS: &[&str] = &[
    "access_token",
    "token_type",
    "expires_in",
    "refresh_token",
    "id_token",
    "scope",
];

/// Parses a token response object received at `now`.
pub fn parse_token_response(
    mut body: Map<String, Value>,
    now: UnixTime,
) -> Result<TokenResponse, TokenResponseError> {
    let access_token = match body.get("access_token") {
        Some(Value::String(s)) if !s.is_empty() => AccessToken::new(s.clone()),
        _ => return Err(TokenResponseError::Missing("access_token")),
    };
    match body.get("token_type") {
        Some(Value::String(t)) if t.eq_ignore_ascii_case("bearer") => {}
        None => tracing::warn!("token response has no token_type; assuming Bearer"),
        Some(Value::String(t)) => {
            return Err(TokenResponseError::Invalid {
                field: "token_type",
                reason: format!("`{t}` is not supported (only Bearer)"),
            });
        }
        Some(_) => {
            return Err(TokenResponseError::Invalid {
                field: "token_type",
                reason: "not a string".into(),
            });
        }
    }
    let (expires_in, unusable_expires_in) = match body.get("expires_in").map(expires_in_seconds) {
        None | Some(Ok(None)) => (None, None),
        Some(Ok(Some(seconds))) => (Some(seconds), None),
        Some(Err(reason)) => {
            tracing::warn!(
                "token response has an unusable expires_in ({reason}); treating the expiry as unknown"
            );
            (None, body.get("expires_in").cloned())
        }
    };
    let refresh_token = optional_string(&body, "refresh_token")?.map(RefreshToken::new);
    let id_token = optional_string(&body, "id_token")?.map(IdToken::new);
    let granted_scopes = optional_string(&body, "scope")?.map(|s| Scopes::parse(&s));
    if let Some(granted) = &granted_scopes
        && granted.omitted() > 0
    {
        tracing::warn!(
            kept = granted.len(),
            omitted = granted.omitted(),
            "the granted scope list is longer than the {} scopes kept; the rest were left out",
            smart_scopes::MAX_SCOPES
        );
    }

    for field in TOKEN_FIELDS {
        body.remove(*field);
    }
    if let Some(raw) = unusable_expires_in {
        // Kept for the caller, like every other value the framework cannot use.
        body.insert("expires_in".into(), raw);
    }
    let context = launch_context_from(body);
    Ok(TokenResponse {
        tokens: TokenSet {
            access_token,
            expires_at: expires_in.map(|s| now.saturating_add(s)),
            refresh_token,
            id_token,
            granted_scopes,
            received_at: now,
        },
        context,
    })
}

/// The longest access-token lifetime taken from `expires_in` (one year). Longer values are
/// clamped to it: a token that lives longer is simply refreshed earlier than needed, and every
/// expiry stays far from the limits of time arithmetic.
pub const MAX_EXPIRES_IN: u64 = 365 * 24 * 60 * 60;

/// `expires_in` as whole seconds, clamped to [`MAX_EXPIRES_IN`]: a non-negative integer, a
/// non-negative number with a fraction (rounded down), or either as a string (any number of
/// digits). `Ok(None)` for `null`; `Err` with the reason for anything else (negative, not a
/// number).
fn expires_in_seconds(value: &Value) -> Result<Option<u64>, String> {
    fn from_f64(f: f64) -> Result<u64, String> {
        if !f.is_finite() || f < 0.0 {
            return Err(format!("{f} is not a non-negative number of seconds"));
        }
        // Clamped before the conversion, so the cast never saturates on its own.
        Ok(f.min(MAX_EXPIRES_IN as f64) as u64)
    }
    let seconds = match value {
        Value::Null => return Ok(None),
        Value::Number(n) => match (n.as_u64(), n.as_f64()) {
            (Some(whole), _) => whole,
            (None, Some(f)) => from_f64(f)?,
            (None, None) => return Err(format!("{n} is not a number of seconds")),
        },
        Value::String(s) => {
            let t = s.trim();
            if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                // All digits: too many for u64 still means "very long".
                t.parse::<u64>().unwrap_or(u64::MAX)
            } else {
                let shown: String = t.chars().take(32).collect();
                let f = t.parse::<f64>().map_err(|_| {
                    format!("`{}` is not a number of seconds", shown.escape_debug())
                })?;
                from_f64(f)?
            }
        }
        _ => return Err("not a number".into()),
    };
    Ok(Some(seconds.min(MAX_EXPIRES_IN)))
}

fn optional_string(
    body: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, TokenResponseError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(TokenResponseError::Invalid {
            field,
            reason: "not a string".into(),
        }),
    }
}

/// Moves the launch-context fields out of `body`; what is left (or unusable) becomes extras.
pub(crate) fn launch_context_from(mut body: Map<String, Value>) -> LaunchContext {
    fn take_string(body: &mut Map<String, Value>, key: &str) -> Option<String> {
        match body.remove(key) {
            Some(Value::String(s)) => Some(s),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::Null) | None => None,
            Some(other) => {
                body.insert(key.to_owned(), other);
                None
            }
        }
    }
    let patient = take_string(&mut body, "patient");
    let encounter = take_string(&mut body, "encounter");
    let smart_style_url = take_string(&mut body, "smart_style_url");
    let intent = take_string(&mut body, "intent");
    let tenant = take_string(&mut body, "tenant");

    let need_patient_banner = match body.remove("need_patient_banner") {
        Some(Value::Bool(b)) => Some(b),
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("true") => Some(true),
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("false") => Some(false),
        Some(Value::Null) | None => None,
        Some(other) => {
            tracing::warn!("unusable need_patient_banner value kept in extras");
            body.insert("need_patient_banner".into(), other);
            None
        }
    };

    let fhir_context = match body.remove("fhirContext") {
        Some(Value::Array(items)) => {
            let parsed: Vec<_> = items
                .iter()
                .filter_map(FhirContextItem::from_value)
                .collect();
            if parsed.len() != items.len() {
                tracing::warn!(
                    "some fhirContext entries were unusable; the raw array is kept in extras"
                );
                body.insert("fhirContext".into(), Value::Array(items));
            }
            parsed
        }
        Some(Value::Null) | None => Vec::new(),
        Some(other) => {
            body.insert("fhirContext".into(), other);
            Vec::new()
        }
    };

    LaunchContext {
        patient,
        encounter,
        fhir_context,
        need_patient_banner,
        smart_style_url,
        intent,
        tenant,
        extras: body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn full_response_with_every_context_field() {
        let r = parse_token_response(
            obj(json!({
                "access_token":"at","token_type":"bearer","expires_in":"3600","scope":"launch patient/*.rs",
                "refresh_token":"rt","patient":"123","encounter":"e1","need_patient_banner":"false",
                "smart_style_url":"https://ehr/style.json","intent":"reconcile","tenant":"t1",
                "fhirContext":["Appointment/1",{"reference":"List/2","role":"https://r"},
                                {"canonical":"https://q|1","type":"Questionnaire"}],
                "__epic.dstu2.patient":"abc","location":"L1"
            })),
            1000,
        )
        .expect("valid");
        assert_eq!(r.tokens.expires_at, Some(4600));
        assert_eq!(r.tokens.access_token.expose_secret(), "at");
        assert_eq!(
            r.tokens.refresh_token.as_ref().map(|t| t.expose_secret()),
            Some("rt")
        );
        assert_eq!(r.tokens.granted_scopes.as_ref().map(|s| s.len()), Some(2));
        assert_eq!(r.context.patient.as_deref(), Some("123"));
        assert_eq!(r.context.need_patient_banner, Some(false));
        assert_eq!(r.context.fhir_context.len(), 3);
        assert_eq!(
            r.context.fhir_context[0].resource_type.as_deref(),
            Some("Appointment")
        );
        assert_eq!(r.context.fhir_context[0].role(), "launch");
        assert_eq!(r.context.fhir_context[1].role(), "https://r");
        assert_eq!(
            r.context.extras.get("__epic.dstu2.patient"),
            Some(&json!("abc"))
        );
        assert_eq!(r.context.extras.get("location"), Some(&json!("L1")));
        assert!(!r.context.extras.contains_key("access_token"));
    }

    #[test]
    fn typed_errors_for_unusable_responses() {
        assert_eq!(
            parse_token_response(obj(json!({"token_type":"Bearer"})), 0),
            Err(TokenResponseError::Missing("access_token"))
        );
        assert!(matches!(
            parse_token_response(obj(json!({"access_token":"a","token_type":"mac"})), 0),
            Err(TokenResponseError::Invalid {
                field: "token_type",
                ..
            })
        ));
    }

    #[test]
    fn hostile_expires_in_is_clamped_or_unknown_never_an_overflow() {
        let at = |v: Value| {
            parse_token_response(
                obj(json!({"access_token":"a","token_type":"Bearer","expires_in":v})),
                u64::MAX - 10,
            )
            .expect("the tokens are kept")
        };
        let max = u64::MAX;
        assert_eq!(at(json!(max)).tokens.expires_at, Some(u64::MAX));
        assert_eq!(at(json!(60)).tokens.expires_at, Some(u64::MAX));
        let r = |v: Value| {
            parse_token_response(
                obj(json!({"access_token":"a","token_type":"Bearer","expires_in":v})),
                1000,
            )
            .expect("the tokens are kept")
        };
        assert_eq!(r(json!(max)).tokens.expires_at, Some(1000 + MAX_EXPIRES_IN));
        assert_eq!(
            r(json!("18446744073709551616999")).tokens.expires_at,
            Some(1000 + MAX_EXPIRES_IN)
        );
        assert_eq!(
            r(json!(1e300)).tokens.expires_at,
            Some(1000 + MAX_EXPIRES_IN)
        );
        assert_eq!(r(json!(3600.9)).tokens.expires_at, Some(4600));
        assert_eq!(r(json!(" 3600.9 ")).tokens.expires_at, Some(4600));
        for unusable in [
            json!(-5),
            json!(-0.5),
            json!("-5"),
            json!("soon"),
            json!("NaN"),
            json!(true),
            json!({}),
        ] {
            let parsed = r(unusable.clone());
            assert_eq!(parsed.tokens.expires_at, None, "{unusable}");
            assert_eq!(parsed.context.extras.get("expires_in"), Some(&unusable));
        }
    }

    #[test]
    fn odd_values_are_kept_not_lost() {
        let r = parse_token_response(
            obj(
                json!({"access_token":"a","token_type":"BEARER","need_patient_banner":"maybe",
                       "fhirContext":[42, "Patient/1"]}),
            ),
            0,
        )
        .expect("valid");
        assert_eq!(r.context.need_patient_banner, None);
        assert_eq!(
            r.context.extras.get("need_patient_banner"),
            Some(&json!("maybe"))
        );
        assert_eq!(r.context.fhir_context.len(), 1);
        assert_eq!(
            r.context.extras.get("fhirContext"),
            Some(&json!([42, "Patient/1"]))
        );
        assert_eq!(r.tokens.expires_at, None);
    }
}
