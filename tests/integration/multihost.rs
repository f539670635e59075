//! Several hosts for real, on this one machine: every "host" is a network namespace of its own
//! with its own address and (in a UTS namespace) its own hostname, all on a bridge that lives in
//! yet another namespace. ZooKeeper runs in the `zk` host and listens only on its address there;
//! baristas and customers in other hosts reach it over the bridge. Nothing is added to the
//! machine's own network namespace: the addresses exist only inside the test's namespaces, and
//! everything (processes, namespaces, the bridge with them) is removed when the test ends, also
//! when it panics (a [`Lan`] guard) or is killed (a detached watchdog).
//!
//! Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and `ip` (iproute2) and `unshare`
//! (util-linux). Where network namespaces are not permitted the tests fail, saying so, unless
//! `ZK_COFFEE_SKIP_NETNS=1` is set: then they print that they were skipped and pass.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ops::support::*;
use zk_coffee_tests::*;

/// The test LANs' subnet. It exists only inside each test's own namespaces, so two tests (or
/// the machine's own network) using the same range do not meet.
const SUBNET: &str = "10.201.1";

/// One namespaced test at a time: each runs its own ZooKeeper next to the harness's servers.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs a command to completion; panics if it cannot be started.
fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs a command that must succeed.
fn must(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(out.status.success(), "{cmd:?} failed: {}", show(&out));
    out
}

fn ip(args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(args);
    c
}

/// What a failed `ip netns add` / `unshare` says when the kernel refuses it for lack of
/// privilege (EPERM, EACCES).
fn not_permitted(stderr: &str) -> bool {
    stderr.contains("Operation not permitted") || stderr.contains("Permission denied")
}

/// A private LAN of "hosts" (network namespaces) on a bridge, with ZooKeeper on the first one.
struct Lan {
    /// Prefix of every namespace name of this LAN.
    prefix: String,
    /// The hosts, in address order: `hosts[i]` is `{SUBNET}.{i + 1}`.
    hosts: Vec<String>,
    /// The namespaces created so far (switch first), for the clean-up.
    namespaces: Vec<String>,
    /// ZooKeeper's directory, once started.
    zk_dir: Option<PathBuf>,
    /// `{address}:{port}` of ZooKeeper.
    zk: String,
    dir: Dir,
    watchdog: Option<Child>,
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

impl Lan {
    /// Creates the namespaces of `hosts` on a bridge; `None` (after saying so on stderr) if the
    /// machine does not permit network namespaces and `ZK_COFFEE_SKIP_NETNS=1` is set. Panics
    /// if they are not permitted without it, or on any other failure.
    fn create(hosts: &[&str]) -> Option<Lan> {
        let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let prefix = format!("{}n", unique_name("zkc").replace(['-', '_'], "x"));
        let dir = Dir::new("multihost");
        let mut lan = Lan {
            prefix: prefix.clone(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            namespaces: Vec::new(),
            zk_dir: None,
            zk: String::new(),
            dir,
            watchdog: None,
            _one_at_a_time: guard,
        };
        // The switch first: it is the permission probe.
        let switch = format!("{prefix}sw");
        let out = run(&mut ip(&["netns", "add", &switch]));
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            if not_permitted(&stderr) {
                let why = format!("network namespaces are not permitted here (`ip netns add` said: {})", stderr.trim());
                if std::env::var("ZK_COFFEE_SKIP_NETNS").is_ok_and(|v| v == "1") {
                    eprintln!("SKIPPED (ZK_COFFEE_SKIP_NETNS=1): {why}");
                    return None;
                }
                panic!("{why}; run as root, or set ZK_COFFEE_SKIP_NETNS=1 to skip the multi-host tests");
            }
            panic!("`ip netns add {switch}` failed: {}", show(&out));
        }
        lan.namespaces.push(switch.clone());
        lan.watchdog = Some(lan.spawn_watchdog());
        must(&mut ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"]));
        must(&mut ip(&["-n", &switch, "link", "set", "br0", "up"]));
        for (i, host) in hosts.iter().enumerate() {
            let ns = lan.ns(host);
            must(&mut ip(&["netns", "add", &ns]));
            lan.namespaces.push(ns.clone());
            let port = format!("p{i}");
            must(&mut ip(&["-n", &switch, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns]));
            must(&mut ip(&["-n", &switch, "link", "set", &port, "master", "br0"]));
            must(&mut ip(&["-n", &switch, "link", "set", &port, "up"]));
            must(&mut ip(&["-n", &ns, "link", "set", "lo", "up"]));
            must(&mut ip(&["-n", &ns, "addr", "add", &format!("{}/24", lan.addr(host)), "dev", "eth0"]));
            must(&mut ip(&["-n", &ns, "link", "set", "eth0", "up"]));
        }
        // The UTS namespace too (a hostname per host), probed once.
        let out = run(&mut lan.on(hosts[0], "true", &[]));
        if !out.status.success() {
            panic!("cannot give a namespace its own hostname (unshare --uts): {}", show(&out));
        }
        Some(lan)
    }

    /// The namespace of `host`.
    fn ns(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }

    /// The address of `host`.
    fn addr(&self, host: &str) -> String {
        let i = self.hosts.iter().position(|h| h == host).unwrap_or_else(|| panic!("no host {host}"));
        format!("{SUBNET}.{}", i + 1)
    }

    /// The words that run a program on `host`: in its network namespace, with its hostname.
    fn prefix_words(&self, host: &str) -> Vec<OsString> {
        ["ip", "netns", "exec", &self.ns(host), "unshare", "--uts", "sh", "-c", "hostname \"$0\" && exec \"$@\"", host]
            .iter()
            .map(OsString::from)
            .collect()
    }

    /// A command running `program ARGS` on `host`. The process `ip netns exec` starts becomes
    /// `program` itself (every step execs), so its pid is the program's.
    fn on(&self, host: &str, program: impl AsRef<OsStr>, args: &[&str]) -> Command {
        let words = self.prefix_words(host);
        let mut cmd = Command::new(&words[0]);
        cmd.args(&words[1..]).arg(program).args(args);
        clean_env(&mut cmd).env("RUST_LOG", "info");
        cmd
    }

    /// Starts ZooKeeper on `host`, listening on that host's address only.
    fn start_zookeeper(&mut self, host: &str) -> String {
        let dir = self.dir.join("zk");
        let addr = self.addr(host);
        let mut cmd = self.on(host, "bash", &[]);
        cmd.arg(zk_script()).args(["start", "--tick-ms", "500", "--address", &addr, "--dir"]).arg(&dir);
        self.zk_dir = Some(dir);
        let out = must(&mut cmd);
        let line = String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().to_owned();
        let connect = line.split_whitespace().next().unwrap_or_default().to_owned();
        assert!(connect.starts_with(&format!("{addr}:")), "zk.sh start printed {line:?}");
        self.zk = connect.clone();
        connect
    }

    /// Starts `program ARGS` on `host` in the background, its output going to files.
    fn spawn(&self, host: &str, label: &str, program: impl AsRef<OsStr>, args: &[&str]) -> HostProc {
        let stdout = self.dir.join(format!("{label}.out"));
        let stderr = self.dir.join(format!("{label}.err"));
        let mut cmd = self.on(host, program, args);
        cmd.stdin(Stdio::null())
            .stdout(File::create(&stdout).expect("create the stdout file"))
            .stderr(File::create(&stderr).expect("create the stderr file"));
        die_with_parent(&mut cmd);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {label} on {host}: {e}"));
        HostProc { label: format!("{label} on {host} (pid {})", child.id()), child, stdout, stderr, status: None }
    }

    /// `four-letter word` answer of ZooKeeper, asked from `host`.
    fn four_letter(&self, host: &str, word: &str) -> String {
        let (addr, port) = self.zk.split_once(':').expect("ZooKeeper started");
        let script = format!("exec 3<>/dev/tcp/{addr}/{port} && printf {word} >&3 && cat <&3");
        let out = must(&mut self.on(host, "bash", &["-c", &script]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A detached shell that removes everything once the test process is gone, for when it is
    /// killed before the guard can (SIGKILL).
    fn spawn_watchdog(&self) -> Child {
        let script = r#"
            while kill -0 "$1" 2>/dev/null; do sleep 1; done
            [ -f "$3/zk/zoo.cfg" ] && bash "$2" stop "$3/zk"
            for ns in $(ip netns list | awk '{print $1}' | grep "^$4"); do
                ip netns pids "$ns" | xargs -r kill -KILL
                ip netns del "$ns"
            done"#;
        Command::new("setsid")
            .args(["sh", "-c", script, "zk-coffee-netns-watchdog"])
            .arg(std::process::id().to_string())
            .arg(zk_script())
            .arg(self.dir.path())
            .arg(&self.prefix)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the watchdog: {e}"))
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        if let Some(dir) = &self.zk_dir {
            if std::thread::panicking() {
                let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().filter(|l| !l.starts_with('\t')).collect();
                eprintln!(
                    "---- end of the namespaced ZooKeeper's log ----\n{}",
                    tail[tail.len().saturating_sub(20)..].join("\n")
                );
            }
            let _ = run(Command::new("bash").arg(zk_script()).arg("stop").arg(dir));
        }
        // Every process still in one of our namespaces (baristas started by launch.sh are
        // nobody's children), then the namespaces; the veths and the bridge go with them.
        for ns in self.namespaces.iter().rev() {
            let out = run(&mut ip(&["netns", "pids", ns]));
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = run(Command::new("kill").args(["-KILL", pid]));
            }
            let out = run(&mut ip(&["netns", "del", ns]));
            if !out.status.success() {
                eprintln!("warning: could not delete network namespace {ns}: {}", show(&out));
            }
        }
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

/// A program running on one of the LAN's hosts; killed when dropped.
struct HostProc {
    label: String,
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    status: Option<ExitStatus>,
}

impl HostProc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_owned).collect()
    }

    /// The log so far: only for the waits below and for messages (the rule of the harness's
    /// `Proc`: a running role's output is waited for, never read once).
    fn log_so_far(&self) -> Vec<String> {
        HostProc::lines(&self.stderr)
    }

    /// Waits for a log line holding `needle` and returns it.
    fn wait_for_stderr(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.log_so_far().into_iter().find(|l| l.contains(needle)) {
                return line;
            }
            let exited = self.child.try_wait().ok().flatten();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "{}: no log line with {needle:?} ({exited:?})\n{}",
                self.label,
                self.dump()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, signal: &str) {
        must(Command::new("kill").args(["-s", signal, &self.pid().to_string()]));
    }

    /// Waits for the exit; returns the status and what was printed.
    fn wait_exit(&mut self, timeout: Duration) -> (ExitStatus, Vec<String>, Vec<String>) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            if Instant::now() >= deadline {
                panic!("{}: still running after {timeout:?}\n{}", self.label, self.dump());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.status = Some(status);
        (status, HostProc::lines(&self.stdout), self.log_so_far())
    }

    fn dump(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", HostProc::lines(&self.stdout).join("\n"), self.log_so_far().join("\n"))
    }
}

impl Drop for HostProc {
    fn drop(&mut self) {
        if self.status.is_none() && self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- {} ----\n{}", self.label, self.dump());
        }
    }
}

/// `shop-status --json`, asked from `host`.
fn status_from(lan: &Lan, host: &str, shop: Option<&str>) -> Status {
    let words = lan.prefix_words(host);
    let words: Vec<&OsStr> = words.iter().map(OsString::as_os_str).collect();
    Status::read_with(&words, &lan.zk, shop)
}

/// The server's clients per address, from its `cons` report.
fn clients_per_address(cons: &str) -> BTreeMap<String, usize> {
    let mut per = BTreeMap::new();
    for line in cons.lines() {
        // ` /10.201.1.2:41936[1](queued=0,...)`; [0] is our own 4lw connection.
        let Some(rest) = line.trim().strip_prefix('/') else { continue };
        if line.contains("[0]") {
            continue;
        }
        let addr = rest.split(':').next().unwrap_or_default().to_owned();
        *per.entry(addr).or_default() += 1;
    }
    per
}

#[test]
fn a_shop_spread_over_network_namespaces_serves_every_order() {
    let Some(mut lan) = Lan::create(&["zk", "h1", "h2", "cust"]) else { return };
    let zk = lan.start_zookeeper("zk");
    must(&mut lan.on("cust", Role::ShopInit.path(), &["--zk", &zk]));

    // Two baristas on each barista host, with the default names.
    let mut baristas = Vec::new();
    for host in ["h1", "h2"] {
        for i in 1..=2 {
            let mut b =
                lan.spawn(host, &format!("barista-{host}-{i}"), Role::Barista.path(), &["--zk", &zk, "--brew-time", "0.05"]);
            let line = b.wait_for_stderr("is on shift", LOG_TIMEOUT);
            let name = line.split("barista ").nth(1).and_then(|r| r.split(' ').next()).expect("a name").to_owned();
            assert_eq!(name, format!("{host}_{}", b.pid()), "the default name is {{hostname}}_{{pid}}: {line}");
            baristas.push((host, name, b));
        }
    }

    // A load of customers on their own host.
    const ORDERS: u64 = 60;
    let mut load = lan.spawn(
        "cust",
        "load",
        Role::Customer.path(),
        &["--zk", &zk, "--orders", "60", "--concurrency", "8", "--patience", "60"],
    );
    let (status, stdout, stderr) = load.wait_exit(Duration::from_secs(120));
    assert!(status.success(), "the load failed ({status}):\n{}\n{}", stdout.join("\n"), stderr.join("\n"));
    let summary = Summary::from_stdout(&stdout);
    assert_eq!((summary.count("visits"), summary.count("served")), (ORDERS, ORDERS), "{}", summary.line);
    assert!(summary.other_outcomes().values().all(|n| *n == 0), "{}", summary.line);
    let per_barista = summary.per_barista();
    assert_eq!(per_barista.values().sum::<u64>(), ORDERS);
    for host in ["h1", "h2"] {
        let on_host: u64 = per_barista.iter().filter(|(b, _)| b.starts_with(&format!("{host}_"))).map(|(_, n)| n).sum();
        assert!(on_host > 0, "nothing was served on {host}: {}", summary.line);
    }

    // shop-status, from the customers' host: four distinct names, each with the facts of the
    // host it runs on; every order sold once; nothing waiting.
    let st = status_from(&lan, "cust", None);
    let mut expected: Vec<String> = baristas.iter().map(|(_, n, _)| n.clone()).collect();
    expected.sort();
    let mut on_shift = st.on_shift();
    on_shift.sort();
    assert_eq!(on_shift, expected);
    for (host, name, b) in &baristas {
        let facts = st.facts(name);
        assert_eq!(facts.host, *host, "{name}'s registration: {facts:?}");
        assert_eq!(facts.pid, b.pid());
    }
    assert_eq!(st.sales_total(), ORDERS);
    assert_eq!((st.orphans(), st.queued()), (vec![], 0));

    // The server saw the baristas come from their hosts' addresses, over the bridge.
    let clients = clients_per_address(&lan.four_letter("cust", "cons"));
    assert_eq!(clients.get(&lan.addr("h1")), Some(&2), "{clients:?}");
    assert_eq!(clients.get(&lan.addr("h2")), Some(&2), "{clients:?}");

    for (_, _, b) in &baristas {
        b.signal("TERM");
    }
    for (_, name, b) in &mut baristas {
        let (status, _, log) = b.wait_exit(EXIT_TIMEOUT);
        assert!(status.success(), "{name} did not leave cleanly: {status}");
        // Its whole log, now that it has exited: one `served` line per order in its ledger.
        assert_eq!(per_barista.get(name.as_str()).copied().unwrap_or(0), served_orders(&log).len() as u64, "{name}");
    }
    let st = status_from(&lan, "cust", None);
    assert!(st.on_shift().is_empty(), "{:?}", st.on_shift());
}

/// A stand-in for ssh that "logs in" to a LAN host: it runs the remote command in that host's
/// namespaces, as `sh -c` with the words ssh would send. The destination's host part (after
/// `user@`) names the host. Options (`-o X`) are accepted and ignored, like a configured ssh.
fn fake_ssh(lan: &Lan) -> PathBuf {
    let path = lan.dir.join("ssh");
    let script = format!(
        r#"#!/bin/sh
while [ $# -gt 0 ]; do
    case "$1" in -o) shift 2 ;; -*) shift ;; *) break ;; esac
done
dest=$1; shift
host=${{dest#*@}}
echo "$dest" >>"{log}"
exec ip netns exec "{prefix}$host" unshare --uts sh -c 'hostname "$0" && exec sh -c "$1"' "$host" "$*"
"#,
        prefix = lan.prefix,
        log = lan.dir.join("ssh.log").display()
    );
    std::fs::write(&path, script).expect("write the fake ssh");
    must(Command::new("chmod").arg("+x").arg(&path));
    path
}

#[test]
fn launch_sh_starts_shows_and_stops_baristas_on_several_hosts_over_ssh() {
    let Some(mut lan) = Lan::create(&["zk", "h1", "h2", "ops"]) else { return };
    let zk = lan.start_zookeeper("zk");
    must(&mut lan.on("ops", Role::ShopInit.path(), &["--zk", &zk, "--shop", "east"]));
    let ssh = fake_ssh(&lan);
    let state = lan.dir.join("launch.state");
    let logs = lan.dir.join("logs");
    let barista = Role::Barista.path();
    let shop_status = shop_status_bin();
    let script = launch_script();
    // The command word first, then the state file (before any `--`); the environment names
    // the state file too, so nothing ever lands in the real default one.
    let launch = |command: &str, args: &[&str]| {
        let mut cmd = lan.on("ops", "bash", &[]);
        cmd.arg(&script).arg(command).arg("--state").arg(&state).args(args).env("ZK_COFFEE_LAUNCH_STATE", &state);
        run(&mut cmd)
    };

    // From the "ops" host: two baristas here and two on each of h1 and h2.
    let out = launch(
        "start",
        &[
            "--hosts",
            "local,root@h1,h2",
            "--per-host",
            "2",
            "--zk",
            &zk,
            "--shop",
            "east",
            "--ssh",
            ssh.to_str().expect("utf-8"),
            "--barista",
            barista.to_str().expect("utf-8"),
            "--shop-status",
            shop_status.to_str().expect("utf-8"),
            "--log-dir",
            logs.to_str().expect("utf-8"),
            "--",
            "--brew-time",
            "0.05",
        ],
    );
    assert!(out.status.success(), "launch.sh start: {}", show(&out));
    let logins = std::fs::read_to_string(lan.dir.join("ssh.log")).unwrap_or_default();
    assert_eq!(logins.lines().collect::<Vec<_>>(), ["root@h1", "h2"], "ssh was used for the remote hosts only");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let started: Vec<(String, String, u32)> = stdout
        .lines()
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            assert_eq!((w.len(), w[0], w[3]), (5, "started", "pid"), "{l:?}");
            (w[1].to_owned(), w[2].to_owned(), w[4].parse().expect("a pid"))
        })
        .collect();
    let names: Vec<&str> = started.iter().map(|(_, n, _)| n.as_str()).collect();
    assert_eq!(names, ["ops_1", "ops_2", "h1_1", "h1_2", "h2_1", "h2_2"], "{stdout}");

    let st = status_from(&lan, "ops", Some("east"));
    let mut on_shift = st.on_shift();
    on_shift.sort();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(on_shift, sorted);
    for (host, name, pid) in &started {
        let facts = st.facts(name);
        let expected_host = if host == "local" { "ops" } else { host.rsplit('@').next().unwrap_or_default() };
        assert_eq!(facts.host, expected_host, "{name} runs on {host}: {facts:?}");
        assert_eq!(facts.pid, *pid, "{name}");
        assert_eq!(facts.brew_ms, 50, "{name} got the extra args");
    }

    // The shop serves from every host.
    let mut load = lan.spawn(
        "ops",
        "load",
        Role::Customer.path(),
        &["--zk", &zk, "--shop", "east", "--orders", "40", "--concurrency", "6", "--patience", "60"],
    );
    let (status, stdout, stderr) = load.wait_exit(Duration::from_secs(120));
    assert!(status.success(), "the load failed ({status}):\n{}\n{}", stdout.join("\n"), stderr.join("\n"));
    let summary = Summary::from_stdout(&stdout);
    assert_eq!(summary.count("served"), 40, "{}", summary.line);
    assert!(summary.per_barista().keys().all(|b| names.contains(&b.as_str())), "{}", summary.line);

    // status, on the ops host: each one running (checked over ssh) and on shift.
    let out = launch("status", &[]);
    assert!(out.status.success(), "launch.sh status: {}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for (host, name, pid) in &started {
        let row: Vec<&str> =
            text.lines().find(|l| l.split_whitespace().nth(1) == Some(name)).unwrap_or_default().split_whitespace().collect();
        let pid = pid.to_string();
        assert_eq!(row.get(..5), Some(&[host.as_str(), name.as_str(), pid.as_str(), "running", "yes"][..]), "{text}");
    }
    assert!(text.contains("on shift: 6"), "{text}");

    // stop: every one leaves gracefully; the state file goes.
    let out = launch("stop", &["--timeout", "30"]);
    assert!(out.status.success(), "launch.sh stop: {}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for (host, name, _) in &started {
        assert!(
            text.lines().any(|l| l.starts_with(host.as_str())
                && l.contains(name.as_str())
                && l.contains("stopped after")
                && l.contains("removed my empty bucket")),
            "{name}:\n{text}"
        );
    }
    assert!(!state.exists(), "state file left after a complete stop");
    let st = status_from(&lan, "ops", Some("east"));
    assert!(st.on_shift().is_empty(), "{:?}", st.on_shift());
    assert_eq!(st.sales_total(), 40);
    for (host, name, pid) in &started {
        assert!(cmdline(*pid).is_empty(), "{name} (pid {pid} on {host}) still runs");
    }
    drop(lan);
}

#[test]
fn an_operator_on_another_host_sends_a_barista_home_and_closes_the_shop() {
    let Some(mut lan) = Lan::create(&["zk", "h1", "h2", "ops"]) else { return };
    let zk = lan.start_zookeeper("zk");
    must(&mut lan.on("ops", Role::ShopInit.path(), &["--zk", &zk]));
    let mut ana = lan.spawn("h1", "ana", Role::Barista.path(), &["--zk", &zk, "--name", "ana", "--brew-time", "0.5"]);
    ana.wait_for_stderr("is on shift", LOG_TIMEOUT);
    let mut ben = lan.spawn("h2", "ben", Role::Barista.path(), &["--zk", &zk, "--name", "ben", "--brew-time", "0.1"]);
    ben.wait_for_stderr("is on shift", LOG_TIMEOUT);
    let mut customers: Vec<HostProc> = (0..3)
        .map(|i| {
            let args = ["--zk", &zk, "--barista", "ana", "--coffee", "jacob", "--patience", "60"];
            let mut c = lan.spawn("h2", &format!("customer-{i}"), Role::Customer.path(), &args);
            c.wait_for_stderr("ordered ", LOG_TIMEOUT);
            c
        })
        .collect();

    // From the operator's host: ana, on h1, goes home; her queue is served.
    let out = must(&mut lan.on("ops", Role::ShopAdmin.path(), &["--zk", &zk, "send-home", "ana"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "sent-home barista=ana");
    let (status, _, log) = ana.wait_exit(EXIT_TIMEOUT);
    assert!(status.success(), "ana did not leave cleanly: {status}");
    assert!(log.iter().any(|l| l.contains("the operator sent me home")), "{}", log.join("\n"));
    for c in &mut customers {
        let (status, stdout, stderr) = c.wait_exit(EXIT_TIMEOUT);
        assert!(status.success(), "a customer of ana's was not served ({status}):\n{}\n{}", stdout.join("\n"), stderr.join("\n"));
    }

    // Closed from the operator's host: a customer on h2 is turned away.
    must(&mut lan.on("ops", Role::ShopAdmin.path(), &["--zk", &zk, "close", "--reason", "inventory"]));
    let out = run(&mut lan.on("h2", Role::Customer.path(), &["--zk", &zk, "--patience", "5"]));
    assert_eq!(out.status.code(), Some(exit::CLOSED), "{}", show(&out));
    must(&mut lan.on("ops", Role::ShopAdmin.path(), &["--zk", &zk, "open"]));
    let out = run(&mut lan.on("h2", Role::Customer.path(), &["--zk", &zk, "--patience", "20"]));
    assert_eq!(out.status.code(), Some(exit::OK), "{}", show(&out));

    ben.signal("TERM");
    let (status, _, _) = ben.wait_exit(EXIT_TIMEOUT);
    assert!(status.success(), "ben did not leave cleanly: {status}");
}

/// `scripts/load.sh` on an "ops" host drives load from two other hosts over (fake) ssh, each
/// in its own network namespace: closed loop, open loop and one customer process per order.
/// Each time the merged `summary` line adds up the hosts' lines, and everything the merges
/// counted as served is in the baristas' sales ledgers, per barista.
#[test]
fn load_sh_runs_load_from_two_hosts_over_ssh_and_the_merge_matches_the_ledgers() {
    let Some(mut lan) = Lan::create(&["zk", "h1", "l1", "l2", "ops"]) else { return };
    let zk = lan.start_zookeeper("zk");
    must(&mut lan.on("ops", Role::ShopInit.path(), &["--zk", &zk]));
    let mut baristas = Vec::new();
    for name in ["b1", "b2"] {
        let mut b = lan.spawn("h1", name, Role::Barista.path(), &["--zk", &zk, "--name", name, "--brew-time", "0"]);
        b.wait_for_stderr("is on shift", LOG_TIMEOUT);
        baristas.push(b);
    }
    let ssh = fake_ssh(&lan);
    let customer = Role::Customer.path();
    let load = |args: &[&str]| {
        let mut cmd = lan.on("ops", "bash", &[]);
        cmd.arg(load_script()).args(["--hosts", "root@l1,l2", "--zk", &zk, "--ssh"]).arg(&ssh);
        cmd.arg("--customer").arg(&customer).args(args).env_remove("RUST_LOG");
        run(&mut cmd)
    };
    let mut sold: BTreeMap<String, u64> = BTreeMap::new();
    for (args, orders) in [
        (vec!["--orders", "60", "--concurrency", "4", "--", "--patience", "60"], Some(60)),
        (vec!["--duration", "2", "--rate", "20"], Some(40)),
        (vec!["--orders", "12", "--process-per-order", "--concurrency", "3"], Some(12)),
    ] {
        let out = load(&args);
        assert!(out.status.success(), "load.sh {args:?}: {}", show(&out));
        let lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
        let merged = Summary::from_stdout(&lines);
        let mut hosts = Vec::new();
        let mut per_hosts: BTreeMap<String, u64> = BTreeMap::new();
        let mut served = 0;
        for line in &lines[..lines.len() - 1] {
            let Some((host, rest)) = line.split_once(" summary ") else { continue };
            let s = Summary::from_stdout(&[format!("summary {rest}")]);
            served += s.count("served");
            for (b, n) in s.per_barista() {
                *per_hosts.entry(b).or_default() += n;
            }
            hosts.push(host.to_owned());
        }
        assert_eq!(hosts, ["root@l1", "l2"], "one line per host: {}", show(&out));
        assert_eq!((merged.count("served"), merged.count("visits")), (served, served), "{}", merged.line);
        assert_eq!(Some(served), orders, "{}", merged.line);
        assert_eq!(merged.per_barista(), per_hosts, "{}", merged.line);
        for (b, n) in per_hosts {
            *sold.entry(b).or_default() += n;
        }
        let st = status_from(&lan, "ops", None);
        assert_eq!(st.sales_per_barista(), sold, "ledgers after {args:?} vs {}", merged.line);
        assert_eq!(st.queued(), 0);
    }
    let logins = std::fs::read_to_string(lan.dir.join("ssh.log")).unwrap_or_default();
    let mut logins: Vec<&str> = logins.lines().collect();
    logins.sort();
    assert_eq!(logins, ["l2", "l2", "l2", "root@l1", "root@l1", "root@l1"], "one ssh login per host and run");
    for b in &baristas {
        b.signal("TERM");
    }
    for b in &mut baristas {
        let (status, _, _) = b.wait_exit(EXIT_TIMEOUT);
        assert!(status.success(), "{status}");
    }
}
