//! The few header fields the data path reads, with bounds checks (packets are untrusted).

use std::net::Ipv4Addr;

/// WireGuard message types (first byte; the next three are zero).
pub const HANDSHAKE_INIT: u8 = 1;
/// Handshake response.
pub const HANDSHAKE_RESP: u8 = 2;
/// Cookie reply.
pub const COOKIE_REPLY: u8 = 3;
/// Transport data.
pub const DATA: u8 = 4;
/// Bytes WireGuard adds to a packet: type, receiver index, counter (16) and the AEAD tag (16).
pub const DATA_OVERHEAD: usize = 32;
/// Smallest buffer boringtun writes a handshake message into.
pub const MIN_DST: usize = 148;

/// Destination of an IPv4 packet; `None` for anything else or a truncated header.
pub fn ipv4_dst(packet: &[u8]) -> Option<Ipv4Addr> {
    if packet.first()? >> 4 != 4 {
        return None;
    }
    let b: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
    Some(Ipv4Addr::from(b))
}

/// Type and receiver index of a WireGuard message that carries one (response, cookie, data).
/// The receiver index names our session; its upper 24 bits name the peer. A response carries
/// its sender's index first, then ours.
pub fn receiver(msg: &[u8]) -> Option<(u8, u32)> {
    let t = *msg.first()?;
    let at = match t {
        HANDSHAKE_RESP => 8..12,
        COOKIE_REPLY | DATA => 4..8,
        _ => return None,
    };
    let b: [u8; 4] = msg.get(at)?.try_into().ok()?;
    Some((t, u32::from_le_bytes(b)))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn headers_are_read_with_bounds() {
        let mut p = [0u8; 20];
        p[0] = 0x45;
        p[16..20].copy_from_slice(&[10, 1, 2, 3]);
        assert_eq!(ipv4_dst(&p), Some(Ipv4Addr::new(10, 1, 2, 3)));
        assert_eq!(ipv4_dst(&p[..19]), None);
        assert_eq!(ipv4_dst(&[0x60; 40]), None);
        assert_eq!(ipv4_dst(&[]), None);
        let mut m = [0u8; 32];
        m[0] = DATA;
        m[4..8].copy_from_slice(&0x0102_0304u32.to_le_bytes());
        assert_eq!(receiver(&m), Some((DATA, 0x0102_0304)));
        assert_eq!(receiver(&m[..7]), None);
        m[0] = HANDSHAKE_RESP;
        m[8..12].copy_from_slice(&7u32.to_le_bytes());
        assert_eq!(receiver(&m), Some((HANDSHAKE_RESP, 7)));
        assert_eq!(receiver(&m[..11]), None);
        m[0] = HANDSHAKE_INIT;
        assert_eq!(receiver(&m), None);
    }
}
