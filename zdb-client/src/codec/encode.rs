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
}
