//! Project automation, in Rust so that it runs wherever cargo does (the cargo-xtask convention):
//! `cargo xtask <task>` is an alias for `cargo run -p xtask -- <task>`.
//!
//! - `cargo xtask ci`: what CI checks — `cargo fmt --check`, `cargo clippy --all-targets -D
//!   warnings`, and the whole test suite. Run it before pushing.
//!
//! The conformance runner (`cargo xtask conformance`) lands here in a later milestone. Keep this
//! crate free of dependencies: it must build in seconds on a fresh machine.

mod tidy;

use std::process::{Command, ExitCode};
use std::time::Instant;

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  ci      cargo fmt --check, clippy -D warnings on all targets, every test, and the
          single-adapter builds (smart-cli with only `epic`, smart-adapters with only `cerner`)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("tidy") => tidy::run(),
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

fn ci() -> ExitCode {
    if let Some(untidy) = tidy::gate() {
        return untidy;
    }
    let steps: [(&str, &[&str]); 5] = [
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
        // Vendor-specific builds: one adapter feature alone must build and pass its tests.
        (
            "epic-only build",
            &[
                "test",
                "--locked",
                "-p",
                "smart-cli",
                "--no-default-features",
                "--features",
                "epic",
            ],
        ),
        (
            "cerner-only adapters",
            &[
                "test",
                "--locked",
                "-p",
                "smart-adapters",
                "--no-default-features",
                "--features",
                "cerner",
            ],
        ),
    ];
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    for (name, args) in steps {
        let started = Instant::now();
        eprintln!("xtask ci: {name}: cargo {}", args.join(" "));
        let status = Command::new(&cargo).args(args).status();
        match status {
            Ok(s) if s.success() => {
                eprintln!("xtask ci: {name} passed in {:.0?}", started.elapsed());
            }
            Ok(s) => {
                eprintln!("xtask ci: {name} failed ({s}); fix it and run `cargo xtask ci` again");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("xtask ci: could not run cargo: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    eprintln!("xtask ci: all checks passed");
    ExitCode::SUCCESS
}
