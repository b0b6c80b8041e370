//! Stores: a static HTTP server over a dir store, routes that shard and replicate, store
//! lists from stdin, and credentials that never reach an error message.
#![expect(clippy::unwrap_used, reason = "tests: a failed step fails the test")]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use common::{block_files, fails, ok, small_image};

fn dir_url(p: &Path) -> String {
    format!("dir://{}", p.display())
}

/// A tiny static HTTP server over a folder, serving `n` requests at most per connection.
fn serve(root: PathBuf) -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let st = stop.clone();
    std::thread::spawn(move || {
        for s in l.incoming().take(10_000) {
            if st.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let Ok(s) = s else { continue };
            let root = root.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut w = s;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut parts = line.split_whitespace();
                    let method = parts.next().unwrap_or("").to_string();
                    let path = parts.next().unwrap_or("/").to_string();
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                            break;
                        }
                    }
                    let rel = path.trim_start_matches('/');
                    let body = if rel.contains("..") {
                        None
                    } else {
                        std::fs::read(root.join(rel)).ok()
                    };
                    let res = match body {
                        Some(b) => {
                            let _ =
                                write!(w, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", b.len());
                            if method == "GET" {
                                w.write_all(&b)
                            } else {
                                Ok(())
                            }
                        }
                        None => write!(w, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
                    };
                    if res.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), stop)
}

#[test]
fn http_store_serves_a_dir_store() {
    let t = common::tmp();
    let (src, sp, fl) = small_image(t.path());
    let (url, _stop) = serve(sp.clone());
    ok(flist!("verify", "--store", url, fl));
    let out = t.path().join("out");
    ok(flist!("unpack", "--store", url, fl, out));
    assert_eq!(
        std::fs::read(out.join("d/f")).unwrap(),
        std::fs::read(src.join("d/f")).unwrap()
    );
    // Read-only: packing to it fails; a missing block is reported.
    fails(
        flist!(
            "pack",
            "--quiet",
            "--store",
            url,
            "-o",
            t.path().join("x.fl"),
            src
        ),
        "read-only",
    );
    for b in block_files(&sp) {
        std::fs::remove_file(b).unwrap();
    }
    fails(flist!("verify", "--store", url, fl), "not found");
}

#[test]
fn routes_shard_and_replicate() {
    let t = common::tmp();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    for i in 0..40 {
        std::fs::write(src.join(format!("f{i}")), common::noise(5000, i)).unwrap();
    }
    let (a, b, c) = (t.path().join("a"), t.path().join("b"), t.path().join("c"));
    let fl = t.path().join("r.fl");
    ok(flist!(
        "pack",
        "--quiet",
        // One block per file (none packed), so that both shards get some.
        "--small-files",
        "0",
        "--store",
        format!("00-7f={}", dir_url(&a)),
        "--store",
        format!("80-ff={}", dir_url(&b)),
        "--store",
        format!("00-ff={}", dir_url(&c)),
        "-o",
        fl,
        src
    ));
    let (na, nb, nc) = (block_files(&a), block_files(&b), block_files(&c));
    assert_eq!(na.len() + nb.len(), 40);
    assert_eq!(nc.len(), 40, "replica holds every block");
    assert!(
        na.iter()
            .all(|p| *p.file_name().unwrap().to_string_lossy() < *"80")
    );
    // Routes are recorded in the trailer; losing a shard is covered by the replica.
    for p in &na {
        std::fs::remove_file(p).unwrap();
    }
    ok(flist!("verify", fl));
    ok(flist!("unpack", fl, t.path().join("out")));
    for p in &nc {
        std::fs::remove_file(p).unwrap();
    }
    fails(flist!("verify", fl), "r.fl");
}

#[test]
fn store_passwords_never_reach_errors() {
    let t = common::tmp();
    let (_src, _sp, fl) = small_image(t.path());
    // Nothing listens on port 1: every store fails, and says so without its credentials.
    let secret = "pw-s3cret-9";
    let urls = [
        format!("zdb://alice:{secret}@127.0.0.1:1/ns"),
        format!("http://alice:{secret}@127.0.0.1:1"),
        format!("00-7f=http://alice:{secret}@127.0.0.1:1"),
        format!("zz-7f=zdb://alice:{secret}@127.0.0.1:1/ns"),
        format!("ftp://alice:{secret}@127.0.0.1:1/x"),
    ];
    let fls = fl.as_os_str();
    let out = t.path().join("out");
    for url in &urls {
        let stdin = format!("# stores\n{url}\n");
        for args in [
            vec!["verify".as_ref(), "--stores-stdin".as_ref(), fls],
            vec!["cat".as_ref(), "--stores-stdin".as_ref(), fls, "g".as_ref()],
            vec![
                "unpack".as_ref(),
                "--stores-stdin".as_ref(),
                fls,
                out.as_os_str(),
            ],
        ] {
            let o = common::run_stdin(&args, stdin.as_bytes());
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(!o.status.success(), "{args:?} with {url}: {err}");
            assert!(!err.contains(secret), "{args:?} leaks the password: {err}");
            assert!(
                err.contains("127.0.0.1:1"),
                "{args:?} names the store: {err}"
            );
        }
        // The same URL on the command line (the user's own choice) is not echoed either.
        let o = flist!("verify", "--store", url, fl);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && !err.contains(secret), "{err}");
    }
    // Packing to a store with credentials records the route without them.
    let fl2 = t.path().join("p.fl");
    let o = common::run_stdin(
        &[
            "pack".as_ref(),
            "--quiet".as_ref(),
            "--stores-stdin".as_ref(),
            "-o".as_ref(),
            fl2.as_os_str(),
            t.path().join("src").as_os_str(),
        ],
        format!("zdb://alice:{secret}@127.0.0.1:1/ns\n").as_bytes(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && !err.contains(secret), "{err}");
    assert!(!fl2.exists());
}

#[test]
fn stores_come_from_stdin_as_from_flags() {
    let t = common::tmp();
    let (src, sp, fl) = small_image(t.path());
    let moved = t.path().join("moved");
    std::fs::rename(&sp, &moved).unwrap();
    let stdin = format!("\n# the store moved\n{}\n", dir_url(&moved));
    let o = common::run_stdin(
        &["verify".as_ref(), "--stores-stdin".as_ref(), fl.as_os_str()],
        stdin.as_bytes(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = common::run_stdin(
        &[
            "cat".as_ref(),
            "--stores-stdin".as_ref(),
            fl.as_os_str(),
            "g".as_ref(),
        ],
        stdin.as_bytes(),
    );
    assert_eq!(o.stdout, std::fs::read(src.join("g")).unwrap());
    // Packing needs a store from one or the other.
    fails(
        flist!("pack", "--quiet", "-o", t.path().join("x.fl"), src),
        "no store given",
    );
}
