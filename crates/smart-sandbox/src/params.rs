//! Strict parsing of OAuth request parameters.
//!
//! RFC 6749 §3.1 and §3.2 say request parameters must not be repeated and
//! that a parameter sent with an empty value is treated as omitted. Frameworks'
//! usual `Form<HashMap<..>>` extractors silently keep the last duplicate, which
//! would let an app with a bug pass here and fail at a real EHR, so the
//! sandbox parses the raw query or body itself.
//!
//! Any web page can send these requests to the sandbox's known port, so the
//! parsing is linear in the input and bounded: at most [`MAX_PARAMS`]
//! parameters are read (the rest are counted, see [`Params::too_many`]), and
//! the form endpoints refuse bodies over [`MAX_FORM_BODY`] bytes and queries
//! over [`MAX_QUERY`] bytes before parsing them.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

/// The most parameters read from one query or form body. An OAuth request
/// has about a dozen; the rest of a longer one is not parsed.
pub(crate) const MAX_PARAMS: usize = 64;

/// The largest form body (token, introspection, POST authorize) accepted, in
/// bytes. A token request is well under 8 KiB even with a client assertion.
pub(crate) const MAX_FORM_BODY: usize = 64 * 1024;

/// The longest query string accepted at the authorize endpoint, in bytes.
pub(crate) const MAX_QUERY: usize = 16 * 1024;

/// Parsed parameters plus the names that were sent more than once.
#[derive(Debug, Default)]
pub(crate) struct Params {
    values: HashMap<String, String>,
    /// Repeated names in the order first repeated; `repeated` holds the same
    /// names for constant-time lookup.
    duplicates: Vec<String>,
    repeated: HashSet<String>,
    /// Whether the input had more than [`MAX_PARAMS`] parameters.
    too_many: bool,
}

impl Params {
    /// Parses `application/x-www-form-urlencoded` data (a query string or a
    /// form body): linear time, at most [`MAX_PARAMS`] parameters (empty
    /// ones included in the count).
    pub(crate) fn parse(raw: &[u8]) -> Self {
        let mut params = Params::default();
        for (seen, (k, v)) in url::form_urlencoded::parse(raw).enumerate() {
            if seen >= MAX_PARAMS {
                params.too_many = true;
                break;
            }
            if v.is_empty() {
                // "Parameters sent without a value MUST be treated as if they
                // were omitted from the request." (RFC 6749 §3.1)
                continue;
            }
            match params.values.entry(k.into_owned()) {
                Entry::Occupied(e) => {
                    if params.repeated.insert(e.key().clone()) {
                        params.duplicates.push(e.key().clone());
                    }
                }
                Entry::Vacant(e) => {
                    e.insert(v.into_owned());
                }
            }
        }
        params
    }

    /// The value of `name`, if present and non-empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether `name` was sent more than once.
    pub(crate) fn is_duplicated(&self, name: &str) -> bool {
        self.repeated.contains(name)
    }

    /// Whether the input had more than [`MAX_PARAMS`] parameters (only the
    /// first ones were parsed).
    pub(crate) fn too_many(&self) -> bool {
        self.too_many
    }

    /// The first repeated parameter, if any.
    pub(crate) fn first_duplicate(&self) -> Option<&str> {
        self.duplicates.first().map(String::as_str)
    }
}

/// Whether a `Content-Type` header value is form-urlencoded (parameters such
/// as `charset` are allowed).
pub(crate) fn is_form_content_type(value: Option<&str>) -> bool {
    value.and_then(|v| v.split(';').next()).is_some_and(|m| {
        m.trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    })
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a space
/// and `%XX` a byte. Returns `None` for a bad escape or invalid UTF-8.
pub(crate) fn form_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Appends query parameters to a URI that may already have a query.
pub(crate) fn append_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    let query = ser.finish();
    let sep = if !uri.contains('?') {
        "?"
    } else if uri.ends_with('?') || uri.ends_with('&') {
        ""
    } else {
        "&"
    };
    format!("{uri}{sep}{query}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_empty_values() {
        let p = Params::parse(b"a=1&b=&a=2&c=x%20y");
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert!(p.is_duplicated("a"));
        assert_eq!(p.get("c"), Some("x y"));
    }

    #[test]
    fn parameter_count_is_capped() {
        let raw = "a=1&".repeat(MAX_PARAMS) + "b=2";
        let p = Params::parse(raw.as_bytes());
        assert!(p.too_many());
        assert_eq!(p.get("b"), None);
        assert!(!Params::parse(b"a=1&b=2").too_many());
    }

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode("a+b%3Ac%25").as_deref(), Some("a b:c%"));
        assert_eq!(form_decode("%zz"), None);
        assert_eq!(form_decode("%4"), None);
    }

    #[test]
    fn query_appending() {
        assert_eq!(
            append_query("http://x/cb", &[("a", "1 2")]),
            "http://x/cb?a=1+2"
        );
        assert_eq!(
            append_query("http://x/cb?k=v", &[("a", "1")]),
            "http://x/cb?k=v&a=1"
        );
    }

    #[test]
    fn content_types() {
        assert!(is_form_content_type(Some(
            "application/x-www-form-urlencoded; charset=UTF-8"
        )));
        assert!(!is_form_content_type(Some("application/json")));
        assert!(!is_form_content_type(None));
    }
}
