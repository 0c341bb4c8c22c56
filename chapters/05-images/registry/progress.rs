//! How far a pull or a push has come: a bar per blob on a terminal
//! (indicatif), a plain line per blob when the output goes to a file or a
//! pipe, or nothing (the tests).

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use oci_spec::image::Descriptor;

use crate::narrate;

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Show {
    Nothing,
    /// One line on stdout as each blob is done, with its digest.
    Lines,
    /// A bar per blob while it moves.
    Bars,
}

impl Show {
    /// Bars if stdout is a terminal, lines if not.
    pub fn as_the_terminal_allows() -> Show {
        if std::io::stdout().is_terminal() {
            Show::Bars
        } else {
            Show::Lines
        }
    }
}

/// The progress of one pull or push.
pub struct Progress {
    show: Show,
    bars: MultiProgress,
}

impl Progress {
    pub fn new(show: Show) -> Progress {
        let bars = MultiProgress::with_draw_target(match show {
            Show::Bars => ProgressDrawTarget::stdout(),
            _ => ProgressDrawTarget::hidden(),
        });
        if show == Show::Bars {
            // Narration would break a bar's line: it is written with the
            // bars cleared, then they are drawn again.
            let printer = bars.clone();
            narrate::set_printer(Some(Box::new(move |line: &str| {
                printer.suspend(|| eprint!("{line}"));
            })));
        }
        Progress { show, bars }
    }

    /// A meter for one blob moving (`verb`: "fetched", "uploaded").
    pub fn blob(&self, verb: &'static str, descriptor: &Descriptor) -> Meter {
        let bar = match self.show {
            Show::Bars => {
                let bar = self.bars.add(ProgressBar::new(descriptor.size()));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
                    )
                    .expect("the template is valid")
                    .progress_chars("=> "),
                );
                bar.set_prefix(short(descriptor));
                Some(bar)
            }
            _ => None,
        };
        let what = if self.show == Show::Lines { descriptor.digest().to_string() } else { short(descriptor) };
        Meter { bar, verb, lines: self.show == Show::Lines, what, size: descriptor.size() }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.show == Show::Bars {
            narrate::set_printer(None);
        }
    }
}

/// A digest as a person reads it: its first 12 hex digits.
fn short(descriptor: &Descriptor) -> String {
    let hex = descriptor.digest().digest();
    hex[..hex.len().min(12)].to_string()
}

/// The progress of one blob.
#[derive(Clone)]
pub struct Meter {
    bar: Option<ProgressBar>,
    verb: &'static str,
    lines: bool,
    what: String,
    size: u64,
}

impl Meter {
    pub fn advance(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    /// The blob is done: its bar ends with `verb`, or its line is printed.
    pub fn done(&self, verb: Option<&str>) {
        let verb = verb.unwrap_or(self.verb);
        if let Some(bar) = &self.bar {
            bar.set_position(self.size);
            bar.finish_with_message(verb.to_string());
        }
        // A line, for a log: its digest whole (its size, which varies with
        // the machine's busybox, is in the narration).
        if self.lines {
            println!("{} {verb}", self.what);
        }
    }
}

/// A reader that moves a meter as it is read (a blob being uploaded).
pub struct Metered<R> {
    pub inner: R,
    pub meter: Meter,
}

impl<R: std::io::Read> std::io::Read for Metered<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.meter.advance(read as u64);
        Ok(read)
    }
}
