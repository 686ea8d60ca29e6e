//! The binaries' handling of bad input: a clear message and a non-zero exit, never a
//! panic or a damaged image.

use std::process::Command;

fn run(bin: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(bin).args(args).output().expect("run binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("panicked"), "{bin} panicked: {text}");
    (out.status.code().unwrap_or(-1), text)
}

/// A file with `bytes` in a directory removed when the returned guard drops.
fn temp_file(name: &str, bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

const SERVER: &str = env!("CARGO_BIN_EXE_mfs-server");
const FSCK: &str = env!("CARGO_BIN_EXE_mfsck");

#[test]
fn server_usage_errors_say_what_is_wrong() {
    let (code, text) = run(SERVER, &[]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("usage: mfs-server PORT IMAGE"), "{text}");
    let (code, text) = run(SERVER, &["http", "img"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("port \"http\" is not a number"), "{text}");
}

#[test]
fn server_refuses_a_file_that_is_not_an_image_and_leaves_it_alone() {
    let junk = b"this is somebody's text file, not a file system".repeat(200);
    let (_dir, path) = temp_file("junk.img", &junk);
    let (code, text) = run(SERVER, &["0", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("not a usable MFS image"), "{text}");
    assert!(text.contains("magic"), "{text}");
    assert_eq!(std::fs::read(&path).unwrap(), junk, "the file was modified");
}

#[test]
fn server_refuses_a_truncated_image() {
    let (_dir, path) = temp_file("short.img", b"MFSC");
    let (code, text) = run(SERVER, &["0", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("shorter than its 4096-byte checkpoint region"),
        "{text}"
    );
}

#[test]
fn server_rejects_an_unknown_bug_variant() {
    let out = Command::new(SERVER)
        .args(["0", "/nonexistent/x.img"])
        .env("DFS_BUG", "typo")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("DFS_BUG=\"typo\" is not a known variant"),
        "{text}"
    );
}

#[test]
fn mfsck_reports_damage_and_unreadable_files() {
    let (_dir, path) = temp_file("junk2.img", &[0u8; 5000]);
    let (code, text) = run(FSCK, &[path.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("DAMAGED"), "{text}");
    let (code, text) = run(FSCK, &["/nonexistent/image"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("cannot read /nonexistent/image"), "{text}");
    let (code, _) = run(FSCK, &[]);
    assert_eq!(code, 2);
}
