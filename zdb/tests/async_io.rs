//! File I/O that waits for the disk never runs on an async worker: a GET whose value is not in
//! memory, and the flush of a namespace whose disk was slow lately, go to tokio's blocking
//! pool, so the other connections of that worker are served meanwhile. In process, on a
//! runtime with one worker thread, over a storage whose disk can be made cold or stuck.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;
use common::*;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use zdb::server::{Listeners, Shared, run};
use zdb::storage::StorageFile;
use zdb::storage::sim::SimStorage;

/// Data-file I/O that can be held: a stuck disk. Tells whether someone waits at it.
#[derive(Default)]
struct Disk {
    /// Reads find nothing in memory (`read_at_nowait` would block).
    cold: AtomicBool,
    /// Reads and writes of data files wait until this is false.
    stuck: Mutex<bool>,
    changed: Condvar,
    waiting: AtomicU64,
    /// Every data-file write takes this long (milliseconds): a slow disk.
    write_delay_ms: AtomicU64,
}

impl Disk {
    fn pass(&self) {
        let mut stuck = self.stuck.lock().unwrap();
        if *stuck {
            self.waiting.fetch_add(1, Ordering::SeqCst);
            self.changed.notify_all();
            while *stuck {
                stuck = self.changed.wait(stuck).unwrap();
            }
        }
    }
    fn set_stuck(&self, on: bool) {
        *self.stuck.lock().unwrap() = on;
        self.changed.notify_all();
    }
    /// Waits until an I/O is held at the stuck disk.
    fn wait_for_waiter(&self) {
        let mut stuck = self.stuck.lock().unwrap();
        while self.waiting.load(Ordering::SeqCst) == 0 {
            stuck = self.changed.wait(stuck).unwrap();
        }
    }
}

/// Lets the disk go when a test ends, also by a failed assertion (the runtime's worker may be
/// the one held).
struct Unstick(Arc<Disk>);

impl Drop for Unstick {
    fn drop(&mut self) {
        self.0.set_stuck(false);
    }
}

struct DiskFile {
    inner: Arc<dyn StorageFile>,
    disk: Arc<Disk>,
}

impl StorageFile for DiskFile {
    fn read_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<usize> {
        self.disk.pass();
        self.inner.read_at(buf, off)
    }
    fn read_at_nowait(&self, buf: &mut [u8], off: u64) -> std::io::Result<Option<usize>> {
        if self.disk.cold.load(Ordering::SeqCst) {
            return Ok(None);
        }
        self.inner.read_at(buf, off).map(Some)
    }
    fn write_at(&self, buf: &[u8], off: u64) -> std::io::Result<()> {
        let delay = self.disk.write_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            // The disk is slow (this is the model, not a wait for the test).
            std::thread::sleep(Duration::from_millis(delay));
        }
        self.disk.pass();
        self.inner.write_at(buf, off)
    }
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync(&self) -> std::io::Result<()> {
        self.inner.sync()
    }
}

/// A server on a runtime with a single worker thread; returns its port (the runtime lives
/// as long as the returned handle).
fn serve(disk: Arc<Disk>) -> (tokio::runtime::Runtime, u16) {
    // Data files (`/d/...`) behind the disk model.
    let storage = Intercepted {
        inner: SimStorage::new(),
        wrap: move |path: &Path, file| -> Arc<dyn StorageFile> {
            if !path.starts_with("/d") {
                return file;
            }
            Arc::new(DiskFile {
                inner: file,
                disk: disk.clone(),
            })
        },
    };
    let shared = Shared::open(inprocess_config(), Arc::new(storage)).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(run(
        Listeners {
            tcp: Some(listener),
            unix: None,
        },
        shared,
        std::future::pending(),
    ));
    (rt, port)
}

/// A PING from another connection is answered while the held I/O waits.
fn ping_answers(port: u16) {
    let mut other = Client::connect(port).unwrap();
    other.set_timeout(Duration::from_secs(5));
    assert_eq!(
        other.try_cmd(&[b"PING"]).map_err(|e| e.to_string()),
        Ok(Reply::simple("PONG")),
        "the worker is stuck with the held I/O"
    );
}

#[test]
fn a_get_that_waits_for_the_disk_stalls_no_other_connection() {
    let disk = Arc::new(Disk::default());
    let (_rt, port) = serve(disk.clone());
    let _unstick = Unstick(disk.clone());
    let mut reader = Client::connect(port).unwrap();
    assert_eq!(reader.set(b"k", b"value"), Reply::bulk("k"));
    // The value is no longer in memory, and the disk does not answer for now.
    disk.cold.store(true, Ordering::SeqCst);
    disk.set_stuck(true);
    reader.send(&[b"GET", b"k"]).unwrap();
    disk.wait_for_waiter();
    ping_answers(port);
    disk.set_stuck(false);
    assert_eq!(reader.read_reply().unwrap(), Reply::bulk("value"));
    // Warm again: answered from memory.
    disk.cold.store(false, Ordering::SeqCst);
    assert_eq!(reader.get(b"k"), Reply::bulk("value"));
}

#[test]
fn a_flush_to_a_slow_disk_stalls_no_other_connection() {
    let disk = Arc::new(Disk::default());
    let (_rt, port) = serve(disk.clone());
    let _unstick = Unstick(disk.clone());
    let mut writer = Client::connect(port).unwrap();
    assert_eq!(writer.set(b"k1", b"v"), Reply::bulk("k1"));
    // A slow write marks the namespace's disk slow...
    disk.write_delay_ms.store(60, Ordering::SeqCst);
    assert_eq!(writer.set(b"k2", b"v"), Reply::bulk("k2"));
    disk.write_delay_ms.store(0, Ordering::SeqCst);
    // ...so the next flush, which the disk holds, runs off the worker.
    disk.set_stuck(true);
    writer.send(&[b"SET", b"k3", b"v"]).unwrap();
    disk.wait_for_waiter();
    ping_answers(port);
    disk.set_stuck(false);
    assert_eq!(writer.read_reply().unwrap(), Reply::bulk("k3"));
    assert_eq!(writer.get(b"k3"), Reply::bulk("v"));
}
