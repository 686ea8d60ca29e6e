//! Compact JSON text, byte for byte what `serde_json::to_string` writes, for
//! [`Value`]s and the node protocol's messages.
//!
//! serde_json looks every byte of a string up in its escape table, which makes a
//! long string cost about a nanosecond a byte; a 128 KiB value crosses the harness
//! and a node several times per message. Here a string is checked 32 bytes at a time
//! and the runs that need no escape are copied whole, several times faster, with the
//! same escapes: `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t` and `\u00xx` for the other
//! control characters; nothing else (not `/`, not non-ASCII) is escaped.

use std::fmt::Write;

use serde_json::Value;

/// `value` as compact JSON.
pub fn to_string(value: &Value) -> String {
    let mut out = String::with_capacity(128);
    push_value(&mut out, value);
    out
}

/// Appends `value` as compact JSON.
pub fn push_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        // serde_json writes a number exactly as it displays it.
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => push_u64(out, u),
            (None, Some(i)) => {
                out.push('-');
                push_u64(out, i.unsigned_abs());
            }
            _ => {
                let _ = write!(out, "{n}");
            }
        },
        Value::String(s) => push_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_str(out, key);
                out.push(':');
                push_value(out, item);
            }
            out.push('}');
        }
    }
}

/// Appends `s` as a JSON string.
pub fn push_str(out: &mut String, s: &str) {
    const BLOCK: usize = 32;
    // Room for the quotes and what usually follows (a brace or two, the next
    // field's name), so a long string is not copied again by a later push.
    out.reserve(s.len() + 64);
    out.push('"');
    let bytes = s.as_bytes();
    // Start of the run not yet copied. Every escaped byte is ASCII, so the run's
    // ends are always character boundaries.
    let mut start = 0;
    let mut escape_from = |out: &mut String, from: usize, to: usize| {
        for (i, &b) in bytes[from..to].iter().enumerate() {
            if needs_escape(b) {
                let at = from + i;
                out.push_str(&s[start..at]);
                push_escape(out, b);
                start = at + 1;
            }
        }
    };
    let blocks = bytes.chunks_exact(BLOCK);
    let tail = blocks.remainder().len();
    for (n, block) in blocks.enumerate() {
        // No early exit, so the compiler checks the block with vector instructions.
        if block.iter().fold(false, |any, &b| any | needs_escape(b)) {
            escape_from(out, n * BLOCK, (n + 1) * BLOCK);
        }
    }
    escape_from(out, bytes.len() - tail, bytes.len());
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends `n` in decimal.
pub fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[at..]).expect("ASCII digits"));
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

fn push_escape(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match b {
        b'"' => out.push_str("\\\""),
        b'\\' => out.push_str("\\\\"),
        0x08 => out.push_str("\\b"),
        0x0c => out.push_str("\\f"),
        b'\n' => out.push_str("\\n"),
        b'\r' => out.push_str("\\r"),
        b'\t' => out.push_str("\\t"),
        _ => {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn same_as_serde_json(value: &Value) {
        assert_eq!(to_string(value), serde_json::to_string(value).unwrap());
    }

    #[test]
    fn every_ascii_character_is_escaped_as_serde_json_escapes_it() {
        for b in 0u8..0x80 {
            let c = char::from(b);
            same_as_serde_json(&Value::String(c.to_string()));
            // Inside runs, at block edges and in a block that needs nothing else.
            for len in [1, 31, 32, 33, 64, 100] {
                for at in [0, len / 2, len - 1] {
                    let mut s: Vec<char> = std::iter::repeat_n('a', len).collect();
                    s[at] = c;
                    same_as_serde_json(&Value::String(s.into_iter().collect()));
                }
            }
        }
    }

    #[test]
    fn long_and_mixed_strings_match_serde_json() {
        let mut s = String::new();
        // A deterministic mix of plain runs, escapes and multi-byte characters.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let c = match x % 16 {
                0 => '"',
                1 => '\\',
                2 => char::from((x >> 8) as u8 % 0x20),
                3 => 'é',
                4 => '😀',
                5 => '\u{7f}',
                _ => char::from(b'a' + (x >> 8) as u8 % 26),
            };
            s.push(c);
            if s.len() % 61 == 0 {
                same_as_serde_json(&Value::String(s.clone()));
            }
        }
        same_as_serde_json(&Value::String(s));
        same_as_serde_json(&Value::String("a".repeat(1 << 17)));
    }

    #[test]
    fn values_match_serde_json() {
        same_as_serde_json(&json!(null));
        same_as_serde_json(&json!({
            "type": "append_ok", "in_reply_to": 3, "msg_id": 18446744073709551615u64,
            "neg": -42, "float": 0.1, "big": 1e300, "small": -2.5e-8, "t": true, "f": false,
            "list": [1, "two", null, [], {}], "nested": {"z": 1, "a": {"\n": "\u{1}"}},
            "": "empty key"
        }));
    }
}
