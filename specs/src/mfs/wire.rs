//! The MFS wire format, version 1: one request per UDP datagram, one reply per request.
//!
//! All integers are little-endian. Every datagram starts with a 20-byte header:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | magic `"MF"` (0x4D 0x46) |
//! | 2 | 1 | protocol version, 1 |
//! | 3 | 1 | operation code; a reply carries the request's code with bit 7 set |
//! | 4 | 8 | client id: chosen at random by each client, the same for all its requests |
//! | 12 | 8 | sequence number: 1, 2, 3... per client; a retry reuses it |
//!
//! Request bodies, after the header (a name is a length byte then that many bytes, no
//! NUL; a datagram with bytes left over is malformed):
//!
//! | code | operation | body |
//! |---|---|---|
//! | 1 | Lookup | `pinum: i32`, name |
//! | 2 | Stat | `inum: i32` |
//! | 3 | Write | `inum: i32`, `block: i32`, 4096 bytes of data |
//! | 4 | Read | `inum: i32`, `block: i32` |
//! | 5 | Creat | `pinum: i32`, `type: i32` (0 directory, 1 regular file), name |
//! | 6 | Unlink | `pinum: i32`, name |
//! | 7 | Shutdown | empty |
//!
//! A reply is the header (same client id and sequence number) then `status: i32`:
//! `>= 0` success (the inode number for Lookup, 0 otherwise), -1 the operation failed
//! (the `mfs.h` failure), -2 the request was malformed, -3 the version is not
//! supported. On success Stat adds `type: i32, size: i32` and Read adds the 4096-byte
//! block. A datagram too short for a header or without the magic gets no reply.
//!
//! Example: `Stat { inum: 0 }` from client 7, sequence 1, is
//! `4D 46 01 02 | 07 00.. | 01 00.. | 00 00 00 00`, and the reply for an empty root is
//! `4D 46 01 82 | 07 00.. | 01 00.. | 00 00 00 00 | 00 00 00 00 | 00 10 00 00`
//! (status 0, directory, size 4096).
//!
//! Idempotence: a server executes each (client id, sequence number) at most once and
//! answers a retry with the reply it already sent, so a duplicated or delayed request
//! never applies twice; a client ignores replies whose ids are not those of the request
//! it is waiting for.

use super::BLOCK_SIZE;
use std::fmt;

pub const MAGIC: [u8; 2] = *b"MF";
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 20;
/// Largest datagram either side sends (a Write request).
pub const MAX_DATAGRAM: usize = HEADER_LEN + 8 + BLOCK_SIZE;

pub const OP_LOOKUP: u8 = 1;
pub const OP_STAT: u8 = 2;
pub const OP_WRITE: u8 = 3;
pub const OP_READ: u8 = 4;
pub const OP_CREAT: u8 = 5;
pub const OP_UNLINK: u8 = 6;
pub const OP_SHUTDOWN: u8 = 7;
/// Set in the operation code of a reply.
pub const REPLY_BIT: u8 = 0x80;

pub const STATUS_FAILED: i32 = -1;
pub const STATUS_MALFORMED: i32 = -2;
pub const STATUS_BAD_VERSION: i32 = -3;

/// A block of file or directory data.
pub type Block = Box<[u8; BLOCK_SIZE]>;

/// A zeroed block.
pub fn zero_block() -> Block {
    Box::new([0u8; BLOCK_SIZE])
}

/// What a client asks for. Names are raw bytes, as in C.
#[derive(Clone, PartialEq, Eq)]
pub enum Request {
    Lookup {
        pinum: i32,
        name: Vec<u8>,
    },
    Stat {
        inum: i32,
    },
    Write {
        inum: i32,
        block: i32,
        data: Block,
    },
    Read {
        inum: i32,
        block: i32,
    },
    Creat {
        pinum: i32,
        kind: i32,
        name: Vec<u8>,
    },
    Unlink {
        pinum: i32,
        name: Vec<u8>,
    },
    Shutdown,
}

impl Request {
    pub fn op(&self) -> u8 {
        match self {
            Request::Lookup { .. } => OP_LOOKUP,
            Request::Stat { .. } => OP_STAT,
            Request::Write { .. } => OP_WRITE,
            Request::Read { .. } => OP_READ,
            Request::Creat { .. } => OP_CREAT,
            Request::Unlink { .. } => OP_UNLINK,
            Request::Shutdown => OP_SHUTDOWN,
        }
    }

    /// Whether the request can change the file system (and so must be made durable).
    pub fn mutates(&self) -> bool {
        matches!(
            self,
            Request::Write { .. } | Request::Creat { .. } | Request::Unlink { .. }
        )
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |n: &[u8]| String::from_utf8_lossy(n).into_owned();
        match self {
            Request::Lookup { pinum, name: n } => write!(f, "Lookup({pinum}, {:?})", name(n)),
            Request::Stat { inum } => write!(f, "Stat({inum})"),
            Request::Write { inum, block, data } => {
                write!(f, "Write({inum}, block {block}, {})", describe_block(data))
            }
            Request::Read { inum, block } => write!(f, "Read({inum}, block {block})"),
            Request::Creat {
                pinum,
                kind,
                name: n,
            } => write!(f, "Creat({pinum}, type {kind}, {:?})", name(n)),
            Request::Unlink { pinum, name: n } => write!(f, "Unlink({pinum}, {:?})", name(n)),
            Request::Shutdown => write!(f, "Shutdown"),
        }
    }
}

/// A block in a line: its first bytes and a checksum-like digest, enough to tell two
/// blocks apart in a failure message.
pub fn describe_block(data: &[u8; BLOCK_SIZE]) -> String {
    let digest = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{:02x?}.. fnv {digest:016x}", &data[..4])
}

/// What the server answered.
#[derive(Clone, PartialEq, Eq)]
pub enum Reply {
    /// Success: the inode number for Lookup, 0 for the other operations.
    Ok(i32),
    /// Stat's success.
    Stat { kind: i32, size: i32 },
    /// Read's success.
    Data(Block),
    /// The operation failed (-1 in `mfs.h`).
    Failed,
    /// The request could not be parsed.
    Malformed,
    /// The request's protocol version is not supported.
    BadVersion,
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Ok(n) => write!(f, "Ok({n})"),
            Reply::Stat { kind, size } => write!(f, "Stat(type {kind}, size {size})"),
            Reply::Data(d) => write!(f, "Data({})", describe_block(d)),
            Reply::Failed => write!(f, "Failed(-1)"),
            Reply::Malformed => write!(f, "Malformed(-2)"),
            Reply::BadVersion => write!(f, "BadVersion(-3)"),
        }
    }
}

impl Reply {
    /// The `status` field: what the `mfs.h` function returns.
    pub fn status(&self) -> i32 {
        match self {
            Reply::Ok(n) => *n,
            Reply::Stat { .. } | Reply::Data(_) => 0,
            Reply::Failed => STATUS_FAILED,
            Reply::Malformed => STATUS_MALFORMED,
            Reply::BadVersion => STATUS_BAD_VERSION,
        }
    }
}

/// The ids in a datagram's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    pub version: u8,
    pub op: u8,
    pub client: u64,
    pub seq: u64,
}

/// Why a datagram could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Too short for a header, or not our magic: not an MFS datagram at all, no reply.
    NotMfs(String),
    /// The header is fine but the version is not ours: reply [`Reply::BadVersion`].
    BadVersion(Header),
    /// The header is fine but the rest is not: reply [`Reply::Malformed`].
    Malformed(Header, String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::NotMfs(why) => write!(f, "not an MFS datagram: {why}"),
            DecodeError::BadVersion(h) => write!(f, "unsupported protocol version {}", h.version),
            DecodeError::Malformed(h, why) => {
                write!(f, "malformed request (op {}, seq {}): {why}", h.op, h.seq)
            }
        }
    }
}

impl std::error::Error for DecodeError {}

fn put_header(out: &mut Vec<u8>, op: u8, client: u64, seq: u64) {
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(op);
    out.extend_from_slice(&client.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
}

fn put_name(out: &mut Vec<u8>, name: &[u8]) {
    // Names longer than a length byte can say are cut to 255 bytes, which the server
    // still rejects as too long: the failure is the server's to report.
    let len = name.len().min(255);
    out.push(len as u8);
    out.extend_from_slice(&name[..len]);
}

pub fn encode_request(client: u64, seq: u64, request: &Request) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAX_DATAGRAM);
    put_header(&mut out, request.op(), client, seq);
    match request {
        Request::Lookup { pinum, name } | Request::Unlink { pinum, name } => {
            out.extend_from_slice(&pinum.to_le_bytes());
            put_name(&mut out, name);
        }
        Request::Stat { inum } => out.extend_from_slice(&inum.to_le_bytes()),
        Request::Write { inum, block, data } => {
            out.extend_from_slice(&inum.to_le_bytes());
            out.extend_from_slice(&block.to_le_bytes());
            out.extend_from_slice(&data[..]);
        }
        Request::Read { inum, block } => {
            out.extend_from_slice(&inum.to_le_bytes());
            out.extend_from_slice(&block.to_le_bytes());
        }
        Request::Creat { pinum, kind, name } => {
            out.extend_from_slice(&pinum.to_le_bytes());
            out.extend_from_slice(&kind.to_le_bytes());
            put_name(&mut out, name);
        }
        Request::Shutdown => {}
    }
    out
}

/// Reads the header of any MFS datagram.
pub fn decode_header(datagram: &[u8]) -> Result<Header, DecodeError> {
    if datagram.len() < HEADER_LEN {
        return Err(DecodeError::NotMfs(format!(
            "{} bytes, shorter than the {HEADER_LEN}-byte header",
            datagram.len()
        )));
    }
    if datagram[..2] != MAGIC {
        return Err(DecodeError::NotMfs(format!(
            "magic {:02x?} is not \"MF\"",
            &datagram[..2]
        )));
    }
    Ok(Header {
        version: datagram[2],
        op: datagram[3],
        client: u64::from_le_bytes(datagram[4..12].try_into().unwrap()),
        seq: u64::from_le_bytes(datagram[12..20].try_into().unwrap()),
    })
}

/// A cursor over a body that reports what was missing and where.
struct Body<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Body<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.bytes.len() - self.at < n {
            return Err(format!(
                "body ends at byte {} but {what} needs {n} bytes from byte {}",
                HEADER_LEN + self.bytes.len(),
                HEADER_LEN + self.at
            ));
        }
        let s = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    fn i32(&mut self, what: &str) -> Result<i32, String> {
        Ok(i32::from_le_bytes(self.take(4, what)?.try_into().unwrap()))
    }

    fn name(&mut self) -> Result<Vec<u8>, String> {
        let len = self.take(1, "the name length")?[0] as usize;
        Ok(self.take(len, "the name")?.to_vec())
    }

    fn block(&mut self) -> Result<Block, String> {
        let mut block = zero_block();
        block.copy_from_slice(self.take(BLOCK_SIZE, "the 4096-byte block")?);
        Ok(block)
    }

    fn finish(self) -> Result<(), String> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(format!(
                "{} unexpected bytes after byte {}",
                self.bytes.len() - self.at,
                HEADER_LEN + self.at
            ))
        }
    }
}

/// Checks the header and version, then reads the whole body with `parse`; a body error
/// becomes `Malformed` with the header, so a reply can still name the request.
fn decode_body<T>(
    datagram: &[u8],
    parse: impl FnOnce(&Header, &mut Body) -> Result<T, String>,
) -> Result<(Header, T), DecodeError> {
    let header = decode_header(datagram)?;
    if header.version != VERSION {
        return Err(DecodeError::BadVersion(header));
    }
    let mut body = Body {
        bytes: &datagram[HEADER_LEN..],
        at: 0,
    };
    // Nothing may follow what `parse` read.
    match parse(&header, &mut body).and_then(|parsed| body.finish().map(|()| parsed)) {
        Ok(parsed) => Ok((header, parsed)),
        Err(why) => Err(DecodeError::Malformed(header, why)),
    }
}

pub fn decode_request(datagram: &[u8]) -> Result<(Header, Request), DecodeError> {
    decode_body(datagram, |header, body| {
        let request = match header.op {
            OP_LOOKUP => Request::Lookup {
                pinum: body.i32("pinum")?,
                name: body.name()?,
            },
            OP_STAT => Request::Stat {
                inum: body.i32("inum")?,
            },
            OP_WRITE => Request::Write {
                inum: body.i32("inum")?,
                block: body.i32("block")?,
                data: body.block()?,
            },
            OP_READ => Request::Read {
                inum: body.i32("inum")?,
                block: body.i32("block")?,
            },
            OP_CREAT => Request::Creat {
                pinum: body.i32("pinum")?,
                kind: body.i32("type")?,
                name: body.name()?,
            },
            OP_UNLINK => Request::Unlink {
                pinum: body.i32("pinum")?,
                name: body.name()?,
            },
            OP_SHUTDOWN => Request::Shutdown,
            other => return Err(format!("unknown operation code {other}")),
        };
        Ok(request)
    })
}

/// Encodes the reply to the request with header `to`.
pub fn encode_reply(to: &Header, reply: &Reply) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 4 + BLOCK_SIZE);
    put_header(&mut out, to.op | REPLY_BIT, to.client, to.seq);
    out.extend_from_slice(&reply.status().to_le_bytes());
    match reply {
        Reply::Stat { kind, size } => {
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&size.to_le_bytes());
        }
        Reply::Data(block) => out.extend_from_slice(&block[..]),
        _ => {}
    }
    out
}

/// Decodes a reply. The header says which request it answers; the caller checks that
/// it is the one it is waiting for.
pub fn decode_reply(datagram: &[u8]) -> Result<(Header, Reply), DecodeError> {
    decode_body(datagram, |header, body| {
        if header.op & REPLY_BIT == 0 {
            return Err("operation code lacks the reply bit".to_string());
        }
        let status = body.i32("status")?;
        let reply = match status {
            STATUS_FAILED => Reply::Failed,
            STATUS_MALFORMED => Reply::Malformed,
            STATUS_BAD_VERSION => Reply::BadVersion,
            s if s < 0 => return Err(format!("unknown status {s}")),
            s => match header.op & !REPLY_BIT {
                OP_STAT => Reply::Stat {
                    kind: body.i32("type")?,
                    size: body.i32("size")?,
                },
                OP_READ => Reply::Data(body.block()?),
                _ => Reply::Ok(s),
            },
        };
        Ok(reply)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requests() -> Vec<Request> {
        let mut data = zero_block();
        data[0] = 7;
        data[4095] = 9;
        vec![
            Request::Lookup {
                pinum: 0,
                name: b"a".to_vec(),
            },
            Request::Stat { inum: -5 },
            Request::Write {
                inum: 3,
                block: 13,
                data,
            },
            Request::Read { inum: 3, block: 2 },
            Request::Creat {
                pinum: 1,
                kind: 1,
                name: vec![b'x'; 28],
            },
            Request::Unlink {
                pinum: 1,
                name: Vec::new(),
            },
            Request::Shutdown,
        ]
    }

    #[test]
    fn requests_round_trip() {
        for (i, r) in requests().into_iter().enumerate() {
            let bytes = encode_request(42, i as u64, &r);
            let (h, back) = decode_request(&bytes).unwrap();
            assert_eq!((h.client, h.seq, h.op), (42, i as u64, r.op()));
            assert_eq!(back, r);
        }
    }

    #[test]
    fn replies_round_trip() {
        for (op, reply) in [
            (OP_LOOKUP, Reply::Ok(17)),
            (
                OP_STAT,
                Reply::Stat {
                    kind: 0,
                    size: 4096,
                },
            ),
            (OP_READ, Reply::Data(zero_block())),
            (OP_WRITE, Reply::Failed),
            (OP_CREAT, Reply::Malformed),
            (9, Reply::BadVersion),
        ] {
            let h = Header {
                version: VERSION,
                op,
                client: 1,
                seq: 2,
            };
            let (back_h, back) = decode_reply(&encode_reply(&h, &reply)).unwrap();
            assert_eq!(back_h.op, op | REPLY_BIT);
            assert_eq!(back, reply);
        }
    }

    #[test]
    fn stat_example_matches_the_doc() {
        let bytes = encode_request(7, 1, &Request::Stat { inum: 0 });
        assert_eq!(&bytes[..4], &[0x4D, 0x46, 1, 2]);
        assert_eq!(bytes.len(), 24);
    }

    #[test]
    fn every_truncation_is_malformed_not_a_panic() {
        for r in requests() {
            let bytes = encode_request(1, 1, &r);
            for cut in 0..bytes.len() {
                match decode_request(&bytes[..cut]) {
                    Err(DecodeError::NotMfs(_)) => assert!(cut < HEADER_LEN),
                    Err(DecodeError::Malformed(..)) => assert!(cut >= HEADER_LEN),
                    other => panic!("{r:?} cut at {cut}: {other:?}"),
                }
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(matches!(
                decode_request(&longer),
                Err(DecodeError::Malformed(..))
            ));
        }
    }

    #[test]
    fn wrong_version_and_unknown_op_are_reported() {
        let mut bytes = encode_request(1, 1, &Request::Shutdown);
        bytes[2] = 2;
        assert!(matches!(
            decode_request(&bytes),
            Err(DecodeError::BadVersion(_))
        ));
        bytes[2] = VERSION;
        bytes[3] = 99;
        let err = decode_request(&bytes).unwrap_err();
        assert!(
            err.to_string().contains("unknown operation code 99"),
            "{err}"
        );
    }
}
