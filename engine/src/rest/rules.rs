//! Trading rules from exchangeInfo: a symbol's filters and leverage brackets, or a named
//! reason it cannot be traded.

use aegis_trading::rules::{Bracket, SymbolRules};
use serde_json::Value;

/// A symbol exchangeInfo lists: its rules (or why they cannot be read), and whether its own
/// leverage brackets came with them (else the conservative fallback).
#[derive(Debug)]
pub struct ServedSymbol {
    /// The symbol's name.
    pub name: String,
    /// Its trading rules.
    pub rules: Result<SymbolRules, SymbolRulesError>,
    /// Its leverage brackets were served.
    pub brackets_served: bool,
    /// Its `status` is `TRADING` (absent counts as trading: older captures lack it); a
    /// symbol in any other state (`SETTLING`, `PENDING_TRADING`, `BREAK`, …) gets no entry.
    pub trading: bool,
}

/// Whether an exchangeInfo entry's `status` lets new positions open.
pub fn is_trading(entry: &Value) -> bool {
    entry["status"].as_str().is_none_or(|s| s == "TRADING")
}

/// Why a symbol's exchangeInfo entry gives no trading rules (the symbol is then not traded).
#[derive(Debug, thiserror::Error)]
pub enum SymbolRulesError {
    /// The entry has no `filters` array.
    #[error("no filters")]
    NoFilters,
    /// A filter the engine needs is not listed.
    #[error("no {0} filter")]
    NoFilter(String),
    /// A filter's field is absent or not a number.
    #[error("{kind}.{key} missing or not a number")]
    BadField {
        /// The filter type.
        kind: String,
        /// The field.
        key: String,
    },
    /// A leverage bracket lacks one of its fields.
    #[error("leverageBrackets entry missing a field")]
    Bracket,
    /// The filters or brackets do not make valid rules.
    #[error(transparent)]
    Invalid(#[from] aegis_trading::rules::RulesError),
}

/// A symbol's trading rules from its exchangeInfo entry: `PRICE_FILTER.tickSize`,
/// `LOT_SIZE.stepSize`/`minQty`, `MIN_NOTIONAL.notional`, and leverage brackets from
/// `leverageBrackets` when the exchange includes them (exchange-sim does; Binance serves
/// them from a signed endpoint) else the conservative fallback
/// ([`SymbolRules::conservative_brackets`]; [`brackets_served`] tells which). A missing or
/// unreadable filter is an error naming it: the engine then refuses to trade the symbol.
pub fn symbol_rules(entry: &Value) -> Result<SymbolRules, SymbolRulesError> {
    let filters = entry["filters"].as_array().ok_or(SymbolRulesError::NoFilters)?;
    let filter = |kind: &str, key: &str| -> Result<f64, SymbolRulesError> {
        let f = filters
            .iter()
            .find(|f| f["filterType"] == kind)
            .ok_or(SymbolRulesError::NoFilter(kind.into()))?;
        let text = f[key].as_str().map(str::to_string).or_else(|| f[key].as_f64().map(|v| v.to_string()));
        text.and_then(|t| t.parse::<f64>().ok())
            .ok_or(SymbolRulesError::BadField { kind: kind.into(), key: key.into() })
    };
    let brackets = match &entry["leverageBrackets"] {
        Value::Null => SymbolRules::conservative_brackets(),
        list => brackets(list).ok_or(SymbolRulesError::Bracket)?,
    };
    SymbolRules::new(
        filter("LOT_SIZE", "stepSize")?,
        filter("LOT_SIZE", "minQty")?,
        filter("PRICE_FILTER", "tickSize")?,
        filter("MIN_NOTIONAL", "notional")?,
        brackets,
    )
    .map_err(SymbolRulesError::from)
}

/// A list of leverage brackets as Binance writes them (`GET /fapi/v1/leverageBracket`'s
/// `brackets`: `notionalCap`, `initialLeverage`, `maintMarginRatio`, `cum`, numbers or
/// decimal strings); `None` when it is not a list or an entry lacks a field.
pub fn brackets(list: &Value) -> Option<Vec<Bracket>> {
    list.as_array()?
        .iter()
        .map(|b| {
            let num = |k: &str| b[k].as_f64().or_else(|| b[k].as_str().and_then(|t| t.parse().ok()));
            Some(Bracket {
                notional_cap: num("notionalCap")?,
                max_leverage: num("initialLeverage")?,
                maint_margin_rate: num("maintMarginRatio")?,
                maint_amount: num("cum")?,
            })
        })
        .collect()
}

/// Whether an exchangeInfo entry carries the symbol's own leverage brackets.
pub fn brackets_served(entry: &Value) -> bool {
    entry["leverageBrackets"].is_array()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_info_filters_become_rules_or_a_named_refusal() {
        let entry: Value = serde_json::from_str(
            r#"{"symbol":"ETHUSDT","filters":[
            {"filterType":"PRICE_FILTER","minPrice":"0.01","maxPrice":"100000","tickSize":"0.01"},
            {"filterType":"LOT_SIZE","minQty":"0.001","maxQty":"10000","stepSize":"0.001"},
            {"filterType":"MIN_NOTIONAL","notional":"20"}]}"#,
        )
        .unwrap();
        let rules = symbol_rules(&entry).unwrap();
        assert_eq!(
            (rules.tick_size, rules.step_size, rules.min_qty, rules.min_notional),
            (0.01, 0.001, 0.001, 20.0)
        );
        assert!(!brackets_served(&entry));
        assert_eq!(
            rules.brackets(),
            SymbolRules::conservative_brackets(),
            "the fallback when none are served"
        );
        // Conservative: a low leverage cap and a high maintenance rate from the first
        // bracket, and maintenance margin continuous at every cap.
        let b = rules.brackets();
        assert!(b[0].max_leverage <= 10.0 && b[0].maint_margin_rate >= 0.05, "{b:?}");
        assert!(b.windows(2).all(|w| w[1].max_leverage < w[0].max_leverage));
        for w in b.windows(2) {
            let at_cap =
                |x: &aegis_trading::rules::Bracket| w[0].notional_cap * x.maint_margin_rate - x.maint_amount;
            assert!((at_cap(&w[0]) - at_cap(&w[1])).abs() < 1e-6, "{w:?}");
        }
        let mut no_lot = entry.clone();
        no_lot["filters"].as_array_mut().unwrap().remove(1);
        assert_eq!(symbol_rules(&no_lot).unwrap_err().to_string(), "no LOT_SIZE filter");
        let mut bad_tick = entry.clone();
        bad_tick["filters"][0]["tickSize"] = Value::from("x");
        assert_eq!(
            symbol_rules(&bad_tick).unwrap_err().to_string(),
            "PRICE_FILTER.tickSize missing or not a number"
        );
        let mut zero = entry;
        zero["filters"][1]["stepSize"] = Value::from("0");
        assert!(symbol_rules(&zero).unwrap_err().to_string().contains("step_size"));
    }
}
