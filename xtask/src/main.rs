//! Project automation, in Rust so that it runs wherever cargo does (the cargo-xtask convention):
//! `cargo xtask <task>` is an alias for `cargo run -p xtask -- <task>`.
//!
//! - `cargo xtask ci`: what CI checks — `cargo fmt --check`, `cargo clippy --all-targets -D
//!   warnings`, the whole test suite, and the single-adapter builds. Run it before pushing.
//! - `cargo xtask single-adapter [NAME]`: only the single-adapter builds (of one adapter, or of
//!   each). The adapters are read from the registry block of `crates/smart-adapters/Cargo.toml`,
//!   so a new adapter gets its CI build from its registry line, with no edit here.
//!
//! - `cargo xtask conformance [ARGS]`: the conformance run (client checks and adapter checks
//!   against embedded sandboxes) through the `smart-conformance` binary; ARGS pass through
//!   (`--format json|junit|markdown`, `--out DIR`, …).
//!
//! Keep this crate free of dependencies: it must build in seconds on a fresh machine.

mod tidy;

use std::process::{Command, ExitCode};
use std::time::Instant;

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  ci                     cargo xtask tidy, cargo fmt --check, clippy -D warnings on all targets,
                         every test, and the single-adapter builds
  tidy                   the dependency rules: the core reaches no web framework, database,
                         FHIR model or adapter; the sandbox does not use the core; every
                         workspace crate is described in docs/architecture.md
  conformance [ARGS]     the conformance run: every client check and every adapter against the
                         sandbox, a table on stdout, reports with --format json|junit|markdown
                         (repeatable) under --out DIR; exit 1 when a SHALL check fails.
                         `cargo xtask conformance --help` lists the other flags
  single-adapter [NAME]  for each vendor adapter of the registry (or NAME alone): the registry's
                         tests and matrix, the facade's detection test, and the CLI's tests,
                         built with that adapter only (plus the generic one)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("tidy") => tidy::run(),
        Some("single-adapter") => single_adapter(args.get(1).map(String::as_str)),
        Some("conformance") => conformance(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("error: unknown task `{other}`; run `cargo xtask help` for the list");
            ExitCode::from(2)
        }
        None => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// A named cargo invocation.
type Step = (String, Vec<String>);

fn step(name: impl Into<String>, args: &[&str]) -> Step {
    (name.into(), args.iter().map(|a| (*a).to_owned()).collect())
}

fn ci() -> ExitCode {
    if let Some(untidy) = tidy::gate() {
        return untidy;
    }
    let fixed: [(&str, &[&str]); 4] = [
        ("format", &["fmt", "--all", "--", "--check"]),
        (
            "clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--locked",
                "--",
                "-D",
                "warnings",
            ],
        ),
        ("tests", &["test", "--workspace", "--locked"]),
        // API documentation builds, with no broken or private intra-doc link (workspace lints).
        ("docs", &["doc", "--workspace", "--no-deps", "--locked"]),
    ];
    let mut steps: Vec<Step> = fixed
        .into_iter()
        .map(|(name, args)| step(name, args))
        .collect();
    match single_adapter_steps(None) {
        Ok(more) => steps.extend(more),
        Err(e) => {
            eprintln!("xtask ci: {e}");
            return ExitCode::FAILURE;
        }
    }
    run(&steps)
}

/// `cargo xtask conformance [ARGS]`: runs the conformance binary, passing ARGS through and
/// keeping its exit code (1: a SHALL check failed; 2: a usage error).
///
/// A debug build: with the warm `target/` that tests leave behind only the conformance crate
/// itself compiles (seconds), while a release build would compile every dependency again (many
/// minutes on two cores); the checks wait on sockets and key generation, which the dev profile
/// already optimises (`[profile.dev.package.rsa]`).
fn conformance(args: &[String]) -> ExitCode {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let started = Instant::now();
    let status = Command::new(&cargo)
        .args([
            "run",
            "--locked",
            "--quiet",
            "-p",
            "smart-conformance",
            "--",
        ])
        .args(args)
        .status();
    match status {
        Ok(s) => {
            eprintln!("xtask: conformance finished in {:.0?}", started.elapsed());
            match s.code() {
                Some(0) => ExitCode::SUCCESS,
                Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
                None => ExitCode::FAILURE,
            }
        }
        Err(e) => {
            eprintln!("xtask: could not run cargo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo xtask single-adapter [NAME]`.
fn single_adapter(only: Option<&str>) -> ExitCode {
    match single_adapter_steps(only) {
        Ok(steps) => run(&steps),
        Err(e) => {
            eprintln!("xtask single-adapter: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The registry's manifest: its `smart-adapter-*` dependencies are the adapters.
const REGISTRY_MANIFEST: &str = "crates/smart-adapters/Cargo.toml";
/// The facade's manifest: it must offer a feature per vendor adapter.
const FACADE_MANIFEST: &str = "crates/smart-launch/Cargo.toml";

/// Vendor-specific builds: each optional adapter of the registry alone (with the always-present
/// generic one) must build and pass the registry's, the facade's and the CLI's tests.
fn single_adapter_steps(only: Option<&str>) -> Result<Vec<Step>, String> {
    let root = workspace_root();
    let registry = std::fs::read_to_string(root.join(REGISTRY_MANIFEST))
        .map_err(|e| format!("cannot read {REGISTRY_MANIFEST}: {e}"))?;
    let facade = std::fs::read_to_string(root.join(FACADE_MANIFEST))
        .map_err(|e| format!("cannot read {FACADE_MANIFEST}: {e}"))?;
    let adapters = optional_adapters(&registry);
    if adapters.is_empty() {
        return Err(format!(
            "no optional adapter in the registry block of {REGISTRY_MANIFEST}"
        ));
    }
    for name in &adapters {
        let forwarded = format!("{name} = [\"smart-adapters/{name}\"]");
        if !facade.lines().any(|l| l.trim() == forwarded) {
            return Err(format!(
                "{FACADE_MANIFEST} has no feature for the `{name}` adapter; add `{forwarded}`"
            ));
        }
    }
    let selected: Vec<&String> = match only {
        None => adapters.iter().collect(),
        Some(name) => {
            let found: Vec<&String> = adapters.iter().filter(|a| *a == name).collect();
            if found.is_empty() {
                return Err(format!(
                    "`{name}` is not an optional adapter of the registry (adapters: {})",
                    adapters.join(", ")
                ));
            }
            found
        }
    };
    let mut steps = Vec::new();
    for name in selected {
        let feature = format!("smart-adapters/{name}");
        let facade_features = format!("{name},reqwest,fhir");
        steps.push(step(
            format!("{name}-only registry and matrix"),
            &[
                "test",
                "--locked",
                "-p",
                "smart-adapters",
                "--no-default-features",
                "--features",
                name,
            ],
        ));
        steps.push(step(
            format!("{name}-only facade"),
            &[
                "test",
                "--locked",
                "-p",
                "smart-launch",
                "--no-default-features",
                "--features",
                &facade_features,
            ],
        ));
        steps.push(step(
            format!("{name}-only CLI"),
            &[
                "test",
                "--locked",
                "-p",
                "smart-cli",
                "--no-default-features",
                "--features",
                &feature,
            ],
        ));
    }
    Ok(steps)
}

/// The keys of the registry lines (`name = { package = "smart-adapter-…", …, optional = true }`)
/// in the `[dependencies]` table: the adapters that are cargo features.
fn optional_adapters(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_dependencies = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
            continue;
        }
        if !in_dependencies || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.replace(' ', "");
        if value.contains("package=\"smart-adapter-") && value.contains("optional=true") {
            names.push(key.trim().to_owned());
        }
    }
    names
}

/// The workspace root: xtask's manifest directory's parent.
fn workspace_root() -> std::path::PathBuf {
    let xtask = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    xtask
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or(xtask)
}

fn run(steps: &[Step]) -> ExitCode {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    for (name, args) in steps {
        let started = Instant::now();
        eprintln!("xtask: {name}: cargo {}", args.join(" "));
        let status = Command::new(&cargo).args(args).status();
        match status {
            Ok(s) if s.success() => {
                eprintln!("xtask: {name} passed in {:.0?}", started.elapsed());
            }
            Ok(s) => {
                eprintln!("xtask: {name} failed ({s}); fix it and run `cargo xtask ci` again");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("xtask: could not run cargo: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    eprintln!("xtask: all steps passed");
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::optional_adapters;

    #[test]
    fn reads_the_optional_adapters_of_the_registry_block() {
        let manifest = r#"
[features]
default = ["acme"]

[dependencies]
smart-core.workspace = true
generic = { package = "smart-adapter-generic", path = "../../adapters/generic" }
acme = { package = "smart-adapter-acme", path = "../../adapters/acme", optional = true }
# beta = { package = "smart-adapter-beta", path = "../../adapters/beta", optional = true }
other = { version = "1", optional = true }

[dev-dependencies]
gamma = { package = "smart-adapter-gamma", path = "x", optional = true }
"#;
        assert_eq!(optional_adapters(manifest), vec!["acme".to_owned()]);
    }

    #[test]
    fn the_real_registry_lists_adapters() {
        let registry =
            std::fs::read_to_string(super::workspace_root().join(super::REGISTRY_MANIFEST))
                .expect("registry manifest");
        assert!(!optional_adapters(&registry).is_empty());
    }
}
