//! What each reply means, as pure functions over a [`Value`]: both clients and pipelines
//! read replies through these, so a reply is interpreted in one place.

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::value::Value;

fn unexpected<T>(command: &'static str, v: Value) -> Result<T> {
    match v {
        Value::Error(message) => Err(Error::Server { command, message }),
        other => Err(Error::Unexpected {
            command,
            got: other.describe(),
        }),
    }
}

/// A status reply (`+OK`, `+PONG`, ...).
pub fn status(command: &'static str, v: Value) -> Result<String> {
    match v {
        Value::Status(s) => Ok(s),
        other => unexpected(command, other),
    }
}

/// `+OK` or any other status: success without a payload.
pub fn done(command: &'static str, v: Value) -> Result<()> {
    status(command, v).map(drop)
}

/// GET: the value, or `None` for a missing or deleted key.
pub fn get(v: Value) -> Result<Option<Bytes>> {
    match v {
        Value::Bulk(b) => Ok(Some(b)),
        Value::Nil => Ok(None),
        other => unexpected("GET", other),
    }
}

/// SET: `true` when written, `false` when the identical value was already stored (0-db
/// answers nil and writes nothing).
pub fn set(v: Value) -> Result<bool> {
    match v {
        Value::Bulk(_) | Value::Status(_) => Ok(true),
        Value::Nil => Ok(false),
        other => unexpected("SET", other),
    }
}

/// Sequential-mode SET of a new value: the id 0-db allocated (8 bytes little-endian).
pub fn seq_id(v: Value) -> Result<u64> {
    match v {
        Value::Bulk(b) if b.len() == 8 => {
            let mut id = [0u8; 8];
            id.copy_from_slice(&b);
            Ok(u64::from_le_bytes(id))
        }
        other => unexpected("SET", other),
    }
}

/// DEL: `true` when deleted, `false` when there was no such key.
pub fn del(v: Value) -> Result<bool> {
    match v {
        Value::Status(_) => Ok(true),
        Value::Error(m) if m == "Key not found" => Ok(false),
        other => unexpected("DEL", other),
    }
}

/// An integer reply.
pub fn int(command: &'static str, v: Value) -> Result<i64> {
    match v {
        Value::Int(n) => Ok(n),
        other => unexpected(command, other),
    }
}

/// A non-negative integer reply (counts, sizes).
pub fn count(command: &'static str, v: Value) -> Result<u64> {
    match v {
        Value::Int(n) if n >= 0 => Ok(n.unsigned_abs()),
        other => unexpected(command, other),
    }
}

/// An integer, or `None` for nil (LENGTH, KEYTIME on a missing key).
pub fn opt_count(command: &'static str, v: Value) -> Result<Option<u64>> {
    match v {
        Value::Nil => Ok(None),
        other => count(command, other).map(Some),
    }
}

/// A bulk string read as (lossy) text: INFO, NSINFO.
pub fn text(command: &'static str, v: Value) -> Result<String> {
    match v {
        Value::Bulk(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
        other => unexpected(command, other),
    }
}

/// What CHECK found for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The value matches its CRC.
    Valid,
    /// The value does not match its CRC.
    Corrupted,
    /// The value could not be read (e.g. its data file is missing).
    Unreadable,
    /// No such key.
    Missing,
}

/// CHECK.
pub fn check(v: Value) -> Result<Check> {
    match v {
        Value::Int(1) => Ok(Check::Valid),
        Value::Int(0) => Ok(Check::Corrupted),
        Value::Int(-1) => Ok(Check::Unreadable),
        Value::Nil => Ok(Check::Missing),
        other => unexpected("CHECK", other),
    }
}

/// NSLIST: the namespace names.
pub fn names(v: Value) -> Result<Vec<String>> {
    match v {
        Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Value::Bulk(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
                Value::Status(s) => Ok(s),
                other => unexpected("NSLIST", other),
            })
            .collect(),
        other => unexpected("NSLIST", other),
    }
}

/// TIME: seconds and microseconds.
pub fn time(v: Value) -> Result<(u64, u32)> {
    let parse = |v: &Value| match v {
        Value::Bulk(b) => std::str::from_utf8(b).ok()?.parse::<u64>().ok(),
        _ => None,
    };
    if let Value::Array(items) = &v
        && let [s, us] = items.as_slice()
        && let (Some(s), Some(us)) = (parse(s), parse(us))
        && let Ok(us) = u32::try_from(us)
    {
        return Ok((s, us));
    }
    unexpected("TIME", v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meanings() {
        assert_eq!(get(Value::Nil).unwrap(), None);
        assert!(set(Value::bulk("k")).unwrap());
        assert!(!set(Value::Nil).unwrap());
        assert_eq!(seq_id(Value::bulk(7u64.to_le_bytes())).unwrap(), 7);
        assert!(seq_id(Value::bulk("short")).is_err());
        assert!(!del(Value::error("Key not found")).unwrap());
        assert_eq!(check(Value::Int(-1)).unwrap(), Check::Unreadable);
        assert!(count("DBSIZE", Value::Int(-1)).is_err());
        assert_eq!(
            time(Value::Array(vec![Value::bulk("12"), Value::bulk("34")])).unwrap(),
            (12, 34)
        );
        let e = get(Value::error("Invalid key")).unwrap_err();
        assert_eq!(e.to_string(), "GET: Invalid key");
        let e = get(Value::Int(3)).unwrap_err();
        assert_eq!(e.to_string(), "GET: unexpected reply integer 3");
    }
}
