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
//!
//! Or the power goes in the first sync of a file that holds bytes written in place
//! over durable ones (an overwrite, such as a checkpoint rewritten at a fixed
//! offset): the one window where a torn overwrite can be seen, wherever a program
//! puts it.

use fuser::ReplyEmpty;

/// The cut's state, shared by the FUSE thread and the harness.
#[derive(Default)]
pub(super) struct PowerCut {
    /// Syncs left before the one that never returns (1: the next one).
    countdown: Option<u64>,
    /// Strike in the first sync of a file holding an overwrite not yet durable.
    at_overwrite: bool,
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

    /// Arms the cut at the first sync of a file holding an overwrite.
    pub(super) fn arm_at_overwrite(&mut self) {
        self.release();
        self.at_overwrite = true;
    }

    /// A sync arrives (`overwrite`: of a file holding an overwrite not yet durable):
    /// its reply comes back if it may go ahead, or is kept.
    pub(super) fn pass(&mut self, reply: ReplyEmpty, overwrite: bool) -> Option<ReplyEmpty> {
        if self.struck || (self.at_overwrite && overwrite) {
            self.at_overwrite = false;
            self.struck = true;
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

    /// Whether the cut waits for an overwrite's sync (so a sync must say whether its
    /// file holds one, which costs a comparison of the file with its durable copy).
    pub(super) fn at_overwrite(&self) -> bool {
        self.at_overwrite
    }

    pub(super) fn armed(&self) -> bool {
        self.countdown.is_some() || self.at_overwrite
    }

    pub(super) fn struck(&self) -> bool {
        self.struck
    }

    /// Disarms the cut and answers every held sync with EIO (what fuser sends for a
    /// reply dropped unsent). Call it only once the programs waiting in them are
    /// killed: a living one would take the error for a failed disk.
    pub(super) fn release(&mut self) {
        self.countdown = None;
        self.at_overwrite = false;
        self.struck = false;
        self.held.clear();
    }
}
