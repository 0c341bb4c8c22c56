//! From an image to a bundle level 4 runs: a root (an overlay of the
//! image's snapshots, with a directory of the container's own on top) and a
//! config.json whose process is the one the image's config asks for, as
//! `umoci unpack` makes it.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use super::layout::{Image, Layout};
use super::snapshots::{mount_overlay, Store};
use super::unpack::Limits;
use crate::child::Exit;
use crate::error::{Error, Result};
use crate::kernel::{self, Root};
use crate::narrate;

// ANCHOR: config
/// runc's default config with the image's process: its Entrypoint and
/// Cmd (`command`, if given, in Cmd's place, as `docker run IMAGE COMMAND`
/// does), its Env over the default's, its WorkingDir, and its User looked
/// up in the rootfs's own /etc/passwd and /etc/group, with HOME from there
/// if the image sets none.
pub fn config(image: &Image, root: &Root, command: &[String]) -> Result<Spec> {
    let settings = image.config.config().clone().unwrap_or_default();
    let entrypoint = settings.entrypoint().clone().unwrap_or_default();
    let cmd = if command.is_empty() { settings.cmd().clone().unwrap_or_default() } else { command.to_vec() };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(Error::new("the image names no program (no Entrypoint, no Cmd): give a command to run"));
    }
    let mut spec = crate::runtime::default_spec(&args);
    let user = settings.user().clone().unwrap_or_default();
    let (uid, gid, home) = look_up_user(root, &user)?;
    let process = spec.process_mut().as_mut().expect("the default spec has a process");
    let mut env = process.env().clone().unwrap_or_default();
    for pair in settings.env().iter().flatten() {
        let key = pair.split('=').next().unwrap_or_default();
        match env.iter_mut().find(|known| known.split('=').next() == Some(key)) {
            Some(known) => *known = pair.clone(),
            None => env.push(pair.clone()),
        }
    }
    if !env.iter().any(|pair| pair.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    process.set_env(Some(env));
    process.set_cwd(PathBuf::from(
        settings.working_dir().clone().filter(|w| !w.is_empty()).unwrap_or("/".into()),
    ));
    let mut identity = process.user().clone();
    identity.set_uid(uid);
    identity.set_gid(gid);
    process.set_user(identity);
    process.set_terminal(Some(false));
    Ok(spec)
}
// ANCHOR_END: config

/// The uid, gid and home directory of an image's User (`name`, `uid`,
/// `name:group`, `uid:gid`, or empty for root), found in the rootfs's own
/// files: the image's users are not the host's.
fn look_up_user(root: &Root, user: &str) -> Result<(u32, u32, String)> {
    let (who, group) = user.split_once(':').map_or((user, None), |(u, g)| (u, Some(g)));
    let who = if who.is_empty() { "0" } else { who };
    let read = |path: &str| -> Result<String> {
        let file = root.find(Path::new(path))?;
        Ok(file
            .map(|f| f.read(1 << 20))
            .transpose()?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default())
    };
    let passwd = read("etc/passwd")?;
    let entry = passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.len() >= 7 && (fields[0] == who || fields[2] == who));
    let (uid, mut gid, home) = match (&entry, who.parse::<u32>()) {
        (Some(fields), _) => {
            (fields[2].parse().unwrap_or(0), fields[3].parse().unwrap_or(0), fields[5].to_string())
        }
        (None, Ok(uid)) => (uid, uid, "/".to_string()),
        (None, Err(_)) => {
            return Err(Error::new(format!(
                "the image's user {who:?} is not in its /etc/passwd: fix its User"
            )))
        }
    };
    if let Some(group) = group {
        let groups = read("etc/group")?;
        let found = groups
            .lines()
            .map(|line| line.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 3 && (f[0] == group || f[2] == group));
        gid = match (found, group.parse::<u32>()) {
            (Some(fields), _) => fields[2].parse().unwrap_or(0),
            (None, Ok(gid)) => gid,
            (None, Err(_)) => {
                return Err(Error::new(format!(
                    "the image's group {group:?} is not in its /etc/group: fix its User"
                )))
            }
        };
    }
    Ok((uid, gid, home))
}

// ANCHOR: run
/// Runs an image with level 4's runtime: its layers from the store
/// (unpacked there if missing), a new bundle of which the root is an
/// overlay of them, the config from the image; then removes the container
/// and the bundle, whatever happened. The image is the one in the layout
/// at `layout`, or the one it names `name` (a pulled image: the store's
/// blobs are a layout too).
pub fn run(layout: &Path, name: Option<&str>, store: &Path, command: &[String]) -> Result<Exit> {
    let layout = Layout::open(layout)?;
    let image = layout.image_named(name)?;
    let layers: Vec<PathBuf> = Store::open(store)?
        .prepare(&layout, &image, &Limits::default())?
        .into_iter()
        .map(|s| s.dir)
        .collect();
    let bundle = Bundle(kernel::mkdtemp("podlab-")?);
    for dir in ["rootfs", "upper", "work"] {
        kernel::mkdir(&bundle.0.join(dir), 0o755)?;
    }
    mount_overlay(&layers, &bundle.0.join("upper"), &bundle.0.join("work"), &bundle.0.join("rootfs"))?;
    let spec = config(&image, &Root::open(&bundle.0.join("rootfs"))?, command)?;
    let json = serde_json::to_string_pretty(&spec).expect("a spec is plain data");
    kernel::write_file(&bundle.0.join("config.json"), &json)?;
    let id = bundle.0.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let runtime = crate::runtime::Runtime::new(&bundle.0.join("state"))?;
    narrate::folded(
        || runtime.run(&id, &bundle.0, None),
        |_| "ran the bundle with level 4's runtime (--verbose tells each call)".to_string(),
    )
}
// ANCHOR_END: run

/// A bundle made for one run, removed on every path: its overlay
/// unmounted, then its directory.
struct Bundle(PathBuf);

impl Drop for Bundle {
    fn drop(&mut self) {
        if let Err(error) = kernel::remove_dir_all(&self.0) {
            eprintln!("warning: {error}");
        }
    }
}
