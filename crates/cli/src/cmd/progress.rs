//! Prints the daemon's JSON progress stream (pull, import) the way docker
//! does when output is not a terminal: one line per status message, progress
//! bar updates skipped.

use std::io::Write;

use futures_util::StreamExt;
use serde::Deserialize;

use crate::client::ByteStream;
use crate::error::CliError;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Message {
    id: String,
    status: String,
    stream: String,
    #[serde(rename = "progressDetail")]
    progress_detail: Option<ProgressDetail>,
    #[serde(rename = "errorDetail")]
    error_detail: Option<ErrorDetail>,
    error: String,
    aux: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ProgressDetail {
    current: i64,
    total: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ErrorDetail {
    message: String,
}

/// The text one message prints, or the error it carries.
fn render(m: &Message) -> Result<Option<String>, String> {
    if let Some(e) = &m.error_detail {
        if !e.message.is_empty() {
            return Err(e.message.clone());
        }
    }
    if !m.error.is_empty() {
        return Err(m.error.clone());
    }
    if m.aux.is_some() {
        return Ok(None);
    }
    if m.progress_detail
        .as_ref()
        .is_some_and(|p| p.current > 0 || p.total > 0)
    {
        return Ok(None);
    }
    let mut line = String::new();
    if !m.id.is_empty() {
        line.push_str(&m.id);
        line.push_str(": ");
    }
    if !m.stream.is_empty() {
        line.push_str(&m.stream);
    } else {
        line.push_str(&m.status);
        line.push('\n');
    }
    Ok(Some(line))
}

/// Renders every complete JSON message in `buf`, keeping any partial tail.
fn drain(buf: &mut Vec<u8>, out: &mut dyn Write) -> Result<(), CliError> {
    let mut consumed = 0;
    {
        let mut it = serde_json::Deserializer::from_slice(buf).into_iter::<Message>();
        loop {
            match it.next() {
                Some(Ok(m)) => {
                    consumed = it.byte_offset();
                    match render(&m) {
                        Ok(Some(line)) => {
                            let _ = out.write_all(line.as_bytes());
                            let _ = out.flush();
                        }
                        Ok(None) => {}
                        Err(e) => return Err(CliError::new(e)),
                    }
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(e)) => return Err(CliError::new(format!("error decoding progress: {e}"))),
                None => break,
            }
        }
    }
    // Whitespace between messages is not part of the next one.
    let rest = buf[consumed..]
        .iter()
        .take_while(|b| b.is_ascii_whitespace())
        .count();
    buf.drain(..consumed + rest);
    Ok(())
}

/// Prints the whole stream to `out`; an error message in it ends with that error.
pub async fn display(mut stream: ByteStream, out: &mut dyn Write) -> Result<(), CliError> {
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        buf.extend_from_slice(&chunk?);
        drain(&mut buf, out)?;
    }
    drain(&mut buf, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_status_lines() {
        let mut buf = br#"{"status":"Pulling from library/busybox","id":"latest"}
{"status":"Downloading","progressDetail":{"current":10,"total":100},"id":"abc"}
{"status":"Pull complete","progressDetail":{},"id":"abc"}
{"aux":{"ID":"sha256:1"}}{"status":"Digest: sha256:x"}
{"status":"sha256:d6448673"#
            .to_vec();
        let mut out = Vec::new();
        drain(&mut buf, &mut out).expect("valid stream");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "latest: Pulling from library/busybox\nabc: Pull complete\nDigest: sha256:x\n"
        );
        assert_eq!(buf, br#"{"status":"sha256:d6448673"#.to_vec());
        buf.extend_from_slice(b"53d\"}\n");
        let mut out = Vec::new();
        drain(&mut buf, &mut out).expect("valid stream");
        assert_eq!(String::from_utf8_lossy(&out), "sha256:d644867353d\n");
    }

    #[test]
    fn stops_on_errors() {
        let mut buf =
            br#"{"errorDetail":{"message":"pull access denied"},"error":"pull access denied"}"#
                .to_vec();
        let mut out = Vec::new();
        assert_eq!(
            drain(&mut buf, &mut out),
            Err(CliError::new("pull access denied"))
        );
    }
}
