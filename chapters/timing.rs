//! What the benchmarks (`scripts/bench`) share: a median, and the table
//! each prints of contenders timed in one run, with the first one's median
//! divided by each one's.

use std::time::Duration;

/// The middle time of a run's times.
pub fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

/// A time in milliseconds.
pub fn ms(time: Duration) -> f64 {
    time.as_secs_f64() * 1000.0
}

/// Prints `what`, then a line for each contender: its name, median,
/// fastest, the first contender's median divided by its own, and its note.
pub fn report(what: &str, names: &[&str], times: &[Vec<Duration>], notes: &[&str]) {
    let medians: Vec<Duration> = times.iter().map(|t| median(t)).collect();
    let width = names.iter().map(|n| n.len()).max().unwrap_or(0).max(8);
    let first = names.first().copied().unwrap_or("the first");
    println!("{what}, {} runs each, interleaved:", times.first().map_or(0, Vec::len));
    println!("{:<width$} {:>10} {:>10} {:>16}", "", "median", "fastest", format!("{first} ÷ it"));
    for (which, name) in names.iter().enumerate() {
        let fastest = times[which].iter().min().copied().unwrap_or_default();
        let ratio = medians[0].as_secs_f64() / medians[which].as_secs_f64();
        let note = notes.get(which).copied().unwrap_or("");
        println!("{name:<width$} {:>8.2}ms {:>8.2}ms {ratio:>16.2}  {note}", ms(medians[which]), ms(fastest));
    }
}
