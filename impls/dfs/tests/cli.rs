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

/// An image of three single-record batches (root, then two Creats), its checkpoint
/// region covering only the root, as after a crash before the next checkpoint write.
fn image_with_two_batches() -> (Vec<u8>, usize) {
    use mfs::core::Fs;
    use specs::mfs::wire::Request;
    let mut fs = Fs::fresh();
    let mut image = vec![0u8; mfs::format::CR_SIZE];
    image.extend_from_slice(&fs.take_pending().unwrap().1);
    image[..mfs::format::CR_SIZE].copy_from_slice(&fs.checkpoint());
    let mut second = 0;
    for name in ["a", "b"] {
        let creat = Request::Creat {
            pinum: 0,
            kind: 1,
            name: name.as_bytes().to_vec(),
        };
        fs.apply(&image, &creat);
        second = image.len();
        image.extend_from_slice(&fs.take_pending().unwrap().1);
    }
    (image, second)
}

#[test]
fn server_and_mfsck_agree_on_torn_and_damaged_images() {
    use std::io::{BufRead, BufReader};
    let (image, last) = image_with_two_batches();
    // Torn: the last batch's write only half done. mfsck: consistent, with a note;
    // the server boots and says what it cut.
    let (_dir, torn) = temp_file("torn.img", &image[..last + 100]);
    let (code, text) = run(FSCK, &[torn.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("boot cuts them"), "{text}");
    let mut server = Command::new(SERVER)
        .args(["0", torn.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(line.contains("100 torn byte(s) cut"), "{line}");
    // Damaged: the first Creat's record is corrupt, the second (a later batch) whole.
    // mfsck: DAMAGED; the server refuses, names the record, and leaves the file alone.
    let mut damaged = image.clone();
    damaged[last - 50] ^= 0xFF;
    let (_dir, path) = temp_file("damaged.img", &damaged);
    let (code, text) = run(FSCK, &[path.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("damaged, not torn"), "{text}");
    let (code, text) = run(SERVER, &["0", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("mfsck reports it DAMAGED"), "{text}");
    assert!(text.contains("record 2 is damaged, not torn"), "{text}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        damaged,
        "the file was modified"
    );
}
