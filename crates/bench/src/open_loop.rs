//! `open-loop`: the same shop under closed-loop and open-loop load at the same throughput,
//! then both again with the barista frozen (SIGSTOP) for a while in the middle of the run:
//! closed-loop customers stop arriving while the shop stalls, so their percentiles hide the
//! stall (coordinated omission); open-loop orders keep coming due and count from then, so
//! theirs show it.

use std::time::{Duration, Instant};

use crate::common::{await_members, connect, remove_chroot, stop_all, Env, Fields, Result};

/// How long baristas get to leave after SIGTERM before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// What one `open-loop` step is.
#[derive(Debug, Clone)]
pub struct OpenLoopRun {
    pub baristas: usize,
    pub brew: Duration,
    /// The closed loop's customers; the open loop runs at the throughput they reached.
    pub concurrency: usize,
    /// How long each of the four runs places orders.
    pub seconds: u64,
    /// How long the barista is frozen, from a third of the run in.
    pub freeze: Duration,
}

/// The four runs' figures in one line.
pub fn open_loop(env: &Env, run: &OpenLoopRun) -> Result<String> {
    let chroot = env.chroot("open-loop");
    env.shop_init(&chroot)?;
    let zk = connect(&env.connect_string(&chroot), Duration::from_secs(10))?;
    let mut baristas = Vec::new();
    for i in 0..run.baristas {
        baristas.push(env.barista(&chroot, &format!("b{:02}", i + 1), run.brew, &[])?);
    }
    let result = (|| -> Result<String> {
        await_members(&zk, run.baristas, Duration::from_secs(60))?;
        let secs = run.seconds.to_string();
        let closed_args = |c: usize| vec!["--duration".into(), secs.clone(), "--concurrency".into(), c.to_string()];
        let closed = load(env, &chroot, "open-loop-closed", closed_args(run.concurrency), None, &baristas)?;
        let rate = format!("{:.1}", closed.num("throughput")?);
        let open_args = || vec!["--duration".into(), secs.clone(), "--rate".into(), rate.clone()];
        let open = load(env, &chroot, "open-loop-open", open_args(), None, &baristas)?;
        let freeze = Some((Duration::from_secs(run.seconds) / 3, run.freeze));
        let frozen_closed = load(env, &chroot, "open-loop-closed-frozen", closed_args(run.concurrency), freeze, &baristas)?;
        let frozen_open = load(env, &chroot, "open-loop-open-frozen", open_args(), freeze, &baristas)?;
        let mut line = format!(
            "open-loop baristas={} brew_ms={} concurrency={} seconds={} freeze_ms={} rate={rate}",
            run.baristas,
            run.brew.as_millis(),
            run.concurrency,
            run.seconds,
            run.freeze.as_millis()
        );
        for (name, f) in [("closed", &closed), ("open", &open), ("frozen_closed", &frozen_closed), ("frozen_open", &frozen_open)]
        {
            for key in ["served", "throughput", "p50_ms", "p99_ms", "max_ms"] {
                line.push_str(&format!(" {name}_{key}={}", f.0.get(key).map(String::as_str).unwrap_or("-")));
            }
            if let Some(capped) = f.0.get("capped") {
                line.push_str(&format!(" {name}_capped={capped}"));
            }
        }
        Ok(line)
    })();
    stop_all(&mut baristas, STOP_GRACE);
    let _ = zk.close();
    remove_chroot(env, &chroot);
    result
}

/// One load run; with `freeze = Some((after, held))`, every barista is stopped (SIGSTOP) `after`
/// into the run and continued `held` later.
fn load(
    env: &Env,
    chroot: &str,
    log: &str,
    mut args: Vec<String>,
    freeze: Option<(Duration, Duration)>,
    baristas: &[crate::common::Proc],
) -> Result<Fields> {
    args.extend(["--patience".into(), "60".into()]);
    let Some((after, held)) = freeze else { return env.load(chroot, log, &args) };
    let started = Instant::now();
    let freezer = std::thread::scope(|scope| {
        let freezer = scope.spawn(|| {
            std::thread::sleep(after);
            baristas.iter().for_each(|b| b.signal(libc::SIGSTOP));
            let frozen_at = Instant::now();
            std::thread::sleep(held);
            baristas.iter().for_each(|b| b.signal(libc::SIGCONT));
            frozen_at.duration_since(started)
        });
        let fields = env.load(chroot, log, &args);
        (fields, started.elapsed(), freezer.join())
    });
    match freezer {
        (fields, ended, Ok(frozen_at)) if frozen_at + held < ended => fields,
        (_, _, Ok(_)) => Err(format!("{log}: the load ended before the baristas were frozen and continued")),
        (_, _, Err(_)) => Err(format!("{log}: the freezer thread panicked")),
    }
}
