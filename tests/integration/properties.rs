//! Property tests of the library's parsers for names, paths and data: whatever a foreign
//! client writes into the tree, or a user types into a flag, they must never panic; what we
//! write must read back as it was; a valid name must always make a path that parses back.
//!
//! No ZooKeeper here: these call `zk_coffee` directly. The concrete cases the properties once
//! found (brew times stored rounded, IPv6 connect strings) are pinned in plain tests next to
//! them.

use std::time::Duration;

use proptest::prelude::*;

use zk_coffee::config::ShopConfig;
use zk_coffee::layout::{self, kind_of, parse_order_path, BaristaName, NodeKind, OrderName, ShopName};
use zk_coffee::order::{self, Payload, MAX_ORDER_BYTES, REJECTED_PREFIX};
use zk_coffee::registration::Registration;
use zk_coffee::sales::{self, Counts};
use zk_coffee::security::{Credentials, Roles, ALL};
use zk_coffee::session::Grant;
use zk_coffee::{duration, ConnectString, Menu};

// ---------------------------------------------------------------------------------------------
// Strategies

/// Proptest's defaults (256 cases), without writing failing cases into the source tree: the
/// failure message shows the minimal input.
fn config() -> ProptestConfig {
    ProptestConfig { failure_persistence: None, ..ProptestConfig::default() }
}

/// The documented rule for barista and shop names (README, `--name`): 1-128 bytes of letters,
/// digits, `_`, `-`, `.`, and not `.`, `..` or `zookeeper`.
fn is_valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !matches!(s, "." | ".." | "zookeeper")
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Names that are valid (most of the time).
fn valid_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.-]{1,128}".prop_filter("reserved", |s| is_valid_name(s))
}

/// Strings near the rules' edges: valid ones, reserved ones, lengths around 128, a slash or a
/// space inside, anything at all.
fn name_like() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[A-Za-z0-9_.-]{0,130}",
        1 => "[a-z]{126,130}",
        1 => prop_oneof![Just(".".to_owned()), Just("..".to_owned()), Just("zookeeper".to_owned()), Just(String::new())],
        2 => "[A-Za-z0-9_./ \\t\\n:é-]{0,20}",
        2 => any::<String>(),
    ]
}

/// A coffee name as the menu accepts it.
fn coffee() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,64}"
}

/// A menu of 1-6 distinct coffees.
fn coffees() -> impl Strategy<Value = Vec<String>> {
    prop::collection::btree_set(coffee(), 1..6).prop_map(|s| s.into_iter().collect())
}

/// A brew time as `duration::human` writes it back exactly: whole milliseconds under a second,
/// whole tenths of a second above (the configuration stores brew times that way).
fn exact_brew() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..1000).prop_map(Duration::from_millis),
        (10u64..=864_000).prop_map(|tenths| Duration::from_millis(tenths * 100))
    ]
}

/// One server of a connect string, as people write them: a host name, an IPv4 address or a
/// bracketed IPv6 address, with or without a port.
fn server() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9-]{0,10}){0,3}",
        (0u8..=255, 0u8..=255, 0u8..=255, 0u8..=255).prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        Just("[::1]".to_owned()),
        Just("[fe80::1:2]".to_owned()),
    ];
    (host, prop::option::of(1u16..=65535)).prop_map(|(h, port)| match (port, h.starts_with('[')) {
        (Some(p), _) => format!("{h}:{p}"),
        // A bracketed address needs its port (see the ignored test below).
        (None, true) => format!("{h}:2181"),
        (None, false) => h,
    })
}

/// A connect string as people write them, with spaces after commas now and then.
fn connect_string() -> impl Strategy<Value = String> {
    let chroot = prop::option::of(prop::collection::vec(valid_name(), 1..4).prop_map(|segs| format!("/{}", segs.join("/"))));
    (prop::collection::vec((server(), any::<bool>()), 1..5), chroot).prop_map(|(servers, chroot)| {
        let list: Vec<String> = servers.into_iter().map(|(s, space)| if space { format!(" {s}") } else { s }).collect();
        format!("{}{}", list.join(","), chroot.unwrap_or_default())
    })
}

/// Text that is neither a line break nor a carriage return: what a field of a `key=value`
/// line may hold.
fn field() -> impl Strategy<Value = String> {
    "[^\r\n]{0,40}"
}

/// Text that looks a bit like our `key=value` data, and sometimes is.
fn key_value_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        "menu=[a-z,= ]{0,20}",
        "brew\\.[a-z]{0,5}=[0-9.ms-]{0,6}",
        "max_queue=-?[0-9]{0,12}",
        "[a-z_.]{0,8}=[^\n]{0,10}",
        "#[^\n]{0,10}",
        "[^\n]{0,10}",
    ];
    prop::collection::vec(line, 0..6).prop_map(|lines| lines.join("\n"))
}

// ---------------------------------------------------------------------------------------------
// Names and paths

proptest! {
    #![proptest_config(config())]
    #[test]
    fn barista_and_shop_names_follow_the_documented_rules(s in name_like()) {
        let valid = is_valid_name(&s);
        match BaristaName::new(&s) {
            Ok(name) => {
                prop_assert!(valid, "{s:?} accepted as a barista name");
                prop_assert_eq!(name.as_str(), s.as_str());
                prop_assert_eq!(s.parse::<BaristaName>().map(|n| n.to_string()).ok(), Some(s.clone()));
            }
            Err(e) => {
                prop_assert!(!valid, "{s:?} refused: {e}");
                let msg = e.to_string();
                prop_assert!(msg.starts_with("invalid barista name") && !msg.contains('\n'), "{msg:?}");
            }
        }
        match ShopName::new(&s) {
            Ok(shop) => {
                prop_assert!(valid, "{s:?} accepted as a shop name");
                prop_assert_eq!(shop.to_string(), s.clone());
                prop_assert_eq!(layout::shop_root(&shop), format!("/shops/{s}"));
            }
            Err(e) => {
                prop_assert!(!valid, "{s:?} refused: {e}");
                prop_assert!(e.to_string().starts_with("invalid shop name"), "{e}");
            }
        }
    }

    #[test]
    fn valid_names_make_paths_of_the_wire_shape_that_parse_back(name in valid_name(), sequence in 0u64..10_000_000_000) {
        let b = BaristaName::new(&name).expect("valid by construction");
        let o = OrderName { sequence };
        let order = layout::order(&b, o);
        prop_assert_eq!(&order, &format!("/orders/{name}/coffee{sequence:010}"));
        prop_assert_eq!(parse_order_path(&order), Some((b.clone(), o)));
        prop_assert_eq!(OrderName::parse(&o.to_string()), Some(o));
        prop_assert_eq!(layout::member(&b), format!("/barista_group/{name}"));
        prop_assert_eq!(layout::bucket(&b), format!("/orders/{name}"));
        prop_assert_eq!(layout::order_prefix(&b), format!("/orders/{name}/coffee"));
        for (path, kind) in [
            (layout::member(&b), NodeKind::Member),
            (layout::bucket(&b), NodeKind::Bucket),
            (order.clone(), NodeKind::Order),
            (layout::order_prefix(&b), NodeKind::Order),
            (layout::claim(&b), NodeKind::Claim),
            (layout::ledger(&b), NodeKind::Ledger),
        ] {
            prop_assert_eq!(kind_of(&path), kind, "{}", path);
            // Exactly one segment per name: the path splits where the layout says.
            prop_assert_eq!(path.split('/').filter(|s| *s == name).count(), 1, "{}", path);
        }
    }

    #[test]
    fn order_names_are_coffee_and_ten_digits_and_nothing_else(s in prop_oneof![
        "coffee[0-9]{8,12}",
        "coffee[0-9a-z-]{10}",
        "(coffee|tea|Coffee)?[0-9]{10}",
        any::<String>(),
    ]) {
        let shaped = s.len() == 16 && s.starts_with("coffee") && s[6..].bytes().all(|b| b.is_ascii_digit());
        match OrderName::parse(&s) {
            Some(o) => {
                prop_assert!(shaped, "{s:?} taken for an order");
                prop_assert_eq!(o.to_string(), s);
            }
            None => prop_assert!(!shaped, "{s:?} is an order name"),
        }
    }

    #[test]
    fn order_paths_parse_back_exactly_or_not_at_all(s in prop_oneof![
        (name_like(), "coffee[0-9]{9,11}|junk|").prop_map(|(b, o)| format!("/orders/{b}/{o}")),
        (valid_name(), valid_name(), "coffee[0-9]{10}").prop_map(|(a, b, o)| format!("/orders/{a}/{b}/{o}")),
        "/?(orders|barista_group|zk-coffee)?/[a-z/]{0,12}(coffee[0-9]{10})?",
        any::<String>(),
    ]) {
        if let Some((b, o)) = parse_order_path(&s) {
            prop_assert_eq!(layout::order(&b, o), s.clone());
            prop_assert_eq!(kind_of(&s), NodeKind::Order);
        }
    }

    #[test]
    fn every_path_has_a_kind_and_the_admin_always_keeps_it(s in prop_oneof![
        "(/(barista_group|orders|zk-coffee|config|acl|claims|sales|coffee[0-9]{10}|x|)){0,4}",
        any::<String>(),
    ]) {
        let kind = kind_of(&s);
        let roles = Roles { admin: "a:x".into(), staff: "s:y".into(), customer: "c:z".into() };
        let grants = roles.grants(&s);
        prop_assert_eq!(grants.first(), Some(&Grant::digest(ALL, "a:x")), "{:?} ({:?})", s, kind);
        prop_assert!(grants.iter().all(|g| g.scheme == "digest" && g.perms != 0), "{grants:?}");
        if kind == NodeKind::Other {
            prop_assert_eq!(grants.len(), 1, "a node that is not the shop's is the admin's alone: {:?}", s);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Order data

proptest! {
    #![proptest_config(config())]
    #[test]
    fn any_order_data_is_a_coffee_an_invalid_order_or_a_rejection(data in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        prop::collection::vec(any::<u8>(), 250..1100),
        prop::sample::select(zk_coffee::menu::DEFAULT_MENU.to_vec()).prop_map(|c| c.as_bytes().to_vec()),
        "rejected: [^\n]{0,30}".prop_map(String::into_bytes),
        "withdrawn: [a-z]{0,12}".prop_map(String::into_bytes),
    ]) {
        let menu = Menu::default();
        match Payload::parse(&data, &menu) {
            Payload::Coffee(c) => {
                prop_assert_eq!(c.as_bytes(), &data[..]);
                prop_assert!(menu.contains(&c));
            }
            Payload::Invalid(reason) => {
                prop_assert!(!reason.is_empty());
                let rejected = order::rejection(&reason);
                prop_assert!(rejected.starts_with(REJECTED_PREFIX.as_bytes()));
                prop_assert!(!rejected.contains(&b'\n'), "a rejection is one line");
                if data.len() > MAX_ORDER_BYTES {
                    prop_assert!(reason.contains("bytes long"), "{}", reason);
                }
            }
            Payload::Rejected(reason) => {
                let rest = data.strip_prefix(REJECTED_PREFIX.as_bytes());
                prop_assert_eq!(rest.map(String::from_utf8_lossy), Some(reason.into()));
            }
            Payload::Withdrawn(coffee) => {
                prop_assert_eq!(order::withdrawal(&coffee), data);
            }
        }
    }

    #[test]
    fn short_rejections_read_back_as_rejections_on_one_line(reason in prop_oneof!["\\PC{0,60}", "[^\n]{0,60}", any::<String>()]) {
        let data = order::rejection(&reason);
        prop_assume!(data.len() <= MAX_ORDER_BYTES);
        let one_line: String = reason.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        prop_assert_eq!(Payload::parse(&data, &Menu::default()), Payload::Rejected(one_line));
    }

    #[test]
    fn a_coffee_on_any_menu_is_made_and_one_off_it_is_not(menu in coffees(), other in coffee()) {
        let m = Menu::new(&menu).expect("distinct valid coffees");
        for c in &menu {
            prop_assert_eq!(Payload::parse(c.as_bytes(), &m), Payload::Coffee(c.clone()));
        }
        if !menu.contains(&other) {
            prop_assert!(matches!(Payload::parse(other.as_bytes(), &m), Payload::Invalid(r) if r.contains("not on the menu")));
        }
    }
}

/// Every rejection a barista writes must read back as a rejection, or the barista rejects its
/// own rejection again with another reason (it did, for orders off the menu of 200 bytes or
/// more, until cd5647e).
#[test]
fn every_rejection_reads_back_as_a_rejection() {
    let data = prop_oneof![prop::collection::vec(any::<u8>(), 0..300), "[a-z ]{0,256}".prop_map(String::into_bytes)];
    proptest!(config(), |(data in data)| {
        let menu = Menu::default();
        if let Payload::Invalid(reason) = Payload::parse(&data, &menu) {
            let written = order::rejection(&reason);
            prop_assert!(matches!(Payload::parse(&written, &menu), Payload::Rejected(_)),
                "{} bytes of data: the rejection ({} bytes) reads back as {:?}", data.len(), written.len(), Payload::parse(&written, &menu));
        }
    });
}

/// The case `every_rejection_reads_back_as_a_rejection` finds: 250 bytes that are not a coffee.
#[test]
fn the_rejection_of_250_bytes_off_the_menu_is_a_rejection() {
    let menu = Menu::default();
    let Payload::Invalid(reason) = Payload::parse("x".repeat(250).as_bytes(), &menu) else { panic!("not invalid") };
    let written = order::rejection(&reason);
    assert_eq!(Payload::parse(&written, &menu), Payload::Rejected(reason), "{} bytes written", written.len());
}

// ---------------------------------------------------------------------------------------------
// The shop's configuration

proptest! {
    #![proptest_config(config())]
    #[test]
    fn configuration_data_never_panics_and_errors_are_one_line(data in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        key_value_text().prop_map(String::into_bytes),
    ]) {
        if let Err(e) = ShopConfig::decode(&data) {
            let msg = e.to_string();
            prop_assert!(msg.contains("/zk-coffee/config") && !msg.contains('\n'), "{msg:?}");
        }
    }

    #[test]
    fn menu_specs_never_panic(spec in prop_oneof![any::<String>(), "[a-z0-9=,. ms]{0,30}"]) {
        let _ = ShopConfig::default().with_menu_spec(&spec);
    }

    #[test]
    fn configurations_round_trip_through_their_data(
        menu in coffees(),
        brews in prop::collection::vec(prop::option::of(exact_brew()), 6),
        max_queue in prop::option::of(1u32..),
        spaces in any::<bool>(),
    ) {
        // Written as shop-init's --menu takes it: "a=250ms, b, c=1.5".
        let items: Vec<String> = menu
            .iter()
            .zip(&brews)
            .map(|(c, brew)| match brew {
                Some(d) if d.subsec_millis() == 0 => format!("{c}={}", d.as_secs()),
                Some(d) if *d < Duration::from_secs(1) => format!("{c}={}ms", d.as_millis()),
                Some(d) => format!("{c}={:.1}", d.as_secs_f64()),
                None => c.clone(),
            })
            .collect();
        let spec = items.join(if spaces { ", " } else { "," });
        let config = ShopConfig { max_queue, ..ShopConfig::default().with_menu_spec(&spec).expect("a valid spec") };
        prop_assert_eq!(config.menu.coffees(), &menu[..]);
        for (c, brew) in menu.iter().zip(&brews) {
            prop_assert_eq!(config.brew_time(c, Duration::from_secs(7)), brew.unwrap_or(Duration::from_secs(7)), "{}", c);
        }
        prop_assert_eq!(ShopConfig::decode(&config.encode()), Ok(config.clone()), "{}", String::from_utf8_lossy(&config.encode()));
    }
}

/// `shop-init --menu jacob=1.25` must store the brew time it was given.
#[test]
fn any_brew_time_the_menu_spec_accepts_survives_the_configuration_node() {
    proptest!(config(), |(c in coffee(), micros in 0u64..20_000_000)| {
        let spec = format!("{c}={}", micros as f64 / 1e6);
        let config = ShopConfig::default().with_menu_spec(&spec).expect("a valid spec");
        prop_assert_eq!(ShopConfig::decode(&config.encode()), Ok(config.clone()), "{} stored as {:?}", spec, String::from_utf8_lossy(&config.encode()));
    });
}

/// The cases the property above finds first.
#[test]
fn brew_times_of_1_25_s_and_half_a_millisecond_are_stored_as_given() {
    for spec in ["jacob=1.25", "jacob=2.05", "jacob=0.0005"] {
        let config = ShopConfig::default().with_menu_spec(spec).expect("valid");
        let stored = ShopConfig::decode(&config.encode()).expect("decodes");
        assert_eq!(stored.brew_time("jacob", Duration::ZERO), config.brew_time("jacob", Duration::ZERO), "{spec}");
    }
}

// ---------------------------------------------------------------------------------------------
// Sales ledgers and registrations

proptest! {
    #![proptest_config(config())]
    #[test]
    fn ledgers_round_trip_and_garbage_never_panics(
        counts in prop::collection::btree_map(coffee(), any::<u64>(), 0..8),
        garbage in prop_oneof![prop::collection::vec(any::<u8>(), 0..100), key_value_text().prop_map(String::into_bytes)],
    ) {
        let counts: Counts = counts;
        prop_assert_eq!(sales::decode(&sales::encode(&counts)), Ok(counts));
        if let Err(e) = sales::decode(&garbage) {
            prop_assert!(!e.contains('\n'), "{e:?}");
        }
    }

    #[test]
    fn registrations_round_trip_and_garbage_is_not_one(
        token in "[^\r\n]{0,20}",
        generation in any::<u64>(),
        host in field(),
        pid in any::<u32>(),
        version in field(),
        started in any::<u64>(),
        brew_ms in any::<u64>(),
        boot_id in prop::option::of("[0-9a-f]{32}"),
        pid_ns in prop::option::of(any::<u64>()),
        pid_start in prop::option::of(any::<u64>()),
        garbage in prop_oneof![prop::collection::vec(any::<u8>(), 0..100), key_value_text().prop_map(String::into_bytes)],
    ) {
        let r = Registration { process_token: token, generation, host, pid, version, started, brew_ms, boot_id, pid_ns, pid_start };
        prop_assert_eq!(Registration::decode(&r.encode()), Some(r));
        let _ = Registration::decode(&garbage);
    }
}

// ---------------------------------------------------------------------------------------------
// Flags: connect strings, durations, credentials

proptest! {
    #![proptest_config(config())]
    #[test]
    fn connect_strings_people_write_are_normalised_and_read_back(s in connect_string()) {
        let parsed: ConnectString = s.parse().map_err(|e| TestCaseError::fail(format!("{s:?}: {e}")))?;
        let shown = parsed.to_string();
        prop_assert!(!shown.contains(' '), "{shown:?}");
        let reread: Result<ConnectString, _> = shown.parse();
        prop_assert_eq!(reread, Ok(parsed.clone()), "{:?} shown as {:?}", s, shown);
        // Every server gets a port; the chroot is kept as written.
        let (servers, chroot) = match shown.find('/') {
            Some(i) => (&shown[..i], Some(&shown[i..])),
            None => (&shown[..], None),
        };
        prop_assert_eq!(parsed.chroot(), chroot);
        prop_assert_eq!(s.find('/').map(|i| &s[i..]), chroot);
        for server in servers.split(',') {
            let port = server.rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
            prop_assert!(port.is_some_and(|p| p > 0), "{server:?} in {shown:?}");
        }
        let bare = parsed.without_chroot();
        prop_assert_eq!(bare.chroot(), None);
        prop_assert_eq!(parsed.under("/shops/a").chroot().map(str::to_owned), Some(format!("{}/shops/a", chroot.unwrap_or(""))));
    }

    #[test]
    fn connect_strings_never_panic_and_errors_are_usage_errors(s in prop_oneof![
        "[a-z0-9:,/ \\[\\].]{0,24}",
        any::<String>(),
    ]) {
        match s.parse::<ConnectString>() {
            Ok(c) => { let _ = c.to_string(); }
            Err(e) => {
                prop_assert!(matches!(e, zk_coffee::Error::Usage(_)), "{e:?}");
                prop_assert!(e.to_string().contains("invalid ZooKeeper connect string"), "{e}");
            }
        }
    }

    #[test]
    fn durations_in_seconds_and_milliseconds_parse_exactly(secs in 0u64..=86_400, ms in 0u64..=86_400_000, tenths in 0u64..864_000) {
        prop_assert_eq!(duration::parse(&secs.to_string()), Ok(Duration::from_secs(secs)));
        prop_assert_eq!(duration::parse(&format!(" {secs}s ")), Ok(Duration::from_secs(secs)));
        prop_assert_eq!(duration::parse(&format!("{ms}ms")), Ok(Duration::from_millis(ms)));
        let text = format!("{}.{}", tenths / 10, tenths % 10);
        prop_assert_eq!(duration::parse(&text), Ok(Duration::from_millis(tenths * 100)), "{}", text);
        // What a log line shows reads back, to the tenth of a second it shows.
        let d = Duration::from_millis(ms);
        let shown = duration::human(d);
        let back = duration::parse(&shown).map_err(|e| TestCaseError::fail(format!("{shown:?}: {e}")))?;
        prop_assert!(back.abs_diff(d) <= Duration::from_millis(50), "{:?} shown as {} reads back as {:?}", d, shown, back);
    }

    #[test]
    fn durations_beyond_a_day_or_malformed_are_refused_without_panicking(
        big in 86_401u64..u64::MAX,
        junk in prop_oneof!["[0-9.a-z -]{0,12}", any::<String>()],
    ) {
        prop_assert!(duration::parse(&big.to_string()).is_err());
        let in_ms = format!("{big}000ms");
        prop_assert!(duration::parse(&in_ms).is_err(), "{}", in_ms);
        if let Ok(d) = duration::parse(&junk) {
            prop_assert!(d <= Duration::from_secs(86_400), "{junk:?} gave {d:?}");
            let t = junk.trim();
            let number = t.strip_suffix("ms").or_else(|| t.strip_suffix('s')).unwrap_or(t);
            prop_assert!(!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit() || b == b'.'), "{junk:?} accepted");
        }
    }

    #[test]
    fn credentials_round_trip_and_never_show_the_password(
        user in "[^:\\s]{1,20}",
        password in "[^\\s]([^\n]{0,18}[^\\s])?",
        junk in any::<String>(),
    ) {
        let c = Credentials::parse(&format!("{user}:{password}")).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(c.user(), user.as_str());
        prop_assert_eq!(c.auth(), format!("{user}:{password}").into_bytes());
        let id = c.digest_id();
        let hash = id.strip_prefix(&format!("{user}:")).unwrap_or("");
        prop_assert_eq!(hash.len(), 28, "base64 of a SHA-1: {}", id);
        prop_assert_eq!(Credentials::parse(&format!("  {user}:{password}\n")).map(|c| c.digest_id()), Ok(id));
        prop_assert_eq!(format!("{c:?}"), format!("Credentials({user}:***)"));
        if let Ok(c) = Credentials::parse(&junk) {
            prop_assert!(!c.user().is_empty() && junk.contains(':'));
        }
    }
}

/// `[::1]` is a valid server (port 2181, as for any host without one), and a connect string
/// we print must read back as itself.
#[test]
fn ipv6_connect_strings_read_back_as_themselves() {
    let bracketed: Result<ConnectString, _> = "[::1]".parse();
    assert_eq!(bracketed.map(|c| c.to_string()), Ok("[::1]:2181".to_owned()));
    let c: ConnectString = "::1".parse().expect("accepted today");
    assert_eq!(c.to_string().parse::<ConnectString>(), Ok(c.clone()), "{c} reads back differently");
}
