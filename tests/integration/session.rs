//! The session layer (`zk_coffee::Session`) driven directly against a real server: how a lost
//! session is told and replaced while threads share it, and how a protected create finds its
//! node again after a connection loss.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zk_coffee::session::SessionEvent;
use zk_coffee::Session;
use zk_coffee_tests::proxy::{Proxy, GET_ACL};

use zk_coffee_tests::*;

/// Makes the server expire the session `session` is on (it reaches the server through
/// `gate`): cuts the gate until the server has dropped the session's ephemeral `probe`, then
/// lets the client through again, which then learns that its session is gone.
fn expire(server: &ZkServer, gate: &Proxy, session: &Session, probe: &str) {
    assert!(session.create_ephemeral(probe, b"").expect("create the probe"), "{probe} exists already");
    gate.cut();
    wait_until(Duration::from_secs(20), "the server to expire the session", || !server.exists(probe));
    gate.open();
}

/// Load mode shares a session among threads. A call that took the client of a session, and
/// hears "expired" from it after another thread has already replaced that session, must not
/// make the session drop the new, healthy one.
#[test]
fn an_expiry_heard_by_a_call_on_a_replaced_session_leaves_the_new_session_alone() {
    let server = ZkServer::builder().tick_ms(200).start();
    let gate = Proxy::start(server.port());
    let session = connect_session(&gate.connect_string(), Duration::from_secs(1));

    // The thread "old-call" is held inside its call, right after it took the client of a new
    // session: the listener runs there when the call opens a session (a subscriber told of a
    // lost session runs inside the call that replaces it).
    let (held_tx, held) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let _subscription = session.subscribe(move |event| {
        if event == SessionEvent::Lost && std::thread::current().name() == Some("old-call") {
            let _ = held_tx.send(());
            let _ = release_rx.lock().expect("release").recv_timeout(Duration::from_secs(60));
        }
    });
    // Session 1 ends; the next call opens session 2.
    session.close();
    let caller = session.clone();
    let old_call = std::thread::Builder::new()
        .name("old-call".into())
        .spawn(move || caller.exists("/").map(|_| ()))
        .expect("start the old call");
    held.recv_timeout(Duration::from_secs(20)).expect("the old call to open session 2");
    assert_eq!(session.generation(), 2);

    // Meanwhile session 2 expires and this thread replaces it with session 3.
    expire(&server, &gate, &session, "/probe");
    wait_until(Duration::from_secs(20), "this thread to get a new session", || {
        session.exists("/").is_ok() && session.generation() == 3
    });
    let healthy = session.session_id();

    // The old call goes on with session 2's client, which answers "session expired".
    release.send(()).expect("release the old call");
    let _ = old_call.join().expect("the old call did not panic");
    assert!(session.exists("/").expect("a call on the healthy session"));
    assert_eq!(
        (session.generation(), session.session_id()),
        (3, healthy),
        "the old call's expiry dropped the healthy session 3 and made a new one"
    );
}

/// One expiry is one piece of news: subscribers hear `Lost` once, whether the client's state
/// or a call finding the session gone notices it first.
#[test]
fn one_expiry_is_told_to_subscribers_once() {
    let server = ZkServer::builder().tick_ms(200).start();
    let gate = Proxy::start(server.port());
    let session = connect_session(&gate.connect_string(), Duration::from_secs(1));
    let told: Arc<Mutex<Vec<SessionEvent>>> = Arc::default();
    let heard = Arc::clone(&told);
    let _subscription = session.subscribe(move |event| heard.lock().expect("events").push(event));
    let lost = || told.lock().expect("events").iter().filter(|e| **e == SessionEvent::Lost).count();

    expire(&server, &gate, &session, "/probe");
    // The client hears of the expiry from the server when it gets through again...
    wait_until(Duration::from_secs(20), "the subscriber to hear that the session is lost", || lost() >= 1);
    // ...and the next call replaces the session.
    assert!(session.exists("/").expect("a call on the new session"));
    assert_eq!(session.generation(), 2, "one new session");
    assert!(session.create_ephemeral("/probe", b"").expect("the probe again"), "the new session is healthy");
    assert_eq!(lost(), 1, "one expiry told more than once: {:?}", told.lock().expect("events"));
}

/// After a connection loss a protected create looks for its node by the tag in its ACL. Its
/// node is one of the newest in the parent: it must not read the ACL of every other child
/// first (thousands of calls in a busy bucket).
#[test]
fn a_protected_create_cut_off_finds_its_node_among_thousands_with_few_reads() {
    let server = ZkServer::builder().tick_ms(200).start();
    let raw = server.raw();
    let open = zookeeper::Acl::open_unsafe().clone();
    raw.create("/bucket", Vec::new(), open.clone(), zookeeper::CreateMode::Persistent).expect("create the bucket");
    let others = 2000;
    for _ in 0..others {
        raw.create("/bucket/coffee", b"tesora".to_vec(), open.clone(), zookeeper::CreateMode::PersistentSequential)
            .expect("an older order");
    }

    let proxy = Proxy::start(server.port());
    let session = connect_session(&format!("127.0.0.1:{}", proxy.port()), Duration::from_secs(2));
    proxy.swallow_after(b"/bucket/coffee");
    let found = session.create_sequential_protected("/bucket/coffee", b"jacob", "0123456789abcdef").expect("the create");
    assert_eq!(proxy.swallowed(), 1, "the create's reply was not cut off");
    assert_eq!(found.as_deref(), Some(format!("/bucket/coffee{others:010}").as_str()), "found the node it created");
    assert_eq!(server.children("/bucket").map(|c| c.len()), Some(others + 1), "created exactly once");
    let reads = proxy.requests(GET_ACL);
    eprintln!("read {reads} ACLs among {} children to find the newest", others + 1);
    assert!(reads <= 8, "read {reads} ACLs among {} children to find the newest", others + 1);
}

/// Paths come from the shop's layout, never from the user: a relative one is a bug, reported
/// as an internal failure (exit 1), not as a usage error (exit 2: "you typed it wrong"), and
/// nothing is sent.
#[test]
fn a_relative_path_is_an_internal_failure_not_a_usage_error() {
    let server = ZkServer::start();
    let session = connect_session(server.connect_string(), Duration::from_secs(4));
    for bad in ["orders", "/orders/"] {
        match session.exists(bad) {
            Err(e @ zk_coffee::Error::Internal { .. }) => {
                assert_eq!(i32::from(e.exit_code()), exit::FAILURE, "{e}");
                assert!(e.to_string().starts_with("internal failure"), "{e}");
            }
            other => panic!("{bad:?} gave {other:?}"),
        }
    }
    assert!(session.exists("/").expect("an absolute path"));
}
