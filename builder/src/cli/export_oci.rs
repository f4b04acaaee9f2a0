//! `export-oci CHECKPOINT DIR [--after PHASE] [--tag NAME] [--compression gzip|zstd]`: its
//! arguments; the export itself is [`crate::oci::command`].

use crate::oci::{command, Compression};
use std::path::PathBuf;

/// Write the checkpoint as an OCI image layout into DIR.
///
/// One layer per phase up to PHASE (default: all), as the phases ran; DIR must be absent or
/// empty. The manifest digest is printed on stdout.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The checkpoint directory
    pub checkpoint: PathBuf,
    /// The image layout directory to write (absent or empty)
    pub dir: PathBuf,
    /// The last phase to export (default: all of them)
    #[arg(long, value_name = "PHASE")]
    pub after: Option<String>,
    /// The image's tag in the layout
    #[arg(long, value_name = "NAME", default_value = "latest")]
    pub tag: String,
    /// How the layers are compressed
    #[arg(long, value_name = "gzip|zstd", default_value = "gzip", value_parser = compression)]
    pub compression: Compression,
}

fn compression(text: &str) -> Result<Compression, String> {
    Compression::parse(text).ok_or_else(|| format!("{text:?}: expected gzip or zstd"))
}

pub fn run(args: &Args) -> Result<(), crate::oci::OciError> {
    command::run(&command::Args {
        checkpoint: args.checkpoint.clone(),
        dir: args.dir.clone(),
        after: args.after.clone(),
        tag: args.tag.clone(),
        compression: args.compression,
    })
}
