//! Opaque pagination cursors. Clients pass them back verbatim; their layout may change.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::Error;
use crate::store::TimeCursor;

const ID_CURSOR: u8 = 1;
const TIME_CURSOR: u8 = 2;
const SORTED_CURSOR: u8 = 3;

/// A position in a list in a [`crate::store::Sort`] order: the last row's value (an instant, or
/// none) and its id.
///
/// Any cursor of this layout is a position in any order — a list given a cursor it did not make
/// starts after that position rather than refusing it, so every string the documented cursor
/// pattern admits is a cursor the server takes (a generated client or a fuzzer may send one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SortedCursor {
    pub(crate) at: Option<DateTime<Utc>>,
    pub(crate) id: Uuid,
}

/// Encodes a position in a sorted list.
pub(crate) fn encode_sorted(cursor: SortedCursor) -> String {
    let mut bytes = vec![SORTED_CURSOR];
    if let Some(at) = cursor.at {
        bytes.extend_from_slice(&at.timestamp_micros().to_be_bytes());
    }
    bytes.extend_from_slice(cursor.id.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes [`encode_sorted`]'s or [`encode_id`]'s output: an id cursor is a position without a
/// value.
pub(crate) fn decode_sorted(cursor: &str) -> Result<SortedCursor, Error> {
    let bytes = decode(cursor)?;
    let (at, id) = match bytes.as_slice() {
        [ID_CURSOR, id @ ..] => (None, id),
        [SORTED_CURSOR, id @ ..] if id.len() == 16 => (None, id),
        [SORTED_CURSOR, rest @ ..] if rest.len() == 24 => (Some(instant(&rest[..8])), &rest[8..]),
        _ => return Err(invalid()),
    };
    Ok(SortedCursor { at, id: Uuid::from_slice(id).map_err(|_| invalid())? })
}

/// An instant from 8 big-endian bytes of microseconds, brought within the years records hold.
fn instant(bytes: &[u8]) -> DateTime<Utc> {
    let micros = bytes.try_into().map_or(0, i64::from_be_bytes);
    let (first, last) = (*crate::validate::YEARS.start(), *crate::validate::YEARS.end());
    let earliest =
        chrono::NaiveDate::from_ymd_opt(first, 1, 1).unwrap_or_default().and_time(Default::default());
    let latest =
        chrono::NaiveDate::from_ymd_opt(last, 12, 31).unwrap_or_default().and_time(Default::default());
    let micros = micros.clamp(earliest.and_utc().timestamp_micros(), latest.and_utc().timestamp_micros());
    DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default()
}

/// Encodes a keyset position after `id`.
pub(crate) fn encode_id(id: Uuid) -> String {
    let mut bytes = vec![ID_CURSOR];
    bytes.extend_from_slice(id.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Encodes a position in a time-ordered stream.
pub(crate) fn encode_time(cursor: TimeCursor) -> String {
    let mut bytes = vec![TIME_CURSOR];
    bytes.extend_from_slice(&cursor.at.timestamp_micros().to_be_bytes());
    bytes.extend_from_slice(cursor.id.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes [`encode_time`]'s output.
pub(crate) fn decode_time(cursor: &str) -> Result<TimeCursor, Error> {
    let bytes = decode(cursor)?;
    match bytes.as_slice() {
        [TIME_CURSOR, rest @ ..] if rest.len() == 24 => {
            let at = instant(&rest[..8]);
            let id = Uuid::from_slice(&rest[8..]).map_err(|_| invalid())?;
            Ok(TimeCursor { at, id })
        }
        _ => Err(invalid()),
    }
}

fn decode(cursor: &str) -> Result<Vec<u8>, Error> {
    if cursor.len() > 64 {
        return Err(invalid());
    }
    URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())
}

fn invalid() -> Error {
    Error::invalid("cursor", "is not a cursor returned by this list")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let id = Uuid::now_v7();
        assert_eq!(decode_sorted(&encode_id(id)).unwrap().id, id);
        let tc = TimeCursor { at: crate::clock::SystemClock.now(), id };
        assert_eq!(decode_time(&encode_time(tc)).unwrap(), tc);
        assert!(decode_sorted(&encode_time(tc)).is_err());
        assert!(decode_sorted("!!!").is_err());
        assert!(decode_time("").is_err());
        for at in [None, Some(tc.at)] {
            let sorted = SortedCursor { at, id };
            assert_eq!(decode_sorted(&encode_sorted(sorted)).unwrap(), sorted);
        }
        assert_eq!(decode_sorted(&encode_id(id)).unwrap(), SortedCursor { at: None, id });
        // Any instant a well-formed cursor holds is brought within the years records hold.
        let far = [vec![SORTED_CURSOR], i64::MAX.to_be_bytes().to_vec(), id.as_bytes().to_vec()].concat();
        let far = decode_sorted(&URL_SAFE_NO_PAD.encode(far)).unwrap();
        assert_eq!(chrono::Datelike::year(&far.at.unwrap()), 9999);
    }

    use crate::clock::Clock;
}
