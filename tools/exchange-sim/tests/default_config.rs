//! The embedded default configuration is valid and describes streams exchange-sim serves.

mod common;

use aegis_wire::stream::{channel_kind, tier_of, Tier, MAX_STREAMS_PER_CONNECTION};
use common::*;
use std::collections::{HashMap, HashSet};

fn config() -> toml::Table {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/default.toml");
    std::fs::read_to_string(&path).unwrap().parse().unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn limits_in_the_default_config_are_possible() {
    let cfg = config();
    let ring = cfg["ring"]["capacity"].as_integer().unwrap();
    assert!(ring > 0 && (ring as u64).is_power_of_two(), "ring capacity {ring}");
    let per_conn = cfg["exchange"]["max_streams_per_connection"].as_integer().unwrap() as usize;
    assert!(per_conn <= MAX_STREAMS_PER_CONNECTION);
    let shards = &cfg["shards"];
    let cores: Vec<i64> =
        shards["cores"].as_array().unwrap().iter().map(|c| c.as_integer().unwrap()).collect();
    assert_eq!(cores.len() as i64, shards["count"].as_integer().unwrap());
    assert_eq!(cores.iter().collect::<HashSet<_>>().len(), cores.len(), "shard cores distinct");
    let sim = &cfg["sim"];
    assert!((1..=1000).contains(&sim["symbols"].as_integer().unwrap()));
    exchange_sim::cli::parse_speed(sim["speed"].as_str().unwrap()).unwrap();
    for key in ["reconnect_initial", "reconnect_max", "rotate_before_lifetime_end"] {
        exchange_sim::cli::parse_duration(cfg["exchange"][key].as_str().unwrap()).unwrap();
    }
}

#[test]
fn default_streams_are_served_on_their_tiers_within_the_limits() {
    let cfg = config();
    let kinds: Vec<&str> =
        cfg["streams"]["kinds"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
    let symbols = cfg["sim"]["symbols"].as_integer().unwrap();
    let sim = Sim::spawn(&[
        "--synthetic",
        "--symbols",
        &symbols.to_string(),
        "--seed",
        &cfg["sim"]["seed"].as_integer().unwrap().to_string(),
        "--speed",
        "max",
        "--for",
        "60s",
    ]);
    let mut per_tier: HashMap<&str, Vec<String>> = HashMap::new();
    for kind in &kinds {
        let event = channel_kind(kind).unwrap_or_else(|| panic!("{kind} is not a Binance stream"));
        let tier = match tier_of(event) {
            Tier::Public => "/public",
            _ => "/market",
        };
        per_tier.entry(tier).or_default().push(format!("btcusdt@{kind}"));
    }
    for (tier, names) in per_tier {
        assert!(
            names.len() * symbols as usize <= MAX_STREAMS_PER_CONNECTION,
            "{tier} needs more than one connection"
        );
        let mut ws = connect(&format!("{}{tier}/stream?streams={}", sim.ws, names.join("/")));
        let mut seen = HashSet::new();
        while seen.len() < names.len() {
            let v: serde_json::Value = serde_json::from_str(&next_text(&mut ws)).unwrap();
            seen.insert(v["stream"].as_str().unwrap().to_string());
        }
    }
}

#[test]
fn the_live_binance_example_routes_streams_to_their_tiers() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/live-binance.toml");
    let cfg: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    let exchange = &cfg["exchange"];
    assert!(exchange["public_ws"].as_str().unwrap().ends_with("/public"));
    assert!(exchange["market_ws"].as_str().unwrap().ends_with("/market"));
    assert!(exchange["rest"].as_str().unwrap().starts_with("https://"));
    let kinds = cfg["streams"]["kinds"].as_array().unwrap();
    let symbols = cfg["symbols"]["list"].as_array().unwrap();
    for kind in kinds {
        assert!(channel_kind(kind.as_str().unwrap()).is_some(), "{kind}");
    }
    assert!(kinds.len() * symbols.len() <= MAX_STREAMS_PER_CONNECTION);
    let limit = cfg["streams"]["depth_snapshot_limit"].as_integer().unwrap();
    assert!([5, 10, 20, 50, 100, 500, 1000].contains(&limit));
    assert!(cfg["ring"]["capacity"].as_integer().map(|c| (c as u64).is_power_of_two()).unwrap());
}
