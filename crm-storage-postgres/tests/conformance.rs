//! The crm-core conformance suite, run against a fresh PostgreSQL database per test.
//! Skips (visibly) without `CRM_TEST_DATABASE_URL`; fails under CI without it.

mod support;

crm_core::store_conformance_tests!(support::fresh_store);
