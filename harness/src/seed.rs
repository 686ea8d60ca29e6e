//! Seeds that make a failing run replayable.

use rand::rngs::StdRng;
use rand::SeedableRng;

/// The seed of one test run: `SEED` from the environment when replaying, otherwise a
/// fresh one. It is printed at the start, and when the test panics the exact command
/// that replays it is printed too.
#[derive(Debug)]
pub struct Seed {
    value: u64,
    test: String,
}

impl Seed {
    /// The seed for the test running on this thread.
    pub fn for_this_test() -> Seed {
        let test = std::thread::current()
            .name()
            .unwrap_or("unknown-test")
            .to_string();
        let value = match std::env::var("SEED") {
            Ok(s) => s
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("SEED={s:?} is not an unsigned 64-bit integer")),
            Err(_) => rand::random(),
        };
        eprintln!("{test}: seed {value}");
        Seed { value, test }
    }

    /// Seeds for a test that runs its scenario once per seed: `count` fresh ones,
    /// each printed when its run starts and, if that run panics, printed again with
    /// the command that replays it alone; with `SEED` set, that seed only.
    pub fn sweep(count: usize) -> impl Iterator<Item = Seed> {
        let replay = std::env::var("SEED").is_ok();
        let runs = if replay { 1 } else { count };
        (0..runs).map(|_| Seed::for_this_test())
    }

    pub fn value(&self) -> u64 {
        self.value
    }

    /// A fresh generator from this seed; `stream` keeps independent uses apart.
    pub fn rng(&self, stream: u64) -> StdRng {
        StdRng::seed_from_u64(self.value ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// The command that replays this test with this seed.
    pub fn replay_command(&self) -> String {
        let name = self.test.rsplit("::").next().unwrap_or(&self.test);
        format!(
            "SEED={} cargo nextest run --workspace -E 'test(/{}$/)'",
            self.value, name
        )
    }
}

impl Drop for Seed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("to reproduce: {}", self.replay_command());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn same_seed_same_stream() {
        let a = Seed {
            value: 7,
            test: "t".into(),
        };
        let b = Seed {
            value: 7,
            test: "t".into(),
        };
        let xs: Vec<u32> = (0..8).map(|_| a.rng(1).gen()).collect();
        let ys: Vec<u32> = (0..8).map(|_| b.rng(1).gen()).collect();
        assert_eq!(xs, ys);
        assert_ne!(a.rng(1).gen::<u64>(), a.rng(2).gen::<u64>());
    }

    #[test]
    fn replay_command_names_seed_and_test() {
        let seed = Seed {
            value: 42,
            test: "dfs::crash::many_points".into(),
        };
        let cmd = seed.replay_command();
        assert!(cmd.starts_with("SEED=42 "), "{cmd}");
        assert!(cmd.contains("many_points"), "{cmd}");
    }
}
