//! What the operations tests share: `shop-status --json` read into a [`Status`] (the library's
//! own model, `zk_coffee::status::ShopStatus`, read with `serde_json`), the load mode's
//! `summary` line read into a [`Summary`], and the paths of `shop-status` and
//! `scripts/launch.sh`.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Output};

use zk_coffee::status::{Facts, ShopStatus};
use zk_coffee_tests::*;

// ---------------------------------------------------------------------------------------------
// Paths

/// `scripts/launch.sh`.
pub fn launch_script() -> PathBuf {
    workspace_root().join("scripts").join("launch.sh")
}

/// `scripts/load.sh`.
pub fn load_script() -> PathBuf {
    workspace_root().join("scripts").join("load.sh")
}

/// The built `shop-status`; panics (like the harness does for the other roles) when it is
/// missing or older than its sources.
pub fn shop_status_bin() -> PathBuf {
    Role::ShopStatus.path()
}

// ---------------------------------------------------------------------------------------------
// shop-status

/// `shop-status --json` as read back.
#[derive(Debug, Clone)]
pub struct Status {
    pub shop: ShopStatus,
}

impl Status {
    /// Runs `PREFIX... shop-status --zk CONNECT [--shop SHOP] --json` (the prefix runs it
    /// elsewhere, e.g. `ip netns exec NS`) and parses its output; panics unless it exits 0.
    pub fn read_with(prefix: &[&OsStr], connect: &str, shop: Option<&str>) -> Status {
        let bin = shop_status_bin();
        let mut cmd = match prefix.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        clean_env(&mut cmd).args(["--zk", connect, "--connect-timeout", "10", "--json"]).env("RUST_LOG", "error");
        if let Some(shop) = shop {
            cmd.args(["--shop", shop]);
        }
        let out = cmd.output().unwrap_or_else(|e| panic!("cannot run shop-status: {e}"));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "shop-status failed ({}):\n{text}{}", out.status, String::from_utf8_lossy(&out.stderr));
        let line = text.lines().last().unwrap_or_default();
        let shop = serde_json::from_str(line).unwrap_or_else(|e| panic!("shop-status --json printed no status ({e}): {text:?}"));
        Status { shop }
    }

    /// `shop-status --json` of the shop at `connect` (`--shop SHOP` if given).
    pub fn read(connect: &str, shop: Option<&str>) -> Status {
        Status::read_with(&[], connect, shop)
    }

    /// The menu, in menu order.
    pub fn menu(&self) -> Vec<String> {
        self.shop.menu.clone()
    }

    /// The baristas on shift, in the order shop-status lists them.
    pub fn on_shift(&self) -> Vec<String> {
        self.shop.on_shift.iter().map(|b| b.name.clone()).collect()
    }

    /// The registration facts of barista `name` on shift (panics if it is not on shift, or
    /// registered none).
    pub fn facts(&self, name: &str) -> &Facts {
        let b = self.shop.on_shift.iter().find(|b| b.name == name);
        let b = b.unwrap_or_else(|| panic!("{name} is not on shift: {:?}", self.on_shift()));
        b.facts.as_ref().unwrap_or_else(|| panic!("{name} registered no facts: {b:?}"))
    }

    /// The owners of the orphaned buckets.
    pub fn orphans(&self) -> Vec<String> {
        self.shop.orphans.iter().map(|o| o.owner.clone()).collect()
    }

    /// Orders waiting in every bucket, on shift or orphaned.
    pub fn queued(&self) -> u64 {
        let on_shift = self.shop.on_shift.iter().map(|b| &b.queue);
        on_shift.chain(self.shop.orphans.iter().map(|o| &o.queue)).map(|q| u64::from(q.orders)).sum()
    }

    /// Everything sold.
    pub fn sales_total(&self) -> u64 {
        self.shop.sales.total
    }

    /// Sales per coffee.
    pub fn sales_per_coffee(&self) -> BTreeMap<String, u64> {
        self.shop.sales.per_coffee.clone()
    }

    /// Sales per barista (each ledger's counts added up).
    pub fn sales_per_barista(&self) -> BTreeMap<String, u64> {
        self.shop.sales.per_barista.iter().map(|(b, counts)| (b.clone(), counts.values().sum())).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The load mode's summary

/// The last stdout line of a load run: `summary key=value ...`.
#[derive(Debug, Clone)]
pub struct Summary {
    pub fields: BTreeMap<String, String>,
    pub line: String,
}

impl Summary {
    /// Finds the `summary` line (it must be the last stdout line) and reads its fields.
    pub fn from_stdout(stdout: &[String]) -> Summary {
        let line = stdout.last().unwrap_or_else(|| panic!("a load run printed nothing on stdout"));
        let rest = line.strip_prefix("summary ").unwrap_or_else(|| panic!("the last stdout line is not the summary: {line:?}"));
        let fields = rest
            .split(' ')
            .map(|kv| kv.split_once('=').unwrap_or_else(|| panic!("{kv:?} is not key=value in {line:?}")))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Summary { fields, line: line.clone() }
    }

    /// A field's raw text.
    pub fn get(&self, key: &str) -> &str {
        self.fields.get(key).unwrap_or_else(|| panic!("no {key}= in {}", self.line))
    }

    /// A count field.
    pub fn count(&self, key: &str) -> u64 {
        self.get(key).parse().unwrap_or_else(|_| panic!("{key} is not a count in {}", self.line))
    }

    /// A figure (throughput, milliseconds, seconds).
    pub fn figure(&self, key: &str) -> f64 {
        self.get(key).parse().unwrap_or_else(|_| panic!("{key} is not a number in {}", self.line))
    }

    /// `per_barista=a:n,b:m`.
    pub fn per_barista(&self) -> BTreeMap<String, u64> {
        let text = self.get("per_barista");
        if text == "-" {
            return BTreeMap::new();
        }
        text.split(',')
            .map(|item| {
                let (b, n) = item.rsplit_once(':').unwrap_or_else(|| panic!("{item:?} is not barista:count"));
                (b.to_owned(), n.parse().unwrap_or_else(|_| panic!("{item:?} has no count")))
            })
            .collect()
    }

    /// Every outcome count other than `served` (gave_up, no_barista, failed, ... and any
    /// added later): every `key=N` field except `visits` and `served`.
    pub fn other_outcomes(&self) -> BTreeMap<String, u64> {
        let figures = ["visits", "served", "elapsed_s", "throughput", "p50_ms", "p95_ms", "p99_ms", "max_ms", "per_barista"];
        // What an open-loop run adds: its rate and the orders due, held back and how long.
        let figures = [&figures[..], &["rate", "due", "capped", "max_held_ms"]].concat();
        self.fields
            .iter()
            .filter(|(k, _)| !figures.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.parse().unwrap_or_else(|_| panic!("{k}={v} is not a count in {}", self.line))))
            .collect()
    }
}

/// How many orders each of the named processes' logs says it served (`served COFFEE (ORDER)`
/// lines), summed per name.
pub fn served_lines<'a>(logs: impl IntoIterator<Item = (&'a str, &'a [String])>) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for (name, log) in logs {
        *counts.entry(name.to_owned()).or_default() += served_orders(log).len() as u64;
    }
    counts
}

/// The command line of a live process (empty for a zombie or a gone one).
pub fn cmdline(pid: u32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

/// stdout and stderr of a finished command as text, for messages.
pub fn show(out: &Output) -> String {
    format!("{}\nstdout:\n{}stderr:\n{}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}
