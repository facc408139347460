//! # smart-adapters: the registry of the vendor adapters in a build
//!
//! Apps that support several EHRs install every adapter and let each registration name one (or
//! say `adapter = "auto"` to have it detected); vendor-specific builds compile only what they
//! ship. This crate is that switch, and the one place that lists adapters: each line of its
//! `Cargo.toml` registry block names an adapter crate under its registry name, the generic adapter
//! always present and each vendor adapter an optional dependency, hence a cargo feature of the
//! same name (`epic`, `cerner`; all on by default). The build script turns those lines into
//! [`DESCRIPTORS`], and everything else iterates the descriptors: [`install`] puts every adapter
//! on a client builder, the adapter × profile matrix test runs each against its sandbox profile,
//! the CLI lists them in its help, and `cargo xtask ci` builds each alone.
//!
//! Adding an adapter is its folder under `adapters/` plus its registry line (see
//! `docs/adding-an-adapter.md`). Each adapter crate is also re-exported under its registry name
//! (`smart_adapters::epic::Epic`).
//!
//! ```
//! use smart_core::SmartClient;
//!
//! let builder = smart_adapters::install(SmartClient::builder());
//! # let _ = builder;
//! assert_eq!(smart_adapters::names()[0], "generic");
//! assert!(smart_adapters::by_name("generic").is_some());
//! ```

use std::sync::Arc;

use smart_core::SmartClientBuilder;
use smart_core::descriptor::AdapterDescriptor;
use smart_core::quirks::VendorQuirks;

include!(concat!(env!("OUT_DIR"), "/registry.rs"));

/// The descriptors of the adapters compiled into this build (generic first).
pub fn descriptors() -> &'static [&'static AdapterDescriptor] {
    DESCRIPTORS
}

/// The descriptor of the adapter called `name`, if compiled in.
pub fn descriptor(name: &str) -> Option<&'static AdapterDescriptor> {
    DESCRIPTORS.iter().copied().find(|d| d.name == name)
}

/// Every adapter compiled into this build, with its default options, generic first (the default
/// for unrecognised servers).
pub fn all() -> Vec<Arc<dyn VendorQuirks>> {
    DESCRIPTORS.iter().map(|d| (d.adapter)()).collect()
}

/// The names of the adapters compiled in, generic first.
pub fn names() -> Vec<&'static str> {
    DESCRIPTORS.iter().map(|d| d.name).collect()
}

/// The adapter called `name` with its default options, if compiled in.
pub fn by_name(name: &str) -> Option<Arc<dyn VendorQuirks>> {
    descriptor(name).map(|d| (d.adapter)())
}

/// Installs every compiled-in adapter on a client builder (generic first).
pub fn install(mut builder: SmartClientBuilder) -> SmartClientBuilder {
    for adapter in all() {
        builder = builder.adapter(adapter);
    }
    builder
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_comes_first_and_features_decide_the_rest() {
        let names = names();
        assert_eq!(names[0], "generic");
        let built: Vec<String> = all().iter().map(|a| a.name().to_owned()).collect();
        assert_eq!(built, names, "each descriptor builds the adapter it names");
        for registered in REGISTERED {
            // BUILD_FEATURES is what cargo told the build script; DESCRIPTORS is what `cfg`
            // compiled: the two must agree.
            let compiled = *registered == "generic" || BUILD_FEATURES.contains(registered);
            assert_eq!(
                names.contains(registered),
                compiled,
                "{registered}: compiled in exactly when its feature is on"
            );
        }
        assert!(by_name("generic").is_some());
        assert!(by_name("nope").is_none());
        assert!(by_name(smart_core::AUTO_ADAPTER).is_none());
    }

    #[test]
    fn every_descriptor_is_consistent() {
        for d in descriptors() {
            assert!(REGISTERED.contains(&d.name), "{} is registered", d.name);
            assert_eq!(smart_testkit::check_descriptor(d), Ok(()));
        }
    }
}
