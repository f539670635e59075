//! The bounds set by ZooKeeper itself: create+delete pairs per second, and how long a watch
//! takes to fire in another session. Each with either client crate: `zookeeper` (0.8, sync,
//! the shop's first client) or `zookeeper-client` (async, the shop's client now, driven the way
//! the shop's session drives it: `block_on` on the calling thread).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use zk_coffee::cli::ConnectArgs;
use zk_coffee::Session;
use zookeeper::{Acl, CreateMode, WatchedEvent, ZooKeeper};
use zookeeper_client as zkc;

use crate::common::{connect, delete_tree, ensure_path, own_cpu, Env, Result, ServerCpu, Stats};

/// Which client crate a raw step uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Client {
    /// `zookeeper` 0.8 (sync).
    Zookeeper,
    /// `zookeeper-client` (async), as the shop's session uses it.
    ZookeeperClient,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Zookeeper => "zookeeper",
            Client::ZookeeperClient => "zookeeper-client",
        }
    }
}

/// One create+delete pair on either client.
#[derive(Clone)]
enum Handle {
    Sync(Arc<ZooKeeper>),
    Async(zkc::Client),
}

impl Handle {
    fn connect(env: &Env, client: Client) -> Result<Handle> {
        match client {
            Client::Zookeeper => Ok(Handle::Sync(Arc::new(connect(&env.servers, Duration::from_secs(10))?))),
            Client::ZookeeperClient => {
                let connector = zkc::Client::connector().with_session_timeout(Duration::from_secs(10));
                let client = async_io::block_on(connector.connect(&env.servers))
                    .map_err(|e| format!("cannot connect to {}: {e}", env.servers))?;
                Ok(Handle::Async(client))
            }
        }
    }

    fn pair(&self, prefix: &str) -> std::result::Result<(), String> {
        match self {
            Handle::Sync(zk) => zk
                .create(prefix, b"tesora".to_vec(), Acl::open_unsafe().clone(), CreateMode::PersistentSequential)
                .and_then(|path| zk.delete(&path, None))
                .map_err(|e| format!("{e:?}")),
            Handle::Async(c) => async_io::block_on(async {
                let options = zkc::CreateMode::PersistentSequential.with_acls(zkc::Acls::anyone_all());
                let (_, seq) = c.create(prefix, b"tesora", &options).await?;
                c.delete(&format!("{prefix}{seq}"), None).await
            })
            .map_err(|e| e.to_string()),
        }
    }

    fn close(self) {
        match self {
            Handle::Sync(zk) => {
                let _ = zk.close();
            }
            Handle::Async(c) => drop(c),
        }
    }
}

/// `pairs`: `threads` threads share one handle; each creates a PERSISTENT_SEQUENTIAL node
/// and deletes it, again and again: the least work an order needs (placed, then served).
pub fn pairs(env: &Env, client: Client, threads: usize, seconds: f64, warmup: f64) -> Result<String> {
    let admin = connect(&env.servers, Duration::from_secs(10))?;
    let parent = env.chroot("pairs");
    ensure_path(&admin, &parent)?;
    let zk = Handle::connect(env, client)?;
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (zk, prefix) = (zk.clone(), format!("{parent}/coffee"));
            let (measuring, stop, count, errors) =
                (Arc::clone(&measuring), Arc::clone(&stop), Arc::clone(&count), Arc::clone(&errors));
            std::thread::spawn(move || {
                let mut stats = Stats::default();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    if zk.pair(&prefix).is_err() {
                        errors.fetch_add(1, Ordering::Relaxed);
                    } else if measuring.load(Ordering::Relaxed) {
                        count.fetch_add(1, Ordering::Relaxed);
                        stats.push(t.elapsed());
                    }
                }
                stats
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(warmup));
    measuring.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let (server, cpu) = (ServerCpu::start(env.server_pid), own_cpu());
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let n = count.load(Ordering::SeqCst);
    let elapsed = started.elapsed();
    let cpu = own_cpu() - cpu;
    let server = server.us_per(n as f64);
    measuring.store(false, Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    let mut stats = Stats::default();
    for w in workers {
        stats.extend(w.join().map_err(|_| "a pairs thread panicked")?);
    }
    zk.close();
    delete_tree(&admin, &parent)?;
    let _ = admin.close();
    Ok(format!(
        "pairs client={} threads={threads} seconds={:.1} pairs={n} pairs_per_s={:.1} pair_p50_ms={:.3} pair_p99_ms={:.3} errors={} \
         client_cpu_us_per_pair={:.0} server_cpu_us_per_pair={server}",
        client.name(),
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        stats.ms(50.0),
        stats.ms(99.0),
        errors.load(Ordering::SeqCst),
        cpu.as_secs_f64() * 1e6 / n.max(1) as f64,
    ))
}

/// `watch-rtt`: session A creates (then deletes) a node that session B watches with
/// `exists`; the time from A's call to B's watch firing. Also the plain call times.
pub fn watch_rtt(env: &Env, client: Client, samples: usize) -> Result<String> {
    let admin = connect(&env.servers, Duration::from_secs(10))?;
    let parent = env.chroot("watch");
    ensure_path(&admin, &parent)?;
    let a = Handle::connect(env, client)?;
    let b = Handle::connect(env, client)?;
    let (mut created, mut deleted) = (Stats::default(), Stats::default());
    let (mut create_call, mut delete_call, mut exists_call) = (Stats::default(), Stats::default(), Stats::default());
    for i in 0..samples.max(1) {
        let path = format!("{parent}/n{i}");
        let rx = watch(&b, &path, &mut exists_call)?;
        let t0 = Instant::now();
        write(&a, &path, true)?;
        create_call.push(t0.elapsed());
        let fired = rx.recv_timeout(Duration::from_secs(10)).map_err(|_| format!("the watch on {path} never fired"))?;
        created.push(fired.saturating_duration_since(t0));

        let rx = watch(&b, &path, &mut exists_call)?;
        let t0 = Instant::now();
        write(&a, &path, false)?;
        delete_call.push(t0.elapsed());
        let fired = rx.recv_timeout(Duration::from_secs(10)).map_err(|_| format!("the watch on {path} never fired"))?;
        deleted.push(fired.saturating_duration_since(t0));
    }
    a.close();
    b.close();
    delete_tree(&admin, &parent)?;
    let _ = admin.close();
    Ok(format!(
        "watch-rtt client={} samples={} create_watch_p50_ms={:.3} create_watch_p99_ms={:.3} delete_watch_p50_ms={:.3} \
         delete_watch_p99_ms={:.3} create_call_p50_ms={:.3} delete_call_p50_ms={:.3} exists_call_p50_ms={:.3}",
        client.name(),
        created.len(),
        created.ms(50.0),
        created.ms(99.0),
        deleted.ms(50.0),
        deleted.ms(99.0),
        create_call.ms(50.0),
        delete_call.ms(50.0),
        exists_call.ms(50.0),
    ))
}

/// Sets an `exists` watch on `path` through `h`; the receiver gets the instant it fires.
fn watch(h: &Handle, path: &str, calls: &mut Stats) -> Result<mpsc::Receiver<Instant>> {
    let (tx, rx) = mpsc::channel();
    let t = Instant::now();
    match h {
        Handle::Sync(zk) => {
            zk.exists_w(path, move |_: WatchedEvent| {
                let _ = tx.send(Instant::now());
            })
            .map_err(|e| format!("exists_w {path}: {e:?}"))?;
            calls.push(t.elapsed());
        }
        Handle::Async(c) => {
            let (_, watcher) = async_io::block_on(c.check_and_watch_stat(path)).map_err(|e| format!("exists {path}: {e}"))?;
            calls.push(t.elapsed());
            // A thread of its own waits on the watcher, so the instant is taken when it fires.
            let (ready_tx, ready_rx) = mpsc::channel();
            std::thread::spawn(move || {
                async_io::block_on(async move {
                    let _ = ready_tx.send(());
                    watcher.changed().await;
                    let _ = tx.send(Instant::now());
                })
            });
            let _ = ready_rx.recv();
        }
    }
    Ok(rx)
}

/// Creates (`create`) or deletes `path` through `h`.
fn write(h: &Handle, path: &str, create: bool) -> Result<()> {
    match h {
        Handle::Sync(zk) if create => zk
            .create(path, b"tesora".to_vec(), Acl::open_unsafe().clone(), CreateMode::Persistent)
            .map(|_| ())
            .map_err(|e| format!("create {path}: {e:?}")),
        Handle::Sync(zk) => zk.delete(path, None).map_err(|e| format!("delete {path}: {e:?}")),
        Handle::Async(c) if create => {
            let options = zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all());
            async_io::block_on(c.create(path, b"tesora", &options)).map(|_| ()).map_err(|e| format!("create {path}: {e}"))
        }
        Handle::Async(c) => async_io::block_on(c.delete(path, None)).map_err(|e| format!("delete {path}: {e}")),
    }
}

/// Creates `n` orders (PERSISTENT_SEQUENTIAL `{bucket}/coffee`, data `tesora`) with the raw
/// client from `threads` threads on one handle; returns how long it took.
pub fn place_raw_orders(zk: &Arc<ZooKeeper>, bucket: &str, n: usize, threads: usize) -> Result<Duration> {
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (zk, next, prefix) = (Arc::clone(zk), Arc::clone(&next), format!("{bucket}/coffee"));
            std::thread::spawn(move || -> Result<()> {
                while next.fetch_add(1, Ordering::SeqCst) < n as u64 {
                    zk.create(&prefix, b"tesora".to_vec(), Acl::open_unsafe().clone(), CreateMode::PersistentSequential)
                        .map_err(|e| format!("create {prefix}: {e:?}"))?;
                }
                Ok(())
            })
        })
        .collect();
    for w in workers {
        w.join().map_err(|_| "an order thread panicked")??;
    }
    Ok(started.elapsed())
}

/// `calls`: one thread's `exists` and create+delete through the shop's [`Session`] (retries,
/// deadlines, the protected create's ACL tag) against the same calls on the raw client it is
/// built on (`zookeeper-client`, driven the same way).
pub fn calls(env: &Env, n: usize) -> Result<String> {
    let admin = connect(&env.servers, Duration::from_secs(10))?;
    let parent = env.chroot("calls");
    ensure_path(&admin, &parent)?;
    let Handle::Async(raw) = Handle::connect(env, Client::ZookeeperClient)? else { unreachable!() };
    let session = shop_session(&env.servers)?;
    let n = n.max(1);
    // Raw and session calls alternate in rounds of n/10, so that both see the same machine.
    let rounds = 10;
    let chunk = (n / rounds).max(1);
    let prefix = format!("{parent}/coffee");
    let pair = Handle::Async(raw.clone());
    let mut raw_exists = || async_io::block_on(raw.check_stat(&parent)).map(|_| ()).map_err(|e| e.to_string());
    let mut session_exists = || session.exists(&parent).map(|_| ()).map_err(|e| e.to_string());
    let mut raw_pair = || pair.pair(&prefix);
    let mut session_pair = || -> Result<()> {
        let path = session
            .create_sequential_protected(&prefix, b"tesora", "0123456789abcdef")
            .map_err(|e| e.to_string())?
            .ok_or("the parent vanished")?;
        session.delete(&path, None).map(|_| ()).map_err(|e| e.to_string())
    };
    let mut fs: [&mut dyn FnMut() -> Result<()>; 4] = [&mut raw_exists, &mut session_exists, &mut raw_pair, &mut session_pair];
    let mut spent = [(Duration::ZERO, Duration::ZERO); 4];
    for round in 0..=rounds {
        for (f, spent) in fs.iter_mut().zip(spent.iter_mut()) {
            let (t, cpu) = (Instant::now(), own_cpu());
            for _ in 0..chunk {
                f()?;
            }
            if round > 0 {
                // Round 0 warms up.
                spent.0 += t.elapsed();
                spent.1 += own_cpu() - cpu;
            }
        }
    }
    let us = |d: Duration| d.as_secs_f64() * 1e6 / (chunk * rounds) as f64;
    let [raw_exists, session_exists, raw_pair, session_pair] = spent.map(|(t, cpu)| (us(t), us(cpu)));
    let n = chunk * rounds;
    session.close();
    drop(raw);
    delete_tree(&admin, &parent)?;
    let _ = admin.close();
    Ok(format!(
        "calls n={n} raw_exists_us={:.0} session_exists_us={:.0} raw_exists_cpu_us={:.0} session_exists_cpu_us={:.0} \
         raw_pair_us={:.0} session_pair_us={:.0} raw_pair_cpu_us={:.0} session_pair_cpu_us={:.0}",
        raw_exists.0, session_exists.0, raw_exists.1, session_exists.1, raw_pair.0, session_pair.0, raw_pair.1, session_pair.1,
    ))
}

/// A session of the shop's own kind, made the way its binaries make theirs (`--zk SERVERS`).
fn shop_session(servers: &str) -> Result<Session> {
    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        connect: ConnectArgs,
    }
    let flags = Flags::try_parse_from(["zk-coffee-bench", "--zk", servers]).map_err(|e| e.to_string())?;
    flags.connect.connect().map_err(|e| e.to_string())
}
