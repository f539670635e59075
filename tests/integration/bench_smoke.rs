//! The benchmark of issue 7 (`scripts/bench.sh --short`) and its membership rows of issue 15
//! (`--membership --short`) run end to end with the built binaries and print every row of
//! their tables. No figure is checked: a short run on a test
//! machine busy with other tests measures nothing, it only shows that every step works.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zk_coffee_tests::*;

/// A short run takes well under a minute on 2 cores; this bound only stops a hung run.
const BENCH_TIMEOUT: Duration = Duration::from_secs(240);

/// The first cell of every row the table must have.
const ROWS: &[&str] = &[
    "raw pairs/s, 1 thread(s), zk",
    "raw pairs/s, 16 thread(s), zk",
    "raw pairs/s, 64 thread(s), zk",
    "raw pairs/s, 1 thread(s), zkc",
    "raw pairs/s, 16 thread(s), zkc",
    "raw pairs/s, 64 thread(s), zkc",
    "raw watch round trip, zk",
    "raw watch round trip, zkc",
    "session layer cost per call",
    "peer: kazoo Queue",
    "peer: kazoo LockingQueue",
    "shop 1×1 orders/s",
    "shop 1×16 orders/s",
    "shop 1×64 orders/s",
    "shop 4×1 orders/s",
    "shop 4×16 orders/s",
    "shop 4×64 orders/s",
    "shop 16×1 orders/s",
    "shop 16×16 orders/s",
    "shop 16×64 orders/s",
    "shop 1×64 orders/s, one shared session",
    "shop 4×64 orders/s, one shared session",
    "order latency p50, 1×1",
    "order latency p99 / max, 1×1",
    "order latency near saturation",
    "wait p99, uneven load, random",
    "wait p99, uneven load, shorter-of-two",
    "backlog drain, small queue",
    "backlog drain, large queue",
    "customer visit, 10 baristas vs 1",
    "10 baristas coming on shift",
    "RSS, idle barista",
    "RSS, waiting customer",
    "kill -9 of a busy barista → first orphan served",
    "kill -9 of a busy barista, restarted at once → first order served",
    "SIGTERM → clean exit",
    "manager CPU per order served, 4×64",
    "manager lag, order deleted → counted in /metrics",
    "RSS, manager following 3 shops × 2 baristas",
    "page, first load",
    "page, one update with 5 baristas on shift",
];

#[test]
fn the_short_benchmark_completes_and_prints_every_row() {
    let stdout = run_short_bench(&[]);
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(rows.first().copied(), Some("| figure | measured | conditions | issue 7 target | verdict |"), "{stdout}");
    for name in ROWS {
        let row = rows
            .iter()
            .find(|r| r.starts_with(&format!("| {name} |")))
            .unwrap_or_else(|| panic!("no row {name:?} in the table:\n{stdout}"));
        assert_eq!(row.matches(" | ").count(), 4, "row {name:?} does not have 5 cells: {row}");
    }
    assert_eq!(rows.len(), ROWS.len() + 2, "unexpected rows (header, separator and {} figures):\n{stdout}", ROWS.len());
}

/// `scripts/bench.sh --membership --short`: 5 and 20 barista processes at once (2 s sessions),
/// each size's three rows, the second judged against the first.
#[test]
fn the_short_membership_benchmark_prints_its_rows() {
    let stdout = run_short_bench(&["--membership"]);
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(rows.first().copied(), Some("| figure | measured | conditions | issue 15 target | verdict |"), "{stdout}");
    for n in [5, 20] {
        for name in [
            format!("packets per arriving barista, {n} at once"),
            format!("all {n} on shift"),
            format!("kill -9 → orphan adopted, {n} on shift"),
        ] {
            let row = rows
                .iter()
                .find(|r| r.starts_with(&format!("| new (rota): {name} |")))
                .unwrap_or_else(|| panic!("no row {name:?} in the table:\n{stdout}"));
            assert_eq!(row.matches(" | ").count(), 4, "row {name:?} does not have 5 cells: {row}");
            if n == 20 && !name.starts_with("all") {
                assert!(row.ends_with("| met |") || row.ends_with("| **missed** |"), "judged against 5: {row}");
            }
        }
    }
    assert_eq!(rows.len(), 6 + 2, "unexpected rows:\n{stdout}");
}

/// Runs `scripts/bench.sh --short` with `extra` flags and the built binaries; its stdout.
fn run_short_bench(extra: &[&str]) -> String {
    let bench = bin_dir().join("zk-coffee-bench");
    assert!(bench.exists(), "{} is missing: run `cargo build --workspace --bins` first", bench.display());
    let mut child = Command::new("bash")
        .arg(workspace_root().join("scripts").join("bench.sh"))
        .arg("--short")
        .args(extra)
        .arg("--bin-dir")
        .arg(bin_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run scripts/bench.sh");
    let read = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let stdout = read(Box::new(child.stdout.take().expect("stdout")));
    let stderr = read(Box::new(child.stderr.take().expect("stderr")));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for bench.sh") {
            break status;
        }
        if started.elapsed() > BENCH_TIMEOUT {
            // SIGTERM, not SIGKILL: the script then stops its server and its processes.
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let _ = child.wait();
            panic!(
                "scripts/bench.sh --short {extra:?} did not finish within {BENCH_TIMEOUT:?}:\n{}",
                stderr.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (stdout, stderr) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
    assert!(status.success(), "scripts/bench.sh --short {extra:?} failed ({status}):\n{stderr}\n{stdout}");
    stdout
}
