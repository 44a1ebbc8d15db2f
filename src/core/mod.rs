//! Small shared types that every layer may use and that use nothing of
//! patchmoi's: the usage error that changes the exit code, the rules for
//! ref names from outside, tag ordering, result statuses, and redaction.

pub mod env;
pub mod error;
pub mod redact;
pub mod refname;
pub mod runtime;
pub mod secrets;
pub mod status;
pub mod tag_order;
pub mod text;
