//! What the CLI writes to a terminal (issue 8 items 10, 11 and 14): closed pipes end quietly, no
//! colour without a terminal or with `NO_COLOR`, a TLS failure is one line, `--timeout` bounds
//! every request, a slow request gets a status line on a terminal, server text is escaped, and
//! secrets a server echoes back are redacted.
//!
//! Terminals are real pseudo-terminals from util-linux `script`; servers are axum or rustls
//! servers on 127.0.0.1.

mod support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::routing::{get, post};
use serde_json::json;
use support::{runtime, sandbox, serve, smart, smart_command, stderr_of, stdout_ok};

const ESC: u8 = 0x1b;

fn has_escape(bytes: &[u8]) -> bool {
    // ESC itself, and U+009B (CSI) encoded as UTF-8.
    bytes.contains(&ESC) || bytes.windows(2).any(|w| w == [0xc2, 0x9b])
}

/// Runs `smart ARGS` inside a pseudo-terminal (stdout and stderr both on it) and returns what the
/// terminal showed. `envs` are set for the command.
fn in_terminal(args: &[&str], envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut line = shell_quote(support::BIN);
    for a in args {
        line.push(' ');
        line.push_str(&shell_quote(a));
    }
    let mut command = Command::new("script");
    command
        .args(["-qec", &line, "/dev/null"])
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .env("TERM", "xterm-256color");
    for (k, v) in envs {
        command.env(k, v);
    }
    let out = command
        .stdin(Stdio::null())
        .output()
        .expect("util-linux `script` runs (it provides the pseudo-terminal)");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A listener that accepts connections (the kernel completes the handshake) and never answers.
fn silent_listener() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}/fhir", listener.local_addr().expect("addr"));
    (listener, base)
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let rt = runtime();
    let sandbox = sandbox(&rt, |_| {});
    let base = sandbox.fhir_base();
    for args in [
        vec!["discover", base.as_str()],
        vec!["discover", base.as_str(), "--json"],
    ] {
        let mut child = smart_command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let err = stderr_of(&out);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: nothing to report: {err}");
    }
}

#[test]
fn no_colour_without_a_terminal_or_with_no_color() {
    let rt = runtime();
    let sandbox = sandbox(&rt, |_| {});
    let base = sandbox.fhir_base();
    // -v logs to stderr, which is a pipe here: plain text.
    let out = smart(&["-v", "discover", &base]);
    stdout_ok(&out);
    assert!(
        stderr_of(&out).contains("smart_core"),
        "-v logs: {}",
        stderr_of(&out)
    );
    assert!(!has_escape(&out.stderr), "{:?}", stderr_of(&out));
    assert!(!has_escape(&out.stdout));

    // On a terminal, NO_COLOR still turns colour off: logs and clap's own messages.
    for args in [
        vec!["-v", "discover", base.as_str()],
        vec!["--timeout", "soon", "discover", base.as_str()],
    ] {
        let (_, shown) = in_terminal(&args, &[("NO_COLOR", "1")]);
        assert!(!shown.is_empty());
        assert!(!has_escape(shown.as_bytes()), "{args:?}: {shown:?}");
    }
    // Without NO_COLOR a terminal does get colour (so the check above can see it).
    let (_, shown) = in_terminal(&["-v", "discover", &base], &[]);
    assert!(has_escape(shown.as_bytes()), "{shown:?}");
}

#[test]
fn a_tls_failure_is_one_line() {
    let rt = runtime();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![rustls::pki_types::CertificateDer::from(
            include_bytes!("fixtures/self-signed-cert.der").to_vec(),
        )],
        rustls::pki_types::PrivateKeyDer::Pkcs8(
            include_bytes!("fixtures/self-signed-key.der")
                .to_vec()
                .into(),
        ),
    )
    .expect("certificate");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    rt.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(stream).await;
            });
        }
    });

    let base = format!("https://{addr}/fhir");
    let out = smart(&["discover", &base]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: ") && err.contains(&format!("https://{addr}/fhir")),
        "{err}"
    );
    assert!(err.contains("certificate"), "says why: {err}");
}

#[test]
fn timeout_bounds_a_request_to_a_silent_server() {
    let (_listener, base) = silent_listener();
    let started = Instant::now();
    let out = smart(&["--timeout", "2", "discover", &base]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("timed out") && err.contains(&base), "{err}");
    // The default is 30 s; 2 s plus process start-up is far below 10 s.
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(10),
        "{took:?}"
    );

    // The flag is global: it works after the subcommand too.
    let started = Instant::now();
    let out = smart(&["discover", &base, "--timeout", "1"]);
    assert!(stderr_of(&out).contains("timed out"), "{}", stderr_of(&out));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_bad_timeout_is_refused_with_a_fix() {
    for value in ["soon", "0", "-5", "100000"] {
        let out = smart(&["--timeout", value, "discover", "http://127.0.0.1:9/fhir"]);
        assert_eq!(out.status.code(), Some(2), "{value}");
        let err = stderr_of(&out);
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.contains("--timeout") && first.contains("e.g. --timeout 30"),
            "{value}: {err}"
        );
    }
}

#[test]
fn a_slow_request_gets_a_status_line_on_a_terminal_only() {
    let (_listener, base) = silent_listener();
    let url = format!("{base}/.well-known/smart-configuration");
    let (code, shown) = in_terminal(&["--timeout", "4", "discover", &base], &[]);
    assert_eq!(code, Some(1), "{shown}");
    assert!(
        shown.contains(&format!("waiting for {url} (2 s)")),
        "{shown}"
    );
    assert!(shown.contains("timed out"), "{shown}");

    // Not a terminal: only the error line.
    let out = smart(&["--timeout", "3", "discover", &base]);
    let err = stderr_of(&out);
    assert!(!err.contains("waiting for"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// A SMART configuration whose strings try to drive the terminal.
fn hostile_configuration(addr: std::net::SocketAddr) -> serde_json::Value {
    json!({
        "issuer": format!("http://{addr}/fhir"),
        "authorization_endpoint": format!("http://{addr}/auth/authorize"),
        "token_endpoint": format!("http://{addr}/auth/token"),
        "introspection_endpoint": format!("http://{addr}/auth/introspect"),
        "grant_types_supported": ["authorization_code", "\u{1b}]0;owned\u{7}"],
        "code_challenge_methods_supported": ["S256", "\u{1b}[2J"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt\u{1b}[8m"],
        "capabilities": ["launch-ehr", "\u{1b}[31mred\u{1b}[0m", "x\u{9b}31m"],
        "scopes_supported": ["openid", "\u{1b}[1Abad"],
        "\u{1b}[5mblink": "extra field name",
    })
}

#[test]
fn server_text_never_reaches_the_terminal_raw() {
    let rt = runtime();
    let addr = serve(&rt, |addr| {
        axum::Router::new()
            .route(
                "/fhir/.well-known/smart-configuration",
                get(move || async move { Json(hostile_configuration(addr)) }),
            )
            .route(
                "/auth/introspect",
                post(|| async {
                    (
                        axum::http::StatusCode::BAD_REQUEST,
                        Json(json!({
                            "error": "invalid_request",
                            "error_description": "no \u{1b}]0;owned\u{7} such\ntoken \u{9b}2J",
                        })),
                    )
                }),
            )
    });
    let base = format!("http://{addr}/fhir");
    for args in [
        vec!["discover", base.as_str()],
        vec!["discover", base.as_str(), "--json"],
    ] {
        let out = smart(&args);
        let text = stdout_ok(&out);
        assert!(!has_escape(&out.stdout), "{args:?}: {text:?}");
        assert!(!has_escape(&out.stderr), "{args:?}: {:?}", stderr_of(&out));
        assert!(text.contains("owned"), "the text is shown, escaped: {text}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&stdout_ok(&smart(&["discover", &base, "--json"]))).expect("JSON");
    assert_eq!(
        json["configuration"]["capabilities"][2], "x\u{9b}31m",
        "JSON escapes keep the value"
    );

    // An error that quotes the server.
    let out = smart(&[
        "introspect",
        "--iss",
        &base,
        "--token",
        "t",
        "--bearer",
        "b",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(!has_escape(&out.stderr), "{err:?}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("such"), "{err}");
}

#[test]
fn introspect_json_redacts_echoed_secrets() {
    let rt = runtime();
    let addr = serve(&rt, |addr| {
        axum::Router::new()
            .route(
                "/fhir/.well-known/smart-configuration",
                get(move || async move { Json(hostile_configuration(addr)) }),
            )
            .route(
                "/auth/introspect",
                post(|| async {
                    Json(json!({
                        "active": true,
                        "client_id": "app",
                        "scope": "patient/*.rs",
                        "patient": "pat-1",
                        "token": "SECRET-token",
                        "access_token": "SECRET-access",
                        "refresh_token": "SECRET-refresh",
                        "id_token": "SECRET-id",
                        "client_secret": "SECRET-client",
                        "nested": {"Access_Token": "SECRET-nested"},
                        "location": "L1",
                    }))
                }),
            )
    });
    let base = format!("http://{addr}/fhir");
    let out = smart(&[
        "introspect",
        "--iss",
        &base,
        "--token",
        "t",
        "--bearer",
        "b",
        "--json",
    ]);
    let text = stdout_ok(&out);
    assert!(!text.contains("SECRET"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(json["active"], true);
    assert_eq!(json["client_id"], "app");
    assert_eq!(json["context"]["patient"], "pat-1");
    assert_eq!(
        json["context"]["extras"]["location"], "L1",
        "other fields stay"
    );
    assert_eq!(json["context"]["extras"]["access_token"], "[redacted]");
}
