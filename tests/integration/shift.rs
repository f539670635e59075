//! A barista's shift ending: leaving on SIGTERM without losing an order (draining alone, or
//! handing the queue to a colleague), a killed barista's orders adopted, a name already taken.
//!
//! Orders are queued deterministically by stopping the barista (SIGSTOP) while customers order
//! from it; a SIGTERM sent meanwhile is handled once it continues (SIGCONT).

use std::time::Duration;

use zk_coffee_tests::*;

/// Starts customers ordering `coffees` from `barista` one after another (each once the
/// previous one has placed its order), and returns them.
fn queue_customers(server: &ZkServer, barista: &str, coffees: &[&str]) -> Vec<Proc> {
    coffees
        .iter()
        .map(|coffee| {
            let c = server.cmd(Role::Customer).args(["--coffee", coffee, "--barista", barista, "--patience", "30"]).spawn();
            c.wait_for_stderr("ordered ", LOG_TIMEOUT);
            c
        })
        .collect()
}

/// Waits for every customer, asserting each was served by (the bucket of) `barista`; returns
/// the order names in placement order.
fn all_served(customers: Vec<Proc>, barista: &str) -> Vec<String> {
    customers
        .into_iter()
        .map(|c| {
            let out = c.wait_exit(EXIT_TIMEOUT);
            out.assert_code(exit::OK);
            let r = Receipt::parse(out.single_stdout_line());
            assert_eq!((r.outcome.as_str(), r.barista.as_str()), ("served", barista), "{out}");
            r.order_name().to_owned()
        })
        .collect()
}

#[test]
fn sigterm_with_nobody_else_on_shift_serves_the_queue_then_leaves() {
    let server = ZkServer::start();
    let shop_nodes = shop_init_report(&server.init_shop(), "created");
    let mut solo = server.cmd(Role::Barista).args(["--name", "solo", "--brew-time", "0.1"]).spawn();
    solo.wait_for_stderr("is on shift", LOG_TIMEOUT);
    solo.signal("STOP");
    let customers = queue_customers(&server, "solo", &["jacob", "tesora", "sogood"]);
    solo.signal("TERM");
    solo.signal("CONT");

    let orders = all_served(customers, "solo");
    let out = solo.wait_exit(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    // SIGCONT wakes the barista for its orders and its signal handler for the stop at once:
    // it may take the first order in hand before it sees the stop (and then finishes it).
    let left = out.stderr.iter().position(|l| l.contains("left the group")).expect("it left the group");
    let in_hand = out.stderr[..left].iter().filter(|l| l.contains("making ")).count();
    assert!(in_hand <= 1, "at most the order in hand before leaving\n{out}");
    let queued = 3 - in_hand;
    assert!(out.stderr.iter().any(|l| l.contains(&format!("serving the {queued} queued orders before leaving"))), "{out}");
    assert_eq!(served_orders(&out.stderr), orders, "served the queue in order\n{out}");
    let mut expected = shop_nodes;
    expected.push("/zk-coffee/sales/solo".to_owned());
    expected.sort();
    assert_eq!(server.tree("/"), expected, "member and bucket gone, the sales ledger kept");
}

#[test]
fn sigterm_hands_the_queue_over_to_a_colleague_on_shift() {
    let server = ZkServer::start();
    let shop_nodes = shop_init_report(&server.init_shop(), "created");
    let mut leaver = server.cmd(Role::Barista).args(["--name", "leaver", "--brew-time", "0.1"]).spawn();
    leaver.wait_for_stderr("is on shift", LOG_TIMEOUT);
    let stayer = server.cmd(Role::Barista).args(["--name", "stayer", "--brew-time", "0.1"]).spawn();
    stayer.wait_for_stderr("is on shift", LOG_TIMEOUT);
    leaver.signal("STOP");
    let customers = queue_customers(&server, "leaver", &["swisswater", "jacob", "tesora"]);
    leaver.signal("TERM");
    leaver.signal("CONT");

    let out = leaver.wait_exit(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    assert!(out.stderr.iter().any(|l| l.contains("handing 3 queued orders over")), "{out}");
    assert!(barista_events(&out.stderr).is_empty(), "the leaver made nothing\n{out}");

    let orders = all_served(customers, "leaver");
    let served = stayer.wait_served(orders.len(), LOG_TIMEOUT);
    assert_eq!(served, orders, "the colleague served the handed-over queue in order");
    wait_until(LOG_TIMEOUT, "the emptied bucket and the claim to go", || {
        server.children("/orders") == Some(vec!["stayer".to_owned()]) && server.tree("/zk-coffee/claims").is_empty()
    });
    let mut expected = shop_nodes;
    expected.extend(
        ["/barista_group/stayer", "/orders/stayer", "/zk-coffee/sales/leaver", "/zk-coffee/sales/stayer"].map(String::from),
    );
    expected.sort();
    assert_eq!(server.tree_off_rota("/"), expected);
    assert_eq!(server.rota(), ["stayer"], "the leaver gave up its place");
    let stayer = stayer.stop(EXIT_TIMEOUT);
    let events = barista_events(&stayer.stderr);
    assert!(events.iter().all(|e| e.adopted_from.as_deref() == Some("leaver")), "{events:?}");
    assert_eq!(served_orders(&stayer.stderr), orders, "the colleague served the handed-over queue in order, and nothing else");
}

#[test]
fn a_killed_baristas_queue_is_adopted_once_its_session_expires() {
    let server = ZkServer::start();
    server.init_shop();
    // The shortest session the server allows (2 ticks = 1 s), so it expires soon after the kill.
    let mut victim = server.cmd(Role::Barista).args(["--name", "victim", "--brew-time", "0.1", "--session-timeout", "1"]).spawn();
    victim.wait_for_stderr("is on shift", LOG_TIMEOUT);
    let rescuer = server.cmd(Role::Barista).args(["--name", "rescuer", "--brew-time", "0.1"]).spawn();
    rescuer.wait_for_stderr("is on shift", LOG_TIMEOUT);
    victim.signal("STOP");
    let customers = queue_customers(&server, "victim", &["sogood", "jacob"]);
    victim.signal("KILL");
    let killed = victim.wait_exit(EXIT_TIMEOUT);
    assert_eq!(killed.code(), None, "killed by a signal\n{killed}");

    let orders = all_served(customers, "victim");
    rescuer.wait_for_stderr("adopting the orphaned bucket of victim", LOG_TIMEOUT);
    assert_eq!(rescuer.wait_served(orders.len(), LOG_TIMEOUT), orders);
    wait_until(LOG_TIMEOUT, "the orphaned bucket and the claim to go", || {
        server.children("/orders") == Some(vec!["rescuer".to_owned()]) && server.tree("/zk-coffee/claims").is_empty()
    });
    assert_eq!(server.children("/barista_group"), Some(vec!["rescuer".to_owned()]));
    let rescuer = rescuer.stop(EXIT_TIMEOUT);
    let events = barista_events(&rescuer.stderr);
    assert!(events.iter().all(|e| e.adopted_from.as_deref() == Some("victim")), "{events:?}");
    assert_eq!(served_orders(&rescuer.stderr), orders);
}

#[test]
fn a_name_held_by_a_live_barista_exits_8() {
    let server = ZkServer::start();
    server.init_shop();
    let first = server.cmd(Role::Barista).args(["--name", "dup"]).spawn();
    first.wait_for_stderr("is on shift", LOG_TIMEOUT);
    // The second waits up to two of its session timeouts for a stale holder to expire.
    let out = server.cmd(Role::Barista).args(["--name", "dup", "--session-timeout", "1"]).run(EXIT_TIMEOUT);
    out.assert_code(exit::NAME_IN_USE).assert_within(Duration::from_secs(15));
    out.error_line(&["\"dup\"", "already taken", "--name"]);
    // The first is untouched and still serves.
    assert!(server.node("/barista_group/dup").expect("member").ephemeral);
    let served = server.cmd(Role::Customer).args(["--barista", "dup"]).run(EXIT_TIMEOUT);
    served.assert_code(exit::OK);
}

/// A barista registers by creating its bucket and then its member node: a colleague that
/// lists the buckets in between must not take the fresh bucket for an orphan (it used to claim
/// it and, when still empty and memberless, delete it; fixed in 0fdbd9b).
#[test]
fn a_barista_coming_on_shift_is_not_taken_for_an_orphan() {
    let server = ZkServer::start();
    server.init_shop();
    let mut first = server.cmd(Role::Barista).args(["--name", "first", "--brew-time", "0.1"]).spawn();
    first.wait_for_stderr("is on shift", LOG_TIMEOUT);
    let mut newcomers: Vec<Proc> = (0..5)
        .map(|i| {
            let b = server.cmd(Role::Barista).args(["--name", &format!("new{i}"), "--brew-time", "0.1"]).spawn();
            b.wait_for_stderr("is on shift", LOG_TIMEOUT);
            b
        })
        .collect();
    // Nobody ever left while `first` was on shift: it had no orphan to adopt.
    first.signal("TERM");
    let out = first.wait_exit(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    let adoptions: Vec<&String> = out.stderr.iter().filter(|l| l.contains("adopting")).collect();
    assert!(adoptions.is_empty(), "adopted the bucket of a barista coming on shift: {adoptions:?}\n{out}");
    for b in &mut newcomers {
        b.signal("TERM");
    }
    for b in newcomers {
        let out = b.wait_exit(EXIT_TIMEOUT);
        out.assert_code(exit::OK);
        assert!(!out.stderr.iter().any(|l| l.contains("vanished")), "its fresh bucket was removed\n{out}");
    }
}
