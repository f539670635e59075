//! The operator's hands (issue 17): `shop-admin close`/`open`, `send-home` and `purge`, each
//! against real baristas and customers, each repeated to show it is safe to repeat, and each
//! reported by a manager following the shop.

use std::time::Duration;

use serde_json::Value;
use zk_coffee_tests::fault::{barista, customer, place, settle_customers, Settled};
use zk_coffee_tests::*;
use zookeeper::{Acl, CreateMode};

/// An operator's action finishes well within this (purge waits out its grace first).
const ACTION_BOUND: Duration = Duration::from_secs(10);
/// How soon a customer waiting for a barista hears the shop closed.
const TOLD_AT_ONCE: Duration = Duration::from_secs(5);

fn admin(zk: &str, args: &[&str]) -> Output {
    TestCommand::new(Role::ShopAdmin).zk(zk).args(args.iter()).run(EXIT_TIMEOUT)
}

fn any(_: &Value) -> bool {
    true
}

fn manager(zk: &str) -> Proc {
    let m = TestCommand::new(Role::ShopManager).zk(zk).spawn();
    m.wait_for_stderr("following ", LOG_TIMEOUT);
    m
}

#[test]
fn a_closed_shop_turns_customers_away_at_once_and_serves_its_queue() {
    let server = ZkServer::start();
    server.init_shop();
    let zk = server.connect_string();
    let mgr = manager(zk);
    let ana = barista(zk, "ana", "1").spawn_on_shift();
    // One order queued before closing: it is served all the same.
    let queued = place(customer(zk, Some("ana"), "jacob", "30"));
    // One customer waiting for a barista who is not on shift: told as soon as the sign goes up.
    let waiting = customer(zk, Some("bob"), "jacob", "30").env("RUST_LOG", "debug").spawn();
    waiting.wait_for_stderr("waiting for barista bob to come on shift", LOG_TIMEOUT);

    let out = admin(zk, &["close", "--reason", "deep clean"]);
    out.assert_code(exit::OK).assert_within(ACTION_BOUND);
    assert_eq!(out.single_stdout_line(), "closed (\"deep clean\")");
    // Its patience is 30 s: exiting within TOLD_AT_ONCE of the close is the sign's watch.
    let turned_away = waiting.wait_exit(TOLD_AT_ONCE);
    turned_away.assert_code(exit::CLOSED);
    assert_eq!(turned_away.single_stdout_line(), "closed exit=13");
    turned_away.error_line(&["the shop is closed", "deep clean", "no order was placed"]);
    let closed = wait_event(&mgr, "shop-closed", None, LOG_TIMEOUT, any);
    assert_eq!(closed["reason"], "deep clean", "{closed}");

    // While closed: a new customer places nothing; the queued one is served.
    let out = customer(zk, None, "jacob", "5").run(EXIT_TIMEOUT);
    out.assert_code(exit::CLOSED).assert_within(TOLD_AT_ONCE);
    let settled = settle_customers(vec![queued], Duration::from_secs(30), &server.raw());
    assert!(settled.iter().all(Settled::served), "{settled:#?}");
    assert_eq!(server.children("/orders/ana"), Some(vec![]));

    // Closing again changes nothing and says so.
    let out = admin(zk, &["close"]);
    out.assert_code(exit::NOT_APPLICABLE);
    out.error_line(&["nothing to do", "already closed", "deep clean"]);

    let out = admin(zk, &["open"]);
    out.assert_code(exit::OK);
    assert_eq!(out.single_stdout_line(), "open");
    wait_event(&mgr, "shop-opened", None, LOG_TIMEOUT, any);
    let out = admin(zk, &["open"]);
    out.assert_code(exit::NOT_APPLICABLE);
    out.error_line(&["the shop is open"]);
    customer(zk, None, "jacob", "20").run(EXIT_TIMEOUT).assert_code(exit::OK);

    ana.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    mgr.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}

#[test]
fn a_barista_sent_home_leaves_as_on_sigterm_and_its_queue_is_served() {
    let server = ZkServer::start();
    server.init_shop();
    let zk = server.connect_string();
    let mgr = manager(zk);
    let ana = barista(zk, "ana", "0.5").spawn_on_shift();
    let ben = barista(zk, "ben", "0.2").spawn_on_shift();
    let customers: Vec<Proc> = MENU[..3].iter().map(|c| place(customer(zk, Some("ana"), c, "40"))).collect();

    let out = admin(zk, &["send-home", "ana"]);
    out.assert_code(exit::OK).assert_within(ACTION_BOUND);
    assert_eq!(out.single_stdout_line(), "sent-home barista=ana");
    let gone = ana.wait_exit(EXIT_TIMEOUT);
    gone.assert_code(exit::OK);
    assert!(gone.stderr.iter().any(|l| l.contains("the operator sent me home")), "{gone}");
    // It left exactly as on SIGTERM: marked, then gone, its queue served (by it or by ben).
    let settled = settle_customers(customers, Duration::from_secs(40), &server.raw());
    assert!(settled.iter().all(Settled::served), "{settled:#?}");
    wait_event(&mgr, "barista-sent-home", Some("ana"), LOG_TIMEOUT, any);
    wait_event(&mgr, "barista-left", Some("ana"), LOG_TIMEOUT, any);
    assert!(!server.exists("/zk-coffee/operator/home-ana"), "the request went with it");

    // Again, and for nobody: nothing to do.
    for name in ["ana", "nobody"] {
        let out = admin(zk, &["send-home", name]);
        out.assert_code(exit::NOT_APPLICABLE);
        out.error_line(&["nothing to do", &format!("no barista {name} is on shift")]);
    }
    ben.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    mgr.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}

#[test]
fn a_request_left_for_an_earlier_barista_of_the_name_does_not_send_the_next_one_home() {
    let server = ZkServer::start();
    server.init_shop();
    let zk = server.connect_string();
    let raw = server.raw();
    // As if a barista crashed right after being sent home.
    let stale = "/zk-coffee/operator/home-ana";
    raw.create(stale, b"0x1".to_vec(), Acl::open_unsafe().clone(), CreateMode::Persistent).expect("request");
    let ana = barista(zk, "ana", "0").spawn_on_shift();
    wait_until(LOG_TIMEOUT, "the stale request to be removed", || !server.exists(stale));
    customer(zk, Some("ana"), "jacob", "20").run(EXIT_TIMEOUT).assert_code(exit::OK);
    ana.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}

#[test]
fn a_purge_tells_the_customers_why_and_empties_the_bucket() {
    let server = ZkServer::start();
    server.init_shop();
    let zk = server.connect_string();
    let mgr = manager(zk);
    // A barista played by a raw client, which serves nothing: the orders stay queued.
    let raw = server.raw();
    raw.create("/orders/manual", b"".to_vec(), Acl::open_unsafe().clone(), CreateMode::Persistent).expect("bucket");
    raw.create("/barista_group/manual", b"".to_vec(), Acl::open_unsafe().clone(), CreateMode::Ephemeral).expect("member");
    let customers: Vec<Proc> = ["jacob", "tesora"].iter().map(|c| place(customer(zk, Some("manual"), c, "60"))).collect();
    // And one order of the original program's customer, which reads no reasons.
    raw.create("/orders/manual/coffee", b"sogood".to_vec(), Acl::open_unsafe().clone(), CreateMode::PersistentSequential)
        .expect("order");

    let out = admin(zk, &["purge", "manual", "--reason", "machine broken", "--grace", "3"]);
    out.assert_code(exit::OK).assert_within(ACTION_BOUND);
    assert_eq!(out.single_stdout_line(), "purged bucket=manual rejected=3 withdrawn=2 removed=1");
    for c in customers {
        let out = c.wait_exit(EXIT_TIMEOUT);
        out.assert_code(exit::REJECTED);
        assert!(out.single_stdout_line().contains("purged by the operator: machine broken"), "{out}");
    }
    assert_eq!(server.children("/orders/manual"), Some(vec![]));
    let rejected = wait_event(&mgr, "order-rejected", Some("manual"), LOG_TIMEOUT, any);
    assert!(rejected.to_string().contains("purged by the operator: machine broken"), "{rejected}");

    let out = admin(zk, &["purge", "manual"]);
    out.assert_code(exit::NOT_APPLICABLE);
    out.error_line(&["nothing to do", "bucket manual holds no orders"]);
    let out = admin(zk, &["purge", "nobody"]);
    out.assert_code(exit::NOT_APPLICABLE);
    out.error_line(&["there is no bucket nobody"]);
    mgr.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}

#[test]
fn shop_admin_usage_errors_exit_2_before_any_connection() {
    // Nothing listens there, and the connect timeout is long: a role that tried to connect
    // would overrun the bound.
    let zk = format!("127.0.0.1:{}", closed_port());
    for (args, needle) in [
        (vec![], "requires a subcommand"),
        (vec!["send-home"], "<BARISTA>"),
        (vec!["send-home", "no/slash"], "invalid barista name"),
        (vec!["purge", "ana", "--grace", "soon"], "invalid duration"),
        (vec!["reopen-now"], "unrecognized subcommand"),
    ] {
        let out = TestCommand::new(Role::ShopAdmin).zk(&zk).args(["--connect-timeout", "30"]).args(args.iter()).run(EXIT_TIMEOUT);
        out.assert_code(exit::USAGE).assert_within(Duration::from_secs(5));
        assert!(out.stderr.iter().any(|l| l.contains(needle)), "{args:?}: no {needle:?} in\n{out}");
    }
}
