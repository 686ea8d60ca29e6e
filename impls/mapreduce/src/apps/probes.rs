//! Applications of our own conformance tests, which watch the framework from inside.
//!
//! | app | map | reduce | what a test reads |
//! |---|---|---|---|
//! | `barrier` | sleeps 100-600 ms, then leaves the marker `mr-worker-barrier-<name in hex>`; `k0`..`k9` -> name | the number of markers present | every reduce call saw every map's marker, so no reduce started before the last map ended |
//! | `slow` | sleeps 100 ms; `k00`..`k29` -> name | sleeps 40 ms; values sorted, comma-joined | output files are never seen partial, even while a reduce runs or after a worker is killed |

use std::fs;
use std::thread::sleep;
use std::time::Duration;

use crate::app::App;

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// A per-input pause, so map tasks end at different times and some finish while others run.
fn pause_for(name: &str) -> Duration {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    Duration::from_millis(100 + h % 500)
}

pub struct Barrier;

impl App for Barrier {
    fn map(&self, name: &str, _: &[u8], emit: &mut dyn FnMut(&str, &str)) -> anyhow::Result<()> {
        sleep(pause_for(name));
        fs::write(format!("mr-worker-barrier-{}", hex(name)), b"x")?;
        for i in 0..10 {
            emit(&format!("k{i}"), name);
        }
        Ok(())
    }

    fn reduce(&self, _: &str, _: &[&str]) -> anyhow::Result<String> {
        Ok(super::count_markers("mr-worker-barrier-")?.to_string())
    }
}

pub struct Slow;

impl App for Slow {
    fn map(&self, name: &str, _: &[u8], emit: &mut dyn FnMut(&str, &str)) -> anyhow::Result<()> {
        sleep(Duration::from_millis(100));
        for i in 0..30 {
            emit(&format!("k{i:02}"), name);
        }
        Ok(())
    }

    fn reduce(&self, _: &str, values: &[&str]) -> anyhow::Result<String> {
        sleep(Duration::from_millis(40));
        let mut v = values.to_vec();
        v.sort();
        Ok(v.join(","))
    }
}
