//! The store conformance suite, and proptest strategies for hosts' own property tests.
//!
//! A store proves itself by invoking [`store_conformance_tests!`](crate::store_conformance_tests)
//! once in its own test crate, with an async closure that returns a fresh, migrated, empty store
//! (or `None` to skip, e.g. when no database is configured):
//!
//! ```ignore
//! crm_core::store_conformance_tests!(|| async { Some(SqliteStore::open_in_memory().await.unwrap()) });
//! ```
//!
//! That expands to one `#[tokio::test]` per behaviour in [`cases`], [`bulk`], [`edges`],
//! [`hostile`], [`sorting`], [`tasks`], [`webhooks`], [`deliveries`], [`idempotency`],
//! [`identity`] and [`retention`], the multi-threaded [`races`], plus the model-based property tests in
//! [`model`] (records) and [`identity_model`] (members, logins, tokens and API keys). The suite
//! is the same for every store; differences between stores are not allowed to show. Every test runs its store inside an [`isolation::IsolationCheck`], so any
//! row that crosses a tenant anywhere in the suite fails the test.
//!
//! # What a host's own store implements
//! A [`Store`] is the seven traits of [`crate::store`], split by subject; a type implementing
//! all seven is a `Store` automatically. What each covers, and which part of the suite proves it:
//!
//! | trait | methods | proved by |
//! |---|---|---|
//! | [`RecordStore`](crate::store::RecordStore) | `get`, `list`, `commit`, `ping`: every record kind through one generic path (rows of a [`KindDef`](crate::kind::KindDef)), and the atomic commit of a change set | [`cases`] (records, lists, search, custom fields, conversion, conflicts), [`sorting`] (ordered lists and their cursors), [`tasks`], [`bulk`], [`edges`], [`hostile`] (input core never made), [`races`], [`model`]; [`list_into`] called on the store itself, unwrapped |
//! | [`IdentityStore`](crate::store::IdentityStore) | tenants, users, credentials, memberships, refresh tokens, API keys, login throttling | [`identity`], [`identity_model`], the tenant and member cases of [`cases`] |
//! | [`HistoryStore`](crate::store::HistoryStore) | audit log, outbox, stage history (a timeline's activities and tasks are records, read through `list`) | the audit, outbox, stage and timeline cases of [`cases`] |
//! | [`IdempotencyStore`](crate::store::IdempotencyStore) | idempotency records | [`idempotency`] |
//! | [`JobStore`](crate::store::JobStore) | background jobs: enqueue by unique key, the tenant-fair claim under a lease, finish by token, inspect, cancel and retry; the enqueue signal; cron schedules fired by compare-and-set | [`jobs`], [`schedules`], and [`runner`] (the runner over the store) |
//! | [`WebhookStore`](crate::store::WebhookStore) | webhook deliveries (written by a change set with their jobs), the lane wait, attempts and their log | [`deliveries`], [`webhooks`] (endpoints are records) |
//! | [`RetentionStore`](crate::store::RetentionStore) | `purge`: finished jobs, expired refresh tokens and idempotency keys, across tenants in bounded batches | [`retention`] |
//!
//! A new record kind adds no store method: its description and migration are all a store
//! needs. A new subsystem (webhooks next) adds a trait of its own and a module here.
//! [`crash`] kills a worker process mid-job (called by each store's own test, as it needs a
//! second process). [`outage::Outage`] takes any store down, for testing how an outage reaches callers, and
//! [`delegate_store!`](crate::delegate_store) lets a wrapper store pass whole traits through.

/// Asserts that a result is an error matching the pattern, e.g. `Error::NotFound`.
macro_rules! assert_err {
    ($result:expr, $pattern:pat $(if $guard:expr)? $(,)?) => {{
        let result = $result;
        let expected = stringify!($pattern $(if $guard)?);
        assert!(matches!(result, Err($pattern) $(if $guard)?), "expected Err({expected}), got {result:?}");
    }};
}

pub mod bulk;
pub mod cases;
pub mod crash;
pub mod deliveries;
pub mod edges;
pub mod hostile;
pub mod idempotency;
pub mod identity;
pub mod identity_model;
pub mod isolation;
pub mod jobs;
pub mod list_into;
pub mod model;
pub mod outage;
pub mod races;
pub mod retention;
pub mod runner;
pub mod schedules;
pub mod sorting;
pub mod strategies;
pub mod tasks;
pub mod webhooks;

use chrono::{TimeZone, Utc};

use crate::clock::{SequentialIds, SteppingClock};
use crate::model::{NewTenant, NewUser};
use crate::service::{Crm, TenantCreated};
use crate::store::Store;

/// A CRM over `store` with a deterministic clock and ids derived from `seed`.
pub fn deterministic_crm(store: impl Store, seed: u64) -> Crm {
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).single().expect("valid date");
    Crm::builder(store).clock(SteppingClock::starting_at(start)).ids(SequentialIds::new(seed)).build()
}

/// Creates a tenant whose slug and owner e-mail derive from `name`, for tests.
pub async fn tenant(crm: &Crm, name: &str) -> TenantCreated {
    crm.create_tenant(NewTenant {
        name: format!("{name} Inc"),
        slug: name.to_lowercase(),
        owner: NewUser {
            email: format!("owner@{}.example", name.to_lowercase()),
            name: format!("{name} Owner"),
        },
    })
    .await
    .expect("tenant creation")
}

/// Asserts that a result is a validation error naming exactly these fields.
#[track_caller]
pub(crate) fn assert_invalid<T: std::fmt::Debug>(result: crate::Result<T>, fields: &[&str]) {
    let expected: std::collections::BTreeSet<&str> = fields.iter().copied().collect();
    match &result {
        Err(err @ crate::Error::Validation(_)) => {
            let named: std::collections::BTreeSet<&str> =
                err.field_errors().iter().map(|f| f.field.as_str()).collect();
            assert_eq!(named, expected, "fields named by {result:?}");
        }
        _ => panic!("expected a validation error naming {expected:?}, got {result:?}"),
    }
}

/// A failed property-test step.
pub(crate) fn fail(message: impl Into<String>) -> proptest::test_runner::TestCaseError {
    proptest::test_runner::TestCaseError::fail(message.into())
}

/// The text of a failed step.
pub(crate) fn message(e: proptest::test_runner::TestCaseError) -> String {
    match e {
        proptest::test_runner::TestCaseError::Fail(r) | proptest::test_runner::TestCaseError::Reject(r) => {
            r.message().to_owned()
        }
    }
}

/// Unwraps a call that must succeed inside a property-test step.
pub(crate) fn must<T>(
    what: &str,
    result: crate::Result<T>,
) -> Result<T, proptest::test_runner::TestCaseError> {
    result.map_err(|e| fail(format!("{what} failed: {e:?}")))
}

/// Runs a suite case; a `None` store means "skip" and says so on stderr.
#[doc(hidden)]
pub async fn run_case<S, Fut>(name: &str, store: Option<S>, case: impl FnOnce(Crm) -> Fut)
where
    S: Store,
    Fut: std::future::Future<Output = ()>,
{
    match store {
        Some(store) => case(deterministic_crm(store, 1)).await,
        None => eprintln!("SKIPPED conformance case {name}: no store configured"),
    }
}

/// Expands to the whole conformance suite for a store: one test per case.
///
/// `$make` is an expression callable with no arguments that returns a future of
/// `Option<impl Store>`; each test calls it once, so every case gets its own fresh store.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@cases $make;
            tenant_creation_makes_owner_and_default_pipeline,
            duplicate_slug_is_conflict,
            store_constraint_violations_say_what_conflicted,
            invalid_tenant_input_names_fields,
            scope_for_requires_membership,
            lead_crud_round_trip,
            lead_validation_names_fields,
            update_with_stale_version_is_conflict,
            unversioned_updates_apply_to_the_current_version,
            deleted_records_are_gone,
            other_tenants_ids_are_not_found,
            cross_tenant_links_are_rejected,
            contact_account_deal_activity_crud,
            list_pagination_is_stable_and_complete,
            list_filters,
            list_rejects_bad_requests,
            text_search_matches_word_prefixes,
            custom_field_filter,
            deal_defaults_to_default_pipeline,
            deal_stage_moves_are_recorded,
            terminal_stages_are_final,
            unknown_stage_is_rejected,
            money_and_probability_validation,
            lead_conversion_creates_records_atomically,
            lead_converts_only_once,
            failed_conversion_writes_nothing,
            activities_need_exactly_one_target,
            timeline_merges_activities_and_changes,
            audit_entry_per_write_with_diff,
            outbox_event_per_write,
            viewer_cannot_write,
            member_edits_only_own_records,
            admin_only_audit_log,
            member_management,
            last_owner_is_kept,
            hooks_and_sinks_run_after_commit,
            pipelines_validation,
        );
        $crate::store_conformance_tests!(@cases_in bulk $make;
            import_reports_row_errors,
            import_atomic_is_all_or_nothing,
            import_is_authorized_and_tenant_scoped,
            search_pages_alike_for_common_and_rare_words,
        );
        $crate::store_conformance_tests!(@cases_in edges $make;
            search_words_are_the_same_on_every_store,
            long_words_are_found_by_their_prefixes,
            out_of_range_times_are_validation_errors,
            too_many_filters_are_refused,
            company_only_lead_converts_with_a_named_contact,
            pipelines_change_but_keep_stages_in_use,
        );
        $crate::store_conformance_tests!(@cases_in sorting $make;
            sorted_lists_page_by_value_then_id,
            orders_a_kind_lacks_are_refused,
        );
        $crate::store_conformance_tests!(@cases_in tasks $make;
            tasks_keep_their_rules,
            task_lists_filter_and_sort_by_due_time,
            task_owners_and_assignees_may_edit,
            task_events_and_timeline,
        );
        $crate::store_conformance_tests!(@cases_in jobs $make;
            unique_jobs_are_one_per_key_until_finished,
            claims_take_tenants_in_turn,
            expired_leases_pass_to_another_worker,
            failures_back_off_die_and_move_only_from_their_state,
            jobs_stay_in_their_tenant,
            job_services_are_for_the_tenants_admins,
        );
        $crate::store_conformance_tests!(@cases_in runner $make;
            jobs_run_once_in_their_tenants_scope,
            failures_back_off_and_panics_and_permanent_failures_kill,
            renewed_leases_keep_other_runners_off_and_timeouts_fail,
            shutdown_drains_running_attempts,
            runner_configuration_is_checked,
            cron_occurrences_run_once_across_runners,
        );
        $crate::store_conformance_tests!(@cases_in webhooks $make;
            webhook_secrets_are_shown_once_and_rotate,
            webhooks_are_the_tenant_admins,
        );
        $crate::store_conformance_tests!(@cases_in deliveries $make;
            deliveries_keep_their_lane_order_and_log_attempts,
        );
        $crate::store_conformance_tests!(@cases_in retention $make;
            purges_take_only_what_has_served_its_use,
            purge_expired_follows_the_clock,
        );
        $crate::store_conformance_tests!(@cases_in schedules $make;
            schedules_are_the_tenants_and_replaced_by_name,
            a_due_occurrence_fires_once,
        );
        $crate::store_conformance_tests!(@cases_in hostile $make;
            hostile_custom_field_filters_stay_in_the_tenant,
            hostile_search_terms_and_stages_stay_in_the_tenant,
        );
        $crate::store_conformance_tests!(@cases_in idempotency $make;
            idempotent_call_runs_once_and_replays,
            idempotency_key_reused_for_another_request_is_refused,
            unfinished_claims_block_twins_until_their_lease_ends,
            failed_calls_free_the_key_and_keys_expire,
            idempotency_keys_are_per_principal_and_tenant,
            batched_calls_commit_every_batch_once,
        );
        $crate::store_conformance_tests!(@cases_in identity $make;
            registration_creates_tenant_and_owner_session,
            registration_refuses_an_existing_email,
            password_policy_on_registration,
            registration_validation_names_its_fields,
            passwords_rehash_when_parameters_rise,
            login_failures_are_indistinguishable,
            login_is_per_tenant,
            login_lockout_after_repeated_failures,
            lockout_retry_after_is_long_enough,
            client_throttle_counts_failures_across_accounts,
            client_throttle_counts_only_failures,
            access_token_tampering_is_rejected,
            access_tokens_expire_by_the_clock,
            signing_key_rotation,
            refresh_rotates_and_reuse_revokes_the_family,
            logout_revokes_the_family,
            removed_member_loses_refresh_at_once_and_access_at_expiry,
            removal_ends_sessions_even_if_the_member_returns,
            role_change_applies_on_refresh,
            members_added_with_a_password_can_log_in,
            api_keys_are_shown_once_counted_and_revocable,
            api_keys_act_like_users_of_their_role,
            api_keys_follow_their_creator,
            api_key_tampering_is_rejected,
            tenant_resolution_by_id_and_slug,
        );
        $crate::store_conformance_tests!(@races_in races $make;
            concurrent_updates_with_one_version_have_one_winner,
            concurrent_conversions_convert_once,
            concurrent_creates_are_all_visible,
            concurrent_twins_under_one_idempotency_key_run_once,
        );
        $crate::store_conformance_tests!(@races_in jobs $make;
            concurrent_claims_take_distinct_jobs,
        );
        $crate::store_conformance_tests!(@races_in schedules $make;
            concurrent_fires_enqueue_one_occurrence,
        );
        #[test]
        fn model_based_property_test() {
            let make = $make;
            $crate::testkit::model::run(move || {
                let store = make();
                async move { store.await.map($crate::testkit::isolation::IsolationCheck::new) }
            });
        }
        #[test]
        fn identity_model_property_test() {
            let make = $make;
            $crate::testkit::identity_model::run(move || {
                let store = make();
                async move { store.await.map($crate::testkit::isolation::IsolationCheck::new) }
            });
        }
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $crate::store_conformance_tests!(@cases_in cases $make; $($case),*);
    };
    (@races_in $module:ident $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let make = $make;
                let store = make().await.map($crate::testkit::isolation::IsolationCheck::new);
                $crate::testkit::run_case(stringify!($case), store, $crate::testkit::$module::$case).await;
            }
        )*
    };
    (@cases_in $module:ident $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let make = $make;
                let store = make().await.map($crate::testkit::isolation::IsolationCheck::new);
                $crate::testkit::run_case(stringify!($case), store, $crate::testkit::$module::$case).await;
            }
        )*
    };
}
