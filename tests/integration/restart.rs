//! A barista restarted under its name while its previous membership node is still there: a
//! stop while it waits is a clean stop; a holder that is certainly dead (same host, same boot,
//! its pid gone) is replaced at once; any other holder is waited out.

use std::time::{Duration, Instant, SystemTime};

use zk_coffee::liveness::Origin;
use zk_coffee::registration::Registration;
use zk_coffee_tests::fault::*;
use zk_coffee_tests::*;
use zookeeper::{Acl, CreateMode, ZooKeeper};

/// Creates the ephemeral `/barista_group/{name}` on the raw client's session with `data`.
fn hold_name(zk: &ZooKeeper, name: &str, data: &[u8]) {
    let path = format!("/barista_group/{name}");
    zk.create(&path, data.to_vec(), Acl::open_unsafe().clone(), CreateMode::Ephemeral)
        .unwrap_or_else(|e| panic!("create {path}: {e:?}"));
}

/// Defect of issue 11: a barista waiting for its name to be free exited 8 ("held by another
/// live barista") when asked to stop. A stop is a stop: exit 0.
#[test]
fn a_barista_waiting_for_its_name_stops_cleanly_on_sigterm() {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let raw = server.raw();
    // Another session holds the name, with data that is no registration of ours.
    hold_name(&raw, "b", b"someone else");
    let waiting = barista(server.connect_string(), "b", "0.1").spawn();
    waiting.wait_for_stderr("held by another session; waiting", LOG_TIMEOUT);
    let asked = Instant::now();
    let out = waiting.stop(EXIT_TIMEOUT);
    let took = asked.elapsed();
    out.assert_code(exit::OK);
    assert!(took < Duration::from_secs(2), "took {took:?} to stop\n{out}");
    assert!(out.stderr.iter().any(|l| l.contains("stopped while waiting")), "{out}");
    // The other session's node is untouched.
    assert_eq!(server.node("/barista_group/b").expect("still held").data, b"someone else");
}

/// A registration as a barista on this host would write it, with the pid of a process that has
/// exited: its holder is certainly gone unless something else in it says otherwise.
fn registration_of_a_dead_process() -> Registration {
    let mut exited = std::process::Command::new("true").spawn().expect("run true");
    let pid = exited.id();
    exited.wait().expect("wait for true");
    let origin = Origin { pid, ..Origin::of_this_process(None) };
    assert!(origin.boot_id.is_some() && origin.pid_ns.is_some(), "this test needs /proc: {origin:?}");
    Registration::for_this_process(&origin, "0123456789abcdef".into(), 1, 100, SystemTime::now())
}

/// A barista named `name` that waits at most 3 s for its name (twice its 1 s session timeout,
/// plus a second).
fn newcomer(zk: &str, name: &str) -> TestCommand {
    TestCommand::new(Role::Barista).zk(zk).args(["--session-timeout", "1", "--name", name])
}

/// The safe case of issue 11: a barista killed with `kill -9` and started again at once under
/// its name replaces its dead predecessor's membership node (same host, same boot, pid gone)
/// in one transaction and serves its own queue, long before ZooKeeper would have expired the
/// dead session; the colleague on shift never sees it leave and adopts nothing.
#[test]
fn a_barista_killed_and_restarted_at_once_serves_its_queue_before_its_old_session_expires() {
    let server = ZkServer::start();
    server.init_shop();
    let zk = server.connect_string();
    let timeout = ["--session-timeout", "10"];
    let colleague = TestCommand::new(Role::Barista).zk(zk).args(timeout).args(["--name", "colleague", "--brew-time", "0.1"]);
    let colleague = colleague.spawn_on_shift();
    let b = |brew: &str| TestCommand::new(Role::Barista).zk(zk).args(timeout).args(["--name", "b", "--brew-time", brew]);
    let mut victim = b("2").spawn_on_shift();

    // Four orders queued at the victim (frozen meanwhile, so all are in before it takes one).
    let frozen = Frozen::freeze(victim.pid());
    let customers: Vec<Proc> = MENU.iter().map(|coffee| place(customer(zk, Some("b"), coffee, "40"))).collect();
    frozen.thaw();
    victim.wait_for_stderr("making ", LOG_TIMEOUT);
    victim.signal("KILL");
    let killed = victim.wait_exit(EXIT_TIMEOUT);
    assert_eq!(killed.code(), None, "killed by SIGKILL\n{killed}");
    assert!(served_orders(&killed.stderr).is_empty(), "killed mid-brew of its first order\n{killed}");

    let restarted = Instant::now();
    let again = b("0.2").spawn();
    let took_over = again.wait_for_stderr("took over /barista_group/b from a dead holder", LOG_TIMEOUT);
    assert!(took_over.contains(&format!("pid {} is gone", killed_pid(&killed))), "{took_over}");
    again.wait_for_stderr("is on shift", LOG_TIMEOUT);
    let on_shift = restarted.elapsed();
    let first_served = again.wait_served(1, LOG_TIMEOUT);
    let first_served_after = restarted.elapsed();
    // Well before the dead session's 10 s timeout (measured ~0.1 s on shift, first order one
    // brew later); the bound leaves room for a loaded machine.
    assert!(on_shift < Duration::from_secs(3), "back on shift only after {on_shift:?}");
    assert!(first_served_after < Duration::from_secs(4), "first order ({first_served:?}) served after {first_served_after:?}");

    let raw = server.raw();
    let settled = settle_customers(customers, Duration::from_secs(25), &raw);
    assert!(settled.iter().all(Settled::served), "{settled:#?}");
    let mine: Vec<String> = settled.iter().map(|s| s.receipt.order_name().to_owned()).collect();
    let log = again.wait_log("all four orders served from its own bucket", LOG_TIMEOUT, |log| {
        let events = barista_events(log);
        let served: Vec<&BaristaEvent> = events.iter().filter(|e| e.kind == Brew::Served).collect();
        (served.len() >= mine.len()).then(|| served.into_iter().cloned().collect::<Vec<_>>())
    });
    assert!(log.iter().all(|e| e.adopted_from.is_none() && mine.contains(&e.order)), "{log:?} vs {mine:?}");
    // Its registration carries what the next restart will need.
    let member = String::from_utf8(server.node("/barista_group/b").expect("on shift").data).expect("text");
    for fact in [format!("pid={}", again.pid()), "boot_id=".into(), "pid_ns=".into(), "pid_start=".into()] {
        assert!(member.contains(&fact), "{fact} missing from {member:?}");
    }

    // The colleague never saw b leave: it adopted nothing.
    let out = colleague.stop(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    assert!(!out.stderr.iter().any(|l| l.contains("adopting")), "the colleague adopted b's queue\n{out}");
    // b may claim the leaving colleague's bucket for a moment (it looks when the group
    // changes), then lets it go: nothing is held for long.
    wait_until(LOG_TIMEOUT, "no claim to be held", || server.tree("/zk-coffee/claims").is_empty());
    eprintln!("kill -9 and restart: on shift {on_shift:?}, first order served {first_served_after:?} after the restart");
}

/// The pid a killed process had, from its output's label (`... (pid N)`).
fn killed_pid(out: &Output) -> u32 {
    let tail = out.label.rsplit_once("(pid ").map(|(_, t)| t).unwrap_or_default();
    tail.trim_end_matches(')').parse().unwrap_or_else(|_| panic!("no pid in {:?}", out.label))
}

/// A live barista holding the name (another process on this host, same boot, its pid running
/// since it registered) is waited out, and the newcomer exits 8 as before.
#[test]
fn a_live_holder_of_the_name_is_waited_out_and_the_newcomer_exits_8() {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let zk = server.connect_string();
    let first = barista(zk, "b", "0.1").spawn_on_shift();
    let out = newcomer(zk, "b").run(EXIT_TIMEOUT);
    out.assert_code(exit::NAME_IN_USE);
    out.error_line(&["\"b\"", "already taken"]);
    let why = format!("waiting for it to expire (pid {} still runs)", first.pid());
    assert!(out.stderr.iter().any(|l| l.contains(&why)), "no {why:?}\n{out}");
    assert!(!out.stderr.iter().any(|l| l.contains("took over")), "{out}");
    // The first is untouched and still serves.
    let member = String::from_utf8(server.node("/barista_group/b").expect("member").data).expect("text");
    assert!(member.contains(&format!("pid={}", first.pid())), "{member}");
    customer(zk, Some("b"), "jacob", "10").run(EXIT_TIMEOUT).assert_code(exit::OK);
}

/// A frozen barista (SIGSTOP) is alive: a newcomer under its name does not take its node over
/// but waits until ZooKeeper expires the frozen session.
#[test]
fn a_frozen_holder_is_waited_out_until_its_session_expires() {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let zk = server.connect_string();
    let first = barista(zk, "b", "0.1").spawn_on_shift();
    let raw = server.raw();
    let frozen = Frozen::freeze(first.pid());
    let newcomer = barista(zk, "b", "0.1").spawn();
    newcomer.wait_for_stderr(&format!("waiting for it to expire (pid {} still runs)", first.pid()), LOG_TIMEOUT);
    // On shift once ZooKeeper has expired the frozen session (2 s timeout), not before.
    newcomer.wait_for_stderr("is on shift", LOG_TIMEOUT);
    let waited = frozen.elapsed();
    let member = String::from_utf8(raw.get_data("/barista_group/b", false).expect("member").0).expect("text");
    assert!(member.contains(&format!("pid={}", newcomer.pid())), "{member}");
    let out = newcomer.stop(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    assert!(!out.stderr.iter().any(|l| l.contains("took over")), "{out}");
    drop(frozen);
    eprintln!("frozen holder: the newcomer came on shift {waited:?} after the freeze");
}

/// A holder whose pid is gone but that registered on another host, in another boot, or
/// without saying which boot (an older barista) may still be alive elsewhere (a partitioned
/// twin): it is waited out. The same registration from this host and boot is taken over.
#[test]
fn a_holder_registered_elsewhere_is_waited_out_whatever_its_pid() {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let zk = server.connect_string();
    let raw = server.raw();
    let dead = registration_of_a_dead_process();
    let other_host = Registration { host: "otherhost".into(), ..dead.clone() };
    let other_boot = Registration { boot_id: Some("0".repeat(32)), ..dead.clone() };
    let older = Registration { boot_id: None, pid_ns: None, pid_start: None, ..dead.clone() };
    let cases = [
        ("b_other_host", other_host, "(registered on host otherhost)"),
        ("b_other_boot", other_boot, "(registered in another boot of this host)"),
        ("b_older", older, "(its boot is unknown)"),
    ];
    let mut waiting = Vec::new();
    for (name, registration, why) in cases {
        hold_name(&raw, name, &registration.encode());
        let newcomer = newcomer(zk, name).spawn();
        waiting.push((newcomer, name, registration, why));
    }
    hold_name(&raw, "here", &dead.encode());
    let here = barista(zk, "here", "0.1").spawn();
    here.wait_for_stderr(
        &format!("took over /barista_group/here from a dead holder on this host (pid {} is gone)", dead.pid),
        LOG_TIMEOUT,
    );
    here.wait_for_stderr("is on shift", LOG_TIMEOUT);
    for (newcomer, name, registration, why) in waiting {
        let out = newcomer.wait_exit(EXIT_TIMEOUT);
        out.assert_code(exit::NAME_IN_USE);
        assert!(out.stderr.iter().any(|l| l.contains("waiting for it to expire") && l.contains(why)), "{name}: no {why}\n{out}");
        let held = server.node(&format!("/barista_group/{name}")).expect("still held");
        assert_eq!(held.data, registration.encode(), "{name}'s holder was touched");
    }
    let member = String::from_utf8(server.node("/barista_group/here").expect("member").data).expect("text");
    assert!(member.contains(&format!("pid={}", here.pid())), "{member}");
    here.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}

/// What the shipped unit does to `/proc`, as a command line to wrap a role in: a private mount
/// namespace with procfs mounted `subset=pid` (`ProcSubset=pid`: no `/proc/sys`, so no boot id
/// file) and `hidepid=invisible` (`ProtectProc=invisible`: other users' processes are not
/// there), then the unprivileged `uid` (each instance is a `DynamicUser` of its own). This
/// stands in for running the unit: the test machine need not run systemd as PID 1. Needs root;
/// `None` (after saying so) where mount namespaces are not permitted and
/// `ZK_COFFEE_SKIP_NETNS=1` is set, as for the other namespace tests.
fn unit_sandbox(uid: u32) -> Option<Vec<String>> {
    const MOUNT_PROC: &str = "mount -t proc -o subset=pid,hidepid=invisible proc /proc";
    let unshare = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c"];
    let probe = format!("{MOUNT_PROC} && ! cat /proc/sys/kernel/random/boot_id 2>/dev/null && test -r /proc/self/stat");
    let out = std::process::Command::new(unshare[0]).args(&unshare[1..]).arg(&probe).output().expect("run unshare");
    if !out.status.success() {
        let why = format!("cannot emulate the unit's /proc ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
        assert!(std::env::var_os("ZK_COFFEE_SKIP_NETNS").is_some_and(|v| v == "1"), "{why} (needs root)");
        eprintln!("skipped: {why}");
        return None;
    }
    let run_as = format!("{MOUNT_PROC} && exec setpriv --reuid={uid} --regid={uid} --clear-groups --pdeathsig=KILL -- \"$@\"");
    Some(unshare.iter().map(|s| s.to_string()).chain([run_as, "unit-sandbox".into()]).collect())
}

/// This boot's id as the unit's `%B` gives it: 32 hex digits, no dashes.
fn percent_b() -> String {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").expect("read the boot id");
    id.trim().replace('-', "")
}

/// Under the unit's `/proc` restrictions (see [`unit_sandbox`]), with the boot id handed in as
/// the unit does (`BARISTA_BOOT_ID=%B`): a barista killed and restarted in the same unit takes
/// its node over at once; a live twin in another unit (another user: invisible in `/proc`,
/// EPERM to `kill(pid, 0)`) is waited out; and without the boot id a restart cannot tell and
/// waits for the expiry, which is why the unit passes it.
#[test]
fn under_the_units_proc_restrictions_a_restart_takes_over_and_a_hidden_twin_is_waited_out() {
    let Some(unit_1) = unit_sandbox(61001) else { return };
    let unit_2 = unit_sandbox(61002).expect("a second sandbox");
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let zk = server.connect_string();
    let boot_id = percent_b();
    let in_unit = |unit: &[String], name: &str, session_timeout: &str| {
        TestCommand::new(Role::Barista)
            .wrapped_in(unit)
            .zk(zk)
            .args(["--session-timeout", session_timeout, "--name", name, "--brew-time", "0.1"])
            .env("BARISTA_BOOT_ID", &boot_id)
    };

    // Killed and restarted in the same unit: taken over at once.
    let mut victim = in_unit(&unit_1, "b", "4").spawn_on_shift();
    let member = String::from_utf8(server.node("/barista_group/b").expect("on shift").data).expect("text");
    for fact in [format!("boot_id={boot_id}"), "pid_ns=".into(), "pid_start=".into()] {
        assert!(member.contains(&fact), "{fact} missing from {member:?}");
    }
    let victim_pid = victim.pid();
    victim.signal("KILL");
    victim.wait_exit(EXIT_TIMEOUT);
    let restarted = Instant::now();
    let again = in_unit(&unit_1, "b", "4").spawn();
    again.wait_for_stderr(
        &format!("took over /barista_group/b from a dead holder on this host (pid {victim_pid} is gone)"),
        LOG_TIMEOUT,
    );
    again.wait_for_stderr("is on shift", LOG_TIMEOUT);
    let on_shift = restarted.elapsed();
    assert!(on_shift < Duration::from_secs(3), "on shift {on_shift:?} after the restart (session timeout 4 s)");

    // A live twin in another unit: not ours to see, so alive.
    let twin = in_unit(&unit_2, "t", "2").spawn_on_shift();
    let out = in_unit(&unit_1, "t", "1").run(EXIT_TIMEOUT);
    out.assert_code(exit::NAME_IN_USE);
    let why = format!("waiting for it to expire (pid {} exists and is not mine to look at)", twin.pid());
    assert!(out.stderr.iter().any(|l| l.contains(&why)), "no {why:?}\n{out}");

    // Without the boot id (/proc/sys is hidden) nothing can be told: it waits for the expiry.
    let mut victim = in_unit(&unit_1, "c", "2").spawn_on_shift();
    victim.signal("KILL");
    victim.wait_exit(EXIT_TIMEOUT);
    let blind = in_unit(&unit_1, "c", "2").env_remove("BARISTA_BOOT_ID").spawn();
    blind.wait_for_stderr("waiting for it to expire (its boot is unknown)", LOG_TIMEOUT);
    blind.wait_for_stderr("is on shift", LOG_TIMEOUT);
    for p in [again, twin, blind] {
        p.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    }
    eprintln!("under the unit's /proc: on shift {on_shift:?} after kill -9 and a restart");
}
