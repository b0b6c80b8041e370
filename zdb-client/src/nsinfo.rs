//! NSINFO's `key: value` lines, parsed into a struct (missing or unreadable fields are
//! zero or false; every line stays available by name).

use std::collections::BTreeMap;

use crate::error::Result;
use crate::value::Value;

/// A namespace's running mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Keys chosen by the client (`userkey`).
    User,
    /// Keys are ids allocated by the server (`sequential`).
    Sequential,
    /// Something else the server named.
    Other(String),
}

/// What `NSINFO name` tells about a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsInfo {
    /// `name`.
    pub name: String,
    /// `entries`: live keys.
    pub entries: u64,
    /// `public`: readable without the password.
    pub public: bool,
    /// `worm`: write once, read many.
    pub worm: bool,
    /// `locked`: read-only or frozen for now.
    pub locked: bool,
    /// `password`: whether one is set.
    pub password: bool,
    /// `data_size_bytes`.
    pub data_size_bytes: u64,
    /// `data_limits_bytes` (0 = unlimited).
    pub data_limits_bytes: u64,
    /// `index_size_bytes`.
    pub index_size_bytes: u64,
    /// `mode`.
    pub mode: Mode,
    /// `space_available`, when a limit is set.
    pub space_available: Option<u64>,
    /// Every line, by key (admin-only fields such as `data_path` included when shown).
    pub fields: BTreeMap<String, String>,
}

impl NsInfo {
    /// Parses NSINFO's text.
    pub fn parse(text: &str) -> NsInfo {
        let fields: BTreeMap<String, String> = text
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let get = |k: &str| fields.get(k).map(String::as_str);
        let num = |k: &str| get(k).and_then(|v| v.parse::<u64>().ok());
        let yes = |k: &str| get(k) == Some("yes");
        NsInfo {
            name: get("name").unwrap_or_default().to_string(),
            entries: num("entries").unwrap_or(0),
            public: yes("public"),
            worm: yes("worm"),
            locked: yes("locked"),
            password: yes("password"),
            data_size_bytes: num("data_size_bytes").unwrap_or(0),
            data_limits_bytes: num("data_limits_bytes").unwrap_or(0),
            index_size_bytes: num("index_size_bytes").unwrap_or(0),
            mode: match get("mode") {
                Some("userkey") => Mode::User,
                Some(m) if m.starts_with("seq") => Mode::Sequential,
                other => Mode::Other(other.unwrap_or_default().to_string()),
            },
            space_available: num("space_available"),
            fields,
        }
    }

    /// A line's value by key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }
}

/// NSINFO's reply: `None` when the namespace does not exist.
pub fn parse_reply(v: Value) -> Result<Option<NsInfo>> {
    match v {
        Value::Error(m) if m == "Namespace not found" => Ok(None),
        other => crate::reply::text("NSINFO", other).map(|t| Some(NsInfo::parse(&t))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_zdb_text() {
        let t = "# namespace\nname: blocks\nentries: 12\npublic: no\nworm: no\nlocked: yes\n\
                 password: yes\ndata_size_bytes: 4096\ndata_limits_bytes: 1073741824\n\
                 index_size_bytes: 900\nnext_internal_id: 0x0c00000000000000\nmode: sequential\n\
                 space_available: 1073737728\n";
        let i = NsInfo::parse(t);
        assert_eq!(i.name, "blocks");
        assert_eq!(
            (i.entries, i.public, i.locked, i.password),
            (12, false, true, true)
        );
        assert_eq!(i.data_limits_bytes, 1 << 30);
        assert_eq!(i.mode, Mode::Sequential);
        assert_eq!(i.space_available, Some(1_073_737_728));
        assert_eq!(i.get("next_internal_id"), Some("0x0c00000000000000"));
        assert_eq!(
            parse_reply(Value::error("Namespace not found")).unwrap(),
            None
        );
        assert!(parse_reply(Value::error("Permission denied")).is_err());
    }
}
