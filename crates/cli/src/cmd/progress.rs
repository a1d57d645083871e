//! Prints the daemon's JSON progress stream (pull, push, load, import) the
//! way docker's `jsonmessage` does:
//!
//! - not on a terminal: one line per status message, progress updates skipped;
//! - on a terminal: one line per layer ID, redrawn in place with a
//!   `[=====>     ]  1.2MB/5.6MB` bar (drawn by indicatif), and the other
//!   messages printed below them. As in docker, a message that is not a
//!   layer's progress ends the current group of layer lines, so the next
//!   tag of `pull -a` starts a fresh group instead of redrawing old lines.

use std::borrow::Cow;
use std::io::Write;

use futures_util::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use serde::Deserialize;

use crate::client::ByteStream;
use crate::error::CliError;
use crate::output;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Message {
    id: String,
    status: String,
    stream: String,
    #[serde(rename = "progressDetail")]
    progress_detail: Option<ProgressDetail>,
    /// The daemon's own rendering of the progress (deprecated, still sent).
    progress: String,
    #[serde(rename = "errorDetail")]
    error_detail: Option<ErrorDetail>,
    error: String,
    aux: Option<serde_json::Value>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
struct ProgressDetail {
    current: i64,
    total: i64,
    units: String,
    #[serde(rename = "hidecounts")]
    hide_counts: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ErrorDetail {
    message: String,
}

/// Where a progress stream goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    Stdout,
    /// `run` and `create` keep stdout for the container.
    Stderr,
    /// `--quiet`: the stream is read (errors still count) but not shown.
    Discard,
}

/// The error a message carries, if any.
fn error_of(m: &Message) -> Option<String> {
    match &m.error_detail {
        Some(e) if !e.message.is_empty() => Some(e.message.clone()),
        _ => (!m.error.is_empty()).then(|| m.error.clone()),
    }
}

/// The text one message prints when output is not a terminal.
fn plain_line(m: &Message) -> Option<String> {
    if m.aux.is_some() {
        return None;
    }
    if m.progress_detail
        .as_ref()
        .is_some_and(|p| p.current > 0 || p.total > 0)
    {
        return None;
    }
    Some(line_text(m))
}

/// "<id>: <status>\n", or the `stream` text as is.
fn line_text(m: &Message) -> String {
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
    line
}

/// docker's `JSONProgress.String()`: the bar (on terminals wider than 110
/// columns) and the byte counts.
fn progress_text(current: i64, total: i64, units: &str, hide_counts: bool, wide: bool) -> String {
    if current <= 0 && total <= 0 {
        return String::new();
    }
    let human = |n: i64| crate::units::human_size(n as f64);
    if total <= 0 {
        return match units {
            "" => format!("{:>8}", human(current)),
            u => format!("{current} {u}"),
        };
    }
    let percent = ((current as f64 / total as f64 * 100.0) as i64 / 2).clamp(0, 50) as usize;
    let mut s = String::new();
    if wide {
        s.push('[');
        s.push_str(&"=".repeat(percent));
        s.push('>');
        s.push_str(&" ".repeat(50 - percent));
        s.push_str("] ");
    }
    if !hide_counts {
        match units {
            "" if current > total => s.push_str(&format!("{:>8}", human(current))),
            "" => s.push_str(&format!("{:>8}/{}", human(current), human(total))),
            u if current > total => s.push_str(&format!("{current} {u}")),
            u => s.push_str(&format!("{current}/{total} {u}")),
        }
    }
    s
}

/// The per-layer lines of a terminal display.
struct Bars {
    make_target: Box<dyn Fn() -> ProgressDrawTarget>,
    multi: MultiProgress,
    lines: Vec<(String, ProgressBar)>,
    /// Other messages are written here, below the layer lines.
    out: Box<dyn Write>,
    wide: bool,
}

impl Bars {
    fn new(
        make_target: Box<dyn Fn() -> ProgressDrawTarget>,
        out: Box<dyn Write>,
        width: u16,
    ) -> Bars {
        let multi = MultiProgress::with_draw_target(make_target());
        Bars {
            make_target,
            multi,
            lines: Vec::new(),
            out,
            wide: width > 110,
        }
    }

    fn style(&self, detail: &ProgressDetail) -> ProgressStyle {
        let (units, hide, wide) = (detail.units.clone(), detail.hide_counts, self.wide);
        let key = move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let current = i64::try_from(state.pos()).unwrap_or(i64::MAX);
            let total = state
                .len()
                .map_or(0, |l| i64::try_from(l).unwrap_or(i64::MAX));
            let _ = w.write_str(&progress_text(current, total, &units, hide, wide));
        };
        ProgressStyle::with_template("{prefix}: {msg} {docker_progress}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key("docker_progress", key)
    }

    fn show(&mut self, m: &Message) -> Result<(), String> {
        if let Some(e) = error_of(m) {
            self.end_group();
            return Err(e);
        }
        if m.aux.is_some() {
            return Ok(());
        }
        let is_progress = m.progress_detail.is_some() || !m.progress.is_empty();
        if m.id.is_empty() || !is_progress {
            self.end_group();
            let _ = self.out.write_all(line_text(m).as_bytes());
            let _ = self.out.flush();
            return Ok(());
        }
        let detail = m.progress_detail.clone().unwrap_or_default();
        let bar = match self.lines.iter().find(|(id, _)| *id == m.id) {
            Some((_, bar)) => bar.clone(),
            None => {
                let bar = self.multi.add(
                    ProgressBar::new(0)
                        .with_style(self.style(&detail))
                        .with_prefix(m.id.clone()),
                );
                self.lines.push((m.id.clone(), bar.clone()));
                bar
            }
        };
        if !detail.units.is_empty() || detail.hide_counts {
            bar.set_style(self.style(&detail));
        }
        let message: Cow<'static, str> = if m.progress_detail.is_none() {
            format!("{} {}", m.status, m.progress).into()
        } else {
            m.status.clone().into()
        };
        bar.set_length(u64::try_from(detail.total).unwrap_or(0));
        bar.set_position(u64::try_from(detail.current).unwrap_or(0));
        bar.set_message(message);
        Ok(())
    }

    /// Leaves the current layer lines on screen as they are and starts a
    /// new group below them.
    fn end_group(&mut self) {
        if self.lines.is_empty() {
            return;
        }
        for (_, bar) in self.lines.drain(..) {
            bar.abandon();
        }
        self.multi = MultiProgress::with_draw_target((self.make_target)());
    }
}

enum Renderer {
    Plain(Box<dyn Write>),
    Bars(Box<Bars>),
}

impl Renderer {
    fn for_out(out: Out) -> Renderer {
        let real_terminal = |is_term: bool| is_term && !output::is_captured();
        match out {
            Out::Discard => Renderer::Plain(Box::new(std::io::sink())),
            Out::Stdout if real_terminal(output::stdout_is_terminal()) => {
                let width = console::Term::stdout().size().1;
                Renderer::Bars(Box::new(Bars::new(
                    Box::new(ProgressDrawTarget::stdout),
                    Box::new(output::Stdout),
                    width,
                )))
            }
            Out::Stderr if real_terminal(output::stderr_is_terminal()) => {
                let width = console::Term::stderr().size().1;
                Renderer::Bars(Box::new(Bars::new(
                    Box::new(ProgressDrawTarget::stderr),
                    Box::new(output::Stderr),
                    width,
                )))
            }
            Out::Stdout => Renderer::Plain(Box::new(output::Stdout)),
            Out::Stderr => Renderer::Plain(Box::new(output::Stderr)),
        }
    }

    fn show(&mut self, m: &Message) -> Result<(), String> {
        match self {
            Renderer::Plain(out) => {
                if let Some(e) = error_of(m) {
                    return Err(e);
                }
                if let Some(line) = plain_line(m) {
                    let _ = out.write_all(line.as_bytes());
                    let _ = out.flush();
                }
                Ok(())
            }
            Renderer::Bars(bars) => bars.show(m),
        }
    }

    fn finish(&mut self) {
        if let Renderer::Bars(bars) = self {
            bars.end_group();
        }
    }
}

/// Renders every complete JSON message in `buf`, keeping any partial tail.
fn drain(buf: &mut Vec<u8>, r: &mut Renderer) -> Result<(), CliError> {
    let mut consumed = 0;
    let result = {
        let mut it = serde_json::Deserializer::from_slice(buf).into_iter::<Message>();
        loop {
            match it.next() {
                Some(Ok(m)) => {
                    consumed = it.byte_offset();
                    if let Err(e) = r.show(&m) {
                        break Err(CliError::new(e));
                    }
                }
                Some(Err(e)) if e.is_eof() => break Ok(()),
                Some(Err(e)) => break Err(CliError::new(format!("error decoding progress: {e}"))),
                None => break Ok(()),
            }
        }
    };
    // Whitespace between messages is not part of the next one.
    let rest = buf[consumed..]
        .iter()
        .take_while(|b| b.is_ascii_whitespace())
        .count();
    buf.drain(..consumed + rest);
    result
}

async fn display_with(mut stream: ByteStream, r: &mut Renderer) -> Result<(), CliError> {
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        buf.extend_from_slice(&chunk?);
        drain(&mut buf, r)?;
    }
    drain(&mut buf, r)
}

/// Shows the whole stream; an error message in it ends with that error.
pub async fn display(stream: ByteStream, out: Out) -> Result<(), CliError> {
    let mut r = Renderer::for_out(out);
    let result = display_with(stream, &mut r).await;
    r.finish();
    result
}

#[cfg(test)]
mod tests {
    use indicatif::{InMemoryTerm, TermLike};

    use super::*;

    /// Collects plain output for assertions.
    #[derive(Clone, Default)]
    struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn plain() -> (Renderer, Shared) {
        let out = Shared::default();
        (Renderer::Plain(Box::new(out.clone())), out)
    }

    #[test]
    fn prints_status_lines() {
        let (mut r, out) = plain();
        let mut buf = br#"{"status":"Pulling from library/busybox","id":"latest"}
{"status":"Downloading","progressDetail":{"current":10,"total":100},"id":"abc"}
{"status":"Pull complete","progressDetail":{},"id":"abc"}
{"aux":{"ID":"sha256:1"}}{"status":"Digest: sha256:x"}
{"status":"sha256:d6448673"#
            .to_vec();
        drain(&mut buf, &mut r).expect("valid stream");
        assert_eq!(
            String::from_utf8_lossy(&out.0.borrow()),
            "latest: Pulling from library/busybox\nabc: Pull complete\nDigest: sha256:x\n"
        );
        assert_eq!(buf, br#"{"status":"sha256:d6448673"#.to_vec());
        buf.extend_from_slice(b"53d\"}\n{\"stream\":\"Loaded image: busybox:latest\\n\"}\n");
        out.0.borrow_mut().clear();
        drain(&mut buf, &mut r).expect("valid stream");
        assert_eq!(
            String::from_utf8_lossy(&out.0.borrow()),
            "sha256:d644867353d\nLoaded image: busybox:latest\n"
        );
    }

    #[test]
    fn stops_on_errors() {
        let (mut r, _) = plain();
        let mut buf =
            br#"{"errorDetail":{"message":"pull access denied"},"error":"pull access denied"}"#
                .to_vec();
        assert_eq!(
            drain(&mut buf, &mut r),
            Err(CliError::new("pull access denied"))
        );
        let mut buf = br#"{"error":"old style"}"#.to_vec();
        assert_eq!(drain(&mut buf, &mut r), Err(CliError::new("old style")));
        let mut buf = b"{\"status\":1}".to_vec();
        assert!(drain(&mut buf, &mut r).is_err());
    }

    #[test]
    fn progress_texts_match_docker() {
        assert_eq!(progress_text(0, 0, "", false, true), "");
        assert_eq!(progress_text(1_500_000, 0, "", false, true), "   1.5MB");
        assert_eq!(progress_text(3, 0, "layers", false, true), "3 layers");
        assert_eq!(
            progress_text(1_200_000, 5_600_000, "", false, true),
            format!("[{}>{}]    1.2MB/5.6MB", "=".repeat(10), " ".repeat(40))
        );
        assert_eq!(
            progress_text(1_200_000, 5_600_000, "", false, false),
            "   1.2MB/5.6MB"
        );
        assert_eq!(progress_text(7, 5, "", false, false), "      7B");
        assert_eq!(
            progress_text(5, 5, "", true, true),
            format!("[{}>] ", "=".repeat(50))
        );
        assert_eq!(progress_text(2, 4, "files", false, false), "2/4 files");
    }

    /// Writes plain lines into the in-memory terminal, with the CR a tty adds.
    struct TermWriter(InMemoryTerm);

    impl Write for TermWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let text = String::from_utf8_lossy(buf).replace('\n', "\r\n");
            self.0.write_str(&text)?;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn terminal(width: u16) -> (Renderer, InMemoryTerm) {
        let term = InMemoryTerm::new(20, width);
        let t = term.clone();
        let bars = Bars::new(
            Box::new(move || ProgressDrawTarget::term_like(Box::new(t.clone()))),
            Box::new(TermWriter(term.clone())),
            width,
        );
        (Renderer::Bars(Box::new(bars)), term)
    }

    fn feed(r: &mut Renderer, text: &str) -> Result<(), CliError> {
        let mut buf = text.as_bytes().to_vec();
        let res = drain(&mut buf, r);
        r.finish();
        res
    }

    #[test]
    fn terminal_layers_are_redrawn_in_place() {
        let (mut r, term) = terminal(140);
        feed(
            &mut r,
            r#"{"status":"Pulling from library/busybox","id":"latest"}
{"status":"Pulling fs layer","progressDetail":{},"id":"aaaaaaaaaaaa"}
{"status":"Pulling fs layer","progressDetail":{},"id":"bbbbbbbbbbbb"}
{"status":"Downloading","progressDetail":{"current":1200000,"total":5600000},"id":"aaaaaaaaaaaa"}
{"status":"Already exists","progressDetail":{},"id":"bbbbbbbbbbbb"}
{"status":"Downloading","progressDetail":{"current":2800000,"total":5600000},"id":"aaaaaaaaaaaa"}
{"status":"Digest: sha256:abc"}
{"status":"Pushing","progressDetail":{"current":512,"total":1024},"id":"cccccccccccc"}
"#,
        )
        .expect("valid stream");
        let screen = term.contents();
        let lines: Vec<&str> = screen.lines().collect();
        assert_eq!(
            lines,
            [
                "latest: Pulling from library/busybox",
                &format!(
                    "aaaaaaaaaaaa: Downloading [{}>{}]    2.8MB/5.6MB",
                    "=".repeat(25),
                    " ".repeat(25)
                ),
                "bbbbbbbbbbbb: Already exists",
                "Digest: sha256:abc",
                &format!(
                    "cccccccccccc: Pushing [{}>{}]     512B/1.024kB",
                    "=".repeat(25),
                    " ".repeat(25)
                ),
            ],
            "{screen}"
        );
    }

    #[test]
    fn narrow_terminals_show_counts_only_and_errors_end_the_display() {
        let (mut r, term) = terminal(80);
        let res = feed(
            &mut r,
            r#"{"status":"Pushing","progressDetail":{"current":100,"total":1000},"id":"dddddddddddd"}
{"errorDetail":{"message":"denied: requested access to the resource is denied"},"error":"denied"}
"#,
        );
        assert_eq!(
            res,
            Err(CliError::new(
                "denied: requested access to the resource is denied"
            ))
        );
        assert_eq!(term.contents(), "dddddddddddd: Pushing     100B/1kB");
    }
}
