//! Reusing an earlier build's checkpoint (`checkpointBase`): layer [`keys`], whether the base
//! may be trusted ([`trust`], [`store_path`]), loading it ([`base`]), which phases to take over
//! ([`plan`]) and the incremental rebuild after a source change ([`incremental`]).

pub mod base;
pub mod debug_info;
pub mod incremental;
pub mod keys;
pub mod plan;
pub mod store_path;
pub mod trust;
