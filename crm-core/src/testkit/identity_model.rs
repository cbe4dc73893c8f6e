//! The identity property test: random sequences of membership, login, token and API-key
//! operations across two tenants, each checked against a small reference model.
//!
//! Every case registers two fresh tenants (their owners are users 0 and 1 of [`USERS`]), runs
//! fixed `SETUP` steps (users 0 and 2 join both tenants, tenant 1 gets a second owner, each member
//! logs in; user 3 exists only once a step adds it), and then runs 1–39 random operations: adding
//! members (with a good, a common or no password, sometimes as a non-admin), changing roles
//! (owner promotions and demotions included, sometimes with a stale version), removing members
//! (sometimes adding them straight back), logging in (with the right or a wrong password),
//! refreshing (sometimes with a spent token), logging out, creating and revoking API keys,
//! authenticating with tokens and keys obtained earlier, and letting time pass. Management
//! operations act through a scope obtained the way a host would: `scope_for` a user, an access
//! token obtained earlier, or an API key obtained earlier — so stale tokens of demoted or removed
//! members act too. After every step the test checks that
//!
//! - the outcome (`Ok`, `NotFound`, `Forbidden`, `Conflict`, `Validation`, `Unauthenticated`) is
//!   the model's, and returned members, sessions and keys match it;
//! - **every tenant still has at least one owner**, and its members and roles (and versions)
//!   equal the model's; its API keys (role, creator, revoked, use count) too;
//! - **no principal acts in a tenant it is not a member of**, beyond the documented bound:
//!   - every session from `login` and `refresh` is of a current member, with their current role;
//!     a member's refresh tokens stop at their removal, for good (even if they are added back);
//!   - every scope from an API key is of an unrevoked key of that tenant whose creator is still
//!     a member there with at least the key's role (a removal revokes the keys they created);
//!   - every access token held so far authenticates exactly while it is unexpired, with the
//!     tenant and role it was issued with. So for a member removed (or re-roled) after it was
//!     issued, a stale scope lives *at most the access-token lifetime*: the documented rule is
//!     that removal takes effect at access-token expiry, and immediately for refresh.
//!
//! Time moves in steps of [`UNIT`] (7 minutes), far from every expiry boundary: access tokens
//! (15 minutes) are valid for two units, refresh tokens ([`REFRESH_TTL`], 1 hour) for eight.
//! The login throttle is set out of reach here; [`super::identity`] tests it.
//!
//! The number of cases is `CRM_PROPTEST_CASES` (default 64); the run is reproducible with
//! `CRM_PROPTEST_SEED` (printed on failure), which seeds both proptest and the CRM's ids.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError, TestError, TestRunner};
use uuid::Uuid;

use super::{fail, message, must};
use crate::clock::{SequentialIds, SteppingClock};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::identity::{Argon2Params, IdentityConfig, LockoutPolicy};
use crate::model::{ApiKeyId, NewApiKey, NewMember};
use crate::scope::{Principal, Role, Scope, TenantId, UserId};
use crate::service::{Crm, Login, NewTenantInfo, Registration, Session};
use crate::store::Store;

/// Tenants created by every case.
pub const TENANTS: usize = 2;

/// Users of every case: 0 owns tenant 0, 1 owns tenant 1, 2 and 3 are created when added.
pub const USERS: usize = 4;

/// The step by which the clock moves.
pub const UNIT: Duration = Duration::from_secs(7 * 60);

/// Access-token lifetime (the default): valid for [`ACCESS_UNITS`] units.
const ACCESS_TTL: Duration = Duration::from_secs(15 * 60);

/// Units an access token stays valid: 2 × 7 min < 15 min + leeway < 3 × 7 min.
const ACCESS_UNITS: u32 = 2;

/// Refresh-token lifetime in this test.
pub const REFRESH_TTL: Duration = Duration::from_secs(60 * 60);

/// Units a refresh token stays valid: 8 × 7 min < 60 min < 9 × 7 min.
const REFRESH_UNITS: u32 = 8;

/// Cases run when `CRM_PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 64;

/// An id no row has.
const MISSING: Uuid = Uuid::from_u128(0x0bad_0bad_0bad_7bad_8bad_0bad_0bad_0bad);

/// A password the policy refuses (it is on the common list).
const COMMON_PASSWORD: &str = "123456789012";

/// Argon2id at its minimum cost: this test is about rules, not hashing strength.
const ARGON2: Argon2Params = Argon2Params { memory_kib: 8, iterations: 1, parallelism: 1 };

/// The identity configuration of the run: short refresh lifetime, cheap hashing, no lockout.
fn config() -> IdentityConfig {
    let never = i64::MAX / 4;
    IdentityConfig {
        access_ttl: ACCESS_TTL,
        refresh_ttl: REFRESH_TTL,
        argon2: ARGON2,
        lockout: LockoutPolicy {
            account_free_failures: never,
            client_free_failures: never,
            ..LockoutPolicy::default()
        },
        ..IdentityConfig::default()
    }
}

/// Runs the identity property test against the store `make` returns (called once; `None`
/// skips the test with a message on stderr). Every case works in its own fresh tenants of that
/// one store, through one deterministic [`Crm`].
///
/// Panics with the seed and the minimal failing sequence of operations when a case fails.
pub fn run<S, F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<S>>,
    S: Store,
{
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let Some(store) = rt.block_on(make()) else {
        eprintln!("SKIPPED identity property test: no store configured");
        return;
    };
    let cases =
        std::env::var("CRM_PROPTEST_CASES").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(DEFAULT_CASES);
    let seed =
        std::env::var("CRM_PROPTEST_SEED").ok().and_then(|v| v.trim().parse().ok()).unwrap_or_else(|| {
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
        });
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).single().expect("a valid time");
    let clock = SteppingClock::starting_at(start);
    let crm =
        Crm::builder(store).clock(clock.clone()).ids(SequentialIds::new(seed)).identity(config()).build();
    let config = Config {
        cases,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(seed),
        max_shrink_iters: 1024,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let case = Cell::new(0u64);
    let steps = Cell::new(0usize);
    let tally = Cell::new(Tally::default());
    let started = Instant::now();
    let result = runner.run(&proptest::collection::vec(op(), 1..40), |ops| {
        case.set(case.get() + 1);
        steps.set(steps.get() + ops.len());
        rt.block_on(Box::pin(run_case(&crm, &clock, seed, case.get(), &ops, &tally)))
    });
    match result {
        Ok(()) => {
            let [ok, not_found, forbidden, conflict, validation, unauthenticated] = tally.get();
            eprintln!(
                "identity property test: {cases} cases, {} steps in {:.1?} (CRM_PROPTEST_SEED={seed}); \
                 outcomes: {ok} ok, {not_found} not found, {forbidden} forbidden, {conflict} conflict, \
                 {validation} validation, {unauthenticated} unauthenticated",
                steps.get(),
                started.elapsed()
            )
        }
        Err(TestError::Fail(reason, ops)) => panic!(
            "identity property test failed (reproduce with CRM_PROPTEST_SEED={seed}):\n{}\n\
             minimal failing sequence ({} operations):\n{ops:#?}",
            reason.message(),
            ops.len()
        ),
        Err(TestError::Abort(reason)) => {
            panic!("identity property test aborted (CRM_PROPTEST_SEED={seed}): {}", reason.message())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Operations

/// How a management operation gets its scope: `scope_for` a user (in the operation's tenant), or
/// an access token or API key obtained earlier (in its own tenant). With no token or key held
/// yet, user 0 acts.
#[derive(Debug, Clone, Copy)]
enum Via {
    User(usize),
    Token(Index),
    Key(Index),
}

/// Whom to add as a member: a given user, or one who is not yet a member of the acting tenant
/// (any user when all are) — which makes re-adding a removed member likely.
#[derive(Debug, Clone, Copy)]
enum Target {
    User(usize),
    Newcomer(Index),
}

/// The password given when adding a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Password {
    /// The user's own, which passes the policy.
    Good,
    /// One on the common list.
    Common,
    /// None: the member cannot log in.
    Absent,
}

/// The version a removal states.
#[derive(Debug, Clone, Copy)]
enum Version {
    Unstated,
    Current,
    Stale,
}

/// One step of a case.
#[derive(Debug, Clone)]
enum Op {
    AddMember {
        via: Via,
        tenant: usize,
        user: Target,
        role: Role,
        password: Password,
    },
    ChangeRole {
        via: Via,
        tenant: usize,
        user: usize,
        role: Role,
        stale: bool,
    },
    Rejoin {
        via: Via,
        tenant: usize,
        user: usize,
        role: Role,
    },
    RemoveMember {
        via: Via,
        tenant: usize,
        user: usize,
        version: Version,
    },
    CreateKey {
        via: Via,
        tenant: usize,
        role: Role,
    },
    RevokeKey {
        via: Via,
        tenant: usize,
        key: Index,
    },
    Login {
        tenant: usize,
        user: usize,
        right_password: bool,
    },
    /// `spent_too`: pick among every refresh token (spent and revoked ones included: reuse),
    /// not only the live ones (unspent, of an unrevoked family).
    Refresh {
        token: Index,
        spent_too: bool,
    },
    Logout {
        token: Index,
    },
    Authenticate {
        token: Index,
    },
    UseKey {
        key: Index,
        tenant_swapped: bool,
    },
    Advance {
        units: u32,
    },
}

fn via() -> impl Strategy<Value = Via> {
    prop_oneof![
        3 => (0..USERS).prop_map(Via::User),
        2 => any::<Index>().prop_map(Via::Token),
        1 => any::<Index>().prop_map(Via::Key),
    ]
}

fn role() -> impl Strategy<Value = Role> {
    select(Role::ALL.to_vec())
}

fn op() -> impl Strategy<Value = Op> {
    let password =
        prop_oneof![6 => Just(Password::Good), 1 => Just(Password::Common), 1 => Just(Password::Absent)];
    let target = prop_oneof![
        1 => (0..USERS).prop_map(Target::User),
        2 => any::<Index>().prop_map(Target::Newcomer),
    ];
    let add = (via(), 0..TENANTS, target, role(), password)
        .prop_map(|(via, tenant, user, role, password)| Op::AddMember { via, tenant, user, role, password });
    let change = (via(), 0..TENANTS, 0..USERS, role(), proptest::bool::weighted(0.15))
        .prop_map(|(via, tenant, user, role, stale)| Op::ChangeRole { via, tenant, user, role, stale });
    let rejoin = (via(), 0..TENANTS, 0..USERS, role()).prop_map(|(via, tenant, user, role)| Op::Rejoin {
        via,
        tenant,
        user,
        role,
    });
    let version = select(vec![Version::Unstated, Version::Current, Version::Stale]);
    let remove = (via(), 0..TENANTS, 0..USERS, version)
        .prop_map(|(via, tenant, user, version)| Op::RemoveMember { via, tenant, user, version });
    let create_key =
        (via(), 0..TENANTS, role()).prop_map(|(via, tenant, role)| Op::CreateKey { via, tenant, role });
    let revoke_key =
        (via(), 0..TENANTS, any::<Index>()).prop_map(|(via, tenant, key)| Op::RevokeKey { via, tenant, key });
    let login = (0..TENANTS, 0..USERS, proptest::bool::weighted(0.8))
        .prop_map(|(tenant, user, right_password)| Op::Login { tenant, user, right_password });
    let refresh = (any::<Index>(), proptest::bool::weighted(0.3))
        .prop_map(|(token, spent_too)| Op::Refresh { token, spent_too });
    let logout = any::<Index>().prop_map(|token| Op::Logout { token });
    let authenticate = any::<Index>().prop_map(|token| Op::Authenticate { token });
    let use_key = (any::<Index>(), proptest::bool::weighted(0.15))
        .prop_map(|(key, tenant_swapped)| Op::UseKey { key, tenant_swapped });
    // Mostly short steps (stale access tokens), sometimes past every refresh token's lifetime.
    let advance =
        prop_oneof![4 => 1..=2u32, 1 => Just(REFRESH_UNITS + 1)].prop_map(|units| Op::Advance { units });
    prop_oneof![
        4 => add.boxed(),
        4 => change.boxed(),
        3 => remove.boxed(),
        1 => rejoin.boxed(),
        2 => create_key.boxed(),
        1 => revoke_key.boxed(),
        4 => login.boxed(),
        4 => refresh.boxed(),
        1 => logout.boxed(),
        3 => authenticate.boxed(),
        2 => use_key.boxed(),
        2 => advance.boxed(),
    ]
}

// ---------------------------------------------------------------------------------------------
// The reference model

/// What an operation came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    NotFound,
    Forbidden,
    Conflict,
    Validation,
    Unauthenticated,
}

/// Operations per [`Outcome`], in declaration order.
type Tally = [usize; 6];

struct UserModel {
    email: String,
    password: String,
    /// Set once the user exists.
    id: Option<UserId>,
    /// Whether the user has a password (members added without one have none).
    has_password: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MemberModel {
    role: Role,
    version: i64,
}

struct TenantModel {
    id: TenantId,
    /// Members by user index.
    members: BTreeMap<usize, MemberModel>,
}

/// An access token obtained by a step.
struct AccessModel {
    token: String,
    tenant: usize,
    user: usize,
    /// The role when it was issued, which it keeps.
    role: Role,
    /// The time unit it was issued in.
    issued: u32,
}

/// A refresh token obtained by a step.
#[derive(Clone)]
struct RefreshModel {
    token: String,
    tenant: usize,
    user: usize,
    /// Index into [`Model::families`].
    family: usize,
    used: bool,
    issued: u32,
}

/// What became of a refresh-token family (one login's chain of refresh tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    /// In use.
    Live,
    /// Revoked: logout, reuse, a refresh refused to a non-member, or the member's removal.
    Revoked,
}

/// An API key obtained by a step.
struct KeyModel {
    key: String,
    id: ApiKeyId,
    tenant: usize,
    role: Role,
    created_by: UserId,
    revoked: bool,
    uses: i64,
}

struct Model {
    users: Vec<UserModel>,
    tenants: Vec<TenantModel>,
    access: Vec<AccessModel>,
    refresh: Vec<RefreshModel>,
    /// What became of each refresh-token family.
    families: Vec<Family>,
    keys: Vec<KeyModel>,
    /// Time units passed since the case began.
    now: u32,
    /// Names keys uniquely.
    key_names: usize,
    tally: Tally,
}

/// A scope obtained for a management operation, with its tenant and role.
struct Acting {
    scope: Scope,
    tenant: usize,
    role: Role,
    /// Whether an API key acts (keys cannot create keys).
    by_key: bool,
}

/// Whether a role manages members and API keys under the default policy.
fn manages(role: Role) -> bool {
    matches!(role, Role::Owner | Role::Admin)
}

impl Model {
    fn user_id(&self, user: usize) -> UserId {
        self.users[user].id.unwrap_or(Id::from_uuid(MISSING))
    }

    fn member(&self, tenant: usize, user: usize) -> Option<MemberModel> {
        self.tenants[tenant].members.get(&user).copied()
    }

    /// Whether the tenant has an owner other than `user`.
    fn another_owner(&self, tenant: usize, user: usize) -> bool {
        self.tenants[tenant].members.iter().any(|(&u, m)| u != user && m.role == Role::Owner)
    }

    /// Whether an API key authenticates: unrevoked, and its creator still a member of its tenant
    /// with at least the key's power (roles order from most to least powerful).
    fn key_valid(&self, key: &KeyModel) -> bool {
        let creator = (0..USERS).find(|&u| self.users[u].id == Some(key.created_by));
        !key.revoked && creator.and_then(|u| self.member(key.tenant, u)).is_some_and(|m| m.role <= key.role)
    }

    fn access_valid(&self, access: &AccessModel) -> bool {
        self.now - access.issued <= ACCESS_UNITS
    }

    /// Checks that the call came to the predicted outcome, and counts it.
    fn check<T: Debug>(&mut self, result: &Result<T>, predicted: Outcome) -> Result<(), TestCaseError> {
        let got = outcome_of(result)?;
        prop_assert_eq!(
            got,
            predicted,
            "the model predicted {:?} but the call returned {:?}",
            predicted,
            result
        );
        self.tally[got as usize] += 1;
        Ok(())
    }

    /// Records a session a step obtained: its access token, and its refresh token in `family`
    /// (a new family when `None`).
    fn issued(&mut self, tenant: usize, user: usize, role: Role, session: Session, family: Option<usize>) {
        let family = family.unwrap_or_else(|| {
            self.families.push(Family::Live);
            self.families.len() - 1
        });
        let now = self.now;
        self.access.push(AccessModel { token: session.access_token, tenant, user, role, issued: now });
        let token = session.refresh_token;
        self.refresh.push(RefreshModel { token, tenant, user, family, used: false, issued: now });
    }
}

// ---------------------------------------------------------------------------------------------
// Running a case

fn outcome_of<T: Debug>(result: &Result<T>) -> Result<Outcome, TestCaseError> {
    Ok(match result {
        Ok(_) => Outcome::Ok,
        Err(Error::NotFound) => Outcome::NotFound,
        Err(Error::Forbidden) => Outcome::Forbidden,
        Err(Error::Conflict(_)) => Outcome::Conflict,
        Err(Error::Validation(fields)) if !fields.is_empty() => Outcome::Validation,
        Err(Error::Unauthenticated) => Outcome::Unauthenticated,
        Err(other) => return Err(fail(format!("unexpected error {other:?}"))),
    })
}

async fn run_case(
    crm: &Crm,
    clock: &SteppingClock,
    seed: u64,
    case: u64,
    ops: &[Op],
    tally: &Cell<Tally>,
) -> Result<(), TestCaseError> {
    let mut model = prelude(crm, seed, case).await.map_err(|e| fail(format!("setup: {}", message(e))))?;
    for op in SETUP {
        step(crm, clock, &mut model, &op).await.map_err(|e| fail(format!("setup {op:?}: {}", message(e))))?;
    }
    check_state(crm, &model).await.map_err(|e| fail(format!("after setup: {}", message(e))))?;
    for (i, op) in ops.iter().enumerate() {
        step(crm, clock, &mut model, op)
            .await
            .map_err(|e| fail(format!("step {i} {op:?}: {}", message(e))))?;
        check_state(crm, &model).await.map_err(|e| fail(format!("after step {i} {op:?}: {}", message(e))))?;
    }
    let mut total = tally.get();
    total.iter_mut().zip(model.tally).for_each(|(sum, n)| *sum += n);
    tally.set(total);
    Ok(())
}

/// Steps every case starts with, after registering its tenants: user 2 joins tenant 0 as an
/// admin and tenant 1 as a second owner, user 0 joins tenant 1 as a manager, and each of them
/// logs in there — so that from the first random step on there are members of both tenants,
/// owners who may be demoted (tenant 1) and a last owner who may not (tenant 0), and sessions of
/// members who may be removed. User 3 exists only once a random step adds it.
const SETUP: [Op; 6] = [
    Op::AddMember {
        via: Via::User(0),
        tenant: 0,
        user: Target::User(2),
        role: Role::Admin,
        password: Password::Good,
    },
    Op::AddMember {
        via: Via::User(1),
        tenant: 1,
        user: Target::User(2),
        role: Role::Owner,
        password: Password::Good,
    },
    Op::AddMember {
        via: Via::User(1),
        tenant: 1,
        user: Target::User(0),
        role: Role::Manager,
        password: Password::Good,
    },
    Op::Login { tenant: 0, user: 2, right_password: true },
    Op::Login { tenant: 1, user: 2, right_password: true },
    Op::Login { tenant: 1, user: 0, right_password: true },
];

/// Registers the case's tenants, with slugs and e-mails unique to the run and case.
async fn prelude(crm: &Crm, seed: u64, case: u64) -> Result<Model, TestCaseError> {
    let tag = format!("{:x}-{case}", seed as u32);
    let users: Vec<UserModel> = (0..USERS)
        .map(|u| UserModel {
            email: format!("user{u}@idm-{tag}.example"),
            password: format!("the passphrase of user {u} in {tag}"),
            id: None,
            has_password: false,
        })
        .collect();
    let mut model = Model {
        users,
        tenants: Vec::new(),
        access: Vec::new(),
        refresh: Vec::new(),
        families: Vec::new(),
        keys: Vec::new(),
        now: 0,
        key_names: 0,
        tally: Tally::default(),
    };
    for t in 0..TENANTS {
        let slug = format!("idm-{tag}-{t}");
        let owner = &model.users[t];
        let registration = Registration {
            email: owner.email.clone(),
            password: owner.password.clone(),
            name: format!("User {t}"),
            tenant: NewTenantInfo { name: format!("Identity {tag}/{t}"), slug },
        };
        let session = must("register", crm.register(registration).await)?;
        prop_assert_eq!(session.role, Role::Owner);
        model.users[t].id = Some(session.user.id);
        model.users[t].has_password = true;
        let members = BTreeMap::from([(t, MemberModel { role: Role::Owner, version: 1 })]);
        model.tenants.push(TenantModel { id: session.tenant.id, members });
        model.issued(t, t, Role::Owner, session, None);
    }
    Ok(model)
}

/// Compares the store with the model, and checks the two properties.
async fn check_state(crm: &Crm, model: &Model) -> Result<(), TestCaseError> {
    for (t, tm) in model.tenants.iter().enumerate() {
        let system = Scope::system(tm.id);
        let members = must("members", crm.members(&system).await)?;
        // Property 1: never a tenant without an owner.
        prop_assert!(
            members.iter().any(|m| m.role == Role::Owner),
            "tenant {} has no owner: {:?}",
            t,
            members
        );
        let got: BTreeMap<UserId, MemberModel> =
            members.iter().map(|m| (m.user.id, MemberModel { role: m.role, version: m.version })).collect();
        prop_assert_eq!(got.len(), members.len(), "a member is listed twice");
        let want: BTreeMap<UserId, MemberModel> =
            tm.members.iter().map(|(&u, m)| (model.user_id(u), *m)).collect();
        prop_assert_eq!(got, want, "members of tenant {} differ", t);

        let keys = must("api_keys", crm.api_keys(&system).await)?;
        let got: Vec<(ApiKeyId, Role, UserId, bool, i64)> =
            keys.iter().map(|k| (k.id, k.role, k.created_by, k.revoked_at.is_some(), k.use_count)).collect();
        let want: Vec<(ApiKeyId, Role, UserId, bool, i64)> = model
            .keys
            .iter()
            .filter(|k| k.tenant == t)
            .map(|k| (k.id, k.role, k.created_by, k.revoked, k.uses))
            .collect();
        prop_assert_eq!(got, want, "API keys of tenant {} differ", t);
    }
    // Property 2, for access tokens: each works exactly while unexpired, for its own tenant and
    // role — and so never longer than its lifetime for anyone no longer a member.
    for access in &model.access {
        let result = crm.authenticate(&access.token);
        let predicted = if model.access_valid(access) { Outcome::Ok } else { Outcome::Unauthenticated };
        prop_assert_eq!(
            outcome_of(&result)?,
            predicted,
            "an access token {} units old",
            model.now - access.issued
        );
        if let Ok(scope) = result {
            check_access_scope(model, access, &scope)?;
        }
    }
    Ok(())
}

/// An access token's scope: its tenant and its user with the role it was issued with, who is a
/// member there — or was removed less than an access-token lifetime ago.
fn check_access_scope(model: &Model, access: &AccessModel, scope: &Scope) -> Result<(), TestCaseError> {
    prop_assert_eq!(scope.tenant_id(), model.tenants[access.tenant].id);
    let user_id = model.user_id(access.user);
    prop_assert_eq!(scope.principal(), &Principal::User { user_id, role: access.role });
    let member = model.member(access.tenant, access.user).is_some();
    prop_assert!(
        member || model.now - access.issued <= ACCESS_UNITS,
        "a non-member's access token authenticated after its lifetime"
    );
    Ok(())
}

/// A session from login or refresh: a current member of its tenant, with their current role.
fn check_session(
    model: &Model,
    tenant: usize,
    user: usize,
    session: &Session,
) -> Result<Role, TestCaseError> {
    let Some(member) = model.member(tenant, user) else {
        return Err(fail("a session was issued to a non-member"));
    };
    prop_assert_eq!(session.user.id, model.user_id(user));
    prop_assert_eq!(session.tenant.id, model.tenants[tenant].id);
    prop_assert_eq!(session.role, member.role, "a session carries a role other than the member's");
    Ok(member.role)
}

/// Runs one operation, predicting its outcome first and updating the model after.
async fn step(crm: &Crm, clock: &SteppingClock, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    match *op {
        Op::AddMember { via, tenant, user, role, password } => {
            Box::pin(add_member(crm, model, via, tenant, user, role, password)).await
        }
        Op::ChangeRole { via, tenant, user, role, stale } => {
            Box::pin(change_role(crm, model, via, tenant, user, role, stale)).await
        }
        Op::RemoveMember { via, tenant, user, version } => {
            Box::pin(remove_member(crm, model, via, tenant, user, version)).await
        }
        Op::Rejoin { via, tenant, user, role } => Box::pin(rejoin(crm, model, via, tenant, user, role)).await,
        Op::CreateKey { via, tenant, role } => Box::pin(create_key(crm, model, via, tenant, role)).await,
        Op::RevokeKey { via, tenant, key } => Box::pin(revoke_key(crm, model, via, tenant, key)).await,
        Op::Login { tenant, user, right_password } => {
            Box::pin(login(crm, model, tenant, user, right_password)).await
        }
        Op::Refresh { token, spent_too } => Box::pin(refresh(crm, model, token, spent_too)).await,
        Op::Logout { token } => Box::pin(logout(crm, model, token)).await,
        Op::Authenticate { token } => authenticate(crm, model, token),
        Op::UseKey { key, tenant_swapped } => Box::pin(use_key(crm, model, key, tenant_swapped)).await,
        Op::Advance { units } => {
            clock.advance(UNIT * units);
            model.now += units;
            Ok(())
        }
    }
}

/// Gets the scope `via` names; `None` (counted) when that is refused, as predicted.
async fn act(crm: &Crm, model: &mut Model, via: Via, tenant: usize) -> Result<Option<Acting>, TestCaseError> {
    let via = match via {
        Via::Token(_) if model.access.is_empty() => Via::User(0),
        Via::Key(_) if model.keys.is_empty() => Via::User(0),
        other => other,
    };
    match via {
        Via::User(user) => {
            let member = model.member(tenant, user);
            let predicted = if member.is_some() { Outcome::Ok } else { Outcome::Forbidden };
            let user_id = model.user_id(user);
            let result = crm.scope_for(model.tenants[tenant].id, user_id).await;
            model.check(&result, predicted)?;
            let (Ok(scope), Some(member)) = (result, member) else { return Ok(None) };
            prop_assert_eq!(scope.tenant_id(), model.tenants[tenant].id);
            prop_assert_eq!(scope.principal(), &Principal::User { user_id, role: member.role });
            Ok(Some(Acting { scope, tenant, role: member.role, by_key: false }))
        }
        Via::Token(index) => {
            let i = index.index(model.access.len());
            let predicted =
                if model.access_valid(&model.access[i]) { Outcome::Ok } else { Outcome::Unauthenticated };
            let result = crm.authenticate(&model.access[i].token);
            model.check(&result, predicted)?;
            let Ok(scope) = result else { return Ok(None) };
            let access = &model.access[i];
            check_access_scope(model, access, &scope)?;
            Ok(Some(Acting { scope, tenant: access.tenant, role: access.role, by_key: false }))
        }
        Via::Key(index) => {
            let i = index.index(model.keys.len());
            let predicted =
                if model.key_valid(&model.keys[i]) { Outcome::Ok } else { Outcome::Unauthenticated };
            let result = crm.authenticate_api_key(&model.keys[i].key).await;
            model.check(&result, predicted)?;
            let Ok(scope) = result else { return Ok(None) };
            let key = &mut model.keys[i];
            key.uses += 1;
            let principal = Principal::ApiKey { key_id: key.id, role: key.role, created_by: key.created_by };
            let (tenant, role) = (key.tenant, key.role);
            // Property 2, for API keys: a valid key (unrevoked, its creator a member with at least
            // its role) of the tenant the scope names.
            prop_assert_eq!(scope.principal(), &principal);
            prop_assert_eq!(scope.tenant_id(), model.tenants[tenant].id);
            Ok(Some(Acting { scope, tenant, role, by_key: true }))
        }
    }
}

async fn add_member(
    crm: &Crm,
    model: &mut Model,
    via: Via,
    tenant: usize,
    user: Target,
    role: Role,
    password: Password,
) -> Result<(), TestCaseError> {
    let Some(acting) = act(crm, model, via, tenant).await? else { return Ok(()) };
    add_as(crm, model, &acting, user, role, password).await
}

/// Adds a member as `acting`.
async fn add_as(
    crm: &Crm,
    model: &mut Model,
    acting: &Acting,
    user: Target,
    role: Role,
    password: Password,
) -> Result<(), TestCaseError> {
    let t = acting.tenant;
    let user = match user {
        Target::User(user) => user,
        Target::Newcomer(index) => {
            let newcomers: Vec<usize> = (0..USERS).filter(|&u| model.member(t, u).is_none()).collect();
            if newcomers.is_empty() { index.index(USERS) } else { newcomers[index.index(newcomers.len())] }
        }
    };
    let exists = model.users[user].id.is_some();
    let predicted = if !manages(acting.role) || (role == Role::Owner && acting.role != Role::Owner) {
        Outcome::Forbidden
    } else if exists && model.member(t, user).is_some() {
        Outcome::Conflict
    } else if !exists && password == Password::Common {
        Outcome::Validation
    } else {
        Outcome::Ok
    };
    let new = NewMember {
        email: model.users[user].email.clone(),
        name: format!("User {user}"),
        role,
        password: match password {
            Password::Good => Some(model.users[user].password.clone()),
            Password::Common => Some(COMMON_PASSWORD.into()),
            Password::Absent => None,
        },
    };
    let result = crm.add_member(&acting.scope, new).await;
    model.check(&result, predicted)?;
    if let Ok(member) = result {
        prop_assert_eq!(&member.user.email, &model.users[user].email);
        prop_assert_eq!((member.role, member.version), (role, 1));
        if let Some(id) = model.users[user].id {
            prop_assert_eq!(member.user.id, id, "an existing user was not reused");
        } else {
            model.users[user].id = Some(member.user.id);
            model.users[user].has_password = password == Password::Good;
        }
        model.tenants[t].members.insert(user, MemberModel { role, version: 1 });
    }
    Ok(())
}

async fn change_role(
    crm: &Crm,
    model: &mut Model,
    via: Via,
    tenant: usize,
    user: usize,
    role: Role,
    stale: bool,
) -> Result<(), TestCaseError> {
    let Some(acting) = act(crm, model, via, tenant).await? else { return Ok(()) };
    let t = acting.tenant;
    let current = model.member(t, user);
    let version = current.map_or(1, |m| m.version) - i64::from(stale);
    let predicted = (|| {
        if !manages(acting.role) {
            return Err(Outcome::Forbidden);
        }
        let current = current.ok_or(Outcome::NotFound)?;
        if (current.role == Role::Owner || role == Role::Owner) && acting.role != Role::Owner {
            return Err(Outcome::Forbidden);
        }
        if current.version != version {
            return Err(Outcome::Conflict);
        }
        if current.role == role {
            return Ok(current);
        }
        if current.role == Role::Owner && !model.another_owner(t, user) {
            return Err(Outcome::Conflict);
        }
        Ok(MemberModel { role, version: current.version + 1 })
    })();
    let result = crm.change_role(&acting.scope, model.user_id(user), Some(version), role).await;
    model.check(&result, predicted.err().unwrap_or(Outcome::Ok))?;
    if let (Ok(member), Ok(next)) = (result, predicted) {
        prop_assert_eq!(member.user.id, model.user_id(user));
        prop_assert_eq!((member.role, member.version), (next.role, next.version));
        model.tenants[t].members.insert(user, next);
    }
    Ok(())
}

async fn remove_member(
    crm: &Crm,
    model: &mut Model,
    via: Via,
    tenant: usize,
    user: usize,
    version: Version,
) -> Result<(), TestCaseError> {
    let Some(acting) = act(crm, model, via, tenant).await? else { return Ok(()) };
    remove_as(crm, model, &acting, user, version).await.map(drop)
}

/// An admin removes a member and, if that worked, adds them straight back with `role` (to reset
/// their access, say): the member's old sessions must stay ended.
async fn rejoin(
    crm: &Crm,
    model: &mut Model,
    via: Via,
    tenant: usize,
    user: usize,
    role: Role,
) -> Result<(), TestCaseError> {
    let Some(acting) = act(crm, model, via, tenant).await? else { return Ok(()) };
    if remove_as(crm, model, &acting, user, Version::Unstated).await? {
        add_as(crm, model, &acting, Target::User(user), role, Password::Absent).await?;
    }
    Ok(())
}

/// Removes a member as `acting`; `true` when that succeeded.
async fn remove_as(
    crm: &Crm,
    model: &mut Model,
    acting: &Acting,
    user: usize,
    version: Version,
) -> Result<bool, TestCaseError> {
    let t = acting.tenant;
    let current = model.member(t, user);
    let current_version = current.map_or(1, |m| m.version);
    let stated = match version {
        Version::Unstated => None,
        Version::Current => Some(current_version),
        Version::Stale => Some(current_version - 1),
    };
    let predicted = (|| {
        if !manages(acting.role) {
            return Outcome::Forbidden;
        }
        let Some(current) = current else { return Outcome::NotFound };
        if current.role == Role::Owner && acting.role != Role::Owner {
            return Outcome::Forbidden;
        }
        if stated.is_some_and(|v| v != current.version) {
            return Outcome::Conflict;
        }
        if current.role == Role::Owner && !model.another_owner(t, user) {
            return Outcome::Conflict;
        }
        Outcome::Ok
    })();
    let result = crm.remove_member(&acting.scope, model.user_id(user), stated).await;
    model.check(&result, predicted)?;
    if result.is_ok() {
        model.tenants[t].members.remove(&user);
        // Removal revokes the member's sessions in the tenant and the API keys they created, for
        // good: nothing they held works again, even once they are added back.
        for r in &model.refresh {
            if r.tenant == t && r.user == user {
                model.families[r.family] = Family::Revoked;
            }
        }
        let user_id = model.user_id(user);
        for key in model.keys.iter_mut().filter(|k| k.tenant == t && k.created_by == user_id) {
            key.revoked = true;
        }
        return Ok(true);
    }
    Ok(false)
}

async fn create_key(
    crm: &Crm,
    model: &mut Model,
    via: Via,
    tenant: usize,
    role: Role,
) -> Result<(), TestCaseError> {
    let Some(acting) = act(crm, model, via, tenant).await? else { return Ok(()) };
    let predicted = if !manages(acting.role) {
        Outcome::Forbidden
    } else if role == Role::Owner {
        Outcome::Validation
    } else if acting.by_key {
        Outcome::Forbidden
    } else {
        Outcome::Ok
    };
    model.key_names += 1;
    let new = NewApiKey { name: format!("key {}", model.key_names), role };
    let result = crm.create_api_key(&acting.scope, new).await;
    model.check(&result, predicted)?;
    if let Ok(created) = result {
        let Some(created_by) = acting.scope.user_id() else {
            return Err(fail("a key was created by a scope with no user"));
        };
        let key = &created.api_key;
        prop_assert_eq!((key.role, key.created_by, key.use_count), (role, created_by, 0));
        prop_assert_eq!(key.tenant_id, model.tenants[acting.tenant].id);
        prop_assert!(key.revoked_at.is_none() && key.last_used_at.is_none());
        model.keys.push(KeyModel {
            key: created.key,
            id: key.id,
            tenant: acting.tenant,
            role,
            created_by,
            revoked: false,
            uses: 0,
        });
    }
    Ok(())
}

async fn revoke_key(
    crm: &Crm,
    model: &mut Model,
    via: Via,
    tenant: usize,
    key: Index,
) -> Result<(), TestCaseError> {
    let Some(acting) = act(crm, model, via, tenant).await? else { return Ok(()) };
    let target = (!model.keys.is_empty()).then(|| key.index(model.keys.len()));
    let id = target.map_or(Id::from_uuid(MISSING), |i| model.keys[i].id);
    let predicted = if !manages(acting.role) {
        Outcome::Forbidden
    } else if target.is_none_or(|i| model.keys[i].tenant != acting.tenant) {
        Outcome::NotFound
    } else {
        Outcome::Ok
    };
    let result = crm.revoke_api_key(&acting.scope, id).await;
    model.check(&result, predicted)?;
    if let (Ok(()), Some(i)) = (result, target) {
        model.keys[i].revoked = true;
    }
    Ok(())
}

async fn login(
    crm: &Crm,
    model: &mut Model,
    tenant: usize,
    user: usize,
    right_password: bool,
) -> Result<(), TestCaseError> {
    let u = &model.users[user];
    let password = if right_password { u.password.clone() } else { format!("{} (not)", u.password) };
    let can = u.id.is_some() && u.has_password && model.member(tenant, user).is_some();
    let predicted = if can && right_password { Outcome::Ok } else { Outcome::Unauthenticated };
    let input =
        Login { tenant_id: model.tenants[tenant].id, email: u.email.to_uppercase(), password, client: None };
    let result = crm.login(input).await;
    model.check(&result, predicted)?;
    if let Ok(session) = result {
        let role = check_session(model, tenant, user, &session)?;
        model.issued(tenant, user, role, session, None);
    }
    Ok(())
}

async fn refresh(crm: &Crm, model: &mut Model, token: Index, spent_too: bool) -> Result<(), TestCaseError> {
    let live = |r: &RefreshModel| !r.used && model.families[r.family] == Family::Live;
    let candidates: Vec<usize> =
        (0..model.refresh.len()).filter(|&i| spent_too || live(&model.refresh[i])).collect();
    if candidates.is_empty() {
        let result = crm.refresh("crt1.not.a.token").await;
        return model.check(&result, Outcome::Unauthenticated);
    }
    let i = candidates[token.index(candidates.len())];
    let r = model.refresh[i].clone();
    // Revoked: refused. Spent: refused, and the family revoked (reuse). Expired: refused. No
    // longer a member: refused, and the family revoked. Else a new pair with the current role.
    let (predicted, revokes) = if model.families[r.family] == Family::Revoked {
        (Outcome::Unauthenticated, false)
    } else if r.used {
        (Outcome::Unauthenticated, true)
    } else if model.now - r.issued > REFRESH_UNITS {
        (Outcome::Unauthenticated, false)
    } else if model.member(r.tenant, r.user).is_none() {
        (Outcome::Unauthenticated, true)
    } else {
        (Outcome::Ok, false)
    };
    let result = crm.refresh(&r.token).await;
    model.check(&result, predicted)?;
    if revokes {
        model.families[r.family] = Family::Revoked;
    }
    if let Ok(session) = result {
        let role = check_session(model, r.tenant, r.user, &session)?;
        model.refresh[i].used = true;
        model.issued(r.tenant, r.user, role, session, Some(r.family));
    }
    Ok(())
}

async fn logout(crm: &Crm, model: &mut Model, token: Index) -> Result<(), TestCaseError> {
    if model.refresh.is_empty() {
        let result = crm.logout("crt1.not.a.token").await;
        return model.check(&result, Outcome::Unauthenticated);
    }
    let r = model.refresh[token.index(model.refresh.len())].clone();
    let result = crm.logout(&r.token).await;
    let predicted = match model.families[r.family] {
        Family::Live => Outcome::Ok,
        Family::Revoked => Outcome::Unauthenticated,
    };
    model.check(&result, predicted)?;
    model.families[r.family] = Family::Revoked;
    Ok(())
}

fn authenticate(crm: &Crm, model: &mut Model, token: Index) -> Result<(), TestCaseError> {
    if model.access.is_empty() {
        return Ok(());
    }
    let i = token.index(model.access.len());
    let predicted = if model.access_valid(&model.access[i]) { Outcome::Ok } else { Outcome::Unauthenticated };
    let result = crm.authenticate(&model.access[i].token);
    model.check(&result, predicted)?;
    if let Ok(scope) = result {
        check_access_scope(model, &model.access[i], &scope)?;
    }
    Ok(())
}

async fn use_key(
    crm: &Crm,
    model: &mut Model,
    key: Index,
    tenant_swapped: bool,
) -> Result<(), TestCaseError> {
    if model.keys.is_empty() {
        return Ok(());
    }
    let i = key.index(model.keys.len());
    let k = &model.keys[i];
    let (presented, predicted) = if tenant_swapped {
        let own = model.tenants[k.tenant].id.uuid().simple().to_string();
        let other = model.tenants[(k.tenant + 1) % TENANTS].id.uuid().simple().to_string();
        (k.key.replacen(&own, &other, 1), Outcome::Unauthenticated)
    } else {
        (k.key.clone(), if model.key_valid(k) { Outcome::Ok } else { Outcome::Unauthenticated })
    };
    let result = crm.authenticate_api_key(&presented).await;
    model.check(&result, predicted)?;
    if let Ok(scope) = result {
        let k = &mut model.keys[i];
        k.uses += 1;
        let principal = Principal::ApiKey { key_id: k.id, role: k.role, created_by: k.created_by };
        prop_assert_eq!(scope.principal(), &principal);
        prop_assert_eq!(scope.tenant_id(), model.tenants[k.tenant].id);
    }
    Ok(())
}
