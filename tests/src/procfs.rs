//! What the kernel tells about a process: signals sent and taken, SIGSTOP/SIGCONT
//! ([`Frozen`]), CPU time ([`CpuMeter`]) and TCP connections, read from `/proc`.

use std::collections::BTreeSet;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::*;

// ---------------------------------------------------------------------------------------------
// Signals and /proc

/// Sends `signal` (e.g. `"STOP"`) to `pid` with the `kill` command; panics if it fails.
pub fn signal_pid(pid: u32, signal: &str) {
    let ok =
        Command::new("kill").args(["-s", signal, &pid.to_string()]).status().unwrap_or_else(|e| panic!("cannot run `kill`: {e}"));
    assert!(ok.success(), "`kill -s {signal} {pid}` failed: {ok}");
}

/// The signal number of a name the tests use.
fn signal_number(signal: &str) -> u32 {
    match signal {
        "HUP" => 1,
        "INT" => 2,
        "KILL" => 9,
        "TERM" => 15,
        "CONT" => 18,
        "STOP" => 19,
        other => panic!("unknown signal {other}"),
    }
}

/// Waits until `signal`, sent to `pid`, is no longer pending (a thread of the process has taken
/// it). Two standard signals sent back to back may merge into one while the first is pending;
/// waiting for delivery in between makes "a second signal" a real second signal.
pub fn wait_signal_taken(pid: u32, signal: &str, timeout: Duration) {
    let bit = 1u64 << (signal_number(signal) - 1);
    wait_until(timeout, &format!("SIG{signal} to be taken by pid {pid}"), || {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return true };
        status
            .lines()
            .filter_map(|l| l.strip_prefix("ShdPnd:").or_else(|| l.strip_prefix("SigPnd:")))
            .all(|mask| u64::from_str_radix(mask.trim(), 16).map_or(true, |m| m & bit == 0))
    });
}

/// The PID of the server whose directory is `dir` (its `zk.pid`), checked to be a live java
/// process started with `dir/zoo.cfg` so that a stale pid file never makes us signal a stranger.
pub fn server_pid(dir: &Path) -> u32 {
    let text = std::fs::read_to_string(dir.join("zk.pid")).unwrap_or_else(|e| panic!("{}/zk.pid: {e}", dir.display()));
    let pid: u32 = text.trim().parse().unwrap_or_else(|_| panic!("{}/zk.pid holds {text:?}", dir.display()));
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cfg = dir.join("zoo.cfg");
    let matches = cmdline.split(|b| *b == 0).any(|arg| Path::new(std::str::from_utf8(arg).unwrap_or("")) == cfg);
    assert!(matches, "pid {pid} from {}/zk.pid is not the server of {}", dir.display(), cfg.display());
    pid
}

/// A process stopped with SIGSTOP; continued with SIGCONT on [`thaw`](Frozen::thaw) or drop.
pub struct Frozen {
    pid: u32,
    frozen_at: Instant,
    thawed: bool,
}

impl Frozen {
    /// Stops `pid` (SIGSTOP).
    pub fn freeze(pid: u32) -> Frozen {
        signal_pid(pid, "STOP");
        Frozen { pid, frozen_at: Instant::now(), thawed: false }
    }

    /// How long it has been frozen.
    pub fn elapsed(&self) -> Duration {
        self.frozen_at.elapsed()
    }

    /// Continues the process (SIGCONT); returns how long it was frozen.
    pub fn thaw(mut self) -> Duration {
        signal_pid(self.pid, "CONT");
        self.thawed = true;
        self.frozen_at.elapsed()
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if !self.thawed {
            let _ = Command::new("kill").args(["-s", "CONT", &self.pid.to_string()]).status();
        }
    }
}

/// The CPU time (user + system) `pid` has used so far, from `/proc/PID/stat`.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_else(|e| panic!("/proc/{pid}/stat: {e}"));
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let rest = &stat[stat.rfind(')').expect("a command name in /proc/PID/stat") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second() as f64)
}

fn clock_ticks_per_second() -> u64 {
    extern "C" {
        fn sysconf(name: std::os::raw::c_int) -> std::os::raw::c_long;
    }
    const SC_CLK_TCK: std::os::raw::c_int = 2; // Linux
                                               // SAFETY: sysconf only reads a constant of the C library.
    let ticks = unsafe { sysconf(SC_CLK_TCK) };
    if ticks > 0 {
        ticks as u64
    } else {
        100
    }
}

/// Measures the CPU a process uses over a span of wall time.
pub struct CpuMeter {
    pid: u32,
    started: Instant,
    cpu: Duration,
}

/// What a [`CpuMeter`] measured.
#[derive(Debug, Clone, Copy)]
pub struct CpuUse {
    /// Wall time measured over.
    pub wall: Duration,
    /// CPU time used meanwhile.
    pub cpu: Duration,
}

impl CpuUse {
    /// CPU time per wall time: 1.0 is one core busy all the time.
    pub fn share(&self) -> f64 {
        self.cpu.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }
}

impl CpuMeter {
    /// Starts measuring `pid`.
    pub fn start(pid: u32) -> CpuMeter {
        CpuMeter { pid, started: Instant::now(), cpu: cpu_time(pid) }
    }

    /// What was used since [`start`](CpuMeter::start).
    pub fn read(&self) -> CpuUse {
        CpuUse { wall: self.started.elapsed(), cpu: cpu_time(self.pid).saturating_sub(self.cpu) }
    }
}

/// One TCP connection of a process: its local and remote ports (loopback tests only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpConn {
    pub local: u16,
    pub remote: u16,
}

/// The established TCP connections of `pid` (its socket inodes from `/proc/PID/fd`, looked up
/// in `/proc/PID/net/tcp` and `tcp6`).
pub fn tcp_connections(pid: u32) -> Vec<TcpConn> {
    let mut inodes = BTreeSet::new();
    if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                let t = target.to_string_lossy();
                if let Some(inode) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                    inodes.insert(inode.to_owned());
                }
            }
        }
    }
    let mut conns = Vec::new();
    for table in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else { continue };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            if f.len() < 10 || f[3] != "01" || !inodes.contains(f[9]) {
                continue;
            }
            let port = |addr: &str| addr.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
            if let (Some(local), Some(remote)) = (port(f[1]), port(f[2])) {
                conns.push(TcpConn { local, remote });
            }
        }
    }
    conns
}
