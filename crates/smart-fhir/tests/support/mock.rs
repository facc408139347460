//! A scripted FHIR server on axum (for what the sandbox cannot be told to do) and a token source
//! that counts refreshes.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use smart_core::quirks::VendorQuirks;
use smart_core::secret::AccessToken;
use smart_core::{Bearer, BearerError, BearerSource};

/// A canned response.
#[derive(Debug, Clone)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Canned {
    pub fn json(status: u16, body: serde_json::Value) -> Canned {
        Canned {
            status,
            headers: vec![("content-type".into(), "application/fhir+json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }
    pub fn text(status: u16, body: &str) -> Canned {
        Canned {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
    pub fn header(mut self, name: &str, value: &str) -> Canned {
        self.headers.push((name.into(), value.into()));
        self
    }
    pub fn delayed(mut self, delay: Duration) -> Canned {
        self.delay = delay;
        self
    }
}

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path_and_query: String,
    pub headers: http::HeaderMap,
    pub body: String,
    pub at: Instant,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

#[derive(Debug, Default)]
struct Script {
    responses: Mutex<VecDeque<Canned>>,
    seen: Mutex<Vec<Seen>>,
}

/// The scripted server. Unscripted requests get `200` with a small Patient.
#[derive(Debug, Clone)]
pub struct MockServer {
    pub addr: SocketAddr,
    script: Arc<Script>,
}

impl MockServer {
    pub async fn start() -> MockServer {
        let script = Arc::new(Script::default());
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        MockServer { addr, script }
    }

    pub fn base(&self) -> String {
        format!("http://{}/fhir", self.addr)
    }

    pub fn push(&self, canned: Canned) {
        self.script
            .responses
            .lock()
            .expect("lock")
            .push_back(canned);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.script.seen.lock().expect("lock").clone()
    }
}

async fn handle(State(script): State<Arc<Script>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    script.seen.lock().expect("lock").push(Seen {
        method: parts.method.to_string(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: parts.headers.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    });
    let canned = script
        .responses
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or_else(|| {
            Canned::json(
                200,
                serde_json::json!({"resourceType": "Patient", "id": "unscripted"}),
            )
        });
    if !canned.delay.is_zero() {
        tokio::time::sleep(canned.delay).await;
    }
    let mut response = Response::builder().status(canned.status);
    for (name, value) in &canned.headers {
        response = response.header(name, value);
    }
    response.body(Body::from(canned.body)).expect("response")
}

/// Tokens `tok-1`, `tok-2`, …: a refresh (single-flight per generation) moves to the next one.
#[derive(Debug)]
pub struct TestAuth {
    base: String,
    generation: Mutex<u64>,
    pub refreshes: AtomicUsize,
    pub bearer_calls: AtomicUsize,
    /// The session ends at the first refresh.
    pub end_on_refresh: bool,
}

impl TestAuth {
    pub fn new(base: &str) -> Arc<TestAuth> {
        Arc::new(TestAuth {
            base: base.into(),
            generation: Mutex::new(1),
            refreshes: AtomicUsize::new(0),
            bearer_calls: AtomicUsize::new(0),
            end_on_refresh: false,
        })
    }
    pub fn ending(base: &str) -> Arc<TestAuth> {
        Arc::new(TestAuth {
            end_on_refresh: true,
            ..Arc::into_inner(TestAuth::new(base)).expect("fresh")
        })
    }
    pub fn refreshes(&self) -> usize {
        self.refreshes.load(Ordering::SeqCst)
    }
    fn current(&self) -> Bearer {
        let g = *self.generation.lock().expect("lock");
        Bearer {
            access_token: AccessToken::new(format!("tok-{g}")),
            generation: g,
        }
    }
}

#[async_trait]
impl BearerSource for TestAuth {
    fn fhir_base(&self) -> &str {
        &self.base
    }
    fn adapter(&self) -> Arc<dyn VendorQuirks> {
        Arc::new(smart_adapter_generic::Generic)
    }
    async fn bearer(&self) -> Result<Bearer, BearerError> {
        self.bearer_calls.fetch_add(1, Ordering::SeqCst);
        Ok(self.current())
    }
    async fn after_unauthorized(&self, rejected: &Bearer) -> Result<Bearer, BearerError> {
        if self.end_on_refresh {
            return Err(BearerError::SessionEnded {
                reason: "the server rejected the refresh token".into(),
            });
        }
        {
            let mut g = self.generation.lock().expect("lock");
            if *g == rejected.generation {
                *g += 1;
                self.refreshes.fetch_add(1, Ordering::SeqCst);
            }
        }
        Ok(self.current())
    }
}
