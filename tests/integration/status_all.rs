//! `shop-status --all`: every shop of one server in one view, the root shop and the named ones
//! with baristas, waiting orders and sales, a half-initialised shop and one whose nodes deny
//! reading shown with their errors, and the totals across shops, as JSON (read into the
//! library's own model) and as text.

use std::time::Duration;

use zk_coffee::status::AllShops;
use zk_coffee_tests::*;
use zookeeper::{Acl, CreateMode, Permission};

/// A barista that takes an order and holds it for the whole test.
const FOREVER: &str = "600";

/// Serves `coffee` from `barista` in `shop` (`None`: the root shop) and waits for it.
fn serve(server: &ZkServer, shop: Option<&str>, barista: &str, coffee: &str) {
    let mut cmd = server.cmd(Role::Customer).args(["--barista", barista, "--coffee", coffee, "--patience", "30"]);
    if let Some(shop) = shop {
        cmd = cmd.args(["--shop", shop]);
    }
    let out = cmd.run(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    assert_eq!(Receipt::parse(out.single_stdout_line()).barista, barista);
}

/// Starts a customer that orders from `barista` and waits, patient for the whole test.
fn waiting(server: &ZkServer, shop: Option<&str>, barista: &str) -> Proc {
    let mut cmd = server.cmd(Role::Customer).args(["--barista", barista, "--coffee", "jacob", "--patience", FOREVER]);
    if let Some(shop) = shop {
        cmd = cmd.args(["--shop", shop]);
    }
    cmd.spawn()
}

fn barista(server: &ZkServer, shop: Option<&str>, name: &str, brew: &str) -> Proc {
    let mut cmd = server.cmd(Role::Barista).args(["--name", name, "--brew-time", brew]);
    if let Some(shop) = shop {
        cmd = cmd.args(["--shop", shop]);
    }
    cmd.spawn_on_shift()
}

#[test]
fn every_shop_at_once_with_totals_and_the_unreadable_ones_shown() {
    let server = ZkServer::start();
    server.init_shop();
    for shop in ["a", "b"] {
        server.cmd(Role::ShopInit).args(["--shop", shop]).run(EXIT_TIMEOUT).assert_code(exit::OK);
    }
    // The root shop: 2 jacob sold by r1, 2 orders waiting at r2.
    let _r1 = barista(&server, None, "r1", "0.05");
    let _r2 = barista(&server, None, "r2", FOREVER);
    serve(&server, None, "r1", "jacob");
    serve(&server, None, "r1", "jacob");
    let _w = [waiting(&server, None, "r2"), waiting(&server, None, "r2")];
    // Shop a: 3 tesora sold, nothing waiting.
    let _a1 = barista(&server, Some("a"), "a1", "0.05");
    for _ in 0..3 {
        serve(&server, Some("a"), "a1", "tesora");
    }
    // Shop b: 1 jacob sold by b2, 1 order waiting at b1.
    let _b1 = barista(&server, Some("b"), "b1", FOREVER);
    let _b2 = barista(&server, Some("b"), "b2", "0.05");
    serve(&server, Some("b"), "b2", "jacob");
    let _wb = waiting(&server, Some("b"), "b1");
    wait_until(LOG_TIMEOUT, "the three waiting orders", || {
        server.children("/orders/r2").map(|c| c.len()) == Some(2)
            && server.children("/shops/b/orders/b1").map(|c| c.len()) == Some(1)
    });
    // Shop half: only /orders (a shop-init that never finished); shop locked: initialised by
    // hand, with an ACL node nobody may read.
    let raw = server.raw();
    let open = Acl::open_unsafe().clone();
    for path in ["/shops/half", "/shops/half/orders", "/shops/locked", "/shops/locked/barista_group", "/shops/locked/orders"] {
        raw.create(path, b"0".to_vec(), open.clone(), CreateMode::Persistent).expect(path);
    }
    raw.create("/shops/locked/zk-coffee", vec![], open.clone(), CreateMode::Persistent).expect("zk-coffee");
    let unreadable = vec![Acl { perms: Permission::WRITE, scheme: "world".into(), id: "anyone".into() }];
    raw.create("/shops/locked/zk-coffee/acl", b"x".to_vec(), unreadable, CreateMode::Persistent).expect("acl");

    let out = server.cmd(Role::ShopStatus).args(["--all", "--json"]).run(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    let all: AllShops = serde_json::from_str(out.single_stdout_line()).unwrap_or_else(|e| panic!("{e}\n{out}"));
    let names: Vec<&str> = all.shops.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["/", "a", "b", "half", "locked"]);
    let status = |name: &str| {
        let shop = all.shops.iter().find(|s| s.name == name).expect(name);
        shop.status.as_ref().unwrap_or_else(|| panic!("shop {name}: {:?}", shop.error))
    };
    let on_shift = |name: &str| status(name).on_shift.iter().map(|b| b.name.clone()).collect::<Vec<_>>();
    assert_eq!(
        (on_shift("/"), on_shift("a"), on_shift("b")),
        (vec!["r1".into(), "r2".into()], vec!["a1".into()], vec!["b1".into(), "b2".into()])
    );
    assert_eq!(status("/").sales.total, 2);
    let error = |name: &str| all.shops.iter().find(|s| s.name == name).and_then(|s| s.error.clone()).unwrap_or_default();
    assert!(
        error("half").contains("not initialised") && error("half").contains("/shops/half/barista_group"),
        "{}",
        error("half")
    );
    assert!(error("locked").contains("not authorized"), "{}", error("locked"));
    let t = &all.totals;
    assert_eq!((t.shops, t.unreadable, t.on_shift, t.waiting, t.sold), (5, 2, 5, 3, 6), "{t:?}");
    assert_eq!(t.sold_per_coffee, [("jacob".to_owned(), 3), ("tesora".to_owned(), 3)].into());

    let out = server.cmd(Role::ShopStatus).arg("--all").run(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    let text = out.stdout.join("\n");
    for heading in ["== shop /", "== shop a", "== shop b", "== shop half", "== shop locked"] {
        assert_eq!(out.stdout.iter().filter(|l| *l == heading).count(), 1, "{heading}\n{text}");
    }
    assert!(text.contains("== shop half\n  error: the shop is not initialised"), "{text}");
    assert!(
        text.ends_with("== all 5 shops (2 unreadable)\n  on shift: 5\n  waiting: 3\n  sold: 6\n  per coffee: jacob 3, tesora 3"),
        "{text}"
    );
}

#[test]
fn all_with_a_shop_is_a_usage_error() {
    // Refused before anything is sent: no server needed.
    let out = TestCommand::new(Role::ShopStatus).args(["--all", "--shop", "a"]).run(Duration::from_secs(10));
    out.assert_code(exit::USAGE);
    out.error_line(&["--all", "--shop"]);
    assert!(out.stdout.is_empty(), "{out}");
    let out = TestCommand::new(Role::ShopStatus).args(["--all", "--on-shift"]).run(Duration::from_secs(10));
    out.assert_code(exit::USAGE);
    out.error_line(&["--all", "--on-shift"]);
}

#[test]
fn all_on_an_empty_server_shows_no_shop() {
    let server = ZkServer::start();
    let out = server.cmd(Role::ShopStatus).args(["--all", "--json"]).run(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    let all: AllShops = serde_json::from_str(out.single_stdout_line()).unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert_eq!(all.shops, []);
    assert_eq!(all.totals.shops, 0);
}
