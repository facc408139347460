//! When and how long to wait before trying a request again.
//!
//! EHRs shed load with `429` and `503` (often with `Retry-After`), and gateways in front of them
//! produce `502`/`504` during deploys. Retrying those is what keeps a chart-review app working;
//! retrying *the wrong request* is what creates duplicate orders. So the client retries only
//! idempotent requests (GET, HEAD, PUT, DELETE, `POST _search`, and `POST` create with
//! `If-None-Exist`), with exponential backoff and full jitter (so a crowd of clients spreads
//! out), never sooner than the server's `Retry-After`, and within a total time budget.
//!
//! `Retry-After` is a number the server chooses, so it is clamped ([`MAX_RETRY_AFTER`]) when
//! read and every sum with it saturates: a server asking for `18446744073709551615` seconds gets
//! a clean [`FhirError::RateLimited`](crate::FhirError::RateLimited), not a panic.

use std::time::{Duration, SystemTime};

use rand::Rng as _;

/// The longest `Retry-After` kept (one day). Longer requests, in seconds or as a far-away
/// HTTP date, are read as this, so that [`FhirError::RateLimited`](crate::FhirError::RateLimited)
/// never carries a duration a caller cannot add to an `Instant`. (Any wait past the
/// [`RetryPolicy::budget`] is not made anyway.)
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// How the client retries idempotent requests on `429`, `502`, `503`, `504`, timeouts and
/// connection failures.
///
/// ```
/// use std::time::Duration;
/// use smart_fhir::RetryPolicy;
///
/// let patient = RetryPolicy {
///     max_attempts: 6,
///     budget: Duration::from_secs(60),
///     ..RetryPolicy::default()
/// };
/// assert_eq!(patient.initial_backoff, Duration::from_millis(250));
/// assert_eq!(RetryPolicy::none().max_attempts, 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (default 4). `1` disables retries.
    pub max_attempts: u32,
    /// The backoff ceiling before the first retry (default 250 ms); doubles per retry.
    pub initial_backoff: Duration,
    /// The largest backoff ceiling (default 10 s).
    pub max_backoff: Duration,
    /// Total time a request may take, retries and waits included (default 30 s). A retry that
    /// would wait past it is not made; the last error is returned instead.
    pub budget: Duration,
    /// Full jitter (default `true`): wait a random time between zero and the backoff ceiling.
    /// `false` waits the ceiling itself (deterministic, for tests).
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            budget: Duration::from_secs(30),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The wait before retry number `retry` (1 for the first retry), without `Retry-After`.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        let ceiling = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        if self.jitter && !ceiling.is_zero() {
            let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
            Duration::from_nanos(rand::thread_rng().gen_range(0..=nanos))
        } else {
            ceiling
        }
    }

    /// The wait before retry number `retry`: never less than `retry_after`.
    pub(crate) fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(server) => server,
            None => self.backoff(retry),
        }
    }
}

/// Parses `Retry-After`: delta-seconds or an HTTP-date (RFC 9110 §10.2.3), at most
/// [`MAX_RETRY_AFTER`]. A date in the past means "now"; any number of digits is a number of
/// seconds (too many for `u64` is simply long). Other values (negative, garbage) are ignored.
pub(crate) fn parse_retry_after(headers: &http::HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    // HTTP dates have whole seconds; round the wait up so we never come back early.
    let wait = at.duration_since(now).unwrap_or(Duration::ZERO);
    let rounded = if wait.subsec_nanos() > 0 {
        Duration::from_secs(wait.as_secs().saturating_add(1))
    } else {
        wait
    };
    Some(rounded.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    fn with_retry_after(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::RETRY_AFTER,
            HeaderValue::from_str(v).expect("value"),
        );
        h
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_retry_after(&with_retry_after("3"), now),
            Some(Duration::from_secs(3))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(5));
        assert_eq!(
            parse_retry_after(&with_retry_after(&later), now),
            Some(Duration::from_secs(5))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(5));
        assert_eq!(
            parse_retry_after(&with_retry_after(&past), now),
            Some(Duration::ZERO)
        );
        // Sub-second "now" rounds the wait up, never down.
        let now_frac = now + Duration::from_millis(300);
        assert_eq!(
            parse_retry_after(&with_retry_after(&later), now_frac),
            Some(Duration::from_secs(5))
        );
        assert_eq!(parse_retry_after(&with_retry_after("soon"), now), None);
        assert_eq!(parse_retry_after(&with_retry_after("-5"), now), None);
        assert_eq!(parse_retry_after(&with_retry_after("1.5"), now), None);
        for huge in [
            "18446744073709551615",
            "99999999999999999999999999",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            assert_eq!(
                parse_retry_after(&with_retry_after(huge), now),
                Some(MAX_RETRY_AFTER),
                "{huge}"
            );
        }
        assert_eq!(parse_retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_stays_below_it() {
        let fixed = RetryPolicy {
            jitter: false,
            max_backoff: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        assert_eq!(fixed.backoff(1), Duration::from_millis(250));
        assert_eq!(fixed.backoff(2), Duration::from_millis(500));
        assert_eq!(fixed.backoff(3), Duration::from_secs(1));
        assert_eq!(fixed.backoff(40), Duration::from_secs(1));
        let jittered = RetryPolicy::default();
        for retry in 1..6 {
            let ceiling = Duration::from_millis(250) * 2u32.pow(retry - 1);
            assert!(jittered.backoff(retry) <= ceiling);
        }
        assert_eq!(
            jittered.delay(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7),
            "Retry-After wins over a shorter backoff"
        );
    }
}
