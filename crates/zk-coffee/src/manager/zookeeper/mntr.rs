//! One server's `mntr`: asking it over plain TCP ([`ask`]) or, for a TLS-only server, over
//! TLS with the roles' own settings ([`ask_over`]: ZooKeeper answers four-letter words on its
//! secureClientPort too), reading its answer ([`Answer::parse`]), and what is wrong with a
//! round of answers ([`problems`]).

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant, SystemTime};

use crate::session::Tls;

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
    ask_over(server, None)
}

/// [`ask`], over TLS with `tls` if given (the handshake within [`TIMEOUT`] more). A failed
/// handshake is [`Answer::Down`] with the reason [`Tls::connect`] names (wrong CA, expired
/// certificate): a server the roles cannot reach either.
pub fn ask_over(server: &str, tls: Option<&Tls>) -> Answer {
    let text = match tls {
        None => mntr_text(server),
        Some(tls) => tls.connect(server, TIMEOUT).and_then(|mut stream| {
            read_answer(&mut stream, |s, left| s.sock.set_read_timeout(Some(left)).map_err(|e| e.to_string()))
        }),
    };
    match text {
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
        return read_answer(&mut stream, |s, left| s.set_read_timeout(Some(left)).map_err(|e| e.to_string()));
    }
    Err(last)
}

/// Sends `mntr` on `stream` and reads the answer to its end within [`TIMEOUT`];
/// `read_timeout` sets the stream's read timeout.
fn read_answer<S: Read + Write>(
    stream: &mut S,
    read_timeout: impl Fn(&mut S, Duration) -> std::result::Result<(), String>,
) -> std::result::Result<String, String> {
    let deadline = Instant::now() + TIMEOUT;
    stream.write_all(b"mntr").and_then(|()| stream.flush()).map_err(|e| format!("cannot send mntr: {e}"))?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no complete answer within {} ms", TIMEOUT.as_millis()));
        }
        read_timeout(stream, left)?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) if (reply.len() + n) as u64 > MAX_ANSWER => return Err("an answer larger than 1 MiB".into()),
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(format!("no complete answer within {} ms", TIMEOUT.as_millis()))
            }
            // A TLS server closes without close_notify after its answer: the answer is whole.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !reply.is_empty() => break,
            Err(e) => return Err(format!("reading the answer: {e}")),
        }
    }
    Ok(String::from_utf8_lossy(&reply).into_owned())
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
