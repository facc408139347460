//! Resources together with their version, for optimistic locking.
//!
//! FHIR servers report a resource's version in the `ETag` header (`W/"3"`), and a careful update
//! sends it back as `If-Match` so that a concurrent change makes the update fail with `412`
//! instead of silently overwriting it. [`Versioned`] keeps what the response said next to the
//! resource so the caller has it at hand for the update.

use std::fmt;
use std::time::SystemTime;

use serde_json::Value;

/// An entity tag as the server sent it, e.g. `W/"3"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ETag(String);

impl ETag {
    /// Wraps a raw `ETag` header value (sent back verbatim in `If-Match`).
    pub fn new(raw: impl Into<String>) -> ETag {
        ETag(raw.into())
    }

    /// The weak ETag FHIR uses for version `version_id`: `W/"{version_id}"`.
    ///
    /// ```
    /// let tag = smart_fhir::ETag::from_version("3");
    /// assert_eq!(tag.as_str(), r#"W/"3""#);
    /// assert_eq!(tag.version_id(), Some("3"));
    /// ```
    pub fn from_version(version_id: &str) -> ETag {
        ETag(format!("W/\"{version_id}\""))
    }

    /// The raw header value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The version id inside the tag (`3` for `W/"3"` or `"3"`), if it has the usual shape.
    pub fn version_id(&self) -> Option<&str> {
        let s = self.0.trim();
        let s = s.strip_prefix("W/").unwrap_or(s);
        s.strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .filter(|v| !v.is_empty())
    }
}

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A resource and the version information of the response that carried it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Versioned<T> {
    /// The resource.
    pub resource: T,
    /// The `ETag` header (pass it to an update as `If-Match`).
    pub etag: Option<ETag>,
    /// The version id: from the `ETag`, else from `meta.versionId`.
    pub version_id: Option<String>,
    /// The `Last-Modified` header (the resource's own `meta.lastUpdated` is not copied here).
    pub last_modified: Option<SystemTime>,
    /// The `Location` (or `Content-Location`) header: where a created or updated resource lives,
    /// usually including `/_history/{vid}`.
    pub location: Option<String>,
    /// The HTTP status: `201` for a created resource, `200` for a conditional create that found
    /// an existing one, and so on.
    pub status: u16,
}

impl<T> Versioned<T> {
    /// Converts the resource, keeping the version information.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Versioned<U> {
        Versioned {
            resource: f(self.resource),
            etag: self.etag,
            version_id: self.version_id,
            last_modified: self.last_modified,
            location: self.location,
            status: self.status,
        }
    }

    /// Converts the resource fallibly, keeping the version information.
    pub fn try_map<U, E>(self, f: impl FnOnce(T) -> Result<U, E>) -> Result<Versioned<U>, E> {
        Ok(Versioned {
            resource: f(self.resource)?,
            etag: self.etag,
            version_id: self.version_id,
            last_modified: self.last_modified,
            location: self.location,
            status: self.status,
        })
    }

    /// The ETag to send as `If-Match`: the header, else one built from the version id.
    pub fn if_match(&self) -> Option<ETag> {
        self.etag
            .clone()
            .or_else(|| self.version_id.as_deref().map(ETag::from_version))
    }
}

impl Versioned<Value> {
    /// Builds the version information from response headers and the resource's `meta`.
    pub(crate) fn from_parts(status: u16, headers: &http::HeaderMap, resource: Value) -> Self {
        let header = |name: http::header::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let etag = header(http::header::ETAG).map(ETag);
        let version_id = etag
            .as_ref()
            .and_then(|e| e.version_id().map(str::to_owned))
            .or_else(|| {
                resource
                    .pointer("/meta/versionId")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
        let last_modified =
            header(http::header::LAST_MODIFIED).and_then(|v| httpdate::parse_http_date(&v).ok());
        let location =
            header(http::header::LOCATION).or_else(|| header(http::header::CONTENT_LOCATION));
        Versioned {
            resource,
            etag,
            version_id,
            last_modified,
            location,
            status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_shapes() {
        assert_eq!(ETag::new("W/\"12\"").version_id(), Some("12"));
        assert_eq!(ETag::new("\"12\"").version_id(), Some("12"));
        assert_eq!(ETag::new("12").version_id(), None);
        assert_eq!(ETag::new("W/\"\"").version_id(), None);
    }

    #[test]
    fn version_falls_back_to_meta() {
        let v = Versioned::from_parts(
            200,
            &http::HeaderMap::new(),
            serde_json::json!({"resourceType": "Patient", "meta": {"versionId": "4"}}),
        );
        assert_eq!(v.version_id.as_deref(), Some("4"));
        assert_eq!(v.etag, None);
        assert_eq!(v.if_match(), Some(ETag::from_version("4")));
    }
}
