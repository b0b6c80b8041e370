//! Where each record lives. Every key starts with `/zos/farm/<farm>/`:
//!
//! | key | value | lifetime |
//! |---|---|---|
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

/// The keys of one farm.
#[derive(Debug, Clone)]
pub struct Keys {
    root: String,
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
        Ok(Keys {
            root: format!("/zos/farm/{farm}/"),
        })
    }

    /// The farm's root prefix.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// Prefix of a table (`nodes/`, `objects/`, ...).
    pub fn table(&self, table: &str) -> String {
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
        format!("{}state/{id}", self.root)
    }

    /// Current version of a name.
    pub fn name(&self, name: &str) -> String {
        format!("{}names/{name}", self.root)
    }

    /// Metadata of an object version.
    pub fn object(&self, id: &ObjectId) -> String {
        format!("{}objects/{id}", self.root)
    }

    /// A put in progress.
    pub fn pending(&self, id: &ObjectId) -> String {
        format!("{}pending/{id}", self.root)
    }

    /// A version whose shards are to delete.
    pub fn trash(&self, id: &ObjectId) -> String {
        format!("{}trash/{id}", self.root)
    }

    /// A damage report.
    pub fn damage(&self, id: &ObjectId) -> String {
        format!("{}damage/{id}", self.root)
    }

    /// The repair election's name.
    pub fn election(&self) -> String {
        format!("{}repair/leader", self.root)
    }

    /// The repair loop's progress.
    pub fn progress(&self) -> String {
        format!("{}repair/progress", self.root)
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
}
