//! What `readelf` says about a built file, for the checks that the compiler wrapper
//! (`tests/nix/cc-wrapper`) acted: a program's RUNPATH, whether it has a GNU build-id note,
//! and the compiler command lines (`DW_AT_producer`) an object's debug information records.

use std::path::Path;
use std::process::Command;

use crate::error::HarnessError;

/// `readelf ARGS FILE`'s standard output (wide, so nothing is cut).
fn readelf(args: &[&str], file: &Path) -> Result<String, HarnessError> {
    let mut cmd = Command::new("readelf");
    cmd.arg("--wide").args(args).arg(file);
    let command = format!("readelf --wide {} {}", args.join(" "), file.display());
    let output = cmd.output().map_err(|source| HarnessError::Spawn {
        command: command.clone(),
        source,
    })?;
    if !output.status.success() {
        return Err(HarnessError::Command {
            command,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The RUNPATH of `file` (`readelf -d`), `None` when it has none.
pub fn runpath(file: &Path) -> Result<Option<String>, HarnessError> {
    Ok(parse_runpath(&readelf(&["-d"], file)?))
}

/// Whether `file` has a GNU build-id note (`readelf -n`).
pub fn has_build_id(file: &Path) -> Result<bool, HarnessError> {
    Ok(readelf(&["-n"], file)?.contains("NT_GNU_BUILD_ID"))
}

/// The `DW_AT_producer` strings (compiler and flags) of `file`'s debug information.
pub fn producers(file: &Path) -> Result<Vec<String>, HarnessError> {
    Ok(parse_producers(&readelf(&["--debug-dump=info"], file)?))
}

/// The RUNPATH in `readelf -d` output: the text in brackets of its `(RUNPATH)` line.
pub fn parse_runpath(dynamic: &str) -> Option<String> {
    let line = dynamic.lines().find(|l| l.contains("(RUNPATH)"))?;
    let start = line.find('[')? + 1;
    let end = line.rfind(']')?;
    Some(line[start..end].to_owned())
}

/// The `DW_AT_producer` values in `readelf --debug-dump=info` output (after the last `): `
/// of an indirect string, else after the attribute's name).
pub fn parse_producers(info: &str) -> Vec<String> {
    info.lines()
        .filter_map(|l| l.split_once("DW_AT_producer"))
        .map(|(_, rest)| {
            let rest = rest.trim_start().trim_start_matches(':').trim_start();
            match rest.rfind("): ") {
                Some(i) if rest.starts_with('(') => rest[i + 3..].to_owned(),
                _ => rest.to_owned(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_runpath() {
        let text = "\nDynamic section at offset 0x2dd8 contains 27 entries:\n  Tag        Type                         Name/Value\n 0x0000000000000001 (NEEDED)             Shared library: [libc.so.6]\n 0x000000000000001d (RUNPATH)            Library runpath: [/nix/store/abc-x/lib:/nix/store/def-y/lib]\n";
        assert_eq!(
            parse_runpath(text).as_deref(),
            Some("/nix/store/abc-x/lib:/nix/store/def-y/lib")
        );
        assert_eq!(
            parse_runpath(" 0x1 (NEEDED) Shared library: [libc.so.6]\n"),
            None
        );
    }

    #[test]
    fn finds_direct_and_indirect_producers() {
        let text = "    <c>   DW_AT_producer    : (indirect string, offset: 0x5): GNU C17 12.2.0 -g -frandom-seed=wiv8nhbwiz\n    <10>   DW_AT_language    : 29\n    <d>   DW_AT_producer    : GNU C17 12.2.0 -O2\n";
        assert_eq!(
            parse_producers(text),
            vec![
                "GNU C17 12.2.0 -g -frandom-seed=wiv8nhbwiz".to_owned(),
                "GNU C17 12.2.0 -O2".to_owned()
            ]
        );
    }
}
