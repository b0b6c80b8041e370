//! Size strings, one set of rules for every flag and file: a whole number of bytes with an
//! optional suffix `K`, `M`, `G`, `T` (either case) or `KiB`, `MiB`, `GiB`, `TiB`, all powers of
//! 1024 as in 0-db (`64M`, `1GiB`, `512k`, `4096`, `100B`). `MB`-style suffixes are refused
//! rather than guessed (1000 or 1024?).

/// A size string that does not parse; the message says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid size {input:?}: {why} (a whole number with K, M, G, T or KiB, MiB, GiB, TiB: powers of 1024)"
)]
pub struct SizeError {
    /// What was given.
    pub input: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// Parses a size in bytes.
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    let err = |why| SizeError {
        input: s.to_string(),
        why,
    };
    let t = s.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (num, suffix) = t.split_at(digits);
    if num.is_empty() {
        return Err(err("no number"));
    }
    let shift = match suffix.trim_start() {
        "" | "B" | "b" => 0,
        "k" | "K" | "KiB" => 10,
        "m" | "M" | "MiB" => 20,
        "g" | "G" | "GiB" => 30,
        "t" | "T" | "TiB" => 40,
        "KB" | "kB" | "MB" | "GB" | "TB" => return Err(err("ambiguous suffix")),
        _ => return Err(err("unknown suffix")),
    };
    let n: u64 = num.parse().map_err(|_| err("too large"))?;
    n.checked_mul(1u64 << shift).ok_or_else(|| err("too large"))
}

/// Formats `bytes` with the largest binary unit that keeps it whole (`64M`, `1536K`, `7`), so
/// that [`parse_size`] reads it back exactly.
pub fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        let m = 1u64 << shift;
        if bytes != 0 && bytes.is_multiple_of(m) {
            return format!("{}{unit}", bytes / m);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn suffixes_are_powers_of_1024() {
        for (s, v) in [
            ("0", 0),
            ("4096", 4096),
            ("100B", 100),
            ("512k", 512 << 10),
            ("64M", 64 << 20),
            ("64m", 64 << 20),
            ("1GiB", 1 << 30),
            ("1 GiB", 1 << 30),
            (" 3G ", 3 << 30),
            ("2T", 2 << 40),
            ("2TiB", 2 << 40),
        ] {
            assert_eq!(parse_size(s).unwrap(), v, "{s}");
        }
    }

    #[test]
    fn bad_sizes_say_why() {
        for (s, why) in [
            ("", "no number"),
            ("G", "no number"),
            ("-1", "no number"),
            ("1.5G", "unknown suffix"),
            ("1X", "unknown suffix"),
            ("1MB", "ambiguous suffix"),
            ("99999999999999999999", "too large"),
            ("17179869184T", "too large"),
        ] {
            assert_eq!(parse_size(s).unwrap_err().why, why, "{s}");
        }
        assert!(parse_size("1MB").unwrap_err().to_string().contains("1024"));
    }

    #[test]
    fn formatted_sizes_parse_back() {
        for v in [
            0,
            1,
            1023,
            1024,
            1536 << 10,
            64 << 20,
            3 << 30,
            (1 << 40) + 1,
        ] {
            assert_eq!(parse_size(&format_size(v)).unwrap(), v);
        }
        assert_eq!(format_size(64 << 20), "64M");
    }
}
