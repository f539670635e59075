//! A secured shop (issue 6): digest credentials per role and ACLs on every node. Each role does
//! what `security.rs`'s table lets it and gets the documented refusal for the rest (exit 7, one
//! line `not authorized to <op> <path>`); anonymous clients and wrong passwords get nothing;
//! another shop's credentials open nothing here; an open shop can be converted while it
//! works; credentials survive a server restart; an open shop next to a secured one still
//! speaks the original wire contract.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use zk_coffee::security::{Credentials, Roles};
use zookeeper::{Acl, CreateMode, Permission, WatchedEvent, WatchedEventType, ZkError, ZooKeeper};

use zk_coffee_tests::fault::{self, CpuMeter, Frozen};
use zk_coffee_tests::*;

/// Usage errors are found before any connection is made: they must finish well within this.
const USAGE_BOUND: Duration = Duration::from_secs(5);

/// A file holding `text`, with permission bits `mode`.
pub(crate) fn secret_file(dir: &Dir, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    path
}

/// The three identities of one secured shop, each in its own mode-600 file.
pub(crate) struct Creds {
    _dir: Dir,
    pub admin: PathBuf,
    pub staff: PathBuf,
    pub customer: PathBuf,
    /// `user:password` of each, for raw clients.
    pub admin_auth: String,
    pub staff_auth: String,
    pub customer_auth: String,
}

impl Creds {
    /// Credentials whose user names and passwords all end in `tag`.
    pub fn new(tag: &str) -> Creds {
        let dir = Dir::new(&format!("creds-{tag}"));
        let [admin_auth, staff_auth, customer_auth] =
            ["admin", "staff", "customer"].map(|role| format!("{role}-{tag}:{role}-secret-{tag}"));
        Creds {
            admin: secret_file(&dir, "admin", &format!("# the shop's admin\n{admin_auth}\n"), 0o600),
            staff: secret_file(&dir, "staff", &format!("{staff_auth}\n"), 0o600),
            customer: secret_file(&dir, "customer", &customer_auth, 0o600),
            _dir: dir,
            admin_auth,
            staff_auth,
            customer_auth,
        }
    }

    /// The ACL the shop gives the node at `path` (zk_coffee::security's table), for a raw
    /// client creating nodes the way our roles do.
    pub fn shop_acl(&self, path: &str) -> Vec<Acl> {
        let id = |auth: &str| Credentials::parse(auth).expect("valid credentials");
        let roles = Roles::of(&id(&self.admin_auth), &id(&self.staff_auth), &id(&self.customer_auth));
        let bits = [Permission::READ, Permission::WRITE, Permission::CREATE, Permission::DELETE, Permission::ADMIN];
        let perms = |mask: u32| {
            bits.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).fold(Permission::NONE, |all, (_, p)| all | *p)
        };
        roles.grants(path).into_iter().map(|g| Acl::new(perms(g.perms), g.scheme, g.id)).collect()
    }

    /// `shop-init --secure` as this shop's admin, for `cmd` (a shop-init command).
    pub fn secure(&self, cmd: TestCommand) -> TestCommand {
        with_creds(cmd, &self.admin)
            .arg("--secure")
            .arg("--staff-credentials-file")
            .arg(&self.staff)
            .arg("--customer-credentials-file")
            .arg(&self.customer)
    }
}

/// `cmd --credentials-file FILE`.
pub(crate) fn with_creds(cmd: TestCommand, file: &Path) -> TestCommand {
    cmd.arg("--credentials-file").arg(file)
}

/// A raw client (the original program's crate) of `connect`, authenticated as `auth`
/// (`user:password`) if given.
pub(crate) fn raw_as(connect: &str, auth: Option<&str>) -> ZooKeeper {
    let zk = connect_raw(connect);
    if let Some(auth) = auth {
        zk.add_auth("digest", auth.as_bytes().to_vec()).expect("add_auth");
    }
    zk
}

/// Panics unless the role exited 7 with one error line `not authorized to <op> <path>`, where
/// `what` is `<op> <path>` (or its start).
pub(crate) fn assert_not_authorized(out: &Output, what: &str) {
    out.assert_code(exit::NOT_AUTHORIZED);
    let line = out.error_line(&[&format!("not authorized to {what}")]).to_owned();
    let rest = line.split_once("not authorized to ").map(|(_, r)| r).unwrap_or("");
    assert!(rest.contains(" /"), "no path after the operation: {line:?}");
    if out.role == Role::Customer {
        out.assert_failure_line();
    }
}

/// Panics unless `result` is ZooKeeper's NoAuth.
#[track_caller]
fn assert_no_auth<T: std::fmt::Debug>(result: Result<T, ZkError>, what: &str) {
    match result {
        Err(ZkError::NoAuth) => {}
        other => panic!("{what}: expected NoAuth, got {other:?}"),
    }
}

/// What an anonymous client and one with a wrong password must not do to a secured shop.
fn assert_raw_client_refused(zk: &ZooKeeper, barista: &str, who: &str) {
    assert_no_auth(zk.get_children("/barista_group", false), &format!("{who}: list /barista_group"));
    assert_no_auth(
        zk.create(
            &format!("/orders/{barista}/coffee"),
            b"jacob".to_vec(),
            Acl::open_unsafe().clone(),
            CreateMode::PersistentSequential,
        ),
        &format!("{who}: order from {barista}"),
    );
    assert_no_auth(zk.get_data("/zk-coffee/config", false), &format!("{who}: read the menu"));
    assert_no_auth(zk.set_data("/zk-coffee/config", b"menu=latte".to_vec(), None), &format!("{who}: write the menu"));
    assert_no_auth(zk.delete(&format!("/barista_group/{barista}"), None), &format!("{who}: remove {barista} from the group"));
    assert_no_auth(
        zk.create("/barista_group/fake", Vec::new(), Acl::open_unsafe().clone(), CreateMode::Ephemeral),
        &format!("{who}: register"),
    );
    // ZooKeeper asks no permission of `exists`: that much anyone may learn.
    assert!(zk.exists("/barista_group", false).expect("exists needs no rights").is_some());
}

/// Parses a served customer's line and checks who served it.
fn served_by(out: &Output, barista: &str) -> Receipt {
    out.assert_code(exit::OK);
    let r = Receipt::parse(out.single_stdout_line());
    assert_eq!((r.outcome.as_str(), r.barista.as_str()), ("served", barista), "{out}");
    r
}

#[test]
fn each_role_does_what_it_may_and_gets_exit_7_for_the_rest() {
    let server = ZkServer::start();
    let creds = Creds::new("roles");
    let init = creds.secure(server.cmd(Role::ShopInit)).run(EXIT_TIMEOUT);
    init.assert_code(exit::OK);
    assert!(init.stdout.iter().any(|l| l.starts_with("updated /zk-coffee/acl (") && l.ends_with("nodes secured)")), "{init}");
    let admin = raw_as(server.connect_string(), Some(&creds.admin_auth));
    let acl = String::from_utf8(admin.get_data("/zk-coffee/acl", false).expect("the admin reads the roles").0).expect("UTF-8");
    for role in ["admin=admin-roles:", "staff=staff-roles:", "customer=customer-roles:"] {
        assert!(acl.contains(role), "{role} missing from /zk-coffee/acl: {acl:?}");
    }
    assert!(!acl.contains("secret"), "only digests are stored: {acl:?}");

    // Staff register and serve; customers order (here with ZK_CREDENTIALS) and are served.
    let barista =
        with_creds(server.cmd(Role::Barista), &creds.staff).args(["--name", "b1", "--brew-time", "0.1"]).spawn_on_shift();
    let out =
        server.cmd(Role::Customer).env("ZK_CREDENTIALS", &creds.customer_auth).args(["--coffee", "jacob"]).run(EXIT_TIMEOUT);
    served_by(&out, "b1");

    // A customer withdraws its own order when its patience runs out: it marks it (it may not
    // delete orders), and the barista removes it unserved (the sales below stay at 1).
    let frozen = Frozen::freeze(barista.pid());
    let out = with_creds(server.cmd(Role::Customer), &creds.customer)
        .args(["--coffee", "tesora", "--patience", "0.5"])
        .run(EXIT_TIMEOUT);
    out.assert_code(exit::GAVE_UP);
    let r = Receipt::parse(out.single_stdout_line());
    assert_eq!(r.outcome, "gave-up");
    assert_eq!(admin.get_data(&r.order, false).expect("the marked order").0, b"withdrawn: tesora");
    frozen.thaw();
    wait_until(LOG_TIMEOUT, "the barista to remove the withdrawn order", || {
        admin.exists(&r.order, false).expect("exists").is_none()
    });

    // A customer cannot register as a barista, change the menu or read the sales.
    let out = with_creds(server.cmd(Role::Barista), &creds.customer).args(["--name", "intruder"]).run(EXIT_TIMEOUT);
    assert_not_authorized(&out, "create /zk-coffee/sales/intruder");
    for path in ["/barista_group/intruder", "/orders/intruder"] {
        assert!(admin.exists(path, false).expect("exists").is_none(), "{path} was created");
    }
    let menu_before = admin.get_data("/zk-coffee/config", false).expect("config").0;
    for (who, file) in [("customer", &creds.customer), ("staff", &creds.staff)] {
        let out = with_creds(server.cmd(Role::ShopInit), file).args(["--menu", "latte"]).run(EXIT_TIMEOUT);
        assert_not_authorized(&out, "write /zk-coffee/config");
        assert_eq!(admin.get_data("/zk-coffee/config", false).expect("config").0, menu_before, "{who} changed the menu");
    }
    let out = run_shop_status(&[os("--zk"), os(server.connect_string()), os("--credentials-file"), creds.customer.as_os_str()]);
    assert_not_authorized(&out, "list /zk-coffee/sales");
    let out = run_shop_status(&[os("--zk"), os(server.connect_string()), os("--credentials-file"), creds.staff.as_os_str()]);
    out.assert_code(exit::OK);
    assert!(out.stdout.iter().any(|l| l == "sold: 1"), "staff read the sales\n{out}");

    // The same rules seen with the raw client: a customer may list baristas and order, but not
    // read sales, register, unregister a barista or touch the menu.
    let customer = raw_as(server.connect_string(), Some(&creds.customer_auth));
    assert_eq!(customer.get_children("/barista_group", false).expect("customers list baristas"), ["b1"]);
    assert_no_auth(customer.get_children("/zk-coffee/sales", false), "customer: list the sales");
    assert_no_auth(customer.get_data("/zk-coffee/sales/b1", false), "customer: read b1's sales");
    assert_no_auth(
        customer.create("/barista_group/fake", Vec::new(), Acl::open_unsafe().clone(), CreateMode::Ephemeral),
        "customer: register",
    );
    assert_no_auth(
        customer.create("/orders/fake", Vec::new(), Acl::open_unsafe().clone(), CreateMode::Persistent),
        "customer: make a bucket",
    );
    assert_no_auth(customer.delete("/barista_group/b1", None), "customer: unregister b1");
    assert_no_auth(customer.set_data("/zk-coffee/config", b"menu=latte".to_vec(), None), "customer: write the menu");
    // Staff read the sales but do not write the menu either.
    let staff = raw_as(server.connect_string(), Some(&creds.staff_auth));
    assert_eq!(staff.get_children("/zk-coffee/sales", false).expect("staff list the sales"), ["b1"]);
    assert_no_auth(staff.set_data("/zk-coffee/config", b"menu=latte".to_vec(), None), "staff: write the menu");
    assert_no_auth(staff.set_data("/zk-coffee/acl", Vec::new(), None), "staff: rewrite the roles");
    // (With the ACL our customer gives an order: see `an_order_the_barista_cannot_read_...` in
    // hostile.rs for what another ACL does.)
    let order = customer
        .create("/orders/b1/coffee", b"sogood".to_vec(), creds.shop_acl("/orders/b1/coffee"), CreateMode::PersistentSequential)
        .expect("customers order");
    wait_until(LOG_TIMEOUT, "b1 to serve the raw customer's order", || admin.exists(&order, false).expect("exists").is_none());

    // Anonymous: every role is refused, on one line, exit 7.
    let out = server.cmd(Role::Customer).args(["--coffee", "jacob"]).run(EXIT_TIMEOUT);
    assert_not_authorized(&out, "read /zk-coffee/acl");
    let out = server.cmd(Role::Barista).args(["--name", "anon"]).run(EXIT_TIMEOUT);
    assert_not_authorized(&out, "read /zk-coffee/acl");
    let out = server.cmd(Role::ShopInit).args(["--menu", "latte"]).run(EXIT_TIMEOUT);
    assert_not_authorized(&out, "read /zk-coffee/acl");
    let out = run_shop_status(&[os("--zk"), os(server.connect_string())]);
    assert_not_authorized(&out, "read /zk-coffee/acl");
    assert_raw_client_refused(&server.raw(), "b1", "anonymous");

    // A wrong password is as good as none.
    let wrong = format!("{}:not-the-password", creds.customer_auth.split(':').next().unwrap_or_default());
    let out = server.cmd(Role::Customer).env("ZK_CREDENTIALS", &wrong).args(["--coffee", "jacob"]).run(EXIT_TIMEOUT);
    assert_not_authorized(&out, "read /zk-coffee/acl");
    assert_raw_client_refused(&raw_as(server.connect_string(), Some(&wrong)), "b1", "wrong password");

    // Nothing of the above disturbed the barista.
    let out = barista.stop(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    assert_eq!(out.count_stderr("not authorized"), 0, "{out}");
}

#[test]
fn a_shop_secured_with_other_credentials_is_closed_to_this_shops_roles() {
    let server = ZkServer::start();
    let (a, b) = (Creds::new("shopa"), Creds::new("shopb"));
    a.secure(server.cmd(Role::ShopInit)).args(["--shop", "a"]).run(EXIT_TIMEOUT).assert_code(exit::OK);
    b.secure(server.cmd(Role::ShopInit)).args(["--shop", "b"]).run(EXIT_TIMEOUT).assert_code(exit::OK);
    let ba = with_creds(server.cmd(Role::Barista), &a.staff)
        .args(["--shop", "a", "--name", "ba", "--brew-time", "0.05"])
        .spawn_on_shift();
    let bb = with_creds(server.cmd(Role::Barista), &b.staff)
        .args(["--shop", "b", "--name", "bb", "--brew-time", "0.05"])
        .spawn_on_shift();

    // Each shop's customer is served at home ...
    let out = with_creds(server.cmd(Role::Customer), &a.customer).args(["--shop", "a"]).run(EXIT_TIMEOUT);
    served_by(&out, "ba");
    // ... and refused next door, as are its staff.
    let out = with_creds(server.cmd(Role::Customer), &a.customer).args(["--shop", "b"]).run(EXIT_TIMEOUT);
    assert_not_authorized(&out, "read /zk-coffee/acl");
    let out = with_creds(server.cmd(Role::Barista), &a.staff).args(["--shop", "b", "--name", "spy"]).run(EXIT_TIMEOUT);
    assert_not_authorized(&out, "read /zk-coffee/acl");
    let out = run_shop_status(&[
        os("--zk"),
        os(server.connect_string()),
        os("--shop"),
        os("b"),
        os("--credentials-file"),
        a.staff.as_os_str(),
    ]);
    assert_not_authorized(&out, "read /zk-coffee/acl");

    // The raw client with shop a's customer credentials, inside shop b's chroot.
    let zk = raw_as(&server.connect_string_with_chroot("/shops/b"), Some(&a.customer_auth));
    assert_raw_client_refused(&zk, "bb", "shop a's customer in shop b");
    assert_no_auth(zk.get_data("/zk-coffee/acl", false), "shop a's customer: read shop b's roles");

    for mut p in [ba, bb] {
        p.signal("TERM");
        p.wait_exit(EXIT_TIMEOUT).assert_code(exit::OK);
    }
}

#[test]
fn credentials_that_others_may_read_or_cannot_be_parsed_exit_2_before_touching_zookeeper() {
    let dir = Dir::new("bad-creds");
    let good = secret_file(&dir, "good", "u:p\n", 0o600);
    let world = secret_file(&dir, "world", "u:p\n", 0o644);
    let group = secret_file(&dir, "group", "u:p\n", 0o640);
    let empty = secret_file(&dir, "empty", "# nothing but a comment\n\n", 0o600);
    let no_password = secret_file(&dir, "nopw", "justauser\n", 0o600);
    let missing = dir.join("missing");
    let nowhere = format!("127.0.0.1:{}", closed_port());
    let base = ["--zk", nowhere.as_str(), "--connect-timeout", "30"];

    let cases: Vec<(&Path, Vec<String>)> = vec![
        (world.as_path(), vec!["is readable by others: run chmod 600".into(), world.display().to_string()]),
        (group.as_path(), vec!["chmod 600".into()]),
        (empty.as_path(), vec!["must hold one line user:password".into()]),
        (no_password.as_path(), vec!["must hold one line user:password".into()]),
        (missing.as_path(), vec!["cannot read the credentials file".into(), missing.display().to_string()]),
    ];
    for (file, needles) in &cases {
        let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
        for role in [Role::Barista, Role::Customer, Role::ShopInit] {
            // Both ways of naming the file: the flag and ZK_CREDENTIALS_FILE.
            let out = with_creds(TestCommand::new(role).args(base), file).run(EXIT_TIMEOUT);
            out.assert_code(exit::USAGE).assert_within(USAGE_BOUND);
            out.error_line(&needles);
            if role == Role::Customer {
                out.assert_failure_line();
            }
            let out = TestCommand::new(role).args(base).env("ZK_CREDENTIALS_FILE", file).run(EXIT_TIMEOUT);
            out.assert_code(exit::USAGE).assert_within(USAGE_BOUND);
            out.error_line(&needles);
        }
        let out = run_shop_status(&[
            os("--zk"),
            os(&nowhere),
            os("--connect-timeout"),
            os("30"),
            os("--credentials-file"),
            file.as_os_str(),
        ]);
        out.assert_code(exit::USAGE).assert_within(USAGE_BOUND);
        out.error_line(&needles);
    }

    // ZK_CREDENTIALS must look like user:password; what it holds is never echoed.
    for bad in ["", "s3cret", ":s3cret", "user:", "a b:s3cret"] {
        for role in [Role::Barista, Role::Customer, Role::ShopInit] {
            let out = TestCommand::new(role).args(base).env("ZK_CREDENTIALS", bad).run(EXIT_TIMEOUT);
            out.assert_code(exit::USAGE).assert_within(USAGE_BOUND);
            out.error_line(&["ZK_CREDENTIALS must look like user:password"]);
            assert!(!out.stderr.iter().chain(&out.stdout).any(|l| l.contains("s3cret")), "the secret is echoed\n{out}");
        }
    }

    // shop-init --secure checks the staff's and customers' files too.
    for (staff, customer, bad) in [(&world, &good, &world), (&good, &group, &group), (&good, &missing, &missing)] {
        let out = with_creds(TestCommand::new(Role::ShopInit).args(base), &good)
            .arg("--secure")
            .arg("--staff-credentials-file")
            .arg(staff)
            .arg("--customer-credentials-file")
            .arg(customer)
            .run(EXIT_TIMEOUT);
        out.assert_code(exit::USAGE).assert_within(USAGE_BOUND);
        out.error_line(&["credentials file", &bad.display().to_string()]);
    }
}

#[test]
fn converting_an_open_shop_with_a_queue_shuts_out_anonymous_and_keeps_serving() {
    let server = ZkServer::builder().tick_ms(fault::TICK_MS).start();
    let creds = Creds::new("convert");
    server.init_shop();
    // The barista already has the staff's credentials (harmless in an open shop), as an
    // operator preparing the conversion would give them.
    let barista = with_creds(fault::barista(server.connect_string(), "conv", "0.1"), &creds.staff).spawn_on_shift();

    // Orders queue while it is stopped: ours, with the customers' credentials, and one from the
    // original program (anonymous, open ACL).
    let frozen = Frozen::freeze(barista.pid());
    let customer =
        fault::place(with_creds(fault::customer(server.connect_string(), Some("conv"), "jacob", "30"), &creds.customer));
    let anon = server.raw();
    let raw_order = anon
        .create("/orders/conv/coffee", b"tesora".to_vec(), Acl::open_unsafe().clone(), CreateMode::PersistentSequential)
        .expect("the original program orders");

    let init = creds.secure(server.cmd(Role::ShopInit)).run(EXIT_TIMEOUT);
    init.assert_code(exit::OK);
    // The member, the bucket, both orders, the ledger and the shop's own nodes.
    let secured: usize = init
        .stdout
        .iter()
        .find_map(|l| l.strip_prefix("updated /zk-coffee/acl (").and_then(|r| r.strip_suffix(" nodes secured)")))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of secured nodes\n{init}"));
    assert!(secured >= 12, "only {secured} nodes secured\n{init}");

    // From now on anonymous is shut out, also from what it wrote itself.
    let out = server.cmd(Role::Customer).args(["--coffee", "jacob", "--barista", "conv"]).run(EXIT_TIMEOUT);
    assert_not_authorized(&out, "read /zk-coffee/acl");
    assert_raw_client_refused(&anon, "conv", "anonymous after the conversion");
    assert_no_auth(anon.get_data(&raw_order, false), "anonymous: read its own order after the conversion");
    assert_no_auth(anon.set_data(&raw_order, b"sogood".to_vec(), None), "anonymous: change its order after the conversion");

    // The barista serves the queue it had, and new orders.
    frozen.thaw();
    let out = customer.wait_exit(EXIT_TIMEOUT);
    let r = served_by(&out, "conv");
    let admin = raw_as(server.connect_string(), Some(&creds.admin_auth));
    wait_until(LOG_TIMEOUT, "the original program's order to be served", || {
        admin.exists(&raw_order, false).expect("exists").is_none()
    });
    let raw_name = raw_order.rsplit('/').next().unwrap_or_default();
    barista.wait_for_stderr(&format!("served tesora ({raw_name})"), LOG_TIMEOUT);
    let out =
        with_creds(fault::customer(server.connect_string(), Some("conv"), "sogood", "30"), &creds.customer).run(EXIT_TIMEOUT);
    let later = served_by(&out, "conv");
    assert!(later.sequence() > r.sequence());
    barista.wait_for_stderr(&format!("served sogood ({})", later.order_name()), LOG_TIMEOUT);
    let out = barista.stop(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    assert_eq!(out.count_stderr("not authorized"), 0, "{out}");
}

#[test]
fn a_secured_barista_keeps_serving_across_a_server_restart() {
    let mut server = ZkServer::builder().tick_ms(fault::TICK_MS).start();
    let creds = Creds::new("restart");
    creds.secure(server.cmd(Role::ShopInit)).run(EXIT_TIMEOUT).assert_code(exit::OK);
    let zk = server.connect_string().to_owned();
    let mut barista = with_creds(fault::barista(&zk, "steady", "0.1"), &creds.staff).spawn_on_shift();
    let customer = |coffee: &str| with_creds(fault::customer(&zk, Some("steady"), coffee, "30"), &creds.customer);
    served_by(&customer("jacob").run(EXIT_TIMEOUT), "steady");

    let before = barista.mark();
    server.restart();
    barista.wait_log_since(before, "the barista to reconnect or register again", Duration::from_secs(30), |log| {
        log.iter().find(|l| l.contains("reconnected to ZooKeeper") || l.contains("is on shift (session")).cloned()
    });
    // Orders placed after the restart are served, by a barista whose credentials still count.
    let meter = CpuMeter::start(barista.pid());
    for coffee in ["tesora", "sogood", "swisswater"] {
        served_by(&customer(coffee).run(EXIT_TIMEOUT), "steady");
    }
    let cpu = meter.read();
    assert!(cpu.share() < 0.5, "the barista used {:.0}% of a core after the restart", 100.0 * cpu.share());
    assert!(!barista.has_exited(), "the barista exited after the restart");
    let admin = raw_as(&zk, Some(&creds.admin_auth));
    assert_eq!(admin.get_children("/barista_group", false).expect("list"), ["steady"]);
    barista.wait_served(4, LOG_TIMEOUT);
    let out = barista.stop(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    let log = out.stderr_since(before);
    assert!(!log.iter().any(|l| l.contains("not authorized") || l.contains("AuthFailed")), "{log:#?}");
}

#[test]
fn an_open_shop_keeps_the_wire_contract_next_to_a_secured_one() {
    let server = ZkServer::start();
    let creds = Creds::new("neighbour");
    server.cmd(Role::ShopInit).args(["--shop", "open"]).run(EXIT_TIMEOUT).assert_code(exit::OK);
    creds.secure(server.cmd(Role::ShopInit)).args(["--shop", "closed"]).run(EXIT_TIMEOUT).assert_code(exit::OK);
    let mut barista = server.cmd(Role::Barista).args(["--shop", "open", "--name", "ours", "--brew-time", "0.1"]).spawn_on_shift();

    // The original customer, knowing nothing of ACLs, in the open shop.
    let zk = server.raw_chroot("/shops/open");
    assert_eq!(zk.get_children("/barista_group", false).expect("list the group"), ["ours"]);
    for node in ["/barista_group", "/orders", "/orders/ours", "/barista_group/ours"] {
        let (acl, _) = zk.get_acl(node).expect("get_acl");
        assert_eq!(acl, *Acl::open_unsafe(), "{node} of the open shop");
    }
    let order = zk
        .create("/orders/ours/coffee", b"jacob".to_vec(), Acl::open_unsafe().clone(), CreateMode::PersistentSequential)
        .expect("place the order");
    let (tx, rx) = mpsc::channel();
    let watched = zk
        .exists_w(&order, move |e: WatchedEvent| {
            let _ = tx.send(e);
        })
        .expect("watch the order");
    if watched.is_some() {
        let event = rx.recv_timeout(LOG_TIMEOUT).expect("the watch fires when the order is served");
        assert_eq!(event.event_type, WatchedEventType::NodeDeleted, "{event:?}");
    }
    assert!(zk.exists(&order, false).expect("exists").is_none());
    let name = order.rsplit('/').next().unwrap_or_default();
    barista.wait_for_stderr(&format!("served jacob ({name})"), LOG_TIMEOUT);

    // Meanwhile the secured shop next door is closed to the same client.
    let closed = server.raw_chroot("/shops/closed");
    assert_no_auth(closed.get_children("/barista_group", false), "anonymous: list the secured shop");
    let out = server.cmd(Role::Customer).args(["--shop", "closed"]).run(EXIT_TIMEOUT);
    assert_not_authorized(&out, "read /zk-coffee/acl");
    barista.signal("TERM");
    barista.wait_exit(EXIT_TIMEOUT).assert_code(exit::OK);
}

/// The module docs promise that anonymous clients can do nothing to a secured shop but ask
/// whether a node exists. The chroot node of a `--shop` shop used to stay `world:anyone` ALL,
/// so anyone could add children there, delete the shop's top-level nodes while they were empty
/// (`/barista_group` whenever nobody is on shift) or take the node's ACL (fixed in 77f50c9; the
/// root shop's `/` is the ensemble's, and README says it stays open).
#[test]
fn anonymous_cannot_touch_a_secured_shops_root() {
    let server = ZkServer::start();
    let creds = Creds::new("root");
    creds.secure(server.cmd(Role::ShopInit)).args(["--shop", "b"]).run(EXIT_TIMEOUT).assert_code(exit::OK);
    let anon = server.raw();
    assert_no_auth(
        anon.create("/shops/b/junk", Vec::new(), Acl::open_unsafe().clone(), CreateMode::Persistent),
        "anonymous: add to the shop's root",
    );
    assert_no_auth(anon.delete("/shops/b/barista_group", None), "anonymous: delete the empty /barista_group");
    assert_no_auth(anon.set_acl("/shops/b", Acl::read_unsafe().clone(), None), "anonymous: take the shop's root");
    // The shop still works for its roles.
    let out =
        with_creds(server.cmd(Role::ShopInit), &creds.admin).args(["--shop", "b", "--menu", "jacob,tesora"]).run(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    let out =
        with_creds(server.cmd(Role::Customer), &creds.customer).args(["--shop", "b", "--patience", "0.3"]).run(EXIT_TIMEOUT);
    out.assert_code(exit::NO_BARISTA);
}

/// A barista that was running when its shop was converted (`shop-init --secure`) read
/// `/zk-coffee/acl` only when it started, when there was none: the nodes it makes afterwards
/// (its member node again after a new session, its claims) are open to everyone, so anyone
/// can overwrite them or take their ACL.
#[test]
fn a_barista_running_across_the_conversion_makes_its_new_nodes_secured() {
    let server = ZkServer::builder().tick_ms(fault::TICK_MS).start();
    let creds = Creds::new("across");
    server.init_shop();
    let barista = with_creds(
        TestCommand::new(Role::Barista).zk(server.connect_string()).args([
            "--name",
            "across",
            "--brew-time",
            "0.1",
            "--session-timeout",
            "1",
        ]),
        &creds.staff,
    )
    .spawn_on_shift();
    creds.secure(server.cmd(Role::ShopInit)).run(EXIT_TIMEOUT).assert_code(exit::OK);
    // Frozen past its session: it registers again on a new one.
    let frozen = Frozen::freeze(barista.pid());
    std::thread::sleep(Duration::from_secs(3));
    frozen.thaw();
    barista.wait_for_stderr("is on shift (session 2)", LOG_TIMEOUT);
    let admin = raw_as(server.connect_string(), Some(&creds.admin_auth));
    let (acl, _) = admin.get_acl("/barista_group/across").expect("get_acl");
    assert_eq!(acl, creds.shop_acl("/barista_group/across"), "the member node made after the conversion");
}

// ---------------------------------------------------------------------------------------------
// shop-status, which the harness has no `Role` for

/// `s` as an `OsStr`, for argument lists that mix strings and paths.
pub(crate) fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// Runs `target/debug/shop-status ARGS...` to completion (killed after
/// [`EXIT_TIMEOUT`]) with none of the roles' environment variables, and returns what it
/// printed as an [`Output`] whose `role` is a stand-in (`ShopInit`: like it, shop-status
/// prints nothing on stdout when it fails); the label names the real program.
pub(crate) fn run_shop_status(args: &[&OsStr]) -> Output {
    run_shop_status_env(args, &[])
}

/// Like [`run_shop_status`], with `env` set.
pub(crate) fn run_shop_status_env(args: &[&OsStr], env: &[(&str, &str)]) -> Output {
    use std::process::{Command, Stdio};
    let bin = bin_dir().join("shop-status");
    // Make the harness check that the binaries are built and fresh (shop-status is built
    // with them).
    let _ = Role::ShopInit.path();
    let mut cmd = Command::new(&bin);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    clean_env(&mut cmd);
    cmd.env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let label = format!("shop-status {}", args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" "));
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for shop-status") {
            break status;
        }
        if started.elapsed() > EXIT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{label}: still running after {EXIT_TIMEOUT:?}; killed it");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    let out = child.wait_with_output().expect("shop-status output");
    let lines = |b: &[u8]| String::from_utf8_lossy(b).lines().map(str::to_owned).collect::<Vec<_>>();
    Output { label, role: Role::ShopInit, status, stdout: lines(&out.stdout), stderr: lines(&out.stderr), elapsed }
}

#[test]
fn the_manager_follows_a_secured_shop_with_the_staff_credentials_and_shows_none() {
    let server = ZkServer::builder().tick_ms(fault::TICK_MS).start();
    let creds = Creds::new("manager");
    creds.secure(server.cmd(Role::ShopInit)).run(EXIT_TIMEOUT).assert_code(exit::OK);
    let zk = server.connect_string().to_owned();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], closed_port()));
    let hook_log = Dir::new("secured-hook");
    let hook = format!("env > {}/env; cat > {}/stdin", hook_log.path().display(), hook_log.path().display());
    let manager = with_creds(fault::role(&zk, Role::ShopManager), &creds.staff)
        .args(["--listen", &addr.to_string(), "--on-event", &hook])
        .spawn();
    manager.wait_for_stderr("this manager leads", LOG_TIMEOUT);
    let mut barista = with_creds(fault::barista(&zk, "guarded", "0.1"), &creds.staff).spawn_on_shift();
    served_by(&with_creds(fault::customer(&zk, Some("guarded"), "jacob", "30"), &creds.customer).run(EXIT_TIMEOUT), "guarded");
    let metrics = zk_coffee_tests::http::wait_metrics(addr, "the sale counted", LOG_TIMEOUT, |m| {
        m.value("zk_coffee_orders_served_total", &[("barista", "guarded"), ("coffee", "jacob"), ("ensemble", &zk), ("shop", "/")])
            == Some(1.0)
    });
    // A loss runs the hook, which is not handed the credentials.
    barista.signal("KILL");
    let _ = barista.wait_exit(EXIT_TIMEOUT);
    wait_event(&manager, "barista-lost", Some("guarded"), LOG_TIMEOUT, |_| true);
    wait_until(LOG_TIMEOUT, "the hook to run", || {
        std::fs::read_to_string(hook_log.join("stdin")).is_ok_and(|s| s.ends_with('\n'))
    });
    let api = zk_coffee_tests::http::get(addr, "/api/shops").body;
    let out = manager.stop(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    let env = std::fs::read_to_string(hook_log.join("env")).expect("the hook's environment");
    for secret in [&creds.staff_auth, &creds.customer_auth, &creds.admin_auth] {
        let password = secret.split_once(':').map_or(secret.as_str(), |(_, p)| p);
        for (what, text) in [
            ("log", out.stderr.join("\n")),
            ("events", out.stdout.join("\n")),
            ("metrics", metrics.text.clone()),
            ("API", api.clone()),
            ("hook environment", env.clone()),
        ] {
            assert!(!text.contains(password), "a password in the manager's {what}:\n{text}");
        }
    }
    assert!(!env.contains("ZK_CREDENTIALS"), "{env}");
}
