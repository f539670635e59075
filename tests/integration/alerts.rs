//! The manager's alerts (`zk_coffee::manager::Alerts`) driven directly against a real server:
//! what a hook is given, its timeout, the cap on hooks at once, a failing hook in the log, the
//! records written after a hook ends, and a takeover that runs what no record covers.

use std::collections::BTreeMap;
use std::path::Path;

use std::time::{Duration, Instant};

use zk_coffee::layout;
use zk_coffee::manager::{Alerts, Event, HookConfig, Kind};
use zk_coffee::security::Credentials;
use zk_coffee::{Session, SessionConfig};

use zk_coffee_tests::logcapture;
use zk_coffee_tests::*;

/// A session to the shop at `connect`, as a manager has one.
fn connect(connect: &str) -> Session {
    connect_session(connect, Duration::from_secs(4))
}

/// Alerts running `command`, with a short timeout.
fn config(command: String) -> HookConfig {
    HookConfig { command: Some(command), timeout: Duration::from_secs(20), ..HookConfig::default() }
}

/// A barista-lost event of `barista` in `shop`.
fn lost(shop: &str, barista: &str) -> Event {
    Event::new(Kind::BaristaLost, shop, Some(barista), format!("barista-lost:{barista}:0x1")).with("stranded", 2)
}

/// The path of `event`'s record.
fn record(event: &Event) -> String {
    layout::alert(&layout::alert_name(event.event.name(), &event.key))
}

/// A shell test that waits (at most the hook's timeout) for `file` to exist.
fn wait_for_file(file: &Path) -> String {
    format!("while [ ! -e '{}' ]; do sleep 0.05; done", file.display())
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The first line the library logged that contains all of `words`.
fn logged(words: &[&str]) -> Option<String> {
    logcapture::library_log(|l| words.iter().all(|w| l.contains(w))).into_iter().next()
}

/// Whether process `pid` has ended (gone, or a zombie nobody reaped yet).
fn ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

#[test]
fn a_hook_gets_the_event_in_its_environment_and_on_stdin_and_is_recorded_once_it_ends() {
    let server = ZkServer::start();
    server.init_shop();
    let dir = Dir::new("alert-hook-env");
    let release = dir.join("release");
    let command = format!(
        "cat > '{d}/stdin-'$ZK_COFFEE_EVENT; env | grep -E '^ZK_COFFEE_(EVENT|SHOP|BARISTA)=' | sort > '{d}/env-'$ZK_COFFEE_EVENT.tmp; \
         mv '{d}/env-'$ZK_COFFEE_EVENT.tmp '{d}/env-'$ZK_COFFEE_EVENT; {}",
        wait_for_file(&release),
        d = dir.path().display()
    );
    let session = connect(server.connect_string());
    let alerts = Alerts::new(&session, "/", config(command)).expect("alerts");
    wait_until(LOG_TIMEOUT, "the only manager to lead", || alerts.is_leader());

    let barista_lost = lost("/", "b1");
    let unstaffed = Event::new(Kind::ShopUnstaffed, "/", None, "shop-unstaffed:/:1").with("waiting", 3);
    let on_shift = Event::new(Kind::BaristaOnShift, "/", Some("b2"), "barista-on-shift:b2:0x2");
    for event in [&barista_lost, &unstaffed, &on_shift] {
        alerts.event(event);
    }
    for kind in ["barista-lost", "shop-unstaffed"] {
        wait_until(LOG_TIMEOUT, &format!("the {kind} hook to start"), || dir.join(format!("env-{kind}")).exists());
    }
    // Both are running (waiting for the release): neither is recorded yet.
    for event in [&barista_lost, &unstaffed] {
        assert!(!server.exists(&record(event)), "{} recorded before its hook ended", event.event);
    }
    assert_eq!(
        read(&dir.join("env-barista-lost")),
        "ZK_COFFEE_BARISTA=b1\nZK_COFFEE_EVENT=barista-lost\nZK_COFFEE_SHOP=/\n",
        "the hook's environment"
    );
    assert_eq!(read(&dir.join("env-shop-unstaffed")), "ZK_COFFEE_BARISTA=\nZK_COFFEE_EVENT=shop-unstaffed\nZK_COFFEE_SHOP=/\n");
    for event in [&barista_lost, &unstaffed] {
        let stdin = read(&dir.join(format!("stdin-{}", event.event)));
        assert_eq!(stdin, format!("{}\n", event.to_json()), "the event's JSON and a newline on stdin");
    }

    std::fs::write(&release, b"").expect("release the hooks");
    for event in [&barista_lost, &unstaffed] {
        wait_until(LOG_TIMEOUT, "the record", || server.exists(&record(event)));
        let data = server.node(&record(event)).expect("the record").data;
        assert_eq!(String::from_utf8(data).expect("UTF-8"), event.to_json(), "the record holds the event's JSON");
    }
    // The same episode told again runs nothing more.
    alerts.event(&barista_lost);
    drop(alerts);
    assert!(!dir.join("env-barista-on-shift").exists(), "a hook ran for an event that does not alert");
    assert_eq!(server.children(layout::ALERTS).map(|c| c.len()), Some(2), "one record per alert");
    assert!(!dir.join("stdin-barista-on-shift").exists());
    assert_eq!(session.children(layout::MANAGERS).expect("list").map(|c| c.len()), Some(0), "the manager withdrew");
}

#[test]
fn a_hung_hook_is_killed_with_its_group_at_the_timeout_and_a_failing_one_is_logged() {
    let server = ZkServer::start();
    server.init_shop();
    logcapture::capture_library_log();
    let dir = Dir::new("alert-hook-faults");
    let pid_file = dir.join("pid");
    let command = format!(
        "case $ZK_COFFEE_EVENT in \
           queue-slow) sleep 1000 & echo $! > '{pid}'; wait;; \
           shop-unstaffed) echo 'no pager here' >&2; exit 3;; \
         esac",
        pid = pid_file.display()
    );
    let session = connect(server.connect_string());
    let timeout = Duration::from_secs(1);
    let alerts = Alerts::new(&session, "hooks-faults", HookConfig { timeout, ..config(command) }).expect("alerts");
    wait_until(LOG_TIMEOUT, "the only manager to lead", || alerts.is_leader());

    let slow = Event::new(Kind::QueueSlow, "hooks-faults", Some("b1"), "queue-slow:b1:coffee0000000001");
    let started = Instant::now();
    alerts.event(&slow);
    wait_until(LOG_TIMEOUT, "the hung hook's child", || !read(&pid_file).trim().is_empty());
    let sleeper: u32 = read(&pid_file).trim().parse().expect("a pid");
    wait_until(LOG_TIMEOUT, "the hung hook to be killed", || alerts.counts().timed_out == 1);
    assert!(started.elapsed() >= timeout, "killed after {:?}, before its timeout", started.elapsed());
    wait_until(LOG_TIMEOUT, "the hook's child to be killed with its group", || ended(sleeper));
    let line = logged(&["WARN", "ran over its timeout of 1s", "queue-slow shop=hooks-faults"]);
    assert!(line.is_some(), "the kill was not logged");
    wait_until(LOG_TIMEOUT, "the hung hook's record", || server.exists(&record(&slow)));

    let unstaffed = Event::new(Kind::ShopUnstaffed, "hooks-faults", None, "shop-unstaffed:hooks-faults:1");
    alerts.event(&unstaffed);
    wait_until(LOG_TIMEOUT, "the failing hook to be logged", || {
        logged(&["WARN", "shop-unstaffed shop=hooks-faults", "failed", "exit status 3"]).is_some()
    });
    wait_until(LOG_TIMEOUT, "its stderr in the log", || logged(&["WARN", "stderr: no pager here"]).is_some());
    wait_until(LOG_TIMEOUT, "the failing hook's record", || server.exists(&record(&unstaffed)));
    let counts = alerts.counts();
    assert_eq!((counts.failed, counts.timed_out, counts.succeeded), (1, 1, 0), "{counts:?}");
}

#[test]
fn no_more_hooks_run_at_once_than_the_cap_and_a_full_queue_drops_its_oldest() {
    let server = ZkServer::start();
    server.init_shop();
    let dir = Dir::new("alert-hook-cap");
    let log = dir.join("log");
    let release = dir.join("release");
    let command = format!(
        "echo \"start $ZK_COFFEE_BARISTA\" >> '{log}'; {}; echo \"end $ZK_COFFEE_BARISTA\" >> '{log}'",
        wait_for_file(&release),
        log = log.display()
    );
    let session = connect(server.connect_string());
    let alerts = Alerts::new(&session, "/", HookConfig { max_running: 2, max_queued: 2, ..config(command) }).expect("alerts");
    wait_until(LOG_TIMEOUT, "the only manager to lead", || alerts.is_leader());
    let events: BTreeMap<&str, Event> = ["b1", "b2", "b3", "b4", "b5"].map(|b| (b, lost("/", b))).into();
    let started = Instant::now();
    alerts.event(&events["b1"]);
    alerts.event(&events["b2"]);
    wait_until(LOG_TIMEOUT, "two hooks to run", || read(&log).lines().count() == 2);
    // Both slots are taken: b3 and b4 wait, and b5 pushes out the oldest waiting, b3.
    for b in ["b3", "b4", "b5"] {
        alerts.event(&events[b]);
    }
    assert!(started.elapsed() < Duration::from_secs(5), "handing events over waited for the hooks");
    assert_eq!(alerts.counts().dropped, 1);

    std::fs::write(&release, b"").expect("release the hooks");
    for b in ["b1", "b2", "b4", "b5"] {
        wait_until(LOG_TIMEOUT, &format!("{b}'s record"), || server.exists(&record(&events[b])));
    }
    drop(alerts);
    assert!(!server.exists(&record(&events["b3"])), "the dropped alert was recorded");
    let (mut running, mut most) = (0, 0);
    let mut ran = Vec::new();
    for line in read(&log).lines() {
        match line.split_once(' ') {
            Some(("start", b)) => {
                running += 1;
                most = most.max(running);
                ran.push(b.to_owned());
            }
            Some(("end", _)) => running -= 1,
            _ => panic!("unexpected line {line:?}"),
        }
    }
    assert!(most <= 2, "{most} hooks ran at once, with a cap of 2:\n{}", read(&log));
    ran.sort();
    assert_eq!(ran, ["b1", "b2", "b4", "b5"], "{}", read(&log));
}

#[test]
fn a_manager_taking_over_runs_what_no_record_covers_once_and_not_what_is_recorded() {
    let server = ZkServer::start();
    server.init_shop();
    let dir = Dir::new("alert-takeover");
    let log = dir.join("log");
    let release = dir.join("release");
    // a's hook for b3 hangs until released: a "dies" in the middle of it.
    let command_a = format!(
        "echo \"a $ZK_COFFEE_BARISTA\" >> '{log}'; if [ \"$ZK_COFFEE_BARISTA\" = b3 ]; then {}; fi",
        wait_for_file(&release),
        log = log.display()
    );
    let command_b = format!("echo \"b $ZK_COFFEE_BARISTA\" >> '{}'", log.display());
    let (a_session, b_session) = (connect(server.connect_string()), connect(server.connect_string()));
    let a = Alerts::new(&a_session, "/", config(command_a)).expect("a's alerts");
    wait_until(LOG_TIMEOUT, "a to lead", || a.is_leader());
    let b = Alerts::new(&b_session, "/", config(command_b)).expect("b's alerts");
    assert!(b.leader().expect("read the leader").is_some(), "b finds no leader");
    assert!(!b.is_leader());
    let [e1, e2, e3] = ["b1", "b2", "b3"].map(|barista| lost("/", barista));

    // Both managers see e1; the leader runs it and records it.
    a.event(&e1);
    b.event(&e1);
    wait_until(LOG_TIMEOUT, "e1's record", || server.exists(&record(&e1)));
    // Only b sees e2 (a's host died before a heard of it) ...
    b.event(&e2);
    // ... and both see e3, whose hook a starts but does not finish.
    a.event(&e3);
    b.event(&e3);
    wait_until(LOG_TIMEOUT, "a to start e3's hook", || read(&log).contains("a b3"));

    // a's node goes with its session: b leads, and runs e2 and e3, not e1.
    a_session.close();
    wait_until(LOG_TIMEOUT, "b to lead", || b.is_leader());
    for event in [&e2, &e3] {
        wait_until(LOG_TIMEOUT, "b to record what no record covered", || server.exists(&record(event)));
    }
    std::fs::write(&release, b"").expect("let a's hook end");
    drop(b);
    drop(a);
    let mut lines: Vec<String> = read(&log).lines().map(str::to_owned).collect();
    lines.sort();
    // e3 ran twice: at least once across a crash in the middle of its hook.
    assert_eq!(lines, ["a b1", "a b3", "b b2", "b b3"], "who ran which hook");
}

#[test]
fn in_a_secured_shop_a_manager_with_the_staff_credentials_leads_and_records_and_customers_see_nothing() {
    let server = ZkServer::start();
    let creds = crate::security::Creds::new("alerts");
    creds.secure(server.cmd(Role::ShopInit)).run(EXIT_TIMEOUT).assert_code(exit::OK);
    let staff = SessionConfig {
        credentials: Some(Credentials::parse(&creds.staff_auth).expect("staff credentials")),
        identity: None,
        servers: server.connect_string().parse().expect("a valid connect string"),
        session_timeout: Duration::from_secs(4),
        connect_timeout: Duration::from_secs(10),
        tls: None,
    };
    let session = Session::connect(staff).expect("connect as staff");
    let alerts = Alerts::new(&session, "/", config("true".into())).expect("the staff may stand and record");
    wait_until(LOG_TIMEOUT, "the only manager to lead", || alerts.is_leader());
    let event = lost("/", "b1");
    alerts.event(&event);
    wait_until(LOG_TIMEOUT, "the record", || server.exists(&record(&event)));

    let admin = crate::security::raw_as(server.connect_string(), Some(&creds.admin_auth));
    let (acl, _) = admin.get_acl(&record(&event)).expect("the admin reads the record's ACL");
    assert_eq!(acl, creds.shop_acl(&record(&event)), "the record has the shop's ACL");
    let candidates = admin.get_children(layout::MANAGERS, false).expect("the admin lists the managers");
    assert_eq!(candidates.len(), 1, "{candidates:?}");
    let customer = crate::security::raw_as(server.connect_string(), Some(&creds.customer_auth));
    for path in [layout::MANAGERS, layout::ALERTS] {
        let listed = customer.get_children(path, false);
        assert!(matches!(listed, Err(zookeeper::ZkError::NoAuth)), "a customer listed {path}: {listed:?}");
    }
    let read = customer.get_data(&record(&event), false);
    assert!(matches!(read, Err(zookeeper::ZkError::NoAuth)), "a customer read a record: {read:?}");
}

#[test]
fn the_leader_prunes_records_beyond_the_bound_and_past_their_age() {
    let server = ZkServer::start();
    server.init_shop();
    // A record left by an earlier leader, older than the age allowed.
    let old = lost("/", "b0");
    let open = zookeeper::Acl::open_unsafe().clone();
    server
        .raw()
        .create(&record(&old), old.to_json().into_bytes(), open, zookeeper::CreateMode::Persistent)
        .expect("an old record");
    let written = Instant::now();
    wait_until(LOG_TIMEOUT, "the old record to age", || written.elapsed() > Duration::from_secs(2));
    let session = connect(server.connect_string());
    let bounds = HookConfig { records_max: 2, records_max_age: Duration::from_secs(2), ..config("true".into()) };
    let alerts = Alerts::new(&session, "/", bounds).expect("alerts");
    // Taking over, the leader prunes what is too old.
    wait_until(LOG_TIMEOUT, "the old record to be pruned", || !server.exists(&record(&old)));
    let events: Vec<Event> = ["b1", "b2", "b3", "b4"].iter().map(|b| lost("/", b)).collect();
    for event in &events {
        alerts.event(event);
        wait_until(LOG_TIMEOUT, "its record", || server.exists(&record(event)));
    }
    // Beyond the bound, the oldest go.
    wait_until(LOG_TIMEOUT, "the records to be pruned to 2", || server.children(layout::ALERTS).is_some_and(|c| c.len() <= 2));
    assert!(server.exists(&record(&events[3])), "the newest record was pruned");
    assert!(!server.exists(&record(&events[0])), "the oldest record was kept");
    drop(alerts);
}
