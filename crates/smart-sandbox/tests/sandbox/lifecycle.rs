use std::time::Duration;

use smart_sandbox::{Sandbox, SandboxConfig, SandboxError};

use crate::common::*;

#[tokio::test]
async fn shutdown_and_drop_stop_the_server() {
    let sb = start().await;
    let url = format!("{}/metadata", sb.fhir_base());
    assert_eq!(http().get(&url).send().await.unwrap().status(), 200);
    sb.shutdown().await;
    assert!(http().get(&url).send().await.is_err());

    let sb = start().await;
    let url = format!("{}/metadata", sb.fhir_base());
    drop(sb);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(http().get(&url).send().await.is_err());
}

#[tokio::test]
async fn serve_until_returns_when_the_future_resolves() {
    let sb = start().await;
    let url = format!("{}/metadata", sb.fhir_base());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sb.serve_until(async {
        let _ = rx.await;
    }));
    assert_eq!(http().get(&url).send().await.unwrap().status(), 200);
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    assert!(http().get(&url).send().await.is_err());
}

#[tokio::test]
async fn binds_loopback_only_and_reports_port_conflicts() {
    let sb = start().await;
    assert!(sb.addr().ip().is_loopback());
    assert_eq!(
        sb.fhir_base(),
        format!("http://127.0.0.1:{}/fhir", sb.addr().port())
    );
    let err = Sandbox::start(SandboxConfig {
        port: sb.addr().port(),
        ..SandboxConfig::default()
    })
    .await
    .unwrap_err();
    assert!(matches!(err, SandboxError::Bind { .. }), "{err}");
}

#[tokio::test]
async fn cors_for_registered_origins() {
    let sb = start().await;
    let resp = http()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/auth/token", origin(&sb)),
        )
        .header("origin", "http://127.0.0.1:8765")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        "http://127.0.0.1:8765"
    );

    let resp = http()
        .get(format!("{}/Patient/pat-1", sb.fhir_base()))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("access-control-allow-origin").is_none());
}
