//! README.md's shell examples, run as a reader would paste them.
//!
//! Every ```` ```sh ```` block of the README is split into commands (a `\` continues a line, a
//! heredoc runs to its end marker) and run with `bash -euo pipefail` in a scratch directory, in
//! README order, with the freshly built `smart` first on `PATH`, so a renamed flag, a missing
//! variable or a command that fails against a fresh sandbox fails this test. What is rewritten:
//!
//! - every port a README server is started on (`--port N`) becomes a free port, everywhere it is
//!   written (`--port N`, `127.0.0.1:N`), so the test cannot collide with anything on the
//!   machine; the redirect URI's port is left alone (nothing ever connects to it);
//! - `cargo run -p smart-cli -- ARGS` becomes `smart ARGS`.
//!
//! What is not run as written:
//!
//! - servers (`smart sandbox`, `smart jwks serve`), which the README says block in a terminal of
//!   their own, run in the background until they print `Press Ctrl-C to stop.`, and are killed
//!   when the test ends;
//! - other `cargo` commands are skipped: `cargo install` would install into the user's
//!   `~/.cargo/bin` (the test puts the built binary on `PATH` instead), and `cargo xtask ci` runs
//!   the whole test suite, this test included.
//!
//! Each run's output must contain what the README promises (the table in
//! [`EXPECTED_OUTPUT`]); an entry whose command is gone from the README fails the test, so the
//! table cannot go stale silently.
//!
//! The README describes the default build, with every adapter of the registry (`smart demo
//! --profile cerner` expects the Oracle Health adapter); the single-adapter CI builds compile
//! this file empty.

#![cfg(feature = "all-adapters")]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_smart");
const README: &str = include_str!("../../../README.md");

/// (a fragment of a README command, a fragment its run must print). Matched against the output
/// of the run that contains the command, after the port rewriting.
const EXPECTED_OUTPUT: &[(&str, &str)] = &[
    ("smart demo ", "Done: both launches"),
    (
        "smart discover http://127.0.0.1:8080/fhir",
        "token_endpoint",
    ),
    (
        "--client-id demo-public \\\n  --redirect-uri http://127.0.0.1:8765/callback \\\n  --scope",
        "standalone launch completed for client demo-public",
    ),
    ("--launch=\"$LAUNCH\"", "\"patient\": \"pat-2\""),
    ("--headless --name my-session", "session        my-session"),
    ("get Patient/pat-1", "\"family\": \"Rivera\""),
    ("search Observation", "\"laboratory\""),
    ("smart sessions list", "my-session"),
    ("smart sessions show my-session", "pat-1"),
    ("smart demo --profile cerner", "Done: both launches"),
    ("interconnect-fhir-oauth/api/FHIR/R4", "epic ("),
    ("smart keys generate", "generated ES384 key"),
    (
        "--scope \"system/Patient.rs\"\n",
        "granted        system/Patient.rs",
    ),
    ("get Patient/pat-3", "\"birthDate\": \"2012-06-05\""),
    ("smart introspect", "client_id   exporter"),
    (
        "--client-id my-asymmetric-app",
        "(verified id_token, sub pat-1)",
    ),
];

/// How long one run may take (a debug build against a local sandbox needs a few seconds; the
/// bound only stops a hung command from hanging the suite).
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// A background server, killed when dropped.
struct Server {
    command: String,
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One piece of a block, in README order.
#[derive(Debug)]
enum Step {
    /// Commands run together in one `bash` (so variables carry from one line to the next).
    Script(String),
    /// A command that runs until Ctrl-C.
    Server(String),
}

/// The contents of the README's ```` ```sh ```` blocks.
fn sh_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim() == "```sh" => current = Some(String::new()),
            None => {}
            Some(_) if line.trim() == "```" => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    assert!(
        current.is_none(),
        "an unterminated ```sh block in README.md"
    );
    blocks
}

/// Splits a block into commands: a line ending in `\` continues, a heredoc (`<<'EOF'`) runs to
/// its end marker. Comment lines stay with the command that follows them.
fn commands(block: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut heredoc_end: Option<String> = None;
    for line in block.lines() {
        current.push_str(line);
        current.push('\n');
        if let Some(end) = &heredoc_end {
            if line.trim() == end {
                heredoc_end = None;
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        if let Some(at) = line.find("<<") {
            let marker: String = line[at + 2..]
                .trim_start_matches('-')
                .trim()
                .trim_matches(|c| c == '\'' || c == '"')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(
                !marker.is_empty(),
                "cannot read the heredoc marker in {line:?}"
            );
            heredoc_end = Some(marker);
            continue;
        }
        let code = line.trim();
        if code.ends_with('\\') || code.is_empty() || code.starts_with('#') {
            continue;
        }
        out.push(std::mem::take(&mut current));
    }
    assert!(
        heredoc_end.is_none(),
        "an unterminated heredoc in {block:?}"
    );
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

/// The command itself: without leading comment lines.
fn command_text(command: &str) -> String {
    command
        .lines()
        .skip_while(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Turns a block into steps; `None` for commands that are skipped (see the module docs).
fn steps(block: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut script = String::new();
    for command in commands(block) {
        let text = command_text(&command);
        if text.starts_with("cargo run -p smart-cli -- ") {
            script.push_str(&text.replacen("cargo run -p smart-cli -- ", "smart ", 1));
            script.push('\n');
        } else if text.starts_with("cargo ") {
            // `cargo install` and `cargo xtask ci`: see the module docs.
        } else if text.starts_with("smart sandbox") || text.starts_with("smart jwks serve") {
            if !script.is_empty() {
                steps.push(Step::Script(std::mem::take(&mut script)));
            }
            steps.push(Step::Server(text));
        } else {
            script.push_str(&command);
        }
    }
    if !script.is_empty() {
        steps.push(Step::Script(script));
    }
    steps
}

/// The ports README servers listen on (`--port N`), each mapped to a free port.
fn port_map(readme: &str) -> BTreeMap<u16, u16> {
    let mut map = BTreeMap::new();
    for (i, _) in readme.match_indices("--port ") {
        let digits: String = readme[i + 7..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let port: u16 = digits.parse().expect("--port is followed by a number");
        if port != 0 {
            map.entry(port).or_insert_with(free_port);
        }
    }
    map
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

fn rewrite_ports(text: &str, ports: &BTreeMap<u16, u16>) -> String {
    let mut out = text.to_owned();
    for (readme, free) in ports {
        for prefix in ["--port ", "127.0.0.1:"] {
            out = replace_port(
                &out,
                &format!("{prefix}{readme}"),
                &format!("{prefix}{free}"),
            );
        }
    }
    out
}

/// Replaces `from` with `to` where it is not followed by another digit (8080 is not 80801).
fn replace_port(text: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(from) {
        let after = &rest[at + from.len()..];
        out.push_str(&rest[..at]);
        if after.starts_with(|c: char| c.is_ascii_digit()) {
            out.push_str(from);
        } else {
            out.push_str(to);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// A `bash` in `dir` with the built `smart` first on `PATH` and no inherited SMART_ settings.
fn bash(dir: &Path, bin_dir: &Path, script: &str) -> Command {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin_dir.to_path_buf()];
    paths.extend(std::env::split_paths(&path));
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        // The session store goes under the scratch directory (`smart/sessions.db`), not the
        // user's own data directory.
        .env("XDG_DATA_HOME", dir)
        .env("PATH", std::env::join_paths(paths).expect("PATH"))
        .env_remove("RUST_LOG");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SMART_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Runs a script to its end (at most [`RUN_TIMEOUT`]) and returns stdout and stderr, or panics
/// with both when it fails.
fn run_script(dir: &Path, bin_dir: &Path, script: &str) -> String {
    let mut child = bash(dir, bin_dir, script)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash starts");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("README commands still running after {RUN_TIMEOUT:?}:\n{script}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = out_reader.join().expect("stdout reader");
    let err = err_reader.join().expect("stderr reader");
    assert!(
        status.success(),
        "README commands failed ({status}):\n{script}\n--- stdout\n{out}\n--- stderr\n{err}"
    );
    format!("{out}\n{err}")
}

/// Starts a server command in the background and waits until it says it is ready.
fn start_server(dir: &Path, bin_dir: &Path, command: &str) -> Server {
    let mut child = bash(dir, bin_dir, &format!("exec {command}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("bash starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut server = Server {
        command: command.to_owned(),
        child,
    };
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = String::new();
    let ready = lines.by_ref().map_while(Result::ok).any(|line| {
        seen.push_str(&line);
        seen.push('\n');
        line.starts_with("Press Ctrl-C to stop.")
    });
    if !ready {
        let status = server.child.wait().expect("wait");
        panic!(
            "README server `{}` ended ({status}) before it was ready:\n{seen}",
            server.command
        );
    }
    // Keep draining its output so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    server
}

#[test]
fn readme_shell_blocks_run_as_pasted() {
    let ports = port_map(README);
    for port in [8080, 8081, 9000] {
        assert!(
            ports.contains_key(&port),
            "README no longer starts a server on port {port}; update EXPECTED_OUTPUT"
        );
    }
    assert!(
        !ports.contains_key(&8765),
        "8765 is the demo clients' redirect URI port, which must not be a server port"
    );
    let expected: Vec<(String, &str)> = EXPECTED_OUTPUT
        .iter()
        .map(|(command, output)| (rewrite_ports(command, &ports), *output))
        .collect();

    let scratch = tempfile::tempdir().expect("temp dir");
    let dir = scratch.path().join("work");
    let bin_dir = scratch.path().join("bin");
    std::fs::create_dir_all(&dir).expect("work dir");
    std::fs::create_dir_all(&bin_dir).expect("bin dir");
    std::os::unix::fs::symlink(BIN, bin_dir.join("smart")).expect("link smart into PATH");

    let blocks = sh_blocks(README);
    assert!(blocks.len() >= 8, "README.md has its shell blocks");
    let mut servers = Vec::new();
    let mut runs: Vec<(String, String)> = Vec::new();
    for block in &blocks {
        let block = rewrite_ports(block, &ports);
        for step in steps(&block) {
            match step {
                Step::Server(command) => servers.push(start_server(&dir, &bin_dir, &command)),
                Step::Script(script) => {
                    let output = run_script(&dir, &bin_dir, &script);
                    runs.push((script, output));
                }
            }
        }
    }
    assert!(
        servers.len() >= 4,
        "the README's servers were recognised and started: {:?}",
        servers.iter().map(|s| &s.command).collect::<Vec<_>>()
    );

    for (command, output) in &expected {
        let matching: Vec<&(String, String)> = runs
            .iter()
            .filter(|(script, _)| script.contains(command.as_str()))
            .collect();
        assert!(
            !matching.is_empty(),
            "no README command contains {command:?} any more; update EXPECTED_OUTPUT"
        );
        for (script, printed) in matching {
            assert!(
                printed.contains(output),
                "README commands\n{script}\nshould print {output:?}, printed:\n{printed}"
            );
        }
    }

    // The store and key file the README names are where it says, and the key is private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert!(dir.join("smart/sessions.db").is_file(), "the session store");
        let mode = std::fs::metadata(dir.join("smart/sessions.key"))
            .expect("the key file next to the store")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "sessions.key is mode 0600");
    }
    drop(servers);
}

#[test]
fn commands_follow_continuations_and_heredocs() {
    let block = "# note\na --x \\\n  --y\ncat > f <<'EOF'\nk = 1\nEOF\nb\n";
    assert_eq!(
        commands(block),
        vec![
            "# note\na --x \\\n  --y\n",
            "cat > f <<'EOF'\nk = 1\nEOF\n",
            "b\n"
        ]
    );
    let steps = steps("smart sandbox --port 1   # blocks\nsmart discover x\ncargo install y\n");
    assert!(matches!(&steps[0], Step::Server(c) if c.starts_with("smart sandbox --port 1")));
    assert!(matches!(&steps[1], Step::Script(s) if s == "smart discover x\n"));
    assert_eq!(steps.len(), 2, "cargo install is skipped");
    let ports = BTreeMap::from([(8080, 4242)]);
    assert_eq!(
        rewrite_ports(
            "--port 8080 127.0.0.1:8080/fhir 127.0.0.1:80801 127.0.0.1:8765",
            &ports
        ),
        "--port 4242 127.0.0.1:4242/fhir 127.0.0.1:80801 127.0.0.1:8765"
    );
}
