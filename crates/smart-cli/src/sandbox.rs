//! `smart sandbox`: serve the embedded EHR until Ctrl-C.

use std::path::PathBuf;

use smart_sandbox::{Sandbox, SandboxConfig};

use crate::CliResult;
use crate::terminal::outln;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Port on 127.0.0.1 (default 0: a free port, printed at start).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Client registrations (TOML, see docs/sandbox.md). Default: the built-in demo clients.
    #[arg(long, value_name = "FILE")]
    clients: Option<PathBuf>,
    /// Emulate a vendor's servers (default: generic, the spec).
    #[arg(long, value_parser = crate::registry::profile_values())]
    profile: Option<String>,
}

pub(crate) async fn run(args: Args) -> CliResult {
    let mut config = match &args.clients {
        Some(path) => SandboxConfig::from_toml_file(path)?,
        None => SandboxConfig::default(),
    };
    config.port = args.port;
    if let Some(profile) = &args.profile {
        config.profile = crate::registry::profile(profile)?;
    }
    let clients: Vec<String> = config.clients.iter().map(|c| c.client_id.clone()).collect();
    let sandbox = Sandbox::start(config).await?;
    let base = sandbox.fhir_base();
    outln!("smart sandbox listening on http://{}", sandbox.addr())?;
    outln!("  profile:         {}", sandbox_profile_name(&sandbox))?;
    outln!("  FHIR base (iss): {base}")?;
    outln!("  discovery:       {base}/.well-known/smart-configuration")?;
    outln!("  clients:         {}", clients.join(", "))?;
    let patients: Vec<String> = sandbox
        .patients()
        .into_iter()
        .map(|p| format!("{} ({})", p.id, p.name))
        .collect();
    outln!("  patients:        {}", patients.join(", "))?;
    outln!(
        "  EHR launch:      curl -s -X POST http://{}/sandbox/launch -H 'content-type: application/json' -d '{{\"client_id\":\"demo-public\",\"patient\":\"pat-2\"}}'",
        sandbox.addr()
    )?;
    outln!("Press Ctrl-C to stop.")?;
    sandbox
        .serve_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    Ok(())
}

fn sandbox_profile_name(sandbox: &Sandbox) -> String {
    sandbox.profile().name().to_owned()
}
