//! What the builder learns from the environment Nix gave it: the stdenv, the bash to run, the
//! build directory and structured attributes.
//!
//! The rule for bash (documented in the README):
//! 1. the attribute `checkpointBash` (environment variable, or key of `.attrs.json`);
//! 2. the `export SHELL=…` line that opens `$stdenv/setup` (nixpkgs writes `stdenv.shell`
//!    there; the overlay passes the same path explicitly through rule 1);
//! 3. otherwise the build stops with an error naming both places it looked.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum EnvironmentError {
    #[error("the stdenv is unknown: the derivation has no `stdenv` attribute{0}")]
    NoStdenv(&'static str),
    #[error("`$stdenv/setup` does not exist or is not readable: {path}")]
    NoSetup {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the structured attributes file {path}")]
    AttrsUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the structured attributes file {path} is not valid JSON")]
    AttrsInvalid {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("no usable bash: {0}")]
    NoBash(String),
}

/// The facts a build needs before it can start bash.
#[derive(Debug, Clone)]
pub struct BuildEnvironment {
    /// The process environment exactly as Nix gave it, in order.
    pub vars: Vec<(OsString, OsString)>,
    pub build_top: PathBuf,
    pub stdenv: PathBuf,
    pub bash: PathBuf,
    /// Parsed `.attrs.json` when the derivation uses structured attributes.
    pub structured_attrs: Option<serde_json::Value>,
}

impl BuildEnvironment {
    /// Reads the current process environment.
    pub fn from_process() -> Result<Self, EnvironmentError> {
        Self::from_vars(std::env::vars_os().collect())
    }

    pub fn from_vars(vars: Vec<(OsString, OsString)>) -> Result<Self, EnvironmentError> {
        let map: BTreeMap<&OsStr, &OsStr> = vars
            .iter()
            .map(|(k, v)| (k.as_os_str(), v.as_os_str()))
            .collect();
        let get = |k: &str| map.get(OsStr::new(k)).map(PathBuf::from);
        let build_top = get("NIX_BUILD_TOP")
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("."));
        let structured_attrs = read_structured_attrs(get("NIX_ATTRS_JSON_FILE"), &build_top)?;
        let attr = |k: &str| -> Option<PathBuf> {
            match &structured_attrs {
                Some(json) => json.get(k).and_then(|v| v.as_str()).map(PathBuf::from),
                None => get(k),
            }
            .filter(|p| !p.as_os_str().is_empty())
        };
        let stdenv =
            attr("stdenv").ok_or(EnvironmentError::NoStdenv(if structured_attrs.is_some() {
                " in .attrs.json"
            } else {
                " (environment variable `stdenv` is unset)"
            }))?;
        let setup = stdenv.join("setup");
        let first_line = read_first_line(&setup).map_err(|source| EnvironmentError::NoSetup {
            path: setup.clone(),
            source,
        })?;
        let bash = match attr("checkpointBash") {
            Some(bash) => bash,
            None => shell_from_setup_line(&first_line).ok_or_else(|| {
                EnvironmentError::NoBash(format!(
                    "no `checkpointBash` attribute and {} does not start with `export SHELL=…`",
                    setup.display()
                ))
            })?,
        };
        check_executable(&bash)?;
        Ok(BuildEnvironment {
            vars,
            build_top,
            stdenv,
            bash,
            structured_attrs,
        })
    }

    /// Environment entries bash cannot hold as variables (names that are not identifiers);
    /// they stay in every phase process's environment, as bash passes them on in stock.
    pub fn non_identifier_vars(&self) -> Vec<(OsString, OsString)> {
        self.vars
            .iter()
            .filter(|(k, _)| {
                let name = k.as_bytes();
                !crate::shell::declare::is_identifier(&String::from_utf8_lossy(name))
                    && !name.starts_with(b"BASH_FUNC_")
            })
            .cloned()
            .collect()
    }

    /// The value of a derivation attribute (structured or not) as a string, if set.
    pub fn attribute(&self, name: &str) -> Option<String> {
        match &self.structured_attrs {
            Some(json) => json.get(name).and_then(|v| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Bool(true) => Some("1".into()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            }),
            None => self
                .vars
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.to_string_lossy().into_owned()),
        }
    }
}

fn read_structured_attrs(
    announced: Option<PathBuf>,
    build_top: &Path,
) -> Result<Option<serde_json::Value>, EnvironmentError> {
    // Nix 2.8 announces a path outside the sandbox; the file is also in the build directory.
    let candidates = [announced.clone(), Some(build_top.join(".attrs.json"))];
    let path = candidates.into_iter().flatten().find(|p| p.is_file());
    let path = match (path, announced) {
        (Some(p), _) => p,
        (None, Some(p)) if !p.as_os_str().is_empty() => {
            return Err(EnvironmentError::AttrsUnreadable {
                path: p,
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            })
        }
        _ => return Ok(None),
    };
    let text = std::fs::read(&path).map_err(|source| EnvironmentError::AttrsUnreadable {
        path: path.clone(),
        source,
    })?;
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|source| EnvironmentError::AttrsInvalid { path, source })
}

fn read_first_line(path: &Path) -> std::io::Result<String> {
    use std::io::{BufRead, BufReader};
    let mut line = String::new();
    BufReader::new(std::fs::File::open(path)?).read_line(&mut line)?;
    Ok(line)
}

/// `export SHELL=/nix/store/…/bin/bash` (optionally quoted) → the path.
pub fn shell_from_setup_line(line: &str) -> Option<PathBuf> {
    let value = line.trim().strip_prefix("export SHELL=")?;
    let value = value.trim_matches(|c| c == '"' || c == '\'');
    (!value.is_empty()).then(|| PathBuf::from(value))
}

fn check_executable(bash: &Path) -> Result<(), EnvironmentError> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(bash) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(()),
        Ok(_) => Err(EnvironmentError::NoBash(format!(
            "{} is not an executable file",
            bash.display()
        ))),
        Err(e) => Err(EnvironmentError::NoBash(format!("{}: {e}", bash.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_line() {
        assert_eq!(
            shell_from_setup_line("export SHELL=/nix/store/x-bash/bin/bash\n"),
            Some(PathBuf::from("/nix/store/x-bash/bin/bash"))
        );
        assert_eq!(
            shell_from_setup_line("export SHELL=\"/bin/bash\""),
            Some(PathBuf::from("/bin/bash"))
        );
        assert_eq!(shell_from_setup_line("set -e"), None);
    }

    #[test]
    fn errors_name_the_problem() {
        let err = BuildEnvironment::from_vars(vec![(
            "NIX_BUILD_TOP".into(),
            "/nonexistent-build-top".into(),
        )])
        .unwrap_err();
        assert!(err.to_string().contains("stdenv"), "{err}");
        let err = BuildEnvironment::from_vars(vec![
            ("NIX_BUILD_TOP".into(), "/nonexistent-build-top".into()),
            ("stdenv".into(), "/nonexistent-stdenv".into()),
        ])
        .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent-stdenv/setup"),
            "{err}"
        );
    }
}
