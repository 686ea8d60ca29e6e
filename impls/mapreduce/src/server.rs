//! The coordinator process's runtime: the Unix socket, threads and the clock around
//! the pure [`Coordinator`].

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::core::{Coordinator, WAIT_MS};
use crate::protocol::{serve, Reply, Request};

struct Shared {
    coordinator: Coordinator,
    /// Set once the job's outputs are final; until then workers are told to wait, not
    /// to exit, so that no process of the job exits before its output is complete.
    finished: bool,
    last_request: Instant,
    /// Requests for a task being held in a long poll right now (for tests, which
    /// wait for a worker to be waiting instead of sleeping and hoping it is).
    held: usize,
}

/// A coordinator listening on its socket.
pub struct Server {
    shared: Arc<(Mutex<Shared>, Condvar)>,
    socket: PathBuf,
}

/// How long a request for a task is held while there is none to give: a worker
/// waiting for the last map task gets its reduce task the moment that map is done,
/// instead of at its next poll.
const LONG_POLL: Duration = Duration::from_secs(1);

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
        let shared = Arc::new((
            Mutex::new(Shared {
                coordinator,
                finished: false,
                last_request: Instant::now(),
                held: 0,
            }),
            Condvar::new(),
        ));
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

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.0.lock().expect("poisoned")
    }

    pub fn is_done(&self) -> bool {
        self.lock().coordinator.is_done()
    }

    /// Waits until every task is done or `timeout` passes; true if done, an error if
    /// the job has failed.
    pub fn wait_done_for(&self, timeout: Duration) -> anyhow::Result<bool> {
        let guard = self.lock();
        let (guard, _) = self
            .shared
            .1
            .wait_timeout_while(guard, timeout, |s| {
                !s.coordinator.is_done() && s.coordinator.failure().is_none()
            })
            .expect("poisoned");
        if let Some(why) = guard.coordinator.failure() {
            bail!("the job failed: {why}");
        }
        Ok(guard.coordinator.is_done())
    }

    /// Blocks until every task is done, or fails with the job.
    pub fn wait_done(&self) -> anyhow::Result<()> {
        while !self.wait_done_for(Duration::from_secs(1))? {}
        Ok(())
    }

    /// Tells workers to exit from now on.
    pub fn mark_finished(&self) {
        self.lock().finished = true;
        self.shared.1.notify_all();
    }

    /// Tells workers to exit, waits until none has asked anything for `quiet` (idle
    /// workers ask at least every `LONG_POLL` plus [`WAIT_MS`], and are answered at
    /// once now), at most `limit`, and removes the socket so any busy one finds the
    /// coordinator gone.
    pub fn finish(self, quiet: Duration, limit: Duration) {
        self.mark_finished();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline && self.lock().last_request.elapsed() < quiet {
            sleep(Duration::from_millis(5));
        }
        self.close();
    }

    /// Removes the socket: from now on workers find the coordinator gone.
    pub fn close(self) {
        let _ = fs::remove_file(&self.socket);
    }

    /// Waits until a request for a task is being held in a long poll.
    #[cfg(test)]
    fn await_held(&self) {
        while self.lock().held == 0 {
            sleep(Duration::from_millis(1));
        }
    }
}

fn answer(shared: &(Mutex<Shared>, Condvar), request: Request) -> Reply {
    let (lock, changed) = shared;
    let mut s = lock.lock().expect("poisoned");
    s.last_request = Instant::now();
    let asks = request == Request::GetTask;
    let deadline = Instant::now() + LONG_POLL;
    let mut reply = s.coordinator.handle(request, Instant::now());
    if !asks {
        changed.notify_all();
    }
    // A failed job tells workers to exit at once: there is nothing left to wait for.
    if s.coordinator.failure().is_some() {
        s.finished = true;
    }
    loop {
        if reply == Reply::Exit && !s.finished {
            reply = Reply::Wait { ms: WAIT_MS };
        }
        let now = Instant::now();
        if !asks || !matches!(reply, Reply::Wait { .. }) || now >= deadline {
            return reply;
        }
        // Wake at least every 100 ms so a timed-out task is noticed.
        let wait = (deadline - now).min(Duration::from_millis(100));
        s.held += 1;
        s = changed.wait_timeout(s, wait).expect("poisoned").0;
        s.held -= 1;
        reply = s.coordinator.handle(Request::GetTask, Instant::now());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{call, Kind, MapTask, ReduceTask, Split};

    #[test]
    fn a_waiting_worker_gets_the_reduce_as_soon_as_the_last_map_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("s");
        let map = MapTask {
            id: 0,
            splits: vec![Split {
                path: "in".into(),
                name: "in".into(),
                start: 0,
                end: 0,
            }],
            outputs: vec!["mr-0-0".into()],
        };
        let reduce = ReduceTask {
            id: 0,
            inputs: vec!["mr-0-0".into()],
            output: "mr-out-0".into(),
        };
        let coordinator = Coordinator::new(
            vec![map],
            vec![reduce.clone()],
            Duration::from_secs(10),
            None,
        );
        let server = Server::start(&socket, coordinator).unwrap();
        assert!(matches!(
            call(&socket, &Request::GetTask).unwrap(),
            Reply::Map(_)
        ));
        let waiter = {
            let socket = socket.clone();
            std::thread::spawn(move || call(&socket, &Request::GetTask).unwrap())
        };
        // The waiter is inside its long poll, so it is answered by the report, not
        // by the end of its poll.
        server.await_held();
        let done = Request::Done {
            kind: Kind::Map,
            id: 0,
        };
        assert_eq!(call(&socket, &done).unwrap(), Reply::Ok);
        assert_eq!(waiter.join().unwrap(), Reply::Reduce(reduce));

        // Until the outputs are final a finished job still says "wait", then "exit".
        let done = Request::Done {
            kind: Kind::Reduce,
            id: 0,
        };
        call(&socket, &done).unwrap();
        assert!(server.wait_done_for(Duration::from_secs(1)).unwrap());
        let waiter = {
            let socket = socket.clone();
            std::thread::spawn(move || call(&socket, &Request::GetTask).unwrap())
        };
        server.await_held();
        server.mark_finished();
        assert_eq!(waiter.join().unwrap(), Reply::Exit);
        server.close();
        assert!(
            call(&socket, &Request::GetTask).is_err(),
            "the socket is gone"
        );
    }
}
