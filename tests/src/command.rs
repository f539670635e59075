//! The workspace's binaries as test commands: where they are (and that they are not older
//! than their sources), which environment they get, and [`TestCommand`], which runs one to
//! completion or in the background as a [`Proc`].

use std::ffi::{OsStr, OsString};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use crate::*;

// ---------------------------------------------------------------------------------------------
// Paths

/// The workspace root (the parent of this package's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// `scripts/zk.sh` of this workspace.
pub fn zk_script() -> PathBuf {
    workspace_root().join("scripts").join("zk.sh")
}

/// The directory the workspace's binaries are built into (e.g. `target/debug`), found from the
/// running test executable, which lives in its `deps/` subdirectory.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let mut dir = exe.parent().expect("the test executable has a directory").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// The newest modification time among the `.rs` files under `dir`, with that file.
fn newest_source(dir: &Path) -> Option<(SystemTime, PathBuf)> {
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(path);
            } else if path.extension() == Some(OsStr::new("rs")) {
                if let Ok(m) = meta.modified() {
                    if newest.as_ref().is_none_or(|(t, _)| m > *t) {
                        newest = Some((m, path));
                    }
                }
            }
        }
    }
    newest
}

// ---------------------------------------------------------------------------------------------
// Roles and commands

/// One of the workspace's binaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// `barista`: serves orders.
    Barista,
    /// `customer`: orders one coffee.
    Customer,
    /// `shop-init`: creates the shop's top-level nodes.
    ShopInit,
    /// `shop-status`: the shop at a glance.
    ShopStatus,
    /// `shop-manager`: follows the shops, reports events, serves metrics.
    ShopManager,
    /// `shop-admin`: the operator's actions.
    ShopAdmin,
}

impl Role {
    /// Every role, each a binary of the workspace.
    pub const ALL: [Role; 6] =
        [Role::Barista, Role::Customer, Role::ShopInit, Role::ShopStatus, Role::ShopManager, Role::ShopAdmin];

    /// The binary's file name, which is also the program name in its error messages.
    pub fn name(self) -> &'static str {
        match self {
            Role::Barista => "barista",
            Role::Customer => "customer",
            Role::ShopInit => "shop-init",
            Role::ShopStatus => "shop-status",
            Role::ShopManager => "shop-manager",
            Role::ShopAdmin => "shop-admin",
        }
    }

    /// The built binary. Panics with instructions when it is missing or older than the
    /// sources under `crates/`.
    pub fn path(self) -> PathBuf {
        static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
        let path = bin_dir().join(self.name());
        let verdict = CHECKED.get_or_init(|| {
            let crates = workspace_root().join("crates");
            let library = newest_source(&crates.join("zk-coffee"));
            for role in Role::ALL {
                // A binary is stale when its own crate or the library changed after it was
                // linked (cargo does not relink a binary whose inputs did not change).
                let own = newest_source(&crates.join(role.name()));
                let newest = [library.clone(), own].into_iter().flatten().max_by_key(|(t, _)| *t);
                let bin = bin_dir().join(role.name());
                let built = match std::fs::metadata(&bin).and_then(|m| m.modified()) {
                    Ok(t) => t,
                    Err(_) => return Err(format!("{} is missing: run `cargo build --workspace --bins` first", bin.display())),
                };
                if let Some((source_time, source)) = &newest {
                    if *source_time > built {
                        return Err(format!(
                            "{} is older than {}: run `cargo build --workspace --bins` first",
                            bin.display(),
                            source.display()
                        ));
                    }
                }
            }
            Ok(())
        });
        if let Err(msg) = verdict {
            panic!("{msg}");
        }
        path
    }
}

/// The environment variables the binaries read (`zk_coffee::cli::ENVIRONMENT`, and systemd's
/// `NOTIFY_SOCKET`); cleared for every spawned role so the developer's shell cannot change what
/// a test does.
pub fn role_env() -> impl Iterator<Item = &'static str> {
    zk_coffee::cli::ENVIRONMENT.into_iter().chain(["NOTIFY_SOCKET"])
}

/// Removes [`role_env`] from `cmd`.
pub fn clean_env(cmd: &mut Command) -> &mut Command {
    for key in role_env() {
        cmd.env_remove(key);
    }
    cmd
}

/// A command line for one role, built up and then [`run`](TestCommand::run) or
/// [`spawn`](TestCommand::spawn)ed.
///
/// The role gets `RUST_LOG=info` and none of the role environment variables (`ZK_SERVERS`,
/// `BARISTA_*`, ...) unless the test sets them with [`env`](TestCommand::env).
///
/// ```no_run
/// # use zk_coffee_tests::*;
/// # let server = ZkServer::start();
/// let out = server.cmd(Role::Customer).args(["--coffee", "latte"]).run(EXIT_TIMEOUT);
/// out.assert_code(exit::USAGE);
/// ```
#[derive(Debug, Clone)]
pub struct TestCommand {
    role: Role,
    args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    /// A command the role runs under (it must exec the role, keeping its pid); empty: none.
    wrapper: Vec<OsString>,
}

impl TestCommand {
    /// The role with no arguments at all (not even `--zk`).
    pub fn new(role: Role) -> TestCommand {
        TestCommand { role, args: Vec::new(), env: vec![("RUST_LOG".into(), Some("info".into()))], wrapper: Vec::new() }
    }

    /// Adds `--zk CONNECT`.
    pub fn zk(self, connect: impl AsRef<OsStr>) -> TestCommand {
        self.arg("--zk").arg(connect)
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> TestCommand {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds several arguments.
    pub fn args<I, S>(mut self, args: I) -> TestCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable (overrides the defaults, e.g. `RUST_LOG`).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> TestCommand {
        self.env.push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> TestCommand {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Runs the role under `wrapper`, a command line that ends by exec'ing the role's binary
    /// (appended to it, with the role's arguments) in the same process, so the pid is the
    /// role's: e.g. `unshare --mount ... --` to give it a sandbox.
    pub fn wrapped_in<S: AsRef<OsStr>>(mut self, wrapper: &[S]) -> TestCommand {
        self.wrapper = wrapper.iter().map(|w| w.as_ref().to_owned()).collect();
        self
    }

    /// The role this command runs.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The command line, for messages.
    pub fn display(&self) -> String {
        let mut s = self.role.name().to_owned();
        for a in &self.args {
            let a = a.to_string_lossy();
            if a.is_empty() || a.contains(char::is_whitespace) {
                s.push_str(&format!(" {a:?}"));
            } else {
                s.push(' ');
                s.push_str(&a);
            }
        }
        s
    }

    /// Starts the role in the background.
    pub fn spawn(self) -> Proc {
        let mut cmd = match self.wrapper.split_first() {
            Some((program, rest)) => {
                let mut cmd = Command::new(program);
                cmd.args(rest).arg(self.role.path());
                cmd
            }
            None => Command::new(self.role.path()),
        };
        cmd.args(&self.args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        clean_env(&mut cmd);
        for (key, value) in &self.env {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        die_with_parent(&mut cmd);
        Proc::start(cmd, self.role, &self.display())
    }

    /// Starts a barista in the background and waits until it logs that it is on shift.
    pub fn spawn_on_shift(self) -> Proc {
        let barista = self.spawn();
        barista.wait_for_stderr("is on shift", LOG_TIMEOUT);
        barista
    }

    /// Runs the role to completion. If it has not exited after `timeout`, kills it and panics
    /// with what it printed.
    pub fn run(self, timeout: Duration) -> Output {
        self.spawn().wait_exit(timeout)
    }
}

/// Makes the kernel SIGKILL the child when the thread that spawned it ends, so a role cannot
/// outlive a killed test process (Linux only; elsewhere a no-op). Uses no crate: `prctl` comes
/// from the C library std links anyway.
#[cfg(target_os = "linux")]
pub fn die_with_parent(cmd: &mut Command) {
    use std::os::raw::{c_int, c_ulong};
    use std::os::unix::process::CommandExt;
    extern "C" {
        fn prctl(option: c_int, ...) -> c_int;
    }
    const PR_SET_PDEATHSIG: c_int = 1;
    const SIGKILL: c_ulong = 9;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub fn die_with_parent(_cmd: &mut Command) {}
