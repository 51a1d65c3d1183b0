//! Restart reconciliation: the positions the journal says are open against the positions
//! and orders the exchange reports, each difference named so it can be resolved and
//! reported.

use super::client::{ExchangePosition, TradeClient, TradeError};
use super::order::{AlgoState, ClientIds, Fixed8, OrderKind, OrderRequest, OrderState, Side};

/// A position the journal holds (symbol, signed quantity).
#[derive(Clone, Debug, PartialEq)]
pub struct JournalPosition {
    /// Symbol.
    pub symbol: String,
    /// Signed quantity: positive long, negative short.
    pub amount: f64,
}

/// One difference between the journal and the exchange.
#[derive(Clone, Debug, PartialEq)]
pub enum Difference {
    /// The journal has it open; the exchange has nothing (closed while we were down, e.g.
    /// by its stop): close it in the journal at the exchange's terms.
    ClosedAtExchange {
        /// Symbol.
        symbol: String,
        /// What the journal held.
        journal: f64,
    },
    /// The exchange holds a position the journal does not know (opened by hand, or the
    /// journal lost its record): adopt it or flatten it, and alert.
    UnknownAtExchange {
        /// Symbol.
        symbol: String,
        /// What the exchange holds (signed, exactly: a close is made of it).
        exchange: Fixed8,
    },
    /// Both hold one, of different sizes or sides: the exchange's is the truth.
    SizeMismatch {
        /// Symbol.
        symbol: String,
        /// The journal's.
        journal: f64,
        /// The exchange's.
        exchange: f64,
    },
    /// An order still open at the exchange that no open position accounts for (a stop or
    /// take-profit leg left behind): cancel it.
    StrayOrder {
        /// Symbol.
        symbol: String,
        /// Its client id.
        client_id: String,
    },
    /// The same for a conditional (Algo Service) order: cancel it.
    StrayAlgoOrder {
        /// Symbol.
        symbol: String,
        /// Its client algo id.
        client_algo_id: String,
    },
}

/// What reconciliation found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reconciliation {
    /// Positions on which both sides agree.
    pub matched: Vec<String>,
    /// Everything else.
    pub differences: Vec<Difference>,
}

/// Compares the journal's open positions with the exchange's positions, open orders and
/// waiting conditional orders; quantities within `tolerance` agree.
pub fn reconcile(
    journal: &[JournalPosition],
    exchange: &[ExchangePosition],
    open_orders: &[OrderState],
    open_algos: &[AlgoState],
    tolerance: f64,
) -> Reconciliation {
    let mut out = Reconciliation::default();
    for j in journal {
        match exchange.iter().find(|e| e.symbol == j.symbol) {
            None => out
                .differences
                .push(Difference::ClosedAtExchange { symbol: j.symbol.clone(), journal: j.amount }),
            Some(e) if (e.amount.to_f64() - j.amount).abs() <= tolerance => {
                out.matched.push(j.symbol.clone())
            }
            Some(e) => out.differences.push(Difference::SizeMismatch {
                symbol: j.symbol.clone(),
                journal: j.amount,
                exchange: e.amount.to_f64(),
            }),
        }
    }
    for e in exchange.iter().filter(|e| !journal.iter().any(|j| j.symbol == e.symbol)) {
        out.differences.push(Difference::UnknownAtExchange { symbol: e.symbol.clone(), exchange: e.amount });
    }
    for o in open_orders.iter().filter(|o| !exchange.iter().any(|e| e.symbol == o.symbol)) {
        out.differences
            .push(Difference::StrayOrder { symbol: o.symbol.clone(), client_id: o.client_id.clone() });
    }
    for a in open_algos.iter().filter(|a| !exchange.iter().any(|e| e.symbol == a.symbol)) {
        out.differences.push(Difference::StrayAlgoOrder {
            symbol: a.symbol.clone(),
            client_algo_id: a.client_algo_id.clone(),
        });
    }
    out
}

/// What to do with a position the exchange holds that the journal does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownPosition {
    /// Close it (reduce-only market order): the engine trades only what it decided.
    Flatten,
    /// Keep it: the journal adopts it as the exchange reports it.
    Adopt,
}

/// What resolving the differences did, for the journal and the operator.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resolution {
    /// Stray orders cancelled (client ids).
    pub cancelled: Vec<String>,
    /// Closing orders for unknown positions.
    pub flattened: Vec<OrderState>,
    /// Unknown positions kept: the journal must adopt them.
    pub adopted: Vec<(String, f64)>,
    /// Symbols whose journal position the exchange closed: the journal must close them.
    pub closed_in_journal: Vec<String>,
    /// Journal positions to resize to the exchange's amount, exactly (the exchange is the
    /// truth).
    pub resized_in_journal: Vec<(String, Fixed8)>,
}

/// Acts on `report` at the exchange: cancels stray orders and flattens (or adopts) unknown
/// positions; says what the journal must change. Stops at the first failed request.
pub fn resolve(
    client: &mut TradeClient,
    report: &Reconciliation,
    unknown: UnknownPosition,
    ids: &mut ClientIds,
) -> Result<Resolution, TradeError> {
    let mut out = Resolution::default();
    for difference in &report.differences {
        match difference {
            Difference::StrayOrder { symbol, client_id } => {
                client.cancel(symbol, client_id)?;
                out.cancelled.push(client_id.clone());
            }
            Difference::StrayAlgoOrder { client_algo_id, .. } => {
                client.cancel_algo(client_algo_id)?;
                out.cancelled.push(client_algo_id.clone());
            }
            Difference::UnknownAtExchange { symbol, exchange } => match unknown {
                UnknownPosition::Adopt => out.adopted.push((symbol.clone(), exchange.to_f64())),
                UnknownPosition::Flatten => {
                    let close = OrderRequest {
                        symbol: symbol.clone(),
                        side: if exchange.is_negative() { Side::Buy } else { Side::Sell },
                        kind: OrderKind::Market,
                        quantity: exchange.abs(),
                        client_id: ids.next_id(),
                    };
                    out.flattened.push(client.place_reduce_only(&close)?);
                }
            },
            Difference::ClosedAtExchange { symbol, .. } => out.closed_in_journal.push(symbol.clone()),
            Difference::SizeMismatch { symbol, exchange, .. } => {
                out.resized_in_journal.push((symbol.clone(), Fixed8::nearest(*exchange).unwrap_or_default()))
            }
        }
    }
    Ok(out)
}

/// One line per difference, for the log and the alerts journal.
pub fn describe(report: &Reconciliation) -> Vec<String> {
    report
        .differences
        .iter()
        .map(|d| match d {
            Difference::ClosedAtExchange { symbol, journal } => {
                format!("{symbol}: the journal holds {journal}, the exchange nothing (closed while down)")
            }
            Difference::UnknownAtExchange { symbol, exchange } => {
                format!("{symbol}: the exchange holds {exchange}, unknown to the journal")
            }
            Difference::SizeMismatch { symbol, journal, exchange } => {
                format!("{symbol}: the journal holds {journal}, the exchange {exchange}")
            }
            Difference::StrayOrder { symbol, client_id } => {
                format!("{symbol}: order {client_id} open at the exchange with no position behind it")
            }
            Difference::StrayAlgoOrder { symbol, client_algo_id } => format!(
                "{symbol}: conditional order {client_algo_id} waiting at the exchange with no position behind it"
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::live::order::OrderStatus;

    fn ex(symbol: &str, amount: &str) -> ExchangePosition {
        let amount = Fixed8::parse_signed(amount).unwrap();
        ExchangePosition { symbol: symbol.into(), amount, entry_price: 100.0, leverage: 5 }
    }

    fn jr(symbol: &str, amount: f64) -> JournalPosition {
        JournalPosition { symbol: symbol.into(), amount }
    }

    #[test]
    fn every_kind_of_difference_is_named() {
        let stray = OrderState {
            order_id: 9,
            client_id: "aegis-x-9".into(),
            symbol: "SOLUSDT".into(),
            status: OrderStatus::New,
            orig_qty: Fixed8::parse("1").unwrap(),
            executed_qty: Fixed8::ZERO,
            avg_price: 0.0,
        };
        let kept = OrderState { symbol: "BTCUSDT".into(), client_id: "aegis-x-1".into(), ..stray.clone() };
        let leg = AlgoState {
            algo_id: 5,
            client_algo_id: "aegis.3.s".into(),
            symbol: "ADAUSDT".into(),
            status: crate::execution::live::order::AlgoStatus::New,
            quantity: Fixed8::parse("1").unwrap(),
            order_id: None,
            executed_qty: Fixed8::ZERO,
            avg_price: 0.0,
            reason: String::new(),
        };
        let kept_leg = AlgoState { symbol: "BTCUSDT".into(), ..leg.clone() };
        let r = reconcile(
            &[jr("BTCUSDT", 0.01), jr("ETHUSDT", -0.5), jr("BNBUSDT", 2.0)],
            &[ex("BTCUSDT", "0.01"), ex("BNBUSDT", "1"), ex("XRPUSDT", "100")],
            &[stray, kept],
            &[leg, kept_leg],
            1e-9,
        );
        assert_eq!(r.matched, vec!["BTCUSDT".to_string()]);
        assert_eq!(
            r.differences,
            vec![
                Difference::ClosedAtExchange { symbol: "ETHUSDT".into(), journal: -0.5 },
                Difference::SizeMismatch { symbol: "BNBUSDT".into(), journal: 2.0, exchange: 1.0 },
                Difference::UnknownAtExchange {
                    symbol: "XRPUSDT".into(),
                    exchange: Fixed8::parse("100").unwrap()
                },
                Difference::StrayOrder { symbol: "SOLUSDT".into(), client_id: "aegis-x-9".into() },
                Difference::StrayAlgoOrder { symbol: "ADAUSDT".into(), client_algo_id: "aegis.3.s".into() },
            ]
        );
        assert_eq!(reconcile(&[], &[], &[], &[], 1e-9), Reconciliation::default());
        let lines = describe(&r);
        assert_eq!(lines.len(), 5);
        assert!(lines[3].contains("aegis-x-9") && lines[0].contains("ETHUSDT"), "{lines:?}");
    }
}
