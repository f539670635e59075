//! A shop under a chroot: every node lives below it, and nothing at the server's root.

use zk_coffee_tests::*;

#[test]
fn a_shop_under_a_chroot_serves_and_keeps_its_nodes_there() {
    let server = ZkServer::start();
    let zk = server.connect_string_with_chroot("/shop2");
    // Before shop-init the chroot does not even exist: the roles say to run shop-init.
    for role in [Role::Barista, Role::Customer] {
        let out = TestCommand::new(role).zk(&zk).args(["--connect-timeout", "5"]).run(EXIT_TIMEOUT);
        out.assert_code(exit::NOT_INITIALISED).assert_failure_line();
        out.error_line(&["not initialised", "shop-init"]);
    }
    assert!(!server.exists("/shop2"), "only shop-init creates the chroot");

    let init = TestCommand::new(Role::ShopInit).zk(&zk).run(EXIT_TIMEOUT);
    init.assert_code(exit::OK);
    let shop_nodes = shop_init_report(&init, "created");

    let mut barista = TestCommand::new(Role::Barista).zk(&zk).args(["--name", "cb", "--brew-time", "0.1"]).spawn();
    barista.wait_for_stderr("is on shift", LOG_TIMEOUT);
    let out = TestCommand::new(Role::Customer).zk(&zk).args(["--coffee", "tesora"]).run(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    let r = Receipt::parse(out.single_stdout_line());
    assert_eq!((r.outcome.as_str(), r.barista.as_str()), ("served", "cb"));
    assert!(r.order.starts_with("/orders/cb/coffee"), "paths are reported inside the chroot: {r:?}");

    // Seen without the chroot, everything is below /shop2.
    let under_shop2 = |extra: &[&str]| {
        let mut paths: Vec<String> = vec!["/shop2".to_owned()];
        paths.extend(shop_nodes.iter().map(|p| format!("/shop2{p}")));
        paths.extend(extra.iter().map(|p| p.to_string()));
        paths.sort();
        paths
    };
    assert_eq!(
        server.tree_off_rota("/"),
        under_shop2(&["/shop2/barista_group/cb", "/shop2/orders/cb", "/shop2/zk-coffee/sales/cb"])
    );
    let places = server.children("/shop2/zk-coffee/rota").expect("the rota");
    assert!(places.len() == 1 && places[0].starts_with("cb-"), "one place on the rota, cb's: {places:?}");
    assert!(server.node("/shop2/barista_group/cb").expect("member").ephemeral);
    assert_eq!(server.node("/shop2/orders").expect("orders").data, b"0");

    barista.signal("TERM");
    barista.wait_exit(EXIT_TIMEOUT).assert_code(exit::OK);
    assert_eq!(server.tree("/"), under_shop2(&["/shop2/zk-coffee/sales/cb"]), "only the sales ledger stays");
}
