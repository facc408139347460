//! # smart-adapter-template: the starting point for a new vendor adapter
//!
//! Copy this crate to `adapters/<vendor>/`, rename it, and replace the worked example with your
//! vendor's quirks. It compiles, passes clippy with the workspace lints, and shows the three
//! things every handled quirk needs (see `docs/adding-an-adapter.md`):
//!
//! 1. an entry in the catalogue returned by [`quirks()`], with the row of the quirk × vendor
//!    table (`vendor-quirks.md` §5) it comes from, its source and its [`Confidence`];
//! 2. a `///` doc on the code that handles it, naming the quirk id, the source and the
//!    confidence;
//! 3. its own unit test, named after the id, that fails if the handling is removed.
//!
//! Override only the hooks where your vendor departs from SMART App Launch 2.2: every other hook
//! of [`VendorQuirks`] already does what the specification says. The worked example is a
//! fictional vendor, "Acme", whose discovery endpoints need an `Acme-Client-ID` header.

use http::{HeaderMap, HeaderName, HeaderValue};
use smart_core::quirks::{VendorQuirks, spec};
use url::Url;

/// The registry name of this adapter, as used in registrations (`adapter = "template"`).
pub const NAME: &str = "template";

/// How sure the catalogue is of a quirk (the `[D]`/`[C]`/`[I]` tags of `vendor-quirks.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Confidence {
    /// Documented by the vendor, including the worked examples in its documentation.
    Documented,
    /// Seen in code or in a third-party capture of live endpoints; not promised by the vendor.
    Captured,
    /// Inferred from the above; a hypothesis to check against a real tenant.
    Inferred,
}

/// One vendor quirk the adapter handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quirk {
    /// Stable identifier, `<adapter name>-…`; also the name of its unit test.
    pub id: &'static str,
    /// The row of `vendor-quirks.md` §5 (quirk × vendor × adapter action) it comes from.
    pub row: u8,
    /// What the vendor does and what the adapter does about it, in one sentence.
    pub summary: &'static str,
    /// Where it was learnt: a documentation URL or a named capture.
    pub source: &'static str,
    /// How sure we are.
    pub confidence: Confidence,
    /// The `VendorQuirks` hook (or other item) that handles it.
    pub handled_by: &'static str,
}

static QUIRKS: &[Quirk] = &[Quirk {
    id: "template-discovery-client-id",
    row: 2,
    summary: "Discovery needs an `Acme-Client-ID` header (fictional example)",
    source: "https://docs.acme.example/smart#discovery",
    confidence: Confidence::Documented,
    handled_by: "VendorQuirks::discovery_headers",
}];

/// The quirks this adapter handles, in row order of the quirk × vendor table.
pub fn quirks() -> &'static [Quirk] {
    QUIRKS
}

/// The template adapter. Rename it after your vendor and give it a builder method per option.
#[derive(Debug, Clone, Default)]
pub struct Template {
    client_id: Option<HeaderValue>,
}

impl Template {
    /// The adapter with its defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `Acme-Client-ID: <client_id>` on discovery requests. An ID that cannot be a
    /// header value is ignored with a warning.
    pub fn with_client_id(mut self, client_id: &str) -> Self {
        self.client_id = HeaderValue::from_str(client_id).ok();
        if self.client_id.is_none() {
            tracing::warn!(
                "the client ID cannot be sent as a header; discovery will go without it"
            );
        }
        self
    }
}

impl VendorQuirks for Template {
    fn name(&self) -> &str {
        NAME
    }

    /// Quirk `template-discovery-client-id` (§5 row 2; <https://docs.acme.example/smart#discovery>,
    /// Documented): Acme returns the endpoints registered for a client only when the request
    /// names it. Keep the spec's `Accept: application/json` and add the header.
    fn discovery_headers(&self, _base: &Url, headers: &mut HeaderMap) {
        spec::discovery_headers(headers);
        if let Some(id) = &self.client_id {
            headers.insert(HeaderName::from_static("acme-client-id"), id.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;
    use smart_core::quirks::VendorQuirks;

    use super::Template;

    #[test]
    fn template_discovery_client_id() {
        let base = url::Url::parse("https://ehr.acme.example/fhir/r4").expect("url");
        let mut h = HeaderMap::new();
        Template::new()
            .with_client_id("my-app")
            .discovery_headers(&base, &mut h);
        assert_eq!(h["accept"], "application/json", "the spec header is kept");
        assert_eq!(h["acme-client-id"], "my-app");
        assert!(
            super::quirks()
                .iter()
                .any(|q| q.id == "template-discovery-client-id"),
            "the quirk is catalogued"
        );
    }
}
