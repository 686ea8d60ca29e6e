//! Parsing a request head: bytes in, a decision out (no sockets), so the rules for
//! malformed, oversized and unsupported requests are tested without a server.

use crate::status::Status;

/// The largest request head (request line plus headers) we accept; past it the
/// client gets 431 rather than making us buffer without bound.
pub const MAX_HEAD: usize = 8 * 1024;
/// More headers than this is 431 too.
pub const MAX_HEADERS: usize = 64;

/// The parts of a request head the server acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The request target exactly as sent (still percent-encoded).
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// The client asked for a persistent connection (`Connection: keep-alive`).
    pub keep_alive: bool,
}

/// What the bytes received so far amount to.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The head is not complete yet; read more.
    Partial,
    /// A GET head of `len` bytes; bytes after it belong to the next request.
    Complete(Head, usize),
    /// The request is refused with this status; the connection is closed after the
    /// response when `close` is set (the byte stream can no longer be trusted).
    Refused(Status, bool),
}

/// Parses the head at the start of `buf`.
///
/// Line ends may be CRLF or a bare LF: the seed's `wclient` ends its lines with LF.
/// Persistence is opt-in with `Connection: keep-alive` for both versions, because the
/// seed's `wclient` sends HTTP/1.1 and reads until the server closes.
pub fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Parsed::Refused(Status::HEADERS_TOO_LARGE, true)
        }
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => {
            return Parsed::Refused(Status::HEADERS_TOO_LARGE, true)
        }
        Err(_) => return Parsed::Refused(Status::BAD_REQUEST, true),
    };
    if len > MAX_HEAD {
        return Parsed::Refused(Status::HEADERS_TOO_LARGE, true);
    }
    let (Some(method), Some(path), Some(minor_version)) = (req.method, req.path, req.version)
    else {
        return Parsed::Refused(Status::BAD_REQUEST, true);
    };
    let mut keep_alive = false;
    let mut has_body = false;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("connection") {
            let value = String::from_utf8_lossy(h.value);
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                } else if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                }
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding")
            || (h.name.eq_ignore_ascii_case("content-length") && h.value.trim_ascii() != b"0")
        {
            has_body = true;
        }
    }
    if method != "GET" {
        // The body of an unsupported request is never read, so the stream is closed.
        return Parsed::Refused(Status::NOT_IMPLEMENTED, true);
    }
    let head = Head {
        target: path.to_string(),
        minor_version,
        // A GET body is not read; closing afterwards keeps it from being taken for
        // the next request.
        keep_alive: keep_alive && !has_body,
    };
    Parsed::Complete(head, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> (Head, usize) {
        match parse(buf) {
            Parsed::Complete(h, n) => (h, n),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wclient_form_with_bare_lf() {
        let req = b"GET /index.html HTTP/1.1\nhost: localhost\n\r\n";
        let (head, len) = complete(req);
        assert_eq!(head.target, "/index.html");
        assert_eq!(head.minor_version, 1);
        assert!(!head.keep_alive);
        assert_eq!(len, req.len());
    }

    #[test]
    fn partial_until_blank_line() {
        assert_eq!(parse(b"GET / HTTP/1.0\r\nHost: x\r\n"), Parsed::Partial);
        assert_eq!(parse(b"GE"), Parsed::Partial);
    }

    #[test]
    fn keep_alive_is_opt_in_and_pipelined_bytes_stay() {
        let req = b"GET /a HTTP/1.1\r\nConnection: Keep-Alive\r\n\r\nGET /b";
        let (head, len) = complete(req);
        assert!(head.keep_alive);
        assert_eq!(&req[len..], b"GET /b");
    }

    #[test]
    fn refusals() {
        assert_eq!(
            parse(b"POST / HTTP/1.0\r\n\r\n"),
            Parsed::Refused(Status::NOT_IMPLEMENTED, true)
        );
        assert_eq!(
            parse(b"GET / HTTP/9.9\r\n\r\n"),
            Parsed::Refused(Status::BAD_REQUEST, true)
        );
        assert_eq!(
            parse(b"\x01\x02 garbage\r\n\r\n"),
            Parsed::Refused(Status::BAD_REQUEST, true)
        );
        let mut big = b"GET /".to_vec();
        big.resize(big.len() + MAX_HEAD, b'a');
        assert_eq!(
            parse(&big),
            Parsed::Refused(Status::HEADERS_TOO_LARGE, true)
        );
        let mut many = b"GET / HTTP/1.0\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend(format!("X-{i}: y\r\n").as_bytes());
        }
        many.extend(b"\r\n");
        assert_eq!(
            parse(&many),
            Parsed::Refused(Status::HEADERS_TOO_LARGE, true)
        );
    }

    #[test]
    fn get_with_body_is_not_kept_alive() {
        let (head, _) =
            complete(b"GET / HTTP/1.1\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\n");
        assert!(!head.keep_alive);
    }
}
