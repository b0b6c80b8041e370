//! Compaction journal `<index>/<ns>/compact-N` (ours, not part of the 0-db format): written
//! durably by a compaction of file pair N just before it swaps the rewritten files in, removed
//! once the swap is complete. Found at open, it means "finish this swap". Text, so an operator
//! can read it:
//!
//! ```text
//! user mode:        N                         the pair number, decimal, nothing else
//! sequential mode:  seq\n                     then one slot patch per line:
//!                   M OFF FIELD OLD NEW\n     set the u32 at OFF + FIELD of index file iM
//!                                             from OLD to NEW (decimal numbers)
//! ```
//! A patch whose slot no longer holds OLD is skipped, so applying a journal twice is harmless.
//! The rewritten files wait beside the old ones as `iN.compact` / `dN.compact` (see
//! [`TMP_SUFFIX`]) until they are renamed over them.

/// Suffix of the rewritten files until the swap renames them.
pub const TMP_SUFFIX: &str = ".compact";
/// File name prefix of a journal (`compact-N`).
pub const PREFIX: &str = "compact-";
/// First line of a sequential-mode journal.
const SEQ_MARK: &str = "seq";

/// Offset of the data offset field in an index entry (`index::ENTRY_HEADER_LEN` layout).
pub const OFFSET_FIELD: u64 = 1;
/// Offset of the data file id field in an index entry.
pub const DATAID_FIELD: u64 = 14;

/// The file name of pair `n`'s journal.
pub fn file_name(n: u32) -> String {
    format!("{PREFIX}{n}")
}

/// The pair number of a journal file name, if it is one.
pub fn pair_of(name: &str) -> Option<u32> {
    name.strip_prefix(PREFIX)?.parse().ok()
}

/// One in-place change of a sequential slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotPatch {
    /// Index file number M.
    pub file: u32,
    /// Offset of the slot in `iM`.
    pub off: u64,
    /// Field offset inside the slot ([`OFFSET_FIELD`] or [`DATAID_FIELD`]).
    pub field: u64,
    /// Value the field must hold for the patch to apply.
    pub old: u32,
    /// Value written.
    pub new: u32,
}

/// A journal's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Journal {
    /// User mode: pair N's two rewritten files replace the old ones.
    Pair(u32),
    /// Sequential mode: the data file was replaced; these slots point into it.
    SlotPatches(Vec<SlotPatch>),
}

impl Journal {
    /// The journal's bytes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Journal::Pair(n) => n.to_string().into_bytes(),
            Journal::SlotPatches(patches) => {
                let mut text = format!("{SEQ_MARK}\n");
                for p in patches {
                    text.push_str(&format!(
                        "{} {} {} {} {}\n",
                        p.file, p.off, p.field, p.old, p.new
                    ));
                }
                text.into_bytes()
            }
        }
    }

    /// Parse a journal. Anything that is not a sequential journal is a pair journal (its
    /// number comes from the file name, not from here); malformed patch lines are skipped.
    pub fn decode(bytes: &[u8], pair: u32) -> Journal {
        let text = String::from_utf8_lossy(bytes);
        let mut lines = text.lines();
        if lines.next() != Some(SEQ_MARK) {
            return Journal::Pair(pair);
        }
        let patches = lines
            .filter_map(|line| {
                let v: Vec<u64> = line
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect();
                let [file, off, field, old, new] = v.as_slice() else {
                    return None;
                };
                Some(SlotPatch {
                    file: u32::try_from(*file).ok()?,
                    off: *off,
                    field: *field,
                    old: u32::try_from(*old).ok()?,
                    new: u32::try_from(*new).ok()?,
                })
            })
            .collect();
        Journal::SlotPatches(patches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journals_round_trip_and_bad_lines_are_skipped() {
        assert_eq!(
            Journal::decode(&Journal::Pair(3).encode(), 3),
            Journal::Pair(3)
        );
        let j = Journal::SlotPatches(vec![SlotPatch {
            file: 1,
            off: 29,
            field: OFFSET_FIELD,
            old: 28,
            new: 100,
        }]);
        let bytes = j.encode();
        assert_eq!(bytes, b"seq\n1 29 1 28 100\n");
        assert_eq!(Journal::decode(&bytes, 0), j);
        let mut torn = bytes.clone();
        torn.extend_from_slice(b"2 29 1\n1 2 3 4 99999999999\n");
        assert_eq!(Journal::decode(&torn, 0), j);
        assert_eq!(pair_of("compact-12"), Some(12));
        assert_eq!(pair_of("compact-x"), None);
        assert_eq!(file_name(7), "compact-7");
    }
}
