//! A small SMTP sink for tests: it speaks enough of RFC 5321 for a real client (lettre, with its
//! connection pool) to deliver to it — `EHLO`/`HELO`, `MAIL FROM`, `RCPT TO`, `DATA` with
//! dot-unstuffing, `RSET`, `NOOP`, `QUIT` — and records every message it accepted.
//!
//! It uses only the standard library (a thread per connection), so the same file serves the
//! federation tests (`federation_tests::smtp`), the API tests (which include it with `#[path]`)
//! and the standalone `smtp-sink` binary. Nothing is relayed anywhere.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

/// Longest message the sink accepts (larger ones are refused with 552, as a real server would).
pub const MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;
/// Longest command line (RFC 5321 §4.5.3.1.4 says 512 octets; some slack for parameters).
const MAX_LINE_BYTES: usize = 4096;

/// One message as the sink received it.
#[derive(Clone, Debug)]
pub struct Message {
    /// The address in `MAIL FROM:<…>`.
    pub mail_from: String,
    /// The addresses in every `RCPT TO:<…>`.
    pub rcpt_to: Vec<String>,
    /// The message after dot-unstuffing, CRLF line ends kept.
    pub data: String,
}

impl Message {
    /// The first header called `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        header_in(head_of(&self.data), name)
    }

    /// The decoded bodies of the parts of a `multipart/*` message (or the one body of a simple
    /// message), each with its `Content-Type`.
    pub fn parts(&self) -> Vec<Part> {
        parts_of(&self.data)
    }

    /// The decoded body of the first part whose content type starts with `content_type`.
    pub fn part(&self, content_type: &str) -> Option<String> {
        self.parts()
            .into_iter()
            .find(|p| {
                p.content_type
                    .to_ascii_lowercase()
                    .starts_with(content_type)
            })
            .map(|p| p.body)
    }
}

/// One MIME part, decoded from its transfer encoding.
#[derive(Clone, Debug)]
pub struct Part {
    pub content_type: String,
    pub body: String,
}

/// A running sink; it stops listening when dropped.
pub struct SmtpSink {
    address: SocketAddr,
    messages: Arc<Mutex<Vec<Message>>>,
    stop: Arc<AtomicBool>,
}

impl SmtpSink {
    /// Listens on a free port of 127.0.0.1.
    pub fn start() -> std::io::Result<SmtpSink> {
        Self::start_on("127.0.0.1:0")
    }

    pub fn start_on(address: &str) -> std::io::Result<SmtpSink> {
        let listener = TcpListener::bind(address)?;
        let address = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let messages: Arc<Mutex<Vec<Message>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (recorded, stopping) = (messages.clone(), stop.clone());
        thread::spawn(move || accept_loop(listener, recorded, stopping));
        Ok(SmtpSink {
            address,
            messages,
            stop,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Every message accepted so far, in order.
    pub fn messages(&self) -> Vec<Message> {
        self.messages.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Messages with `address` among their recipients.
    pub fn messages_to(&self, address: &str) -> Vec<Message> {
        self.messages()
            .into_iter()
            .filter(|m| m.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(address)))
            .collect()
    }

    /// Waits until at least `count` messages went to `address`; returns them all.
    pub fn wait_for(&self, address: &str, count: usize, timeout: Duration) -> Vec<Message> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self.messages_to(address);
            if found.len() >= count || Instant::now() >= deadline {
                return found;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn accept_loop(listener: TcpListener, messages: Arc<Mutex<Vec<Message>>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let (recorded, stopping) = (messages.clone(), stop.clone());
                thread::spawn(move || {
                    if let Err(e) = serve(stream, &recorded, &stopping) {
                        eprintln!("smtp sink: connection ended: {e}");
                    }
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                eprintln!("smtp sink: accept failed: {e}");
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// The state of one mail transaction.
#[derive(Default)]
struct Transaction {
    greeted: bool,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
}

impl Transaction {
    fn reset(&mut self) {
        self.mail_from = None;
        self.rcpt_to.clear();
    }
}

/// The address between `<` and `>` after `MAIL FROM:` / `RCPT TO:` (parameters ignored).
fn path_argument(rest: &str) -> Option<String> {
    let rest = rest.trim_start();
    let start = rest.find('<')?;
    let end = rest[start..].find('>')? + start;
    Some(rest[start + 1..end].to_owned())
}

fn serve(
    stream: TcpStream,
    messages: &Mutex<Vec<Message>>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(300)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let reply = |w: &mut TcpStream, text: &str| -> std::io::Result<()> {
        w.write_all(text.as_bytes())?;
        w.write_all(b"\r\n")?;
        w.flush()
    };
    reply(&mut writer, "220 cairn-test-sink ESMTP ready")?;
    let mut tx = Transaction::default();
    let mut line = Vec::new();
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        line.clear();
        let n = reader
            .by_ref()
            .take(MAX_LINE_BYTES as u64)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        if !line.ends_with(b"\n") {
            reply(&mut writer, "500 5.5.2 line too long")?;
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        let (verb, rest) = match text.find(' ') {
            Some(i) => (&text[..i], &text[i + 1..]),
            None => (text, ""),
        };
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" => {
                tx = Transaction {
                    greeted: true,
                    ..Default::default()
                };
                writer.write_all(
                    format!(
                        "250-cairn-test-sink greets {}\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n\
                         250-SIZE {MAX_MESSAGE_BYTES}\r\n250 PIPELINING\r\n",
                        rest.trim()
                    )
                    .as_bytes(),
                )?;
                writer.flush()?;
            }
            "HELO" => {
                tx = Transaction {
                    greeted: true,
                    ..Default::default()
                };
                reply(&mut writer, "250 cairn-test-sink")?;
            }
            "MAIL" => {
                let upper = rest.to_ascii_uppercase();
                if !tx.greeted {
                    reply(&mut writer, "503 5.5.1 say EHLO or HELO first")?;
                } else if tx.mail_from.is_some() {
                    reply(&mut writer, "503 5.5.1 a transaction is already open")?;
                } else if let Some(from) = upper
                    .starts_with("FROM:")
                    .then(|| path_argument(&rest[5..]))
                    .flatten()
                {
                    tx.mail_from = Some(from);
                    reply(&mut writer, "250 2.1.0 sender ok")?;
                } else {
                    reply(&mut writer, "501 5.5.4 syntax: MAIL FROM:<address>")?;
                }
            }
            "RCPT" => {
                let upper = rest.to_ascii_uppercase();
                if tx.mail_from.is_none() {
                    reply(&mut writer, "503 5.5.1 MAIL FROM first")?;
                } else if let Some(to) = upper
                    .starts_with("TO:")
                    .then(|| path_argument(&rest[3..]))
                    .flatten()
                    .filter(|to| !to.is_empty())
                {
                    tx.rcpt_to.push(to);
                    reply(&mut writer, "250 2.1.5 recipient ok")?;
                } else {
                    reply(&mut writer, "501 5.5.4 syntax: RCPT TO:<address>")?;
                }
            }
            "DATA" => {
                if tx.mail_from.is_none() || tx.rcpt_to.is_empty() {
                    reply(&mut writer, "503 5.5.1 MAIL FROM and RCPT TO first")?;
                    continue;
                }
                reply(&mut writer, "354 end data with <CR><LF>.<CR><LF>")?;
                match read_data(&mut reader)? {
                    Some(data) => {
                        let message = Message {
                            mail_from: tx.mail_from.take().unwrap_or_default(),
                            rcpt_to: std::mem::take(&mut tx.rcpt_to),
                            data,
                        };
                        if let Ok(mut all) = messages.lock() {
                            all.push(message);
                        }
                        reply(&mut writer, "250 2.0.0 queued")?;
                    }
                    None => {
                        tx.reset();
                        reply(&mut writer, "552 5.3.4 message too big")?;
                    }
                }
            }
            "RSET" => {
                tx.reset();
                reply(&mut writer, "250 2.0.0 reset")?;
            }
            "NOOP" => reply(&mut writer, "250 2.0.0 ok")?,
            "QUIT" => {
                reply(&mut writer, "221 2.0.0 bye")?;
                return Ok(());
            }
            "" => reply(&mut writer, "500 5.5.2 empty command")?,
            _ => reply(&mut writer, "502 5.5.1 command not implemented")?,
        }
    }
}

/// Reads the message after `DATA` up to the line holding a single dot; removes the leading dot
/// of stuffed lines. `None` when it is over the size limit (read to its end all the same).
fn read_data(reader: &mut impl BufRead) -> std::io::Result<Option<String>> {
    let mut data = Vec::new();
    let mut too_big = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed during DATA",
            ));
        }
        let content = line.strip_suffix(b"\n").unwrap_or(&line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content == b"." {
            break;
        }
        let unstuffed = if line.starts_with(b".") {
            &line[1..]
        } else {
            &line[..]
        };
        if data.len() + unstuffed.len() > MAX_MESSAGE_BYTES {
            too_big = true;
        }
        if !too_big {
            data.extend_from_slice(unstuffed);
        }
    }
    Ok((!too_big).then(|| String::from_utf8_lossy(&data).into_owned()))
}

/// The header block of a message or part (up to the first empty line).
fn head_of(data: &str) -> &str {
    split_head(data).0
}

fn split_head(data: &str) -> (&str, &str) {
    if let Some(i) = data.find("\r\n\r\n") {
        (&data[..i], &data[i + 4..])
    } else if let Some(i) = data.find("\n\n") {
        (&data[..i], &data[i + 2..])
    } else {
        (data, "")
    }
}

fn header_in(head: &str, name: &str) -> Option<String> {
    let mut found: Option<String> = None;
    for line in head.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            if let Some(value) = found.as_mut() {
                value.push(' ');
                value.push_str(line.trim());
                continue;
            }
        } else if found.is_some() {
            break;
        }
        if let Some((key, value)) = line.split_once(':') {
            if key.trim().eq_ignore_ascii_case(name) {
                found = Some(value.trim().to_owned());
            }
        }
    }
    found
}

/// A parameter of a header value: `boundary` in `multipart/alternative; boundary="x"`.
fn parameter(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn parts_of(data: &str) -> Vec<Part> {
    let (head, body) = split_head(data);
    let content_type = header_in(head, "Content-Type").unwrap_or_else(|| "text/plain".into());
    if content_type.to_ascii_lowercase().starts_with("multipart/") {
        let Some(boundary) = parameter(&content_type, "boundary") else {
            return Vec::new();
        };
        let delimiter = format!("--{boundary}");
        let mut out = Vec::new();
        for chunk in body.split(delimiter.as_str()).skip(1) {
            if chunk.starts_with("--") {
                break;
            }
            let chunk = chunk.trim_start_matches(['\r', '\n']);
            let chunk = chunk.strip_suffix("\r\n").unwrap_or(chunk);
            out.extend(parts_of(chunk));
        }
        return out;
    }
    let encoding = header_in(head, "Content-Transfer-Encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let body = match encoding.as_str() {
        "quoted-printable" => decode_quoted_printable(body),
        "base64" => decode_base64(body),
        _ => body.to_owned(),
    };
    vec![Part { content_type, body }]
}

fn decode_quoted_printable(text: &str) -> String {
    let mut bytes = Vec::new();
    let input = text.replace("\r\n", "\n");
    let mut lines = input.split('\n').peekable();
    while let Some(line) = lines.next() {
        let (line, soft) = match line.strip_suffix('=') {
            Some(l) => (l, true),
            None => (line, false),
        };
        let raw = line.as_bytes();
        let mut i = 0;
        while i < raw.len() {
            if raw[i] == b'=' && i + 3 <= raw.len() {
                let hex = std::str::from_utf8(&raw[i + 1..i + 3]).unwrap_or("");
                if let Ok(b) = u8::from_str_radix(hex, 16) {
                    bytes.push(b);
                    i += 3;
                    continue;
                }
            }
            bytes.push(raw[i]);
            i += 1;
        }
        if !soft && lines.peek().is_some() {
            bytes.extend_from_slice(b"\r\n");
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn decode_base64(text: &str) -> String {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let mut bytes = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter_map(value) {
        acc = (acc << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push(((acc >> bits) & 0xff) as u8);
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(stream: &mut TcpStream, line: &str) -> String {
        stream.write_all(line.as_bytes()).expect("write");
        read_reply(stream)
    }

    fn read_reply(stream: &mut TcpStream) -> String {
        let mut out = String::new();
        let mut byte = [0u8; 1];
        loop {
            stream.read_exact(&mut byte).expect("read");
            out.push(byte[0] as char);
            // A reply ends with a line whose fourth character is a space.
            if out.ends_with("\r\n") {
                let last = out
                    .trim_end()
                    .rsplit("\r\n")
                    .next()
                    .unwrap_or("")
                    .to_owned();
                if last.len() >= 4 && &last[3..4] == " " || last.len() == 3 {
                    return out;
                }
            }
        }
    }

    #[test]
    fn speaks_the_protocol_and_unstuffs_dots() {
        let sink = SmtpSink::start().expect("sink");
        let mut s = TcpStream::connect(sink.address()).expect("connect");
        assert!(read_reply(&mut s).starts_with("220"));
        assert!(send(&mut s, "MAIL FROM:<a@x.example>\r\n").starts_with("503"));
        assert!(send(&mut s, "EHLO test\r\n").contains("250 PIPELINING"));
        assert!(send(&mut s, "NOOP\r\n").starts_with("250"));
        assert!(send(&mut s, "DATA\r\n").starts_with("503"));
        assert!(send(&mut s, "MAIL FROM:<a@x.example> BODY=8BITMIME\r\n").starts_with("250"));
        assert!(send(&mut s, "RCPT TO:<b@y.example>\r\n").starts_with("250"));
        assert!(send(&mut s, "RSET\r\n").starts_with("250"));
        assert!(
            send(&mut s, "DATA\r\n").starts_with("503"),
            "RSET ends the transaction"
        );
        assert!(send(&mut s, "mail from:<a@x.example>\r\n").starts_with("250"));
        assert!(send(&mut s, "RCPT TO:<b@y.example>\r\n").starts_with("250"));
        assert!(send(&mut s, "DATA\r\n").starts_with("354"));
        let reply = send(&mut s, "Subject: hi\r\n\r\n..leading dot\r\nline\r\n.\r\n");
        assert!(reply.starts_with("250"), "{reply}");
        assert!(send(&mut s, "QUIT\r\n").starts_with("221"));
        let got = sink.wait_for("b@y.example", 1, Duration::from_secs(5));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].mail_from, "a@x.example");
        assert_eq!(got[0].data, "Subject: hi\r\n\r\n.leading dot\r\nline\r\n");
        assert_eq!(got[0].header("subject").as_deref(), Some("hi"));
    }

    #[test]
    fn reads_multipart_bodies() {
        let data = "Content-Type: multipart/alternative;\r\n boundary=\"b1\"\r\n\r\n--b1\r\n\
                    Content-Type: text/plain; charset=utf-8\r\n\
                    Content-Transfer-Encoding: quoted-printable\r\n\r\nH=C3=A9llo =\r\nworld\r\n\
                    --b1\r\nContent-Type: text/html; charset=utf-8\r\n\
                    Content-Transfer-Encoding: base64\r\n\r\nPHA+aGk8L3A+\r\n--b1--\r\n";
        let m = Message {
            mail_from: String::new(),
            rcpt_to: vec![],
            data: data.into(),
        };
        assert_eq!(m.part("text/plain").as_deref(), Some("Héllo world"));
        assert_eq!(m.part("text/html").as_deref(), Some("<p>hi</p>"));
    }
}
