//! This crate's tests use the public test-database helpers.

#![allow(unused_imports)]

pub use crm_storage_postgres::testing::*;
