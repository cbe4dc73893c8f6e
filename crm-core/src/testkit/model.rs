//! The model-based property test: random sequences of operations by several actors across several
//! tenants, each checked against a small in-memory reference model of the documented rules.
//!
//! Every case creates [`TENANTS`] fresh tenants, each with an owner and one admin, one manager,
//! two members and one viewer, and then runs 1–39 operations: creating, reading, listing,
//! updating, deleting and converting leads; creating and deleting accounts; creating contacts and
//! deals linked to accounts and contacts of *any* tenant; creating tasks about leads and changing
//! their status and assignee (either owner may). Records are picked from every tenant, so
//! cross-tenant attempts happen all the time. After every step the test checks that
//!
//! - the outcome (`Ok`, `NotFound`, `Forbidden`, `Conflict`, `Validation`) is the model's;
//! - returned records equal the model's, and belong to the caller's tenant;
//! - every tenant's leads, contacts, accounts, deals and tasks, as listed, equal the model's — so failed
//!   and forbidden operations changed nothing, anywhere — and its tasks, paged by due time either
//!   way (ties by id, undated last), come in the model's order;
//! - every tenant's audit log holds exactly one entry per record changed by a successful write
//!   (action, record and actor), and none for failed ones.
//!
//! The number of cases is `CRM_PROPTEST_CASES` (default 64); the run is reproducible with
//! `CRM_PROPTEST_SEED` (printed on failure), which seeds both proptest and the CRM's ids.

use std::cell::Cell;
use std::fmt::Debug;
use std::future::Future;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use proptest::option;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError, TestError, TestRunner};
use uuid::Uuid;

use super::strategies;
use super::{fail, message, must};
use crate::audit::{AuditAction, AuditEntry, AuditQuery};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::model::{
    Account, ActivityTarget, Contact, Deal, Kind, Lead, LeadPatch, LeadStatus, Money, NewAccount, NewContact,
    NewDeal, NewLead, NewMember, NewTask, NewTenant, NewUser, PipelineId, RecordMeta, Task, TaskPatch,
    TaskPriority, TaskStatus,
};
use crate::policy::Action;
use crate::scope::{Actor, Principal, Role, Scope, TenantId, UserId};
use crate::service::{ConvertLead, Crm, ListRequest};
use crate::store::{Filter, Store};

/// Tenants created by every case.
pub const TENANTS: usize = 3;

/// The actors of every tenant, by index: its owner, then the members the case adds.
const ROLES: [Role; 6] = [Role::Owner, Role::Admin, Role::Manager, Role::Member, Role::Member, Role::Viewer];

/// Cases run when `CRM_PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 64;

/// An id no record has (the deterministic CRM's ids never take this form).
const MISSING: Uuid = Uuid::from_u128(0x0bad_0bad_0bad_7bad_8bad_0bad_0bad_0bad);

/// Runs the model-based property test against the store `make` returns (called once; `None`
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
        eprintln!("SKIPPED model-based property test: no store configured");
        return;
    };
    let cases =
        std::env::var("CRM_PROPTEST_CASES").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(DEFAULT_CASES);
    let seed =
        std::env::var("CRM_PROPTEST_SEED").ok().and_then(|v| v.trim().parse().ok()).unwrap_or_else(|| {
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
        });
    let crm = super::deterministic_crm(store, seed);
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
        rt.block_on(Box::pin(run_case(&crm, seed, case.get(), &ops, &tally)))
    });
    match result {
        Ok(()) => {
            let [ok, not_found, forbidden, conflict, validation] = tally.get();
            eprintln!(
                "model-based property test: {cases} cases, {} steps in {:.1?} (CRM_PROPTEST_SEED={seed}); \
                 outcomes: {ok} ok, {not_found} not found, {forbidden} forbidden, {conflict} conflict, \
                 {validation} validation",
                steps.get(),
                started.elapsed()
            )
        }
        Err(TestError::Fail(reason, ops)) => panic!(
            "model-based property test failed (reproduce with CRM_PROPTEST_SEED={seed}):\n{}\n\
             minimal failing sequence ({} operations):\n{ops:#?}",
            reason.message(),
            ops.len()
        ),
        Err(TestError::Abort(reason)) => {
            panic!("model-based property test aborted (CRM_PROPTEST_SEED={seed}): {}", reason.message())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Operations

/// A user of the acting tenant (by actor index) or of another tenant (offset, actor index).
#[derive(Debug, Clone, Copy)]
enum Who {
    Same(usize),
    Other(usize, usize),
}

/// A record: one of the acting tenant's (`local`), or one of any tenant's.
#[derive(Debug, Clone, Copy)]
struct Pick {
    local: bool,
    index: Index,
}

/// The version a delete states.
#[derive(Debug, Clone, Copy)]
enum Version {
    Unstated,
    Current,
    Stale,
}

/// One step of a case. `tenant` and `actor` choose the scope it runs in.
#[derive(Debug, Clone)]
enum Op {
    CreateLead {
        tenant: usize,
        actor: usize,
        new: NewLead,
        owner: Option<Who>,
    },
    UpdateLead {
        tenant: usize,
        actor: usize,
        lead: Pick,
        patch: LeadPatch,
        owner: Option<Option<Who>>,
        stale: bool,
    },
    DeleteLead {
        tenant: usize,
        actor: usize,
        lead: Pick,
        version: Version,
    },
    GetLead {
        tenant: usize,
        actor: usize,
        lead: Pick,
    },
    ListLeads {
        tenant: usize,
        actor: usize,
        status: Option<LeadStatus>,
    },
    ConvertLead {
        tenant: usize,
        actor: usize,
        lead: Pick,
    },
    CreateAccount {
        tenant: usize,
        actor: usize,
        new: NewAccount,
    },
    DeleteAccount {
        tenant: usize,
        actor: usize,
        account: Pick,
    },
    CreateContact {
        tenant: usize,
        actor: usize,
        new: NewContact,
        account: Option<Pick>,
    },
    CreateDeal {
        tenant: usize,
        actor: usize,
        new: NewDeal,
        account: Option<Pick>,
        contact: Option<Pick>,
    },
    CreateTask {
        tenant: usize,
        actor: usize,
        title: &'static str,
        assignee: Option<Who>,
        lead: Option<Pick>,
        done: bool,
        /// Days after a fixed start, of three, so due times tie; `None`: undated.
        due: Option<u8>,
    },
    UpdateTask {
        tenant: usize,
        actor: usize,
        task: Pick,
        status: Option<TaskStatus>,
        assignee: Option<Option<Who>>,
    },
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        3 => (0..ROLES.len()).prop_map(Who::Same),
        1 => (1..TENANTS, 0..ROLES.len()).prop_map(|(offset, actor)| Who::Other(offset, actor)),
    ]
}

fn pick() -> impl Strategy<Value = Pick> {
    (proptest::bool::weighted(0.75), any::<Index>()).prop_map(|(local, index)| Pick { local, index })
}

/// Mostly valid leads, sometimes one broken in a known way.
fn lead_input() -> impl Strategy<Value = NewLead> {
    prop_oneof![
        12 => strategies::new_lead(),
        1 => (strategies::new_lead(), 0..5u8).prop_map(|(mut new, how)| {
            match how {
                0 => {
                    new.last_name = Some("   ".into());
                    new.email = None;
                    new.company = None;
                }
                1 => new.email = Some("not-an-email".into()),
                2 => new.first_name = Some("tab\there".into()),
                3 => new.company = Some("x".repeat(201)),
                // Documented: "converted" is refused on create.
                _ => new.status = Some(LeadStatus::Converted),
            }
            new
        }),
    ]
    .boxed()
}

/// Mostly valid patches, sometimes one broken in a known way.
fn patch_input() -> impl Strategy<Value = LeadPatch> {
    prop_oneof![
        12 => strategies::lead_patch(),
        1 => (strategies::lead_patch(), 0..3u8).prop_map(|(mut patch, how)| {
            match how {
                0 => patch.email = Some(Some("jane@".into())),
                1 => patch.phone = Some(Some("call me".into())),
                // Documented: a status cannot become "converted" except by conversion.
                _ => patch.status = Some(LeadStatus::Converted),
            }
            patch
        }),
    ]
    .boxed()
}

fn account_input() -> impl Strategy<Value = NewAccount> {
    prop_oneof![
        12 => strategies::new_account(),
        1 => (strategies::new_account(), any::<bool>()).prop_map(|(mut new, blank)| {
            if blank {
                new.name = " ".into();
            } else {
                new.domain = Some("not a domain".into());
            }
            new
        }),
    ]
    .boxed()
}

fn contact_input() -> impl Strategy<Value = NewContact> {
    prop_oneof![
        12 => strategies::new_contact(),
        1 => (strategies::new_contact(), 0..3u8).prop_map(|(mut new, how)| {
            match how {
                0 => {
                    new.first_name = None;
                    new.last_name = None;
                    new.email = None;
                }
                1 => new.email = Some("x@y".into()),
                _ => new.phone = Some("call me".into()),
            }
            new
        }),
    ]
    .boxed()
}

fn deal_input() -> impl Strategy<Value = NewDeal> {
    prop_oneof![
        12 => strategies::new_deal(),
        1 => (strategies::new_deal(), 0..4u8).prop_map(|(mut new, how)| {
            match how {
                0 => new.name = "  ".into(),
                1 => new.amount = Some(Money { amount_minor: 100, currency: "eur".into() }),
                2 => new.amount = Some(Money { amount_minor: -1, currency: "EUR".into() }),
                _ => new.probability = Some(101),
            }
            new
        }),
    ]
    .boxed()
}

fn op() -> impl Strategy<Value = Op> {
    let at = || (0..TENANTS, 0..ROLES.len());
    let create_lead = (at(), lead_input(), option::weighted(0.3, who()))
        .prop_map(|((tenant, actor), new, owner)| Op::CreateLead { tenant, actor, new, owner });
    let new_owner = option::weighted(0.2, option::weighted(0.7, who()));
    let update_lead = (at(), pick(), patch_input(), new_owner, proptest::bool::weighted(0.2)).prop_map(
        |((tenant, actor), lead, patch, owner, stale)| Op::UpdateLead {
            tenant,
            actor,
            lead,
            patch,
            owner,
            stale,
        },
    );
    let version = select(vec![Version::Unstated, Version::Current, Version::Stale]);
    let delete_lead = (at(), pick(), version).prop_map(|((tenant, actor), lead, version)| Op::DeleteLead {
        tenant,
        actor,
        lead,
        version,
    });
    let get_lead = (at(), pick()).prop_map(|((tenant, actor), lead)| Op::GetLead { tenant, actor, lead });
    let list_leads = (at(), option::of(select(LeadStatus::ALL.to_vec())))
        .prop_map(|((tenant, actor), status)| Op::ListLeads { tenant, actor, status });
    let convert_lead =
        (at(), pick()).prop_map(|((tenant, actor), lead)| Op::ConvertLead { tenant, actor, lead });
    let create_account =
        (at(), account_input()).prop_map(|((tenant, actor), new)| Op::CreateAccount { tenant, actor, new });
    let delete_account =
        (at(), pick()).prop_map(|((tenant, actor), account)| Op::DeleteAccount { tenant, actor, account });
    let create_contact = (at(), contact_input(), option::of(pick()))
        .prop_map(|((tenant, actor), new, account)| Op::CreateContact { tenant, actor, new, account });
    let create_deal = (at(), deal_input(), option::weighted(0.4, pick()), option::weighted(0.4, pick()))
        .prop_map(|((tenant, actor), new, account, contact)| Op::CreateDeal {
            tenant,
            actor,
            new,
            account,
            contact,
        });
    let create_task = (
        at(),
        select(vec!["Call back", "Send the quote", "  "]),
        option::weighted(0.5, who()),
        option::weighted(0.4, pick()),
        proptest::bool::weighted(0.2),
        option::weighted(0.7, 0..3u8),
    )
        .prop_map(|((tenant, actor), title, assignee, lead, done, due)| Op::CreateTask {
            tenant,
            actor,
            title,
            assignee,
            lead,
            done,
            due,
        });
    let update_task = (
        at(),
        pick(),
        option::of(select(TaskStatus::ALL.to_vec())),
        option::weighted(0.4, option::weighted(0.7, who())),
    )
        .prop_map(|((tenant, actor), task, status, assignee)| Op::UpdateTask {
            tenant,
            actor,
            task,
            status,
            assignee,
        });
    // Boxed, so that value trees stay small: unboxed, they overflow the test thread's stack.
    prop_oneof![
        5 => create_lead.boxed(),
        4 => update_lead.boxed(),
        2 => delete_lead.boxed(),
        2 => get_lead.boxed(),
        1 => list_leads.boxed(),
        2 => convert_lead.boxed(),
        2 => create_account.boxed(),
        1 => delete_account.boxed(),
        2 => create_contact.boxed(),
        1 => create_deal.boxed(),
        2 => create_task.boxed(),
        3 => update_task.boxed(),
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
}

/// The parts of an audit entry the model predicts.
#[derive(Debug, Clone, PartialEq)]
struct AuditKey {
    action: AuditAction,
    resource: Kind,
    resource_id: Uuid,
    actor: Actor,
}

/// One record as the model knows it.
#[derive(Debug, Clone)]
struct Entry<R> {
    tenant: usize,
    record: R,
    live: bool,
}

struct TenantModel {
    id: TenantId,
    /// Scopes of the actors, indexed like [`ROLES`].
    scopes: Vec<Scope>,
    users: Vec<UserId>,
    pipeline_id: PipelineId,
    first_stage: String,
    /// Audit entries written while setting the tenant up (read, not predicted).
    audit_base: usize,
    /// Audit entries the case's operations should have written, oldest first.
    audit: Vec<AuditKey>,
}

struct Model {
    tenants: Vec<TenantModel>,
    leads: Vec<Entry<Lead>>,
    accounts: Vec<Entry<Account>>,
    contacts: Vec<Entry<Contact>>,
    deals: Vec<Entry<Deal>>,
    tasks: Vec<Entry<Task>>,
    /// How many operations came to each [`Outcome`].
    tally: Tally,
}

/// Operations per [`Outcome`], in declaration order.
type Tally = [usize; 5];

/// Record scope of a permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    All,
    Own,
}

/// The default policy for records, restated from its documentation: owners, admins and managers
/// do everything; members read all, create, and change or delete their own; viewers only read.
fn access(role: Role, action: Action) -> Option<Access> {
    match (role, action) {
        (Role::Owner | Role::Admin | Role::Manager, _) => Some(Access::All),
        (_, Action::Read) => Some(Access::All),
        (Role::Member, Action::Create) => Some(Access::All),
        (Role::Member, Action::Update | Action::Delete) => Some(Access::Own),
        _ => None,
    }
}

fn covers(access: Access, me: UserId, owner: Option<UserId>) -> bool {
    access == Access::All || owner == Some(me)
}

impl Model {
    fn user(&self, tenant: usize, who: Who) -> UserId {
        match who {
            Who::Same(actor) => self.tenants[tenant].users[actor],
            Who::Other(offset, actor) => self.tenants[(tenant + offset) % TENANTS].users[actor],
        }
    }

    fn is_member(&self, tenant: usize, user: Option<UserId>) -> bool {
        user.is_none_or(|u| self.tenants[tenant].users.contains(&u))
    }

    fn audit(&mut self, tenant: usize, action: AuditAction, resource: Kind, resource_id: Uuid, me: UserId) {
        let actor = Actor::User(me);
        self.tenants[tenant].audit.push(AuditKey { action, resource, resource_id, actor });
    }
}

/// Resolves a pick to an entry index; `None` when there is nothing to pick.
fn resolve<R>(entries: &[Entry<R>], tenant: usize, pick: Pick) -> Option<usize> {
    let candidates: Vec<usize> =
        (0..entries.len()).filter(|&i| !pick.local || entries[i].tenant == tenant).collect();
    (!candidates.is_empty()).then(|| candidates[pick.index.index(candidates.len())])
}

/// The entry index if it is a live record of `tenant`.
fn visible<R>(entries: &[Entry<R>], tenant: usize, index: Option<usize>) -> Option<usize> {
    index.filter(|&i| entries[i].tenant == tenant && entries[i].live)
}

fn placeholder_meta<T>(tenant_id: TenantId) -> RecordMeta<T> {
    let epoch = chrono::DateTime::UNIX_EPOCH;
    RecordMeta {
        id: Id::from_uuid(Uuid::nil()),
        tenant_id,
        version: 1,
        created_at: epoch,
        updated_at: epoch,
        deleted_at: None,
    }
}

// Field rules, restated from the documentation of `crate::validate`.

fn name_ok(v: &str) -> bool {
    v.chars().count() <= 200 && !v.chars().any(char::is_control)
}

fn opt_name_ok(v: &Option<String>) -> bool {
    v.as_deref().is_none_or(name_ok)
}

fn required_ok(v: &str) -> bool {
    !v.trim().is_empty() && name_ok(v)
}

fn blank(v: &Option<String>) -> bool {
    v.as_deref().is_none_or(|s| s.trim().is_empty())
}

fn email_ok(v: &str) -> bool {
    let Some((local, domain)) = v.rsplit_once('@') else { return false };
    v.chars().count() <= 254
        && !v.chars().any(|c| c.is_whitespace() || c.is_control())
        && !local.is_empty()
        && local.chars().count() <= 64
        && !local.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn phone_ok(v: &str) -> bool {
    (3..=50).contains(&v.len())
        && v.chars().any(|c| c.is_ascii_digit())
        && v.chars().all(|c| c.is_ascii_digit() || " +-().x/".contains(c))
}

fn lead_ok(l: &Lead) -> bool {
    [&l.first_name, &l.last_name, &l.company, &l.title, &l.source].into_iter().all(opt_name_ok)
        && l.email.as_deref().is_none_or(email_ok)
        && l.phone.as_deref().is_none_or(phone_ok)
        && !(blank(&l.last_name) && blank(&l.email) && blank(&l.company))
}

fn contact_ok(c: &Contact) -> bool {
    [&c.first_name, &c.last_name, &c.title].into_iter().all(opt_name_ok)
        && c.email.as_deref().is_none_or(email_ok)
        && c.phone.as_deref().is_none_or(phone_ok)
        && !(blank(&c.first_name) && blank(&c.last_name) && blank(&c.email))
}

fn account_ok(a: &Account) -> bool {
    required_ok(&a.name)
        && a.domain.as_deref().is_none_or(|d| email_ok(&format!("x@{d}")))
        && opt_name_ok(&a.industry)
}

fn deal_ok(d: &Deal) -> bool {
    required_ok(&d.name)
        && d.amount
            .as_ref()
            .is_none_or(|m| strategies::CURRENCIES.contains(&m.currency.as_str()) && m.amount_minor >= 0)
        && d.probability.is_none_or(|p| (0..=100).contains(&p))
}

fn set<T: Clone>(target: &mut T, value: &Option<T>) {
    if let Some(v) = value {
        *target = v.clone();
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
        Err(other) => return Err(fail(format!("unexpected error {other:?}"))),
    })
}

impl Model {
    /// Checks that the call came to the predicted outcome, and counts it.
    fn check_outcome<T: Debug, P>(
        &mut self,
        result: &Result<T>,
        predicted: &Result<P, Outcome>,
    ) -> Result<(), TestCaseError> {
        let got = outcome_of(result)?;
        let want = match predicted {
            Ok(_) => Outcome::Ok,
            Err(o) => *o,
        };
        prop_assert_eq!(got, want, "the model predicted {:?} but the call returned {:?}", want, result);
        self.tally[got as usize] += 1;
        Ok(())
    }
}

/// Checks the metadata of a record just created in `tenant_id`.
fn check_new_meta<T>(meta: &RecordMeta<T>, tenant_id: TenantId) -> Result<(), TestCaseError> {
    prop_assert_eq!(meta.tenant_id, tenant_id, "a record was created in another tenant");
    prop_assert_eq!(meta.version, 1);
    prop_assert_eq!(meta.created_at, meta.updated_at);
    prop_assert!(meta.deleted_at.is_none());
    prop_assert!(!meta.id.uuid().is_nil());
    Ok(())
}

/// Checks the metadata of a record just changed: same identity, later `updated_at`.
fn check_changed_meta<T>(got: &RecordMeta<T>, before: &RecordMeta<T>) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.id, before.id);
    prop_assert_eq!(got.tenant_id, before.tenant_id, "a record moved to another tenant");
    prop_assert_eq!(got.created_at, before.created_at);
    prop_assert!(got.updated_at > before.updated_at, "updated_at did not advance");
    Ok(())
}

async fn run_case(
    crm: &Crm,
    seed: u64,
    case: u64,
    ops: &[Op],
    tally: &Cell<Tally>,
) -> Result<(), TestCaseError> {
    let mut model = prelude(crm, seed, case).await.map_err(|e| fail(format!("setup: {}", message(e))))?;
    for (i, op) in ops.iter().enumerate() {
        step(crm, &mut model, op).await.map_err(|e| fail(format!("step {i} {op:?}: {}", message(e))))?;
        for t in 0..TENANTS {
            check_tenant(crm, &model, t)
                .await
                .map_err(|e| fail(format!("after step {i} {op:?}, tenant {t}: {}", message(e))))?;
        }
    }
    let mut total = tally.get();
    total.iter_mut().zip(model.tally).for_each(|(sum, n)| *sum += n);
    tally.set(total);
    Ok(())
}

/// Creates the case's tenants and members, with slugs and e-mails unique to the run and case.
async fn prelude(crm: &Crm, seed: u64, case: u64) -> Result<Model, TestCaseError> {
    let mut tenants = Vec::new();
    for t in 0..TENANTS {
        let slug = format!("mb-{:x}-{case}-{t}", seed as u32);
        let created = must(
            "create_tenant",
            crm.create_tenant(NewTenant {
                name: format!("Model {case}/{t}"),
                slug: slug.clone(),
                owner: NewUser { email: format!("owner@{slug}.example"), name: "Owner".into() },
            })
            .await,
        )?;
        let owner = created.owner_scope.clone();
        let mut users = vec![created.owner.id];
        for (i, role) in ROLES.iter().enumerate().skip(1) {
            let new = NewMember {
                email: format!("{}{i}@{slug}.example", role.as_str()),
                name: format!("{} {i}", role.as_str()),
                role: *role,
                password: None,
            };
            users.push(must("add_member", crm.add_member(&owner, new).await)?.user.id);
        }
        let mut scopes = Vec::new();
        for (user, role) in users.iter().zip(ROLES) {
            let scope = must("scope_for", crm.scope_for(created.tenant.id, *user).await)?;
            prop_assert_eq!(scope.tenant_id(), created.tenant.id);
            prop_assert_eq!(scope.principal(), &Principal::User { user_id: *user, role });
            scopes.push(scope);
        }
        let pipelines = must("pipelines", crm.pipelines(&owner).await)?;
        let Some(default) = pipelines.iter().find(|p| p.is_default) else {
            return Err(fail("a new tenant has no default pipeline"));
        };
        let audit_base = audit_entries(crm, &owner).await?.len();
        tenants.push(TenantModel {
            id: created.tenant.id,
            scopes,
            users,
            pipeline_id: default.meta.id,
            first_stage: default.stages[0].key.clone(),
            audit_base,
            audit: Vec::new(),
        });
    }
    Ok(Model {
        tenants,
        leads: Vec::new(),
        accounts: Vec::new(),
        contacts: Vec::new(),
        deals: Vec::new(),
        tasks: Vec::new(),
        tally: Tally::default(),
    })
}

/// The tenant's whole audit log, oldest first, paging through it 200 entries at a time.
async fn audit_entries(crm: &Crm, owner: &Scope) -> Result<Vec<AuditEntry>, TestCaseError> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let page = must(
            "audit_log",
            crm.audit_log(owner, AuditQuery::default(), cursor.as_deref(), Some(200)).await,
        )?;
        all.extend(page.data);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => {
                all.reverse();
                return Ok(all);
            }
        }
    }
    Err(fail("the audit log does not end"))
}

/// The model's live records of `tenant`, newest (highest id) first — the order lists use.
fn live<R: Clone>(entries: &[Entry<R>], tenant: usize, id: impl Fn(&R) -> Uuid) -> Vec<R> {
    let mut records: Vec<R> =
        entries.iter().filter(|e| e.tenant == tenant && e.live).map(|e| e.record.clone()).collect();
    records.sort_by_key(|r| std::cmp::Reverse(id(r)));
    records
}

/// Compares everything the store holds for a tenant with the model.
async fn check_tenant(crm: &Crm, model: &Model, t: usize) -> Result<(), TestCaseError> {
    let tm = &model.tenants[t];
    let owner = &tm.scopes[0];
    let all = || ListRequest::new().limit(200);

    let leads = must("list leads", crm.list::<Lead>(owner, all()).await)?;
    prop_assert!(leads.next_cursor.is_none());
    prop_assert_eq!(leads.data, live(&model.leads, t, |r| r.meta.id.uuid()), "leads differ");
    let contacts = must("list contacts", crm.list::<Contact>(owner, all()).await)?;
    prop_assert!(contacts.next_cursor.is_none());
    prop_assert_eq!(contacts.data, live(&model.contacts, t, |r| r.meta.id.uuid()), "contacts differ");
    let accounts = must("list accounts", crm.list::<Account>(owner, all()).await)?;
    prop_assert!(accounts.next_cursor.is_none());
    prop_assert_eq!(accounts.data, live(&model.accounts, t, |r| r.meta.id.uuid()), "accounts differ");
    let deals = must("list deals", crm.list::<Deal>(owner, all()).await)?;
    prop_assert!(deals.next_cursor.is_none());
    prop_assert_eq!(deals.data, live(&model.deals, t, |r| r.meta.id.uuid()), "deals differ");
    let tasks = must("list tasks", crm.list::<Task>(owner, all()).await)?;
    prop_assert!(tasks.next_cursor.is_none());
    prop_assert_eq!(tasks.data, live(&model.tasks, t, |r| r.meta.id.uuid()), "tasks differ");
    // Sorted by due time in pages of two or three, ties by id, undated last either way.
    let mut by_due = live(&model.tasks, t, |r| r.meta.id.uuid());
    by_due.sort_by_key(|r| (r.due_at.is_none(), r.due_at, r.meta.id.uuid()));
    let ids = |tasks: &[Task]| tasks.iter().map(|r| r.meta.id.uuid()).collect::<Vec<_>>();
    let ascending = sorted_pages(crm, owner, "due_at", 2).await?;
    prop_assert_eq!(ids(&ascending), ids(&by_due), "tasks by due time");
    by_due.sort_by_key(|r| {
        (r.due_at.is_none(), r.due_at.map(std::cmp::Reverse), std::cmp::Reverse(r.meta.id.uuid()))
    });
    let descending = sorted_pages(crm, owner, "-due_at", 3).await?;
    prop_assert_eq!(ids(&descending), ids(&by_due), "tasks by due time, latest first");

    let audit = audit_entries(crm, owner).await?;
    prop_assert!(audit.iter().all(|e| e.tenant_id == tm.id), "the audit log shows another tenant's entry");
    prop_assert_eq!(
        audit.len(),
        tm.audit_base + tm.audit.len(),
        "audit log length: {} set-up entries and {:?} expected",
        tm.audit_base,
        tm.audit
    );
    let keys: Vec<AuditKey> = audit[tm.audit_base..]
        .iter()
        .map(|e| AuditKey {
            action: e.action,
            resource: e.resource,
            resource_id: e.resource_id,
            actor: e.actor,
        })
        .collect();
    prop_assert_eq!(keys, tm.audit.clone(), "audit entries differ");
    Ok(())
}

/// Every task in `sort` order, following cursors through pages of `limit`.
async fn sorted_pages(crm: &Crm, owner: &Scope, sort: &str, limit: u32) -> Result<Vec<Task>, TestCaseError> {
    let (mut all, mut cursor) = (Vec::new(), None);
    for _ in 0..200 {
        let request = ListRequest::new().sort(sort).limit(limit).cursor(cursor);
        let page = must("sorted tasks", crm.list::<Task>(owner, request).await)?;
        all.extend(page.data);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(all),
        }
    }
    Err(fail("sorted pages do not end"))
}

/// Runs one operation, predicting its outcome first and updating the model after.
async fn step(crm: &Crm, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    match *op {
        Op::CreateLead { tenant, actor, ref new, owner } => {
            Box::pin(create_lead(crm, model, tenant, actor, new.clone(), owner)).await
        }
        Op::UpdateLead { tenant, actor, lead, ref patch, owner, stale } => {
            Box::pin(update_lead(crm, model, tenant, actor, lead, patch.clone(), owner, stale)).await
        }
        Op::DeleteLead { tenant, actor, lead, version } => {
            Box::pin(delete_lead(crm, model, tenant, actor, lead, version)).await
        }
        Op::GetLead { tenant, actor, lead } => Box::pin(get_lead(crm, model, tenant, actor, lead)).await,
        Op::ListLeads { tenant, actor, status } => {
            Box::pin(list_leads(crm, model, tenant, actor, status)).await
        }
        Op::ConvertLead { tenant, actor, lead } => {
            Box::pin(convert_lead(crm, model, tenant, actor, lead)).await
        }
        Op::CreateAccount { tenant, actor, ref new } => {
            Box::pin(create_account(crm, model, tenant, actor, new.clone())).await
        }
        Op::DeleteAccount { tenant, actor, account } => {
            Box::pin(delete_account(crm, model, tenant, actor, account)).await
        }
        Op::CreateContact { tenant, actor, ref new, account } => {
            Box::pin(create_contact(crm, model, tenant, actor, new.clone(), account)).await
        }
        Op::CreateDeal { tenant, actor, ref new, account, contact } => {
            Box::pin(create_deal(crm, model, tenant, actor, new.clone(), account, contact)).await
        }
        Op::CreateTask { tenant, actor, title, assignee, lead, done, due } => {
            Box::pin(create_task(crm, model, tenant, actor, title, assignee, lead, done, due)).await
        }
        Op::UpdateTask { tenant, actor, task, status, assignee } => {
            Box::pin(update_task(crm, model, tenant, actor, task, status, assignee)).await
        }
    }
}

/// The acting scope, role and user.
fn acting(model: &Model, tenant: usize, actor: usize) -> (Scope, Role, UserId) {
    let tm = &model.tenants[tenant];
    (tm.scopes[actor].clone(), ROLES[actor], tm.users[actor])
}

async fn create_lead(
    crm: &Crm,
    model: &mut Model,
    tenant: usize,
    actor: usize,
    mut new: NewLead,
    owner: Option<Who>,
) -> Result<(), TestCaseError> {
    let (scope, role, me) = acting(model, tenant, actor);
    new.owner_id = owner.map(|w| model.user(tenant, w));
    let predicted = (|| {
        access(role, Action::Create).ok_or(Outcome::Forbidden)?;
        if new.status == Some(LeadStatus::Converted) {
            return Err(Outcome::Validation);
        }
        let lead = Lead {
            meta: placeholder_meta(model.tenants[tenant].id),
            first_name: new.first_name.clone(),
            last_name: new.last_name.clone(),
            email: new.email.clone(),
            phone: new.phone.clone(),
            company: new.company.clone(),
            title: new.title.clone(),
            source: new.source.clone(),
            status: new.status.unwrap_or_default(),
            owner_id: new.owner_id.or(Some(me)),
            converted_contact_id: None,
            custom_fields: new.custom_fields.clone(),
        };
        if !lead_ok(&lead) || !model.is_member(tenant, lead.owner_id) {
            return Err(Outcome::Validation);
        }
        Ok(lead)
    })();
    let result = crm.create::<Lead>(&scope, new).await;
    model.check_outcome(&result, &predicted)?;
    if let (Ok(got), Ok(mut want)) = (result, predicted) {
        check_new_meta(&got.meta, model.tenants[tenant].id)?;
        want.meta = got.meta.clone();
        prop_assert_eq!(&got, &want);
        model.audit(tenant, AuditAction::Created, Kind::Lead, got.meta.id.uuid(), me);
        model.leads.push(Entry { tenant, record: got, live: true });
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn update_lead(
    crm: &Crm,
    model: &mut Model,
    tenant: usize,
    actor: usize,
    lead: Pick,
    mut patch: LeadPatch,
    owner: Option<Option<Who>>,
    stale: bool,
) -> Result<(), TestCaseError> {
    let (scope, role, me) = acting(model, tenant, actor);
    let target = resolve(&model.leads, tenant, lead);
    let id = target.map_or(Id::from_uuid(MISSING), |i| model.leads[i].record.meta.id);
    let version = target.map_or(1, |i| model.leads[i].record.meta.version);
    let expected_version = if stale { version - 1 } else { version };
    patch.owner_id = owner.map(|o| o.map(|w| model.user(tenant, w)));
    let predicted = (|| {
        let grant = access(role, Action::Update).ok_or(Outcome::Forbidden)?;
        let i = visible(&model.leads, tenant, target).ok_or(Outcome::NotFound)?;
        let current = &model.leads[i].record;
        if !covers(grant, me, current.owner_id) {
            return Err(Outcome::Forbidden);
        }
        if current.meta.version != expected_version {
            return Err(Outcome::Conflict);
        }
        let mut next = current.clone();
        if let Some(status) = patch.status {
            // Converted is final, and only conversion sets it: no patch names it.
            if current.status == LeadStatus::Converted || status == LeadStatus::Converted {
                return Err(Outcome::Validation);
            }
            next.status = status;
        }
        set(&mut next.first_name, &patch.first_name);
        set(&mut next.last_name, &patch.last_name);
        set(&mut next.email, &patch.email);
        set(&mut next.phone, &patch.phone);
        set(&mut next.company, &patch.company);
        set(&mut next.title, &patch.title);
        set(&mut next.source, &patch.source);
        set(&mut next.owner_id, &patch.owner_id);
        set(&mut next.custom_fields, &patch.custom_fields);
        if !lead_ok(&next) {
            return Err(Outcome::Validation);
        }
        if next.owner_id != current.owner_id && !model.is_member(tenant, next.owner_id) {
            return Err(Outcome::Validation);
        }
        // A patch that changes nothing writes nothing: same version, no audit entry.
        let changed = next != *current;
        if changed {
            next.meta.version += 1;
        }
        Ok((i, next, changed))
    })();
    let result = crm.update::<Lead>(&scope, id, Some(expected_version), patch).await;
    model.check_outcome(&result, &predicted)?;
    if let (Ok(got), Ok((i, mut want, changed))) = (result, predicted) {
        if changed {
            check_changed_meta(&got.meta, &model.leads[i].record.meta)?;
            want.meta.updated_at = got.meta.updated_at;
        }
        prop_assert_eq!(&got, &want);
        model.leads[i].record = got;
        if changed {
            model.audit(tenant, AuditAction::Updated, Kind::Lead, id.uuid(), me);
        }
    }
    Ok(())
}

async fn delete_lead(
    crm: &Crm,
    model: &mut Model,
    tenant: usize,
    actor: usize,
    lead: Pick,
    version: Version,
) -> Result<(), TestCaseError> {
    let (scope, role, me) = acting(model, tenant, actor);
    let target = resolve(&model.leads, tenant, lead);
    let id = target.map_or(Id::from_uuid(MISSING), |i| model.leads[i].record.meta.id);
    let current_version = target.map_or(1, |i| model.leads[i].record.meta.version);
    let stated = match version {
        Version::Unstated => None,
        Version::Current => Some(current_version),
        Version::Stale => Some(current_version - 1),
    };
    let predicted = (|| {
        let grant = access(role, Action::Delete).ok_or(Outcome::Forbidden)?;
        let i = visible(&model.leads, tenant, target).ok_or(Outcome::NotFound)?;
        let current = &model.leads[i].record;
        if !covers(grant, me, current.owner_id) {
            return Err(Outcome::Forbidden);
        }
        if stated.is_some_and(|v| v != current.meta.version) {
            return Err(Outcome::Conflict);
        }
        Ok(i)
    })();
    let result = crm.delete::<Lead>(&scope, id, stated).await;
    model.check_outcome(&result, &predicted)?;
    if let Ok(i) = predicted {
        model.leads[i].live = false;
        model.audit(tenant, AuditAction::Deleted, Kind::Lead, id.uuid(), me);
    }
    Ok(())
}

async fn get_lead(
    crm: &Crm,
    model: &mut Model,
    tenant: usize,
    actor: usize,
    lead: Pick,
) -> Result<(), TestCaseError> {
    let (scope, role, _) = acting(model, tenant, actor);
    let target = resolve(&model.leads, tenant, lead);
    let id = target.map_or(Id::from_uuid(MISSING), |i| model.leads[i].record.meta.id);
    let predicted = (|| {
        access(role, Action::Read).ok_or(Outcome::Forbidden)?;
        let i = visible(&model.leads, tenant, target).ok_or(Outcome::NotFound)?;
        Ok(model.leads[i].record.clone())
    })();
    let result = crm.get::<Lead>(&scope, id).await;
    model.check_outcome(&result, &predicted)?;
    if let (Ok(got), Ok(want)) = (result, predicted) {
        prop_assert_eq!(got, want);
    }
    Ok(())
}

async fn list_leads(
    crm: &Crm,
    model: &mut Model,
    tenant: usize,
    actor: usize,
    status: Option<LeadStatus>,
) -> Result<(), TestCaseError> {
    let (scope, role, _) = acting(model, tenant, actor);
    let predicted = access(role, Action::Read).ok_or(Outcome::Forbidden).map(|_| {
        let mut leads = live(&model.leads, tenant, |r| r.meta.id.uuid());
        leads.retain(|l| status.is_none_or(|s| l.status == s));
        leads
    });
    let filter = Filter { status, ..Filter::default() };
    let result = crm.list::<Lead>(&scope, ListRequest::new().limit(200).filter(filter)).await;
    model.check_outcome(&result, &predicted)?;
    if let (Ok(got), Ok(want)) = (result, predicted) {
        prop_assert!(got.next_cursor.is_none());
        prop_assert_eq!(got.data, want);
    }
    Ok(())
}

async fn convert_lead(
    crm: &Crm,
    model: &mut Model,
    tenant: usize,
    actor: usize,
    lead: Pick,
) -> Result<(), TestCaseError> {
    let (scope, role, me) = acting(model, tenant, actor);
    let target = resolve(&model.leads, tenant, lead);
    let id = target.map_or(Id::from_uuid(MISSING), |i| model.leads[i].record.meta.id);
    let predicted = (|| {
        let grant = access(role, Action::Update).ok_or(Outcome::Forbidden)?;
        access(role, Action::Create).ok_or(Outcome::Forbidden)?;
        let i = visible(&model.leads, tenant, target).ok_or(Outcome::NotFound)?;
        let lead = &model.leads[i].record;
        if !covers(grant, me, lead.owner_id) {
            return Err(Outcome::Forbidden);
        }
        if lead.status == LeadStatus::Converted {
            return Err(Outcome::Conflict);
        }
        let contact = Contact {
            meta: placeholder_meta(model.tenants[tenant].id),
            first_name: lead.first_name.clone(),
            last_name: lead.last_name.clone(),
            email: lead.email.clone(),
            phone: lead.phone.clone(),
            title: lead.title.clone(),
            account_id: None,
            owner_id: lead.owner_id.or(Some(me)),
            custom_fields: lead.custom_fields.clone(),
        };
        if !contact_ok(&contact) {
            return Err(Outcome::Validation);
        }
        let mut converted = lead.clone();
        converted.status = LeadStatus::Converted;
        converted.meta.version += 1;
        Ok((i, converted, contact))
    })();
    let result = crm.convert_lead(&scope, id, ConvertLead::default()).await;
    model.check_outcome(&result, &predicted)?;
    if let (Ok(got), Ok((i, mut lead, mut contact))) = (result, predicted) {
        prop_assert!(got.account.is_none() && got.deal.is_none());
        check_new_meta(&got.contact.meta, model.tenants[tenant].id)?;
        contact.meta = got.contact.meta.clone();
        prop_assert_eq!(&got.contact, &contact);
        check_changed_meta(&got.lead.meta, &model.leads[i].record.meta)?;
        prop_assert_eq!(got.lead.meta.updated_at, got.contact.meta.created_at);
        lead.meta.updated_at = got.lead.meta.updated_at;
        lead.converted_contact_id = Some(got.contact.meta.id);
        prop_assert_eq!(&got.lead, &lead);
        model.audit(tenant, AuditAction::Created, Kind::Contact, got.contact.meta.id.uuid(), me);
        model.audit(tenant, AuditAction::Converted, Kind::Lead, id.uuid(), me);
        model.leads[i].record = got.lead;
        model.contacts.push(Entry { tenant, record: got.contact, live: true });
    }
    Ok(())
}

async fn create_account(
    crm: &Crm,
    model: &mut Model,
    tenant: usize,
    actor: usize,
    new: NewAccount,
) -> Result<(), TestCaseError> {
    let (scope, role, me) = acting(model, tenant, actor);
    let predicted = (|| {
        access(role, Action::Create).ok_or(Outcome::Forbidden)?;
        let account = Account {
            meta: placeholder_meta(model.tenants[tenant].id),
            name: new.name.clone(),
            domain: new.domain.clone(),
            industry: new.industry.clone(),
            owner_id: new.owner_id.or(Some(me)),
            custom_fields: new.custom_fields.clone(),
        };
        if !account_ok(&account) {
            return Err(Outcome::Validation);
        }
        Ok(account)
    })();
    let result = crm.create::<Account>(&scope, new).await;
    model.check_outcome(&result, &predicted)?;
    if let (Ok(got), Ok(mut want)) = (result, predicted) {
        check_new_meta(&got.meta, model.tenants[tenant].id)?;
        want.meta = got.meta.clone();
        prop_assert_eq!(&got, &want);
        model.audit(tenant, AuditAction::Created, Kind::Account, got.meta.id.uuid(), me);
        model.accounts.push(Entry { tenant, record: got, live: true });
    }
    Ok(())
}

async fn delete_account(
    crm: &Crm,
    model: &mut Model,
    tenant: usize,
    actor: usize,
    account: Pick,
) -> Result<(), TestCaseError> {
    let (scope, role, me) = acting(model, tenant, actor);
    let target = resolve(&model.accounts, tenant, account);
    let id = target.map_or(Id::from_uuid(MISSING), |i| model.accounts[i].record.meta.id);
    let predicted = (|| {
        let grant = access(role, Action::Delete).ok_or(Outcome::Forbidden)?;
        let i = visible(&model.accounts, tenant, target).ok_or(Outcome::NotFound)?;
        if !covers(grant, me, model.accounts[i].record.owner_id) {
            return Err(Outcome::Forbidden);
        }
        Ok(i)
    })();
    let result = crm.delete::<Account>(&scope, id, None).await;
    model.check_outcome(&result, &predicted)?;
    if let Ok(i) = predicted {
        model.accounts[i].live = false;
        model.audit(tenant, AuditAction::Deleted, Kind::Account, id.uuid(), me);
    }
    Ok(())
}

/// A reference to pick, and whether it is a live record of `tenant` (else a link error).
fn link<R>(
    entries: &[Entry<R>],
    tenant: usize,
    pick: Option<Pick>,
    id: impl Fn(&R) -> Uuid,
) -> (Option<Uuid>, bool) {
    match pick {
        None => (None, true),
        Some(pick) => {
            let target = resolve(entries, tenant, pick);
            let uuid = target.map_or(MISSING, |i| id(&entries[i].record));
            (Some(uuid), visible(entries, tenant, target).is_some())
        }
    }
}

async fn create_contact(
    crm: &Crm,
    model: &mut Model,
    tenant: usize,
    actor: usize,
    mut new: NewContact,
    account: Option<Pick>,
) -> Result<(), TestCaseError> {
    let (scope, role, me) = acting(model, tenant, actor);
    let (account_id, account_ok) = link(&model.accounts, tenant, account, |a| a.meta.id.uuid());
    new.account_id = account_id.map(Id::from_uuid);
    let predicted = (|| {
        access(role, Action::Create).ok_or(Outcome::Forbidden)?;
        let contact = Contact {
            meta: placeholder_meta(model.tenants[tenant].id),
            first_name: new.first_name.clone(),
            last_name: new.last_name.clone(),
            email: new.email.clone(),
            phone: new.phone.clone(),
            title: new.title.clone(),
            account_id: new.account_id,
            owner_id: new.owner_id.or(Some(me)),
            custom_fields: new.custom_fields.clone(),
        };
        if !contact_ok(&contact) || !account_ok {
            return Err(Outcome::Validation);
        }
        Ok(contact)
    })();
    let result = crm.create::<Contact>(&scope, new).await;
    model.check_outcome(&result, &predicted)?;
    if let (Ok(got), Ok(mut want)) = (result, predicted) {
        check_new_meta(&got.meta, model.tenants[tenant].id)?;
        want.meta = got.meta.clone();
        prop_assert_eq!(&got, &want);
        model.audit(tenant, AuditAction::Created, Kind::Contact, got.meta.id.uuid(), me);
        model.contacts.push(Entry { tenant, record: got, live: true });
    }
    Ok(())
}

async fn create_deal(
    crm: &Crm,
    model: &mut Model,
    tenant: usize,
    actor: usize,
    mut new: NewDeal,
    account: Option<Pick>,
    contact: Option<Pick>,
) -> Result<(), TestCaseError> {
    let (scope, role, me) = acting(model, tenant, actor);
    let (account_id, account_ok) = link(&model.accounts, tenant, account, |a| a.meta.id.uuid());
    let (contact_id, contact_ok) = link(&model.contacts, tenant, contact, |c| c.meta.id.uuid());
    new.account_id = account_id.map(Id::from_uuid);
    new.contact_id = contact_id.map(Id::from_uuid);
    let predicted = (|| {
        access(role, Action::Create).ok_or(Outcome::Forbidden)?;
        let tm = &model.tenants[tenant];
        let deal = Deal {
            meta: placeholder_meta(tm.id),
            name: new.name.clone(),
            amount: new.amount.clone(),
            pipeline_id: tm.pipeline_id,
            stage: tm.first_stage.clone(),
            expected_close_date: new.expected_close_date,
            probability: new.probability,
            account_id: new.account_id,
            contact_id: new.contact_id,
            owner_id: new.owner_id.or(Some(me)),
            closed_at: None,
            custom_fields: new.custom_fields.clone(),
        };
        if !deal_ok(&deal) || !account_ok || !contact_ok {
            return Err(Outcome::Validation);
        }
        Ok(deal)
    })();
    let result = crm.create::<Deal>(&scope, new).await;
    model.check_outcome(&result, &predicted)?;
    if let (Ok(got), Ok(mut want)) = (result, predicted) {
        check_new_meta(&got.meta, model.tenants[tenant].id)?;
        want.meta = got.meta.clone();
        prop_assert_eq!(&got, &want);
        model.audit(tenant, AuditAction::Created, Kind::Deal, got.meta.id.uuid(), me);
        model.deals.push(Entry { tenant, record: got, live: true });
    }
    Ok(())
}

/// Tasks: created by anyone who may create records, about a lead of any tenant (a foreign or
/// deleted one is refused), changed by their owner or their assignee when the grant is `Own`.
#[allow(clippy::too_many_arguments)]
async fn create_task(
    crm: &Crm,
    model: &mut Model,
    tenant: usize,
    actor: usize,
    title: &'static str,
    assignee: Option<Who>,
    lead: Option<Pick>,
    done: bool,
    due: Option<u8>,
) -> Result<(), TestCaseError> {
    let (scope, role, me) = acting(model, tenant, actor);
    let lead = lead.and_then(|p| resolve(&model.leads, tenant, p));
    let start = chrono::DateTime::UNIX_EPOCH + chrono::TimeDelta::days(20_000);
    let new = NewTask {
        title: title.into(),
        due_at: due.map(|d| start + chrono::TimeDelta::days(d.into())),
        assignee_id: assignee.map(|w| model.user(tenant, w)),
        lead_id: lead.map(|i| model.leads[i].record.meta.id),
        status: done.then_some(TaskStatus::Done),
        ..NewTask::default()
    };
    let predicted = (|| {
        access(role, Action::Create).ok_or(Outcome::Forbidden)?;
        let lead_ok = lead.is_none_or(|i| visible(&model.leads, tenant, Some(i)).is_some());
        if !required_ok(title) || !model.is_member(tenant, new.assignee_id) || !lead_ok {
            return Err(Outcome::Validation);
        }
        Ok(Task {
            meta: placeholder_meta(model.tenants[tenant].id),
            title: title.into(),
            description: None,
            due_at: new.due_at,
            priority: TaskPriority::Normal,
            status: if done { TaskStatus::Done } else { TaskStatus::Open },
            assignee_id: new.assignee_id,
            related: new.lead_id.map(ActivityTarget::Lead),
            completed_at: None,
            owner_id: Some(me),
            custom_fields: Default::default(),
        })
    })();
    let result = crm.create::<Task>(&scope, new).await;
    model.check_outcome(&result, &predicted)?;
    if let (Ok(got), Ok(mut want)) = (result, predicted) {
        check_new_meta(&got.meta, model.tenants[tenant].id)?;
        want.meta = got.meta.clone();
        want.completed_at = done.then_some(got.meta.created_at);
        prop_assert_eq!(&got, &want);
        model.audit(tenant, AuditAction::Created, Kind::Task, got.meta.id.uuid(), me);
        model.tasks.push(Entry { tenant, record: got, live: true });
    }
    Ok(())
}

async fn update_task(
    crm: &Crm,
    model: &mut Model,
    tenant: usize,
    actor: usize,
    task: Pick,
    status: Option<TaskStatus>,
    assignee: Option<Option<Who>>,
) -> Result<(), TestCaseError> {
    let (scope, role, me) = acting(model, tenant, actor);
    let target = resolve(&model.tasks, tenant, task);
    let id = target.map_or(Id::from_uuid(MISSING), |i| model.tasks[i].record.meta.id);
    let patch = TaskPatch {
        status,
        assignee_id: assignee.map(|a| a.map(|w| model.user(tenant, w))),
        ..TaskPatch::default()
    };
    let predicted = (|| {
        let grant = access(role, Action::Update).ok_or(Outcome::Forbidden)?;
        let i = visible(&model.tasks, tenant, target).ok_or(Outcome::NotFound)?;
        let current = &model.tasks[i].record;
        // Either of the task's two owners may change it.
        if !covers(grant, me, current.owner_id) && !covers(grant, me, current.assignee_id) {
            return Err(Outcome::Forbidden);
        }
        let mut next = current.clone();
        set(&mut next.status, &patch.status);
        set(&mut next.assignee_id, &patch.assignee_id);
        if next.assignee_id != current.assignee_id && !model.is_member(tenant, next.assignee_id) {
            return Err(Outcome::Validation);
        }
        if next.status != TaskStatus::Done {
            next.completed_at = None;
        }
        let changed =
            next != *current || (next.status == TaskStatus::Done && current.status != TaskStatus::Done);
        if changed {
            next.meta.version += 1;
        }
        Ok((i, next, changed))
    })();
    let result = crm.update::<Task>(&scope, id, None, patch).await;
    model.check_outcome(&result, &predicted)?;
    if let (Ok(got), Ok((i, mut want, changed))) = (result, predicted) {
        let before = model.tasks[i].record.clone();
        if changed {
            check_changed_meta(&got.meta, &before.meta)?;
            want.meta.updated_at = got.meta.updated_at;
            if want.status == TaskStatus::Done && before.status != TaskStatus::Done {
                want.completed_at = Some(got.meta.updated_at);
            }
        }
        prop_assert_eq!(&got, &want);
        model.tasks[i].record = got;
        if changed {
            model.audit(tenant, AuditAction::Updated, Kind::Task, id.uuid(), me);
        }
    }
    Ok(())
}
