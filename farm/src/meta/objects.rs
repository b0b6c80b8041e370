//! Object metadata, changed only by etcd transactions: a put becomes visible whole (name,
//! metadata, end of its pending record, the replaced version moved to the trash) or not at
//! all; a retried commit whose first answer was lost is recognised and not applied twice.

use crate::ids::ObjectId;
use crate::meta::client::{cas, parse, to_json};
use crate::meta::keys::check_name;
use crate::meta::lease::Lease;
use crate::meta::records::{ObjectMeta, Pending, now};
use crate::meta::{Meta, MetaError};
use etcd_client::{Compare, CompareOp, Txn, TxnOp};

/// TTL of a put's pending record: a writer that dies leaves shards that become garbage this
/// long after its last keepalive.
pub const PENDING_TTL: i64 = 10;

/// A put that has announced itself: its shards are not garbage while this lives.
pub struct PendingPut {
    name: String,
    id: ObjectId,
    lease: Lease,
}

impl PendingPut {
    /// The object version being written.
    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// Whether the pending record expired (the put must fail: its shards may be collected).
    pub fn lost(&self) -> bool {
        self.lease.lost()
    }
}

/// The current version of a name.
pub struct Current {
    /// Its metadata.
    pub meta: ObjectMeta,
    /// Mod revision of `objects/<id>`, for compare-and-swap updates.
    pub revision: i64,
}

impl Meta {
    /// Announces a put of `name` as version `id` (under a lease kept alive until commit).
    pub async fn begin_put(&self, name: &str, id: ObjectId) -> Result<PendingPut, MetaError> {
        check_name(name)?;
        let lease = Lease::grant(self, PENDING_TTL).await?;
        let record = Pending {
            name: name.to_string(),
            started: now(),
        };
        self.put_json(&self.keys().pending(&id), &record, Some(lease.id()))
            .await?;
        Ok(PendingPut {
            name: name.to_string(),
            id,
            lease,
        })
    }

    /// Makes `meta` the current version of its name, moving the replaced version (if any) to
    /// the trash. Returns the replaced version's id.
    pub async fn commit_put(
        &self,
        put: PendingPut,
        meta: &ObjectMeta,
    ) -> Result<Option<ObjectId>, MetaError> {
        let k = self.keys().clone();
        let (name_key, obj_key, pending_key) =
            (k.name(&put.name), k.object(&put.id), k.pending(&put.id));
        let value = to_json(meta);
        loop {
            let name_now = self.get_raw(&name_key).await?;
            let old = match &name_now {
                Some((v, _)) => {
                    let old: ObjectId = parse(&name_key, v)?;
                    self.get_raw(&k.object(&old))
                        .await?
                        .map(|(bytes, rev)| (old, bytes, rev))
                }
                None => None,
            };
            let mut when = vec![
                Compare::version(pending_key.as_str(), CompareOp::Greater, 0),
                Compare::mod_revision(
                    name_key.as_str(),
                    CompareOp::Equal,
                    name_now.as_ref().map_or(0, |(_, r)| *r),
                ),
            ];
            let mut then = vec![
                TxnOp::put(obj_key.as_str(), value.clone(), None),
                TxnOp::put(name_key.as_str(), to_json(&put.id), None),
                TxnOp::delete(pending_key.as_str(), None),
            ];
            if let Some((old, bytes, rev)) = &old {
                when.push(Compare::mod_revision(k.object(old), CompareOp::Equal, *rev));
                then.push(TxnOp::delete(k.object(old), None));
                then.push(TxnOp::put(k.trash(old), bytes.clone(), None));
            }
            let txn = Txn::new().when(when).and_then(then);
            match self.txn("commit", txn).await {
                Ok(r) if r.succeeded() => return Ok(old.map(|(id, _, _)| id)),
                Ok(_) | Err(MetaError::Unavailable { .. }) => {}
                Err(e) => return Err(e),
            }
            // Not applied now: applied by an attempt whose answer was lost, or the name moved
            // on meanwhile, or our pending record expired.
            if self.get_raw(&obj_key).await?.is_some()
                || self.get_raw(&k.trash(&put.id)).await?.is_some()
            {
                return Ok(old.map(|(id, _, _)| id));
            }
            if self.get_raw(&pending_key).await?.is_none() {
                return Err(MetaError::Conflict(format!(
                    "put of {} expired before its commit (writer stalled past {PENDING_TTL} s)",
                    put.name
                )));
            }
        }
    }

    /// Abandons a put: its pending record goes at once, its shards become garbage.
    pub async fn abandon_put(&self, put: PendingPut) {
        put.lease.revoke().await;
    }

    /// The current version of `name`.
    pub async fn object(&self, name: &str) -> Result<Option<Current>, MetaError> {
        check_name(name)?;
        let name_key = self.keys().name(name);
        // A put or rm between the two reads moves the version: read again.
        for _ in 0..16 {
            let Some((v, _)) = self.get_raw(&name_key).await? else {
                return Ok(None);
            };
            let id: ObjectId = parse(&name_key, &v)?;
            if let Some(c) = self.object_by_id(&id).await? {
                return Ok(Some(c));
            }
        }
        Err(MetaError::Conflict(format!("{name} keeps changing")))
    }

    /// A page of at most `limit` names after `after`, in key order, with their current
    /// version ids.
    pub async fn names(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<(String, ObjectId)>, MetaError> {
        let prefix = self.keys().table("names");
        self.page(&prefix, after, limit)
            .await?
            .into_iter()
            .map(|(name, v, _)| {
                let id = parse(&format!("{prefix}{name}"), &v)?;
                Ok((name, id))
            })
            .collect()
    }

    /// A committed object version by id.
    pub async fn object_by_id(&self, id: &ObjectId) -> Result<Option<Current>, MetaError> {
        let key = self.keys().object(id);
        Ok(match self.get_raw(&key).await? {
            None => None,
            Some((bytes, revision)) => Some(Current {
                meta: parse(&key, &bytes)?,
                revision,
            }),
        })
    }

    /// Removes `name`: its version goes to the trash (its shards are deleted by the repair
    /// loop). Returns the removed version, `None` if there was none.
    pub async fn remove(&self, name: &str) -> Result<Option<ObjectId>, MetaError> {
        check_name(name)?;
        let k = self.keys().clone();
        let name_key = k.name(name);
        loop {
            let Some((v, name_rev)) = self.get_raw(&name_key).await? else {
                return Ok(None);
            };
            let id: ObjectId = parse(&name_key, &v)?;
            let Some((bytes, rev)) = self.get_raw(&k.object(&id)).await? else {
                continue;
            };
            let txn = Txn::new()
                .when(vec![
                    Compare::mod_revision(name_key.as_str(), CompareOp::Equal, name_rev),
                    Compare::mod_revision(k.object(&id), CompareOp::Equal, rev),
                ])
                .and_then(vec![
                    TxnOp::delete(name_key.as_str(), None),
                    TxnOp::delete(k.object(&id), None),
                    TxnOp::put(k.trash(&id), bytes, None),
                ]);
            let r = self.txn("remove", txn).await?;
            if r.succeeded() {
                return Ok(Some(id));
            }
        }
    }

    /// Replaces the metadata of object `id` if it is still at `revision` (repair moving
    /// shards), and only while `fence` (the repair leader's election key) exists. Returns
    /// whether it was applied.
    pub async fn update_object(
        &self,
        meta: &ObjectMeta,
        revision: i64,
        fence: Option<&[u8]>,
    ) -> Result<bool, MetaError> {
        let key = self.keys().object(&meta.id);
        let txn = Txn::new()
            .when(cas(&key, revision, fence))
            .and_then(vec![TxnOp::put(key.as_str(), to_json(meta), None)]);
        let r = self.txn("update object", txn).await?;
        if r.succeeded() {
            return Ok(true);
        }
        // A lost answer to an applied update: the record now holds exactly our value.
        Ok(matches!(self.get_raw(&key).await?, Some((b, _)) if b == to_json(meta)))
    }
}
