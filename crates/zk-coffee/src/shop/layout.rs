//! The znode layout of the wire contract, and the only place paths are built.
//!
//! ```text
//! /barista_group            persistent, data "0"
//!     /{barista}            EPHEMERAL: the barista is on shift
//! /orders                   persistent, data "0"
//!     /{barista}            persistent: the barista's bucket (holds orders only)
//!         /coffee0000000042 PERSISTENT_SEQUENTIAL: an order; data = the coffee's name in UTF-8
//! /zk-coffee                persistent: our additions, outside the original layout
//!     /config               persistent: menu, brew times, max queue (see config)
//!     /claims               persistent
//!         /{barista}        EPHEMERAL: held by the one barista adopting {barista}'s orphaned
//!                           bucket; data = the adopter's registration
//!     /sales                persistent
//!         /{barista}        persistent: what {barista} served, per coffee (see sales)
//!     /managers             persistent: the shop managers' election
//!         /manager-0000000007 EPHEMERAL_SEQUENTIAL: one manager standing; the lowest leads;
//!                           data = who it is (`host (pid N)`)
//!     /alerts               persistent: the alerts the leading manager ran (pruned)
//!         /{kind}-{sha1}    persistent: one alert; the name from the event's kind and key,
//!                           data = the event's JSON
//!     /rota                 persistent: our baristas in the order they came (see barista)
//!         /{barista}-0000000042 EPHEMERAL_SEQUENTIAL: one barista standing; each minds the
//!                           one just below it, the lowest minds the group; data = its
//!                           registration
//! ```
//!
//! `--shop NAME` runs a shop inside the chroot `/shops/NAME`, where the same tree starts.
//!
//! An order is served when its znode is deleted. Names are validated here so that a path
//! built from them always has exactly the shape above. Everything this project adds lives
//! under `/zk-coffee`, where a client that knows only the original layout never looks.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// The shop's persistent nodes that `shop-init` makes (data [`ROOT_DATA`]), parents first;
/// the configuration comes after them.
pub const SHOP_NODES: [&str; 9] = [BARISTA_GROUP, ORDERS, EXTENSIONS, CLAIMS, SALES, MANAGERS, ALERTS, OPERATOR, ROTA];

/// Where baristas register while they are on shift.
pub const BARISTA_GROUP: &str = "/barista_group";
/// Where each barista's bucket of orders lives.
pub const ORDERS: &str = "/orders";
/// The root of everything this project adds to the original layout.
pub const EXTENSIONS: &str = "/zk-coffee";
/// Where adoption claims live.
pub const CLAIMS: &str = "/zk-coffee/claims";
/// The shop's configuration (menu, brew times, maximum queue).
pub const CONFIG: &str = "/zk-coffee/config";
/// Where each barista's sales ledger lives.
pub const SALES: &str = "/zk-coffee/sales";
/// Which version of the layout the shop uses (see `layout_version`).
pub const LAYOUT_VERSION: &str = "/zk-coffee/version";
/// Where the shop's managers stand for election.
pub const MANAGERS: &str = "/zk-coffee/managers";
/// What a manager's candidate node is called, before its sequence.
pub const MANAGER_PREFIX: &str = "manager-";
/// Where the leading manager records the alerts it ran.
pub const ALERTS: &str = "/zk-coffee/alerts";
/// Where the operator's requests live (`shop-admin`): the closed sign, send-home requests.
pub const OPERATOR: &str = "/zk-coffee/operator";
/// Exists while the shop is closed; data = the reason, for the customers turned away.
pub const CLOSED: &str = "/zk-coffee/operator/closed";
/// What a send-home request's name starts with, before the barista's name.
pub const HOME_PREFIX: &str = "home-";
/// Where our baristas stand in the order they came: each minds the one just below it.
pub const ROTA: &str = "/zk-coffee/rota";
/// Where `--shop NAME` puts a shop: the chroot `/shops/NAME`.
pub const SHOPS: &str = "/shops";
/// The data of the two top-level nodes, as the original program wrote it.
pub const ROOT_DATA: &[u8] = b"0";
/// Every order's name starts with this, followed by ZooKeeper's 10-digit sequence.
pub const ORDER_PREFIX: &str = "coffee";

/// Longest barista name we accept; far below ZooKeeper's limits, long enough for FQDN_pid.
pub const MAX_NAME_LEN: usize = 128;

/// A barista's name: one path segment, safe to use in `/barista_group/{name}` and
/// `/orders/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BaristaName(String);

/// Checks that `name` is a usable single path segment; `what` names it in the error.
fn check_segment(name: &str, what: &str) -> Result<(), Error> {
    let bad = |why: &str| Error::usage(format!("invalid {what} name {name:?}: {why}"));
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(bad(&format!("longer than {MAX_NAME_LEN} bytes")));
    }
    if name == "." || name == ".." || name == "zookeeper" {
        return Err(bad("that name is reserved by ZooKeeper"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || "_-.".contains(*c))) {
        return Err(bad(&format!("{c:?} is not allowed (use letters, digits, '_', '-', '.')")));
    }
    Ok(())
}

/// A shop's name (`--shop`): one path segment, the same rules as a barista's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShopName(String);

impl ShopName {
    /// Checks that `name` can name a shop.
    pub fn new(name: &str) -> Result<ShopName, Error> {
        check_segment(name, "shop")?;
        Ok(ShopName(name.to_owned()))
    }
}

impl fmt::Display for ShopName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ShopName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ShopName::new(s)
    }
}

impl BaristaName {
    /// Checks that `name` is a usable single path segment.
    pub fn new(name: &str) -> Result<BaristaName, Error> {
        check_segment(name, "barista")?;
        Ok(BaristaName(name.to_owned()))
    }

    /// The default name, `{hostname}_{pid}`, with any character outside the allowed set
    /// in the hostname replaced by `-`.
    pub fn for_this_process() -> BaristaName {
        let host = hostname::get().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
        let mut host: String =
            host.chars().map(|c| if c.is_ascii_alphanumeric() || "_-.".contains(c) { c } else { '-' }).collect();
        if host.is_empty() {
            host.push_str("localhost");
        }
        let pid = std::process::id().to_string();
        host.truncate(MAX_NAME_LEN - pid.len() - 1);
        BaristaName(format!("{host}_{pid}"))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BaristaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for BaristaName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BaristaName::new(s)
    }
}

/// The name of one order inside a bucket: `coffee` plus ZooKeeper's sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrderName {
    /// The sequence ZooKeeper appended; orders are served in this order.
    pub sequence: u64,
}

impl OrderName {
    /// Parses a bucket child's name; `None` for anything that is not an order.
    pub fn parse(child: &str) -> Option<OrderName> {
        let digits = child.strip_prefix(ORDER_PREFIX)?;
        if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().map(|sequence| OrderName { sequence })
    }
}

impl fmt::Display for OrderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{ORDER_PREFIX}{:010}", self.sequence)
    }
}

/// `/barista_group/{barista}`: the barista's membership node.
pub fn member(barista: &BaristaName) -> String {
    format!("{BARISTA_GROUP}/{barista}")
}

/// `/orders/{barista}`: the barista's bucket.
pub fn bucket(barista: &BaristaName) -> String {
    format!("{ORDERS}/{barista}")
}

/// `/zk-coffee/claims/{barista}`: the claim on `barista`'s orphaned bucket.
pub fn claim(orphan: &BaristaName) -> String {
    format!("{CLAIMS}/{orphan}")
}

/// `/zk-coffee/rota/{barista}-`: what a barista passes to the sequential create of its place
/// on the rota.
pub fn rota_prefix(barista: &BaristaName) -> String {
    format!("{ROTA}/{barista}-")
}

/// `/zk-coffee/rota/{entry}`: a place on the rota, by the name it was listed under.
pub fn rota_entry(listed: &str) -> String {
    format!("{ROTA}/{listed}")
}

/// One place on the rota, read from its name: `{barista}-{10 digits}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RotaPlace {
    /// ZooKeeper's sequence: the order in which the baristas came (unique under the rota).
    pub sequence: u64,
    /// Who stands there.
    pub barista: BaristaName,
}

impl RotaPlace {
    /// Parses a rota child's name; `None` for anything that is no place.
    pub fn parse(child: &str) -> Option<RotaPlace> {
        let (barista, digits) = child.rsplit_once('-')?;
        if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(RotaPlace { sequence: digits.parse().ok()?, barista: BaristaName::new(barista).ok()? })
    }

    /// The name it is listed under.
    pub fn name(&self) -> String {
        format!("{}-{:010}", self.barista, self.sequence)
    }
}

/// `/zk-coffee/sales/{barista}`: what `barista` has served, per coffee.
pub fn ledger(barista: &BaristaName) -> String {
    format!("{SALES}/{barista}")
}

/// `/zk-coffee/operator/home-{barista}`: the operator's request that `barista` go home.
pub fn home_request(barista: &BaristaName) -> String {
    format!("{OPERATOR}/{HOME_PREFIX}{barista}")
}

/// `/zk-coffee/managers/manager-`: what a manager passes to its election's sequential create.
pub fn manager_prefix() -> String {
    format!("{MANAGERS}/{MANAGER_PREFIX}")
}

/// The name of an alert's record: the event's kind, `-`, and the SHA-1 of its key in hex
/// (`barista-lost-3f786850e387550fdab836ed7e6dc881de23001b`). Every manager derives the same
/// name from the same episode; the key itself may hold any character.
pub fn alert_name(kind: &str, key: &str) -> String {
    format!("{kind}-{}", sha1_smol::Sha1::from(key).digest())
}

/// `/zk-coffee/alerts/{name}`: the record of an alert run, by its [`alert_name`] (or the name
/// listed).
pub fn alert(name: &str) -> String {
    format!("{ALERTS}/{name}")
}

/// `/shops/{shop}`: the chroot of a named shop.
pub fn shop_root(shop: &ShopName) -> String {
    format!("{SHOPS}/{shop}")
}

/// A path of a shop's tree as seen from the ensemble's root: as it is for the root shop
/// (`None`), under `/shops/{shop}` for a named one. For a role that follows several shops on
/// one session without a chroot (the manager).
pub fn in_shop(shop: Option<&ShopName>, path: &str) -> String {
    match shop {
        None => path.to_owned(),
        Some(shop) => format!("{SHOPS}/{shop}{path}"),
    }
}

/// Where a path seen from the ensemble's root belongs: [`Located::Shops`] is `/shops` itself,
/// [`Located::Named`] a named shop's node (its path inside the shop: `""` for the shop's own
/// node), [`Located::Root`] everything else (the root shop's tree, or nothing of ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Located<'a> {
    Shops,
    Named { shop: &'a str, path: &'a str },
    Root(&'a str),
}

/// Sorts a path seen from the ensemble's root into its shop (the inverse of [`in_shop`]).
pub fn locate(path: &str) -> Located<'_> {
    let Some(rest) = path.strip_prefix(SHOPS) else { return Located::Root(path) };
    if rest.is_empty() {
        return Located::Shops;
    }
    let Some(rest) = rest.strip_prefix('/') else { return Located::Root(path) };
    match rest.find('/') {
        Some(end) => Located::Named { shop: &rest[..end], path: &rest[end..] },
        None => Located::Named { shop: rest, path: "" },
    }
}

/// The last segment of a path: the name of the member, bucket, claim or ledger it is.
pub fn last_segment(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// `/zk-coffee/acl`: who the admin, staff and customers of a secured shop are.
pub const ACL: &str = "/zk-coffee/acl";

/// What a node is, by where it sits: decides who may do what to it in a secured shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// `/barista_group`.
    Group,
    /// `/orders`.
    Orders,
    /// `/barista_group/{barista}`.
    Member,
    /// `/orders/{barista}`.
    Bucket,
    /// `/orders/{barista}/coffee...` (also the prefix passed to a sequential create).
    Order,
    /// `/zk-coffee`.
    Extensions,
    /// `/zk-coffee/config`, `/zk-coffee/acl` and `/zk-coffee/version`: read by all roles,
    /// written by the admin.
    Settings,
    /// `/zk-coffee/claims`.
    Claims,
    /// `/zk-coffee/claims/{barista}`.
    Claim,
    /// `/zk-coffee/sales`.
    Sales,
    /// `/zk-coffee/sales/{barista}`.
    Ledger,
    /// `/zk-coffee/managers`.
    Managers,
    /// `/zk-coffee/managers/{candidate}`.
    Manager,
    /// `/zk-coffee/alerts`.
    Alerts,
    /// `/zk-coffee/alerts/{name}`.
    Alert,
    /// `/zk-coffee/operator`.
    Operator,
    /// `/zk-coffee/operator/closed` and `/zk-coffee/operator/home-{barista}`.
    Request,
    /// `/zk-coffee/rota`.
    Rota,
    /// `/zk-coffee/rota/{barista}-{sequence}` (also the prefix passed to its create).
    RotaPlace,
    /// Anything else (not ours).
    Other,
}

/// `{parent}/{child}`: a child of a shop node (never `/`), by the name ZooKeeper listed it
/// under: for walking a subtree, e.g. to secure it.
pub fn child(parent: &str, child: &str) -> String {
    format!("{parent}/{child}")
}

/// The kind of the node at `path`.
pub fn kind_of(path: &str) -> NodeKind {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["barista_group"] => NodeKind::Group,
        ["orders"] => NodeKind::Orders,
        ["barista_group", _] => NodeKind::Member,
        ["orders", _] => NodeKind::Bucket,
        ["orders", _, order] if order.starts_with(ORDER_PREFIX) => NodeKind::Order,
        ["zk-coffee"] => NodeKind::Extensions,
        ["zk-coffee", "config" | "acl" | "version"] => NodeKind::Settings,
        ["zk-coffee", "claims"] => NodeKind::Claims,
        ["zk-coffee", "claims", _] => NodeKind::Claim,
        ["zk-coffee", "sales"] => NodeKind::Sales,
        ["zk-coffee", "sales", _] => NodeKind::Ledger,
        ["zk-coffee", "managers"] => NodeKind::Managers,
        ["zk-coffee", "managers", _] => NodeKind::Manager,
        ["zk-coffee", "alerts"] => NodeKind::Alerts,
        ["zk-coffee", "alerts", _] => NodeKind::Alert,
        ["zk-coffee", "operator"] => NodeKind::Operator,
        ["zk-coffee", "operator", _] => NodeKind::Request,
        ["zk-coffee", "rota"] => NodeKind::Rota,
        ["zk-coffee", "rota", _] => NodeKind::RotaPlace,
        _ => NodeKind::Other,
    }
}

/// `/orders/{barista}/coffee`: what a customer passes to a sequential create.
pub fn order_prefix(barista: &BaristaName) -> String {
    format!("{ORDERS}/{barista}/{ORDER_PREFIX}")
}

/// `/orders/{barista}/coffee{sequence}`: one order.
pub fn order(barista: &BaristaName, order: OrderName) -> String {
    format!("{ORDERS}/{barista}/{order}")
}

/// Splits an order's full path back into its barista and order name.
pub fn parse_order_path(path: &str) -> Option<(BaristaName, OrderName)> {
    let rest = path.strip_prefix(ORDERS)?.strip_prefix('/')?;
    let (barista, order) = rest.split_once('/')?;
    Some((BaristaName::new(barista).ok()?, OrderName::parse(order)?))
}

/// Where a node sits under `/orders`, by its full path (not validated: for sorting watch
/// events cheaply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnderOrders<'a> {
    /// `/orders/{barista}`: a bucket.
    Bucket(&'a str),
    /// `/orders/{barista}/{child}`: an order, or something else in a bucket.
    Child { barista: &'a str, child: &'a str },
    /// `/orders` itself, deeper nodes, or anything elsewhere.
    Other,
}

/// Tells a bucket from a bucket's child from anything else.
pub fn under_orders(path: &str) -> UnderOrders<'_> {
    let Some(rest) = path.strip_prefix(ORDERS).and_then(|r| r.strip_prefix('/')) else { return UnderOrders::Other };
    match rest.split_once('/') {
        None if !rest.is_empty() => UnderOrders::Bucket(rest),
        Some((barista, child)) if !barista.is_empty() && !child.is_empty() && !child.contains('/') => {
            UnderOrders::Child { barista, child }
        }
        _ => UnderOrders::Other,
    }
}

/// The orders among a bucket's children, in the order they were placed.
///
/// `get_children` returns children in no particular order; this sorts by sequence. Children
/// that are not orders are returned separately so the caller can report them.
pub fn orders_in_placement_order(children: &[String]) -> (Vec<OrderName>, Vec<&str>) {
    let mut orders = Vec::with_capacity(children.len());
    let mut foreign = Vec::new();
    for child in children {
        match OrderName::parse(child) {
            Some(order) => orders.push(order),
            None => foreign.push(child.as_str()),
        }
    }
    orders.sort_unstable();
    (orders, foreign)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> BaristaName {
        BaristaName::new(s).expect("valid name")
    }

    #[test]
    fn paths_have_the_wire_shape() {
        let b = name("host_42");
        assert_eq!(member(&b), "/barista_group/host_42");
        assert_eq!(bucket(&b), "/orders/host_42");
        assert_eq!(order_prefix(&b), "/orders/host_42/coffee");
        assert_eq!(order(&b, OrderName { sequence: 7 }), "/orders/host_42/coffee0000000007");
        assert_eq!(claim(&b), "/zk-coffee/claims/host_42");
        assert_eq!(child(ORDERS, "host_42"), bucket(&b));
    }

    #[test]
    fn nodes_are_known_by_their_place() {
        let b = name("b1");
        assert_eq!(kind_of(BARISTA_GROUP), NodeKind::Group);
        assert_eq!(kind_of(&member(&b)), NodeKind::Member);
        assert_eq!(kind_of(&bucket(&b)), NodeKind::Bucket);
        assert_eq!(kind_of(&order_prefix(&b)), NodeKind::Order);
        assert_eq!(kind_of(&order(&b, OrderName { sequence: 1 })), NodeKind::Order);
        assert_eq!(kind_of(&claim(&b)), NodeKind::Claim);
        assert_eq!(kind_of(&ledger(&b)), NodeKind::Ledger);
        assert_eq!(kind_of(CONFIG), NodeKind::Settings);
        assert_eq!(kind_of(ACL), NodeKind::Settings);
        assert_eq!(kind_of("/orders/b1/junk"), NodeKind::Other);
        assert_eq!(kind_of("/shops"), NodeKind::Other);
        assert_eq!(kind_of(MANAGERS), NodeKind::Managers);
        assert_eq!(kind_of(&manager_prefix()), NodeKind::Manager);
        assert_eq!(kind_of("/zk-coffee/managers/manager-0000000003"), NodeKind::Manager);
        assert_eq!(kind_of(ALERTS), NodeKind::Alerts);
        assert_eq!(kind_of(&alert(&alert_name("barista-lost", "k"))), NodeKind::Alert);
        assert_eq!(kind_of(ROTA), NodeKind::Rota);
        assert_eq!(kind_of(&rota_prefix(&b)), NodeKind::RotaPlace);
    }

    #[test]
    fn rota_places_name_their_barista_and_sequence() {
        let b = name("host-7_42");
        assert_eq!(rota_prefix(&b), "/zk-coffee/rota/host-7_42-");
        let place = RotaPlace::parse("host-7_42-0000000012").expect("a place");
        assert_eq!((place.sequence, place.barista.as_str()), (12, "host-7_42"));
        assert_eq!(place.name(), "host-7_42-0000000012");
        assert_eq!(rota_entry(&place.name()), "/zk-coffee/rota/host-7_42-0000000012");
        for junk in ["host_42", "host_42-12", "-0000000012", "a b-0000000012", "h-000000001x", "h-00000000123"] {
            assert_eq!(RotaPlace::parse(junk), None, "{junk}");
        }
    }

    #[test]
    fn alert_names_are_one_segment_from_kind_and_key() {
        let name = alert_name("barista-lost", "barista-lost:b1/x:0x1 \n");
        assert!(name.starts_with("barista-lost-"), "{name}");
        assert_eq!(name.len(), "barista-lost-".len() + 40);
        assert!(check_segment(&name, "alert").is_ok(), "{name}");
        assert_eq!(name, alert_name("barista-lost", "barista-lost:b1/x:0x1 \n"), "the same key gives the same name");
        assert_ne!(name, alert_name("barista-lost", "barista-lost:b2:0x1"));
        assert_eq!(alert(&name), format!("/zk-coffee/alerts/{name}"));
        assert_eq!(manager_prefix(), "/zk-coffee/managers/manager-");
    }

    #[test]
    fn order_names_round_trip() {
        let o = OrderName::parse("coffee0000000123").expect("an order");
        assert_eq!(o.sequence, 123);
        assert_eq!(o.to_string(), "coffee0000000123");
        assert_eq!(parse_order_path("/orders/b_1/coffee0000000123"), Some((name("b_1"), o)));
    }

    #[test]
    fn non_orders_are_not_orders() {
        for child in ["coffee", "coffee123", "coffee00000001234", "tea0000000001", "coffee-000000001", "coffee00000000x1"] {
            assert_eq!(OrderName::parse(child), None, "{child}");
        }
        assert_eq!(parse_order_path("/orders/coffee0000000001"), None);
        assert_eq!(parse_order_path("/barista_group/b/coffee0000000001"), None);
    }

    #[test]
    fn orders_sort_by_sequence_not_listing_order() {
        let children: Vec<String> = ["coffee0000000010", "junk", "coffee0000000002", "coffee0000000009"].map(String::from).into();
        let (orders, foreign) = orders_in_placement_order(&children);
        assert_eq!(orders.iter().map(|o| o.sequence).collect::<Vec<_>>(), [2, 9, 10]);
        assert_eq!(foreign, ["junk"]);
    }

    #[test]
    fn paths_under_orders_are_told_apart() {
        assert_eq!(under_orders("/orders/b_1"), UnderOrders::Bucket("b_1"));
        assert_eq!(
            under_orders("/orders/b_1/coffee0000000001"),
            UnderOrders::Child { barista: "b_1", child: "coffee0000000001" }
        );
        for other in ["/orders", "/orders/", "/orders/b/c/d", "/orders//c", "/ordersx/b", "/barista_group/b", "/orders/b/"] {
            assert_eq!(under_orders(other), UnderOrders::Other, "{other}");
        }
    }

    #[test]
    fn invalid_barista_names_are_refused() {
        let long = "x".repeat(MAX_NAME_LEN + 1);
        for bad in ["", "a/b", "/", ".", "..", "zookeeper", "a b", "tab\t", "é", long.as_str()] {
            assert!(BaristaName::new(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["host_1", "a.b-c_d", "X9"] {
            assert!(BaristaName::new(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn default_name_is_host_underscore_pid() {
        let n = BaristaName::for_this_process();
        assert!(n.as_str().ends_with(&format!("_{}", std::process::id())));
        assert!(BaristaName::new(n.as_str()).is_ok());
    }
    #[test]
    fn paths_are_located_in_their_shop() {
        let shop = ShopName::new("north").expect("name");
        assert_eq!(in_shop(Some(&shop), ORDERS), "/shops/north/orders");
        assert_eq!(in_shop(None, ORDERS), "/orders");
        assert_eq!(locate("/shops/north/orders/b1"), Located::Named { shop: "north", path: "/orders/b1" });
        assert_eq!(locate("/shops/north"), Located::Named { shop: "north", path: "" });
        assert_eq!(locate("/shops"), Located::Shops);
        assert_eq!(locate("/orders/b1"), Located::Root("/orders/b1"));
        assert_eq!(locate("/shopsx/a"), Located::Root("/shopsx/a"));
        assert_eq!(last_segment("/barista_group/b1"), "b1");
    }
}
