//! Record times as JSON, written directly.
//!
//! chrono serializes a `DateTime<Utc>` through `fmt` into serde's `collect_str`, one small piece
//! at a time: a page of 50 leads spent a seventh of the server's CPU on its 100 timestamps. This
//! writes the same text — RFC 3339, `Z`, fractional seconds in 0, 3, 6 or 9 digits as chrono's
//! `SecondsFormat::AutoSi` — into a buffer, and falls back to chrono for what it does not cover
//! (years outside 0–9999, leap seconds).

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Serialize, Serializer};

/// `serialize_with` for a `DateTime<Utc>`: the text chrono's serde would write.
pub(crate) fn rfc3339<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let mut text = [0u8; 30];
    match write(at, &mut text) {
        // Only ASCII digits and separators are written.
        Some(len) => serializer.serialize_str(std::str::from_utf8(&text[..len]).unwrap_or_default()),
        None => at.serialize(serializer),
    }
}

/// Writes `at` into `out`, returning the length; `None` where chrono's own output is needed.
fn write(at: &DateTime<Utc>, out: &mut [u8; 30]) -> Option<usize> {
    let (year, nanos) = (at.year(), at.nanosecond());
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        return None;
    }
    out[..20].copy_from_slice(b"0000-00-00T00:00:00.");
    put(out, 0, year as u32, 4);
    put(out, 5, at.month(), 2);
    put(out, 8, at.day(), 2);
    put(out, 11, at.hour(), 2);
    put(out, 14, at.minute(), 2);
    put(out, 17, at.second(), 2);
    let len = match nanos {
        0 => 19,
        n if n % 1_000_000 == 0 => put(out, 20, n / 1_000_000, 3),
        n if n % 1_000 == 0 => put(out, 20, n / 1_000, 6),
        n => put(out, 20, n, 9),
    };
    out[len] = b'Z';
    Some(len + 1)
}

/// Writes `value` as `width` decimal digits at `at`, returning the position after them.
fn put(out: &mut [u8], at: usize, mut value: u32, width: usize) -> usize {
    for slot in out[at..at + width].iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
    at + width
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    /// The same text as chrono's serde for whole seconds, milli-, micro- and nanoseconds, the
    /// ends of the covered years, and the fallbacks.
    #[test]
    fn writes_what_chrono_writes() {
        let mut instants = vec![
            Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(-1, 6, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap(),
            chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
                .unwrap()
                .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
                .unwrap()
                .and_utc(),
        ];
        let mut seconds: i64 = 1_764_000_000;
        for i in 0..2_000u32 {
            seconds = seconds.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            // From 0000-01-01 to 9999-12-31.
            let secs = seconds.rem_euclid(253_402_300_799 + 62_167_219_200) - 62_167_219_200;
            let nanos = match i % 4 {
                0 => 0,
                1 => (i * 7_919 % 1_000) * 1_000_000,
                2 => (i * 104_729 % 1_000_000) * 1_000,
                _ => (u64::from(i) * 7_654_321 % 1_000_000_000) as u32,
            };
            instants.push(Utc.timestamp_opt(secs, nanos).unwrap());
        }
        for at in instants {
            let ours = {
                let mut out = serde_json::Serializer::new(Vec::new());
                super::rfc3339(&at, &mut out).unwrap();
                String::from_utf8(out.into_inner()).unwrap()
            };
            assert_eq!(ours, serde_json::to_string(&at).unwrap(), "{at:?}");
        }
    }
}
