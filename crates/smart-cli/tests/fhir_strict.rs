//! `smart fhir get --strict` over real HTTP: a small SMART backend server on 127.0.0.1 serves a
//! Patient with vendor deviations. Without `--strict` the CLI prints it as sent; with it, the
//! command fails in one line naming the JSON pointer and the expected FHIR type. A clean Patient
//! passes `--strict`.

mod support;

use axum::Json;
use axum::extract::Path;
use axum::routing::{get, post};
use serde_json::{Value, json};
use support::{runtime, serve, smart, stderr_of, stdout_ok};

fn vendor_patient() -> Value {
    json!({
        "id": "vendor",
        "name": [{"family": "SMART", "isUserSelected": true}],
        "active": "true",
        "resourceType": "Patient"
    })
}

fn clean_patient() -> Value {
    // Keys in an order fhirbolt could not read before: resourceType last.
    json!({"id": "clean", "name": [{"family": "SMART", "given": ["NANCY"]}], "active": true, "resourceType": "Patient"})
}

#[test]
fn get_strict_refuses_vendor_deviations_with_the_pointer() {
    let rt = runtime();
    let addr = serve(&rt, |addr| {
        let base = format!("http://{addr}");
        let config = json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES384"],
            "scopes_supported": ["system/Patient.rs"],
            "capabilities": ["client-confidential-asymmetric", "permission-v2"],
            "code_challenge_methods_supported": ["S256"]
        });
        axum::Router::new()
            .route(
                "/fhir/.well-known/smart-configuration",
                get(move || std::future::ready(Json(config.clone()))),
            )
            .route(
                "/token",
                post(|| async {
                    Json(json!({
                        "access_token": "test-token", "token_type": "Bearer",
                        "expires_in": 300, "scope": "system/Patient.rs"
                    }))
                }),
            )
            .route(
                "/fhir/Patient/{id}",
                get(|Path(id): Path<String>| async move {
                    Json(if id == "vendor" {
                        vendor_patient()
                    } else {
                        clean_patient()
                    })
                }),
            )
    });
    let dir = tempfile::tempdir().expect("tmp");
    let keys = dir.path().join("keys");
    stdout_ok(&smart(&[
        "keys",
        "generate",
        "--alg",
        "ES384",
        "--out",
        keys.to_str().expect("p"),
    ]));
    let key = keys.join("private-key.pem");
    let iss = format!("http://{addr}/fhir");
    let get = |reference: &str, strict: bool| {
        let mut args = vec![
            "fhir",
            "--iss",
            &iss,
            "--client-id",
            "cli-test",
            "--key",
            key.to_str().expect("p"),
            "--scope",
            "system/Patient.rs",
            "get",
            reference,
        ];
        if strict {
            args.push("--strict");
        }
        smart(&args)
    };

    // Lenient (the default): printed as the server sent it.
    let printed: Value =
        serde_json::from_str(&stdout_ok(&get("Patient/vendor", false))).expect("json");
    assert_eq!(printed, vendor_patient());

    // Strict: one line, the pointer and the expected type.
    let out = get("Patient/vendor", true);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("/name/0/isUserSelected") || err.contains("/active"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing printed on a strict failure");

    // A clean resource passes strict, whatever its key order.
    let printed: Value =
        serde_json::from_str(&stdout_ok(&get("Patient/clean", true))).expect("json");
    assert_eq!(printed["id"], "clean");
}
