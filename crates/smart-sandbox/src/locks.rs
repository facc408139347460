//! Mutex locking that survives poisoning.
//!
//! Every critical section in the sandbox validates before it mutates, so the
//! data behind a lock stays consistent even if a thread panicked while holding
//! it; a test helper that panicked must not take the whole sandbox down.

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, recovering the data if another thread panicked while
/// holding it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
