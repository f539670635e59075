//! A customer withdraws only its own order (issue 16, part 3): in a secured shop, another
//! process holding the customer credentials (a `zookeeper-client` session through the library,
//! with an identity of its own as every customer process has, and the original program's
//! `zookeeper` crate) can neither delete nor withdraw an order it did not place; its owner
//! still withdraws, by marking it; the barista removes the marked order unmade and uncounted,
//! also when the mark lands while the coffee brews; the manager counts it withdrawn. (The open
//! shop keeps the original contract, the customer deleting its order: `wire_compat.rs` plays
//! the original program's roles against it.)

use std::net::SocketAddr;
use std::time::Duration;

use zk_coffee::error::Error;
use zk_coffee::order;
use zk_coffee::session::{Credentials, Session, SessionConfig};
use zookeeper::ZkError;

use crate::security::{raw_as, with_creds, Creds};
use zk_coffee_tests::fault::Frozen;
use zk_coffee_tests::http;
use zk_coffee_tests::*;

/// The path of the order a running customer placed, from its log.
fn order_of(customer: &Proc) -> String {
    let line = customer.wait_for_stderr("ordered ", LOG_TIMEOUT);
    line.rsplit(": ").next().expect("ordered COFFEE from BARISTA: PATH").trim().to_owned()
}

/// A customer of `coffee` from b1 with `patience` seconds.
fn customer(server: &ZkServer, coffee: &str, patience: &str) -> TestCommand {
    server.cmd(Role::Customer).args(["--barista", "b1", "--coffee", coffee, "--patience", patience])
}

/// The customer credentials as another customer process holds them: the shared identity, and
/// one of its own.
fn another_customer(server: &ZkServer, creds: &Creds) -> Session {
    let config = SessionConfig {
        credentials: Some(Credentials::parse(&creds.customer_auth).expect("customer credentials")),
        identity: Some(Credentials::random("customer-intruder")),
        servers: server.connect_string().parse().expect("a connect string"),
        session_timeout: Duration::from_secs(4),
        connect_timeout: Duration::from_secs(10),
        tls: None,
    };
    Session::connect(config).expect("connect as a customer")
}

#[track_caller]
fn refused(result: zk_coffee::Result<bool>, what: &str) {
    assert!(matches!(result, Err(Error::NotAuthorized { .. })), "{what}: expected NotAuthorized, got {result:?}");
}

#[track_caller]
fn raw_refused(result: Result<impl std::fmt::Debug, ZkError>, what: &str) {
    match result {
        Err(ZkError::NoAuth) => {}
        other => panic!("{what}: expected NoAuth, got {other:?}"),
    }
}

#[test]
fn in_a_secured_shop_only_the_customer_who_placed_an_order_can_withdraw_it() {
    // The default tickTime: the barista stays frozen for seconds without losing its session.
    let server = ZkServer::start();
    let creds = Creds::new("own");
    creds.secure(server.cmd(Role::ShopInit)).run(EXIT_TIMEOUT).assert_code(exit::OK);
    let zk = server.connect_string();
    let admin = raw_as(zk, Some(&creds.admin_auth));
    let data = |path: &str| admin.get_data(path, false).map(|(d, _)| String::from_utf8_lossy(&d).into_owned());
    let addr = SocketAddr::from(([127, 0, 0, 1], closed_port()));
    let mgr = with_creds(server.cmd(Role::ShopManager), &creds.staff)
        .args(["--listen", &addr.to_string(), "--ensemble", "own"])
        .spawn();
    mgr.wait_for_stderr("following ", LOG_TIMEOUT);
    let barista =
        with_creds(server.cmd(Role::Barista), &creds.staff).args(["--name", "b1", "--brew-time", "1.5"]).spawn_on_shift();

    // Two customers queue while the barista is frozen.
    let frozen = Frozen::freeze(barista.pid());
    let patient = with_creds(customer(&server, "jacob", "60"), &creds.customer).spawn();
    let mine = order_of(&patient);
    let impatient = with_creds(customer(&server, "tesora", "1"), &creds.customer).spawn();
    let theirs = order_of(&impatient);

    // Another customer process can neither delete nor mark the patient one's order.
    let intruder = another_customer(&server, &creds);
    refused(intruder.delete(&mine, None), "another customer: delete the order");
    refused(intruder.set_if_exists(&mine, &order::withdrawal("jacob")), "another customer: withdraw the order");
    let raw = raw_as(zk, Some(&creds.customer_auth));
    raw_refused(raw.delete(&mine, None), "a raw customer client: delete the order");
    raw_refused(raw.set_data(&mine, order::withdrawal("jacob"), None), "a raw customer client: withdraw the order");
    raw_refused(raw.set_data(&mine, b"sogood".to_vec(), None), "a raw customer client: change the order");
    assert_eq!(data(&mine).as_deref(), Ok("jacob"), "the order is untouched");

    // Its owner still withdraws: the impatient one gives up, its order marked, not deleted.
    let out = impatient.wait_exit(EXIT_TIMEOUT);
    out.assert_code(exit::GAVE_UP);
    assert_eq!(Receipt::parse(out.single_stdout_line()).order, theirs);
    assert_eq!(data(&theirs).as_deref(), Ok("withdrawn: tesora"), "marked by its owner");
    let mark = barista.mark();
    frozen.thaw();
    // The barista removes it unmade and serves the other.
    barista.wait_log_since(mark, "the withdrawn order removed", LOG_TIMEOUT, |lines| {
        lines.iter().any(|l| l.contains(&format!("removed {theirs}: withdrawn by its customer"))).then_some(())
    });
    let out = patient.wait_exit(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    assert_eq!(Receipt::parse(out.single_stdout_line()).outcome, "served");
    assert!(admin.exists(&theirs, false).expect("exists").is_none(), "the withdrawn order is gone");

    // A mark that lands while its coffee brews: made, but neither served nor counted.
    let late = with_creds(customer(&server, "sogood", "0.7"), &creds.customer).run(EXIT_TIMEOUT);
    late.assert_code(exit::GAVE_UP);
    let late_order = Receipt::parse(late.single_stdout_line()).order;
    wait_until(LOG_TIMEOUT, "the order withdrawn while brewing to go", || {
        admin.exists(&late_order, false).expect("exists").is_none()
    });

    // The ledger counts the one served; the manager counts two withdrawn.
    assert_eq!(data("/zk-coffee/sales/b1").as_deref(), Ok("jacob=1\n"), "only the served order is counted");
    let labels = [("ensemble", "own"), ("shop", "/")];
    http::wait_metrics(addr, "two withdrawals and one order served", LOG_TIMEOUT, |m| {
        m.value("zk_coffee_orders_withdrawn_total", &labels) == Some(2.0)
            && m.value(
                "zk_coffee_orders_served_total",
                &[("ensemble", "own"), ("shop", "/"), ("barista", "b1"), ("coffee", "jacob")],
            ) == Some(1.0)
    });
    let out = barista.stop(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    let late_name = late_order.rsplit('/').next().unwrap_or_default();
    assert_eq!(out.count_stderr(&format!("{late_name} changed while I made it")), 1, "{out}");
    assert_eq!(out.count_stderr("not authorized"), 0, "{out}");
    intruder.close();
    mgr.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}

#[test]
fn in_an_open_shop_a_customer_still_withdraws_by_deleting_its_order() {
    let server = ZkServer::start();
    server.init_shop();
    let barista = server.cmd(Role::Barista).args(["--name", "b1", "--brew-time", "0.1"]).spawn_on_shift();
    let frozen = Frozen::freeze(barista.pid());
    let out = customer(&server, "jacob", "0.5").run(EXIT_TIMEOUT);
    out.assert_code(exit::GAVE_UP);
    let order = Receipt::parse(out.single_stdout_line()).order;
    assert!(!server.exists(&order), "the customer deleted its order itself (the barista is frozen)");
    // The original program's customer does the same, with no credentials at all.
    let raw = server.raw();
    let placed = raw
        .create(
            "/orders/b1/coffee",
            b"tesora".to_vec(),
            zookeeper::Acl::open_unsafe().clone(),
            zookeeper::CreateMode::PersistentSequential,
        )
        .expect("a raw order");
    raw.delete(&placed, None).expect("the original program's customer withdraws by deleting");
    frozen.thaw();
    let out = barista.stop(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    assert_eq!(out.count_stderr("served "), 0, "nothing was served: {out}");
}

#[test]
fn load_customers_in_a_secured_shop_withdraw_their_own_orders_too() {
    let server = ZkServer::start();
    let creds = Creds::new("own-load");
    creds.secure(server.cmd(Role::ShopInit)).run(EXIT_TIMEOUT).assert_code(exit::OK);
    let admin = raw_as(server.connect_string(), Some(&creds.admin_auth));
    let barista =
        with_creds(server.cmd(Role::Barista), &creds.staff).args(["--name", "b1", "--brew-time", "0.05"]).spawn_on_shift();
    let frozen = Frozen::freeze(barista.pid());
    let out = with_creds(server.cmd(Role::Customer), &creds.customer)
        .args(["--orders", "6", "--concurrency", "3", "--sessions", "2", "--patience", "0.5"])
        .run(EXIT_TIMEOUT);
    let summary = out.single_stdout_line().to_owned();
    assert!(summary.contains(" served=0 gave_up=6 ") && summary.contains(" failed=0 "), "{out}");
    let marked = admin.get_children("/orders/b1", false).expect("the bucket");
    assert_eq!(marked.len(), 6, "six orders, marked, wait for the frozen barista");
    for order in &marked {
        let (data, _) = admin.get_data(&format!("/orders/b1/{order}"), false).expect("an order");
        assert!(order::is_withdrawn(&data), "{order}: {}", String::from_utf8_lossy(&data));
        let acl = admin.get_acl(&format!("/orders/b1/{order}")).expect("its ACL").0;
        assert!(acl.iter().any(|a| a.id.starts_with("customer-") && a.perms == zookeeper::Permission::WRITE), "{acl:?}");
    }
    frozen.thaw();
    wait_until(LOG_TIMEOUT, "the barista to remove the six", || {
        admin.get_children("/orders/b1", false).is_ok_and(|c| c.is_empty())
    });
    assert_eq!(admin.get_data("/zk-coffee/sales/b1", false).expect("the ledger").0, b"", "nothing counted");
    barista.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}
