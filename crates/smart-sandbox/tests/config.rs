//! The client registration file format.

#![allow(missing_docs, clippy::unwrap_used)]

use std::path::Path;

use smart_sandbox::{ClientAuth, SandboxConfig, SandboxError};

const JWK: &str = r#"{"kty":"EC","crv":"P-384","kid":"k1","x":"AAAA","y":"BBBB"}"#;

fn error(toml: &str) -> String {
    match SandboxConfig::from_toml_str(toml) {
        Err(SandboxError::Config(m)) => {
            assert!(!m.contains('\n'), "multi-line error: {m}");
            m
        }
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn example_file_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients.example.toml");
    let config = SandboxConfig::from_toml_file(&path).unwrap();
    assert_eq!(config.port, 0);
    assert_eq!(config.clients.len(), 3);
    let public = &config.clients[0];
    assert_eq!(public.client_id, "my-patient-app");
    assert_eq!(public.auth, ClientAuth::Public);
    assert_eq!(public.context.patient.as_deref(), Some("pat-2"));
    assert!(public.context.approve);
    assert!(public.context.need_patient_banner);
    let confidential = &config.clients[1];
    assert_eq!(
        confidential.auth,
        ClientAuth::ClientSecretBasic {
            secret: "change-me".into()
        }
    );
    assert_eq!(confidential.redirect_uris.len(), 2);
    assert!(!confidential.context.need_patient_banner);
    // The secret never shows in Debug output.
    assert!(!format!("{confidential:?}").contains("change-me"));
    assert_eq!(confidential.grant_types, ["authorization_code"]);

    let backend = &config.clients[2];
    assert_eq!(backend.client_id, "my-backend-service");
    assert_eq!(
        backend.auth,
        ClientAuth::PrivateKeyJwt {
            jwks: None,
            jwks_url: Some("https://backend.example.org/.well-known/jwks.json".into()),
        }
    );
    assert_eq!(backend.grant_types, ["client_credentials"]);
    assert!(backend.redirect_uris.is_empty());
    assert_eq!(backend.scopes, "system/Patient.rs system/Observation.rs");
}

/// A fresh directory under the system temp dir.
fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "smart-sandbox-config-{name}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn jwks_file_is_relative_to_the_clients_file() {
    let dir = temp_dir("jwks-file");
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    std::fs::write(dir.join("keys/app.json"), format!(r#"{{"keys":[{JWK}]}}"#)).unwrap();
    let toml = dir.join("clients.toml");
    std::fs::write(
        &toml,
        r#"
[[clients]]
client_id = "asym"
type = "confidential-asymmetric"
jwks_file = "keys/app.json"
grant_types = ["authorization_code", "client_credentials"]
redirect_uris = ["http://127.0.0.1:3000/cb"]
scopes = "system/*.rs launch/patient patient/*.rs"
"#,
    )
    .unwrap();
    let config = SandboxConfig::from_toml_file(&toml).unwrap();
    let ClientAuth::PrivateKeyJwt { jwks, jwks_url } = &config.clients[0].auth else {
        panic!("not private_key_jwt: {:?}", config.clients[0].auth);
    };
    assert!(jwks_url.is_none());
    let jwks = jwks.as_ref().unwrap();
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!(jwks.keys[0].kid(), Some("k1"));
    assert_eq!(
        config.clients[0].grant_types,
        ["authorization_code", "client_credentials"]
    );

    // A private key in the file is refused.
    std::fs::write(
        dir.join("keys/app.json"),
        r#"{"keys":[{"kty":"EC","crv":"P-384","kid":"k1","x":"AAAA","y":"BBBB","d":"CCCC"}]}"#,
    )
    .unwrap();
    let err = SandboxConfig::from_toml_file(&toml)
        .unwrap_err()
        .to_string();
    assert!(err.contains("private member \"d\""), "{err}");
    assert!(!err.contains("CCCC"), "{err}");

    // Not a JWKS.
    std::fs::write(dir.join("keys/app.json"), "[1, 2]").unwrap();
    let err = SandboxConfig::from_toml_file(&toml)
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not a JWKS"), "{err}");
    assert!(!err.contains('\n'), "{err}");

    std::fs::remove_file(dir.join("keys/app.json")).unwrap();
    let err = SandboxConfig::from_toml_file(&toml)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot read jwks_file"), "{err}");
    assert!(!err.contains('\n'), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn asymmetric_and_grant_type_errors() {
    let client = |body: &str| format!("[[clients]]\nclient_id = \"a\"\n{body}\n");

    let m = error(&client(
        "type = \"confidential-asymmetric\"\ngrant_types = [\"client_credentials\"]",
    ));
    assert!(
        m.starts_with("clients[0] (a): type \"confidential-asymmetric\" needs its public keys"),
        "{m}"
    );

    let m = error(&client(
        "type = \"confidential-asymmetric\"\njwks_url = \"http://keys.example.org/jwks.json\"\ngrant_types = [\"client_credentials\"]",
    ));
    assert!(m.contains("must be https (or http on 127.0.0.1"), "{m}");

    // http on loopback is fine.
    for url in [
        "http://127.0.0.1:9999/jwks.json",
        "http://localhost/jwks",
        "https://keys.example.org/jwks.json",
    ] {
        SandboxConfig::from_toml_str(&client(&format!(
            "type = \"confidential-asymmetric\"\njwks_url = \"{url}\"\ngrant_types = [\"client_credentials\"]"
        )))
        .unwrap();
    }

    let m = error(&client(
        "type = \"confidential-asymmetric\"\njwks_url = \"https://k.example/j\"\nsecret = \"s\"\ngrant_types = [\"client_credentials\"]",
    ));
    assert!(m.contains("cannot have a `secret`"), "{m}");

    let m = error(&client(
        "type = \"public\"\njwks_url = \"https://k.example/j\"\nredirect_uris = [\"http://x/cb\"]",
    ));
    assert!(
        m.contains("`jwks_url` is only for type = \"confidential-asymmetric\""),
        "{m}"
    );

    // A symmetric client may hold client_credentials (a system account with a
    // Basic secret); whether the token endpoint accepts it is the profile's
    // `client_credentials_basic`.
    let config = SandboxConfig::from_toml_str(&client(
        "type = \"confidential-symmetric\"\nsecret = \"s\"\ngrant_types = [\"client_credentials\"]",
    ))
    .unwrap();
    assert_eq!(config.clients[0].grant_types, ["client_credentials"]);
    let m = error(&client(
        "type = \"public\"\ngrant_types = [\"client_credentials\"]",
    ));
    assert!(
        m.contains("\"client_credentials\" (Backend Services) needs a confidential client"),
        "{m}"
    );

    let m = error(&client(
        "type = \"public\"\nredirect_uris = [\"http://x/cb\"]\ngrant_types = [\"password\"]",
    ));
    assert!(m.contains("unknown grant type \"password\""), "{m}");

    let m = error(&client(
        "type = \"public\"\nredirect_uris = [\"http://x/cb\"]\ngrant_types = []",
    ));
    assert!(m.contains("grant_types is empty"), "{m}");

    // authorization_code (the default) still needs redirect URIs.
    let m = error(&client(
        "type = \"confidential-asymmetric\"\njwks_url = \"https://k.example/j\"",
    ));
    assert!(m.contains("missing `redirect_uris`"), "{m}");
}

#[test]
fn demo_clients_can_be_included() {
    let config = SandboxConfig::from_toml_str("include_demo_clients = true").unwrap();
    let ids: Vec<_> = config
        .clients
        .iter()
        .map(|c| c.client_id.as_str())
        .collect();
    assert_eq!(ids, ["demo-public", "demo-confidential"]);
    let default = SandboxConfig::default();
    assert_eq!(default.clients, config.clients);
}

#[test]
fn errors_are_one_line_and_say_how_to_fix() {
    let m = error(
        r#"
[[clients]]
client_id = "a"
type = "public"
redirect_uris = ["http://127.0.0.1/cb"]

[[clients]]
client_id = "my-app"
type = "confidential-symmetric"
redirect_uris = ["http://127.0.0.1/cb"]
"#,
    );
    assert_eq!(
        m,
        "clients[1] (my-app): type \"confidential-symmetric\" needs a `secret`; add secret = \"...\""
    );

    let m = error(
        "[[clients]]\nclient_id = \"a\"\ntype = \"public\"\nredirect_uris = [\"http://x/cb\"]\nsecrett = \"x\"\n",
    );
    assert!(m.starts_with("line 5: unknown field `secrett`"), "{m}");

    let m = error(
        "[[clients]]\nclient_id = \"a\"\ntype = \"pubic\"\nredirect_uris = [\"http://x/cb\"]\n",
    );
    assert!(m.contains("unknown type \"pubic\""), "{m}");

    let m = error("[[clients]]\nclient_id = \"a\"\ntype = \"public\"\nredirect_uris = [\"/cb\"]\n");
    assert!(
        m.starts_with("clients[0] (a): redirect_uri \"/cb\" is not an absolute URL"),
        "{m}"
    );

    let m = error(
        "[[clients]]\nclient_id = \"a\"\ntype = \"public\"\nredirect_uris = [\"http://x/cb\"]\n[clients.context]\npatient = \"p9\"\n",
    );
    assert!(
        m.contains("context.patient \"p9\" is not a sandbox patient"),
        "{m}"
    );

    let m = error("[[clients]]\ntype = \"public\"\n");
    assert!(m.starts_with("clients[0]: missing `client_id`"), "{m}");

    let m = error("[[clients]]\nclient_id = \"a\"\ntype = \"public\"\n");
    assert!(m.contains("missing `redirect_uris`"), "{m}");

    let m = error(
        "[[clients]]\nclient_id = \"a\"\ntype = \"public\"\nredirect_uris = [\"http://x/cb\"]\n\
         [[clients]]\nclient_id = \"a\"\ntype = \"public\"\nredirect_uris = [\"http://x/cb\"]\n",
    );
    assert!(m.contains("duplicate client_id"), "{m}");

    let m = error("");
    assert!(m.starts_with("no clients"), "{m}");

    let m = error("[[clients]\n");
    assert!(m.starts_with("line 1:"), "{m}");
}

#[test]
fn file_errors_name_the_file() {
    let err = SandboxConfig::from_toml_file(Path::new("/nonexistent/clients.toml")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/clients.toml: cannot read"),
        "{err}"
    );
}

#[test]
fn data_set_keys_and_validation() {
    let text =
        "seed = 42\npatient_count = 50\ndata_as_of = \"2025-01-31\"\ninclude_demo_clients = true\n";
    let config = SandboxConfig::from_toml_str(text).unwrap();
    assert_eq!(config.seed, 42);
    assert_eq!(config.patient_count, 50);
    assert_eq!(config.data_as_of.as_deref(), Some("2025-01-31"));
    let defaults = SandboxConfig::default();
    assert_eq!(defaults.seed, smart_sandbox::DEFAULT_SEED);
    assert_eq!(defaults.patient_count, smart_sandbox::DEFAULT_PATIENT_COUNT);
    assert_eq!(defaults.data_as_of, None);

    let err = SandboxConfig::from_toml_str("patient_count = 3\ninclude_demo_clients = true\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("patient_count 3 is out of range"), "{err}");
    let err =
        SandboxConfig::from_toml_str("data_as_of = \"31.01.2025\"\ninclude_demo_clients = true\n")
            .unwrap_err()
            .to_string();
    assert!(err.contains("YYYY-MM-DD"), "{err}");
    // A generated patient may be a client's default patient.
    let text = "[[clients]]\nclient_id = \"a\"\ntype = \"public\"\nredirect_uris = [\"http://x/cb\"]\n[clients.context]\npatient = \"pat-250\"\n";
    assert!(SandboxConfig::from_toml_str(text).is_ok());
    let err = SandboxConfig::from_toml_str(&format!("patient_count = 200\n{text}"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("pat-1 … pat-200"), "{err}");
}
