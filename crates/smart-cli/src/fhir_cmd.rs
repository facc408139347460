//! `smart fhir`: read, search and create FHIR resources with a saved session
//! (`smart launch --save FILE`) or a backend client's token. Prints JSON.
//!
//! Tokens refresh by themselves (ahead of expiry, and once after a 401); with a saved session the
//! refreshed tokens are written back to the file.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use serde_json::Value;
use smart_core::scope::Scopes;
use smart_core::{BearerSource, ClientRegistration, SmartClient};
use smart_fhir::{FhirClient, Search};

use crate::CliResult;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A session saved with `smart launch --save FILE`.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["iss", "client_id", "scope"])]
    session: Option<PathBuf>,
    /// With --session: the client secret, for refreshing (confidential symmetric clients).
    #[arg(
        long,
        env = "SMART_CLIENT_SECRET",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    client_secret: Option<String>,
    /// The private key (asymmetric clients; for a backend token with --iss/--client-id/--scope).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Backend services: the FHIR base.
    #[arg(long)]
    iss: Option<String>,
    /// Backend services: the client id.
    #[arg(long)]
    client_id: Option<String>,
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
    let (client, auth, saved): (SmartClient, Arc<dyn BearerSource>, _) = match &args.session {
        Some(path) => {
            let saved = crate::session_file::read(path)?;
            let client = crate::session_file::client_for(
                &saved,
                args.client_secret.as_deref(),
                args.key.as_deref(),
            )
            .await?;
            let bearer = client.session_bearer(&saved.session_id).await?;
            (client, Arc::new(bearer), Some((path.clone(), saved)))
        }
        None => {
            let (Some(iss), Some(client_id), Some(scope), Some(key)) =
                (&args.iss, &args.client_id, &args.scope, &args.key)
            else {
                return Err("pass --session FILE (from `smart launch --save`), or --iss, --client-id, --key and --scope for a backend token".into());
            };
            let scopes = Scopes::parse(scope);
            let keys = crate::load_keys(key, None)?;
            let client = smart_adapters::install(SmartClient::builder())
                .registration(
                    "cli",
                    ClientRegistration::backend(iss, client_id, keys, scopes.clone()),
                )
                .build()?;
            let source = client.backend_token_source("cli", scopes)?;
            (client, Arc::new(source), None)
        }
    };
    let fhir = FhirClient::new(client.http().clone(), auth);
    let output = match args.command {
        FhirCommand::Get { reference } => {
            let (resource_type, id) = reference
                .split_once('/')
                .ok_or_else(|| format!("`{reference}` is not Type/id; e.g. Patient/pat-1"))?;
            fhir.read_json(resource_type, id).await?.resource
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
    println!("{}", serde_json::to_string_pretty(&output)?);
    if let Some((path, mut saved)) = saved {
        // Keep refreshed tokens for the next invocation.
        if let Some(current) = client.session(&saved.session_id).await?
            && current.value.tokens != saved.session.tokens
        {
            saved.session.tokens = current.value.tokens;
            saved.session.refreshed_at = current.value.refreshed_at;
            saved.session.status = current.value.status;
            crate::session_file::write(&path, &saved)?;
        }
    }
    Ok(())
}
