//! Parsers of argument values shared by several subcommands.

use crate::error::{Error, Result};

/// A size flag (`64M`, `1GiB`, ...); errors name the flag.
pub fn size_arg(s: &str, what: &str) -> Result<u64> {
    nodeutil::size::parse_size(s).map_err(|e| Error::invalid(what, e.to_string()))
}

/// A `--small-files` size (at most 4 GiB; the block size caps it further).
pub fn small_files_arg(s: &str) -> Result<u32> {
    let n = size_arg(s, "--small-files")?;
    u32::try_from(n).map_err(|_| Error::invalid("--small-files", "at most 4G"))
}
