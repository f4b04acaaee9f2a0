//! One build as Nix runs it: what the environment gave ([`environment`], [`invocation`]), the
//! steps run as bash processes ([`runner`], with [`capture`] and [`memfile`]), the layers
//! recorded after each ([`recorder`]) and what log readers are told ([`nix_log`]).

pub mod capture;
pub mod environment;
pub mod invocation;
pub mod memfile;
pub mod nix_log;
pub mod recorder;
pub mod runner;
