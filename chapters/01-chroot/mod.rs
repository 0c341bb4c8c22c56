//! Level 1: chroot.
//!
//! A container starts as a directory that a process takes for "/". This level
//! builds such a directory from Debian's busybox-static, runs a command
//! inside it with chroot(2), and then breaks out, to show why chroot alone
//! is not isolation and what level 2 does about it.

// The lab swaps the reference `jail` for the student's file (`--features lab-01`).
#[cfg_attr(not(feature = "lab-01"), path = "jail.rs")]
#[cfg_attr(feature = "lab-01", path = "../../labs/01-chroot/jail.rs")]
mod jail;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

pub use jail::{break_out, build_rootfs, enter};

use crate::child::{run_in_child, Exit};
use crate::error::{Error, Result};
use crate::kernel;
use crate::scenario::{Level, Scenario};

/// Where Debian's and Ubuntu's busybox-static package puts the binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// A file that marks a directory as a rootfs podlab built, and so one it may
/// remove and build again. Any other existing directory is left alone.
const MARKER: &str = ".podlab-rootfs";

/// Where a command without a slash is looked for, inside the rootfs.
const PATH: [&str; 4] = ["/bin", "/sbin", "/usr/bin", "/usr/sbin"];

/// The command-line options of every level that runs in a busybox rootfs.
#[derive(clap::Args, Debug)]
pub struct RootfsOptions {
    /// Build the rootfs in DIR, which must not exist yet (or be one podlab
    /// built), and keep it. Default: a new directory under $TMPDIR, removed
    /// afterwards.
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,

    /// Keep the temporary rootfs afterwards and say where it is.
    #[arg(long)]
    pub keep: bool,

    /// The statically linked busybox to install (Debian: busybox-static).
    #[arg(long, value_name = "PATH", default_value = BUSYBOX)]
    pub busybox: PathBuf,
}

impl RootfsOptions {
    /// Builds the rootfs these options ask for.
    pub fn create(&self) -> Result<Rootfs> {
        Rootfs::create(self.rootfs.as_deref(), &self.busybox)
    }

    /// Builds the rootfs as a lower level's set-up: told in one line,
    /// unless `--verbose` (levels 2 and up).
    pub fn create_in_one_line(&self) -> Result<Rootfs> {
        crate::narrate::folded(
            || self.create(),
            |rootfs| {
                format!("built the rootfs {:?} as level 1 does (--verbose tells each call)", rootfs.path())
            },
        )
    }

    /// Keeps the rootfs if asked to (`--keep`, `--rootfs`), saying where;
    /// otherwise drops it, which removes it.
    pub fn finish(&self, rootfs: Rootfs) {
        if self.keep || self.rootfs.is_some() {
            eprintln!("kept the rootfs at {}", rootfs.keep().display());
        }
    }
}

/// The command-line options every level's example ends with.
#[derive(clap::Args, Debug)]
pub struct CommandOptions {
    /// Do not narrate the kernel calls; print only what the command and the
    /// example print.
    #[arg(short, long)]
    pub quiet: bool,

    /// Tell every call, also those of the lower levels' set-up, which levels
    /// 2 and up tell in one line (level 1's rootfs, say).
    #[arg(short, long, conflicts_with = "quiet")]
    pub verbose: bool,

    /// The command to run, looked up in the rootfs's /bin; by default an
    /// interactive shell.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

impl CommandOptions {
    /// The command, or `sh` when none was given.
    pub fn command_or_shell(&self) -> Vec<String> {
        if self.command.is_empty() {
            vec!["sh".to_string()]
        } else {
            self.command.clone()
        }
    }
}

/// A rootfs on disk that is removed when this value is dropped, on success
/// and failure alike, unless it is kept.
pub struct Rootfs {
    path: PathBuf,
    remove_on_drop: Option<PathBuf>,
}

impl Rootfs {
    /// Builds a rootfs in `at`, or in a new temporary directory. `at` must
    /// not exist yet, or be a rootfs podlab built before.
    pub fn create(at: Option<&Path>, busybox: &Path) -> Result<Rootfs> {
        check_busybox(busybox)?;
        let applets = applets(busybox)?;
        let rootfs = match at {
            None => {
                let dir = kernel::mkdtemp("podlab-")?;
                let rootfs = Rootfs { path: dir.join("rootfs"), remove_on_drop: Some(dir) };
                kernel::mkdir(&rootfs.path, 0o755)?;
                rootfs
            }
            Some(path) => {
                claim(path)?;
                kernel::mkdir(path, 0o755)?;
                Rootfs { path: path.to_path_buf(), remove_on_drop: Some(path.to_path_buf()) }
            }
        };
        // First, so that even a half-built rootfs is known as ours next time.
        kernel::write_file(&rootfs.path.join(MARKER), "built by podlab; safe to remove\n")?;
        build_rootfs(&rootfs.path, busybox, &applets)?;
        Ok(rootfs)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lets other user ids reach the rootfs, as root of a user namespace
    /// must (it is an ordinary id out here): our temporary directory, which
    /// mkdtemp made 0700, becomes 0711, search only. A directory on the way
    /// that is not ours and not searchable is refused, not changed.
    pub fn let_other_ids_in(&self) -> Result<()> {
        if let Some(temp) = self.remove_on_drop.as_ref().filter(|dir| **dir != self.path) {
            kernel::chmod(temp, 0o711)?;
        }
        for dir in self.path.ancestors() {
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(dir)
                    .map_err(|e| Error::new(format!("cannot look at {dir:?}: {e}")))?
                    .permissions(),
            );
            if mode & 0o001 == 0 {
                return Err(Error::new(format!(
                    "{dir:?} (mode {:o}) lets no other user through, so root of a user namespace, an \
                     ordinary id out here, cannot reach the rootfs: choose a --rootfs under /tmp",
                    mode & 0o7777
                )));
            }
        }
        Ok(())
    }

    /// Keeps the rootfs on disk after this value is gone.
    pub fn keep(mut self) -> PathBuf {
        self.remove_on_drop = None;
        self.path.clone()
    }
}

impl Drop for Rootfs {
    fn drop(&mut self) {
        if let Some(dir) = self.remove_on_drop.take() {
            if let Err(error) = kernel::remove_dir_all(&dir) {
                eprintln!("warning: could not clean up: {error}");
            }
        }
    }
}

/// Takes `path` for a rootfs: it must not exist, or hold our marker (then
/// the old rootfs is removed). Refuses anything else: it is someone's data.
fn claim(path: &Path) -> Result<()> {
    if !path.is_absolute() {
        return Err(Error::new(format!(
            "--rootfs {path:?} is not an absolute path: give one that starts with /"
        )));
    }
    match std::fs::symlink_metadata(path) {
        Err(_) => Ok(()),
        Ok(meta) if meta.is_dir() && path.join(MARKER).exists() => kernel::remove_dir_all(path),
        Ok(_) => Err(Error::new(format!(
            "{path:?} already exists and is not a rootfs that podlab built (it has no {MARKER}): \
             choose a path that does not exist yet"
        ))),
    }
}

/// busybox must be there and statically linked: a rootfs has no shared
/// libraries for a dynamic one to load.
fn check_busybox(busybox: &Path) -> Result<()> {
    let missing = || {
        Error::new(format!(
            "there is no busybox at {busybox:?}: install Debian's busybox-static \
             (apt-get install busybox-static)"
        ))
    };
    let mut file = File::open(busybox).map_err(|_| missing())?;
    let mut elf = Vec::new();
    file.read_to_end(&mut elf).map_err(|_| missing())?;
    match needs_loader(&elf) {
        Some(false) => Ok(()),
        Some(true) => Err(Error::new(format!(
            "{busybox:?} is dynamically linked, so it cannot run in a rootfs without its \
             shared libraries: install busybox-static (apt-get install busybox-static)"
        ))),
        None => Err(Error::new(format!(
            "{busybox:?} is not a 64-bit little-endian ELF program: install busybox-static \
             (apt-get install busybox-static)"
        ))),
    }
}

/// Whether an ELF64 little-endian program asks for a dynamic loader (has a
/// PT_INTERP program header); None if `elf` is not such a program.
fn needs_loader(elf: &[u8]) -> Option<bool> {
    const PT_INTERP: u32 = 3;
    let u16_at = |at: usize| Some(u16::from_le_bytes(elf.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(elf.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(elf.get(at..at + 8)?.try_into().ok()?));
    // Magic, 64-bit class, little-endian.
    if elf.get(0..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let table = usize::try_from(u64_at(0x20)?).ok()?;
    let entry_size = usize::from(u16_at(0x36)?);
    let entries = usize::from(u16_at(0x38)?);
    let mut interp = false;
    for i in 0..entries {
        interp |= u32_at(table.checked_add(i.checked_mul(entry_size)?)?)? == PT_INTERP;
    }
    Some(interp)
}

/// The names busybox answers to, from `busybox --list`, less its own.
fn applets(busybox: &Path) -> Result<Vec<String>> {
    let list = kernel::run_for_output(busybox, &["--list"])?;
    let applet = |name: &&str| !name.is_empty() && !name.contains('/') && *name != "busybox";
    Ok(list.lines().filter(applet).map(String::from).collect())
}

/// Finds `command` inside the rootfs as the shell would after chroot: a name
/// with a slash is a path, a bare name is looked for in PATH. Once inside,
/// the rootfs is "/".
pub fn resolve(rootfs: &Path, command: &str) -> Result<PathBuf> {
    let inside = |candidate: &Path| rootfs.join(candidate.strip_prefix("/").unwrap_or(candidate));
    // lstat, not stat: a link inside the rootfs means what it means after
    // chroot, which is not what it would mean from out here.
    let exists = |candidate: &Path| std::fs::symlink_metadata(inside(candidate)).is_ok();
    let found = if command.contains('/') {
        Some(Path::new("/").join(command)).filter(|p| exists(p))
    } else {
        PATH.iter().map(|dir| Path::new(dir).join(command)).find(|p| exists(p))
    };
    found.ok_or_else(|| {
        Error::new(format!(
            "there is no {command:?} in the rootfs (looked in {}): the commands it has are \
             busybox's applets, try `ls /bin`",
            if command.contains('/') { "that path".to_string() } else { PATH.join(", ") }
        ))
    })
}

/// The environment the command starts with: nothing of the host's but the
/// terminal type.
pub fn environment() -> Vec<String> {
    let mut env = vec![format!("PATH={}", PATH.join(":")), "HOME=/root".to_string()];
    if let Ok(term) = std::env::var("TERM") {
        env.push(format!("TERM={term}"));
    }
    env
}

// ANCHOR: run
/// Runs `command` with `rootfs` as its root: a child enters the rootfs, then
/// replaces itself with the command. The parent waits, to clean up after.
pub fn run(rootfs: &Path, command: &[String]) -> Result<Exit> {
    let program = resolve(rootfs, &command[0])?;
    let env = environment();
    run_in_child(|| {
        enter(rootfs)?;
        Err(exec(&program, command, &env))
    })
}

/// Becomes `program`, with the signals a new process expects rather than
/// the ones this process was left with: never returns, but with an error.
pub fn exec(program: &Path, argv: &[String], env: &[String]) -> Error {
    match kernel::reset_signals() {
        Ok(()) => kernel::execve(program, argv, env),
        Err(error) => error,
    }
}
// ANCHOR_END: run

// ANCHOR: demonstrate_escape
/// Enters the rootfs, shows that "/" and "/.." are the rootfs, breaks out,
/// and shows that "/" is the host's root again. Exits 0 if the escape worked.
pub fn demonstrate_escape(rootfs: &Path) -> Result<Exit> {
    let witness = Witness::take(rootfs)?;
    run_in_child(|| {
        enter(rootfs)?;
        witness.try_escape()
    })
}

/// What the host's "/" and the rootfs are, taken from outside, so that code
/// inside can tell where it is.
pub struct Witness {
    host_root: (u64, u64),
    jail_root: (u64, u64),
    rootfs: PathBuf,
}

impl Witness {
    pub fn take(rootfs: &Path) -> Result<Witness> {
        Ok(Witness {
            host_root: kernel::file_id(Path::new("/"))?,
            jail_root: kernel::file_id(rootfs)?,
            rootfs: rootfs.to_path_buf(),
        })
    }

    /// Run inside the jail: says where "/" is, tries [`break_out`], and
    /// says where "/" is now. The exit code is 0 if the escape worked.
    pub fn try_escape(&self) -> Result<i32> {
        let root = kernel::file_id(Path::new("/"))?;
        let above = kernel::file_id(Path::new("/.."))?;
        if root != self.jail_root || above != self.jail_root {
            println!("not jailed: \"/\" is not the rootfs");
            return Ok(1);
        }
        println!("jailed: \"/\" is {}, and \"/..\" leads back to it", self.rootfs.display());

        break_out()?;
        if kernel::file_id(Path::new("/"))? == self.host_root && self.rootfs.exists() {
            println!("escaped: \"/\" is the host's root again, and {} is in sight", self.rootfs.display());
            Ok(0)
        } else {
            println!("still jailed: \"/\" is not the host's root after break_out()");
            Ok(1)
        }
    }
}
// ANCHOR_END: demonstrate_escape

/// Level 1 in the ladder, with the scenarios its tests and its lab check run.
pub const LEVEL: Level = Level {
    number: 1,
    name: "chroot",
    example: "01-chroot",
    feature: "lab-01",
    lab_files: &["labs/01-chroot/jail.rs"],
    workspace: None,
    variant: crate::scenario::same_everywhere,
    scenarios: &[
        Scenario {
            name: "ls",
            args: &["ls", "/"],
            shows: "a command sees the rootfs as /",
            hint: "build_rootfs() makes the directories, copies busybox and links its applets; \
                   enter() calls chroot, then chdir(\"/\")",
            then: &[],
            files: &[],
            alongside: None,
        },
        Scenario {
            name: "cd-up",
            args: &["sh", "-c", "pwd; cd -P ..; pwd; [ . -ef / ] && echo \". is / itself\"; ls"],
            shows: "the command starts in /, and the kernel's \"..\" of the new root is the root itself",
            hint: "enter() must chdir(\"/\") after chroot, or the working directory stays outside",
            then: &[],
            files: &[],
            alongside: None,
        },
        Scenario {
            name: "whoami",
            args: &["sh", "-c", "whoami; cat /etc/passwd"],
            shows: "names come from the rootfs's own /etc",
            hint: "build_rootfs() writes etc/passwd and etc/group inside the rootfs",
            then: &[],
            files: &[],
            alongside: None,
        },
        Scenario {
            name: "escape",
            args: &["--escape"],
            shows: "the classic chroot escape: mkdir, chroot, chdir .., chroot .",
            hint: "break_out(): mkdir a directory, chroot into it without chdir, climb with \
                   chdir(\"..\") until \".\" and \"..\" are the same, then chroot(\".\")",
            then: &[],
            files: &[],
            alongside: None,
        },
        Scenario {
            name: "mount-proc",
            args: &["sh", "-c", "mount -t proc proc /proc && echo mounted"],
            shows: "a mount made in the jail lands on the host, until clean-up detaches it",
            hint: "build_rootfs() makes the proc directory the mount needs",
            then: &[],
            files: &[],
            alongside: None,
        },
        Scenario {
            name: "files",
            args: &[
                "sh",
                "-c",
                "stat -c \"%A %U:%G %n\" /tmp /dev/null /etc/passwd; echo gone >/dev/null && echo \"/dev/null takes it\"",
            ],
            shows: "the files a shell expects: /tmp for everyone, /dev/null, names for the ids",
            hint: "build_rootfs() gives /tmp and /dev/null the modes they need, whatever the umask",
            then: &[],
            files: &[],
            alongside: None,
        },
        Scenario {
            name: "quiet",
            args: &["--quiet", "echo", "hello from the jail"],
            shows: "--quiet keeps only the program's own output",
            hint: "every kernel call goes through podlab::kernel, which narrates unless --quiet",
            then: &[],
            files: &[],
            alongside: None,
        },
        Scenario {
            name: "no-such-command",
            args: &["nosuchcommand"],
            shows: "a command the rootfs lacks: one sentence, exit 2, nothing left",
            hint: "the rootfs must be removed on the error path too",
            then: &[],
            files: &[],
            alongside: None,
        },
        Scenario {
            name: "dynamic-busybox",
            args: &["--busybox", "/bin/ls", "true"],
            shows: "a dynamically linked program is refused before anything is made",
            hint: "the busybox check runs before the rootfs is made",
            then: &[],
            files: &[],
            alongside: None,
        },
        Scenario {
            name: "missing-busybox",
            args: &["--busybox", "/nonexistent/busybox", "true"],
            shows: "busybox-static missing: the package to install is named",
            hint: "the busybox check runs before the rootfs is made",
            then: &[],
            files: &[],
            alongside: None,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 little-endian header with `kinds` as program headers.
    fn elf(kinds: &[u32]) -> Vec<u8> {
        let mut elf = vec![0u8; 64 + 56 * kinds.len()];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&(kinds.len() as u16).to_le_bytes());
        for (i, kind) in kinds.iter().enumerate() {
            elf[64 + 56 * i..68 + 56 * i].copy_from_slice(&kind.to_le_bytes());
        }
        elf
    }

    #[test]
    fn a_program_header_of_type_interp_means_dynamic() {
        assert_eq!(needs_loader(&elf(&[6, 3, 1])), Some(true));
        assert_eq!(needs_loader(&elf(&[1, 1, 4])), Some(false));
    }

    #[test]
    fn anything_else_is_not_a_program_we_know() {
        assert_eq!(needs_loader(b"#!/bin/sh\n"), None);
        assert_eq!(needs_loader(b""), None);
        // A program header cut off in the middle of its type.
        let mut truncated = elf(&[1]);
        truncated.truncate(66);
        assert_eq!(needs_loader(&truncated), None);
    }

    #[test]
    fn the_system_busybox_is_static_and_ls_is_not() {
        if let Ok(busybox) = std::fs::read(BUSYBOX) {
            assert_eq!(needs_loader(&busybox), Some(false));
        }
        if let Ok(ls) = std::fs::read("/bin/ls") {
            assert_eq!(needs_loader(&ls), Some(true));
        }
    }

    #[test]
    fn commands_are_resolved_inside_the_rootfs() {
        let rootfs = std::env::temp_dir().join(format!("podlab-unit-resolve-{}", std::process::id()));
        std::fs::create_dir_all(rootfs.join("sbin")).unwrap();
        std::os::unix::fs::symlink("busybox", rootfs.join("sbin/tool")).unwrap();
        let found = resolve(&rootfs, "tool");
        let by_path = resolve(&rootfs, "/sbin/tool");
        let missing = resolve(&rootfs, "ls");
        std::fs::remove_dir_all(&rootfs).unwrap();
        // A dangling link is fine: it points into the rootfs, not here.
        assert_eq!(found.unwrap(), Path::new("/sbin/tool"));
        assert_eq!(by_path.unwrap(), Path::new("/sbin/tool"));
        assert!(missing.unwrap_err().to_string().starts_with("there is no \"ls\" in the rootfs"));
    }
}
