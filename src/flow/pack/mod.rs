//! Packs: shared flows, skills, plugins and hooks installed from another
//! repository (`patchmoi pack add`), pinned in `.codex/pack-lock.json` in
//! codex-flows' format, checked (`patchmoi pack doctor`) and brought up to
//! date with their sources (`patchmoi pack update`).

pub mod add;
pub mod doctor;
pub mod hash;
pub mod lock;
mod registry;
pub mod source;
pub mod update;
