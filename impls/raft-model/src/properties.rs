//! Raft's safety properties (Figure 3 of the paper) over the servers of one state.
//! Each is judged from the servers' current state and their ghosts, so a violation
//! that a restart would hide (a second leader in a term, an applied entry changed)
//! is still seen.

use std::sync::Arc;

use crate::server::Server;

/// At most one leader is elected in a term.
pub fn election_safety(servers: &[Arc<Server>]) -> bool {
    pairs(servers).all(|(a, b)| a.ghost.led.is_disjoint(&b.ghost.led))
}

/// If two logs hold an entry with the same index and term, they are identical in
/// every entry up to it (where both still hold entries: compacted ones are committed).
pub fn log_matching(servers: &[Arc<Server>]) -> bool {
    pairs(servers).all(|(a, b)| {
        let (a, b) = (&a.raft, &b.raft);
        let low = a.log_start().max(b.log_start());
        let high = a.last_index().min(b.last_index());
        let Some(same) = (low + 1..=high)
            .rev()
            .find(|&i| a.term_at(i) == b.term_at(i))
        else {
            return true;
        };
        (low + 1..=same).all(|i| a.entry(i) == b.entry(i))
    })
}

/// An entry committed in a term is in the log (or the snapshot) of every leader of
/// a later term. A server applied each entry in its ghost no later than the term it
/// records, so leaders of higher terms must have it.
pub fn leader_completeness(servers: &[Arc<Server>]) -> bool {
    servers.iter().all(|n| {
        n.ghost
            .applied
            .iter()
            .enumerate()
            .all(|(k, (command, term))| {
                let index = k as u64 + 1;
                servers
                    .iter()
                    .filter(|l| l.raft.is_leader() && l.raft.term() > *term)
                    .all(|l| holds(l, index, command))
            })
    })
}

/// No two services apply different commands at one index, and no service applies
/// something that contradicts what it applied before a restart.
pub fn state_machine_safety(servers: &[Arc<Server>]) -> bool {
    servers.iter().all(|s| s.ghost.contradiction.is_none())
        && pairs(servers).all(|(a, b)| {
            a.ghost
                .applied
                .iter()
                .zip(&b.ghost.applied)
                .all(|((x, _), (y, _))| x == y)
        })
}

/// Whether server `s` holds `command` at `index`, in its log or its snapshot.
fn holds(s: &Server, index: u64, command: &str) -> bool {
    if index > s.raft.log_start() {
        return s
            .raft
            .entry(index)
            .is_some_and(|e| e.command.as_str() == Some(command));
    }
    s.raft
        .current_snapshot()
        .and_then(|snap| snap.data.get((index - 1) as usize))
        .is_some_and(|c| c.as_str() == Some(command))
}

fn pairs(servers: &[Arc<Server>]) -> impl Iterator<Item = (&Server, &Server)> {
    servers
        .iter()
        .enumerate()
        .flat_map(move |(i, a)| servers[i + 1..].iter().map(move |b| (&**a, &**b)))
}
