//! Counters for the run summary: messages per kind and symbol, faults, connections, REST.
//!
//! Connections count locally and merge into [`Stats`] in batches and when they end, so the
//! shared lock is taken rarely.

use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Per-connection (or feed) counts waiting to be merged.
#[derive(Default, Debug)]
pub struct LocalCounts {
    /// Messages sent by event kind.
    pub by_kind: BTreeMap<&'static str, u64>,
    /// Messages sent by symbol.
    pub by_symbol: BTreeMap<String, u64>,
    /// Faults by name.
    pub faults: BTreeMap<&'static str, u64>,
    /// Total messages since the last merge.
    pub total: u64,
}

impl LocalCounts {
    /// Counts one message of `kind` for `symbol`.
    pub fn message(&mut self, kind: &'static str, symbol: &str) {
        self.total += 1;
        *self.by_kind.entry(kind).or_default() += 1;
        match self.by_symbol.get_mut(symbol) {
            Some(n) => *n += 1,
            None => {
                self.by_symbol.insert(symbol.to_string(), 1);
            }
        }
    }

    /// Counts one injected fault.
    pub fn fault(&mut self, name: &'static str) {
        *self.faults.entry(name).or_default() += 1;
    }
}

/// Everything the summary reports.
#[derive(Default, Debug)]
pub struct Stats {
    events_by_kind: BTreeMap<&'static str, u64>,
    sent_by_kind: BTreeMap<&'static str, u64>,
    sent_by_symbol: BTreeMap<String, u64>,
    sent_total: u64,
    faults: BTreeMap<&'static str, u64>,
    connections_opened: u64,
    connections_closed: u64,
    close_reasons: BTreeMap<String, u64>,
    rest_by_endpoint: BTreeMap<String, u64>,
    rest_rejected: BTreeMap<u16, u64>,
    subscribe_requests: u64,
    bad_requests: u64,
}

impl Stats {
    /// Merges a connection's sent-message and fault counts, emptying them.
    pub fn merge_sent(&mut self, local: &mut LocalCounts) {
        for (k, n) in std::mem::take(&mut local.by_kind) {
            *self.sent_by_kind.entry(k).or_default() += n;
        }
        for (s, n) in std::mem::take(&mut local.by_symbol) {
            *self.sent_by_symbol.entry(s).or_default() += n;
        }
        self.merge_faults(local);
        self.sent_total += std::mem::take(&mut local.total);
    }

    /// Merges the feed's generated-event and fault counts, emptying them.
    pub fn merge_generated(&mut self, local: &mut LocalCounts) {
        for (k, n) in std::mem::take(&mut local.by_kind) {
            *self.events_by_kind.entry(k).or_default() += n;
        }
        local.by_symbol.clear();
        local.total = 0;
        self.merge_faults(local);
    }

    fn merge_faults(&mut self, local: &mut LocalCounts) {
        for (f, n) in std::mem::take(&mut local.faults) {
            *self.faults.entry(f).or_default() += n;
        }
    }

    /// A connection opened.
    pub fn connection_opened(&mut self) {
        self.connections_opened += 1;
    }

    /// A connection ended, with why.
    pub fn connection_closed(&mut self, reason: &str) {
        self.connections_closed += 1;
        *self.close_reasons.entry(reason.to_string()).or_default() += 1;
    }

    /// A REST request to `endpoint` was answered with `status`.
    pub fn rest(&mut self, endpoint: &str, status: u16) {
        *self.rest_by_endpoint.entry(endpoint.to_string()).or_default() += 1;
        if status != 200 {
            *self.rest_rejected.entry(status).or_default() += 1;
        }
    }

    /// A SUBSCRIBE/UNSUBSCRIBE/LIST request was handled (`ok`) or refused.
    pub fn control_request(&mut self, ok: bool) {
        if ok {
            self.subscribe_requests += 1;
        } else {
            self.bad_requests += 1;
        }
    }

    /// Total messages sent so far.
    pub fn sent_total(&self) -> u64 {
        self.sent_total
    }

    /// Connections currently open.
    pub fn open_connections(&self) -> u64 {
        self.connections_opened - self.connections_closed
    }

    /// The summary as JSON.
    pub fn to_json(&self, source: &str, sim_time_ms: i64, wall_secs: f64) -> Value {
        json!({
            "source": source,
            "wall_seconds": wall_secs,
            "sim_time_ms": sim_time_ms,
            "events_generated": self.events_by_kind.values().sum::<u64>(),
            "events_by_kind": self.events_by_kind,
            "messages_sent": self.sent_total,
            "messages_sent_by_kind": self.sent_by_kind,
            "messages_sent_by_symbol": self.sent_by_symbol,
            "faults": self.faults,
            "connections": {
                "opened": self.connections_opened,
                "closed": self.connections_closed,
                "close_reasons": self.close_reasons,
            },
            "control_requests": { "handled": self.subscribe_requests, "refused": self.bad_requests },
            "rest": {
                "requests_by_endpoint": self.rest_by_endpoint,
                "rejected_by_status": self.rest_rejected.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
            },
        })
    }
}
