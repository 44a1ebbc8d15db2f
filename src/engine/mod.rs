//! The patch-stack engine: given a plain stack spec (upstream, branch, tag,
//! candidate ref) it fetches the release, finds the stack, drops what
//! upstream has, replays the rest in memory and returns data: a candidate,
//! or a conflict report with its culprit. It also keeps the memory of
//! resolutions, prepares resolve worktrees, publishes refs and promotes.
//! It knows nothing of flows, the Action or the service.

pub mod ahead;
pub mod conflict;
pub mod culprit;
pub mod land;
pub mod markers;
pub mod memory;
pub mod patch;
pub mod promote;
pub mod provenance;
pub mod publish;
pub mod recall;
pub mod regenerate;
pub mod replay;
pub mod stack;
pub mod upstreamed;
pub mod walk;
