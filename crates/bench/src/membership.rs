//! `membership` (issue 15): N real barista processes coming on shift at once, what that costs
//! the server per arriving barista (packets received and sent, from `mntr`, until the fleet is
//! quiet), how long until all are on shift, and the time from a `kill -9` of one of them, with
//! orders queued, to its first order served by an adopter. With `--baseline-bin DIR` the same
//! run with the binaries in DIR (an older build), one after the other, in one line.
//!
//! The step is bounded: every wait has a deadline, and every barista it started is killed on
//! every way out (a [`Proc`] is killed when dropped; the children also die with the bench).

use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use zk_coffee::layout;
use zk_coffee::BaristaName;
use zookeeper::{WatchedEvent, ZooKeeper};

use crate::common::{connect, mntr, ms, remove_chroot, Env, Proc, Result, ServerCpu};
use crate::raw::place_raw_orders;

/// How a `membership` run is set up.
#[derive(Debug, Clone)]
pub struct MembershipRun {
    pub baristas: usize,
    pub session_timeout: Duration,
    /// Orders queued at the victim before it is killed.
    pub orders: usize,
    /// The whole run (of one build) must end by then.
    pub deadline: Duration,
    /// Also run with the binaries of this directory (the older build).
    pub baseline: Option<PathBuf>,
}

/// How often the step looks whether every barista is on shift (each look is one request: it
/// is counted and taken off the packets).
const POLL: Duration = Duration::from_millis(50);
/// How often an idle session pings, as a share of its timeout: the client crate
/// (`zookeeper-client` 0.11) pings after 3 of its ticks (a twentieth of the session timeout)
/// without a request, checked on its ticks: about every 2 s for a 10 s session (measured with
/// 100 idle baristas: 100 pings every 2 s).
const PING_SHARE: f64 = 0.2;
/// How often the server's counters are read while the step waits for the fleet to be quiet.
const SAMPLE: Duration = Duration::from_millis(100);

/// What one build's run measured.
struct Measured {
    spawn_s: f64,
    on_shift_s: f64,
    quiet_s: f64,
    received_per_barista: f64,
    sent_per_barista: f64,
    pings_per_barista: f64,
    server_cpu_ms_per_barista: f64,
    kill9_to_adopted_ms: f64,
    kill9_to_all_served_ms: f64,
    /// From the victim's membership node going (its session expired) to its first order
    /// served: the protocol's share, without the session timeout and the ping phase.
    expired_to_adopted_ms: f64,
}

/// The `membership` step.
pub fn membership(env: &Env, run: &MembershipRun) -> Result<String> {
    raise_open_files(run.baristas)?;
    let new = run_once(env, run, "new")?;
    let mut line = format!(
        "membership baristas={} session_timeout_s={:.0} orders={} {}",
        run.baristas,
        run.session_timeout.as_secs_f64(),
        run.orders,
        fields(&new, "")
    );
    if let Some(dir) = &run.baseline {
        let old_env = Env { bin_dir: dir.clone(), ..env.clone() };
        let old = run_once(&old_env, run, "old")?;
        line.push(' ');
        line.push_str(&fields(&old, "old_"));
    }
    Ok(line)
}

fn fields(m: &Measured, prefix: &str) -> String {
    format!(
        "{prefix}spawn_s={:.2} {prefix}on_shift_s={:.2} {prefix}quiet_s={:.2} {prefix}received_per_barista={:.1} \
         {prefix}sent_per_barista={:.1} {prefix}pings_per_barista={:.1} {prefix}server_cpu_ms_per_barista={:.2} \
         {prefix}kill9_to_adopted_ms={:.0} {prefix}kill9_to_all_served_ms={:.0} {prefix}expired_to_adopted_ms={:.1}",
        m.spawn_s,
        m.on_shift_s,
        m.quiet_s,
        m.received_per_barista,
        m.sent_per_barista,
        m.pings_per_barista,
        m.server_cpu_ms_per_barista,
        m.kill9_to_adopted_ms,
        m.kill9_to_all_served_ms,
        m.expired_to_adopted_ms,
    )
}

/// Raises this process's open-file limit (its children inherit it) to what `baristas`
/// processes' logs and connections need, within the hard limit.
fn raise_open_files(baristas: usize) -> Result<()> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let want = (baristas as u64) * 4 + 1024;
    let current = limit.current.unwrap_or(u64::MAX);
    if current >= want {
        return Ok(());
    }
    let max = limit.maximum.unwrap_or(u64::MAX);
    if max < want {
        return Err(format!(
            "the open-file limit is {current} (hard {max}); {baristas} baristas need {want}: raise it (ulimit -n)"
        ));
    }
    setrlimit(Resource::Nofile, Rlimit { current: Some(want), maximum: limit.maximum })
        .map_err(|e| format!("cannot raise the open-file limit to {want}: {e}"))
}

/// The server's packets received and sent so far.
fn packets(env: &Env) -> Result<(u64, u64)> {
    let m = mntr(&env.servers)?;
    let get = |key: &str| m.get(key).and_then(|v| v.parse().ok()).ok_or_else(|| format!("mntr has no {key}"));
    Ok((get("zk_packets_received")?, get("zk_packets_sent")?))
}

/// One build's run: N baristas at once, quiet, a kill, then everything killed and the chroot
/// removed once the sessions are gone.
fn run_once(env: &Env, run: &MembershipRun, build: &str) -> Result<Measured> {
    let deadline = Instant::now() + run.deadline;
    let left = || deadline.saturating_duration_since(Instant::now());
    let n = run.baristas;
    let chroot = env.chroot(&format!("membership-{n}-{build}"));
    env.shop_init(&chroot)?;
    let zk = Arc::new(connect(&env.connect_string(&chroot), Duration::from_secs(10))?);
    let timeout_arg = format!("{}ms", run.session_timeout.as_millis());
    let extra = ["--session-timeout", timeout_arg.as_str()];
    let mut procs: Vec<Proc> = Vec::with_capacity(n);
    let result = (|| -> Result<Measured> {
        let (received0, sent0) = packets(env)?;
        let server = ServerCpu::start(env.server_pid);
        let started = Instant::now();
        for i in 0..n {
            let name = format!("m{:04}", i + 1);
            procs.push(env.barista_logged(&chroot, &name, &format!("membership-{build}-{name}"), Duration::ZERO, &extra)?);
        }
        let spawned = started.elapsed();
        // Every barista on shift: polled, each look counted (one request, one reply).
        let mut looks = 0u64;
        loop {
            looks += 1;
            let have = zk.get_children("/barista_group", false).map(|c| c.len()).unwrap_or(0);
            if have >= n {
                break;
            }
            if left().is_zero() {
                return Err(format!("{build}: only {have} of {n} baristas came on shift in time"));
            }
            std::thread::sleep(POLL);
        }
        let on_shift = started.elapsed();
        // Quiet: two windows in a row in which the server received little more than the
        // sessions' pings. A window is two ping intervals long, so each session pings about
        // twice in it whatever its phase (the fleet came together: its pings come in bursts).
        // The server's counters are read every 100 ms meanwhile; the fleet went quiet at the
        // first reading from which on it never received more than the pings (and one burst of
        // them) until the end.
        let ping_every = run.session_timeout.mul_f64(PING_SHARE);
        let window = ping_every * 2;
        let pings_per_s = n as f64 / ping_every.as_secs_f64();
        // The pings, and our own readings of the counters (a `mntr` each: counted or not, they
        // must not keep a small fleet from ever looking quiet).
        let pings_within =
            |d: Duration| pings_per_s * d.as_secs_f64() * 1.25 + 20.0 + 2.0 * d.as_secs_f64() / SAMPLE.as_secs_f64();
        let mut samples: Vec<(Instant, (u64, u64))> = vec![(Instant::now(), packets(env)?)];
        loop {
            if left().is_zero() {
                return Err(format!("{build}: the fleet of {n} never went quiet"));
            }
            std::thread::sleep(SAMPLE);
            samples.push((Instant::now(), packets(env)?));
            let (end, (end_received, _)) = samples[samples.len() - 1];
            let at = |back: Duration| samples.iter().rev().find(|(t, _)| end.saturating_duration_since(*t) >= back);
            if let (Some((_, (mid, _))), Some((_, (first, _)))) = (at(window), at(window * 2)) {
                let calm = |from: u64, to: u64| ((to - from) as f64) < pings_within(window);
                if calm(*mid, end_received) && calm(*first, *mid) {
                    break;
                }
            }
        }
        let quiet = (0..samples.len())
            .find(|&i| {
                let (from, (received, _)) = samples[i];
                samples[i..]
                    .iter()
                    .all(|(t, (r, _))| ((r - received) as f64) <= pings_within(t.saturating_duration_since(from)) + n as f64)
            })
            .unwrap_or(samples.len() - 1);
        let (quiet_at, (received, sent)) = samples[quiet];
        let server_cpu = server.used();
        let arrival = quiet_at.saturating_duration_since(started);
        let (received, sent) = ((received - received0).saturating_sub(looks), (sent - sent0).saturating_sub(looks));
        let measured_pings = pings_per_s * arrival.as_secs_f64() / n as f64;

        // kill -9 of one of them (they came together: anywhere on the rota), frozen while its
        // orders were placed.
        let victim_at = n / 2;
        let victim_name = procs[victim_at].name().to_owned();
        let bucket = layout::bucket(&BaristaName::new(&victim_name).map_err(|e| e.to_string())?);
        procs[victim_at].signal(libc::SIGSTOP);
        place_raw_orders(&zk, &bucket, run.orders, 1)?;
        let rx = watch_orders(&zk, &bucket)?;
        let (gone_tx, gone) = mpsc::channel();
        let member = layout::member(&BaristaName::new(&victim_name).map_err(|e| e.to_string())?);
        zk.exists_w(&member, move |_: WatchedEvent| {
            let _ = gone_tx.send(Instant::now());
        })
        .map_err(|e| format!("exists_w {member}: {e:?}"))?;
        let killed = Instant::now();
        procs[victim_at].signal(libc::SIGKILL);
        let _ = procs[victim_at].wait_exit(Duration::from_secs(5));
        let wait = (run.session_timeout * 3 + Duration::from_secs(30)).min(left());
        let first = rx.recv_timeout(wait).map_err(|_| format!("{build}: the victim's orders were never adopted"))?;
        let expired =
            gone.recv_timeout(Duration::from_secs(1)).map_err(|_| format!("{build}: the victim's member node stayed"))?;
        let mut last = first;
        for _ in 1..run.orders {
            last = rx.recv_timeout(wait).map_err(|_| format!("{build}: not every order of the victim was served"))?;
        }
        Ok(Measured {
            spawn_s: spawned.as_secs_f64(),
            on_shift_s: on_shift.as_secs_f64(),
            quiet_s: arrival.as_secs_f64(),
            received_per_barista: received as f64 / n as f64,
            sent_per_barista: sent as f64 / n as f64,
            pings_per_barista: measured_pings,
            server_cpu_ms_per_barista: server_cpu.map_or(f64::NAN, |c| ms(c) / n as f64),
            kill9_to_adopted_ms: ms(first.saturating_duration_since(killed)),
            kill9_to_all_served_ms: ms(last.saturating_duration_since(killed)),
            expired_to_adopted_ms: ms(first.saturating_duration_since(expired)),
        })
    })();
    // Every way out: kill them all (a fleet leaving on SIGTERM at once is not what is
    // measured), then let their sessions expire before the chroot is removed.
    for p in &procs {
        p.signal(libc::SIGKILL);
    }
    drop(procs);
    let _ = zk_close_after(&zk, run.session_timeout + Duration::from_secs(2));
    remove_chroot(env, &chroot);
    result
}

/// Waits for the killed fleet's sessions to expire (its ephemeral nodes go with them), then
/// closes the step's client.
fn zk_close_after(zk: &ZooKeeper, wait: Duration) -> Result<()> {
    let until = Instant::now() + wait * 2;
    std::thread::sleep(wait);
    while Instant::now() < until {
        match zk.get_children("/barista_group", false) {
            Ok(c) if c.is_empty() => break,
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
    zk.close().map_err(|e| format!("close: {e:?}"))
}

/// An exists watch on every order queued in `bucket`; each sends when it fires.
fn watch_orders(zk: &ZooKeeper, bucket: &str) -> Result<mpsc::Receiver<Instant>> {
    let children = zk.get_children(bucket, false).map_err(|e| format!("list {bucket}: {e:?}"))?;
    let (orders, _) = layout::orders_in_placement_order(&children);
    let (tx, rx) = mpsc::channel();
    for order in orders {
        let path = format!("{bucket}/{order}");
        let tx = tx.clone();
        zk.exists_w(&path, move |_: WatchedEvent| {
            let _ = tx.send(Instant::now());
        })
        .map_err(|e| format!("exists_w {path}: {e:?}"))?;
    }
    Ok(rx)
}
