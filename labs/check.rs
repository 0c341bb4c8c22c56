//! `cargo lab`: checks your lab work against the level's own scenarios.
//!
//! It builds the level's example with your file from labs/ in place of the
//! reference module (the level's cargo feature), runs each scenario the
//! snapshot tests run, and compares what your program says and prints with
//! the recorded reference in tests/snapshots/.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::Parser;
use podlab::scenario::{self, Level, Scenario};
use podlab::LEVELS;

/// Check your lab work: build the level with your code and replay its scenarios.
#[derive(Parser)]
#[command(
    name = "cargo lab",
    after_help = "Examples (as root):\n  \
        cargo lab               every level, done or not\n  \
        cargo lab 1             level 1 in detail\n  \
        cargo lab 1 --reference the reference code (what passing looks like)\n\n\
        Your code for level N is in labs/NN-name/; the sheet beside it says what to build."
)]
struct Args {
    /// The level to check (1, 2, ...); all of them when left out.
    level: Option<u8>,

    /// Check the reference code in chapters/ instead of your lab.
    #[arg(long)]
    reference: bool,
}

enum Verdict {
    Pass,
    NotDone { hint: String, place: String },
    Differs { line: usize, expected: String, got: String },
    NoReference(String),
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !nix::unistd::geteuid().is_root() {
        eprintln!("cargo lab: the scenarios make real chroots and mounts, so they need root: run it as root (in the course VM, `sudo -i` first)");
        return ExitCode::from(2);
    }
    let levels: Vec<&Level> =
        LEVELS.iter().copied().filter(|l| args.level.is_none_or(|n| n == l.number)).collect();
    if levels.is_empty() {
        let known: Vec<String> = LEVELS.iter().map(|l| l.number.to_string()).collect();
        eprintln!(
            "cargo lab: there is no level {:?}: the levels are {}",
            args.level.unwrap_or(0),
            known.join(", ")
        );
        return ExitCode::from(2);
    }
    let detailed = args.level.is_some();
    let mut all_done = true;
    for level in levels {
        all_done &= check_level(level, args.reference, detailed);
    }
    if all_done {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Builds and checks one level; says what passes. True if all of it does.
fn check_level(level: &Level, reference: bool, detailed: bool) -> bool {
    let whose = if reference {
        "the reference in chapters/".to_string()
    } else {
        format!("your code in {}", level.lab_file)
    };
    println!("level {} ({}): {whose}", level.number, level.name);
    let exe = match build(level, reference) {
        Ok(exe) => exe,
        Err(why) => {
            println!("  ✗ {why}\n");
            return false;
        }
    };
    let verdicts: Vec<(&Scenario, Verdict)> =
        level.scenarios.iter().map(|scenario| (scenario, judge(&exe, level, scenario))).collect();
    let passed = verdicts.iter().filter(|(_, v)| matches!(v, Verdict::Pass)).count();
    // One todo!() stops many scenarios: tell it once, with all it stops.
    let mut told_places = Vec::new();
    for (scenario, verdict) in &verdicts {
        match verdict {
            Verdict::Pass if !detailed => {}
            Verdict::NotDone { place, hint } => {
                if !told_places.contains(&place) {
                    told_places.push(place);
                    let stopped: Vec<&str> = verdicts
                        .iter()
                        .filter(|(_, v)| matches!(v, Verdict::NotDone { place: p, .. } if p == place))
                        .map(|(s, _)| s.name)
                        .collect();
                    println!("  ✗ {}\n      not done yet, at {place}: {hint}", stopped.join(", "));
                }
            }
            _ => report(scenario, verdict),
        }
    }
    let total = level.scenarios.len();
    if passed == total {
        println!("  level {} done: all {total} scenarios behave like the reference\n", level.number);
    } else {
        println!("  level {}: {passed} of {total} scenarios behave like the reference\n", level.number);
    }
    passed == total
}

/// Builds the level's example, with the lab's feature unless `reference`.
/// Lab builds get a target directory of their own so that they never stand
/// in for the reference binary the tests use.
fn build(level: &Level, reference: bool) -> Result<PathBuf, String> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo.join("target"), PathBuf::from);
    let target = if reference { target } else { target.join("lab") };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(repo)
        .args(["build", "--quiet", "--example", level.example])
        .arg("--target-dir")
        .arg(&target);
    if !reference {
        command.args(["--features", level.feature]);
    }
    match command.status() {
        Ok(status) if status.success() => Ok(target.join("debug/examples").join(level.example)),
        Ok(_) => Err(format!(
            "it does not compile yet: the compiler's messages above say where ({})",
            level.lab_file
        )),
        Err(error) => Err(format!("cargo could not be started: {error}")),
    }
}

fn judge(exe: &Path, level: &Level, scenario: &Scenario) -> Verdict {
    let expected = match scenario::recorded(level, scenario) {
        Ok(text) => text,
        Err(error) => return Verdict::NoReference(error.to_string()),
    };
    let got = match scenario::run(exe, level, scenario) {
        Ok(text) => scenario::normalize(&text),
        Err(error) => return Verdict::NoReference(format!("the example could not be run: {error}")),
    };
    if let Some((place, hint)) = unfinished(&got) {
        return Verdict::NotDone { hint, place };
    }
    let (expected, got) = (expected.trim_end(), got.trim_end());
    if expected == got {
        return Verdict::Pass;
    }
    let mut expected_lines = expected.lines();
    let mut got_lines = got.lines();
    let mut line = 1;
    loop {
        match (expected_lines.next(), got_lines.next()) {
            (Some(e), Some(g)) if e == g => line += 1,
            (e, g) => {
                let show = |l: Option<&str>| l.map_or("(nothing more)".to_string(), str::to_string);
                return Verdict::Differs { line, expected: show(e), got: show(g) };
            }
        }
    }
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

fn report(scenario: &Scenario, verdict: &Verdict) {
    let title = format!("{} ({})", scenario.name, scenario.shows);
    match verdict {
        Verdict::Pass => println!("  ✓ {title}"),
        Verdict::NotDone { .. } => unreachable!("told grouped by place"),
        Verdict::Differs { line, expected, got } => println!(
            "  ✗ {title}\n      line {line} differs from the reference:\n        expected: {expected}\n        got:      {got}\n      hint: {}",
            scenario.hint
        ),
        Verdict::NoReference(why) => println!("  ✗ {title}\n      {why}"),
    }
}
