//! Typed FHIR resources (fhirbolt models) on top of the JSON pipeline.
//!
//! fhirbolt's generated structs make resources pleasant to use, but its deserializer is fragile
//! on real data: read *directly* into a concrete type it fails on decimal numbers and on
//! properties after a nested resource; through its element model it depends on property order
//! (`resourceType` must come first), panics on empty arrays, wraps integers above `i64::MAX`,
//! and its lenient mode never returns on an unknown array. So every conversion here goes:
//!
//! 1. `serde_json::Value` (which the dynamic path needs anyway; Bundles are taken apart as JSON,
//!    see [`Page`](crate::Page));
//! 2. the schema-aware normalisation pass of [`crate::schema`] (order, empty values, number ranges,
//!    unknown properties and wrong-typed primitives, per [`ParseMode`]);
//! 3. fhirbolt's element model, strict, then `from_element::<T>`.
//!
//! Reads are **lenient** by default ([`FhirClient::with_parse_mode`] changes it per client, or
//! per request on a cheap clone): unknown properties are kept in the [`Typed`] value's
//! [`Extras`] and written back by [`Typed::to_json`], so a typed read-modify-update does not
//! delete vendor data. [`ParseMode::Strict`] turns every deviation into a [`FhirError::Typed`]
//! with its JSON pointer. The tests in `tests/fhirbolt_bugs.rs` pin the fhirbolt behaviour this
//! module routes around.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::panic::{AssertUnwindSafe, catch_unwind};

use futures_core::Stream;
use futures_util::{StreamExt as _, TryStreamExt as _, stream};
use serde_json::Value;
use smart_core::server_text::excerpt;

use crate::client::FhirClient;
use crate::error::FhirError;
use crate::mode::ParseMode;
use crate::schema::{Coercion, Extras, ParseReport};
use crate::search::{Page, Search};
use crate::versioned::{ETag, Versioned};

/// A fhirbolt resource struct with a known FHIR resource type.
///
/// Implemented for every resource struct of each enabled release (`smart_fhir::r4::resources::*`
/// etc.), and for [`Typed`] of one (whose JSON carries its extras back).
///
/// The conversions never read JSON directly into the struct (see the module docs): they
/// normalise the JSON against the release's schema, then go through fhirbolt's element model.
pub trait TypedResource: Sized + Clone + fmt::Debug + Send + Sync + 'static {
    /// The FHIR resource type name, e.g. `"Patient"`.
    const RESOURCE_TYPE: &'static str;

    /// Converts a JSON resource, strictly: anything outside the schema is an error.
    fn from_json(value: Value) -> Result<Self, FhirError> {
        Ok(Self::from_json_with(value, ParseMode::Strict)?.resource)
    }

    /// Converts a JSON resource in `mode`, with the report of what a lenient conversion kept
    /// aside or converted.
    fn from_json_with(value: Value, mode: ParseMode) -> Result<Typed<Self>, FhirError>;

    /// Converts to JSON.
    fn to_json(&self) -> Result<Value, FhirError>;

    /// `Resource.id`, if set.
    fn resource_id(&self) -> Option<&str>;
}

/// A typed resource with what its conversion found: the properties unknown to the FHIR release
/// (kept, not dropped) and the primitives it converted. Dereferences to the resource, so
/// `patient.name` works on a `Typed<Patient>`.
///
/// ```
/// # #[cfg(feature = "r4")] {
/// use smart_fhir::r4::resources::Patient;
/// use smart_fhir::{ParseMode, TypedResource as _};
///
/// let json = serde_json::json!({
///     "resourceType": "Patient", "id": "p1", "active": "true",
///     "name": [{"family": "Chalmers", "isUserSelected": true}]
/// });
/// let patient = Patient::from_json_with(json.clone(), ParseMode::Lenient)?;
/// assert_eq!(patient.extras().get("/name/0/isUserSelected"), Some(&true.into()));
/// assert_eq!(patient.coercions()[0].pointer, "/active");
/// let family = patient.name[0].family.as_ref().and_then(|f| f.value.as_deref());
/// assert_eq!(family, Some("Chalmers"));
///
/// // Writing it back keeps the vendor's property; `active` now has its FHIR type.
/// let back = patient.to_json()?;
/// assert_eq!(back["name"][0]["isUserSelected"], true);
/// assert_eq!(back["active"], true);
///
/// // Strict mode refuses the same data and says where.
/// let err = Patient::from_json_with(json, ParseMode::Strict).unwrap_err();
/// assert!(err.to_string().contains("/active"), "{err}");
/// # }
/// # Ok::<(), smart_fhir::FhirError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Typed<R> {
    /// The typed resource.
    pub resource: R,
    /// What the conversion kept aside or converted.
    pub report: ParseReport,
}

impl<R> Typed<R> {
    /// A typed value with nothing kept aside (e.g. built in code).
    pub fn new(resource: R) -> Typed<R> {
        Typed {
            resource,
            report: ParseReport::default(),
        }
    }

    /// The unknown properties kept by a lenient conversion.
    pub fn extras(&self) -> &Extras {
        &self.report.extras
    }

    /// The primitives a lenient conversion converted to their FHIR JSON type.
    pub fn coercions(&self) -> &[Coercion] {
        &self.report.coercions
    }

    /// The resource, dropping the extras (they are lost if it is written back).
    pub fn into_inner(self) -> R {
        self.resource
    }
}

impl<R> Deref for Typed<R> {
    type Target = R;
    fn deref(&self) -> &R {
        &self.resource
    }
}

impl<R> DerefMut for Typed<R> {
    fn deref_mut(&mut self) -> &mut R {
        &mut self.resource
    }
}

impl<R: TypedResource> TypedResource for Typed<R> {
    const RESOURCE_TYPE: &'static str = R::RESOURCE_TYPE;

    fn from_json_with(value: Value, mode: ParseMode) -> Result<Typed<Self>, FhirError> {
        Ok(Typed::new(R::from_json_with(value, mode)?))
    }

    /// The resource's JSON with its extras written back at their pointers.
    fn to_json(&self) -> Result<Value, FhirError> {
        let mut json = self.resource.to_json()?;
        self.report.extras.merge_into(&mut json);
        Ok(json)
    }

    fn resource_id(&self) -> Option<&str> {
        self.resource.resource_id()
    }
}

/// Normalise (see [`crate::schema`]), then `Value` → `Element<R>` → `T`.
pub(crate) fn decode<const R: fhirbolt::FhirRelease, T>(
    value: Value,
    mode: ParseMode,
) -> Result<Typed<T>, FhirError>
where
    T: fhirbolt::serde::DeserializeResourceOwned,
{
    let (value, report) = crate::schema::normalize::<R>(value, mode)?;
    let resource = element_model::<R, T>(value)?;
    Ok(Typed { resource, report })
}

/// fhirbolt's element model, strict, on normalised JSON: `Value` → `Element<R>` → `T`. A panic
/// inside fhirbolt on input the normalisation did not foresee becomes a [`FhirError::Typed`]
/// rather than unwinding through the caller.
pub(crate) fn element_model<const R: fhirbolt::FhirRelease, T>(value: Value) -> Result<T, FhirError>
where
    T: fhirbolt::serde::DeserializeResourceOwned,
{
    // The type name is from the server: made safe to show. fhirbolt's messages quote field
    // names, also from the server.
    let resource_type = excerpt(
        value
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or("resource"),
        64,
    );
    let typed_error = |message: String| FhirError::Typed {
        resource_type: resource_type.clone(),
        pointer: None,
        expected: None,
        message: excerpt(&message, 300),
    };
    // Lax, not Strict: the normalisation pass has already refused or kept aside everything
    // outside the schema (unknown properties, wrong types), so what Lax adds here is only that
    // a missing required element (the official `Questionnaire-qs1` example has items without
    // `linkId`) does not make the whole resource unreadable.
    let config = Some(fhirbolt::serde::DeserializationConfig {
        mode: fhirbolt::serde::DeserializationMode::Lax,
    });
    let converted = catch_unwind(AssertUnwindSafe(|| {
        let element: fhirbolt::element::Element<R> =
            fhirbolt::json::from_json_value(value, config).map_err(|e| e.to_string())?;
        fhirbolt::element::from_element::<R, T>(element, config).map_err(|e| e.to_string())
    }));
    match converted {
        Ok(Ok(resource)) => Ok(resource),
        Ok(Err(message)) => Err(typed_error(message)),
        Err(_) => Err(typed_error("the typed model panicked on this input".into())),
    }
}

/// `T` → JSON (fhirbolt's serializer has no known bug; decimals keep their digits).
pub(crate) fn encode<T>(resource: &T, resource_type: &str) -> Result<Value, FhirError>
where
    T: fhirbolt::serde::SerializeResource + Clone,
{
    fhirbolt::json::to_json_value(resource.clone(), None).map_err(|e| FhirError::Typed {
        resource_type: resource_type.to_owned(),
        pointer: None,
        expected: None,
        message: excerpt(&e.to_string(), 300),
    })
}

/// Generates a release module's helpers and the [`TypedResource`] impls of its resources.
macro_rules! typed_release {
    ($release:ident, $version:ident, [$($name:ident),* $(,)?]) => {
        pub use fhirbolt::model::$release::{Resource, resources, types};

        use serde_json::Value;

        use crate::error::FhirError;
        use crate::mode::ParseMode;
        use crate::typed::{Typed, TypedResource};

        const RELEASE: fhirbolt::FhirRelease = fhirbolt::FhirReleases::$version;

        /// Converts JSON to a typed resource — a concrete struct such as
        /// `resources::Observation`, or the [`Resource`] enum — strictly: anything outside this
        /// release's schema is a [`FhirError::Typed`] with its JSON pointer. Property order
        /// does not matter, at any depth.
        pub fn from_json<T>(value: Value) -> Result<T, FhirError>
        where
            T: fhirbolt::serde::DeserializeResourceOwned,
        {
            Ok(crate::typed::decode::<RELEASE, T>(value, ParseMode::Strict)?.resource)
        }

        /// Converts JSON leniently (see [`ParseMode::Lenient`]): unknown properties are kept in
        /// the result's extras, wrong-typed primitives converted when lossless, empty values
        /// treated as absent; all of it reported in [`Typed::report`].
        pub fn from_json_lenient<T>(value: Value) -> Result<Typed<T>, FhirError>
        where
            T: fhirbolt::serde::DeserializeResourceOwned,
        {
            crate::typed::decode::<RELEASE, T>(value, ParseMode::Lenient)
        }

        /// Converts JSON in `mode`.
        pub fn from_json_with<T>(value: Value, mode: ParseMode) -> Result<Typed<T>, FhirError>
        where
            T: fhirbolt::serde::DeserializeResourceOwned,
        {
            crate::typed::decode::<RELEASE, T>(value, mode)
        }

        /// Only the normalisation pass typed conversions run before fhirbolt (property order,
        /// empty values, number ranges, unknown properties, wrong-typed primitives): the
        /// normalised JSON and what `mode` kept aside or converted. Useful to inspect vendor
        /// data, and to measure the pass on its own.
        pub fn normalize(
            value: Value,
            mode: ParseMode,
        ) -> Result<(Value, crate::schema::ParseReport), FhirError> {
            crate::schema::normalize::<RELEASE>(value, mode)
        }

        /// [`from_json_with`] into the [`Resource`] enum, compiled once in this crate (the
        /// generic functions are instantiated again in each calling crate, with fhirbolt's
        /// deserializers for every resource type: minutes of compile time).
        pub fn resource_from_json(
            value: Value,
            mode: ParseMode,
        ) -> Result<Typed<Resource>, FhirError> {
            from_json_with(value, mode)
        }

        /// fhirbolt's part of a conversion alone (element model, strict), without the
        /// normalisation pass: correct only on JSON that [`normalize`] already produced.
        /// For benchmarks that separate the cost of the two.
        #[doc(hidden)]
        pub fn element_model_only(value: Value) -> Result<Resource, FhirError> {
            crate::typed::element_model::<RELEASE, Resource>(value)
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

                fn from_json_with(
                    value: Value,
                    mode: ParseMode,
                ) -> Result<Typed<Self>, FhirError> {
                    from_json_with(value, mode)
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

/// The typed matches of one search page: every entry that converted, and every one that did not
/// with its error and raw JSON. A page never fails as a whole because of one entry.
#[derive(Debug)]
#[non_exhaustive]
pub struct TypedPage<R> {
    /// The matches that converted, in page order.
    pub resources: Vec<Typed<R>>,
    /// The matches that did not, each a [`FhirError::TypedEntry`] (index, error, raw JSON).
    pub failures: Vec<FhirError>,
    /// The page itself, with `entries` emptied (they are above); `included`, `outcomes`,
    /// `total` and `next` as the server sent them.
    pub page: Page,
}

/// Converts one search match, or wraps the failure with its index and raw JSON.
fn typed_entry<R: TypedResource>(
    index: usize,
    raw: Value,
    mode: ParseMode,
) -> Result<Typed<R>, FhirError> {
    match R::from_json_with(raw.clone(), mode) {
        Ok(typed) => Ok(typed),
        Err(error) => {
            tracing::warn!(index, error = %error, "a search match does not convert to its typed model");
            Err(FhirError::TypedEntry {
                index,
                source: Box::new(error),
                raw: Box::new(raw),
            })
        }
    }
}

/// Typed interactions (features `r4`, `r4b`, `r5`). Responses are converted in the client's
/// [`ParseMode`] (lenient unless [`FhirClient::with_parse_mode`] says otherwise).
impl FhirClient {
    /// Reads `R` with `id`.
    ///
    /// ```no_run
    /// # #[cfg(feature = "r4")]
    /// # async fn run(fhir: smart_fhir::FhirClient) -> Result<(), smart_fhir::FhirError> {
    /// use smart_fhir::r4::resources::Patient;
    /// use smart_fhir::ParseMode;
    ///
    /// let patient = fhir.read::<Patient>("pat-1").await?;
    /// let family = patient.resource.name.first()
    ///     .and_then(|n| n.family.as_ref())
    ///     .and_then(|f| f.value.as_deref());
    /// println!("{family:?}, version {:?}", patient.version_id);
    /// for (pointer, value) in patient.resource.extras().iter() {
    ///     println!("vendor property {pointer}: {value}");
    /// }
    ///
    /// // One strict read, on a clone of the client.
    /// let strict = fhir.with_parse_mode(ParseMode::Strict).read::<Patient>("pat-1").await;
    /// # Ok(()) }
    /// ```
    pub async fn read<R: TypedResource>(&self, id: &str) -> Result<Versioned<Typed<R>>, FhirError> {
        let mode = self.parse_mode();
        self.read_json(R::RESOURCE_TYPE, id)
            .await?
            .try_map(|v| R::from_json_with(v, mode))
    }

    /// Reads version `version_id` of `R` with `id`.
    pub async fn vread<R: TypedResource>(
        &self,
        id: &str,
        version_id: &str,
    ) -> Result<Versioned<Typed<R>>, FhirError> {
        let mode = self.parse_mode();
        self.vread_json(R::RESOURCE_TYPE, id, version_id)
            .await?
            .try_map(|v| R::from_json_with(v, mode))
    }

    /// The matching `R` resources of a search across all pages, as a stream (one page in
    /// memory at a time). `search` must be over `R::RESOURCE_TYPE`; matches of another type are
    /// skipped. A match that does not convert is yielded as a [`FhirError::TypedEntry`] (its
    /// error and raw JSON) and the stream goes on; an HTTP error ends it. Use
    /// [`typed_pages`](Self::typed_pages) to get each page's good and bad entries together.
    pub fn search<R: TypedResource>(
        &self,
        search: &Search,
    ) -> impl Stream<Item = Result<Typed<R>, FhirError>> + Send + 'static {
        let mismatch = (search.resource_type() != R::RESOURCE_TYPE).then(|| {
            FhirError::InvalidRequest(format!(
                "a search over {} cannot yield {} resources",
                search.resource_type(),
                R::RESOURCE_TYPE
            ))
        });
        let mode = self.parse_mode();
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
            .enumerate()
            .map(move |(index, resource)| {
                resource.and_then(|raw| typed_entry::<R>(index, raw, mode))
            });
        match mismatch {
            Some(e) => stream::iter([Err(e)]).left_stream(),
            None => results.right_stream(),
        }
    }

    /// The pages of a search (see [`pages`](Self::pages)) with their matches converted to `R`:
    /// each page carries the entries that converted and, separately, the ones that did not
    /// with their errors and raw JSON. Only HTTP and Bundle-level errors end the stream.
    pub fn typed_pages<R: TypedResource>(
        &self,
        search: &Search,
    ) -> impl Stream<Item = Result<TypedPage<R>, FhirError>> + Send + 'static {
        let mode = self.parse_mode();
        self.pages(search).map_ok(move |mut page| {
            let mut typed = TypedPage {
                resources: Vec::with_capacity(page.entries.len()),
                failures: Vec::new(),
                page: Page::default(),
            };
            for (index, raw) in std::mem::take(&mut page.entries).into_iter().enumerate() {
                match typed_entry::<R>(index, raw, mode) {
                    Ok(resource) => typed.resources.push(resource),
                    Err(error) => typed.failures.push(error),
                }
            }
            typed.page = page;
            typed
        })
    }

    /// Creates `resource` (`POST`, never retried). A [`Typed`] resource is sent with its
    /// extras.
    pub async fn create<R: TypedResource>(
        &self,
        resource: &R,
    ) -> Result<Versioned<Typed<R>>, FhirError> {
        let mode = self.parse_mode();
        self.create_json(&resource.to_json()?)
            .await?
            .try_map(|v| R::from_json_with(v, mode))
    }

    /// Creates `resource` unless one matches `if_none_exist` (idempotent, so retried).
    pub async fn create_conditional<R: TypedResource>(
        &self,
        resource: &R,
        if_none_exist: &str,
    ) -> Result<Versioned<Typed<R>>, FhirError> {
        let mode = self.parse_mode();
        self.create_json_conditional(&resource.to_json()?, if_none_exist)
            .await?
            .try_map(|v| R::from_json_with(v, mode))
    }

    /// Updates `resource` (`PUT` by its id), with `If-Match` when given. A [`Typed`] resource
    /// (as [`read`](Self::read) returns) is sent with its extras, so vendor properties survive.
    pub async fn update<R: TypedResource>(
        &self,
        resource: &R,
        if_match: Option<&ETag>,
    ) -> Result<Versioned<Typed<R>>, FhirError> {
        let mode = self.parse_mode();
        self.update_json(&resource.to_json()?, if_match)
            .await?
            .try_map(|v| R::from_json_with(v, mode))
    }

    /// Deletes the `R` with `id`.
    pub async fn delete_typed<R: TypedResource>(&self, id: &str) -> Result<(), FhirError> {
        self.delete(R::RESOURCE_TYPE, id).await
    }
}
