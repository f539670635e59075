//! A customer whose order `create` is cut off by connection loss (the request reaches
//! ZooKeeper, the reply never comes back) must neither place the order twice nor leave a ghost:
//! it finds its order again by the tag in the order's ACL and waits for it as usual.

use std::time::Duration;

use zk_coffee_tests::proxy::Proxy;
use zk_coffee_tests::*;

#[test]
fn an_order_whose_create_reply_is_lost_is_placed_exactly_once() {
    let server = ZkServer::builder().tick_ms(200).start();
    server.init_shop();
    // A slow barista: the order is still queued when the customer looks for it again.
    let barista = server.cmd(Role::Barista).args(["--name", "slow", "--brew-time", "4"]).spawn();
    barista.wait_for_stderr("is on shift", LOG_TIMEOUT);

    let proxy = Proxy::start(server.port());
    proxy.swallow_after(b"/orders/slow/coffee");
    let customer = TestCommand::new(Role::Customer)
        .zk(format!("127.0.0.1:{}", proxy.port()))
        .args(["--session-timeout", "2", "--patience", "30", "--coffee", "jacob"])
        .spawn();
    let out = customer.wait_exit(Duration::from_secs(40));
    assert_eq!(proxy.swallowed(), 1, "the create's reply was not cut off:\n{out}");
    out.assert_code(exit::OK);
    let receipt = Receipt::parse(out.single_stdout_line());
    assert_eq!(receipt.order, "/orders/slow/coffee0000000000", "{out}");
    assert!(
        out.stderr.iter().any(|l| l.contains("found my order /orders/slow/coffee0000000000 after a connection loss")),
        "the customer did not look for its order:\n{out}"
    );

    // Exactly one order was ever created in the bucket: the next one gets sequence 1.
    let zk = server.raw();
    let next = zk
        .create(
            "/orders/slow/coffee",
            b"tesora".to_vec(),
            zookeeper::Acl::open_unsafe().clone(),
            zookeeper::CreateMode::PersistentSequential,
        )
        .expect("place a probe order");
    assert_eq!(next, "/orders/slow/coffee0000000001", "a second order was created by the customer");
    // Served once; the probe may be served too, while the barista drains its queue.
    barista.wait_for_stderr("served jacob (coffee0000000000)", LOG_TIMEOUT);
    let out = barista.stop(EXIT_TIMEOUT);
    let served = served_orders(&out.stderr);
    assert!(served == ["coffee0000000000"] || served == ["coffee0000000000", "coffee0000000001"], "{out}");
}
