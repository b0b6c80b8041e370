//! The servers under test (redis-server, zdb): started pinned, waited for, measured
//! (CPU ticks, RSS) and stopped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::R;
use super::load::connect;
use super::opts::Opts;
use super::util::{free_port, sh};

pub(crate) struct Server {
    pub(crate) name: String,
    pub(crate) child: Child,
    pub(crate) port: u16,
}

impl Server {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
    pub(crate) fn cpu_ticks(&self) -> R<u64> {
        let s = fs::read_to_string(format!("/proc/{}/stat", self.pid()))?;
        let rest = &s[s.rfind(')').ok_or("bad stat")? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // Fields 14 (utime) and 15 (stime); `rest` starts at field 3. Whole thread group.
        Ok(f[11].parse::<u64>()? + f[12].parse::<u64>()?)
    }
    pub(crate) fn rss_bytes(&self) -> R<u64> {
        let s = fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let l = s
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .ok_or("no VmRSS")?;
        Ok(l.split_whitespace()
            .nth(1)
            .ok_or("bad VmRSS")?
            .parse::<u64>()?
            * 1024)
    }
    /// SIGTERM, then wait for a clean exit.
    pub(crate) fn stop(mut self) -> R<Duration> {
        let t = Instant::now();
        sh("kill", &["-TERM", &self.pid().to_string()])?;
        while t.elapsed() < Duration::from_secs(120) {
            if let Some(st) = self.child.try_wait()? {
                if !st.success() {
                    eprintln!("  {} exited with {st}", self.name);
                }
                return Ok(t.elapsed());
            }
            thread::sleep(Duration::from_millis(5));
        }
        Err(format!("{} did not stop within 120 s", self.name).into())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Poll until the server answers PING; returns the time since `since`.
pub(crate) fn wait_ready(srv: &mut Server, since: Instant, timeout: Duration) -> R<Duration> {
    loop {
        if let Some(st) = srv.child.try_wait()? {
            return Err(format!("{} exited during start-up: {st}", srv.name).into());
        }
        if connect(srv.port).and_then(|mut c| Ok(c.ping()?)).is_ok() {
            return Ok(since.elapsed());
        }
        if since.elapsed() > timeout {
            return Err(format!("{} not ready after {timeout:?}", srv.name).into());
        }
        thread::sleep(Duration::from_millis(2));
    }
}

pub(crate) struct Env {
    pub(crate) o: Opts,
    pub(crate) logs: PathBuf,
}

impl Env {
    pub(crate) fn spawn(&self, name: &str, prog: &str, args: &[String]) -> R<Server> {
        let port = args
            .iter()
            .position(|a| a == "--port")
            .and_then(|i| args.get(i + 1))
            .and_then(|p| p.parse().ok())
            .ok_or("no --port")?;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("{name}.log")))?;
        let child = Command::new("taskset")
            .arg("-c")
            .arg(&self.o.server_cpu)
            .arg(prog)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        Ok(Server {
            name: name.into(),
            child,
            port,
        })
    }

    pub(crate) fn redis(&self, dir: &Path, durable: bool) -> R<Server> {
        fs::create_dir_all(dir)?;
        let port = free_port()?;
        let mut a: Vec<String> = vec![
            "--port".into(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--save".into(),
            "".into(),
            "--daemonize".into(),
            "no".into(),
            "--protected-mode".into(),
            "no".into(),
            "--dir".into(),
            dir.display().to_string(),
        ];
        if durable {
            a.extend(["--appendonly", "yes", "--appendfsync", "always"].map(String::from));
        } else {
            a.extend(["--appendonly", "no"].map(String::from));
        }
        let mut s = self.spawn("redis", "redis-server", &a)?;
        wait_ready(&mut s, Instant::now(), Duration::from_secs(30))?;
        Ok(s)
    }

    /// Start zdb on `dir/data` + `dir/index`; returns the server and the start-up time.
    pub(crate) fn zdb(&self, dir: &Path, extra: &[&str]) -> R<(Server, Duration)> {
        fs::create_dir_all(dir)?;
        let port = free_port()?;
        let mut a: Vec<String> = vec![
            "--listen".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--data".into(),
            dir.join("data").display().to_string(),
            "--index".into(),
            dir.join("index").display().to_string(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        let t = Instant::now();
        let mut s = self.spawn("zdb", &self.o.zdb.display().to_string(), &a)?;
        let d = wait_ready(&mut s, t, Duration::from_secs(600))?;
        Ok((s, d))
    }

    pub(crate) fn fresh(&self, name: &str) -> PathBuf {
        let p = self.o.workdir.join(name);
        let _ = fs::remove_dir_all(&p);
        p
    }
}
