//! Credentials out of text: store URLs carry them (`zdb://user:password@host:port/ns`,
//! `https://user:token@host/x.flist`), and any message that quotes a URL, a command line or a
//! child's stderr can carry them on into a log, an error or a workload result. Everything such a
//! message holds goes through [`text`] before it leaves the process.

/// What replaces the `user:password` part of a URL.
pub const MARK: &str = "<redacted>";

/// Characters that end a URL inside free text. `@`, `/` and `:` do not: a password may hold
/// them (the zdb store parser splits at the last `@`), and cutting early would leak its tail.
fn ends_url(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>')
}

/// `text` with the user-info part (everything between `://` and the last `@` of the URL) of
/// every URL it contains replaced by [`MARK`]. When in doubt it removes more, never less: an `@`
/// in a URL's path hides the host and path before it too.
pub fn text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail.find(ends_url).unwrap_or(tail.len());
        let (url, after) = tail.split_at(end);
        match url.rfind('@') {
            Some(userinfo_end) => {
                out.push_str(MARK);
                out.push_str(url.get(userinfo_end..).unwrap_or_default());
            }
            None => out.push_str(url),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn user_info_goes_wherever_the_url_stands() {
        assert_eq!(
            text("zdb://alice:s3cret@10.0.0.1:9900/ns"),
            "zdb://<redacted>@10.0.0.1:9900/ns"
        );
        assert_eq!(
            text("flist --store 0-7f=zdb://u:p@h:1/a --store zdb://h:2/b: failed"),
            "flist --store 0-7f=zdb://<redacted>@h:1/a --store zdb://h:2/b: failed"
        );
        // quoted, as Debug formatting of a command line writes it
        assert_eq!(
            text(r#""--store" "zdb://u:p@h/ns" "x""#),
            r#""--store" "zdb://<redacted>@h/ns" "x""#
        );
        // a password holding '@', '/' and ':' leaks no part of itself
        let r = text("GET https://me:a/b@c:d@host/f.flist: 404");
        assert_eq!(r, "GET https://<redacted>@host/f.flist: 404");
        for secret in ["a/b", "c:d", "me"] {
            assert!(!r.contains(secret), "{r}");
        }
    }

    #[test]
    fn text_without_credentials_is_kept() {
        for t in [
            "",
            "no url here",
            "dir:///var/cache/store",
            "http://host/x.flist ends",
            "://",
            "trailing ://",
            "multi-byte é://ü@ö and more",
        ] {
            let r = text(t);
            if t.contains("ü@") {
                assert_eq!(r, "multi-byte é://<redacted>@ö and more");
            } else {
                assert_eq!(r, t);
            }
        }
    }
}
