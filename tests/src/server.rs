//! Private ZooKeeper servers ([`ZkServer`], started by `scripts/zk.sh`), at most
//! [`max_servers`] at once, and what a server says about itself (`mntr`, `cons`, the other
//! four-letter words).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use zookeeper::{WatchedEvent, ZkError, ZooKeeper};

use crate::procfs::*;
use crate::*;

// ---------------------------------------------------------------------------------------------
// ZooKeeper servers

/// How many servers one test process runs at once (`ZK_COFFEE_TESTS_MAX_SERVERS`, default 3):
/// each is a JVM with up to 256 MiB of heap, and the machine may have 2 cores.
pub fn max_servers() -> usize {
    std::env::var("ZK_COFFEE_TESTS_MAX_SERVERS").ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(3)
}

pub(crate) struct Slots {
    pub(crate) used: Mutex<usize>,
    pub(crate) freed: Condvar,
}

pub(crate) fn slots() -> &'static Slots {
    static SLOTS: OnceLock<Slots> = OnceLock::new();
    SLOTS.get_or_init(|| Slots { used: Mutex::new(0), freed: Condvar::new() })
}

/// One of the [`max_servers`] slots; given back on drop.
pub(crate) struct Permit;

impl Permit {
    fn acquire() -> Permit {
        let slots = slots();
        let max = max_servers();
        let mut used = lock(&slots.used);
        while *used >= max {
            used = slots.freed.wait(used).unwrap_or_else(|p| p.into_inner());
        }
        *used += 1;
        Permit
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let slots = slots();
        *lock(&slots.used) -= 1;
        slots.freed.notify_one();
    }
}

/// A port nothing listens on (it was free a moment ago), for "unreachable" tests.
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// How a [`ZkServer`] is started.
#[derive(Debug, Clone)]
pub struct ZkServerBuilder {
    name: String,
    tick_ms: u32,
    four_letter_words: Option<String>,
    tls: Option<TlsStart>,
}

/// How a TLS-only server is started (`zk.sh start --tls`).
#[derive(Debug, Clone, Default)]
struct TlsStart {
    /// `ssl.clientAuth` (`none` unless told).
    client_auth: Option<String>,
    /// The server's certificate expired yesterday.
    expired: bool,
}

/// The TLS files of a TLS-only [`ZkServer`] (made by `zk.sh start --tls` in `DIR/tls`): the CA
/// that signed the server's certificate, and a client identity signed by it.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// `DIR/tls`.
    pub dir: PathBuf,
    /// The CA certificate (PEM): what `--tls-ca` takes.
    pub ca: PathBuf,
    /// A client certificate (CN `zk-coffee-client`) and its key, signed by the CA.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// The server wants a client certificate (`ssl.clientAuth=need`).
    pub needs_client_cert: bool,
}

impl TlsFiles {
    pub(crate) fn in_dir(dir: PathBuf, needs_client_cert: bool) -> TlsFiles {
        TlsFiles {
            ca: dir.join("ca.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
            dir,
            needs_client_cert,
        }
    }

    /// What a role needs to connect: `--tls-ca CA`, and the client identity if the server
    /// wants one.
    pub fn role_args(&self) -> Vec<std::ffi::OsString> {
        let mut args = vec!["--tls-ca".into(), self.ca.clone().into_os_string()];
        if self.needs_client_cert {
            args.extend(["--tls-cert".into(), self.client_cert.clone().into_os_string()]);
            args.extend(["--tls-key".into(), self.client_key.clone().into_os_string()]);
        }
        args
    }

    /// The library's TLS settings for these files (as `role_args` gives a role).
    pub fn session_tls(&self) -> zk_coffee::session::Tls {
        let identity = self.needs_client_cert.then_some((self.client_cert.as_path(), self.client_key.as_path()));
        zk_coffee::session::Tls::from_files(&self.ca, identity).expect("the harness's TLS files are usable")
    }

    /// A new client certificate for `name` (its CN) signed by the server's CA, and its key
    /// (`zk.sh tls-cert`); `expired`: its validity ended yesterday.
    pub fn client_identity(&self, name: &str, expired: bool) -> (PathBuf, PathBuf) {
        let mut cmd = Command::new("bash");
        cmd.arg(zk_script()).arg("tls-cert").arg(&self.dir).arg(name).stdin(Stdio::null());
        if expired {
            cmd.arg("--expired");
        }
        let out = cmd.output().expect("run zk.sh tls-cert");
        assert!(out.status.success(), "zk.sh tls-cert {name} failed: {}", String::from_utf8_lossy(&out.stderr));
        (self.dir.join(format!("{name}.pem")), self.dir.join(format!("{name}.key")))
    }
}

impl ZkServerBuilder {
    /// A TLS-only server (`zk.sh start --tls`: secureClientPort, no clientPort), with a CA and
    /// client identity of its own ([`ZkServer::tls`]); [`ZkServer::cmd`] gives roles the
    /// flags to reach it. The raw `zookeeper` client speaks no TLS: the server's helper reads
    /// ([`ZkServer::tree`], ...) go through a library session instead, and [`ZkServer::raw`]
    /// is refused.
    pub fn tls(mut self) -> ZkServerBuilder {
        self.tls.get_or_insert_with(TlsStart::default);
        self
    }

    /// [`tls`](ZkServerBuilder::tls) with `ssl.clientAuth=MODE` (`need`: clients without a
    /// certificate signed by the server's CA are refused; the x509 auth scheme is on).
    pub fn tls_client_auth(mut self, mode: &str) -> ZkServerBuilder {
        self.tls.get_or_insert_with(TlsStart::default).client_auth = Some(mode.to_owned());
        self
    }

    /// [`tls`](ZkServerBuilder::tls) with a server certificate that expired yesterday.
    pub fn tls_expired(mut self) -> ZkServerBuilder {
        self.tls.get_or_insert_with(TlsStart::default).expired = true;
        self
    }

    /// ZooKeeper's tickTime; session timeouts are negotiated into 2..20 ticks.
    pub fn tick_ms(mut self, ms: u32) -> ZkServerBuilder {
        self.tick_ms = ms;
        self
    }

    /// Allows only these four-letter words (`4lw.commands.whitelist`, comma-separated; the
    /// harness's default is `*`). Keep `ruok` and `srvr`: `zk.sh` waits for the server with
    /// them. E.g. `"ruok,srvr"` for a server that refuses `mntr`.
    pub fn four_letter_words(mut self, words: &str) -> ZkServerBuilder {
        self.four_letter_words = Some(words.to_owned());
        self
    }

    /// A name for the server's directory (e.g. the test's name), to find it when debugging.
    pub fn name(mut self, name: &str) -> ZkServerBuilder {
        self.name = name.to_owned();
        self
    }

    /// Starts the server and waits until it serves requests.
    pub fn start(self) -> ZkServer {
        let permit = Permit::acquire();
        std::fs::create_dir_all(temp_root()).expect("create the temp root");
        let dir = temp_root().join(format!("{}-zk", unique_name(&self.name)));
        let tls = self.tls.as_ref().map(|t| TlsFiles::in_dir(dir.join("tls"), t.client_auth.as_deref() == Some("need")));
        let mut server = ZkServer {
            dir,
            connect: String::new(),
            tick_ms: self.tick_ms,
            four_letter_words: self.four_letter_words,
            tls_start: self.tls,
            tls,
            running: false,
            watchdog: None,
            client: Mutex::new(None),
            _permit: permit,
        };
        // The watchdog first: a test process killed while the server starts still has it
        // stopped (`zk.sh start` itself dies with the test thread, see `launch`).
        server.watchdog = Some(spawn_watchdog(&server.dir));
        server.launch();
        server
    }
}

/// A private ZooKeeper server started by `scripts/zk.sh start --dir DIR`, on a free port of
/// 127.0.0.1 with its own data directory.
///
/// Dropping it stops the server and removes its directory (`zk.sh stop DIR`, which only ever
/// signals this server's own PID). A detached watchdog does the same if the test process dies
/// without dropping it (SIGKILL, abort).
///
/// Helper reads ([`tree`](ZkServer::tree), [`node`](ZkServer::node), ...) go through one raw
/// client that the server keeps; [`raw`](ZkServer::raw) hands out clients of your own.
pub struct ZkServer {
    dir: PathBuf,
    connect: String,
    tick_ms: u32,
    /// `zk.sh start --4lw` on the first start (kept in its zoo.cfg for restarts).
    four_letter_words: Option<String>,
    /// `zk.sh start --tls ...` on the first start (kept in its zoo.cfg and DIR/tls).
    tls_start: Option<TlsStart>,
    tls: Option<TlsFiles>,
    running: bool,
    watchdog: Option<Child>,
    client: Mutex<Option<Helper>>,
    _permit: Permit,
}

/// The client behind the server's helper reads.
#[derive(Clone)]
enum Helper {
    Raw(Arc<ZooKeeper>),
    Tls(zk_coffee::Session),
}

/// One znode as the raw client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Its data.
    pub data: Vec<u8>,
    /// Whether it is ephemeral (has an owning session).
    pub ephemeral: bool,
    /// How many children it has.
    pub num_children: i32,
}

impl ZkServer {
    /// Starts a server with the default settings (tickTime 500 ms: sessions of 1 to 10 s).
    pub fn start() -> ZkServer {
        ZkServer::builder().start()
    }

    /// A builder for a server with other settings.
    pub fn builder() -> ZkServerBuilder {
        ZkServerBuilder { name: test_name(), tick_ms: 500, four_letter_words: None, tls: None }
    }

    fn launch(&mut self) {
        let tick = self.tick_ms.to_string();
        let mut cmd = Command::new("bash");
        cmd.arg(zk_script())
            .args([OsStr::new("start"), OsStr::new("--dir"), self.dir.as_os_str(), OsStr::new("--tick-ms"), OsStr::new(&tick)])
            .stdin(Stdio::null());
        if let Some(words) = &self.four_letter_words {
            cmd.args(["--4lw", words]);
        }
        if let Some(tls) = &self.tls_start {
            cmd.arg("--tls");
            if let Some(mode) = &tls.client_auth {
                cmd.args(["--client-auth", mode]);
            }
            if tls.expired {
                cmd.arg("--tls-expired");
            }
        }
        die_with_parent(&mut cmd);
        let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", zk_script().display()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            panic!(
                "`zk.sh start --dir {}` failed ({}):\n{stdout}{}",
                self.dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let line = stdout.lines().next().unwrap_or_default();
        let connect = line.split_whitespace().next().unwrap_or_default();
        assert!(connect.starts_with("127.0.0.1:"), "unexpected `zk.sh start` output: {stdout:?}");
        self.connect = connect.to_owned();
        self.running = true;
    }

    fn zk_stop(&self, keep: bool) {
        let mut cmd = Command::new("bash");
        cmd.arg(zk_script()).arg("stop").arg(&self.dir).stdin(Stdio::null());
        if keep {
            cmd.arg("--keep");
        }
        match cmd.output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "warning: `zk.sh stop {}` failed ({}): {}",
                self.dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("warning: cannot run zk.sh stop: {e}"),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn connect_string(&self) -> &str {
        &self.connect
    }

    /// `127.0.0.1:PORT/chroot`.
    pub fn connect_string_with_chroot(&self, chroot: &str) -> String {
        assert!(chroot.starts_with('/'), "a chroot starts with '/': {chroot:?}");
        format!("{}{chroot}", self.connect)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.connect.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port in the connect string")
    }

    /// The server's directory (`zoo.cfg`, `data/`, `server.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the server is running (as far as this guard knows).
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// Stops the server, keeping its port and data for [`start_again`](ZkServer::start_again).
    pub fn stop(&mut self) {
        self.close_client();
        if self.running {
            self.zk_stop(true);
            self.running = false;
        }
    }

    /// Starts a stopped server again on the same port with the same data (sessions that
    /// reconnect soon enough are resumed).
    pub fn start_again(&mut self) {
        assert!(!self.running, "the server is already running");
        self.launch();
    }

    /// Stops and starts the server.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// A command for `role` with `--zk` set to this server (and, for a TLS server, the TLS
    /// flags: [`TlsFiles::role_args`]).
    pub fn cmd(&self, role: Role) -> TestCommand {
        let cmd = TestCommand::new(role).zk(&self.connect);
        match &self.tls {
            Some(tls) => cmd.args(tls.role_args()),
            None => cmd,
        }
    }

    /// The TLS files of a TLS server ([`ZkServerBuilder::tls`]).
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// A library session to this server (with TLS for a TLS server), asking for
    /// `session_timeout`.
    pub fn session(&self, session_timeout: Duration) -> zk_coffee::Session {
        let config = zk_coffee::SessionConfig {
            credentials: None,
            identity: None,
            servers: self.connect.parse().expect("a valid connect string"),
            session_timeout,
            connect_timeout: Duration::from_secs(10),
            tls: self.tls.as_ref().map(TlsFiles::session_tls),
        };
        zk_coffee::Session::connect(config).expect("connect the session")
    }

    /// Runs `shop-init` and panics unless it succeeds.
    pub fn init_shop(&self) -> Output {
        let out = self.cmd(Role::ShopInit).run(EXIT_TIMEOUT);
        out.assert_code(exit::OK);
        out
    }

    /// A new raw client (the `zookeeper` crate, as the original program used), connected: waits
    /// until a call goes through, since `ZooKeeper::connect` returns before it is.
    pub fn raw(&self) -> ZooKeeper {
        assert!(self.tls.is_none(), "the raw client speaks no TLS: use ZkServer::session for a TLS server");
        connect_raw(&self.connect)
    }

    /// A new raw client chrooted at `chroot` (which must exist).
    pub fn raw_chroot(&self, chroot: &str) -> ZooKeeper {
        assert!(self.tls.is_none(), "the raw client speaks no TLS: use ZkServer::session for a TLS server");
        connect_raw(&self.connect_string_with_chroot(chroot))
    }

    /// The server's own helper client: a raw one, or a library session over TLS.
    fn client(&self) -> Helper {
        assert!(self.running, "the server is stopped");
        let mut client = lock(&self.client);
        client
            .get_or_insert_with(|| match self.tls {
                None => Helper::Raw(Arc::new(self.raw())),
                Some(_) => Helper::Tls(self.session(Duration::from_secs(10))),
            })
            .clone()
    }

    fn close_client(&self) {
        match lock(&self.client).take() {
            Some(Helper::Raw(client)) => {
                let _ = client.close();
            }
            Some(Helper::Tls(session)) => session.close(),
            None => {}
        }
    }

    /// The node at `path`, or `None` if there is none.
    pub fn node(&self, path: &str) -> Option<Node> {
        match self.client() {
            Helper::Raw(client) => match client.get_data(path, false) {
                Ok((data, stat)) => Some(Node { data, ephemeral: stat.is_ephemeral(), num_children: stat.num_children }),
                Err(ZkError::NoNode) => None,
                Err(e) => panic!("get_data {path}: {e:?}"),
            },
            Helper::Tls(session) => {
                let node = session.read(path).unwrap_or_else(|e| panic!("read {path}: {e}"))?;
                let num_children = self.children(path).map_or(0, |c| c.len() as i32);
                Some(Node { data: node.data, ephemeral: node.ephemeral_owner != 0, num_children })
            }
        }
    }

    /// Whether `path` exists.
    pub fn exists(&self, path: &str) -> bool {
        match self.client() {
            Helper::Raw(client) => match client.exists(path, false) {
                Ok(stat) => stat.is_some(),
                Err(e) => panic!("exists {path}: {e:?}"),
            },
            Helper::Tls(session) => session.exists(path).unwrap_or_else(|e| panic!("exists {path}: {e}")),
        }
    }

    /// The names of `path`'s children, sorted; `None` if `path` does not exist.
    pub fn children(&self, path: &str) -> Option<Vec<String>> {
        let children = match self.client() {
            Helper::Raw(client) => match client.get_children(path, false) {
                Ok(children) => Some(children),
                Err(ZkError::NoNode) => None,
                Err(e) => panic!("get_children {path}: {e:?}"),
            },
            Helper::Tls(session) => session.children(path).unwrap_or_else(|e| panic!("get_children {path}: {e}")),
        };
        children.map(|mut c| {
            c.sort();
            c
        })
    }

    /// Every node below `path` (not `path` itself), as full paths, sorted. ZooKeeper's own
    /// `/zookeeper` subtree is left out. Nodes that vanish while listing are skipped.
    pub fn tree(&self, path: &str) -> Vec<String> {
        let mut found = Vec::new();
        let mut stack = vec![path.to_owned()];
        while let Some(p) = stack.pop() {
            let Some(children) = self.children(&p) else { continue };
            for child in children {
                let full = if p == "/" { format!("/{child}") } else { format!("{p}/{child}") };
                if full == "/zookeeper" {
                    continue;
                }
                found.push(full.clone());
                stack.push(full);
            }
        }
        found.sort();
        found
    }

    /// The baristas standing on the rota (`/zk-coffee/rota/{name}-{sequence}`), lowest place
    /// first: the first minds the group, each other the one before it.
    pub fn rota(&self) -> Vec<String> {
        let mut places: Vec<(u64, String)> = self
            .children("/zk-coffee/rota")
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| {
                let (name, digits) = c.rsplit_once('-')?;
                Some((digits.parse().ok()?, name.to_owned()))
            })
            .collect();
        places.sort();
        places.into_iter().map(|(_, name)| name).collect()
    }

    /// [`ZkServer::tree`] without the places on the rota (their names end in a sequence: see
    /// [`ZkServer::rota`]).
    pub fn tree_off_rota(&self, path: &str) -> Vec<String> {
        self.tree(path).into_iter().filter(|p| !p.contains("/zk-coffee/rota/")).collect()
    }

    /// The server's `mntr` four-letter-word report, e.g. `zk_ephemerals_count` (over TLS for a
    /// TLS server).
    pub fn mntr(&self) -> BTreeMap<String, String> {
        let reply = match &self.tls {
            None => {
                let mut stream = TcpStream::connect(("127.0.0.1", self.port())).expect("connect for mntr");
                stream.set_read_timeout(Some(Duration::from_secs(10))).expect("set a read timeout");
                stream.write_all(b"mntr").expect("send mntr");
                let mut reply = String::new();
                stream.read_to_string(&mut reply).expect("read the mntr reply");
                reply
            }
            Some(tls) => {
                let mut stream = tls.session_tls().connect(&self.connect, Duration::from_secs(10)).expect("TLS for mntr");
                stream.write_all(b"mntr").expect("send mntr");
                let mut reply = Vec::new();
                // The server closes without a TLS close_notify: the answer is whole then.
                match stream.read_to_end(&mut reply) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
                    Err(e) => panic!("read the mntr reply: {e}"),
                }
                String::from_utf8_lossy(&reply).into_owned()
            }
        };
        reply.lines().filter_map(|l| l.split_once('\t')).map(|(k, v)| (k.to_owned(), v.trim().to_owned())).collect()
    }

    /// The end of the server's log, for failure messages.
    /// Java stack-trace lines and the server's notes about `ruok`/`srvr` polling are left out.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let all: Vec<&str> = log
            .lines()
            .filter(|l| !l.starts_with('\t') && !l.contains(" command from /") && !l.starts_with("EndOfStreamException"))
            .collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        if std::thread::panicking() && self.running {
            eprintln!("---- end of {}/server.log ----\n{}", self.dir.display(), self.log_tail(30));
        }
        self.close_client();
        self.zk_stop(false);
        self.running = false;
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

/// Starts a detached shell that stops the server in `dir` once this test process is gone. It
/// is in its own session (setsid), so signals to the test's process group do not reach it.
pub(crate) fn spawn_watchdog(dir: &Path) -> Child {
    let script = "while kill -0 \"$1\" 2>/dev/null; do sleep 1; done; exec bash \"$2\" stop \"$3\"";
    Command::new("setsid")
        .args(["sh", "-c", script, "zk-coffee-watchdog"])
        .arg(std::process::id().to_string())
        .arg(zk_script())
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the watchdog (setsid sh): {e}"))
}

/// Connects a raw client to `connect` and waits (up to 20 s) until a call goes through.
pub fn connect_raw(connect: &str) -> ZooKeeper {
    let zk = ZooKeeper::connect(connect, Duration::from_secs(10), |_: WatchedEvent| {})
        .unwrap_or_else(|e| panic!("ZooKeeper::connect({connect}): {e:?}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match zk.exists("/", false) {
            Ok(_) | Err(ZkError::NoNode) => return zk,
            Err(ZkError::ConnectionLoss) | Err(ZkError::OperationTimeout) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("raw client for {connect} not connected within 20 s: {e:?}"),
        }
    }
}

/// A library session ([`zk_coffee::Session`], what the binaries build from `--zk`) to
/// `connect`, without credentials, asking for `session_timeout`.
pub fn connect_session(connect: &str, session_timeout: Duration) -> zk_coffee::Session {
    let config = zk_coffee::SessionConfig {
        credentials: None,
        identity: None,
        servers: connect.parse().expect("a valid connect string"),
        session_timeout,
        connect_timeout: Duration::from_secs(10),
        tls: None,
    };
    zk_coffee::Session::connect(config).expect("connect the session")
}

/// Sends a four-letter word to the server on `127.0.0.1:port` and returns its reply (empty if
/// it cannot be reached within a few seconds).
pub fn four_letter(port: u16, word: &str) -> String {
    let Ok(mut stream) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream.write_all(word.as_bytes()).is_err() {
        return String::new();
    }
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply
}

/// Whether the server on `port` lists, in its `cons` report, a client connection from one of
/// `local_ports`.
pub fn serves_connection_from(port: u16, local_ports: &[u16]) -> bool {
    let cons = four_letter(port, "cons");
    local_ports.iter().any(|p| cons.contains(&format!("/127.0.0.1:{p}[")))
}

/// Which of the servers on `ports` (index into it) `pid` is connected to, if any: its
/// connections to one of those ports, confirmed by that server's `cons` report.
pub fn member_serving(pid: u32, ports: &[u16]) -> Option<usize> {
    let conns = tcp_connections(pid);
    ports.iter().position(|port| {
        let locals: Vec<u16> = conns.iter().filter(|c| c.remote == *port).map(|c| c.local).collect();
        !locals.is_empty() && serves_connection_from(*port, &locals)
    })
}
