//! Volumes: btrfs subvolumes at `<pool>/volumes/<name>` with a qgroup limit (the enforced
//! size). The node's state volume is the subvolume `<pool>/state`.

use crate::Result;
use crate::system::System;
use std::path::{Path, PathBuf};

/// Path of volume `name` in the pool mounted at `mnt`.
pub fn path(mnt: &Path, name: &str) -> PathBuf {
    mnt.join("volumes").join(name)
}

/// Creates (or finds) the subvolume at `p` and sets its limit; a subvolume created here is
/// removed again when setting the limit fails, so nothing is half-created.
pub fn create_at(sys: &dyn System, p: &Path, size: u64) -> Result<()> {
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).map_err(crate::Error::io("mkdir", parent))?;
    }
    let created = !p.exists();
    if created {
        sys.subvolume_create(p)?;
    }
    if let Err(e) = sys.qgroup_limit(p, size) {
        if created {
            let _ = sys.subvolume_delete(p);
        }
        return Err(e.into());
    }
    Ok(())
}

/// Makes the subvolume at `p` with its limit when it is missing; whether it had to.
pub fn restore_at(sys: &dyn System, p: &Path, size: u64) -> Result<bool> {
    if p.exists() {
        return Ok(false);
    }
    create_at(sys, p, size)?;
    Ok(true)
}

/// Changes the limit of the subvolume at `p`.
pub fn resize_at(sys: &dyn System, p: &Path, size: u64) -> Result<()> {
    sys.qgroup_limit(p, size).map_err(Into::into)
}

/// Deletes the subvolume at `p`; absent is fine.
pub fn delete_at(sys: &dyn System, p: &Path) -> Result<()> {
    if p.exists() {
        sys.subvolume_delete(p)?;
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::system::{Call, Fake};

    #[test]
    fn failed_limit_removes_the_new_subvolume() {
        let d = tempfile::tempdir().expect("tempdir");
        let sys = Fake::new();
        let p = path(d.path(), "v1");
        sys.fail_next("qgroup_limit");
        assert!(create_at(&sys, &p, 100).is_err());
        assert!(!p.exists());
        assert_eq!(
            sys.calls(),
            vec![
                Call::SubvolCreate(p.clone()),
                Call::QgroupLimit(p.clone(), 100),
                Call::SubvolDelete(p.clone())
            ]
        );
        create_at(&sys, &p, 100).expect("create");
        resize_at(&sys, &p, 200).expect("grow");
        delete_at(&sys, &p).expect("delete");
        delete_at(&sys, &p).expect("absent is fine");
        assert!(!p.exists());
    }
}
