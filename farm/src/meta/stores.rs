//! Which stores a farm holds, and which one a client means. A store is the set of shard
//! namespaces one owner's `store` deployment provisioned on the nodes
//! (`<owner>/<deployment>/<workload>`); namespaces an operator named by hand form the unnamed
//! store. Each has its own objects, node states and repair leader ([`Keys::scoped`]).
//!
//! [`Keys::scoped`]: crate::meta::keys::Keys::scoped

use crate::meta::{Meta, MetaError};
use std::collections::BTreeSet;

/// The stores the registered nodes host (`None`: namespaces named by hand).
pub type Stores = BTreeSet<Option<String>>;

impl Meta {
    /// The stores the farm's registered nodes advertise.
    pub async fn stores(&self) -> Result<Stores, MetaError> {
        let records: Vec<(String, crate::meta::records::NodeRecord)> =
            self.list_json(&self.keys().farm_table("nodes")).await?;
        Ok(records
            .iter()
            .flat_map(|(_, r)| r.zdb.iter().map(|e| e.store.clone()))
            .collect())
    }
}

/// The store a client means (pure): `wanted` is a store's full name or its last parts (`shards`,
/// `deployment/shards`), matching exactly one store; without it, the farm's only store.
pub fn pick(wanted: Option<&str>, known: &Stores) -> Result<Option<String>, String> {
    let named: Vec<&String> = known.iter().flatten().collect();
    let list = || {
        let mut all: Vec<&str> = named.iter().map(|s| s.as_str()).collect();
        if known.contains(&None) {
            all.push("(unnamed)");
        }
        all.join(", ")
    };
    match wanted {
        Some(w) => {
            let hits: Vec<&&String> = named
                .iter()
                .filter(|s| s.as_str() == w || s.ends_with(&format!("/{w}")))
                .collect();
            match hits.as_slice() {
                [one] => Ok(Some((**one).clone())),
                [] => Err(format!(
                    "no node of the farm hosts store {w:?} (stores: {})",
                    list()
                )),
                _ => Err(format!("store {w:?} is ambiguous: {}", list())),
            }
        }
        None if named.is_empty() => Ok(None),
        None if named.len() == 1 && !known.contains(&None) => Ok(Some(named[0].clone())),
        None => Err(format!(
            "the farm holds several stores ({}): name one with --store or ZOS_STORE",
            list()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stores(names: &[Option<&str>]) -> Stores {
        names.iter().map(|n| n.map(str::to_string)).collect()
    }

    #[test]
    fn the_only_store_or_the_one_named_by_its_last_parts() {
        let a = "ownera/dep/shards";
        let b = "ownerb/dep/photos";
        assert_eq!(pick(None, &stores(&[])), Ok(None));
        assert_eq!(pick(None, &stores(&[None])), Ok(None));
        assert_eq!(pick(None, &stores(&[Some(a)])), Ok(Some(a.into())));
        let two = stores(&[Some(a), Some(b)]);
        assert!(pick(None, &two).expect_err("refused").contains("--store"));
        assert!(pick(None, &stores(&[None, Some(a)])).is_err());
        assert_eq!(pick(Some("shards"), &two), Ok(Some(a.into())));
        assert_eq!(pick(Some("dep/photos"), &two), Ok(Some(b.into())));
        assert_eq!(pick(Some(b), &two), Ok(Some(b.into())));
        // a part of a name is not its end
        assert!(
            pick(Some("hotos"), &two)
                .expect_err("refused")
                .contains("no node")
        );
        let same = stores(&[Some("x/d/shards"), Some("y/d/shards")]);
        assert!(
            pick(Some("shards"), &same)
                .expect_err("refused")
                .contains("ambiguous")
        );
        assert_eq!(
            pick(Some("x/d/shards"), &same),
            Ok(Some("x/d/shards".into()))
        );
    }
}
