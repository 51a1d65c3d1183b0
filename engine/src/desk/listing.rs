//! A traded symbol's listing as an exchangeInfo refresh finds it: whether it trades, and its
//! order filters. Plain `Copy` values from the REST worker to the brain over a ring.

use aegis_trading::rules::Filters;

/// One symbol's listing after a refresh changed it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ListingChange {
    /// Symbol index.
    pub symbol: u16,
    /// `status` is `TRADING`: entries allowed (an open position is managed either way).
    pub trading: bool,
    /// Its order filters now (the next order is sized under them).
    pub filters: Filters,
}
