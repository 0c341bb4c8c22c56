//! `cargo lab hint N`: a level's hints, one at a time, as rustlings gives
//! them. They are the sections of labs/NN-name/hints.md; how many of them a
//! student has seen is kept in the lab's target directory.

use std::path::PathBuf;
use std::process::ExitCode;

use podlab::scenario::Level;

use crate::fixtures::lab_dir;

/// Shows hint `k` of `level`, or the next one not seen yet.
pub fn show(level: &Level, k: Option<usize>) -> ExitCode {
    let file = lab_dir(level).join("hints.md");
    let Ok(text) = std::fs::read_to_string(&file) else {
        eprintln!("cargo lab: level {} has no hints ({} is missing)", level.number, file.display());
        return ExitCode::from(2);
    };
    let hints = sections(&text);
    let seen_file = seen_file(level);
    let seen: usize =
        std::fs::read_to_string(&seen_file).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0);
    let k = k.unwrap_or(seen + 1);
    let Some((title, body)) = k.checked_sub(1).and_then(|i| hints.get(i)) else {
        eprintln!("cargo lab: level {} has hints 1 to {}", level.number, hints.len());
        return ExitCode::from(2);
    };
    println!(
        "Hint {k} of {} for level {} ({}): {title}\n\n{}\n",
        hints.len(),
        level.number,
        level.name,
        body.trim()
    );
    if k < hints.len() {
        println!("`cargo lab hint {}` for the next one, when you need it.", level.number);
    } else {
        println!("That was the last hint; the chapter's folded reference solution is the answer.");
    }
    if k > seen {
        // Best effort: not remembering only means the same hint comes again.
        let _ = std::fs::create_dir_all(seen_file.parent().unwrap_or(&seen_file));
        let _ = std::fs::write(&seen_file, k.to_string());
    }
    ExitCode::SUCCESS
}

/// The `## ` sections of a hints file: (title, text).
fn sections(text: &str) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            found.push((title.trim().to_string(), String::new()));
        } else if let Some((_, body)) = found.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    found
}

fn seen_file(level: &Level) -> PathBuf {
    crate::target_dir().join("lab").join(format!("hints-seen-{}", level.number))
}
