//! The test SMTP sink as a process of its own: `smtp-sink [ADDRESS]` (default 127.0.0.1:2525)
//! prints each message it accepts to standard output, with its envelope. Handy with
//! `CAIRN_SMTP_HOST=127.0.0.1 CAIRN_SMTP_PORT=2525 cargo run -- demo` to read reminder emails.

use federation_tests::smtp::SmtpSink;
use std::time::Duration;

fn main() {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2525".into());
    let sink = match SmtpSink::start_on(&address) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("smtp-sink: cannot listen on {address}: {e}");
            std::process::exit(1);
        }
    };
    println!("smtp-sink: listening on {}", sink.address());
    let mut shown = 0;
    loop {
        let messages = sink.messages();
        for m in &messages[shown..] {
            println!(
                "==== MAIL FROM:<{}> RCPT TO:{:?}\n{}\n==== end of message",
                m.mail_from, m.rcpt_to, m.data
            );
        }
        shown = messages.len();
        std::thread::sleep(Duration::from_millis(200));
    }
}
