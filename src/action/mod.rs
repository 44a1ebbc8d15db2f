//! The GitHub Actions face: one job (resolve the event, run the flows),
//! the publisher that pushes in a safe order and reports check runs, PRs
//! and the tracking issue, promotion from a workflow, the Actions I/O
//! (outputs, summary, annotations, stop-commands) and the text people read.

pub mod checkbox;
pub mod dashboard;
pub mod io;
pub mod job;
pub mod outcome;
pub mod promotion;
pub mod publisher;
pub mod text;
pub mod tracking;
