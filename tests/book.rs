//! The book quotes the tested sources and the recorded runs; these tests
//! make sure every quote still finds what it quotes, and every link its page.
//! (`mdbook build` is run by scripts/test as well; it reports a missing file
//! but not a missing anchor, which would quietly show an empty listing.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn book_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src")
}

fn pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(book_src())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    pages
}

/// `{{#include path:what}}` directives in a page: (path, what).
fn includes(text: &str) -> Vec<(String, Option<String>)> {
    text.split("{{#include ")
        .skip(1)
        .map(|rest| {
            let directive = &rest[..rest.find("}}").expect("an include ends with }}")];
            match directive.split_once(':') {
                Some((path, what)) => (path.trim().to_string(), Some(what.trim().to_string())),
                None => (directive.trim().to_string(), None),
            }
        })
        .collect()
}

/// The lines of a page that are prose: outside ``` fences.
fn prose_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut in_fence = false;
    text.lines().filter(move |line| {
        let fence = line.trim_start().starts_with("```");
        in_fence ^= fence;
        !fence && !in_fence
    })
}

/// Markdown link targets `](target)` in a page, outside code.
fn links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in prose_lines(text) {
        for rest in line.split("](").skip(1) {
            if let Some(end) = rest.find(')') {
                found.push(rest[..end].to_string());
            }
        }
    }
    found
}

/// mdbook's heading ids: lower case, spaces to dashes, most punctuation dropped.
fn heading_ids(text: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for line in prose_lines(text).filter(|line| line.starts_with('#')) {
        let title = line.trim_start_matches('#').trim();
        let id: String = title
            .chars()
            .filter_map(|c| match c {
                c if c.is_alphanumeric() || c == '_' || c == '-' => Some(c.to_ascii_lowercase()),
                ' ' => Some('-'),
                _ => None,
            })
            .collect();
        ids.insert(id);
    }
    ids
}

#[test]
fn every_include_finds_its_file_and_anchor() {
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for (path, what) in includes(&text) {
            let file = page.parent().unwrap().join(&path);
            let source = std::fs::read_to_string(&file)
                .unwrap_or_else(|_| panic!("{}: includes {path}, which does not exist", page.display()));
            match what.as_deref() {
                None => {}
                Some(lines) if lines.starts_with(|c: char| c.is_ascii_digit()) => {
                    // A snapshot is included from its first line after insta's header.
                    let start: usize = lines.split(':').next().unwrap().parse().unwrap();
                    if path.ends_with(".snap") {
                        let header =
                            source.lines().skip(1).position(|l| l == "---").expect("insta header") + 2;
                        assert_eq!(
                            start,
                            header + 1,
                            "{}: {path} starts after line {header}",
                            page.display()
                        );
                    }
                    assert!(
                        source.lines().count() >= start,
                        "{}: {path} is shorter than {lines}",
                        page.display()
                    );
                }
                Some(anchor) => {
                    assert!(
                        source.contains(&format!("ANCHOR: {anchor}\n"))
                            && source.contains(&format!("ANCHOR_END: {anchor}\n")),
                        "{}: {path} has no anchor {anchor:?}",
                        page.display()
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 0, "the book includes nothing: the test would prove nothing");
}

#[test]
fn every_internal_link_finds_its_page_and_heading() {
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for target in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, fragment) = match target.split_once('#') {
                Some((file, fragment)) => (file, Some(fragment)),
                None => (target.as_str(), None),
            };
            let linked = if file.is_empty() { page.clone() } else { page.parent().unwrap().join(file) };
            assert!(linked.is_file(), "{}: links to {target}, which does not exist", page.display());
            if let Some(fragment) = fragment {
                let ids = heading_ids(&std::fs::read_to_string(&linked).unwrap());
                assert!(
                    ids.contains(fragment),
                    "{}: links to {target}; {file} has headings {ids:?}",
                    page.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 0, "the book links nothing: the test would prove nothing");
}

#[test]
fn every_page_is_in_the_summary_and_every_entry_exists() {
    let summary = std::fs::read_to_string(book_src().join("SUMMARY.md")).unwrap();
    let listed: BTreeSet<String> = links(&summary).into_iter().collect();
    for entry in &listed {
        assert!(book_src().join(entry).is_file(), "SUMMARY.md lists {entry}, which does not exist");
    }
    for page in pages() {
        let name = page.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name == "SUMMARY.md" || listed.contains(&name), "{name} is not in SUMMARY.md");
    }
}

/// Every recorded run (every snapshot, of every variant) is shown
/// somewhere in the book, so a reader sees what the tests see.
#[test]
fn every_snapshot_is_shown_in_the_book() {
    let book: String = pages().iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
    let snapshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let mut checked = 0;
    for entry in std::fs::read_dir(snapshots).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".snap") {
            assert!(book.contains(&format!("snapshots/{name}:")), "the book does not show {name}");
            checked += 1;
        }
    }
    assert!(checked > 0, "no snapshots: the test would prove nothing");
}
