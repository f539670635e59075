//! ZooKeeper's own health as the manager reads it (`zk_coffee::manager::zookeeper`, through the
//! library's API): `mntr` from real servers, the gauges encoded by `prometheus-client` and read
//! back by the official parser, and the `zookeeper-degraded` / `zookeeper-ok` events of a
//! member stopped and started again, a server that refuses `mntr`, and an address nobody
//! listens on. And README's production `zoo.cfg`, run as it is shown (paths and ports moved to
//! a temporary directory and loopback): an ensemble that the poller reads in full.

use std::path::Path;
use std::sync::mpsc::{self, Receiver};

use std::time::{Duration, Instant};

use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use zk_coffee::manager::zookeeper::{Answer, Mode, Poller, PollerConfig};
use zk_coffee::manager::{Event, Kind};
use zk_coffee_tests::ensemble::Ensemble;
use zk_coffee_tests::fault::TICK_MS;
use zk_coffee_tests::http::{self, Metrics};
use zk_coffee_tests::logcapture;
use zk_coffee_tests::*;

/// Polls quickly, so that the tests see several rounds in a second.
const INTERVAL: Duration = Duration::from_millis(200);

/// A generous bound for an event that should follow a fault within a few rounds (a killed
/// follower is noticed by its leader within syncLimit ticks).
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

fn poller(ensemble: &str, servers: &[String]) -> (Poller, Receiver<Event>) {
    let (tx, rx) = mpsc::channel();
    let config = PollerConfig { ensemble: ensemble.to_owned(), servers: servers.to_vec(), interval: INTERVAL, tls: None };
    let poller = Poller::start(config, move |event| {
        let _ = tx.send(event);
    })
    .expect("start the poller");
    (poller, rx)
}

/// The poller's gauges as the official parser reads them.
fn page(poller: &Poller) -> Metrics {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(poller.collector()));
    let mut text = String::new();
    encode(&mut text, &registry).expect("encode the page");
    http::parse(&text).unwrap_or_else(|e| panic!("the official parser refused the page: {e}\n---- page ----\n{text}"))
}

/// Waits until `poller` has read `n` more rounds than now.
fn wait_rounds(poller: &Poller, n: u64) {
    let target = poller.rounds() + n;
    wait_until(LOG_TIMEOUT, &format!("{n} more rounds of mntr"), || poller.rounds() >= target);
}

/// The next event that `pred` accepts, within `timeout` (the others are returned too, in order).
fn wait_event(rx: &Receiver<Event>, what: &str, timeout: Duration, pred: impl Fn(&Event) -> bool) -> (Event, Vec<Event>) {
    let deadline = Instant::now() + timeout;
    let mut skipped = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(event) if pred(&event) => return (event, skipped),
            Ok(event) => skipped.push(event),
            Err(_) => panic!("no {what} within {timeout:?}; events meanwhile: {skipped:#?}"),
        }
    }
}

fn fact<'a>(event: &'a Event, name: &str) -> &'a str {
    event.facts.get(name).and_then(|v| v.as_str()).unwrap_or_else(|| panic!("no fact {name}: {event:?}"))
}

#[test]
fn a_standalone_server_is_up_and_standalone() {
    let server = ZkServer::start();
    let addr = server.connect_string().to_owned();
    let (poller, events) = poller("solo", std::slice::from_ref(&addr));
    wait_rounds(&poller, 2);

    let reading = poller.readings().remove(&addr).expect("a reading");
    let Answer::Stats(stats) = &reading.answer else { panic!("no statistics: {reading:?}") };
    assert_eq!(stats.mode, Mode::Standalone);
    let page = page(&poller);
    let labels = [("ensemble", "solo"), ("server", addr.as_str())];
    assert_eq!(page.value("zk_coffee_zookeeper_up", &labels), Some(1.0));
    for mode in Mode::ALL {
        let expected = if mode == Mode::Standalone { 1.0 } else { 0.0 };
        assert_eq!(page.value("zk_coffee_zookeeper_mode", &[labels[0], labels[1], ("mode", mode.name())]), Some(expected));
    }
    // An idle server: its own mntr agrees with what the poller exported.
    let mntr = server.mntr();
    let znodes: f64 = mntr["zk_znode_count"].parse().expect("a count");
    assert_eq!(page.value("zk_coffee_zookeeper_znodes", &labels), Some(znodes));
    let size: f64 = mntr["zk_approximate_data_size"].parse().expect("a size");
    assert_eq!(page.value("zk_coffee_zookeeper_approximate_data_size_bytes", &labels), Some(size));
    for name in ["avg", "min", "max"] {
        let family = format!("zk_coffee_zookeeper_{name}_latency_seconds");
        let f = page.family(&family).unwrap_or_else(|| panic!("no {family}: {page:#?}"));
        assert_eq!((f.kind.as_str(), f.unit.as_str()), ("gauge", "seconds"));
        assert!(page.value(&family, &labels).is_some_and(|v| v >= 0.0));
    }
    assert_eq!(page.value("zk_coffee_zookeeper_outstanding_requests", &labels), Some(0.0));
    assert!(page.family("zk_coffee_zookeeper_synced_followers").is_none(), "a standalone server has no followers");
    poller.stop();
    assert_eq!(events.try_iter().collect::<Vec<_>>(), [], "a healthy server gives no event");
}

#[test]
fn a_stopped_member_degrades_the_ensemble_until_it_is_back() {
    let mut ensemble = Ensemble::start(TICK_MS);
    let servers: Vec<String> = ensemble.connect_string().split(',').map(String::from).collect();
    let leader = ensemble.leader();
    let victim = (1..=3).find(|n| *n != leader).expect("a follower");
    let victim_addr = servers[victim - 1].clone();
    let (poller, events) = poller("trio", &servers);

    // All well first: every member answers and the leader has both others in sync.
    wait_until(EVENT_TIMEOUT, "the leader to report both followers in sync", || {
        let readings = poller.readings();
        readings.len() == 3
            && readings.values().all(|r| r.answer.is_up())
            && readings.values().any(|r| matches!(&r.answer, Answer::Stats(s) if s.synced_followers == Some(2)))
    });
    let page_before = page(&poller);
    let leader_labels = [("ensemble", "trio"), ("server", servers[leader - 1].as_str())];
    assert_eq!(page_before.value("zk_coffee_zookeeper_synced_followers", &leader_labels), Some(2.0));
    assert_eq!(
        page_before.value("zk_coffee_zookeeper_mode", &[leader_labels[0], leader_labels[1], ("mode", "leader")]),
        Some(1.0)
    );
    let early: Vec<Event> = events.try_iter().collect();
    assert!(early.last().is_none_or(|e| e.event == Kind::ZookeeperOk), "a healthy ensemble: {early:#?}");

    ensemble.kill(victim);
    let (degraded, _) = wait_event(&events, "zookeeper-degraded naming the stopped member", EVENT_TIMEOUT, |e| {
        e.event == Kind::ZookeeperDegraded && fact(e, "server") == victim_addr
    });
    assert_eq!(fact(&degraded, "problem"), "down", "{degraded:?}");
    assert_eq!(degraded.shop, "trio");
    assert_eq!(degraded.barista, None);
    assert!(degraded.key.starts_with("zookeeper:trio:") && degraded.key.ends_with(&format!(":{victim_addr}")), "{degraded:?}");
    let victim_labels = [("ensemble", "trio"), ("server", victim_addr.as_str())];
    wait_rounds(&poller, 1);
    assert_eq!(page(&poller).value("zk_coffee_zookeeper_up", &victim_labels), Some(0.0));

    ensemble.start_member(victim);
    let (ok, meanwhile) =
        wait_event(&events, "zookeeper-ok once the member is back", EVENT_TIMEOUT, |e| e.event == Kind::ZookeeperOk);
    assert!(meanwhile.iter().all(|e| e.event == Kind::ZookeeperDegraded), "{meanwhile:#?}");
    assert!(degraded.key.starts_with(&format!("{}:", ok.key)), "one episode: {degraded:?} / {ok:?}");
    let named: Vec<&str> = ok.facts["servers"].as_array().expect("servers").iter().filter_map(|s| s.as_str()).collect();
    assert!(named.contains(&victim_addr.as_str()), "{ok:?}");
    assert!(ok.facts["degraded_seconds"].as_f64().is_some_and(|s| s > 0.0), "{ok:?}");
    wait_rounds(&poller, 1);
    let page_after = page(&poller);
    for server in &servers {
        assert_eq!(
            page_after.value("zk_coffee_zookeeper_up", &[("ensemble", "trio"), ("server", server)]),
            Some(1.0),
            "{server}"
        );
    }
    poller.stop();
    let late: Vec<Event> = events.try_iter().collect();
    assert_eq!(late, [], "nothing after the episode closed");
}

#[test]
fn a_server_that_refuses_mntr_is_up_but_unreadable_said_once() {
    logcapture::capture_library_log();
    let server = ZkServer::builder().four_letter_words("ruok,srvr").start();
    let addr = server.connect_string().to_owned();
    assert!(four_letter(server.port(), "mntr").contains("not in the whitelist"), "the server refuses mntr");
    let (poller, events) = poller("strict", std::slice::from_ref(&addr));
    wait_rounds(&poller, 5);
    assert_eq!(poller.readings()[&addr].answer, Answer::NotWhitelisted);
    let page = page(&poller);
    let labels = [("ensemble", "strict"), ("server", addr.as_str())];
    assert_eq!(page.value("zk_coffee_zookeeper_up", &labels), Some(1.0));
    let modes = page.samples("zk_coffee_zookeeper_mode", &labels);
    assert_eq!(modes.len(), Mode::ALL.len(), "{modes:?}");
    assert!(modes.iter().all(|s| s.value == 0.0), "no known mode: {modes:?}");
    assert_eq!(page.value("zk_coffee_zookeeper_znodes", &labels), None, "no statistics from it");
    poller.stop();
    assert_eq!(events.try_iter().collect::<Vec<_>>(), [], "up is not degraded, and it does not flap");
    let said = logcapture::library_log(|l| l.contains(&addr));
    assert_eq!(said.len(), 1, "said once over 5 rounds: {said:?}");
    assert!(said[0].contains("whitelist"), "{said:?}");
}

#[test]
fn an_address_nobody_listens_on_is_down() {
    let addr = format!("127.0.0.1:{}", closed_port());
    let (poller, events) = poller("nobody", std::slice::from_ref(&addr));
    let (degraded, _) = wait_event(&events, "zookeeper-degraded", EVENT_TIMEOUT, |e| e.event == Kind::ZookeeperDegraded);
    assert_eq!((fact(&degraded, "server"), fact(&degraded, "problem")), (addr.as_str(), "down"));
    assert!(matches!(&poller.readings()[&addr].answer, Answer::Down(_)));
    wait_rounds(&poller, 3);
    let page = page(&poller);
    let labels = [("ensemble", "nobody"), ("server", addr.as_str())];
    assert_eq!(page.value("zk_coffee_zookeeper_up", &labels), Some(0.0));
    assert!(page.samples("zk_coffee_zookeeper_mode", &labels).iter().all(|s| s.value == 0.0));
    poller.stop();
    assert_eq!(events.try_iter().collect::<Vec<_>>(), [], "one event per episode, however many rounds");
}

/// The `properties` block of README's "A production zoo.cfg".
fn readme_zoo_cfg() -> String {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("read README.md");
    let section = readme.split("\n### A production zoo.cfg\n").nth(1).expect("README has \"### A production zoo.cfg\"");
    let block = section.split("```properties\n").nth(1).and_then(|b| b.split("\n```").next()).expect("a properties block");
    block.to_owned()
}

#[test]
fn the_readmes_production_zoo_cfg_runs_an_ensemble_the_manager_reads() {
    let shown = readme_zoo_cfg();
    for key in ["autopurge.snapRetainCount", "autopurge.purgeInterval", "dataLogDir", "maxClientCnxns", "4lw.commands.whitelist"]
    {
        assert!(shown.lines().any(|l| l.starts_with(&format!("{key}="))), "README's zoo.cfg sets {key}:\n{shown}");
    }
    // Only what cannot be the same here: paths, host names and ports; and loopback only.
    let moved = |n: usize, member: &Path, ports: &[u16]| -> String {
        let mut cfg: Vec<String> = shown
            .lines()
            .map(|line| match line.split_once('=') {
                Some(("dataDir", _)) => format!("dataDir={}", member.join("data").display()),
                Some(("dataLogDir", _)) => format!("dataLogDir={}", member.join("txlog").display()),
                Some(("clientPort", _)) => format!("clientPort={}", ports[n - 1]),
                Some((key, _)) if key.starts_with("server.") => {
                    let i: usize = key["server.".len()..].parse().expect("server.N");
                    format!("{key}=127.0.0.1:{}:{}", ports[1 + 2 * i], ports[2 + 2 * i])
                }
                _ => line.to_owned(),
            })
            .collect();
        cfg.push("clientPortAddress=127.0.0.1".into());
        cfg.join("\n")
    };
    let ensemble = Ensemble::start_with_configs(moved);
    let servers: Vec<String> = ensemble.connect_string().split(',').map(String::from).collect();
    let leader = ensemble.leader();
    let (poller, _events) = poller("production", &servers);
    wait_until(EVENT_TIMEOUT, "every member read, the leader with both followers in sync", || {
        let readings = poller.readings();
        readings.len() == 3
            && readings.values().all(|r| matches!(r.answer, Answer::Stats(_)))
            && readings.values().any(|r| matches!(&r.answer, Answer::Stats(s) if s.synced_followers == Some(2)))
    });
    poller.stop();
    let raw = ensemble.raw();
    raw.create("/probe", b"x".to_vec(), zookeeper::Acl::open_unsafe().clone(), zookeeper::CreateMode::Persistent)
        .expect("a write goes through");
    let _ = raw.close();
    assert!(ensemble.four_letter(leader, "ruok") == "imok", "ruok is allowed");
    assert!(ensemble.four_letter(leader, "cons").contains("not in the whitelist"), "cons is not");
    for n in 1..=3 {
        let dir = ensemble.member_dir(n);
        let logs: Vec<String> = std::fs::read_dir(dir.join("txlog/version-2"))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        assert!(logs.iter().any(|f| f.starts_with("log.")), "member {n}'s transaction log is in dataLogDir: {logs:?}");
        let log = std::fs::read_to_string(dir.join("server.log")).expect("server.log");
        assert!(log.contains("autopurge.purgeInterval set to 1"), "member {n} purges hourly");
    }
}
