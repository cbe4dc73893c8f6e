//! Opaque pagination cursors. Clients pass them back verbatim; their layout may change.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::Error;
use crate::store::TimeCursor;

const ID_CURSOR: u8 = 1;
const TIME_CURSOR: u8 = 2;

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
            let micros = i64::from_be_bytes(rest[..8].try_into().map_err(|_| invalid())?);
            let at = DateTime::<Utc>::from_timestamp_micros(micros).ok_or_else(invalid)?;
            if !crate::validate::YEARS.contains(&chrono::Datelike::year(&at)) {
                return Err(invalid());
            }
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
    }

    use crate::clock::Clock;
}
