//! The configuration examples of the client-type guides (`docs/guides/*.md`) load.
//!
//! Every ```` ```toml ```` block there that holds a `[clients.…]` registration is loaded with
//! `SmartConfig::from_figment`, as an app loads its `smart.toml`, and must validate. What a
//! reader supplies outside the file is supplied here the way the guide says: the private key file
//! a `private_key_file` names (a fresh key written to a temporary file), and a secret left empty
//! in the file (set through the `SMART_CLIENTS__<NAME>__CLIENT_SECRET` variable the guide names,
//! merged here as the same key).

use figment::Figment;
use figment::providers::{Format, Toml};
use smart_core::smart_jose::{Algorithm, PrivateKey};
use smart_core::{ClientAuth, SmartConfig};

const GUIDES: &[(&str, &str)] = &[
    (
        "public-client.md",
        include_str!("../../../docs/guides/public-client.md"),
    ),
    (
        "symmetric-client.md",
        include_str!("../../../docs/guides/symmetric-client.md"),
    ),
    (
        "asymmetric-client.md",
        include_str!("../../../docs/guides/asymmetric-client.md"),
    ),
    (
        "backend-services.md",
        include_str!("../../../docs/guides/backend-services.md"),
    ),
];

fn toml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim() == "```toml" => current = Some(String::new()),
            None => {}
            Some(_) if line.trim() == "```" => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    blocks
}

/// The value of `key = "…"` in a TOML block, if the block sets it.
fn string_value(block: &str, key: &str) -> Option<String> {
    block.lines().find_map(|line| {
        let rest = line
            .trim()
            .strip_prefix(key)?
            .trim_start()
            .strip_prefix('=')?;
        let rest = rest.trim_start().strip_prefix('"')?;
        Some(rest[..rest.find('"')?].to_owned())
    })
}

#[test]
fn guide_registrations_load() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let key_file = scratch.path().join("private-key.pem");
    let key = PrivateKey::generate(Algorithm::ES384).expect("key");
    std::fs::write(&key_file, key.to_pkcs8_pem().as_bytes()).expect("write key");

    let mut loaded = 0;
    for (guide, text) in GUIDES {
        for block in toml_blocks(text)
            .into_iter()
            .filter(|b| b.trim_start().starts_with("[clients."))
        {
            let name = block.trim_start()["[clients.".len()..]
                .split(']')
                .next()
                .expect("a table name")
                .to_owned();
            let mut toml = block.clone();
            if let Some(path) = string_value(&block, "private_key_file") {
                toml = toml.replace(&path, &key_file.display().to_string());
            }
            let mut figment = Figment::from(Toml::string(&toml));
            if string_value(&block, "client_secret").as_deref() == Some("") {
                figment = figment.merge((format!("clients.{name}.client_secret"), "from-the-env"));
            }
            let config = SmartConfig::from_figment(figment)
                .unwrap_or_else(|e| panic!("{guide}: the [clients.{name}] example: {e}\n{block}"));
            let registration = &config.clients[&name];
            let client_type = string_value(&block, "client_type").expect("client_type");
            let auth_matches = matches!(
                (client_type.as_str(), &registration.auth),
                ("public", ClientAuth::Public)
                    | (
                        "confidential-symmetric",
                        ClientAuth::ConfidentialSymmetric { .. }
                    )
                    | (
                        "confidential-asymmetric",
                        ClientAuth::ConfidentialAsymmetric { .. }
                    )
            );
            assert!(
                auth_matches,
                "{guide}: [clients.{name}] is a {client_type} client"
            );
            loaded += 1;
        }
    }
    assert_eq!(loaded, 4, "one registration example per client-type guide");
}
