//! Identity: passwords, access and refresh tokens, API keys, and the login throttle.
//!
//! Everything here is host-agnostic: a host that embeds `crm-core` without HTTP can register
//! users, log them in and check tokens through the [`crate::Crm`] services that use it.

mod password;
pub(crate) mod secret;
mod throttle;
mod token;

use std::time::Duration;

pub use password::{
    Argon2Params, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, PasswordHasher, check_password_policy,
};
pub use secret::{ApiKeySecret, RefreshSecret};
pub use throttle::LockoutPolicy;
pub use token::{AccessClaims, SigningKey, SigningKeys};

/// How identity behaves: token lifetimes and audience, password hashing cost, login lockout.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// `iss` of access tokens, checked on every verification.
    pub issuer: String,
    /// `aud` of access tokens, checked on every verification.
    pub audience: String,
    /// Access-token lifetime (default 15 minutes). A removed member or changed role takes
    /// effect for access tokens no later than this.
    pub access_ttl: Duration,
    /// Refresh-token lifetime (default 30 days).
    pub refresh_ttl: Duration,
    /// Signing keys; the first signs, all verify (rotation).
    pub keys: SigningKeys,
    /// Argon2id cost; hashes made with lower costs are upgraded at the next login.
    pub argon2: Argon2Params,
    /// When repeated failures lock an account or client out.
    pub lockout: LockoutPolicy,
}

impl Default for IdentityConfig {
    /// Defaults with a random signing key: fine for tests and development, but tokens do not
    /// survive a restart — production hosts set [`IdentityConfig::keys`].
    fn default() -> Self {
        Self {
            issuer: "crm".into(),
            audience: "crm".into(),
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            keys: SigningKeys::generate(),
            argon2: Argon2Params::default(),
            lockout: LockoutPolicy::default(),
        }
    }
}
