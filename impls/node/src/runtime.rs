//! Binds a [`Node`] to stdin/stdout in real or lockstep time.

use std::fs::File;
use std::io::{self, BufRead, BufWriter, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use specs::node_protocol::{Body, Init, Message, HARNESS};

use crate::node::{Context, Node};
use crate::outbox::{Effect, Outbox};
use crate::storage::Storage;

/// Runs the node `make` builds until stdin closes. `make` gets the context from `init`
/// and the storage read back from `data_dir`, so a restarted node can recover.
///
/// A malformed line is reported on stderr and skipped: bad input never kills a node.
pub fn run<N, F>(make: F) -> io::Result<()>
where
    N: Node,
    F: FnOnce(&Context, &Storage) -> N,
{
    run_with(Options::default(), make)
}

/// How [`run_with`] treats the node's data dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// fsync every persisted file and the directory (always, but for known-bad
    /// variants that prove the suite notices when a node does not).
    pub fsync: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { fsync: true }
    }
}

/// [`run`] with options.
pub fn run_with<N, F>(options: Options, make: F) -> io::Result<()>
where
    N: Node,
    F: FnOnce(&Context, &Storage) -> N,
{
    // Stdin itself (not its lock) so the reader can move to a thread in real time.
    let mut reader = io::BufReader::new(io::stdin());
    // A handle of our own on stdout: std's is line-buffered and looks through every
    // write for its last newline, a cost on a 128 KiB answer, and this writer does
    // its own buffering anyway.
    let stdout = File::from(io::stdout().as_fd().try_clone_to_owned()?);
    let mut writer = BufWriter::new(stdout);

    let (init_msg, init) = loop {
        let Some(line) = next_line(&mut reader) else {
            return Ok(());
        };
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let msg = match serde_json::from_str::<Message>(&line) {
            Ok(msg) => msg,
            Err(e) => {
                eprintln!("ignoring malformed line before init ({e}): {line}");
                continue;
            }
        };
        match Init::from_body(&msg.body) {
            Ok(init) => break (msg, init),
            Err(e) => eprintln!("ignoring message before init: {e}"),
        }
    };
    let ctx = Context {
        seed: init.seed.unwrap_or_else(|| fnv(init.node_id.as_bytes())),
        node_id: init.node_id.clone(),
        node_ids: init.node_ids.clone(),
    };
    let mut storage = Storage::open(init.data_dir.as_deref().map(Path::new))?;
    if !options.fsync {
        storage.skip_fsync();
    }
    let mut node = make(&ctx, &storage);
    let mut out = Outbox::new(ctx.node_id.clone());
    // Lines are read from a buffered stream, one step each, so the harness may write
    // several before it reads their step_done (specs::node_protocol).
    let init_ok = Body::new("init_ok");
    out.reply(
        &init_msg,
        if init.lockstep {
            init_ok.with("pipeline", true)
        } else {
            init_ok
        },
    );
    let start_time = if init.lockstep {
        init_msg.now.unwrap_or(0)
    } else {
        0
    };
    node.on_start(start_time, &mut out);
    apply(&mut out, &mut storage, &mut writer)?;

    if init.lockstep {
        step_done(&ctx, &out, &mut writer)?;
        end_steps(&reader, &mut writer)?;
        while let Some(line) = next_line(&mut reader) {
            let line = line?;
            let Some(msg) = parse(&line) else {
                step_done(&ctx, &out, &mut writer)?;
                end_steps(&reader, &mut writer)?;
                continue;
            };
            let now = msg.now.unwrap_or_else(|| {
                eprintln!("lockstep line without \"now\": {line}");
                0
            });
            if msg.src == HARNESS && msg.body.kind == "tick" {
                out.clear_wake();
                node.on_tick(now, &mut out);
            } else {
                node.on_message(now, msg, &mut out);
            }
            apply(&mut out, &mut storage, &mut writer)?;
            step_done(&ctx, &out, &mut writer)?;
            end_steps(&reader, &mut writer)?;
        }
        return Ok(());
    }

    writer.flush()?;
    let start = Instant::now();
    // Bounded, so a burst of requests waits in the pipe (the kernel's memory), not
    // in this process as queued lines.
    let (tx, rx) = mpsc::sync_channel::<io::Result<String>>(64);
    std::thread::spawn(move || {
        for line in reader.lines() {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        let now = start.elapsed().as_nanos() as u64;
        let received = match out.next_wake() {
            Some(at) if at <= now => Err(mpsc::RecvTimeoutError::Timeout),
            Some(at) => rx.recv_timeout(Duration::from_nanos(at - now)),
            None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(line) => {
                if let Some(msg) = parse(&line?) {
                    node.on_message(start.elapsed().as_nanos() as u64, msg, &mut out);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                out.clear_wake();
                node.on_tick(start.elapsed().as_nanos() as u64, &mut out);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        }
        apply(&mut out, &mut storage, &mut writer)?;
        writer.flush()?;
    }
}

fn parse(line: &str) -> Option<Message> {
    if line.trim().is_empty() {
        return None;
    }
    match serde_json::from_str(line) {
        Ok(msg) => Some(msg),
        Err(e) => {
            eprintln!("ignoring malformed line ({e}): {line}");
            None
        }
    }
}

/// Applies a step's effects: every persist before any send. The sends are left in
/// the writer's buffer: in lockstep they go out in one write with `step_done`.
fn apply(out: &mut Outbox, storage: &mut Storage, writer: &mut impl Write) -> io::Result<()> {
    let effects = out.drain();
    for effect in &effects {
        match effect {
            Effect::Persist { name, bytes } => storage.write(name, bytes.clone())?,
            Effect::Append { name, bytes } => storage.append(name, bytes)?,
            Effect::Send(_) => {}
        }
    }
    for effect in effects {
        if let Effect::Send(msg) = effect {
            writer.write_all(msg.to_json().as_bytes())?;
            writer.write_all(b"\n")?;
        }
    }
    Ok(())
}

/// The next line without its line ending, like `BufRead::lines`; `None` at the end.
fn next_line(reader: &mut impl BufRead) -> Option<io::Result<String>> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => None,
        Ok(_) => {
            if line.ends_with('\n') {
                line.pop();
                if line.ends_with('\r') {
                    line.pop();
                }
            }
            Some(Ok(line))
        }
        Err(e) => Some(Err(e)),
    }
}

fn step_done(ctx: &Context, out: &Outbox, writer: &mut impl Write) -> io::Result<()> {
    let msg = Message {
        src: ctx.node_id.clone(),
        dest: HARNESS.into(),
        now: None,
        body: Body::new("step_done").with("wake_at", out.next_wake()),
    };
    writer.write_all(msg.to_json().as_bytes())?;
    writer.write_all(b"\n")
}

/// Sends the steps written so far unless the next line is already here: then it is
/// handled at once (the harness wrote several, see `"pipeline"` in
/// `specs::node_protocol`) and their answers go out together. Reading can only
/// block when no whole line is buffered, and by then everything is flushed, so the
/// harness never waits for an answer that sits in our buffer.
fn end_steps<R>(reader: &io::BufReader<R>, writer: &mut impl Write) -> io::Result<()> {
    if reader.buffer().contains(&b'\n') {
        Ok(())
    } else {
        writer.flush()
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}
