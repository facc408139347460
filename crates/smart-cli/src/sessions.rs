//! `smart sessions list|show|rm|import`: the stored sessions, by name.
//!
//! Listing decrypts each session to show where it points and whether it still works, but never
//! prints a token or the session id (a credential); everything a server supplied (FHIR base,
//! patient id, an end reason) has its control characters escaped. `import` moves a session file
//! written by older versions (`smart launch --save`, format 1) into the store.

use std::path::PathBuf;

use serde_json::{Value, json};
use smart_core::store::{Session, SessionId, SessionStatus, Store};
use smart_core::token::now_unix;

use crate::CliResult;
use crate::session_store::{Entry, NewEntry, SessionStore, registration_name};
use crate::terminal::{clean, clean_or_dash, json_text, outln};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum SessionsCommand {
    /// List the stored sessions: name, registration, FHIR base, patient, expiry, status.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one session's details (never its tokens). Default: the most recent.
    Show {
        /// The session's name.
        name: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove sessions from the store (the server's grant is not revoked).
    Rm {
        /// The sessions' names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Move a session file written by `smart launch --save` (older versions) into the store.
    Import {
        /// The session file.
        file: PathBuf,
        /// Name the session NAME instead of `<client>-<n>`.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
    },
}

pub(crate) async fn run(command: SessionsCommand) -> CliResult {
    let sessions = SessionStore::open().await?;
    match command {
        SessionsCommand::List { json } => list(&sessions, json).await,
        SessionsCommand::Show { name, json } => show(&sessions, name.as_deref(), json).await,
        SessionsCommand::Rm { names } => {
            for name in &names {
                let entry = sessions.remove(name).await?;
                outln!("removed {}", clean(&entry.name))?;
            }
            Ok(())
        }
        SessionsCommand::Import { file, name } => import(&sessions, file, name).await,
    }
}

/// A session's state in one word: `active`, `ended` (the server refused a refresh), or `gone`
/// (the store no longer has it: expired or deleted).
fn status(session: Option<&Session>) -> &'static str {
    match session.map(|s| &s.status) {
        Some(SessionStatus::Active) => "active",
        Some(SessionStatus::Ended { .. }) => "ended",
        None => "gone",
    }
}

/// When the access token expires, for people: `in 59 min`, `expired` (a refresh renews it when
/// there is a refresh token), or `-`.
fn expiry_text(session: Option<&Session>) -> String {
    let Some(at) = session.and_then(|s| s.tokens.expires_at) else {
        return "-".into();
    };
    let now = now_unix();
    if at <= now {
        return "expired".into();
    }
    let left = at - now;
    if left >= 120 {
        format!("in {} min", left / 60)
    } else {
        format!("in {left} s")
    }
}

async fn load(sessions: &SessionStore, id: &SessionId) -> Result<Option<Session>, crate::CliError> {
    Ok(sessions.store().load_session(id).await?.map(|v| v.value))
}

async fn list(sessions: &SessionStore, as_json: bool) -> CliResult {
    let entries = sessions.entries().await?;
    let mut rows = Vec::with_capacity(entries.len());
    for entry in &entries {
        rows.push((entry, load(sessions, &entry.session_id).await?));
    }
    if as_json {
        let list: Vec<Value> = rows
            .iter()
            .map(|(entry, session)| {
                let s = session.as_ref();
                json!({
                    "name": entry.name,
                    "registration": s.map(|s| s.registration.clone()),
                    "fhir_base": s.map(|s| s.fhir_base.clone()),
                    "patient": s.and_then(|s| s.context.patient.clone()),
                    "expires_at": s.and_then(|s| s.tokens.expires_at),
                    "status": status(s),
                })
            })
            .collect();
        outln!("{}", json_text(&Value::Array(list))?)?;
        return Ok(());
    }
    if rows.is_empty() {
        crate::terminal::eprint_line(&format!(
            "no sessions in {}; start one with `smart launch … --headless`",
            sessions.location()
        ));
        return Ok(());
    }
    let mut text = format!(
        "{:<24} {:<16} {:<40} {:<10} {:<12} {}\n",
        "NAME", "REGISTRATION", "FHIR BASE", "PATIENT", "EXPIRES", "STATUS"
    );
    for (entry, session) in &rows {
        let s = session.as_ref();
        text.push_str(&format!(
            "{:<24} {:<16} {:<40} {:<10} {:<12} {}\n",
            clean(&entry.name),
            clean_or_dash(s.map(|s| s.registration.as_str())),
            clean_or_dash(s.map(|s| s.fhir_base.as_str())),
            clean_or_dash(s.and_then(|s| s.context.patient.as_deref())),
            expiry_text(s),
            status(s),
        ));
    }
    crate::terminal::print(&text)?;
    Ok(())
}

async fn show(sessions: &SessionStore, name: Option<&str>, as_json: bool) -> CliResult {
    let entry = sessions.find(name).await?;
    let session = load(sessions, &entry.session_id).await?;
    let view = details(&entry, session.as_ref());
    if as_json {
        outln!("{}", json_text(&view)?)?;
        return Ok(());
    }
    let mut text = String::new();
    if let Value::Object(map) = &view {
        for (key, value) in map {
            let shown = match value {
                Value::Null => "-".to_owned(),
                Value::String(s) => clean(s).into_owned(),
                other => clean(&other.to_string()).into_owned(),
            };
            text.push_str(&format!("  {key:<20}{shown}\n"));
        }
    }
    crate::terminal::print(&text)?;
    Ok(())
}

/// Everything about a session except its tokens and id.
fn details(entry: &Entry, session: Option<&Session>) -> Value {
    let mut view = serde_json::Map::new();
    let mut put = |key: &str, value: Value| {
        view.insert(key.to_owned(), value);
    };
    put("name", json!(entry.name));
    put("status", json!(status(session)));
    put("client_type", json!(entry.client_type.as_str()));
    put("redirect_uri", json!(entry.redirect_uri));
    put("adapter_flag", json!(entry.adapter));
    put("stored_at", json!(entry.created_at));
    let Some(s) = session else {
        return Value::Object(view);
    };
    put("registration", json!(s.registration));
    put("client_id", json!(s.client_id));
    put("fhir_base", json!(s.fhir_base));
    put("launch", json!(s.kind));
    put("adapter", json!(s.adapter.as_ref().map(|a| &a.adapter)));
    put(
        "granted",
        json!(s.tokens.granted_scopes.as_ref().map(ToString::to_string)),
    );
    put("requested", json!(s.requested_scopes.to_string()));
    put("patient", json!(s.context.patient));
    put("encounter", json!(s.context.encounter));
    put(
        "identity",
        json!(s.identity.as_ref().map(|i| format!("{} {}", i.iss, i.sub))),
    );
    put("created_at", json!(s.created_at));
    put("refreshed_at", json!(s.refreshed_at));
    put("expires_at", json!(s.tokens.expires_at));
    put("expires", json!(expiry_text(session)));
    put("refresh_token", json!(s.tokens.refresh_token.is_some()));
    if let SessionStatus::Ended { reason, at } = &s.status {
        put("ended", json!(format!("{reason} (at {at})")));
    }
    Value::Object(view)
}

async fn import(sessions: &SessionStore, file: PathBuf, name: Option<String>) -> CliResult {
    let (saved, client_type) = crate::session_file::read(&file)?;
    let mut session = saved.session;
    let client_id = session.client_id.to_string();
    session.registration = registration_name(&client_id);
    let adapter = session
        .adapter
        .as_ref()
        .map(|a| a.adapter.clone())
        .unwrap_or_else(|| smart_core::AUTO_ADAPTER.to_owned());
    // A fresh id: the file's id was a credential that has sat in a file.
    let id = SessionId::generate();
    sessions.store().insert_session(&id, &session).await?;
    let added = sessions
        .add(NewEntry {
            session_id: id.clone(),
            client_id,
            client_type,
            redirect_uri: saved
                .redirect_uri
                .unwrap_or_else(|| "http://127.0.0.1/unused".into()),
            adapter,
            adapter_options: serde_json::Map::new(),
            jku: None,
            name,
        })
        .await;
    let name = match added {
        Ok(name) => name,
        Err(e) => {
            // Not left behind unnamed.
            let _ = sessions.store().delete_session(&id).await;
            return Err(e);
        }
    };
    outln!("{name}")?;
    crate::terminal::eprint_line(&format!(
        "imported {} as session {name}; the store now refreshes it, so delete the file (it holds tokens an older smart would spend): rm {}",
        file.display(),
        file.display()
    ));
    Ok(())
}
