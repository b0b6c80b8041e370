//! Requests: an array of bulk strings, `*N\r\n` then `$len\r\narg\r\n` per argument.

/// Appends the request `args` (command name first) to `out`.
pub fn encode_command<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    out.reserve(encoded_len(args));
    header(out, b'*', args.len());
    for a in args {
        let a = a.as_ref();
        header(out, b'$', a.len());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Arguments at least this long are sent from where they are instead of being copied
/// into the request buffer.
pub const LARGE_ARG: usize = 64 << 10;

/// As [`encode_command`], but arguments of [`LARGE_ARG`] bytes or more are left out of
/// `out`; the request to send is then [`segments`] of `out` and `args`.
pub fn encode_framing<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) -> Vec<(usize, usize)> {
    let mut gaps = Vec::new();
    header(out, b'*', args.len());
    for (i, a) in args.iter().enumerate() {
        let a = a.as_ref();
        header(out, b'$', a.len());
        if a.len() >= LARGE_ARG {
            gaps.push((out.len(), i));
        } else {
            out.extend_from_slice(a);
        }
        out.extend_from_slice(b"\r\n");
    }
    gaps
}

/// The request [`encode_framing`] described: pieces of `framing` with the large arguments
/// in their places.
pub fn segments<'a, A: AsRef<[u8]>>(
    framing: &'a [u8],
    gaps: &[(usize, usize)],
    args: &'a [A],
) -> Vec<&'a [u8]> {
    let mut out = Vec::with_capacity(gaps.len() * 2 + 1);
    let mut from = 0;
    for &(at, i) in gaps {
        out.push(framing.get(from..at).unwrap_or_default());
        out.push(args.get(i).map_or(&[][..], |a| a.as_ref()));
        from = at;
    }
    out.push(framing.get(from..).unwrap_or_default());
    out
}

/// The number of bytes [`encode_command`] appends for `args`.
pub fn encoded_len<A: AsRef<[u8]>>(args: &[A]) -> usize {
    let digits = |n: usize| itoa::Buffer::new().format(n).len();
    3 + digits(args.len())
        + args
            .iter()
            .map(|a| {
                let n = a.as_ref().len();
                5 + digits(n) + n
            })
            .sum::<usize>()
}

fn header(out: &mut Vec<u8>, kind: u8, n: usize) {
    out.push(kind);
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_bulk_arrays_and_predicts_their_length() {
        let args: [&[u8]; 3] = [b"SET", b"", &[0u8; 12]];
        let mut out = Vec::new();
        encode_command(&mut out, &args);
        let mut want = b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$12\r\n".to_vec();
        want.extend_from_slice(&[0u8; 12]);
        want.extend_from_slice(b"\r\n");
        assert_eq!(out, want);
        assert_eq!(encoded_len(&args), out.len());
    }

    #[test]
    fn framing_leaves_large_arguments_in_place() {
        let big = vec![9u8; LARGE_ARG];
        let args: [&[u8]; 4] = [b"SET", b"k", &big, &big];
        let mut whole = Vec::new();
        encode_command(&mut whole, &args);
        let mut framing = Vec::new();
        let gaps = encode_framing(&mut framing, &args);
        assert_eq!(gaps.len(), 2);
        assert!(framing.len() < 100);
        assert_eq!(segments(&framing, &gaps, &args).concat(), whole);
        let small: [&[u8]; 2] = [b"GET", b"k"];
        let mut f = Vec::new();
        let gaps = encode_framing(&mut f, &small);
        assert_eq!(segments(&f, &gaps, &small), [f.as_slice()]);
    }
}
