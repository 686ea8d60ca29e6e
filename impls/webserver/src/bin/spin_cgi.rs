//! `spin.cgi`: a CGI program that sleeps for `QUERY_STRING` seconds (a decimal
//! number, default 1) and then reports how long it took. It sleeps rather than
//! spins, so it keeps a server worker busy without using the CPU, which is what
//! the concurrency tests need. Copy or link it into a document root as `spin.cgi`.

use std::time::{Duration, Instant};

fn main() {
    let query = std::env::var("QUERY_STRING").unwrap_or_default();
    let seconds = if query.trim().is_empty() {
        1.0
    } else {
        match query.trim().parse::<f64>() {
            Ok(s) if s.is_finite() && (0.0..=3600.0).contains(&s) => s,
            _ => {
                let body = format!(
                    "<p>spin.cgi: {query:?} is not a number of seconds in 0..=3600</p>\r\n"
                );
                print!(
                    "Content-Length: {}\r\nContent-Type: text/html\r\n\r\n{body}",
                    body.len()
                );
                return;
            }
        }
    };
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let body = format!(
        "<p>spin.cgi slept for {:.2} seconds</p>\r\n",
        start.elapsed().as_secs_f64()
    );
    print!(
        "Content-Length: {}\r\nContent-Type: text/html\r\n\r\n{body}",
        body.len()
    );
}
