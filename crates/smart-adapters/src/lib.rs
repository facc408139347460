//! # smart-adapters: the vendor adapters of this build
//!
//! Apps that support several EHRs install every adapter and let each registration name one (or
//! say `adapter = "auto"` to have it detected); vendor-specific builds compile only what they
//! ship. This crate is that switch: the generic adapter is always present, each vendor adapter
//! sits behind a cargo feature of the same name (`epic`, `cerner`; both on by default), and
//! [`all`] lists what was compiled in, generic first.
//!
//! Adding an adapter is one feature line in `Cargo.toml` and one registry line in [`all`]
//! (see `docs/adding-an-adapter.md`).
//!
//! ```
//! use smart_core::SmartClient;
//!
//! let builder = smart_adapters::install(SmartClient::builder());
//! # let _ = builder;
//! assert!(smart_adapters::names().contains(&"generic"));
//! ```

use std::sync::Arc;

use smart_core::SmartClientBuilder;
use smart_core::quirks::VendorQuirks;

/// Every adapter compiled into this build, generic first (the default for unrecognised servers).
pub fn all() -> Vec<Arc<dyn VendorQuirks>> {
    #[allow(unused_mut)]
    let mut adapters: Vec<Arc<dyn VendorQuirks>> = vec![Arc::new(smart_adapter_generic::Generic)];
    #[cfg(feature = "epic")]
    adapters.push(Arc::new(smart_adapter_epic::Epic::new()));
    #[cfg(feature = "cerner")]
    adapters.push(Arc::new(smart_adapter_cerner::Cerner::new()));
    adapters
}

/// The names of the adapters compiled in.
pub fn names() -> Vec<&'static str> {
    #[allow(unused_mut)]
    let mut names = vec![smart_adapter_generic::NAME];
    #[cfg(feature = "epic")]
    names.push(smart_adapter_epic::NAME);
    #[cfg(feature = "cerner")]
    names.push(smart_adapter_cerner::NAME);
    names
}

/// The adapter called `name`, if compiled in.
pub fn by_name(name: &str) -> Option<Arc<dyn VendorQuirks>> {
    all().into_iter().find(|a| a.name() == name)
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
        let names: Vec<String> = all().iter().map(|a| a.name().to_owned()).collect();
        assert_eq!(names[0], "generic");
        assert_eq!(names, super::names());
        assert_eq!(names.contains(&"epic".to_owned()), cfg!(feature = "epic"));
        assert_eq!(
            names.contains(&"cerner".to_owned()),
            cfg!(feature = "cerner")
        );
        assert!(by_name("generic").is_some());
        assert!(by_name("nope").is_none());
    }
}
