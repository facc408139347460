//! Raw HTTP for the probe: requests built by hand, answers read defensively.
//!
//! The probe must see exactly what the server sends, so it uses the raw
//! [`HttpClient`] (no redirects followed, a capped body, a timeout) and never the tolerant
//! `SmartClient`, which repairs vendor deviations the probe is there to report. Everything a
//! server sends is hostile: JSON is parsed only from bodies up to [`MAX_JSON_BYTES`], and any
//! server text that ends up in a result goes through [`excerpt`] (bounded, controls escaped).

use bytes::Bytes;
use http::HeaderMap;
use serde_json::{Map, Value};
use smart_core::http::{HttpClient, HttpRequest};

/// The largest body the probe parses as JSON (1 MiB); a larger one is reported, not parsed.
pub(crate) const MAX_JSON_BYTES: usize = 1 << 20;

/// The longest quote of server text in a result.
pub(crate) const MAX_QUOTE_CHARS: usize = 200;

/// A server's text, made safe and short for a result detail.
pub(crate) fn excerpt(text: &str) -> String {
    smart_core::server_text::excerpt(text, MAX_QUOTE_CHARS)
}

/// One answer.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    /// A header's value, or `""` when absent or not text.
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The body as a JSON object, if it is one and not too large.
    pub(crate) fn json_object(&self) -> Option<Map<String, Value>> {
        if self.body.len() > MAX_JSON_BYTES {
            return None;
        }
        match serde_json::from_slice(&self.body) {
            Ok(Value::Object(map)) => Some(map),
            _ => None,
        }
    }

    /// Whether the status is 2xx.
    pub(crate) fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The OAuth `error` of the body, if any.
    pub(crate) fn oauth_error(&self) -> Option<String> {
        self.json_object()
            .and_then(|m| m.get("error").and_then(Value::as_str).map(excerpt))
    }

    /// A short description for a result: status, OAuth error or a body excerpt.
    pub(crate) fn describe(&self) -> String {
        match self.json_object() {
            Some(m) if m.contains_key("error") => {
                let error = m.get("error").and_then(Value::as_str).unwrap_or("?");
                match m.get("error_description").and_then(Value::as_str) {
                    Some(d) => format!("HTTP {} {} ({})", self.status, excerpt(error), excerpt(d)),
                    None => format!("HTTP {} {}", self.status, excerpt(error)),
                }
            }
            _ => format!("HTTP {}", self.status),
        }
    }
}

/// Sends requests through the raw transport.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wire<'a> {
    pub(crate) http: &'a dyn HttpClient,
}

impl<'a> Wire<'a> {
    /// Sends `request`; a transport failure becomes a one-line message. A `GET` that failed in
    /// transport (a pooled connection the server had just closed, say) is sent once more: it
    /// changes nothing on the server. Other methods are never repeated, since a code or an
    /// assertion must not be spent twice.
    pub(crate) async fn send(&self, request: HttpRequest) -> Result<Reply, String> {
        let again = (request.method() == http::Method::GET).then(|| {
            let mut copy = http::Request::new(request.body().clone());
            *copy.method_mut() = request.method().clone();
            *copy.uri_mut() = request.uri().clone();
            *copy.headers_mut() = request.headers().clone();
            copy
        });
        let response = match (self.http.execute(request).await, again) {
            (Ok(r), _) => r,
            (Err(_), Some(again)) => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                self.http
                    .execute(again)
                    .await
                    .map_err(|e| excerpt(&e.to_string()))?
            }
            (Err(e), None) => return Err(excerpt(&e.to_string())),
        };
        let (parts, body) = response.into_parts();
        Ok(Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }

    /// `GET url` with the given headers.
    pub(crate) async fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Reply, String> {
        let mut builder = http::Request::builder().method(http::Method::GET).uri(url);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder
            .body(Vec::new())
            .map_err(|e| format!("cannot build a request for {}: {e}", excerpt(url)))?;
        self.send(request).await
    }

    /// `POST url` with a form body and the given headers.
    pub(crate) async fn post_form(
        &self,
        url: &str,
        form: &[(String, String)],
        headers: &[(String, String)],
    ) -> Result<Reply, String> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter())
            .finish();
        self.post(
            url,
            "application/x-www-form-urlencoded",
            body.into_bytes(),
            headers,
        )
        .await
    }

    /// `POST url` with a body of `content_type`.
    pub(crate) async fn post(
        &self,
        url: &str,
        content_type: &str,
        body: Vec<u8>,
        headers: &[(String, String)],
    ) -> Result<Reply, String> {
        let mut builder = http::Request::builder()
            .method(http::Method::POST)
            .uri(url)
            .header(http::header::CONTENT_TYPE, content_type)
            .header(http::header::ACCEPT, "application/json");
        for (k, v) in headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let request = builder
            .body(body)
            .map_err(|e| format!("cannot build a request for {}: {e}", excerpt(url)))?;
        self.send(request).await
    }
}

/// A string member of a JSON object.
pub(crate) fn str_of<'m>(map: &'m Map<String, Value>, key: &str) -> Option<&'m str> {
    map.get(key).and_then(Value::as_str)
}

/// The space-separated scopes of a `scope` member.
pub(crate) fn scopes_of(map: &Map<String, Value>) -> Vec<String> {
    str_of(map, "scope")
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(body: &[u8]) -> Reply {
        Reply {
            status: 400,
            headers: HeaderMap::new(),
            body: Bytes::copy_from_slice(body),
        }
    }

    #[test]
    fn oversized_json_is_not_parsed() {
        let mut big = b"{\"error\":\"x\",\"pad\":\"".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_JSON_BYTES));
        big.extend_from_slice(b"\"}");
        assert!(reply(&big).json_object().is_none());
        assert_eq!(reply(&big).describe(), "HTTP 400");
    }

    #[test]
    fn server_text_in_a_description_is_escaped_and_bounded() {
        let long = "e".repeat(10_000);
        let body = format!("{{\"error\":\"bad\\u001b[2J\",\"error_description\":\"{long}\"}}");
        let d = reply(body.as_bytes()).describe();
        assert!(!d.contains('\u{1b}'), "{d}");
        assert!(d.chars().count() < 2 * MAX_QUOTE_CHARS + 40, "{}", d.len());
    }
}
