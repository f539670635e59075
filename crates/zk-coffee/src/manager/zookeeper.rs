//! ZooKeeper's own health, as the manager watches it: each server of the connect string asked
//! `mntr` (a four-letter word over plain TCP) every few seconds, the latest answer kept per
//! server, transitions told as [`Event`]s, and the readings exported as Prometheus gauges.
//!
//! `mntr` has no watch, so this is a poll by nature ([`DEFAULT_INTERVAL`]). A server is
//! *up* when it answers: with its statistics, or with a refusal because `mntr` is not in its
//! `4lw.commands.whitelist` (up but unreadable: said once in the log, not a fault). It is
//! *wrong* when it does not answer within [`TIMEOUT`] (down), answers that it is not serving
//! (no quorum, still loading), or, when it leads, has fewer followers in sync than the other
//! servers of the connect string (the ensemble lost a member). An episode starts with the
//! first thing that goes wrong, one `zookeeper-degraded` event for each thing that goes wrong
//! during it (facts `server`, `problem`, `detail`), and ends with one `zookeeper-ok` when
//! nothing is wrong any more (facts `servers`, `degraded_seconds`). Its key is
//! `zookeeper:{ensemble}:{start in ms since the epoch}` (`:{server}` appended for each
//! degraded event). Managers poll on their own clocks, so two managers give the same outage
//! different keys: unlike a barista's episodes, nothing in the tree names it (and neither
//! kind alerts by default).
//!
//! [`ask`] reads one server, [`Answer::parse`] one answer, [`problems`] what is wrong with a
//! round of answers, [`Episodes`] turns rounds into events; [`Poller`] runs the rounds on its
//! thread, and [`ZookeeperCollector`] exports its latest readings.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use serde_json::Value;

use super::event::{Event, Kind};
use crate::error::{Error, Result};
use crate::lock;
use crate::session::ConnectString;

/// How often every server is asked, unless told otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// How long connecting to a server, and then reading its whole answer, may take each: a
/// server on the same network answers `mntr` in milliseconds; one that does not within this
/// is as good as down for its clients too.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// The largest `mntr` answer read (a 3.8 leader's is 18 kB): a peer that streams more is not
/// a ZooKeeper server.
const MAX_ANSWER: u64 = 1 << 20;

/// What a server says when `mntr` is not in its `4lw.commands.whitelist`.
const NOT_WHITELISTED: &str = "is not executed because it is not in the whitelist";

/// What a server says while it serves no client (no quorum, data still loading).
const NOT_SERVING: &str = "not currently serving requests";

/// A server's role, `zk_server_state` in `mntr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    Standalone,
    Leader,
    Follower,
    Observer,
}

impl Mode {
    /// Every mode, as the `mode` label lists them.
    pub const ALL: [Mode; 4] = [Mode::Standalone, Mode::Leader, Mode::Follower, Mode::Observer];

    /// Its name in `mntr` and in the `mode` label.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Standalone => "standalone",
            Mode::Leader => "leader",
            Mode::Follower => "follower",
            Mode::Observer => "observer",
        }
    }

    fn from_name(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What one `mntr` answer says, in base units (latencies in seconds: `mntr` gives ms).
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub mode: Mode,
    pub avg_latency_seconds: f64,
    pub min_latency_seconds: f64,
    pub max_latency_seconds: f64,
    /// Requests queued on the server, not yet answered.
    pub outstanding_requests: u64,
    pub znodes: u64,
    /// The data of all znodes, in bytes (ZooKeeper's approximation).
    pub approximate_data_size_bytes: u64,
    /// Client connections open now.
    pub alive_connections: u64,
    /// A leader's voting followers in sync (`zk_synced_followers`).
    pub synced_followers: Option<u64>,
    /// A leader's observers in sync (`zk_synced_observers`).
    pub synced_observers: Option<u64>,
    /// A leader's followers and observers connected, in sync or not (`zk_followers` before
    /// 3.6, `zk_learners` since).
    pub followers: Option<u64>,
}

/// A server's answer to `mntr`.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Its statistics.
    Stats(Stats),
    /// It is up, but `mntr` is not in its `4lw.commands.whitelist`.
    NotWhitelisted,
    /// It is up but serves no client: no quorum, or still loading its data.
    NotServing,
    /// No usable answer within [`TIMEOUT`]: why (connection refused, timed out, garbled).
    Down(String),
}

impl Answer {
    /// Whether the server answered: with its statistics, or with a refusal to give them.
    pub fn is_up(&self) -> bool {
        matches!(self, Answer::Stats(_) | Answer::NotWhitelisted)
    }

    /// Reads an answer. Anything that is neither one of the server's two refusals nor
    /// tab-separated `key<TAB>value` lines with a known `zk_server_state` is `Down`.
    pub fn parse(text: &str) -> Answer {
        if text.contains(NOT_WHITELISTED) {
            return Answer::NotWhitelisted;
        }
        if text.contains(NOT_SERVING) {
            return Answer::NotServing;
        }
        let values: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('\t')).map(|(k, v)| (k, v.trim())).collect();
        let Some(state) = values.get("zk_server_state") else {
            let first = text.lines().next().unwrap_or("").chars().take(80).collect::<String>();
            return Answer::Down(format!("unexpected answer to mntr: {first:?}"));
        };
        let Some(mode) = Mode::from_name(state) else {
            return Answer::Down(format!("unknown zk_server_state {state:?}"));
        };
        let int = |key: &str| values.get(key).and_then(|v| v.parse::<u64>().ok());
        let ms = |key: &str| values.get(key).and_then(|v| v.parse::<f64>().ok()).map(|ms| ms / 1000.0).unwrap_or(0.0);
        Answer::Stats(Stats {
            mode,
            avg_latency_seconds: ms("zk_avg_latency"),
            min_latency_seconds: ms("zk_min_latency"),
            max_latency_seconds: ms("zk_max_latency"),
            outstanding_requests: int("zk_outstanding_requests").unwrap_or(0),
            znodes: int("zk_znode_count").unwrap_or(0),
            approximate_data_size_bytes: int("zk_approximate_data_size").unwrap_or(0),
            alive_connections: int("zk_num_alive_connections").unwrap_or(0),
            synced_followers: int("zk_synced_followers"),
            synced_observers: int("zk_synced_observers"),
            followers: int("zk_followers").or_else(|| int("zk_learners")),
        })
    }
}

/// Asks `server` (`host:port`) for `mntr`: connects within [`TIMEOUT`], sends the word, and
/// reads the answer to its end within [`TIMEOUT`] more.
pub fn ask(server: &str) -> Answer {
    match mntr_text(server) {
        Ok(text) => Answer::parse(&text),
        Err(why) => Answer::Down(why),
    }
}

fn mntr_text(server: &str) -> std::result::Result<String, String> {
    let addrs: Vec<_> = server.to_socket_addrs().map_err(|e| format!("cannot resolve {server}: {e}"))?.collect();
    let mut last = format!("{server} resolves to no address");
    for addr in addrs {
        let mut stream = match TcpStream::connect_timeout(&addr, TIMEOUT) {
            Ok(stream) => stream,
            Err(e) => {
                last = e.to_string();
                continue;
            }
        };
        let deadline = Instant::now() + TIMEOUT;
        stream.write_all(b"mntr").map_err(|e| format!("cannot send mntr: {e}"))?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("no complete answer within {} ms", TIMEOUT.as_millis()));
            }
            stream.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) if (reply.len() + n) as u64 > MAX_ANSWER => return Err("an answer larger than 1 MiB".into()),
                Ok(n) => reply.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    return Err(format!("no complete answer within {} ms", TIMEOUT.as_millis()))
                }
                Err(e) => return Err(format!("reading the answer: {e}")),
            }
        }
        return Ok(String::from_utf8_lossy(&reply).into_owned());
    }
    Err(last)
}

/// The latest answer of one server.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub answer: Answer,
    /// When it was read.
    pub at: SystemTime,
}

/// What is wrong with one server, by kind (a change of detail alone is no new problem).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// It does not answer.
    Down,
    /// It answers that it serves no client.
    NotServing,
    /// It leads, with fewer followers in sync than the other servers of the connect string.
    LostMember,
}

impl Problem {
    /// Its name in the events' `problem` fact.
    pub fn name(self) -> &'static str {
        match self {
            Problem::Down => "down",
            Problem::NotServing => "not-serving",
            Problem::LostMember => "lost-member",
        }
    }
}

/// What is wrong with the servers of `readings` (the connect string's servers, each read), by
/// server, with a one-line detail for each.
pub fn problems(readings: &BTreeMap<String, Answer>) -> BTreeMap<String, (Problem, String)> {
    let mut wrong = BTreeMap::new();
    let others = readings.len().saturating_sub(1) as u64;
    for (server, answer) in readings {
        match answer {
            Answer::Down(why) => {
                wrong.insert(server.clone(), (Problem::Down, why.clone()));
            }
            Answer::NotServing => {
                wrong.insert(server.clone(), (Problem::NotServing, "not currently serving requests".into()));
            }
            Answer::Stats(stats) if stats.mode == Mode::Leader => {
                let synced = stats.synced_followers.unwrap_or(0) + stats.synced_observers.unwrap_or(0);
                if synced < others {
                    let detail = format!("the leader has {synced} of the {others} other servers in sync");
                    wrong.insert(server.clone(), (Problem::LostMember, detail));
                }
            }
            Answer::Stats(_) | Answer::NotWhitelisted => {}
        }
    }
    wrong
}

/// How a [`Poller`] runs.
#[derive(Debug, Clone)]
pub struct PollerConfig {
    /// The `ensemble` label and the events' shop: a name for the connect string.
    pub ensemble: String,
    /// The servers to ask, `host:port` each (e.g. [`ConnectString::hosts`]).
    pub servers: Vec<String>,
    /// How often to ask every server.
    pub interval: Duration,
}

impl PollerConfig {
    /// Every server of `servers` (the chroot does not matter), every [`DEFAULT_INTERVAL`],
    /// labelled `ensemble`.
    pub fn new(ensemble: &str, servers: &ConnectString) -> PollerConfig {
        PollerConfig { ensemble: ensemble.to_owned(), servers: servers.hosts().to_vec(), interval: DEFAULT_INTERVAL }
    }
}

/// The latest readings, shared by the poller's thread and its collectors.
#[derive(Debug, Default)]
struct Shared {
    readings: BTreeMap<String, Reading>,
    /// How many rounds have been read.
    rounds: u64,
}

/// The poller's thread, its readings, and its stop request.
struct Inner {
    ensemble: String,
    servers: Vec<String>,
    shared: Mutex<Shared>,
    /// Set to stop; the thread waits on `wake` between rounds.
    stop: Mutex<bool>,
    wake: Condvar,
}

/// Asks every server for `mntr` every `interval` on a thread of its own, keeps the latest
/// reading of each, and reports each episode of trouble through a callback (see the module's
/// text). Stopped by [`Poller::stop`] or on drop.
pub struct Poller {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

impl Poller {
    /// Starts polling: the first round at once, `on_event` called on the poller's thread for
    /// each event (it should only record or send). An empty server list, or a zero interval,
    /// is a usage error.
    pub fn start(config: PollerConfig, on_event: impl FnMut(Event) + Send + 'static) -> Result<Poller> {
        if config.servers.is_empty() {
            return Err(Error::usage("no ZooKeeper server to watch"));
        }
        if config.interval.is_zero() {
            return Err(Error::usage("the ZooKeeper poll interval must be more than zero"));
        }
        let inner = Arc::new(Inner {
            ensemble: config.ensemble,
            servers: config.servers,
            shared: Mutex::new(Shared::default()),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let thread = {
            let inner = Arc::clone(&inner);
            let interval = config.interval;
            std::thread::Builder::new()
                .name("zookeeper-health".into())
                .spawn(move || run(&inner, interval, on_event))
                .map_err(|e| Error::internal(format!("cannot start the ZooKeeper health thread: {e}")))?
        };
        Ok(Poller { inner, thread: Some(thread) })
    }

    /// The latest reading of every server that has been read, by server.
    pub fn readings(&self) -> BTreeMap<String, Reading> {
        lock(&self.inner.shared).readings.clone()
    }

    /// How many rounds (every server asked once) have been read.
    pub fn rounds(&self) -> u64 {
        lock(&self.inner.shared).rounds
    }

    /// The Prometheus collector of the latest readings (cheap; as many as wanted).
    pub fn collector(&self) -> ZookeeperCollector {
        ZookeeperCollector { inner: Arc::clone(&self.inner) }
    }

    /// Stops the thread and waits for it (at most one round: [`TIMEOUT`] twice).
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        *lock(&self.inner.stop) = true;
        self.inner.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.halt();
    }
}

/// An episode of trouble: its key, since when, and who had a problem during it.
struct Episode {
    key: String,
    started: Instant,
    /// Every server that had a problem during the episode, in order.
    servers: Vec<String>,
}

/// What the rounds so far have shown: the episode under way, what is wrong in it, and which
/// servers have been said to refuse `mntr`. Each round's answers go through
/// [`Episodes::observe`], which gives the events they cause.
pub struct Episodes {
    ensemble: String,
    episode: Option<Episode>,
    /// The problem of each server that has one, as of the last round.
    wrong: BTreeMap<String, Problem>,
    /// Servers said (in the log) to refuse `mntr`, until they answer it.
    unreadable: Vec<String>,
    /// The start of the last episode, in ms since the epoch: the next one starts later, so
    /// no two episodes share a key.
    last_start_ms: u128,
}

impl Episodes {
    /// No episode yet: everything is assumed well until a round says otherwise.
    pub fn new(ensemble: &str) -> Episodes {
        Episodes {
            ensemble: ensemble.to_owned(),
            episode: None,
            wrong: BTreeMap::new(),
            unreadable: Vec::new(),
            last_start_ms: 0,
        }
    }

    /// Takes one round's answers (every server's) and returns the events they cause: a
    /// `zookeeper-degraded` for each server whose problem is new, then a `zookeeper-ok` if
    /// that ends an episode. Logs a server that refuses `mntr` once, and again only after it
    /// has answered it.
    pub fn observe(&mut self, answers: &BTreeMap<String, Answer>) -> Vec<Event> {
        for (server, answer) in answers {
            let refuses = *answer == Answer::NotWhitelisted;
            let said = self.unreadable.contains(server);
            if refuses && !said {
                log::info!("ZooKeeper {server} is up, but mntr is not in its 4lw.commands.whitelist: no statistics from it");
                self.unreadable.push(server.clone());
            } else if said && matches!(answer, Answer::Stats(_)) {
                log::info!("ZooKeeper {server} answers mntr now");
                self.unreadable.retain(|s| s != server);
            }
        }
        let mut events = Vec::new();
        let now = problems(answers);
        for (server, (problem, detail)) in &now {
            if self.wrong.get(server) == Some(problem) {
                continue;
            }
            let ensemble = &self.ensemble;
            let last = &mut self.last_start_ms;
            let episode = self.episode.get_or_insert_with(|| {
                let ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0).max(*last + 1);
                *last = ms;
                Episode { key: format!("zookeeper:{ensemble}:{ms}"), started: Instant::now(), servers: Vec::new() }
            });
            if !episode.servers.contains(server) {
                episode.servers.push(server.clone());
            }
            events.push(
                Event::new(Kind::ZookeeperDegraded, ensemble, None, format!("{}:{server}", episode.key))
                    .with("server", server.as_str())
                    .with("problem", problem.name())
                    .with("detail", detail.as_str()),
            );
        }
        if !now.is_empty() {
            for server in self.wrong.keys().filter(|s| !now.contains_key(*s)) {
                log::info!("ZooKeeper {server} is fine again");
            }
        }
        self.wrong = now.into_iter().map(|(s, (p, _))| (s, p)).collect();
        if self.wrong.is_empty() {
            if let Some(episode) = self.episode.take() {
                let servers: Vec<Value> = episode.servers.iter().map(|s| Value::from(s.as_str())).collect();
                let seconds = (episode.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
                events.push(
                    Event::new(Kind::ZookeeperOk, &self.ensemble, None, episode.key)
                        .with("servers", servers)
                        .with("degraded_seconds", seconds),
                );
            }
        }
        events
    }
}

fn run(inner: &Inner, interval: Duration, mut on_event: impl FnMut(Event)) {
    let mut episodes = Episodes::new(&inner.ensemble);
    loop {
        let started = Instant::now();
        let answers: BTreeMap<String, Answer> = std::thread::scope(|scope| {
            let asks: Vec<_> = inner.servers.iter().map(|s| (s.clone(), scope.spawn(move || ask(s)))).collect();
            asks.into_iter().map(|(s, h)| (s, h.join().unwrap_or_else(|_| Answer::Down("the poll panicked".into())))).collect()
        });
        if *lock(&inner.stop) {
            return;
        }
        // The readings first: whoever hears of an event finds the round that caused it.
        {
            let at = SystemTime::now();
            let mut shared = lock(&inner.shared);
            for (server, answer) in &answers {
                shared.readings.insert(server.clone(), Reading { answer: answer.clone(), at });
            }
            shared.rounds += 1;
        }
        for event in episodes.observe(&answers) {
            log::info!("{event}");
            on_event(event);
        }
        let next = started + interval;
        let mut stop = lock(&inner.stop);
        while !*stop {
            let left = next.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            stop = inner.wake.wait_timeout(stop, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        if *stop {
            return;
        }
    }
}

/// The latest readings as Prometheus gauges, each labelled `ensemble` and `server` (register
/// it in a registry without a prefix: the names carry theirs):
///
/// - `zk_coffee_zookeeper_up`: 1 while the server answers (also when `mntr` is not
///   whitelisted), else 0; every server of the connect string, from the first round on.
/// - `zk_coffee_zookeeper_mode{mode}`: 1 for its current mode, 0 for the other three; all 0
///   while it is down, not serving or unreadable.
/// - From servers that answer `mntr` only: `zk_coffee_zookeeper_{avg,min,max}_latency_seconds`,
///   `..._outstanding_requests`, `..._znodes`, `..._approximate_data_size_bytes`,
///   `..._alive_connections`, and from a leader `..._synced_followers`.
#[derive(Clone)]
pub struct ZookeeperCollector {
    inner: Arc<Inner>,
}

impl fmt::Debug for ZookeeperCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZookeeperCollector").field("ensemble", &self.inner.ensemble).finish()
    }
}

/// One gauge family: its name, help, unit and the value each server's statistics give.
type Family = (&'static str, &'static str, Option<Unit>, fn(&Stats) -> Option<f64>);

const FAMILIES: &[Family] = &[
    ("zk_coffee_zookeeper_avg_latency", "Average request latency the server measured.", Some(Unit::Seconds), |s| {
        Some(s.avg_latency_seconds)
    }),
    ("zk_coffee_zookeeper_min_latency", "Smallest request latency the server measured.", Some(Unit::Seconds), |s| {
        Some(s.min_latency_seconds)
    }),
    ("zk_coffee_zookeeper_max_latency", "Largest request latency the server measured.", Some(Unit::Seconds), |s| {
        Some(s.max_latency_seconds)
    }),
    ("zk_coffee_zookeeper_outstanding_requests", "Requests queued on the server, not yet answered.", None, |s| {
        Some(s.outstanding_requests as f64)
    }),
    ("zk_coffee_zookeeper_znodes", "Znodes in the server's tree.", None, |s| Some(s.znodes as f64)),
    (
        "zk_coffee_zookeeper_approximate_data_size",
        "The data of all znodes, as the server approximates it.",
        Some(Unit::Bytes),
        |s| Some(s.approximate_data_size_bytes as f64),
    ),
    ("zk_coffee_zookeeper_alive_connections", "Client connections open on the server.", None, |s| {
        Some(s.alive_connections as f64)
    }),
    ("zk_coffee_zookeeper_synced_followers", "A leader's voting followers in sync.", None, |s| {
        s.synced_followers.map(|n| n as f64)
    }),
];

impl Collector for ZookeeperCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::result::Result<(), fmt::Error> {
        let readings = lock(&self.inner.shared).readings.clone();
        let ensemble = self.inner.ensemble.as_str();
        let read: Vec<(&str, &Answer)> =
            self.inner.servers.iter().filter_map(|s| readings.get(s).map(|r| (s.as_str(), &r.answer))).collect();
        {
            let mut up = encoder.encode_descriptor(
                "zk_coffee_zookeeper_up",
                "Whether the server answers (1) or not (0).",
                None,
                MetricType::Gauge,
            )?;
            for (server, answer) in &read {
                ConstGauge::new(i64::from(answer.is_up()))
                    .encode(up.encode_family(&[("ensemble", ensemble), ("server", server)])?)?;
            }
        }
        {
            let mut mode = encoder.encode_descriptor(
                "zk_coffee_zookeeper_mode",
                "The server's mode: 1 for the current one (all 0 while it is down or unreadable).",
                None,
                MetricType::Gauge,
            )?;
            for (server, answer) in &read {
                let current = match answer {
                    Answer::Stats(stats) => Some(stats.mode),
                    _ => None,
                };
                for m in Mode::ALL {
                    let labels = [("ensemble", ensemble), ("server", server), ("mode", m.name())];
                    ConstGauge::new(i64::from(current == Some(m))).encode(mode.encode_family(&labels)?)?;
                }
            }
        }
        for (name, help, unit, value) in FAMILIES {
            let values: Vec<(&str, f64)> = read
                .iter()
                .filter_map(|(server, answer)| match answer {
                    Answer::Stats(stats) => value(stats).map(|v| (*server, v)),
                    _ => None,
                })
                .collect();
            if values.is_empty() {
                continue;
            }
            let mut family = encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
            for (server, v) in values {
                ConstGauge::new(v).encode(family.encode_family(&[("ensemble", ensemble), ("server", server)])?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STANDALONE: &str = include_str!("testdata/mntr-standalone.txt");
    const LEADER: &str = include_str!("testdata/mntr-leader.txt");
    const FOLLOWER: &str = include_str!("testdata/mntr-follower.txt");

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
}
