//! Opaque secrets (refresh tokens, API keys): random, shown once, stored as SHA-256 hashes.
//!
//! Each secret names its tenant and row id in clear, so the store can find the row with the
//! tenant set (Row-Level Security) and compare one hash — no table scan, no global index of hashes.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

const REFRESH_PREFIX: &str = "crt1";
const API_KEY_PREFIX: &str = "crm";

fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of a secret, hex. Secrets are 256-bit random, so a fast hash is enough (no salt or
/// stretching needed, unlike passwords).
pub(crate) fn hash_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two hashes in time independent of where they differ.
pub(crate) fn hashes_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A refresh token as handed to a client: `crt1.<tenant>.<id>.<secret>`.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshSecret {
    /// Tenant of the session.
    pub tenant: Uuid,
    /// Row id.
    pub id: Uuid,
    secret: String,
}

impl RefreshSecret {
    pub(crate) fn generate(tenant: Uuid, id: Uuid) -> Self {
        Self { tenant, id, secret: random_secret() }
    }

    /// Parses a presented token; `None` for anything malformed.
    pub fn parse(token: &str) -> Option<Self> {
        let mut parts = token.split('.');
        let (prefix, tenant, id, secret) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if prefix != REFRESH_PREFIX || parts.next().is_some() || secret.len() != 43 {
            return None;
        }
        Some(Self {
            tenant: Uuid::try_parse(tenant).ok()?,
            id: Uuid::try_parse(id).ok()?,
            secret: secret.into(),
        })
    }

    pub(crate) fn hash(&self) -> String {
        hash_secret(&self.secret)
    }

    /// The string to give the client (once).
    pub fn expose(&self) -> String {
        format!("{REFRESH_PREFIX}.{}.{}.{}", self.tenant.simple(), self.id.simple(), self.secret)
    }
}

impl fmt::Debug for RefreshSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshSecret")
            .field("tenant", &self.tenant)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// An API key as handed to its creator: `crm_<tenant>_<id>_<secret>`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeySecret {
    /// Tenant of the key.
    pub tenant: Uuid,
    /// Row id.
    pub id: Uuid,
    secret: String,
}

impl ApiKeySecret {
    pub(crate) fn generate(tenant: Uuid, id: Uuid) -> Self {
        Self { tenant, id, secret: random_secret() }
    }

    /// Parses a presented key; `None` for anything malformed.
    pub fn parse(key: &str) -> Option<Self> {
        let rest = key.strip_prefix(API_KEY_PREFIX)?.strip_prefix('_')?;
        if rest.len() != 32 + 1 + 32 + 1 + 43 || !rest.is_ascii() {
            return None;
        }
        let (tenant, id, secret) = (&rest[..32], &rest[33..65], &rest[66..]);
        if &rest[32..33] != "_" || &rest[65..66] != "_" {
            return None;
        }
        Some(Self {
            tenant: Uuid::try_parse(tenant).ok()?,
            id: Uuid::try_parse(id).ok()?,
            secret: secret.into(),
        })
    }

    pub(crate) fn hash(&self) -> String {
        hash_secret(&self.secret)
    }

    /// The string to give the creator (once).
    pub fn expose(&self) -> String {
        format!("{API_KEY_PREFIX}_{}_{}_{}", self.tenant.simple(), self.id.simple(), self.secret)
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeySecret")
            .field("tenant", &self.tenant)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_and_reject_tampering() {
        let (t, i) = (Uuid::now_v7(), Uuid::now_v7());
        let r = RefreshSecret::generate(t, i);
        assert_eq!(RefreshSecret::parse(&r.expose()), Some(r.clone()));
        assert!(RefreshSecret::parse(&format!("{}x", r.expose())).is_none());
        assert!(RefreshSecret::parse("crt1.a.b.c").is_none());
        let k = ApiKeySecret::generate(t, i);
        assert_eq!(ApiKeySecret::parse(&k.expose()), Some(k.clone()));
        assert!(ApiKeySecret::parse(&k.expose()[1..]).is_none());
        assert!(hashes_match(&k.hash(), &k.hash()) && !hashes_match(&k.hash(), &r.hash()));
        assert!(!format!("{k:?}{r:?}").contains(&k.secret));
    }
}
