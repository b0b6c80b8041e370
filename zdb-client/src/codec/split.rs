//! The first line of a bulk reply, for reads that take a large value straight from the socket
//! into the caller's buffers instead of through the connection's read buffer (see
//! `AsyncClient::get_split`). Anything but a plain bulk within the limits is left to the
//! [`super::Decoder`], which reads it the usual way.

use super::Limits;

/// What the unread bytes start with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkHead {
    /// `$N\r\n` of `line` bytes announcing a value of `len` bytes (within the limits).
    Bulk {
        /// Bytes of the header line, CRLF included.
        line: usize,
        /// The value's length.
        len: usize,
    },
    /// The line has not fully arrived.
    NeedMore,
    /// Not a plain bulk (nil, an error, anything else): for the decoder.
    Other,
}

/// Longest header line a plain bulk within any limit has: `$` and 20 digits.
const MAX_HEAD: usize = 24;

/// Reads the header line at the start of `unread`.
pub fn bulk_head(unread: &[u8], limits: &Limits) -> BulkHead {
    if unread.first().is_some_and(|&b| b != b'$') {
        return BulkHead::Other;
    }
    let window = unread.get(..MAX_HEAD.min(unread.len())).unwrap_or_default();
    let Some(nl) = memchr::memchr(b'\n', window) else {
        return if unread.len() >= MAX_HEAD {
            BulkHead::Other
        } else {
            BulkHead::NeedMore
        };
    };
    let digits = match window.get(1..nl) {
        Some([d @ .., b'\r']) if !d.is_empty() && d.iter().all(u8::is_ascii_digit) => d,
        _ => return BulkHead::Other,
    };
    let len = digits.iter().try_fold(0usize, |n, &d| {
        n.checked_mul(10)?.checked_add(usize::from(d - b'0'))
    });
    match len {
        Some(len) if len <= limits.max_bulk && len <= limits.max_reply => {
            BulkHead::Bulk { line: nl + 1, len }
        }
        _ => BulkHead::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_bulks_only() {
        let l = Limits::default();
        assert_eq!(
            bulk_head(b"$5\r\nhello\r\n", &l),
            BulkHead::Bulk { line: 4, len: 5 }
        );
        assert_eq!(
            bulk_head(b"$0\r\n\r\n", &l),
            BulkHead::Bulk { line: 4, len: 0 }
        );
        assert_eq!(bulk_head(b"", &l), BulkHead::NeedMore);
        assert_eq!(bulk_head(b"$104857", &l), BulkHead::NeedMore);
        assert_eq!(bulk_head(b"$-1\r\n", &l), BulkHead::Other);
        assert_eq!(bulk_head(b"-ERR no\r\n", &l), BulkHead::Other);
        assert_eq!(bulk_head(b"$5\n", &l), BulkHead::Other);
        assert_eq!(bulk_head(b"$\r\n", &l), BulkHead::Other);
        assert_eq!(
            bulk_head(b"$99999999999999999999999\r\n", &l),
            BulkHead::Other
        );
        // Over the limit: the decoder refuses it with its own error.
        assert_eq!(bulk_head(b"$9000000\r\n", &l), BulkHead::Other);
    }
}
