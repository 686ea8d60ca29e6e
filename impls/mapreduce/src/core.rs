//! The coordinator's decisions, free of sockets and clocks.
//!
//! A pure state machine: the runtime passes in each request with the current time and
//! sends back the reply. That is what lets the rules below be tested exactly, with
//! made-up times, in `tests` at the end of this file:
//!
//! - map tasks first; a reduce task only once every map task is done (a reducer must
//!   read every map task's output for its partition);
//! - a task whose worker has been silent for `timeout` is handed out again; the first
//!   attempt to report it done wins, and later reports are ignored (the outputs are
//!   renamed into place, so a second attempt only replaces a file with the same data);
//! - a task reported failed is handed out again at once, up to [`MAX_FAILURES`]
//!   reports; then the job has failed (a bad input or an application that always
//!   fails would otherwise be retried forever) and every request is answered `Exit`;
//! - once every reduce task is done, every request is answered `Exit`.

use std::time::{Duration, Instant};

use crate::bug::Bug;
use crate::protocol::{Kind, MapTask, ReduceTask, Reply, Request};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Running { since: Instant },
    Done,
}

#[derive(Debug)]
struct Slot<T> {
    task: T,
    state: State,
    failures: u32,
}

impl<T> Slot<T> {
    fn idle(task: T) -> Slot<T> {
        Slot {
            task,
            state: State::Idle,
            failures: 0,
        }
    }
}

/// Failure reports for one task after which the whole job has failed. Crashes and
/// timeouts do not count: a killed worker says nothing.
pub const MAX_FAILURES: u32 = 4;

/// How long an idle worker waits before asking again.
pub const WAIT_MS: u64 = 50;

#[derive(Debug)]
pub struct Coordinator {
    maps: Vec<Slot<MapTask>>,
    reduces: Vec<Slot<ReduceTask>>,
    timeout: Duration,
    bug: Option<Bug>,
    /// Why the job failed, once a task has failed [`MAX_FAILURES`] times.
    failure: Option<String>,
}

impl Coordinator {
    pub fn new(
        maps: Vec<MapTask>,
        reduces: Vec<ReduceTask>,
        timeout: Duration,
        bug: Option<Bug>,
    ) -> Coordinator {
        Coordinator {
            maps: maps.into_iter().map(Slot::idle).collect(),
            reduces: reduces.into_iter().map(Slot::idle).collect(),
            timeout,
            bug,
            failure: None,
        }
    }

    pub fn handle(&mut self, request: Request, now: Instant) -> Reply {
        match request {
            Request::GetTask => self.assign(now),
            Request::Done { kind, id } => {
                if let Some(state) = self.state_mut(kind, id) {
                    *state = State::Done;
                }
                Reply::Ok
            }
            Request::Failed { kind, id, error } => {
                let slot = match kind {
                    Kind::Map => self
                        .maps
                        .get_mut(id)
                        .map(|s| (&mut s.state, &mut s.failures)),
                    Kind::Reduce => self
                        .reduces
                        .get_mut(id)
                        .map(|s| (&mut s.state, &mut s.failures)),
                };
                if let Some((state, failures)) = slot {
                    if *state != State::Done {
                        *state = State::Idle;
                        *failures += 1;
                        if *failures >= MAX_FAILURES && self.failure.is_none() {
                            self.failure = Some(format!(
                                "{kind:?} task {id} failed {failures} times; last error: {error}"
                            ));
                        }
                    }
                }
                Reply::Ok
            }
        }
    }

    /// Why the job failed, if it did: then it will never be done.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    pub fn is_done(&self) -> bool {
        self.maps.iter().all(|s| s.state == State::Done)
            && self.reduces.iter().all(|s| s.state == State::Done)
    }

    fn state_mut(&mut self, kind: Kind, id: usize) -> Option<&mut State> {
        match kind {
            Kind::Map => self.maps.get_mut(id).map(|s| &mut s.state),
            Kind::Reduce => self.reduces.get_mut(id).map(|s| &mut s.state),
        }
    }

    fn assign(&mut self, now: Instant) -> Reply {
        if self.failure.is_some() {
            return Reply::Exit;
        }
        let reassign = self.bug != Some(Bug::NeverReassign);
        if let Some(task) = pick(&mut self.maps, now, self.timeout, reassign) {
            return Reply::Map(task);
        }
        let maps_done = self.maps.iter().all(|s| s.state == State::Done);
        // The known-bad variant starts reducing once every map is merely handed out.
        let early = self.bug == Some(Bug::EarlyReduce);
        if !maps_done && !early {
            return Reply::Wait { ms: WAIT_MS };
        }
        if let Some(task) = pick(&mut self.reduces, now, self.timeout, reassign) {
            return Reply::Reduce(task);
        }
        if self.is_done() {
            Reply::Exit
        } else {
            Reply::Wait { ms: WAIT_MS }
        }
    }
}

/// The first task that is idle or whose attempt timed out, marked running from `now`.
fn pick<T: Clone>(
    slots: &mut [Slot<T>],
    now: Instant,
    timeout: Duration,
    reassign: bool,
) -> Option<T> {
    let slot = slots.iter_mut().find(|s| match s.state {
        State::Idle => true,
        State::Running { since } => reassign && now.duration_since(since) >= timeout,
        State::Done => false,
    })?;
    slot.state = State::Running { since: now };
    Some(slot.task.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Split;

    fn job(maps: usize, reduces: usize, bug: Option<Bug>) -> Coordinator {
        let m = (0..maps)
            .map(|id| MapTask {
                id,
                splits: vec![Split {
                    path: format!("in-{id}").into(),
                    name: format!("in-{id}"),
                    start: 0,
                    end: 1,
                }],
                outputs: (0..reduces)
                    .map(|r| format!("mr-{id}-{r}").into())
                    .collect(),
            })
            .collect();
        let r = (0..reduces)
            .map(|id| ReduceTask {
                id,
                inputs: (0..maps).map(|m| format!("mr-{m}-{id}").into()).collect(),
                output: format!("mr-out-{id}").into(),
            })
            .collect();
        Coordinator::new(m, r, Duration::from_secs(10), bug)
    }

    fn map_id(reply: Reply) -> usize {
        match reply {
            Reply::Map(t) => t.id,
            other => panic!("expected a map task, got {other:?}"),
        }
    }

    fn reduce_id(reply: Reply) -> usize {
        match reply {
            Reply::Reduce(t) => t.id,
            other => panic!("expected a reduce task, got {other:?}"),
        }
    }

    fn done(c: &mut Coordinator, kind: Kind, id: usize, now: Instant) {
        assert_eq!(c.handle(Request::Done { kind, id }, now), Reply::Ok);
    }

    #[test]
    fn reduces_wait_for_the_last_map() {
        let t = Instant::now();
        let mut c = job(2, 1, None);
        assert_eq!(map_id(c.handle(Request::GetTask, t)), 0);
        assert_eq!(map_id(c.handle(Request::GetTask, t)), 1);
        done(&mut c, Kind::Map, 0, t);
        assert_eq!(c.handle(Request::GetTask, t), Reply::Wait { ms: WAIT_MS });
        done(&mut c, Kind::Map, 1, t);
        assert_eq!(reduce_id(c.handle(Request::GetTask, t)), 0);
        assert!(!c.is_done());
        done(&mut c, Kind::Reduce, 0, t);
        assert!(c.is_done());
        assert_eq!(c.handle(Request::GetTask, t), Reply::Exit);
    }

    #[test]
    fn a_silent_task_is_reassigned_after_the_timeout_only() {
        let t = Instant::now();
        let mut c = job(1, 1, None);
        assert_eq!(map_id(c.handle(Request::GetTask, t)), 0);
        let before = t + Duration::from_millis(9_999);
        assert_eq!(
            c.handle(Request::GetTask, before),
            Reply::Wait { ms: WAIT_MS }
        );
        let after = t + Duration::from_secs(10);
        assert_eq!(map_id(c.handle(Request::GetTask, after)), 0);
        // The first attempt reports late; the second attempt's report is then moot.
        done(&mut c, Kind::Map, 0, after);
        done(&mut c, Kind::Map, 0, after);
        assert_eq!(reduce_id(c.handle(Request::GetTask, after)), 0);
    }

    #[test]
    fn a_failed_task_is_handed_out_again_but_a_done_one_stays_done() {
        let t = Instant::now();
        let mut c = job(1, 1, None);
        map_id(c.handle(Request::GetTask, t));
        let failed = Request::Failed {
            kind: Kind::Map,
            id: 0,
            error: "disk full".into(),
        };
        c.handle(failed.clone(), t);
        assert_eq!(map_id(c.handle(Request::GetTask, t)), 0);
        done(&mut c, Kind::Map, 0, t);
        c.handle(failed, t);
        assert_eq!(reduce_id(c.handle(Request::GetTask, t)), 0);
    }

    #[test]
    fn a_task_that_keeps_failing_fails_the_job() {
        let t = Instant::now();
        let mut c = job(2, 1, None);
        for attempt in 1..=MAX_FAILURES {
            assert_eq!(
                map_id(c.handle(Request::GetTask, t)),
                0,
                "attempt {attempt}"
            );
            assert_eq!(c.failure(), None);
            c.handle(
                Request::Failed {
                    kind: Kind::Map,
                    id: 0,
                    error: "no such file".into(),
                },
                t,
            );
        }
        let why = c.failure().expect("failed").to_string();
        assert!(
            why.contains("Map task 0 failed 4 times") && why.contains("no such file"),
            "{why}"
        );
        assert_eq!(c.handle(Request::GetTask, t), Reply::Exit);
        assert!(!c.is_done());
    }

    #[test]
    fn no_task_is_handed_out_twice_without_a_timeout() {
        let t = Instant::now();
        let mut c = job(3, 2, None);
        let ids: Vec<usize> = (0..3)
            .map(|_| map_id(c.handle(Request::GetTask, t)))
            .collect();
        assert_eq!(ids, [0, 1, 2]);
        assert_eq!(c.handle(Request::GetTask, t), Reply::Wait { ms: WAIT_MS });
    }

    #[test]
    fn reports_for_unknown_tasks_are_ignored() {
        let t = Instant::now();
        let mut c = job(1, 1, None);
        done(&mut c, Kind::Reduce, 7, t);
        assert!(!c.is_done());
    }

    #[test]
    fn an_empty_job_goes_straight_to_reduce() {
        let t = Instant::now();
        let mut c = job(0, 2, None);
        assert_eq!(reduce_id(c.handle(Request::GetTask, t)), 0);
    }

    #[test]
    fn known_bad_early_reduce_hands_out_reduces_while_maps_run() {
        let t = Instant::now();
        let mut c = job(1, 1, Some(Bug::EarlyReduce));
        map_id(c.handle(Request::GetTask, t));
        assert_eq!(reduce_id(c.handle(Request::GetTask, t)), 0);
    }

    #[test]
    fn known_bad_never_reassign_waits_forever() {
        let t = Instant::now();
        let mut c = job(1, 1, Some(Bug::NeverReassign));
        map_id(c.handle(Request::GetTask, t));
        let later = t + Duration::from_secs(3600);
        assert_eq!(
            c.handle(Request::GetTask, later),
            Reply::Wait { ms: WAIT_MS }
        );
    }
}
