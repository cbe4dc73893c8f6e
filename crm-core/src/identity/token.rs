//! Access tokens: JWTs signed with HS256 (pinned), with `kid` for key rotation.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};

/// The one algorithm tokens are signed and accepted with; a token naming another is refused.
const ALGORITHM: Algorithm = Algorithm::HS256;

/// A named HMAC key. The name travels in each token's `kid` header.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    secret: Vec<u8>,
}

impl SigningKey {
    /// A key from its id and secret (at least 32 bytes).
    pub fn new(kid: impl Into<String>, secret: impl Into<Vec<u8>>) -> Result<Self> {
        let (kid, secret) = (kid.into(), secret.into());
        if secret.len() < 32 {
            return Err(Error::internal("a signing key needs at least 32 bytes of secret"));
        }
        if kid.is_empty() || kid.len() > 64 {
            return Err(Error::internal("a signing key id must be 1-64 characters"));
        }
        Ok(Self { kid, secret })
    }

    /// A random 256-bit key with a random id.
    pub fn generate() -> Self {
        let mut secret = vec![0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let mut kid = [0u8; 6];
        rand::rng().fill_bytes(&mut kid);
        Self { kid: kid.iter().map(|b| format!("{b:02x}")).collect(), secret }
    }

    /// The key's id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The secret, base64url, for storing the key (e.g. a development key file).
    pub fn secret_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.secret)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// The active signing key plus older keys that still verify (until their tokens expire).
#[derive(Clone)]
pub struct SigningKeys {
    keys: Vec<SigningKey>,
    /// Tokens these keys verified, with their claims (shared by clones, which hold the same keys).
    verified: Arc<Mutex<HashMap<Box<str>, AccessClaims>>>,
}

/// Verified tokens remembered at most: a client sends the same token with every request until
/// it expires, and checking it again (three JSON parses and an HMAC) was a tenth of the server's
/// CPU for a read. Whether a token verifies depends only on its bytes and the keys, so a token
/// found here is one that verified; its times are still checked at every use.
const VERIFIED_CAPACITY: usize = 4096;

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The remembered tokens are bearer secrets: never printed.
        f.debug_struct("SigningKeys").field("keys", &self.keys).finish_non_exhaustive()
    }
}

impl SigningKeys {
    /// `active` signs new tokens; `previous` only verify.
    pub fn new(active: SigningKey, previous: Vec<SigningKey>) -> Self {
        Self { keys: std::iter::once(active).chain(previous).collect(), verified: Arc::default() }
    }

    /// One random key (development and tests).
    pub fn generate() -> Self {
        Self::new(SigningKey::generate(), Vec::new())
    }

    fn active(&self) -> &SigningKey {
        &self.keys[0]
    }

    fn by_kid(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The user.
    pub sub: Uuid,
    /// The tenant.
    pub tid: Uuid,
    /// The role in that tenant when the token was issued.
    pub role: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expires.
    pub exp: i64,
    /// Token id.
    pub jti: Uuid,
}

impl SigningKeys {
    /// Signs claims with the active key.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String> {
        let key = self.active();
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(&key.secret)).map_err(Error::internal)
    }

    /// Verifies a token: known `kid`, HS256 only, valid signature, `iss` and `aud` as
    /// configured, and `exp`, `nbf`, `sub`, `iss`, `aud` all present, with `nbf <= now < exp`
    /// (5 s leeway). `now` comes from the caller's clock, so tests can move time.
    /// Every failure is `Unauthenticated`, with no detail to the caller.
    pub fn verify(&self, token: &str, issuer: &str, audience: &str, now: i64) -> Result<AccessClaims> {
        if token.len() > 4096 {
            return Err(Error::Unauthenticated);
        }
        let remembered = self.remembered().get(token).cloned();
        let claims = match remembered {
            Some(claims) if claims.iss == issuer && claims.aud == audience => claims,
            Some(_) => return Err(Error::Unauthenticated),
            None => {
                let claims = self.verify_signed(token, issuer, audience)?;
                let mut verified = self.remembered();
                if verified.len() >= VERIFIED_CAPACITY {
                    verified.retain(|_, c| c.exp > now);
                    if verified.len() >= VERIFIED_CAPACITY {
                        verified.clear();
                    }
                }
                verified.insert(token.into(), claims.clone());
                claims
            }
        };
        const LEEWAY: i64 = 5;
        if claims.nbf > now + LEEWAY || claims.exp <= now - LEEWAY {
            return Err(Error::Unauthenticated);
        }
        Ok(claims)
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, AccessClaims>> {
        // The map is never left half-changed, so a panic elsewhere does not spoil it.
        self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The signature, algorithm, key, issuer, audience and required claims (not the times).
    fn verify_signed(&self, token: &str, issuer: &str, audience: &str) -> Result<AccessClaims> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Error::Unauthenticated)?;
        if header.alg != ALGORITHM {
            return Err(Error::Unauthenticated);
        }
        let key = header.kid.as_deref().and_then(|kid| self.by_kid(kid)).ok_or(Error::Unauthenticated)?;
        let mut validation = Validation::new(ALGORITHM);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        // Times are checked by `verify`, against the injected clock rather than the system's.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        jsonwebtoken::decode::<AccessClaims>(token, &DecodingKey::from_secret(&key.secret), &validation)
            .map(|data| data.claims)
            .map_err(|_| Error::Unauthenticated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "crm";
    const AUD: &str = "crm-api";

    fn claims(now: i64) -> AccessClaims {
        AccessClaims {
            iss: ISS.into(),
            aud: AUD.into(),
            sub: Uuid::now_v7(),
            tid: Uuid::now_v7(),
            role: "admin".into(),
            iat: now,
            nbf: now,
            exp: now + 900,
            jti: Uuid::now_v7(),
        }
    }

    /// A token remembered as verified is still refused once expired, for another issuer or
    /// audience, and by keys that did not sign it; a changed byte is checked afresh.
    #[test]
    fn remembered_tokens_are_checked_like_new_ones() {
        let keys = SigningKeys::generate();
        let now = 1_000_000;
        let token = keys.sign(&claims(now)).unwrap();
        assert_eq!(keys.verify(&token, ISS, AUD, now).unwrap().exp, now + 900);
        assert_eq!(keys.verify(&token, ISS, AUD, now + 60).unwrap().exp, now + 900, "verified again");
        assert!(keys.verify(&token, ISS, AUD, now + 906).is_err(), "expired, though remembered");
        assert!(keys.verify(&token, "other", AUD, now).is_err(), "another issuer");
        assert!(keys.verify(&token, ISS, "other", now).is_err(), "another audience");
        assert!(SigningKeys::generate().verify(&token, ISS, AUD, now).is_err(), "another key set");

        let (head, signature) = token.rsplit_once('.').unwrap();
        let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
        let forged = format!("{head}.{flipped}{}", &signature[1..]);
        assert!(keys.verify(&forged, ISS, AUD, now).is_err(), "a changed signature");
        let early = keys.sign(&AccessClaims { nbf: now + 600, ..claims(now) }).unwrap();
        assert!(keys.verify(&early, ISS, AUD, now).is_err(), "not yet valid");
        assert!(keys.verify(&early, ISS, AUD, now + 600).is_ok(), "valid from nbf");
    }

    /// Remembering is bounded: many distinct tokens never hold more than the capacity.
    #[test]
    fn remembered_tokens_are_bounded() {
        let keys = SigningKeys::generate();
        let now = 1_000_000;
        for _ in 0..VERIFIED_CAPACITY + 10 {
            let token = keys.sign(&claims(now)).unwrap();
            keys.verify(&token, ISS, AUD, now).unwrap();
        }
        assert!(keys.remembered().len() <= VERIFIED_CAPACITY);
        assert!(!format!("{keys:?}").contains("eyJ"), "tokens never printed");
    }
}
