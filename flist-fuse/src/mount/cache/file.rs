//! A cache file: a 48-byte header (magic `FLCACHE1`, plain length u32, reserved u32, blake3
//! of the plain bytes) then the decoded block; checked whole on every read.

/// Magic of a cache file.
pub const MAGIC: &[u8; 8] = b"FLCACHE1";
/// Bytes of a cache file's header.
pub const HEADER_LEN: usize = 48;

/// The header of a cache file holding `plain`.
pub fn header(plain: &[u8]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&(plain.len() as u32).to_le_bytes());
    h[16..48].copy_from_slice(blake3::hash(plain).as_bytes());
    h
}

/// Check a whole cache file (header + plain bytes).
pub fn check_file(buf: &[u8], plain_len: u32) -> Result<(), String> {
    if buf.len() != HEADER_LEN + plain_len as usize {
        return Err(format!(
            "{} bytes, expected {} (truncated or foreign)",
            buf.len(),
            HEADER_LEN + plain_len as usize
        ));
    }
    if &buf[..8] != MAGIC {
        return Err("bad magic".into());
    }
    if buf[8..12] != plain_len.to_le_bytes() {
        return Err("length field mismatch".into());
    }
    if blake3::hash(&buf[HEADER_LEN..]).as_bytes() != &buf[16..48] {
        return Err("checksum mismatch (flipped bits)".into());
    }
    Ok(())
}
