//! The `lincheck` command: verdicts as exit codes, clear errors on bad input.

mod common;

use std::process::Command;

fn lincheck(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lincheck"))
        .args(args)
        .output()
        .expect("run lincheck");
    (
        out.status.code().expect("exited"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn exit_codes_follow_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let ok = write(
        &dir,
        "ok.jsonl",
        r#"{"type":"call","id":1,"client":0,"input":{"f":"write","value":1}}
{"type":"return","id":1,"outcome":"ok"}
{"type":"call","id":2,"client":1,"input":{"f":"read"}}
{"type":"return","id":2,"outcome":"ok","output":{"value":1}}
"#,
    );
    let (code, out, _) = lincheck(&["--model", "register", &ok]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Ok"), "{out}");

    let bad = write(
        &dir,
        "bad.jsonl",
        r#"{"type":"call","id":1,"client":0,"input":{"f":"write","value":1}}
{"type":"return","id":1,"outcome":"ok"}
{"type":"call","id":2,"client":1,"input":{"f":"read"}}
{"type":"return","id":2,"outcome":"ok","output":{"value":2}}
"#,
    );
    let html = dir.path().join("bad.html");
    let (code, out, _) = lincheck(&[
        "--model",
        "register",
        &bad,
        "--html",
        html.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("Illegal") && out.contains("read() -> 2"),
        "{out}"
    );
    assert!(std::fs::read_to_string(&html).unwrap().contains("stuck"));
}

#[test]
fn a_budget_that_runs_out_is_unknown_never_ok() {
    let Some(data) = common::porcupine_data() else {
        return;
    };
    let file = data.join("kv/c50-ok.txt");
    let (code, out, _) = lincheck(&[
        "--model",
        "kv",
        "--no-partition",
        "--timeout",
        "0.2",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("Unknown"), "{out}");
}

#[test]
fn bad_input_is_reported_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        &dir,
        "bad.jsonl",
        "{\"type\":\"call\",\"id\":1,\"client\":0,\"input\":{\"f\":\"read\"}}\n{\"type\":\"return\",\"id\":7,\"outcome\":\"ok\"}\n",
    );
    let (code, _, err) = lincheck(&["--model", "register", &bad]);
    assert_eq!(code, 3);
    assert!(
        err.contains("line 2") && err.contains("never called"),
        "{err}"
    );

    let garbage = write(&dir, "garbage.txt", "hello\n");
    let (code, _, err) = lincheck(&["--model", "kv", &garbage]);
    assert_eq!(code, 3);
    assert!(
        err.contains("line 1") && err.contains("unrecognised"),
        "{err}"
    );

    let (code, _, err) = lincheck(&["--model", "kv", "/nonexistent/history"]);
    assert_eq!(code, 3);
    assert!(err.contains("cannot read"), "{err}");

    let ok = write(&dir, "empty.txt", "");
    let (code, _, err) = lincheck(&["--model", "kv", &ok, "--timeout", "0"]);
    assert_eq!(code, 3);
    assert!(err.contains("--timeout"), "{err}");

    let (code, _, err) = lincheck(&["--model", "queue", &ok]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("queue"), "{err}");
}

/// Exit 2 is Unknown, so no usage error may exit 2 (clap's default) and no argument
/// may make the command panic (101).
#[test]
fn unusable_arguments_exit_3_and_help_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(&dir, "empty.txt", "");
    for (timeout, message) in [
        ("1e300", "out of range"),
        ("1.9e19", "out of range"),
        ("inf", "positive"),
        ("NaN", "positive"),
        ("-1", "positive"),
        ("0", "positive"),
        ("soon", "soon"),
    ] {
        let (code, _, err) = lincheck(&["--model", "kv", &empty, "--timeout", timeout]);
        assert_eq!(code, 3, "--timeout {timeout}: {err}");
        assert!(
            err.contains("--timeout") && err.contains(message),
            "--timeout {timeout}: {err}"
        );
    }
    // The largest timeout a duration holds is still a timeout.
    let (code, out, err) = lincheck(&["--model", "kv", &empty, "--timeout", "1e19"]);
    assert_eq!(code, 0, "{out}{err}");

    for (args, message) in [
        (&["--model", "kv"][..], "FILE"),
        (&[empty.as_str()][..], "--model"),
        (
            &["--model", "kv", &empty, "--frobnicate"][..],
            "--frobnicate",
        ),
        (&["--model"][..], "--model"),
        (&["--model", "kv", &empty, &empty][..], "unexpected"),
    ] {
        let (code, _, err) = lincheck(args);
        assert_eq!(code, 3, "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }

    let (code, out, _) = lincheck(&["--help"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("--timeout"), "{out}");
    let (code, out, _) = lincheck(&["--version"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("lincheck "), "{out}");
}

#[test]
fn an_empty_history_is_linearizable() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(&dir, "empty.log", "");
    let (code, out, _) = lincheck(&["--model", "cas-register", &empty]);
    assert_eq!(code, 0, "{out}");
}

/// The histories shipped in `examples/histories`, which the README runs.
#[test]
fn shipped_examples_get_their_verdicts() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/histories");
    let run = |name: &str| {
        let path = root.join(name);
        lincheck(&["--model", "kv-fetch-append", path.to_str().unwrap()])
    };
    let (code, out, err) = run("kv-ok.jsonl");
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run("kv-stale-read.jsonl");
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("cannot place get(\"x\") -> \"a\" by client 3"),
        "{out}"
    );
}
