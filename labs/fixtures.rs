//! Proof that the lab checker can fail, and fails for the right reason.
//!
//! Each lab keeps, in labs/NN-name/fixtures/, wrong solutions a student
//! plausibly writes (mutants) and one correct solution written differently
//! from the reference (alternative.rs, a whole file). A mutant is kept as
//! an edit of the reference, `<name>.mutant`: a few lines of it and what
//! the mutant has in their place, so that it follows the reference as that
//! changes, and shows at a glance what is wrong. Each fixture says in its
//! first lines which mistake of the level's table it makes
//! (`//! expect: NAME`), or that it passes (`//! expect: pass`), and, in a
//! lab of several files, which one it stands for (`//! file: NAME.rs`).
//! `cargo lab fixtures` checks each one in its lab file's place, the
//! lab's other files the reference's, in a copy of the sources, so that
//! the student's own files are never touched.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use podlab::scenario::{self, Level};

use crate::{check, Others, Source, Verdict};

/// Checks every fixture of `levels`; fails if any does not come out as it says.
pub fn prove(levels: &[&Level], limit: Duration) -> ExitCode {
    let before = scenario::ours_on_this_machine();
    let mut wrong = 0;
    let mut proven = 0;
    for level in levels {
        let dir = lab_dir(level).join("fixtures");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "rs" || e == "mutant"))
            .collect();
        files.sort();
        let mutants = files.iter().filter(|p| p.extension().is_some_and(|e| e == "mutant")).count();
        if mutants < 3 || files.len() == mutants {
            println!(
                "✗ level {}: {} holds {mutants} mutants and {} alternatives; each lab keeps at least 3 and one",
                level.number,
                dir.display(),
                files.len() - mutants
            );
            wrong += 1;
        }
        for file in files {
            let name = file.file_name().unwrap_or_default().to_string_lossy().into_owned();
            let Some(expect) = expected(&file) else {
                println!("✗ level {} {name}: no `//! expect: NAME` (or `pass`) line", level.number);
                wrong += 1;
                continue;
            };
            let source = match materialize(level, &file) {
                Ok((file, stands_for)) => Source::File { file, stands_for, others: Others::Reference },
                Err(why) => {
                    println!("✗ level {} {name}: {why}", level.number);
                    wrong += 1;
                    continue;
                }
            };
            let Some(outcome) = check(level, &source, limit) else {
                println!("✗ level {} {name}: does not compile", level.number);
                wrong += 1;
                continue;
            };
            let failed: Vec<&Verdict> =
                outcome.verdicts.iter().map(|(_, v)| v).filter(|v| **v != Verdict::Pass).collect();
            let verdict = if expect == "pass" {
                match failed.first() {
                    None => Ok("passes".to_string()),
                    Some(v) => Err(format!("should pass, but {}", crate::key_of(v).unwrap_or_default())),
                }
            } else {
                // Every scenario it fails must fail by its mistake, and one at least.
                let others: Vec<String> = failed
                    .iter()
                    .filter(|v| !matches!(v, Verdict::Mistake { name, .. } if *name == expect))
                    .filter_map(|v| crate::key_of(v))
                    .collect();
                let hint = failed.iter().find_map(|v| match v {
                    Verdict::Mistake { hint, left, .. } => Some((*hint, *left)),
                    _ => None,
                });
                match (failed.is_empty(), others.first(), hint) {
                    (true, _, _) => Err("passes: the checker cannot tell this mistake".to_string()),
                    (_, Some(other), _) => Err(format!("fails, but not only by {expect}: {other}")),
                    (_, None, Some((_, left))) if left > 0 => {
                        Err(format!("fails by {expect}, but its run left {left} things behind"))
                    }
                    (_, None, Some((hint, _))) => Ok(format!(
                        "fails in {} of {} scenarios with the hint for {expect}: {hint}",
                        failed.len(),
                        outcome.verdicts.len()
                    )),
                    (_, None, None) => Err("fails without a hint".to_string()),
                }
            };
            match verdict {
                Ok(what) => {
                    proven += 1;
                    println!("✓ level {} {name}: {what}", level.number);
                }
                Err(what) => {
                    wrong += 1;
                    println!("✗ level {} {name}: {what}", level.number);
                }
            }
        }
    }
    let left: Vec<PathBuf> = scenario::ours_on_this_machine().difference(&before).cloned().collect();
    if !left.is_empty() {
        println!("✗ the fixtures' runs left {left:?} behind");
        wrong += 1;
    }
    println!("fixtures: {proven} proven, {wrong} wrong");
    if wrong == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The lab's folder: labs/NN-name.
pub fn lab_dir(level: &Level) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let first = level.lab_files.first().map(|f| repo.join(f));
    first.and_then(|f| f.parent().map(Path::to_path_buf)).unwrap_or_else(|| repo.join("labs"))
}

/// Which of the level's lab files `fixture` stands for: the one its
/// `//! file: NAME.rs` line names, the one of its own name, or the only one.
pub fn stands_for(level: &Level, fixture: &Path) -> Result<&'static str, String> {
    let text = std::fs::read_to_string(fixture).unwrap_or_default();
    let said = text.lines().take_while(|l| l.starts_with("//!")).find_map(|l| l.strip_prefix("//! file: "));
    let name = said.map(str::trim).or_else(|| fixture.file_name().and_then(|n| n.to_str()));
    let named = |lab_file: &&&str| Path::new(lab_file).file_name().and_then(|n| n.to_str()) == name;
    match (level.lab_files.iter().find(named), level.lab_files) {
        (Some(lab_file), _) => Ok(lab_file),
        (None, [only]) if said.is_none() => Ok(only),
        _ => Err(format!(
            "say which of {} it stands for, in a line `//! file: NAME.rs` at its top",
            level.lab_files.join(", ")
        )),
    }
}

/// The reference module a lab file stands for: labs/NN-name/FILE.rs is
/// chapters/NN-name/FILE.rs.
fn reference_of(lab_file: &str) -> Result<PathBuf, String> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lab_file = Path::new(lab_file);
    match (lab_file.parent().and_then(Path::file_name), lab_file.file_name()) {
        (Some(dir), Some(name)) => Ok(repo.join("chapters").join(dir).join(name)),
        _ => Err(format!("{} names no file", lab_file.display())),
    }
}

/// The Rust file a fixture stands for, and which lab file it takes the
/// place of: an alternative as it is, a mutant made from the reference by
/// its edits (written under the target directory).
pub fn materialize(level: &Level, fixture: &Path) -> Result<(PathBuf, &'static str), String> {
    let lab_file = stands_for(level, fixture)?;
    if fixture.extension().is_none_or(|e| e != "mutant") {
        return Ok((fixture.to_path_buf(), lab_file));
    }
    let reference = reference_of(lab_file)?;
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    // The reference without its book anchors, which no edit needs to name.
    let mut text: String =
        read(&reference)?.lines().filter(|l| !l.contains("// ANCHOR")).map(|l| format!("{l}\n")).collect();
    for (was, is) in edits(&read(fixture)?)? {
        match text.matches(&was).count() {
            1 => text = text.replacen(&was, &is, 1),
            0 => return Err(format!("these lines are not in {} (any more):\n{was}", reference.display())),
            _ => return Err(format!("these lines are in {} more than once:\n{was}", reference.display())),
        }
    }
    let made = crate::target_dir()
        .join("lab-copy/mutants")
        .join(fixture.with_extension("rs").file_name().unwrap_or_default());
    let write = |e: std::io::Error| format!("cannot write {}: {e}", made.display());
    std::fs::create_dir_all(made.parent().unwrap_or(&made)).map_err(write)?;
    std::fs::write(&made, text).map_err(write)?;
    Ok((made, lab_file))
}

/// A mutant's edits: the reference's lines between `<<<<<<< reference`
/// and `=======`, and what the mutant has in their place, up to
/// `>>>>>>> mutant`.
fn edits(mutant: &str) -> Result<Vec<(String, String)>, String> {
    let mut edits = Vec::new();
    let mut lines = mutant.lines();
    while let Some(line) = lines.next() {
        if line != "<<<<<<< reference" {
            continue;
        }
        let mut block = |end: &str| -> Result<String, String> {
            let mut text = String::new();
            for line in lines.by_ref() {
                if line == end {
                    return Ok(text);
                }
                text.push_str(line);
                text.push('\n');
            }
            Err(format!("an edit has no {end:?} line"))
        };
        let was = block("=======")?;
        let is = block(">>>>>>> mutant")?;
        edits.push((was, is));
    }
    if edits.is_empty() {
        return Err("no edit (<<<<<<< reference, =======, >>>>>>> mutant)".to_string());
    }
    Ok(edits)
}

/// What a fixture says it is: the name of its mistake, or "pass".
fn expected(file: &Path) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let line =
        text.lines().take_while(|l| l.starts_with("//!")).find_map(|l| l.strip_prefix("//! expect: "))?;
    Some(line.trim().to_string())
}

/// A copy of the sources under the target directory with `file` in the
/// place of the lab file `stands_for`, and the lab's other files the
/// student's or the reference's (`others`); its path. Files are written
/// only when they changed, so that cargo rebuilds only what must be.
pub fn sources_with(
    repo: &Path,
    target: &Path,
    level: &Level,
    file: &Path,
    stands_for: &str,
    others: Others,
) -> Result<PathBuf, String> {
    let copy = target.join("lab-copy/sources");
    let failed = |e: std::io::Error| format!("could not copy the sources to {}: {e}", copy.display());
    for name in ["Cargo.toml", "Cargo.lock"] {
        sync(&repo.join(name), &copy.join(name)).map_err(failed)?;
    }
    for dir in ["chapters", "labs"] {
        sync_tree(&repo.join(dir), &copy.join(dir)).map_err(failed)?;
    }
    for lab_file in level.lab_files {
        if *lab_file == stands_for {
            sync(file, &copy.join(lab_file)).map_err(failed)?;
        } else if others == Others::Reference {
            sync(&reference_of(lab_file)?, &copy.join(lab_file)).map_err(failed)?;
        }
    }
    Ok(copy)
}

/// Makes `to` a copy of `from`: files that differ are written (the others
/// keep their times, so cargo rebuilds only what changed), and what `from`
/// no longer has is removed (a module moved from a file to a folder).
fn sync_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            sync_tree(&path, &to.join(entry.file_name()))?;
        } else {
            sync(&path, &to.join(entry.file_name()))?;
        }
    }
    for entry in std::fs::read_dir(to)? {
        let entry = entry?;
        if !from.join(entry.file_name()).exists() {
            if entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            } else {
                std::fs::remove_file(entry.path())?;
            }
        }
    }
    Ok(())
}

fn sync(from: &Path, to: &Path) -> std::io::Result<()> {
    let contents = std::fs::read(from)?;
    if std::fs::read(to).ok().as_ref() != Some(&contents) {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(to, contents)?;
    }
    Ok(())
}
