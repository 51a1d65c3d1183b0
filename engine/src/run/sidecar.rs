//! The ML sidecar as a child process of the run: started beside the engine (`aegis-sidecar
//! watch`), told the parent pid so it never outlives it, asked to stop at the end.

use crate::config::RunConfig;
use serde_json::{json, Value};

/// Starts the sidecar (`aegis-sidecar watch`) when configured, with a data dir and the
/// binary present; says what happened either way.
pub(crate) fn start_sidecar(config: &RunConfig) -> (Option<std::process::Child>, Value) {
    let (Some(bin), Some(dir)) = (&config.ml.sidecar, &config.data.dir) else {
        return (None, json!({ "started": false, "why": "not configured, or no data dir" }));
    };
    if !bin.exists() {
        tracing::warn!(path = %bin.display(), "aegis-sidecar not found: the teacher trades alone");
        eprintln!(
            "aegis: aegis-sidecar not found at {}: no learned model this run (the teacher trades alone)",
            bin.display()
        );
        return (None, json!({ "started": false, "why": format!("{} not found", bin.display()) }));
    }
    let child = std::process::Command::new(bin)
        .arg("watch")
        .arg("--data-dir")
        .arg(dir)
        .args(["--every", &config.ml.train_every.max(1).to_string()])
        .args(["--threads", &config.ml.torch_threads.max(1).to_string()])
        .args(["--parent", &std::process::id().to_string()])
        .stdin(std::process::Stdio::null())
        .spawn();
    match child {
        Ok(child) => {
            eprintln!(
                "aegis: sidecar started (pid {}): trains every {} closed trades",
                child.id(),
                config.ml.train_every.max(1)
            );
            let pid = child.id();
            (Some(child), json!({ "started": true, "pid": pid, "binary": bin.display().to_string() }))
        }
        Err(e) => {
            tracing::warn!(error = %e, "the sidecar did not start");
            (None, json!({ "started": false, "why": e.to_string() }))
        }
    }
}

/// Asks the sidecar to stop (SIGTERM; it finishes the run under way), then waits for it.
pub(crate) fn stop_sidecar(sidecar: &mut Option<std::process::Child>) {
    let Some(child) = sidecar.as_mut() else { return };
    // SAFETY: `kill` with a pid this process spawned and has not reaped yet.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let _ = child.wait();
}
