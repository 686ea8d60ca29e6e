//! The command line: defaults and refusal of bad arguments.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::support::{docroot, read_to_close, Response, Subject};
use crate::suite::{fail, property, Context};

/// No options: serves the working directory on port 10000 with one worker.
pub(super) fn defaults(cx: &mut Context) {
    let dir = cx.dir().to_path_buf();
    let root = docroot(&dir);
    assert!(
        TcpStream::connect("127.0.0.1:10000").is_err(),
        "port 10000 is already in use on this machine; the default-port test needs it"
    );
    let subject = Subject::of(cx);
    let mut cmd = subject.run_args(&[], &root);
    cmd.stdout(std::process::Stdio::null())
        .stderr(subject.log("server-defaults.log"));
    let mut process = crate::Process::spawn("wserver with no options", &mut cmd).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        if let Ok(s) = TcpStream::connect("127.0.0.1:10000") {
            break s;
        }
        if let Some(status) = process.try_wait().unwrap() {
            fail(
                property::PROGRESS,
                format!("no progress: with no options it exited with {status}"),
            );
        }
        if Instant::now() >= deadline {
            fail(
                property::PROGRESS,
                "no progress: with no options nothing listens on the default port 10000 \
                 within 10 s",
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    stream
        .write_all(b"GET /docs/index.html HTTP/1.0\r\n\r\n")
        .unwrap();
    let response = Response::parse(&read_to_close(&mut stream));
    assert_eq!(response.status, 200);
    assert_eq!(
        response.text(),
        "docs index\n",
        "the default root is the working directory"
    );
    let status = fs::read_to_string(format!("/proc/{}/status", process.pid())).unwrap();
    assert!(
        status.contains("Threads:\t2\n"),
        "default is one worker (plus the master): {}",
        status
            .lines()
            .find(|l| l.starts_with("Threads"))
            .unwrap_or("")
    );
}

/// Non-positive threads or buffers, an unknown policy, junk numbers: a usage
/// message and a non-zero exit, never a running server.
pub(super) fn rejects_bad_arguments(cx: &mut Context) {
    let dir = cx.dir().to_path_buf();
    let root = docroot(&dir);
    let subject = Subject::of(cx);
    let cases: [&[&str]; 9] = [
        &["-t", "0"],
        &["-t", "-2"],
        &["-b", "0"],
        &["-b", "-1"],
        &["-s", "LIFO"],
        &["-t", "many"],
        &["-b", "1x"],
        &["-p", "notaport"],
        &["-s"],
    ];
    for args in cases {
        let mut cmd = subject.run_args(args, &root);
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut process = crate::Process::spawn(format!("wserver {args:?}"), &mut cmd).unwrap();
        let status = process
            .wait_timeout(Duration::from_secs(10))
            .unwrap()
            .unwrap_or_else(|| panic!("wserver {args:?} kept running instead of refusing"));
        let mut text = String::new();
        let child = process.child_mut();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        if status.success() && text.trim().is_empty() {
            fail(
                property::PROGRESS,
                format!("no progress: wserver {args:?} did nothing: it exited 0 without a word"),
            );
        }
        assert!(!status.success(), "wserver {args:?} exited 0");
        assert!(
            text.to_lowercase().contains("usage"),
            "wserver {args:?} printed no usage message: {text:?}"
        );
    }
}
