//! Turns the registry lines of `Cargo.toml` into Rust, so the adapters are listed in one place.
//!
//! A registry line is a dependency whose `package` starts with `smart-adapter-`; its key is the
//! adapter's registry name. Non-optional adapters (the generic one) come first, then the others
//! in manifest order, each behind the cargo feature an optional dependency defines.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=Cargo.toml");
    let manifest = std::fs::read_to_string("Cargo.toml").expect("read Cargo.toml");
    let entries = registry_entries(&manifest);
    assert!(
        entries.iter().any(|e| !e.optional),
        "the registry needs one adapter that is always compiled in (the generic adapter)"
    );
    let mut ordered: Vec<&Entry> = entries.iter().filter(|e| !e.optional).collect();
    ordered.extend(entries.iter().filter(|e| e.optional));

    let mut code = String::from(
        "/// Every adapter compiled into this build, the always-present ones (generic) first.\n\
         pub static DESCRIPTORS: &[&smart_core::descriptor::AdapterDescriptor] = &[\n",
    );
    for e in &ordered {
        if e.optional {
            let _ = writeln!(code, "    #[cfg(feature = {:?})]", e.key);
        }
        let _ = writeln!(code, "    &::{}::DESCRIPTOR,", e.key.replace('-', "_"));
    }
    code.push_str("];\n\n");
    code.push_str(
        "/// Every adapter the registry lists, compiled in or not: the features of this crate \
         (plus the adapters that are always present).\n\
         pub const REGISTERED: &[&str] = &[",
    );
    for e in &ordered {
        let _ = write!(code, "{:?}, ", e.key);
    }
    code.push_str("];\n\n");
    for e in &ordered {
        if e.optional {
            let _ = writeln!(code, "#[cfg(feature = {:?})]", e.key);
        }
        let _ = writeln!(
            code,
            "#[doc(inline)]\npub use ::{} as {};",
            e.key.replace('-', "_"),
            e.key.replace('-', "_")
        );
    }
    code.push_str("/// The registry features cargo enabled, as the build script saw them.\n#[cfg(test)]\nconst BUILD_FEATURES: &[&str] = &[");
    for e in ordered.iter().filter(|e| e.optional) {
        let var = format!("CARGO_FEATURE_{}", e.key.to_uppercase().replace('-', "_"));
        if std::env::var_os(var).is_some() {
            let _ = write!(code, "{:?}, ", e.key);
        }
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("registry.rs");
    std::fs::write(out, code).expect("write registry.rs");
}

struct Entry {
    key: String,
    optional: bool,
}

/// The `smart-adapter-*` dependencies of the `[dependencies]` table, one per line.
fn registry_entries(manifest: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut in_dependencies = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
            continue;
        }
        if !in_dependencies || line.starts_with('#') || !line.contains("\"smart-adapter-") {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("registry line without `=`: {line}"));
        let key = key.trim();
        assert!(
            value.contains("package = \"smart-adapter-"),
            "registry line {line:?}: write `name = {{ package = \"smart-adapter-name\", path = ... }}`"
        );
        assert!(
            !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "registry key {key:?} must be the adapter's lower-case registry name"
        );
        entries.push(Entry {
            key: key.to_owned(),
            optional: value.replace(' ', "").contains("optional=true"),
        });
    }
    entries
}
