//! TLS between every role and ZooKeeper (issue 16): the whole shop over a TLS-only server
//! (`zk.sh start --tls`: a secureClientPort, no clientPort), a server restart and a session
//! expiry under TLS, and each way TLS can fail (a plaintext client at a TLS port and the other
//! way round, a wrong CA, an expired server or client certificate, a missing client
//! certificate, a garbled PEM file) ending in one line naming it and its exit code, within the
//! connect timeout.

use std::time::{Duration, Instant};

use zk_coffee::status::ShopStatus;
use zk_coffee_tests::fault::*;
use zk_coffee_tests::http;
use zk_coffee_tests::*;

/// A failed TLS connect gives up within its connect timeout (the explanation is part of it)
/// plus this for the process to start and exit.
const SLACK: Duration = Duration::from_secs(2);

/// The connect timeout the failure tests give (seconds).
const CONNECT_TIMEOUT: &str = "3";

/// The bound for one failed connect.
fn failure_bound() -> Duration {
    Duration::from_secs(CONNECT_TIMEOUT.parse().expect("seconds")) + SLACK
}

/// `role` at `zk` with the failure tests' connect timeout and no TLS flags.
fn bare(role: Role, zk: &str) -> TestCommand {
    TestCommand::new(role).zk(zk).args(["--connect-timeout", CONNECT_TIMEOUT])
}

/// A free loopback address for the manager's --listen.
fn free_address() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port")
}

/// shop-status --json of `server`'s root shop.
fn shop_status(server: &ZkServer) -> ShopStatus {
    let out = server.cmd(Role::ShopStatus).arg("--json").run(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    serde_json::from_str(&out.stdout.join("\n")).expect("shop-status --json")
}

#[test]
fn the_whole_shop_runs_over_tls_and_the_manager_reads_mntr_over_it() {
    let server = ZkServer::builder().tls().start();
    let cfg = std::fs::read_to_string(server.dir().join("zoo.cfg")).expect("zoo.cfg");
    assert!(cfg.lines().any(|l| l.starts_with("secureClientPort=")), "{cfg}");
    assert!(!cfg.lines().any(|l| l.starts_with("clientPort=")), "a TLS-only server: {cfg}");
    let zk = server.connect_string();
    server.init_shop();

    let addr = free_address();
    let mgr = server.cmd(Role::ShopManager).args(["--listen", &addr.to_string(), "--zookeeper-interval", "0.5"]).spawn();
    mgr.wait_for_stderr("following ", LOG_TIMEOUT);
    let baristas: Vec<Proc> = ["b1", "b2"]
        .iter()
        .map(|name| server.cmd(Role::Barista).args(["--name", name, "--brew-time", "0.05"]).spawn_on_shift())
        .collect();
    for coffee in &MENU[..2] {
        let out = server.cmd(Role::Customer).args(["--coffee", coffee, "--patience", "20"]).run(EXIT_TIMEOUT);
        out.assert_code(exit::OK);
        assert!(out.single_stdout_line().starts_with("served "), "{out}");
    }
    const ORDERS: u64 = 20;
    let load = server
        .cmd(Role::Customer)
        .args(["--orders", &ORDERS.to_string(), "--concurrency", "4", "--patience", "30"])
        .run(Duration::from_secs(60));
    load.assert_code(exit::OK);
    let summary = load.stdout.last().cloned().unwrap_or_default();
    assert!(summary.contains(&format!(" visits={ORDERS} ")) && summary.contains(&format!(" served={ORDERS} ")), "{load}");

    // shop-status over TLS sees every sale; the manager's API (its session over TLS too) says
    // the same, and its mntr poller reads the server over TLS: up, standalone.
    let sold = ORDERS + 2;
    wait_until(LOG_TIMEOUT, "shop-status to count every sale", || {
        shop_status(&server).sales.per_barista.values().flat_map(|c| c.values()).sum::<u64>() == sold
    });
    let status = shop_status(&server);
    wait_until(LOG_TIMEOUT, "the manager's API to show what shop-status shows", || {
        let answer = http::get(addr, "/api/shops/%2F");
        answer.status == 200 && serde_json::from_str::<ShopStatus>(&answer.body).ok() == Some(status.clone())
    });
    let metrics = http::wait_metrics(addr, "the manager to read mntr over TLS", LOG_TIMEOUT, |m| {
        let of = [("ensemble", zk), ("server", zk)];
        m.value("zk_coffee_zookeeper_up", &of) == Some(1.0)
            && m.value("zk_coffee_zookeeper_mode", &[of[0], of[1], ("mode", "standalone")]) == Some(1.0)
            && m.value("zk_coffee_zookeeper_znodes", &of).is_some_and(|n| n > 0.0)
    });
    assert!(metrics.text.contains("zk_coffee_zookeeper_up"), "{}", metrics.text);
    let alive = server.mntr().get("zk_num_alive_connections").and_then(|n| n.parse::<u32>().ok()).unwrap_or(0);
    assert!(alive >= 3, "the manager, two baristas (and the harness) over TLS: {alive}");

    for b in baristas {
        b.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    }
    mgr.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    assert_eq!(server.children("/barista_group"), Some(vec![]), "both baristas left");
}

#[test]
fn a_plaintext_client_at_a_tls_port_and_a_tls_client_at_a_plaintext_port_are_told_so() {
    let tls = ZkServer::builder().tls().start();
    let plain = ZkServer::start();
    let ca = tls.tls().expect("TLS files").ca.clone();
    // Plaintext to the TLS-only port: every role, one line suggesting --tls-ca, exit 15, within
    // the connect timeout (the client alone would retry until it). All at once: each waits
    // its connect timeout.
    let roles = [Role::ShopInit, Role::Barista, Role::Customer, Role::ShopStatus, Role::ShopManager];
    let refused: Vec<Proc> = roles.iter().map(|role| bare(*role, tls.connect_string()).spawn()).collect();
    // TLS to the plaintext port, from the flag and from the environment.
    let to_plain = [
        bare(Role::ShopInit, plain.connect_string()).arg("--tls-ca").arg(&ca).spawn(),
        bare(Role::Barista, plain.connect_string()).env("ZK_TLS_CA", &ca).spawn(),
    ];
    // Nothing listening is still "unreachable", with or without TLS.
    let nowhere = format!("127.0.0.1:{}", closed_port());
    let unreachable = [bare(Role::ShopInit, &nowhere).spawn(), bare(Role::ShopInit, &nowhere).arg("--tls-ca").arg(&ca).spawn()];
    for p in refused {
        let out = p.wait_exit(EXIT_TIMEOUT);
        out.assert_code(exit::TLS).assert_within(failure_bound());
        out.error_line(&["TLS", tls.connect_string(), "speaks TLS only", "--tls-ca"]);
        out.assert_failure_line();
        eprintln!("{}: refused in {:?}", out.label, out.elapsed);
    }
    for p in to_plain {
        let out = p.wait_exit(EXIT_TIMEOUT);
        out.assert_code(exit::TLS).assert_within(failure_bound());
        out.error_line(&["TLS", plain.connect_string(), "plaintext port"]);
    }
    for p in unreachable {
        let out = p.wait_exit(EXIT_TIMEOUT);
        out.assert_code(exit::UNREACHABLE).assert_within(failure_bound());
        out.error_line(&["cannot reach ZooKeeper"]);
    }
}

#[test]
fn a_wrong_ca_an_expired_server_certificate_and_bad_pem_files_are_named() {
    let server = ZkServer::builder().tls().start();
    let expired = ZkServer::builder().tls_expired().start();
    let (ca, expired_ca) = (server.tls().expect("TLS").ca.clone(), expired.tls().expect("TLS").ca.clone());
    assert_ne!(std::fs::read(&ca).ok(), std::fs::read(&expired_ca).ok(), "two CAs");

    // Both at once: each waits its connect timeout.
    let wrong_ca = bare(Role::Barista, server.connect_string()).arg("--tls-ca").arg(&expired_ca).spawn();
    let stale = bare(Role::Customer, expired.connect_string()).arg("--tls-ca").arg(&expired_ca).spawn();
    let out = wrong_ca.wait_exit(EXIT_TIMEOUT);
    out.assert_code(exit::TLS).assert_within(failure_bound());
    out.error_line(&["not signed by the CA in", &expired_ca.display().to_string(), "wrong CA"]);

    let out = stale.wait_exit(EXIT_TIMEOUT);
    out.assert_code(exit::TLS).assert_within(failure_bound());
    out.error_line(&["the server's certificate has expired"]);
    out.assert_failure_line();

    // Files that are not what they should be: usage errors, before any connection.
    let dir = Dir::new("tls-files");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    // Readable by others, which a key file must not be.
    std::fs::set_permissions(&garbage, std::os::unix::fs::PermissionsExt::from_mode(0o644)).expect("chmod");
    let missing = dir.path().join("missing.pem");
    let tls_dir = server.tls().expect("TLS").clone();
    let cases: Vec<(Vec<std::ffi::OsString>, Vec<String>)> = vec![
        (vec!["--tls-ca".into(), garbage.clone().into()], vec![format!("{} holds no PEM certificate", garbage.display())]),
        (
            vec!["--tls-ca".into(), missing.clone().into()],
            vec![format!("cannot read the TLS CA file (--tls-ca) {}", missing.display())],
        ),
        (
            vec!["--tls-ca".into(), ca.clone().into(), "--tls-cert".into(), tls_dir.client_cert.clone().into()],
            vec!["--tls-key".into()],
        ),
        (
            vec![
                "--tls-ca".into(),
                ca.clone().into(),
                "--tls-cert".into(),
                tls_dir.client_cert.clone().into(),
                "--tls-key".into(),
                garbage.clone().into(),
            ],
            vec!["readable by others".into()],
        ),
    ];
    for (args, needles) in cases {
        let out = bare(Role::ShopInit, server.connect_string()).args(&args).run(EXIT_TIMEOUT);
        out.assert_code(exit::USAGE).assert_within(Duration::from_secs(5));
        out.error_line(&needles.iter().map(String::as_str).collect::<Vec<_>>());
    }
}

#[test]
fn a_server_that_needs_client_certificates_refuses_none_and_expired_ones_and_takes_a_good_one() {
    let server = ZkServer::builder().tls_client_auth("need").start();
    let tls = server.tls().expect("TLS").clone();
    // Without a certificate, and with one that expired yesterday (at once: each waits its
    // connect timeout).
    let (cert, key) = tls.client_identity("stale", true);
    let none = bare(Role::ShopInit, server.connect_string()).arg("--tls-ca").arg(&tls.ca).spawn();
    let stale = bare(Role::ShopInit, server.connect_string())
        .arg("--tls-ca")
        .arg(&tls.ca)
        .env("ZK_TLS_CERT", &cert)
        .env("ZK_TLS_KEY", &key)
        .spawn();
    let out = none.wait_exit(EXIT_TIMEOUT);
    out.assert_code(exit::TLS).assert_within(failure_bound());
    out.error_line(&["refused the connection", "--tls-cert"]);
    let out = stale.wait_exit(EXIT_TIMEOUT);
    out.assert_code(exit::TLS).assert_within(failure_bound());
    out.error_line(&["refused our client certificate", &cert.display().to_string()]);
    // With a good one (what server.cmd gives).
    server.init_shop();
    let barista = server.cmd(Role::Barista).args(["--name", "b1", "--brew-time", "0"]).spawn_on_shift();
    server.cmd(Role::Customer).args(["--patience", "20"]).run(EXIT_TIMEOUT).assert_code(exit::OK);
    barista.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}

#[test]
fn the_shop_rides_out_a_server_restart_under_tls() {
    let mut server = ZkServer::builder().tls().tick_ms(TICK_MS).start();
    server.init_shop();
    let session = ["--session-timeout", "4"];
    let mgr = server.cmd(Role::ShopManager).args(session).spawn();
    mgr.wait_for_stderr("following ", LOG_TIMEOUT);
    let barista = server.cmd(Role::Barista).args(session).args(["--name", "b1", "--brew-time", "0.05"]).spawn_on_shift();
    let customer = |server: &ZkServer, coffee: &str| {
        server.cmd(Role::Customer).args(session).args(["--coffee", coffee, "--patience", "30"]).run(EXIT_TIMEOUT)
    };
    customer(&server, "jacob").assert_code(exit::OK);
    let (b_mark, m_mark) = (barista.mark(), mgr.mark());

    let restarted = Instant::now();
    server.restart();
    let took = restarted.elapsed();
    barista.wait_log_since(b_mark, "the barista to reconnect", LOG_TIMEOUT, |lines| {
        lines.iter().find(|l| l.contains("reconnected to ZooKeeper") || l.contains("is on shift (session 2)")).cloned()
    });
    mgr.wait_log_since(m_mark, "the manager to reconnect", LOG_TIMEOUT, |lines| {
        lines.iter().find(|l| l.contains("reconnected to ZooKeeper") || l.contains("(session 2)")).cloned()
    });
    let out = customer(&server, "sogood");
    out.assert_code(exit::OK);
    assert!(out.single_stdout_line().contains(" barista=b1"), "{out}");
    assert_eq!(server.children("/barista_group"), Some(vec!["b1".to_owned()]));
    eprintln!("TLS server restart took {took:?}; served {:?} after it began", restarted.elapsed());
    barista.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    mgr.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}

#[test]
fn a_session_expired_under_tls_is_replaced_by_a_new_one() {
    let server = ZkServer::builder().tls().tick_ms(TICK_MS).start();
    server.init_shop();
    // The barista reaches the server through a gate (TLS goes through it untouched).
    let gate = Proxy::start(server.port());
    let zk = gate.connect_string();
    let tls = server.tls().expect("TLS").clone();
    let barista = barista(&zk, "b1", "0.05").args(tls.role_args()).spawn_on_shift();
    let mark = barista.mark();
    gate.cut();
    wait_until(Duration::from_secs(20), "the server to expire the barista's session", || {
        server.children("/barista_group") == Some(vec![])
    });
    gate.open();
    barista.wait_log_since(mark, "the barista to register on a new session", Duration::from_secs(20), |lines| {
        lines.iter().find(|l| l.contains("is on shift (session 2)")).cloned()
    });
    let out = customer(&zk, Some("b1"), "jacob", "20").args(tls.role_args()).run(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    barista.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}

#[test]
fn a_tls_ensemble_serves_the_shop_and_outlives_its_leader() {
    let mut ensemble = Ensemble::start_tls(TICK_MS);
    let tls = ensemble.tls().expect("a TLS ensemble has its CA");
    for n in 1..=3 {
        let cfg = std::fs::read_to_string(ensemble.member_dir(n).join("zoo.cfg")).expect("zoo.cfg");
        assert!(!cfg.lines().any(|l| l.starts_with("clientPort=")), "member {n} is TLS-only: {cfg}");
    }
    ensemble.cmd(Role::ShopInit).run(EXIT_TIMEOUT).assert_code(exit::OK);
    let session = ["--session-timeout", "4"];
    let barista = ensemble.cmd(Role::Barista).args(session).args(["--name", "b1", "--brew-time", "0.05"]).spawn_on_shift();
    let customer = |ensemble: &Ensemble| {
        ensemble.cmd(Role::Customer).args(session).args(["--coffee", "jacob", "--patience", "30"]).run(EXIT_TIMEOUT)
    };
    customer(&ensemble).assert_code(exit::OK);
    // The leader goes (zk.sh finds it over TLS); the shop carries on with the other two.
    let leader = ensemble.leader();
    ensemble.kill(leader);
    let out = customer(&ensemble);
    out.assert_code(exit::OK);
    assert!(out.single_stdout_line().contains(" barista=b1"), "{out}");
    // A plaintext client is refused by every member.
    let out = bare(Role::ShopStatus, ensemble.connect_string()).run(EXIT_TIMEOUT);
    out.assert_code(exit::TLS).assert_within(failure_bound());
    out.error_line(&["speaks TLS only"]);
    assert!(tls.ca.exists());
    barista.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}

#[test]
fn client_certificates_are_identities_the_shops_acls_name() {
    let server = ZkServer::builder().tls_client_auth("need").start();
    let tls = server.tls().expect("TLS").clone();
    let (barista_cert, barista_key) = tls.client_identity("barista", false);
    let (customer_cert, customer_key) = tls.client_identity("customer", false);
    // A role presenting `cert` and no password.
    let as_cert = |role: Role, cert: &std::path::Path, key: &std::path::Path| {
        TestCommand::new(role)
            .zk(server.connect_string())
            .arg("--tls-ca")
            .arg(&tls.ca)
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
    };
    // The server knows a certificate by its subject.
    let config = zk_coffee::SessionConfig {
        credentials: None,
        identity: None,
        servers: server.connect_string().parse().expect("connect string"),
        session_timeout: Duration::from_secs(4),
        connect_timeout: Duration::from_secs(10),
        tls: Some(zk_coffee::session::Tls::from_files(&tls.ca, Some((&barista_cert, &barista_key))).expect("TLS files")),
    };
    let session = zk_coffee::Session::connect(config.clone()).expect("connect with the barista's certificate");
    let ids = session.identities().expect("whoami");
    assert!(ids.contains(&("x509".to_owned(), "CN=barista".to_owned())), "{ids:?}");
    session.close();

    // The admin (a password, over TLS with the harness's certificate) secures the shop for two
    // certificates: staff are CN=barista, customers CN=customer.
    let creds = crate::security::Creds::new("x509");
    crate::security::with_creds(server.cmd(Role::ShopInit), &creds.admin)
        .args(["--secure", "--staff-x509", "CN=barista", "--customer-x509", "CN=customer"])
        .run(EXIT_TIMEOUT)
        .assert_code(exit::OK);
    // The harness's helper (no password) may read nothing now; the admin may.
    let admin = zk_coffee::SessionConfig {
        credentials: Some(zk_coffee::security::Credentials::parse(&creds.admin_auth).expect("admin credentials")),
        tls: Some(tls.session_tls()),
        ..config.clone()
    };
    let admin = zk_coffee::Session::connect(admin).expect("connect as the admin");
    let acl = String::from_utf8(admin.data("/zk-coffee/acl").ok().flatten().unwrap_or_default()).unwrap_or_default();
    assert!(acl.contains("staff=x509:CN=barista") && acl.contains("customer=x509:CN=customer"), "{acl}");

    let barista = as_cert(Role::Barista, &barista_cert, &barista_key).args(["--name", "b1", "--brew-time", "0"]).spawn_on_shift();
    let out = as_cert(Role::Customer, &customer_cert, &customer_key).args(["--patience", "20"]).run(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    assert!(out.single_stdout_line().contains(" barista=b1"), "{out}");
    // A customer's certificate cannot register a barista; a certificate the shop does not name
    // (the harness's CN=zk-coffee-client, without the admin's password) can do nothing.
    let out = as_cert(Role::Barista, &customer_cert, &customer_key).args(["--name", "intruder"]).run(EXIT_TIMEOUT);
    out.assert_code(exit::NOT_AUTHORIZED);
    out.error_line(&["not authorized"]);
    let out = server.cmd(Role::Customer).args(["--patience", "5"]).run(EXIT_TIMEOUT);
    out.assert_code(exit::NOT_AUTHORIZED);
    out.error_line(&["not authorized"]);
    assert_eq!(admin.children("/barista_group").expect("the admin reads"), Some(vec!["b1".to_owned()]));
    admin.close();
    barista.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}
