//! The result of one FHIR interaction, before it becomes an HTTP response or
//! a `Bundle.entry.response` of a batch.
//!
//! Keeping the two renderings apart from the interaction logic is what lets a
//! batch or transaction entry behave exactly like the same request sent on
//! its own.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::time::{format_instant, http_date};

/// `application/fhir+json`, the FHIR JSON media type.
pub(crate) const FHIR_JSON: &str = "application/fhir+json";

pub(crate) const REALM: &str = "smart-sandbox";

/// An interaction's status, body and metadata headers.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Option<Value>,
    /// The body as ready JSON text (resources and search pages are written
    /// as text: much cheaper than building a `Value`); wins over `body`.
    pub(crate) raw: Option<String>,
    pub(crate) location: Option<String>,
    /// The version for `ETag: W/"n"`.
    pub(crate) version: Option<u32>,
    /// Unix milliseconds, for `Last-Modified`.
    pub(crate) last_modified: Option<i64>,
    /// A `WWW-Authenticate` challenge.
    pub(crate) challenge: Option<String>,
    /// The media type of the body ([`FHIR_JSON`] except for a vendor's
    /// plain-text errors).
    pub(crate) content_type: &'static str,
}

impl Reply {
    pub(crate) fn new(status: StatusCode, body: Option<Value>) -> Reply {
        Reply {
            status,
            body,
            raw: None,
            location: None,
            version: None,
            last_modified: None,
            challenge: None,
            content_type: FHIR_JSON,
        }
    }

    /// A `text/plain` body (some vendors answer errors so).
    pub(crate) fn plain_text(status: StatusCode, text: &str) -> Reply {
        let mut r = Reply::new(status, None);
        r.raw = Some(text.to_owned());
        r.content_type = "text/plain; charset=utf-8";
        r
    }

    /// A reply whose body is JSON text.
    pub(crate) fn text(status: StatusCode, raw: Option<String>) -> Reply {
        let mut r = Reply::new(status, None);
        r.raw = raw;
        r
    }

    /// The body as a `Value` (parsing `raw` if that is how it is held).
    pub(crate) fn body_value(&self) -> Option<Value> {
        if self.content_type != FHIR_JSON {
            return self
                .raw
                .as_ref()
                .map(|text| outcome("error", "processing", text));
        }
        match (&self.body, &self.raw) {
            (_, Some(raw)) => serde_json::from_str(raw).ok(),
            (Some(b), None) => Some(b.clone()),
            (None, None) => None,
        }
    }

    /// An OperationOutcome with one issue of severity `error`.
    pub(crate) fn error(status: StatusCode, code: &str, diagnostics: &str) -> Reply {
        Reply::new(status, Some(outcome("error", code, diagnostics)))
    }

    /// 400 `invalid`.
    pub(crate) fn invalid(diagnostics: &str) -> Reply {
        Reply::error(StatusCode::BAD_REQUEST, "invalid", diagnostics)
    }

    /// 404 `not-found` for a resource.
    pub(crate) fn not_found(resource_type: &str, id: &str) -> Reply {
        Reply::error(
            StatusCode::NOT_FOUND,
            "not-found",
            &format!("{resource_type}/{id} is not known to the sandbox"),
        )
    }

    /// 410 for a deleted resource.
    pub(crate) fn gone(resource_type: &str, id: &str, version: u32, at: i64) -> Reply {
        let mut r = Reply::error(
            StatusCode::GONE,
            "deleted",
            &format!("{resource_type}/{id} was deleted"),
        );
        r.version = Some(version);
        r.last_modified = Some(at);
        r
    }

    /// 403 `insufficient_scope` (RFC 6750 §3.1) with the scope that would
    /// have been needed.
    pub(crate) fn forbidden(description: &str, needed_scope: &str) -> Reply {
        let mut r = Reply::error(StatusCode::FORBIDDEN, "forbidden", description);
        r.challenge = Some(format!(
            "Bearer error=\"insufficient_scope\", error_description=\"{}\", scope=\"{}\", realm=\"{REALM}\"",
            quoted_string_safe(description),
            quoted_string_safe(needed_scope)
        ));
        r
    }

    /// 401 `invalid_token`.
    pub(crate) fn invalid_token(code: &str, description: &str) -> Reply {
        let mut r = Reply::error(StatusCode::UNAUTHORIZED, code, description);
        r.challenge = Some(format!(
            "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{}\"",
            quoted_string_safe(description)
        ));
        r
    }

    /// The HTTP response. `minimal`: drop the body of a successful write
    /// (`Prefer: return=minimal`).
    pub(crate) fn into_http(self, minimal: bool) -> Response {
        let keep_body = !(minimal && self.status.is_success());
        let text = match (self.raw, &self.body) {
            (Some(raw), _) => Some(raw),
            (None, Some(body)) => Some(body.to_string()),
            (None, None) => None,
        };
        let mut response = match text.filter(|_| keep_body) {
            Some(text) => (
                self.status,
                [(header::CONTENT_TYPE, self.content_type)],
                text,
            )
                .into_response(),
            None => self.status.into_response(),
        };
        let headers = response.headers_mut();
        let mut set = |name: header::HeaderName, value: String| {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        };
        if let Some(l) = self.location {
            set(header::LOCATION, l);
        }
        if let Some(v) = self.version {
            set(header::ETAG, format!("W/\"{v}\""));
        }
        if let Some(t) = self.last_modified {
            set(header::LAST_MODIFIED, http_date(t));
        }
        if let Some(c) = self.challenge {
            set(header::WWW_AUTHENTICATE, c);
        }
        response
    }

    /// [`Reply::into_entry`] as JSON text; a successful resource or page
    /// held as text is copied in as is, not parsed into a `Value` (a batch
    /// of searches would otherwise hold every page several times over).
    pub(crate) fn into_entry_text(mut self) -> String {
        if self.status.is_success()
            && self.content_type == FHIR_JSON
            && let Some(raw) = self.raw.take().filter(|r| !r.trim().is_empty())
        {
            self.body = None;
            let response = self
                .into_entry()
                .get("response")
                .cloned()
                .unwrap_or_default();
            return format!("{{\"resource\":{raw},\"response\":{response}}}");
        }
        self.into_entry().to_string()
    }

    /// `Bundle.entry.response` (and `resource`) for a batch or transaction.
    pub(crate) fn into_entry(self) -> Value {
        let body = self.body_value();
        let reason = self.status.canonical_reason().unwrap_or("");
        let mut response = json!({
            "status": format!("{} {reason}", self.status.as_u16()).trim_end().to_owned()
        });
        if let Some(l) = self.location {
            response["location"] = json!(l);
        }
        if let Some(v) = self.version {
            response["etag"] = json!(format!("W/\"{v}\""));
        }
        if let Some(t) = self.last_modified {
            response["lastModified"] = json!(format_instant(t));
        }
        let mut entry = json!({});
        match body {
            Some(body) if !self.status.is_success() => response["outcome"] = body,
            Some(body) => entry["resource"] = body,
            None => {}
        }
        entry["response"] = response;
        entry
    }
}

/// An OperationOutcome with one issue.
pub(crate) fn outcome(severity: &str, code: &str, diagnostics: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{
            "severity": severity,
            "code": code,
            "diagnostics": diagnostics
        }]
    })
}

/// Keeps only characters RFC 6750 allows in a quoted header value
/// (printable ASCII except `"` and `\\`).
pub(crate) fn quoted_string_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if (' '..='~').contains(&c) && c != '"' && c != '\\' {
                c
            } else {
                '?'
            }
        })
        .collect()
}
