//! The server misbehaving under a working shop: restarted within the session timeout, stopped
//! for three session timeouts, cut off by a partition long enough to expire every session,
//! frozen with SIGSTOP. The roles must not hang, must not burn CPU or flood their logs while
//! they wait, and must carry on by themselves; each test ends with the "nothing lost" audit.

use std::time::{Duration, Instant};

use zk_coffee_tests::fault::*;
use zk_coffee_tests::*;

/// A customer that is neither hung nor starved finishes within this.
const CUSTOMER_BOUND: Duration = Duration::from_secs(40);

/// How long the outages last: three session timeouts.
const OUTAGE: Duration = Duration::from_secs(3 * SESSION_TIMEOUT_SECS);

/// Starts a barista and waits until it is on shift.
/// Queues one order per coffee at `barista` while it is frozen, then lets it go on and waits
/// until it starts the first.
fn queue_at(zk: &str, barista: &Proc, name: &str, coffees: &[&str], patience: &str) -> Vec<Proc> {
    let frozen = Frozen::freeze(barista.pid());
    let customers: Vec<Proc> = coffees.iter().map(|c| place(customer(zk, Some(name), c, patience))).collect();
    frozen.thaw();
    barista.wait_for_stderr("making ", LOG_TIMEOUT);
    customers
}

/// What a role did during an outage: CPU share and log lines per second.
struct Quiet {
    label: String,
    meter: CpuMeter,
    from: Mark,
}

/// An outage window measured by [`Quiet`]: its CPU is checked at once, its log lines once
/// the role has exited (a line about the window may be written after it).
struct Window {
    label: String,
    what: &'static str,
    secs: f64,
    from: Mark,
    to: Mark,
}

impl Quiet {
    fn start(label: &str, p: &Proc) -> Quiet {
        Quiet { label: label.to_owned(), meter: CpuMeter::start(p.pid()), from: p.mark() }
    }

    /// Ends the window: prints the CPU figures and asserts the role used well under one core.
    fn end(self, p: &Proc, what: &'static str) -> Window {
        let used = self.meter.read();
        let to = p.mark();
        let secs = used.wall.as_secs_f64();
        eprintln!("{what}: {} used {:.1}% of a core ({:?} CPU in {secs:.1} s)", self.label, 100.0 * used.share(), used.cpu);
        assert!(used.share() < 0.5, "{}: {:.0}% of a core during the {what}", self.label, 100.0 * used.share());
        Window { label: self.label, what, secs, from: self.from, to }
    }
}

impl Window {
    /// Asserts the role wrote a few log lines a second at most during the window; `out` is
    /// what it printed in all, once it exited.
    fn check_log(&self, out: &Output) {
        let lines = out.stderr_between(self.from, self.to);
        let (n, secs) = (lines.len(), self.secs);
        eprintln!("{}: {} wrote {n} log lines in {secs:.1} s ({:.2}/s)", self.what, self.label, n as f64 / secs);
        assert!(
            (n as f64) <= 5.0 + 3.0 * secs,
            "{}: {n} log lines in {secs:.1} s during the {}:\n{}",
            self.label,
            self.what,
            lines.join("\n")
        );
    }
}

/// Waits until `b` is back on shift after an outage: its membership node exists (owned by a
/// live session) and it logged either a reconnect within its session or a new registration
/// since `before`. Returns what it did.
fn back_on_shift(b: &Proc, name: &str, before: Mark, server: &ZkServer) -> &'static str {
    let how = b.wait_log_since(before, &format!("{name} to be on shift again"), Duration::from_secs(30), |since| {
        if since.iter().any(|l| l.contains("is on shift (session")) {
            Some("registered again on a new session")
        } else if since.iter().any(|l| l.contains("reconnected to ZooKeeper")) {
            Some("kept its session")
        } else {
            None
        }
    });
    wait_until(Duration::from_secs(30), &format!("{name}'s membership node"), || {
        server.exists(&format!("/barista_group/{name}"))
    });
    how
}

/// Stops the baristas (SIGTERM, exit 0) and checks their windows' log lines.
fn stop_and_check(baristas: Vec<(Proc, Option<Window>)>) {
    for (b, window) in baristas {
        let out = b.stop(EXIT_TIMEOUT);
        out.assert_code(exit::OK);
        if let Some(window) = window {
            window.check_log(&out);
        }
    }
}

#[test]
fn a_server_restart_within_the_session_timeout_loses_nothing() {
    let mut server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let zk = server.connect_string().to_owned();
    let a = barista(&zk, "a", "0.3").spawn_on_shift();
    let b = barista(&zk, "b", "0.3").spawn_on_shift();
    let mut customers = queue_at(&zk, &a, "a", &MENU, "40");
    customers.extend(queue_at(&zk, &b, "b", &MENU, "40"));
    let lines = (a.mark(), b.mark());

    let restarted = Instant::now();
    server.restart();
    let restart_took = restarted.elapsed();
    // More customers once it is back.
    customers.extend((0..4).map(|i| place(customer(&zk, None, MENU[i], "40"))));

    let raw = server.raw();
    let settled = settle_customers(customers, CUSTOMER_BOUND, &raw);
    let all_served = restarted.elapsed();
    assert!(settled.iter().all(Settled::served), "{settled:#?}");
    let how_a = back_on_shift(&a, "a", lines.0, &server);
    let how_b = back_on_shift(&b, "b", lines.1, &server);
    let mut baristas = [a, b];
    assert!(baristas.iter_mut().all(|b| !b.has_exited()), "the baristas kept their shifts");
    let left = assert_nothing_left(&raw, LOG_TIMEOUT);
    assert_eq!(left.on_shift, ["a", "b"].map(String::from).into(), "{left:?}");
    eprintln!(
        "server restart: took {restart_took:?}; a {how_a}, b {how_b}; {} customers served {all_served:?} after it began",
        settled.len()
    );
}

#[test]
fn a_server_down_for_three_session_timeouts_costs_little_and_the_shop_carries_on() {
    let mut server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let zk = server.connect_string().to_owned();
    // `busy` has orders queued and one in hand when the server goes; `idle` has nothing to do.
    let busy = barista(&zk, "busy", "0.3").spawn_on_shift();
    let idle = barista(&zk, "idle", "0.3").spawn_on_shift();
    let customers = queue_at(&zk, &busy, "busy", &MENU[..3], "40");
    let lines = (busy.mark(), idle.mark());

    server.stop();
    let down = Instant::now();
    let quiet = [
        Quiet::start("busy barista", &busy),
        Quiet::start("idle barista", &idle),
        Quiet::start("waiting customer", &customers[1]),
    ];
    wait_until(OUTAGE + Duration::from_secs(5), "the outage to last three session timeouts", || down.elapsed() >= OUTAGE);
    let [busy_quiet, idle_quiet, customer_quiet] = quiet;
    let windows = [busy_quiet.end(&busy, "outage"), idle_quiet.end(&idle, "outage"), customer_quiet.end(&customers[1], "outage")];
    server.start_again();
    let up = Instant::now();

    let how_busy = back_on_shift(&busy, "busy", lines.0, &server);
    let how_idle = back_on_shift(&idle, "idle", lines.1, &server);
    let back = up.elapsed();
    let raw = server.raw();
    let settled = settle_customers(customers, CUSTOMER_BOUND, &raw);
    assert!(settled.iter().all(Settled::served), "{settled:#?}");
    let served_after = up.elapsed();
    for name in ["busy", "idle"] {
        let out = customer(&zk, Some(name), "jacob", "20").run(EXIT_TIMEOUT);
        out.assert_code(exit::OK);
    }
    let left = assert_nothing_left(&raw, LOG_TIMEOUT);
    assert_eq!(left.on_shift, ["busy", "idle"].map(String::from).into(), "{left:?}");
    eprintln!(
        "server down {:?}: busy barista {how_busy}, idle barista {how_idle}, both on shift {back:?} after the restart, \
         the waiting customers served {served_after:?} after it",
        up - down
    );
    let [busy_window, idle_window, customer_window] = windows;
    customer_window.check_log(&settled[1].out);
    stop_and_check(vec![(busy, Some(busy_window)), (idle, Some(idle_window))]);
}

#[test]
fn a_partition_longer_than_the_session_timeout_makes_everyone_start_a_new_session() {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    // Every role reaches the server through the gate; the test's own client does not.
    let gate = Proxy::start(server.port());
    let zk = gate.connect_string();
    let busy = barista(&zk, "busy", "0.3").spawn_on_shift();
    let idle = barista(&zk, "idle", "0.3").spawn_on_shift();
    let customers = queue_at(&zk, &busy, "busy", &MENU[..3], "40");
    let lines = (busy.mark(), idle.mark());

    gate.cut();
    let cut = Instant::now();
    let quiet = [
        Quiet::start("busy barista", &busy),
        Quiet::start("idle barista", &idle),
        Quiet::start("waiting customer", &customers[1]),
    ];
    // The server expires every session of the shop (the members go), and the partition lasts
    // three session timeouts at least.
    let raw = server.raw();
    wait_until(Duration::from_secs(20), "the server to expire the baristas' sessions", || audit(&raw).on_shift.is_empty());
    wait_until(OUTAGE + Duration::from_secs(5), "the partition to last three session timeouts", || cut.elapsed() >= OUTAGE);
    let [busy_quiet, idle_quiet, customer_quiet] = quiet;
    let windows =
        [busy_quiet.end(&busy, "partition"), idle_quiet.end(&idle, "partition"), customer_quiet.end(&customers[1], "partition")];
    assert_eq!(audit(&raw).buckets["busy"].len(), 3, "the queue (and the order in hand) waits in the bucket");
    gate.open();
    let healed = Instant::now();

    // Their sessions are gone: each barista registers again, on its own.
    for (b, name, before) in [(&busy, "busy", lines.0), (&idle, "idle", lines.1)] {
        b.wait_log_since(before, &format!("{name} to register on a new session"), Duration::from_secs(20), |since| {
            since.iter().find(|l| l.contains("is on shift (session 2)")).cloned()
        });
        wait_until(Duration::from_secs(20), &format!("{name}'s membership node"), || {
            server.exists(&format!("/barista_group/{name}"))
        });
    }
    let back = healed.elapsed();
    let settled = settle_customers(customers, CUSTOMER_BOUND, &raw);
    assert!(settled.iter().all(Settled::served), "{settled:#?}");
    let served_after = healed.elapsed();
    for name in ["busy", "idle"] {
        let out = customer(&zk, Some(name), "jacob", "20").run(EXIT_TIMEOUT);
        out.assert_code(exit::OK);
    }
    let left = assert_nothing_left(&raw, LOG_TIMEOUT);
    assert_eq!(left.on_shift, ["busy", "idle"].map(String::from).into(), "{left:?}");
    eprintln!("partition of {:?}: both baristas on shift again {back:?} after it healed, the waiting customers served {served_after:?} after it", healed - cut);
    let [busy_window, idle_window, customer_window] = windows;
    customer_window.check_log(&settled[1].out);
    stop_and_check(vec![(busy, Some(busy_window)), (idle, Some(idle_window))]);
}

#[test]
fn a_frozen_server_hangs_no_role_and_the_shop_recovers() {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let zk = server.connect_string().to_owned();
    let mut brewer = barista(&zk, "brewer", "2").spawn_on_shift();
    // One customer waits while its coffee is brewed, one is queued behind it.
    let waiting: Vec<Proc> = ["tesora", "jacob"].iter().map(|c| place(customer(&zk, Some("brewer"), c, "20"))).collect();
    brewer.wait_for_stderr("making tesora", LOG_TIMEOUT);

    let frozen = Frozen::freeze(server_pid(server.dir()));
    let quiet = Quiet::start("brewing barista", &brewer);
    // A customer arriving at a frozen server gives up connecting after its connect timeout.
    let late = customer(&zk, None, "sogood", "20").args(["--connect-timeout", "3"]).spawn();
    let late = late.wait_exit(Duration::from_secs(15));
    late.assert_within(Duration::from_secs(10));
    assert_eq!(late.code(), Some(exit::UNREACHABLE), "{late}");
    wait_until(OUTAGE + Duration::from_secs(5), "the freeze to last three session timeouts", || frozen.elapsed() >= OUTAGE);
    let window = quiet.end(&brewer, "freeze");
    let frozen_for = frozen.thaw();
    let thawed = Instant::now();

    // Nobody hangs: the waiting customers end (served, or gave up with their order withdrawn)
    // well within their patience plus the freeze.
    let raw = server.raw();
    let settled = settle_customers(waiting, CUSTOMER_BOUND, &raw);
    let outcomes: Vec<&str> = settled.iter().map(|s| s.receipt.outcome.as_str()).collect();
    // And the shop works again: a new customer is served.
    let out = customer(&zk, Some("brewer"), "swisswater", "30").run(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    let recovered = thawed.elapsed();
    assert!(!brewer.has_exited(), "the barista kept its shift");
    assert_nothing_left(&raw, LOG_TIMEOUT);
    eprintln!("server frozen {frozen_for:?}: waiting customers {outcomes:?}; a new customer served {recovered:?} after SIGCONT");
    let out = brewer.stop(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    window.check_log(&out);
    if std::env::var_os("ZK_COFFEE_FAULTS_VERBOSE").is_some() {
        eprintln!("{out}");
    }
}

/// The README ("Outages"): "Every ZooKeeper call is retried with backoff up to the session
/// timeout and never waits longer than that, even on a frozen server." A customer whose
/// patience runs out while the server is frozen tries to withdraw its order: that call must
/// give up within the session timeout (2 s here), not the connect timeout (10 s by default).
#[test]
fn calls_on_a_frozen_server_give_up_within_the_session_timeout() {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let zk = server.connect_string().to_owned();
    // A barista played by a raw client that never serves.
    let raw = server.raw();
    let open = zookeeper::Acl::open_unsafe().clone();
    raw.create("/orders/never", Vec::new(), open.clone(), zookeeper::CreateMode::Persistent).expect("bucket");
    raw.create("/barista_group/never", Vec::new(), open, zookeeper::CreateMode::Ephemeral).expect("member");
    let c = place(customer(&zk, Some("never"), "jacob", "2"));

    let frozen = Frozen::freeze(server_pid(server.dir()));
    let out = c.wait_exit(Duration::from_secs(30));
    drop(frozen);
    // Patience (2 s from its start), then one call bounded by the session timeout (2 s), and
    // a generous margin.
    let bound = Duration::from_secs(2 + SESSION_TIMEOUT_SECS + 3);
    assert!(out.elapsed <= bound, "took {:?} (bound {bound:?})\n{out}", out.elapsed);
    assert!(matches!(out.code(), Some(exit::GAVE_UP | exit::UNREACHABLE)), "{out}");
}

/// A customer that hears its order was deleted (served) while its own requests go unanswered
/// was served, and says so when its patience ends: `served`, not `failed`.
///
/// The load generator's customer with `--watch-all-orders` (one board watch for all its
/// orders) is used because its watch stays set after telling of a change: the gate mutes the
/// customer (its requests are held, the server's events still reach it), a raw client
/// touches the order (the customer looks at it, and that look goes unanswered) and then
/// serves it (the customer is told, while it is still in the failed look). Before the fix the
/// news was dropped in the outage's backoff and the visit counted `failed`.
#[test]
fn a_customer_told_it_was_served_while_its_calls_go_unanswered_reports_served() {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let gate = Proxy::start(server.port());
    // The original barista, played by the test's own client (not behind the gate).
    let raw = server.raw();
    let open = zookeeper::Acl::open_unsafe().clone();
    raw.create("/orders/orig", Vec::new(), open.clone(), zookeeper::CreateMode::Persistent).expect("bucket");
    raw.create("/barista_group/orig", Vec::new(), open, zookeeper::CreateMode::Ephemeral).expect("member");
    let c = role(&gate.connect_string(), Role::Customer)
        .args([
            "--coffee",
            "jacob",
            "--barista",
            "orig",
            "--patience",
            "8",
            "--orders",
            "1",
            "--concurrency",
            "1",
            "--watch-all-orders",
        ])
        .spawn();
    let order = c.wait_log("the customer's order", LOG_TIMEOUT, |lines| {
        lines.iter().find_map(|l| l.split_once("ordered jacob from orig: ").map(|(_, o)| o.trim().to_owned()))
    });
    assert!(raw.exists(&order, false).expect("exists").is_some(), "{order} is placed");

    gate.mute();
    // A change makes the customer look at its order (unanswered); the deletion is the serving.
    raw.set_data(&order, b"jacob".to_vec(), None).expect("touch the order");
    raw.delete(&order, None).expect("serve the order");
    let out = c.wait_exit(Duration::from_secs(30));
    gate.unmute();
    let summary = out.single_stdout_line();
    assert!(summary.contains(" served=1 ") && summary.contains(" failed=0 "), "told it was served, it says\n{out}");
    out.assert_code(exit::OK);
}
