//! Idempotency keys: a write retried with the same key runs at most once, and every retry gets
//! the first response back.
//!
//! A call goes claim → run → complete (or abandon). [`Crm::claim_idempotency_key`] stores a claim
//! for the key (in its own small transaction) and hands back a [`Scope`] that carries it. While
//! that scope is used, core *holds* each change set instead of committing it;
//! [`Crm::complete_idempotency_key`] then commits the held writes, their audit entries and
//! events **and** the recorded response in one transaction (invariant 5). So a response is
//! recorded if and only if its writes happened, and a crash at any point leaves either both or
//! neither.
//!
//! A claim that never completes (its request failed, or the process died) blocks twins with a
//! conflict for [`IdempotencyConfig::lease`], then may be taken over; its token check makes a
//! late completion of the old claim fail rather than run twice.

use std::future::Future;
use std::sync::{Arc, Mutex};

use chrono::Duration;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::Crm;
use crate::error::{Error, Result};
use crate::model::IdempotencyRecord;
use crate::scope::{Principal, Scope};
use crate::store::{ChangeSet, Store, Write};

/// The name validation errors give the key: the HTTP header it arrives in.
pub const IDEMPOTENCY_KEY_FIELD: &str = "Idempotency-Key";
/// The longest key accepted.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = crate::validate::MAX_KEY_LEN;

/// How long keys live and how long an unfinished claim blocks its twins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyConfig {
    /// How long a completed key replays its response (default 24 hours).
    pub retention: Duration,
    /// How long a claim without a response answers twins with a conflict before it may be
    /// taken over (default 60 seconds; keep it above the longest request).
    pub lease: Duration,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        Self { retention: Duration::hours(24), lease: Duration::seconds(60) }
    }
}

/// What claiming a key found.
#[derive(Debug)]
#[must_use]
pub enum IdempotencyClaim {
    /// The key is new (or expired): run the call with this scope, then complete or abandon it.
    Run(Scope),
    /// The key already completed with the same request: send this recorded response again.
    Replay(String),
}

/// The outcome of [`Crm::idempotent`].
#[derive(Debug, PartialEq)]
pub enum Idempotent<T> {
    /// The call ran now.
    Ran(T),
    /// An earlier call with the key ran; this is what it recorded.
    Replayed(String),
}

/// A claim carried by a [`Scope`]; clones share it.
#[derive(Clone)]
pub(crate) struct ClaimHandle(Arc<ClaimState>);

struct ClaimState {
    principal: String,
    key: String,
    token: Uuid,
    /// The change sets the call committed, held until completion (normally one).
    held: Mutex<Option<ChangeSet>>,
    /// Set once completed or abandoned; a claim dropped unfinished is released in the background.
    finished: std::sync::atomic::AtomicBool,
    store: Arc<dyn Store>,
    scope: Scope,
}

impl ClaimHandle {
    /// Holds `changes`, returning the change set held before (the call committed more than once:
    /// that one must be committed now, without the response).
    pub(crate) fn hold(&self, changes: ChangeSet) -> Option<ChangeSet> {
        let mut held = self.0.held.lock().unwrap_or_else(|e| e.into_inner());
        held.replace(changes)
    }

    fn take_held(&self) -> Option<ChangeSet> {
        self.0.held.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn finish(&self) {
        self.0.finished.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for ClaimState {
    fn drop(&mut self) {
        if self.finished.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        // The call was cancelled (e.g. a request timeout dropped it): free the key for a retry
        // now rather than after the lease. The held writes are discarded, like any write of a
        // cancelled call that had not committed.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let store = self.store.clone();
        let scope = self.scope.clone();
        let release = release_write(&self.principal, &self.key, self.token);
        runtime.spawn(async move {
            if let Err(error) = store.commit(&scope, release).await {
                tracing::warn!(%error, "could not release an abandoned idempotency key");
            }
        });
    }
}

impl std::fmt::Debug for ClaimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimHandle").field("key", &self.0.key).finish_non_exhaustive()
    }
}

/// Two scopes are equal only if they share the very same claim.
impl PartialEq for ClaimHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ClaimHandle {}

impl Crm {
    /// Claims `key` for the scope's principal, for the request described by `request` (the
    /// parts that make two requests "the same": method, path, body…).
    ///
    /// - a new or expired key → [`IdempotencyClaim::Run`] with a scope to run the call in;
    /// - a completed key with the same request → [`IdempotencyClaim::Replay`];
    /// - a key used with a different request → `Validation` naming `Idempotency-Key`;
    /// - a key whose first request is still running → `Conflict`.
    pub async fn claim_idempotency_key(
        &self,
        scope: &Scope,
        key: &str,
        request: &[&[u8]],
    ) -> Result<IdempotencyClaim> {
        check_idempotency_key(key)?;
        if scope.claim().is_some() {
            return Err(Error::internal("the scope already runs under an idempotency key"));
        }
        let principal = principal_key(scope.principal());
        let fingerprint = fingerprint(request);
        let config = self.inner.idempotency;
        // A twin may claim between our read and our write; the store then refuses ours with a
        // conflict and we look again (a few times at most: each loss means the twin progressed).
        for _ in 0..3 {
            let now = self.inner.clock.now();
            let replacing = match self.store_ref().idempotency_record(scope, &principal, key).await? {
                None => None,
                Some(found) if found.expires_at <= now => Some(found.token),
                Some(found) if found.fingerprint != fingerprint => {
                    return Err(Error::invalid(
                        IDEMPOTENCY_KEY_FIELD,
                        "this key was already used with a different request; use a new key",
                    ));
                }
                Some(IdempotencyRecord { response: Some(response), .. }) => {
                    return Ok(IdempotencyClaim::Replay(response));
                }
                Some(found) if found.locked_until > now => return Err(in_progress()),
                Some(found) => Some(found.token),
            };
            let token = self.inner.ids.new_id();
            let record = IdempotencyRecord {
                tenant_id: scope.tenant_id(),
                principal: principal.clone(),
                key: key.to_owned(),
                fingerprint: fingerprint.clone(),
                token,
                created_at: now,
                locked_until: now + config.lease,
                expires_at: now + config.retention,
                response: None,
            };
            let claim = ChangeSet {
                writes: vec![Write::ClaimIdempotencyKey { record, replacing }],
                ..ChangeSet::default()
            };
            match self.store_ref().commit(scope, claim).await {
                Ok(()) => {
                    let handle = ClaimHandle(Arc::new(ClaimState {
                        principal,
                        key: key.to_owned(),
                        token,
                        held: Mutex::new(None),
                        finished: Default::default(),
                        store: self.inner.store.clone(),
                        scope: scope.clone(),
                    }));
                    return Ok(IdempotencyClaim::Run(scope.clone().with_claim(handle)));
                }
                Err(Error::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(in_progress())
    }

    /// Commits what the call wrote under `scope`'s claim together with `response`, in one
    /// transaction. On error nothing of the call is written and the claim stays open: abandon it.
    pub async fn complete_idempotency_key(&self, scope: &Scope, response: String) -> Result<()> {
        let claim = scope.claim().ok_or_else(|| Error::internal("the scope holds no idempotency key"))?;
        let mut changes = claim.take_held().unwrap_or_default();
        changes.writes.push(Write::CompleteIdempotencyKey {
            principal: claim.0.principal.clone(),
            key: claim.0.key.clone(),
            token: claim.0.token,
            response,
        });
        self.apply(scope, changes).await?;
        claim.finish();
        Ok(())
    }

    /// Ends a claim whose call failed: what the call did commit is committed (as it would be
    /// without a key) and the key is freed, so a retry runs again.
    pub async fn abandon_idempotency_key(&self, scope: &Scope) -> Result<()> {
        let claim = scope.claim().ok_or_else(|| Error::internal("the scope holds no idempotency key"))?;
        let flushed = match claim.take_held() {
            Some(held) => self.apply(scope, held).await,
            None => Ok(()),
        };
        let released = self
            .store_ref()
            .commit(scope, release_write(&claim.0.principal, &claim.0.key, claim.0.token))
            .await;
        claim.finish();
        flushed.and(released)
    }

    /// Runs `call` at most once per `key`: the first time it runs and `record` turns its
    /// result into the text to replay; later calls with the same key and request get that text.
    /// For hosts calling the library directly; the HTTP adapter uses the three steps itself.
    pub async fn idempotent<T, F, Fut>(
        &self,
        scope: &Scope,
        key: &str,
        request: &[&[u8]],
        call: F,
        record: impl FnOnce(&T) -> String,
    ) -> Result<Idempotent<T>>
    where
        F: FnOnce(Scope) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let scope = match self.claim_idempotency_key(scope, key, request).await? {
            IdempotencyClaim::Replay(response) => return Ok(Idempotent::Replayed(response)),
            IdempotencyClaim::Run(scope) => scope,
        };
        match call(scope.clone()).await {
            Ok(value) => match self.complete_idempotency_key(&scope, record(&value)).await {
                Ok(()) => Ok(Idempotent::Ran(value)),
                Err(e) => {
                    // Nothing of the call was written; free the key. The first error is the one
                    // worth reporting.
                    let _ = self.abandon_idempotency_key(&scope).await;
                    Err(e)
                }
            },
            Err(e) => {
                let _ = self.abandon_idempotency_key(&scope).await;
                Err(e)
            }
        }
    }
}

fn release_write(principal: &str, key: &str, token: Uuid) -> ChangeSet {
    ChangeSet {
        writes: vec![Write::ReleaseIdempotencyKey {
            principal: principal.to_owned(),
            key: key.to_owned(),
            token,
        }],
        ..ChangeSet::default()
    }
}

fn in_progress() -> Error {
    Error::Conflict(crate::error::Conflict::InFlight)
}

/// Checks a key's form: 1–255 printable ASCII characters (a UUID is the usual choice).
/// [`Crm::claim_idempotency_key`] checks it too; adapters may call it before anything else.
pub fn check_idempotency_key(key: &str) -> Result<()> {
    if !crate::validate::is_printable_key(key) {
        return Err(Error::invalid(
            IDEMPOTENCY_KEY_FIELD,
            format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} printable ASCII characters"),
        ));
    }
    Ok(())
}

/// Keys belong to whoever used them: a user, or an API key (not the user who created it).
fn principal_key(principal: &Principal) -> String {
    match principal {
        Principal::User { user_id, .. } => format!("user:{user_id}"),
        Principal::ApiKey { key_id, .. } => format!("api_key:{key_id}"),
        Principal::System => "system".to_owned(),
    }
}

/// SHA-256 over the length-prefixed parts, so `["ab", "c"]` and `["a", "bc"]` differ.
fn fingerprint(parts: &[&[u8]]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
