//! `smart fhir`: read, search and create FHIR resources with a stored session (the most recent
//! `smart launch`, or `--session NAME`) or a backend client's token. Prints JSON.
//!
//! Tokens refresh by themselves (ahead of expiry, and once after a 401). A stored session's
//! refresh goes through the session store like any other write: the core takes the refresh
//! lease, and writes the new tokens by compare-and-swap before the request that needed them is
//! sent. So a command that then fails, is cut off by `| head` or is killed leaves the rotated
//! refresh token in the store, and the next run uses it.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use serde_json::Value;
use smart_core::store::{SessionStatus, Store};
use smart_core::{BearerSource, ClientRegistration, SmartClient};
use smart_fhir::schema::Release;
use smart_fhir::{FhirClient, ParseMode, Search};

use crate::CliResult;
use crate::credentials::Credentials;
use crate::session_store::SessionStore;
use crate::terminal::{clean, json_text, outln};

type CliError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The stored session to use (a name `smart launch` printed; see `smart sessions list`).
    /// Default: the most recent one.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["iss", "scope"])]
    session: Option<String>,
    /// With a stored session: the credential it refreshes with (--client-secret or --key).
    /// Backend services: --client-id and --key.
    #[command(flatten)]
    credentials: Credentials,
    /// Backend services: the FHIR base.
    #[arg(long)]
    iss: Option<String>,
    /// Backend services: the scopes, e.g. "system/Patient.rs".
    #[arg(long)]
    scope: Option<String>,
    #[command(subcommand)]
    command: FhirCommand,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum FhirCommand {
    /// Read one resource: `smart fhir get Patient/pat-1`.
    Get {
        /// `Type/id`.
        reference: String,
        /// Refuse a resource that deviates from FHIR R4: unknown properties, empty arrays,
        /// primitives of the wrong JSON type. The error names the JSON pointer and the expected
        /// type. Without it the resource is printed as the server sent it.
        #[arg(long)]
        strict: bool,
    },
    /// Search: `smart fhir search Observation -p patient=pat-1 -p category=laboratory`.
    Search {
        /// The resource type.
        resource_type: String,
        /// Search parameters as name=value (repeatable).
        #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// Follow `next` links through every page (default: the first page only).
        #[arg(long)]
        all: bool,
        /// Stop after this many resources.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Create a resource from a JSON file (or - for standard input).
    Create {
        /// The JSON file.
        file: PathBuf,
    },
}

pub(crate) async fn run(args: Args) -> CliResult {
    let (client, auth) = match (&args.iss, &args.scope) {
        (None, None) => stored_session(&args).await?,
        (Some(iss), Some(scope)) => {
            let client_id = args.credentials.client_id("a backend token")?;
            let keys = args.credentials.keys("a backend token")?;
            let scopes = crate::terminal::parse_scope_flag(scope);
            let client = crate::net::client_builder()?
                .registration(
                    "cli",
                    ClientRegistration::backend(iss, client_id, keys, scopes.clone()),
                )
                .build()?;
            let source = client.backend_token_source("cli", scopes)?;
            let auth: Arc<dyn BearerSource> = Arc::new(source);
            (client, auth)
        }
        _ => {
            return Err("a backend token needs --iss, --client-id, --key and --scope together; without them `smart fhir` uses a stored session (--session NAME, or the most recent)".into());
        }
    };
    let fhir = FhirClient::new(client.http().clone(), auth);
    let output = match args.command {
        FhirCommand::Get { reference, strict } => {
            let (resource_type, id) = reference
                .split_once('/')
                .ok_or_else(|| format!("`{reference}` is not Type/id; e.g. Patient/pat-1"))?;
            let resource = fhir.read_json(resource_type, id).await?.resource;
            if strict {
                // The typed path's strict gate, without building fhirbolt's models into the CLI.
                smart_fhir::schema::check(Release::R4, resource.clone(), ParseMode::Strict)?;
            }
            resource
        }
        FhirCommand::Search {
            resource_type,
            params,
            all,
            limit,
        } => {
            let mut search = Search::new(&resource_type);
            for p in &params {
                let (name, value) = p
                    .split_once('=')
                    .ok_or_else(|| format!("-p `{p}` is not NAME=VALUE; e.g. -p patient=pat-1"))?;
                search = search.param(name, value);
            }
            if !all {
                search = search.page_limit(1);
            }
            let stream = fhir.resources(&search);
            let resources: Vec<Value> = match limit {
                Some(n) => stream.take(n).try_collect().await?,
                None => stream.try_collect().await?,
            };
            Value::Array(resources)
        }
        FhirCommand::Create { file } => {
            let mut text = String::new();
            if file.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut text)?;
            } else {
                text = std::fs::read_to_string(&file)
                    .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            }
            let resource: Value = serde_json::from_str(&text)
                .map_err(|e| format!("{} is not JSON: {e}", file.display()))?;
            fhir.create_json(&resource).await?.resource
        }
    };
    outln!("{}", json_text(&output)?)?;
    Ok(())
}

/// A client holding the stored session `--session` names (or the most recent one), with the
/// credential given on the command line, writing refreshes through the session store.
async fn stored_session(args: &Args) -> Result<(SmartClient, Arc<dyn BearerSource>), CliError> {
    if let Some(name) = &args.session {
        let path = std::path::Path::new(name);
        if (name.contains('/') || name.ends_with(".json")) && path.is_file() {
            return Err(format!(
                "--session takes a session name now, and {name} is a file: import it with `smart sessions import {name}`, then pass the name it prints"
            )
            .into());
        }
    }
    let sessions = SessionStore::open().await?;
    let entry = sessions.find(args.session.as_deref()).await?;
    let name = clean(&entry.name).into_owned();
    let session = sessions
        .store()
        .load_session(&entry.session_id)
        .await?
        .ok_or_else(|| {
            format!(
                "session {name} is gone from the store (expired or removed); start a new one with `smart launch … --headless`"
            )
        })?
        .value;
    if let SessionStatus::Ended { reason, .. } = &session.status {
        return Err(format!(
            "session {name} has ended ({}); start a new one with `smart launch … --headless` (and `smart sessions rm {name}`)",
            clean(reason)
        )
        .into());
    }
    let mut registration = args.credentials.stored_registration(
        entry.client_type,
        &session.fhir_base,
        &session.client_id,
        &entry.redirect_uri,
        entry.jku.as_deref(),
    )?;
    registration = registration.with_adapter(&entry.adapter);
    for (key, value) in &entry.adapter_options {
        registration = registration.with_adapter_option(key.clone(), value.clone());
    }
    let client = crate::net::client_builder()?
        .registration(session.registration.clone(), registration)
        .store(sessions.client_store())
        .build()?;
    let bearer = client.session_bearer(&entry.session_id).await?;
    Ok((client, Arc::new(bearer)))
}
