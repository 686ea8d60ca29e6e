//! Binds a [`Node`] to stdin/stdout in real or lockstep time.

use std::fs::File;
use std::io::{self, BufRead, BufWriter, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use specs::node_protocol::{Body, ErrorCode, Init, Message, HARNESS};

use crate::node::{Context, Node};
use crate::outbox::{Effect, Outbox};
use crate::storage::Storage;

/// Runs the node `make` builds until stdin closes. `make` gets the context from `init`
/// and the storage read back from `data_dir`, so a restarted node can recover.
///
/// A malformed line (not UTF-8, not JSON, not a message, longer than
/// [`MAX_LINE_BYTES`]) never kills a node: it is answered with a `malformed-request`
/// error when its sender and `msg_id` can be read from it, reported on stderr
/// otherwise, and skipped (in lockstep it is still a step, ended by `step_done`).
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
    // Stdin itself (not its lock): in real time it is polled by its descriptor.
    let mut reader = io::BufReader::new(io::stdin());
    // A handle of our own on stdout: std's is line-buffered and looks through every
    // write for its last newline, a cost on a 128 KiB answer, and this writer does
    // its own buffering anyway.
    let stdout = File::from(io::stdout().as_fd().try_clone_to_owned()?);
    let mut writer = BufWriter::new(stdout);

    let (init_msg, init) = loop {
        let Some(line) = next_line(&mut reader, MAX_LINE_BYTES) else {
            return Ok(());
        };
        let msg = match parse(&line?) {
            Input::Blank => continue,
            Input::Message(msg) => msg,
            Input::Malformed { error, .. } => {
                // No node id to answer from yet.
                eprintln!("ignoring malformed line before init: {error}");
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
    node.on_batch_end(&mut out);
    settle(&mut node, &mut out, &mut storage, &mut writer, false)?;

    if init.lockstep {
        step_done(&ctx, &out, &mut writer)?;
        end_steps(&reader, &mut writer)?;
        while let Some(line) = next_line(&mut reader, MAX_LINE_BYTES) {
            let Some(msg) = take_message(parse(&line?), &mut out) else {
                node.on_batch_end(&mut out);
                settle(&mut node, &mut out, &mut storage, &mut writer, false)?;
                step_done(&ctx, &out, &mut writer)?;
                end_steps(&reader, &mut writer)?;
                continue;
            };
            let now = msg.now.unwrap_or_else(|| {
                eprintln!("lockstep line without \"now\": {}", msg.to_json());
                0
            });
            if msg.src == HARNESS && msg.body.kind == "tick" {
                out.clear_wake();
                node.on_tick(now, &mut out);
            } else {
                node.on_message(now, msg, &mut out);
            }
            node.on_batch_end(&mut out);
            settle(&mut node, &mut out, &mut storage, &mut writer, false)?;
            step_done(&ctx, &out, &mut writer)?;
            end_steps(&reader, &mut writer)?;
        }
        return Ok(());
    }

    writer.flush()?;
    let start = Instant::now();
    // Stdin is read on this thread, waiting in `poll` for a line or the next wake-up,
    // not on a thread of its own that hands each line over: every message would then
    // cost two wake-ups, the reader's and this thread's, where it now costs one
    // (docs/raft.md, Performance).
    let clock = WakeClock::new()?;
    loop {
        let now = start.elapsed().as_nanos() as u64;
        let input = match out.next_wake() {
            Some(at) if at <= now => false,
            Some(at) => clock.wait_for_line(&reader, Some(Duration::from_nanos(at - now)))?,
            None => clock.wait_for_line(&reader, None)?,
        };
        if input {
            // Group commit: the lines already there (buffered, or in the pipe) are
            // stepped together and made durable by one write and one fsync per file,
            // before any of their answers leaves. Never waits for more; a batch
            // takes at most `MAX_BATCH` lines, so a burst waits in the pipe.
            for _ in 0..MAX_BATCH {
                let Some(line) = next_line(&mut reader, MAX_LINE_BYTES) else {
                    return Ok(());
                };
                if let Some(msg) = take_message(parse(&line?), &mut out) {
                    node.on_message(start.elapsed().as_nanos() as u64, msg, &mut out);
                }
                if !line_ready_now(&reader)? {
                    break;
                }
            }
        } else {
            out.clear_wake();
            node.on_tick(start.elapsed().as_nanos() as u64, &mut out);
        }
        node.on_batch_end(&mut out);
        settle(&mut node, &mut out, &mut storage, &mut writer, true)?;
        writer.flush()?;
    }
}

/// The most lines stepped in one batch in real time.
const MAX_BATCH: usize = 64;

/// The next wake-up as a timer on the monotonic clock, set to an absolute time: a
/// node stopped past its wake-up (SIGSTOP, or a loaded machine) wakes at once when it
/// runs again, as with a timer of the language's runtime. A relative timeout would
/// not do: a `poll` the stop interrupted is restarted with the time it had left.
struct WakeClock {
    timer: OwnedFd,
}

impl WakeClock {
    fn new() -> io::Result<WakeClock> {
        // SAFETY: no pointers; the result is checked before it is owned.
        let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a descriptor just created, owned by nothing else.
        Ok(WakeClock {
            timer: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Waits until a line (or the end of input) can be read from `reader`, or `wait`
    /// passes (`None`: no wake-up). True for input.
    fn wait_for_line(
        &self,
        reader: &io::BufReader<io::Stdin>,
        wait: Option<Duration>,
    ) -> io::Result<bool> {
        if has_line(reader) {
            return Ok(true);
        }
        let mut value = libc::itimerspec {
            it_interval: timespec(Duration::ZERO),
            it_value: timespec(Duration::ZERO),
        };
        if let Some(wait) = wait {
            let mut now = timespec(Duration::ZERO);
            // SAFETY: a valid timespec to fill.
            if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) } != 0 {
                return Err(io::Error::last_os_error());
            }
            let at = Duration::new(now.tv_sec as u64, now.tv_nsec as u32) + wait;
            value.it_value = timespec(at);
        }
        // Arming resets the count of expirations, so an old one never reads as due.
        // SAFETY: valid itimerspec, no old value asked for.
        let set = unsafe {
            libc::timerfd_settime(
                self.timer.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &value,
                std::ptr::null_mut(),
            )
        };
        if set != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut fds = [
            pollfd(reader.get_ref().as_raw_fd()),
            pollfd(self.timer.as_raw_fd()),
        ];
        poll(&mut fds, -1)?;
        // Readable, or hung up (the end of input, which reading reports).
        Ok(fds[0].revents != 0)
    }
}

/// Whether a line (or the end of input) can be read from `reader` without waiting:
/// a whole line in its buffer, or stdin readable. Once stdin is readable the rest of
/// a line may still be on its way, and reading it waits for the writer to finish it.
fn line_ready_now(reader: &io::BufReader<io::Stdin>) -> io::Result<bool> {
    if has_line(reader) {
        return Ok(true);
    }
    let mut fds = [pollfd(reader.get_ref().as_raw_fd())];
    poll(&mut fds, 0)?;
    Ok(fds[0].revents != 0)
}

fn has_line(reader: &io::BufReader<io::Stdin>) -> bool {
    memchr::memchr(b'\n', reader.buffer()).is_some()
}

fn pollfd(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// `poll` until it returns, retried when a signal interrupts it.
fn poll(fds: &mut [libc::pollfd], timeout_ms: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: `fds` is a valid array of its length for the call's duration.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if ready >= 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}

/// The longest input line the runtime keeps (16 MiB): longer ones are skipped as
/// malformed, so a sender without newlines cannot make the node grow without bound.
/// Legitimate messages (128 KiB values, whole snapshots) are far below it.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// One line of input as read, without its line ending.
#[derive(Debug, PartialEq)]
enum Line {
    Bytes(Vec<u8>),
    /// Longer than [`MAX_LINE_BYTES`]: this many bytes, dropped while read.
    TooLong(usize),
}

/// What a line of input holds.
#[derive(Debug, PartialEq)]
enum Input {
    Blank,
    Message(Message),
    /// Not a message. `reply_to` is the sender and `msg_id` when they could still be
    /// read from it, so the sender learns of its mistake rather than wait forever.
    Malformed {
        error: String,
        reply_to: Option<(String, u64)>,
    },
}

fn parse(line: &Line) -> Input {
    let bytes = match line {
        Line::Bytes(bytes) => bytes,
        Line::TooLong(n) => {
            return Input::Malformed {
                error: format!("a line of {n} bytes, longer than the limit of {MAX_LINE_BYTES}"),
                reply_to: None,
            }
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Input::Blank;
    }
    let error = match serde_json::from_slice::<Message>(bytes) {
        Ok(msg) => return Input::Message(msg),
        Err(e) => e,
    };
    let text = String::from_utf8_lossy(bytes);
    let error = match std::str::from_utf8(bytes) {
        Ok(_) => format!("not a message ({error}): {}", abbreviate(&text)),
        Err(e) => format!("not UTF-8 ({e}): {}", abbreviate(&text)),
    };
    Input::Malformed {
        error,
        reply_to: sender(&text),
    }
}

/// The `src` and `msg_id` of a line that is JSON (once invalid UTF-8 is replaced) but
/// not a message, unless it is a reply: answering replies is how two nodes start
/// answering each other's errors forever.
fn sender(text: &str) -> Option<(String, u64)> {
    let value: Value = serde_json::from_str(text).ok()?;
    let src = value.get("src")?.as_str()?;
    let body = value.get("body")?;
    if body.get("in_reply_to").is_some_and(|v| !v.is_null()) {
        return None;
    }
    Some((src.to_string(), body.get("msg_id")?.as_u64()?))
}

/// A line for a log message: long lines would drown the log.
fn abbreviate(text: &str) -> String {
    const SHOWN: usize = 200;
    match text.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{}... ({} bytes)", &text[..at], text.len()),
        None => text.to_string(),
    }
}

/// The message `input` holds; a malformed one is answered (when it can be) or
/// logged, and gives `None`, as does a blank line.
fn take_message(input: Input, out: &mut Outbox) -> Option<Message> {
    match input {
        Input::Blank => None,
        Input::Message(msg) => Some(msg),
        Input::Malformed { error, reply_to } => {
            match reply_to {
                Some((src, msg_id)) => {
                    eprintln!("answering a malformed message from {src}: {error}");
                    let mut body = Body::error(ErrorCode::MalformedRequest, error);
                    body.in_reply_to = Some(msg_id);
                    out.send(src, body);
                }
                None => eprintln!("ignoring a malformed line: {error}"),
            }
            None
        }
    }
}

/// Applies a batch's effects, then tells the node when its writes are durable
/// ([`Node::on_durable`]) and applies what that asks for, until a round writes
/// nothing.
fn settle<N: Node>(
    node: &mut N,
    out: &mut Outbox,
    storage: &mut Storage,
    writer: &mut impl Write,
    real_time: bool,
) -> io::Result<()> {
    while apply(out, storage, writer, real_time)? {
        node.on_durable(out);
        if out.is_empty() {
            break;
        }
    }
    Ok(())
}

/// Applies a batch's effects: the early messages ([`Outbox::send_before_durable`])
/// first, then every persist, then the other sends. In real time the early ones are
/// flushed before the writes start, so their receivers work while this node
/// fsyncs; the others are left in the writer's buffer (in lockstep everything goes
/// out in one write with `step_done`). True if anything was written or sent early.
fn apply(
    out: &mut Outbox,
    storage: &mut Storage,
    writer: &mut impl Write,
    real_time: bool,
) -> io::Result<bool> {
    let early = out.drain_early();
    for msg in &early {
        writer.write_all(msg.to_json().as_bytes())?;
        writer.write_all(b"\n")?;
    }
    if real_time && !early.is_empty() {
        writer.flush()?;
    }
    let mut sends = Vec::new();
    let mut writes = Vec::new();
    for effect in out.drain() {
        match effect {
            Effect::Send(msg) => sends.push(msg),
            write => writes.push(write),
        }
    }
    let wrote = !writes.is_empty();
    for write in coalesce(writes) {
        match write {
            Effect::Persist { name, bytes } => storage.write(&name, bytes)?,
            Effect::Append { name, bytes } => storage.append(&name, &bytes)?,
            Effect::Send(_) => unreachable!("only writes are coalesced"),
        }
    }
    for msg in sends {
        writer.write_all(msg.to_json().as_bytes())?;
        writer.write_all(b"\n")?;
    }
    Ok(wrote || !early.is_empty())
}

/// Joins writes in a row to the same file into one (appends into one append, a
/// replace and the appends after it into one replace, a replace followed by another
/// into the second), so a batch costs one write and one fsync per file. The files
/// end as if each write had been made in turn, and the order between files is kept
/// (a node may rely on writing one before another); a crash can only lose a
/// suffix of the batch, which none of its answers has yet promised.
fn coalesce(writes: Vec<Effect>) -> Vec<Effect> {
    let mut joined: Vec<Effect> = Vec::with_capacity(writes.len());
    for write in writes {
        let same_file = |e: &Effect, name: &str| match e {
            Effect::Persist { name: n, .. } | Effect::Append { name: n, .. } => n == name,
            Effect::Send(_) => false,
        };
        match (joined.last_mut(), write) {
            (Some(last), Effect::Append { name, bytes }) if same_file(last, &name) => match last {
                Effect::Persist { bytes: b, .. } | Effect::Append { bytes: b, .. } => {
                    b.extend_from_slice(&bytes)
                }
                Effect::Send(_) => unreachable!(),
            },
            (Some(last), Effect::Persist { name, bytes }) if same_file(last, &name) => {
                *last = Effect::Persist { name, bytes };
            }
            (_, write) => joined.push(write),
        }
    }
    joined
}

/// The next line without its line ending, like `BufRead::lines` but for any bytes
/// and at most `max` of them kept; `None` at the end.
fn next_line(reader: &mut impl BufRead, max: usize) -> Option<io::Result<Line>> {
    let mut line = Vec::new();
    let mut dropped = 0;
    loop {
        let buffer = match reader.fill_buf() {
            Ok(buffer) => buffer,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Some(Err(e)),
        };
        if buffer.is_empty() {
            if line.is_empty() && dropped == 0 {
                return None;
            }
            break;
        }
        let (part, used, ended) = match memchr::memchr(b'\n', buffer) {
            Some(at) => (&buffer[..at], at + 1, true),
            None => (buffer, buffer.len(), false),
        };
        if dropped > 0 || line.len() + part.len() > max {
            dropped += std::mem::take(&mut line).len() + part.len();
        } else {
            line.extend_from_slice(part);
        }
        reader.consume(used);
        if ended {
            break;
        }
    }
    if dropped > 0 {
        return Some(Ok(Line::TooLong(dropped)));
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Some(Ok(Line::Bytes(line)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::Effect;

    fn lines(input: &[u8], max: usize) -> Vec<Line> {
        // A small buffer, so lines span several reads.
        let mut reader = io::BufReader::with_capacity(7, input);
        std::iter::from_fn(|| next_line(&mut reader, max))
            .map(Result::unwrap)
            .collect()
    }

    fn sent(out: &mut Outbox) -> Vec<Message> {
        out.drain()
            .into_iter()
            .map(|e| match e {
                Effect::Send(m) => m,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn any_bytes_are_lines_and_long_ones_are_dropped_whole() {
        let mut input = b"\xff\xfe\x00\r\n".to_vec();
        input.extend([b'a'; 40]);
        input.extend(b"\nshort\nunended");
        assert_eq!(
            lines(&input, 20),
            [
                Line::Bytes(b"\xff\xfe\x00".to_vec()),
                Line::TooLong(40),
                Line::Bytes(b"short".to_vec()),
                Line::Bytes(b"unended".to_vec()),
            ]
        );
        // Exactly the limit is still a line.
        assert_eq!(lines(&[b'b'; 20], 20), [Line::Bytes(vec![b'b'; 20])]);
        assert_eq!(lines(&[b'b'; 21], 20), [Line::TooLong(21)]);
    }

    #[test]
    fn malformed_lines_are_answered_when_their_sender_can_be_read() {
        let mut out = Outbox::new("n1");
        let mut next = |line: &[u8]| take_message(parse(&Line::Bytes(line.to_vec())), &mut out);

        // Not UTF-8, not JSON: nobody to answer.
        assert_eq!(next(b"\xff\xfe garbage"), None);
        assert_eq!(next(b"   "), None);
        // Invalid UTF-8 inside a string: the sender and msg_id are still readable.
        assert_eq!(
            next(b"{\"src\":\"c1\",\"dest\":\"n1\",\"body\":{\"type\":\"read\",\"msg_id\":7,\"key\":\"\xff\"}}"),
            None
        );
        // JSON but not a message (no dest, no type).
        assert_eq!(next(br#"{"src":"c2","body":{"msg_id":8}}"#), None);
        // A malformed reply is never answered.
        assert_eq!(
            next(br#"{"src":"n2","body":{"type":"error","msg_id":3,"in_reply_to":9,"code":"x"}}"#),
            None
        );
        let good = br#"{"src":"c1","dest":"n1","body":{"type":"read","msg_id":9,"key":"k"}}"#;
        let msg = next(good).expect("a message");
        assert_eq!((msg.src.as_str(), msg.body.msg_id), ("c1", Some(9)));

        let answers = sent(&mut out);
        let summary: Vec<_> = answers
            .iter()
            .map(|m| (m.dest.as_str(), m.body.in_reply_to, m.body.error_code()))
            .collect();
        assert_eq!(
            summary,
            [
                ("c1", Some(7), Some(ErrorCode::MalformedRequest)),
                ("c2", Some(8), Some(ErrorCode::MalformedRequest)),
            ]
        );
        assert!(
            answers[0].body.str("text").unwrap().contains("UTF-8"),
            "{answers:?}"
        );
    }

    #[test]
    fn writes_in_a_row_to_one_file_are_joined_and_the_order_between_files_kept() {
        let persist = |name: &str, bytes: &[u8]| Effect::Persist {
            name: name.into(),
            bytes: bytes.to_vec(),
        };
        let append = |name: &str, bytes: &[u8]| Effect::Append {
            name: name.into(),
            bytes: bytes.to_vec(),
        };
        let writes = vec![
            append("log", b"a\n"),
            append("log", b"b\n"),
            persist("meta", b"1"),
            persist("meta", b"2"),
            append("log", b"c\n"),
            persist("snap", b"s"),
            persist("log", b"h\n"),
            append("log", b"d\n"),
            append("other", b"x"),
            append("log", b"e\n"),
        ];
        assert_eq!(
            coalesce(writes),
            vec![
                append("log", b"a\nb\n"),
                persist("meta", b"2"),
                append("log", b"c\n"),
                persist("snap", b"s"),
                persist("log", b"h\nd\n"),
                append("other", b"x"),
                append("log", b"e\n"),
            ]
        );
    }

    #[test]
    fn an_overlong_line_is_malformed() {
        let input = parse(&Line::TooLong(MAX_LINE_BYTES + 1));
        let Input::Malformed { error, reply_to } = input else {
            panic!("{input:?}")
        };
        assert!(error.contains("longer than the limit"), "{error}");
        assert_eq!(reply_to, None);
    }
}
