//! `scripts/bench images`: level 5 measured beside its peers, in one run,
//! interleaved, with medians and ratios. An image of realistic size is
//! built from the machine's own /usr (three gzip layers), then:
//!
//! - unpacked by ours and by `umoci raw unpack`, beside the floor: `gzip
//!   -dc` of the same layers to /dev/null, which only decompresses;
//! - pulled from a docker-registry on 127.0.0.1 by ours and by `skopeo
//!   copy` into an OCI layout;
//! - run twice from one store: the second container finds its layers
//!   unpacked already.
//!
//! A measurement to read, not a test: nothing here passes or fails on time.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use podlab::error::{finish, Error, Result};
use podlab::images::build::{self, LayerBlob};
use podlab::images::registry::local::{Auth, LocalRegistry};
use podlab::timing::report;
use podlab::{kernel, narrate};

/// Time unpacking, pulling and a second container against umoci, skopeo
/// and gzip.
#[derive(Parser)]
#[command(name = "05-images-bench")]
struct Args {
    /// How many runs of each to time (after one to warm up).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// The image's size, unpacked, in MB (at least; whole files are taken).
    #[arg(long, default_value_t = 160)]
    megabytes: u64,
    /// The image's number of files (at least).
    #[arg(long, default_value_t = 8000)]
    files: usize,
    /// Where to build the image and keep it, for later runs to use (by
    /// default it is built anew in a directory removed after).
    #[arg(long, value_name = "DIR")]
    image: Option<PathBuf>,
}

/// A tool timed: its name, and its command line for a run whose output
/// goes to a given directory.
type Contender = (&'static str, Box<dyn Fn(&Path) -> Command>);

fn main() -> ExitCode {
    let args = Args::parse();
    narrate::set_quiet(true);
    finish("05-images-bench", bench(args))
}

/// A scratch directory on a tmpfs of its own, unmounted and removed on
/// every path. On a tmpfs, what is timed is the tools, not this machine's
/// disk (whose file creation and deletion dominate otherwise).
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new() -> Result<Scratch> {
        let scratch = Scratch { dir: kernel::mkdtemp("podlab-bench-")? };
        let flags = nix::mount::MsFlags::empty();
        kernel::mount(Some(Path::new("tmpfs")), &scratch.dir, Some("tmpfs"), flags, Some("size=8g"))?;
        Ok(scratch)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = kernel::umount_detach(&self.dir);
        let _ = kernel::remove_dir_all(&self.dir);
    }
}

fn bench(args: Args) -> Result<ExitCode> {
    kernel::require_root("unpacking sets owners and running containers needs root")?;
    let example = |name: &str| -> Result<PathBuf> {
        let path =
            std::env::current_exe().map_err(|e| Error::new(format!("where am I? {e}")))?.with_file_name(name);
        match path.exists() {
            true => Ok(path),
            false => {
                Err(Error::new(format!("{name} is not built beside this program: run scripts/bench images")))
            }
        }
    };
    let ours = example("05-images")?;
    for tool in ["umoci", "skopeo", "docker-registry"] {
        if !Path::new("/usr/bin").join(tool).exists() {
            return Err(Error::new(format!(
                "{tool} is missing: apt-get install {tool} (scripts/setup --tests installs it)"
            )));
        }
    }
    let scratch = Scratch::new()?;
    let dir = scratch.dir.clone();

    let image = args.image.clone().unwrap_or_else(|| dir.join("image"));
    let layers = if image.join("oci-layout").exists() {
        let layout = podlab::images::Layout::open(&image)?;
        let blobs = layout
            .image()?
            .layers
            .iter()
            .map(|l| layout.verify(&l.descriptor))
            .collect::<Result<Vec<_>>>()?;
        println!("the image in {}, as an earlier run built it", image.display());
        blobs
    } else {
        eprintln!("building an image of {}+ MB and {}+ files from /usr ...", args.megabytes, args.files);
        let (files, bytes, blobs) = big_image(&image, args.megabytes << 20, args.files)?;
        println!("the image: {files} files, {:.0} MB unpacked", mb(bytes));
        blobs
    };
    let packed: u64 = layers.iter().map(|l| std::fs::metadata(l).map(|m| m.len()).unwrap_or(0)).sum();
    println!("{:.0} MB packed in {} gzip layers", mb(packed), layers.len());

    // Unpacking.
    let layer_list = layers.iter().map(|l| l.display().to_string()).collect::<Vec<_>>().join(" ");
    let unpackers: Vec<Contender> = vec![
        ("podlab", {
            let (ours, image) = (ours.clone(), image.clone());
            Box::new(move |to: &Path| {
                let mut command = Command::new(&ours);
                command.args(["--quiet", "unpack"]).arg(&image).arg(to);
                command
            })
        }),
        ("umoci", {
            let image = format!("{}:{}", image.display(), build::TAG);
            Box::new(move |to: &Path| {
                let mut command = Command::new("umoci");
                command.args(["raw", "unpack", "--image", &image]).arg(to);
                command
            })
        }),
        ("gzip -dc", {
            let script = format!("for layer in {layer_list}; do gzip -dc \"$layer\"; done >/dev/null");
            Box::new(move |_: &Path| {
                let mut command = Command::new("sh");
                command.args(["-c", &script]);
                command
            })
        }),
    ];
    let unpacked = time_each(&unpackers, args.runs, &dir)?;
    println!();
    report(
        "unpack of the image",
        &unpackers.iter().map(|u| u.0).collect::<Vec<_>>(),
        &unpacked,
        &["", "", "(the floor: decompression alone, one layer after the other)"],
    );

    // A second container of the image.
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for round in 0..args.runs + 1 {
        let store = dir.join(format!("store-{round}"));
        for times in [&mut first, &mut second] {
            let took = time(
                Command::new(&ours)
                    .args(["--quiet", "run"])
                    .arg(&image)
                    .arg("--store")
                    .arg(&store)
                    .args(["--", "true"]),
            )?;
            if round > 0 {
                times.push(took);
            }
        }
        kernel::remove_dir_all(&store)?;
    }
    println!();
    report(
        "run of `true` in a container of the image, from a new store",
        &["first", "second"],
        &[first, second],
        &["(its layers unpacked into the store)", "(the store has them: nothing unpacked)"],
    );

    // Pulling from a registry on this machine.
    // Started after the scratch directory, so stopped before it goes.
    let registry = LocalRegistry::start(&dir, Auth::Anonymous)?;
    let reference = format!("{}/bench/big:1", registry.address);
    time(Command::new(&ours).args(["--quiet", "push", build::TAG, &reference, "--store"]).arg(&image))?;
    let policy = dir.join("policy.json");
    kernel::write_file(&policy, r#"{"default": [{"type": "insecureAcceptAnything"}]}"#)?;
    let pullers: Vec<Contender> = vec![
        ("podlab", {
            let (ours, reference) = (ours.clone(), reference.clone());
            Box::new(move |to: &Path| {
                let mut command = Command::new(&ours);
                command.args(["--quiet", "pull", &reference, "--store"]).arg(to);
                command
            })
        }),
        ("skopeo", {
            let (policy, reference) = (policy.clone(), reference.clone());
            Box::new(move |to: &Path| {
                let mut command = Command::new("skopeo");
                kernel::with_private_var_lib(&mut command);
                command.arg("--policy").arg(&policy).args([
                    "copy",
                    "--quiet",
                    "--src-tls-verify=false",
                    "--preserve-digests",
                    &format!("docker://{reference}"),
                    &format!("oci:{}:big", to.display()),
                ]);
                command
            })
        }),
    ];
    let pulled = time_each(&pullers, args.runs, &dir)?;
    println!();
    report(
        "pull of the image from docker-registry on 127.0.0.1",
        &["podlab", "skopeo"],
        &pulled,
        &["", "(skopeo copy into an OCI layout)"],
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs each contender `runs` times (after one to warm up), interleaved,
/// each into a new directory removed after; their times.
fn time_each(contenders: &[Contender], runs: usize, dir: &Path) -> Result<Vec<Vec<Duration>>> {
    let mut times = vec![Vec::new(); contenders.len()];
    for round in 0..runs + 1 {
        for (which, (name, command)) in contenders.iter().enumerate() {
            let to = dir.join(format!("out-{which}-{round}"));
            let took = time(&mut command(&to)).map_err(|e| Error::new(format!("{name}: {e}")))?;
            if round > 0 {
                times[which].push(took);
            }
            if to.exists() {
                kernel::remove_dir_all(&to)?;
            }
        }
        eprint!("\rround {}/{}", round + 1, runs + 1);
    }
    eprintln!();
    Ok(times)
}

/// How long a command takes, which must succeed.
fn time(command: &mut Command) -> Result<Duration> {
    let started = Instant::now();
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::new(format!("{command:?} could not be started: {e}")))?;
    let took = started.elapsed();
    if !output.status.success() {
        return Err(Error::new(format!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(took)
}

/// Builds an OCI layout of three gzip layers at `dir` from the files
/// under /usr, in a fixed order, until there are `bytes` and `files`: half
/// of them in the first layer, a third of the rest in the second... The
/// number of files, their bytes, and the layers' blobs.
fn big_image(dir: &Path, bytes: u64, files: usize) -> Result<(usize, u64, Vec<PathBuf>)> {
    let mut chosen: Vec<(PathBuf, u64)> = Vec::new();
    let (mut total, mut stack) = (0u64, vec![PathBuf::from("/usr")]);
    while let Some(at) = stack.pop() {
        if total >= bytes && chosen.len() >= files {
            break;
        }
        let Ok(entries) = std::fs::read_dir(&at) else { continue };
        let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        for path in entries.into_iter().rev() {
            let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() && meta.size() < 4 << 20 && (total < bytes || chosen.len() < files) {
                total += meta.size();
                chosen.push((path, meta.size()));
            }
        }
    }
    if total < bytes || chosen.len() < files {
        return Err(Error::new(format!(
            "/usr holds only {} files of {:.0} MB: ask for less (--megabytes, --files)",
            chosen.len(),
            mb(total)
        )));
    }
    let cuts = [0, chosen.len() / 2, chosen.len() * 5 / 6, chosen.len()];
    let mut layers = Vec::new();
    for part in cuts.windows(2) {
        let mut tar = tar::Builder::new(Vec::new());
        tar.mode(tar::HeaderMode::Deterministic);
        if part[0] == 0 {
            // busybox, for the containers run from the image.
            tar.append_path_with_name(podlab::chroot::BUSYBOX, "bin/busybox")
                .map_err(|e| Error::new(format!("adding busybox: {e}")))?;
            let mut link = tar::Header::new_gnu();
            link.set_entry_type(tar::EntryType::Symlink);
            link.set_mode(0o777);
            link.set_size(0);
            link.set_uid(0);
            link.set_gid(0);
            link.set_mtime(0);
            tar.append_link(&mut link, "bin/true", "busybox")
                .map_err(|e| Error::new(format!("a link: {e}")))?;
        }
        for (path, _) in &chosen[part[0]..part[1]] {
            let name = path.strip_prefix("/").unwrap_or(path);
            tar.append_path_with_name(path, name)
                .map_err(|e| Error::new(format!("adding {}: {e}", path.display())))?;
        }
        let tar = tar.into_inner().map_err(|e| Error::new(format!("a layer's tar: {e}")))?;
        layers.push(LayerBlob::of_tar(tar, true)?);
    }
    build::write_layout(dir, &layers)?;
    let blobs = layers.iter().map(|l| dir.join("blobs/sha256").join(build::sha256(&l.bytes))).collect();
    Ok((chosen.len(), total, blobs))
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}
