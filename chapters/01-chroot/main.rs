//! `cargo run --example 01-chroot -- [OPTIONS] [COMMAND]...`

use std::process::ExitCode;

use clap::Parser;
use podlab::chroot::{self, CommandOptions};
use podlab::error::{finish, Result};
use podlab::{kernel, narrate};

/// Level 1: run a command inside a chroot jail built from busybox-static.
///
/// Builds a root filesystem (directories, a static busybox, a link per
/// applet), forks, and in the child calls chroot(2) and chdir("/") before
/// execve(2) of the command. Every kernel call is told on stderr as it is
/// made. The rootfs is removed afterwards, unless you keep it.
#[derive(Parser)]
#[command(
    name = "01-chroot",
    after_help = "Examples (as root):\n  \
        cargo run --example 01-chroot -- ls /\n  \
        cargo run --example 01-chroot -- sh -c 'cd /..; pwd'\n  \
        cargo run --example 01-chroot -- --escape\n  \
        cargo run --example 01-chroot              (an interactive shell in the jail)\n\n\
        The same with the system's tool: chroot ROOTFS /bin/sh"
)]
struct Args {
    /// Break out of the jail the classic way (mkdir, chroot, chdir ..) to show
    /// why chroot is not isolation.
    #[arg(long, conflicts_with = "command")]
    escape: bool,

    #[command(flatten)]
    rootfs: chroot::RootfsOptions,

    #[command(flatten)]
    run: CommandOptions,
}

fn main() -> ExitCode {
    let args = Args::parse();
    narrate::set_quiet(args.run.quiet);
    finish("01-chroot", run(args))
}

fn run(args: Args) -> Result<ExitCode> {
    kernel::require_root("chroot(2) needs CAP_SYS_CHROOT")?;
    let rootfs = args.rootfs.create()?;
    let exit = if args.escape {
        chroot::demonstrate_escape(rootfs.path())?
    } else {
        let command = args.run.command_or_shell();
        chroot::run(rootfs.path(), &command)?
    };
    args.rootfs.finish(rootfs);
    Ok(exit.exit_code())
}
