//! The adapter is decided once per launch, recorded, and reused: against the embedded sandbox's
//! Epic profile, over real HTTP on 127.0.0.1.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use smart_adapter_epic::Epic;
use smart_adapter_generic::Generic;
use smart_core::headless::authorize_headless;
use smart_core::http::{HttpClient, HttpError, HttpRequest, HttpResponse, ReqwestHttpClient};
use smart_core::scope::Scopes;
use smart_core::secret::ClientSecret;
use smart_core::store::Store;
use smart_core::{
    AUTO_ADAPTER, ClientRegistration, ErrorKind, LaunchError, MemoryStore, SmartClient,
    StandaloneLaunch,
};
use smart_sandbox::{
    ClientAuth, DEMO_REDIRECT_URI, LaunchDefaults, Sandbox, SandboxConfig, VendorProfile,
};

const CLIENT_ID: &str = "decision-app";
const SECRET: &str = "decision-secret-0123456789";
const SCOPES: &str = "launch/patient patient/*.rs offline_access";

/// Sends every request through reqwest and remembers its method and URL.
#[derive(Debug)]
struct RecordingHttp {
    inner: ReqwestHttpClient,
    requests: Mutex<Vec<String>>,
}

impl RecordingHttp {
    fn new() -> Arc<Self> {
        Arc::new(RecordingHttp {
            inner: ReqwestHttpClient::new().expect("http client"),
            requests: Mutex::new(Vec::new()),
        })
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("lock").clone()
    }
}

#[async_trait]
impl HttpClient for RecordingHttp {
    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        self.requests
            .lock()
            .expect("lock")
            .push(format!("{} {}", request.method(), request.uri()));
        self.inner.execute(request).await
    }
}

async fn epic_sandbox(port: u16) -> Sandbox {
    let config = SandboxConfig {
        port,
        profile: VendorProfile::builtin("epic").expect("epic profile"),
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::start(config).await.expect("sandbox");
    sandbox.register_client(smart_sandbox::ClientRegistration {
        client_id: CLIENT_ID.into(),
        auth: ClientAuth::ClientSecretBasic {
            secret: SECRET.into(),
        },
        redirect_uris: vec![DEMO_REDIRECT_URI.into()],
        launch_uri: None,
        scopes: SCOPES.into(),
        context: LaunchDefaults {
            patient: Some("pat-1".into()),
            ..LaunchDefaults::default()
        },
        grant_types: vec!["authorization_code".into()],
    });
    sandbox
}

fn registration(base: &str) -> ClientRegistration {
    ClientRegistration::confidential_symmetric(
        base,
        CLIENT_ID,
        ClientSecret::new(SECRET),
        DEMO_REDIRECT_URI,
    )
    .with_scopes(Scopes::parse(SCOPES))
}

/// A client with the generic adapter first (the fallback) and Epic second, detecting.
fn auto_client(
    base: &str,
    http: Option<Arc<dyn HttpClient>>,
    store: Option<Arc<dyn Store>>,
) -> smart_core::SmartClientBuilder {
    let mut builder = SmartClient::builder()
        .registration("app", registration(base))
        .adapter(Arc::new(Generic))
        .adapter(Arc::new(Epic::new()));
    if let Some(http) = http {
        builder = builder.http(http);
    }
    if let Some(store) = store {
        builder = builder.store(store);
    }
    builder
}

#[tokio::test]
async fn under_auto_the_first_discovery_already_goes_through_the_epic_hooks() {
    let sandbox = epic_sandbox(0).await;
    let base = sandbox.fhir_base();
    assert_eq!(
        registration(&base).adapter,
        AUTO_ADAPTER,
        "auto is the default"
    );
    let client = auto_client(&base, None, None).build().expect("client");

    // The very first discovery of this base: Epic's patch (dropping its five-entry
    // scopes_supported) is applied, not the generic adapter's unpatched configuration.
    let discovered = client.discover(&base).await.expect("discovery");
    assert_eq!(
        discovered.configuration.scopes_supported, None,
        "Epic's discovery patch applied on the first call"
    );

    let request = client
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .expect("begin");
    assert_eq!(request.adapter.adapter, "epic");
    assert!(request.adapter.detected);
    assert!(
        !request.adapter.reason.is_empty(),
        "the choice says why: {:?}",
        request.adapter
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_failed_detection_is_not_pinned_and_succeeds_on_the_next_launch() {
    // A port nothing listens on yet: the first launch meets a real connection refusal.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let base = format!("http://127.0.0.1:{port}/interconnect-fhir-oauth/api/FHIR/R4");

    // With the default back-off, a second launch right away is answered from memory: the
    // server is not asked again.
    let http = RecordingHttp::new();
    let patient = auto_client(&base, Some(http.clone()), None)
        .build()
        .expect("client");
    let first = patient
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .expect_err("nothing listens");
    assert_eq!(first.kind(), ErrorKind::Temporary, "{first}");
    let asked = http.requests().len();
    assert!(asked > 0);
    let again = patient
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .expect_err("within the back-off");
    assert!(
        matches!(again, LaunchError::Discovery(_)) && again.is_temporary(),
        "{again}"
    );
    assert_eq!(
        http.requests().len(),
        asked,
        "not asked again during the back-off"
    );

    // Once the back-off has passed (zero here), the next launch detects again and succeeds.
    let client = auto_client(&base, None, None)
        .retry_failed_detection_after(std::time::Duration::ZERO)
        .build()
        .expect("client");
    let failed = client
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .expect_err("nothing listens");
    assert!(failed.is_temporary(), "{failed}");

    let sandbox = epic_sandbox(port).await;
    assert_eq!(sandbox.fhir_base(), base);
    let request = client
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .expect("the next launch detects again");
    assert_eq!(request.adapter.adapter, "epic", "{:?}", request.adapter);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_second_client_sharing_the_store_completes_with_the_recorded_adapter_and_no_discovery() {
    let sandbox = epic_sandbox(0).await;
    let base = sandbox.fhir_base();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());

    let first = auto_client(&base, None, Some(store.clone()))
        .build()
        .expect("client");
    let request = first
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .expect("begin");
    assert_eq!(request.adapter.adapter, "epic");
    let callback = authorize_headless(&**first.http(), &request, DEMO_REDIRECT_URI)
        .await
        .expect("the sandbox redirects back");

    // Another instance of the app: same configuration and store, nothing else shared.
    let http = RecordingHttp::new();
    let second = auto_client(&base, Some(http.clone()), Some(store))
        .build()
        .expect("client");
    let done = second
        .complete_launch(&callback)
        .await
        .expect("the second instance completes the launch");
    assert_eq!(done.session.adapter.as_ref(), Some(&request.adapter));
    let requests = http.requests();
    assert!(
        requests
            .iter()
            .all(|r| !r.contains("/.well-known/") && !r.contains("/metadata")),
        "no discovery or detection request: {requests:?}"
    );
    assert_eq!(requests.len(), 1, "only the token request: {requests:?}");
    assert!(requests[0].starts_with("POST "), "{requests:?}");
    sandbox.shutdown().await;
}

/// Sends every request through reqwest and remembers the `Epic-Client-ID` header of each
/// discovery request (the sandbox does not record it, so the test records what was sent).
#[derive(Debug)]
struct HeaderRecordingHttp {
    inner: ReqwestHttpClient,
    epic_client_ids: Mutex<Vec<(String, Option<String>)>>,
}

#[async_trait]
impl HttpClient for HeaderRecordingHttp {
    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let header = request
            .headers()
            .get("epic-client-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        self.epic_client_ids
            .lock()
            .expect("lock")
            .push((request.uri().path().to_owned(), header));
        self.inner.execute(request).await
    }
}

#[tokio::test]
async fn epic_client_id_header_comes_from_the_registrations_adapter_options_in_toml() {
    use figment::Figment;
    use figment::providers::{Format, Toml};

    let sandbox = epic_sandbox(0).await;
    let base = sandbox.fhir_base();
    let toml = format!(
        r#"
        [clients.epic]
        issuer = "{base}"
        client_id = "{CLIENT_ID}"
        client_type = "public"
        redirect_uri = "{DEMO_REDIRECT_URI}"
        adapter = "epic"

        [clients.epic.adapter_options]
        client_id_header = "{CLIENT_ID}"
        "#
    );
    let config = smart_core::SmartConfig::from_figment(Figment::from(Toml::string(&toml)))
        .expect("valid configuration");
    let http = Arc::new(HeaderRecordingHttp {
        inner: ReqwestHttpClient::new().expect("http"),
        epic_client_ids: Mutex::new(Vec::new()),
    });
    let client = SmartClient::builder()
        .config(config)
        .adapter(Arc::new(Epic::new()))
        .http(http.clone())
        .build()
        .expect("client");
    let request = client
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .expect("begin");
    assert_eq!(request.adapter.adapter, "epic");
    let seen = http.epic_client_ids.lock().expect("lock").clone();
    let discovery: Vec<_> = seen
        .iter()
        .filter(|(path, _)| path.contains("/.well-known/") || path.ends_with("/metadata"))
        .collect();
    assert!(!discovery.is_empty(), "{seen:?}");
    assert!(
        discovery
            .iter()
            .all(|(_, h)| h.as_deref() == Some(CLIENT_ID)),
        "every discovery request carries Epic-Client-ID: {seen:?}"
    );
    // The Epic profile checks the header on its side too: it saw the configured client ID on
    // discovery, and nothing else.
    let at_sandbox = sandbox.client_id_headers_seen();
    assert!(
        at_sandbox.iter().any(
            |(endpoint, id)| *endpoint == smart_sandbox::Endpoint::Discovery && id == CLIENT_ID
        ),
        "the sandbox saw Epic-Client-ID on discovery: {at_sandbox:?}"
    );
    assert!(
        at_sandbox.iter().all(|(_, id)| id == CLIENT_ID),
        "{at_sandbox:?}"
    );

    // A misspelt option is refused when the client is built, naming the registration.
    let bad = SmartClient::builder()
        .registration(
            "epic",
            registration(&base)
                .with_adapter("epic")
                .with_adapter_option("client_id_hedaer", "x"),
        )
        .adapter(Arc::new(Epic::new()))
        .build()
        .expect_err("unknown option");
    assert!(
        bad.to_string().contains("clients.epic.adapter_options"),
        "{bad}"
    );
    sandbox.shutdown().await;
}
