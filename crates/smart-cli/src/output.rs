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
    crate::terminal::clean_or_dash(s)
}

fn secret_view(value: Option<&str>, show: bool) -> Value {
    match (value, show) {
        (None, _) => Value::Null,
        (Some(v), true) => Value::String(v.to_owned()),
        (Some(_), false) => Value::String("[redacted]".into()),
    }
}

/// The JSON view of a completed launch stored as `name`. Credentials a server echoed into the
/// launch context are redacted like the tokens themselves; the session id (a credential too)
/// is never printed: the name selects the session.
pub(crate) fn launch_json(done: &CompletedLaunch, name: &str, show_tokens: bool) -> Value {
    let s = &done.session;
    let t = &s.tokens;
    let mut context = serde_json::to_value(&s.context).unwrap_or(Value::Null);
    if !show_tokens {
        crate::terminal::redact_secrets(&mut context);
    }
    json!({
        "session": name,
        "fhir_base": s.fhir_base,
        "client_id": s.client_id,
        "launch": s.kind,
        "adapter": s.adapter.as_ref().map(|a| a.adapter.clone()),
        "adapter_reason": s.adapter.as_ref().map(|a| a.reason.clone()),
        "scopes": {
            "requested": s.requested_scopes.to_string(),
            "granted": t.granted_scopes.as_ref().map(ToString::to_string),
            "dropped": done.scopes.dropped.to_string(),
            "narrowed": done.scopes.narrowed.to_string(),
            "added": done.scopes.added.to_string(),
        },
        "context": context,
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

/// The human view of a completed launch, printed to stdout. Every server-supplied value has its
/// control characters escaped.
pub(crate) fn print_launch(
    done: &CompletedLaunch,
    name: &str,
    show_tokens: bool,
) -> std::io::Result<()> {
    crate::terminal::print(&launch_text(done, name, show_tokens))
}

/// The text of [`print_launch`].
fn launch_text(done: &CompletedLaunch, name: &str, show_tokens: bool) -> String {
    use crate::terminal::clean;
    let s = &done.session;
    let t = &s.tokens;
    let c = &s.context;
    let mut text = String::new();
    let mut row = |k: &str, v: String| text.push_str(&format!("  {k:<15}{v}\n"));
    row("session", name.to_owned());
    if let Some(adapter) = &s.adapter {
        row(
            "adapter",
            format!("{} ({})", clean(&adapter.adapter), clean(&adapter.reason)),
        );
    }
    row("fhir base", clean(&s.fhir_base).into_owned());
    row(
        "granted",
        t.granted_scopes
            .as_ref()
            .map(|g| clean(&g.to_string()).into_owned())
            .unwrap_or_else(|| "(not reported; assuming the request)".into()),
    );
    let none_if_empty = |s: String| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            clean(&s).into_owned()
        }
    };
    row("dropped", none_if_empty(done.scopes.dropped.to_string()));
    if !done.scopes.narrowed.is_empty() {
        row(
            "narrowed",
            clean(&done.scopes.narrowed.to_string()).into_owned(),
        );
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
                format!("{} ({})", clean(&target), clean(i.role()))
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
        row("style", clean(u).into_owned());
    }
    if !c.extras.is_empty() {
        let mut extras = Value::Object(c.extras.clone());
        if !show_tokens {
            crate::terminal::redact_secrets(&mut extras);
        }
        row(
            "extras",
            clean(&serde_json::to_string(&extras).unwrap_or_default()).into_owned(),
        );
    }
    if let Some(identity) = &s.identity {
        let user = identity
            .fhir_user
            .as_ref()
            .map(|u| clean(&u.url).into_owned())
            .unwrap_or_else(|| "(no fhirUser)".into());
        row(
            "identity",
            format!("{user} (verified id_token, sub {})", clean(&identity.sub)),
        );
    }
    if !done.missing_context.is_empty() {
        row(
            "missing",
            clean(&done.missing_context.join(", ")).into_owned(),
        );
    }
    let expiry = match t.expires_at {
        Some(at) => format!("expires in {} s", at.saturating_sub(now_unix())),
        None => "expiry not reported".into(),
    };
    let show = |v: &str| {
        if show_tokens {
            clean(v).into_owned()
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
    text
}
