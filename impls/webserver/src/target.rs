//! From a request target to a path relative to the document root, refusing every
//! form of escape we can see lexically. The kernel check at open time
//! (`RESOLVE_BENEATH`, see `site.rs`) backs this up for symlinks.

use crate::status::Status;

/// A decoded request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Relative to the root, never empty, without a leading `/`; `index.html` is
    /// appended to a directory path ending in `/`.
    pub path: Vec<u8>,
    /// The raw query string (after `?`), handed to CGI programs as `QUERY_STRING`.
    pub query: String,
    /// The seed's rule: a URI naming `cgi` is a program to run.
    pub cgi: bool,
}

/// Decodes `raw`; `allow_dotdot` exists only for the known-bad variant that
/// follows `..`.
pub fn resolve(raw: &str, allow_dotdot: bool) -> Result<Target, Status> {
    if !raw.starts_with('/') {
        // Absolute-form (`http://host/...`) and `*` are not served.
        return Err(Status::BAD_REQUEST);
    }
    let (path_raw, query) = match raw.split_once('?') {
        Some((p, q)) => (p, q.to_string()),
        None => (raw, String::new()),
    };
    let decoded = percent_decode(path_raw.as_bytes()).ok_or(Status::BAD_REQUEST)?;
    if decoded.contains(&0) {
        return Err(Status::BAD_REQUEST);
    }
    if !allow_dotdot
        && (decoded.contains(&b'\\') || decoded.split(|&b| b == b'/').any(|seg| seg == b".."))
    {
        return Err(Status::FORBIDDEN);
    }
    let cgi = decoded.windows(3).any(|w| w == b"cgi");
    let start = decoded
        .iter()
        .position(|&b| b != b'/')
        .unwrap_or(decoded.len());
    let mut path = decoded[start..].to_vec();
    if path.is_empty() || path.ends_with(b"/") {
        path.extend_from_slice(b"index.html");
    }
    Ok(Target { path, query, cgi })
}

/// `%XX` to the byte it names; `None` for a `%` not followed by two hex digits.
pub fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hi = hex(*s.get(i + 1)?)?;
            let lo = hex(*s.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The inverse of [`percent_decode`] for a path: every byte but the unreserved ones
/// (RFC 3986) and `/` becomes `%XX`, so the result holds no quote, angle bracket,
/// space, backslash or control byte and decodes back to `path`.
pub fn percent_encode_path(path: &[u8]) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Text safe inside an HTML element or a quoted attribute.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(raw: &str) -> String {
        String::from_utf8(resolve(raw, false).unwrap().path).unwrap()
    }

    #[test]
    fn index_for_directories_and_decoding() {
        assert_eq!(path("/"), "index.html");
        assert_eq!(path("/docs/"), "docs/index.html");
        assert_eq!(path("/a%20b.txt"), "a b.txt");
        assert_eq!(path("//etc/passwd"), "etc/passwd");
        // Decoded once only: a double-encoded dot-dot is a literal file name.
        assert_eq!(path("/%252e%252e/x"), "%2e%2e/x");
    }

    #[test]
    fn dotdot_in_every_form_is_forbidden() {
        for raw in [
            "/../x",
            "/a/../../x",
            "/%2e%2e/x",
            "/%2E%2E%2Fx",
            "/..%2fx",
            "/..%5cx",
            "/..\\x",
            "/a/..",
            "/.%2e/x",
        ] {
            assert_eq!(resolve(raw, false), Err(Status::FORBIDDEN), "{raw}");
        }
        assert!(resolve("/../x", true).is_ok());
    }

    #[test]
    fn bad_targets() {
        assert_eq!(resolve("http://h/x", false), Err(Status::BAD_REQUEST));
        assert_eq!(resolve("/%zz", false), Err(Status::BAD_REQUEST));
        assert_eq!(resolve("/%4", false), Err(Status::BAD_REQUEST));
        assert_eq!(resolve("/a%00b", false), Err(Status::BAD_REQUEST));
    }

    #[test]
    fn encoding_round_trips_and_leaves_nothing_active() {
        for raw in [
            &b"docs"[..],
            b"a b/c",
            b"q\"><b>x<b>",
            b"%2e",
            b"\xff\x01/\\",
        ] {
            let enc = percent_encode_path(raw);
            let unsafe_byte = |b: u8| b"\"<>'\\ ".contains(&b) || !b.is_ascii_graphic();
            assert!(!enc.bytes().any(unsafe_byte), "{enc}");
            assert_eq!(percent_decode(enc.as_bytes()).unwrap(), raw);
        }
        assert_eq!(percent_encode_path(b"a b"), "a%20b");
        assert_eq!(
            html_escape("x\"><b a='1'>&"),
            "x&quot;&gt;&lt;b a=&#39;1&#39;&gt;&amp;"
        );
    }

    #[test]
    fn cgi_and_query() {
        let t = resolve("/spin.cgi?1.5", false).unwrap();
        assert!(t.cgi);
        assert_eq!(t.query, "1.5");
        assert!(!resolve("/a.html?cgi", false).unwrap().cgi);
    }
}
