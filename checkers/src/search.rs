//! The search for a linearization of one part of a history.
//!
//! Wing & Gong's algorithm as Lowe refined it. Calls and returns sit in time order in
//! a doubly linked list. Walking it from the front, the search tries to linearize
//! each pending call it meets: if the model accepts the operation and the resulting
//! configuration is not known to be dead, the operation is lifted out of the list and
//! the walk restarts. Meeting a return means that operation should have been
//! linearized already, so the last choice is undone and the walk resumes after it.
//! When every operation with a known return is done, the history is linearizable.
//!
//! Operations with an unknown outcome have no return: each may be linearized anywhere
//! after its call, or never (which is the same as after everything else). They sit
//! in a second list and are tried only after every candidate with a known outcome,
//! so configurations with fewer of them applied are explored, and found dead, first;
//! the cache then prunes every configuration that differs only by having applied
//! more of them (`crate::cache`). Applying one that would change nothing is never
//! tried: not having happened yet allows everything having happened does.
//!
//! And one pruning for operations that never change the state (a read, a failed
//! compare-and-set: [`Model::is_read_only`]): one the model accepts now is linearized
//! now, without trying alternatives, and such operations are tried before the others. It was called before any remaining operation
//! returned, so moving it to the front of any linearization of the rest breaks no
//! real-time order, and since it changes nothing, every later step stays valid. If the
//! rest fails after it, the rest fails, and the search backs up further.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use specs::Model;

use crate::bitset::{Bitset, Zobrist};
use crate::cache::Cache;
use crate::history::Operation;

/// How a search ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchOutcome {
    /// A linearization was found.
    Linearizable,
    /// None exists. `prefix` is the longest linearizable prefix found (indices into the
    /// searched operations, in linearization order); `stuck` is the operation whose
    /// return came before any extension of that prefix could place it.
    Illegal { prefix: Vec<usize>, stuck: usize },
    /// The deadline passed or the search was cancelled.
    Stopped,
    /// The step budget ran out; the same search with a larger one may finish.
    OutOfSteps,
}

/// When to give up.
pub struct Limits<'a> {
    pub deadline: Option<Instant>,
    pub cancel: &'a AtomicBool,
    /// At most this many steps (one step: one candidate tried or one return met).
    pub max_steps: Option<u64>,
}

const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;

/// A time-ordered doubly linked list of events; entry 0 is the head sentinel.
struct List {
    next: Vec<u32>,
    prev: Vec<u32>,
    op: Vec<u32>,
    time: Vec<u64>,
    is_call: Vec<bool>,
}

impl List {
    /// `events` are (time, 0 for a call or 1 for a return, operation). At equal times
    /// calls come first: operations that touch at an instant count as concurrent.
    fn new(mut events: Vec<(u64, u8, u32)>) -> List {
        events.sort_unstable();
        let n = events.len() + 1;
        let mut list = List {
            next: (1..=n as u32)
                .map(|e| if e == n as u32 { NIL } else { e })
                .collect(),
            prev: (0..n as u32).map(|e| e.wrapping_sub(1)).collect(),
            op: vec![NIL],
            time: vec![0],
            is_call: vec![false],
        };
        list.prev[0] = NIL;
        for (time, kind, op) in events {
            list.op.push(op);
            list.time.push(time);
            list.is_call.push(kind == 0);
        }
        list
    }

    fn unlink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = n;
        if n != NIL {
            self.prev[n as usize] = p;
        }
    }

    /// Undoes `unlink(e)`; unlinks must be undone in reverse order.
    fn relink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = e;
        if n != NIL {
            self.prev[n as usize] = e;
        }
    }

    fn first(&self) -> u32 {
        self.next[HEAD as usize]
    }
}

/// Where the walk is. It passes over the candidates three times: read-only operations
/// with known outcomes first (one the model accepts is forced, and taking it before a
/// state change can make it stale saves a whole wrong subtree), then the other known
/// ones, then unknown ones called no later than the first return.
#[derive(Clone, Copy)]
enum Cursor {
    Reads(u32),
    Writes(u32),
    /// (entry in the unknown list, the first return in the known list)
    Unknown(u32, u32),
}

/// Searches for a linearization of `ops` (already stripped of failed operations).
pub fn search<M: Model>(
    model: &M,
    ops: &[&Operation<M::Input, M::Output>],
    limits: &Limits,
) -> SearchOutcome {
    // Each operation's entries, and its number among the known or the unknown ones.
    let mut slot = vec![0usize; ops.len()];
    let mut call_entry = vec![NIL; ops.len()];
    let mut return_entry = vec![NIL; ops.len()];
    let (mut known_events, mut unknown_events) = (Vec::new(), Vec::new());
    let (mut n_known, mut n_unknown) = (0, 0);
    for (i, op) in ops.iter().enumerate() {
        if let Some(ret) = op.ret {
            slot[i] = n_known;
            n_known += 1;
            known_events.push((op.call, 0, i as u32));
            known_events.push((ret, 1, i as u32));
        } else {
            slot[i] = n_unknown;
            n_unknown += 1;
            unknown_events.push((op.call, 0, i as u32));
        }
    }
    let mut known_list = List::new(known_events);
    let mut unknown_list = List::new(unknown_events);
    for e in 1..known_list.op.len() {
        let op = known_list.op[e] as usize;
        if known_list.is_call[e] {
            call_entry[op] = e as u32;
        } else {
            return_entry[op] = e as u32;
        }
    }
    for e in 1..unknown_list.op.len() {
        call_entry[unknown_list.op[e] as usize] = e as u32;
    }

    let known_keys = Zobrist::new(n_known);
    let unknown_keys = Zobrist::new(n_unknown);
    let mut known = Bitset::new(n_known);
    let mut unknown = Bitset::new(n_unknown);
    let mut cache: Cache<M::State> = Cache::new(known.words().len(), unknown.words().len());
    let read_only: Vec<bool> = ops
        .iter()
        .map(|op| model.is_read_only(&op.input, op.output()))
        .collect();
    let mut state = model.init();
    // (operation, state before it, whether it was forced: see the module doc, and the
    // cache key of the configuration it led to)
    let mut stack: Vec<(usize, M::State, bool, u64)> = Vec::new();
    let mut pending_returns = n_known;
    // Read-only operations with a known outcome not yet linearized: with none, the
    // pass over the candidates for reads and the check for lost reads, each a walk of
    // the whole window, are skipped (a window of a thousand concurrent writes would
    // make every step cost a thousand).
    let mut pending_reads = (0..ops.len())
        .filter(|&i| read_only[i] && ops[i].ret.is_some())
        .count();
    let mut longest: Vec<usize> = Vec::new();
    let mut stuck = 0usize;
    let mut steps: u64 = 0;
    let max_steps = limits.max_steps.unwrap_or(u64::MAX);

    // Applies or undoes operation `op` in the sets and lists.
    macro_rules! apply {
        ($op:expr) => {{
            let op: usize = $op;
            if ops[op].ret.is_some() {
                known.insert(slot[op], &known_keys);
                known_list.unlink(call_entry[op]);
                known_list.unlink(return_entry[op]);
                pending_returns -= 1;
                pending_reads -= usize::from(read_only[op]);
            } else {
                unknown.insert(slot[op], &unknown_keys);
                unknown_list.unlink(call_entry[op]);
            }
        }};
    }
    macro_rules! unapply {
        ($op:expr) => {{
            let op: usize = $op;
            if ops[op].ret.is_some() {
                known.remove(slot[op], &known_keys);
                known_list.relink(return_entry[op]);
                known_list.relink(call_entry[op]);
                pending_returns += 1;
                pending_reads += usize::from(read_only[op]);
            } else {
                unknown.remove(slot[op], &unknown_keys);
                unknown_list.relink(call_entry[op]);
            }
        }};
    }
    // The first return in the known list: no candidate may be called after it.
    macro_rules! horizon {
        () => {{
            let mut e = known_list.first();
            while known_list.is_call[e as usize] {
                e = known_list.next[e as usize];
            }
            e
        }};
    }
    // Whether a pending read the model refuses in the current state can never be
    // accepted before its return, whatever may still come first: then this
    // configuration is dead (see `Model::could_accept_later`).
    macro_rules! some_read_is_lost {
        () => {{
            let mut lost = false;
            let mut e = known_list.first();
            while !lost && e != NIL && known_list.is_call[e as usize] {
                let r = known_list.op[e as usize] as usize;
                e = known_list.next[e as usize];
                if !read_only[r] {
                    continue;
                }
                let read = ops[r];
                if model.step(&state, &read.input, read.output()).is_some() {
                    continue;
                }
                let deadline = read.ret.expect("known reads return");
                // Operations not yet linearized that are called by the read's return.
                let mut may_intervene = |pred: &dyn Fn(&M::Input) -> bool| {
                    let mut c = known_list.first();
                    while c != NIL && known_list.time[c as usize] <= deadline {
                        if known_list.is_call[c as usize]
                            && pred(&ops[known_list.op[c as usize] as usize].input)
                        {
                            return true;
                        }
                        c = known_list.next[c as usize];
                    }
                    let mut c = unknown_list.first();
                    while c != NIL && unknown_list.time[c as usize] <= deadline {
                        if pred(&ops[unknown_list.op[c as usize] as usize].input) {
                            return true;
                        }
                        c = unknown_list.next[c as usize];
                    }
                    false
                };
                lost = !model.could_accept_later(
                    &state,
                    &read.input,
                    read.output(),
                    &mut may_intervene,
                );
            }
            lost
        }};
    }

    // Undoes choices up to and including the latest unforced one, recording each
    // configuration backed out of as dead, and yields where to resume: after the
    // undone call.
    macro_rules! backtrack {
        () => {
            loop {
                let Some((undone, previous, forced, key)) = stack.pop() else {
                    return SearchOutcome::Illegal {
                        prefix: longest,
                        stuck,
                    };
                };
                cache.record_dead(key, &known, &unknown, &state);
                state = previous;
                unapply!(undone);
                if !forced {
                    let e = call_entry[undone] as usize;
                    // Only operations that change the state are unforced.
                    break if ops[undone].ret.is_some() {
                        Cursor::Writes(known_list.next[e])
                    } else {
                        Cursor::Unknown(unknown_list.next[e], horizon!())
                    };
                }
            }
        };
    }

    let mut cursor = Cursor::Reads(known_list.first());
    loop {
        if pending_returns == 0 {
            return SearchOutcome::Linearizable;
        }
        steps += 1;
        if steps % 4096 == 0 && stopped(limits) {
            return SearchOutcome::Stopped;
        }
        if steps > max_steps {
            return SearchOutcome::OutOfSteps;
        }
        // A return is always ahead while some remain: the walk cannot run off the end.
        let op = match cursor {
            Cursor::Reads(_) if pending_reads == 0 => {
                cursor = Cursor::Writes(known_list.first());
                continue;
            }
            Cursor::Reads(e) if known_list.is_call[e as usize] => {
                let op = known_list.op[e as usize] as usize;
                if !read_only[op] {
                    cursor = Cursor::Reads(known_list.next[e as usize]);
                    continue;
                }
                op
            }
            Cursor::Reads(_) => {
                cursor = Cursor::Writes(known_list.first());
                continue;
            }
            Cursor::Writes(e) if known_list.is_call[e as usize] => {
                let op = known_list.op[e as usize] as usize;
                if read_only[op] {
                    cursor = Cursor::Writes(known_list.next[e as usize]);
                    continue;
                }
                op
            }
            Cursor::Writes(e) => {
                // Known candidates are exhausted, and the walk stands on the first
                // return; unknown candidates called no later come next.
                cursor = Cursor::Unknown(unknown_list.first(), e);
                continue;
            }
            Cursor::Unknown(e, horizon) => {
                if e == NIL || unknown_list.time[e as usize] > known_list.time[horizon as usize] {
                    // Nothing can be placed before this return: back up.
                    if stack.len() >= longest.len() {
                        longest.clear();
                        longest.extend(stack.iter().map(|(i, ..)| *i));
                        stuck = known_list.op[horizon as usize] as usize;
                    }
                    cursor = backtrack!();
                    continue;
                }
                unknown_list.op[e as usize] as usize
            }
        };
        let operation = ops[op];
        let step = model
            .step(&state, &operation.input, operation.output())
            .filter(|next| operation.ret.is_some() || *next != state);
        if let Some(next) = step {
            let forced = read_only[op];
            apply!(op);
            let key = cache.hash(&known, &next);
            if !cache.is_dead(key, &known, &unknown, &next) {
                stack.push((op, std::mem::replace(&mut state, next), forced, key));
                cursor = if forced {
                    // The state is unchanged, so the read-only candidates before this one,
                    // all refused in this state, would be refused again: resume after it.
                    Cursor::Reads(
                        known_list.next[known_list.prev[call_entry[op] as usize] as usize],
                    )
                } else {
                    Cursor::Reads(known_list.first())
                };
                if M::PRUNES_READS && !forced && pending_reads > 0 && some_read_is_lost!() {
                    cursor = backtrack!();
                }
                continue;
            }
            unapply!(op);
            if forced {
                // The rest after this operation is dead, so this configuration is too.
                cursor = backtrack!();
                continue;
            }
        }
        cursor = match cursor {
            Cursor::Reads(e) => Cursor::Reads(known_list.next[e as usize]),
            Cursor::Writes(e) => Cursor::Writes(known_list.next[e as usize]),
            Cursor::Unknown(e, horizon) => Cursor::Unknown(unknown_list.next[e as usize], horizon),
        };
    }
}

fn stopped(limits: &Limits) -> bool {
    limits.cancel.load(Ordering::Relaxed) || limits.deadline.is_some_and(|d| Instant::now() >= d)
}
