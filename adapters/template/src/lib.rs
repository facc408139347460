//! # smart-adapter-template: the starting point for a new vendor adapter
//!
//! Copy this crate to `adapters/<vendor>/`, rename it, and replace the worked example with your
//! vendor's quirks. It compiles, passes clippy with the workspace lints, and shows the three
//! things every handled quirk needs (see `docs/adding-an-adapter.md`):
//!
//! 1. a row in the catalogue of the adapter's [`DESCRIPTOR`] (also returned by [`quirks()`]): a
//!    [`Quirk`] with the row of the quirk table in `docs/adding-an-adapter.md` it belongs to, its
//!    source, its [`Confidence`] and the typed hook or policy value that handles it;
//! 2. a `///` doc on the code that handles it, naming the quirk id, the source and the
//!    confidence;
//! 3. its own unit test, named after the id, that fails if the handling is removed.
//!
//! `smart_core::quirks::check_catalogue` checks the three against each other in the crate's
//! tests (`catalogue_matches_the_code`), and `smart_testkit::check_descriptor` checks the
//! descriptor against the adapter (names, documented options accepted, generic breaks
//! catalogued).
//!
//! Override only the hooks where your vendor departs from SMART App Launch 2.2: every other hook
//! of [`VendorQuirks`] already does what the specification says. The worked example is a
//! fictional vendor, "Acme", whose discovery endpoints need an `Acme-Client-ID` header carrying
//! the registration's client ID (read from the hook's [`HookContext`]), with an option to send
//! another ID.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use smart_core::config::AdapterOptions;
use smart_core::descriptor::{
    AdapterDescriptor, AdapterOption, Recognition, SandboxProfile, default_adapter,
};
use smart_core::quirks::{HandledBy, Hook, HookContext, VendorQuirks, parse_options, spec};

/// The registry name of this adapter, as used in registrations (`adapter = "template"`).
pub const NAME: &str = "template";

/// The catalogue types are shared by every adapter; re-exported so that users of the adapter
/// can name them without depending on `smart-core` directly.
pub use smart_core::quirks::{Confidence, Quirk};

static QUIRKS: &[Quirk] = &[Quirk {
    id: "template-discovery-client-id",
    row: 2,
    summary: "Discovery needs an `Acme-Client-ID` header naming the client (fictional example)",
    source: "docs/adding-an-adapter.md (a fictional vendor)",
    confidence: Confidence::Documented,
    handled_by: HandledBy::Hook(Hook::DiscoveryHeaders),
}];

/// The quirks this adapter handles, in row order of the quirk table.
pub fn quirks() -> &'static [Quirk] {
    DESCRIPTOR.catalogue
}

/// This adapter, described for the registry (`smart-adapters`), the adapter × profile matrix,
/// the CLI and CI. Rename and fill in: the options your adapter reads from
/// `[clients.x.adapter_options]`, how it recognises its servers, the sandbox profile that
/// emulates them (here a TOML file in this folder, so the sandbox needs no edit), the steps
/// where the generic adapter breaks on that profile with the quirk that explains each, and the
/// catalogue.
pub static DESCRIPTOR: AdapterDescriptor = AdapterDescriptor::new(
    NAME,
    "Acme EHR (fictional)",
    default_adapter::<Template>,
)
.with_options(&[AdapterOption::new(
    "client_id_header",
    "Sent as the `Acme-Client-ID` header on discovery instead of the registration's client ID",
    "my-other-app-id",
)])
.with_recognition(Recognition::Fallback)
.with_sandbox_profile(SandboxProfile::Toml(include_str!(
    "../sandbox-profile.toml"
)))
.with_catalogue(QUIRKS);

/// The typed form of the adapter's `adapter_options`: unknown keys are refused, so a misspelt
/// option fails when the client is built.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateOptions {
    #[serde(default)]
    client_id_header: Option<String>,
}

/// The template adapter. Rename it after your vendor and give it a builder method per option.
#[derive(Debug, Clone, Default)]
pub struct Template {
    client_id_override: Option<HeaderValue>,
}

impl Template {
    /// The adapter with its defaults: the registration's client ID is sent.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `Acme-Client-ID: <client_id>` on discovery requests instead of the registration's
    /// client ID. An ID that cannot be a header value is ignored with a warning.
    pub fn with_client_id(mut self, client_id: &str) -> Self {
        self.client_id_override = HeaderValue::from_str(client_id).ok();
        if self.client_id_override.is_none() {
            tracing::warn!(
                "the client ID cannot be sent as a header; discovery will use the registration's"
            );
        }
        self
    }

    /// The ID sent in `Acme-Client-ID` for a call in `ctx`.
    fn client_id_header(&self, ctx: &HookContext<'_>) -> Option<HeaderValue> {
        self.client_id_override.clone().or_else(|| {
            ctx.client_id()
                .and_then(|id| HeaderValue::from_str(id).ok())
        })
    }
}

impl VendorQuirks for Template {
    fn name(&self) -> &str {
        NAME
    }

    fn with_options(
        &self,
        options: &AdapterOptions,
    ) -> Result<Option<Arc<dyn VendorQuirks>>, String> {
        let options: TemplateOptions = parse_options(options)?;
        Ok(options
            .client_id_header
            .map(|id| Arc::new(self.clone().with_client_id(&id)) as Arc<dyn VendorQuirks>))
    }

    /// Discovery results differ per client ID sent, so they are cached per client ID.
    fn discovery_variant(&self, ctx: &HookContext<'_>) -> Option<String> {
        self.client_id_header(ctx)
            .and_then(|v| v.to_str().ok().map(str::to_owned))
    }

    /// Quirk `template-discovery-client-id` (row 2; `docs/adding-an-adapter.md`, Documented):
    /// Acme returns the endpoints registered for a client only when the request names it. Keep
    /// the spec's `Accept: application/json` and add the header.
    fn discovery_headers(&self, ctx: &HookContext<'_>, headers: &mut HeaderMap) {
        spec::discovery_headers(headers);
        if let Some(id) = self.client_id_header(ctx) {
            headers.insert(HeaderName::from_static("acme-client-id"), id);
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;
    use smart_core::quirks::{HookContext, VendorQuirks};

    use super::Template;

    const BASE: &str = "https://ehr.acme.example/fhir/r4";

    #[test]
    fn template_discovery_client_id() {
        let ctx = HookContext::new(BASE).with_client_id("registered-app");
        let mut h = HeaderMap::new();
        Template::new().discovery_headers(&ctx, &mut h);
        assert_eq!(h["accept"], "application/json", "the spec header is kept");
        assert_eq!(
            h["acme-client-id"], "registered-app",
            "the registration's id"
        );

        let mut h = HeaderMap::new();
        Template::new()
            .with_client_id("my-app")
            .discovery_headers(&ctx, &mut h);
        assert_eq!(h["acme-client-id"], "my-app", "the option wins");

        let mut h = HeaderMap::new();
        Template::new().discovery_headers(&HookContext::new(BASE), &mut h);
        assert!(!h.contains_key("acme-client-id"), "no client, no header");
    }

    #[test]
    fn options_are_typed() {
        let mut options = smart_core::config::AdapterOptions::new();
        options.insert("client_id_header".into(), "x".into());
        assert!(Template::new().with_options(&options).is_ok());
        options.insert("client_idd".into(), "x".into());
        let e = Template::new()
            .with_options(&options)
            .expect_err("misspelt");
        assert!(e.contains("client_idd"), "{e}");
    }

    #[test]
    fn descriptor_matches_the_adapter_and_its_catalogue() {
        assert_eq!(smart_testkit::check_descriptor(&super::DESCRIPTOR), Ok(()));
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
