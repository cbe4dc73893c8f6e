//! # crm-http
//!
//! The HTTP edge of the crm library. It holds no business rule: it maps requests to
//! `crm-core` calls and core errors to responses. This release carries the error mapping —
//! RFC 9457 problem documents — that the axum router (next milestone) answers with.

mod problem;

pub use problem::{Problem, ProblemField};
