//! ZooKeeper going away and coming back: the roles carry on.

use zk_coffee_tests::*;

#[test]
fn a_barista_rides_out_a_server_restart() {
    let mut server = ZkServer::start();
    server.init_shop();
    let mut barista = server.cmd(Role::Barista).args(["--name", "steady", "--brew-time", "0.1"]).spawn();
    barista.wait_for_stderr("is on shift", LOG_TIMEOUT);
    let port = server.port();

    server.restart(); // same port, same data: the session is recovered if it comes back in time
    assert_eq!(server.port(), port);
    // It noticed: it reconnected within its session, or registered again on a new one.
    barista.wait_for_stderr_matching("reconnected / on shift again", LOG_TIMEOUT, |l| {
        l.contains("reconnected to ZooKeeper") || l.contains("is on shift (session 2)")
    });
    wait_until(LOG_TIMEOUT, "the barista to be on shift again", || server.exists("/barista_group/steady"));

    let out = server.cmd(Role::Customer).args(["--coffee", "sogood", "--barista", "steady"]).run(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    assert_eq!(Receipt::parse(out.single_stdout_line()).barista, "steady");
    assert!(!barista.has_exited(), "the barista kept its shift");
}
