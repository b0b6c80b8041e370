//! Randomness from the kernel (getrandom(2)), for secrets, nonces and unique names.

/// An array of random bytes. Panics only if the kernel's generator is unavailable, which on
/// Linux >= 3.17 it never is after early boot (getrandom blocks until seeded).
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    fill(&mut b);
    b
}

/// Fills `buf` with random bytes (see [`bytes`] for why this cannot fail in practice).
pub fn fill(buf: &mut [u8]) {
    #[expect(
        clippy::expect_used,
        reason = "getrandom(2) only fails before the kernel's pool exists; nothing can run then"
    )]
    getrandom::getrandom(buf).expect("the kernel's random generator is unavailable");
}

/// `n` random bytes as lower-case hex (`2n` characters).
pub fn hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    fill(&mut b);
    ::hex::encode(b)
}

/// A random `u64`.
pub fn u64() -> u64 {
    u64::from_le_bytes(bytes())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn draws_differ_and_have_the_asked_length() {
        assert_eq!(hex(16).len(), 32);
        assert_ne!(hex(16), hex(16));
        assert_ne!(bytes::<32>(), [0u8; 32]);
        assert_ne!(u64(), u64());
    }
}
