//! The control socket: bound 0600, peers checked by SO_PEERCRED, one thread per client
//! (at most [`MAX_CLIENTS`]), a request per line and a response per line.

use super::context::ControlContext;
use super::handlers::handle;
use aegis_control::{error_line, ok_line, parse_request, MAX_LINE};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A running control server; dropping it stops the thread and removes the socket file.
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds the socket at `path` (mode 0600; a stale socket file is replaced, a live one is
/// an error) and serves it on a thread.
pub fn serve(path: &Path, ctx: Arc<ControlContext>) -> std::io::Result<ControlServer> {
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("control socket {} is in use by another process", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("aegis-control".into())
            .spawn(move || accept_loop(listener, ctx, stop))?
    };
    Ok(ControlServer { path: path.to_path_buf(), stop, thread: Some(thread) })
}

/// Clients served at once; more are refused (each costs a thread).
pub const MAX_CLIENTS: usize = 16;

fn accept_loop(listener: UnixListener, ctx: Arc<ControlContext>, stop: Arc<AtomicBool>) {
    let own_uid = crate::credentials::own_uid();
    let active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                // The socket file is 0600, but a mode can be changed and is briefly the
                // umask's between bind and chmod: the kernel's word on who connected decides.
                match peer_uid(&stream) {
                    Ok(uid) if uid == own_uid || uid == 0 => {}
                    peer => {
                        let who = peer.map_or_else(|e| format!("unknown ({e})"), |u| format!("uid {u}"));
                        tracing::warn!(peer = %who, "control socket: refused a client that is not the engine's user");
                        let _ = writeln!(
                            stream,
                            "{}",
                            error_line(&format!(
                                "refused: {who} is not the engine's user (uid {own_uid}) or root"
                            ))
                        );
                        continue;
                    }
                }
                if active.load(Ordering::Relaxed) >= MAX_CLIENTS {
                    let _ = writeln!(
                        stream,
                        "{}",
                        error_line(&format!("refused: {MAX_CLIENTS} clients already connected"))
                    );
                    continue;
                }
                active.fetch_add(1, Ordering::Relaxed);
                let (ctx, stop, done) = (ctx.clone(), stop.clone(), active.clone());
                let spawned = std::thread::Builder::new().name("aegis-ctl-conn".into()).spawn(move || {
                    connection(stream, &ctx, &stop);
                    done.fetch_sub(1, Ordering::Relaxed);
                });
                if spawned.is_err() {
                    active.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => {
                tracing::error!(error = %e, "control socket accept failed");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

/// The user id of the process at the other end of `stream` (SO_PEERCRED).
pub fn peer_uid(stream: &UnixStream) -> std::io::Result<u32> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: the fd is a live Unix socket owned by `stream`; `cred` and `len` are valid for
    // writes of `len` bytes, which is exactly the size of `ucred` SO_PEERCRED fills in.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(cred.uid)
}

/// Serves one client: a request per line, a response per line.
fn connection(stream: UnixStream, ctx: &ControlContext, stop: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match (&mut reader).take((MAX_LINE + 1 - line.len()) as u64).read_until(b'\n', &mut line) {
            Ok(0) if line.is_empty() => return,
            Ok(_) if line.last() != Some(&b'\n') && line.len() <= MAX_LINE => continue, // EOF mid-line or more to come
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                continue
            }
            Err(_) => return,
        }
        if line.len() > MAX_LINE {
            let _ = writeln!(writer, "{}", error_line(&format!("request line longer than {MAX_LINE} bytes")));
            return;
        }
        let response = match std::str::from_utf8(&line) {
            Err(_) => error_line("request is not UTF-8"),
            Ok(text) if text.trim().is_empty() => {
                line.clear();
                continue;
            }
            Ok(text) => match parse_request(text.trim()) {
                Err(e) => error_line(&e.to_string()),
                Ok(request) => match handle(ctx, &request) {
                    Ok(result) => ok_line(result),
                    Err(e) => error_line(&e.to_string()),
                },
            },
        };
        line.clear();
        if writeln!(writer, "{response}").is_err() {
            return;
        }
    }
}
