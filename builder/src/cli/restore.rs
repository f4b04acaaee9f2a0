//! `restore CHECKPOINT --after PHASE DIR [--keep-setid]`: every root of the state after a
//! phase into `DIR/<root>`, all or nothing.

use super::common::{check_shell_states, layer_index, open};
use super::CliError;
use crate::checkpoint::{RelPath, RestoreOptions, RestoreReport};
use std::path::{Path, PathBuf};

/// Restore each root (build, out, ...) of the state after PHASE into DIR/ROOT.
///
/// DIR must not exist or be an empty directory (not a symlink). The checkpoint is verified
/// first; nothing is written when it is unusable. Setuid/setgid bits are cleared unless
/// --keep-setid is given; what is not recreated (sockets, devices) is reported on stderr.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The checkpoint directory
    pub checkpoint: PathBuf,
    /// The phase whose end state to restore (`failed:PHASE` answers for a failed one)
    #[arg(long, value_name = "PHASE", alias = "at")]
    pub after: String,
    /// The target directory (absent or empty)
    pub dir: PathBuf,
    /// Restore setuid and setgid bits too
    #[arg(long)]
    pub keep_setid: bool,
}

pub fn run(args: &Args) -> Result<i32, CliError> {
    let opts = RestoreOptions {
        keep_setid: args.keep_setid,
    };
    restore_with(&args.checkpoint, &args.after, &args.dir, opts).map(|()| 0)
}

/// `restore`: every root of the state after `phase` into `dir/<root>`. All or nothing: the
/// roots are restored into a temporary sibling of `dir`, renamed into place only when every
/// one succeeded. `dir` must not exist or be an empty directory (not a symlink to one).
/// Setuid and setgid bits are cleared.
pub fn restore(path: &Path, phase: &str, dir: &Path) -> Result<(), CliError> {
    restore_with(path, phase, dir, RestoreOptions::default())
}

/// [`restore`] with `opts` (`--keep-setid`). Entries that are not recreated (sockets,
/// devices) and setuid/setgid bits that are not restored are reported on stderr.
pub fn restore_with(
    path: &Path,
    phase: &str,
    dir: &Path,
    opts: RestoreOptions,
) -> Result<(), CliError> {
    let ck = open(path)?;
    let index = layer_index(&ck, path, phase)?;
    let io = |what: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| CliError::Io {
            what,
            path: p,
            source,
        }
    };
    let target = |problem| CliError::Target {
        path: dir.to_path_buf(),
        problem,
    };
    // The target itself, never followed: a symlink (even to an empty directory) is refused
    // before anything is created.
    let exists = match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => return Err(target("is a symlink")),
        Ok(m) if !m.is_dir() => return Err(target("exists and is not a directory")),
        Ok(_) => {
            let empty = std::fs::read_dir(dir)
                .map_err(io("cannot read the target directory", dir))?
                .next()
                .is_none();
            if !empty {
                return Err(target("is not empty"));
            }
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(io("cannot inspect the target directory", dir)(e)),
    };
    let unusable = |source| CliError::Checkpoint {
        path: path.to_path_buf(),
        source,
    };
    // Every hash and invariant first: a corrupt checkpoint is refused before anything is
    // written, not even a temporary directory. (A development cache entry of a failed build
    // is unfinished: its tmp/ is ignored, everything its index lists is checked.)
    ck.verify_unfinished().map_err(unusable)?;
    check_shell_states(&ck, path)?;
    let state = ck.state_after(index).map_err(unusable)?;
    for root in ck.roots() {
        crate::checkpoint::restore::check_path_room(&dir.join(root), state.root(root)).map_err(
            |source| CliError::TargetTooDeep {
                path: dir.to_path_buf(),
                source,
            },
        )?;
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "restore".into());
    let staging = dir.with_file_name(format!(".{name}.restoring-{}", std::process::id()));
    if let Some(parent) = staging.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io("cannot create a directory", parent))?;
    }
    std::fs::create_dir(&staging).map_err(io("cannot create a directory", &staging))?;
    let mut reports = Vec::new();
    let result = (|| {
        for root in ck.roots() {
            let report = ck
                .restore_state_with(state.root(root), &staging.join(root), opts)
                .map_err(unusable)?;
            reports.push((root.as_str(), report));
        }
        if exists {
            std::fs::remove_dir(dir).map_err(io("cannot replace the target directory", dir))?;
        }
        std::fs::rename(&staging, dir).map_err(io("cannot move the restored tree into place", dir))
    })();
    if let Err(e) = result {
        let _ = crate::checkpoint::restore::remove_tree(&staging);
        return Err(e);
    }
    for (root, report) in &reports {
        if state.root(root).is_empty() {
            eprintln!("`{root}` did not exist yet after {phase}");
        } else {
            eprintln!(
                "restored `{root}` after {phase} into {}",
                dir.join(root).display()
            );
        }
        for line in restore_notes(root, report) {
            eprintln!("{line}");
        }
    }
    Ok(())
}

/// The lines that tell a person what a restore of `root` did not recreate.
pub fn restore_notes(root: &str, report: &RestoreReport) -> Vec<String> {
    const SHOWN: usize = 10;
    let list = |paths: &mut dyn Iterator<Item = String>, n: usize| {
        let mut shown: Vec<String> = paths.take(SHOWN).collect();
        if n > SHOWN {
            shown.push(format!("… and {} more", n - SHOWN));
        }
        shown.join(", ")
    };
    let mut notes = Vec::new();
    if !report.skipped.is_empty() {
        let n = report.skipped.len();
        notes.push(format!(
            "skipped {n} entries of `{root}` that a restore does not recreate (sockets, devices): {}",
            list(
                &mut report.skipped.iter().map(|(p, kind)| format!("{p} ({kind})")),
                n
            )
        ));
    }
    if !report.setid_cleared.is_empty() {
        let n = report.setid_cleared.len();
        notes.push(format!(
            "setuid/setgid bits not restored on {n} entries of `{root}` (--keep-setid restores them): {}",
            list(&mut report.setid_cleared.iter().map(RelPath::escaped), n)
        ));
    }
    notes
}
