//! # smart-adapter-template: the starting point for a new vendor adapter
//!
//! Copy this crate to `adapters/<vendor>/`, rename it, and replace the worked example with your
//! vendor's quirks. It compiles, passes clippy with the workspace lints, and shows the three
//! things every handled quirk needs (see `docs/adding-an-adapter.md`):
//!
//! 1. an entry in the catalogue returned by [`quirks()`] (and by
//!    [`VendorQuirks::catalogue`]): a [`Quirk`] with the row of the quirk table in
//!    `docs/adding-an-adapter.md` it belongs to, its source and its [`Confidence`];
//! 2. a `///` doc on the code that handles it, naming the quirk id, the source and the
//!    confidence;
//! 3. its own unit test, named after the id, that fails if the handling is removed.
//!
//! `smart_core::quirks::check_catalogue` checks the three against each other in the crate's
//! tests (`catalogue_matches_the_code`).
//!
//! Override only the hooks where your vendor departs from SMART App Launch 2.2: every other hook
//! of [`VendorQuirks`] already does what the specification says. The worked example is a
//! fictional vendor, "Acme", whose discovery endpoints need an `Acme-Client-ID` header.

use http::{HeaderMap, HeaderName, HeaderValue};
use smart_core::descriptor::{AdapterDescriptor, AdapterOption, Recognition, SandboxProfile};
use smart_core::quirks::{VendorQuirks, spec};
use url::Url;

/// The registry name of this adapter, as used in registrations (`adapter = "template"`).
pub const NAME: &str = "template";

/// The catalogue types are shared by every adapter; re-exported so that users of the adapter
/// can name them without depending on `smart-core` directly.
pub use smart_core::quirks::{Confidence, Quirk};

static QUIRKS: &[Quirk] = &[Quirk {
    id: "template-discovery-client-id",
    row: 2,
    summary: "Discovery needs an `Acme-Client-ID` header (fictional example)",
    source: "https://docs.acme.example/smart#discovery",
    confidence: Confidence::Documented,
    handled_by: smart_core::quirks::HandledBy::Hook(smart_core::quirks::Hook::DiscoveryHeaders),
}];

/// The quirks this adapter handles, in row order of the quirk table.
pub fn quirks() -> &'static [Quirk] {
    QUIRKS
}

fn default_adapter() -> std::sync::Arc<dyn VendorQuirks> {
    std::sync::Arc::new(Template::new())
}

/// This adapter, described for the registry (`smart-adapters`), the adapter × profile matrix,
/// the CLI and CI. Rename and fill in: the options your adapter reads from
/// `[clients.x.adapter_options]`, how it recognises its servers, the sandbox profile that
/// emulates them (here a TOML file in this folder, so the sandbox needs no edit), and the steps
/// where the generic adapter breaks on that profile with the quirk that explains each.
pub static DESCRIPTOR: AdapterDescriptor =
    AdapterDescriptor::new(NAME, "Acme EHR (fictional)", default_adapter)
        .with_options(&[AdapterOption::new(
            "client_id",
            "Sent as the `Acme-Client-ID` header on discovery",
            "my-app",
        )])
        .with_recognition(Recognition::Fallback)
        .with_sandbox_profile(SandboxProfile::Toml(include_str!(
            "../sandbox-profile.toml"
        )));

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

    fn catalogue(&self) -> &'static [Quirk] {
        QUIRKS
    }

    /// Quirk `template-discovery-client-id` (row 2; <https://docs.acme.example/smart#discovery>,
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

    #[test]
    fn descriptor_matches_the_adapter_and_its_catalogue() {
        assert_eq!(
            smart_testkit::check_descriptor(
                &super::DESCRIPTOR,
                super::quirks().iter().map(|q| q.id)
            ),
            Ok(())
        );
    }

    /// Ids are unique, prefixed and in row order; each is named in a `Quirk `id`` doc and has a
    /// test named after it. Add every new source file of the crate to the list.
    #[test]
    fn catalogue_matches_the_code() {
        assert_eq!(
            smart_core::quirks::check_catalogue(
                "template-",
                super::quirks(),
                &[include_str!("lib.rs")]
            ),
            Ok(())
        );
    }
}
