//! `cargo run --example 02-namespaces -- [OPTIONS] [COMMAND]...`

use std::process::ExitCode;

use clap::Parser;
use nix::sched::CloneFlags;
use nix::unistd::Pid;
use podlab::chroot::{CommandOptions, RootfsOptions};
use podlab::error::{finish, Result};
use podlab::namespaces::{self, IdMap, Then};
use podlab::{kernel, narrate};

/// Level 2: run a command in new namespaces, or join a running container's.
///
/// Builds level 1's rootfs, then clone(2)s the command's process into new
/// namespaces: each gives it its own copy of one thing the host has. In its
/// own mount namespace it swaps the root of the whole mount tree for the
/// rootfs (pivot_root) instead of level 1's chroot. With no namespace
/// option, it takes those of --all.
#[derive(Parser)]
#[command(
    name = "02-namespaces",
    after_help = "Examples (as root):\n  \
        cargo run --example 02-namespaces -- --uts --hostname box hostname\n  \
        cargo run --example 02-namespaces -- --pid --mount ps\n  \
        cargo run --example 02-namespaces -- --user --pid --mount id\n  \
        cargo run --example 02-namespaces -- --mount --escape\n  \
        cargo run --example 02-namespaces -- --all sleep 1000      (then, from another terminal:)\n  \
        cargo run --example 02-namespaces -- --join PID sh         (PID: told as `clone(...) = child pid PID`)\n\n\
        The same with util-linux: unshare --uts --pid --fork --mount-proc --root=ROOTFS COMMAND, \
        and nsenter --target PID --all COMMAND"
)]
struct Args {
    /// Its own host name (UTS namespace).
    #[arg(long)]
    uts: bool,
    /// Its own process numbers: the command is PID 1 (PID namespace; add --mount for a /proc that shows it).
    #[arg(long)]
    pid: bool,
    /// Its own mount table, with the rootfs as root by pivot_root (mount namespace).
    #[arg(long)]
    mount: bool,
    /// Its own System V IPC objects and POSIX message queues (IPC namespace).
    #[arg(long)]
    ipc: bool,
    /// Its own network interfaces, routes and ports: only lo (network namespace).
    #[arg(long)]
    net: bool,
    /// Its own user and group ids: root inside, an ordinary id outside (user namespace).
    #[arg(long)]
    user: bool,
    /// The set a container gets: --uts --pid --mount --ipc --net (add --user for rootless).
    #[arg(long)]
    all: bool,

    /// The host name inside (implies --uts).
    #[arg(long, value_name = "NAME")]
    hostname: Option<String>,

    /// With --user: which ids outside stand for the ids inside.
    #[arg(long, value_name = "INSIDE:OUTSIDE:COUNT", default_value = "0:100000:65536")]
    uid_map: IdMap,

    /// Try level 1's chroot escape inside, instead of a command.
    #[arg(long, conflicts_with_all = ["command", "join"])]
    escape: bool,

    /// Run the command in the namespaces of the running process PID instead.
    #[arg(long, value_name = "PID", conflicts_with_all = ["uts", "pid", "mount", "ipc", "net", "user", "all", "hostname"])]
    join: Option<i32>,

    #[command(flatten)]
    rootfs: RootfsOptions,

    #[command(flatten)]
    run: CommandOptions,
}

impl Args {
    fn namespaces(&self) -> CloneFlags {
        let chosen = [
            (self.uts || self.hostname.is_some(), CloneFlags::CLONE_NEWUTS),
            (self.pid, CloneFlags::CLONE_NEWPID),
            (self.mount, CloneFlags::CLONE_NEWNS),
            (self.ipc, CloneFlags::CLONE_NEWIPC),
            (self.net, CloneFlags::CLONE_NEWNET),
            (self.user, CloneFlags::CLONE_NEWUSER),
            (self.all, namespaces::CONTAINER),
        ];
        let flags =
            chosen.iter().filter(|(on, _)| *on).fold(CloneFlags::empty(), |all, (_, flag)| all | *flag);
        if flags.is_empty() {
            namespaces::CONTAINER
        } else {
            flags
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    narrate::set_quiet(args.run.quiet);
    narrate::set_verbose(args.run.verbose);
    finish("02-namespaces", run(args))
}

fn run(args: Args) -> Result<ExitCode> {
    kernel::require_root("clone(2) with new namespaces needs CAP_SYS_ADMIN")?;
    let command = args.run.command_or_shell();
    if let Some(pid) = args.join {
        return Ok(namespaces::run_joined(Pid::from_raw(pid), &command)?.exit_code());
    }
    let hostname = args.hostname.as_deref().unwrap_or(namespaces::DEFAULT_HOSTNAME);
    namespaces::check_hostname(hostname)?;
    namespaces::check_kernel(args.namespaces())?;
    let rootfs = args.rootfs.create_in_one_line()?;
    if args.namespaces().contains(CloneFlags::CLONE_NEWUSER) {
        rootfs.let_other_ids_in()?;
    }
    let then = if args.escape { Then::Escape } else { Then::Run(command) };
    let ids = namespaces::IdMaps::same(args.uid_map);
    let exit = namespaces::run(rootfs.path(), args.namespaces(), hostname, &ids, &then)?;
    args.rootfs.finish(rootfs);
    Ok(exit.exit_code())
}
