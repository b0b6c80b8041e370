//! SCAN and RSCAN pages: `*2 [cursor, *n [*3 [key, :size, :timestamp]]]`, or
//! `-No more data` at the end. Each client turns pages into an iterator over entries.

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::value::Value;

/// Which way a scan walks the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// SCAN: oldest first.
    Forward,
    /// RSCAN: newest first.
    Backward,
}

impl Direction {
    /// The command name.
    pub fn command(self) -> &'static str {
        match self {
            Direction::Forward => "SCAN",
            Direction::Backward => "RSCAN",
        }
    }
}

/// One live key a scan passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanEntry {
    /// The key.
    pub key: Bytes,
    /// Its value's length.
    pub size: u64,
    /// When it was last written (unix seconds).
    pub timestamp: u64,
}

/// One page: where the next one starts, and its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPage {
    /// Opaque cursor for the next call.
    pub cursor: Bytes,
    /// Entries in scan order.
    pub entries: Vec<ScanEntry>,
}

/// A page, or `None` past the end.
pub fn parse_page(dir: Direction, v: Value) -> Result<Option<ScanPage>> {
    let command = dir.command();
    let bad = |v: &Value| Error::Unexpected {
        command,
        got: v.describe(),
    };
    let items = match v {
        Value::Error(m) if m == "No more data" => return Ok(None),
        Value::Error(message) => return Err(Error::Server { command, message }),
        Value::Array(items) => items,
        other => return Err(bad(&other)),
    };
    let [Value::Bulk(cursor), Value::Array(list)] =
        <[Value; 2]>::try_from(items).map_err(|v| bad(&Value::Array(v)))?
    else {
        return Err(Error::Unexpected {
            command,
            got: "page without cursor and list".into(),
        });
    };
    let entries = list
        .into_iter()
        .map(|e| match e {
            Value::Array(f) => match <[Value; 3]>::try_from(f) {
                Ok([Value::Bulk(key), Value::Int(size), Value::Int(ts)]) => Ok(ScanEntry {
                    key,
                    size: u64::try_from(size).unwrap_or(0),
                    timestamp: u64::try_from(ts).unwrap_or(0),
                }),
                Ok(f) => Err(bad(&Value::Array(f.into()))),
                Err(f) => Err(bad(&Value::Array(f))),
            },
            other => Err(bad(&other)),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(ScanPage { cursor, entries }))
}

/// What a scan iterator does next.
pub(crate) enum Next {
    /// Hand out this entry.
    Entry(ScanEntry),
    /// Fetch the next page ([`ScanState::cursor`]) and [`ScanState::feed`] it.
    Fetch,
    /// The scan is over.
    End,
}

/// Where a scan is, apart from I/O: both clients' iterators drive one.
#[derive(Debug)]
pub(crate) struct ScanState {
    pub(crate) dir: Direction,
    cursor: Option<Bytes>,
    page: std::vec::IntoIter<ScanEntry>,
    done: bool,
}

impl ScanState {
    pub(crate) fn new(dir: Direction) -> ScanState {
        ScanState {
            dir,
            cursor: None,
            page: Vec::new().into_iter(),
            done: false,
        }
    }

    pub(crate) fn next(&mut self) -> Next {
        match self.page.next() {
            Some(e) => Next::Entry(e),
            None if self.done => Next::End,
            None => Next::Fetch,
        }
    }

    /// The cursor to fetch the next page after.
    pub(crate) fn cursor(&self) -> Option<&[u8]> {
        self.cursor.as_deref()
    }

    /// Takes a fetched page; an error ends the scan and is handed back.
    pub(crate) fn feed(&mut self, r: Result<Option<ScanPage>>) -> Option<Error> {
        match r {
            Ok(Some(p)) => {
                self.cursor = Some(p.cursor);
                self.page = p.entries.into_iter();
                None
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(e)
            }
        }
    }
}

/// The request for the page after `cursor` (the first page without one).
pub fn request(dir: Direction, cursor: Option<&[u8]>) -> Vec<&[u8]> {
    let mut args: Vec<&[u8]> = vec![dir.command().as_bytes()];
    args.extend(cursor);
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages() {
        let page = Value::Array(vec![
            Value::bulk("cur"),
            Value::Array(vec![Value::Array(vec![
                Value::bulk("k"),
                Value::Int(3),
                Value::Int(99),
            ])]),
        ]);
        let p = parse_page(Direction::Forward, page).unwrap().unwrap();
        assert_eq!(&p.cursor[..], b"cur");
        assert_eq!(p.entries.len(), 1);
        assert_eq!((p.entries[0].size, p.entries[0].timestamp), (3, 99));
        assert_eq!(
            parse_page(Direction::Backward, Value::error("No more data")).unwrap(),
            None
        );
        assert!(parse_page(Direction::Forward, Value::Array(vec![Value::Nil])).is_err());
        assert_eq!(
            request(Direction::Backward, Some(b"c")),
            [b"RSCAN".as_slice(), b"c"]
        );
    }
}
