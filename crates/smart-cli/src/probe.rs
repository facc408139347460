//! `smart probe <fhir-base>`: the conformance probe of a SMART server, for integrators
//! onboarding a new EHR.
//!
//! The probe itself lives in `smart-conformance` (so `cargo xtask conformance` runs the same
//! checks); this command turns flags into a registration, prints the terminal table, writes the
//! requested report files, and fails (exit 1) when a SHALL check fails. Server text in the
//! results is escaped by the report writers.

use std::path::PathBuf;

use smart_conformance::probe::{
    AppClient, BackendClient, Credential, DEFAULT_SCOPES, ProbeTarget, RedirectApprover,
};
use smart_conformance::{Format, Report};

use crate::CliResult;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The FHIR base URL of the server to probe.
    fhir_base: String,
    /// The client id of an app registered with the server.
    #[arg(long)]
    client_id: String,
    /// A redirect URI registered for that app (the probe never connects to it).
    #[arg(long)]
    redirect_uri: String,
    /// The app's client secret (confidential symmetric). Prefer the SMART_CLIENT_SECRET variable.
    #[arg(
        long,
        env = "SMART_CLIENT_SECRET",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    client_secret: Option<String>,
    /// The app's private key (confidential asymmetric; PEM or JWK file).
    #[arg(long, conflicts_with = "client_secret")]
    key: Option<PathBuf>,
    /// A second registered public app, to check that codes and refresh tokens are bound to
    /// their client.
    #[arg(long, requires = "other_redirect_uri")]
    other_client_id: Option<String>,
    /// The second app's registered redirect URI.
    #[arg(long, requires = "other_client_id")]
    other_redirect_uri: Option<String>,
    /// A backend-services client id, for the backend checks (needs --backend-key).
    #[arg(long, requires = "backend_key")]
    backend_client_id: Option<String>,
    /// The backend client's private key (PEM or JWK file).
    #[arg(long, requires = "backend_client_id")]
    backend_key: Option<PathBuf>,
    /// The backend client's scopes.
    #[arg(long, default_value = "system/Patient.rs")]
    backend_scope: String,
    /// Space-separated launch scopes (two resource types let every check run).
    #[arg(long, default_value = DEFAULT_SCOPES)]
    scope: String,
    /// Write a report: json, junit or markdown (repeatable; files go under --out).
    #[arg(long = "format", value_name = "FORMAT", value_parser = Format::parse)]
    formats: Vec<Format>,
    /// The directory for report files (created if missing).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

fn load_key(
    path: &std::path::Path,
    flag: &str,
) -> Result<smart_core::smart_jose::PrivateKey, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{flag} {}: cannot read the key file: {e}", path.display()))?;
    smart_core::config::load_private_key(&text, None)
        .map_err(|e| format!("{flag} {}: {e}", path.display()))
}

fn target(args: &Args) -> Result<ProbeTarget, String> {
    for (flag, value) in [
        ("the FHIR base", Some(&args.fhir_base)),
        ("--redirect-uri", Some(&args.redirect_uri)),
        ("--other-redirect-uri", args.other_redirect_uri.as_ref()),
    ] {
        if let Some(value) = value {
            url::Url::parse(value).map_err(|e| {
                format!("{flag} `{value}` is not an absolute URL ({e}); e.g. https://ehr.example.org/fhir")
            })?;
        }
    }
    let base = url::Url::parse(&args.fhir_base).map_err(|e| e.to_string())?;
    smart_core::http::check_transport_security(&base).map_err(|e| format!("the FHIR base: {e}"))?;
    if !args.formats.is_empty() && args.out.is_none() {
        return Err("--format needs --out DIR, the directory to write the reports to".into());
    }
    let credential = match (&args.client_secret, &args.key) {
        (Some(secret), _) => Credential::Secret(secret.clone()),
        (None, Some(path)) => Credential::Key(load_key(path, "--key")?),
        (None, None) => Credential::None,
    };
    let mut target = ProbeTarget::new(
        args.fhir_base.clone(),
        AppClient::confidential(
            args.client_id.clone(),
            args.redirect_uri.clone(),
            credential,
        ),
    );
    target.scopes.clone_from(&args.scope);
    if let (Some(id), Some(uri)) = (&args.other_client_id, &args.other_redirect_uri) {
        target.other_app = Some(AppClient::public(id.clone(), uri.clone()));
    }
    if let (Some(id), Some(path)) = (&args.backend_client_id, &args.backend_key) {
        target.backend = Some(BackendClient {
            client_id: id.clone(),
            key: load_key(path, "--backend-key")?,
            scopes: args.backend_scope.clone(),
        });
    }
    Ok(target)
}

pub(crate) async fn run(args: Args) -> CliResult {
    let target = target(&args)?;
    let http = crate::net::http()?;
    let results = smart_conformance::probe::probe(&target, &*http, &RedirectApprover).await;
    let report = Report { results };
    crate::terminal::print(&report.to_table())?;
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("--out {}: cannot create the directory: {e}", dir.display()))?;
        let mut formats = args.formats.clone();
        formats.dedup();
        for format in formats {
            let path = dir.join(format.file_name());
            std::fs::write(&path, report.render(format))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
    }
    if report.passed() {
        Ok(())
    } else {
        let n = report.tally().shall_failed;
        Err(format!("{n} SHALL check(s) failed; see the table above").into())
    }
}
