//! exchangeInfo kept on disk for restarts (SPEC §3): a read from the exchange writes the
//! cache whole; a restart that cannot reach the exchange trades on the cached rules and
//! says how old they are; without a cache the exchange's error stands.

mod common;

use aegis::rest::client::{InfoSource, RestClient};
use aegis::rest::RestStats;
use std::sync::Arc;

fn client(port: u16) -> RestClient {
    RestClient::for_url(&format!("http://127.0.0.1:{port}"), None, Arc::new(RestStats::default())).unwrap()
}

/// A port nothing listens on (bound, then released).
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn a_restart_without_the_exchange_trades_on_the_cached_exchange_info() {
    let port = common::start_sim(&["--synthetic", "--symbols", "3", "--seed", "4"]);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("exchange_info.json");

    let (live, source) = client(port).exchange_info_cached(Some(&cache)).unwrap();
    assert_eq!(source, InfoSource::Exchange);
    let written: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cache).unwrap()).unwrap();
    assert_eq!(written["symbols"].as_array().unwrap().len(), live.len(), "the whole answer is kept");
    assert!(!dir.path().join("exchange_info.json.tmp").exists(), "written whole, then renamed");

    let down = dead_port();
    let (cached, source) = client(down).exchange_info_cached(Some(&cache)).unwrap();
    assert!(matches!(source, InfoSource::Cache { age_s } if age_s < 600), "{source:?}");
    let names = |s: &[aegis::rest::rules::ServedSymbol]| s.iter().map(|x| x.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&cached), names(&live));
    for (a, b) in cached.iter().zip(&live) {
        assert_eq!(a.rules.as_ref().ok(), b.rules.as_ref().ok(), "{}: the same rules", a.name);
    }

    let err = client(down).exchange_info_cached(None).unwrap_err().to_string();
    assert!(
        err.contains("/fapi/v1/exchangeInfo"),
        "no cache: the exchange's error, naming the endpoint: {err}"
    );
    std::fs::write(&cache, "{\"symbols\": [").unwrap();
    let err = client(down).exchange_info_cached(Some(&cache)).unwrap_err().to_string();
    assert!(err.contains("exchange_info.json"), "a corrupt cache is named, never traded on: {err}");
}
