//! Failures a user can cause: each ends with its documented exit code and one stderr line that
//! names the problem, within a bounded time.

use std::time::Duration;

use zk_coffee_tests::*;

/// Usage errors are found before any connection is made: they must finish well within this.
const USAGE_BOUND: Duration = Duration::from_secs(5);

/// A connect string whose port nothing listens on, with a connect timeout much longer than
/// [`USAGE_BOUND`]: a role that tried to connect would overrun the bound.
fn nowhere() -> [String; 4] {
    ["--zk".into(), format!("127.0.0.1:{}", closed_port()), "--connect-timeout".into(), "30".into()]
}

#[test]
fn unreachable_server_exits_5_after_the_connect_timeout() {
    let port = closed_port();
    let zk = format!("127.0.0.1:{port}");
    let procs: Vec<Proc> = [
        TestCommand::new(Role::ShopInit).zk(&zk).args(["--connect-timeout", "2"]).spawn(),
        TestCommand::new(Role::Barista).zk(&zk).args(["--connect-timeout", "2"]).spawn(),
        TestCommand::new(Role::Customer).zk(&zk).args(["--connect-timeout", "2"]).spawn(),
    ]
    .into();
    for p in procs {
        let out = p.wait_exit(EXIT_TIMEOUT);
        out.assert_code(exit::UNREACHABLE).assert_within(Duration::from_secs(10));
        out.error_line(&["cannot reach ZooKeeper", &zk]);
        out.assert_failure_line();
    }
}

#[test]
fn uninitialised_shop_exits_6_and_says_to_run_shop_init() {
    let server = ZkServer::start();
    for role in [Role::Customer, Role::Barista] {
        let out = server.cmd(role).run(EXIT_TIMEOUT);
        out.assert_code(exit::NOT_INITIALISED);
        out.error_line(&["not initialised", "/barista_group", "shop-init"]);
        out.assert_failure_line();
    }
    assert_eq!(server.tree("/"), Vec::<String>::new(), "nothing was created");
}

#[test]
fn a_coffee_name_that_cannot_be_exits_2_without_zookeeper() {
    for bad in ["", "caffè", "a b", "x=y"] {
        let out = TestCommand::new(Role::Customer).args(nowhere()).args(["--coffee", bad]).run(EXIT_TIMEOUT);
        out.assert_code(exit::USAGE).assert_within(USAGE_BOUND);
        out.error_line(&["invalid coffee name", &format!("{bad:?}")]);
        out.assert_failure_line();
    }
}

#[test]
fn a_coffee_not_on_the_shops_menu_exits_2_listing_the_menu() {
    let server = ZkServer::start();
    server.init_shop();
    let out = server.cmd(Role::Customer).args(["--coffee", "latte"]).run(EXIT_TIMEOUT);
    out.assert_code(exit::USAGE);
    out.error_line(&["\"latte\"", "not on this shop's menu", "tesora, swisswater, jacob, sogood"]);
    out.assert_failure_line();
    assert_eq!(server.tree("/orders"), Vec::<String>::new(), "no order was placed");
}

#[test]
fn invalid_barista_names_exit_2() {
    for name in ["a/b", "", "..", "zookeeper", "a b"] {
        let out = TestCommand::new(Role::Barista).args(nowhere()).args(["--name", name]).run(EXIT_TIMEOUT);
        out.assert_code(exit::USAGE).assert_within(USAGE_BOUND);
        out.error_line(&["--name", "invalid barista name", &format!("{name:?}")]);
        let out = TestCommand::new(Role::Customer).args(nowhere()).args(["--barista", name]).run(EXIT_TIMEOUT);
        out.assert_code(exit::USAGE).assert_within(USAGE_BOUND);
        out.error_line(&["--barista", "invalid barista name"]);
    }
}

#[test]
fn no_barista_exits_4() {
    let server = ZkServer::start();
    server.init_shop();
    // A customer waits up to its patience for a barista to come on shift.
    let out = server.cmd(Role::Customer).args(["--patience", "0.5"]).run(EXIT_TIMEOUT);
    out.assert_code(exit::NO_BARISTA).assert_within(Duration::from_secs(10));
    out.error_line(&["no barista available", "/barista_group"]);
    out.assert_failure_line();

    // A barista on shift, but not the one asked for.
    let barista = server.cmd(Role::Barista).args(["--name", "present"]).spawn();
    barista.wait_for_stderr("is on shift", LOG_TIMEOUT);
    let out = server.cmd(Role::Customer).args(["--barista", "absent", "--patience", "0.5"]).run(EXIT_TIMEOUT);
    out.assert_code(exit::NO_BARISTA).assert_within(Duration::from_secs(10));
    out.error_line(&["no barista available", "absent"]);
    out.assert_failure_line();
    assert_eq!(server.children("/orders/present"), Some(vec![]), "no order was placed");
    assert_eq!(server.children("/orders"), Some(vec!["present".to_owned()]));
}

#[test]
fn malformed_connect_strings_exit_2() {
    for zk in ["", "h:port", "h:0", "h:70000", "a:1,,b:2", "h:1/x/", "h:1//x", ":2181"] {
        for role in [Role::ShopInit, Role::Barista, Role::Customer] {
            let out = TestCommand::new(role).zk(zk).run(EXIT_TIMEOUT);
            out.assert_code(exit::USAGE).assert_within(USAGE_BOUND);
            out.error_line(&["--zk", "invalid ZooKeeper connect string"]);
        }
    }
}

#[test]
fn bad_durations_exit_2() {
    let cases: &[(Role, &str, &str)] = &[
        (Role::Barista, "--brew-time", "abc"),
        (Role::Barista, "--brew-time=-1", "-1"),
        (Role::Barista, "--brew-time", "1h"),
        (Role::Barista, "--leave-after-idle", "0"),
        (Role::Customer, "--patience", "0"),
        (Role::Customer, "--patience", "soon"),
        (Role::Customer, "--connect-timeout", "0"),
        (Role::ShopInit, "--connect-timeout=-2", "-2"),
        (Role::ShopInit, "--session-timeout", "50ms"),
        (Role::Customer, "--session-timeout", "2h"),
    ];
    for (role, flag, value) in cases {
        // `--flag=-1` keeps clap from reading a negative number as a flag.
        let args: Vec<&str> = if flag.contains('=') { vec![flag] } else { vec![flag, value] };
        let mut cmd = TestCommand::new(*role);
        if flag.starts_with("--connect-timeout") {
            cmd = cmd.zk(format!("127.0.0.1:{}", closed_port()));
        } else {
            cmd = cmd.args(nowhere());
        }
        let out = cmd.args(args).run(EXIT_TIMEOUT);
        out.assert_code(exit::USAGE).assert_within(USAGE_BOUND);
        let flag = flag.split('=').next().unwrap_or_default();
        out.error_line(&[flag, value]);
    }
}

#[test]
fn shop_init_is_idempotent() {
    let server = ZkServer::start();
    let first = server.init_shop();
    let created = shop_init_report(&first, "created");
    let second = server.init_shop();
    assert_eq!(shop_init_report(&second, "found"), created, "the second run finds what the first created");
    assert_eq!(second.stdout.len(), created.len(), "{second}");
    let mut tree = server.tree("/");
    tree.sort();
    let mut expected = created.clone();
    expected.sort();
    assert_eq!(tree, expected, "shop-init reports every node it made, and made nothing else");
    for root in ["/barista_group", "/orders"] {
        assert_eq!(server.node(root).expect(root).data, b"0");
    }
}

#[test]
fn impatient_customer_withdraws_its_order_and_is_not_served() {
    let server = ZkServer::start();
    server.init_shop();
    let barista = server.cmd(Role::Barista).args(["--name", "slowpoke", "--brew-time", "1.5"]).spawn();
    barista.wait_for_stderr("is on shift", LOG_TIMEOUT);

    let out = server.cmd(Role::Customer).args(["--coffee", "jacob", "--patience", "0.2"]).run(EXIT_TIMEOUT);
    out.assert_code(exit::GAVE_UP);
    let r = Receipt::parse(out.single_stdout_line());
    assert_eq!((r.outcome.as_str(), r.barista.as_str(), r.coffee.as_str()), ("gave-up", "slowpoke", "jacob"));
    assert!(!server.exists(&r.order), "the withdrawn order is gone");

    // The barista had started it, notices it was withdrawn, and does not claim to serve it.
    barista.wait_for_stderr(&format!("making jacob for {}", r.order_name()), LOG_TIMEOUT);
    barista.wait_for_stderr(&format!("{} was withdrawn", r.order_name()), LOG_TIMEOUT);
    assert_eq!(server.children("/orders/slowpoke"), Some(vec![]));
    let out = barista.stop(EXIT_TIMEOUT);
    assert_eq!(served_orders(&out.stderr), Vec::<String>::new(), "a withdrawn order was served\n{out}");
}
