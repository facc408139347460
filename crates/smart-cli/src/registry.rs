//! The adapters and vendor profiles the CLI offers, read from the adapter registry so that no
//! vendor is named here: a build with another set of adapters shows another list in `--help`.

use clap::builder::{PossibleValue, PossibleValuesParser};
use smart_core::descriptor::SandboxProfile;
use smart_sandbox::{SandboxError, VendorProfile};

/// `--adapter`'s values: every compiled-in adapter (with its vendor as help), then `auto`.
pub(crate) fn adapter_values() -> PossibleValuesParser {
    let mut values: Vec<PossibleValue> = smart_adapters::descriptors()
        .iter()
        .map(|d| PossibleValue::new(d.name).help(d.vendor))
        .collect();
    values.push(
        PossibleValue::new(smart_core::AUTO_ADAPTER)
            .help("pick the adapter that recognises the server"),
    );
    PossibleValuesParser::new(values)
}

/// `--profile`'s values: the profile of every compiled-in adapter (under the adapter's name),
/// then the sandbox's other built-in profiles.
pub(crate) fn profile_values() -> PossibleValuesParser {
    let mut values: Vec<PossibleValue> = smart_adapters::descriptors()
        .iter()
        .map(|d| PossibleValue::new(d.name).help(format!("emulate {}", d.vendor)))
        .collect();
    for name in smart_sandbox::BUILTIN_PROFILES {
        if smart_adapters::descriptor(name).is_none() {
            values.push(PossibleValue::new(*name));
        }
    }
    PossibleValuesParser::new(values)
}

/// The sandbox profile called `name`: a compiled-in adapter's own profile, or a built-in one.
pub(crate) fn profile(name: &str) -> Result<VendorProfile, SandboxError> {
    match smart_adapters::descriptor(name).map(|d| d.sandbox_profile) {
        Some(SandboxProfile::Toml(text)) => VendorProfile::from_toml_str(text),
        Some(SandboxProfile::Builtin(builtin)) => VendorProfile::builtin(builtin),
        _ => VendorProfile::builtin(name),
    }
}
