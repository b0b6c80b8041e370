//! Bounded downloads by URL (feature `http`: ureq with rustls): the one way the node fetches a
//! file over http(s), for container flists and release flists alike.

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::path::Path;
use std::time::Duration;

/// Fetches `url` into the new file `to` (refused when it exists): at most `max` bytes, the
/// whole transfer within `timeout`. A failed download removes what it wrote. Errors quote the
/// URL with any credentials cut out.
pub fn download(url: &str, to: &Path, max: u64, timeout: Duration) -> io::Result<u64> {
    let fail = |msg: String| io::Error::other(format!("GET {}: {msg}", crate::redact::text(url)));
    let resp = ureq::get(url)
        .timeout(timeout)
        .call()
        .map_err(|e| fail(crate::redact::text(&e.to_string())))?;
    let mut file = OpenOptions::new().write(true).create_new(true).open(to)?;
    let copied = io::copy(
        &mut resp.into_reader().take(max.saturating_add(1)),
        &mut file,
    )
    .map_err(|e| fail(e.to_string()))
    .and_then(|n| {
        if n > max {
            Err(fail(format!("larger than {max} bytes")))
        } else {
            Ok(n)
        }
    })
    .and_then(|n| file.sync_all().map(|()| n));
    if copied.is_err() {
        drop(file);
        let _ = std::fs::remove_file(to);
    }
    copied
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    /// Serves `body` once with status 200 on a local port; the URL.
    fn serve_once(body: Vec<u8>) -> String {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let mut req = [0u8; 1024];
                let _ = s.read(&mut req);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(&body);
            }
        });
        format!("http://user:secret@127.0.0.1:{port}/x")
    }

    #[test]
    fn fetches_within_the_bound_and_leaves_nothing_when_over_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let to = dir.path().join("ok");
        let url = serve_once(b"hello".to_vec());
        assert_eq!(
            download(&url, &to, 5, Duration::from_secs(5)).expect("get"),
            5
        );
        assert_eq!(std::fs::read(&to).expect("read"), b"hello");
        // an existing file is never overwritten
        assert!(download(&url, &to, 5, Duration::from_secs(5)).is_err());

        let big = dir.path().join("big");
        let url = serve_once(vec![7u8; 100]);
        let e = download(&url, &big, 99, Duration::from_secs(5)).expect_err("too large");
        assert!(e.to_string().contains("larger than 99 bytes"), "{e}");
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(!big.exists());
    }

    #[test]
    fn a_refused_connection_is_an_error_without_the_credentials() {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let dir = tempfile::tempdir().expect("tmp");
        let url = format!("http://user:secret@127.0.0.1:{port}/x");
        let e =
            download(&url, &dir.path().join("f"), 10, Duration::from_secs(5)).expect_err("refused");
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(!dir.path().join("f").exists());
    }
}
