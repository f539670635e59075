//! Leader election (`Session::stand_for_election`) driven directly against a real server:
//! exactly one leader among several candidates, the next in line (and only it) woken when the
//! leader goes, and a leader whose session expires stopping to lead before anyone else starts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zk_coffee::session::Candidacy;
use zk_coffee::Session;
use zk_coffee_tests::proxy::Proxy;

use zk_coffee_tests::*;

/// Where the candidates stand, and what their nodes are called.
const DIR: &str = "/election";
const PREFIX: &str = "/election/n-";

/// One thing told: to whom, leading or not, and when.
type Telling = (&'static str, bool, Instant);

/// What the candidates' `on_change` callbacks were told, in order, with when.
#[derive(Clone, Default)]
struct Told(Arc<Mutex<Vec<Telling>>>);

impl Told {
    fn callback(&self, who: &'static str) -> impl Fn(bool) + Send + Sync + 'static {
        let told = self.0.clone();
        move |leading| told.lock().expect("told").push((who, leading, Instant::now()))
    }

    fn of(&self, who: &str) -> Vec<bool> {
        self.0.lock().expect("told").iter().filter(|(w, _, _)| *w == who).map(|(_, l, _)| *l).collect()
    }

    /// When `who` was first told `leading`.
    fn first(&self, who: &str, leading: bool) -> Option<Instant> {
        self.0.lock().expect("told").iter().find(|(w, l, _)| *w == who && *l == leading).map(|(_, _, at)| *at)
    }
}

fn stand(session: &Session, who: &'static str, told: &Told) -> Candidacy {
    session.stand_for_election(PREFIX, who.as_bytes(), told.callback(who)).expect("stand for election")
}

/// The names of those leading among `candidates`.
fn leaders<'a>(candidates: &[(&'a str, &Candidacy)]) -> Vec<&'a str> {
    candidates.iter().filter(|(_, c)| c.is_leader()).map(|(n, _)| *n).collect()
}

fn make_dir(server: &ZkServer) {
    let open = zookeeper::Acl::open_unsafe().clone();
    server.raw().create(DIR, Vec::new(), open, zookeeper::CreateMode::Persistent).expect("create the election's directory");
}

/// A server with the election's directory, and three sessions to it for candidates to stand on.
fn server_and_three_sessions() -> (ZkServer, Vec<Session>) {
    let server = ZkServer::start();
    make_dir(&server);
    let sessions = (0..3).map(|_| connect_session(server.connect_string(), Duration::from_secs(4))).collect();
    (server, sessions)
}

#[test]
fn two_then_three_candidates_elect_exactly_one_leader_the_first() {
    let (server, sessions) = server_and_three_sessions();
    let told = Told::default();
    let a = stand(&sessions[0], "a", &told);
    let b = stand(&sessions[1], "b", &told);
    wait_until(LOG_TIMEOUT, "b to follow a", || b.watching() == a.node());
    assert_eq!(leaders(&[("a", &a), ("b", &b)]), ["a"], "exactly one of two leads, the first");
    let c = stand(&sessions[2], "c", &told);
    wait_until(LOG_TIMEOUT, "c to follow b", || c.watching() == b.node());
    let all = [("a", &a), ("b", &b), ("c", &c)];
    assert_eq!(leaders(&all), ["a"], "exactly one leader, the first to stand");
    assert_eq!(server.children(DIR).map(|c| c.len()), Some(3), "one node per candidate");
    for (name, candidacy) in [("b", &b), ("c", &c)] {
        assert_eq!(candidacy.leader().expect("read the leader").as_deref(), Some(&b"a"[..]), "{name} names the leader");
    }
    assert_eq!(a.leader().expect("the leader's data").as_deref(), Some(&b"a"[..]));
    assert_eq!((told.of("a"), told.of("b"), told.of("c")), (vec![true], vec![], vec![]));
}

#[test]
fn when_the_leader_goes_the_next_leads_and_only_its_watch_fires() {
    let (server, sessions) = server_and_three_sessions();
    let told = Told::default();
    let a = stand(&sessions[0], "a", &told);
    let b = stand(&sessions[1], "b", &told);
    let c = stand(&sessions[2], "c", &told);
    let (a_node, b_node, c_node) = (a.node().expect("a's node"), b.node().expect("b's node"), c.node().expect("c's node"));
    // Each watches only the one just below it.
    wait_until(LOG_TIMEOUT, "b to watch a, c to watch b", || {
        b.watching().as_ref() == Some(&a_node) && c.watching().as_ref() == Some(&b_node)
    });
    assert_eq!(leaders(&[("a", &a), ("b", &b), ("c", &c)]), ["a"]);
    assert_eq!(a.watching(), None);

    // The leader's session ends (as when its process dies and the server expires it): its
    // node goes, and the candidate next in line takes over.
    sessions[0].close();
    wait_until(LOG_TIMEOUT, "b to lead", || b.is_leader());
    assert!(!c.is_leader(), "two leaders");
    assert_eq!(c.watching(), Some(b_node.clone()), "c watches b still");
    assert_eq!(b.watches_fired(), 1, "b was woken once, by its watch on a");
    assert_eq!(c.watches_fired(), 0, "c was woken though its predecessor b stayed: a herd");
    assert_eq!(told.of("c"), Vec::<bool>::new());

    // a stands again on a new session, behind the others.
    wait_until(LOG_TIMEOUT, "a to stand again", || a.node().is_some_and(|n| n != a_node));
    assert!(a.node().expect("a's new node") > c_node, "a's new node is not the newest");
    assert!(!a.is_leader());
    assert_eq!(told.of("a"), [true, false]);

    // Withdrawing (dropping the candidacy) hands over at once, to c alone.
    drop(b);
    wait_until(LOG_TIMEOUT, "c to lead", || c.is_leader());
    assert_eq!(c.watches_fired(), 1);
    assert!(!a.is_leader(), "two leaders");
    assert_eq!(server.children(DIR).map(|c| c.len()), Some(2), "b's node is gone");
}

#[test]
fn a_leader_cut_off_stops_leading_before_its_session_expires_and_stands_again() {
    let server = ZkServer::builder().tick_ms(200).start();
    make_dir(&server);
    let gate = Proxy::start(server.port());
    let timeout = Duration::from_secs(2);
    let a_session = connect_session(&gate.connect_string(), timeout);
    let b_session = connect_session(server.connect_string(), timeout);
    let told = Told::default();
    let a = stand(&a_session, "a", &told);
    let b = stand(&b_session, "b", &told);
    wait_until(LOG_TIMEOUT, "a to lead", || a.is_leader() && !b.is_leader());
    let old = a.node().expect("a's node");

    gate.cut();
    wait_until(LOG_TIMEOUT, "a to stop claiming to lead", || !a.is_leader());
    wait_until(LOG_TIMEOUT, "the server to expire a's session, and b to lead", || b.is_leader());
    assert!(!server.exists(&old), "a's node outlived its session");
    let a_stopped = told.first("a", false).expect("a was told it no longer leads");
    let b_started = told.first("b", true).expect("b was told it leads");
    assert!(a_stopped < b_started, "a still believed it led when b started to");

    gate.open();
    wait_until(LOG_TIMEOUT, "a to stand again with a new node", || a.node().is_some_and(|n| n != old && server.exists(&n)));
    assert!(!a.is_leader(), "a leads again though b's node is lower");
    assert!(b.is_leader());
    assert_eq!(told.of("a"), [true, false]);
    assert_eq!(told.of("b"), [true]);
    assert_eq!(server.children(DIR).map(|c| c.len()), Some(2), "one node per candidate");
}

/// A candidate's create whose reply is lost (the connection goes silent right after it) may or
/// may not have happened: the candidate finds its node by the tag in its ACL instead of making
/// a second one, which would stand for it after it withdrew.
#[test]
fn a_candidate_whose_create_reply_is_lost_finds_its_node_and_makes_no_second() {
    let server = ZkServer::builder().tick_ms(200).start();
    make_dir(&server);
    let proxy = Proxy::start(server.port());
    let session = connect_session(&proxy.connect_string(), Duration::from_secs(2));
    proxy.swallow_after(PREFIX.as_bytes());
    let told = Told::default();
    let a = stand(&session, "a", &told);
    assert_eq!(proxy.swallowed(), 1, "the create's reply was not cut off");
    let nodes = server.children(DIR).expect("the directory");
    assert_eq!(nodes.len(), 1, "the create was made twice: {nodes:?}");
    assert_eq!(a.node(), Some(format!("{DIR}/{}", nodes[0])), "it found the node it made");
    wait_until(LOG_TIMEOUT, "a to lead", || a.is_leader());
    drop(a);
    assert_eq!(server.children(DIR), Some(Vec::new()), "withdrawing left a node standing");
}
