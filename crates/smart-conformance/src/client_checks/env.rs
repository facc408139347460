//! One check's world: a fresh sandbox, a recorded transport, and the client wired to both.

use std::sync::Arc;
use std::time::Duration;

use smart_core::headless::authorize_headless;
use smart_core::http::{HttpClient, ReqwestHttpClient};
use smart_core::scope::Scopes;
use smart_core::secret::ClientSecret;
use smart_core::smart_jose::{Algorithm, PrivateKey};
use smart_core::{
    AuthorizationRequest, CallbackParams, ClientKeys, ClientRegistration, CompletedLaunch,
    LaunchError, SmartClient, StandaloneLaunch,
};
use smart_sandbox::{
    Behavior, ClientAuth, DEMO_REDIRECT_URI, LaunchDefaults, Sandbox, SandboxConfig,
};

use super::Harness;
use crate::recording::{Exchange, RecordingHttpClient};

/// The client id registered for the client checks.
pub const CLIENT_ID: &str = "conformance-app";
/// The symmetric client's secret: characters that must be form-urlencoded before Basic encoding.
pub const CLIENT_SECRET: &str = "s3cret/with+reserved=chars&more%";
/// The registration name on the client.
pub(crate) const REG: &str = "app";
/// What the sandbox lets the test client be granted.
pub(crate) const ALLOWED: &str = "launch launch/patient openid fhirUser profile offline_access online_access patient/*.rs user/*.rs system/*.rs";
/// The scopes most checks ask for.
pub(crate) const SCOPES: &str = "launch/patient openid fhirUser offline_access patient/*.rs";

/// How the test client authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Public,
    Symmetric,
    /// `private_key_jwt` with an ES384 key.
    Asymmetric,
    /// `private_key_jwt` with an RS384 key.
    AsymmetricRsa,
}

pub(crate) struct Env {
    pub(crate) sandbox: Sandbox,
    pub(crate) rec: Arc<RecordingHttpClient>,
    pub(crate) client: SmartClient,
    pub(crate) base: String,
    pub(crate) keys: Option<ClientKeys>,
}

impl Env {
    /// A generic-profile sandbox with the test client registered as `kind`, and a client asking
    /// for `scopes`.
    pub(crate) async fn start(h: &Harness, kind: Kind, scopes: &str) -> Result<Env, String> {
        Env::start_with(h, kind, scopes, |_| {}).await
    }

    /// [`Env::start`] with sandbox behaviour switches set before anything is sent.
    pub(crate) async fn start_with(
        h: &Harness,
        kind: Kind,
        scopes: &str,
        behavior: impl FnOnce(&mut Behavior),
    ) -> Result<Env, String> {
        Env::start_full(h, kind, scopes, behavior, None).await
    }

    /// [`Env::start`] where the token endpoint's JSON answers go through `edit` before the
    /// client (and the recording) see them: for server deviations the sandbox has no switch
    /// for.
    pub(crate) async fn start_editing_tokens(
        h: &Harness,
        kind: Kind,
        scopes: &str,
        edit: TokenEdit,
    ) -> Result<Env, String> {
        Env::start_full(h, kind, scopes, |_| {}, Some(edit)).await
    }

    async fn start_full(
        h: &Harness,
        kind: Kind,
        scopes: &str,
        behavior: impl FnOnce(&mut Behavior),
        edit: Option<TokenEdit>,
    ) -> Result<Env, String> {
        let mut b = Behavior::default();
        behavior(&mut b);
        let config = SandboxConfig {
            clients: Vec::new(),
            patient_count: 5,
            behavior: b,
            ..SandboxConfig::default()
        };
        let sandbox = Sandbox::start(config)
            .await
            .map_err(|e| format!("could not start the sandbox: {e}"))?;
        let base = sandbox.fhir_base();
        let keys = match kind {
            Kind::Asymmetric => Some(ClientKeys::new(
                PrivateKey::generate(Algorithm::ES384).map_err(|e| e.to_string())?,
            )),
            Kind::AsymmetricRsa => Some(ClientKeys::new(
                PrivateKey::generate(Algorithm::RS384).map_err(|e| e.to_string())?,
            )),
            _ => None,
        };
        let env_keys = keys.clone();
        let transport = ReqwestHttpClient::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| e.to_string())?;
        let transport: Arc<dyn HttpClient> = match edit {
            Some(edit) => Arc::new(EditTokenResponses {
                inner: Arc::new(transport),
                token_url: sandbox.token_url(),
                edit,
            }),
            None => Arc::new(transport),
        };
        let rec = RecordingHttpClient::new(transport);
        let http = h.wrap(rec.clone() as Arc<dyn HttpClient>);
        let scopes = Scopes::parse(scopes);
        let registration = match &keys {
            Some(keys) => ClientRegistration::confidential_asymmetric(
                &base,
                CLIENT_ID,
                keys.clone(),
                DEMO_REDIRECT_URI,
            ),
            None if kind == Kind::Symmetric => ClientRegistration::confidential_symmetric(
                &base,
                CLIENT_ID,
                ClientSecret::new(CLIENT_SECRET),
                DEMO_REDIRECT_URI,
            ),
            None => ClientRegistration::public(&base, CLIENT_ID, DEMO_REDIRECT_URI),
        }
        .with_scopes(scopes.clone())
        .with_adapter("generic");
        let mut builder = smart_adapters::install(SmartClient::builder())
            .registration(REG, registration)
            .http(http);
        if let Some(keys) = &keys {
            builder = builder.registration(
                "backend",
                ClientRegistration::backend(&base, CLIENT_ID, keys.clone(), scopes)
                    .with_adapter("generic"),
            );
        }
        let client = builder.build().map_err(|e| e.to_string())?;
        let env = Env {
            sandbox,
            rec,
            client,
            base,
            keys: env_keys,
        };
        env.register(ALLOWED, LaunchDefaults::default());
        Ok(env)
    }

    /// (Re-)registers the test client on the sandbox with `allowed` scopes and `context`.
    pub(crate) fn register(&self, allowed: &str, context: LaunchDefaults) {
        let auth = match &self.keys {
            Some(keys) => ClientAuth::PrivateKeyJwt {
                jwks: Some(keys.jwks()),
                jwks_url: None,
            },
            None => match self.client.registrations().get(REG).map(|r| &r.auth) {
                Some(smart_core::ClientAuth::Public) | None => ClientAuth::Public,
                Some(_) => ClientAuth::ClientSecretBasic {
                    secret: CLIENT_SECRET.into(),
                },
            },
        };
        let mut grant_types = vec!["authorization_code".to_owned()];
        if self.keys.is_some() {
            grant_types.push("client_credentials".to_owned());
        }
        self.sandbox
            .register_client(smart_sandbox::ClientRegistration {
                client_id: CLIENT_ID.into(),
                auth,
                redirect_uris: vec![DEMO_REDIRECT_URI.into()],
                launch_uri: None,
                scopes: allowed.into(),
                context: LaunchDefaults {
                    patient: context.patient.or(Some("pat-1".into())),
                    user: context.user.or(Some("Practitioner/prac-1".into())),
                    ..context
                },
                grant_types,
            });
    }

    /// Begins a standalone launch.
    pub(crate) async fn begin(&self) -> Result<AuthorizationRequest, String> {
        self.client
            .begin_standalone_launch(
                &self.base,
                StandaloneLaunch {
                    registration: Some(REG.into()),
                    ..StandaloneLaunch::default()
                },
            )
            .await
            .map_err(|e| e.to_string())
    }

    /// Sends the authorization request headlessly; the redirect's parameters.
    pub(crate) async fn authorize(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<CallbackParams, String> {
        authorize_headless(&**self.client.http(), request, DEMO_REDIRECT_URI)
            .await
            .map_err(|e| e.to_string())
    }

    /// Completes a launch with `callback`.
    pub(crate) async fn complete(
        &self,
        callback: &CallbackParams,
    ) -> Result<CompletedLaunch, LaunchError> {
        self.client.complete_launch(callback).await
    }

    /// A whole standalone launch.
    pub(crate) async fn standalone(&self) -> Result<CompletedLaunch, String> {
        let request = self.begin().await?;
        let callback = self.authorize(&request).await?;
        self.complete(&callback).await.map_err(|e| e.to_string())
    }

    /// Requests to the authorization endpoint.
    pub(crate) fn authorize_requests(&self) -> Vec<Exchange> {
        let url = self.sandbox.authorize_url();
        self.rec
            .exchanges()
            .into_iter()
            .filter(|e| without_query(&e.url) == url)
            .collect()
    }

    /// Requests to the token endpoint.
    pub(crate) fn token_requests(&self) -> Vec<Exchange> {
        let url = self.sandbox.token_url();
        self.rec
            .exchanges()
            .into_iter()
            .filter(|e| without_query(&e.url) == url)
            .collect()
    }

    /// Token requests with `grant_type` = `grant`.
    pub(crate) fn grants(&self, grant: &str) -> Vec<Exchange> {
        self.token_requests()
            .into_iter()
            .filter(|e| {
                e.form()
                    .iter()
                    .any(|(k, v)| k == "grant_type" && v == grant)
            })
            .collect()
    }

    /// Requests under the FHIR base other than discovery and `metadata`.
    pub(crate) fn fhir_requests(&self) -> Vec<Exchange> {
        let prefix = format!("{}/", self.base);
        self.rec
            .exchanges()
            .into_iter()
            .filter(|e| {
                e.url.starts_with(&prefix)
                    && !e.url.contains("/.well-known/")
                    && !without_query(&e.url).ends_with("/metadata")
            })
            .collect()
    }
}

/// An edit of a successful token response's JSON object.
pub(crate) type TokenEdit = fn(&mut serde_json::Map<String, serde_json::Value>);

/// Sits under the recording, as part of the simulated server: rewrites successful JSON answers
/// of the token endpoint.
struct EditTokenResponses {
    inner: Arc<dyn HttpClient>,
    token_url: String,
    edit: TokenEdit,
}

impl std::fmt::Debug for EditTokenResponses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EditTokenResponses")
            .field("token_url", &self.token_url)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl HttpClient for EditTokenResponses {
    async fn execute(
        &self,
        request: smart_core::http::HttpRequest,
    ) -> Result<smart_core::http::HttpResponse, smart_core::http::HttpError> {
        let to_token = without_query(&request.uri().to_string()) == self.token_url;
        let response = self.inner.execute(request).await?;
        if !to_token || !response.status().is_success() {
            return Ok(response);
        }
        let (mut parts, body) = response.into_parts();
        let Ok(serde_json::Value::Object(mut map)) = serde_json::from_slice(&body) else {
            return Ok(http::Response::from_parts(parts, body));
        };
        (self.edit)(&mut map);
        let body = serde_json::to_vec(&map).unwrap_or_default();
        parts.headers.remove(http::header::CONTENT_LENGTH);
        Ok(http::Response::from_parts(parts, bytes::Bytes::from(body)))
    }
}

/// The URL up to its query.
pub(crate) fn without_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// The value of form field `name` in `e`'s body.
pub(crate) fn form_field(e: &Exchange, name: &str) -> Option<String> {
    e.form()
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}
