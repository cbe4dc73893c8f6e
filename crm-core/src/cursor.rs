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

/// A position in a list in a [`crate::store::Sort`] order: which order (a code the list gives
/// its sort key and direction, so a cursor from another order is refused), the last row's
/// value (an instant, or none) and its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SortedCursor {
    pub(crate) order: u8,
    pub(crate) at: Option<DateTime<Utc>>,
    pub(crate) id: Uuid,
}

/// Encodes a position in a sorted list.
pub(crate) fn encode_sorted(cursor: SortedCursor) -> String {
    let mut bytes = vec![SORTED_CURSOR, cursor.order];
    if let Some(at) = cursor.at {
        bytes.extend_from_slice(&at.timestamp_micros().to_be_bytes());
    }
    bytes.extend_from_slice(cursor.id.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes [`encode_sorted`]'s output.
pub(crate) fn decode_sorted(cursor: &str) -> Result<SortedCursor, Error> {
    let bytes = decode(cursor)?;
    let [SORTED_CURSOR, order, rest @ ..] = bytes.as_slice() else { return Err(invalid()) };
    let (at, id) = match rest.len() {
        16 => (None, rest),
        24 => (Some(instant(&rest[..8])?), &rest[8..]),
        _ => return Err(invalid()),
    };
    Ok(SortedCursor { order: *order, at, id: Uuid::from_slice(id).map_err(|_| invalid())? })
}

/// An instant from 8 big-endian bytes of microseconds, within the years records may hold.
fn instant(bytes: &[u8]) -> Result<DateTime<Utc>, Error> {
    let micros = i64::from_be_bytes(bytes.try_into().map_err(|_| invalid())?);
    let at = DateTime::<Utc>::from_timestamp_micros(micros).ok_or_else(invalid)?;
    if !crate::validate::YEARS.contains(&chrono::Datelike::year(&at)) {
        return Err(invalid());
    }
    Ok(at)
}

/// Encodes a keyset position after `id`.
pub(crate) fn encode_id(id: Uuid) -> String {
    let mut bytes = vec![ID_CURSOR];
    bytes.extend_from_slice(id.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes [`encode_id`]'s output.
pub(crate) fn decode_id(cursor: &str) -> Result<Uuid, Error> {
    let bytes = decode(cursor)?;
    match bytes.as_slice() {
        [ID_CURSOR, rest @ ..] => Uuid::from_slice(rest).map_err(|_| invalid()),
        _ => Err(invalid()),
    }
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
            let at = instant(&rest[..8])?;
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
        assert_eq!(decode_id(&encode_id(id)).unwrap(), id);
        let tc = TimeCursor { at: crate::clock::SystemClock.now(), id };
        assert_eq!(decode_time(&encode_time(tc)).unwrap(), tc);
        assert!(decode_id(&encode_time(tc)).is_err());
        assert!(decode_id("!!!").is_err());
        assert!(decode_time("").is_err());
        for at in [None, Some(tc.at)] {
            let sorted = SortedCursor { order: 3, at, id };
            assert_eq!(decode_sorted(&encode_sorted(sorted)).unwrap(), sorted);
            assert!(decode_id(&encode_sorted(sorted)).is_err());
        }
        assert!(decode_sorted(&encode_id(id)).is_err());
        assert!(decode_sorted(&encode_time(tc)).is_err());
    }

    use crate::clock::Clock;
}
