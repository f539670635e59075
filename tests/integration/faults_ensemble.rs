//! A three-server ensemble losing a member under a working shop: the leader (an election
//! follows, every client is disconnected), and the member a barista is connected to. Nothing
//! is lost: every customer is served, no order is left behind.

use std::time::{Duration, Instant};

use zk_coffee_tests::fault::*;
use zk_coffee_tests::*;

/// A customer that is neither hung nor starved finishes within this.
const CUSTOMER_BOUND: Duration = Duration::from_secs(40);

/// Starts a barista and waits until it is on shift.
#[test]
fn killing_the_leader_under_load_loses_nothing() {
    let mut ensemble = Ensemble::start(TICK_MS);
    let zk = ensemble.connect_string().to_owned();
    role(&zk, Role::ShopInit).run(EXIT_TIMEOUT).assert_code(exit::OK);
    let mut baristas: Vec<Proc> = ["e1", "e2", "e3"].iter().map(|n| barista(&zk, n, "0.2").spawn_on_shift()).collect();

    // A stream of customers, each arriving once the one before has ordered; the leader dies
    // after the fourth.
    let leader = ensemble.leader();
    let mut customers = Vec::new();
    let mut killed_at = None;
    for i in 0..12 {
        if i == 4 {
            ensemble.kill(leader);
            killed_at = Some(Instant::now());
        }
        customers.push(place(customer(&zk, None, MENU[i % MENU.len()], "40")));
    }
    let killed_at = killed_at.expect("killed");
    let new_leader = ensemble.leader();
    assert_ne!(new_leader, leader);

    let raw = ensemble.raw();
    let settled = settle_customers(customers, CUSTOMER_BOUND, &raw);
    assert!(settled.iter().all(Settled::served), "{settled:#?}");
    let all_served = killed_at.elapsed();
    assert!(baristas.iter_mut().all(|b| !b.has_exited()), "the baristas kept their shifts");
    let left = assert_nothing_left(&raw, LOG_TIMEOUT);
    assert_eq!(left.on_shift, ["e1", "e2", "e3"].map(String::from).into(), "{left:?}");
    let sessions: Vec<usize> = baristas.into_iter().map(|b| b.stop(EXIT_TIMEOUT).count_stderr("is on shift")).collect();
    eprintln!(
        "leader {leader} killed: member {new_leader} leads now; 12 customers served, the last {all_served:?} after the kill; \
         registrations per barista {sessions:?}"
    );
}

#[test]
fn killing_the_member_a_barista_is_connected_to_loses_nothing() {
    let mut ensemble = Ensemble::start(TICK_MS);
    let zk = ensemble.connect_string().to_owned();
    role(&zk, Role::ShopInit).run(EXIT_TIMEOUT).assert_code(exit::OK);
    let mut target = barista(&zk, "target", "0.5").spawn_on_shift();
    let other = barista(&zk, "other", "0.2").spawn_on_shift();

    // Which member holds the target's connection: its sockets, matched against `cons`.
    let ports = ensemble.ports();
    let mut member = None;
    wait_until(LOG_TIMEOUT, "to find the member serving the target barista", || {
        member = member_serving(target.pid(), &ports);
        member.is_some()
    });
    let member = member.expect("found") + 1;

    // Orders queued at the target, one in hand, when its member dies.
    let frozen = Frozen::freeze(target.pid());
    let mut customers: Vec<Proc> = MENU.iter().map(|c| place(customer(&zk, Some("target"), c, "40"))).collect();
    frozen.thaw();
    target.wait_for_stderr("making ", LOG_TIMEOUT);
    let before_kill = target.mark();
    ensemble.kill(member);
    let killed_at = Instant::now();

    // The target carries on through another member: within its session, or on a new one.
    wait_until(Duration::from_secs(20), "the target to be connected to another member", || {
        member_serving(target.pid(), &ports).is_some_and(|m| m + 1 != member)
    });
    let moved = killed_at.elapsed();
    customers.push(place(customer(&zk, Some("target"), "jacob", "40")));
    let raw = ensemble.raw();
    let settled = settle_customers(customers, CUSTOMER_BOUND, &raw);
    assert!(settled.iter().all(Settled::served), "{settled:#?}");
    let all_served = killed_at.elapsed();
    assert!(!target.has_exited(), "the target kept its shift");
    let left = assert_nothing_left(&raw, LOG_TIMEOUT);
    assert_eq!(left.on_shift, ["other", "target"].map(String::from).into(), "{left:?}");
    let (target, other) = (target.stop(EXIT_TIMEOUT), other.stop(EXIT_TIMEOUT));
    let after: Vec<String> = target
        .stderr_since(before_kill)
        .iter()
        .filter(|l| l.contains("ZooKeeper") || l.contains("on shift"))
        .map(|l| l.split("] ").nth(1).unwrap_or(l).to_owned())
        .collect();
    let adopted = served(&other.stderr).iter().filter(|(_, from)| from.as_deref() == Some("target")).count();
    eprintln!(
        "member {member} (the target's) killed: the target moved within {moved:?} ({after:?}); {} customers served, the last \
         {all_served:?} after the kill ({adopted} by the other barista, adopted)",
        settled.len()
    );
}
