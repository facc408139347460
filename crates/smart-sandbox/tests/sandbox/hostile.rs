//! Hostile input at the server level: Bundles that ask for too much, `Host`
//! values of other sites (DNS rebinding), and connections that send slowly,
//! stay idle or come in floods.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use smart_sandbox::{ConnectionLimits, SandboxConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

fn search_batch(kind: &str, entries: usize, url: &str) -> Value {
    let entry: Vec<Value> = (0..entries)
        .map(|_| json!({"request": {"method": "GET", "url": url}}))
        .collect();
    json!({"resourceType": "Bundle", "type": kind, "entry": entry})
}

async fn outcome(resp: reqwest::Response, status: u16) -> String {
    assert_eq!(resp.status(), status);
    let body: Value = resp.json().await.expect("OperationOutcome");
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
    assert_eq!(body["issue"][0]["code"], "too-costly", "{body}");
    body["issue"][0]["diagnostics"]
        .as_str()
        .expect("diagnostics")
        .to_owned()
}

#[tokio::test]
async fn bundle_with_more_entries_than_the_cap_is_refused() {
    let sb = start().await;
    let t = user_token(&sb).await;
    let too_many = search_batch("batch", 101, "Patient/pat-1");
    let resp = send(&sb, Method::POST, "", &t, Some(&too_many), &[]).await;
    let text = outcome(resp, 413).await;
    assert!(
        text.contains("101 entries") && text.contains("at most 100"),
        "{text}"
    );
    let too_many = search_batch("transaction", 500, "Patient/pat-1");
    let resp = send(&sb, Method::POST, "", &t, Some(&too_many), &[]).await;
    outcome(resp, 413).await;

    let at_cap = search_batch("batch", 100, "Patient/pat-1");
    let resp = send(&sb, Method::POST, "", &t, Some(&at_cap), &[]).await;
    assert_eq!(resp.status(), 200);
    let out: Value = resp.json().await.expect("batch-response");
    assert_eq!(out["entry"].as_array().map(Vec::len), Some(100));
    assert_eq!(out["entry"][99]["resource"]["id"], "pat-1");
    assert_eq!(out["entry"][99]["response"]["status"], "200 OK");

    sb.set_behavior(|b| b.max_bundle_entries = 3);
    let resp = send(
        &sb,
        Method::POST,
        "",
        &t,
        Some(&search_batch("batch", 4, "Patient/pat-1")),
        &[],
    )
    .await;
    outcome(resp, 413).await;
}

#[tokio::test]
async fn bundle_response_size_is_capped() {
    let sb = start().await;
    let t = user_token(&sb).await;
    // 100 full pages of observations: far more than 4 MiB of JSON.
    let big = search_batch("batch", 100, "Observation?_count=200");
    let started = Instant::now();
    let resp = send(&sb, Method::POST, "", &t, Some(&big), &[]).await;
    let text = outcome(resp, 400).await;
    assert!(text.contains("larger than 4194304 bytes"), "{text}");
    // It stops at the entry that passes the cap instead of running them all.
    let at_entry: usize = text
        .split("reached at entry ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|n| n.parse().ok())
        .expect("entry number");
    assert!(at_entry < 99, "{text}");
    assert!(started.elapsed() < Duration::from_secs(60));

    let big = search_batch("transaction", 100, "Observation?_count=200");
    let resp = send(&sb, Method::POST, "", &t, Some(&big), &[]).await;
    let text = outcome(resp, 400).await;
    assert!(text.contains("transaction failed at entry"), "{text}");

    // Within the cap the same Bundle shape is answered in full.
    let small = search_batch("batch", 3, "Observation?_count=200");
    let resp = send(&sb, Method::POST, "", &t, Some(&small), &[]).await;
    assert_eq!(resp.status(), 200);
    let out: Value = resp.json().await.expect("batch-response");
    assert_eq!(out["type"], "batch-response");
    assert_eq!(out["entry"][2]["resource"]["type"], "searchset");

    sb.set_behavior(|b| b.max_bundle_response_bytes = 1000);
    let resp = send(&sb, Method::POST, "", &t, Some(&small), &[]).await;
    let text = outcome(resp, 400).await;
    assert!(text.contains("reached at entry 0"), "{text}");
}

/// Sends `request` on a new connection and returns everything the server
/// writes before closing (or within 5 s).
async fn raw_exchange(sb: &smart_sandbox::Sandbox, request: &str) -> String {
    let mut stream = TcpStream::connect(sb.addr()).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn get_with_host(host: &str) -> String {
    format!(
        "GET /fhir/.well-known/smart-configuration HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
}

#[tokio::test]
async fn foreign_host_is_refused() {
    let sb = start().await;
    let port = sb.addr().port();
    for host in [
        format!("evil.example:{port}"),
        format!("rebind.attacker.test:{port}"),
        "localhost".to_owned(),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
    ] {
        let answer = raw_exchange(&sb, &get_with_host(&host)).await;
        assert!(answer.starts_with("HTTP/1.1 421"), "Host {host}: {answer}");
        assert!(answer.contains("does not name this sandbox"), "{answer}");
        assert!(answer.contains("DNS rebinding"), "{answer}");
    }
    // Without a Host header (HTTP/1.0) too.
    let answer = raw_exchange(
        &sb,
        "GET /fhir/.well-known/smart-configuration HTTP/1.0\r\n\r\n",
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.0 421") || answer.starts_with("HTTP/1.1 421"),
        "{answer}"
    );
    // A rebinding page cannot reach the token endpoint either.
    let answer = raw_exchange(
        &sb,
        &format!(
            "POST /auth/token HTTP/1.1\r\nHost: evil.example:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 421"), "{answer}");

    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LOCALHOST:{port}"),
        format!("[::1]:{port}"),
    ] {
        let answer = raw_exchange(&sb, &get_with_host(&host)).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "Host {host}: {answer}");
    }
}

fn limits(f: impl FnOnce(&mut ConnectionLimits)) -> SandboxConfig {
    let mut config = SandboxConfig::default();
    f(&mut config.connections);
    config
}

/// Whether the server closes `stream` within `within` (reads until EOF).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut sink = Vec::new();
    matches!(
        tokio::time::timeout(within, stream.read_to_end(&mut sink)).await,
        Ok(Ok(_)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn idle_and_incomplete_headers_are_closed_after_the_header_timeout() {
    let sb = start_with(limits(|l| l.header_read_timeout = Duration::from_secs(1))).await;
    let mut idle = TcpStream::connect(sb.addr()).await.expect("connect");
    let mut partial = TcpStream::connect(sb.addr()).await.expect("connect");
    partial
        .write_all(b"GET /fhir/metadata HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .expect("write");
    let started = Instant::now();
    // Without a timer hyper would keep both open for ever.
    assert!(closed_within(&mut idle, Duration::from_secs(5)).await);
    assert!(closed_within(&mut partial, Duration::from_secs(5)).await);
    assert!(started.elapsed() >= Duration::from_millis(800));
}

#[tokio::test]
async fn a_body_that_stops_arriving_ends_the_request() {
    let sb = start_with(limits(|l| l.body_read_timeout = Duration::from_secs(1))).await;
    let port = sb.addr().port();
    let mut stream = TcpStream::connect(sb.addr()).await.expect("connect");
    stream
        .write_all(
            format!(
                "POST /auth/token HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant_type="
            )
            .as_bytes(),
        )
        .await
        .expect("write");
    let started = Instant::now();
    assert!(closed_within(&mut stream, Duration::from_secs(8)).await);
    assert!(started.elapsed() < Duration::from_secs(8));
}

#[tokio::test]
async fn a_request_that_takes_too_long_is_answered_503() {
    let sb = start_with(limits(|l| l.request_timeout = Duration::from_secs(1))).await;
    let t = user_token(&sb).await;
    sb.set_behavior(|b| b.fhir_delay = Some(Duration::from_secs(20)));
    let started = Instant::now();
    let resp = read(&sb, "Patient/pat-1", Some(&t)).await;
    assert_eq!(resp.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(5));
    let text = resp.text().await.expect("body");
    assert!(text.contains("longer than 1 s"), "{text}");
}

#[tokio::test]
async fn at_the_connection_cap_the_oldest_connections_give_way() {
    // A long header timeout: only the cap can close the idle connections.
    let sb = start_with(limits(|l| {
        l.max_connections = 8;
        l.header_read_timeout = Duration::from_secs(120);
    }))
    .await;
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(TcpStream::connect(sb.addr()).await.expect("connect"));
    }
    // A new client is served at once although 40 idle connections came first.
    let started = Instant::now();
    let resp = read(&sb, ".well-known/smart-configuration", None).await;
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(5));
    let mut closed = 0;
    for stream in &mut idle {
        if closed_within(stream, Duration::from_millis(200)).await {
            closed += 1;
        }
    }
    // All but the newest few were closed by the server.
    assert!(
        closed >= 40 - 8,
        "only {closed} of 40 idle connections were closed"
    );
}
