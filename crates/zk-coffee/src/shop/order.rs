//! What an order's data may hold, and how a barista turns down one it cannot make.
//!
//! A well-formed order's data is the name of a coffee on the shop's menu, in UTF-8. Anything
//! else (written by a foreign or broken client) is **rejected**: the barista overwrites the
//! order's data with `rejected: <reason>` instead of brewing it. The order stays where it is,
//! so the wire contract holds (a bucket still holds orders only), and the change fires the
//! customer's watch: our customer reads the reason, withdraws the order and reports
//! `rejected` (exit 10). A rejected order nobody withdraws is deleted by the barista after
//! [`REJECTION_GRACE`].
//!
//! In a secured shop a customer cannot delete an order (the bucket's ACL gives customers no
//! delete, or any customer could cancel any other's): it **withdraws** its order by
//! overwriting the data with `withdrawn: <coffee>` ([`withdrawal`]), which only the identity
//! that placed it may do (see [`crate::security`]); our baristas delete such an order without
//! making or counting it. The mark is understood by our roles only: the original program
//! cannot take part in a secured shop anyway (it has no credentials), and to a client that
//! knows only the wire contract the data is plainly no coffee on the menu.

use std::time::Duration;

use crate::menu::Menu;

/// How an order's data starts once a barista has rejected it.
pub const REJECTED_PREFIX: &str = "rejected: ";
/// How an order's data starts once its customer has withdrawn it (a secured shop).
pub const WITHDRAWN_PREFIX: &str = "withdrawn: ";
/// The longest order data a barista reads as a coffee name; longer is rejected unread.
pub const MAX_ORDER_BYTES: usize = 256;
/// How long a rejected order waits for its customer to withdraw it before the barista
/// deletes it.
pub const REJECTION_GRACE: Duration = Duration::from_secs(30);

/// What an order's data says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// A coffee on the menu: make it.
    Coffee(String),
    /// Something a barista must not make; the reason, in one line.
    Invalid(String),
    /// A barista already rejected it for this reason.
    Rejected(String),
    /// Its customer withdrew it (this coffee, as the mark says): remove it unmade.
    Withdrawn(String),
}

impl Payload {
    /// Reads an order's data against the shop's menu.
    pub fn parse(data: &[u8], menu: &Menu) -> Payload {
        // A rejection or a withdrawal first: either may be longer than an order may be.
        if let Some(reason) = data.strip_prefix(REJECTED_PREFIX.as_bytes()) {
            return Payload::Rejected(String::from_utf8_lossy(reason).into_owned());
        }
        if let Some(coffee) = data.strip_prefix(WITHDRAWN_PREFIX.as_bytes()) {
            return Payload::Withdrawn(String::from_utf8_lossy(coffee).into_owned());
        }
        if data.len() > MAX_ORDER_BYTES {
            return Payload::Invalid(format!("the order is {} bytes long, more than {MAX_ORDER_BYTES}", data.len()));
        }
        let Ok(text) = std::str::from_utf8(data) else {
            return Payload::Invalid("the order is not UTF-8 text".into());
        };
        if menu.contains(text) {
            Payload::Coffee(text.to_owned())
        } else {
            Payload::Invalid(format!("{:?} is not on the menu ({})", shortened(text), menu.coffees().join(", ")))
        }
    }
}

/// At most the first 40 characters of `text`, to quote it in a reason.
fn shortened(text: &str) -> String {
    const QUOTED: usize = 40;
    match text.char_indices().nth(QUOTED) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

/// The data a barista writes into an order it rejects.
pub fn rejection(reason: &str) -> Vec<u8> {
    let one_line: String = reason.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    format!("{REJECTED_PREFIX}{one_line}").into_bytes()
}

/// The data a customer writes into the order it withdraws (a secured shop), naming what was
/// ordered (or what the order held, once rejected).
pub fn withdrawal(coffee: &str) -> Vec<u8> {
    format!("{WITHDRAWN_PREFIX}{coffee}").into_bytes()
}

/// Whether an order's data holds a customer's withdrawal.
pub fn is_withdrawn(data: &[u8]) -> bool {
    data.starts_with(WITHDRAWN_PREFIX.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn withdrawals_are_read_before_anything_else() {
        let menu = Menu::default();
        assert_eq!(Payload::parse(&withdrawal("jacob"), &menu), Payload::Withdrawn("jacob".into()));
        let long = withdrawal(&"x".repeat(MAX_ORDER_BYTES));
        assert!(matches!(Payload::parse(&long, &menu), Payload::Withdrawn(_)));
        assert!(is_withdrawn(&withdrawal("tesora")) && !is_withdrawn(b"tesora") && !is_withdrawn(&rejection("x")));
    }

    #[test]
    fn coffees_on_the_menu_are_made() {
        assert_eq!(Payload::parse(b"jacob", &Menu::default()), Payload::Coffee("jacob".into()));
    }

    #[test]
    fn garbage_is_invalid_with_a_reason() {
        let menu = Menu::default();
        let big = vec![b'a'; MAX_ORDER_BYTES + 1];
        for (data, needle) in
            [(&b"\xff\xfe"[..], "UTF-8"), (b"latte", "not on the menu"), (b"", "not on the menu"), (&big[..], "bytes long")]
        {
            match Payload::parse(data, &menu) {
                Payload::Invalid(reason) => assert!(reason.contains(needle), "{reason}"),
                other => panic!("{data:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn a_long_order_off_the_menu_keeps_its_reason() {
        let menu = Menu::default();
        let Payload::Invalid(reason) = Payload::parse("x".repeat(250).as_bytes(), &menu) else { panic!("not invalid") };
        assert!(reason.contains("is not on the menu") && reason.contains("..."), "{reason}");
        assert_eq!(Payload::parse(&rejection(&reason), &menu), Payload::Rejected(reason));
    }

    #[test]
    fn rejections_round_trip_on_one_line() {
        let data = rejection("\"x\" is\nnot on the menu");
        assert_eq!(Payload::parse(&data, &Menu::default()), Payload::Rejected("\"x\" is not on the menu".into()));
    }
}
