//! Printing: one-line errors, and the human and JSON views of a completed launch.

use std::error::Error;

use serde_json::{Value, json};
use smart_core::CompletedLaunch;
use smart_core::token::now_unix;

/// The error and its sources on one line, without repeating messages that embed their source.
pub(crate) fn one_line(error: &(dyn Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    message.replace('\n', " ")
}

fn or_dash(s: Option<&str>) -> String {
    s.map(str::to_owned).unwrap_or_else(|| "-".into())
}

fn secret_view(value: Option<&str>, show: bool) -> Value {
    match (value, show) {
        (None, _) => Value::Null,
        (Some(v), true) => Value::String(v.to_owned()),
        (Some(_), false) => Value::String("[redacted]".into()),
    }
}

/// The JSON view of a completed launch.
pub(crate) fn launch_json(done: &CompletedLaunch, show_tokens: bool) -> Value {
    let s = &done.session;
    let t = &s.tokens;
    json!({
        "session_id": done.session_id.as_str(),
        "fhir_base": s.fhir_base,
        "client_id": s.client_id,
        "launch": s.kind,
        "scopes": {
            "requested": s.requested_scopes.to_string(),
            "granted": t.granted_scopes.as_ref().map(ToString::to_string),
            "dropped": done.scopes.dropped.to_string(),
            "narrowed": done.scopes.narrowed.to_string(),
            "added": done.scopes.added.to_string(),
        },
        "context": s.context,
        "missing_context": done.missing_context,
        "identity": s.identity.as_ref().map(|i| json!({
            "iss": i.iss,
            "sub": i.sub,
            "fhirUser": i.fhir_user.as_ref().map(|u| u.url.clone()),
            "fhirUser_type": i.fhir_user.as_ref().map(|u| u.resource_type.clone()),
        })),
        "expires_at": t.expires_at,
        "expires_in": t.expires_at.map(|at| at.saturating_sub(now_unix())),
        "access_token": secret_view(Some(t.access_token.expose_secret()), show_tokens),
        "refresh_token": secret_view(t.refresh_token.as_ref().map(|r| r.expose_secret()), show_tokens),
        "id_token": secret_view(t.id_token.as_ref().map(|r| r.expose_secret()), show_tokens),
    })
}

/// The human view of a completed launch.
pub(crate) fn print_launch(done: &CompletedLaunch, show_tokens: bool) {
    let s = &done.session;
    let t = &s.tokens;
    let c = &s.context;
    let row = |k: &str, v: String| println!("  {k:<15}{v}");
    row("session", done.session_id.to_string());
    row("fhir base", s.fhir_base.clone());
    row(
        "granted",
        t.granted_scopes
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_else(|| "(not reported; assuming the request)".into()),
    );
    let none_if_empty = |s: String| if s.is_empty() { "-".to_owned() } else { s };
    row("dropped", none_if_empty(done.scopes.dropped.to_string()));
    if !done.scopes.narrowed.is_empty() {
        row("narrowed", done.scopes.narrowed.to_string());
    }
    row("patient", or_dash(c.patient.as_deref()));
    row("encounter", or_dash(c.encounter.as_deref()));
    if !c.fhir_context.is_empty() {
        let items: Vec<String> = c
            .fhir_context
            .iter()
            .map(|i| {
                let target = i
                    .reference
                    .clone()
                    .or_else(|| i.canonical.clone())
                    .unwrap_or_else(|| "identifier".into());
                format!("{target} ({})", i.role())
            })
            .collect();
        row("fhirContext", items.join(", "));
    }
    if let Some(b) = c.need_patient_banner {
        row(
            "banner",
            if b {
                "required".into()
            } else {
                "not needed".into()
            },
        );
    }
    if let Some(u) = &c.smart_style_url {
        row("style", u.clone());
    }
    if !c.extras.is_empty() {
        row(
            "extras",
            serde_json::to_string(&c.extras).unwrap_or_default(),
        );
    }
    if let Some(identity) = &s.identity {
        let user = identity
            .fhir_user
            .as_ref()
            .map(|u| u.url.clone())
            .unwrap_or_else(|| "(no fhirUser)".into());
        row(
            "identity",
            format!("{user} (verified id_token, sub {})", identity.sub),
        );
    }
    if !done.missing_context.is_empty() {
        row("missing", done.missing_context.join(", "));
    }
    let expiry = match t.expires_at {
        Some(at) => format!("expires in {} s", at.saturating_sub(now_unix())),
        None => "expiry not reported".into(),
    };
    let show = |v: &str| {
        if show_tokens {
            v.to_owned()
        } else {
            "[redacted]".to_owned()
        }
    };
    row(
        "access token",
        format!("{} ({expiry})", show(t.access_token.expose_secret())),
    );
    row(
        "refresh token",
        t.refresh_token
            .as_ref()
            .map(|r| show(r.expose_secret()))
            .unwrap_or_else(|| "none".into()),
    );
    if let Some(id) = &t.id_token {
        row("id token", show(id.expose_secret()));
    }
}
