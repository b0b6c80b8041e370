//! Replica position `<index>/<ns>/.replica` (ours, not part of the 0-db format): where a
//! follower (`--replicate-from`) is in its leader's data files. Written (temp file, fsync,
//! rename) only after the entries it covers are fsynced, so a restart resumes without loss.
//!
//! ```text
//! FILE OFF PREV_OFF PREV_CRC        four decimal numbers separated by spaces, no newline
//!   FILE      leader data file number being streamed
//!   OFF       offset of the next entry to apply in it
//!   PREV_OFF  offset of the last entry applied
//!   PREV_CRC  its CRC-32C, so the leader can tell whether that entry is still there
//! ```
//! Anything else (missing, torn, foreign) reads as the start: streaming from the beginning
//! re-applies entries the follower has, which changes nothing.

/// File name in the namespace's index folder.
pub const FILE_NAME: &str = ".replica";
/// A reader need not look further than this.
pub const MAX_LEN: usize = 128;

/// A follower's position in one leader namespace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    /// Leader data file.
    pub file: u32,
    /// Next offset to apply.
    pub off: u64,
    /// Offset of the last applied entry.
    pub prev_off: u64,
    /// CRC of the last applied entry.
    pub prev_crc: u32,
}

impl Position {
    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        format!(
            "{} {} {} {}",
            self.file, self.off, self.prev_off, self.prev_crc
        )
        .into_bytes()
    }

    /// Parse a file's bytes; anything malformed is the start position.
    pub fn decode(bytes: &[u8]) -> Position {
        let text = String::from_utf8_lossy(bytes);
        let v: Vec<u64> = text
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        match v.as_slice() {
            [file, off, prev_off, prev_crc] => Position {
                file: u32::try_from(*file).unwrap_or(0),
                off: *off,
                prev_off: *prev_off,
                prev_crc: u32::try_from(*prev_crc).unwrap_or(0),
            },
            _ => Position::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_garbage_is_the_start() {
        let p = Position {
            file: 2,
            off: 4096,
            prev_off: 4000,
            prev_crc: 77,
        };
        assert_eq!(p.encode(), b"2 4096 4000 77");
        assert_eq!(Position::decode(&p.encode()), p);
        assert_eq!(Position::decode(b"2 4096"), Position::default());
        assert_eq!(Position::decode(b"\xff\xfe"), Position::default());
    }
}
