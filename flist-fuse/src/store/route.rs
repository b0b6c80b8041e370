//! Routes: shard blocks by the first byte of their id and replicate to every store whose
//! range covers it. `get` tries the matching stores in order and skips a replica whose
//! bytes do not match the id; `put` writes to all of them.

use std::sync::Arc;

use super::{Check, Store, StoreError};
use crate::format::Hash;

/// A routing store over `(lo, hi, store)` ranges of the id's first byte.
pub struct RouteStore {
    routes: Vec<(u8, u8, Arc<dyn Store>)>,
    check: Check,
}

impl RouteStore {
    /// Routes whose replicas are checked with `check` (e.g. the rfs BLAKE2b ids).
    pub fn with_check(routes: Vec<(u8, u8, Arc<dyn Store>)>, check: Check) -> Self {
        RouteStore { routes, check }
    }

    fn matching(&self, id: &Hash) -> impl Iterator<Item = &Arc<dyn Store>> {
        let b = id[0];
        self.routes
            .iter()
            .filter(move |(lo, hi, _)| *lo <= b && b <= *hi)
            .map(|(_, _, s)| s)
    }

    fn none(&self, id: &Hash) -> StoreError {
        StoreError::Protocol {
            store: self.url(),
            msg: format!("no route for id prefix {:02x}", id[0]),
        }
    }
}

impl Store for RouteStore {
    fn get(&self, id: &Hash) -> Result<Vec<u8>, StoreError> {
        let mut last = None;
        for s in self.matching(id) {
            match s.get(id) {
                Ok(d) => match (self.check)(id, &d) {
                    Ok(()) => return Ok(d),
                    Err(e) => last = Some(e),
                },
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| self.none(id)))
    }

    fn put(&self, id: &Hash, data: &[u8]) -> Result<(), StoreError> {
        let mut any = false;
        for s in self.matching(id) {
            s.put(id, data)?;
            any = true;
        }
        if any { Ok(()) } else { Err(self.none(id)) }
    }

    fn exists(&self, id: &Hash) -> Result<bool, StoreError> {
        let mut any = false;
        for s in self.matching(id) {
            if !s.exists(id)? {
                return Ok(false);
            }
            any = true;
        }
        Ok(any)
    }

    fn put_batch(&self, blocks: &[(Hash, Vec<u8>)]) -> Result<(), StoreError> {
        if let Some((id, _)) = blocks
            .iter()
            .find(|(id, _)| self.matching(id).next().is_none())
        {
            return Err(self.none(id));
        }
        for (lo, hi, s) in &self.routes {
            let mine: Vec<(Hash, Vec<u8>)> = blocks
                .iter()
                .filter(|(id, _)| *lo <= id[0] && id[0] <= *hi)
                .cloned()
                .collect();
            if !mine.is_empty() {
                s.put_batch(&mine)?;
            }
        }
        Ok(())
    }

    fn url(&self) -> String {
        self.routes
            .iter()
            .map(|(lo, hi, s)| format!("{lo:02x}-{hi:02x}={}", s.url()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}
