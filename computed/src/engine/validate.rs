//! Checks on requests before anything is made. Every name that reaches a path goes through
//! [`name`]: a container name is a folder under `<root>/containers`, so `..` or a `/` would
//! point an operation (delete: `remove_dir_all`) outside it.

use crate::error::{Error, Result};
use bus::api::compute::ContainerSpec;
use std::path::{Component, Path};

/// Longest container name (leaves room for prefixes in netns and cgroup names).
pub const MAX_NAME: usize = 100;
/// Smallest memory limit accepted.
pub const MIN_MEMORY: u64 = 4 << 20;
/// Most CPU cores a quota may name.
pub const MAX_CPU: f64 = 1024.0;

fn bad<T>(m: String) -> Result<T> {
    Err(Error::Invalid(m))
}

/// Checks a container name: 1 to [`MAX_NAME`] characters of `[a-zA-Z0-9_-]`.
pub fn name(n: &str) -> Result<()> {
    if n.is_empty()
        || n.len() > MAX_NAME
        || !n
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return bad(format!(
            "container name {n:?} must be 1 to {MAX_NAME} characters of [a-zA-Z0-9_-]"
        ));
    }
    Ok(())
}

/// Checks a whole spec.
pub fn spec(spec: &ContainerSpec) -> Result<()> {
    name(&spec.name)?;
    if spec.entrypoint.first().is_none_or(|e| e.is_empty()) {
        return bad("entrypoint is empty".into());
    }
    if spec.memory < MIN_MEMORY {
        return bad(format!("memory must be at least {MIN_MEMORY} bytes"));
    }
    if !spec.cpu.is_finite() || spec.cpu < 0.0 || spec.cpu > MAX_CPU {
        return bad(format!("cpu {} out of range 0..=1024 cores", spec.cpu));
    }
    if spec.pids == 0 {
        return bad("pids must be at least 1".into());
    }
    if !spec.workdir.starts_with('/') {
        return bad(format!("workdir {:?} must be absolute", spec.workdir));
    }
    if let Some(h) = &spec.hostname
        && (h.is_empty()
            || h.len() > 63
            || !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    {
        return bad(format!("hostname {h:?} is not a valid host name"));
    }
    for (k, v) in &spec.env {
        if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
            return bad(format!("environment variable {k:?} is not valid"));
        }
    }
    for m in &spec.mounts {
        let t = Path::new(&m.target);
        if !t.is_absolute()
            || t.components().any(|c| matches!(c, Component::ParentDir))
            || t == Path::new("/")
        {
            return bad(format!(
                "mount target {:?} must be an absolute path below /",
                m.target
            ));
        }
        if !m.source.is_absolute() || !m.source.is_dir() {
            return bad(format!(
                "mount source {} must be an existing folder",
                m.source.display()
            ));
        }
    }
    if !spec.rw.is_absolute() {
        return bad(format!("rw {} must be absolute", spec.rw.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_the_containers_folder_are_refused() {
        for n in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "/abs",
            "a b",
            "é",
            &"x".repeat(101),
        ] {
            assert!(matches!(name(n), Err(Error::Invalid(_))), "{n:?}");
        }
        for n in ["a", "A-b_9", &"x".repeat(100)] {
            assert!(name(n).is_ok(), "{n:?}");
        }
    }
}
