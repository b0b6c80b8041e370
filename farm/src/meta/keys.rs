//! Where each record lives. Every key starts with `/zos/farm/<farm>/`:
//!
//! | key | value | lifetime |
//! |---|---|---|
//! Farm-wide: `nodes/`, `alive/`, `deploy/`, `stores/`, `results/`, `services/`. Per store (the
//! shard namespaces of one owner's `store` deployment, farm/README.md), under
//! `data/<owner>/<deployment>/<workload>/`: `state/`, `names/`, `objects/`, `pending/`,
//! `trash/`, `damage/` and `repair/`; namespaces an operator named by hand (no store) keep
//! those at the farm's root.
//!
//! | `nodes/<node>` | [`NodeRecord`](super::records::NodeRecord) | written by the node at registration |
//! | `alive/<node>` | [`AliveRecord`](super::records::AliveRecord) | under the node's lease: gone when it stops heartbeating |
//! | `state/<node>` | [`NodeState`](super::records::NodeState) | written by the repair leader (down since, out) |
//! | `names/<name>` | object id | the current version of a name |
//! | `objects/<id>` | [`ObjectMeta`](super::records::ObjectMeta) | one per committed object version |
//! | `pending/<id>` | [`Pending`](super::records::Pending) | under the writer's lease while a put runs |
//! | `trash/<id>` | [`ObjectMeta`](super::records::ObjectMeta) | a replaced or removed version whose shards are to delete |
//! | `damage/<id>` | empty | a reader found a bad or missing shard: scrub this object first |
//! | `repair/leader` | election | the active repair loop |
//! | `repair/progress` | [`Progress`](super::records::Progress) | the repair loop's last passes |
//! | `deploy/<node>/<owner>/<id>` | a signed blueprint (or delete) for one node | written by its owner (`zos deploy --etcd --node`) |
//! | `stores/<owner>/<id>` | a signed `store` deployment for every node of the farm | written by its owner (`zos deploy --etcd --farm`) |
//! | `results/<node>/<owner>/<id>` | what the node made of it (accepted or refused, workload results) | written by the node |
//! | `services/<node>` | the node's supervised daemons (`zos services --etcd`) | under the node's own lease: gone when it stops |

use crate::ids::{NodeId, ObjectId};

/// The keys of one farm, and of one store in it.
#[derive(Debug, Clone)]
pub struct Keys {
    root: String,
    /// Where the store's tables are: `root` for the unnamed store, else `root/data/<store>/`.
    scope: String,
    store: Option<String>,
}

/// A store name that would break the key layout.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "store name must be 1..=4 /-separated parts of 1..=128 characters of [A-Za-z0-9._-], none . or .."
)]
pub struct BadStoreName;

/// Checks a store name (`<owner>/<deployment>/<workload>` for a store deployment's).
pub fn check_store(store: &str) -> Result<(), BadStoreName> {
    let parts: Vec<&str> = store.split('/').collect();
    let part_ok = |p: &&str| {
        !p.is_empty()
            && p.len() <= 128
            && *p != "."
            && *p != ".."
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    };
    if parts.len() > 4 || !parts.iter().all(part_ok) {
        return Err(BadStoreName);
    }
    Ok(())
}

/// A farm name that would break the key layout.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("farm name must be 1..=64 characters of [A-Za-z0-9._-]")]
pub struct BadFarmName;

impl Keys {
    /// The keys of farm `farm`.
    pub fn new(farm: &str) -> Result<Self, BadFarmName> {
        if farm.is_empty()
            || farm.len() > 64
            || !farm
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(BadFarmName);
        }
        let root = format!("/zos/farm/{farm}/");
        Ok(Keys {
            scope: root.clone(),
            root,
            store: None,
        })
    }

    /// The same farm's keys for store `store` (`None`: the unnamed one, at the farm's root).
    pub fn scoped(&self, store: Option<&str>) -> Result<Keys, BadStoreName> {
        let scope = match store {
            None => self.root.clone(),
            Some(s) => {
                check_store(s)?;
                format!("{}data/{s}/", self.root)
            }
        };
        Ok(Keys {
            root: self.root.clone(),
            scope,
            store: store.map(str::to_string),
        })
    }

    /// The store these keys are scoped to (`None`: the unnamed one).
    pub fn store(&self) -> Option<&str> {
        self.store.as_deref()
    }

    /// The farm's root prefix.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// Prefix of one of the store's tables (`names/`, `objects/`, `state/`, ...).
    pub fn table(&self, table: &str) -> String {
        format!("{}{table}/", self.scope)
    }

    /// Prefix of a farm-wide table (`nodes/`, `alive/`).
    pub fn farm_table(&self, table: &str) -> String {
        format!("{}{table}/", self.root)
    }

    /// Registration of a node.
    pub fn node(&self, id: &NodeId) -> String {
        format!("{}nodes/{id}", self.root)
    }

    /// Heartbeat of a node.
    pub fn alive(&self, id: &NodeId) -> String {
        format!("{}alive/{id}", self.root)
    }

    /// State of a node as the repair leader sees it.
    pub fn state(&self, id: &NodeId) -> String {
        format!("{}state/{id}", self.scope)
    }

    /// Current version of a name.
    pub fn name(&self, name: &str) -> String {
        format!("{}names/{name}", self.scope)
    }

    /// Metadata of an object version.
    pub fn object(&self, id: &ObjectId) -> String {
        format!("{}objects/{id}", self.scope)
    }

    /// A put in progress.
    pub fn pending(&self, id: &ObjectId) -> String {
        format!("{}pending/{id}", self.scope)
    }

    /// A version whose shards are to delete.
    pub fn trash(&self, id: &ObjectId) -> String {
        format!("{}trash/{id}", self.scope)
    }

    /// A damage report.
    pub fn damage(&self, id: &ObjectId) -> String {
        format!("{}damage/{id}", self.scope)
    }

    /// The repair election's name.
    pub fn election(&self) -> String {
        format!("{}repair/leader", self.scope)
    }

    /// The repair loop's progress.
    pub fn progress(&self) -> String {
        format!("{}repair/progress", self.scope)
    }

    /// Prefix of the blueprints addressed to node `node` (each under `<owner>/<id>`).
    pub fn deploy(&self, node: &NodeId) -> String {
        format!("{}deploy/{node}/", self.root)
    }

    /// Prefix of the farm-wide `store` deployments (each under `<owner>/<id>`).
    pub fn stores(&self) -> String {
        format!("{}stores/", self.root)
    }

    /// Prefix of the results node `node` writes back (each under `<owner>/<id>`).
    pub fn results(&self, node: &NodeId) -> String {
        format!("{}results/{node}/", self.root)
    }

    /// The services snapshot node `node` publishes (what `node.services@1` answers locally).
    pub fn services(&self, node: &NodeId) -> String {
        format!("{}services/{node}", self.root)
    }

    /// The part of `key` after `prefix`, if it starts with it.
    pub fn suffix<'a>(key: &'a [u8], prefix: &str) -> Option<&'a str> {
        std::str::from_utf8(key.strip_prefix(prefix.as_bytes())?).ok()
    }
}

/// Checks an object name: 1..=512 bytes of UTF-8 without control characters (names are etcd
/// keys and are printed by `zos store ls`).
pub fn check_name(name: &str) -> Result<(), BadName> {
    if name.is_empty() || name.len() > 512 || name.chars().any(char::is_control) {
        return Err(BadName);
    }
    Ok(())
}

/// An object name that cannot be stored.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("object name must be 1..=512 bytes without control characters")]
pub struct BadName;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn farm_names_and_object_names() {
        assert!(Keys::new("farm-1.a_b").is_ok());
        for bad in ["", "a/b", "a b", &"x".repeat(65)] {
            assert_eq!(Keys::new(bad).err(), Some(BadFarmName), "{bad:?}");
        }
        assert!(check_name("photos/2026/a.jpg").is_ok());
        assert_eq!(check_name(""), Err(BadName));
        assert_eq!(check_name("a\nb"), Err(BadName));
        let k = Keys::new("f").expect("name");
        assert_eq!(k.name("a/b"), "/zos/farm/f/names/a/b");
        assert_eq!(
            Keys::suffix(k.name("a/b").as_bytes(), &k.table("names")),
            Some("a/b")
        );
    }

    #[test]
    fn a_store_scopes_its_tables_and_shares_the_registry() {
        let k = Keys::new("f").expect("name");
        let s = k.scoped(Some("owner/dep/shards")).expect("store");
        assert_eq!(s.store(), Some("owner/dep/shards"));
        assert_eq!(s.name("a"), "/zos/farm/f/data/owner/dep/shards/names/a");
        assert_eq!(
            s.election(),
            "/zos/farm/f/data/owner/dep/shards/repair/leader"
        );
        assert_eq!(
            s.state(&NodeId("n".into())),
            "/zos/farm/f/data/owner/dep/shards/state/n"
        );
        assert_eq!(s.node(&NodeId("n".into())), k.node(&NodeId("n".into())));
        assert_eq!(s.farm_table("alive"), "/zos/farm/f/alive/");
        let back = s.scoped(None).expect("unnamed");
        assert_eq!((back.store(), back.name("a")), (None, k.name("a")));
        for bad in [
            "",
            "a//b",
            "../x",
            "a/./b",
            "a b",
            "1/2/3/4/5",
            &"x".repeat(129),
        ] {
            assert_eq!(k.scoped(Some(bad)).err(), Some(BadStoreName), "{bad:?}");
        }
    }
}
