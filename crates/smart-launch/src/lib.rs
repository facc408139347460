//! # smart (the `smart-launch` crate): SMART App Launch 2.2 in one dependency
//!
//! An app that talks to EHRs needs the protocol client (`smart-core`), the vendor adapters that
//! absorb each EHR's departures from the specification, and usually a FHIR client. Depending on
//! each crate separately made every app choose and install adapters by hand, and an app that
//! installed only the generic one talked to Epic and Oracle Health with every quirk off. This
//! crate is the one dependency instead:
//!
//! - the core API at the root (`smart::SmartClient`, `smart::ClientRegistration`,
//!   `smart::scope`, `smart::headless`, …; everything `smart-core` exports);
//! - [`builder()`]: [`SmartClient::builder`] with every compiled-in adapter installed, so a
//!   registration with `adapter = "auto"` is served by the adapter that recognises the server;
//! - [`adapters`]: the registry of the adapters in this build, each adapter crate under its name
//!   (`smart::adapters::epic::Epic`), each behind a cargo feature of that name (all on by
//!   default, through `all-adapters`);
//! - [`fhir`]: the FHIR REST client (feature `fhir`; `r4` adds typed R4 resources; both default);
//! - `sandbox`: the embedded sandbox EHR, for examples and tests (feature `sandbox`, off by
//!   default).
//!
//! Stores and web-framework integrations join here as features as they arrive.
//!
//! ```no_run
//! use smart::ClientRegistration;
//!
//! # fn main() -> Result<(), smart::ConfigError> {
//! let client = smart::builder()
//!     .registration(
//!         "ehr",
//!         ClientRegistration::public("https://ehr.example.org/fhir", "my-app", "https://app.example/callback")
//!             .with_adapter("auto"),
//!     )
//!     .build()?;
//! # let _ = client;
//! # Ok(()) }
//! ```
//!
//! A vendor-specific build turns the defaults off and names its adapters:
//! `smart-launch = { version = "0.1", default-features = false, features = ["epic", "reqwest", "fhir"] }`
//! (the generic adapter is always present).

#[doc(inline)]
pub use smart_core::*;

/// The vendor adapters compiled into this build: the registry (`smart-adapters`).
pub use smart_adapters as adapters;

/// The FHIR REST client (`smart-fhir`).
#[cfg(feature = "fhir")]
pub use smart_fhir as fhir;

/// The embedded sandbox EHR (`smart-sandbox`), for examples and tests.
#[cfg(feature = "sandbox")]
pub use smart_sandbox as sandbox;

/// Persistent, shared, encrypted session stores (features `stores`, `sqlite`, `postgres`,
/// `redis`): [`open`](stores::open) turns a `[store]` configuration ([`StoreConfig`](stores::StoreConfig))
/// into a sealed store to pass to [`SmartClientBuilder::store`].
///
/// ```
/// # #[cfg(feature = "stores")]
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let store = smart::stores::open(&smart::stores::StoreConfig::new("memory:")).await?;
/// let client = smart::builder().store(store).build()?;
/// # let _ = client; Ok(()) }
/// ```
#[cfg(feature = "stores")]
pub mod stores {
    pub use smart_store::*;
    pub use smart_store_open::{OpenError, open};
}

/// A client builder with every adapter of this build installed (generic first), ready for
/// registrations that name an adapter or say `adapter = "auto"`.
pub fn builder() -> SmartClientBuilder {
    smart_adapters::install(SmartClient::builder())
}

#[cfg(test)]
mod tests {
    #[test]
    fn builder_installs_every_registered_adapter() {
        for name in crate::adapters::names() {
            let client = crate::builder()
                .registration(
                    "ehr",
                    crate::ClientRegistration::public(
                        "https://ehr.example.org/fhir",
                        "app",
                        "https://app.example/cb",
                    )
                    .with_adapter(name),
                )
                .build();
            assert!(client.is_ok(), "{name}: {:?}", client.err());
        }
    }
}
