//! Writes `$OUT_DIR/docs.rs`: one `cfg(doctest)` item per Markdown file in `docs/` (recursively)
//! and `README.md`, whose doc comment is that file. A new guide is picked up without an edit here.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest.join("../..");
    let docs = root.join("docs");
    println!("cargo:rerun-if-changed={}", docs.display());
    println!(
        "cargo:rerun-if-changed={}",
        root.join("README.md").display()
    );

    let mut files = vec![root.join("README.md")];
    collect_markdown(&docs, &mut files);
    files.sort();

    let mut out = String::new();
    for file in &files {
        let shown = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        // `docs/guides/public-client.md` → `DocsGuidesPublicClientMd`: test names say the file.
        let name: String = shown
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|part| !part.is_empty())
            .map(|part| {
                let mut chars = part.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect();
        let absolute = file.canonicalize().unwrap_or_else(|_| file.clone());
        writeln!(
            out,
            "/// The examples of `{shown}`.\n#[doc = include_str!({:?})]\npub struct {name};",
            absolute.display().to_string()
        )
        .expect("writing to a String");
    }
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    std::fs::write(out_dir.join("docs.rs"), out).expect("OUT_DIR is writable");
}

fn collect_markdown(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_markdown(&path, files);
        } else if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
}
