//! zdb listens before it loads its namespaces and answers `-LOADING ...` until they are
//! loaded and its start-up hooks ran, so a namespace that takes minutes to replay on a cold
//! disk looks busy, not dead. INFO shows the progress; AUTH works meanwhile.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const LOADING: &str = "LOADING zdb is loading its namespaces";

fn connect(port: u16) -> Client {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(c) = Client::connect(port) {
            return c;
        }
        assert!(Instant::now() < deadline, "zdb does not listen");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn clients_get_loading_until_start_up_is_done() {
    let tmp = tempfile::tempdir().unwrap();
    let (started, release) = (tmp.path().join("started"), tmp.path().join("release"));
    // A namespaces-init hook that holds start-up until the test releases it.
    let hook = tmp.path().join("hook.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nif [ \"$1\" = namespaces-init ]; then\ntouch '{}'\n\
             while [ ! -e '{}' ]; do sleep 0.01; done\nfi\nexit 0\n",
            started.display(),
            release.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = tmp.path().to_path_buf();
    let args = ["--hook", hook.to_str().unwrap(), "--admin", ADMIN];
    let mut s = Server::new_at(&root, &args, &[]);
    assert!(s.launch_expect_exit(Duration::ZERO).is_none());
    wait_for_file(&started);

    let mut c = connect(s.port);
    assert_eq!(c.c(&["PING"]), Reply::err(LOADING));
    assert_eq!(c.c(&["GET", "k"]), Reply::err(LOADING));
    assert_eq!(c.c(&["NSNEW", "ns"]), Reply::err(LOADING));
    let info = parse_info(&c.c(&["INFO"]).text());
    assert_eq!(info_get(&info, "loading").as_deref(), Some("1"));
    // Every namespace is loaded; the start-up hook is what runs.
    let total = info_get(&info, "loading_namespaces_total").unwrap();
    assert_eq!(total, "1");
    assert_eq!(info_get(&info, "loading_namespaces_loaded").unwrap(), total);
    // AUTH answers, and the session keeps it once loading is over.
    assert_eq!(c.c(&["AUTH", ADMIN]), Reply::ok());
    // A request sent while loading is answered after it, in its turn.
    c.send(&[b"PING"]).unwrap();
    assert_eq!(c.read_reply().unwrap(), Reply::err(LOADING));

    std::fs::write(&release, b"").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.c(&["PING"]) != Reply::simple("PONG") {
        assert!(Instant::now() < deadline, "still loading");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(c.c(&["NSNEW", "ns"]), Reply::ok());
    assert_eq!(c.set(b"k", b"v"), Reply::bulk("k"));
    let info = parse_info(&c.c(&["INFO"]).text());
    assert_eq!(info_get(&info, "loading").as_deref(), Some("0"));
    assert_eq!(
        info_get(&info, "loading_loaded_perc").as_deref(),
        Some("100.00")
    );
    s.kill();
}

// Progress while a namespace loads, in process: a storage where the descriptor of one
// namespace cannot be opened until the test lets it.

use zdb::server::Shared;
use zdb::storage::sim::SimStorage;

/// A gate: `wait` blocks until `open` is called; `entered` tells whether someone waits.
#[derive(Default)]
struct Gate {
    state: Mutex<(bool, bool)>,
    changed: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut st = self.state.lock().unwrap();
        st.0 = true;
        self.changed.notify_all();
        while !st.1 {
            st = self.changed.wait(st).unwrap();
        }
    }
    fn wait_entered(&self) {
        let mut st = self.state.lock().unwrap();
        while !st.0 {
            st = self.changed.wait(st).unwrap();
        }
    }
    fn open(&self) {
        self.state.lock().unwrap().1 = true;
        self.changed.notify_all();
    }
}

#[test]
fn info_shows_which_namespaces_are_loaded() {
    let sim = SimStorage::new();
    {
        let shared = Shared::open(inprocess_config(), Arc::new(sim.clone())).unwrap();
        for name in [&b"a"[..], b"b", b"c"] {
            assert!(shared.create(name).unwrap());
        }
        shared.sync_all();
    }
    let gate = Arc::new(Gate::default());
    let held = gate.clone();
    let storage = Intercepted {
        inner: sim,
        // Namespaces load in name order: `a` first, then `b`, held here, `c`, `default`.
        wrap: move |path: &Path, file| {
            if path == Path::new("/i/b/zdb-namespace") {
                held.wait();
            }
            file
        },
    };
    let shared = Shared::new(inprocess_config(), Arc::new(storage));
    let loader = {
        let shared = shared.clone();
        std::thread::spawn(move || shared.load_namespaces())
    };
    gate.wait_entered();
    assert!(!shared.loading.is_ready());
    assert_eq!(shared.loading.namespaces(), (1, 4));
    let info = parse_info(&shared.loading.info());
    assert_eq!(info_get(&info, "loading").as_deref(), Some("1"));
    assert_eq!(
        info_get(&info, "loading_namespaces_loaded").as_deref(),
        Some("1")
    );
    assert_eq!(
        info_get(&info, "loading_namespaces_total").as_deref(),
        Some("4")
    );
    gate.open();
    loader.join().unwrap().unwrap();
    assert_eq!(shared.loading.namespaces(), (4, 4));
    assert!(
        !shared.loading.is_ready(),
        "ready only once the server says so"
    );
    shared.loading.set_ready();
    let info = parse_info(&shared.loading.info());
    assert_eq!(info_get(&info, "loading").as_deref(), Some("0"));
}
