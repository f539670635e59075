//! Whether the process behind a stale registration is certainly gone, so that a barista
//! restarted under its name can take its membership node over at once instead of waiting for
//! ZooKeeper to expire the dead session.
//!
//! A registration records where its process ran ([`Origin`]): host name, boot id, pid
//! namespace, pid and the pid's start time. Its holder is certainly dead only when all of these
//! are known and say so ([`judge`]): the same host name, the same boot and the same pid
//! namespace as ours (so the pid names the same process here), and the pid is gone
//! (`kill(pid, 0)` fails with ESRCH) or now belongs to a process started at another time
//! (its start time in `/proc/PID/stat` differs). Anything else counts as alive: another host
//! (perhaps a partitioned twin, which must be waited out), another boot, a live pid, a pid
//! that exists but is not ours to look at (EPERM), a fact that cannot be read.
//!
//! Under the shipped systemd unit `/proc/sys` is hidden (`ProcSubset=pid`), so the boot id is
//! handed in by the unit (`BARISTA_BOOT_ID=%B`); and other users' processes are hidden in
//! `/proc` (`ProtectProc=invisible`), which is why whether a pid exists is asked of the kernel
//! with `kill(pid, 0)`, never read from `/proc`.

use rustix::io::Errno;
use rustix::process::{test_kill_process, Pid};

/// The kernel's id of the current boot (a UUID, new at every boot).
const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";

/// Where a process runs: the facts a registration records to tell later whether it is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The host name.
    pub host: String,
    /// The process id.
    pub pid: u32,
    /// The boot id, 32 lowercase hex digits; `None` if it could not be read.
    pub boot_id: Option<String>,
    /// The inode of the pid namespace (`/proc/self/ns/pid`); `None` if it could not be read.
    pub pid_ns: Option<u64>,
    /// When the process started, in clock ticks since boot (field 22 of `/proc/PID/stat`);
    /// `None` if it could not be read.
    pub pid_start: Option<u64>,
}

impl Origin {
    /// This process's facts. `boot_id` is used when the kernel's file cannot be read (the
    /// systemd unit hides it and passes the id instead); the kernel's file wins when both are
    /// there.
    pub fn of_this_process(boot_id: Option<&str>) -> Origin {
        let pid = std::process::id();
        Origin {
            host: hostname::get().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default(),
            pid,
            boot_id: std::fs::read_to_string(BOOT_ID_PATH)
                .ok()
                .and_then(|id| normalise_boot_id(&id))
                .or_else(|| boot_id.and_then(normalise_boot_id)),
            pid_ns: std::fs::read_link("/proc/self/ns/pid").ok().and_then(|l| parse_pid_ns(&l.to_string_lossy())),
            pid_start: start_ticks(pid),
        }
    }
}

/// A boot id as 32 lowercase hex digits, from the kernel's UUID form or systemd's `%B`
/// (no dashes); `None` if it is neither.
pub fn normalise_boot_id(text: &str) -> Option<String> {
    let id: String = text.trim().chars().filter(|c| *c != '-').map(|c| c.to_ascii_lowercase()).collect();
    (id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit())).then_some(id)
}

/// The namespace inode in a `/proc/self/ns/pid` link, `pid:[4026531836]`.
fn parse_pid_ns(link: &str) -> Option<u64> {
    link.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

/// Field 22 (`starttime`) of a `/proc/PID/stat` line. The command name (field 2) is in
/// parentheses and may itself hold spaces and parentheses: count from the last `)`.
fn parse_start_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Field 3 is the first after the name, so field 22 is the 20th.
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// When process `pid` started (clock ticks since boot), if `/proc` shows it to us.
fn start_ticks(pid: u32) -> Option<u64> {
    parse_start_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// What the kernel says of a pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidState {
    /// No such process (ESRCH).
    Gone,
    /// A process has this pid, and we may signal it.
    Exists,
    /// A process has this pid, but it is not ours to signal or see (EPERM).
    NotOurs,
    /// Anything else (an invalid pid, another error).
    Unknown,
}

/// How [`judge`] looks at processes: the kernel, or a stand-in in tests.
pub trait Probe {
    /// `kill(pid, 0)`.
    fn pid_state(&self, pid: u32) -> PidState;
    /// When `pid` started, in clock ticks since boot, if it can be read.
    fn start_ticks(&self, pid: u32) -> Option<u64>;
}

/// The running kernel.
pub struct Kernel;

impl Probe for Kernel {
    fn pid_state(&self, pid: u32) -> PidState {
        // 0 and negative numbers name process groups for kill(2): never send them.
        let Some(pid) = i32::try_from(pid).ok().filter(|p| *p > 0).and_then(Pid::from_raw) else {
            return PidState::Unknown;
        };
        match test_kill_process(pid) {
            Ok(()) => PidState::Exists,
            Err(Errno::SRCH) => PidState::Gone,
            Err(Errno::PERM) => PidState::NotOurs,
            Err(_) => PidState::Unknown,
        }
    }

    fn start_ticks(&self, pid: u32) -> Option<u64> {
        start_ticks(pid)
    }
}

/// Whether the holder of a registration is certainly gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Certainly gone: why, for the log.
    Gone(String),
    /// Perhaps alive (or cannot tell): why, for the log.
    MaybeAlive(String),
}

/// Whether the process a registration says ran at `holder` is certainly gone, as seen from
/// `here` (see the module docs). Whatever cannot be told counts as alive.
pub fn judge(holder: &Origin, here: &Origin, probe: &impl Probe) -> Verdict {
    let alive = |why: String| Verdict::MaybeAlive(why);
    if holder.host != here.host {
        return alive(format!("registered on host {}", holder.host));
    }
    match (&holder.boot_id, &here.boot_id) {
        (Some(theirs), Some(ours)) if theirs == ours => {}
        (Some(_), Some(_)) => return alive("registered in another boot of this host".into()),
        _ => return alive("its boot is unknown".into()),
    }
    match (holder.pid_ns, here.pid_ns) {
        (Some(theirs), Some(ours)) if theirs == ours => {}
        (Some(_), Some(_)) => return alive("registered from another pid namespace".into()),
        _ => return alive("its pid namespace is unknown".into()),
    }
    let pid = holder.pid;
    match probe.pid_state(pid) {
        PidState::Gone => Verdict::Gone(format!("pid {pid} is gone")),
        PidState::NotOurs => alive(format!("pid {pid} exists and is not mine to look at")),
        PidState::Unknown => alive(format!("cannot tell whether pid {pid} runs")),
        PidState::Exists => match (holder.pid_start, probe.start_ticks(pid)) {
            (Some(then), Some(now)) if then != now => Verdict::Gone(format!("pid {pid} now belongs to a process started later")),
            (Some(_), Some(_)) => alive(format!("pid {pid} still runs")),
            _ => alive(format!("pid {pid} exists and its start time is unknown")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid table: pid → start time (`None`: exists, start time unreadable), or not ours.
    struct Table {
        pids: Vec<(u32, Option<u64>)>,
        not_ours: Vec<u32>,
    }

    impl Probe for Table {
        fn pid_state(&self, pid: u32) -> PidState {
            if self.not_ours.contains(&pid) {
                PidState::NotOurs
            } else if self.pids.iter().any(|(p, _)| *p == pid) {
                PidState::Exists
            } else {
                PidState::Gone
            }
        }

        fn start_ticks(&self, pid: u32) -> Option<u64> {
            self.pids.iter().find(|(p, _)| *p == pid).and_then(|(_, t)| *t)
        }
    }

    fn here() -> Origin {
        Origin { host: "h1".into(), pid: 200, boot_id: Some("ab".repeat(16)), pid_ns: Some(4026531836), pid_start: Some(9000) }
    }

    fn holder(pid: u32, start: u64) -> Origin {
        Origin { pid, pid_start: Some(start), ..here() }
    }

    fn gone(v: &Verdict) -> bool {
        matches!(v, Verdict::Gone(_))
    }

    #[test]
    fn a_holder_on_this_host_and_boot_whose_pid_is_gone_or_reused_is_gone() {
        let table = Table { pids: vec![(100, Some(500)), (200, Some(9000))], not_ours: vec![] };
        assert_eq!(judge(&holder(77, 400), &here(), &table), Verdict::Gone("pid 77 is gone".into()));
        assert!(gone(&judge(&holder(100, 400), &here(), &table)), "pid 100 started at 500, not 400: reused");
        // A restart that got the same pid again (e.g. pid 1 of a container): ours is younger.
        assert!(gone(&judge(&holder(200, 8000), &here(), &table)));
    }

    #[test]
    fn a_holder_that_still_runs_or_cannot_be_seen_counts_as_alive() {
        let table = Table { pids: vec![(100, Some(400)), (101, None)], not_ours: vec![102] };
        assert!(!gone(&judge(&holder(100, 400), &here(), &table)), "same pid, same start: the same process");
        assert!(!gone(&judge(&holder(101, 400), &here(), &table)), "start time unreadable");
        assert!(!gone(&judge(&holder(102, 400), &here(), &table)), "EPERM: exists, not ours");
    }

    #[test]
    fn a_holder_elsewhere_or_of_unknown_origin_counts_as_alive_whatever_its_pid() {
        let table = Table { pids: vec![], not_ours: vec![] };
        let mut other_host = holder(77, 400);
        other_host.host = "h2".into();
        let mut other_boot = holder(77, 400);
        other_boot.boot_id = Some("cd".repeat(16));
        let mut other_ns = holder(77, 400);
        other_ns.pid_ns = Some(1);
        let mut old = holder(77, 400);
        (old.boot_id, old.pid_ns, old.pid_start) = (None, None, None);
        for r in [&other_host, &other_boot, &other_ns, &old] {
            assert!(!gone(&judge(r, &here(), &table)), "{r:?}");
        }
        // Our own facts unknown: nothing can be told either.
        let blind = Origin { boot_id: None, ..here() };
        assert!(!gone(&judge(&holder(77, 400), &blind, &table)));
        let mut no_start = holder(77, 400);
        no_start.pid_start = None;
        let table = Table { pids: vec![(77, Some(1))], not_ours: vec![] };
        assert!(!gone(&judge(&no_start, &here(), &table)), "an old registration without a start time");
    }

    #[test]
    fn boot_ids_are_read_in_both_forms() {
        let id = "f8fa09c1c4e5421497f46b7ac67b769f";
        assert_eq!(normalise_boot_id("f8fa09c1-c4e5-4214-97f4-6b7ac67b769f\n").as_deref(), Some(id));
        assert_eq!(normalise_boot_id("F8FA09C1C4E5421497F46B7AC67B769F").as_deref(), Some(id));
        for bad in ["", "xyz", "f8fa09c1-c4e5-4214-97f4", "%B"] {
            assert_eq!(normalise_boot_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn stat_lines_give_the_start_time_whatever_the_command_name() {
        let tail = "S 1 2 3 0 -1 4194560 100 0 0 0 5 6 0 0 20 0 4 0 123456 1000 200";
        assert_eq!(parse_start_ticks(&format!("42 (barista) {tail}")), Some(123456));
        assert_eq!(parse_start_ticks(&format!("42 (a) b (c) {tail}")), Some(123456));
        assert_eq!(parse_start_ticks("42 (barista) S 1 2"), None);
        assert_eq!(parse_pid_ns("pid:[4026531836]"), Some(4026531836));
        assert_eq!(parse_pid_ns("net:[1]"), None);
    }

    #[test]
    fn this_process_is_alive_to_the_kernel_probe() {
        let me = Origin::of_this_process(None);
        assert_eq!(Kernel.pid_state(me.pid), PidState::Exists);
        assert_eq!(Kernel.start_ticks(me.pid), me.pid_start);
        assert!(me.pid_start.is_some() && me.pid_ns.is_some(), "{me:?}");
        assert_eq!(Kernel.pid_state(0), PidState::Unknown, "pid 0 is a process group: never probed");
        assert_eq!(Kernel.pid_state(u32::MAX), PidState::Unknown);
        assert!(!gone(&judge(&me, &me, &Kernel)), "I am alive");
    }
}
