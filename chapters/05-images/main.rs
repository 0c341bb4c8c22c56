//! `cargo run --example 05-images -- COMMAND ...`

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use podlab::error::{finish, Result};
use podlab::images::registry::{self, Credentials, Options, Reference, Show};
use podlab::images::{self, build, snapshots::Store, Layout, Limits};
use podlab::{kernel, narrate};

/// Level 5: images. An image is an index that points at a manifest, which
/// points at a config and at layers; each layer is a tar of what changed,
/// every piece a blob named by the SHA-256 of its bytes. This reads an
/// image laid out on disk (an OCI image layout), checks every blob, and
/// unpacks its layers into a root filesystem, whiteouts and all, without
/// ever writing outside it.
#[derive(Parser)]
#[command(
    name = "05-images",
    after_help = "Examples (as root):\n  \
        cargo run --example 05-images -- build /tmp/image\n  \
        cargo run --example 05-images -- unpack /tmp/image /tmp/rootfs\n  \
        cargo run --example 05-images -- tree /tmp/rootfs etc srv\n  \
        cargo run --example 05-images -- snapshot /tmp/image --store /tmp/store   # twice: the second unpacks nothing\n  \
        cargo run --example 05-images -- run /tmp/image --store /tmp/store -- cat /etc/hostname\n  \
        cargo run --example 05-images -- pull 127.0.0.1:5000/podlab/demo:1 --store /tmp/store\n  \
        cargo run --example 05-images -- run 127.0.0.1:5000/podlab/demo:1 --store /tmp/store -- id\n  \
        cargo run --example 05-images -- push 127.0.0.1:5000/podlab/demo:1 127.0.0.1:5000/mine/demo:2 --store /tmp/store\n\n\
        Compare with umoci: umoci raw unpack --image /tmp/image:demo /tmp/umoci-rootfs"
)]
struct Args {
    #[command(subcommand)]
    command: Command,

    /// Tell nothing of the calls made, only the results.
    #[arg(short, long, global = true)]
    quiet: bool,

    /// Tell every call, also those of the steps told in one line.
    #[arg(long, global = true)]
    verbose: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Makes a small image from Debian's busybox-static, offline: three
    /// layers, one deleting a file of the first (a whiteout), one replacing
    /// a directory (opaque).
    Build {
        /// Where to make the image's layout (it must not exist).
        dir: PathBuf,
        /// Make a hostile image instead, whose layer tries to write outside
        /// the root through "..".
        #[arg(long)]
        escape: bool,
    },
    /// Unpacks an image's layers, in order, into a new directory.
    Unpack {
        /// The image's layout.
        image: PathBuf,
        /// Where to unpack it (made; it must not exist).
        rootfs: PathBuf,
    },
    /// Unpacks each layer the store lacks into a directory of its own
    /// (a snapshot), as containers of the image will share them.
    Snapshot {
        /// The image's layout.
        image: PathBuf,
        /// Where the layers are kept.
        #[arg(long)]
        store: PathBuf,
    },
    /// Runs the image with level 4's runtime: its layers from the store
    /// (unpacked there if missing), a bundle whose root is an overlay of
    /// them and whose config comes from the image's; all removed after.
    Run {
        /// The image: its layout, or the name of an image pulled into the
        /// store (as `images` lists them).
        image: String,
        /// Where the layers are kept.
        #[arg(long)]
        store: PathBuf,
        /// What to run in place of the image's Cmd.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Pulls an image from a registry on this machine into a store (an OCI
    /// layout shared by every pull), under its name.
    Pull {
        /// `REGISTRY/NAME[:TAG|@DIGEST]`, as 127.0.0.1:5000/podlab/demo:1.
        reference: String,
        /// The store (made if missing).
        #[arg(long)]
        store: PathBuf,
        /// How many blobs to fetch at once.
        #[arg(long, default_value_t = 3, value_name = "N")]
        at_once: usize,
        #[command(flatten)]
        login: Login,
    },
    /// Pushes an image of a store to a registry on this machine: each blob
    /// the registry lacks is mounted from another of its repositories or
    /// uploaded, then the manifest is put. The store then names the image
    /// TARGET too.
    Push {
        /// The image's name in the store (see `images`).
        source: String,
        /// `REGISTRY/NAME[:TAG]` to push it as.
        target: String,
        #[arg(long)]
        store: PathBuf,
        #[command(flatten)]
        login: Login,
    },
    /// Lists the images a store names.
    Images {
        #[arg(long)]
        store: PathBuf,
    },
    /// Takes an image's name out of the store; its blobs go at the next gc.
    Rmi {
        name: String,
        #[arg(long)]
        store: PathBuf,
    },
    /// Removes the blobs no image of the store uses.
    Gc {
        #[arg(long)]
        store: PathBuf,
    },
    /// Lists what a root filesystem holds at each PATH (a directory, with
    /// what is in it): type and mode, owner, name.
    Tree {
        rootfs: PathBuf,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

/// Who you are, for a registry that asks for a user name and password.
#[derive(clap::Args)]
struct Login {
    /// The user name and password, as USER:PASSWORD.
    #[arg(long)]
    user: Option<String>,
    /// A Docker-style config.json to find them in, under `auths` (by
    /// default $DOCKER_CONFIG/config.json, or ~/.docker/config.json).
    #[arg(long)]
    authfile: Option<PathBuf>,
}

impl Login {
    /// The options of a pull or push from `registry`: credentials from
    /// --user, else from the config.json, and progress as the terminal allows.
    fn options(&self, registry: &str) -> Result<Options> {
        let credentials = match (&self.user, &self.authfile) {
            (Some(user), _) => Some(Credentials::parse(user)?),
            (None, Some(file)) if !file.exists() => {
                return Err(podlab::error::Error::new(format!("--authfile {}: no such file", file.display())))
            }
            (None, file) => match file.clone().or_else(Credentials::docker_config_file) {
                Some(file) => Credentials::from_docker_config(&file, registry)?,
                None => None,
            },
        };
        Ok(Options { credentials, show: Show::as_the_terminal_allows(), ..Options::default() })
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    narrate::set_quiet(args.quiet);
    narrate::set_verbose(args.verbose);
    finish("05-images", run(args.command))
}

fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Build { dir, escape } => {
            kernel::require_root("an image's files are owned by root, and made so")?;
            let what = if escape { "a hostile image" } else { "the demo image" };
            narrate::folded(
                || if escape { build::escaping_image(&dir) } else { build::demo_image(&dir) },
                |_: &()| format!("built {what} in {dir:?} as an OCI layout (--verbose tells each call)"),
            )?;
            let image = Layout::open(&dir)?.image()?;
            let kinds: Vec<&str> = image.layers.iter().map(images::kind).collect();
            let layers = if kinds.len() == 1 { "layer" } else { "layers" };
            println!("{} {layers}: {}", kinds.len(), kinds.join(", "));
        }
        Command::Unpack { image, rootfs } => {
            kernel::require_root("unpacking sets owners and makes device files")?;
            kernel::mkdir(&rootfs, 0o755)?;
            // Refused half-way, nothing of it is kept.
            let applied = images::unpack(&image, &rootfs, &Limits::default())
                .inspect_err(|_| drop(kernel::remove_dir_all(&rootfs)))?;
            for (number, layer) in applied.iter().enumerate() {
                println!("layer {}: {} entries, {} whiteouts", number + 1, layer.entries, layer.whiteouts);
            }
        }
        Command::Snapshot { image, store } => {
            kernel::require_root("unpacking sets owners and makes device files")?;
            let layout = Layout::open(&image)?;
            let image = layout.image()?;
            for (number, snapshot) in
                Store::open(&store)?.prepare(&layout, &image, &Limits::default())?.iter().enumerate()
            {
                match &snapshot.unpacked {
                    Some(applied) => println!("layer {}: unpacked ({} entries)", number + 1, applied.entries),
                    None => println!("layer {}: in the store already, nothing unpacked", number + 1),
                }
            }
        }
        Command::Run { image, store, command } => {
            kernel::require_root("running a container needs root")?;
            // A directory is a layout; anything else names a pulled image.
            let (layout, name) = if Path::new(&image).is_dir() {
                (PathBuf::from(&image), None)
            } else {
                (store.clone(), Some(image))
            };
            return Ok(images::bundle::run(&layout, name.as_deref(), &store, &command)?.exit_code());
        }
        Command::Pull { reference, store, at_once, login } => {
            let reference: Reference = reference.parse()?;
            let options = Options { at_once, ..login.options(&reference.registry)? };
            let fetched = registry::pull(&reference, &store, &options)?;
            println!("pulled {reference}: {fetched} blobs fetched, the others in the store already");
        }
        Command::Push { source, target, store, login } => {
            let target: Reference = target.parse()?;
            let pushed = registry::push(&store, &source, &target, &login.options(&target.registry)?)?;
            println!(
                "pushed {target}: {} blobs uploaded, {} mounted from another repository, {} there already",
                pushed.uploaded, pushed.mounted, pushed.present
            );
        }
        Command::Images { store } => {
            for (name, manifest) in Layout::open(&store)?.names()? {
                println!("{name}  {}", manifest.digest());
            }
        }
        Command::Rmi { name, store } => {
            if !Layout::open(&store)?.untag(&name)? {
                return Err(podlab::error::Error::new(format!("the store has no image named {name:?}")));
            }
            println!("untagged {name}");
        }
        Command::Gc { store } => {
            let (blobs, bytes) = Layout::open(&store)?.collect_garbage()?;
            println!("removed {blobs} blobs ({bytes} bytes) that no image uses");
        }
        Command::Tree { rootfs, paths } => {
            for path in paths {
                list(&rootfs, &path)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line for `path` in `rootfs`, and one for each entry below it.
fn list(rootfs: &Path, path: &Path) -> Result<()> {
    let full = rootfs.join(path);
    let Ok(meta) = std::fs::symlink_metadata(&full) else {
        println!("{:<10} {:<9} {} (not there)", "-", "-", path.display());
        return Ok(());
    };
    let kind = meta.file_type();
    let mode = meta.permissions().mode();
    let mut line =
        format!("{} {:<9} {}", mode_string(mode), format!("{}:{}", meta.uid(), meta.gid()), path.display());
    if kind.is_symlink() {
        line += &format!(
            " -> {}",
            std::fs::read_link(&full).map(|t| t.display().to_string()).unwrap_or_default()
        );
    }
    println!("{line}");
    if kind.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(&full)
            .map_err(|e| podlab::error::Error::new(format!("reading {}: {e}", full.display())))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for name in names {
            list(rootfs, &path.join(name))?;
        }
    }
    Ok(())
}

/// A mode as ls writes it: drwxr-xr-x, -rwsr-xr-x, drwxrwxrwt.
fn mode_string(mode: u32) -> String {
    let kind = match mode & 0o170000 {
        0o040000 => 'd',
        0o120000 => 'l',
        0o020000 => 'c',
        0o060000 => 'b',
        0o010000 => 'p',
        _ => '-',
    };
    let bit = |mask: u32, letter: char| if mode & mask != 0 { letter } else { '-' };
    let special = |exec: bool, special: bool, set: char| match (exec, special) {
        (true, true) => set,
        (false, true) => set.to_ascii_uppercase(),
        (true, false) => 'x',
        (false, false) => '-',
    };
    format!(
        "{kind}{}{}{}{}{}{}{}{}{}",
        bit(0o400, 'r'),
        bit(0o200, 'w'),
        special(mode & 0o100 != 0, mode & 0o4000 != 0, 's'),
        bit(0o040, 'r'),
        bit(0o020, 'w'),
        special(mode & 0o010 != 0, mode & 0o2000 != 0, 's'),
        bit(0o004, 'r'),
        bit(0o002, 'w'),
        special(mode & 0o001 != 0, mode & 0o1000 != 0, 't'),
    )
}
