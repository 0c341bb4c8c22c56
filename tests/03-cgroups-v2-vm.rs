//! Level 3 on cgroup v2, for real, on a machine whose own controllers are
//! on v1: Debian's cloud kernel (6.1, older than most hosts', which makes
//! this the old-kernel case too) boots under QEMU's software emulation with
//! an initramfs made here: busybox, the level 3 example with the shared
//! libraries it needs, and an /init that mounts cgroup2 and runs each of
//! the level's scenarios. Their transcripts, read back from the serial
//! console, are the `.v2` snapshots: the ones a v2 machine checks against,
//! and the ones the book shows beside v1's. One more run, made before
//! cgroup2 is mounted, is the case of a machine without it.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use podlab::cgroups::LEVEL;
use podlab::scenario::command_line;

/// Where scripts/setup --tests unpacks the kernel.
const KERNEL: &str = "/var/cache/podlab/vm/vmlinuz";
const QEMU: &str = "qemu-system-x86_64";
/// Boot, eight scenarios' worth of work and power-off, under emulation.
const VM_TIME_LIMIT: Duration = Duration::from_secs(300);

#[test]
fn level_3_on_cgroup_v2_in_a_vm() {
    let missing = if !Path::new(KERNEL).exists() {
        Some(format!("{KERNEL} is missing (scripts/setup --tests fetches it)"))
    } else if Command::new(QEMU).arg("--version").output().is_err() {
        Some("QEMU is not installed (apt-get install qemu-system-x86)".to_string())
    } else if !Path::new(podlab::chroot::BUSYBOX).exists() {
        Some("busybox-static is not installed (apt-get install busybox-static)".to_string())
    } else {
        None
    };
    if !common::can_run("level_3_on_cgroup_v2_in_a_vm", missing) {
        return;
    }
    let scratch = common::Scratch::new("vm");
    let initramfs = scratch.path().join("initramfs.cpio");
    std::fs::write(&initramfs, initramfs_image(&common::example(LEVEL.example))).unwrap();

    let console = boot(&initramfs);
    assert!(
        console.contains("podlab-vm: cgroup2 at /sys/fs/cgroup"),
        "the VM did not come up with cgroup v2:\n{console}"
    );
    let runs = std::iter::once((NO_CGROUP_FS, NO_CGROUP_FS_ARGS))
        .chain(LEVEL.scenarios.iter().map(|scenario| (scenario.name, scenario.args)));
    for (name, args) in runs {
        let transcript = transcript_from(&console, name, args)
            .unwrap_or_else(|| panic!("the console has no run of {name}:\n{console}"));
        common::assert_transcript(&format!("{}__{name}.v2", LEVEL.example), &transcript);
    }
}

/// Boots the kernel with `initramfs` and returns what it wrote on its serial
/// console, carriage returns removed. Killed if it runs past the limit.
fn boot(initramfs: &Path) -> String {
    let mut vm = Command::new(QEMU)
        .args(["-accel", "tcg", "-cpu", "max", "-m", "512", "-smp", "1", "-nographic", "-no-reboot"])
        .args(["-nic", "none", "-kernel", KERNEL, "-initrd"])
        .arg(initramfs)
        // loglevel=1: only emergencies on the console, so the OOM killer's
        // report does not land in the middle of a transcript.
        .args(["-append", "console=ttyS0 loglevel=1 panic=-1 rdinit=/init"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("QEMU starts");
    let mut stdout = vm.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let started = Instant::now();
    while vm.try_wait().unwrap().is_none() {
        if started.elapsed() > VM_TIME_LIMIT {
            let _ = vm.kill();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    String::from_utf8_lossy(&reader.join().unwrap()).replace('\r', "")
}

/// The transcript of the run marked `name`, cut from between its markers.
fn transcript_from(console: &str, name: &str, args: &[&str]) -> Option<String> {
    let begin = format!("=== podlab begin {name}\n");
    let start = console.find(&begin)? + begin.len();
    let end_marker = format!("=== podlab end {name} ");
    let end = start + console[start..].find(&end_marker)?;
    let status: i32 = console[end + end_marker.len()..].lines().next()?.trim().parse().ok()?;
    let line = command_line(LEVEL.example, args);
    Some(format!("$ {line}\n{}[exit status {status}]\n", &console[start..end]))
}

/// The VM's /init: mount what a system needs, run the example once before
/// cgroup2 is there, mount cgroup2 on /sys/fs/cgroup, run each scenario.
fn init_script() -> String {
    let script = String::from(
        "#!/bin/busybox sh\n\
         /bin/busybox --install -s /bin\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sys /sys\n\
         mount -t devtmpfs dev /dev\n\
         mount -t tmpfs tmp /tmp\n\
         {before}\
         mount -t cgroup2 none /sys/fs/cgroup\n\
         grep -q ' /sys/fs/cgroup cgroup2 ' /proc/mounts && echo 'podlab-vm: cgroup2 at /sys/fs/cgroup'\n",
    );
    let mut script = script.replace("{before}", &run_and_mark(NO_CGROUP_FS, NO_CGROUP_FS_ARGS));
    for scenario in LEVEL.scenarios {
        script.push_str(&run_and_mark(scenario.name, scenario.args));
    }
    script.push_str("poweroff -f\n");
    script
}

/// A run made before cgroup2 is mounted: a machine without the file system.
const NO_CGROUP_FS: &str = "no-cgroup-fs";
const NO_CGROUP_FS_ARGS: &[&str] = &["--memory", "16M", "true"];

/// The lines of /init that run the example with `args`, its output kept
/// apart from the console's, between markers named `name`.
fn run_and_mark(name: &str, args: &[&str]) -> String {
    let line = command_line(&format!("/{}", LEVEL.example), args);
    format!(
        "{line} > /tmp/out 2>&1; status=$?\n\
         echo '=== podlab begin {name}'; cat /tmp/out; echo \"=== podlab end {name} $status\"\n"
    )
}

/// An initramfs (a newc cpio archive, uncompressed): directories, /init,
/// busybox, the example and each shared library it loads.
fn initramfs_image(example: &Path) -> Vec<u8> {
    let mut archive = Cpio::default();
    for dir in ["bin", "dev", "proc", "sys", "sys/fs", "sys/fs/cgroup", "tmp", "lib", "lib64"] {
        archive.dir(dir);
    }
    archive.file("init", 0o755, init_script().as_bytes());
    archive.file("bin/busybox", 0o755, &std::fs::read(podlab::chroot::BUSYBOX).unwrap());
    archive.file(LEVEL.example, 0o755, &std::fs::read(example).unwrap());
    for library in shared_libraries(example) {
        let inside = library.strip_prefix("/").unwrap();
        let mut parents: Vec<&Path> =
            inside.ancestors().skip(1).filter(|p| !p.as_os_str().is_empty()).collect();
        parents.reverse();
        for parent in parents {
            archive.dir(parent.to_str().unwrap());
        }
        archive.file(inside.to_str().unwrap(), 0o755, &std::fs::read(&library).unwrap());
    }
    archive.finish()
}

/// The files the dynamic loader maps for `program`, the loader among them,
/// as glibc's ldd lists them.
fn shared_libraries(program: &Path) -> Vec<PathBuf> {
    let output = Command::new("ldd").arg(program).output().expect("ldd runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let path = line.split("=>").last()?.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// A newc ("070701") cpio writer: each entry a header of hexadecimal fields,
/// the name, the data, each padded to four bytes; the trailer last.
#[derive(Default)]
struct Cpio {
    bytes: Vec<u8>,
    entries: u32,
    names: std::collections::BTreeSet<String>,
}

impl Cpio {
    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, &[]);
    }

    fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, 0o100000 | mode, data);
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        if !self.names.insert(name.to_string()) {
            return;
        }
        self.entries += 1;
        let fields =
            [self.entries, mode, 0, 0, 1, 0, data.len() as u32, 0, 0, 0, 0, name.len() as u32 + 1, 0];
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes.extend_from_slice(format!("{field:08X}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while self.bytes.len() % 4 != 0 {
            self.bytes.push(0);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.bytes
    }
}
