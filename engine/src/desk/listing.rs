//! A traded symbol's listing as an exchangeInfo refresh finds it: whether it trades, its
//! order filters and its leverage brackets. Plain `Copy` values from the REST worker to the
//! brain over a ring.

use aegis_trading::rules::{Bracket, Filters, MAX_BRACKETS};

/// Up to [`MAX_BRACKETS`] leverage brackets in a fixed array (a ring slot holds no `Vec`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Brackets {
    list: [Bracket; MAX_BRACKETS],
    len: u8,
}

impl Brackets {
    /// `brackets` as a fixed list; `None` for more than [`MAX_BRACKETS`].
    pub fn from_slice(brackets: &[Bracket]) -> Option<Self> {
        let none =
            Bracket { notional_cap: 0.0, max_leverage: 0.0, maint_margin_rate: 0.0, maint_amount: 0.0 };
        let mut list = [none; MAX_BRACKETS];
        list.get_mut(..brackets.len())?.copy_from_slice(brackets);
        Some(Self { list, len: brackets.len() as u8 })
    }

    /// The brackets.
    pub fn as_slice(&self) -> &[Bracket] {
        &self.list[..usize::from(self.len)]
    }
}

/// One symbol's listing after a refresh changed it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ListingChange {
    /// Symbol index.
    pub symbol: u16,
    /// `status` is `TRADING`: entries allowed (an open position is managed either way).
    pub trading: bool,
    /// Its order filters now (the next order is sized under them).
    pub filters: Filters,
    /// Its leverage brackets now (the next order's leverage cap, every position's margin).
    pub brackets: Brackets,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_fit_a_fixed_list_or_are_refused() {
        let b = |cap: f64| Bracket {
            notional_cap: cap,
            max_leverage: 10.0,
            maint_margin_rate: 0.01,
            maint_amount: 0.0,
        };
        let two = [b(1.0), b(2.0)];
        assert_eq!(Brackets::from_slice(&two).unwrap().as_slice(), &two);
        assert!(Brackets::from_slice(&[b(1.0); MAX_BRACKETS + 1]).is_none());
    }
}
