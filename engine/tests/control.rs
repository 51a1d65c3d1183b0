//! The operator's view of a live run: `aegisctl` over the control socket (queries, pause and
//! resume, close, flatten, refusals that change nothing) and the Prometheus endpoint parsed
//! by the Prometheus project's own parser.

mod common;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running `aegis run` with a control socket and a metrics port; killed on drop.
struct Engine {
    child: Child,
    socket: PathBuf,
    metrics: String,
    _dir: tempfile::TempDir,
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Engine {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("ctl.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_aegis"))
        .args(["run", "--quiet", "--for", "300s", "--metrics-addr", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--control-socket")
        .arg(&socket)
        .stderr(Stdio::piped())
        .spawn()
        .expect("aegis run");
    // The engine announces its metrics address once it serves it (after binding the socket).
    let line = common::wait_for_line(&mut child, "aegis: metrics on http://")
        .expect("aegis exited before serving metrics");
    let metrics =
        line.trim_start_matches("aegis: metrics on http://").trim_end_matches("/metrics").to_string();
    Engine { child, socket, metrics, _dir: dir }
}

fn aegisctl(engine: &Engine, args: &[&str]) -> (i32, String, String) {
    common::aegisctl(&engine.socket, args)
}

fn json_of(engine: &Engine, args: &[&str]) -> Value {
    common::aegisctl_json(&engine.socket, args).unwrap_or_else(|e| panic!("aegisctl {args:?}: {e}"))
}

/// Sends a raw line on the socket; returns the answer line.
fn raw(socket: &Path, bytes: &[u8]) -> Value {
    let mut s = UnixStream::connect(socket).unwrap();
    s.write_all(bytes).unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

#[test]
fn an_operator_queries_pauses_closes_and_flattens_a_live_run() {
    let engine = start();
    let mode = std::fs::metadata(&engine.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the control socket is the owner's only");

    let status = json_of(&engine, &["status"]);
    assert_eq!(status["symbols"], 20);
    assert_eq!(status["paused"], false);
    let symbols = json_of(&engine, &["symbols"]);
    let list = symbols["symbols"].as_array().unwrap();
    assert_eq!(list.len(), 20);
    assert!(list.iter().all(|s| s["shard"] == 0), "one shard in the default config");
    let shards = json_of(&engine, &["shards"]);
    assert_eq!(shards["shards"][0]["symbols"].as_array().unwrap().len(), 20);
    let (code, human, _) = aegisctl(&engine, &["status"]);
    assert_eq!(code, 0);
    assert!(human.contains("equity") && human.lines().all(|l| l.len() < 100), "{human}");

    // Wait for the teacher to hold a position, then pause: no new entries while paused.
    common::eventually("an open position", || {
        json_of(&engine, &["positions"])["positions"].as_array().is_some_and(|p| !p.is_empty())
    });
    assert_eq!(json_of(&engine, &["pause"])["paused"], true);
    assert_eq!(json_of(&engine, &["status"])["paused"], true);
    // `train` asks the sidecar through a request file in the data dir; `model` reports.
    let train = json_of(&engine, &["train"]);
    assert_eq!(train["requested"], true, "{train}");
    assert!(train["request"].as_str().unwrap().ends_with("models/train.request"), "{train}");
    let model = json_of(&engine, &["model"]);
    assert_eq!(model["model_generation"], 0, "{model}");
    assert!(model["history"].is_array(), "{model}");

    // Refusals: each one a clear reason, a non-zero exit, and nothing changed.
    let before = json_of(&engine, &["status"]);
    let (code, _, err) = aegisctl(&engine, &["close", "NOSUCHUSDT"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown symbol \"NOSUCHUSDT\""), "{err}");
    let (code, _, err) = aegisctl(&engine, &["rebalance", "BTCUSDT", "--to", "7"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown shard 7"), "{err}");
    for (bytes, expected) in [
        (&b"{not json\n"[..], "malformed JSON"),
        (b"{\"v\":1,\"cmd\":\"launch\"}\n", "unknown variant `launch`"),
        (b"{\"v\":9,\"cmd\":\"status\"}\n", "unsupported protocol version 9"),
        (b"{\"v\":1,\"cmd\":\"pause\",\"now\":true}\n", "unknown field `now`"),
    ] {
        let answer = raw(&engine.socket, bytes);
        assert_eq!(answer["ok"], false);
        assert!(answer["error"].as_str().unwrap().contains(expected), "{answer}");
    }
    let mut oversize = vec![b' '; 70 * 1024];
    oversize.push(b'\n');
    let answer = raw(&engine.socket, &oversize);
    assert!(answer["error"].as_str().unwrap().contains("longer than 65536 bytes"), "{answer}");
    let after = json_of(&engine, &["status"]);
    assert_eq!(after["paused"], before["paused"]);
    assert_eq!(after["symbols"], before["symbols"]);

    // Close one position by name, then flatten the rest: nothing stays open.
    let positions = json_of(&engine, &["positions"]);
    let first = positions["positions"][0]["symbol"].as_str().unwrap().to_string();
    let closing = json_of(&engine, &["close", &first]);
    assert_eq!(closing["symbol"], first.as_str());
    json_of(&engine, &["flatten"]);
    common::eventually("no open position", || json_of(&engine, &["status"])["open_positions"] == 0);
    assert!(json_of(&engine, &["positions"])["positions"].as_array().unwrap().is_empty());
    assert_eq!(json_of(&engine, &["resume"])["paused"], false);

    // The journal shows the operator's closes.
    let data = engine.socket.parent().unwrap().join("data");
    common::eventually("MANUAL closes in the trades journal", || {
        aegis::store::ledger::read_journal(&data, "trades")
            .unwrap()
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .any(|t| t["reason"] == "MANUAL")
    });

    // Metrics: valid exposition by the Prometheus parser, with the engine's figures.
    let (head, body) = http_get(&engine.metrics, "/metrics");
    assert!(head.starts_with("HTTP/1.1 200") && head.contains("text/plain; version=0.0.4"), "{head}");
    let mut python = Command::new(common::repo().join(".venv/bin/python"))
        .arg(common::repo().join("tests/python/prom_parse.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(".venv/bin/python (scripts/setup.sh creates it)");
    python.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = python.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client refused the exposition: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        samples
            .iter()
            .find(|s| s["name"] == name && labels.iter().all(|(k, v)| s["labels"][k] == *v))
            .and_then(|s| s["value"].as_f64())
            .unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
    };
    let e2e = value("aegis_stage_latency_seconds_count", &[("stage", "wire_to_decision")]);
    let inf = value("aegis_stage_latency_seconds_bucket", &[("stage", "wire_to_decision"), ("le", "+Inf")]);
    assert!(e2e > 100.0 && inf == e2e, "{e2e} {inf}");
    assert!(value("aegis_events_total", &[("shard", "0"), ("kind", "aggTrade")]) > 0.0);
    assert!(value("aegis_equity", &[]) > 0.0);
    assert_eq!(value("aegis_open_positions", &[]), 0.0);
    assert_eq!(value("aegis_model_generation", &[]), 0.0);
    for family in [
        "aegis_ring_depth",
        "aegis_ring_drops",
        "aegis_reconnects",
        "aegis_malformed_messages",
        "aegis_gap_fills",
    ] {
        assert!(samples.iter().any(|s| s["family"] == family), "no family {family}");
    }
    let (head, _) = http_get(&engine.metrics, "/nothing");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");

    // The latency buckets and the dashboard, against the live engine.
    let latency = json_of(&engine, &["latency"]);
    let e2e = latency["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["stage"] == "wire_to_decision")
        .unwrap()
        .clone();
    assert!(
        e2e["count"].as_u64().unwrap() > 100
            && e2e["p50_le_ns"].as_u64().unwrap() <= e2e["p99_le_ns"].as_u64().unwrap(),
        "{e2e}"
    );
    let (code, frame, err) = aegisctl(&engine, &["top", "--once"]);
    assert_eq!(code, 0, "{err}");
    for needle in ["equity", "phase teacher", " shards ", "wire_to_decision", " positions "] {
        assert!(frame.contains(needle), "{needle} missing from the dashboard:\n{frame}");
    }
    assert!(
        frame.lines().count() <= 32 && frame.lines().all(|l| l.chars().count() <= 110),
        "fits its terminal:\n{frame}"
    );

    // Every series the Grafana dashboard queries is one the endpoint serves.
    let dashboard = std::fs::read_to_string(common::repo().join("config/grafana-aegis.json")).unwrap();
    let mut queried: Vec<&str> = dashboard
        .match_indices("aegis_")
        .map(|(at, _)| {
            let rest = &dashboard[at..];
            &rest[..rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len())]
        })
        .filter(|name| *name != "aegis_engine")
        .collect();
    queried.sort_unstable();
    queried.dedup();
    assert!(queried.len() >= 10, "{queried:?}");
    for name in queried {
        assert!(
            samples.iter().any(|s| s["name"] == name),
            "the dashboard queries {name}, which /metrics does not serve"
        );
    }
}

/// Runs a Python client as the unprivileged user `nobody` (uid 65534): connects to `socket`,
/// sends a status request and prints what came back, or the connect error.
fn as_nobody(socket: &Path) -> String {
    use std::os::unix::process::CommandExt;
    let script = "import socket,sys\n\
        s=socket.socket(socket.AF_UNIX)\n\
        try:\n    s.connect(sys.argv[1])\nexcept OSError as e:\n    print('connect:', e.strerror); sys.exit(0)\n\
        s.sendall(b'{\"v\":1,\"cmd\":\"status\"}\\n')\n\
        print(s.makefile().readline().strip())\n";
    let out =
        Command::new("python3").arg("-c").arg(script).arg(socket).uid(65534).gid(65534).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Another user cannot operate the engine: the socket's mode keeps them out, and with the
/// mode opened up the engine itself refuses them (it asks the kernel who connected).
#[test]
fn the_control_socket_refuses_other_users() {
    let engine = start();
    let mode = std::fs::metadata(&engine.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let own: Value = raw(&engine.socket, b"{\"v\":1,\"cmd\":\"status\"}\n");
    assert_eq!(own["ok"], true, "the engine's own user is served: {own}");
    if !Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n")) {
        eprintln!("not root: cannot start a process as another user; only the socket's mode was checked");
        return;
    }
    // Let `nobody` reach the socket's directory.
    let dir = engine.socket.parent().unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).unwrap();
    let refused_by_mode = as_nobody(&engine.socket);
    assert_eq!(refused_by_mode, "connect: Permission denied", "the 0600 socket keeps nobody out");
    std::fs::set_permissions(&engine.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let answer = as_nobody(&engine.socket);
    let answer: Value = serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer:?}"));
    assert_eq!(answer["ok"], false, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("uid 65534 is not the engine's user"), "{answer}");
    // Still serving its own user.
    assert_eq!(raw(&engine.socket, b"{\"v\":1,\"cmd\":\"status\"}\n")["ok"], true);
}
