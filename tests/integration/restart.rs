//! A barista restarted under its name while its previous membership node is still there: a
//! stop while it waits is a clean stop; a holder that is certainly dead (same host, same boot,
//! its pid gone) is replaced at once; any other holder is waited out.

use std::time::{Duration, Instant};

use zk_coffee_tests::fault::*;
use zk_coffee_tests::*;
use zookeeper::{Acl, CreateMode, ZooKeeper};

/// Creates the ephemeral `/barista_group/{name}` on the raw client's session with `data`.
fn hold_name(zk: &ZooKeeper, name: &str, data: &[u8]) {
    let path = format!("/barista_group/{name}");
    zk.create(&path, data.to_vec(), Acl::open_unsafe().clone(), CreateMode::Ephemeral)
        .unwrap_or_else(|e| panic!("create {path}: {e:?}"));
}

/// Defect of issue 11: a barista waiting for its name to be free exited 8 ("held by another
/// live barista") when asked to stop. A stop is a stop: exit 0.
#[test]
fn a_barista_waiting_for_its_name_stops_cleanly_on_sigterm() {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let raw = server.raw();
    // Another session holds the name, with data that is no registration of ours.
    hold_name(&raw, "b", b"someone else");
    let waiting = barista(server.connect_string(), "b", "0.1").spawn();
    waiting.wait_for_stderr("held by another session; waiting", LOG_TIMEOUT);
    let asked = Instant::now();
    let out = waiting.stop(EXIT_TIMEOUT);
    let took = asked.elapsed();
    out.assert_code(exit::OK);
    assert!(took < Duration::from_secs(2), "took {took:?} to stop\n{out}");
    assert!(out.stderr.iter().any(|l| l.contains("stopped while waiting")), "{out}");
    // The other session's node is untouched.
    assert_eq!(server.node("/barista_group/b").expect("still held").data, b"someone else");
}
