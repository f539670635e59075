//! Alerts through the manager's binary (issue 13): with three managers running, each alerting
//! event runs the hook once, on the leader; the leader killed with `kill -9`, the next takes
//! over and alerts what happened in the leaderless gap (a barista lost while the dead leader's
//! session lingered), once, without alerting again what was alerted before.

use std::path::Path;

use zk_coffee_tests::fault::*;
use zk_coffee_tests::*;

/// The hook: one line per run, `EVENT BARISTA SHOP`, appended to `log`.
fn hook(log: &Path) -> String {
    format!("printf '%s %s %s\\n' \"$ZK_COFFEE_EVENT\" \"$ZK_COFFEE_BARISTA\" \"$ZK_COFFEE_SHOP\" >> {}", log.display())
}

fn hook_runs(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log).unwrap_or_default().lines().map(str::to_owned).collect()
}

fn managers(connect: &str, log: &Path, n: usize) -> Vec<Proc> {
    (0..n)
        .map(|_| {
            let m = role(connect, Role::ShopManager).args(["--on-event", &hook(log)]).spawn();
            m.wait_for_stderr("following ", LOG_TIMEOUT);
            m
        })
        .collect()
}

#[test]
fn one_hook_run_per_alerting_event_with_three_managers_and_after_the_leader_is_killed() {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let zk = server.connect_string();
    let dir = Dir::new("alerts");
    let log = dir.join("hooks.log");
    // The first to stand leads: it says so before the others start. Its session outlives a
    // barista's by seconds (4 s against 1 s), so a barista killed with it is lost while its
    // node still stands: in the leaderless gap.
    let mut first =
        TestCommand::new(Role::ShopManager).zk(zk).args(["--session-timeout", "4", "--on-event", &hook(&log)]).spawn();
    first.wait_for_stderr("following ", LOG_TIMEOUT);
    first.wait_for_stderr("this manager leads", LOG_TIMEOUT);
    let followers = managers(zk, &log, 2);

    let mut b1 = barista(zk, "b1", "0.1").spawn_on_shift();
    let mut b2 = TestCommand::new(Role::Barista)
        .zk(zk)
        .args(["--name", "b2", "--brew-time", "0.1", "--session-timeout", "1"])
        .spawn_on_shift();
    let _b3 = barista(zk, "b3", "0.1").spawn_on_shift();
    for m in followers.iter().chain([&first]) {
        wait_event(m, "barista-on-shift", Some("b2"), LOG_TIMEOUT, |_| true);
    }

    // A loss while the leader lives: alerted once, by the leader, and recorded.
    b1.signal("KILL");
    let _ = b1.wait_exit(EXIT_TIMEOUT);
    wait_until(LOG_TIMEOUT, "the hook to run for b1", || hook_runs(&log).iter().any(|l| l == "barista-lost b1 /"));
    first.wait_for_stderr("(barista-lost) for barista-lost shop=/ barista=b1", LOG_TIMEOUT);
    wait_until(LOG_TIMEOUT, "b1's alert to be recorded", || server.children("/zk-coffee/alerts").is_some_and(|c| c.len() == 1));
    for m in &followers {
        wait_event(m, "barista-lost", Some("b1"), LOG_TIMEOUT, |_| true);
    }

    // The leader dies, and a barista with it in the gap before its session expires.
    first.signal("KILL");
    b2.signal("KILL");
    let _ = first.wait_exit(EXIT_TIMEOUT);
    let _ = b2.wait_exit(EXIT_TIMEOUT);
    for m in &followers {
        wait_event(m, "barista-lost", Some("b2"), LOG_TIMEOUT, |_| true);
    }
    wait_until(LOG_TIMEOUT, "the hook to run for b2", || hook_runs(&log).iter().any(|l| l == "barista-lost b2 /"));
    wait_until(LOG_TIMEOUT, "b2's alert to be recorded", || server.children("/zk-coffee/alerts").is_some_and(|c| c.len() == 2));

    let outputs: Vec<Output> = followers.into_iter().map(|m| m.stop(EXIT_TIMEOUT)).collect();
    let runs = hook_runs(&log);
    assert_eq!(runs.iter().filter(|l| *l == "barista-lost b1 /").count(), 1, "b1 alerted once: {runs:?}");
    assert_eq!(runs.iter().filter(|l| *l == "barista-lost b2 /").count(), 1, "b2 alerted once: {runs:?}");
    assert_eq!(runs.len(), 2, "{runs:?}");
    // One follower took over after the kill and ran the gap's alert. (Stopping that one at the
    // end hands the lead to the last, which finds everything recorded.)
    let took_over = outputs.iter().filter(|o| o.count_stderr("taking over the alerts: 1 recent") == 1).count();
    assert_eq!(took_over, 1, "one takeover ran the gap's alert:\n{outputs:#?}");
    for out in &outputs {
        out.assert_code(exit::OK);
    }
}
