//! Calendar arithmetic, FHIR date parsing and HTTP dates, without a date
//! crate.
//!
//! The sandbox needs only a little: civil dates ↔ day numbers (Howard
//! Hinnant's algorithms, exact for the proleptic Gregorian calendar), FHIR
//! `date`/`dateTime`/`instant` values as half-open millisecond intervals (a
//! FHIR date *is* a range: `2023-05` means the whole of May, which is what the
//! search prefixes `eq`, `sa`, `eb` … compare), and IMF-fixdate strings for
//! `Last-Modified` and `Retry-After`. Pulling in `chrono` or `time` for that
//! would add weight to every build of a crate that is mostly used in tests.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The longest lifetime the sandbox accepts for anything it issues or
/// remembers: one year. Longer ones are refused when the sandbox starts (and
/// clamped when set at run time), so lifetime arithmetic cannot overflow.
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// `at + after`, or `at` pushed as far as [`MAX_LIFETIME`]
/// allows when the sum does not fit an `Instant` (never panics).
pub(crate) fn instant_after(at: Instant, after: Duration) -> Instant {
    at.checked_add(after)
        .or_else(|| at.checked_add(MAX_LIFETIME))
        .unwrap_or(at)
}

/// Seconds since the Unix epoch (0 if the clock is before 1970).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Milliseconds in a day.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// A half-open interval `[start, end)` of Unix milliseconds (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Interval {
    pub(crate) start: i64,
    pub(crate) end: i64,
}

impl Interval {
    /// `[start, start + len)`.
    pub(crate) fn at(start: i64, len: i64) -> Interval {
        Interval {
            start,
            end: start + len.max(1),
        }
    }

    /// Whether `self` lies entirely within `other`.
    pub(crate) fn within(&self, other: &Interval) -> bool {
        self.start >= other.start && self.end <= other.end
    }
}

/// Days since 1970-01-01 of a civil date.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a day number.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `YYYY-MM-DD`.
pub(crate) fn format_date(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(DAY_MS));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DDThh:mm:ssZ` (second precision).
pub(crate) fn format_date_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        format_date(ms),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// `YYYY-MM-DDThh:mm:ss.sssZ`, a FHIR `instant` (for `meta.lastUpdated`).
pub(crate) fn format_instant(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}.{:03}Z",
        format_date(ms),
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        ms.rem_euclid(1000)
    )
}

/// An IMF-fixdate (RFC 9110 §5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) fn http_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = ms.div_euclid(DAY_MS);
    let (y, m, d) = civil_from_days(days);
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m as usize).saturating_sub(1).min(11)],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Parses a strict `YYYY-MM-DD` into a day number.
pub(crate) fn parse_day(s: &str) -> Option<i64> {
    let i = parse_fhir_date(s)?;
    (s.len() == 10 && i.end - i.start == DAY_MS).then(|| i.start.div_euclid(DAY_MS))
}

fn digits(s: &str, n: usize) -> Option<i64> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Parses a FHIR `date`, `dateTime` or `instant` (also as used in search
/// values: `2023`, `2023-05`, `2023-05-01`, `2023-05-01T10:00`,
/// `2023-05-01T10:00:00.5+02:00` …) into the interval it denotes. Times
/// without a zone are taken as UTC (the server's zone).
pub(crate) fn parse_fhir_date(s: &str) -> Option<Interval> {
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut parts = date.split('-');
    let y = digits(parts.next()?, 4)?;
    let m = match parts.next() {
        Some(p) => Some(digits(p, 2)?),
        None => None,
    };
    let d = match parts.next() {
        Some(p) => Some(digits(p, 2)?),
        None => None,
    };
    if parts.next().is_some() {
        return None;
    }
    let Some(m) = m else {
        if time.is_some() {
            return None;
        }
        let start = days_from_civil(y, 1, 1) * DAY_MS;
        return Some(Interval {
            start,
            end: days_from_civil(y + 1, 1, 1) * DAY_MS,
        });
    };
    let m = u32::try_from(m).ok().filter(|m| (1..=12).contains(m))?;
    let Some(d) = d else {
        if time.is_some() {
            return None;
        }
        let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        return Some(Interval {
            start: days_from_civil(y, m, 1) * DAY_MS,
            end: days_from_civil(ny, nm, 1) * DAY_MS,
        });
    };
    let d = u32::try_from(d)
        .ok()
        .filter(|d| (1..=days_in_month(y, m)).contains(d))?;
    let day_start = days_from_civil(y, m, d) * DAY_MS;
    let Some(time) = time else {
        return Some(Interval::at(day_start, DAY_MS));
    };
    // Split off the zone designator.
    let (clock, offset_ms) = if let Some(c) = time.strip_suffix('Z') {
        (c, 0)
    } else if let Some(pos) = time.rfind(['+', '-']) {
        let (c, z) = time.split_at(pos);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let (hh, mm) = z.get(1..)?.split_once(':')?;
        let (hh, mm) = (digits(hh, 2)?, digits(mm, 2)?);
        if hh > 14 || mm > 59 {
            return None;
        }
        (c, sign * (hh * 3600 + mm * 60) * 1000)
    } else {
        (time, 0)
    };
    let mut fields = clock.split(':');
    let hh = digits(fields.next()?, 2)?;
    let mm = digits(fields.next()?, 2)?;
    let sec = fields.next();
    if fields.next().is_some() || hh > 23 || mm > 59 {
        return None;
    }
    let base = day_start + (hh * 3600 + mm * 60) * 1000 - offset_ms;
    let Some(sec) = sec else {
        return Some(Interval::at(base, 60_000));
    };
    let (whole, frac) = match sec.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (sec, None),
    };
    let ss = digits(whole, 2)?;
    if ss > 60 {
        return None;
    }
    let base = base + ss * 1000;
    match frac {
        None => Some(Interval::at(base, 1000)),
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            let ms: String = f.chars().chain("000".chars()).take(3).collect();
            let ms: i64 = ms.parse().ok()?;
            Some(Interval::at(base + ms, 1))
        }
        Some(_) => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for z in [-800_000, -1, 0, 1, 11_016, 19_000, 20_000, 2_000_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn formats() {
        let ms = 784_111_777_000; // 1994-11-06T08:49:37Z
        assert_eq!(http_date(ms), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(format_date_time(ms), "1994-11-06T08:49:37Z");
        assert_eq!(format_instant(ms + 42), "1994-11-06T08:49:37.042Z");
        assert_eq!(format_date(ms), "1994-11-06");
    }

    #[test]
    fn fhir_dates_are_ranges() {
        let day = parse_fhir_date("2023-05-01").unwrap();
        assert_eq!(day.end - day.start, DAY_MS);
        let year = parse_fhir_date("2023").unwrap();
        assert!(day.within(&year));
        let month = parse_fhir_date("2024-02").unwrap();
        assert_eq!(month.end - month.start, 29 * DAY_MS);
        let t = parse_fhir_date("2023-05-01T10:00:00Z").unwrap();
        assert!(t.within(&day));
        assert_eq!(t.end - t.start, 1000);
        let z = parse_fhir_date("2023-05-01T12:00:00+02:00").unwrap();
        assert_eq!(z, t);
        let minute = parse_fhir_date("2023-05-01T10:00").unwrap();
        assert_eq!(minute.end - minute.start, 60_000);
        let frac = parse_fhir_date("2023-05-01T10:00:00.5Z").unwrap();
        assert_eq!(frac.start, t.start + 500);
        for bad in [
            "",
            "23",
            "2023-13",
            "2023-02-30",
            "2023-5-1",
            "2023-05-01T25:00",
            "2023T10:00",
            "2023-05-01T10:00:00+2",
            "yesterday",
        ] {
            assert!(parse_fhir_date(bad).is_none(), "{bad}");
        }
        assert_eq!(parse_day("2024-01-02"), Some(days_from_civil(2024, 1, 2)));
        assert_eq!(parse_day("2024-01"), None);
    }
}
