//! Face 2: the course's chat server (`gossip-chat <id> <n> <port>`) and its proxy
//! (`gossip-proxy`), over TCP on the loopback.
//!
//! What is pure lives here (commands, the log, peer lines, line framing); the
//! binaries in `src/bin/` bind it to sockets and threads. A server talks to the
//! proxy on `<port>`, newline framed (a command may arrive split over several reads or
//! several in one):
//!
//! - `msg <messageID> <message>`: a new chat message; no answer;
//! - `get chatLog`: answered by exactly one line, `chatLog <m1>,<m2>,...` in ascending
//!   messageID order, or `chatLog <empty>` for an empty log;
//! - `crash`: the server exits at once.
//!
//! A messageID is a decimal integer below 2^63; a message is 1 to [`MAX_MESSAGE`]
//! bytes of UTF-8 without commas, line breaks or other control characters (so a log
//! line is unambiguous); one ID is one message (a second `msg` with a known ID is
//! ignored). Anything else is logged on stderr and ignored; a line over
//! [`MAX_LINE`] bytes is dropped whole. Servers talk only to `id-1` and `id+1`, on
//! their peer ports ([`peer_port`]), one JSON object per line
//! (`{"from":"1", ...}` plus the gossip message of `crate::wire`).

use std::collections::BTreeMap;

/// The longest message text.
pub const MAX_MESSAGE: usize = 1024;
/// The longest line a server keeps (a peer's rumor batch included); longer ones are
/// dropped whole.
pub const MAX_LINE: usize = 1 << 20;
/// What `get chatLog` answers for an empty log.
pub const EMPTY_LOG: &str = "<empty>";

/// A command from the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Msg { id: u64, text: String },
    GetChatLog,
    Crash,
}

/// Parses one line from the proxy; `Err` says why it is refused.
pub fn parse_command(line: &str) -> Result<Command, String> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line == "get chatLog" {
        return Ok(Command::GetChatLog);
    }
    if line == "crash" {
        return Ok(Command::Crash);
    }
    let Some(rest) = line.strip_prefix("msg ") else {
        return Err(format!("unknown command {:.80?}", line));
    };
    let (id, text) = rest
        .split_once(' ')
        .ok_or_else(|| format!("msg without a message: {:.80?}", line))?;
    let id = id
        .parse::<u64>()
        .ok()
        .filter(|&i| i < 1 << 63)
        .ok_or_else(|| format!("messageID {:.40?} is not a decimal integer below 2^63", id))?;
    check_message(text)?;
    Ok(Command::Msg {
        id,
        text: text.to_string(),
    })
}

/// A message a log line can carry unambiguously.
pub fn check_message(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("an empty message".into());
    }
    if text.len() > MAX_MESSAGE {
        return Err(format!(
            "a message of {} bytes, over the limit of {MAX_MESSAGE}",
            text.len()
        ));
    }
    if let Some(c) = text.chars().find(|c| *c == ',' || c.is_control()) {
        return Err(format!(
            "a message with {c:?}, which a chat log cannot carry"
        ));
    }
    Ok(())
}

/// The chat log: messages by messageID.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ChatLog {
    messages: BTreeMap<u64, String>,
}

impl ChatLog {
    /// The text a gossip rumor carries for a message.
    pub fn rumor_text(id: u64, text: &str) -> String {
        format!("{id} {text}")
    }

    pub fn contains(&self, id: u64) -> bool {
        self.messages.contains_key(&id)
    }

    /// Adds a message from a rumor's text; false if malformed or its ID is known.
    pub fn add_rumor(&mut self, rumor_text: &str) -> bool {
        let Some((id, text)) = rumor_text.split_once(' ') else {
            return false;
        };
        let Ok(id) = id.parse::<u64>() else {
            return false;
        };
        if check_message(text).is_err() || self.messages.contains_key(&id) {
            return false;
        }
        self.messages.insert(id, text.to_string());
        true
    }

    /// The answer to `get chatLog`, without its newline.
    pub fn line(&self) -> String {
        if self.messages.is_empty() {
            return format!("chatLog {EMPTY_LOG}");
        }
        let texts: Vec<&str> = self.messages.values().map(String::as_str).collect();
        format!("chatLog {}", texts.join(","))
    }
}

/// The neighbours of server `id` of `n`: `id-1` and `id+1` where they exist.
pub fn neighbours(id: u64, n: u64) -> Vec<u64> {
    let mut v = Vec::new();
    if id > 0 && id - 1 < n {
        v.push(id - 1);
    }
    if id + 1 < n {
        v.push(id + 1);
    }
    v
}

/// The port server `id` listens on for its neighbours: the `id`-th entry of
/// `GOSSIP_CHAT_PEERS` (a comma-separated list, which lets tests run clusters side by
/// side), else the course's 20000 + id.
pub fn peer_port(id: u64, peers: Option<&str>) -> Result<u16, String> {
    match peers {
        Some(list) => list
            .split(',')
            .nth(id as usize)
            .and_then(|p| p.trim().parse::<u16>().ok())
            .ok_or_else(|| format!("GOSSIP_CHAT_PEERS={list:?} has no port for server {id}")),
        None => u16::try_from(20_000 + id)
            .ok()
            .filter(|p| *p <= 29_999)
            .ok_or_else(|| format!("server {id} has no peer port in 20000-29999")),
    }
}

/// Splits a byte stream into lines of at most `max` bytes: bytes go in as they
/// arrive, whole lines (without `\n`) come out; a longer line is dropped whole and
/// reported as `Err(length)`.
#[derive(Debug, Default)]
pub struct Lines {
    buf: Vec<u8>,
    dropping: Option<usize>,
    max: usize,
}

impl Lines {
    pub fn new(max: usize) -> Lines {
        Lines {
            max,
            ..Lines::default()
        }
    }

    /// Feeds `bytes`; returns the lines they complete.
    pub fn push(&mut self, mut bytes: &[u8]) -> Vec<Result<Vec<u8>, usize>> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let (part, ended) = match bytes.iter().position(|&b| b == b'\n') {
                Some(at) => (&bytes[..at], true),
                None => (bytes, false),
            };
            bytes = &bytes[(part.len() + usize::from(ended))..];
            match self.dropping.as_mut() {
                Some(n) => *n += part.len(),
                None if self.buf.len() + part.len() > self.max => {
                    self.dropping = Some(self.buf.len() + part.len());
                    self.buf.clear();
                }
                None => self.buf.extend_from_slice(part),
            }
            if ended {
                match self.dropping.take() {
                    Some(n) => out.push(Err(n)),
                    None => out.push(Ok(std::mem::take(&mut self.buf))),
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse_command("msg 12 hello world"),
            Ok(Command::Msg {
                id: 12,
                text: "hello world".into()
            })
        );
        assert_eq!(parse_command("get chatLog\r"), Ok(Command::GetChatLog));
        assert_eq!(parse_command("crash"), Ok(Command::Crash));
        for bad in [
            "msg",
            "msg 12",
            "msg x hi",
            "msg -1 hi",
            "msg 1 a,b",
            "msg 1 tab\there",
            "get chatlog",
            "",
        ] {
            assert!(parse_command(bad).is_err(), "{bad:?}");
        }
        let long = format!("msg 1 {}", "a".repeat(MAX_MESSAGE + 1));
        assert!(parse_command(&long).unwrap_err().contains("over the limit"));
    }

    #[test]
    fn the_log_is_in_message_id_order_with_a_placeholder_when_empty() {
        let mut log = ChatLog::default();
        assert_eq!(log.line(), "chatLog <empty>");
        assert!(log.add_rumor(&ChatLog::rumor_text(10, "ten")));
        assert!(log.add_rumor(&ChatLog::rumor_text(2, "two words")));
        assert!(!log.add_rumor(&ChatLog::rumor_text(2, "again")));
        assert!(!log.add_rumor("nonsense"));
        assert_eq!(log.line(), "chatLog two words,ten");
    }

    #[test]
    fn lines_are_reassembled_and_long_ones_dropped() {
        let mut lines = Lines::new(8);
        assert!(lines.push(b"get ch").is_empty());
        assert_eq!(lines.push(b"atLog\nmsg"), vec![Err(11)]);
        let mut lines = Lines::new(16);
        assert!(lines.push(b"get ch").is_empty());
        assert_eq!(
            lines.push(b"atLog\nmsg 1 a\ncr"),
            vec![Ok(b"get chatLog".to_vec()), Ok(b"msg 1 a".to_vec())]
        );
        assert_eq!(lines.push(b"ash\n"), vec![Ok(b"crash".to_vec())]);
        assert_eq!(lines.push(&[b'x'; 40]), vec![]);
        assert_eq!(lines.push(b"y\nok\n"), vec![Err(41), Ok(b"ok".to_vec())]);
    }

    #[test]
    fn neighbours_and_ports_follow_the_course() {
        assert_eq!(neighbours(0, 3), vec![1]);
        assert_eq!(neighbours(1, 3), vec![0, 2]);
        assert_eq!(neighbours(2, 3), vec![1]);
        assert_eq!(peer_port(4, None), Ok(20_004));
        assert_eq!(peer_port(1, Some("30001, 30002")), Ok(30_002));
        assert!(peer_port(2, Some("30001,30002")).is_err());
    }
}
