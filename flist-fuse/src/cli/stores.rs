//! `--store URL` (repeatable) and `--stores-stdin`: the same list, read from stdin one spec
//! per line, so that passwords in `zdb://user:pass@...` stay off command lines.

use std::io::Read;

use clap::Args;

use crate::error::{Error, IoContext, Result};

/// Largest store list accepted on stdin.
const MAX_STDIN_BYTES: u64 = 1 << 20;

/// Store URLs replacing (or, for writers, naming) the stores of an flist.
#[derive(Debug, Clone, Default, Args)]
pub struct StoreArgs {
    /// Block store URL (repeatable; `LO-HI=URL` shards by id prefix, overlapping ranges replicate).
    #[arg(long = "store")]
    pub stores: Vec<String>,
    /// Read store URLs from stdin, one per line (empty lines and `#` comments skipped), after
    /// any --store: keeps passwords off the command line.
    #[arg(long = "stores-stdin")]
    pub stores_stdin: bool,
}

impl StoreArgs {
    /// The store specs: `--store` values, then stdin's lines with `--stores-stdin`.
    pub fn resolve(&self) -> Result<Vec<String>> {
        let mut out = self.stores.clone();
        if self.stores_stdin {
            out.extend(read_specs(std::io::stdin().lock())?);
        }
        Ok(out)
    }

    /// [`resolve`](Self::resolve), refusing an empty list (commands that write blocks).
    pub fn required(&self) -> Result<Vec<String>> {
        let v = self.resolve()?;
        if v.is_empty() {
            return Err(Error::invalid(
                "--store",
                "no store given: pass --store URL or --stores-stdin",
            ));
        }
        Ok(v)
    }
}

/// Store specs from a reader: one per line, trimmed; empty lines and `#` comments skipped.
pub fn read_specs(r: impl Read) -> Result<Vec<String>> {
    let mut buf = Vec::new();
    r.take(MAX_STDIN_BYTES + 1)
        .read_to_end(&mut buf)
        .ctx("stdin")?;
    if buf.len() as u64 > MAX_STDIN_BYTES {
        return Err(Error::invalid("stdin", "store list larger than 1 MiB"));
    }
    let text =
        String::from_utf8(buf).map_err(|_| Error::invalid("stdin", "store list is not UTF-8"))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_comments_and_limits() {
        let v = read_specs(&b"zdb://u:p@h/ns\n\n  # comment\n 00-7f=dir:///x \n"[..]).ok();
        assert_eq!(
            v,
            Some(vec![
                "zdb://u:p@h/ns".to_string(),
                "00-7f=dir:///x".to_string()
            ])
        );
        assert!(read_specs(&b"\xff\n"[..]).is_err());
        let huge = vec![b'a'; (MAX_STDIN_BYTES + 1) as usize];
        assert!(read_specs(&huge[..]).is_err());
    }
}
