//! The coordinator process's runtime: the Unix socket, threads and the clock around
//! the pure [`Coordinator`].

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::coordinator::{Coordinator, WAIT_MS};
use crate::protocol::{serve, Reply, Request};

struct Shared {
    coordinator: Coordinator,
    /// Set once the job's outputs are final; until then workers are told to wait, not
    /// to exit, so that no process of the job exits before its output is complete.
    finished: bool,
}

/// A coordinator listening on its socket.
pub struct Server {
    shared: Arc<Mutex<Shared>>,
    socket: PathBuf,
}

impl Server {
    /// Binds `socket` (replacing a stale socket a killed coordinator left) and starts
    /// answering workers.
    pub fn start(socket: &Path, coordinator: Coordinator) -> anyhow::Result<Server> {
        if let Ok(meta) = fs::symlink_metadata(socket) {
            if !meta.file_type().is_socket() {
                bail!("{} exists and is not a socket", socket.display());
            }
            if UnixStream::connect(socket).is_ok() {
                bail!("another coordinator is listening on {}", socket.display());
            }
            fs::remove_file(socket)?;
        }
        let listener = UnixListener::bind(socket)
            .with_context(|| format!("cannot listen on {}", socket.display()))?;
        let shared = Arc::new(Mutex::new(Shared {
            coordinator,
            finished: false,
        }));
        let for_accept = Arc::clone(&shared);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&for_accept);
                // A thread per call: a worker stopped mid-request holds only its own.
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let _ = serve(stream, |request| answer(&shared, request));
                });
            }
        });
        Ok(Server {
            shared,
            socket: socket.to_path_buf(),
        })
    }

    pub fn is_done(&self) -> bool {
        self.shared.lock().expect("poisoned").coordinator.is_done()
    }

    /// Blocks until every task is done.
    pub fn wait_done(&self) {
        while !self.is_done() {
            sleep(Duration::from_millis(10));
        }
    }

    /// Tells workers to exit from now on, gives the idle ones time to hear it, and
    /// removes the socket so the rest find the coordinator gone.
    pub fn finish(self, linger: Duration) {
        self.shared.lock().expect("poisoned").finished = true;
        sleep(linger);
        let _ = fs::remove_file(&self.socket);
    }

    pub fn assignments(&self) -> usize {
        self.shared
            .lock()
            .expect("poisoned")
            .coordinator
            .assignments
    }
}

fn answer(shared: &Mutex<Shared>, request: Request) -> Reply {
    let mut shared = shared.lock().expect("poisoned");
    match shared.coordinator.handle(request, Instant::now()) {
        Reply::Exit if !shared.finished => Reply::Wait { ms: WAIT_MS },
        reply => reply,
    }
}

/// The task re-assignment timeout: `MR_TASK_TIMEOUT_MS`, else 10 s.
pub fn timeout_from_env() -> anyhow::Result<Duration> {
    match std::env::var("MR_TASK_TIMEOUT_MS") {
        Err(_) => Ok(Duration::from_secs(10)),
        Ok(v) => {
            let ms: u64 = v
                .trim()
                .parse()
                .with_context(|| format!("MR_TASK_TIMEOUT_MS={v:?} is not a number of ms"))?;
            if ms == 0 {
                bail!("MR_TASK_TIMEOUT_MS must be at least 1");
            }
            Ok(Duration::from_millis(ms))
        }
    }
}
