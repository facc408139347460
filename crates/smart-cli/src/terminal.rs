//! Writing for people: stdout that ends quietly when its reader goes away, stderr that never
//! panics, and the rules for what may go to a terminal.
//!
//! `smart … | head` closes the pipe after a few lines. `println!` panics on the resulting
//! `EPIPE`, which turned an ordinary pipeline into a crash report (and, for `smart fhir`, skipped
//! saving a refreshed session). Everything the CLI prints goes through [`print()`] instead: a
//! closed stdout ends all further output silently and the command finishes normally.
//!
//! Everything a server sends is attacker-controlled; [`clean`] escapes control characters (ESC
//! sequences, C1 controls, newlines) in such text before it is printed, and [`json_text`] does the
//! same for JSON output, where `serde_json` leaves C1 controls raw.

use std::borrow::Cow;
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

/// Set once stdout's reader has gone away; later output is dropped.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `text` to stdout and flushes. A closed pipe is not an error: the output is dropped and
/// so is all later output. Other failures (a full disk) are returned.
pub(crate) fn print(text: &str) -> io::Result<()> {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        other => other,
    }
}

/// `println!` that returns an `io::Result` instead of panicking on a closed pipe; see [`print()`].
macro_rules! outln {
    () => {
        $crate::terminal::print("\n")
    };
    ($($arg:tt)*) => {
        $crate::terminal::print(&format!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;

/// Writes one line to stderr, ignoring failures (there is nowhere left to report them).
pub(crate) fn eprint_line(text: &str) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{text}");
    let _ = err.flush();
}

/// Whether stderr is a terminal (a person is watching it).
pub(crate) fn stderr_is_terminal() -> bool {
    io::stderr().is_terminal()
}

/// Whether colour may be written to a stream: only a terminal, and never when `NO_COLOR` is set
/// to anything non-empty (<https://no-color.org>).
pub(crate) fn colour_allowed(stream_is_terminal: bool) -> bool {
    stream_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Server-supplied text made safe for a terminal: control characters escaped, one line.
pub(crate) fn clean(text: &str) -> Cow<'_, str> {
    smart_core::server_text::escape_controls(text)
}

/// Optional server text, or `-`.
pub(crate) fn clean_or_dash(text: Option<&str>) -> String {
    text.map(|t| clean(t).into_owned())
        .unwrap_or_else(|| "-".into())
}

/// Pretty JSON with every control character escaped. `serde_json` escapes C0 controls inside
/// strings but leaves C1 controls (U+0080–U+009F, which some terminals obey) and other invisible
/// formatting characters raw; they can only occur inside strings, where `\uXXXX` is equivalent.
pub(crate) fn json_text(value: &Value) -> Result<String, serde_json::Error> {
    let text = serde_json::to_string_pretty(value)?;
    if !text.chars().any(needs_json_escape) {
        return Ok(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if needs_json_escape(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Characters that JSON output escapes beyond what `serde_json` does: the same set
/// [`smart_core::server_text::escape_controls`] escapes, minus the whitespace JSON formatting
/// itself uses between tokens.
fn needs_json_escape(c: char) -> bool {
    if matches!(c, '\n' | ' ') {
        return false;
    }
    let mut buf = [0u8; 4];
    let s: &str = c.encode_utf8(&mut buf);
    matches!(smart_core::server_text::escape_controls(s), Cow::Owned(_))
}

/// Object keys whose values are credentials. A server that echoes one back (an introspection
/// response repeating the `token`, a token response with a stray `client_secret`) must not have
/// it printed.
const SECRET_KEYS: [&str; 10] = [
    "access_token",
    "refresh_token",
    "id_token",
    "token",
    "client_secret",
    "client_assertion",
    "assertion",
    "code",
    "code_verifier",
    "password",
];

/// Replaces the value of every credential-named key (see [`SECRET_KEYS`]), at any depth, with
/// `"[redacted]"`.
pub(crate) fn redact_secrets(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if SECRET_KEYS.iter().any(|s| key.eq_ignore_ascii_case(s)) && !v.is_null() {
                    *v = Value::String("[redacted]".into());
                } else {
                    redact_secrets(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_secrets),
        _ => {}
    }
}

/// Parses a `--scope` flag, printing a `warning:` line on stderr for each likely mistake (commas,
/// unknown resource types, permissions out of `cruds` order, near-misses of well-known scopes).
/// Warnings never stop the command: a server may well accept what looks odd here.
pub(crate) fn parse_scope_flag(flag: &str) -> smart_core::scope::Scopes {
    let (scopes, warnings) = smart_core::scope::Scopes::parse_with_warnings(flag);
    for warning in &warnings {
        eprint_line(&format!("warning: --scope: {warning}"));
    }
    scopes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_text_escapes_c1_controls_and_stays_json() {
        let value = serde_json::json!({"a": "x\u{9b}31m\u{1b}[2J\u{202e}y"});
        let text = json_text(&value).expect("json");
        assert!(!text.contains('\u{9b}') && !text.contains('\u{1b}') && !text.contains('\u{202e}'));
        let back: Value = serde_json::from_str(&text).expect("still JSON");
        assert_eq!(back, value);
    }

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let mut value = serde_json::json!({
            "active": true,
            "context": {"extras": {"Access_Token": "abc", "nested": [{"refresh_token": "r"}]}},
            "client_id": "app",
        });
        redact_secrets(&mut value);
        let text = value.to_string();
        assert!(!text.contains("abc") && !text.contains("\"r\""), "{text}");
        assert_eq!(value["client_id"], "app");
    }
}
