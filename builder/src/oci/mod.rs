//! Export of a checkpoint as an OCI image layout: one layer per phase, stacked as the
//! phases ran, that podman, skopeo and umoci open (docs/oci-export.md).
//!
//! ```text
//!   plan     checkpoint layer + state after it → tar items (whiteouts, parents)  pure
//!   image    oci-layout, index, manifest, config (history, Env, labels) JSON    pure
//!   tar      tar items → ustar/PAX stream, contents streamed from verified blobs
//!   blob     stream → sha256 (diff_id) → gzip|zstd → sha256 → blobs/sha256/<hex>  disk
//!   layout   the directory as a whole; removes what it wrote on error            disk
//! ```
//!
//! Reads the checkpoint only through [`crate::checkpoint::Checkpoint`]: folded states
//! (checked by the engine) and blobs verified while they stream. The `export-oci` command
//! around it is the CLI's (`cli/export_oci.rs`).

pub mod blob;
pub mod error;
pub mod image;
pub mod layout;
pub mod plan;
pub mod tar;

pub use blob::Compression;
pub use error::{Fault, OciError};
pub use layout::{check_tag, export, ExportOptions, ExportReport};

#[cfg(test)]
mod tests;
