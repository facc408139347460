//! Client checks (`C-…`): the framework's own client, run through its public API against a
//! sandbox configured per case, judged by what reached the wire.
//!
//! Why this shape: the specification's client requirements are about requests (what the
//! authorize URL carries, what the token endpoint receives, what header a FHIR call has) and
//! about reactions to server behaviour (refuse a wrong `state`, fall back when
//! discovery is missing, refresh once on `invalid_token`). The first kind is observed through a
//! [`RecordingHttpClient`](crate::recording::RecordingHttpClient); the second by switching the sandbox's behaviour and looking at the
//! client's result *and* at what it sent afterwards (an aborted launch must not have exchanged
//! its code).
//!
//! Every check starts its own sandbox, so checks cannot influence each other, and returns a
//! [`Status`] — a failure to set up is reported as a failure of the check, never a panic.
//!
//! A [`Harness`] decides how the client reaches the network. The default is the real transport;
//! tests put a tampering transport in front of the recording to show that each check notices
//! when the behaviour it checks is broken.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use smart_core::http::HttpClient;

use crate::model::{CheckDef, CheckResult, Status};

mod auth;
mod env;
mod errors;
mod launch;
mod refresh;

pub use env::{CLIENT_ID, CLIENT_SECRET};

/// A transport wrapper: gets the recording transport and returns the one the client uses.
pub type Wrap = Arc<dyn Fn(Arc<dyn HttpClient>) -> Arc<dyn HttpClient> + Send + Sync>;

/// How the client under test reaches the network.
///
/// ```
/// use smart_conformance::client_checks::Harness;
/// let harness = Harness::new();
/// # let _ = harness;
/// ```
#[derive(Clone, Default)]
pub struct Harness {
    wrap: Option<Wrap>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("wrapped", &self.wrap.is_some())
            .finish()
    }
}

impl Harness {
    /// The real transport, recorded.
    pub fn new() -> Harness {
        Harness::default()
    }

    /// Puts a transport built by `wrap` between the client and the recording, so that the
    /// recording (and the server) see what the wrapper sends. Tests use it to break behaviour
    /// on purpose: a wrapper that drops `code_challenge`, changes `aud`, replays a `jti`, …
    pub fn with_transport(
        wrap: impl Fn(Arc<dyn HttpClient>) -> Arc<dyn HttpClient> + Send + Sync + 'static,
    ) -> Harness {
        Harness {
            wrap: Some(Arc::new(wrap)),
        }
    }

    pub(crate) fn wrap(&self, recording: Arc<dyn HttpClient>) -> Arc<dyn HttpClient> {
        match &self.wrap {
            Some(w) => w(recording),
            None => recording,
        }
    }
}

/// A boxed check run.
pub type CheckFuture = Pin<Box<dyn Future<Output = Status> + Send>>;

/// One client check: its definition and how to run it.
#[derive(Clone, Copy)]
pub struct ClientCheck {
    /// What is checked.
    pub def: &'static CheckDef,
    run: fn(Harness) -> CheckFuture,
}

impl std::fmt::Debug for ClientCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCheck")
            .field("def", self.def)
            .finish()
    }
}

impl ClientCheck {
    /// Runs the check with `harness`.
    pub async fn run(&self, harness: &Harness) -> CheckResult {
        let status = (self.run)(harness.clone()).await;
        CheckResult::new(self.def, SUBJECT, status)
    }
}

/// The subject name of client check results.
pub const SUBJECT: &str = "client (generic adapter)";

macro_rules! client_check {
    ($name:ident, $id:literal, $level:ident, $title:literal, $reference:literal) => {
        pub(crate) static $name: $crate::model::CheckDef = $crate::model::CheckDef {
            id: $id,
            title: $title,
            reference: $reference,
            level: $crate::model::Level::$level,
            family: $crate::model::Family::Client,
        };
    };
}
pub(crate) use client_check;

macro_rules! entry {
    ($def:path, $f:path) => {
        ClientCheck {
            def: &$def,
            run: |h| Box::pin($f(h)),
        }
    };
}

/// Every client check, in id order.
///
/// ```
/// let ids: Vec<&str> = smart_conformance::client_checks::all().iter().map(|c| c.def.id).collect();
/// assert!(ids.contains(&"C-7.2") && ids.contains(&"C-E11"));
/// ```
pub fn all() -> Vec<ClientCheck> {
    vec![
        entry!(launch::C_01, launch::c_01),
        entry!(launch::C_02_1, launch::c_02_1),
        entry!(launch::C_02_2, launch::c_02_2),
        entry!(launch::C_02_3, launch::c_02_3),
        entry!(launch::C_04_1, launch::c_04_1),
        entry!(launch::C_04_2, launch::c_04_2),
        entry!(launch::C_06, launch::c_06),
        entry!(launch::C_07_1, launch::c_07_1),
        entry!(launch::C_07_2, launch::c_07_2),
        entry!(launch::C_07_3, launch::c_07_3),
        entry!(launch::C_07_4, launch::c_07_4),
        entry!(launch::C_08, launch::c_08),
        entry!(launch::C_09_1, launch::c_09_1),
        entry!(launch::C_09_2, launch::c_09_2),
        entry!(auth::C_10, auth::c_10),
        entry!(auth::C_11_1, auth::c_11_1),
        entry!(auth::C_11_2, auth::c_11_2),
        entry!(auth::C_11_3, auth::c_11_3),
        entry!(auth::C_12, auth::c_12),
        entry!(refresh::C_13_1, refresh::c_13_1),
        entry!(refresh::C_13_2, refresh::c_13_2),
        entry!(refresh::C_13_3, refresh::c_13_3),
        entry!(refresh::C_13_4, refresh::c_13_4),
        entry!(auth::C_16, auth::c_16),
        entry!(errors::C_E01, errors::c_e01),
        entry!(errors::C_E02, errors::c_e02),
        entry!(errors::C_E03, errors::c_e03),
        entry!(errors::C_E04, errors::c_e04),
        entry!(errors::C_E05, errors::c_e05),
        entry!(errors::C_E06, errors::c_e06),
        entry!(errors::C_E07, errors::c_e07),
        entry!(errors::C_E08, errors::c_e08),
        entry!(errors::C_E09, errors::c_e09),
        entry!(errors::C_E10, errors::c_e10),
        entry!(errors::C_E11, errors::c_e11),
        entry!(errors::C_E12, errors::c_e12),
        entry!(errors::C_E13, errors::c_e13),
        entry!(errors::C_E14, errors::c_e14),
        entry!(errors::C_E15, errors::c_e15),
        entry!(errors::C_E16, errors::c_e16),
        entry!(errors::C_E17, errors::c_e17),
        entry!(errors::C_E18, errors::c_e18),
        entry!(errors::C_E19, errors::c_e19),
        entry!(errors::C_E20, errors::c_e20),
        entry!(errors::C_E21, errors::c_e21),
        entry!(errors::C_E22, errors::c_e22),
        entry!(errors::C_E23, errors::c_e23),
        entry!(errors::C_E24, errors::c_e24),
        entry!(errors::C_E25, errors::c_e25),
    ]
}

/// The client check with id `id`.
///
/// ```no_run
/// use smart_conformance::client_checks::{self, Harness};
/// # async fn run() {
/// let check = client_checks::by_id("C-4.1").expect("a known id");
/// let result = check.run(&Harness::new()).await;
/// println!("{} {}", result.def.id, result.status.word());
/// # }
/// ```
pub fn by_id(id: &str) -> Option<ClientCheck> {
    all().into_iter().find(|c| c.def.id == id)
}

/// Runs every client check with the real transport, calling `progress` after each.
pub async fn run_all(mut progress: impl FnMut(&CheckResult)) -> Vec<CheckResult> {
    let harness = Harness::new();
    let mut out = Vec::new();
    for check in all() {
        let result = check.run(&harness).await;
        progress(&result);
        out.push(result);
    }
    out
}

/// Fails the enclosing check with a formatted message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return $crate::model::Status::Fail(format!($($arg)+));
        }
    };
}
pub(crate) use ensure;

/// Unwraps a `Result`, or fails the enclosing check with the error text (prefixed).
macro_rules! attempt {
    ($what:literal, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return $crate::model::Status::Fail(format!("{}: {}", $what, e)),
        }
    };
}
pub(crate) use attempt;
