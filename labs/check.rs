//! `cargo lab`: checks your lab work by what it does.
//!
//! It builds the level's example with your file from labs/ in place of the
//! reference module (the level's cargo feature) and runs each scenario the
//! snapshot tests run. A scenario passes when your program behaves as the
//! reference does: the same output and exit statuses, nothing left on the
//! machine, and none of the mistakes in the level's table
//! (labs/NN-name/mistakes.rs), each of which looks for what a user can
//! observe or for a call that must happen, and names the hint for it. How
//! your code narrates its calls, and in which order where the kernel does
//! not care, is yours.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use clap::{Parser, Subcommand};
use podlab::scenario::{self, Level, Scenario};
use podlab::LEVELS;

mod fixtures;
mod hints;
// Each level's table of mistakes, beside its lab.
#[path = "03-cgroups/mistakes.rs"]
mod cgroups_mistakes;
#[path = "01-chroot/mistakes.rs"]
mod chroot_mistakes;
#[path = "05-images/mistakes.rs"]
mod images_mistakes;
#[path = "02-namespaces/mistakes.rs"]
mod namespaces_mistakes;
#[path = "06-network/mistakes.rs"]
mod network_mistakes;
#[path = "04-runtime/mistakes.rs"]
mod runtime_mistakes;

/// Check your lab work: build the level with your code and replay its scenarios.
#[derive(Parser)]
#[command(
    name = "cargo lab",
    args_conflicts_with_subcommands = true,
    after_help = "Examples (as root):\n  \
        cargo lab                 every level's state: done, not started, or how far\n  \
        cargo lab 1               level 1 in detail: what passes, and a hint for what does not\n  \
        cargo lab hint 1          the next hint for level 1, one at a time\n  \
        cargo lab 1 --reference   the reference code (what passing looks like)\n  \
        cargo lab 1 --file F      another attempt at the lab file, without touching yours\n\n\
        Your code for level N is in labs/NN-name/; the sheet beside it says what to build."
)]
struct Args {
    #[command(subcommand)]
    command: Option<Verb>,

    /// The level to check (1, 2, ...); all of them when left out.
    level: Option<u8>,

    /// Check the reference code in chapters/ instead of your lab.
    #[arg(long, conflicts_with = "file")]
    reference: bool,

    /// Check FILE in the place of one of the level's lab files (which stays
    /// as it is): a Rust file, or a mutant of labs/NN-name/fixtures/. In a
    /// lab of several files, FILE's name, or a line `//! file: NAME.rs` at
    /// its top, says which.
    #[arg(long, value_name = "FILE", requires = "level")]
    file: Option<PathBuf>,

    /// Seconds one run may take before it is killed.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 30)]
    time_limit: u64,
}

#[derive(Subcommand)]
enum Verb {
    /// Show the level's hints one at a time: the next one each time, or hint K again.
    Hint { level: u8, k: Option<usize> },
    /// Prove the checker (for CI): every level's wrong solutions in
    /// labs/NN-name/fixtures/ fail with the hint for their mistake, and the
    /// differently written correct one passes.
    Fixtures {
        /// Only this level's fixtures.
        level: Option<u8>,
    },
}

/// A mistake a student plausibly makes in a lab, how it shows, and the
/// hint for it. The table of a level lists them most telling first.
pub struct Mistake {
    /// A short name: the fixtures say which one they make.
    pub name: &'static str,
    /// The scenarios it can show in; all of them when empty.
    pub scenarios: &'static [&'static str],
    pub shows_as: Symptom,
    pub hint: &'static str,
}

/// What a run shows when a mistake was made.
pub enum Symptom {
    /// A line of the program's output (not its narration) contains this.
    Says(&'static str),
    /// No line of the program's output is exactly this.
    Lacks(&'static str),
    /// A call containing the first text was narrated, and none containing
    /// the second came after it: a call that must follow is missing.
    NoneAfter(&'static str, &'static str),
    /// A call containing the second text was narrated, and no call
    /// containing the first came before it.
    NotBefore(&'static str, &'static str),
    /// Calls containing both texts were narrated, the second first: two
    /// calls made in the wrong order (where leaving one out is another
    /// mistake).
    Reversed(&'static str, &'static str),
    /// The run was killed for taking too long.
    Hangs,
}

/// One run of a scenario, as the checks see it.
struct Run {
    /// Normalised, as the snapshots are.
    transcript: String,
    /// What is on the machine now that was not before the run.
    left_behind: BTreeSet<PathBuf>,
}

impl Run {
    /// Narrated calls: the lines that start with "> " once indented.
    fn calls(&self) -> impl Iterator<Item = &str> {
        self.transcript.lines().filter_map(|l| l.trim_start().strip_prefix("> "))
    }
    /// What a user sees with --quiet: the command lines, the program's own
    /// output and how each run ended.
    fn output(&self) -> Vec<&str> {
        output_of(&self.transcript)
    }
    fn killed(&self) -> bool {
        self.transcript.contains(scenario::KILLED)
    }
}

fn output_of(transcript: &str) -> Vec<&str> {
    transcript.lines().filter(|l| !l.trim_start().starts_with("> ")).collect()
}

impl Symptom {
    /// Whether the run shows it, and where.
    fn shows_in(&self, run: &Run) -> Option<Evidence> {
        let output = run.output();
        let position = |text: &str| run.calls().position(|call| call.contains(text));
        match self {
            Symptom::Says(text) => output.iter().position(|l| l.contains(text)).map(Evidence::Output),
            Symptom::Lacks(line) => (!output.contains(line)).then_some(Evidence::Nowhere),
            Symptom::NotBefore(first, then) => match (position(first), position(then)) {
                (Some(a), Some(b)) if a < b => None,
                (_, None) => None,
                (_, Some(b)) => Some(Evidence::Call(b)),
            },
            Symptom::Reversed(first, then) => match (position(first), position(then)) {
                (Some(a), Some(b)) if b < a => Some(Evidence::Call(b)),
                _ => None,
            },
            Symptom::NoneAfter(first, then) => {
                let a = position(first)?;
                (!run.calls().skip(a).any(|call| call.contains(then))).then_some(Evidence::Call(a))
            }
            Symptom::Hangs => run.killed().then_some(Evidence::Nowhere),
        }
    }

    /// What was seen, in a few words.
    fn found(&self) -> String {
        match self {
            Symptom::Says(text) => format!("your program says {text:?}"),
            Symptom::Lacks(line) => format!("your program never says {line:?}"),
            Symptom::NoneAfter(first, then) => {
                format!("{} was called with no {} after it", call_name(first), call_name(then))
            }
            Symptom::NotBefore(first, then) => {
                format!("{} was called with no {} before it", call_name(then), call_name(first))
            }
            Symptom::Reversed(first, then) => {
                format!("{} was called before {}", call_name(then), call_name(first))
            }
            Symptom::Hangs => "it did not end, and was killed".to_string(),
        }
    }
}

/// Where a symptom showed: at a line of the output, at a narrated call, or
/// in no one line (a line that never came).
enum Evidence {
    Output(usize),
    Call(usize),
    Nowhere,
}

/// A call's name in a symptom's text: `chroot("/tmp/podlab-` is chroot.
fn call_name(text: &str) -> &str {
    text.split_once('(').map_or(text, |(name, _)| name)
}

/// What one scenario came to.
#[derive(PartialEq)]
enum Verdict {
    Pass,
    /// A todo!() stopped it.
    NotDone {
        place: String,
        hint: String,
    },
    /// A mistake of the level's table showed.
    Mistake {
        name: &'static str,
        found: String,
        hint: &'static str,
        context: Vec<String>,
        /// What the run itself left behind, before the checker removed it.
        left: usize,
    },
    /// Its output differs from the reference's, by no mistake in the table.
    Differs {
        hint: &'static str,
        context: Vec<String>,
    },
    Killed {
        seconds: u64,
    },
    LeftBehind(Vec<String>),
    /// It could not be judged: no recording, or the example would not run.
    Unjudged(String),
}

/// How a level's check went, scenario by scenario.
struct Outcome<'l> {
    verdicts: Vec<(&'l Scenario, Verdict)>,
    /// The compiler's warnings about the lab file.
    warnings: Vec<String>,
}

impl Outcome<'_> {
    fn passed(&self) -> usize {
        self.verdicts.iter().filter(|(_, v)| *v == Verdict::Pass).count()
    }
    fn done(&self) -> bool {
        self.passed() == self.verdicts.len()
    }
}

/// Whose code a check builds.
#[derive(Clone)]
enum Source {
    Reference,
    Lab,
    /// A file put in the place of one of the lab's files, in a copy of the
    /// sources; the lab's other files as `others` says.
    File {
        file: PathBuf,
        stands_for: &'static str,
        others: Others,
    },
}

/// Where a copy of the sources takes the lab's other files from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Others {
    /// The student's (`cargo lab N --file F`: another attempt at one file).
    Lab,
    /// The reference's (a fixture: one file's mistake, alone).
    Reference,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !nix::unistd::geteuid().is_root() {
        eprintln!("cargo lab: the scenarios make real chroots and mounts, so they need root: run it as root (in the course VM, `sudo -i` first)");
        return ExitCode::from(2);
    }
    let limit = Duration::from_secs(args.time_limit);
    let chosen = |level: Option<u8>| -> Result<Vec<&'static Level>, ExitCode> {
        let levels: Vec<&Level> =
            LEVELS.iter().copied().filter(|l| level.is_none_or(|n| n == l.number)).collect();
        if levels.is_empty() {
            let known: Vec<String> = LEVELS.iter().map(|l| l.number.to_string()).collect();
            eprintln!(
                "cargo lab: there is no level {}: the levels are {}",
                level.unwrap_or(0),
                known.join(", ")
            );
            return Err(ExitCode::from(2));
        }
        Ok(levels)
    };
    match args.command {
        Some(Verb::Hint { level, k }) => match chosen(Some(level)) {
            Ok(levels) => hints::show(levels[0], k),
            Err(code) => code,
        },
        Some(Verb::Fixtures { level }) => match chosen(level) {
            Ok(levels) => fixtures::prove(&levels, limit),
            Err(code) => code,
        },
        None => {
            let levels = match chosen(args.level) {
                Ok(levels) => levels,
                Err(code) => return code,
            };
            let source = match (&args.file, args.reference) {
                (Some(file), _) => {
                    match std::path::absolute(file) {
                        Ok(file) if file.is_file() => match fixtures::materialize(levels[0], &file) {
                            Ok((file, stands_for)) => Source::File { file, stands_for, others: Others::Lab },
                            Err(why) => {
                                eprintln!("cargo lab: {}: {why}", file.display());
                                return ExitCode::from(2);
                            }
                        },
                        _ => {
                            eprintln!("cargo lab: there is no file {file:?}: give the path of a Rust file or a mutant");
                            return ExitCode::from(2);
                        }
                    }
                }
                (None, true) => Source::Reference,
                (None, false) => Source::Lab,
            };
            let all_done = if args.level.is_some() {
                let outcome = check(levels[0], &source, limit);
                report(levels[0], &source, &outcome);
                outcome.is_some_and(|o| o.done())
            } else {
                overview(&levels, &source, limit)
            };
            if all_done {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Every level in a line: done, not started, or how far. True if all are done.
fn overview(levels: &[&Level], source: &Source, limit: Duration) -> bool {
    let mut all_done = true;
    println!("{}", whose(source, None));
    for level in levels {
        let outcome = check(level, source, limit);
        let state = match &outcome {
            None => "does not compile yet: `cargo lab N` shows the compiler's messages".to_string(),
            Some(o) if o.done() => "done".to_string(),
            Some(o) => {
                let how_far = if untouched(level, source) {
                    format!("not started ({} scenarios)", o.verdicts.len())
                } else {
                    format!("{} of {} scenarios behave like the reference", o.passed(), o.verdicts.len())
                };
                match o.verdicts.iter().find_map(|(_, v)| match v {
                    Verdict::NotDone { place, hint } => Some(format!("{place}: {hint}")),
                    _ => None,
                }) {
                    Some(todo) => format!("{how_far}\n      not done yet, at {todo}"),
                    None => how_far,
                }
            }
        };
        println!("  level {} ({}): {state}", level.number, level.name);
        for warning in outcome.iter().flat_map(|o| &o.warnings) {
            println!("{}", indent(warning, 6));
        }
        all_done &= outcome.is_some_and(|o| o.done());
    }
    if !all_done {
        println!("`cargo lab N` tells what a level's scenarios show; `cargo lab hint N` gives a hint.");
    }
    all_done
}

/// Whether every function of the lab's files is still a todo!(), as in the starter.
fn untouched(level: &Level, source: &Source) -> bool {
    let files: Vec<PathBuf> = match source {
        Source::Reference => return false,
        Source::Lab => {
            level.lab_files.iter().map(|f| Path::new(env!("CARGO_MANIFEST_DIR")).join(f)).collect()
        }
        Source::File { file, .. } => vec![file.clone()],
    };
    files.iter().all(|file| {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        text.matches("todo!(").count() >= text.matches("pub fn ").count()
    })
}

fn whose(source: &Source, level: Option<&Level>) -> String {
    match (source, level) {
        (Source::Reference, _) => "the reference in chapters/".to_string(),
        (Source::File { file, stands_for, .. }, _) => {
            format!("{} in the place of {stands_for}", file.display())
        }
        (Source::Lab, Some(level)) => format!("your code in {}", level.lab_files.join(" and ")),
        (Source::Lab, None) => "your code in labs/".to_string(),
    }
}

/// Builds the level with `source` and judges every scenario; None if it
/// does not compile (the compiler's messages have been shown).
fn check<'l>(level: &'l Level, source: &Source, limit: Duration) -> Option<Outcome<'l>> {
    let (exe, warnings) = match build(level, source) {
        Ok(built) => built,
        Err(why) => {
            println!("  level {}: {why}", level.number);
            return None;
        }
    };
    let table = table(level.number);
    let verdicts = level
        .scenarios
        .iter()
        .map(|scenario| (scenario, judge(&exe, level, scenario, table, limit)))
        .collect();
    Some(Outcome { verdicts, warnings })
}

/// The level's table of mistakes.
fn table(level: u8) -> &'static [Mistake] {
    match level {
        1 => chroot_mistakes::MISTAKES,
        2 => namespaces_mistakes::MISTAKES,
        3 => cgroups_mistakes::MISTAKES,
        4 => runtime_mistakes::MISTAKES,
        5 => images_mistakes::MISTAKES,
        6 => network_mistakes::MISTAKES,
        _ => &[],
    }
}

/// Where cargo builds (CARGO_TARGET_DIR, or target/ in the repository): the
/// lab's builds, the copy of the sources, the mutants and the hints seen
/// all live under it.
pub fn target_dir() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo.join("target"), PathBuf::from);
    std::path::absolute(&target).unwrap_or(target)
}

/// Builds the level's example from `source`; its path, and the compiler's
/// warnings about the lab file. Lab builds get a target directory of their
/// own so that they never stand in for the reference binary the tests use.
fn build(level: &Level, source: &Source) -> Result<(PathBuf, Vec<String>), String> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = target_dir();
    let (dir, target) = match source {
        Source::Reference => (repo.to_path_buf(), target),
        Source::Lab => (repo.to_path_buf(), target.join("lab")),
        // The copy's build has a target directory of its own: cargo names
        // the copy's artifacts as it names the repository's, and the two
        // would take each other's place.
        Source::File { file, stands_for, others } => (
            fixtures::sources_with(repo, &target, level, file, stands_for, *others)?,
            target.join("lab-copy/target"),
        ),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&dir)
        .args(["build", "--quiet", "--example", level.example])
        .arg("--target-dir")
        .arg(&target);
    if !matches!(source, Source::Reference) {
        command.args(["--features", level.feature]);
    }
    // cargo's messages as JSON: the compiler's, rendered, and the path of
    // the program it built (the copy of the sources shares the target
    // directory, so the uplifted examples/NAME may be the other's).
    command.arg("--message-format=json");
    let output = command.output().map_err(|e| format!("cargo could not be started: {e}"))?;
    let mut exe = None;
    let mut messages = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        match message["reason"].as_str() {
            Some("compiler-artifact") if message["target"]["name"] == level.example => {
                exe = message["executable"].as_str().map(PathBuf::from);
            }
            Some("compiler-message") => {
                let rendered = message["message"]["rendered"].as_str().unwrap_or_default();
                let in_lab = message["message"]["spans"].as_array().is_some_and(|spans| {
                    spans.iter().any(|s| {
                        s["file_name"]
                            .as_str()
                            .is_some_and(|f| level.lab_files.iter().any(|l| f.ends_with(l)))
                    })
                });
                messages.push((in_lab, rendered.to_string()));
            }
            _ => {}
        }
    }
    if !output.status.success() {
        println!("{}", messages.iter().map(|(_, m)| m.as_str()).collect::<String>());
        println!("{}", String::from_utf8_lossy(&output.stderr));
        return Err(format!(
            "it does not compile yet: the compiler's messages above say where ({})",
            level.lab_files.join(", ")
        ));
    }
    // The warnings worth showing point into the lab's file: an ignored
    // Result the likeliest.
    let warnings =
        messages.into_iter().filter(|(in_lab, _)| *in_lab).map(|(_, m)| m.trim_end().to_string()).collect();
    let exe = exe.ok_or_else(|| format!("cargo built no {} example", level.example))?;
    Ok((exe, warnings))
}

fn judge(exe: &Path, level: &Level, scenario: &Scenario, table: &[Mistake], limit: Duration) -> Verdict {
    let expected = match scenario::recorded(level, scenario) {
        Ok(text) => text,
        Err(error) => return Verdict::Unjudged(format!("no recording to compare with: {error}")),
    };
    let before = scenario::ours_on_this_machine();
    let transcript = scenario::run_within(exe, level, scenario, limit);
    let left_behind: BTreeSet<PathBuf> =
        scenario::ours_on_this_machine().difference(&before).cloned().collect();
    // Whatever the verdict, the next scenario starts on a clean machine.
    scenario::sweep(&left_behind);
    let run = match transcript {
        Ok(text) => Run { transcript: scenario::normalize(&text), left_behind },
        Err(error) => return Verdict::Unjudged(format!("the example could not be run: {error}")),
    };
    if let Some((place, hint)) = unfinished(&run.transcript) {
        return Verdict::NotDone { hint, place };
    }
    let output = run.output();
    for mistake in table.iter().filter(|m| m.scenarios.is_empty() || m.scenarios.contains(&scenario.name)) {
        if let Some(at) = mistake.shows_as.shows_in(&run) {
            let mut context = match at {
                Evidence::Output(at) => around(&output, at),
                Evidence::Call(at) => {
                    let calls: Vec<&str> = run.calls().collect();
                    let mut told = vec!["the calls, as narrated:".to_string()];
                    told.extend(around(&calls, at));
                    told
                }
                Evidence::Nowhere => last_lines(&output),
            };
            add_last_words(&mut context, &output);
            if let Evidence::Output(at) = at {
                add_calls_before(&mut context, &run.transcript, at);
            }
            return Verdict::Mistake {
                name: mistake.name,
                found: mistake.shows_as.found(),
                hint: mistake.hint,
                context,
                left: run.left_behind.len(),
            };
        }
    }
    if run.killed() {
        return Verdict::Killed { seconds: limit.as_secs() };
    }
    if !run.left_behind.is_empty() {
        return Verdict::LeftBehind(run.left_behind.iter().map(|p| p.display().to_string()).collect());
    }
    let expected = output_of(&expected);
    match expected.iter().zip(&output).position(|(e, g)| e != g) {
        None if expected.len() == output.len() => Verdict::Pass,
        differs => {
            let at = differs.unwrap_or(expected.len().min(output.len()));
            let mut context = around(&output, at.min(output.len().saturating_sub(1)));
            context
                .push(format!("(the reference says here: {})", expected.get(at).unwrap_or(&"nothing more")));
            add_last_words(&mut context, &output);
            add_calls_before(&mut context, &run.transcript, at);
            Verdict::Differs { hint: scenario.hint, context }
        }
    }
}

/// Two lines either side of line `at` of `lines`, that one marked.
fn around(lines: &[&str], at: usize) -> Vec<String> {
    let from = at.saturating_sub(2);
    let to = (at + 3).min(lines.len());
    (from..to).map(|i| format!("{} {}", if i == at { ">" } else { " " }, lines[i])).collect()
}

/// The program's last words, its error sentence if it failed, unless the
/// context shows them already.
fn add_last_words(context: &mut Vec<String>, output: &[&str]) {
    let said = |l: &&&str| !l.starts_with("$ ") && !l.starts_with('[') && !l.trim().is_empty();
    if let Some(last) = output.iter().rev().find(said) {
        if !context.iter().any(|c| c.ends_with(*last)) {
            context.push(format!("(its last words: {last})"));
        }
    }
}

/// The narration as the explanation: the last calls told before output
/// line `at`.
fn add_calls_before(context: &mut Vec<String>, transcript: &str, at: usize) {
    let mut calls = Vec::new();
    let mut seen = 0;
    for line in transcript.lines() {
        match line.trim_start().strip_prefix("> ") {
            Some(call) => calls.push(call),
            None if seen == at => break,
            None => seen += 1,
        }
    }
    if !calls.is_empty() {
        context.push("the calls told before that line:".to_string());
        context.extend(calls.iter().skip(calls.len().saturating_sub(3)).map(|call| format!("    {call}")));
    }
}

/// The program's last lines, where its own error sentence would be.
fn last_lines(lines: &[&str]) -> Vec<String> {
    lines.iter().skip(lines.len().saturating_sub(3)).map(|l| format!("  {l}")).collect()
}

/// Where a `todo!()` stopped the program, and what its message says.
fn unfinished(transcript: &str) -> Option<(String, String)> {
    let mut lines = transcript.lines();
    while let Some(line) = lines.next() {
        if let Some(at) = line.split_once("panicked at ").map(|(_, at)| at.trim_end_matches(':')) {
            // chapters/01-chroot/../../labs/01-chroot/jail.rs:19:5 -> labs/01-chroot/jail.rs:19
            let at = at.find("labs/").map_or(at, |start| &at[start..]);
            let place = at.rsplit_once(':').map_or(at, |(file_line, _column)| file_line);
            let message = lines.next().unwrap_or_default();
            if let Some(hint) = message.strip_prefix("not yet implemented: ") {
                return Some((place.to_string(), hint.to_string()));
            }
            if message == "not yet implemented" {
                return Some((place.to_string(), "this piece".to_string()));
            }
        }
    }
    None
}

/// Tells how a level went: each failure once, with the scenarios that
/// fail the same way.
fn report(level: &Level, source: &Source, outcome: &Option<Outcome>) {
    println!("level {} ({}): {}", level.number, level.name, whose(source, Some(level)));
    let Some(outcome) = outcome else { return };
    for warning in &outcome.warnings {
        println!("{}", indent(warning, 4));
    }
    let mut told: Vec<String> = Vec::new();
    for (scenario, verdict) in &outcome.verdicts {
        let title = format!("{} ({})", scenario.name, scenario.shows);
        let Some(key) = key_of(verdict) else {
            println!("  ✓ {title}");
            continue;
        };
        if told.contains(&key) {
            continue;
        }
        println!("  ✗ {title}\n{}", indent(&explain(scenario, verdict), 6));
        let same: Vec<&str> = outcome
            .verdicts
            .iter()
            .filter(|(s, v)| s.name != scenario.name && key_of(v).as_ref() == Some(&key))
            .map(|(s, _)| s.name)
            .collect();
        if !same.is_empty() {
            println!("      and {} more scenarios fail the same way: {}", same.len(), same.join(", "));
        }
        told.push(key);
    }
    let total = outcome.verdicts.len();
    if outcome.done() {
        println!("  level {} done: all {total} scenarios behave like the reference\n", level.number);
    } else {
        println!(
            "  level {}: {} of {total} scenarios behave like the reference; `cargo lab hint {}` when stuck\n",
            level.number,
            outcome.passed(),
            level.number
        );
    }
}

/// What a failed scenario shows, and the hint for it.
fn explain(scenario: &Scenario, verdict: &Verdict) -> String {
    match verdict {
        Verdict::Pass => String::new(),
        Verdict::NotDone { place, hint } => format!("not done yet, at {place}: {hint}"),
        Verdict::Mistake { found, hint, context, .. } => {
            format!("{found}:\n{}\nhint: {hint}", context.join("\n"))
        }
        Verdict::Differs { hint, context } => {
            format!("its output differs from the reference's:\n{}\nhint: {hint}", context.join("\n"))
        }
        Verdict::Killed { seconds } => {
            format!("killed after {seconds} s: does it loop?\nhint: {}", scenario.hint)
        }
        Verdict::LeftBehind(what) => format!(
            "it left this behind (now removed): {}\nhint: what a run makes must go on every path; \
             a mount is detached before its directory is removed",
            what.join(", ")
        ),
        Verdict::Unjudged(why) => why.clone(),
    }
}

/// The key failures are grouped by: the same mistake, the same todo!(),
/// the same difference.
fn key_of(verdict: &Verdict) -> Option<String> {
    match verdict {
        Verdict::Pass => None,
        Verdict::NotDone { place, .. } => Some(format!("todo {place}")),
        Verdict::Mistake { name, .. } => Some(format!("mistake {name}")),
        Verdict::Differs { context, .. } => Some(format!("differs {}", context.join("\n"))),
        Verdict::Killed { .. } => Some("killed".to_string()),
        Verdict::LeftBehind(what) => Some(format!("left {what:?}")),
        Verdict::Unjudged(why) => Some(format!("unjudged {why}")),
    }
}

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines().map(|l| format!("{pad}{l}")).collect::<Vec<_>>().join("\n")
}
