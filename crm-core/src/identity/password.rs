//! Password policy (OWASP ASVS 5.0 V6) and Argon2id hashing on a bounded blocking pool.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::error::{Error, FieldError, Result};

/// Shortest password accepted, in characters (ASVS 5.0: at least 12).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted, in characters: far above ASVS's "at least 64", never truncated,
/// and bounded so a huge body cannot make hashing a denial of service.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Common passwords of at least 12 characters, refused outright (compared case-insensitively).
const COMMON: &str = include_str!("common-passwords.txt");

/// Checks a new password: length only (no composition rules), not a common password, and not
/// the user's own e-mail. Errors name the field `password`.
pub fn check_password_policy(password: &str, email: &str) -> Result<()> {
    let chars = password.chars().count();
    let message = if chars < MIN_PASSWORD_CHARS {
        format!("must be at least {MIN_PASSWORD_CHARS} characters")
    } else if chars > MAX_PASSWORD_CHARS {
        format!("must be at most {MAX_PASSWORD_CHARS} characters")
    } else if is_common(password) {
        "is one of the most common passwords; choose another".to_owned()
    } else if password.to_lowercase() == email.to_lowercase()
        || email.split('@').next().is_some_and(|local| local.eq_ignore_ascii_case(password))
    {
        "must not be your e-mail address".to_owned()
    } else {
        return Ok(());
    };
    Err(Error::Validation(vec![FieldError::new("password", message)]))
}

fn is_common(password: &str) -> bool {
    static SET: OnceLock<std::collections::HashSet<&'static str>> = OnceLock::new();
    let set = SET.get_or_init(|| COMMON.lines().map(str::trim).filter(|l| !l.is_empty()).collect());
    let lower = password.to_lowercase();
    let single_char = lower.chars().all(|c| lower.starts_with(c));
    single_char || set.contains(lower.as_str())
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB (default 19456 = 19 MiB, OWASP's minimum row).
    pub memory_kib: u32,
    /// Iterations (default 2).
    pub iterations: u32,
    /// Lanes (default 1).
    pub parallelism: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self { memory_kib: 19_456, iterations: 2, parallelism: 1 }
    }
}

impl Argon2Params {
    fn argon2(&self) -> Result<Argon2<'static>> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| Error::internal(format!("invalid argon2 parameters: {e}")))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// Whether a stored hash was made with weaker parameters (or another algorithm).
    pub fn is_outdated(&self, phc: &str) -> bool {
        let Ok(hash) = PasswordHash::new(phc) else { return true };
        let param = |name: &str| hash.params.get_decimal(name).unwrap_or(0);
        hash.algorithm.as_str() != "argon2id"
            || param("m") < self.memory_kib
            || param("t") < self.iterations
            || param("p") < self.parallelism
    }
}

/// Hashes and verifies passwords off the async runtime, at most `permits` at a time, so a burst
/// of logins queues instead of starving other requests of threads and memory (invariant 8).
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    params: Argon2Params,
    permits: Arc<Semaphore>,
    dummy: Arc<OnceLock<String>>,
}

impl PasswordHasher {
    /// A hasher running at most `concurrency` hashes at once.
    pub fn new(params: Argon2Params, concurrency: usize) -> Self {
        Self { params, permits: Arc::new(Semaphore::new(concurrency.max(1))), dummy: Arc::default() }
    }

    /// The parameters new hashes use.
    pub fn params(&self) -> Argon2Params {
        self.params
    }

    /// A PHC hash of `password` with a fresh random salt.
    pub async fn hash(&self, password: &str) -> Result<String> {
        let params = self.params;
        let password = password.to_owned();
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            params
                .argon2()?
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| Error::internal(e.to_string()))
        })
        .await
    }

    /// Whether `password` matches `phc`. With `None`, verifies against a fixed dummy hash and
    /// returns `false`, so an unknown account costs the same time as a wrong password.
    pub async fn verify(&self, password: &str, phc: Option<&str>) -> Result<bool> {
        let known = phc.is_some();
        let phc = match phc {
            Some(p) => p.to_owned(),
            None => self.dummy_hash().await?,
        };
        let password = password.to_owned();
        let ok = self
            .run(move || {
                let hash = PasswordHash::new(&phc).map_err(|e| Error::internal(e.to_string()))?;
                // Verify with the parameters the hash records, so old hashes still verify.
                Ok(Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
            })
            .await?;
        Ok(ok && known)
    }

    async fn dummy_hash(&self) -> Result<String> {
        if let Some(h) = self.dummy.get() {
            return Ok(h.clone());
        }
        let h = self.hash("dummy password for unknown accounts").await?;
        Ok(self.dummy.get_or_init(|| h).clone())
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        tokio::task::spawn_blocking(work).await.map_err(Error::internal)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_is_length_and_blocklist_only() {
        assert!(check_password_policy("correct horse battery", "a@b.co").is_ok());
        assert!(check_password_policy("Tr0ub4dor&3x", "a@b.co").is_ok());
        assert!(check_password_policy("short", "a@b.co").is_err());
        assert!(check_password_policy("Password1234", "a@b.co").is_err(), "common, any case");
        assert!(check_password_policy("aaaaaaaaaaaaaaaa", "a@b.co").is_err());
        assert!(check_password_policy("jane.doe.1234@example.com", "jane.doe.1234@example.com").is_err());
        assert!(
            check_password_policy(&"x".repeat(63).chars().chain("yz".chars()).collect::<String>(), "a@b.co")
                .is_ok()
        );
        assert!(check_password_policy(&"xy".repeat(600), "a@b.co").is_err());
        let err = check_password_policy("short", "a@b.co").unwrap_err();
        assert_eq!(err.field_errors()[0].field, "password");
    }

    #[tokio::test]
    async fn hashes_verify_and_report_outdated_parameters() {
        let weak = Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 };
        let hasher = PasswordHasher::new(weak, 2);
        let phc = hasher.hash("a long enough password").await.unwrap();
        assert!(hasher.verify("a long enough password", Some(&phc)).await.unwrap());
        assert!(!hasher.verify("a wrong password here", Some(&phc)).await.unwrap());
        assert!(!hasher.verify("a long enough password", None).await.unwrap());
        assert!(Argon2Params::default().is_outdated(&phc));
        assert!(!weak.is_outdated(&phc));
    }
}
