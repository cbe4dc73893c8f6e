//! Webhook signing per the Standard Webhooks specification, the endpoints' event filters, and
//! the delivery retry schedule.
//!
//! A delivery carries `webhook-id` (stable across retries: the event's), `webhook-timestamp`
//! (Unix seconds of the attempt) and `webhook-signature`: `v1,<base64 HMAC-SHA256 of
//! "<id>.<timestamp>.<body>">` under the endpoint's secret, space-separated when a rotation
//! keeps the old secret valid, so a receiver's existing Standard Webhooks library verifies it.
//! Nothing here does I/O; the sender (issue 16) builds on it.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::error::{Error, Result};

/// The prefix of a secret as shown to its owner.
const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a new secret (the specification asks for 24 to 64).
const SECRET_BYTES: usize = 32;
/// How far a signature's timestamp may be from the receiver's clock (the specification's
/// suggested tolerance).
pub const TIMESTAMP_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// An endpoint's signing key. Its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    /// A new random secret.
    pub fn generate() -> Self {
        let mut bytes = vec![0; SECRET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        WebhookSecret(bytes)
    }

    /// Reads `whsec_<base64>` (the prefix is optional, as receiver libraries allow); the key
    /// must be 24 to 64 bytes.
    pub fn parse(text: &str) -> Result<Self> {
        let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        match STANDARD.decode(encoded) {
            Ok(bytes) if (24..=64).contains(&bytes.len()) => Ok(WebhookSecret(bytes)),
            _ => Err(Error::invalid("secret", "must be whsec_ and the base64 of 24 to 64 bytes")),
        }
    }

    /// The secret as its owner sees it once, and as it is stored: `whsec_<base64>`.
    pub fn reveal(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// `v1,<signature>` of one attempt's id, timestamp and body.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.mac(id, timestamp, body).finalize().into_bytes()))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// Whether `header` (space-separated `v1,…` signatures) holds this secret's signature of
    /// the attempt, compared in constant time.
    pub fn verifies(&self, header: &str, id: &str, timestamp: i64, body: &[u8]) -> bool {
        header.split(' ').filter_map(|s| s.strip_prefix("v1,")).any(|encoded| {
            STANDARD.decode(encoded).is_ok_and(|tag| self.mac(id, timestamp, body).verify_slice(&tag).is_ok())
        })
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

/// The `webhook-signature` header of an attempt: one signature per secret still valid (the
/// current one, and during a rotation the previous one), space-separated.
pub fn signature_header(secrets: &[&WebhookSecret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets.iter().map(|secret| secret.sign(id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// Checks a received attempt as a receiver would: the timestamp within
/// [`TIMESTAMP_TOLERANCE`] of `now` (Unix seconds) and a signature by one of `secrets`.
pub fn verify(
    secrets: &[&WebhookSecret],
    header: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
    now: i64,
) -> bool {
    let fresh = timestamp.abs_diff(now) <= TIMESTAMP_TOLERANCE.as_secs();
    fresh && secrets.iter().any(|secret| secret.verifies(header, id, timestamp, body))
}

/// An endpoint's event-type filter: `deal.stage_changed`, `deal.*` (every `deal.` event) or
/// `*` (every event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter(String);

impl EventFilter {
    /// Reads a filter; `field` names it in the error (`event_types[2]`).
    pub fn parse(field: &str, text: &str) -> Result<Self> {
        let word = |w: &str| {
            !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        let valid = text == "*"
            || match text.strip_suffix(".*") {
                Some(prefix) => prefix.split('.').all(word),
                None => text.contains('.') && text.split('.').all(word),
            };
        if valid && text.len() <= 100 {
            Ok(EventFilter(text.to_owned()))
        } else {
            Err(Error::invalid(field, "must be an event type (`deal.created`), a prefix and `.*`, or `*`"))
        }
    }

    /// Whether an event of `event_type` passes the filter.
    pub fn matches(&self, event_type: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => event_type.starts_with(prefix),
            None => self.0 == event_type,
        }
    }

    /// The filter as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for EventFilter {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// When a failed delivery is tried again, after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h,
/// 10 h, 14 h, 20 h, 24 h — about three days in all, then the delivery is dead. A `Retry-After`
/// on 429 or 503 is the floor of the next delay.
pub const DELIVERY_RETRIES: [Duration; 9] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(14 * 3600),
    Duration::from_secs(20 * 3600),
    Duration::from_secs(24 * 3600),
];

/// The delay before the next attempt after `failed` failed attempts (1 for the first), or
/// `None` when the schedule is spent.
pub fn delivery_retry(failed: u32) -> Option<Duration> {
    let index = usize::try_from(failed.checked_sub(1)?).ok()?;
    DELIVERY_RETRIES.get(index).copied()
}

/// The most of a receiver's answer a delivery log keeps, in bytes.
pub const RESPONSE_EXCERPT_BYTES: usize = 1024;
/// How long an attempt may take, connection to last byte.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest `Retry-After` honoured: a receiver cannot park a delivery for longer.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// One attempt's request: a POST of `body` (JSON) to `url` with the Standard Webhooks headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRequest {
    /// The endpoint's URL (`http` or `https`).
    pub url: String,
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature`, `content-type`.
    pub headers: Vec<(&'static str, String)>,
    /// The payload, `{type, timestamp, data}` as JSON.
    pub body: Vec<u8>,
}

impl WebhookRequest {
    /// The request of one attempt at message `id`, signed at `timestamp` (Unix seconds) by
    /// every secret still valid.
    pub fn signed(url: &str, id: &str, timestamp: i64, body: Vec<u8>, secrets: &[&WebhookSecret]) -> Self {
        let signature = signature_header(secrets, id, timestamp, &body);
        WebhookRequest {
            url: url.to_owned(),
            headers: vec![
                ("content-type", "application/json".to_owned()),
                ("webhook-id", id.to_owned()),
                ("webhook-timestamp", timestamp.to_string()),
                ("webhook-signature", signature),
            ],
            body,
        }
    }
}

/// What a receiver answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookResponse {
    /// The status code.
    pub status: u16,
    /// Its `Retry-After`, if it sent one that parses (seconds or an HTTP date), capped at
    /// [`MAX_RETRY_AFTER`].
    pub retry_after: Option<Duration>,
    /// The start of its body, at most [`RESPONSE_EXCERPT_BYTES`], as text.
    pub excerpt: String,
}

/// Why an attempt got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The URL or the address its host resolved to is not one the host allows (loopback,
    /// private, link-local, metadata…): nothing was sent.
    #[error("refused: {0}")]
    Refused(String),
    /// No answer within [`ATTEMPT_TIMEOUT`].
    #[error("no answer within the timeout")]
    Timeout,
    /// The name did not resolve, the connection failed or broke.
    #[error("connection failed: {0}")]
    Connection(String),
}

/// Sends attempts. The implementation decides where a request may go (`crm-http`'s
/// `WebhookClient` resolves the host once, refuses what the [`crate::outbound::OutboundPolicy`]
/// refuses, connects to the address it checked, follows no redirect); core decides what an
/// answer means ([`Verdict::of`]).
#[async_trait::async_trait]
pub trait WebhookTransport: Send + Sync + fmt::Debug + 'static {
    /// Sends one attempt.
    async fn send(&self, request: &WebhookRequest) -> std::result::Result<WebhookResponse, SendError>;
}

/// What an attempt's outcome means for the delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: delivered.
    Delivered,
    /// 410 Gone: the receiver wants no more; the endpoint is disabled.
    Gone,
    /// Anything else: tried again on the schedule, never sooner than `not_before` (a
    /// `Retry-After` on 429 or 503); a refused address is permanent.
    Failed(crate::job::Failure),
}

impl Verdict {
    /// The verdict on an attempt's outcome.
    pub fn of(outcome: &std::result::Result<WebhookResponse, SendError>) -> Self {
        use crate::job::Failure;
        match outcome {
            Ok(r) if (200..300).contains(&r.status) => Verdict::Delivered,
            Ok(r) if r.status == 410 => Verdict::Gone,
            Ok(r) => {
                let honoured = matches!(r.status, 429 | 503);
                let not_before = r.retry_after.filter(|_| honoured);
                Verdict::Failed(Failure {
                    not_before,
                    ..Failure::transient(format!("answered {}", r.status))
                })
            }
            Err(error @ SendError::Refused(_)) => Verdict::Failed(Failure::permanent(error.to_string())),
            Err(error) => Verdict::Failed(Failure::transient(error.to_string())),
        }
    }
}

/// Reads a `Retry-After` value: delay seconds, or an HTTP date (as from `now`), capped at
/// [`MAX_RETRY_AFTER`]; `None` when it is neither.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    let delay = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
            (at.with_timezone(&chrono::Utc) - now).to_std().unwrap_or_default()
        }
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Standard Webhooks reference vector, which every receiver library is tested against.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signatures_reproduce_the_specification_vector() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        assert_eq!(secret.sign(ID, TIMESTAMP, BODY), SIGNATURE);
        assert_eq!(secret.reveal(), SECRET);
        assert!(verify(&[&secret], SIGNATURE, ID, TIMESTAMP, BODY, TIMESTAMP + 60));
    }

    #[test]
    fn anything_changed_fails_verification() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let ok = |header: &str, id: &str, at: i64, body: &[u8], now: i64| {
            verify(&[&secret], header, id, at, body, now)
        };
        assert!(!ok(SIGNATURE, ID, TIMESTAMP, br#"{"test": 2432232315}"#, TIMESTAMP), "body");
        assert!(!ok(SIGNATURE, "msg_other", TIMESTAMP, BODY, TIMESTAMP), "id");
        assert!(!ok(SIGNATURE, ID, TIMESTAMP + 1, BODY, TIMESTAMP), "timestamp");
        assert!(!ok(SIGNATURE, ID, TIMESTAMP, BODY, TIMESTAMP + 301), "too old");
        assert!(!ok(SIGNATURE, ID, TIMESTAMP, BODY, TIMESTAMP - 301), "from the future");
        assert!(ok(SIGNATURE, ID, TIMESTAMP, BODY, TIMESTAMP + 300), "within tolerance");
        assert!(
            !ok("v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", ID, TIMESTAMP, BODY, TIMESTAMP),
            "scheme"
        );
        assert!(!ok("v1,not base64!", ID, TIMESTAMP, BODY, TIMESTAMP));
        let other = WebhookSecret::generate();
        assert!(!verify(&[&other], SIGNATURE, ID, TIMESTAMP, BODY, TIMESTAMP), "another secret");
    }

    #[test]
    fn a_rotation_sends_both_signatures_and_either_secret_verifies() {
        let (old, new) = (WebhookSecret::parse(SECRET).unwrap(), WebhookSecret::generate());
        let header = signature_header(&[&new, &old], ID, TIMESTAMP, BODY);
        assert_eq!(header.split(' ').count(), 2);
        assert!(header.ends_with(SIGNATURE));
        assert!(
            verify(&[&old], &header, ID, TIMESTAMP, BODY, TIMESTAMP),
            "a receiver still on the old secret"
        );
        assert!(verify(&[&new], &header, ID, TIMESTAMP, BODY, TIMESTAMP), "one already on the new");
    }

    #[test]
    fn secrets_are_random_prefixed_and_hidden_from_debug() {
        let (a, b) = (WebhookSecret::generate(), WebhookSecret::generate());
        assert_ne!(a, b);
        assert!(a.reveal().starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(&a.reveal()).unwrap(), a);
        assert_eq!(format!("{a:?}"), "WebhookSecret(…)");
        for bad in
            ["", "whsec_", "whsec_c2hvcnQ=", "whsec_***", &format!("whsec_{}", STANDARD.encode([0; 65]))]
        {
            assert!(WebhookSecret::parse(bad).is_err(), "{bad:?}");
        }
        assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok(), "the prefix is optional");
    }

    #[test]
    fn filters_match_exact_types_prefixes_and_everything() {
        let filter = |text: &str| EventFilter::parse("event_types[0]", text).unwrap();
        assert!(filter("deal.*").matches("deal.stage_changed") && !filter("deal.*").matches("deals.created"));
        assert!(!filter("deal.*").matches("lead.created") && !filter("deal.*").matches("deal"));
        assert!(
            filter("lead.created").matches("lead.created")
                && !filter("lead.created").matches("lead.created2")
        );
        assert!(filter("*").matches("task.completed"));
        for bad in ["", "deal", "deal.", "*.created", "Deal.*", "deal.**", "deal..x", "de al.x", "deal.*.x"] {
            let refused = EventFilter::parse("event_types[0]", bad).unwrap_err();
            assert_eq!(refused.field_errors()[0].field, "event_types[0]", "{bad:?}");
        }
    }

    #[test]
    fn retries_end_about_three_days_after_the_first_attempt() {
        assert_eq!(delivery_retry(0), None);
        assert_eq!(delivery_retry(1), Some(Duration::from_secs(5)));
        assert_eq!(delivery_retry(9), Some(Duration::from_secs(24 * 3600)));
        assert_eq!(delivery_retry(10), None);
        let total: Duration = DELIVERY_RETRIES.iter().sum();
        assert!(
            (Duration::from_secs(72 * 3600)..Duration::from_secs(80 * 3600)).contains(&total),
            "{total:?}"
        );
        assert!(DELIVERY_RETRIES.windows(2).all(|w| w[0] < w[1]), "gaps grow");
    }

    #[test]
    fn answers_decide_the_verdict() {
        use crate::job::Failure;
        let answer =
            |status, retry_after| Ok(WebhookResponse { status, retry_after, excerpt: String::new() });
        let later = Some(Duration::from_secs(120));
        assert_eq!(Verdict::of(&answer(200, None)), Verdict::Delivered);
        assert_eq!(Verdict::of(&answer(204, None)), Verdict::Delivered);
        assert_eq!(Verdict::of(&answer(410, None)), Verdict::Gone);
        let failed = |status, not_before| {
            Verdict::Failed(Failure { not_before, ..Failure::transient(format!("answered {status}")) })
        };
        assert_eq!(Verdict::of(&answer(429, later)), failed(429, later), "Retry-After honoured");
        assert_eq!(Verdict::of(&answer(503, later)), failed(503, later));
        assert_eq!(Verdict::of(&answer(500, later)), failed(500, None), "only on 429 and 503");
        assert_eq!(Verdict::of(&answer(302, None)), failed(302, None), "a redirect is not followed");
        let refused = Verdict::of(&Err(SendError::Refused("a private address".into())));
        assert_eq!(refused, Verdict::Failed(Failure::permanent("refused: a private address")));
        let Verdict::Failed(timeout) = Verdict::of(&Err(SendError::Timeout)) else { panic!() };
        assert!(!timeout.permanent);
    }

    #[test]
    fn retry_after_is_seconds_or_a_date_and_capped() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:27:00Z").unwrap().to_utc();
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now), Some(Duration::from_secs(60)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(Duration::ZERO), "past");
        assert_eq!(parse_retry_after("99999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn requests_carry_the_standard_headers_and_verify() {
        let (old, new) = (WebhookSecret::generate(), WebhookSecret::generate());
        let body = br#"{"type":"deal.created"}"#.to_vec();
        let request =
            WebhookRequest::signed("https://hooks.example/in", "msg_1", 1_700_000_000, body, &[&new, &old]);
        let header = |name: &str| request.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
        assert_eq!(header("content-type"), Some("application/json"));
        assert_eq!((header("webhook-id"), header("webhook-timestamp")), (Some("msg_1"), Some("1700000000")));
        let signature = header("webhook-signature").unwrap();
        assert_eq!(signature.split(' ').count(), 2, "both secrets sign during a rotation");
        for secret in [&old, &new] {
            assert!(verify(&[secret], signature, "msg_1", 1_700_000_000, &request.body, 1_700_000_010));
        }
    }
}
