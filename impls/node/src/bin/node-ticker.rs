//! `node-ticker`: the smallest node with timers, for the harness's tests of time.
//!
//! On `{"type":"start","period":P,"count":N}` it asks to be woken every `P`
//! nanoseconds and, after the `N`th tick, answers `start_ok` with the times it saw
//! (`ticks`), measured on whatever clock the runtime gives it. It shows that
//! `wake_at` and `tick` work in both time modes.

use node::{Body, Message, Node, Outbox};

#[derive(Default)]
struct Ticker {
    request: Option<Message>,
    period: u64,
    remaining: u64,
    ticks: Vec<u64>,
}

impl Node for Ticker {
    fn on_message(&mut self, now: u64, message: Message, out: &mut Outbox) {
        if message.body.kind != "start" {
            out.error(&message, node::ErrorCode::NotSupported, "only start");
            return;
        }
        self.period = message.body.u64("period").unwrap_or(1_000_000).max(1);
        self.remaining = message.body.u64("count").unwrap_or(1);
        self.ticks.clear();
        self.request = Some(message);
        out.wake_at(now + self.period);
    }

    fn on_tick(&mut self, now: u64, out: &mut Outbox) {
        if self.remaining == 0 {
            return;
        }
        self.ticks.push(now);
        self.remaining -= 1;
        if self.remaining > 0 {
            out.wake_at(now + self.period);
        } else if let Some(request) = self.request.take() {
            let ticks = std::mem::take(&mut self.ticks);
            out.reply(&request, Body::new("start_ok").with("ticks", ticks));
        }
    }
}

fn main() {
    if let Err(e) = node::run(|_, _| Ticker::default()) {
        eprintln!("node-ticker: {e}");
        std::process::exit(1);
    }
}
