//! `scripts/bench`: how long create → start → wait → delete of busybox's
//! `true` takes through podlab's runtime, runc and crun, measured in the
//! same run, interleaved, with the medians and their ratios, beside the
//! floor (unshare(1) making the same namespaces, no runtime). A measurement
//! to read, not a test: nothing here passes or fails on time.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use podlab::cgroups::Version;
use podlab::chroot::{Rootfs, BUSYBOX};
use podlab::error::{finish, Error, Result};
use podlab::timing::report;
use podlab::{kernel, narrate};

/// Time the container lifecycle through podlab's runtime, runc and crun,
/// beside the floor: the same namespaces made by unshare(1), no runtime.
#[derive(Parser)]
#[command(name = "04-runtime-bench")]
struct Args {
    /// How many runs of each runtime to time (after two to warm up).
    #[arg(long, default_value_t = 30)]
    runs: usize,
}

/// One runtime: how to make it `run` a container with a given id.
struct Contender {
    name: &'static str,
    command: Box<dyn Fn(&str) -> Command>,
    note: &'static str,
}

fn main() -> ExitCode {
    let args = Args::parse();
    narrate::set_quiet(true);
    finish("04-runtime-bench", bench(args))
}

fn bench(args: Args) -> Result<ExitCode> {
    kernel::require_root("runtimes make containers, which needs root")?;
    let rootfs = Rootfs::create(None, Path::new(BUSYBOX))?;
    let bundle = rootfs.path().parent().expect("the rootfs is in a directory of its own").to_path_buf();
    write_config(&bundle)?;
    let ours = std::env::current_exe()
        .map_err(|e| Error::new(format!("where am I? {e}")))?
        .with_file_name("04-runtime");
    if !ours.exists() {
        return Err(Error::new(
            "04-runtime is not built beside this program: run scripts/bench, which builds both",
        ));
    }

    let contenders = contenders(&ours, &bundle)?;
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); contenders.len()];
    for round in 0..args.runs + 2 {
        // Interleaved, so that whatever else the machine does falls on all alike.
        for (which, contender) in contenders.iter().enumerate() {
            let id = format!("podlab-bench-{}-{round}", contender.name);
            let started = Instant::now();
            let status = (contender.command)(&id)
                .current_dir(&bundle)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_err(|e| Error::new(format!("{} could not be started: {e}", contender.name)))?;
            let took = started.elapsed();
            if !status.success() {
                return Err(Error::new(format!("{} failed to run the bundle ({status})", contender.name)));
            }
            if round >= 2 {
                times[which].push(took);
            }
        }
        eprint!("\rround {}/{}", round + 1, args.runs + 2);
    }
    eprintln!();

    let names: Vec<&str> = contenders.iter().map(|c| c.name).collect();
    let notes: Vec<&str> = contenders.iter().map(|c| c.note).collect();
    report("create → start → wait → delete of `true`", &names, &times, &notes);
    drop(rootfs);
    Ok(ExitCode::SUCCESS)
}

fn contenders(ours: &Path, bundle: &Path) -> Result<Vec<Contender>> {
    let root = |name: &str| bundle.join(format!("{name}-root"));
    let (ours, ours_root, runc_root, crun_root) =
        (ours.to_path_buf(), root("podlab"), root("runc"), root("crun"));
    let mut all = vec![
        Contender {
            name: "podlab",
            command: Box::new(move |id| {
                let mut command = Command::new(&ours);
                command.args(["--quiet", "--root"]).arg(&ours_root).args(["run", id]);
                command
            }),
            note: "",
        },
        Contender {
            name: "runc",
            command: Box::new(move |id| {
                let mut command = Command::new("runc");
                command.arg("--root").arg(&runc_root).args(["run", id]);
                command
            }),
            note: "",
        },
    ];
    if Command::new("crun").arg("--version").output().is_ok() {
        let crun_root: PathBuf = crun_root;
        let hybrid = Version::of_this_machine()? == Version::V1;
        all.push(Contender {
            name: "crun",
            command: Box::new(move |id| {
                let root = crun_root.display().to_string();
                if hybrid {
                    // crun 1.8 refuses v1 and hybrid layouts: give it a mount
                    // namespace with cgroup2 on /sys/fs/cgroup, and no cgroups.
                    let mut command = Command::new("unshare");
                    let script = "mount -t cgroup2 none /sys/fs/cgroup && exec crun --cgroup-manager=disabled --root \"$0\" run \"$1\"";
                    command.args(["--mount", "sh", "-c", script, &root, id]);
                    command
                } else {
                    let mut command = Command::new("crun");
                    command.args(["--root", &root, "run", id]);
                    command
                }
            }),
            note: if hybrid { "(through unshare and sh, with no cgroup: this machine's cgroups are hybrid)" } else { "" },
        });
    }
    // The floor: the namespaces and /proc alone, no runtime at all, in the
    // rootfs's busybox. What a runtime adds is its time less this.
    let rootfs = bundle.join("rootfs");
    all.push(Contender {
        name: "floor",
        command: Box::new(move |_id| {
            let mut command = Command::new("unshare");
            command.args(["-fpmiun", "--mount-proc", "--root"]).arg(&rootfs).arg("/bin/true");
            command
        }),
        note: "(unshare -fpmiun --mount-proc true: the namespaces alone, no runtime)",
    });
    Ok(all)
}

/// A config for `true`, from our own `spec`.
fn write_config(bundle: &Path) -> Result<()> {
    podlab::runtime::write_default_spec(bundle, &["true".to_string()])
}
