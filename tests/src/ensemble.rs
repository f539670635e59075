//! Three-server ZooKeeper ensembles on loopback, for the fault tests that kill members.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use zookeeper::ZooKeeper;

use crate::procfs::*;
use crate::*;

// ---------------------------------------------------------------------------------------------
// Ensembles

/// Takes `n` of the harness's server slots at once (all or nothing, so two ensembles never
/// deadlock holding a part each). Capped at [`max_servers`].
fn acquire_permits(n: usize) -> Vec<Permit> {
    let n = n.min(max_servers());
    let slots = slots();
    let mut used = lock(&slots.used);
    while *used + n > max_servers() {
        // Polls as well as waits: a release wakes only one waiter, perhaps a single-server test.
        used = slots.freed.wait_timeout(used, Duration::from_millis(100)).unwrap_or_else(|p| p.into_inner()).0;
    }
    *used += n;
    (0..n).map(|_| Permit).collect()
}

/// The first line of every `zoo.cfg` that `scripts/zk.sh` starts or stops (`ZK_MARKER` there).
const ZK_MARKER: &str = "# Throwaway ZooKeeper written by scripts/zk.sh";

/// One member of an [`Ensemble`].
#[derive(Debug)]
struct Member {
    dir: PathBuf,
    port: u16,
    running: bool,
}

/// A private loopback ensemble of three ZooKeeper servers started by
/// `scripts/zk.sh start-ensemble`, members numbered 1 to 3 as in the script.
pub struct Ensemble {
    dir: PathBuf,
    connect: String,
    members: Vec<Member>,
    watchdog: Option<Child>,
    _permits: Vec<Permit>,
}

impl Ensemble {
    /// Starts three members with `tickTime` `tick_ms` and waits until each is leader or
    /// follower.
    pub fn start(tick_ms: u32) -> Ensemble {
        Ensemble::launch(None, &["--tick-ms", &tick_ms.to_string()])
    }

    /// [`Ensemble::start`], TLS-only (`zk.sh start-ensemble --tls`): every member serves
    /// clients on a secureClientPort only, with one CA and server certificate for all
    /// ([`Ensemble::tls`]); the quorum between them stays plaintext. The raw client
    /// ([`Ensemble::raw`]) speaks no TLS.
    pub fn start_tls(tick_ms: u32) -> Ensemble {
        Ensemble::launch(None, &["--tick-ms", &tick_ms.to_string(), "--tls"])
    }

    /// The TLS files of a [`start_tls`](Ensemble::start_tls) ensemble.
    pub fn tls(&self) -> Option<TlsFiles> {
        let dir = self.dir.join("tls");
        dir.join("ca.pem").exists().then(|| TlsFiles::in_dir(dir, false))
    }

    /// A command for `role` with `--zk` set to the ensemble (and its TLS flags, if any).
    pub fn cmd(&self, role: Role) -> TestCommand {
        let cmd = TestCommand::new(role).zk(&self.connect);
        match self.tls() {
            Some(tls) => cmd.args(tls.role_args()),
            None => cmd,
        }
    }

    /// Starts three members from configurations of your own: `cfg(n, member_dir, ports)` gives
    /// member `n`'s `zoo.cfg` (without `scripts/zk.sh`'s marker line, added here), where
    /// `ports` are nine free loopback ports (`ports[n - 1]` is meant for member `n`'s clients,
    /// the other six for `server.N` lines). Each member's `dataDir` must be `member_dir/data`
    /// (its `myid` is written there); it must listen on 127.0.0.1 and allow `ruok` and `srvr`
    /// (`zk.sh` waits with them).
    pub fn start_with_configs(cfg: impl Fn(usize, &Path, &[u16]) -> String) -> Ensemble {
        std::fs::create_dir_all(temp_root()).expect("create the temp root");
        let dir = temp_root().join(format!("{}-ens", unique_name(&test_name())));
        let ports: Vec<u16> = (0..9)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
            .map(|l| l.expect("bind"))
            .collect::<Vec<_>>()
            .iter()
            .map(|l| l.local_addr().expect("addr").port())
            .collect();
        for n in 1..=3 {
            let member = dir.join(n.to_string());
            std::fs::create_dir_all(member.join("data")).expect("member dir");
            std::fs::write(member.join("data/myid"), format!("{n}\n")).expect("myid");
            let text = format!("{ZK_MARKER}\n{}\n", cfg(n, &member, &ports));
            std::fs::write(member.join("zoo.cfg"), text).expect("zoo.cfg");
        }
        Ensemble::launch(Some(dir), &[])
    }

    /// `zk.sh start-ensemble` in `dir` (a new one if `None`; an existing one is started as it
    /// is configured), with `args`.
    fn launch(dir: Option<PathBuf>, args: &[&str]) -> Ensemble {
        let permits = acquire_permits(3);
        std::fs::create_dir_all(temp_root()).expect("create the temp root");
        let dir = dir.unwrap_or_else(|| temp_root().join(format!("{}-ens", unique_name(&test_name()))));
        let out = Command::new("bash")
            .arg(zk_script())
            .arg("start-ensemble")
            .arg("--dir")
            .arg(&dir)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run zk.sh: {e}"));
        let mut ensemble = Ensemble { dir, connect: String::new(), members: Vec::new(), watchdog: None, _permits: permits };
        ensemble.watchdog = Some(spawn_watchdog(&ensemble.dir));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "`zk.sh start-ensemble` failed ({}):\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        ensemble.connect = stdout.split_whitespace().next().unwrap_or_default().to_owned();
        for (i, host) in ensemble.connect.split(',').enumerate() {
            let port: u16 = host.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port");
            let dir = ensemble.dir.join((i + 1).to_string());
            let cfg = std::fs::read_to_string(dir.join("zoo.cfg")).expect("member zoo.cfg");
            assert!(
                cfg.lines().any(|l| l == format!("clientPort={port}") || l == format!("secureClientPort={port}")),
                "member {} is not on port {port}",
                i + 1
            );
            ensemble.members.push(Member { dir, port, running: true });
        }
        assert_eq!(ensemble.members.len(), 3, "three members: {stdout}");
        ensemble
    }

    /// `127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`.
    pub fn connect_string(&self) -> &str {
        &self.connect
    }

    /// The members' client ports, member 1 first.
    pub fn ports(&self) -> Vec<u16> {
        self.members.iter().map(|m| m.port).collect()
    }

    /// A connect string listing the members in the order of `numbers` (1-based).
    pub fn connect_string_ordered(&self, numbers: &[usize]) -> String {
        numbers.iter().map(|n| format!("127.0.0.1:{}", self.member(*n).port)).collect::<Vec<_>>().join(",")
    }

    fn member(&self, n: usize) -> &Member {
        assert!((1..=self.members.len()).contains(&n), "no member {n}");
        &self.members[n - 1]
    }

    /// Member `n`'s directory (`zoo.cfg`, `data/`, `server.log`).
    pub fn member_dir(&self, n: usize) -> &Path {
        &self.member(n).dir
    }

    /// The number of the member that is leader (waits up to 20 s for one).
    pub fn leader(&self) -> usize {
        let out = Command::new("bash")
            .arg(zk_script())
            .arg("leader")
            .arg(&self.dir)
            .args(["--wait", "20"])
            .stdin(Stdio::null())
            .output()
            .expect("run zk.sh leader");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "no leader: {text}{}", String::from_utf8_lossy(&out.stderr));
        text.trim().parse().unwrap_or_else(|_| panic!("zk.sh leader printed {text:?}"))
    }

    /// Kills member `n` with SIGKILL (a crash) and waits until its port is closed.
    pub fn kill(&mut self, n: usize) {
        let member = self.member(n);
        assert!(member.running, "member {n} is not running");
        let pid = server_pid(&member.dir);
        signal_pid(pid, "KILL");
        let port = member.port;
        wait_until(Duration::from_secs(10), &format!("member {n} to be gone"), || {
            TcpStream::connect(("127.0.0.1", port)).is_err()
        });
        self.members[n - 1].running = false;
    }

    /// Starts member `n` again (same port, same data) and waits until it has joined a quorum.
    pub fn start_member(&mut self, n: usize) {
        let dir = self.member(n).dir.clone();
        let out = Command::new("bash")
            .arg(zk_script())
            .arg("start")
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .output()
            .expect("run zk.sh start");
        assert!(
            out.status.success(),
            "`zk.sh start --dir {}` failed:\n{}{}",
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.members[n - 1].running = true;
    }

    /// A raw client connected to the running members.
    pub fn raw(&self) -> ZooKeeper {
        let running: Vec<String> = self.members.iter().filter(|m| m.running).map(|m| format!("127.0.0.1:{}", m.port)).collect();
        connect_raw(&running.join(","))
    }

    /// A four-letter word sent to member `n`.
    pub fn four_letter(&self, n: usize, word: &str) -> String {
        four_letter(self.member(n).port, word)
    }

    /// The members' log tails, for failure messages.
    fn log_tails(&self) -> String {
        let mut s = String::new();
        for (i, m) in self.members.iter().enumerate() {
            let log = std::fs::read_to_string(m.dir.join("server.log")).unwrap_or_default();
            let lines: Vec<&str> = log.lines().filter(|l| !l.starts_with('\t') && !l.contains(" command from /")).collect();
            s.push_str(&format!("---- member {} ({}) ----\n", i + 1, m.dir.display()));
            s.push_str(&lines[lines.len().saturating_sub(15)..].join("\n"));
            s.push('\n');
        }
        s
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tails());
        }
        let _ = Command::new("bash").arg(zk_script()).arg("stop").arg(&self.dir).stdin(Stdio::null()).output();
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}
