//! Typed FHIR resources (fhirbolt models) on top of the JSON pipeline.
//!
//! fhirbolt's generated structs make resources pleasant to use, but the crate is heavy (its R4
//! serializers alone take over a minute to compile) and has two deserialization bugs when JSON is
//! read *directly* into a concrete type such as `Bundle` or `Observation`:
//!
//! 1. a JSON number in a decimal field (`valueQuantity.value: 72.5`) fails with
//!    `invalid type: number, expected a string`;
//! 2. any property after a nested resource (`entry: {fullUrl, resource, search}` — the order
//!    real servers use) fails with `invalid type: string "match", expected Code`.
//!
//! The same JSON converts correctly through fhirbolt's generic element model. So this module
//! never calls `fhirbolt::json::from_slice::<Bundle>`: every response is parsed by `serde_json`
//! (which the dynamic path needs anyway), Bundles are taken apart as JSON (see
//! [`Page`](crate::Page)), and each resource goes `Value` → [`fhirbolt::element::Element`] →
//! `from_element::<T>`. The regression tests in `tests/fhirbolt_bugs.rs` pin both bugs.
//!
//! Deserialization is **strict** (unknown properties are an error, surfaced as
//! [`FhirError::Typed`]): a lenient typed read would silently drop data that a later typed update
//! would then delete on the server. Use the `*_json` methods for resources with vendor
//! additions, or `from_json_lenient` (in each release module) when data loss is acceptable.

use std::fmt;

use futures_core::Stream;
use futures_util::{StreamExt as _, TryStreamExt as _, stream};
use serde_json::Value;
use smart_core::server_text::excerpt;

use crate::client::FhirClient;
use crate::error::FhirError;
use crate::search::Search;
use crate::versioned::{ETag, Versioned};

/// A fhirbolt resource struct with a known FHIR resource type.
///
/// Implemented for every resource struct of each enabled release (`smart_fhir::r4::resources::*`
/// etc.).
///
/// The conversions never read JSON directly into the struct: fhirbolt 0.4 fails there on decimal
/// numbers (`valueQuantity.value: 72.5`) and on properties after a nested resource (a searchset
/// entry's `search` after its `resource`). They go `serde_json::Value` → fhirbolt's generic
/// `Element` → `from_element`, which reads both correctly. Reads are strict: a property unknown to
/// the release is a [`FhirError::Typed`], because dropping it silently would delete it on the
/// server at the next typed update.
pub trait TypedResource: Sized + Clone + fmt::Debug + Send + Sync + 'static {
    /// The FHIR resource type name, e.g. `"Patient"`.
    const RESOURCE_TYPE: &'static str;

    /// Converts a JSON resource (strict: unknown properties are an error).
    fn from_json(value: Value) -> Result<Self, FhirError>;

    /// Converts to JSON.
    fn to_json(&self) -> Result<Value, FhirError>;

    /// `Resource.id`, if set.
    fn resource_id(&self) -> Option<&str>;
}

/// `Value` → `Element<R>` → `T`: the path that avoids fhirbolt's direct-deserialization bugs.
pub(crate) fn decode<const R: fhirbolt::FhirRelease, T>(
    value: Value,
    mode: fhirbolt::serde::DeserializationMode,
) -> Result<T, FhirError>
where
    T: fhirbolt::serde::DeserializeResourceOwned,
{
    // Both come from the server (fhirbolt quotes unknown field names): made safe to show.
    let resource_type = excerpt(
        value
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or("resource"),
        64,
    );
    let config = Some(fhirbolt::serde::DeserializationConfig { mode });
    let typed_error = |message: String| FhirError::Typed {
        resource_type: resource_type.clone(),
        message: excerpt(&message, 300),
    };
    let element: fhirbolt::element::Element<R> =
        fhirbolt::json::from_json_value(value, config).map_err(|e| typed_error(e.to_string()))?;
    fhirbolt::element::from_element(element, config).map_err(|e| typed_error(e.to_string()))
}

/// `T` → JSON (fhirbolt's serializer has no known bug; decimals keep their digits).
pub(crate) fn encode<T>(resource: &T, resource_type: &str) -> Result<Value, FhirError>
where
    T: fhirbolt::serde::SerializeResource + Clone,
{
    fhirbolt::json::to_json_value(resource.clone(), None).map_err(|e| FhirError::Typed {
        resource_type: resource_type.to_owned(),
        message: excerpt(&e.to_string(), 300),
    })
}

/// Generates a release module's helpers and the [`TypedResource`] impls of its resources.
macro_rules! typed_release {
    ($release:ident, $version:ident, [$($name:ident),* $(,)?]) => {
        pub use fhirbolt::model::$release::{Resource, resources, types};

        use serde_json::Value;

        use crate::error::FhirError;
        use crate::typed::TypedResource;

        const RELEASE: fhirbolt::FhirRelease = fhirbolt::FhirReleases::$version;

        /// Converts JSON to a typed resource — a concrete struct such as
        /// `resources::Observation`, or the [`Resource`] enum — through the element model.
        /// Strict: properties unknown to this release are an error.
        pub fn from_json<T>(value: Value) -> Result<T, FhirError>
        where
            T: fhirbolt::serde::DeserializeResourceOwned,
        {
            crate::typed::decode::<RELEASE, T>(value, fhirbolt::serde::DeserializationMode::Strict)
        }

        /// Like [`from_json`], but drops properties unknown to this release (they are lost if
        /// the resource is written back). fhirbolt limitation: only unknown properties whose
        /// values are strings can be dropped; an unknown boolean, number or object still fails.
        pub fn from_json_lenient<T>(value: Value) -> Result<T, FhirError>
        where
            T: fhirbolt::serde::DeserializeResourceOwned,
        {
            crate::typed::decode::<RELEASE, T>(
                value,
                fhirbolt::serde::DeserializationMode::Compatibility,
            )
        }

        /// Converts a typed resource (a struct or the [`Resource`] enum) to JSON.
        pub fn to_json<T>(resource: &T) -> Result<Value, FhirError>
        where
            T: fhirbolt::serde::SerializeResource + Clone,
        {
            crate::typed::encode(resource, "resource")
        }

        /// The resource type name of a [`Resource`] (`None` for `Resource::Invalid`).
        pub fn resource_type(resource: &Resource) -> Option<&'static str> {
            match resource {
                $(Resource::$name(_) => Some(stringify!($name)),)*
                _ => None,
            }
        }

        $(
            impl TypedResource for resources::$name {
                const RESOURCE_TYPE: &'static str = stringify!($name);

                fn from_json(value: Value) -> Result<Self, FhirError> {
                    from_json(value)
                }

                fn to_json(&self) -> Result<Value, FhirError> {
                    crate::typed::encode(self, stringify!($name))
                }

                fn resource_id(&self) -> Option<&str> {
                    self.id.as_ref().and_then(|id| id.value.as_deref())
                }
            }
        )*
    };
}

pub(crate) use typed_release;

/// Typed interactions (features `r4`, `r4b`, `r5`).
impl FhirClient {
    /// Reads `R` with `id`.
    ///
    /// ```no_run
    /// # #[cfg(feature = "r4")]
    /// # async fn run(fhir: smart_fhir::FhirClient) -> Result<(), smart_fhir::FhirError> {
    /// use smart_fhir::r4::resources::Patient;
    ///
    /// let patient = fhir.read::<Patient>("pat-1").await?;
    /// let family = patient.resource.name.first()
    ///     .and_then(|n| n.family.as_ref())
    ///     .and_then(|f| f.value.as_deref());
    /// println!("{family:?}, version {:?}", patient.version_id);
    /// # Ok(()) }
    /// ```
    pub async fn read<R: TypedResource>(&self, id: &str) -> Result<Versioned<R>, FhirError> {
        self.read_json(R::RESOURCE_TYPE, id)
            .await?
            .try_map(R::from_json)
    }

    /// Reads version `version_id` of `R` with `id`.
    pub async fn vread<R: TypedResource>(
        &self,
        id: &str,
        version_id: &str,
    ) -> Result<Versioned<R>, FhirError> {
        self.vread_json(R::RESOURCE_TYPE, id, version_id)
            .await?
            .try_map(R::from_json)
    }

    /// The matching `R` resources of a search across all pages, as a stream (one page in
    /// memory at a time). `search` must be over `R::RESOURCE_TYPE`; matches of another type are
    /// skipped.
    pub fn search<R: TypedResource>(
        &self,
        search: &Search,
    ) -> impl Stream<Item = Result<R, FhirError>> + Send + 'static {
        let mismatch = (search.resource_type() != R::RESOURCE_TYPE).then(|| {
            FhirError::InvalidRequest(format!(
                "a search over {} cannot yield {} resources",
                search.resource_type(),
                R::RESOURCE_TYPE
            ))
        });
        let results = self
            .resources(search)
            .try_filter(|resource| {
                let same =
                    resource.get("resourceType").and_then(Value::as_str) == Some(R::RESOURCE_TYPE);
                if !same {
                    tracing::debug!(
                        expected = R::RESOURCE_TYPE,
                        "skipping a search match of another resource type"
                    );
                }
                std::future::ready(same)
            })
            .and_then(|resource| std::future::ready(R::from_json(resource)));
        match mismatch {
            Some(e) => stream::iter([Err(e)]).left_stream(),
            None => results.right_stream(),
        }
    }

    /// Creates `resource` (`POST`, never retried).
    pub async fn create<R: TypedResource>(&self, resource: &R) -> Result<Versioned<R>, FhirError> {
        self.create_json(&resource.to_json()?)
            .await?
            .try_map(R::from_json)
    }

    /// Creates `resource` unless one matches `if_none_exist` (idempotent, so retried).
    pub async fn create_conditional<R: TypedResource>(
        &self,
        resource: &R,
        if_none_exist: &str,
    ) -> Result<Versioned<R>, FhirError> {
        self.create_json_conditional(&resource.to_json()?, if_none_exist)
            .await?
            .try_map(R::from_json)
    }

    /// Updates `resource` (`PUT` by its id), with `If-Match` when given.
    pub async fn update<R: TypedResource>(
        &self,
        resource: &R,
        if_match: Option<&ETag>,
    ) -> Result<Versioned<R>, FhirError> {
        self.update_json(&resource.to_json()?, if_match)
            .await?
            .try_map(R::from_json)
    }

    /// Deletes the `R` with `id`.
    pub async fn delete_typed<R: TypedResource>(&self, id: &str) -> Result<(), FhirError> {
        self.delete(R::RESOURCE_TYPE, id).await
    }
}
