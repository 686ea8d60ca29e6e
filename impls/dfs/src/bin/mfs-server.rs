//! `mfs-server PORT IMAGE`: the seed's `server [portnum] [file-system-image]`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: mfs-server PORT IMAGE\n  serves the MFS image IMAGE (created if absent) on UDP port PORT";
    if args.len() != 2 || args[0] == "-h" || args[0] == "--help" {
        eprintln!("{usage}");
        return ExitCode::from(2);
    }
    let Ok(port) = args[0].parse::<u16>() else {
        eprintln!(
            "mfs-server: port {:?} is not a number in 0..=65535\n{usage}",
            args[0]
        );
        return ExitCode::from(2);
    };
    let bug = match mfs::server::Bug::from_env() {
        Ok(bug) => bug,
        Err(e) => {
            eprintln!("mfs-server: {e}");
            return ExitCode::from(2);
        }
    };
    match mfs::server::serve(port, &PathBuf::from(&args[1]), bug) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mfs-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}
