//! Adapter descriptors: what the rest of the workspace needs to know about an adapter, as data.
//!
//! An adapter crate (`adapters/<vendor>/`) exports one `DESCRIPTOR` of type
//! [`AdapterDescriptor`] from its `lib.rs`. The registry (`smart-adapters`) lists the descriptors
//! of the adapters compiled into a build, and everything that used to name vendors iterates that
//! list instead: the client builder installs every registered adapter, the adapter × profile
//! matrix test runs each adapter against its sandbox profile and checks that the generic adapter
//! breaks exactly where the descriptor says, the CLI's help texts list the registered names, and
//! the single-adapter CI builds are derived from the registry's features. Adding an adapter is
//! therefore one folder plus one registry entry (`docs/adding-an-adapter.md`).
//!
//! The descriptor refers to the adapter through a constructor function, never to individual hooks
//! of [`VendorQuirks`], so it stays valid whatever hooks an adapter overrides.
//!
//! ```
//! use std::sync::Arc;
//! use smart_core::descriptor::{AdapterDescriptor, AdapterOption, FlowStep, GenericBreak, Recognition, SandboxProfile};
//! use smart_core::quirks::VendorQuirks;
//!
//! #[derive(Debug)]
//! struct Acme;
//! impl VendorQuirks for Acme {
//!     fn name(&self) -> &str { "acme" }
//! }
//!
//! fn acme() -> Arc<dyn VendorQuirks> { Arc::new(Acme) }
//!
//! pub static DESCRIPTOR: AdapterDescriptor = AdapterDescriptor::new("acme", "Acme EHR", acme)
//!     .with_options(&[AdapterOption::new("client_id", "Sent as `Acme-Client-ID` on discovery", "my-app")])
//!     .with_recognition(Recognition::Evidence("FHIR base host ends in .acme.example"))
//!     .with_sandbox_profile(SandboxProfile::Toml("name = \"acme\"\nextends = \"generic\"\n"))
//!     .with_generic_breaks(&[GenericBreak::new(FlowStep::Identity, "acme-idtoken-issuer")]);
//!
//! assert_eq!(DESCRIPTOR.name, "acme");
//! assert_eq!((DESCRIPTOR.adapter)().name(), DESCRIPTOR.name);
//! ```

use std::fmt;
use std::sync::Arc;

use crate::quirks::{Quirk, VendorQuirks};

/// The constructor most descriptors name: the adapter type's `Default`, shared.
///
/// ```
/// use smart_core::descriptor::{AdapterDescriptor, default_adapter};
/// use smart_core::quirks::SpecAdapter;
///
/// static SPEC: AdapterDescriptor =
///     AdapterDescriptor::new("generic", "the specification", default_adapter::<SpecAdapter>);
/// assert_eq!((SPEC.adapter)().name(), "generic");
/// ```
pub fn default_adapter<T: VendorQuirks + Default + 'static>() -> Arc<dyn VendorQuirks> {
    Arc::new(T::default())
}

/// One adapter, described as data (see the [module documentation](self)).
///
/// Built in a `static` with [`AdapterDescriptor::new`] and the `with_*` methods (all `const`), so
/// that fields can be added without breaking adapter crates.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct AdapterDescriptor {
    /// The registry name, as written in registrations (`adapter = "epic"`) and on the CLI. Equal
    /// to the adapter's [`VendorQuirks::name`].
    pub name: &'static str,
    /// The vendor or server family, for help texts and logs (e.g. `"Oracle Health (Cerner
    /// Millennium)"`).
    pub vendor: &'static str,
    /// Builds the adapter with its default options.
    pub adapter: fn() -> Arc<dyn VendorQuirks>,
    /// The per-registration options the adapter understands (`[clients.x.adapter_options]`),
    /// documented.
    pub options: &'static [AdapterOption],
    /// How the adapter recognises its servers when a registration says `adapter = "auto"`.
    pub recognition: Recognition,
    /// The sandbox vendor profile that emulates this adapter's servers.
    pub sandbox_profile: SandboxProfile,
    /// The flow steps where the spec-exact generic adapter fails against this adapter's sandbox
    /// profile, and the catalogued quirk that explains each. Empty for the generic adapter.
    pub generic_breaks: &'static [GenericBreak],
    /// The quirks the adapter handles, as data: the one source of the adapter's catalogue, read
    /// by tools (`smart adapters`, the conformance run) and checked by the adapter's tests.
    pub catalogue: &'static [Quirk],
}

impl AdapterDescriptor {
    /// A descriptor with no options, no recognition evidence (a fallback), the built-in sandbox
    /// profile named like the adapter, and no generic-adapter breaks.
    pub const fn new(
        name: &'static str,
        vendor: &'static str,
        adapter: fn() -> Arc<dyn VendorQuirks>,
    ) -> Self {
        Self {
            name,
            vendor,
            adapter,
            options: &[],
            recognition: Recognition::Fallback,
            sandbox_profile: SandboxProfile::Builtin(name),
            generic_breaks: &[],
            catalogue: &[],
        }
    }

    /// Sets the catalogue of quirks the adapter handles.
    pub const fn with_catalogue(mut self, catalogue: &'static [Quirk]) -> Self {
        self.catalogue = catalogue;
        self
    }

    /// The catalogue row `id`, if the adapter catalogues it.
    pub fn quirk(&self, id: &str) -> Option<&'static Quirk> {
        self.catalogue.iter().find(|q| q.id == id)
    }

    /// Sets the documented options.
    pub const fn with_options(mut self, options: &'static [AdapterOption]) -> Self {
        self.options = options;
        self
    }

    /// Sets how the adapter recognises its servers.
    pub const fn with_recognition(mut self, recognition: Recognition) -> Self {
        self.recognition = recognition;
        self
    }

    /// Sets the sandbox profile that emulates the vendor.
    pub const fn with_sandbox_profile(mut self, profile: SandboxProfile) -> Self {
        self.sandbox_profile = profile;
        self
    }

    /// Sets the steps where the generic adapter breaks against the vendor's profile.
    pub const fn with_generic_breaks(mut self, breaks: &'static [GenericBreak]) -> Self {
        self.generic_breaks = breaks;
        self
    }

    /// The steps of [`generic_breaks`](Self::generic_breaks), in [`FlowStep::ALL`] order without
    /// repeats.
    pub fn generic_break_steps(&self) -> Vec<FlowStep> {
        FlowStep::ALL
            .into_iter()
            .filter(|s| self.generic_breaks.iter().any(|b| b.step == *s))
            .collect()
    }
}

impl fmt::Debug for AdapterDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdapterDescriptor")
            .field("name", &self.name)
            .field("vendor", &self.vendor)
            .field("options", &self.options)
            .field("recognition", &self.recognition)
            .field("sandbox_profile", &self.sandbox_profile)
            .field("generic_breaks", &self.generic_breaks)
            .field("catalogue", &self.catalogue.len())
            .finish_non_exhaustive()
    }
}

/// A per-registration adapter option, documented (the typed value lives in the adapter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdapterOption {
    /// The key under `[clients.x.adapter_options]`.
    pub key: &'static str,
    /// What the option does, one line.
    pub summary: &'static str,
    /// An example value.
    pub example: &'static str,
}

impl AdapterOption {
    /// A documented option.
    pub const fn new(key: &'static str, summary: &'static str, example: &'static str) -> Self {
        Self {
            key,
            summary,
            example,
        }
    }
}

/// How an adapter is chosen under `adapter = "auto"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Recognition {
    /// Never recognised from evidence: the adapter used when no other recognises the server
    /// (the generic adapter), or one that must be named in the registration.
    Fallback,
    /// Recognised by the adapter's `recognizes` hook; the text summarises the evidence it looks
    /// for, for help texts and docs.
    Evidence(&'static str),
}

/// The sandbox vendor profile that emulates an adapter's servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SandboxProfile {
    /// A profile built into `smart-sandbox`, by name.
    Builtin(&'static str),
    /// A profile in the sandbox's TOML format, shipped in the adapter's folder (usually
    /// `include_str!("../sandbox-profile.toml")`, often `extends = "generic"` plus the vendor's
    /// differences), so a new adapter needs no edit to the sandbox.
    Toml(&'static str),
}

/// A step of the flows the adapter × profile matrix runs, in protocol order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum FlowStep {
    /// A standalone launch with a long scope list (an authorize URL over 2 KB).
    StandaloneLaunch,
    /// A standalone launch with `openid fhirUser`: the id_token is verified.
    Identity,
    /// An EHR launch: the launch context comes back.
    EhrLaunch,
    /// A FHIR read and a paged search with the launched session's token.
    FhirReadAndSearch,
    /// Two refreshes in a row.
    Refresh,
}

impl FlowStep {
    /// Every step, in protocol order.
    pub const ALL: [FlowStep; 5] = [
        FlowStep::StandaloneLaunch,
        FlowStep::Identity,
        FlowStep::EhrLaunch,
        FlowStep::FhirReadAndSearch,
        FlowStep::Refresh,
    ];
}

/// A step where the generic adapter fails against a vendor profile, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct GenericBreak {
    /// The failing step.
    pub step: FlowStep,
    /// The id of the catalogued quirk that explains it (e.g. `"cerner-no-wildcard-scopes"`).
    pub quirk: &'static str,
}

impl GenericBreak {
    /// A break explained by the quirk with id `quirk`.
    pub const fn new(step: FlowStep, quirk: &'static str) -> Self {
        Self { step, quirk }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Named;
    impl VendorQuirks for Named {
        fn name(&self) -> &str {
            "named"
        }
    }
    fn named() -> Arc<dyn VendorQuirks> {
        Arc::new(Named)
    }

    #[test]
    fn defaults_and_break_steps_in_protocol_order() {
        static D: AdapterDescriptor = AdapterDescriptor::new("named", "Named", named)
            .with_generic_breaks(&[
                GenericBreak::new(FlowStep::Refresh, "named-a"),
                GenericBreak::new(FlowStep::StandaloneLaunch, "named-b"),
                GenericBreak::new(FlowStep::Refresh, "named-c"),
            ]);
        assert_eq!(D.sandbox_profile, SandboxProfile::Builtin("named"));
        assert_eq!(D.recognition, Recognition::Fallback);
        assert!(D.options.is_empty());
        assert_eq!(
            D.generic_break_steps(),
            vec![FlowStep::StandaloneLaunch, FlowStep::Refresh]
        );
        assert_eq!((D.adapter)().name(), "named");
        assert!(format!("{D:?}").contains("named"));
    }
}
