//! Wire compatibility with the original program: a raw client speaking the znode protocol
//! directly (with the `zookeeper` crate, as the original did) can be a customer of our barista,
//! or a barista for our customer.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use zookeeper::{Acl, CreateMode, WatchedEvent, WatchedEventType, ZooKeeper};

use zk_coffee_tests::*;

#[test]
fn a_raw_customer_is_served_by_our_barista() {
    let server = ZkServer::start();
    server.init_shop();
    let barista = server.cmd(Role::Barista).args(["--name", "ours", "--brew-time", "0.2"]).spawn();
    barista.wait_for_stderr("is on shift", LOG_TIMEOUT);

    // The original customer: list the group, order into the barista's bucket, watch the order.
    let zk = server.raw();
    let group = zk.get_children("/barista_group", false).expect("list the group");
    assert_eq!(group, ["ours"]);
    let order = zk
        .create("/orders/ours/coffee", b"jacob".to_vec(), Acl::open_unsafe().clone(), CreateMode::PersistentSequential)
        .expect("place the order");
    let name = order.strip_prefix("/orders/ours/").expect("in the bucket").to_owned();
    assert!(order_sequence(&name).is_some(), "{order}");
    let (tx, rx) = mpsc::channel();
    let stat = zk
        .exists_w(&order, move |e: WatchedEvent| {
            let _ = tx.send(e);
        })
        .expect("watch the order");
    assert!(stat.is_some(), "the order is not served before the brew time has passed");

    let event = rx.recv_timeout(LOG_TIMEOUT).expect("the watch fires when the order is served");
    assert_eq!(event.event_type, WatchedEventType::NodeDeleted, "{event:?}");
    assert_eq!(event.path.as_deref(), Some(order.as_str()));
    assert!(zk.exists(&order, false).expect("exists").is_none());
    let events = barista.wait_log("jacob served", LOG_TIMEOUT, |log| {
        let events = barista_events(log);
        events.iter().any(|e| e.kind == Brew::Served).then_some(events)
    });
    let made_then_served: Vec<(Brew, &str, &str)> =
        events.iter().map(|e| (e.kind, e.coffee.as_str(), e.order.as_str())).collect();
    assert_eq!(made_then_served, [(Brew::Making, "jacob", name.as_str()), (Brew::Served, "jacob", name.as_str())]);
}

/// The original barista's loop, for one order: returns the coffee it served.
fn raw_barista_serves_one(zk: &ZooKeeper, bucket: &str, deadline: Instant) -> (String, String) {
    loop {
        let (tx, rx) = mpsc::channel();
        let mut children = zk
            .get_children_w(bucket, move |_: WatchedEvent| {
                let _ = tx.send(());
            })
            .expect("list the bucket");
        children.sort();
        if let Some(order) = children.first() {
            let path = format!("{bucket}/{order}");
            let (data, _) = zk.get_data(&path, false).expect("read the order");
            zk.delete(&path, None).expect("serve the order");
            return (order.clone(), String::from_utf8(data).expect("UTF-8 coffee"));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        rx.recv_timeout(left).expect("an order arrives before the deadline");
    }
}

#[test]
fn our_customer_is_served_by_a_raw_barista() {
    let server = ZkServer::start();
    server.init_shop();
    let zk = server.raw();
    // The original barista: ephemeral member (its data is not ours), persistent bucket.
    zk.create("/orders/rawb", Vec::new(), Acl::open_unsafe().clone(), CreateMode::Persistent).expect("bucket");
    zk.create("/barista_group/rawb", b"whatever".to_vec(), Acl::open_unsafe().clone(), CreateMode::Ephemeral).expect("member");

    let customer = server.cmd(Role::Customer).args(["--coffee", "sogood"]).spawn();
    let (order, coffee) = raw_barista_serves_one(&zk, "/orders/rawb", Instant::now() + Duration::from_secs(20));
    assert_eq!(coffee, "sogood", "the order's data is the coffee's name");

    let out = customer.wait_exit(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    let r = Receipt::parse(out.single_stdout_line());
    assert_eq!(r.outcome, "served");
    assert_eq!(r.barista, "rawb");
    assert_eq!(r.coffee, "sogood");
    assert_eq!(r.order, format!("/orders/rawb/{order}"));
    assert_eq!(server.tree("/orders"), ["/orders/rawb"], "nothing left behind");
}
