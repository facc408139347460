//! `smart-conformance`: runs the client and adapter conformance checks against embedded
//! sandboxes, prints a table, and writes JSON, JUnit or Markdown reports.
//!
//! `cargo xtask conformance` runs this binary; its flags pass through. Exit codes: 0 when every
//! SHALL check passed, 1 when one failed, 2 for a usage error.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use smart_conformance::model::CheckResult;
use smart_conformance::report::terminal_safe;
use smart_conformance::{Format, Report, adapter_checks, client_checks};

const USAGE: &str = "\
usage: smart-conformance [--format json|junit|markdown]... [--out DIR] [--only client|adapters|probe]
                         [--check ID]... [--list] [--quiet]
       smart-conformance --iss URL --client-id ID --redirect-uri URI [--client-secret S]
                         [--format F]... [--out DIR] [--quiet]

  --format F   write a report in format F (repeatable) under --out
  --out DIR    where reports go (default: target/conformance)
  --only FAM   run only the client checks, the adapter checks, or the server probe of the
               sandbox in each vendor profile (probe any other server with `smart probe`)
  --check ID   run only the client check ID, e.g. C-4.1 (repeatable)
  --list       list the checks and exit
  --quiet      no table on stdout, only the summary line
  --iss URL    probe this SMART server instead (a vendor sandbox, the reference launcher) with
               the client registered there: --client-id, --redirect-uri (never connected to),
               and --client-secret (or SMART_CLIENT_SECRET) for a confidential client; approval
               is headless where the server allows it, else those checks are skipped
";

#[derive(Debug)]
struct Args {
    formats: Vec<Format>,
    out: PathBuf,
    client: bool,
    adapters: bool,
    probe: bool,
    checks: Vec<String>,
    list: bool,
    quiet: bool,
    /// `--iss`: probe this server instead of the sandbox.
    iss: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    client_secret: Option<String>,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut args = Args {
        formats: Vec::new(),
        out: PathBuf::from("target/conformance"),
        client: true,
        adapters: true,
        probe: true,
        checks: Vec::new(),
        list: false,
        quiet: false,
        iss: None,
        client_id: None,
        redirect_uri: None,
        client_secret: std::env::var("SMART_CLIENT_SECRET")
            .ok()
            .filter(|s| !s.is_empty()),
    };
    while let Some(arg) = argv.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| argv.next())
                .ok_or_else(|| format!("{name} needs a value; see --help"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--format" => {
                let f = Format::parse(&value("--format")?)?;
                if !args.formats.contains(&f) {
                    args.formats.push(f);
                }
            }
            "--out" => args.out = PathBuf::from(value("--out")?),
            "--only" => match value("--only")?.as_str() {
                "client" => (args.adapters, args.probe) = (false, false),
                "adapters" | "adapter" => (args.client, args.probe) = (false, false),
                "probe" => (args.client, args.adapters) = (false, false),
                other => {
                    return Err(format!(
                        "unknown family `{}` for --only; use client, adapters or probe",
                        terminal_safe(other)
                    ));
                }
            },
            "--check" => {
                let id = value("--check")?;
                if client_checks::by_id(&id).is_none() {
                    return Err(format!(
                        "unknown client check `{}`; run with --list to see the ids",
                        terminal_safe(&id)
                    ));
                }
                args.checks.push(id);
                args.adapters = false;
                args.probe = false;
            }
            "--iss" => args.iss = Some(value("--iss")?),
            "--client-id" => args.client_id = Some(value("--client-id")?),
            "--redirect-uri" => args.redirect_uri = Some(value("--redirect-uri")?),
            "--client-secret" => args.client_secret = Some(value("--client-secret")?),
            "--list" => args.list = true,
            "--quiet" => args.quiet = true,
            other => {
                return Err(format!(
                    "unknown argument `{}`; see --help",
                    terminal_safe(other)
                ));
            }
        }
    }
    if let Some(iss) = &args.iss {
        let base = url::Url::parse(iss).map_err(|e| {
            format!(
                "--iss `{}` is not an absolute URL ({e}); e.g. https://ehr.example.org/fhir",
                terminal_safe(iss)
            )
        })?;
        smart_core::http::check_transport_security(&base).map_err(|e| format!("--iss: {e}"))?;
        if args.client_id.is_none() || args.redirect_uri.is_none() {
            return Err(
                "--iss needs the client registered there: --client-id ID --redirect-uri URI".into(),
            );
        }
        (args.client, args.adapters, args.probe) = (false, false, true);
    } else if args.client_id.is_some() || args.redirect_uri.is_some() {
        return Err(
            "--client-id and --redirect-uri go with --iss URL (the server to probe)".into(),
        );
    }
    Ok(Some(args))
}

/// The server `--iss` names, with the client registered there.
fn iss_target(args: &Args) -> Option<smart_conformance::probe::ProbeTarget> {
    use smart_conformance::probe::{AppClient, Credential, ProbeTarget};
    let iss = args.iss.clone()?;
    let client_id = args.client_id.clone()?;
    let redirect_uri = args.redirect_uri.clone()?;
    let credential = match &args.client_secret {
        Some(secret) => Credential::Secret(secret.clone()),
        None => Credential::None,
    };
    Some(ProbeTarget::new(
        iss,
        AppClient::confidential(client_id, redirect_uri, credential),
    ))
}

/// Progress on stderr: a bar redrawn in place on a terminal, one line per check otherwise.
struct Progress {
    done: usize,
    total: usize,
    tty: bool,
}

impl Progress {
    fn step(&mut self, r: &CheckResult) {
        self.done += 1;
        let mut err = std::io::stderr().lock();
        if self.tty {
            let width = 30;
            let filled = (self.done * width / self.total.max(1)).min(width);
            let _ = write!(
                err,
                "\r\x1b[2K[{}{}] {}/{} {} {}",
                "#".repeat(filled),
                "-".repeat(width - filled),
                self.done,
                self.total,
                r.def.id,
                r.status.word()
            );
            if self.done == self.total {
                let _ = writeln!(err);
            }
        } else {
            let _ = writeln!(
                err,
                "[{}/{}] {} {} ({})",
                self.done,
                self.total,
                r.def.id,
                r.status.word(),
                terminal_safe(&r.subject)
            );
        }
    }
}

fn list() {
    for c in client_checks::all() {
        println!(
            "{:<8} {:<6} {}",
            c.def.id,
            c.def.level.as_str(),
            c.def.title
        );
    }
    for d in adapter_checks::definitions() {
        println!("{:<8} {:<6} {}", d.id, d.level.as_str(), d.title);
    }
    for d in smart_conformance::probe::checks::ALL.iter().copied() {
        println!("{:<8} {:<6} {}", d.id, d.level.as_str(), d.title);
    }
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("smart-conformance: {e}");
            return ExitCode::from(2);
        }
    };
    if args.list {
        list();
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("smart-conformance: could not start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let report = runtime.block_on(run(&args));
    if !args.quiet {
        print!("{}", report.to_table());
    } else {
        let t = report.tally();
        println!(
            "{}: {} passed, {} SHALL failed, {} SHOULD/MAY failed, {} skipped",
            if report.passed() { "PASS" } else { "FAIL" },
            t.pass,
            t.shall_failed,
            t.other_failed,
            t.skipped
        );
    }
    if !args.formats.is_empty() {
        if let Err(e) = std::fs::create_dir_all(&args.out) {
            eprintln!(
                "smart-conformance: cannot create {}: {e}; pass a writable --out DIR",
                args.out.display()
            );
            return ExitCode::from(2);
        }
        for f in &args.formats {
            let path = args.out.join(f.file_name());
            if let Err(e) = std::fs::write(&path, report.render(*f)) {
                eprintln!(
                    "smart-conformance: cannot write {}: {e}; pass a writable --out DIR",
                    path.display()
                );
                return ExitCode::from(2);
            }
            eprintln!("wrote {}", path.display());
        }
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

async fn run(args: &Args) -> Report {
    let selected: Vec<_> = client_checks::all()
        .into_iter()
        .filter(|c| args.checks.is_empty() || args.checks.iter().any(|id| id == c.def.id))
        .collect();
    let adapters = smart_adapters::descriptors().len();
    let adapter_total = if args.adapters {
        smart_core::descriptor::FlowStep::ALL.len() * (2 * adapters).saturating_sub(1)
    } else {
        0
    };
    let client_total = if args.client { selected.len() } else { 0 };
    let probe_total = if args.iss.is_some() {
        smart_conformance::probe::checks::ALL.len()
    } else if args.probe {
        smart_conformance::probe::checks::ALL.len()
            * smart_conformance::probe::sandbox_profiles().len()
    } else {
        0
    };
    let mut progress = Progress {
        done: 0,
        total: client_total + adapter_total + probe_total,
        tty: std::io::stderr().is_terminal(),
    };
    let mut report = Report::default();
    if args.client {
        let harness = client_checks::Harness::new();
        for check in &selected {
            let r = check.run(&harness).await;
            progress.step(&r);
            report.results.push(r);
        }
    }
    if args.adapters {
        let results =
            adapter_checks::run(smart_adapters::descriptors(), &mut |r| progress.step(r)).await;
        report.extend(results);
    }
    if let Some(target) = iss_target(args) {
        let http = match smart_core::http::ReqwestHttpClient::new() {
            Ok(http) => http,
            Err(e) => {
                eprintln!("smart-conformance: cannot build the HTTP client: {e}");
                return report;
            }
        };
        let results = smart_conformance::probe::probe(
            &target,
            &http,
            &smart_conformance::probe::RedirectApprover,
        )
        .await;
        for r in results {
            progress.step(&r);
            report.results.push(r);
        }
    } else if args.probe {
        // The strict sandbox in each vendor profile, probed from outside.
        for r in smart_conformance::probe::probe_sandbox_profiles().await {
            progress.step(&r);
            report.results.push(r);
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Option<Args>, String> {
        parse(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn formats_repeat_and_out_is_taken() {
        let a = args(&["--format", "json", "--format=junit", "--out", "x"])
            .expect("ok")
            .expect("args");
        assert_eq!(a.formats, vec![Format::Json, Format::Junit]);
        assert_eq!(a.out, PathBuf::from("x"));
    }

    #[test]
    fn iss_selects_the_probe_of_that_server_and_needs_its_client() {
        let a = args(&[
            "--iss",
            "https://ehr.example/fhir",
            "--client-id",
            "app",
            "--redirect-uri",
            "https://app.example/cb",
        ])
        .expect("valid")
        .expect("args");
        assert!(a.probe && !a.client && !a.adapters);
        assert_eq!(iss_target(&a).expect("a target").app.client_id, "app");
        for (bad, says) in [
            (&["--iss", "https://ehr.example/fhir"][..], "--client-id ID"),
            (&["--iss", "not a url"], "not an absolute URL"),
            (
                &[
                    "--iss",
                    "http://ehr.example/fhir",
                    "--client-id",
                    "a",
                    "--redirect-uri",
                    "https://a/cb",
                ],
                "--iss",
            ),
            (&["--client-id", "app"], "go with --iss"),
        ] {
            let e = args(bad).expect_err("rejected");
            assert!(e.contains(says) && !e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn bad_flags_are_one_line_errors_that_say_what_to_do() {
        for bad in [
            &["--format", "xml"][..],
            &["--only", "servers"],
            &["--check", "C-999"],
            &["--frobnicate"],
            &["--out"],
        ] {
            let e = args(bad).expect_err("rejected");
            assert!(!e.contains('\n'), "{e}");
            assert!(
                e.contains("use ") || e.contains("see --help") || e.contains("--list"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_check_id_narrows_to_client_checks() {
        let a = args(&["--check", "C-4.1"]).expect("ok").expect("args");
        assert!(a.client && !a.adapters);
    }
}
