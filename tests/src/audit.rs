//! The "nothing lost" audit: the shop's tree as a raw client sees it ([`Audit`]), and
//! customers settled one by one, each served or withdrawn within a bound.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use zookeeper::{ZkError, ZooKeeper};

use crate::*;

// ---------------------------------------------------------------------------------------------
// The audit

/// The shop's tree as a raw client saw it at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audit {
    /// Each bucket under `/orders` with its children (sorted).
    pub buckets: BTreeMap<String, Vec<String>>,
    /// The members of `/barista_group`.
    pub on_shift: BTreeSet<String>,
    /// The claims under `/zk-coffee/claims`.
    pub claims: BTreeSet<String>,
}

impl Audit {
    /// How many orders are queued in all buckets.
    pub fn orders(&self) -> usize {
        self.buckets.values().map(Vec::len).sum()
    }

    /// The non-empty buckets whose owner is not on shift and that nobody has claimed.
    pub fn unowned(&self) -> Vec<String> {
        self.buckets
            .iter()
            .filter(|(b, orders)| !orders.is_empty() && !self.on_shift.contains(*b) && !self.claims.contains(*b))
            .map(|(b, _)| b.clone())
            .collect()
    }

    /// The non-empty buckets whose owner is not on shift (claimed or not).
    pub fn memberless(&self) -> Vec<String> {
        self.buckets.iter().filter(|(b, o)| !o.is_empty() && !self.on_shift.contains(*b)).map(|(b, _)| b.clone()).collect()
    }
}

fn sorted_children(zk: &ZooKeeper, path: &str) -> Vec<String> {
    match zk.get_children(path, false) {
        Ok(mut c) => {
            c.sort();
            c
        }
        Err(ZkError::NoNode) => Vec::new(),
        Err(e) => panic!("get_children {path}: {e:?}"),
    }
}

/// Reads the shop's tree with `zk`.
pub fn audit(zk: &ZooKeeper) -> Audit {
    let mut a = Audit::default();
    for bucket in sorted_children(zk, "/orders") {
        let orders = sorted_children(zk, &format!("/orders/{bucket}"));
        a.buckets.insert(bucket, orders);
    }
    a.on_shift = sorted_children(zk, "/barista_group").into_iter().collect();
    a.claims = sorted_children(zk, "/zk-coffee/claims").into_iter().collect();
    a
}

/// Waits (up to `timeout`) until no order is left anywhere and every bucket is either empty or
/// owned by a barista on shift; returns the last audit. Panics with it otherwise.
pub fn assert_nothing_left(zk: &ZooKeeper, timeout: Duration) -> Audit {
    let deadline = Instant::now() + timeout;
    loop {
        let a = audit(zk);
        if a.orders() == 0 && a.memberless().is_empty() {
            return a;
        }
        assert!(Instant::now() < deadline, "orders left behind after {timeout:?}: {a:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How one customer ended.
#[derive(Debug, Clone)]
pub struct Settled {
    pub out: Output,
    pub receipt: Receipt,
}

impl Settled {
    pub fn served(&self) -> bool {
        self.receipt.outcome == "served"
    }
}

/// Waits for every customer: each must exit within `bound` of its start, either 0 with a
/// `served` line or 3 with a `gave-up` line and its order gone (checked with `zk`). Panics
/// otherwise (a hung customer is killed and shown).
pub fn settle_customers(customers: Vec<Proc>, bound: Duration, zk: &ZooKeeper) -> Vec<Settled> {
    let mut settled = Vec::new();
    for c in customers {
        let out = c.wait_exit(bound);
        out.assert_within(bound);
        let receipt = match out.code() {
            Some(exit::OK) => {
                let r = Receipt::parse(out.single_stdout_line());
                assert_eq!(r.outcome, "served", "{out}");
                r
            }
            Some(exit::GAVE_UP) => {
                let r = Receipt::parse(out.single_stdout_line());
                assert_eq!(r.outcome, "gave-up", "{out}");
                let gone = matches!(zk.exists(&r.order, false), Ok(None));
                assert!(gone, "a customer gave up but its order {} is still there\n{out}", r.order);
                r
            }
            _ => panic!("a customer neither was served nor gave up\n{out}"),
        };
        settled.push(Settled { out, receipt });
    }
    settled
}

/// Starts a customer and waits until it has placed its order (its `ordered` log line).
pub fn place(cmd: TestCommand) -> Proc {
    let c = cmd.spawn();
    c.wait_for_stderr("ordered ", crate::LOG_TIMEOUT);
    c
}
