//! Access tokens: JWTs signed with HS256 (pinned), with `kid` for key rotation.

use std::fmt;

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
#[derive(Debug, Clone)]
pub struct SigningKeys {
    keys: Vec<SigningKey>,
}

impl SigningKeys {
    /// `active` signs new tokens; `previous` only verify.
    pub fn new(active: SigningKey, previous: Vec<SigningKey>) -> Self {
        Self { keys: std::iter::once(active).chain(previous).collect() }
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
        let header = jsonwebtoken::decode_header(token).map_err(|_| Error::Unauthenticated)?;
        if header.alg != ALGORITHM {
            return Err(Error::Unauthenticated);
        }
        let key = header.kid.as_deref().and_then(|kid| self.by_kid(kid)).ok_or(Error::Unauthenticated)?;
        let mut validation = Validation::new(ALGORITHM);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        // Times are checked below against the injected clock rather than the system's.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let claims =
            jsonwebtoken::decode::<AccessClaims>(token, &DecodingKey::from_secret(&key.secret), &validation)
                .map(|data| data.claims)
                .map_err(|_| Error::Unauthenticated)?;
        const LEEWAY: i64 = 5;
        if claims.nbf > now + LEEWAY || claims.exp <= now - LEEWAY {
            return Err(Error::Unauthenticated);
        }
        Ok(claims)
    }
}
