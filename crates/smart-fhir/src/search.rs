//! Search requests and the pages of results they return.
//!
//! A FHIR search is a resource type plus query parameters; the server answers with a `searchset`
//! Bundle holding one page, and a `next` link to the following page. Two things about that
//! shape matter for a client:
//!
//! - **`next` links are opaque.** Epic, Cerner and athena each page differently (cursors,
//!   `pageContext`, offsets), so the only portable way through the results is to follow the
//!   server's `next` link exactly — never to compute one. The client follows it only after
//!   checking it points under the FHIR base the token belongs to.
//! - **Not every entry is a match.** `_include` adds `search.mode = "include"` entries, and some
//!   servers put warnings in as `OperationOutcome` entries with `search.mode = "outcome"` (Epic
//!   does for ignored parameters). [`Page`] sorts them into three lists so that an app iterating
//!   over "the Observations" never meets an OperationOutcome.

use serde_json::Value;

/// A search: resource type, parameters, and how to send and page it.
///
/// ```
/// use smart_fhir::Search;
///
/// let search = Search::new("Observation")
///     .patient("pat-1")
///     .param("category", "laboratory")
///     .code("http://loinc.org|4548-4")
///     .date("ge2024-01-01")
///     .count(100)
///     .sort("-date")
///     .include("Observation:patient")
///     .page_limit(10);
/// assert_eq!(
///     search.query_string(),
///     "patient=pat-1&category=laboratory&code=http%3A%2F%2Floinc.org%7C4548-4&date=ge2024-01-01&_count=100&_sort=-date&_include=Observation%3Apatient"
/// );
/// assert!(!search.is_post());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    resource_type: String,
    params: Vec<(String, String)>,
    post: bool,
    page_limit: Option<usize>,
}

impl Search {
    /// A search over `resource_type` (e.g. `"Observation"`) with no parameters yet.
    pub fn new(resource_type: impl Into<String>) -> Search {
        Search {
            resource_type: resource_type.into(),
            params: Vec::new(),
            post: false,
            page_limit: None,
        }
    }

    /// Adds any parameter, e.g. `param("code:text", "glucose")` or `param("_has:…", …)`.
    /// Repeating a name sends it twice (FHIR "AND"); use a comma inside one value for "OR".
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Search {
        self.params.push((name.into(), value.into()));
        self
    }

    /// Adds several parameters.
    pub fn params<K: Into<String>, V: Into<String>>(
        mut self,
        params: impl IntoIterator<Item = (K, V)>,
    ) -> Search {
        self.params
            .extend(params.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// `patient={id}`: resources in that patient's compartment (Observation, Condition, …).
    pub fn patient(self, id: impl Into<String>) -> Search {
        self.param("patient", id)
    }

    /// `subject={reference}`.
    pub fn subject(self, reference: impl Into<String>) -> Search {
        self.param("subject", reference)
    }

    /// `code={system|code}` (a token; `system|` and `|code` forms work too).
    pub fn code(self, token: impl Into<String>) -> Search {
        self.param("code", token)
    }

    /// `date={prefix}{date}`, e.g. `ge2024-01-01`. Call twice for a range.
    pub fn date(self, value: impl Into<String>) -> Search {
        self.param("date", value)
    }

    /// `_id={id}` (comma-separate several).
    pub fn id(self, id: impl Into<String>) -> Search {
        self.param("_id", id)
    }

    /// `_lastUpdated={prefix}{instant}`.
    pub fn last_updated(self, value: impl Into<String>) -> Search {
        self.param("_lastUpdated", value)
    }

    /// `_count={n}`: the page size asked for (servers may clamp it).
    pub fn count(self, n: u32) -> Search {
        self.param("_count", n.to_string())
    }

    /// `_sort={keys}`, e.g. `-date`.
    pub fn sort(self, keys: impl Into<String>) -> Search {
        self.param("_sort", keys)
    }

    /// `_include={Type:param}`, e.g. `Observation:patient`.
    pub fn include(self, include: impl Into<String>) -> Search {
        self.param("_include", include)
    }

    /// `_revinclude={Type:param}`.
    pub fn revinclude(self, include: impl Into<String>) -> Search {
        self.param("_revinclude", include)
    }

    /// `_elements={a,b}`.
    pub fn elements(self, elements: impl Into<String>) -> Search {
        self.param("_elements", elements)
    }

    /// `_summary={mode}` (`true`, `count`, `data`, …).
    pub fn summary(self, mode: impl Into<String>) -> Search {
        self.param("_summary", mode)
    }

    /// Sends the first page as `POST {type}/_search` with a form body, keeping patient data out
    /// of URLs (and so out of proxy and server access logs). Later pages follow the `next` links.
    pub fn post(mut self) -> Search {
        self.post = true;
        self
    }

    /// Stops after `pages` pages (at least one) when streaming.
    pub fn page_limit(mut self, pages: usize) -> Search {
        self.page_limit = Some(pages.max(1));
        self
    }

    /// The resource type searched.
    pub fn resource_type(&self) -> &str {
        &self.resource_type
    }

    /// The parameters, in order.
    pub fn parameters(&self) -> &[(String, String)] {
        &self.params
    }

    /// Whether the first page is requested with `POST _search`.
    pub fn is_post(&self) -> bool {
        self.post
    }

    /// The page limit, if any.
    pub fn max_pages(&self) -> Option<usize> {
        self.page_limit
    }

    /// The parameters form-urlencoded (the query string of a GET, the body of a POST).
    pub fn query_string(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.params.iter())
            .finish()
    }
}

/// One page of search results.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Page {
    /// The matches: entries with `search.mode = "match"`, or no mode.
    pub entries: Vec<Value>,
    /// Entries added by `_include` / `_revinclude` (`search.mode = "include"`).
    pub included: Vec<Value>,
    /// `OperationOutcome` entries (`search.mode = "outcome"`, or an OperationOutcome without a
    /// mode in a search for another type): warnings such as "parameter ignored".
    pub outcomes: Vec<Value>,
    /// `Bundle.total`, when the server sent it. Servers differ on what it counts (some report the
    /// page size); do not rely on it to stop paging.
    pub total: Option<u64>,
    /// The `next` link as the server sent it.
    pub next: Option<String>,
}

impl Page {
    /// Sorts a searchset Bundle's entries. `searched` is the resource type of the search, used to
    /// recognise OperationOutcome entries that carry no mode.
    pub fn from_bundle(bundle: Value, searched: &str) -> Result<Page, String> {
        let Value::Object(mut bundle) = bundle else {
            return Err("the body is not a JSON object".into());
        };
        match bundle.get("resourceType").and_then(Value::as_str) {
            Some("Bundle") => {}
            Some(other) => {
                return Err(format!(
                    "expected a Bundle, got a {}",
                    smart_core::server_text::excerpt(other, 64)
                ));
            }
            None => return Err("expected a Bundle, got JSON without resourceType".into()),
        }
        let total = bundle.get("total").and_then(Value::as_u64);
        let next = bundle
            .get("link")
            .and_then(Value::as_array)
            .and_then(|links| {
                links
                    .iter()
                    .find(|l| l.get("relation").and_then(Value::as_str) == Some("next"))
            })
            .and_then(|l| l.get("url"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut page = Page {
            total,
            next,
            ..Page::default()
        };
        let entries = match bundle.remove("entry") {
            Some(Value::Array(entries)) => entries,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => return Err("Bundle.entry is not an array".into()),
        };
        for mut entry in entries {
            let mode = entry
                .pointer("/search/mode")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let Some(resource) = entry.get_mut("resource").map(Value::take) else {
                continue; // an entry without a resource (e.g. only a fullUrl): nothing to return
            };
            let is_outcome =
                resource.get("resourceType").and_then(Value::as_str) == Some("OperationOutcome");
            match mode.as_deref() {
                Some("outcome") => page.outcomes.push(resource),
                Some("include") => page.included.push(resource),
                None if is_outcome && searched != "OperationOutcome" => {
                    page.outcomes.push(resource)
                }
                _ => page.entries.push(resource),
            }
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entries_are_sorted_by_mode() {
        let bundle = json!({
            "resourceType": "Bundle",
            "type": "searchset",
            "total": 3,
            "link": [
                {"relation": "self", "url": "http://x/fhir/Observation?patient=1"},
                {"relation": "next", "url": "http://x/fhir?page=abc"}
            ],
            "entry": [
                {"fullUrl": "http://x/fhir/Observation/1", "resource": {"resourceType": "Observation", "id": "1"}, "search": {"mode": "match"}},
                {"resource": {"resourceType": "Observation", "id": "2"}},
                {"resource": {"resourceType": "Patient", "id": "p"}, "search": {"mode": "include"}},
                {"resource": {"resourceType": "OperationOutcome", "issue": []}, "search": {"mode": "outcome"}},
                {"resource": {"resourceType": "OperationOutcome", "issue": []}},
                {"fullUrl": "http://x/fhir/Observation/3"}
            ]
        });
        let page = Page::from_bundle(bundle, "Observation").expect("page");
        assert_eq!(page.entries.len(), 2);
        assert_eq!(page.included.len(), 1);
        assert_eq!(page.outcomes.len(), 2);
        assert_eq!(page.total, Some(3));
        assert_eq!(page.next.as_deref(), Some("http://x/fhir?page=abc"));

        let empty = Page::from_bundle(json!({"resourceType": "Bundle"}), "Patient").expect("ok");
        assert_eq!(empty, Page::default());
        assert!(Page::from_bundle(json!({"resourceType": "Patient"}), "Patient").is_err());
        assert!(Page::from_bundle(json!([]), "Patient").is_err());
    }

    #[test]
    fn query_string_encodes_every_parameter() {
        let s = Search::new("Patient")
            .params([("name", "O'Brien & Sons"), ("birthdate", "ge1970")])
            .id("a,b")
            .post();
        assert_eq!(
            s.query_string(),
            "name=O%27Brien+%26+Sons&birthdate=ge1970&_id=a%2Cb"
        );
        assert!(s.is_post());
        assert_eq!(Search::new("X").page_limit(0).max_pages(), Some(1));
    }
}
