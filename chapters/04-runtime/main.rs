//! `cargo run --example 04-runtime -- [GLOBAL OPTIONS] <COMMAND>`: runc's
//! command line, so that the same bundle runs under ours, runc and crun.

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;

use clap::{Parser, Subcommand};
use nix::sys::signal::Signal;
use podlab::error::{finish_with, Error, Result};
use podlab::runtime::{ProcessPlan, Runtime, DEFAULT_ROOT};
use podlab::{kernel, narrate};

/// Level 4: an OCI runtime with runc's command line.
///
/// A bundle is a directory with a rootfs and a config.json. `create` sets a
/// container up from it and leaves its first process waiting; `start` lets
/// it run its program; `state` says where it is in the lifecycle (created,
/// running, paused, stopped); `kill` signals it; `delete` removes it. State is kept
/// under --root, so that each command can be a separate invocation, as
/// containerd makes them.
#[derive(Parser)]
#[command(
    name = "04-runtime",
    after_help = "Examples (as root, in a bundle directory with a rootfs/):\n  \
        04-runtime spec                       write a default config.json\n  \
        04-runtime run c1                     create, start, wait, delete\n  \
        04-runtime create c1 && 04-runtime state c1 && 04-runtime start c1\n  \
        04-runtime kill c1 KILL && 04-runtime delete c1\n\n\
        The same with runc: replace 04-runtime by runc."
)]
struct Args {
    /// Where containers' state is kept.
    #[arg(long, global = true, value_name = "DIR", default_value = DEFAULT_ROOT)]
    root: PathBuf,

    /// Where to write the log; containerd passes it. Narration is off then.
    #[arg(long, global = true, value_name = "FILE")]
    log: Option<PathBuf>,

    /// The log's format (text or json), as containerd passes it.
    #[arg(long, global = true, value_name = "FORMAT", default_value = "text")]
    log_format: String,

    /// Pass descriptors 3 to 3+N-1 on to the program (create, run, exec),
    /// besides stdin, stdout and stderr; all others are closed on exec.
    #[arg(long, global = true, value_name = "N", default_value_t = 0)]
    preserve_fds: u32,

    /// Accepted, and what podlab does anyway: no new session keyring per
    /// container (containerd may pass it).
    #[arg(long, global = true)]
    no_new_keyring: bool,

    /// Refused: cgroups are managed through the cgroup file system, not systemd.
    #[arg(long, global = true)]
    systemd_cgroup: bool,

    /// Do not narrate the kernel calls.
    #[arg(short, long, global = true)]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a default config.json into the bundle (busybox's sh in ./rootfs).
    Spec {
        /// The bundle directory.
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// The container's program and its arguments, instead of sh (runc's
        /// spec has no such option: edit process.args in config.json there).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Set a container up from a bundle and leave it waiting for start.
    Create {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// Write the container's first process's pid into FILE.
        #[arg(long, value_name = "FILE")]
        pid_file: Option<PathBuf>,
        /// Where to send a terminal's master end (process.terminal: true).
        #[arg(long, value_name = "SOCKET")]
        console_socket: Option<PathBuf>,
        id: String,
    },
    /// Let a created container run its program.
    Start { id: String },
    /// Print a container's state as JSON.
    State { id: String },
    /// Send a signal (default SIGTERM) to a container's first process.
    Kill {
        /// Signal every process in the container's cgroup, not only the first.
        #[arg(short, long)]
        all: bool,
        id: String,
        /// A name (TERM, SIGKILL) or a number.
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Remove a stopped container (--force: kill it first).
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// create, start, wait for the end, delete; exits as the container did.
    Run {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        #[arg(long, value_name = "FILE")]
        pid_file: Option<PathBuf>,
        id: String,
    },
    /// Run another process in a running container.
    Exec {
        /// A process.json to run, instead of COMMAND with the container's own settings.
        #[arg(short, long, value_name = "FILE")]
        process: Option<PathBuf>,
        /// Return once the process runs, instead of waiting for it.
        #[arg(short, long)]
        detach: bool,
        /// Give the process a terminal (its master end goes to --console-socket).
        #[arg(short, long)]
        tty: bool,
        /// Where to send the terminal's master end.
        #[arg(long, value_name = "SOCKET")]
        console_socket: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        pid_file: Option<PathBuf>,
        /// An environment variable to add or replace, NAME=VALUE.
        #[arg(short, long, value_name = "NAME=VALUE")]
        env: Vec<String>,
        /// The working directory inside the container.
        #[arg(long, value_name = "DIR")]
        cwd: Option<PathBuf>,
        /// The user to run as: UID or UID:GID.
        #[arg(short, long, value_name = "UID[:GID]")]
        user: Option<String>,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Print what this runtime supports, as JSON (the runtime spec's features).
    Features,
    /// Change a living container's limits: those given, the others as they are.
    Update {
        /// A linux.resources object as JSON, "-" for standard input (as
        /// containerd passes it); the options below go on top.
        #[arg(short, long, value_name = "FILE")]
        resources: Option<PathBuf>,
        /// Memory limit: 64M, 512K, 1G.
        #[arg(long, value_name = "SIZE")]
        memory: Option<String>,
        /// CPU shares: the weight when CPUs are contended (1024 by default).
        #[arg(long, value_name = "N")]
        cpu_share: Option<u64>,
        /// The most processes at once.
        #[arg(long, value_name = "N")]
        pids_limit: Option<String>,
        /// CPU time per period, in microseconds.
        #[arg(long, value_name = "US")]
        cpu_quota: Option<u64>,
        /// The period, in microseconds (default 100000).
        #[arg(long, value_name = "US")]
        cpu_period: Option<u64>,
        id: String,
    },
    /// Freeze every process of a created or running container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// List the processes of a container: `ps -ef`'s lines for them, or
    /// their pids as JSON.
    Ps {
        /// table (ps's own output), or json (the pids).
        #[arg(short, long, default_value = "table")]
        format: String,
        id: String,
        /// Options for ps, instead of -ef.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "PS OPTIONS")]
        ps_options: Vec<String>,
    },
    /// List the containers under --root.
    List {
        /// table, or json (the states, as `state` prints each).
        #[arg(short, long, default_value = "table")]
        format: String,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    narrate::set_quiet(args.quiet || args.log.is_some());
    // Opened now, on the host's paths: exec fails, if it does, inside the
    // container's mount namespace, where the path means nothing.
    let log =
        args.log.as_deref().and_then(podlab::runtime::open_log).map(|file| (file, args.log_format == "json"));
    let result = run(args);
    // containerd's shim reads the log file to say why a runtime failed.
    if let (Err(error), Some((mut file, json))) = (&result, log) {
        podlab::runtime::log_error(&mut file, json, &error.to_string());
    }
    // Errors end with 1, as runc's do: containerd and scripts judge by it.
    finish_with("04-runtime", result, 1)
}

fn run(args: Args) -> Result<ExitCode> {
    if args.systemd_cgroup {
        return Err(Error::new(
            "--systemd-cgroup is not supported: podlab manages cgroups through the cgroup file system; leave the option out",
        ));
    }
    if !matches!(args.log_format.as_str(), "text" | "json") {
        return Err(Error::new(format!("--log-format {:?}: the formats are text and json", args.log_format)));
    }
    if let Command::Features = &args.command {
        // What is not reported is left out, not written as null.
        let mut features =
            serde_json::to_value(podlab::runtime::features()).expect("features are plain data");
        drop_nulls(&mut features);
        println!("{}", serde_json::to_string_pretty(&features).expect("features are plain data"));
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Spec { bundle, command } = &args.command {
        podlab::runtime::write_default_spec(bundle, command)?;
        return Ok(ExitCode::SUCCESS);
    }
    kernel::require_root("making containers needs root")?;
    let runtime = Runtime::new(&args.root)?.preserving_fds(args.preserve_fds);
    match args.command {
        Command::Spec { .. } | Command::Features => unreachable!("handled above"),
        Command::Create { bundle, pid_file, console_socket, id } => {
            runtime.create(&id, &bundle, pid_file.as_deref(), console_socket.as_deref())?;
        }
        Command::Start { id } => runtime.start(&id)?,
        Command::State { id } => {
            let state = runtime.state(&id)?;
            println!("{}", serde_json::to_string_pretty(&state).expect("a state is plain data"));
        }
        Command::Kill { all, id, signal } => runtime.kill(&id, parse_signal(&signal)?, all)?,
        Command::Delete { force, id } => runtime.delete(&id, force)?,
        Command::Exec { process, detach, tty, console_socket, pid_file, env, cwd, user, id, command } => {
            let process = match process {
                // The container's seccomp filter holds for every process in it.
                Some(file) => {
                    podlab::runtime::load_process(&file)?.with_seccomp_of(runtime.configured_process(&id)?)
                }
                None => exec_process(runtime.configured_process(&id)?, command, env, cwd, user, tty)?,
            };
            if let Some(exit) =
                runtime.exec(&id, &process, pid_file.as_deref(), console_socket.as_deref(), detach)?
            {
                return Ok(exit.exit_code());
            }
        }
        Command::Update { resources, memory, cpu_share, pids_limit, cpu_quota, cpu_period, id } => {
            let (mut limits, mut shares, more) = match resources {
                Some(file) => podlab::runtime::load_resources(&file)?,
                None => Default::default(),
            };
            shares = cpu_share.or(shares);
            if let Some(size) = memory {
                limits.memory = Some(podlab::cgroups::parse_size(&size)?);
            }
            if let Some(pids) = pids_limit {
                limits.pids = Some(podlab::cgroups::parse_pids(&pids)?);
            }
            match (cpu_quota, cpu_period) {
                (Some(quota_us), period) => {
                    let period_us = period.unwrap_or(100_000);
                    limits.cpu = Some(podlab::cgroups::CpuShare { quota_us, period_us });
                }
                (None, Some(_)) => return Err(Error::new("--cpu-period goes with --cpu-quota: give both")),
                (None, None) => {}
            }
            runtime.update(&id, &limits, shares, &more)?;
        }
        Command::Pause { id } => runtime.pause(&id)?,
        Command::Resume { id } => runtime.resume(&id)?,
        Command::Ps { format, id, ps_options } => {
            let pids = runtime.processes(&id)?;
            match format.as_str() {
                "json" => println!(
                    "{}",
                    serde_json::to_string(&pids.iter().map(|p| p.as_raw()).collect::<Vec<_>>())
                        .expect("numbers")
                ),
                "table" => print!("{}", podlab::runtime::ps_lines(&pids, &ps_options)?),
                other => {
                    return Err(Error::new(format!("--format {other:?}: the formats are table and json")))
                }
            }
        }
        Command::Run { bundle, pid_file, id } => {
            return Ok(runtime.run(&id, &bundle, pid_file.as_deref())?.exit_code());
        }
        Command::List { format } => {
            let states = runtime.list()?;
            match format.as_str() {
                "json" => println!("{}", serde_json::to_string(&states).expect("states are plain data")),
                "table" => {
                    println!("{:<12} {:<8} {:<10} {:<40} CREATED", "ID", "PID", "STATUS", "BUNDLE");
                    for state in states {
                        let bundle = state.bundle.display().to_string();
                        println!(
                            "{:<12} {:<8} {:<10} {bundle:<40} {}",
                            state.id, state.pid, state.status, state.created
                        );
                    }
                }
                other => {
                    return Err(Error::new(format!("--format {other:?}: the formats are table and json")))
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The container's own process settings with `command` to run, and the
/// options given on the command line on top.
fn exec_process(
    mut process: ProcessPlan,
    command: Vec<String>,
    env: Vec<String>,
    cwd: Option<PathBuf>,
    user: Option<String>,
    tty: bool,
) -> Result<ProcessPlan> {
    if command.is_empty() {
        return Err(Error::new("exec needs a command to run, or --process FILE"));
    }
    process.args = command;
    for pair in env {
        let name = pair
            .split_once('=')
            .map(|(name, _)| name.to_string())
            .ok_or_else(|| Error::new(format!("--env {pair:?} is not NAME=VALUE")))?;
        process.env.retain(|old| !old.starts_with(&format!("{name}=")));
        process.env.push(pair);
    }
    if let Some(cwd) = cwd {
        process.cwd = cwd;
    }
    if let Some(user) = user {
        let bad = || Error::new(format!("--user {user:?} is not UID or UID:GID"));
        let (uid, gid) = user.split_once(':').unwrap_or((&user, "0"));
        process.uid = uid.parse().map_err(|_| bad())?;
        process.gid = gid.parse().map_err(|_| bad())?;
    }
    process.terminal = tty;
    Ok(process)
}

/// Removes every null member of the objects in `value`, at any depth.
fn drop_nulls(value: &mut serde_json::Value) {
    if let serde_json::Value::Object(members) = value {
        members.retain(|_, member| !member.is_null());
        members.values_mut().for_each(drop_nulls);
    }
}

/// `TERM`, `SIGTERM` or `15`.
fn parse_signal(text: &str) -> Result<Signal> {
    let by_number = text.parse::<i32>().ok().and_then(|n| Signal::try_from(n).ok());
    let by_name = || {
        let name = if text.starts_with("SIG") { text.to_string() } else { format!("SIG{text}") };
        Signal::from_str(&name.to_uppercase()).ok()
    };
    by_number
        .or_else(by_name)
        .ok_or_else(|| Error::new(format!("{text:?} is not a signal: give a name (TERM, KILL) or a number")))
}
