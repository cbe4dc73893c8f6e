//! The login throttle rule: free attempts, then exponentially growing waits.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::model::LoginFailures;

/// Login lockout. Every attempt is counted *before* the password is checked (so a burst of
/// parallel guesses cannot all get through). After `account_free_failures` failures for one
/// key, the next attempt must wait `base_delay`, doubling with each further failure up to
/// `max_delay`. A successful login resets the account's count; a count also starts over once
/// its last failure is `forget_after` old.
///
/// Two keys are counted per tenant: the account (`account:<email>`, whether or not it exists,
/// so the rule reveals nothing) and the client (`client:<address>`, when the host passes one),
/// the latter with a larger allowance because many users may share an address, and not reset by
/// a success (so an attacker cannot reset it by logging in to their own account).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures allowed per account before waits begin (default 5).
    pub account_free_failures: i64,
    /// Failures allowed per client before waits begin (default 20).
    pub client_free_failures: i64,
    /// First wait (default 1 s).
    pub base_delay: Duration,
    /// Longest wait (default 15 min).
    pub max_delay: Duration,
    /// Failures older than this no longer count (default 1 h).
    pub forget_after: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            account_free_failures: 5,
            client_free_failures: 20,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(3600),
        }
    }
}

impl LockoutPolicy {
    /// Failures that still count at `now`.
    pub fn live_count(&self, failures: &LoginFailures, now: DateTime<Utc>) -> i64 {
        let forget = TimeDelta::from_std(self.forget_after).unwrap_or(TimeDelta::MAX);
        if failures.last_at.checked_add_signed(forget).is_some_and(|t| t < now) { 0 } else { failures.count }
    }

    /// The instant before which failures are forgotten.
    pub fn forget_before(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let forget = TimeDelta::from_std(self.forget_after).unwrap_or(TimeDelta::MAX);
        now.checked_sub_signed(forget).unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// How long until the next attempt is allowed, if it is not allowed now.
    pub fn wait(&self, failures: &LoginFailures, free: i64, now: DateTime<Utc>) -> Option<Duration> {
        let over = self.live_count(failures, now) - free + 1;
        if over <= 0 {
            return None;
        }
        let factor = 1u32.checked_shl((over - 1).min(30) as u32).unwrap_or(u32::MAX);
        let delay = self.base_delay.saturating_mul(factor).min(self.max_delay);
        let until =
            failures.last_at.checked_add_signed(TimeDelta::from_std(delay).unwrap_or(TimeDelta::MAX))?;
        (until > now).then(|| (until - now).to_std().unwrap_or(delay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_then_cap() {
        let p = LockoutPolicy::default();
        let now = Utc::now();
        let at = |count| LoginFailures { count, last_at: now };
        assert_eq!(p.wait(&at(4), 5, now), None);
        assert_eq!(p.wait(&at(5), 5, now), Some(Duration::from_secs(1)));
        assert_eq!(p.wait(&at(7), 5, now), Some(Duration::from_secs(4)));
        assert_eq!(p.wait(&at(100), 5, now), Some(Duration::from_secs(900)));
        assert_eq!(p.wait(&at(5), 5, now + TimeDelta::seconds(2)), None);
        assert_eq!(p.wait(&at(100), 5, now + TimeDelta::hours(2)), None, "old failures are forgotten");
    }
}
