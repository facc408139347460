//! `cargo xtask tidy`: the architecture's layering rules as a check that runs.
//!
//! `docs/architecture.md` promises that the core names no web framework, no
//! database, no FHIR model crate and no vendor; that the sandbox stays
//! independent of the client it tests; and that every workspace crate has its
//! place in the code map. Promises in prose drift, so this task checks them on
//! every `cargo xtask ci`:
//!
//! 1. `cargo tree -e normal,features -p smart-core` (normal dependencies only:
//!    tests may use anything) reaches none of [`WEB_FRAMEWORKS`],
//!    [`DATABASES`], [`FHIR_MODELS`] or an adapter crate of the workspace; the
//!    server side of `hyper`/`hyper-util` (a `server*` feature) counts as a
//!    web framework, and `tower-http` does too unless only an HTTP client
//!    ([`HTTP_CLIENTS`]) brings it in (`reqwest` uses it for redirects and
//!    decompression);
//! 2. `cargo tree -e normal -p smart-sandbox` does not reach `smart-core`;
//! 3. every crate of `cargo tree --workspace --depth 0` is named in
//!    `docs/architecture.md`, by its package name or its directory.
//!
//! The check itself is [`check`], a pure function over the text those
//! commands print, so its unit tests feed it trees and need no cargo.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Web frameworks and HTTP server crates the core must not reach (a name
/// ending in `*` is a prefix).
pub(crate) const WEB_FRAMEWORKS: &[&str] = &[
    "axum",
    "axum-*",
    "actix",
    "actix-*",
    "warp",
    "rocket",
    "rocket_*",
    "poem",
    "poem-*",
    "tide",
    "salvo",
    "salvo*",
    "gotham",
    "tower-http",
];

/// Database drivers and ORMs the core must not reach.
pub(crate) const DATABASES: &[&str] = &[
    "sqlx",
    "sqlx-*",
    "redis",
    "rusqlite",
    "libsqlite3-sys",
    "tokio-postgres",
    "postgres",
    "diesel",
    "diesel_*",
    "sea-orm",
    "mongodb",
    "deadpool-*",
    "bb8-*",
    "r2d2_*",
];

/// FHIR model crates: typed resources belong in `smart-fhir`, not the core.
pub(crate) const FHIR_MODELS: &[&str] = &["fhirbolt", "fhirbolt-*"];

/// HTTP clients that may bring `tower-http` along (as client middleware).
pub(crate) const HTTP_CLIENTS: &[&str] = &["reqwest"];

/// Crates whose `server*` features are the server side of HTTP.
const SERVER_FEATURE_CRATES: &[&str] = &["hyper", "hyper-util"];

/// The package whose dependencies must stay framework-free.
const CORE: &str = "smart-core";
/// The package that must not depend on the core.
const SANDBOX: &str = "smart-sandbox";

/// One `cargo tree` line: a package, or a feature of one (`-e features`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node<'a> {
    depth: usize,
    name: &'a str,
    feature: Option<&'a str>,
}

/// Parses a line of `cargo tree --prefix depth` output: `3tower-http v0.6.11`
/// or `3tower-http feature "follow-redirect"`.
fn parse_node(line: &str) -> Option<Node<'_>> {
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    let depth = line.get(..digits)?.parse().ok()?;
    let mut words = line.get(digits..)?.split_whitespace();
    let name = words.next()?;
    let feature = match words.next() {
        Some("feature") => Some(words.next()?.trim_matches('"')),
        _ => None,
    };
    Some(Node {
        depth,
        name,
        feature,
    })
}

/// Whether `name` is in `list` (entries ending in `*` are prefixes).
fn listed(list: &[&str], name: &str) -> bool {
    list.iter().any(|entry| match entry.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == *entry,
    })
}

/// A workspace member: its package name and directory relative to the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) name: String,
    pub(crate) dir: String,
}

/// Parses `cargo tree --workspace -e normal --depth 0 --prefix none`:
/// `smart-core v0.1.0 (/root/crates/smart-core)` per member.
pub(crate) fn parse_members(text: &str, root: &Path) -> Vec<Member> {
    let root = root.to_string_lossy();
    let root = root.trim_end_matches('/');
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.trim().split_once(' ')?;
            let path = rest.split_once('(')?.1.split_once(')')?.0;
            let dir = path
                .strip_prefix(root)
                .unwrap_or(path)
                .trim_start_matches('/');
            Some(Member {
                name: name.to_owned(),
                dir: dir.to_owned(),
            })
        })
        .collect()
}

/// Whether a member is an adapter crate (the registry or one adapter).
fn is_adapter(member: &Member) -> bool {
    member.dir.starts_with("adapters/") || member.name == "smart-adapters"
}

/// What `cargo xtask tidy` reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inputs<'a> {
    /// `cargo tree -e normal,features -p smart-core --prefix depth`.
    pub(crate) core_tree: &'a str,
    /// `cargo tree -e normal -p smart-sandbox --prefix depth`.
    pub(crate) sandbox_tree: &'a str,
    /// The workspace members ([`parse_members`]).
    pub(crate) members: &'a [Member],
    /// The text of `docs/architecture.md`.
    pub(crate) architecture: &'a str,
}

/// A broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Violation {
    /// The core reaches a crate it must not; `path` runs from the core to it.
    CoreReaches {
        what: &'static str,
        name: String,
        path: Vec<String>,
    },
    /// The sandbox depends on the core; `path` runs from the sandbox to it.
    SandboxDependsOnCore { path: Vec<String> },
    /// A workspace crate `docs/architecture.md` does not name.
    Undocumented { name: String, dir: String },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::CoreReaches { what, name, path } => write!(
                f,
                "{CORE} reaches {what} `{name}` through normal dependencies: {}",
                path.join(" -> ")
            ),
            Violation::SandboxDependsOnCore { path } => write!(
                f,
                "{SANDBOX} depends on {CORE} (the sandbox must stay independent of the client it tests): {}",
                path.join(" -> ")
            ),
            Violation::Undocumented { name, dir } => write!(
                f,
                "workspace crate `{name}` ({dir}) is not mentioned in docs/architecture.md; add it to the code map"
            ),
        }
    }
}

/// Checks every rule; an empty list means the workspace is tidy.
pub(crate) fn check(inputs: &Inputs<'_>) -> Vec<Violation> {
    let mut found = core_violations(inputs.core_tree, inputs.members);
    found.extend(sandbox_violations(inputs.sandbox_tree));
    found.extend(
        inputs
            .members
            .iter()
            .filter(|m| {
                !mentions(inputs.architecture, &m.name) && !mentions(inputs.architecture, &m.dir)
            })
            .map(|m| Violation::Undocumented {
                name: m.name.clone(),
                dir: m.dir.clone(),
            }),
    );
    found
}

/// The crates from the root to each line, as the tree's depths give them.
fn walk<'a>(tree: &'a str, mut visit: impl FnMut(&Node<'a>, &[&'a str])) {
    let mut ancestors: Vec<&'a str> = Vec::new();
    for node in tree.lines().filter_map(parse_node) {
        ancestors.truncate(node.depth);
        visit(&node, &ancestors);
        ancestors.push(node.name);
    }
}

/// `ancestors` then `name`, without the repeats feature lines add.
fn path_to(ancestors: &[&str], name: &str) -> Vec<String> {
    let mut path: Vec<String> = Vec::new();
    for n in ancestors.iter().copied().chain(std::iter::once(name)) {
        if path.last().map(String::as_str) != Some(n) {
            path.push(n.to_owned());
        }
    }
    path
}

fn core_violations(tree: &str, members: &[Member]) -> Vec<Violation> {
    let adapters: Vec<&str> = members
        .iter()
        .filter(|m| is_adapter(m))
        .map(|m| m.name.as_str())
        .collect();
    let mut found: Vec<Violation> = Vec::new();
    walk(tree, |node, ancestors| {
        let what = match node.feature {
            Some(feature)
                if SERVER_FEATURE_CRATES.contains(&node.name) && feature.starts_with("server") =>
            {
                Some("the server side of an HTTP library")
            }
            Some(_) => None,
            None if node.name == "tower-http"
                && ancestors.iter().any(|a| listed(HTTP_CLIENTS, a)) =>
            {
                None
            }
            None if listed(WEB_FRAMEWORKS, node.name) => Some("a web framework"),
            None if listed(DATABASES, node.name) => Some("a database crate"),
            None if listed(FHIR_MODELS, node.name) => Some("a FHIR model crate"),
            None if adapters.contains(&node.name) => Some("an adapter crate"),
            None => None,
        };
        let Some(what) = what else { return };
        let name = match node.feature {
            Some(feature) => format!("{} feature \"{feature}\"", node.name),
            None => node.name.to_owned(),
        };
        // Report each crate once, at its first (shortest-listed) path.
        if !found
            .iter()
            .any(|v| matches!(v, Violation::CoreReaches { name: n, .. } if *n == name))
        {
            found.push(Violation::CoreReaches {
                what,
                path: path_to(ancestors, node.name),
                name,
            });
        }
    });
    found
}

fn sandbox_violations(tree: &str) -> Vec<Violation> {
    let mut found = None;
    walk(tree, |node, ancestors| {
        if found.is_none() && node.feature.is_none() && node.name == CORE && node.depth > 0 {
            found = Some(Violation::SandboxDependsOnCore {
                path: path_to(ancestors, node.name),
            });
        }
    });
    found.into_iter().collect()
}

/// Whether `text` contains `word` with no name character (letter, digit,
/// `-`, `_`) right before or after it.
fn mentions(text: &str, word: &str) -> bool {
    if word.is_empty() {
        return false;
    }
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(is_name_char) && !after.is_some_and(is_name_char)
    })
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask).to_path_buf()
}

/// Runs `cargo` with `args` in the workspace root and returns its stdout.
fn cargo_output(root: &Path, args: &[&str]) -> Result<String, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(&cargo)
        .args(args)
        .current_dir(root)
        .output()
        .map_err(|e| format!("could not run cargo {}: {e}", args.join(" ")))?;
    if !output.status.success() {
        return Err(format!(
            "cargo {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    String::from_utf8(output.stdout).map_err(|_| {
        format!(
            "cargo {} printed something that is not UTF-8",
            args.join(" ")
        )
    })
}

/// Gathers the inputs and checks them; the error is a reason to print.
fn violations() -> Result<Vec<Violation>, String> {
    let root = workspace_root();
    let core_tree = cargo_output(
        &root,
        &[
            "tree",
            "-e",
            "normal,features",
            "-p",
            CORE,
            "--prefix",
            "depth",
        ],
    )?;
    let sandbox_tree = cargo_output(
        &root,
        &["tree", "-e", "normal", "-p", SANDBOX, "--prefix", "depth"],
    )?;
    let workspace = cargo_output(
        &root,
        &[
            "tree",
            "--workspace",
            "-e",
            "normal",
            "--depth",
            "0",
            "--prefix",
            "none",
        ],
    )?;
    let members = parse_members(&workspace, &root);
    if members.is_empty() {
        return Err("cargo tree --workspace listed no crates".to_owned());
    }
    let architecture_path = root.join("docs/architecture.md");
    let architecture = std::fs::read_to_string(&architecture_path)
        .map_err(|e| format!("cannot read {}: {e}", architecture_path.display()))?;
    Ok(check(&Inputs {
        core_tree: &core_tree,
        sandbox_tree: &sandbox_tree,
        members: &members,
        architecture: &architecture,
    }))
}

/// `cargo xtask tidy`.
pub(crate) fn run() -> ExitCode {
    match violations() {
        Ok(found) if found.is_empty() => {
            eprintln!(
                "xtask tidy: {CORE} reaches no web framework, database, FHIR model or adapter crate; \
                 {SANDBOX} does not depend on {CORE}; every workspace crate is in docs/architecture.md"
            );
            ExitCode::SUCCESS
        }
        Ok(found) => {
            for v in &found {
                eprintln!("xtask tidy: {v}");
            }
            eprintln!("xtask tidy: {} rule(s) broken", found.len());
            ExitCode::FAILURE
        }
        Err(why) => {
            eprintln!("xtask tidy: {why}");
            ExitCode::FAILURE
        }
    }
}

/// For `cargo xtask ci`: `None` when tidy, otherwise the exit code to stop
/// with.
pub(crate) fn gate() -> Option<ExitCode> {
    let code = run();
    (code != ExitCode::SUCCESS).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "/w";

    fn members() -> Vec<Member> {
        parse_members(
            "smart-core v0.1.0 (/w/crates/smart-core)\n\n\
             smart-sandbox v0.1.0 (/w/crates/smart-sandbox)\n\n\
             smart-adapter-epic v0.1.0 (/w/adapters/epic)\n\n\
             xtask v0.1.0 (/w/xtask)\n",
            Path::new(ROOT),
        )
    }

    const ARCHITECTURE: &str = "### `crates/smart-core`\n### `crates/smart-sandbox`\n\
                                ### `adapters/epic`\n### `xtask`\n";

    /// A core tree shaped like the real one: reqwest brings hyper (client)
    /// and tower-http.
    const CLEAN_CORE: &str = "0smart-core v0.1.0 (/w/crates/smart-core)\n\
                              1reqwest feature \"default\"\n\
                              2reqwest v0.13.5\n\
                              3hyper feature \"client\"\n\
                              4hyper v1.12.0\n\
                              3tower-http feature \"follow-redirect\"\n\
                              4tower-http v0.6.11\n\
                              5tower v0.5.2 (*)\n\
                              1serde v1.0.228\n\
                              2serde_derive v1.0.228 (proc-macro)\n";

    const CLEAN_SANDBOX: &str = "0smart-sandbox v0.1.0 (/w/crates/smart-sandbox)\n\
                                 1axum v0.8.9\n\
                                 1smart-jose v0.1.0 (/w/crates/smart-jose)\n";

    fn run_check(core: &str, sandbox: &str, architecture: &str) -> Vec<Violation> {
        check(&Inputs {
            core_tree: core,
            sandbox_tree: sandbox,
            members: &members(),
            architecture,
        })
    }

    fn with_line(tree: &str, line: &str) -> String {
        format!("{tree}{line}\n")
    }

    #[test]
    fn a_tidy_workspace_passes() {
        assert_eq!(run_check(CLEAN_CORE, CLEAN_SANDBOX, ARCHITECTURE), []);
    }

    #[test]
    fn a_forbidden_dependency_of_the_core_fails_with_its_path() {
        let core = with_line(CLEAN_CORE, "1axum v0.8.9");
        let found = run_check(&core, CLEAN_SANDBOX, ARCHITECTURE);
        assert_eq!(
            found,
            [Violation::CoreReaches {
                what: "a web framework",
                name: "axum".into(),
                path: vec!["smart-core".into(), "axum".into()],
            }]
        );
        assert!(found[0].to_string().contains("smart-core -> axum"));
    }

    #[test]
    fn databases_fhir_models_and_adapters_are_forbidden_at_any_depth() {
        for (line, what) in [
            ("3sqlx-postgres v0.8.0", "a database crate"),
            ("3redis v0.27.0", "a database crate"),
            ("3rusqlite v0.32.0", "a database crate"),
            ("3tokio-postgres v0.7.0", "a database crate"),
            ("3fhirbolt-model v0.4.0", "a FHIR model crate"),
            (
                "3smart-adapter-epic v0.1.0 (/w/adapters/epic)",
                "an adapter crate",
            ),
            ("3actix-web v4.0.0", "a web framework"),
            ("3warp v0.3.0", "a web framework"),
            ("3rocket v0.5.0", "a web framework"),
        ] {
            let core = with_line(
                &with_line(CLEAN_CORE, "1serde v1.0.228"),
                &format!("2{}", &line[1..]),
            );
            let found = run_check(&core, CLEAN_SANDBOX, ARCHITECTURE);
            assert_eq!(found.len(), 1, "{line}: {found:?}");
            assert!(
                matches!(&found[0], Violation::CoreReaches { what: w, .. } if *w == what),
                "{line}: {found:?}"
            );
        }
    }

    #[test]
    fn tower_http_is_allowed_only_under_an_http_client() {
        let core = with_line(CLEAN_CORE, "1tower-http v0.6.11");
        let found = run_check(&core, CLEAN_SANDBOX, ARCHITECTURE);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].to_string().contains("smart-core -> tower-http"));
    }

    #[test]
    fn the_server_side_of_hyper_is_forbidden() {
        let core = with_line(CLEAN_CORE, "3hyper feature \"server\"");
        let found = run_check(&core, CLEAN_SANDBOX, ARCHITECTURE);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].to_string().contains("hyper feature \"server\""),
            "{}",
            found[0]
        );
        let core = with_line(CLEAN_CORE, "3hyper-util feature \"server-auto\"");
        assert_eq!(run_check(&core, CLEAN_SANDBOX, ARCHITECTURE).len(), 1);
    }

    #[test]
    fn the_sandbox_must_not_depend_on_the_core() {
        let sandbox = with_line(CLEAN_SANDBOX, "2smart-core v0.1.0 (/w/crates/smart-core)");
        let found = run_check(CLEAN_CORE, &sandbox, ARCHITECTURE);
        assert_eq!(
            found,
            [Violation::SandboxDependsOnCore {
                path: vec![
                    "smart-sandbox".into(),
                    "smart-jose".into(),
                    "smart-core".into()
                ],
            }]
        );
    }

    #[test]
    fn every_workspace_crate_must_be_in_the_architecture_doc() {
        let without_epic = ARCHITECTURE.replace("### `adapters/epic`\n", "");
        let found = run_check(CLEAN_CORE, CLEAN_SANDBOX, &without_epic);
        assert_eq!(
            found,
            [Violation::Undocumented {
                name: "smart-adapter-epic".into(),
                dir: "adapters/epic".into(),
            }]
        );
        // Named by package name instead of directory: fine.
        let by_name = format!("{without_epic}The `smart-adapter-epic` crate.\n");
        assert_eq!(run_check(CLEAN_CORE, CLEAN_SANDBOX, &by_name), []);
        // A longer name that merely contains it does not count.
        let longer = format!("{without_epic}smart-adapter-epic-extra\n");
        assert_eq!(run_check(CLEAN_CORE, CLEAN_SANDBOX, &longer).len(), 1);
    }

    #[test]
    fn tree_lines_and_members_parse() {
        assert_eq!(
            parse_node("3tower-http feature \"follow-redirect\""),
            Some(Node {
                depth: 3,
                name: "tower-http",
                feature: Some("follow-redirect")
            })
        );
        assert_eq!(
            parse_node("12serde_derive v1.0.228 (proc-macro) (*)"),
            Some(Node {
                depth: 12,
                name: "serde_derive",
                feature: None
            })
        );
        assert_eq!(parse_node(""), None);
        assert_eq!(parse_node("no depth"), None);
        assert_eq!(
            members()[2],
            Member {
                name: "smart-adapter-epic".into(),
                dir: "adapters/epic".into()
            }
        );
    }
}
