//! What code logs, captured for assertions.
//!
//! Adapters report some quirks only as warnings (a scope list near a server's limit, a request
//! sent by POST), so their tests must read the log. [`warnings_logged`] runs a closure under a
//! WARN-level subscriber and returns the text; [`WarningLog`] does the same for async code that
//! runs on the current thread (`#[tokio::test]`'s default runtime).

use std::sync::{Arc, Mutex};

/// Runs `f` and returns what it logged at WARN and above, without colours.
///
/// ```
/// let text = smart_testkit::logs::warnings_logged(|| tracing::warn!("near the limit"));
/// assert!(text.contains("near the limit"));
/// ```
pub fn warnings_logged(f: impl FnOnce()) -> String {
    let log = WarningLog::default();
    tracing::subscriber::with_default(log.subscriber(), f);
    log.text()
}

/// A WARN-level log kept in memory; clones share it.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let log = smart_testkit::logs::WarningLog::default();
/// let guard = log.install();
/// async { tracing::warn!("dropped scope") }.await;
/// drop(guard);
/// assert!(log.text().contains("dropped scope"));
/// # });
/// ```
#[derive(Debug, Clone, Default)]
pub struct WarningLog(Arc<Mutex<Vec<u8>>>);

impl WarningLog {
    /// Makes it this thread's subscriber until the guard is dropped.
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        tracing::subscriber::set_default(self.subscriber())
    }

    /// What was logged so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + 'static {
        let sink = self.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish()
    }
}

impl std::io::Write for WarningLog {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(data);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
