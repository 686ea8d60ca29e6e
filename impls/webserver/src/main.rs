//! `wserver [-d basedir] [-p port] [-t threads] [-b buffers] [-s FIFO|SFF]`

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, ValueEnum};
use webserver::buffer::Policy;
use webserver::bug::Bugs;
use webserver::server::{self, Config};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PolicyArg {
    #[value(name = "FIFO")]
    Fifo,
    #[value(name = "SFF")]
    Sff,
}

/// A concurrent web server: a master thread, a fixed pool of workers and a bounded
/// buffer of requests scheduled FIFO or smallest-file-first.
#[derive(Debug, Parser)]
#[command(
    name = "wserver",
    override_usage = "wserver [-d basedir] [-p port] [-t threads] [-b buffers] [-s FIFO|SFF] [--timeout seconds] [--cgi-timeout seconds]"
)]
struct Args {
    /// Document root; no request reaches a file outside it.
    #[arg(short = 'd', value_name = "basedir", default_value = ".")]
    basedir: PathBuf,
    /// TCP port to listen on.
    #[arg(short = 'p', value_name = "port", default_value_t = 10000)]
    port: u16,
    /// Worker threads (positive).
    #[arg(short = 't', value_name = "threads", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    threads: u32,
    /// Slots in the request buffer (positive).
    #[arg(short = 'b', value_name = "buffers", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    buffers: u32,
    /// Scheduling policy.
    #[arg(
        short = 's',
        value_name = "policy",
        value_enum,
        default_value = "FIFO",
        ignore_case = true
    )]
    policy: PolicyArg,
    /// Seconds a client may take to send a request head, stay idle on a persistent
    /// connection, or take to accept a response.
    #[arg(long, value_name = "seconds", default_value_t = 5.0,
          value_parser = positive_seconds)]
    timeout: f64,
    /// Seconds a CGI program may run, relaying its output included; past them it is
    /// killed (with the processes it started) and the client gets 504, or a cut
    /// response if output had begun.
    #[arg(long, value_name = "seconds", default_value_t = 30.0,
          value_parser = positive_seconds)]
    cgi_timeout: f64,
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("{s:?} is not a positive number of seconds")),
    }
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) if e.use_stderr() => {
            // Every usage error also shows the usage line, whatever clap's kind.
            let _ = e.print();
            eprintln!("\n{}", Args::command().render_usage());
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let bugs = match Bugs::parse(&std::env::var("WEBSERVER_BUG").unwrap_or_default()) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("wserver: {e}");
            return ExitCode::from(2);
        }
    };
    let config = Config {
        root: args.basedir,
        port: args.port,
        threads: args.threads as usize,
        buffers: args.buffers as usize,
        policy: match args.policy {
            PolicyArg::Fifo => Policy::Fifo,
            PolicyArg::Sff => Policy::Sff,
        },
        timeout: Duration::from_secs_f64(args.timeout),
        cgi_timeout: Duration::from_secs_f64(args.cgi_timeout),
        bugs,
    };
    match server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wserver: {e}");
            ExitCode::FAILURE
        }
    }
}
