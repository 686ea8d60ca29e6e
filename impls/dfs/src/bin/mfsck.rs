//! `mfsck IMAGE`: checks an MFS image offline and prints its tree.
//! Exit status: 0 consistent, 1 damaged, 2 unreadable or bad usage.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 1 || args[0] == "-h" || args[0] == "--help" {
        eprintln!("usage: mfsck IMAGE\n  checks an MFS image and prints its tree");
        return ExitCode::from(2);
    }
    let image = match std::fs::read(&args[0]) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("mfsck: cannot read {}: {e}", args[0]);
            return ExitCode::from(2);
        }
    };
    let report = mfs::fsck::check(&image);
    print!("{}", report.tree);
    for note in &report.notes {
        println!("note: {note}");
    }
    for error in &report.errors {
        println!("error: {error}");
    }
    if report.ok() {
        println!(
            "{}: consistent: {} inode(s), {} record(s), {} bytes",
            args[0],
            report.inodes,
            report.records,
            image.len()
        );
        ExitCode::SUCCESS
    } else {
        println!("{}: DAMAGED: {} error(s)", args[0], report.errors.len());
        ExitCode::from(1)
    }
}
