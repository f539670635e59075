//! What the fault tests share: the short session timeout and `tickTime` they run with, role
//! commands that use them, and, re-exported for those tests, the fault injection of the
//! harness's other rooms: [`Frozen`] processes, signals, [`CpuMeter`] and TCP connections
//! ([`crate::procfs`]), the [`Proxy`] that cuts, mutes and swallows ([`crate::proxy`]),
//! [`Ensemble`]s whose members can be killed ([`crate::ensemble`]), and the "nothing lost"
//! [`audit`] with [`settle_customers`] ([`crate::audit`]).

pub use crate::audit::*;
pub use crate::ensemble::*;
pub use crate::logs::{made, served};
pub use crate::procfs::*;
pub use crate::proxy::*;
pub use crate::server::{four_letter, member_serving, serves_connection_from};
use crate::{Role, TestCommand};

/// The session timeout (seconds) the fault tests give every role: short, so that expiry and
/// adoption happen within a few seconds. Servers run with `tickTime` 200 ms, which lets
/// sessions be negotiated into 0.4–4 s.
pub const SESSION_TIMEOUT_SECS: u64 = 2;

/// The `tickTime` of the fault tests' servers.
pub const TICK_MS: u32 = 200;

/// A role command for `connect` with `--session-timeout` [`SESSION_TIMEOUT_SECS`].
pub fn role(connect: &str, role: Role) -> TestCommand {
    TestCommand::new(role).zk(connect).args(["--session-timeout", &SESSION_TIMEOUT_SECS.to_string()])
}

/// A barista named `name` brewing for `brew` (e.g. `"0.3"` seconds).
pub fn barista(connect: &str, name: &str, brew: &str) -> TestCommand {
    role(connect, Role::Barista).args(["--name", name, "--brew-time", brew])
}

/// A customer ordering `coffee` (from `barista`, if given) with `patience` seconds.
pub fn customer(connect: &str, barista: Option<&str>, coffee: &str, patience: &str) -> TestCommand {
    let cmd = role(connect, Role::Customer).args(["--coffee", coffee, "--patience", patience]);
    match barista {
        Some(b) => cmd.args(["--barista", b]),
        None => cmd,
    }
}
