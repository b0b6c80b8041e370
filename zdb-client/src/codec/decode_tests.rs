use super::*;

fn limits() -> Limits {
    Limits::default()
}

/// Decodes `wire` fed `step` bytes at a time; returns the replies and the first error.
fn feed(wire: &[u8], step: usize, l: Limits) -> (Vec<Value>, Option<ProtocolError>) {
    let mut d = Decoder::new(l);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for chunk in wire.chunks(step.max(1)) {
        buf.extend_from_slice(chunk);
        loop {
            match d.decode(&buf) {
                Ok((n, v)) => {
                    buf.drain(..n);
                    match v {
                        Some(v) => out.push(v),
                        None => break,
                    }
                }
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

#[test]
fn decodes_nested_replies_whole_and_byte_by_byte() {
    let wire = b"*3\r\n+OK\r\n*2\r\n:5\r\n$-1\r\n$3\r\nabc\r\n-No way\r\n:-12\r\n*0\r\n*-1\r\n";
    let want = vec![
        Value::Array(vec![
            Value::ok(),
            Value::Array(vec![Value::Int(5), Value::Nil]),
            Value::bulk("abc"),
        ]),
        Value::error("No way"),
        Value::Int(-12),
        Value::Array(vec![]),
        Value::NilArray,
    ];
    for step in [1, 2, 3, 7, wire.len()] {
        let (got, err) = feed(wire, step, limits());
        assert_eq!(err, None, "step {step}");
        assert_eq!(got, want, "step {step}");
    }
}

#[test]
fn binary_bulks_keep_their_crlf_bytes() {
    let (got, err) = feed(b"$4\r\n\r\n\r\n\r\n", 1, limits());
    assert_eq!(err, None);
    assert_eq!(got, vec![Value::bulk(b"\r\n\r\n")]);
}

#[test]
fn huge_declared_bulk_is_refused_before_any_byte() {
    let mut d = Decoder::new(limits());
    assert_eq!(
        d.decode(b"$99999999999\r\n"),
        Err(ProtocolError::BulkTooLarge {
            declared: 99_999_999_999,
            limit: 8 << 20
        })
    );
}

#[test]
fn waiting_bulk_reports_what_is_missing() {
    let mut d = Decoder::new(limits());
    assert_eq!(d.decode(b"$8000000\r\nab"), Ok((0, None)));
    assert_eq!(d.missing(), 8_000_000 - 2 + 2);
}

#[test]
fn deep_nesting_stops_at_the_limit() {
    let wire = b"*1\r\n".repeat(100_000);
    let (_, err) = feed(&wire, 4096, limits());
    assert_eq!(err, Some(ProtocolError::TooDeep { limit: 8 }));
    // Exactly at the limit is fine.
    let mut ok = b"*1\r\n".repeat(8);
    ok.extend_from_slice(b":1\r\n");
    let (got, err) = feed(&ok, 3, limits());
    assert_eq!((got.len(), err), (1, None));
}

#[test]
fn endless_line_stops_at_the_limit() {
    let l = Limits {
        max_line: 1000,
        ..limits()
    };
    let mut wire = b"+".to_vec();
    wire.extend(std::iter::repeat_n(b'a', 10_000));
    let (_, err) = feed(&wire, 100, l);
    assert_eq!(err, Some(ProtocolError::LineTooLong { limit: 1000 }));
    // A line of exactly the limit passes.
    let mut fits = b"+".to_vec();
    fits.extend(std::iter::repeat_n(b'a', 999));
    fits.extend_from_slice(b"\r\n");
    let (got, err) = feed(&fits, 100, l);
    assert_eq!((got.len(), err), (1, None));
}

#[test]
fn a_million_tiny_elements_count_against_the_reply_budget() {
    let (_, err) = feed(b"*100000000\r\n", 64, limits());
    assert_eq!(err, Some(ProtocolError::ReplyTooLarge { limit: 64 << 20 }));
    let l = Limits {
        max_reply: 5_000,
        ..limits()
    };
    let mut wire = b"*2\r\n*100\r\n".to_vec();
    wire.extend(b":1\r\n".repeat(100));
    wire.extend(b"*100\r\n");
    wire.extend(b":1\r\n".repeat(100));
    let (_, err) = feed(&wire, 64, l);
    assert_eq!(err, Some(ProtocolError::ReplyTooLarge { limit: 5_000 }));
}

#[test]
fn garbage_is_a_typed_error() {
    let cases: [(&[u8], ProtocolError); 9] = [
        (b"HTTP/1.1 400\r\n", ProtocolError::BadType(b'H')),
        (b"%2\r\n", ProtocolError::BadType(b'%')),
        (b"\r\n", ProtocolError::EmptyLine),
        (b"+OK\n", ProtocolError::MissingCrlf),
        (b":12a\r\n", ProtocolError::BadNumber),
        (b":\r\n", ProtocolError::BadNumber),
        (b"$99999999999999999999999\r\n", ProtocolError::BadNumber),
        (b"$-2\r\n", ProtocolError::BadLength(-2)),
        (b"$3\r\nabcXY", ProtocolError::MissingCrlf),
    ];
    for (wire, want) in cases {
        let (_, err) = feed(wire, 1, limits());
        assert_eq!(err, Some(want), "{:?}", String::from_utf8_lossy(wire));
    }
}

#[test]
fn numbers_are_strict() {
    assert_eq!(number(b"-9223372036854775808"), Ok(i64::MIN));
    assert_eq!(number(b"9223372036854775807"), Ok(i64::MAX));
    assert_eq!(
        number(b"9223372036854775808"),
        Err(ProtocolError::BadNumber)
    );
    assert_eq!(number(b"+1"), Err(ProtocolError::BadNumber));
    assert_eq!(number(b"-"), Err(ProtocolError::BadNumber));
}

#[test]
fn in_reply_tells_a_half_reply_from_none() {
    let mut d = Decoder::new(limits());
    assert!(!d.in_reply(b""));
    assert_eq!(d.decode(b"*2\r\n:1\r\n"), Ok((8, None)));
    assert!(d.in_reply(b""));
}

/// Any byte string: no panic, and every outcome is a reply, a wait or a typed error.
#[test]
fn random_bytes_never_panic() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let alphabet = b"+-:$*\r\n0123456789-abc%";
    for _ in 0..20_000 {
        let len = (next() % 40) as usize;
        let wire: Vec<u8> = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        let step = 1 + (next() % 5) as usize;
        let _ = feed(&wire, step, limits());
    }
}
