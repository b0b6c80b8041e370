//! `storage.zdb.delete`: removes a namespace and its data; absent is fine.

use super::Storage;
use crate::Result;

impl Storage {
    /// Deletes a namespace.
    pub async fn ns_delete(&mut self, name: &str) -> Result<()> {
        crate::zdbs::valid_name(name).map_err(crate::Error::Invalid)?;
        let Some(disk) = self.ns_disk(name).map(str::to_string) else {
            return Ok(());
        };
        let mut a = self.admin(&disk).await?;
        a.nsdel(name).await?;
        if let Some(p) = self.disks.get_mut(&disk).and_then(|d| d.pool.as_mut()) {
            p.record.namespaces.remove(name);
        }
        self.save_pool(&disk)?;
        tracing::info!(namespace = name, disk = %disk, "namespace deleted");
        self.publish(
            "storage.zdb",
            &serde_json::json!({"namespace": name, "deleted": true}),
        );
        Ok(())
    }
}
