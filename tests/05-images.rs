//! Level 5: images read off an OCI layout, every blob checked, the layers
//! unpacked safely. Compared with umoci (Debian's), which unpacks the same
//! image; and tried with hostile layouts and layers, each refused in a
//! sentence with nothing written outside the root.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{needs_root_and_busybox, run, Scratch};
use podlab::images::build::{self, LayerBlob};
use podlab::images::registry::local::{Auth, LocalRegistry, TokenServer};
use podlab::images::registry::{Credentials, Options, Reference};
use podlab::images::Limits;

fn needs_umoci(test: &str) -> bool {
    needs_root_and_busybox(test)
        && common::can_run(
            test,
            Command::new("umoci")
                .arg("--version")
                .output()
                .is_err()
                .then(|| "umoci is not installed (scripts/setup --tests installs it)".to_string()),
        )
}

/// What a tree holds, entry by entry, as a user can see it: type, mode,
/// owner, size, contents (by digest), link target, and for files and
/// links their modification time.
fn tree(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut found = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let kind = meta.file_type();
            let what = if kind.is_dir() {
                stack.push(path.clone());
                "dir".to_string()
            } else if kind.is_symlink() {
                format!("link to {} at {}", std::fs::read_link(&path).unwrap().display(), meta.mtime())
            } else if kind.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                format!("file of {} bytes, {} at {}", bytes.len(), build::sha256(&bytes), meta.mtime())
            } else {
                format!("special {:o}", meta.mode() & 0o170000)
            };
            let mode = meta.permissions().mode() & 0o7777;
            let line = format!("{what}, mode {mode:o}, owner {}:{}", meta.uid(), meta.gid());
            found.insert(path.strip_prefix(root).unwrap().to_path_buf(), line);
        }
    }
    found
}

/// The demo image, unpacked by ours and by `umoci raw unpack`: the same
/// tree, whiteouts applied, modes (setuid, sticky) and owners and times
/// kept, the hard link one file.
#[test]
fn the_demo_image_unpacks_as_umoci_unpacks_it() {
    if !needs_umoci("the_demo_image_unpacks_as_umoci_unpacks_it") {
        return;
    }
    let scratch = Scratch::new("image-vs-umoci");
    let layout = scratch.path().join("layout");
    build::demo_image(&layout).unwrap();
    let theirs = scratch.path().join("umoci-rootfs");
    let umoci = run(Command::new("umoci")
        .args(["raw", "unpack", "--image"])
        .arg(format!("{}:{}", layout.display(), build::TAG))
        .arg(&theirs));
    assert_eq!(umoci.code, Some(0), "umoci: {}", umoci.stderr);
    let ours = scratch.path().join("our-rootfs");
    std::fs::create_dir(&ours).unwrap();
    let applied = podlab::images::unpack(&layout, &ours, &Limits::default()).unwrap();
    assert_eq!(applied.len(), 3);
    assert_eq!(applied.iter().map(|a| a.whiteouts).sum::<usize>(), 2, "one whiteout, one opaque directory");
    let (ours_tree, theirs_tree) = (tree(&ours), tree(&theirs));
    assert_eq!(ours_tree, theirs_tree, "ours (left) and umoci's (right)");
    assert!(!ours.join("etc/motd").exists(), "layer 2's whiteout deletes layer 1's motd");
    assert!(!ours.join("srv/old").exists(), "layer 3's opaque /srv hides layer 1's");
    assert!(ours.join("srv/new/data").is_file());
    let (busybox, hardlink) = (ours.join("bin/busybox"), ours.join("bin/busybox.hardlink"));
    assert_eq!(std::fs::metadata(&busybox).unwrap().ino(), std::fs::metadata(&hardlink).unwrap().ino());
    assert!(ours_tree[Path::new("bin/setuid-demo")].contains("mode 4755"), "{ours_tree:?}");
    assert_eq!(ours_tree[Path::new("tmp")], "dir, mode 1777, owner 0:0");
}

/// buildah, with its storage in the test's scratch directory (vfs: no
/// mounts), so that nothing of it is left on the machine.
/// A peer (skopeo, buildah) run with a /var/lib of its own: the cache it
/// keeps there (/var/lib/containers/cache) goes with it.
fn peer(program: &str) -> Command {
    let mut command = Command::new(program);
    podlab::kernel::with_private_var_lib(&mut command);
    command
}

fn buildah(scratch: &Path) -> Command {
    let mut buildah = peer("buildah");
    buildah
        .arg("--root")
        .arg(scratch.join("buildah/storage"))
        .arg("--runroot")
        .arg(scratch.join("buildah/run"))
        .args(["--storage-driver", "vfs"]);
    buildah
}

fn succeeds(command: &mut Command) -> String {
    let outcome = run(command);
    assert_eq!(outcome.code, Some(0), "{command:?}: {}", outcome.stderr);
    outcome.stdout.trim().to_string()
}

/// An image we did not make: buildah builds it from scratch (busybox
/// setuid, a symlink, files), then on it, with `buildah run`, deletes a
/// file and a directory and makes another (whiteouts as containers/storage
/// writes them, beside the mount points buildah leaves), and commits it as
/// an OCI layout. Ours and umoci unpack it to the same tree. skopeo then
/// converts it to Docker's format (v2s2, layers gzipped) in a registry;
/// ours pulls that and unpacks it to the same tree again.
#[test]
fn an_image_built_by_buildah_and_converted_by_skopeo_unpacks_as_with_umoci() {
    let test = "an_image_built_by_buildah_and_converted_by_skopeo_unpacks_as_with_umoci";
    if !needs_registry(test)
        || !common::can_run(
            test,
            (!Path::new("/usr/bin/buildah").exists())
                .then(|| "buildah is not installed (scripts/setup --tests installs it)".to_string()),
        )
    {
        return;
    }
    let scratch = Scratch::new("buildah");
    let context = scratch.path().join("context");
    for dir in ["bin", "etc", "srv/old"] {
        std::fs::create_dir_all(context.join(dir)).unwrap();
    }
    std::fs::copy("/bin/busybox", context.join("bin/busybox")).unwrap();
    std::fs::set_permissions(context.join("bin/busybox"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    std::os::unix::fs::symlink("busybox", context.join("bin/sh")).unwrap();
    std::fs::write(context.join("etc/motd"), "hello\n").unwrap();
    std::fs::write(context.join("srv/old/file"), "old\n").unwrap();
    let layout = scratch.path().join("layout");
    let image = |tag: &str| format!("oci:{}:{tag}", layout.display());
    let first = succeeds(buildah(scratch.path()).args(["from", "scratch"]));
    succeeds(buildah(scratch.path()).args(["copy", &first]).arg(&context).arg("/"));
    succeeds(buildah(scratch.path()).args(["config", "--cmd", "/bin/sh", "--env", "PATH=/bin", &first]));
    succeeds(buildah(scratch.path()).args(["commit", "-q", "--format", "oci", &first, &image("one")]));
    let second = succeeds(buildah(scratch.path()).args(["from", "-q", &image("one")]));
    let change = "rm /etc/motd; rm -r /srv/old; mkdir /srv/new; echo new > /srv/new/file";
    succeeds(buildah(scratch.path()).args([
        "run",
        "--isolation",
        "chroot",
        &second,
        "--",
        "/bin/sh",
        "-c",
        change,
    ]));
    succeeds(buildah(scratch.path()).args(["commit", "-q", "--format", "oci", &second, &image("two")]));

    let theirs = scratch.path().join("umoci-rootfs");
    succeeds(
        Command::new("umoci")
            .args(["raw", "unpack", "--image"])
            .arg(format!("{}:two", layout.display()))
            .arg(&theirs),
    );
    let ours = scratch.path().join("our-rootfs");
    std::fs::create_dir(&ours).unwrap();
    let applied = podlab::images::unpack_named(&layout, Some("two"), &ours, &Limits::default()).unwrap();
    assert_eq!(applied.iter().map(|a| a.whiteouts).sum::<usize>(), 2, "buildah's two whiteouts");
    let ours_tree = tree(&ours);
    assert_eq!(ours_tree, tree(&theirs), "ours (left) and umoci's (right)");
    assert!(!ours.join("etc/motd").exists() && !ours.join("srv/old").exists(), "{ours_tree:?}");
    assert_eq!(std::fs::read_to_string(ours.join("srv/new/file")).unwrap(), "new\n");
    assert!(ours_tree[Path::new("bin/busybox")].contains("mode 4755"), "{ours_tree:?}");

    // In Docker's format, through a registry: converted by skopeo, and
    // committed in Docker's format and pushed by buildah itself.
    let registry = LocalRegistry::start(scratch.path(), Auth::Anonymous).unwrap();
    let converted: Reference = format!("{}/buildah/two:1", registry.address).parse().unwrap();
    succeeds(peer("skopeo").arg("--policy").arg(policy(scratch.path())).args([
        "copy",
        "--dest-tls-verify=false",
        "--format",
        "v2s2",
        &image("two"),
        &format!("docker://{converted}"),
    ]));
    let pushed: Reference = format!("{}/buildah/docker:1", registry.address).parse().unwrap();
    succeeds(buildah(scratch.path()).args([
        "commit",
        "-q",
        "--format",
        "docker",
        &second,
        "podlab-docker-format",
    ]));
    succeeds(buildah(scratch.path()).args([
        "push",
        "-q",
        "--tls-verify=false",
        "--format",
        "v2s2",
        "podlab-docker-format",
        &format!("docker://{pushed}"),
    ]));
    for reference in [&converted, &pushed] {
        let store = scratch.path().join(format!("store-{}", reference.repository.replace('/', "-")));
        assert_eq!(
            podlab::images::registry::pull(reference, &store, &Options::default()).unwrap(),
            3,
            "{reference}"
        );
        let pulled =
            podlab::images::Layout::open(&store).unwrap().image_named(Some(&reference.to_string())).unwrap();
        assert_eq!(
            pulled.descriptor.media_type().to_string(),
            "application/vnd.docker.distribution.manifest.v2+json",
            "{reference}"
        );
        assert!(pulled.layers.iter().all(|l| l.descriptor.media_type().to_string().ends_with("tar.gzip")));
        let docker = scratch.path().join(reference.repository.replace('/', "-"));
        std::fs::create_dir(&docker).unwrap();
        podlab::images::unpack_named(&store, Some(&reference.to_string()), &docker, &Limits::default())
            .unwrap();
        assert_eq!(tree(&docker), ours_tree, "{reference} in Docker's format (left), from OCI's (right)");
    }
}

/// A raw tar entry, its name written as is (the tar crate refuses to write
/// ".." itself, as an honest writer would).
fn raw_entry(tar: &mut Vec<u8>, name: &str, kind: tar::EntryType, link: &str, data: &[u8]) {
    let mut header = tar::Header::new_old();
    let old = header.as_old_mut();
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    header.set_entry_type(kind);
    header.set_mode(if kind == tar::EntryType::Directory { 0o755 } else { 0o644 });
    header.set_size(data.len() as u64);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1_700_000_000);
    header.set_cksum();
    tar.extend_from_slice(header.as_bytes());
    tar.extend_from_slice(data);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
}

/// A layer of raw entries: (name, kind, link target, data).
fn hostile_tar(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut tar = Vec::new();
    for (name, kind, link, data) in entries {
        raw_entry(&mut tar, name, *kind, link, data);
    }
    tar.extend_from_slice(&[0; 1024]);
    tar
}

/// A place the hostile layers aim at, outside the root: it must stay empty.
struct Target {
    scratch: Scratch,
}

impl Target {
    fn new(test: &str) -> Target {
        let scratch = Scratch::new(test);
        std::fs::create_dir(scratch.path().join("outside")).unwrap();
        std::fs::create_dir(scratch.path().join("rootfs")).unwrap();
        Target { scratch }
    }

    fn outside(&self) -> PathBuf {
        self.scratch.path().join("outside")
    }

    fn rootfs(&self) -> PathBuf {
        self.scratch.path().join("rootfs")
    }

    fn layout(&self) -> PathBuf {
        self.scratch.path().join("layout")
    }

    /// Unpacks a layout of these layers; what it said, if it refused.
    fn unpack(&self, layers: &[LayerBlob], limits: &Limits) -> Option<String> {
        build::write_layout(&self.layout(), layers).unwrap();
        self.unpack_as_it_is(limits)
    }

    fn unpack_as_it_is(&self, limits: &Limits) -> Option<String> {
        podlab::images::unpack(&self.layout(), &self.rootfs(), limits).err().map(|e| e.to_string())
    }

    fn nothing_outside(&self, case: &str) {
        let left: Vec<_> = std::fs::read_dir(self.outside()).unwrap().flatten().map(|e| e.path()).collect();
        assert_eq!(left, Vec::<PathBuf>::new(), "{case}: written outside the root");
    }
}

fn tar_layer(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> LayerBlob {
    LayerBlob::of_tar(hostile_tar(entries), true).unwrap()
}

/// Layers that try to write outside the root, or to break the unpacker:
/// each refused in one sentence, or (links that point out) contained, and
/// nothing ever written outside.
#[test]
fn hostile_layers_are_refused_and_nothing_lands_outside() {
    if !needs_root_and_busybox("hostile_layers_are_refused_and_nothing_lands_outside") {
        return;
    }
    use tar::EntryType::{Directory, Link, Regular, Symlink};
    type Entries = Vec<(String, tar::EntryType, String, Vec<u8>)>;
    let file = |name: String| (name, Regular, String::new(), b"x".to_vec());
    let link = |name: &str, to: String| (name.to_string(), Symlink, to, Vec::new());
    // Each case aims at a directory outside the root (`outside`).
    let cases = |outside: &str| -> Vec<(&'static str, Entries, Option<&'static str>)> {
        let climbing = format!("../../../../../../../..{outside}");
        vec![
            ("a path that climbs", vec![file(format!("{climbing}/escaped"))], Some("climbs out of the root")),
            ("an absolute path", vec![file(format!("{outside}/escaped"))], Some("is an absolute path")),
            (
                "a file through a link that points out",
                vec![link("out", outside.into()), file("out/escaped".into())],
                None,
            ),
            (
                "a file through a chain of links that climbs",
                vec![link("a", "b".into()), link("b", climbing.clone()), file("a/escaped".into())],
                None,
            ),
            (
                "a directory through a link that points out",
                vec![link("out", outside.into()), ("out/made".into(), Directory, String::new(), Vec::new())],
                None,
            ),
            (
                "a hard link that climbs",
                vec![("h".into(), Link, "../../../../etc/passwd".into(), Vec::new())],
                Some("climbs out of the root"),
            ),
            (
                "a hard link through a link that points out",
                vec![link("etc-out", "/etc".into()), ("h".into(), Link, "etc-out/passwd".into(), Vec::new())],
                Some("which the root does not have"),
            ),
            ("a whiteout of ..", vec![file("x/.wh...".into())], Some("names no entry")),
            ("a whiteout of nothing", vec![file(".wh.".into())], Some("names no entry")),
            (
                "a whiteout through a link that points out",
                vec![link("out", outside.into()), file("out/.wh.keep".into())],
                None,
            ),
            (
                "an opaque directory through a link that points out",
                vec![link("out", outside.into()), file("out/.wh..wh..opq".into())],
                None,
            ),
        ]
    };
    for index in 0..cases("/").len() {
        let target = Target::new("hostile");
        // Something outside for whiteouts to try to delete.
        std::fs::write(target.outside().join("keep"), "").unwrap();
        let (case, entries, refusal) = cases(target.outside().to_str().unwrap()).swap_remove(index);
        let entries: Vec<(&str, tar::EntryType, &str, &[u8])> =
            entries.iter().map(|(n, k, l, d)| (n.as_str(), *k, l.as_str(), d.as_slice())).collect();
        let said = target.unpack(&[tar_layer(&entries)], &Limits::default());
        match (refusal, &said) {
            (Some(phrase), Some(said)) => assert!(said.contains(phrase), "{case}: {said}"),
            (None, None) => {}
            (expected, said) => panic!("{case}: expected {expected:?}, got {said:?}"),
        }
        std::fs::remove_file(target.outside().join("keep"))
            .unwrap_or_else(|_| panic!("{case}: deleted outside"));
        target.nothing_outside(case);
    }
}

/// A device node in an image (here /dev/mem's numbers, 1:1, mode 0666):
/// made as the image says, as umoci and docker make it, since an image may
/// rightly carry device files. What keeps a container from using it is not
/// the file but the runtime's device rules (level 4's devices cgroup): run,
/// the container is refused when it opens it.
#[test]
fn a_device_node_in_an_image_is_made_and_the_container_cannot_open_it() {
    if !needs_umoci("a_device_node_in_an_image_is_made_and_the_container_cannot_open_it") {
        return;
    }
    let scratch = Scratch::new("device-node");
    let mut tar = tar::Builder::new(Vec::new());
    let mut add =
        |name: &str, kind: tar::EntryType, mode: u32, link: &str, data: &[u8], device: (u32, u32)| {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(kind);
            header.set_mode(mode);
            header.set_size(data.len() as u64);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(1_700_000_000);
            header.set_device_major(device.0).unwrap();
            header.set_device_minor(device.1).unwrap();
            if !link.is_empty() {
                header.set_link_name(link).unwrap();
            }
            tar.append_data(&mut header, name, data).unwrap();
        };
    use tar::EntryType::{Char, Directory, Regular, Symlink};
    add("bin", Directory, 0o755, "", b"", (0, 0));
    add("bin/busybox", Regular, 0o755, "", &std::fs::read("/bin/busybox").unwrap(), (0, 0));
    add("bin/sh", Symlink, 0o777, "busybox", b"", (0, 0));
    add("mem", Char, 0o666, "", b"", (1, 1));
    let layer = LayerBlob::of_tar(tar.into_inner().unwrap(), true).unwrap();
    let layout = scratch.path().join("layout");
    build::write_layout(&layout, &[layer]).unwrap();

    let (ours, theirs) = (scratch.path().join("ours"), scratch.path().join("umoci"));
    std::fs::create_dir(&ours).unwrap();
    podlab::images::unpack(&layout, &ours, &Limits::default()).unwrap();
    succeeds(
        Command::new("umoci")
            .args(["raw", "unpack", "--image"])
            .arg(format!("{}:{}", layout.display(), build::TAG))
            .arg(&theirs),
    );
    assert_eq!(tree(&ours), tree(&theirs), "ours (left), umoci's (right)");
    let made = std::fs::symlink_metadata(ours.join("mem")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(&made.file_type()));
    assert_eq!(made.rdev(), nix::sys::stat::makedev(1, 1));

    let store = scratch.path().join("store");
    let ran = run(Command::new(common::example("05-images"))
        .args(["--quiet", "run"])
        .arg(&layout)
        .arg("--store")
        .arg(&store)
        .args(["--", "sh", "-c", "ls -l /mem; head -c 1 /mem; echo exit=$?"]));
    let said = format!("{}{}", ran.stdout, ran.stderr);
    assert!(said.contains("crw-rw-rw-") && said.contains("1,   1"), "the node is there: {said}");
    assert!(said.contains("Operation not permitted") && said.contains("exit=1"), "{said}");
}

/// Layouts and blobs that are wrong or hostile: each refused in a sentence
/// before any of it is used.
#[test]
fn bad_layouts_and_blobs_are_refused() {
    if !needs_root_and_busybox("bad_layouts_and_blobs_are_refused") {
        return;
    }
    use tar::EntryType::Regular;
    let plain = || tar_layer(&[("hello", Regular, "", b"hello\n")]);
    let blob_of = |target: &Target, size_at_least: usize| -> PathBuf {
        std::fs::read_dir(target.layout().join("blobs/sha256"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                std::fs::metadata(p).unwrap().len() as usize >= size_at_least
                    && std::fs::read(p).unwrap()[..2] == [0x1f, 0x8b]
            })
            .expect("a gzip blob")
    };
    type Spoil = Box<dyn Fn(&Target)>;
    let cases: Vec<(&str, Spoil, &str)> = vec![
        (
            "a layer whose bytes changed",
            Box::new(move |t: &Target| {
                let blob = blob_of(t, 20);
                let mut bytes = std::fs::read(&blob).unwrap();
                let last = bytes.len() - 1;
                bytes[last] ^= 1;
                std::fs::write(&blob, bytes).unwrap();
            }),
            "holds other bytes",
        ),
        (
            "a layer cut short",
            Box::new(move |t: &Target| {
                let blob = blob_of(t, 20);
                let bytes = std::fs::read(&blob).unwrap();
                std::fs::write(&blob, &bytes[..bytes.len() / 2]).unwrap();
            }),
            "where its descriptor says",
        ),
        (
            "an index that is not JSON",
            Box::new(|t: &Target| std::fs::write(t.layout().join("index.json"), "{ not json").unwrap()),
            "is not a valid image index",
        ),
        (
            "an index for another platform",
            Box::new(|t: &Target| {
                let file = t.layout().join("index.json");
                let text = std::fs::read_to_string(&file).unwrap().replace("\"linux\"", "\"windows\"");
                std::fs::write(file, text).unwrap();
            }),
            "has no manifest for linux/",
        ),
        (
            "a digest that is not sha256",
            Box::new(|t: &Target| {
                let file = t.layout().join("index.json");
                let text = std::fs::read_to_string(&file).unwrap();
                let at = text.find("sha256:").unwrap();
                let hex = &text[at + 7..at + 71];
                let text = text.replace(&format!("sha256:{hex}"), &format!("sha512:{hex}{hex}"));
                std::fs::write(file, text).unwrap();
            }),
            "is not a sha256 digest",
        ),
        (
            "not a layout at all",
            Box::new(|t: &Target| std::fs::remove_file(t.layout().join("oci-layout")).unwrap()),
            "is not an OCI image layout",
        ),
    ];
    for (case, spoil, phrase) in cases {
        let target = Target::new("bad-layout");
        build::write_layout(&target.layout(), &[plain()]).unwrap();
        spoil(&target);
        let said = target.unpack_as_it_is(&Limits::default()).unwrap_or_else(|| panic!("{case}: accepted"));
        assert!(said.contains(phrase), "{case}: {said}");
        assert!(!target.rootfs().join("hello").exists(), "{case}: a refused layer was unpacked");
    }

    // A bomb: 64 MiB of zeros in a few kilobytes of gzip, against a limit of 1 MiB.
    let target = Target::new("bomb");
    let zeros = vec![0u8; 64 << 20];
    let bomb = tar_layer(&[("zeros", Regular, "", &zeros)]);
    assert!(bomb.bytes.len() < 1 << 20, "the bomb is small packed");
    let said = target.unpack(&[bomb], &Limits { bytes: 1 << 20, entries: 100 }).expect("refused");
    assert!(said.contains("decompression bomb"), "{said}");

    // The same bomb in zstd.
    let target = Target::new("zstd-bomb");
    let tar = hostile_tar(&[("zeros", Regular, "", &zeros)]);
    let bytes = ruzstd::encoding::compress_to_vec(&tar[..], ruzstd::encoding::CompressionLevel::Fastest);
    assert!(bytes.len() < 1 << 20, "the bomb is small packed");
    let diff_id = format!("sha256:{}", build::sha256(&tar));
    let bomb = LayerBlob { bytes, media_type: oci_spec::image::MediaType::ImageLayerZstd, diff_id };
    let said = target.unpack(&[bomb], &Limits { bytes: 1 << 20, entries: 100 }).expect("refused");
    assert!(said.contains("decompression bomb"), "{said}");

    // A gzip stream cut short, though its blob is what its digest says
    // (the image was made so): the end of the stream is missing.
    let target = Target::new("truncated-gzip");
    let mut cut = tar_layer(&[("hello", Regular, "", &[7u8; 4000])]);
    cut.bytes.truncate(cut.bytes.len() / 2);
    let said = target.unpack(&[cut], &Limits::default()).expect("refused");
    assert!(said.contains("damaged"), "{said}");

    // A config of 0 bytes, rightly named by the digest of nothing.
    let target = Target::new("empty-config");
    build::write_layout(&target.layout(), &[plain()]).unwrap();
    let index_file = target.layout().join("index.json");
    let mut index: serde_json::Value = serde_json::from_slice(&std::fs::read(&index_file).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(target.layout().join("blobs/sha256").join(digest)).unwrap())
            .unwrap();
    let empty = build::put_blob(&target.layout(), b"", oci_spec::image::MediaType::ImageConfig).unwrap();
    manifest["config"]["digest"] = empty.digest().to_string().into();
    manifest["config"]["size"] = 0.into();
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let put = build::put_blob(&target.layout(), &bytes, oci_spec::image::MediaType::ImageManifest).unwrap();
    index["manifests"][0]["digest"] = put.digest().to_string().into();
    index["manifests"][0]["size"] = bytes.len().into();
    std::fs::write(&index_file, index.to_string()).unwrap();
    let said = target.unpack_as_it_is(&Limits::default()).expect("refused");
    assert!(said.contains("image config") && said.contains("is not valid JSON"), "{said}");

    // Too many entries.
    let target = Target::new("entries");
    let names: Vec<String> = (0..50).map(|n| format!("file-{n}")).collect();
    let many: Vec<(&str, tar::EntryType, &str, &[u8])> =
        names.iter().map(|n| (n.as_str(), Regular, "", &b""[..])).collect();
    let said = target.unpack(&[tar_layer(&many)], &Limits { bytes: 1 << 20, entries: 10 }).expect("refused");
    assert!(said.contains("more than 10 entries"), "{said}");

    // A layer whose tar is not the one the config names.
    let target = Target::new("diff-id");
    let mut layer = plain();
    layer.diff_id = format!("sha256:{}", "0".repeat(64));
    let said = target.unpack(&[layer], &Limits::default()).expect("refused");
    assert!(said.contains("than the config's diff_id says"), "{said}");

    // An empty blob where a gzip layer should be.
    let target = Target::new("empty-layer");
    let empty = LayerBlob {
        bytes: Vec::new(),
        media_type: oci_spec::image::MediaType::ImageLayerGzip,
        diff_id: String::new(),
    };
    let said = target.unpack(&[empty], &Limits::default()).expect("refused");
    assert!(said.contains("damaged"), "{said}");
}

/// Unmounts what a test mounted, on every path.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Each layer unpacked once into a snapshot of its own, whiteouts kept as
/// overlayfs marks them; mounted as an overlay they show the same tree as
/// the image unpacked flat (and as umoci's). A second container of the
/// image unpacks nothing, and its writes go to its own upper directory.
#[test]
fn overlay_snapshots_show_the_image_and_are_unpacked_once() {
    if !needs_root_and_busybox("overlay_snapshots_show_the_image_and_are_unpacked_once") {
        return;
    }
    use podlab::images::snapshots::{mount_overlay, Store};
    let scratch = Scratch::new("snapshots");
    let layout_dir = scratch.path().join("layout");
    build::demo_image(&layout_dir).unwrap();
    let flat = scratch.path().join("flat");
    std::fs::create_dir(&flat).unwrap();
    podlab::images::unpack(&layout_dir, &flat, &Limits::default()).unwrap();

    let layout = podlab::images::Layout::open(&layout_dir).unwrap();
    let image = layout.image().unwrap();
    let store = Store::open(&scratch.path().join("store")).unwrap();
    let first = store.prepare(&layout, &image, &Limits::default()).unwrap();
    assert!(first.iter().all(|s| s.unpacked.is_some()), "the first container unpacks every layer");
    // Layer 2's whiteout, kept as overlayfs's: a character device 0:0.
    let whiteout = std::fs::symlink_metadata(first[1].dir.join("etc/motd")).unwrap();
    assert_eq!((whiteout.mode() & 0o170000, whiteout.rdev()), (0o020000, 0), "a 0:0 character device");

    let mut views = Vec::new();
    for container in ["one", "two"] {
        let snapshots = store.prepare(&layout, &image, &Limits::default()).unwrap();
        assert!(snapshots.iter().all(|s| s.unpacked.is_none()), "{container}: nothing unpacked again");
        let layers: Vec<PathBuf> = snapshots.into_iter().map(|s| s.dir).collect();
        let base = scratch.path().join(container);
        for dir in ["upper", "work", "rootfs"] {
            std::fs::create_dir_all(base.join(dir)).unwrap();
        }
        mount_overlay(&layers, &base.join("upper"), &base.join("work"), &base.join("rootfs")).unwrap();
        views.push(Mounted(base.join("rootfs")));
    }
    let one = scratch.path().join("one/rootfs");
    assert_eq!(tree(&one), tree(&flat), "the overlay (left) and the flat unpack (right)");
    // A write in one container lands in its upper directory, not in the
    // shared layers, and the other does not see it.
    std::fs::write(one.join("etc/hostname"), "changed\n").unwrap();
    assert_eq!(std::fs::read_to_string(scratch.path().join("one/upper/etc/hostname")).unwrap(), "changed\n");
    assert_eq!(
        std::fs::read_to_string(scratch.path().join("two/rootfs/etc/hostname")).unwrap(),
        "podlab-image\n"
    );
    assert_eq!(std::fs::read_to_string(first[1].dir.join("etc/hostname")).unwrap(), "podlab-image\n");
    drop(views);
}

// The level's own transcripts, as the book shows them.
scenario_tests!(podlab::images::LEVEL;
    unpack_scenario => "unpack",
    snapshots_scenario => "snapshots",
    run_scenario => "run",
    pull_scenario => "pull",
    push_scenario => "push",
    escape_scenario => "escape",
);

/// The config a bundle gets from the image agrees with `umoci unpack`'s on
/// the process (args, env, working directory, user); and the image runs
/// with level 4's runtime, twice, the second time from the store.
#[test]
fn an_image_runs_with_a_config_as_umocis() {
    if !needs_umoci("an_image_runs_with_a_config_as_umocis") {
        return;
    }
    let scratch = Scratch::new("image-config");
    let layout = scratch.path().join("layout");
    build::demo_image(&layout).unwrap();
    let umoci = run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:{}", layout.display(), build::TAG))
        .arg(scratch.path().join("umoci-bundle")));
    assert_eq!(umoci.code, Some(0), "umoci: {}", umoci.stderr);
    let theirs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(scratch.path().join("umoci-bundle/config.json")).unwrap(),
    )
    .unwrap();
    let rootfs = scratch.path().join("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    podlab::images::unpack(&layout, &rootfs, &Limits::default()).unwrap();
    let image = podlab::images::Layout::open(&layout).unwrap().image().unwrap();
    let root = podlab::kernel::Root::open(&rootfs).unwrap();
    let ours = serde_json::to_value(podlab::images::bundle::config(&image, &root, &[]).unwrap()).unwrap();
    for field in ["/process/args", "/process/env", "/process/cwd", "/process/user/uid", "/process/user/gid"] {
        assert_eq!(ours.pointer(field), theirs.pointer(field), "{field}: ours (left), umoci's (right)");
    }

    let example = common::example("05-images");
    let store = scratch.path().join("store");
    for time in ["first", "second"] {
        let outcome = run(Command::new(&example)
            .args(["run"])
            .arg(&layout)
            .arg("--store")
            .arg(&store)
            .args(["--", "sh", "-c", "cat /etc/hostname; ls /srv; echo $HOME"]));
        assert_eq!(
            (outcome.code, outcome.stdout.as_str()),
            (Some(0), "podlab-image\nnew\n/root\n"),
            "{time}: {}",
            outcome.stderr
        );
        assert_eq!(outcome.stderr.contains("unpacked layer"), time == "first", "{time}: {}", outcome.stderr);
    }
}

/// An htpasswd file in `dir` for `user` (USER:PASSWORD), bcrypt as
/// docker-registry requires (htpasswd, from apache2-utils).
fn htpasswd(dir: &Path, user: &str) -> PathBuf {
    let (name, password) = user.split_once(':').unwrap();
    let made = run(Command::new("htpasswd").args(["-Bbn", name, password]));
    assert_eq!(made.code, Some(0), "htpasswd: {}", made.stderr);
    let file = dir.join("htpasswd");
    std::fs::write(&file, made.stdout).unwrap();
    file
}

fn tokens(dir: &Path, user: Option<&str>) -> TokenServer {
    TokenServer::start(dir, user.map(|u| Credentials::parse(u).unwrap())).unwrap()
}

fn needs_registry(test: &str) -> bool {
    let missing = ["docker-registry", "skopeo", "htpasswd"]
        .into_iter()
        .find(|tool| !Path::new("/usr/bin").join(tool).exists());
    needs_umoci(test)
        && common::can_run(
            test,
            missing.map(|tool| format!("{tool} is not installed (scripts/setup --tests installs it)")),
        )
}

/// skopeo pushes the demo image to a registry of the test's own; ours
/// pulls it into a store: the same blobs as `skopeo copy` of it into an
/// OCI layout, and unpacked, the same tree as the image it came from. A
/// second pull fetches nothing. Anonymously, with anonymous tokens, with
/// tokens for a user (credentials from a Docker config.json), and with
/// Basic authentication (htpasswd; credentials as `--user` gives them).
#[test]
fn an_image_pushed_by_skopeo_is_pulled_by_ours() {
    if !needs_registry("an_image_pushed_by_skopeo_is_pulled_by_ours") {
        return;
    }
    for auth in ["anonymous", "tokens", "tokens for a user", "basic"] {
        pull_from_a_registry(auth);
    }
}

const USER: &str = "ann:s3cret";

/// The same, from a registry that authenticates as `auth` says.
fn pull_from_a_registry(auth: &str) {
    let scratch = Scratch::new("pull");
    let tokens = auth
        .starts_with("tokens")
        .then(|| tokens(scratch.path(), (auth == "tokens for a user").then_some(USER)));
    let passwords = htpasswd(scratch.path(), USER);
    let registry = LocalRegistry::start(
        scratch.path(),
        match (&tokens, auth) {
            (Some(tokens), _) => Auth::Tokens(tokens),
            (None, "basic") => Auth::Htpasswd(&passwords),
            _ => Auth::Anonymous,
        },
    )
    .unwrap();
    let with_user = auth == "tokens for a user" || auth == "basic";
    let layout = push_the_demo_image(scratch.path(), &registry.address, with_user.then_some(USER));
    let reference: Reference = format!("{}/podlab/demo:1", registry.address).parse().unwrap();
    let store = scratch.path().join("store");
    let mut options = Options::default();
    if with_user {
        // Without the user's credentials, or with a wrong password: refused
        // in a sentence that says what to give.
        let said = podlab::images::registry::pull(&reference, &store, &options).unwrap_err().to_string();
        assert!(said.contains("user name and password"), "{auth}: {said}");
        options.credentials = Some(Credentials::parse("ann:wrong").unwrap());
        let said = podlab::images::registry::pull(&reference, &store, &options).unwrap_err().to_string();
        assert!(said.contains("are the user name and password right?"), "{auth}: {said}");
        options.credentials = Some(if auth == "basic" {
            Credentials::parse(USER).unwrap()
        } else {
            let config = scratch.path().join("docker-config.json");
            use base64::Engine;
            let encoded = base64::engine::general_purpose::STANDARD.encode(USER);
            std::fs::write(
                &config,
                format!(r#"{{"auths": {{"{}": {{"auth": "{encoded}"}}}}}}"#, registry.address),
            )
            .unwrap();
            Credentials::from_docker_config(&config, &registry.address).unwrap().unwrap()
        });
    }
    let fetched = podlab::images::registry::pull(&reference, &store, &options).unwrap();
    assert_eq!(fetched, 4, "a config and three layers ({auth})");
    assert_eq!(
        podlab::images::registry::pull(&reference, &store, &options).unwrap(),
        0,
        "the second pull fetches nothing ({auth})"
    );
    pulled_as_built(scratch.path(), &store, &reference, &layout);
    if auth == "anonymous" {
        // Run by its name, the store's blobs and snapshots side by side.
        let ran = run(Command::new(common::example("05-images"))
            .args(["--quiet", "run", &reference.to_string(), "--store"])
            .arg(&store)
            .args(["--", "cat", "/etc/hostname"]));
        assert_eq!((ran.code, ran.stdout.as_str()), (Some(0), "podlab-image\n"), "{}", ran.stderr);
    }
    let copied = skopeo_copy(scratch.path(), &reference, with_user.then_some(USER));
    assert_eq!(blobs_of(&store), blobs_of(&copied), "our store (left), skopeo's copy (right): {auth}");

    // Names that are not there, and registries elsewhere, in a sentence.
    let missing: Reference = format!("{}/podlab/missing:1", registry.address).parse().unwrap();
    let said = podlab::images::registry::pull(&missing, &store, &options).unwrap_err().to_string();
    assert!(said.contains("answered 404") && said.contains("is the name or tag right?"), "{said}");
    let far: Reference = "docker.io/library/busybox:latest".parse().unwrap();
    let said = podlab::images::registry::pull(&far, &store, &options).unwrap_err().to_string();
    assert!(said.contains("speaks plain HTTP only"), "{said}");
}

/// `skopeo copy` of an image from a registry into a new OCI layout.
fn skopeo_copy(scratch: &Path, reference: &Reference, user: Option<&str>) -> PathBuf {
    std::fs::create_dir_all(scratch).unwrap();
    let copy = scratch.join("skopeo-copy");
    let mut skopeo = peer("skopeo");
    // As it is: skopeo would otherwise gzip an uncompressed layer.
    skopeo.arg("--policy").arg(policy(scratch)).args([
        "copy",
        "--src-tls-verify=false",
        "--preserve-digests",
        "--dest-oci-accept-uncompressed-layers",
    ]);
    if let Some(user) = user {
        skopeo.arg(format!("--src-creds={user}"));
    }
    let copied = run(skopeo.arg(format!("docker://{reference}")).arg(format!("oci:{}:copy", copy.display())));
    assert_eq!(copied.code, Some(0), "skopeo: {}", copied.stderr);
    copy
}

/// The blobs of a layout, by name (their digests).
fn blobs_of(layout: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Ours pushes the demo image to a registry whose tokens are for a user:
/// every blob uploaded; a second push finds them all there; a push to
/// another repository mounts them from the first (no bytes sent). skopeo
/// copies what ours pushed into a layout: the very blobs of our store.
#[test]
fn an_image_pushed_by_ours_is_pulled_by_skopeo() {
    if !needs_registry("an_image_pushed_by_ours_is_pulled_by_skopeo") {
        return;
    }
    use podlab::images::registry::{push, Pushed};
    let scratch = Scratch::new("push");
    let tokens = tokens(scratch.path(), Some(USER));
    let registry = LocalRegistry::start(scratch.path(), Auth::Tokens(&tokens)).unwrap();
    let store = scratch.path().join("store");
    build::demo_image(&store).unwrap();
    let first: Reference = format!("{}/podlab/demo:1", registry.address).parse().unwrap();
    let said = push(&store, build::TAG, &first, &Options::default()).unwrap_err().to_string();
    assert!(said.contains("user name and password"), "{said}");
    let options = Options { credentials: Some(Credentials::parse(USER).unwrap()), ..Options::default() };
    let pushed = push(&store, build::TAG, &first, &options).unwrap();
    assert_eq!(pushed, Pushed { uploaded: 4, mounted: 0, present: 0 }, "a config and three layers");
    assert_eq!(
        push(&store, build::TAG, &first, &options).unwrap(),
        Pushed { uploaded: 0, mounted: 0, present: 4 }
    );
    let second: Reference = format!("{}/other/demo:2", registry.address).parse().unwrap();
    let pushed = push(&store, &first.to_string(), &second, &options).unwrap();
    assert_eq!(pushed, Pushed { uploaded: 0, mounted: 4, present: 0 }, "mounted from podlab/demo");
    for reference in [&first, &second] {
        let copied =
            skopeo_copy(&scratch.path().join(reference.repository.replace('/', "-")), reference, Some(USER));
        assert_eq!(
            blobs_of(&store),
            blobs_of(&copied),
            "our store (left), skopeo's copy of {reference} (right)"
        );
    }
    let gone: Reference = format!("{}/podlab/demo:1", registry.address).parse().unwrap();
    let said = push(&store, "no-such-image", &gone, &options).unwrap_err().to_string();
    assert!(said.contains("no image named"), "{said}");
}

/// Two pulls of one image into one store at once: both succeed, each blob
/// is stored once, and nothing half-received is left.
#[test]
fn two_pulls_at_once_store_each_blob_once() {
    if !needs_registry("two_pulls_at_once_store_each_blob_once") {
        return;
    }
    let scratch = Scratch::new("pulls-at-once");
    let registry = LocalRegistry::start(scratch.path(), Auth::Anonymous).unwrap();
    push_the_demo_image(scratch.path(), &registry.address, None);
    let reference: Reference = format!("{}/podlab/demo:1", registry.address).parse().unwrap();
    let store = scratch.path().join("store");
    let fetched: Vec<usize> = std::thread::scope(|scope| {
        let pulls: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| podlab::images::registry::pull(&reference, &store, &Options::default())))
            .collect();
        pulls.into_iter().map(|pull| pull.join().unwrap().unwrap()).collect()
    });
    assert!(fetched.iter().all(|n| *n <= 4), "{fetched:?}");
    assert_eq!(blobs_of(&store).len(), 5, "a manifest, a config, three layers: {:?}", blobs_of(&store));
    let names = podlab::images::Layout::open(&store).unwrap().names().unwrap();
    assert_eq!(names.len(), 1, "{names:?}");
}

/// A hostile registry: a server of the test's own that answers each
/// request as `answer` says (raw HTTP bytes, which may promise more than
/// they hold); stopped when dropped.
struct Hostile {
    address: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Hostile {
    fn start(answer: impl Fn(&str, &str) -> Vec<u8> + Send + 'static) -> Hostile {
        Hostile::start_reading(move |me: &str, path: &str, _: &str| answer(me, path))
    }

    /// As `start`, and `answer` reads the request's head too (its headers).
    fn start_reading(answer: impl Fn(&str, &str, &str) -> Vec<u8> + Send + 'static) -> Hostile {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let me = address.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let mut request = [0u8; 8192];
                let read = std::io::Read::read(&mut stream, &mut request).unwrap_or(0);
                let head = String::from_utf8_lossy(&request[..read]).to_string();
                let line = head.lines().next().unwrap_or_default();
                let path = line.split(' ').nth(1).unwrap_or_default().to_string();
                let _ = std::io::Write::write_all(&mut stream, &answer(&me, &path, &head));
            }
        });
        Hostile { address, stop }
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = std::net::TcpStream::connect(&self.address);
    }
}

fn http(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head += &format!("{name}: {value}\r\n");
    }
    if !headers.iter().any(|(name, _)| *name == "Content-Length") {
        head += &format!("Content-Length: {}\r\n", body.len());
    }
    let mut bytes = (head + "\r\n").into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A registry that lies, stalls or loops: each refused in a sentence, and
/// no blob it sent stored unless it is what its digest says.
#[test]
fn hostile_registries_are_refused_and_store_nothing() {
    if !needs_root_and_busybox("hostile_registries_are_refused_and_store_nothing") {
        return;
    }
    use sha2::Digest;
    let hex = |bytes: &[u8]| format!("{:x}", sha2::Sha256::digest(bytes));
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}}"#.to_vec();
    let layer = vec![7u8; 1000];
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:{}","size":1000}}]}}"#,
        hex(&config),
        config.len(),
        hex(&layer)
    );
    let oci = ("Content-Type", "application/vnd.oci.image.manifest.v1+json".to_string());
    let serve = move |manifest: String, config: Vec<u8>, layer_answer: Vec<u8>| {
        let oci = oci.clone();
        move |_: &str, path: &str| -> Vec<u8> {
            if path.contains("/manifests/") {
                http("200 OK", std::slice::from_ref(&oci), manifest.as_bytes())
            } else if path.contains(&hex(&config)) {
                http("200 OK", &[], &config)
            } else {
                layer_answer.clone()
            }
        }
    };
    type Answer = Box<dyn Fn(&str, &str) -> Vec<u8> + Send>;
    let cases: Vec<(&str, Answer, &str)> = vec![
        (
            "a 401 without a challenge",
            Box::new(|_: &str, _: &str| http("401 Unauthorized", &[], b"")),
            "without saying how to authenticate",
        ),
        (
            "a Bearer challenge without a realm",
            Box::new(|_: &str, _: &str| {
                http("401 Unauthorized", &[("WWW-Authenticate", r#"Bearer service="x""#.to_string())], b"")
            }),
            "no realm",
        ),
        (
            "a token server that fails",
            Box::new(|me: &str, path: &str| {
                if path.starts_with("/token") {
                    http("500 Internal Server Error", &[], b"")
                } else {
                    let challenge =
                        format!(r#"Bearer realm="http://{me}/token",service="x",scope="repository:a:pull""#);
                    http("401 Unauthorized", &[("WWW-Authenticate", challenge)], b"")
                }
            }),
            "answered 500",
        ),
        (
            "a redirect loop",
            Box::new(|me: &str, path: &str| {
                http("302 Found", &[("Location", format!("http://{me}{path}"))], b"")
            }),
            "redirects more than 5 times",
        ),
        (
            "a manifest that is not JSON",
            Box::new(|_: &str, _: &str| http("200 OK", &[], b"{ not json")),
            "is not valid",
        ),
        (
            "a blob cut short (the connection closed half-way)",
            Box::new(serve(manifest.clone(), config.clone(), {
                let mut cut = http("200 OK", &[("Content-Length", "1000".to_string())], &[]);
                cut.extend_from_slice(&layer[..100]);
                cut
            })),
            "receiving sha256:",
        ),
        (
            "a blob with other bytes",
            Box::new(serve(manifest.clone(), config.clone(), http("200 OK", &[], &[8u8; 1000]))),
            "not the 1000 bytes it should be",
        ),
        (
            "a blob longer than it should be",
            Box::new(serve(manifest.clone(), config.clone(), http("200 OK", &[], &[7u8; 5000]))),
            "more than the 1000 bytes it should be",
        ),
    ];
    for (case, answer, phrase) in cases {
        let scratch = Scratch::new("hostile-registry");
        let registry = Hostile::start(answer);
        let store = scratch.path().join("store");
        let reference: Reference = format!("{}/podlab/x:1", registry.address).parse().unwrap();
        let said = podlab::images::registry::pull(&reference, &store, &Options::default())
            .expect_err(case)
            .to_string();
        assert!(said.contains(phrase), "{case}: {said}");
        let blobs = store.join("blobs/sha256");
        let kept: Vec<String> = std::fs::read_dir(&blobs)
            .map(|dir| dir.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        assert!(
            !kept.iter().any(|name| name == &hex(&layer) || name.contains("partial")),
            "{case}: kept {kept:?}"
        );
    }

    // Asked by digest, a manifest must have it.
    let scratch = Scratch::new("hostile-registry");
    let registry = Hostile::start(serve(manifest.clone(), config.clone(), http("200 OK", &[], &layer)));
    let wanted = format!("{}/podlab/x@sha256:{}", registry.address, "1".repeat(64));
    let reference: Reference = wanted.parse().unwrap();
    let said = podlab::images::registry::pull(&reference, &scratch.path().join("store"), &Options::default())
        .unwrap_err()
        .to_string();
    assert!(said.contains("with other bytes"), "{said}");
}

/// Blobs served elsewhere, as registries serve them from object storage.
/// A hop in front of docker-registry (whose tokens come from a token
/// server) passes every request on to it, but redirects each blob to a
/// blob server of the test's, which refuses any request that carries the
/// registry's token. The pull answers the challenge, follows the
/// redirects without the token, checks what comes, and stores the image
/// whole. Its narration, drawn as a sequence diagram, is what the book
/// shows.
#[test]
fn blobs_served_by_redirect_are_followed_without_the_token() {
    if !needs_registry("blobs_served_by_redirect_are_followed_without_the_token") {
        return;
    }
    let scratch = Scratch::new("redirects");
    let tokens = tokens(scratch.path(), None);
    let registry = LocalRegistry::start(scratch.path(), Auth::Tokens(&tokens)).unwrap();
    let layout = push_the_demo_image(scratch.path(), &registry.address, None);
    // The blob server reads the registry's own storage (blobs by digest).
    let storage = scratch.path().join("registry/docker/registry/v2/blobs/sha256");
    let leaked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let told = leaked.clone();
    let blobs = Hostile::start_reading(move |_: &str, path: &str, head: &str| {
        if header_of(head, "authorization").is_some() {
            told.store(true, std::sync::atomic::Ordering::Relaxed);
            return http("400 Bad Request", &[], b"the registry's token came to the blob server");
        }
        let hex = path.rsplit(':').next().unwrap_or_default().to_string();
        match std::fs::read(storage.join(&hex[..2.min(hex.len())]).join(&hex).join("data")) {
            Ok(bytes) => http("200 OK", &[], &bytes),
            Err(_) => http("404 Not Found", &[], b""),
        }
    });
    let (real, blob_server) = (registry.address.clone(), blobs.address.clone());
    let hop = Hostile::start_reading(move |_: &str, path: &str, head: &str| {
        if path.contains("/blobs/") {
            http("307 Temporary Redirect", &[("Location", format!("http://{blob_server}{path}"))], b"")
        } else {
            pass_on(&real, path, head)
        }
    });
    let store = scratch.path().join("store");
    let name = format!("{}/podlab/demo:1", hop.address);
    let pulled = run(Command::new(common::example("05-images"))
        .args(["pull", &name, "--at-once", "1", "--store"])
        .arg(&store));
    assert_eq!(pulled.code, Some(0), "{}", pulled.stderr);
    assert!(!leaked.load(std::sync::atomic::Ordering::Relaxed), "the token went to the blob server");
    pulled_as_built(scratch.path(), &store, &name.parse().unwrap(), &layout);
    let token_server = tokens.realm.trim_start_matches("http://").split('/').next().unwrap().to_string();
    let hosts =
        [(hop.address.as_str(), "registry"), (&token_server, "token-server"), (&blobs.address, "blob-store")];
    common::assert_transcript("05-images__pull-sequence", &sequence_diagram(&pulled.stderr, &hosts));
}

/// The value of header `name` in a request's head, if it has one.
fn header_of<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// Passes a GET or HEAD on to `to` with its Accept and Authorization, and
/// its answer back: a proxy, as a registry's front end is.
fn pass_on(to: &str, path: &str, head: &str) -> Vec<u8> {
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
    let method = head.split(' ').next().unwrap_or("GET");
    let mut request = ureq::http::Request::builder().method(method).uri(format!("http://{to}{path}"));
    for name in ["accept", "authorization"] {
        if let Some(value) = header_of(head, name) {
            request = request.header(name, value);
        }
    }
    let mut response = agent.run(request.body(()).unwrap()).unwrap();
    let status = response.status();
    let mut headers = Vec::new();
    for name in ["content-type", "www-authenticate", "docker-content-digest", "location"] {
        if let Some(value) = response.headers().get(name) {
            headers.push((name, value.to_str().unwrap().to_string()));
        }
    }
    let body = response.body_mut().read_to_vec().unwrap_or_default();
    let reason = status.canonical_reason().unwrap_or("");
    http(&format!("{} {reason}", status.as_u16()), &headers, &body)
}

/// A pull's narration drawn as a sequence diagram: a lane for podlab and
/// one for each host (named by `hosts`), an arrow for each request and
/// each answer, the request or the answer beside it.
fn sequence_diagram(narration: &str, hosts: &[(&str, &str)]) -> String {
    const GAP: usize = 15;
    let names: Vec<&str> = std::iter::once("podlab").chain(hosts.iter().map(|h| h.1)).collect();
    let width = GAP * (names.len() - 1) + 1;
    let mut lines =
        vec![names.iter().map(|n| format!("{n:<GAP$}")).collect::<String>().trim_end().to_string()];
    let lanes = || -> Vec<char> { (0..width).map(|x| if x % GAP == 0 { '│' } else { ' ' }).collect() };
    let named =
        |text: &str| hosts.iter().fold(text.to_string(), |text, (host, name)| text.replace(host, name));
    let arrow = |lane: usize, to_them: bool, label: &str| -> String {
        let mut row = lanes();
        for cell in &mut row[1..lane * GAP] {
            *cell = '─';
        }
        if to_them {
            row[0] = '├';
            row[lane * GAP - 1] = '▶';
        } else {
            row[1] = '◀';
            row[lane * GAP] = '┤';
        }
        format!("{}   {label}", row.into_iter().collect::<String>())
    };
    for call in narration.lines().filter_map(|l| l.trim_start().strip_prefix("> ")) {
        if let Some(checked) = call.strip_prefix("checked ") {
            // Sizes vary with the machine's busybox: the digest alone.
            let digest = checked.split(':').take(2).collect::<Vec<_>>().join(":");
            let mut row: String = lanes().into_iter().collect();
            row.push_str(&format!("   (podlab checks that the bytes hash to {digest})"));
            lines.push(row);
            continue;
        }
        let Some((request, answer)) = call.split_once(" = ") else { continue };
        let Some((method, url)) = request.split_once(' ') else { continue };
        let Some(rest) = url.strip_prefix("http://") else { continue };
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let Some(lane) = hosts.iter().position(|(h, _)| *h == host) else { continue };
        lines.push(arrow(lane + 1, true, &format!("{method} {path}")));
        lines.push(arrow(lane + 1, false, &named(answer)));
    }
    lines.join("\n") + "\n"
}

/// Builds the demo image in `scratch` and has skopeo push it to the
/// registry at `address` as podlab/demo:1 (as `user`, if given); the
/// image's layout.
fn push_the_demo_image(scratch: &Path, address: &str, user: Option<&str>) -> PathBuf {
    let layout = scratch.join("layout");
    build::demo_image(&layout).unwrap();
    let mut skopeo = peer("skopeo");
    skopeo.arg("--policy").arg(policy(scratch)).args(["copy", "--dest-tls-verify=false"]);
    if let Some(user) = user {
        skopeo.arg(format!("--dest-creds={user}"));
    }
    let pushed = run(skopeo
        .arg(format!("oci:{}:{}", layout.display(), build::TAG))
        .arg(format!("docker://{address}/podlab/demo:1")));
    assert_eq!(pushed.code, Some(0), "skopeo: {}", pushed.stderr);
    layout
}

/// A policy that lets skopeo copy anything (its default wants signatures).
fn policy(scratch: &Path) -> PathBuf {
    let policy = scratch.join("policy.json");
    std::fs::write(&policy, r#"{"default": [{"type": "insecureAcceptAnything"}]}"#).unwrap();
    policy
}

/// The pulled image, unpacked from the store, has the tree of the one built.
fn pulled_as_built(scratch: &Path, store: &Path, reference: &Reference, layout: &Path) {
    let (pulled, original) = (scratch.join("pulled"), scratch.join("original"));
    std::fs::create_dir(&pulled).unwrap();
    std::fs::create_dir(&original).unwrap();
    podlab::images::unpack_named(store, Some(&reference.to_string()), &pulled, &Limits::default()).unwrap();
    podlab::images::unpack(layout, &original, &Limits::default()).unwrap();
    assert_eq!(tree(&pulled), tree(&original), "pulled from {reference} (left), built (right)");
}

/// `rmi` takes a name off; garbage collection removes only the blobs no
/// remaining name reaches: a layer two images share stays while one of
/// them does.
#[test]
fn garbage_collection_keeps_what_an_image_uses() {
    if !needs_root_and_busybox("garbage_collection_keeps_what_an_image_uses") {
        return;
    }
    let scratch = Scratch::new("gc");
    let store = scratch.path().join("store");
    build::demo_image(&store).unwrap();
    let layout = podlab::images::Layout::open(&store).unwrap();
    let (_, manifest) = layout.names().unwrap().into_iter().next().unwrap();
    layout.tag(&manifest, "second-name").unwrap();
    // A blob nothing names, as an interrupted push would leave.
    let stray = build::put_blob(&store, b"stray", oci_spec::image::MediaType::ImageLayer).unwrap();
    let blobs = || std::fs::read_dir(store.join("blobs/sha256")).unwrap().count();
    assert_eq!(blobs(), 6, "a manifest, a config, three layers, the stray blob");
    assert_eq!(layout.collect_garbage().unwrap(), (1, 5), "only the stray blob goes");
    assert!(!layout.has(&stray));
    assert!(layout.untag(build::TAG).unwrap());
    assert!(!layout.untag(build::TAG).unwrap(), "untagged already");
    assert_eq!(layout.collect_garbage().unwrap().0, 0, "the second name still uses every blob");
    assert!(layout.untag("second-name").unwrap());
    assert_eq!(layout.collect_garbage().unwrap().0, 5, "nothing names the image now");
    assert_eq!(blobs(), 0);
}

/// A zstd layer, its tar split across two frames (a stream may hold
/// several): unpacked as a gzip or plain one would be.
#[test]
fn zstd_layers_unpack_frame_after_frame() {
    if !needs_root_and_busybox("zstd_layers_unpack_frame_after_frame") {
        return;
    }
    use tar::EntryType::Regular;
    let tar = hostile_tar(&[("hello", Regular, "", b"hello\n"), ("world", Regular, "", &[7u8; 3000])]);
    let level = ruzstd::encoding::CompressionLevel::Fastest;
    let (first, second) = tar.split_at(1024);
    let mut bytes = ruzstd::encoding::compress_to_vec(first, level);
    bytes.extend(ruzstd::encoding::compress_to_vec(second, level));
    let diff_id = format!("sha256:{}", build::sha256(&tar));
    let layer = LayerBlob { bytes, media_type: oci_spec::image::MediaType::ImageLayerZstd, diff_id };
    let target = Target::new("zstd");
    assert_eq!(target.unpack(&[layer], &Limits::default()), None);
    assert_eq!(std::fs::read_to_string(target.rootfs().join("hello")).unwrap(), "hello\n");
    assert_eq!(std::fs::read(target.rootfs().join("world")).unwrap(), vec![7u8; 3000]);
}
