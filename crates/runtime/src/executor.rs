//! The workload executor handed to libcontainer: it resolves the command the way Docker's runc
//! does and fails with Docker's messages, because the docker CLI maps those messages to exit
//! codes 127 (not found) and 126 (not executable).

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::Spec;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};

#[derive(Clone, Default)]
pub struct DockerExecutor;

fn args_and_path(spec: &Spec) -> Option<(Vec<String>, String)> {
    let process = spec.process().as_ref()?;
    let args = process.args().clone()?;
    let path = process
        .env()
        .as_ref()
        .and_then(|env| env.iter().find_map(|e| e.strip_prefix("PATH=")))
        .unwrap_or("")
        .to_string();
    Some((args, path))
}

/// Finds the executable like Go's `exec.LookPath` inside the container (we are already in its
/// root when this runs).
fn look_path(name: &str, path_var: &str) -> Result<PathBuf, String> {
    if name.contains('/') {
        let p = Path::new(name);
        return match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => Err(format!("exec: \"{name}\": is a directory")),
            Ok(m) if m.permissions().mode() & 0o111 == 0 => {
                Err(format!("exec: \"{name}\": permission denied"))
            }
            Ok(_) => Ok(p.to_path_buf()),
            Err(_) => Err(format!(
                "exec: \"{name}\": stat {name}: no such file or directory"
            )),
        };
    }
    for dir in path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(name);
        if let Ok(m) = std::fs::metadata(&candidate) {
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(format!(
        "exec: \"{name}\": executable file not found in $PATH"
    ))
}

impl Executor for DockerExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        let (args, path_var) = args_and_path(spec).ok_or(ExecutorError::InvalidArg)?;
        let first = args.first().ok_or(ExecutorError::InvalidArg)?;
        let resolved = look_path(first, &path_var).map_err(ExecutorError::Other)?;
        let prog = CString::new(resolved.as_os_str().as_encoded_bytes())
            .map_err(|_| ExecutorError::InvalidArg)?;
        let argv: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<_, _>>()
            .map_err(|_| ExecutorError::InvalidArg)?;
        // The environment was already replaced with the spec's by libcontainer (setup_envs).
        let err = nix::unistd::execv(&prog, &argv).err();
        Err(ExecutorError::Other(format!(
            "exec: \"{first}\": {}",
            err.map(|e| e.desc().to_lowercase()).unwrap_or_default()
        )))
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        let (args, path_var) = args_and_path(spec).ok_or_else(|| {
            ExecutorValidationError::ArgValidationError("no command specified".into())
        })?;
        let first = args.first().ok_or_else(|| {
            ExecutorValidationError::ArgValidationError("no command specified".into())
        })?;
        look_path(first, &path_var)
            .map(|_| ())
            .map_err(ExecutorValidationError::ArgValidationError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_docker() {
        assert_eq!(
            look_path("definitely-not-here", "/nonexistent"),
            Err("exec: \"definitely-not-here\": executable file not found in $PATH".into())
        );
        assert_eq!(
            look_path("/tmp", ""),
            Err("exec: \"/tmp\": is a directory".into())
        );
        assert!(look_path("sh", "/bin:/usr/bin").is_ok());
        assert_eq!(
            look_path("/nope/x", ""),
            Err("exec: \"/nope/x\": stat /nope/x: no such file or directory".into())
        );
    }
}
