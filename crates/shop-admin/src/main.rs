//! `shop-admin`: the operator's hands, from any host: close and reopen the shop, send a
//! barista home, purge a bucket.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use zk_coffee::cli::{self, ConnectArgs};
use zk_coffee::error::exit;
use zk_coffee::{operator, shop, BaristaName};

/// Changes what the shop does, wherever its roles run. Each action is safe to repeat: one that
/// does not apply now (no such barista, already closed, an empty bucket) changes nothing, says
/// why in one line and exits 14. In a secured shop it needs the admin's or the staff's
/// credentials.
#[derive(Parser, Debug)]
#[command(version, after_help = cli::exit_codes_help())]
struct Args {
    #[command(flatten)]
    connect: ConnectArgs,

    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Close the shop: customers arriving are told at once (`closed`, exit 13) and place
    /// nothing; baristas serve what is queued.
    Close {
        /// What the customers turned away are told.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Open the shop again.
    Open,
    /// Send a barista home: it leaves exactly as on SIGTERM (its queue handed over, or
    /// drained), wherever it runs.
    SendHome {
        /// The barista's name, as in /barista_group.
        barista: BaristaName,
    },
    /// Purge a bucket: its orders are rejected with the reason, which their customers see
    /// (they withdraw them and exit 10); what is left after the grace is removed.
    Purge {
        /// Whose bucket (a barista's name, as in /orders).
        barista: BaristaName,
        /// What the customers are told.
        #[arg(long, default_value = "")]
        reason: String,
        /// How long to wait for the customers to withdraw their orders before removing the
        /// rest (seconds, or e.g. 500ms).
        #[arg(long, default_value = "5", value_name = "SECS", value_parser = cli::parse_duration)]
        grace: Duration,
    },
}

fn main() -> ExitCode {
    let args: Args = cli::parse_args("shop-admin", || ());
    cli::init_logging();
    cli::finish("shop-admin", run(args))
}

fn run(args: Args) -> zk_coffee::Result<u8> {
    let session = args.connect.connect()?;
    let done = act(&session, &args.action);
    session.close();
    println!("{}", done?);
    Ok(exit::OK)
}

/// Does the action; returns the line that says what was done.
fn act(session: &zk_coffee::Session, action: &Action) -> zk_coffee::Result<String> {
    shop::check_initialised(session)?;
    Ok(match action {
        Action::Close { reason } => {
            operator::close(session, reason)?;
            format!("closed ({})", operator::said(reason))
        }
        Action::Open => {
            operator::reopen(session)?;
            "open".to_owned()
        }
        Action::SendHome { barista } => {
            operator::send_home(session, barista)?;
            format!("sent-home barista={barista}")
        }
        Action::Purge { barista, reason, grace } => {
            let purged = operator::purge(session, barista, reason, *grace)?;
            format!(
                "purged bucket={barista} rejected={} withdrawn={} removed={}",
                purged.rejected, purged.withdrawn, purged.removed
            )
        }
    })
}
