//! Entry points shared by the cargo-fuzz targets (`zdb/fuzz/`) and the test that replays
//! their corpus in CI: each must return, never panic, whatever the bytes.

use std::path::Path;
use std::sync::Arc;

use bytes::BytesMut;

use crate::engine::{EngineConfig, Namespace, RunMode};
use crate::storage::Storage;
use crate::storage::sim::SimStorage;

/// Feed bytes to the RESP parser in two pieces, as a socket might, until it stops.
pub fn resp(data: &[u8]) {
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let mut buf = BytesMut::new();
    for piece in [&data[..split], &data[split..]] {
        buf.extend_from_slice(piece);
        for _ in 0..64 {
            match crate::protocol::parse(&mut buf) {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) if e.keeps_connection() => {}
                Err(_) => return,
            }
        }
    }
}

/// Open a namespace whose files are made from `data` (a descriptor, `i0` and `d0` cut from
/// it), then read everything back through every path.
pub fn load(data: &[u8]) {
    let third = data.len() / 3;
    let (desc, rest) = data.split_at(third.min(64));
    let (index, dat) = rest.split_at(rest.len() / 2);
    let sim = SimStorage::new();
    let storage: Arc<dyn Storage> = Arc::new(sim.clone());
    let (ip, dp) = (Path::new("/i/ns"), Path::new("/d/ns"));
    let _ = storage.create_dir_all(ip);
    let _ = storage.create_dir_all(dp);
    if !desc.is_empty() {
        sim.write_file(&ip.join("zdb-namespace"), desc);
    }
    sim.write_file(&ip.join("i0"), index);
    sim.write_file(&dp.join("d0"), dat);
    let cfg = EngineConfig {
        datasize: 1 << 20,
        sync: false,
        synctime: None,
        run_mode: RunMode::Mixed,
        group_commit: false,
    };
    let Ok(mut ns) = Namespace::open(storage, Path::new("/i"), Path::new("/d"), b"ns", cfg) else {
        return;
    };
    let _ = ns.check_all();
    let mut cursor = None;
    for _ in 0..4 {
        match ns.scan(cursor.as_deref()) {
            Ok(page) if !page.items.is_empty() => {
                for item in &page.items {
                    let _ = ns.get(&item.key);
                    let _ = ns.history(&item.key, None);
                }
                cursor = Some(page.cursor);
            }
            _ => break,
        }
    }
    let _ = ns.rscan(None);
    let _ = ns.data_raw(0, 28);
    let _ = ns.set(b"after", b"fuzz", 1);
    let _ = ns.flush_pending();
}
