//! Packs: shared flows, skills, plugins and hooks installed from another
//! repository (`patchmoi pack add`), pinned in `.codex/pack-lock.json` in
//! codex-flows' format, and checked (`patchmoi pack doctor`).

pub mod add;
pub mod doctor;
pub mod hash;
pub mod lock;
mod registry;
pub mod source;
