//! How Nix called the builder: which build to run, or which argv to hand to bash unchanged.
//!
//! Pure apart from reading the builder script named in `args` to classify it.

use std::path::{Path, PathBuf};

/// What the builder was asked to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    /// Run the stdenv build phase by phase. `stock_args` are the stdenv's own
    /// (`-e source-stdenv.sh default-builder.sh`) when the derivation passed them; they only
    /// provide `$0` and `$1` as stock bash would see them.
    Build { stock_args: Vec<String> },
    /// Not a generic stdenv build (custom `builder` script or custom `args`): exec bash with
    /// exactly these arguments.
    PassThrough { args: Vec<String> },
}

/// Classifies the arguments after `argv[0]`.
pub fn classify(args: &[String]) -> Invocation {
    if args.is_empty() {
        return Invocation::Build { stock_args: vec![] };
    }
    if args[0] == "-e" && (2..=3).contains(&args.len()) {
        let script = Path::new(&args[args.len() - 1]);
        let stdenv_loader_ok = args.len() == 2 || is_source_stdenv(Path::new(&args[1]));
        if stdenv_loader_ok && is_generic_builder(script) {
            return Invocation::Build {
                stock_args: args.to_vec(),
            };
        }
    }
    Invocation::PassThrough {
        args: args.to_vec(),
    }
}

/// True when `script` only (optionally) sources `.attrs.sh` and `$stdenv/setup` and then
/// calls `genericBuild`: nixpkgs' `default-builder.sh` in every generation, or an equivalent.
pub fn is_generic_builder(script: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(script) else {
        return false;
    };
    let lines: Vec<String> = meaningful_lines(&text);
    let Some((last, rest)) = lines.split_last() else {
        return false;
    };
    last == "genericBuild" && rest.iter().all(|l| is_attrs_line(l) || is_setup_line(l))
}

/// True when `path` looks like nixpkgs' `source-stdenv.sh`: it sources the stdenv's setup and
/// ends by sourcing `$1`. Anything else in the middle slot is a custom loader: pass through.
fn is_source_stdenv(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let lines = meaningful_lines(&text);
    let Some(last) = lines.last() else {
        return false;
    };
    matches!(
        last.as_str(),
        "source \"$1\"" | ". \"$1\"" | "source $1" | ". $1"
    ) && lines.iter().any(|l| is_setup_line(l))
}

fn meaningful_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn is_setup_line(line: &str) -> bool {
    let unquoted = line.replace('"', "");
    matches!(
        unquoted.as_str(),
        "source $stdenv/setup" | ". $stdenv/setup" | "source ${stdenv}/setup" | ". ${stdenv}/setup"
    )
}

fn is_attrs_line(line: &str) -> bool {
    let unquoted = line.replace('"', "");
    let unquoted = unquoted.trim_end_matches(';');
    unquoted.starts_with("if [ -")
        && (unquoted.contains(".attrs.sh") || unquoted.contains("NIX_ATTRS_SH_FILE"))
        && unquoted.ends_with("fi")
}

/// `$0` and `$1` that stock bash had while sourcing setup, from the stdenv's own args.
pub fn stock_positional(stock_args: &[String]) -> (Option<PathBuf>, Option<PathBuf>) {
    match stock_args {
        [_, script] => (Some(PathBuf::from(script)), None),
        [_, loader, script] => (Some(PathBuf::from(loader)), Some(PathBuf::from(script))),
        _ => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn script(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sh");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        (dir, path.to_string_lossy().into_owned())
    }

    #[test]
    fn recognises_generic_builders() {
        let (_a, modern) = script("# run the phases\ngenericBuild\n");
        let (_b, old) = script(
            "if [ -f .attrs.sh ]; then . .attrs.sh; fi\nsource $stdenv/setup\ngenericBuild\n",
        );
        let (_c, loader) = script(
            "if [ -f \"${NIX_ATTRS_SH_FILE:-}\" ]; then source \"$NIX_ATTRS_SH_FILE\"; fi\nsource \"$stdenv/setup\"\nsource \"$1\"\n",
        );
        let (_d, custom) = script("source $stdenv/setup\nmkdir $out\n");
        let (_e, multiline_loader) = script(
            "if [ -e \"${NIX_ATTRS_SH_FILE:-}\" ]; then\n  . \"$NIX_ATTRS_SH_FILE\"\nelif [ -f .attrs.sh ]; then\n  . ./.attrs.sh\nfi\nsource \"$stdenv/setup\"\nsource \"$1\"\n",
        );
        assert!(matches!(
            classify(&["-e".into(), multiline_loader, modern.clone()]),
            Invocation::Build { .. }
        ));
        assert!(matches!(classify(&[]), Invocation::Build { .. }));
        assert!(matches!(
            classify(&["-e".into(), loader.clone(), modern.clone()]),
            Invocation::Build { .. }
        ));
        assert!(matches!(
            classify(&["-e".into(), old.clone()]),
            Invocation::Build { .. }
        ));
        assert!(matches!(
            classify(&["-e".into(), loader.clone(), custom.clone()]),
            Invocation::PassThrough { .. }
        ));
        assert!(matches!(
            classify(&["-c".into(), "echo hi".into()]),
            Invocation::PassThrough { .. }
        ));
        assert!(matches!(
            classify(&["-e".into(), custom, modern]),
            Invocation::PassThrough { .. }
        ));
    }
}
