//! Runs full launches and refreshes with every `tracing` event at TRACE captured — from this
//! crate, the sandbox, and the HTTP stack — and checks that no token, code, verifier, secret or
//! launch handle appears in them. Also checks the `Debug` output of the values an app would most
//! likely log by accident.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use smart_core::{RefreshOptions, StandaloneLaunch};
use smart_sandbox::{DEMO_SECRET, LaunchContextRequest};
use support::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs_at_trace_level() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let store = Arc::new(RecordingStore::default());
    let client = client_with(
        vec![
            ("public", public_registration(&base)),
            ("confidential", confidential_registration(&base)),
        ],
        Arc::new(smart_adapter_generic::Generic),
        None,
        Some(store.clone()),
    );

    let mut secrets: Vec<String> = vec![
        DEMO_SECRET.to_owned(),
        base64::engine::general_purpose::STANDARD
            .encode(format!("demo-confidential:{DEMO_SECRET}")),
    ];
    let mut debug_dumps = Vec::new();

    // Standalone launch (public client), then a refresh.
    let request = client
        .begin_standalone_launch(
            &base,
            StandaloneLaunch {
                registration: Some("public".into()),
                ..StandaloneLaunch::default()
            },
        )
        .await
        .expect("begin");
    secrets.push(request.state.expose().to_owned());
    debug_dumps.push(format!("{request:?}"));
    let callback = callback_for(&client, &request).await;
    secrets.push(callback.get("code").expect("code").to_owned());
    debug_dumps.push(format!("{callback:?}"));
    let done = client.complete_launch(&callback).await.expect("complete");
    debug_dumps.push(format!("{done:?}"));
    let refreshed = client
        .refresh(&done.session_id, RefreshOptions::default())
        .await
        .expect("refresh");
    debug_dumps.push(format!("{refreshed:?}"));
    for tokens in [&done.session.tokens, &refreshed.value.tokens] {
        secrets.push(tokens.access_token.expose_secret().to_owned());
        secrets.extend(
            tokens
                .refresh_token
                .iter()
                .map(|t| t.expose_secret().to_owned()),
        );
    }

    // EHR launch (confidential client with client_secret_basic), then a refresh.
    let launch = sandbox
        .issue_launch(
            "demo-confidential",
            LaunchContextRequest {
                patient: Some("pat-4".into()),
                ..Default::default()
            },
        )
        .expect("launch");
    secrets.push(launch.clone());
    let request = client
        .begin_ehr_launch(&base, &launch)
        .await
        .expect("begin");
    secrets.push(request.state.expose().to_owned());
    let callback = callback_for(&client, &request).await;
    secrets.push(callback.get("code").expect("code").to_owned());
    let done = client.complete_launch(&callback).await.expect("complete");
    let refreshed = client
        .refresh(&done.session_id, RefreshOptions::default())
        .await
        .expect("refresh");
    for tokens in [&done.session.tokens, &refreshed.value.tokens] {
        secrets.push(tokens.access_token.expose_secret().to_owned());
        secrets.extend(
            tokens
                .refresh_token
                .iter()
                .map(|t| t.expose_secret().to_owned()),
        );
    }

    // A failed exchange: the code is replayed through a fresh state (errors are logged too).
    let request = client
        .begin_ehr_launch(&base, &launch)
        .await
        .expect("begin");
    let replayed = smart_core::CallbackParams::from_pairs([
        ("state", request.state.expose()),
        ("code", callback.get("code").expect("code")),
    ]);
    let err = client
        .complete_launch(&replayed)
        .await
        .expect_err("replayed code");
    debug_dumps.push(format!("{err:?} {err}"));

    // An asymmetric client (private_key_jwt, openid): launch, refresh, introspection; and a
    // backend client's token. The assertions, keys and id_token must stay out of the logs too.
    let http = CountingHttp::new();
    let keys = register_asymmetric(
        &sandbox,
        "asym",
        smart_core::smart_jose::Algorithm::ES384,
        &["authorization_code"],
        "launch/patient patient/*.rs openid fhirUser offline_access",
        smart_sandbox::LaunchDefaults::default(),
    );
    let backend_keys = register_asymmetric(
        &sandbox,
        "backend",
        smart_core::smart_jose::Algorithm::RS384,
        &["client_credentials"],
        "system/*.rs",
        smart_sandbox::LaunchDefaults::default(),
    );
    for k in [&keys, &backend_keys] {
        let pem = k.signing_key().to_pkcs8_pem();
        secrets.extend(
            pem.lines()
                .filter(|l| !l.starts_with("-----") && l.len() >= 16)
                .map(str::to_owned),
        );
    }
    let asym = client_with(
        vec![
            (
                "asym",
                smart_core::ClientRegistration::confidential_asymmetric(
                    &base,
                    "asym",
                    keys,
                    smart_sandbox::DEMO_REDIRECT_URI,
                )
                .with_scopes(smart_core::scope::Scopes::parse(
                    "launch/patient patient/*.rs openid fhirUser offline_access",
                )),
            ),
            (
                "backend",
                smart_core::ClientRegistration::backend(
                    "https://unused.example/fhir",
                    "backend",
                    backend_keys,
                    smart_core::scope::Scopes::parse("system/*.rs"),
                ),
            ),
        ],
        Arc::new(smart_adapter_generic::Generic),
        Some(http.clone()),
        None,
    );
    let done = standalone(&asym, &base).await;
    assert!(done.session.identity.is_some(), "the id_token was verified");
    secrets.extend(
        done.session
            .tokens
            .id_token
            .iter()
            .map(|t| t.expose_secret().to_owned()),
    );
    secrets.push(done.session.tokens.access_token.expose_secret().to_owned());
    let refreshed = asym
        .refresh(&done.session_id, RefreshOptions::default())
        .await
        .expect("refresh");
    secrets.push(
        refreshed
            .value
            .tokens
            .access_token
            .expose_secret()
            .to_owned(),
    );
    asym.introspect(
        &base,
        &refreshed.value.tokens.access_token,
        smart_core::IntrospectionAuth::Client,
    )
    .await
    .expect("introspect");
    let backend_client = client_with(
        vec![(
            "backend",
            smart_core::ClientRegistration::backend(
                &base,
                "backend",
                match &asym.registrations()["backend"].auth {
                    smart_core::ClientAuth::ConfidentialAsymmetric { keys } => keys.clone(),
                    _ => unreachable!(),
                },
                smart_core::scope::Scopes::parse("system/*.rs"),
            ),
        )],
        Arc::new(smart_adapter_generic::Generic),
        Some(http.clone()),
        None,
    );
    let backend = backend_client
        .backend_token_source(
            "backend",
            smart_core::scope::Scopes::parse("system/Patient.rs"),
        )
        .expect("source")
        .token()
        .await
        .expect("backend token");
    debug_dumps.push(format!("{backend:?} {done:?}"));
    secrets.push(backend.access_token.expose_secret().to_owned());
    let assertions = http.form_values("client_assertion");
    assert!(
        assertions.len() >= 4,
        "assertions were sent: {}",
        assertions.len()
    );
    secrets.extend(assertions);

    secrets.extend(store.verifiers.lock().expect("lock").iter().cloned());
    sandbox.shutdown().await;

    let logs = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8 logs");
    assert!(
        logs.contains("smart.begin_launch"),
        "the launch spans were captured:\n{logs}"
    );
    assert!(
        logs.contains("smart.refresh"),
        "the refresh spans were captured"
    );
    assert!(logs.lines().count() > 20, "TRACE logging was on");
    assert!(
        secrets.len() >= 25,
        "every secret was collected ({})",
        secrets.len()
    );
    for secret in &secrets {
        assert!(
            secret.len() >= 8,
            "secret values are long enough to be unambiguous"
        );
        assert!(
            !logs.contains(secret.as_str()),
            "a secret appears in the logs:\n{logs}"
        );
        for dump in &debug_dumps {
            assert!(
                !dump.contains(secret.as_str()),
                "a secret appears in Debug output: {dump}"
            );
        }
    }
}
