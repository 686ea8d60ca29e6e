//! The search for a linearization of one part of a history.
//!
//! Wing & Gong's algorithm as Lowe refined it. Calls and returns sit in time order in
//! a doubly linked list. Walking it from the front, the search tries to linearize
//! each pending call it meets: if the model accepts the operation and the resulting
//! (set of done operations, state) pair is new, the operation is lifted out of the
//! list and the walk restarts. Meeting a return means that operation should have been
//! linearized already, so the last choice is undone and the walk resumes after it.
//! When every operation with a known return is done, the history is linearizable.
//!
//! An operation with an unknown outcome has no return entry: it may be linearized
//! anywhere after its call, and leaving it out altogether is the same as putting it
//! after everything else.

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
}

/// When to give up.
pub struct Limits<'a> {
    pub deadline: Option<Instant>,
    pub cancel: &'a AtomicBool,
}

const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;

/// The event list: entry 0 is the head sentinel; entry `e` for e >= 1 is a call
/// (`op`'s) or a return.
struct Events {
    next: Vec<u32>,
    prev: Vec<u32>,
    op: Vec<u32>,
    is_call: Vec<bool>,
    /// For each operation: its call entry and its return entry (NIL if unknown).
    call_of: Vec<u32>,
    return_of: Vec<u32>,
}

impl Events {
    fn new<I, O>(ops: &[&Operation<I, O>]) -> Events {
        // (time, returns after calls at the same instant, op): operations that touch
        // at an instant count as concurrent.
        let mut order: Vec<(u64, u8, u32)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            order.push((op.call, 0, i as u32));
            if let Some(ret) = op.ret {
                order.push((ret, 1, i as u32));
            }
        }
        order.sort_unstable();
        let n = order.len() + 1;
        let mut events = Events {
            next: Vec::with_capacity(n),
            prev: Vec::with_capacity(n),
            op: Vec::with_capacity(n),
            is_call: Vec::with_capacity(n),
            call_of: vec![NIL; ops.len()],
            return_of: vec![NIL; ops.len()],
        };
        events.op.push(NIL);
        events.is_call.push(false);
        for (e, &(_, kind, op)) in order.iter().enumerate() {
            let e = e as u32 + 1;
            events.op.push(op);
            events.is_call.push(kind == 0);
            if kind == 0 {
                events.call_of[op as usize] = e;
            } else {
                events.return_of[op as usize] = e;
            }
        }
        for e in 0..n as u32 {
            events.prev.push(if e == 0 { NIL } else { e - 1 });
            events
                .next
                .push(if e + 1 == n as u32 { NIL } else { e + 1 });
        }
        events
    }

    fn unlink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = n;
        if n != NIL {
            self.prev[n as usize] = p;
        }
    }

    fn relink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = e;
        if n != NIL {
            self.prev[n as usize] = e;
        }
    }

    /// Takes operation `op` out of the list (it has been linearized).
    fn lift(&mut self, op: usize) {
        self.unlink(self.call_of[op]);
        if self.return_of[op] != NIL {
            self.unlink(self.return_of[op]);
        }
    }

    /// Puts `op` back; lifts must be undone in reverse order.
    fn unlift(&mut self, op: usize) {
        if self.return_of[op] != NIL {
            self.relink(self.return_of[op]);
        }
        self.relink(self.call_of[op]);
    }
}

/// Searches for a linearization of `ops` (already stripped of failed operations).
pub fn search<M: Model>(
    model: &M,
    ops: &[&Operation<M::Input, M::Output>],
    limits: &Limits,
) -> SearchOutcome {
    let mut events = Events::new(ops);
    let keys = Zobrist::new(ops.len());
    let mut done = Bitset::new(ops.len());
    let mut cache: Cache<M::State> = Cache::new(done.words().len());
    let mut state = model.init();
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    let mut pending_returns = ops.iter().filter(|op| op.ret.is_some()).count();
    let mut longest: Vec<usize> = Vec::new();
    let mut stuck = 0usize;
    let mut steps: u32 = 0;

    let mut entry = events.next[HEAD as usize];
    loop {
        if pending_returns == 0 {
            return SearchOutcome::Linearizable;
        }
        steps = steps.wrapping_add(1);
        if steps % 4096 == 0 && stopped(limits) {
            return SearchOutcome::Stopped;
        }
        // A return is always ahead while some remain, so the walk cannot run off the end.
        debug_assert!(entry != NIL);
        let e = entry as usize;
        let op = events.op[e] as usize;
        if events.is_call[e] {
            let operation = ops[op];
            if let Some(next) = model.step(&state, &operation.input, operation.output()) {
                done.insert(op, &keys);
                if cache.insert(&done, &next) {
                    stack.push((op, std::mem::replace(&mut state, next)));
                    events.lift(op);
                    if operation.ret.is_some() {
                        pending_returns -= 1;
                    }
                    entry = events.next[HEAD as usize];
                    continue;
                }
                done.remove(op, &keys);
            }
            entry = events.next[e];
        } else {
            // `op` should have been linearized by now: undo the latest choice.
            if stack.len() >= longest.len() {
                longest.clear();
                longest.extend(stack.iter().map(|(i, _)| *i));
                stuck = op;
            }
            let Some((undone, previous)) = stack.pop() else {
                return SearchOutcome::Illegal {
                    prefix: longest,
                    stuck,
                };
            };
            state = previous;
            done.remove(undone, &keys);
            events.unlift(undone);
            if ops[undone].ret.is_some() {
                pending_returns += 1;
            }
            entry = events.next[events.call_of[undone] as usize];
        }
    }
}

fn stopped(limits: &Limits) -> bool {
    limits.cancel.load(Ordering::Relaxed) || limits.deadline.is_some_and(|d| Instant::now() >= d)
}
