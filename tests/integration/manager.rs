//! The shop manager (issue 13): every event kind from real faults (a barista killed, stopped,
//! frozen past its session; a queue too slow; orders with nobody on shift; a garbage order; a
//! new menu; a new shop), left told from lost, and a manager that rides out a server restart,
//! a cut connection and its own expired session, reporting what happened meanwhile.

use serde_json::Value;
use zookeeper::{Acl, CreateMode};

use zk_coffee_tests::fault::*;
use zk_coffee_tests::*;

/// A manager on `connect` with the fault tests' short session timeout.
fn manager(connect: &str) -> TestCommand {
    role(connect, Role::ShopManager)
}

/// A manager on `connect` with its own session timeout.
fn manager_timing_out_after(connect: &str, secs: &str) -> TestCommand {
    TestCommand::new(Role::ShopManager).zk(connect).args(["--session-timeout", secs])
}

/// Starts `cmd` and waits until it has read every shop.
fn spawn_manager(cmd: TestCommand) -> Proc {
    let m = cmd.spawn();
    m.wait_for_stderr("following ", LOG_TIMEOUT);
    m
}

fn any(_: &Value) -> bool {
    true
}

#[test]
fn a_barista_stopped_left_and_one_killed_was_lost_with_its_orders_adopted_and_drained() {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let zk = server.connect_string();
    let mgr = spawn_manager(manager(zk));
    let mut victim = barista(zk, "victim", "2").spawn_on_shift();
    let rescuer = barista(zk, "rescuer", "0.1").spawn_on_shift();
    wait_event(&mgr, "barista-on-shift", Some("victim"), LOG_TIMEOUT, any);
    wait_event(&mgr, "barista-on-shift", Some("rescuer"), LOG_TIMEOUT, any);

    // Three orders queue at the slow victim; it dies with them.
    let customers: Vec<Proc> = MENU[..3].iter().map(|c| place(customer(zk, Some("victim"), c, "40"))).collect();
    victim.signal("KILL");
    let _ = victim.wait_exit(EXIT_TIMEOUT);
    let lost = wait_event(&mgr, "barista-lost", Some("victim"), LOG_TIMEOUT, any);
    let stranded = lost["stranded"].as_u64().expect("stranded is a count");
    assert!((2..=3).contains(&stranded), "one order may be in hand, the others queued: {lost}");
    let adopted = wait_event(&mgr, "orphan-adopted", Some("victim"), LOG_TIMEOUT, any);
    assert_eq!(adopted["by"], "rescuer", "{adopted}");
    let drained = wait_event(&mgr, "orphan-drained", Some("victim"), LOG_TIMEOUT, any);
    assert_eq!(drained["by"], "rescuer", "{drained}");
    for c in customers {
        c.wait_exit(EXIT_TIMEOUT).assert_code(exit::OK);
    }

    // A barista stopped with SIGTERM leaves; it is not lost.
    rescuer.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    let left = wait_event(&mgr, "barista-left", Some("rescuer"), LOG_TIMEOUT, any);
    assert_eq!(left["handed_over"], 0, "{left}");
    let out = mgr.stop(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    let events = events_of(&out);
    assert_eq!(count_events(&events, "barista-lost", Some("rescuer")), 0, "{events:#?}");
    assert_eq!(count_events(&events, "barista-lost", Some("victim")), 1, "{events:#?}");
    // Each event is also one line of the manager's log.
    assert_eq!(out.count_stderr("barista-lost shop=/ barista=victim"), 1, "{out}");
    for event in &events {
        assert!(event["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{event}");
        assert_eq!(event["shop"], "/", "{event}");
        assert!(event["key"].as_str().is_some_and(|k| !k.is_empty()), "{event}");
    }
}

#[test]
fn a_frozen_barista_whose_session_expires_is_lost_and_back_on_shift_when_it_thaws() {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let zk = server.connect_string();
    let mgr = spawn_manager(manager(zk));
    let sleeper = barista(zk, "sleeper", "0.1").spawn_on_shift();
    let first = wait_event(&mgr, "barista-on-shift", Some("sleeper"), LOG_TIMEOUT, any);
    let frozen = Frozen::freeze(sleeper.pid());
    let lost = wait_event(&mgr, "barista-lost", Some("sleeper"), LOG_TIMEOUT, any);
    assert_eq!(lost["stranded"], 0, "{lost}");
    frozen.thaw();
    let again = wait_event(&mgr, "barista-on-shift", Some("sleeper"), LOG_TIMEOUT, |e| e["key"] != first["key"]);
    assert_ne!(again["key"], first["key"], "a new session, a new episode");
    sleeper.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    wait_event(&mgr, "barista-left", Some("sleeper"), LOG_TIMEOUT, any);
    mgr.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}

#[test]
fn a_slow_queue_an_unstaffed_shop_a_rejected_order_a_new_menu_and_a_new_shop_are_reported() {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let zk = server.connect_string();
    let mgr = spawn_manager(manager(zk).args(["--alert-wait", "1"]));
    let slow = barista(zk, "slow", "1.5").spawn_on_shift();

    // Three orders at 1.5 s each: the oldest waits over a second, once per episode.
    let customers: Vec<Proc> = MENU[..3].iter().map(|c| place(customer(zk, Some("slow"), c, "40"))).collect();
    let slow_event = wait_event(&mgr, "queue-slow", Some("slow"), LOG_TIMEOUT, any);
    assert!(slow_event["oldest_wait_seconds"].as_f64().is_some_and(|s| s > 1.0), "{slow_event}");
    for c in customers {
        c.wait_exit(EXIT_TIMEOUT).assert_code(exit::OK);
    }
    let ok = wait_event(&mgr, "queue-ok", Some("slow"), LOG_TIMEOUT, any);
    assert_eq!(ok["key"], slow_event["key"], "queue-ok closes the episode it opened");

    // A garbage order (as a foreign client could write it) is rejected, with the reason.
    let raw = server.raw();
    raw.create("/orders/slow/coffee", b"espresso".to_vec(), Acl::open_unsafe().clone(), CreateMode::PersistentSequential)
        .expect("a garbage order");
    let rejected = wait_event(&mgr, "order-rejected", Some("slow"), LOG_TIMEOUT, any);
    assert!(rejected["reason"].as_str().is_some_and(|r| r.contains("espresso")), "{rejected}");

    // Nobody on shift while an order waits.
    slow.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    wait_event(&mgr, "barista-left", Some("slow"), LOG_TIMEOUT, any);
    // (A customer waits for a barista before it orders: the order comes from a raw client,
    // into the bucket of a barista that is gone.)
    raw.create("/orders/gone", b"0".to_vec(), Acl::open_unsafe().clone(), CreateMode::Persistent).expect("a bucket");
    let order = raw
        .create("/orders/gone/coffee", b"jacob".to_vec(), Acl::open_unsafe().clone(), CreateMode::PersistentSequential)
        .expect("an order");
    let unstaffed = wait_event(&mgr, "shop-unstaffed", None, LOG_TIMEOUT, any);
    assert_eq!(unstaffed["waiting"], 1, "{unstaffed}");
    let back = barista(zk, "back", "0.1").spawn_on_shift();
    let staffed = wait_event(&mgr, "shop-staffed", None, LOG_TIMEOUT, any);
    assert_eq!(staffed["key"], unstaffed["key"], "{staffed}");
    // The newcomer adopts the orphan and serves it.
    wait_until(LOG_TIMEOUT, "the orphaned order to be served", || !server.exists(&order));

    // A new menu, and a shop created while the manager runs.
    TestCommand::new(Role::ShopInit).zk(zk).args(["--menu", "tesora,jacob"]).run(EXIT_TIMEOUT).assert_code(exit::OK);
    let menu = wait_event(&mgr, "menu-changed", None, LOG_TIMEOUT, any);
    assert_eq!(menu["menu"], serde_json::json!(["tesora", "jacob"]), "{menu}");
    TestCommand::new(Role::ShopInit).zk(zk).args(["--shop", "north"]).run(EXIT_TIMEOUT).assert_code(exit::OK);
    wait_event(&mgr, "shop-created", None, LOG_TIMEOUT, |e| e["shop"] == "north");
    // The new shop is followed: a barista there is reported with its shop.
    let north = barista(zk, "n1", "0.1").args(["--shop", "north"]).spawn_on_shift();
    wait_event(&mgr, "barista-on-shift", Some("n1"), LOG_TIMEOUT, |e| e["shop"] == "north");
    north.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    back.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    let out = mgr.stop(EXIT_TIMEOUT);
    let events = events_of(&out);
    assert_eq!(count_events(&events, "queue-slow", Some("slow")), 1, "once per episode: {events:#?}");
    assert_eq!(count_events(&events, "shop-unstaffed", None), 1, "{events:#?}");
}

#[test]
fn only_the_shops_named_are_followed() {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    for shop in ["north", "south"] {
        TestCommand::new(Role::ShopInit)
            .zk(server.connect_string())
            .args(["--shop", shop])
            .run(EXIT_TIMEOUT)
            .assert_code(exit::OK);
    }
    let zk = server.connect_string();
    let mgr = spawn_manager(manager(zk).args(["--shop", "south"]));
    let north = barista(zk, "n1", "0.1").args(["--shop", "north"]).spawn_on_shift();
    let south = barista(zk, "s1", "0.1").args(["--shop", "south"]).spawn_on_shift();
    wait_event(&mgr, "barista-on-shift", Some("s1"), LOG_TIMEOUT, |e| e["shop"] == "south");
    north.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    south.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    wait_event(&mgr, "barista-left", Some("s1"), LOG_TIMEOUT, any);
    let out = mgr.stop(EXIT_TIMEOUT);
    let events = events_of(&out);
    assert!(events.iter().all(|e| e["shop"] == "south"), "{events:#?}");
}

#[test]
fn the_manager_rides_out_a_server_restart_and_reports_a_loss_during_it() {
    let mut server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let zk = server.connect_string().to_owned();
    let mgr = spawn_manager(manager_timing_out_after(&zk, "4"));
    let mut victim = barista(&zk, "victim", "0.1").spawn_on_shift();
    wait_event(&mgr, "barista-on-shift", Some("victim"), LOG_TIMEOUT, any);
    server.stop();
    // The barista dies while the server is down: its session expires after the restart.
    victim.signal("KILL");
    let _ = victim.wait_exit(EXIT_TIMEOUT);
    server.start_again();
    let lost = wait_event(&mgr, "barista-lost", Some("victim"), LOG_TIMEOUT, any);
    assert_eq!(lost["stranded"], 0, "{lost}");
    // Still following: a new barista is reported.
    let next = barista(&zk, "next", "0.1").spawn_on_shift();
    wait_event(&mgr, "barista-on-shift", Some("next"), LOG_TIMEOUT, any);
    next.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    mgr.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}

/// Cuts the manager off (through `proxy`) while a barista leaves, another comes and the menu
/// changes; `expire`: until its session has expired. Then checks that it reports each change,
/// marked inferred, and follows again.
fn cut_off_while_the_shop_changes(expire: bool) {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let zk = server.connect_string();
    let proxy = Proxy::start(server.port());
    let mgr = spawn_manager(manager_timing_out_after(&proxy.connect_string(), "1"));
    let goner = barista(zk, "goner", "0.1").spawn_on_shift();
    wait_event(&mgr, "barista-on-shift", Some("goner"), LOG_TIMEOUT, any);

    proxy.cut();
    goner.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    let newcomer = barista(zk, "newcomer", "0.1").spawn_on_shift();
    TestCommand::new(Role::ShopInit).zk(zk).args(["--menu", "jacob"]).run(EXIT_TIMEOUT).assert_code(exit::OK);
    if expire {
        // The newcomer's is the only session left once the manager's expired.
        wait_until(LOG_TIMEOUT, "the manager's session to expire", || server.mntr()["zk_global_sessions"] == "1");
    }
    proxy.open();
    mgr.wait_for_stderr(if expire { "session was lost" } else { "session 1 kept" }, LOG_TIMEOUT);

    // Its leaving mark went with its node: a departure the manager did not see is reported as
    // a loss (better a false alarm than a silent loss), marked inferred.
    let gone = wait_event(&mgr, "barista-lost", Some("goner"), LOG_TIMEOUT, any);
    assert_eq!(gone["inferred"], true, "{gone}");
    let came = wait_event(&mgr, "barista-on-shift", Some("newcomer"), LOG_TIMEOUT, any);
    assert_eq!(came["inferred"], true, "{came}");
    let menu = wait_event(&mgr, "menu-changed", None, LOG_TIMEOUT, any);
    assert_eq!(menu["inferred"], true, "{menu}");
    // And it follows again, live. (On a loaded machine its 1 s session may drop its
    // connection again, and then a departure during the read that follows is inferred: only
    // then.)
    let before_leaving = mgr.mark();
    newcomer.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    let left = wait_event(&mgr, "barista-left", Some("newcomer"), LOG_TIMEOUT, any);
    if left.get("inferred").is_some() {
        mgr.wait_log_since(before_leaving, "another full read, the only cause of an inferred event", LOG_TIMEOUT, |lines| {
            lines.iter().any(|l| l.contains("read every shop again")).then_some(())
        });
    }
    let out = mgr.stop(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    assert_eq!(count_events(&events_of(&out), "barista-on-shift", Some("newcomer")), 1, "told once: {out}");
}

#[test]
fn after_a_cut_connection_the_manager_reports_what_changed_meanwhile() {
    cut_off_while_the_shop_changes(false);
}

#[test]
fn after_its_own_session_expired_the_manager_reports_what_changed_meanwhile() {
    cut_off_while_the_shop_changes(true);
}

#[test]
fn bad_flags_exit_2_and_an_unreachable_ensemble_exits_5() {
    for args in [&["--alert-wait", "0"][..], &["--shop", "a/b"], &["--forget-after", "soon"], &["--no-such-flag"]] {
        let out = TestCommand::new(Role::ShopManager).zk("127.0.0.1:1").args(args.iter()).run(EXIT_TIMEOUT);
        out.assert_code(exit::USAGE).assert_failure_line();
    }
    let out = TestCommand::new(Role::ShopManager)
        .zk(format!("127.0.0.1:{}", closed_port()))
        .args(["--connect-timeout", "1"])
        .run(EXIT_TIMEOUT);
    out.assert_code(exit::UNREACHABLE).assert_failure_line();
}

#[test]
fn a_zookeeper_server_that_does_not_answer_is_reported_degraded() {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let dead = format!("127.0.0.1:{}", closed_port());
    let connect = format!("{},{dead}", server.connect_string());
    let mgr = spawn_manager(manager(&connect).args(["--zookeeper-interval", "0.5", "--ensemble", "pair"]));
    let degraded = wait_event(&mgr, "zookeeper-degraded", None, LOG_TIMEOUT, any);
    assert_eq!(degraded["server"], dead.as_str(), "{degraded}");
    assert_eq!(degraded["shop"], "pair", "an event about the ensemble names it: {degraded}");
    // The live server is followed all the same.
    let b = barista(server.connect_string(), "b", "0.1").spawn_on_shift();
    wait_event(&mgr, "barista-on-shift", Some("b"), LOG_TIMEOUT, any);
    b.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    let out = mgr.stop(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    assert_eq!(count_events(&events_of(&out), "zookeeper-degraded", None), 1, "once per episode: {out}");
}
