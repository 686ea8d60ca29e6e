//! A child process that cannot outlive its test.

use std::io;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// A spawned child that is killed with SIGKILL and reaped when dropped, so a test that
/// panics half-way never leaves a server running or a zombie behind.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Option<Child>,
}

impl Process {
    /// Spawns `command`; `name` is used in messages only.
    pub fn spawn(name: impl Into<String>, command: &mut Command) -> io::Result<Process> {
        let name = name.into();
        let child = command
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start {name}: {e}")))?;
        Ok(Process {
            name,
            child: Some(child),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child().id()
    }

    pub fn child(&self) -> &Child {
        self.child.as_ref().expect("process already reaped")
    }

    pub fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("process already reaped")
    }

    /// Sends a signal (SIGSTOP, SIGCONT, SIGTERM...) to the process.
    pub fn signal(&self, signal: libc::c_int) -> io::Result<()> {
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our child's
        // and is not reaped yet (we hold the Child), so it cannot have been reused.
        let rc = unsafe { libc::kill(self.pid() as libc::pid_t, signal) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Resident memory of the process in bytes, from /proc.
    pub fn rss_bytes(&self) -> io::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .ok_or_else(|| io::Error::other("no VmRSS in /proc status"))
    }

    /// Returns the exit status if the process has exited, without blocking.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child_mut().try_wait()
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills the process with SIGKILL (a crash, as far as it can tell) and reaps it.
    pub fn kill(&mut self) -> io::Result<ExitStatus> {
        let child = self.child_mut();
        // An already-exited child makes kill fail with InvalidInput; wait still reaps it.
        let _ = child.kill();
        child.wait()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_kills_and_reaps_the_child() {
        let process = Process::spawn("sleeper", Command::new("sleep").arg("30")).unwrap();
        let pid = process.pid() as libc::pid_t;
        drop(process);
        // SAFETY: signal 0 only checks existence; ESRCH proves the pid is gone,
        // which also means it was reaped (a zombie would still answer).
        let rc = unsafe { libc::kill(pid, 0) };
        assert_eq!(rc, -1, "child {pid} still exists after drop");
    }

    #[test]
    fn wait_timeout_reports_a_process_that_keeps_running() {
        let mut process = Process::spawn("sleeper", Command::new("sleep").arg("30")).unwrap();
        assert!(process
            .wait_timeout(Duration::from_millis(50))
            .unwrap()
            .is_none());
        let status = process.kill().unwrap();
        assert!(!status.success());
    }
}
