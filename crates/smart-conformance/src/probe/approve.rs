//! The authorization step without a person: an [`Approver`] plays the user's browser.
//!
//! Most probe checks need an authorization code, and a code needs a user's approval. Servers
//! meant for automation (the embedded sandbox, test tenants) approve by themselves and redirect
//! at once; others show a consent page with a single form. [`RedirectApprover`] handles both: it
//! follows redirects, submits a lone consent form it finds on the way, and stops at the first
//! redirect to one of the app's URIs **without connecting to it**. A server that wants a real
//! login gets [`Authorization::Refused`]; the checks that need a code are then skipped with that
//! reason rather than failed.

use std::fmt;

use async_trait::async_trait;
use smart_core::http::{HttpClient, HttpRequest, check_transport_security_for};
use url::Url;

use super::wire::{Wire, excerpt};

/// Redirects followed (and forms submitted) before giving up.
pub const MAX_STEPS: usize = 10;

/// The largest page searched for a consent form (256 KiB).
const MAX_PAGE_BYTES: usize = 256 * 1024;

/// Most fields taken from one form.
const MAX_FORM_FIELDS: usize = 64;

/// What an authorization request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    /// The server redirected to one of the app's URIs.
    Redirected {
        /// The app URI redirected to (without the query the server added).
        to: String,
        /// The redirect's query parameters, decoded.
        params: Vec<(String, String)>,
    },
    /// The server did not redirect to the app: an error page, a login page, or a redirect
    /// elsewhere that could not be followed. The text says what was seen (escaped, short).
    Refused {
        /// The last HTTP status.
        status: u16,
        /// What was seen.
        text: String,
    },
}

impl Authorization {
    /// A query parameter of a redirect.
    pub fn param(&self, name: &str) -> Option<&str> {
        match self {
            Authorization::Redirected { params, .. } => params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str()),
            Authorization::Refused { .. } => None,
        }
    }

    /// The code, when the server redirected with one.
    pub fn code(&self) -> Option<&str> {
        self.param("code")
    }

    /// A one-line description for a result detail.
    pub fn describe(&self) -> String {
        match self {
            Authorization::Redirected { .. } => match self.code() {
                Some(_) => "redirected with a code".to_owned(),
                None => {
                    let error = self.param("error").unwrap_or("no code and no error");
                    format!("redirected with error {}", excerpt(error))
                }
            },
            Authorization::Refused { status, text } => format!("HTTP {status} {text}"),
        }
    }
}

/// Completes authorization requests for the probe.
///
/// # Example
/// ```
/// use smart_conformance::probe::{Approver, RedirectApprover};
///
/// let approver: Box<dyn Approver> = Box::new(RedirectApprover);
/// assert!(format!("{approver:?}").contains("RedirectApprover"));
/// ```
#[async_trait]
pub trait Approver: Send + Sync + fmt::Debug {
    /// Sends `request` (the authorization request, GET or POST) as the user's browser would and
    /// reports where it ended. `app_uris` are the URIs that belong to the app: a redirect to any
    /// of them ends the walk and is never followed.
    async fn authorize(
        &self,
        http: &dyn HttpClient,
        request: HttpRequest,
        app_uris: &[&str],
    ) -> Result<Authorization, String>;
}

/// Follows redirects and submits a lone consent form, as the module documentation explains.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedirectApprover;

#[async_trait]
impl Approver for RedirectApprover {
    async fn authorize(
        &self,
        http: &dyn HttpClient,
        request: HttpRequest,
        app_uris: &[&str],
    ) -> Result<Authorization, String> {
        let wire = Wire { http };
        let app: Vec<Url> = app_uris.iter().filter_map(|u| Url::parse(u).ok()).collect();
        let start = Url::parse(&request.uri().to_string())
            .map_err(|e| format!("the authorization URL is not a URL: {e}"))?;
        let mut next = request;
        let mut forms_posted = 0;
        for _ in 0..MAX_STEPS {
            let current = Url::parse(&next.uri().to_string())
                .map_err(|e| format!("bad URL on the way: {e}"))?;
            let reply = wire.send(next).await?;
            if (300..400).contains(&reply.status) {
                let location = reply.header("location");
                let target = current.join(location).map_err(|_| {
                    format!(
                        "redirect to an invalid location {}",
                        excerpt(&location.chars().take(200).collect::<String>())
                    )
                })?;
                if let Some(to) = app.iter().find(|a| same_endpoint(&target, a)) {
                    return Ok(Authorization::Redirected {
                        to: to.to_string(),
                        params: target.query_pairs().into_owned().collect(),
                    });
                }
                if let Err(e) = check_transport_security_for(&target, &start) {
                    return Ok(Authorization::Refused {
                        status: reply.status,
                        text: excerpt(&e.to_string()),
                    });
                }
                next = build(http::Method::GET, target.as_str(), None)?;
                continue;
            }
            let page = if reply.body.len() <= MAX_PAGE_BYTES {
                String::from_utf8_lossy(&reply.body).into_owned()
            } else {
                String::new()
            };
            if reply.status == 200
                && forms_posted < 2
                && let Some(form) = consent_form(&page)
            {
                let action = current
                    .join(&form.action)
                    .map_err(|_| "the consent form's action is not a URL".to_owned())?;
                check_transport_security_for(&action, &start).map_err(|e| e.to_string())?;
                forms_posted += 1;
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form.fields.iter())
                    .finish();
                next = build(http::Method::POST, action.as_str(), Some(body))?;
                continue;
            }
            let ct = reply.header("content-type").to_owned();
            let text = if smart_core::server_text::looks_like_html(Some(&ct), &page) {
                smart_core::server_text::html_to_text(&page, super::wire::MAX_QUOTE_CHARS)
            } else {
                excerpt(&page)
            };
            return Ok(Authorization::Refused {
                status: reply.status,
                text,
            });
        }
        Ok(Authorization::Refused {
            status: 0,
            text: format!("gave up after {MAX_STEPS} redirects"),
        })
    }
}

/// Same scheme, host, port and path: the query and fragment a server adds do not count.
fn same_endpoint(target: &Url, app: &Url) -> bool {
    target.scheme() == app.scheme()
        && target.host() == app.host()
        && target.port_or_known_default() == app.port_or_known_default()
        && target.path() == app.path()
}

fn build(method: http::Method, url: &str, form: Option<String>) -> Result<HttpRequest, String> {
    let mut builder = http::Request::builder().method(method).uri(url);
    if form.is_some() {
        builder = builder.header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        );
    }
    builder
        .body(form.unwrap_or_default().into_bytes())
        .map_err(|e| format!("cannot build a request: {e}"))
}

/// A form found on a page.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Form {
    action: String,
    fields: Vec<(String, String)>,
}

/// The page's consent form: exactly one `<form method="post">`, with its hidden inputs and its
/// first named submit button (the "approve" one comes first on every consent page seen). A page
/// with a password field is a login page, which a probe must not fill in. One linear pass.
fn consent_form(page: &str) -> Option<Form> {
    let lower = page.to_ascii_lowercase();
    let mut forms = lower.match_indices("<form").map(|(i, _)| i);
    let start = forms.next()?;
    if forms.next().is_some() || lower.contains("type=\"password\"") {
        return None;
    }
    let end = lower[start..].find("</form")? + start;
    let open_end = lower[start..].find('>')? + start;
    let open = &page[start..open_end];
    if !attr(open, "method")?.eq_ignore_ascii_case("post") {
        return None;
    }
    let action = attr(open, "action").unwrap_or_default();
    let mut fields = Vec::new();
    let mut submitted = false;
    let mut at = open_end;
    while let Some(rel) = lower[at..end].find('<') {
        let tag_start = at + rel;
        let tag_end = lower[tag_start..end]
            .find('>')
            .map_or(end, |e| tag_start + e);
        let tag = &page[tag_start..tag_end];
        let tag_lower = &lower[tag_start..tag_end];
        at = tag_end.max(tag_start + 1);
        let is_input = tag_lower.starts_with("<input");
        let is_button = tag_lower.starts_with("<button");
        if !is_input && !is_button {
            continue;
        }
        let kind = attr(tag, "type").unwrap_or_default().to_ascii_lowercase();
        let Some(name) = attr(tag, "name") else {
            continue;
        };
        let value = attr(tag, "value").unwrap_or_default();
        let submit = is_button || kind == "submit";
        if submit {
            if submitted {
                continue;
            }
            submitted = true;
        } else if kind != "hidden" {
            continue;
        }
        if fields.len() < MAX_FORM_FIELDS {
            fields.push((name, value));
        }
    }
    Some(Form { action, fields })
}

/// An attribute's value (double- or single-quoted), with the basic entities decoded.
fn attr(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(rel) = lower[from..].find(name) {
        let i = from + rel;
        from = i + name.len();
        let before_ok = i > 0 && lower.as_bytes()[i - 1].is_ascii_whitespace();
        let rest = lower[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let value_start = tag.len() - rest.len() + 1;
        let value = tag[value_start..].trim_start();
        let quote = value.chars().next()?;
        let raw = if quote == '"' || quote == '\'' {
            let inner = &value[1..];
            &inner[..inner.find(quote)?]
        } else {
            let raw = value
                .split(|c: char| c.is_ascii_whitespace() || c == '>')
                .next()
                .unwrap_or("");
            // `<input value=c/>`: the slash closes the tag, it is not part of the value.
            if raw.len() > 1 && raw.ends_with('/') && value.trim_end() == raw {
                &raw[..raw.len() - 1]
            } else {
                raw
            }
        };
        return Some(
            raw.replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&"),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_post_form_is_read_with_hidden_fields_and_the_first_button() {
        let page = r#"<html><body><FORM method="POST" action="/consent?x=1&amp;y=2">
            <input type="hidden" name="txn" value="abc&quot;d">
            <input type="text" name="comment" value="no">
            <button type="submit" name="decision" value="allow">Allow</button>
            <button type="submit" name="decision" value="deny">Deny</button>
            </form></body></html>"#;
        let form = consent_form(page).expect("a form");
        assert_eq!(form.action, "/consent?x=1&y=2");
        assert_eq!(
            form.fields,
            vec![
                ("txn".to_owned(), "abc\"d".to_owned()),
                ("decision".to_owned(), "allow".to_owned())
            ]
        );
    }

    #[test]
    fn login_pages_and_pages_with_several_forms_are_not_submitted() {
        let login =
            r#"<form method="post" action="/login"><input type="password" name="p"></form>"#;
        assert_eq!(consent_form(login), None);
        let two = r#"<form method="post"></form><form method="post"></form>"#;
        assert_eq!(consent_form(two), None);
        let get = r#"<form method="get" action="/x"></form>"#;
        assert_eq!(consent_form(get), None);
    }

    #[test]
    fn hostile_markup_does_not_panic() {
        for page in [
            "<form",
            "<form method=post",
            "<form method='post'><input name='a",
            "<form method=post action=/a><input name=b value=c/></form>",
            "<form method=\"post\">\u{1b}<input name=\"é\" value=\"\u{0}\"></form>",
        ] {
            let _ = consent_form(page);
        }
        let unquoted =
            consent_form("<form method=post action=/a><input type=hidden name=b value=c></form>")
                .expect("form");
        assert_eq!(unquoted.action, "/a");
        assert_eq!(unquoted.fields, vec![("b".to_owned(), "c".to_owned())]);
    }
}
