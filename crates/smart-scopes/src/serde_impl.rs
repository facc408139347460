//! Serde support: [`Scope`] and [`Scopes`] serialise as strings and deserialise tolerantly.

use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Scope, Scopes};

/// Serialises as the canonical scope string.
impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Deserialises from a string through [`Scope::parse`] (tolerant: case, URI prefixes,
/// surrounding whitespace). Fails only for an empty string or one with inner whitespace.
impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Scope, D::Error> {
        struct ScopeVisitor;
        impl Visitor<'_> for ScopeVisitor {
            type Value = Scope;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a SMART scope string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scope, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(ScopeVisitor)
    }
}

/// Serialises as one space-separated string (the OAuth `scope` parameter form).
impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Deserialises tolerantly from a whitespace-separated string (as [`Scopes::parse`]) or from a
/// sequence of such strings (merged in order, de-duplicated). Never fails on content.
impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Scopes, D::Error> {
        struct ScopesVisitor;
        impl<'de> Visitor<'de> for ScopesVisitor {
            type Value = Scopes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a space-separated scope string or a list of scope strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scopes, E> {
                Ok(Scopes::parse(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scopes, A::Error> {
                let mut out = Scopes::new();
                while let Some(item) = seq.next_element::<String>()? {
                    out.extend_parsed(&item);
                }
                Ok(out)
            }
        }
        deserializer.deserialize_any(ScopesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Scope, Scopes};

    #[test]
    fn scope_serde_round_trip() {
        let s = Scope::parse("patient/Observation.Read");
        let json = serde_json::to_string(&s).expect("serialize");
        assert_eq!(json, "\"patient/Observation.read\"");
        let back: Scope = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, s);
        let tolerant: Scope =
            serde_json::from_str("\" http://openid.net/specs/openid-connect-core-1_0#openid \"")
                .expect("deserialize");
        assert_eq!(tolerant, Scope::OpenId);
        assert!(serde_json::from_str::<Scope>("\"\"").is_err());
        assert!(serde_json::from_str::<Scope>("\"openid profile\"").is_err());
        assert!(serde_json::from_str::<Scope>("3").is_err());
    }

    #[test]
    fn scopes_serde_string_and_sequence() {
        let s = Scopes::parse("openid  fhirUser\tlaunch");
        let json = serde_json::to_string(&s).expect("serialize");
        assert_eq!(json, "\"openid fhirUser launch\"");
        let back: Scopes = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, s);
        let seq: Scopes =
            serde_json::from_str("[\"openid fhirUser\", \"launch\", \"OPENID\"]").expect("seq");
        assert_eq!(seq, s);
        let empty: Scopes = serde_json::from_str("\"  \"").expect("empty");
        assert!(empty.is_empty());
        // Scopes past the cap inside one string of a sequence are still counted.
        let huge: Vec<String> = (0..crate::MAX_SCOPES + 2)
            .map(|i| format!("__x{i}"))
            .collect();
        let seq: Scopes =
            serde_json::from_value(serde_json::json!([huge.join(" "), "openid"])).expect("seq");
        assert_eq!(seq.omitted(), 3);
    }
}
