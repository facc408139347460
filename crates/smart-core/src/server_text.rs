//! Text a server sent, made safe to show a person.
//!
//! Everything an authorization or FHIR server returns is attacker-controlled: an
//! `error_description`, an OperationOutcome's `diagnostics`, an HTML error page, a header value.
//! Printed raw, such text can move the cursor, rewrite earlier lines, change the terminal's title
//! or hide a line behind bidirectional overrides. Every message this workspace builds from server
//! text goes through one of the functions here first:
//!
//! - [`escape_controls`] keeps the text but escapes C0 and C1 control characters (ESC included),
//!   DEL and the Unicode bidirectional and zero-width formatting characters, as `\u{..}`;
//! - [`excerpt`] is for a message: whitespace collapsed to single spaces, controls escaped, cut to
//!   a number of characters (at a character boundary) with `…` when cut;
//! - [`html_to_text`] turns an HTML error page into its visible text (tags, comments, scripts and
//!   styles dropped, entities decoded) before the excerpt is cut, so a cut never falls inside an
//!   entity or a tag.
//!
//! All three run in one pass over their input (linear time) and allocate at most a copy of it.
//!
//! ```
//! use smart_core::server_text::{excerpt, html_to_text};
//!
//! assert_eq!(excerpt("bad\x1b[2Jrequest\n\tnow", 80), "bad\\u{1b}[2Jrequest now");
//! assert_eq!(html_to_text("<h1>Unknown &amp; unwelcome</h1><p>client</p>", 80), "Unknown & unwelcome client");
//! ```

use std::borrow::Cow;
use std::fmt::Write as _;

/// Characters that must not reach a terminal as they are.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // bidirectional embeddings, overrides and isolates
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
            // zero-width and invisible formatting characters
            | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}'
            // line and paragraph separators
            | '\u{2028}' | '\u{2029}'
        )
}

fn push_escaped(out: &mut String, c: char) {
    // Writing to a String cannot fail.
    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
}

/// `text` with every control and invisible formatting character escaped as `\u{..}`.
///
/// Newlines and tabs are escaped too: the result is always one line. Borrowed when nothing needed
/// escaping.
///
/// ```
/// use smart_core::server_text::escape_controls;
///
/// assert_eq!(escape_controls("plain"), "plain");
/// assert_eq!(escape_controls("a\x1b]0;owned\x07b"), "a\\u{1b}]0;owned\\u{7}b");
/// assert_eq!(escape_controls("x\u{9b}31m"), "x\\u{9b}31m");
/// ```
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if needs_escape(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One line of at most `max_chars` characters (plus `…` when cut): runs of whitespace become one
/// space, other controls are escaped as in [`escape_controls`], leading and trailing whitespace is
/// dropped.
///
/// ```
/// use smart_core::server_text::excerpt;
///
/// assert_eq!(excerpt("  too   many\r\nspaces ", 80), "too many spaces");
/// assert_eq!(excerpt("abcdef", 3), "abc…");
/// ```
pub fn excerpt(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    let mut count = 0usize;
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            if count >= max_chars {
                out.push('…');
                return out;
            }
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        if count >= max_chars {
            out.push('…');
            return out;
        }
        if needs_escape(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
        count += 1;
    }
    out
}

/// Whether a body is most likely an HTML page (by its content type when known, else its start).
pub fn looks_like_html(content_type: Option<&str>, body: &str) -> bool {
    if let Some(ct) = content_type {
        let ct = ct.trim_start().to_ascii_lowercase();
        if ct.starts_with("text/html") || ct.starts_with("application/xhtml") {
            return true;
        }
        if ct.contains("json") {
            return false;
        }
    }
    let start = body.trim_start();
    let head: String = start
        .chars()
        .take(15)
        .collect::<String>()
        .to_ascii_lowercase();
    head.starts_with("<!doctype html") || head.starts_with("<html") || head.starts_with("<head")
}

/// The visible text of an HTML page as an [`excerpt`] of at most `max_chars` characters.
///
/// Tags and comments are dropped (each tag counts as a word break), the contents of `<script>`,
/// `<style>` and `<head>`'s `<title>` are kept only for `<title>`, entities (`&amp;`, `&#39;`,
/// `&#x1F600;`, …) are decoded before cutting, and decoded control characters are escaped like any
/// other.
///
/// ```
/// use smart_core::server_text::html_to_text;
///
/// let page = "<html><head><style>h1{}</style></head><body><h1>Bad&nbsp;request</h1>\
///             <script>alert(1)</script><p>redirect_uri &#x3c;unregistered&#62;</p></body></html>";
/// assert_eq!(html_to_text(page, 80), "Bad request redirect_uri <unregistered>");
/// ```
pub fn html_to_text(html: &str, max_chars: usize) -> String {
    let mut text = String::with_capacity(html.len().min(max_chars.saturating_mul(8)));
    let bytes = html.as_bytes();
    let mut i = 0usize;
    // Inside <script> or <style>: skip until the matching close tag.
    let mut skip_until: Option<&'static str> = None;
    // Stop collecting once far more than needed was gathered (keeps long pages cheap).
    let budget = max_chars.saturating_mul(4).saturating_add(64);
    while i < bytes.len() && text.len() < budget {
        let rest = &html[i..];
        if let Some(close) = skip_until {
            match find_ascii_ci(rest, close) {
                Some(at) => {
                    let after = at + close.len();
                    // Past the rest of the closing tag, `>` included.
                    i += rest[after..]
                        .find('>')
                        .map_or(rest.len(), |gt| after + gt + 1);
                    skip_until = None;
                    text.push(' ');
                    continue;
                }
                None => break,
            }
        }
        if rest.starts_with("<!--") {
            match rest.find("-->") {
                Some(end) => i += end + 3,
                None => break,
            }
            text.push(' ');
            continue;
        }
        if bytes[i] == b'<' {
            let end = match rest.find('>') {
                Some(end) => end,
                None => break,
            };
            let tag = &rest[1..end];
            let name: String = tag
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase();
            if !tag.starts_with('/') && !tag.ends_with('/') {
                if name == "script" {
                    skip_until = Some("</script");
                } else if name == "style" {
                    skip_until = Some("</style");
                }
            }
            i += end + 1;
            text.push(' ');
            continue;
        }
        if bytes[i] == b'&'
            && let Some((decoded, len)) = decode_entity(rest)
        {
            text.push(decoded);
            i += len;
            continue;
        }
        // Copy the run of ordinary characters up to the next markup byte.
        let run = rest
            .find(['<', '&'])
            .map_or(rest.len(), |n| if n == 0 { 1 } else { n });
        text.push_str(&rest[..run]);
        i += run;
    }
    excerpt(&text, max_chars)
}

/// Finds `needle` (ASCII, lower case) in `haystack`, ignoring ASCII case.
fn find_ascii_ci(haystack: &str, needle: &str) -> Option<usize> {
    let h = haystack.as_bytes();
    let n = needle.as_bytes();
    if n.is_empty() || h.len() < n.len() {
        return None;
    }
    (0..=h.len() - n.len()).find(|&at| h[at..at + n.len()].eq_ignore_ascii_case(n))
}

/// Decodes the entity at the start of `s` (which starts with `&`): the character and the bytes it
/// used. Unknown or malformed entities are left as text.
fn decode_entity(s: &str) -> Option<(char, usize)> {
    // Entities are short; never look further than this.
    let window = &s.as_bytes()[..s.len().min(12)];
    let semi = window.iter().position(|&b| b == b';')?;
    let body = &s[1..semi];
    let c = if let Some(num) = body.strip_prefix('#') {
        let value = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse::<u32>().ok()?,
        };
        char::from_u32(value).unwrap_or('\u{FFFD}')
    } else {
        match body {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            "nbsp" => ' ',
            _ => return None,
        }
    };
    Some((c, semi + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_c0_c1_del_and_bidi() {
        let s = "a\u{0}b\u{7f}c\u{85}d\u{202e}e\u{2066}f";
        assert_eq!(
            escape_controls(s),
            "a\\u{0}b\\u{7f}c\\u{85}d\\u{202e}e\\u{2066}f"
        );
    }

    #[test]
    fn excerpt_cuts_at_char_boundary() {
        assert_eq!(excerpt("ééééé", 2), "éé…");
        assert_eq!(excerpt("", 5), "");
        assert_eq!(excerpt("ab", 0), "…");
        assert_eq!(excerpt("ab  ", 2), "ab");
        assert_eq!(excerpt("ab cd", 2), "ab…");
    }

    #[test]
    fn html_entities_are_decoded_before_the_cut() {
        // The cut falls after the decoded `&`, never inside `&amp;`.
        assert_eq!(html_to_text("<p>a&amp;bcdef</p>", 2), "a&…");
        // A decoded escape character is escaped again.
        assert_eq!(html_to_text("<p>x&#27;[2Jy</p>", 40), "x\\u{1b}[2Jy");
        // Unknown and unterminated entities stay text.
        assert_eq!(html_to_text("<p>&bogus; &amp</p>", 40), "&bogus; &amp");
    }

    #[test]
    fn html_comments_scripts_and_unclosed_tags() {
        assert_eq!(
            html_to_text("<!-- hidden --><b>shown</b><SCRIPT>x()</SCRIPT>after", 40),
            "shown after"
        );
        assert_eq!(html_to_text("visible <unclosed", 40), "visible");
    }

    #[test]
    fn html_detection() {
        assert!(looks_like_html(Some("text/html; charset=utf-8"), "{}"));
        assert!(!looks_like_html(Some("application/fhir+json"), "<html>"));
        assert!(looks_like_html(None, "  <!DOCTYPE html><html>"));
        assert!(!looks_like_html(None, "plain words"));
    }

    #[test]
    fn linear_on_large_hostile_pages() {
        // Many unterminated entity starts and tags: each is looked at a bounded number of times.
        let page = "&".repeat(200_000) + &"<a>".repeat(200_000);
        let started = std::time::Instant::now();
        let text = html_to_text(&page, 100);
        assert!(text.chars().count() <= 101);
        // Generous: the quadratic version takes minutes on this input.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
