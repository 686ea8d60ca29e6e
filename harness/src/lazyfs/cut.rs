//! A power cut at a chosen sync point.
//!
//! A crash at a random moment almost never lands between two writes that must go
//! together (a snapshot and the log it truncates, say): the window is microseconds
//! wide. Counting syncs instead of time makes every such window as likely as any
//! other: the power goes in the middle of the n-th `fsync`, `fdatasync` or directory
//! fsync after the cut is armed. That sync never returns (the program waits in it,
//! so it cannot answer anyone as if the sync had happened) and makes nothing
//! durable; what earlier syncs made durable stays. The harness then kills the
//! program, lets the held sync go with an error (a process killed inside a FUSE
//! request stays in the kernel until the request is answered) and fails the power.

use fuser::ReplyEmpty;

/// The cut's state, shared by the FUSE thread and the harness.
#[derive(Default)]
pub(super) struct PowerCut {
    /// Syncs left before the one that never returns (1: the next one).
    countdown: Option<u64>,
    /// The sync the cut struck, and any sync that came after it: replies kept
    /// unsent, so their callers wait until [`PowerCut::release`].
    held: Vec<ReplyEmpty>,
    struck: bool,
}

impl PowerCut {
    /// Arms the cut at the `n`-th sync from now (n >= 1).
    pub(super) fn arm(&mut self, n: u64) {
        assert!(n >= 1, "a power cut needs a sync to strike in (n >= 1)");
        self.release();
        self.countdown = Some(n);
    }

    /// A sync arrives: its reply comes back if it may go ahead, or is kept.
    pub(super) fn pass(&mut self, reply: ReplyEmpty) -> Option<ReplyEmpty> {
        if self.struck {
            self.held.push(reply);
            return None;
        }
        match self.countdown {
            Some(1) => {
                self.countdown = None;
                self.struck = true;
                self.held.push(reply);
                None
            }
            Some(n) => {
                self.countdown = Some(n - 1);
                Some(reply)
            }
            None => Some(reply),
        }
    }

    pub(super) fn armed(&self) -> bool {
        self.countdown.is_some()
    }

    pub(super) fn struck(&self) -> bool {
        self.struck
    }

    /// Disarms the cut and answers every held sync with EIO (what fuser sends for a
    /// reply dropped unsent). Call it only once the programs waiting in them are
    /// killed: a living one would take the error for a failed disk.
    pub(super) fn release(&mut self) {
        self.countdown = None;
        self.struck = false;
        self.held.clear();
    }
}
