//! The real [`ShardStore`]: shards are values in a zdb namespace on each node (user mode, key =
//! [`ShardId::key`]), reached with the async zdb client.
//!
//! Where each node's namespace is comes from the registry (`nodes/<id>`: address and namespace);
//! the namespace password comes from the farm's store deployment (farm/README.md), the same
//! for every node. Connections are pooled per node: at most [`PER_NODE`] calls run on one node
//! at once (puts of one stripe go to different nodes, so this bounds what a few puts and the
//! repair loop may open), idle ones are kept for reuse, and one that failed is dropped. Every
//! call has a deadline (connect and each reply).

use crate::codec::shard::HEADER;
use crate::ids::{NodeId, ShardId};
use crate::meta::Meta;
use crate::meta::records::{NodeRecord, ZdbEndpoint};
use crate::store::{Cursor, Fetched, ShardStore, StoreError};
use bytes::{Bytes, BytesMut};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use zdb_client::{AsyncClient, Config, Direction, Error, Secret, Split};

/// Calls in flight on one node at most (and idle connections kept for it).
pub const PER_NODE: usize = 4;
/// How often an unknown node may trigger a re-read of the registry.
const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// How the store connects.
#[derive(Debug, Clone)]
pub struct ZdbStoreConfig {
    /// The store whose namespaces to use (`None`: those named by hand).
    pub store: Option<String>,
    /// The shard namespaces' password (`None`: namespaces without one).
    pub password: Option<Secret>,
    /// Deadline of a connect.
    pub connect_timeout: Duration,
    /// Deadline of each reply (a 1 MiB shard on a slow disk included).
    pub timeout: Duration,
}

impl Default for ZdbStoreConfig {
    fn default() -> Self {
        ZdbStoreConfig {
            store: None,
            password: None,
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
        }
    }
}

struct NodePool {
    endpoint: ZdbEndpoint,
    idle: Mutex<Vec<AsyncClient>>,
    permits: Semaphore,
}

struct Inner {
    cfg: ZdbStoreConfig,
    nodes: Mutex<HashMap<NodeId, Arc<NodePool>>>,
    registry: Option<Meta>,
    refreshed: tokio::sync::Mutex<Option<Instant>>,
}

/// Shards in zdb namespaces; clones share the pools.
#[derive(Clone)]
pub struct ZdbStore {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ZdbStore {
    /// A store that knows no node yet; [`Self::set_nodes`] tells it where they are, and with
    /// `registry` it reads the registry itself when asked about a node it does not know.
    pub fn new(cfg: ZdbStoreConfig, registry: Option<Meta>) -> Self {
        ZdbStore {
            inner: Arc::new(Inner {
                cfg,
                nodes: Mutex::new(HashMap::new()),
                registry,
                refreshed: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// Takes the endpoints of `records` (each node's namespace for the configured store); a
    /// node whose endpoint changed loses its pooled connections, nodes not listed are
    /// forgotten.
    pub fn set_nodes<'a>(&self, records: impl IntoIterator<Item = &'a NodeRecord>) {
        let mut nodes = lock(&self.inner.nodes);
        let mut keep = HashMap::new();
        for r in records {
            let Some(ep) = r.endpoint(self.inner.cfg.store.as_deref()) else {
                continue;
            };
            let pool = match nodes.remove(&r.id) {
                Some(p) if p.endpoint == *ep => p,
                _ => Arc::new(NodePool {
                    endpoint: ep.clone(),
                    idle: Mutex::new(Vec::new()),
                    permits: Semaphore::new(PER_NODE),
                }),
            };
            keep.insert(r.id.clone(), pool);
        }
        *nodes = keep;
    }

    /// Reads the registry and takes its endpoints.
    pub async fn refresh(&self, meta: &Meta) -> Result<(), crate::meta::MetaError> {
        let views = meta.nodes().await?;
        self.set_nodes(views.iter().map(|v| &v.record));
        Ok(())
    }

    fn pool(&self, node: &NodeId) -> Option<Arc<NodePool>> {
        lock(&self.inner.nodes).get(node).cloned()
    }

    /// The pool of `node`, reading the registry once (at most every second) if it is unknown.
    async fn pool_of(&self, node: &NodeId) -> Result<Arc<NodePool>, StoreError> {
        if let Some(p) = self.pool(node) {
            return Ok(p);
        }
        if let Some(meta) = &self.inner.registry {
            let mut last = self.inner.refreshed.lock().await;
            if let Some(p) = self.pool(node) {
                return Ok(p);
            }
            if last.is_none_or(|t| t.elapsed() >= REFRESH_EVERY) {
                *last = Some(Instant::now());
                if let Err(e) = self.refresh(meta).await {
                    tracing::debug!("zdb store: registry: {e}");
                }
            }
        }
        self.pool(node)
            .ok_or_else(|| StoreError::Unknown(node.clone()))
    }

    fn config(&self, ep: &ZdbEndpoint) -> Config {
        let c = &self.inner.cfg;
        let mut cfg = Config::tcp(ep.address.clone())
            .with_namespace(ep.namespace.clone())
            .with_connect_timeout(c.connect_timeout)
            .with_timeout(c.timeout);
        if let Some(pw) = &c.password {
            cfg = cfg.with_password(pw.expose()).with_secure_auth();
        }
        cfg
    }

    /// Runs `op` on a connection to `node` (pooled, bounded), mapping failures.
    async fn with<T, F>(&self, node: &NodeId, op: F) -> Result<T, StoreError>
    where
        F: for<'c> FnOnce(
            &'c mut AsyncClient,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = zdb_client::Result<T>> + Send + 'c>,
        >,
    {
        let pool = self.pool_of(node).await?;
        let _permit = pool
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable(node.clone(), "store closed".into()))?;
        let idle = lock(&pool.idle).pop();
        let mut client = match idle {
            Some(c) => c,
            None => AsyncClient::connect(self.config(&pool.endpoint))
                .await
                .map_err(|e| fail(node, e))?,
        };
        let r = op(&mut client).await;
        match r {
            Ok(v) => {
                if client.is_connected() {
                    lock(&pool.idle).push(client);
                }
                Ok(v)
            }
            Err(e) => {
                if !e.is_connection() && client.is_connected() {
                    lock(&pool.idle).push(client);
                }
                Err(fail(node, e))
            }
        }
    }
}

/// A connection failure is the node being unavailable, and so is a zdb that is still loading
/// its namespaces after a restart (`-LOADING`, it serves in a moment); any other refusal is the
/// node answering.
fn fail(node: &NodeId, e: Error) -> StoreError {
    if e.is_connection() || e.is_loading() {
        StoreError::Unavailable(node.clone(), e.to_string())
    } else {
        StoreError::Refused(node.clone(), e.to_string())
    }
}

impl ShardStore for ZdbStore {
    async fn put(&self, node: &NodeId, id: &ShardId, data: Bytes) -> Result<(), StoreError> {
        let key = id.key();
        self.with(node, move |c| {
            Box::pin(async move { c.set(&key, &data).await.map(|_| ()) })
        })
        .await
    }

    async fn put_split(
        &self,
        node: &NodeId,
        id: &ShardId,
        head: [u8; HEADER],
        payload: Bytes,
    ) -> Result<(), StoreError> {
        let key = id.key();
        self.with(node, move |c| {
            Box::pin(async move { c.set_split(&key, &head, &payload).await.map(|_| ()) })
        })
        .await
    }

    async fn get_split(
        &self,
        node: &NodeId,
        id: &ShardId,
        body: BytesMut,
    ) -> Result<Fetched, StoreError> {
        let key = id.key();
        self.with(node, move |c| {
            Box::pin(async move {
                let (mut head, mut body) = ([0u8; HEADER], body);
                Ok(match c.get_split(&key, &mut head, &mut body).await? {
                    Split::Parts(_) => Fetched::Split(head, body),
                    Split::Whole(v) => Fetched::Whole(v),
                })
            })
        })
        .await
    }

    async fn get(&self, node: &NodeId, id: &ShardId) -> Result<Option<Bytes>, StoreError> {
        let key = id.key();
        self.with(node, move |c| Box::pin(async move { c.get(&key).await }))
            .await
    }

    async fn delete(&self, node: &NodeId, id: &ShardId) -> Result<(), StoreError> {
        let key = id.key();
        self.with(node, move |c| {
            Box::pin(async move { c.del(&key).await.map(|_| ()) })
        })
        .await
    }

    /// One zdb SCAN page after another until about `limit` ids (a page of zdb's is never
    /// split: its cursor names the page's last entry).
    async fn list(
        &self,
        node: &NodeId,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> Result<(Vec<ShardId>, Option<Cursor>), StoreError> {
        self.with(node, move |c| {
            Box::pin(async move {
                let mut out = Vec::new();
                let mut cursor = cursor.map(|c| Bytes::from(c.0));
                loop {
                    let page = c.scan_page(Direction::Forward, cursor.as_deref()).await?;
                    let Some(page) = page else {
                        return Ok((out, None));
                    };
                    out.extend(
                        page.entries
                            .iter()
                            .filter_map(|e| ShardId::from_key(&e.key)),
                    );
                    cursor = Some(page.cursor);
                    if out.len() >= limit.max(1) {
                        return Ok((out, cursor.map(|c| Cursor(c.to_vec()))));
                    }
                }
            })
        })
        .await
    }
}

impl ZdbStore {
    /// Bytes used and the limit of `node`'s shard namespace (NSINFO), for the free space a
    /// node reports in its heartbeat.
    pub async fn usage(&self, node: &NodeId) -> Result<(u64, u64), StoreError> {
        let pool = self.pool_of(node).await?;
        let ns = pool.endpoint.namespace.clone();
        self.with(node, move |c| {
            Box::pin(async move {
                let info = c.nsinfo(&ns).await?;
                let num = |k: &str| {
                    info.as_ref()
                        .and_then(|i| i.get(k))
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                Ok((num("data_size_bytes"), num("data_limits_bytes")))
            })
        })
        .await
    }
}
