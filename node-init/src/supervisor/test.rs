//! The supervisor loop against a fake system: order, restart, failure limit, adoption and
//! shutdown order, without processes.
#![expect(clippy::unwrap_used, reason = "tests")]

use super::process::{Probe, Processes, Running, Sig};
use super::reaper::Exit;
use super::service::{Readiness, RestartPolicy, Service, ServiceDef};
use super::{Handle, policy::State, start};
use std::collections::{BTreeSet, HashMap};
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// Every pid is a fake process; a signal ends it; `crash` ends it from the test.
#[derive(Clone, Default)]
struct Fake(Arc<Inner>);

#[derive(Default)]
struct Inner {
    next: AtomicU32,
    alive: Mutex<HashMap<u32, (String, oneshot::Sender<Exit>)>>,
    events: Mutex<Vec<String>>,
    broken: Mutex<BTreeSet<String>>,
    /// a daemon already answering on this socket at start, with this pid
    running: Mutex<Option<(String, u32)>>,
    /// services whose readiness test fails
    not_ready: Mutex<BTreeSet<String>>,
}

impl Fake {
    fn event(&self, e: String) {
        self.0.events.lock().unwrap().push(e);
    }
    fn events(&self) -> Vec<String> {
        self.0.events.lock().unwrap().clone()
    }
    fn crash_if_alive(&self, name: &str) {
        let mut alive = self.0.alive.lock().unwrap();
        if let Some(pid) = alive.iter().find(|(_, (n, _))| n == name).map(|(p, _)| *p) {
            let (_, tx) = alive.remove(&pid).unwrap();
            let _ = tx.send(Exit::Signal(9));
        }
    }
    fn end(&self, pid: u32) {
        let (_, tx) = self.0.alive.lock().unwrap().remove(&pid).unwrap();
        let _ = tx.send(Exit::Signal(9));
    }
    fn crash(&self, name: &str) {
        let mut alive = self.0.alive.lock().unwrap();
        let pid = *alive.iter().find(|(_, (n, _))| n == name).unwrap().0;
        let (_, tx) = alive.remove(&pid).unwrap();
        let _ = tx.send(Exit::Signal(9));
    }
}

impl Processes for Fake {
    async fn spawn(&self, svc: &Service, _log: &std::path::Path) -> io::Result<Running> {
        if self.0.broken.lock().unwrap().contains(&svc.name) {
            self.event(format!("spawn-failed {}", svc.name));
            return Err(io::Error::other("exec format error"));
        }
        let pid = 100 + self.0.next.fetch_add(1, Ordering::Relaxed);
        let (tx, exit) = oneshot::channel();
        self.0
            .alive
            .lock()
            .unwrap()
            .insert(pid, (svc.name.clone(), tx));
        let args: String = svc.def.args.iter().map(|a| format!(" {a}")).collect();
        self.event(format!("start {}{args}", svc.name));
        Ok(Running { pid, exit })
    }

    fn adopt(&self, pid: u32) -> io::Result<oneshot::Receiver<Exit>> {
        let (tx, rx) = oneshot::channel();
        let name = self.0.running.lock().unwrap().clone().unwrap().0;
        self.0.alive.lock().unwrap().insert(pid, (name.clone(), tx));
        self.event(format!("adopt {name}"));
        Ok(rx)
    }

    fn signal(&self, pid: u32, sig: Sig) {
        if let Some((name, tx)) = self.0.alive.lock().unwrap().remove(&pid) {
            self.event(format!("{sig:?} {name}"));
            let _ = tx.send(Exit::Code(0));
        }
    }

    async fn probe(&self, ready: &Readiness) -> Probe {
        if let Readiness::Bus(p) = ready
            && let Some(name) = p.to_str()
            && self.0.not_ready.lock().unwrap().contains(name)
        {
            return Probe::default();
        }
        if let (Readiness::Bus(p), Some((name, pid))) =
            (ready, self.0.running.lock().unwrap().clone())
            && p.to_str() == Some(&name)
        {
            return Probe {
                ready: true,
                pid: Some(pid),
            };
        }
        Probe {
            ready: true,
            pid: None,
        }
    }

    async fn version(&self, _svc: &Service, _pid: Option<u32>) -> Option<String> {
        Some("b3:fake".into())
    }
}

fn svc(name: &str, after: &[&str]) -> Service {
    let mut def = ServiceDef::new("/fake", vec![]);
    def.after = after.iter().map(|s| s.to_string()).collect();
    def.ready = Readiness::Bus(name.into());
    def.restart = RestartPolicy {
        backoff_ms: 10,
        max_backoff_ms: 40,
        limit: 3,
        window_secs: 60,
    };
    Service {
        name: name.into(),
        def,
    }
}

fn node(fake: &Fake, dir: &std::path::Path) -> Handle {
    start(
        fake.clone(),
        vec![
            svc("netd", &["storaged"]),
            svc("computed", &["storaged"]),
            svc("storaged", &[]),
        ],
        dir.to_path_buf(),
    )
    .unwrap()
}

fn state(h: &Handle, name: &str) -> State {
    h.snapshot()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap()
        .state
}

#[tokio::test]
async fn ordered_start_restart_after_crash_and_reverse_stop() {
    let d = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let h = node(&fake, d.path());
    for n in ["storaged", "computed", "netd"] {
        h.wait_ready(n, Duration::from_secs(5)).await.unwrap();
    }
    assert_eq!(
        fake.events(),
        ["start storaged", "start computed", "start netd"]
    );
    let before = state(&h, "computed").pid().unwrap();
    fake.crash("computed");
    let t = std::time::Instant::now();
    loop {
        if let State::Running { pid } = state(&h, "computed")
            && pid != before
        {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "not restarted");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let snap = h.snapshot();
    let c = snap.iter().find(|s| s.name == "computed").unwrap();
    assert_eq!(c.restarts, 1);
    assert_eq!(c.detail.as_deref(), Some("killed by signal 9"));
    h.shutdown().await;
    assert_eq!(
        fake.events()[4..],
        ["Term netd", "Term computed", "Term storaged"]
    );
    assert!(h.snapshot().iter().all(|s| s.state == State::Stopped));
}

#[tokio::test]
async fn a_service_that_cannot_start_fails_after_its_limit_and_its_dependents_wait() {
    let d = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    fake.0.broken.lock().unwrap().insert("storaged".into());
    let h = node(&fake, d.path());
    let err = h
        .wait_ready("storaged", Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(err.contains("crashed more than 3 times"), "{err}");
    assert!(err.contains("exec format error"), "{err}");
    // 1 start + 3 restarts, then nothing more
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fake.events().len(), 4, "{:?}", fake.events());
    assert_eq!(state(&h, "computed"), State::Waiting);
    assert_eq!(h.snapshot()[0].restarts, 3);
    h.shutdown().await;
}

#[tokio::test]
async fn a_daemon_already_answering_is_adopted_not_started_twice() {
    let d = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    *fake.0.running.lock().unwrap() = Some(("storaged".into(), 4242));
    let h = node(&fake, d.path());
    h.wait_ready("netd", Duration::from_secs(5)).await.unwrap();
    assert_eq!(fake.events()[0], "adopt storaged");
    assert_eq!(state(&h, "storaged"), State::Running { pid: 4242 });
    assert!(h.snapshot()[0].adopted);
    // a crash of the adopted one: started as our child then
    fake.crash("storaged");
    h.wait_ready("storaged", Duration::from_secs(5))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(fake.events().contains(&"start storaged".to_string()));
    h.shutdown().await;
}

#[tokio::test]
async fn an_operator_restart_stops_and_starts_without_counting_a_crash() {
    let d = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let h = node(&fake, d.path());
    h.wait_ready("netd", Duration::from_secs(5)).await.unwrap();
    let before = state(&h, "computed").pid().unwrap();
    h.restart("computed", Duration::from_secs(5)).await.unwrap();
    let State::Running { pid } = state(&h, "computed") else {
        panic!("not running: {:?}", state(&h, "computed"));
    };
    assert_ne!(pid, before);
    let snap = h.snapshot();
    let c = snap.iter().find(|s| s.name == "computed").unwrap();
    assert_eq!(c.restarts, 0);
    assert_eq!(c.detail.as_deref(), Some("restarted on request"));
    assert_eq!(
        fake.events()[3..],
        ["Term computed", "start computed"],
        "only computed restarted"
    );
    let err = h.restart("nope", Duration::from_secs(1)).await.unwrap_err();
    assert!(err.contains("no service"), "{err}");

    // a failed service is started again on request
    fake.0.broken.lock().unwrap().insert("netd".into());
    for _ in 0..4 {
        fake.crash_if_alive("netd");
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    let t = std::time::Instant::now();
    while !matches!(state(&h, "netd"), State::Failed { .. }) {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{:?}",
            state(&h, "netd")
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    fake.0.broken.lock().unwrap().clear();
    h.restart("netd", Duration::from_secs(5)).await.unwrap();
    assert!(matches!(state(&h, "netd"), State::Running { .. }));
    h.shutdown().await;
}

#[tokio::test]
async fn a_process_handed_over_by_a_re_exec_is_adopted_whatever_its_readiness() {
    let d = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    // a service without a bus socket: only the hand-over tells its process apart
    let mut plain = svc("plain", &[]);
    plain.def.ready = Readiness::Started;
    *fake.0.running.lock().unwrap() = Some(("plain".into(), 777));
    let handed = [("plain".to_string(), 777)].into_iter().collect();
    let h = super::start_handed(
        fake.clone(),
        vec![plain, svc("other", &[])],
        d.path().to_path_buf(),
        &handed,
    )
    .unwrap();
    h.wait_ready("other", Duration::from_secs(5)).await.unwrap();
    assert!(fake.events().contains(&"adopt plain".to_string()));
    assert!(!fake.events().contains(&"start plain".to_string()));
    assert_eq!(state(&h, "plain"), State::Running { pid: 777 });
    assert!(fake.events().contains(&"start other".to_string()));
    h.shutdown().await;
}

#[tokio::test]
async fn a_successor_takes_over_or_gives_the_service_back_to_its_predecessor() {
    let d = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let h = node(&fake, d.path());
    h.wait_ready("netd", Duration::from_secs(5)).await.unwrap();
    let first = state(&h, "netd").pid().unwrap();
    let with_exec = |exec: &str| {
        let mut def = h.definition("netd").unwrap();
        def.exec = exec.into();
        def
    };
    let wait = Duration::from_secs(5);

    // ready: the service runs the successor; the predecessor's exit is no crash
    let take = vec!["--take-over".to_string(), "/sock".to_string()];
    let new = h.succeed("netd", with_exec("/new"), take).await.unwrap();
    assert_eq!(h.wait_succeeded("netd", new, wait).await, Ok(new));
    assert!(
        fake.events()
            .contains(&"start netd --take-over /sock".to_string())
    );
    fake.end(first);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(state(&h, "netd"), State::Running { pid: new });
    let def = h.definition("netd").unwrap();
    assert_eq!(def.exec, std::path::Path::new("/new"));
    assert!(
        def.args.is_empty(),
        "the extra arguments were for one start only"
    );
    assert_eq!(h.snapshot()[2].restarts, 0);

    // a successor that ends before it is ready: the predecessor serves on, as it was
    fake.0.not_ready.lock().unwrap().insert("netd".into());
    let bad = h.succeed("netd", with_exec("/bad"), vec![]).await.unwrap();
    assert_eq!(state(&h, "netd"), State::Starting { pid: bad });
    fake.end(bad);
    let err = h.wait_succeeded("netd", bad, wait).await.unwrap_err();
    assert!(err.contains("take-over failed"), "{err}");
    assert_eq!(state(&h, "netd"), State::Running { pid: new });
    assert_eq!(
        h.definition("netd").unwrap().exec,
        std::path::Path::new("/new")
    );

    // not ready in time: killed, the predecessor serves on
    let slow = h.succeed("netd", with_exec("/slow"), vec![]).await.unwrap();
    let err = h
        .wait_succeeded("netd", slow, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(err.contains("not ready"), "{err}");
    assert_eq!(state(&h, "netd"), State::Running { pid: new });

    // the predecessor gone, then the successor: the old definition is restarted
    let late = h.succeed("netd", with_exec("/bad"), vec![]).await.unwrap();
    fake.end(new);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(state(&h, "netd"), State::Starting { pid: late });
    fake.end(late);
    assert!(h.wait_succeeded("netd", late, wait).await.is_err());
    fake.0.not_ready.lock().unwrap().clear();
    h.wait_ready("netd", wait).await.unwrap();
    let pid = state(&h, "netd").pid().unwrap();
    assert!(![first, new, bad, slow, late].contains(&pid));
    assert_eq!(
        h.definition("netd").unwrap().exec,
        std::path::Path::new("/new")
    );
    assert_eq!(h.snapshot()[2].restarts, 1);

    // refused when there is nothing running to take over from
    h.shutdown().await;
    assert!(h.succeed("netd", with_exec("/x"), vec![]).await.is_err());
}
