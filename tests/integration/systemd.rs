//! The systemd side of a barista: the shipped unit verifies, and the barista tells systemd it
//! is ready only once it is on shift, and when it starts leaving.

use std::os::unix::net::UnixDatagram;
use std::process::Command;

use zk_coffee_tests::*;

/// Checks that the shipped unit `file` has every one of `directives` (whole lines), then runs
/// `systemd-analyze verify` on a copy whose ExecStart points at `role`'s built binary (the
/// installed path does not exist on a build machine); everything else is checked as shipped.
fn verify_unit(file: &str, role: Role, directives: &[&str]) {
    let dir = Dir::new("unit");
    let unit = std::fs::read_to_string(workspace_root().join("systemd").join(file)).expect("read the unit");
    for directive in directives {
        assert!(unit.lines().any(|l| l == *directive), "{file} lacks {directive}");
    }
    let installed = format!("ExecStart=/usr/local/bin/{}", role.name());
    assert!(unit.lines().any(|l| l == installed), "{file} lacks {installed}");
    let copy = unit.replace(&installed, &format!("ExecStart={}", role.path().display()));
    let path = dir.join(file);
    std::fs::write(&path, copy).expect("write the copy");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian package systemd; scripts/test.sh installs it)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.trim().is_empty(), "systemd-analyze verify complained about {file}:\n{text}");
}

#[test]
fn the_barista_unit_passes_systemd_analyze_verify() {
    verify_unit(
        "barista@.service",
        Role::Barista,
        &[
            "Type=notify",
            "KillSignal=SIGTERM",
            "Restart=on-failure",
            "RestartPreventExitStatus=2 8 11 12",
            "DynamicUser=yes",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "PrivateTmp=yes",
            "Environment=BARISTA_NAME=%l_%i",
            // ProcSubset=pid hides the boot id file: a restart needs it to take over at once.
            "Environment=BARISTA_BOOT_ID=%B",
            "ProcSubset=pid",
            "ProtectProc=invisible",
        ],
    );
}

#[test]
fn the_manager_unit_passes_systemd_analyze_verify() {
    verify_unit(
        "shop-manager.service",
        Role::ShopManager,
        &[
            "Type=notify",
            "EnvironmentFile=/etc/zk-coffee/shop-manager.env",
            "Restart=on-failure",
            "RestartPreventExitStatus=2 11 12",
            "DynamicUser=yes",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
        ],
    );
}

#[test]
fn the_manager_notifies_systemd_once_it_has_read_the_shops() {
    let server = ZkServer::start();
    server.init_shop();
    let dir = Dir::new("manager-notify");
    let socket_path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    socket.set_read_timeout(Some(LOG_TIMEOUT)).expect("timeout");
    let manager = server.cmd(Role::ShopManager).env("NOTIFY_SOCKET", &socket_path).spawn();
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("READY=1 from the manager");
    let message = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(message.lines().any(|l| l == "READY=1"), "{message:?}");
    // Ready means the shops were read: the manager has said so in its log (it logs after it acts).
    manager.wait_for_stderr("following 1 shops", LOG_TIMEOUT);
    manager.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}

#[test]
fn the_barista_notifies_systemd_when_on_shift_and_when_leaving() {
    let server = ZkServer::start();
    server.init_shop();
    let dir = Dir::new("notify");
    let socket_path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    socket.set_read_timeout(Some(LOG_TIMEOUT)).expect("timeout");
    let mut barista = server.cmd(Role::Barista).args(["--name", "unit_1"]).env("NOTIFY_SOCKET", &socket_path).spawn();

    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("READY=1 from the barista");
    let message = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(message.lines().any(|l| l == "READY=1"), "{message:?}");
    assert!(message.contains("STATUS=on shift as unit_1"), "{message:?}");
    // Ready means registered: the membership node is there by the time systemd hears of it.
    assert!(server.exists("/barista_group/unit_1"), "READY=1 came before the barista was on shift");

    barista.signal("TERM");
    let n = socket.recv(&mut buf).expect("STOPPING=1 from the barista");
    let message = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(message.lines().any(|l| l == "STOPPING=1"), "{message:?}");
    barista.wait_exit(EXIT_TIMEOUT).assert_code(exit::OK);
}
