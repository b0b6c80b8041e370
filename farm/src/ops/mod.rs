//! What the farm does with metadata and shards together:
//!
//! - [`put`] / [`get`]: objects in and out, streaming stripe by stripe;
//! - [`states`]: node states (up, down, out, returned) as pure functions;
//! - [`health`]: an object's placement and redundancy now (pure);
//! - [`snapshot`]: the farm as placement and repair see it;
//! - [`repair`]: the leader's loop: node states, rebuilds, scrub, collection;
//! - [`scrub`]: verification and in-place rebuild of one object;
//! - [`collect`]: deletion of shards nothing references.

pub mod collect;
pub mod get;
pub mod health;
pub mod put;
pub mod repair;
pub mod scrub;
pub mod snapshot;
pub mod states;

use crate::codec::Params;
use crate::codec::params::ParamsError;
use crate::codec::stripe::StripeError;
use crate::meta::{EtcdAccess, Meta, MetaError};
use crate::placement::PlacementError;
use crate::store::StoreError;
use crate::store::zdb::{ZdbStore, ZdbStoreConfig};

/// Stripes per segment by default: 256 stripes of 4 MiB put 1 GiB of an object on one set of
/// nodes, so a 1 TiB object has 1024 node lists (about 200 KiB of metadata).
pub const SEGMENT: u32 = 256;
/// Most segments per object: keeps an object's record under etcd's 1.5 MiB request limit.
pub const MAX_SEGMENTS: usize = 4096;

/// An object operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FarmError {
    /// Metadata.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// A shard store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Encoding or decoding a stripe.
    #[error(transparent)]
    Stripe(#[from] StripeError),
    /// Not enough nodes.
    #[error(transparent)]
    Placement(#[from] PlacementError),
    /// Bad encoding parameters.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// Reading the input or writing the output.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// No such object.
    #[error("object {0} not found")]
    NotFound(String),
    /// A metadata record does not describe a readable object.
    #[error("object metadata: {0}")]
    Corrupt(String),
    /// The object is too large for one metadata record.
    #[error("object too large: more than {MAX_SEGMENTS} segments of {0} stripes")]
    TooLarge(u32),
}

/// A farm client: metadata, a shard store and the encoding of new objects.
pub struct Farm<S> {
    /// The farm's etcd.
    pub meta: Meta,
    /// Where shards go.
    pub store: S,
    /// Encoding of new objects.
    pub params: Params,
    /// Stripes per segment of new objects.
    pub segment: u32,
}

impl Farm<ZdbStore> {
    /// A client of farm `farm` over etcd `endpoints` whose shards live in the nodes' zdb
    /// namespaces (endpoints read from the registry now and whenever an unknown node shows up).
    pub async fn connect(
        endpoints: &[String],
        farm: &str,
        cfg: ZdbStoreConfig,
    ) -> Result<Self, FarmError> {
        Self::connect_with(endpoints, &EtcdAccess::plain(), farm, cfg).await
    }

    /// [`Self::connect`] through `access` (the farm's etcd secured with TLS, a user). The
    /// objects are those of store `cfg.store`.
    pub async fn connect_with(
        endpoints: &[String],
        access: &EtcdAccess,
        farm: &str,
        cfg: ZdbStoreConfig,
    ) -> Result<Self, FarmError> {
        let meta = Meta::connect_with(endpoints, access, farm).await?;
        Self::over(&meta, cfg).await
    }

    /// A client over `meta`'s connection for the objects of store `cfg.store`.
    pub async fn over(meta: &Meta, cfg: ZdbStoreConfig) -> Result<Self, FarmError> {
        let meta = meta.scoped(cfg.store.as_deref())?;
        let store = ZdbStore::new(cfg, Some(meta.clone()));
        store.refresh(&meta).await?;
        Ok(Farm::new(meta, store))
    }
}

impl<S> Farm<S> {
    /// A client with the default encoding (4+2, 4 MiB stripes).
    pub fn new(meta: Meta, store: S) -> Self {
        Farm {
            meta,
            store,
            params: Params::default(),
            segment: SEGMENT,
        }
    }
}
