//! The documentation's Rust examples, compiled by `cargo test -p smart-docs-tests --doc`.
//!
//! `build.rs` turns every Markdown file under `docs/` (and `README.md`) into the doc comment of an
//! item that exists only under `cfg(doctest)`, so rustdoc compiles, and unless a block says
//! `no_run` runs, every ```` ```rust ```` block in them; a new guide is covered without an edit.
//! Blocks in other languages (`sh`, `toml`, `text`) are left alone, and a block without a
//! language counts as Rust, so diagrams and sample output say `text`. A block that needs a server
//! it cannot start says `no_run`; none says `ignore`. The crate has no code of its own.

#[cfg(doctest)]
include!(concat!(env!("OUT_DIR"), "/docs.rs"));
