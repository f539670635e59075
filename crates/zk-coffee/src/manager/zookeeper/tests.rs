//! Unit tests of the poller's parts, on `mntr` answers captured from real servers.

use super::*;
use crate::manager::event::{Event, Kind};

const STANDALONE: &str = include_str!("../testdata/mntr-standalone.txt");
const LEADER: &str = include_str!("../testdata/mntr-leader.txt");
const FOLLOWER: &str = include_str!("../testdata/mntr-follower.txt");

fn stats(text: &str) -> Stats {
    match Answer::parse(text) {
        Answer::Stats(stats) => stats,
        other => panic!("not statistics: {other:?}"),
    }
}

/// Captured from Debian's ZooKeeper 3.8.0 (`scripts/zk.sh start`), idle but for one
/// connection.
#[test]
fn a_standalone_servers_mntr_is_read() {
    let s = stats(STANDALONE);
    assert_eq!(s.mode, Mode::Standalone);
    assert_eq!((s.znodes, s.approximate_data_size_bytes, s.alive_connections, s.outstanding_requests), (5, 44, 1, 0));
    assert_eq!((s.synced_followers, s.synced_observers, s.followers), (None, None, None));
    assert_eq!(s.avg_latency_seconds, 0.0);
}

/// Captured from the leader and a follower of a 3-server ensemble (`zk.sh start-ensemble`).
#[test]
fn a_leaders_and_a_followers_mntr_are_read() {
    let leader = stats(LEADER);
    assert_eq!(leader.mode, Mode::Leader);
    assert_eq!((leader.synced_followers, leader.synced_observers, leader.followers), (Some(2), Some(0), Some(2)));
    assert_eq!((leader.znodes, leader.approximate_data_size_bytes), (5, 182));
    let follower = stats(FOLLOWER);
    assert_eq!(follower.mode, Mode::Follower);
    assert_eq!(follower.synced_followers, None);
}

#[test]
fn latencies_are_converted_to_seconds() {
    let text = STANDALONE
        .replace("zk_avg_latency\t0.0", "zk_avg_latency\t2.5")
        .replace("zk_min_latency\t0", "zk_min_latency\t1")
        .replace("zk_max_latency\t0", "zk_max_latency\t40");
    let s = stats(&text);
    assert_eq!((s.avg_latency_seconds, s.min_latency_seconds, s.max_latency_seconds), (0.0025, 0.001, 0.04));
}

#[test]
fn refusals_and_garbage_are_told_apart() {
    assert_eq!(Answer::parse("mntr is not executed because it is not in the whitelist.\n"), Answer::NotWhitelisted);
    assert!(Answer::NotWhitelisted.is_up());
    assert_eq!(Answer::parse("This ZooKeeper instance is not currently serving requests\n"), Answer::NotServing);
    assert!(!Answer::NotServing.is_up());
    assert!(matches!(Answer::parse("HTTP/1.1 400 Bad Request\r\n"), Answer::Down(why) if why.contains("HTTP/1.1 400")));
    assert!(matches!(Answer::parse(""), Answer::Down(_)));
    assert!(matches!(Answer::parse("zk_server_state\tlooking\n"), Answer::Down(why) if why.contains("looking")));
}

#[test]
fn a_leader_short_of_followers_has_lost_a_member() {
    let servers = |leader: &str| -> BTreeMap<String, Answer> {
        [("a:1", Answer::parse(leader)), ("b:1", Answer::parse(FOLLOWER)), ("c:1", Answer::Down("refused".into()))]
            .into_iter()
            .map(|(s, a)| (s.to_owned(), a))
            .collect()
    };
    let found = problems(&servers(LEADER));
    assert_eq!(found.keys().collect::<Vec<_>>(), ["c:1"], "{found:?}");
    assert_eq!(found["c:1"], (Problem::Down, "refused".to_owned()));
    let short = LEADER.replace("zk_synced_followers\t2", "zk_synced_followers\t1");
    let found = problems(&servers(&short));
    assert_eq!(found["a:1"], (Problem::LostMember, "the leader has 1 of the 2 other servers in sync".to_owned()));
    let alone: BTreeMap<String, Answer> = [("a:1".to_owned(), Answer::parse(STANDALONE))].into();
    assert!(problems(&alone).is_empty());
}

fn round(answers: &[(&str, Answer)]) -> BTreeMap<String, Answer> {
    answers.iter().map(|(s, a)| (s.to_string(), a.clone())).collect()
}

fn kinds(events: &[Event]) -> Vec<(Kind, String)> {
    events.iter().map(|e| (e.event, e.facts.get("server").and_then(|s| s.as_str()).unwrap_or("").to_owned())).collect()
}

/// One episode: a degraded event per server whose problem is new (not for a new detail of
/// the same problem), one ok at its end, one key; a refusal of mntr is no problem.
#[test]
fn an_episode_is_told_once_from_its_start_to_its_end() {
    let up = Answer::parse(STANDALONE);
    let mut episodes = Episodes::new("e");
    assert_eq!(episodes.observe(&round(&[("a:1", up.clone()), ("b:1", Answer::NotWhitelisted)])), []);
    let first = episodes.observe(&round(&[("a:1", Answer::Down("refused".into())), ("b:1", Answer::NotWhitelisted)]));
    assert_eq!(kinds(&first), [(Kind::ZookeeperDegraded, "a:1".to_owned())]);
    assert_eq!(first[0].facts["problem"], "down");
    assert_eq!(first[0].facts["detail"], "refused");
    assert_eq!(first[0].shop, "e");
    assert!(first[0].key.starts_with("zookeeper:e:") && first[0].key.ends_with(":a:1"), "{:?}", first[0]);
    let again = episodes.observe(&round(&[("a:1", Answer::Down("timed out".into())), ("b:1", Answer::NotWhitelisted)]));
    assert_eq!(again, [], "the same problem with another detail");
    let second = episodes.observe(&round(&[("a:1", Answer::NotServing), ("b:1", Answer::Down("refused".into()))]));
    assert_eq!(kinds(&second), [(Kind::ZookeeperDegraded, "a:1".to_owned()), (Kind::ZookeeperDegraded, "b:1".to_owned())]);
    let episode = first[0].key.trim_end_matches(":a:1").to_owned();
    assert!(second.iter().all(|e| e.key.starts_with(&format!("{episode}:"))), "one episode: {second:?}");
    assert_eq!(episodes.observe(&round(&[("a:1", up.clone()), ("b:1", Answer::Down("refused".into()))])), []);
    let ok = episodes.observe(&round(&[("a:1", up.clone()), ("b:1", up.clone())]));
    assert_eq!(kinds(&ok), [(Kind::ZookeeperOk, String::new())]);
    assert_eq!(ok[0].key, episode);
    assert_eq!(ok[0].facts["servers"], serde_json::json!(["a:1", "b:1"]));
    assert_eq!(episodes.observe(&round(&[("a:1", up.clone()), ("b:1", up)])), [], "nothing more once it ended");
    let next = episodes.observe(&round(&[("a:1", Answer::Down("refused".into()))]));
    assert_ne!(next[0].key.trim_end_matches(":a:1"), episode, "a new episode, a new key");
}

#[test]
fn nobody_listening_is_down() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a port");
    assert!(matches!(ask(&format!("127.0.0.1:{port}")), Answer::Down(_)));
    assert!(matches!(ask("no-such-host.invalid:2181"), Answer::Down(why) if why.contains("resolve")));
}
