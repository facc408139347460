//! The client registration file format.

#![allow(missing_docs, clippy::unwrap_used)]

use std::path::Path;

use smart_sandbox::{ClientAuth, SandboxConfig, SandboxError};

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
    assert_eq!(config.clients.len(), 2);
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
