//! `shop-init`: creates the shop's nodes and writes its configuration; safe to run any number
//! of times.

use std::process::ExitCode;

use clap::Parser;
use zk_coffee::cli::{self, ConnectArgs};
use zk_coffee::config::{self, ShopConfig};
use zk_coffee::error::exit;
use zk_coffee::security::{self, Credentials, Roles};
use zk_coffee::shop;

/// Creates /barista_group and /orders (persistent, data "0") where they are missing, our own
/// nodes under /zk-coffee, and the chroot of the connect string (or of --shop) if there is one.
/// Writes the shop's configuration (/zk-coffee/config): the defaults on a new shop, or what
/// --menu / --max-queue say, replacing the menu of a running shop (baristas pick it up at once,
/// customers when they arrive). Prints what it created, found and updated.
#[derive(Parser, Debug)]
#[command(version, after_help = cli::exit_codes_help())]
struct Args {
    #[command(flatten)]
    connect: ConnectArgs,

    /// The menu: coffees separated by commas, each with an optional brew time, e.g.
    /// "tesora=2,jacob,sogood=500ms". Default on a new shop: tesora,swisswater,jacob,sogood.
    #[arg(long, env = "SHOP_MENU", value_name = "LIST")]
    menu: Option<String>,

    /// The longest queue a customer joins (customers may override it).
    #[arg(long, env = "SHOP_MAX_QUEUE", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_queue: Option<u32>,

    /// Secure the shop (or convert an open one): ACLs for three roles, nobody else. This
    /// run's own credentials (--credentials-file) become the admin's; the staff's and the
    /// customers' come from the two files below (or, over TLS with client certificates, their
    /// certificates' subjects: --staff-x509, --customer-x509). See README "Security".
    #[arg(long, requires_all = ["staff_identity", "customer_identity"])]
    secure: bool,

    /// With --secure: the baristas' credentials file (one line user:password, mode 600).
    #[arg(long, env = "SHOP_STAFF_CREDENTIALS_FILE", value_name = "PATH", group = "staff_identity")]
    staff_credentials_file: Option<std::path::PathBuf>,

    /// With --secure: the customers' credentials file (one line user:password, mode 600).
    #[arg(long, env = "SHOP_CUSTOMER_CREDENTIALS_FILE", value_name = "PATH", group = "customer_identity")]
    customer_credentials_file: Option<std::path::PathBuf>,

    /// With --secure, instead of --staff-credentials-file: staff are the clients whose
    /// certificate has this subject (RFC 2253, e.g. CN=barista,O=shop), on a TLS server with
    /// ssl.clientAuth=need and the x509 auth provider.
    #[arg(long, env = "SHOP_STAFF_X509", value_name = "DN", group = "staff_identity")]
    staff_x509: Option<String>,

    /// With --secure, instead of --customer-credentials-file: customers are the clients whose
    /// certificate has this subject.
    #[arg(long, env = "SHOP_CUSTOMER_X509", value_name = "DN", group = "customer_identity")]
    customer_x509: Option<String>,
}

/// The id of one role of a secured shop: from its credentials file, or its certificate's
/// subject; `None` when there is neither.
fn role_id(file: &Option<std::path::PathBuf>, dn: &Option<String>) -> Option<zk_coffee::Result<String>> {
    match (file, dn) {
        (Some(file), _) => Some(Credentials::from_file(file).map(|c| c.digest_id())),
        (None, Some(dn)) => Some(Roles::x509_id(dn)),
        (None, None) => None,
    }
}

fn main() -> ExitCode {
    let args: Args = cli::parse_args("shop-init", || ());
    cli::init_logging();
    cli::finish("shop-init", run(args))
}

fn run(args: Args) -> zk_coffee::Result<u8> {
    // Check the new menu before touching ZooKeeper.
    let menu = args.menu.as_deref().map(|spec| ShopConfig::default().with_menu_spec(spec)).transpose()?;
    let session_config = args.connect.config()?;
    let roles = if args.secure {
        let staff = role_id(&args.staff_credentials_file, &args.staff_x509);
        let customer = role_id(&args.customer_credentials_file, &args.customer_x509);
        let missing: Vec<&str> = [
            (staff.is_none(), "--staff-credentials-file (or --staff-x509)"),
            (customer.is_none(), "--customer-credentials-file (or --customer-x509)"),
        ]
        .into_iter()
        .filter_map(|(missing, flags)| missing.then_some(flags))
        .collect();
        let (Some(staff), Some(customer)) = (staff, customer) else {
            return Err(zk_coffee::Error::usage(format!("--secure needs {}", missing.join(" and "))));
        };
        let admin = session_config.credentials.as_ref().ok_or_else(|| {
            zk_coffee::Error::usage("--secure needs the admin's credentials (--credentials-file or ZK_CREDENTIALS)")
        })?;
        Some(Roles { admin: admin.digest_id(), staff: staff?, customer: customer? })
    } else {
        None
    };
    shop::ensure_chroot(&session_config)?;
    let session = zk_coffee::Session::connect(session_config.clone())?;
    let report: zk_coffee::Result<_> = (|| {
        let new = match (menu, args.max_queue) {
            (Some(menu), max_queue) => Some(ShopConfig { max_queue, ..menu }),
            // --max-queue alone keeps the menu the shop has.
            (None, Some(max_queue)) => Some(ShopConfig { max_queue: Some(max_queue), ..config::load(&session)? }),
            (None, None) => None,
        };
        // In a shop secured earlier, nodes made now get its ACLs too.
        security::install(&session)?;
        let mut report = shop::init(&session, new.as_ref())?;
        if let Some(roles) = &roles {
            let changed = security::secure(&session, roles)?;
            report.updated.push(format!("{} ({changed} nodes secured)", zk_coffee::layout::ACL));
            if security::secure_chroot(&session_config, roles)? {
                report
                    .updated
                    .push(format!("{} (the shop's root: the admin's alone)", session_config.servers.chroot().unwrap_or("/")));
            }
        }
        Ok(report)
    })();
    session.close();
    let report = report?;
    for (word, paths) in [("created", &report.created), ("found", &report.found), ("updated", &report.updated)] {
        for path in paths {
            println!("{word} {path}");
        }
    }
    Ok(exit::OK)
}
