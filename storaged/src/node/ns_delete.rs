//! `storage.zdb.delete`: removes a namespace and its data; absent is fine.

use super::{Kind, Storage};
use crate::Result;

impl Storage {
    /// Deletes a namespace.
    pub async fn ns_delete(&self, name: &str) -> Result<()> {
        crate::zdbs::valid_name(name).map_err(crate::Error::Invalid)?;
        let Some((disk, _pool)) = self.locate(Kind::Namespace, name).await else {
            return Ok(());
        };
        let mut a = self.endpoint(&disk)?.admin().await?;
        a.nsdel(name).await?;
        let old = self.with_state(|st| {
            st.disks
                .get(&disk)
                .and_then(|d| d.pool.as_ref())
                .and_then(|p| p.record.namespaces.get(name).copied())
        });
        self.commit(
            &disk,
            |r| r.namespaces.remove(name),
            |r| {
                if let Some(ns) = old {
                    r.namespaces.insert(name.to_string(), ns);
                }
            },
        )
        .await?;
        tracing::info!(namespace = name, disk = %disk, "namespace deleted");
        self.publish(
            "storage.zdb",
            &serde_json::json!({"namespace": name, "deleted": true}),
        );
        Ok(())
    }
}
