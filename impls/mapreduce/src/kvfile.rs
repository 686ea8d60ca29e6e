//! The intermediate file format: one `key<TAB>value` line per pair.
//!
//! The same line shape as Hadoop Streaming, so an intermediate file can be read with
//! `cut` and `sort`. A tab, newline or backslash inside a key or value is escaped as
//! `\t`, `\n` or `\\`, which keeps any key and value exact (word-count keys never need
//! it, so the fast path copies bytes unchanged).

use std::borrow::Cow;

use anyhow::{bail, Context};

fn needs_escape(s: &str) -> bool {
    s.bytes().any(|b| matches!(b, b'\t' | b'\n' | b'\\'))
}

fn push_escaped(out: &mut Vec<u8>, s: &str) {
    if !needs_escape(s) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    for b in s.bytes() {
        match b {
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\\' => out.extend_from_slice(b"\\\\"),
            _ => out.push(b),
        }
    }
}

fn unescape(s: &str) -> anyhow::Result<Cow<'_, str>> {
    if !s.contains('\\') {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            other => bail!("bad escape \\{other:?}"),
        }
    }
    Ok(Cow::Owned(out))
}

/// Appends one pair as a line.
pub fn push(out: &mut Vec<u8>, key: &str, value: &str) {
    push_escaped(out, key);
    out.push(b'\t');
    push_escaped(out, value);
    out.push(b'\n');
}

/// Calls `f` with every pair of a file's text, in order, borrowed from the text
/// unless escapes had to be undone.
pub fn for_each_pair<'a>(
    text: &'a str,
    mut f: impl FnMut(Cow<'a, str>, Cow<'a, str>),
) -> anyhow::Result<()> {
    try_for_each_pair(text, |k, v| {
        f(k, v);
        Ok(())
    })
}

/// [`for_each_pair`] with a callback that can fail, which stops the reading.
pub fn try_for_each_pair<'a>(
    text: &'a str,
    f: impl FnMut(Cow<'a, str>, Cow<'a, str>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    try_for_each_pair_from(text, 1, f)
}

/// [`try_for_each_pair`] for the rest of a file whose first `first_line - 1` lines
/// were read another way, so that errors name the line of the whole file.
pub fn try_for_each_pair_from<'a>(
    text: &'a str,
    first_line: usize,
    mut f: impl FnMut(Cow<'a, str>, Cow<'a, str>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut rest = text;
    let mut n = first_line - 1;
    while !rest.is_empty() {
        n += 1;
        // Byte searches: '\n' and '\t' never occur inside a multi-byte character.
        let end = memchr::memchr(b'\n', rest.as_bytes()).unwrap_or(rest.len());
        let line = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or("");
        let tab = memchr::memchr(b'\t', line.as_bytes())
            .with_context(|| format!("line {n}: no tab in {line:?}"))?;
        f(unescape(&line[..tab])?, unescape(&line[tab + 1..])?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_key_and_value_round_trip() {
        let cases = [
            ("word", "1"),
            ("a\tb", "c\nd"),
            ("back\\slash", ""),
            ("", "x"),
        ];
        let mut buf = Vec::new();
        for (k, v) in cases {
            push(&mut buf, k, v);
        }
        let mut pairs = Vec::new();
        for_each_pair(std::str::from_utf8(&buf).unwrap(), |k, v| {
            pairs.push((k.into_owned(), v.into_owned()))
        })
        .unwrap();
        let expected: Vec<(String, String)> = cases
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(pairs, expected);
    }

    #[test]
    fn a_line_without_a_tab_is_an_error_naming_the_line() {
        let err = for_each_pair("a\t1\nbroken\n", |_, _| {}).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn the_rest_of_a_file_names_lines_of_the_whole_file() {
        let err = try_for_each_pair_from("a\t1\nbroken\n", 7, |_, _| Ok(())).unwrap_err();
        assert!(err.to_string().contains("line 8"), "{err}");
    }
}
