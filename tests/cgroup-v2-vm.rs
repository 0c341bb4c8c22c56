//! Levels 3 and 4 on cgroup v2, for real, on a machine whose own
//! controllers are on v1: Debian's cloud kernel (6.1, older than most
//! hosts', which makes this the old-kernel case too) boots under QEMU's
//! software emulation with an initramfs made here: busybox, the two
//! levels' examples, and this test's own binary, which inside the VM runs
//! every scenario of both levels (`record_inside_the_vm`) as the snapshot
//! tests do on the host. Their transcripts, read back from the serial
//! console, are the `.v2` snapshots: the ones a v2 machine checks against,
//! and the ones the book shows beside v1's. One more run, made before
//! cgroup2 is mounted, is the case of a machine without it.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use podlab::scenario::{self, command_line, Level};

/// The levels whose transcripts depend on the cgroup version.
const LEVELS: [&Level; 2] = [&podlab::cgroups::LEVEL, &podlab::runtime::LEVEL];
/// Where scripts/setup --tests unpacks the kernel.
const KERNEL: &str = "/var/cache/podlab/vm/vmlinuz";
const QEMU: &str = "qemu-system-x86_64";
/// Boot, a dozen scenarios' worth of work and power-off, under emulation.
const VM_TIME_LIMIT: Duration = Duration::from_secs(600);
/// Where the examples are inside the VM.
const EXAMPLES_INSIDE: &str = "/podlab";
/// Set in the VM for the recorder, which refuses to run anywhere else.
const IN_VM: &str = "PODLAB_IN_VM";

#[test]
fn levels_3_and_4_on_cgroup_v2_in_a_vm() {
    let missing = if !Path::new(KERNEL).exists() {
        Some(format!("{KERNEL} is missing (scripts/setup --tests fetches it)"))
    } else if Command::new(QEMU).arg("--version").output().is_err() {
        Some("QEMU is not installed (apt-get install qemu-system-x86)".to_string())
    } else if !Path::new(podlab::chroot::BUSYBOX).exists() {
        Some("busybox-static is not installed (apt-get install busybox-static)".to_string())
    } else {
        None
    };
    if !common::can_run("levels_3_and_4_on_cgroup_v2_in_a_vm", missing) {
        return;
    }
    let scratch = common::Scratch::new("vm");
    let initramfs = scratch.path().join("initramfs.cpio");
    std::fs::write(&initramfs, initramfs_image(scratch.path())).unwrap();

    let console = boot(&initramfs);
    assert!(
        console.contains("podlab-vm: cgroup2 at /sys/fs/cgroup"),
        "the VM did not come up with cgroup v2:\n{console}"
    );
    let no_cgroup_fs = transcript_from(&console, NO_CGROUP_FS)
        .unwrap_or_else(|| panic!("the console has no run of {NO_CGROUP_FS}:\n{console}"));
    let line = command_line(podlab::cgroups::LEVEL.example, NO_CGROUP_FS_ARGS);
    common::assert_transcript(
        &format!("{}__{NO_CGROUP_FS}.v2", podlab::cgroups::LEVEL.example),
        &format!("$ {line}\n{no_cgroup_fs}"),
    );
    for level in LEVELS {
        for scenario in level.scenarios {
            let name = format!("{}__{}.v2", level.example, scenario.name);
            let transcript = transcript_from(&console, &name)
                .unwrap_or_else(|| panic!("the console has no run of {name}:\n{console}"));
            common::assert_transcript(&name, &transcript);
        }
    }
}

/// The VM's recorder: this test binary, run by the VM's init. It runs each
/// scenario as the snapshot tests do, with the examples in the VM, and
/// prints its transcript between markers for the host to cut out.
#[test]
#[ignore = "it runs inside the VM that levels_3_and_4_on_cgroup_v2_in_a_vm boots"]
fn record_inside_the_vm() {
    assert!(
        std::env::var_os(IN_VM).is_some(),
        "this test runs inside the VM that levels_3_and_4_on_cgroup_v2_in_a_vm boots, not here"
    );
    for level in LEVELS {
        for scenario in level.scenarios {
            let example = Path::new(EXAMPLES_INSIDE).join(level.example);
            let transcript = scenario::run(&example, level, scenario).expect("the example runs");
            println!("=== podlab begin {}", scenario::snapshot_name(level, scenario));
            print!("{transcript}");
            println!("=== podlab end");
        }
    }
}

/// Boots the kernel with `initramfs` and returns what it wrote on its serial
/// console, carriage returns removed. Killed if it runs past the limit.
fn boot(initramfs: &Path) -> String {
    let mut vm = Command::new(QEMU)
        .args(["-accel", "tcg", "-cpu", "max", "-m", "2048", "-smp", "1", "-nographic", "-no-reboot"])
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

/// What was printed between the markers of the run named `name`.
fn transcript_from(console: &str, name: &str) -> Option<String> {
    let begin = format!("=== podlab begin {name}\n");
    let start = console.find(&begin)? + begin.len();
    let end = start + console[start..].find("=== podlab end\n")?;
    Some(console[start..end].to_string())
}

/// The VM's /init. The initramfs is the kernel's first root, which
/// pivot_root cannot leave (level 2 needs it to): so it copies itself into
/// a tmpfs and switches root there, to /init2.
const INIT: &str = "#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir /new
mount -t tmpfs -o size=1g root /new
for entry in /*; do [ \"$entry\" = /new ] || cp -a \"$entry\" /new/; done
exec switch_root /new /init2
";

/// The VM's init after the switch: mount what a system needs, run the
/// example once before cgroup2 is there, mount cgroup2 on /sys/fs/cgroup,
/// then run the recorder.
fn init2_script() -> String {
    let level_3 = Path::new(EXAMPLES_INSIDE).join(podlab::cgroups::LEVEL.example);
    format!(
        "#!/bin/sh\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sys /sys\n\
         mount -t devtmpfs dev /dev\n\
         mount -t tmpfs tmp /tmp\n\
         {line} > /tmp/out 2>&1; status=$?\n\
         echo '=== podlab begin {NO_CGROUP_FS}'; cat /tmp/out; echo \"[exit status $status]\"; echo '=== podlab end'\n\
         mount -t cgroup2 none /sys/fs/cgroup\n\
         grep -q ' /sys/fs/cgroup cgroup2 ' /proc/mounts && echo 'podlab-vm: cgroup2 at /sys/fs/cgroup'\n\
         {IN_VM}=1 /record --ignored --exact record_inside_the_vm --nocapture --test-threads 1\n\
         poweroff -f\n",
        line = command_line(&level_3.display().to_string(), NO_CGROUP_FS_ARGS),
    )
}

/// A run made before cgroup2 is mounted: a machine without the file system.
const NO_CGROUP_FS: &str = "no-cgroup-fs";
const NO_CGROUP_FS_ARGS: &[&str] = &["--memory", "16M", "true"];

/// An initramfs (a newc cpio archive, uncompressed): directories, the two
/// inits, busybox, the examples and this recorder (without their debug
/// information, which the VM does not need), and each shared library they
/// load.
fn initramfs_image(scratch: &Path) -> Vec<u8> {
    let mut archive = Cpio::default();
    for dir in ["bin", "dev", "proc", "sys", "sys/fs", "sys/fs/cgroup", "tmp", "lib", "lib64", "podlab"] {
        archive.dir(dir);
    }
    archive.file("init", 0o755, INIT.as_bytes());
    archive.file("init2", 0o755, init2_script().as_bytes());
    archive.file("bin/busybox", 0o755, &std::fs::read(podlab::chroot::BUSYBOX).unwrap());
    let recorder = std::env::current_exe().unwrap();
    let mut programs = vec![("record".to_string(), recorder)];
    for level in LEVELS {
        let inside = Path::new(EXAMPLES_INSIDE).join(level.example);
        programs
            .push((inside.strip_prefix("/").unwrap().display().to_string(), common::example(level.example)));
    }
    for (inside, program) in &programs {
        let stripped = scratch.join(program.file_name().unwrap());
        let status =
            Command::new("strip").arg("--strip-debug").arg("-o").arg(&stripped).arg(program).status();
        assert!(status.is_ok_and(|s| s.success()), "strip (binutils) could not strip {}", program.display());
        archive.file(inside, 0o755, &std::fs::read(&stripped).unwrap());
        for library in shared_libraries(program) {
            let inside = library.strip_prefix("/").unwrap();
            let mut parents: Vec<&Path> =
                inside.ancestors().skip(1).filter(|p| !p.as_os_str().is_empty()).collect();
            parents.reverse();
            for parent in parents {
                archive.dir(parent.to_str().unwrap());
            }
            archive.file(inside.to_str().unwrap(), 0o755, &std::fs::read(&library).unwrap());
        }
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
