//! The schema-aware pass every typed conversion runs before fhirbolt sees the JSON (feature
//! `schema`, implied by `r4`, `r4b` and `r5`; usable on its own through [`check`]).
//!
//! fhirbolt 0.4's element model reads JSON in the order the properties arrive, and that order
//! matters to it although it carries no meaning in JSON: a resource whose `resourceType` is not
//! its first property (sorted keys, `jq -S`, a key-sorting gateway) is read as a type with no
//! fields. It also panics on an empty array, wraps integers above `i64::MAX`, and its lenient
//! mode spins forever on an unknown property holding an array. Rather than fork the crate, this
//! module walks the `serde_json::Value` once, with fhirbolt's own schema tables
//! (`fhirbolt_shared::path::ElementPath`, the same tables its deserializer consults), and hands
//! fhirbolt a value it handles correctly:
//!
//! - every object at a resource position (the root, `contained`, `Bundle.entry.resource`,
//!   `Parameters.parameter.resource`, …) is rebuilt with `resourceType` first;
//! - every property is checked against the schema; in [`ParseMode::Strict`] an unknown one is an
//!   error with its JSON pointer, in [`ParseMode::Lenient`] it is moved to the [`Extras`] (with a
//!   `tracing` warning naming the pointer) so that it can be written back later;
//! - empty arrays (and `null` properties, and empty objects) are refused in strict mode and
//!   treated as absent in lenient mode;
//! - every primitive is checked against its FHIR type: integers must fit the 32-bit range
//!   fhirbolt stores them in, decimals are passed on as their exact text (so
//!   `12345678901234567890` keeps its value), and in lenient mode a primitive of the wrong JSON
//!   type is converted when that loses nothing (`true` → `"true"`, `100` → `"100"`, `"72.5"` →
//!   `72.5`) and reported as a [`Coercion`].
//!
//! The walk is one pass over the input with no backtracking, so its cost is linear in the size
//! of the input whatever it contains; fhirbolt's own lenient mode is never used.

use fhirbolt_shared::FhirRelease;
use fhirbolt_shared::FhirReleases;
use fhirbolt_shared::path::ElementPath;
use serde_json::{Map, Value};
use smart_core::server_text::excerpt;

use crate::error::FhirError;
use crate::mode::ParseMode;

/// The children fhirbolt allows under a primitive's `_name` companion object.
const PRIMITIVE_CHILDREN: &[&str] = &["id", "extension", "value"];

/// Deepest JSON nesting accepted (serde_json's parser stops at 128; values built in code are
/// held to a similar bound so the walk cannot exhaust the stack).
const MAX_DEPTH: usize = 256;

/// A FHIR release whose schema [`check`] can apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// FHIR R4 (4.0.1).
    R4,
    /// FHIR R4B (4.3.0).
    R4B,
    /// FHIR R5 (5.0.0).
    R5,
}

/// Checks `value` against the schema of `release` in `mode` without building a typed model (no
/// fhirbolt models needed: feature `schema` alone): the normalised JSON and what `mode` kept
/// aside or converted, or the first deviation (strict) / unconvertible value (lenient) as a
/// [`FhirError::Typed`] with its JSON pointer and expected type.
///
/// ```
/// use smart_fhir::ParseMode;
/// use smart_fhir::schema::{Release, check};
///
/// let vendor = serde_json::json!({"active": "true", "resourceType": "Patient", "isVip": true});
/// let (normalised, report) = check(Release::R4, vendor.clone(), ParseMode::Lenient)?;
/// assert_eq!(normalised, serde_json::json!({"resourceType": "Patient", "active": true}));
/// assert_eq!(report.extras.get("/isVip"), Some(&true.into()));
/// assert_eq!(report.coercions[0].pointer, "/active");
///
/// let err = check(Release::R4, vendor, ParseMode::Strict).unwrap_err();
/// assert!(err.to_string().contains("at /active (expected boolean)"), "{err}");
/// # Ok::<(), smart_fhir::FhirError>(())
/// ```
pub fn check(
    release: Release,
    value: Value,
    mode: ParseMode,
) -> Result<(Value, ParseReport), FhirError> {
    match release {
        Release::R4 => normalize::<{ FhirReleases::R4 }>(value, mode),
        Release::R4B => normalize::<{ FhirReleases::R4B }>(value, mode),
        Release::R5 => normalize::<{ FhirReleases::R5 }>(value, mode),
    }
}

/// Properties unknown to the FHIR release, kept by a lenient conversion: each with the JSON
/// pointer (RFC 6901) where it was found in the resource and its value, in document order.
///
/// A typed value's `to_json` (`Typed` with the `r4`/`r4b`/`r5` features) writes them back at their pointers, so a lenient
/// read followed by a write does not delete vendor data on the server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extras {
    entries: Vec<(String, Value)>,
}

impl Extras {
    /// The number of unknown properties kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no unknown property was found.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value kept for the property at `pointer` (e.g. `"/name/0/isUserSelected"`).
    pub fn get(&self, pointer: &str) -> Option<&Value> {
        self.entries
            .iter()
            .find(|(p, _)| p == pointer)
            .map(|(_, v)| v)
    }

    /// `(pointer, value)` pairs in document order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(p, v)| (p.as_str(), v))
    }

    /// Writes every kept property back into `resource` (the JSON of the typed value) at its
    /// pointer, creating the objects on the way that the typed model left out because the
    /// extras were all they held.
    pub fn merge_into(&self, resource: &mut Value) {
        for (pointer, value) in &self.entries {
            if !insert_at_pointer(resource, pointer, value.clone()) {
                tracing::warn!(
                    pointer = %excerpt(pointer, 200),
                    "cannot put an unknown property back: its parent is gone"
                );
            }
        }
    }

    fn push(&mut self, pointer: String, value: Value) {
        self.entries.push((pointer, value));
    }
}

/// A primitive that a lenient conversion converted to the JSON type its FHIR type requires.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Coercion {
    /// Where, as a JSON pointer into the resource.
    pub pointer: String,
    /// The FHIR type expected there (`"string"`, `"boolean"`, `"decimal"`, …).
    pub expected: &'static str,
    /// The value as received.
    pub received: Value,
}

/// What a lenient conversion changed or kept aside (all empty for data that matches the schema).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ParseReport {
    /// Unknown properties, kept.
    pub extras: Extras,
    /// Primitives converted to their FHIR JSON type.
    pub coercions: Vec<Coercion>,
    /// Pointers of empty arrays, empty objects and `null` properties treated as absent.
    pub absent: Vec<String>,
}

impl ParseReport {
    /// Whether the input matched the schema exactly.
    pub fn is_clean(&self) -> bool {
        self.extras.is_empty() && self.coercions.is_empty() && self.absent.is_empty()
    }
}

/// The FHIR primitive kinds that differ in their JSON representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Boolean,
    Integer { min: i64 },
    Integer64,
    Decimal,
    Text,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Boolean => "boolean",
            Kind::Integer { min: 1 } => "positiveInt",
            Kind::Integer { min: 0 } => "unsignedInt",
            Kind::Integer { .. } => "integer",
            Kind::Integer64 => "integer64",
            Kind::Decimal => "decimal",
            Kind::Text => "string",
        }
    }
}

/// One conversion's walk state.
struct Walk {
    path: ElementPath,
    mode: ParseMode,
    resource_type: String,
    pointer: String,
    report: ParseReport,
    depth: usize,
}

/// Normalises `value` for fhirbolt (see the module docs). Returns the value to hand to fhirbolt
/// and what was changed; errors carry the JSON pointer and the expected type.
pub(crate) fn normalize<const R: FhirRelease>(
    value: Value,
    mode: ParseMode,
) -> Result<(Value, ParseReport), FhirError> {
    let resource_type = excerpt(
        value
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or("resource"),
        64,
    );
    let mut walk = Walk {
        path: ElementPath::new(R),
        mode,
        resource_type,
        pointer: String::new(),
        report: ParseReport::default(),
        depth: 0,
    };
    let Value::Object(map) = value else {
        return Err(walk.error("a JSON object (a FHIR resource)", describe(&value)));
    };
    let out = walk.object(map)?;
    Ok((Value::Object(out), walk.report))
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {}", excerpt(&n.to_string(), 40)),
        Value::String(s) => format!("string {:?}", excerpt(s, 40)),
        Value::Array(a) if a.is_empty() => "an empty array".into(),
        Value::Array(_) => "an array".into(),
        Value::Object(o) if o.is_empty() => "an empty object".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// Appends one RFC 6901 reference token.
fn push_token(pointer: &mut String, token: &str) -> usize {
    let len = pointer.len();
    pointer.push('/');
    for c in token.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
    len
}

/// Whether `text` is a JSON number (FHIR's decimal grammar).
fn is_json_number(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    if bytes.first() == Some(&b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < bytes.len() && bytes[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let int_start = i;
    let n = digits(&mut i);
    if n == 0 || (n > 1 && bytes[int_start] == b'0') {
        return false;
    }
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == bytes.len() && text.len() <= 128
}

impl Walk {
    fn error(&self, expected: &str, found: String) -> FhirError {
        FhirError::Typed {
            resource_type: self.resource_type.clone(),
            pointer: Some(excerpt(&self.pointer, 300)),
            expected: Some(expected.to_owned()),
            message: format!("found {found}"),
        }
    }

    fn lenient(&self) -> bool {
        self.mode == ParseMode::Lenient
    }

    fn kind(&self) -> Kind {
        let p = &self.path;
        if p.current_element_is_boolean() {
            Kind::Boolean
        } else if p.current_element_is_positive_integer() {
            Kind::Integer { min: 1 }
        } else if p.current_element_is_unsigned_integer() {
            Kind::Integer { min: 0 }
        } else if p.current_element_is_integer() {
            Kind::Integer {
                min: i64::from(i32::MIN),
            }
        } else if p.current_element_is_integer64() {
            Kind::Integer64
        } else if p.current_element_is_decimal() {
            Kind::Decimal
        } else {
            Kind::Text
        }
    }

    /// An object in element position: a resource, a complex element, or a primitive's `_name`.
    fn object(&mut self, map: Map<String, Value>) -> Result<Map<String, Value>, FhirError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("at most 256 levels of nesting", "deeper nesting".into()));
        }
        let mut out = Map::with_capacity(map.len());
        let at_resource = self.path.is_empty() || self.path.current_element_is_resource();
        let mut pushed_resource = false;
        if at_resource {
            let len = push_token(&mut self.pointer, "resourceType");
            // Read in place (skipped in the loop below): removing it would reorder an IndexMap.
            match map.get("resourceType").cloned() {
                Some(Value::String(name)) => {
                    self.path.push(&name);
                    if self.path.children().is_none() {
                        self.path.pop();
                        return Err(self.error(
                            "a resource type of this FHIR release",
                            format!("{:?}", excerpt(&name, 64)),
                        ));
                    }
                    pushed_resource = true;
                    out.insert("resourceType".to_owned(), Value::String(name));
                }
                Some(other) => return Err(self.error("a resource type name", describe(&other))),
                None => return Err(self.error("a resourceType property", "none".into())),
            }
            self.pointer.truncate(len);
        }
        let primitive = !at_resource && self.path.current_element_is_primitive();
        for (key, value) in map {
            if at_resource && key == "resourceType" {
                continue;
            }
            let companion = key.strip_prefix('_');
            let name = companion.unwrap_or(&key);
            let len = push_token(&mut self.pointer, &key);
            let known = if primitive {
                companion.is_none() && PRIMITIVE_CHILDREN.contains(&name)
            } else {
                self.path.children().is_some_and(|set| set.contains(name))
            };
            if !known {
                if !self.lenient() {
                    let expected = match self.path.children() {
                        Some(_) if primitive => "a primitive's id, extension or value".to_owned(),
                        Some(set) if set.len() <= 12 => format!(
                            "one of {}",
                            set.iter().copied().collect::<Vec<_>>().join(", ")
                        ),
                        Some(_) => "a property of this element in this FHIR release".to_owned(),
                        None => "no properties".to_owned(),
                    };
                    return Err(self.error(
                        &expected,
                        format!("unknown property {:?}", excerpt(&key, 64)),
                    ));
                }
                tracing::warn!(
                    resource_type = %self.resource_type,
                    pointer = %excerpt(&self.pointer, 300),
                    "unknown FHIR property kept aside as an extra"
                );
                self.report.extras.push(self.pointer.clone(), value);
                self.pointer.truncate(len);
                continue;
            }
            self.path.push(name);
            let kept = self.property(value, companion.is_some());
            self.path.pop();
            if let Some(kept) = kept? {
                out.insert(key, kept);
            }
            self.pointer.truncate(len);
        }
        if pushed_resource {
            self.path.pop();
        }
        self.depth -= 1;
        Ok(out)
    }

    /// Treats an empty array / object or a `null` as absent (lenient) or refuses it (strict).
    fn absent(&mut self, value: &Value) -> Result<Option<Value>, FhirError> {
        if self.lenient() {
            tracing::warn!(
                resource_type = %self.resource_type,
                pointer = %excerpt(&self.pointer, 300),
                found = %describe(value),
                "treating an empty FHIR property as absent"
            );
            self.report.absent.push(self.pointer.clone());
            Ok(None)
        } else {
            Err(self.error(
                "a value (FHIR JSON leaves out empty properties)",
                describe(value),
            ))
        }
    }

    /// The value of a known property (`Ok(None)`: leave the property out).
    fn property(&mut self, value: Value, companion: bool) -> Result<Option<Value>, FhirError> {
        match value {
            Value::Array(items) => {
                if items.is_empty() {
                    return self.absent(&Value::Array(items));
                }
                if !self.path.current_element_is_sequence() {
                    return Err(self.error("a single value, not an array", "an array".into()));
                }
                let mut out = Vec::with_capacity(items.len());
                let mut all_null = true;
                for (index, item) in items.into_iter().enumerate() {
                    let len = push_token(&mut self.pointer, &index.to_string());
                    let item = match item {
                        // `null` keeps primitive arrays and their `_name` companions aligned.
                        Value::Null => Value::Null,
                        Value::Array(_) => {
                            return Err(
                                self.error("an element, not a nested array", "an array".into())
                            );
                        }
                        Value::Object(map) => {
                            all_null = false;
                            Value::Object(self.object(map)?)
                        }
                        primitive if !companion => {
                            all_null = false;
                            self.primitive(primitive)?
                        }
                        other => return Err(self.error("an object or null", describe(&other))),
                    };
                    out.push(item);
                    self.pointer.truncate(len);
                }
                if all_null {
                    // Only placeholders: nothing for fhirbolt to read (a `_name` companion
                    // carries the elements' extensions on its own).
                    return Ok(None);
                }
                Ok(Some(Value::Array(out)))
            }
            Value::Object(map) => {
                if map.is_empty() {
                    return self.absent(&Value::Object(map));
                }
                let out = self.object(map)?;
                if out.is_empty() {
                    // Everything in it was an extra: leave it out; the extras recreate it.
                    return Ok(None);
                }
                Ok(Some(Value::Object(out)))
            }
            Value::Null => self.absent(&Value::Null),
            primitive if companion => Err(self.error(
                "an object with the primitive's id and extensions",
                describe(&primitive),
            )),
            primitive => self.primitive(primitive).map(Some),
        }
    }

    /// Checks (and in lenient mode converts) a primitive value against its FHIR type.
    fn primitive(&mut self, value: Value) -> Result<Value, FhirError> {
        // `Extension.url` is a plain string that the schema tables do not list as a primitive
        // (in XML it is an attribute).
        let extension_url = self.path.current_element() == Some("url");
        if !extension_url && !self.path.current_element_is_primitive() {
            return Err(self.error("an object (a complex FHIR element)", describe(&value)));
        }
        let kind = if extension_url {
            Kind::Text
        } else {
            self.kind()
        };
        let converted = match (kind, &value) {
            (Kind::Boolean, Value::Bool(_)) => return Ok(value),
            (Kind::Boolean, Value::String(s)) if s == "true" || s == "false" => {
                Some(Value::Bool(s == "true"))
            }
            (Kind::Integer { min }, Value::Number(n)) => {
                return match n.as_i64() {
                    Some(i) if i >= min && i <= i64::from(i32::MAX) => Ok(value),
                    Some(i)
                        if i >= i64::from(i32::MIN)
                            && i <= i64::from(i32::MAX)
                            && self.lenient() =>
                    {
                        Ok(value)
                    }
                    _ => Err(self.error(
                        &format!(
                            "{} (a whole number from {min} to {})",
                            kind.name(),
                            i32::MAX
                        ),
                        describe(&value),
                    )),
                };
            }
            (Kind::Integer { .. }, Value::String(s)) => s
                .parse::<i32>()
                .ok()
                .filter(|i| i.to_string() == *s)
                .map(|i| Value::Number(i.into())),
            (Kind::Integer64, Value::String(s)) => {
                return match s.parse::<i64>() {
                    Ok(_) => Ok(value),
                    Err(_) => {
                        Err(self.error("integer64 (a whole number in a string)", describe(&value)))
                    }
                };
            }
            (Kind::Integer64, Value::Number(n)) => n.as_i64().map(|i| Value::String(i.to_string())),
            // Decimals travel to fhirbolt as their exact text: fhirbolt stores decimals as
            // strings, and a number would pass through its integer path (and wrap above
            // i64::MAX) first.
            (Kind::Decimal, Value::Number(n)) => return Ok(Value::String(n.to_string())),
            (Kind::Decimal, Value::String(s)) if is_json_number(s) => {
                Some(Value::String(s.clone()))
            }
            (Kind::Text, Value::String(_)) => return Ok(value),
            (Kind::Text, Value::Bool(b)) => Some(Value::String(b.to_string())),
            (Kind::Text, Value::Number(n)) => Some(Value::String(n.to_string())),
            _ => None,
        };
        match converted {
            Some(converted) if self.lenient() => {
                tracing::warn!(
                    resource_type = %self.resource_type,
                    pointer = %excerpt(&self.pointer, 300),
                    expected = kind.name(),
                    "converted a FHIR primitive of the wrong JSON type"
                );
                self.report.coercions.push(Coercion {
                    pointer: self.pointer.clone(),
                    expected: kind.name(),
                    received: value,
                });
                Ok(converted)
            }
            _ => Err(self.error(kind.name(), describe(&value))),
        }
    }
}

/// Puts `value` at `pointer` in `target`, creating missing objects; `false` if an array index on
/// the way does not exist or a non-container is in the way.
fn insert_at_pointer(target: &mut Value, pointer: &str, value: Value) -> bool {
    let tokens: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    let Some((last, parents)) = tokens.split_last() else {
        return false;
    };
    let mut current = target;
    for token in parents {
        current = match current {
            Value::Object(map) => map
                .entry(token.clone())
                .or_insert_with(|| Value::Object(Map::new())),
            Value::Array(items) => match token.parse::<usize>().ok() {
                Some(i) if i < items.len() => &mut items[i],
                Some(i) if i == items.len() => {
                    items.push(Value::Object(Map::new()));
                    &mut items[i]
                }
                _ => return false,
            },
            _ => return false,
        };
    }
    match current {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            true
        }
        _ => false,
    }
}
