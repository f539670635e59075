//! The layout version (issue 17): `shop-init` marks the tree, and this build's roles refuse a
//! tree marked with a newer layout (or an unreadable mark) with one line and exit 12, at their
//! start and, for the barista and the manager, after a new session.

use std::time::Duration;

use zk_coffee_tests::fault::{self, Frozen, TICK_MS};
use zk_coffee_tests::*;
use zookeeper::{Acl, CreateMode};

const VERSION: &str = "/zk-coffee/version";

/// Marks the shop's tree with `data` as its layout version.
fn mark(server: &ZkServer, data: &str) {
    let raw = server.raw();
    match raw.exists(VERSION, false).expect("exists") {
        Some(_) => raw.set_data(VERSION, data.as_bytes().to_vec(), None).map(|_| ()),
        None => raw.create(VERSION, data.as_bytes().to_vec(), Acl::open_unsafe().clone(), CreateMode::Persistent).map(|_| ()),
    }
    .expect("mark the layout version");
}

fn version(server: &ZkServer) -> String {
    String::from_utf8(server.node(VERSION).expect("the version node").data).expect("utf-8")
}

#[test]
fn shop_init_marks_the_layout_and_a_newer_mark_turns_every_role_away() {
    let server = ZkServer::start();
    server.init_shop();
    assert_eq!(version(&server), "1");
    // Idempotent: a second shop-init finds the mark and keeps it.
    server.init_shop();
    assert_eq!(version(&server), "1");

    mark(&server, "2");
    let roles = [Role::Barista, Role::Customer, Role::ShopStatus, Role::ShopManager, Role::ShopInit];
    for role in roles {
        let out = server.cmd(role).run(EXIT_TIMEOUT);
        out.assert_code(exit::LAYOUT);
        out.error_line(&["layout version 2", VERSION, "newer than this build's 1", "upgrade"]);
        out.assert_failure_line();
    }
    // Nobody wrote into the newer tree: no barista came on shift, no order was placed, and
    // shop-init left the mark as it was.
    assert_eq!(server.children("/barista_group"), Some(vec![]));
    assert_eq!(server.children("/orders"), Some(vec![]));
    assert_eq!(version(&server), "2");
}

#[test]
fn an_unreadable_mark_is_named() {
    let server = ZkServer::start();
    server.init_shop();
    mark(&server, "two");
    for role in [Role::Barista, Role::ShopManager] {
        let out = server.cmd(role).run(EXIT_TIMEOUT);
        out.assert_code(exit::LAYOUT);
        out.error_line(&[VERSION, "layout version (a number)", "\"two\""]);
    }
}

#[test]
fn an_older_tree_without_a_mark_is_layout_1() {
    // The original program's tree, or one set up before the mark existed.
    let server = ZkServer::start();
    let raw = server.raw();
    for path in ["/barista_group", "/orders"] {
        raw.create(path, b"0".to_vec(), Acl::open_unsafe().clone(), CreateMode::Persistent).expect("create");
    }
    let barista = server.cmd(Role::Barista).args(["--name", "ana", "--brew-time", "0"]).spawn_on_shift();
    let out = server.cmd(Role::Customer).args(["--barista", "ana"]).run(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    barista.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    // A barista does not mark a tree: only shop-init does.
    assert!(!server.exists(VERSION));
}

#[test]
fn a_barista_and_a_manager_that_come_back_to_a_newer_layout_leave() {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let zk = server.connect_string();
    let barista = fault::barista(zk, "ana", "0").spawn_on_shift();
    let manager = fault::role(zk, Role::ShopManager).spawn();
    manager.wait_for_stderr("following 1 shops", LOG_TIMEOUT);

    // Both cut off past their session timeout while a newer shop-init marks the tree.
    let frozen = [Frozen::freeze(barista.pid()), Frozen::freeze(manager.pid())];
    // Both sessions gone (frozen one after the other, they expire apart): the raw client's
    // is the only one left.
    let _raw = server.raw();
    wait_until(Duration::from_secs(15), "both sessions to expire", || server.mntr()["zk_global_sessions"] == "1");
    mark(&server, "2");
    drop(frozen);

    for proc in [barista, manager] {
        let out = proc.wait_exit(EXIT_TIMEOUT);
        out.assert_code(exit::LAYOUT);
        out.error_line(&["layout version 2", "upgrade"]);
    }
    // The barista did not register again in the newer tree.
    assert_eq!(server.children("/barista_group"), Some(vec![]));
}
