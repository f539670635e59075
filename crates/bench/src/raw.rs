//! The bounds set by ZooKeeper itself, measured with the same client crate the shop uses:
//! create+delete pairs per second, and how long a watch takes to fire in another session.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use zookeeper::{Acl, CreateMode, WatchedEvent, ZooKeeper};

use crate::common::{connect, delete_tree, ensure_path, own_cpu, Env, Result, ServerCpu, Stats};

/// `pairs`: `threads` threads share one handle; each creates a PERSISTENT_SEQUENTIAL node
/// and deletes it, again and again: the least work an order needs (placed, then served).
pub fn pairs(env: &Env, threads: usize, seconds: f64, warmup: f64) -> Result<String> {
    let zk = Arc::new(connect(&env.servers, Duration::from_secs(10))?);
    let parent = env.chroot("pairs");
    ensure_path(&zk, &parent)?;
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (zk, prefix) = (Arc::clone(&zk), format!("{parent}/coffee"));
            let (measuring, stop, count, errors) =
                (Arc::clone(&measuring), Arc::clone(&stop), Arc::clone(&count), Arc::clone(&errors));
            std::thread::spawn(move || {
                let mut stats = Stats::default();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let ok = zk
                        .create(&prefix, b"tesora".to_vec(), Acl::open_unsafe().clone(), CreateMode::PersistentSequential)
                        .and_then(|path| zk.delete(&path, None))
                        .is_ok();
                    if !ok {
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
    let (server, client) = (ServerCpu::start(env.server_pid), own_cpu());
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let n = count.load(Ordering::SeqCst);
    let elapsed = started.elapsed();
    let client = own_cpu() - client;
    let server = server.us_per(n as f64);
    measuring.store(false, Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    let mut stats = Stats::default();
    for w in workers {
        stats.extend(w.join().map_err(|_| "a pairs thread panicked")?);
    }
    delete_tree(&zk, &parent)?;
    let _ = zk.close();
    Ok(format!(
        "pairs threads={threads} seconds={:.1} pairs={n} pairs_per_s={:.1} pair_p50_ms={:.3} pair_p99_ms={:.3} errors={} \
         client_cpu_us_per_pair={:.0} server_cpu_us_per_pair={server}",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        stats.ms(50.0),
        stats.ms(99.0),
        errors.load(Ordering::SeqCst),
        client.as_secs_f64() * 1e6 / n.max(1) as f64,
    ))
}

/// `watch-rtt`: session A creates (then deletes) a node that session B watches with
/// `exists`; the time from A's call to B's watch firing. Also the plain call times.
pub fn watch_rtt(env: &Env, samples: usize) -> Result<String> {
    let a = connect(&env.servers, Duration::from_secs(10))?;
    let b = connect(&env.servers, Duration::from_secs(10))?;
    let parent = env.chroot("watch");
    ensure_path(&a, &parent)?;
    let (mut created, mut deleted) = (Stats::default(), Stats::default());
    let (mut create_call, mut delete_call, mut exists_call) = (Stats::default(), Stats::default(), Stats::default());
    let watch = |b: &ZooKeeper, path: &str, calls: &mut Stats| -> Result<mpsc::Receiver<Instant>> {
        let (tx, rx) = mpsc::channel();
        let t = Instant::now();
        b.exists_w(path, move |_: WatchedEvent| {
            let _ = tx.send(Instant::now());
        })
        .map_err(|e| format!("exists_w {path}: {e:?}"))?;
        calls.push(t.elapsed());
        Ok(rx)
    };
    for i in 0..samples.max(1) {
        let path = format!("{parent}/n{i}");
        let rx = watch(&b, &path, &mut exists_call)?;
        let t0 = Instant::now();
        a.create(&path, b"tesora".to_vec(), Acl::open_unsafe().clone(), CreateMode::Persistent)
            .map_err(|e| format!("create {path}: {e:?}"))?;
        create_call.push(t0.elapsed());
        let fired = rx.recv_timeout(Duration::from_secs(10)).map_err(|_| format!("the watch on {path} never fired"))?;
        created.push(fired.saturating_duration_since(t0));

        let rx = watch(&b, &path, &mut exists_call)?;
        let t0 = Instant::now();
        a.delete(&path, None).map_err(|e| format!("delete {path}: {e:?}"))?;
        delete_call.push(t0.elapsed());
        let fired = rx.recv_timeout(Duration::from_secs(10)).map_err(|_| format!("the watch on {path} never fired"))?;
        deleted.push(fired.saturating_duration_since(t0));
    }
    delete_tree(&a, &parent)?;
    let _ = a.close();
    let _ = b.close();
    Ok(format!(
        "watch-rtt samples={} create_watch_p50_ms={:.3} create_watch_p99_ms={:.3} delete_watch_p50_ms={:.3} \
         delete_watch_p99_ms={:.3} create_call_p50_ms={:.3} delete_call_p50_ms={:.3} exists_call_p50_ms={:.3}",
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

