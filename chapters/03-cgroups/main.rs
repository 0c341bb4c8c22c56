//! `cargo run --example 03-cgroups -- [OPTIONS] [COMMAND]...`

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use podlab::cgroups::{self, Cgroup, Limits, Version};
use podlab::chroot::{CommandOptions, RootfsOptions};
use podlab::error::{finish, Result};
use podlab::{kernel, narrate};

/// Level 3: run a command in a new cgroup with limits, and report what the
/// kernel counted.
///
/// Makes a control group (under cgroup v1, one directory in each
/// controller's tree; under v2, one directory), writes the limits into its
/// files, and runs the command in level 1's rootfs as a member of it. When
/// the command ends, reads the kernel's counters (peak memory, OOM kills,
/// forks refused, CPU throttling), then removes the group.
#[derive(Parser)]
#[command(
    name = "03-cgroups",
    after_help = "Examples (as root):\n  \
        cargo run --example 03-cgroups -- --memory 16M awk 'BEGIN { s = \"x\"; while (1) s = s s }'\n  \
        cargo run --example 03-cgroups -- --pids 4 sh -c 'for i in 1 2 3 4 5; do sleep 1 & done; wait'\n  \
        cargo run --example 03-cgroups -- --cpu 0.2 --stats sh -c \"timeout 2 sh -c 'while :; do :; done'\"\n\n\
        Which cgroup version this machine has: stat -fc %T /sys/fs/cgroup (cgroup2fs: v2; tmpfs: v1)"
)]
struct Args {
    /// The most memory the group may use: 64M, 512K, 1G, or bytes. No swap beyond it.
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,

    /// The most processes (and threads) the group may hold at once.
    #[arg(long, value_name = "N")]
    pids: Option<String>,

    /// The share of one CPU the group may use: 0.5 is half a CPU, 2 two CPUs.
    #[arg(long, value_name = "CPUS")]
    cpu: Option<String>,

    /// The group's name (default: podlab- and six random characters).
    #[arg(long, value_name = "NAME")]
    cgroup: Option<String>,

    /// Also print the kernel's counters as numbers, with the time taken.
    #[arg(long)]
    stats: bool,

    #[command(flatten)]
    rootfs: RootfsOptions,

    #[command(flatten)]
    run: CommandOptions,
}

fn main() -> ExitCode {
    let args = Args::parse();
    narrate::set_quiet(args.run.quiet);
    narrate::set_verbose(args.run.verbose);
    finish("03-cgroups", run(args))
}

fn run(args: Args) -> Result<ExitCode> {
    kernel::require_root("making a cgroup and moving a process into it needs root")?;
    let limits = Limits {
        memory: args.memory.as_deref().map(cgroups::parse_size).transpose()?,
        pids: args.pids.as_deref().map(cgroups::parse_pids).transpose()?,
        cpu: args.cpu.as_deref().map(cgroups::parse_cpu).transpose()?,
    };
    let version = Version::of_this_machine()?;
    let command = args.run.command_or_shell();
    let name = args.cgroup.clone().unwrap_or_else(cgroups::unique_name);

    let rootfs = args.rootfs.create_in_one_line()?;
    let cgroup = Cgroup::create(version, &name)?;
    cgroups::write_limits(&cgroup, &limits)?;
    let started = Instant::now();
    let exit = cgroups::run(rootfs.path(), &cgroup, &command)?;
    let usage = cgroups::read_usage(&cgroup);
    let wall = started.elapsed();
    drop(cgroup);
    args.rootfs.finish(rootfs);

    for line in cgroups::report(&limits, &usage) {
        println!("{line}");
    }
    if args.stats {
        for line in cgroups::figures(&usage, wall) {
            println!("{line}");
        }
    }
    Ok(exit.exit_code())
}
