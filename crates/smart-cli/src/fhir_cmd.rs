//! `smart fhir`: read, search and create FHIR resources with a saved session
//! (`smart launch --save FILE`) or a backend client's token. Prints JSON.
//!
//! Tokens refresh by themselves (ahead of expiry, and once after a 401); with a saved session the
//! refreshed tokens are written back to the file as soon as the refresh succeeds (see
//! `session_file`), so a command that fails, is cut off by `| head` or is killed afterwards
//! does not lose them.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use serde_json::Value;
use smart_core::{BearerSource, ClientRegistration};
use smart_fhir::schema::Release;
use smart_fhir::{FhirClient, ParseMode, Search};

use crate::CliResult;
use crate::terminal::{json_text, outln};

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
    let (client, auth, saved) = match &args.session {
        Some(path) => {
            let saved = crate::session_file::read(path)?;
            let (client, store) = crate::session_file::client_for(
                path,
                &saved,
                args.client_secret.as_deref(),
                args.key.as_deref(),
            )
            .await?;
            let bearer = client.session_bearer(&saved.session_id).await?;
            let auth: Arc<dyn BearerSource> = Arc::new(bearer);
            (client, auth, Some((store, saved.session_id)))
        }
        None => {
            let (Some(iss), Some(client_id), Some(scope), Some(key)) =
                (&args.iss, &args.client_id, &args.scope, &args.key)
            else {
                return Err("pass --session FILE (from `smart launch --save`), or --iss, --client-id, --key and --scope for a backend token".into());
            };
            let scopes = crate::terminal::parse_scope_flag(scope);
            let keys = crate::load_keys(key, None)?;
            let client = crate::net::client_builder()?
                .registration(
                    "cli",
                    ClientRegistration::backend(iss, client_id, keys, scopes.clone()),
                )
                .build()?;
            let source = client.backend_token_source("cli", scopes)?;
            let auth: Arc<dyn BearerSource> = Arc::new(source);
            (client, auth, None)
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
    let printed = outln!("{}", json_text(&output)?);
    if let Some((store, id)) = saved {
        // Normally a no-op: every change was saved when it happened. Retries a failed save.
        store.finish(&id).await?;
    }
    printed?;
    Ok(())
}
