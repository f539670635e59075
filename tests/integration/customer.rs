//! The customer's side: waiting for a barista to come on shift, and leaving on SIGTERM.

use zk_coffee_tests::*;

#[test]
fn a_customer_waits_for_a_barista_to_come_on_shift() {
    let server = ZkServer::start();
    server.init_shop();
    let customer = server.cmd(Role::Customer).args(["--coffee", "tesora", "--patience", "20"]).spawn();
    // The customer is waiting once it watches the (empty) group.
    wait_until(LOG_TIMEOUT, "the customer to watch /barista_group", || {
        server.mntr().get("zk_watch_count").map(String::as_str) == Some("1")
    });
    assert_eq!(server.tree("/orders"), Vec::<String>::new(), "ordered from nobody?");
    let barista = server.cmd(Role::Barista).args(["--name", "late", "--brew-time", "0.1"]).spawn();
    barista.wait_for_stderr("is on shift", LOG_TIMEOUT);
    let out = customer.wait_exit(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    let r = Receipt::parse(out.single_stdout_line());
    assert_eq!((r.outcome.as_str(), r.barista.as_str(), r.coffee.as_str()), ("served", "late", "tesora"));
}

#[test]
fn sigterm_makes_a_waiting_customer_withdraw_its_order() {
    let server = ZkServer::start();
    server.init_shop();
    let mut barista = server.cmd(Role::Barista).args(["--name", "b", "--brew-time", "0.1"]).spawn();
    barista.wait_for_stderr("is on shift", LOG_TIMEOUT);
    barista.signal("STOP"); // busy: the order waits in the bucket
    let mut customer = server.cmd(Role::Customer).args(["--coffee", "jacob", "--patience", "30"]).spawn();
    customer.wait_for_stderr("ordered jacob from b", LOG_TIMEOUT);
    assert_eq!(server.children("/orders/b").map(|c| c.len()), Some(1));
    customer.signal("TERM");
    let out = customer.wait_exit(EXIT_TIMEOUT);
    out.assert_code(exit::GAVE_UP);
    let r = Receipt::parse(out.single_stdout_line());
    assert_eq!((r.outcome.as_str(), r.barista.as_str()), ("gave-up", "b"), "{out}");
    assert!(!server.exists(&r.order), "the order was withdrawn");

    // The barista, once it continues, has nothing to make.
    barista.signal("CONT");
    barista.signal("TERM");
    let out = barista.wait_exit(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    assert!(barista_events(&out.stderr).is_empty(), "made a withdrawn order\n{out}");
}

/// While a customer waits for a barista to come on shift, SIGTERM ends the wait at once: it
/// exits as "gave up" without having placed an order.
#[test]
fn sigterm_ends_a_customer_waiting_for_a_barista() {
    let server = ZkServer::start();
    server.init_shop();
    let mut customer = server.cmd(Role::Customer).args(["--coffee", "tesora", "--patience", "30"]).spawn();
    wait_until(LOG_TIMEOUT, "the customer to watch /barista_group", || {
        server.mntr().get("zk_watch_count").map(String::as_str) == Some("1")
    });
    customer.signal("TERM");
    // `customer --help`: "SIGINT/SIGTERM withdraws the order and exits as 'gave up'".
    let out = customer.wait_exit(EXIT_TIMEOUT);
    out.assert_within(std::time::Duration::from_secs(10)).assert_code(exit::GAVE_UP);
    assert_eq!(server.tree("/orders"), Vec::<String>::new(), "no order was placed");
}
