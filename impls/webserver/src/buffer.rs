//! The bounded buffer between the master and the workers: a fixed number of slots
//! under one mutex, with one condition variable for "not full" (the master waits on
//! it) and one for "not empty" (workers wait on it). Nobody spins.
//!
//! Both policies are one ordered map: each entry's key is `(size, arrival)`, unique
//! since arrivals are numbered. Under FIFO the size is always 0, so arrival order
//! decides; under SFF the smallest file goes first and arrival order breaks ties.
//! (An ordered map rather than a heap: the items need no ordering of their own.)

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Fifo,
    Sff,
}

/// What a blocked thread waits for: room (the master, on a full buffer) or work (a
/// worker, on an empty one). Each has its condition variable, `conds[wait as usize]`.
#[derive(Clone, Copy)]
enum Wait {
    Room = 0,
    Work = 1,
}

pub struct BoundedBuffer<T> {
    state: Mutex<State<T>>,
    conds: [Condvar; 2],
    capacity: usize,
    policy: Policy,
    /// Known-bad variant: workers poll the queue in a loop instead of waiting.
    busy_wait: bool,
}

struct State<T> {
    queue: BTreeMap<(u64, u64), T>,
    arrivals: u64,
    /// Threads blocked for room (in `put`/`wait_for_free_slot`) and for work (in
    /// `take`): a notify (a futex syscall) is only made when someone waits.
    /// (`parking_lot`'s condition variables skip it by themselves, but with them
    /// keep-alive ran 12% slower: docs/webserver.md.)
    waiting: [usize; 2],
}

impl<T> BoundedBuffer<T> {
    pub fn new(capacity: usize, policy: Policy, busy_wait: bool) -> Self {
        assert!(capacity > 0, "a buffer needs at least one slot");
        BoundedBuffer {
            state: Mutex::new(State {
                queue: BTreeMap::new(),
                arrivals: 0,
                waiting: [0; 2],
            }),
            conds: [Condvar::new(), Condvar::new()],
            capacity,
            policy,
            busy_wait,
        }
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Blocks while every slot is taken, then queues `item`; `size` only counts
    /// under SFF.
    pub fn put(&self, item: T, size: u64) {
        let mut state = self.wait_for_room();
        let size = match self.policy {
            Policy::Fifo => 0,
            Policy::Sff => size,
        };
        let key = (size, state.arrivals);
        state.arrivals += 1;
        state.queue.insert(key, item);
        self.unlock_and_wake(state, Wait::Work);
    }

    /// Blocks until at least one slot is free and returns how many are.
    pub fn wait_for_free_slot(&self) -> usize {
        let state = self.wait_for_room();
        self.capacity - state.queue.len()
    }

    fn wait_for_room(&self) -> MutexGuard<'_, State<T>> {
        let mut state = self.lock();
        while state.queue.len() >= self.capacity {
            state = self.wait(state, Wait::Room);
        }
        state
    }

    /// Blocks while the buffer is empty, then removes the first entry by policy.
    pub fn take(&self) -> T {
        if self.busy_wait {
            return self.take_spinning();
        }
        let mut state = self.lock();
        loop {
            if let Some((_, item)) = state.queue.pop_first() {
                self.unlock_and_wake(state, Wait::Room);
                return item;
            }
            state = self.wait(state, Wait::Work);
        }
    }

    fn take_spinning(&self) -> T {
        loop {
            let mut state = self.lock();
            if let Some((_, item)) = state.queue.pop_first() {
                self.unlock_and_wake(state, Wait::Room);
                return item;
            }
            drop(state);
            std::hint::spin_loop();
        }
    }

    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Blocks until woken for `wait`, counted among its waiting threads meanwhile.
    fn wait<'a>(
        &self,
        mut state: MutexGuard<'a, State<T>>,
        wait: Wait,
    ) -> MutexGuard<'a, State<T>> {
        state.waiting[wait as usize] += 1;
        state = self.conds[wait as usize]
            .wait(state)
            .unwrap_or_else(|e| e.into_inner());
        state.waiting[wait as usize] -= 1;
        state
    }

    /// Unlocks, then wakes one thread waiting for `wait` if there is one.
    fn unlock_and_wake(&self, state: MutexGuard<'_, State<T>>, wait: Wait) {
        let wake = state.waiting[wait as usize] > 0;
        drop(state);
        if wake {
            self.conds[wait as usize].notify_one();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A worker that panicked while holding the lock left the queue intact (every
        // operation on it is a single insert or removal), so the state is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn fifo_takes_in_arrival_order() {
        let b = BoundedBuffer::new(4, Policy::Fifo, false);
        for (item, size) in [("a", 30), ("b", 10), ("c", 20)] {
            b.put(item, size);
        }
        assert_eq!([b.take(), b.take(), b.take()], ["a", "b", "c"]);
    }

    #[test]
    fn sff_takes_smallest_first_fifo_among_equals() {
        let b = BoundedBuffer::new(8, Policy::Sff, false);
        for (item, size) in [("big", 30), ("small1", 10), ("mid", 20), ("small2", 10)] {
            b.put(item, size);
        }
        let order: Vec<_> = (0..4).map(|_| b.take()).collect();
        assert_eq!(order, ["small1", "small2", "mid", "big"]);
    }

    #[test]
    fn put_blocks_when_full_until_a_take() {
        let b = Arc::new(BoundedBuffer::new(1, Policy::Fifo, false));
        b.put(1, 0);
        let b2 = b.clone();
        let putter = std::thread::spawn(move || b2.put(2, 0));
        std::thread::sleep(Duration::from_millis(100));
        assert!(!putter.is_finished(), "put returned with the buffer full");
        assert_eq!(b.len(), 1);
        assert_eq!(b.take(), 1);
        putter.join().unwrap();
        assert_eq!(b.take(), 2);
        assert!(b.is_empty());
    }

    #[test]
    fn take_blocks_when_empty_until_a_put() {
        let b = Arc::new(BoundedBuffer::new(2, Policy::Sff, false));
        let b2 = b.clone();
        let taker = std::thread::spawn(move || b2.take());
        std::thread::sleep(Duration::from_millis(100));
        assert!(!taker.is_finished(), "take returned from an empty buffer");
        b.put(7, 0);
        assert_eq!(taker.join().unwrap(), 7);
    }
}
