//! Reusing an earlier build's checkpoint (`checkpointBase`): layer [`keys`], whether the base
//! may be trusted ([`trust`], [`store_path`]), loading it ([`base`]), which phases to take over
//! ([`plan`]), the incremental rebuild after a source change or a rerun over the earlier tree
//! ([`incremental`]), and the earlier values no rewrite can move ([`stale`]).

pub mod base;
pub mod debug_info;
pub mod incremental;
pub mod keys;
pub mod plan;
pub mod stale;
pub mod store_path;
pub mod trust;
