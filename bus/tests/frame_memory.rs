//! A frame's declared length costs nothing until its bytes arrive: peers that each announce
//! the largest frame and send one byte must not make the server allocate their announcements.
//!
//! Measured with a counting global allocator, so this file is its own test binary (one test:
//! nothing else allocates meanwhile).
#![expect(clippy::unwrap_used, reason = "tests")]
#![expect(unsafe_code, reason = "a GlobalAlloc wrapper is unsafe by definition")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call forwards to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new, Ordering::Relaxed);
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

bus::method!(Echo, "test.echo" @ 1, serde_json::Value => serde_json::Value);

#[tokio::test(flavor = "current_thread")]
async fn announced_frames_are_not_allocated_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let path = bus::service_socket(dir.path(), "mem");
    let mut server = bus::Server::new("mem");
    server.handle::<Echo, _, _>(|v| async move { Ok(v) });
    let listener = bus::bind(&path).await.unwrap();
    tokio::spawn(server.serve(listener, std::future::pending()));

    let before = LIVE.load(Ordering::Relaxed);
    let mut peers = Vec::new();
    for _ in 0..16 {
        let mut s = UnixStream::connect(&path).await.unwrap();
        s.write_all(&(bus::MAX_FRAME as u32).to_be_bytes())
            .await
            .unwrap();
        s.write_all(b"{").await.unwrap();
        peers.push(s);
    }
    // Let the server read every header and byte.
    for _ in 0..50 {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let grown = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    // 16 announcements of 16 MiB would be 256 MiB; what arrived is 16 bytes.
    assert!(
        grown < 4 << 20,
        "server holds {grown} bytes for 16 bytes received"
    );
    drop(peers);
}
