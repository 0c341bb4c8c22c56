//! Paths that come from input (a config, an image, a request), resolved
//! inside a root and acted on through the descriptor the kernel returns.
//!
//! A path such as `/var/run/secrets` in a config means that path *in the
//! container*. Joined to the rootfs as a string and handed to mkdir(2) or
//! mount(2), it is resolved by the kernel against the host's "/": a
//! symbolic link in the rootfs (`var/run -> /run`) then leads out of it, to
//! the host's `/run`. Checking each component first does not help, since
//! the rootfs may change between the check and the use (a volume shared
//! with a running container can swap a directory for a link in between:
//! CVE-2021-30465, runc's mount race).
//!
//! So a [`Root`] is a descriptor of the rootfs, and a path is resolved by
//! openat2(2) with RESOLVE_IN_ROOT: for that one call, the kernel treats the
//! descriptor as "/", so an absolute link, or ".." at the top, stays in the
//! rootfs, whatever the rootfs holds, at the instant of the call. What is
//! missing is made relative to its parent's descriptor (mkdirat(2) with a
//! single name), and the result is acted on through its own descriptor,
//! never through its path again: mount(2) reaches it as /proc/self/fd/N.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{Mode, SFlag};

use super::{failed, flag_names};
use crate::error::{Error, Result};
use crate::narrate;

/// How many symbolic links one resolution may follow, as the kernel's own
/// limit (40): a loop of links ends in an error rather than forever.
const MOST_LINKS: u32 = 40;

/// A directory that paths from input are resolved inside of, as if it were
/// "/": a container's rootfs, a layer being unpacked.
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

/// A file or directory found (or made) inside a [`Root`], held by an O_PATH
/// descriptor: the very file the resolution reached, whatever is done to
/// its path afterwards.
pub struct Inside {
    fd: OwnedFd,
    /// Its path inside the root, as asked for: for narration and errors.
    path: PathBuf,
    is_dir: bool,
}

/// What to make at the end of a path that is missing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Make {
    Directory,
    EmptyFile,
}

impl Root {
    /// Opens `path` as a root. Open it after anything that changes what is
    /// mounted on `path` itself: the descriptor holds the directory of the
    /// mount that was there at the time.
    pub fn open(path: &Path) -> Result<Root> {
        narrate!("open({path:?}, O_PATH|O_DIRECTORY|O_CLOEXEC) = root (paths from input are resolved in it)");
        let fd = nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| failed(format!("open({path:?}, O_PATH|O_DIRECTORY)"), e))?;
        Ok(Root { fd, path: path.to_path_buf() })
    }

    /// Where the root is, seen from outside.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `path`, resolved inside the root; `None` if something on the way is
    /// missing (a link that points nowhere counts as missing).
    pub fn find(&self, path: &Path) -> Result<Option<Inside>> {
        narrate!("openat2(root, {:?}, O_PATH, {})", shown(path), flag_names(in_root()));
        self.find_quietly(path)
    }

    /// `path` as a directory inside the root, made with its missing
    /// parents (0o755) as `mkdir -p` does.
    pub fn make_dirs(&self, path: &Path) -> Result<Inside> {
        narrate!("openat2(root, {:?}, O_PATH, {})", shown(path), flag_names(in_root()));
        self.make(path, Make::Directory, 0)
    }

    /// `path` as a file inside the root: an empty one (0o644) if missing,
    /// with its missing parents. Something to bind a file onto.
    pub fn make_file(&self, path: &Path) -> Result<Inside> {
        narrate!("openat2(root, {:?}, O_PATH, {})", shown(path), flag_names(in_root()));
        self.make(path, Make::EmptyFile, 0)
    }

    fn find_quietly(&self, path: &Path) -> Result<Option<Inside>> {
        let how = OpenHow::new().flags(OFlag::O_PATH | OFlag::O_CLOEXEC).resolve(in_root());
        match nix::fcntl::openat2(&self.fd, with_dot(path), how) {
            Ok(fd) => Ok(Some(Inside::holding(fd, path)?)),
            Err(Errno::ENOENT) => Ok(None),
            Err(Errno::ENOSYS) => Err(Error::new(
                "openat2(2) is missing: this kernel is older than Linux 5.6; use a newer one (the course VM's \
                 is 6.1)",
            )),
            Err(Errno::ENOTDIR) => Err(Error::new(format!(
                "{:?} in {} passes through something that is not a directory: a mount's target, or a path \
                 through it, needs one",
                shown(path),
                self.path.display()
            ))),
            Err(Errno::ELOOP) => Err(Error::new(format!(
                "{:?} in {} passes through a loop of symbolic links, or a magic link of /proc: refusing it",
                shown(path),
                self.path.display()
            ))),
            Err(errno) => Err(failed(format!("openat2({}, {:?}, RESOLVE_IN_ROOT)", self.path.display(), path), errno)),
        }
    }

    // ANCHOR: make
    /// Finds `path`, or makes what is missing of it: its parents as
    /// directories, its last piece as `last` asks. A last piece that is a
    /// link pointing nowhere is followed, inside the root, and its target
    /// made (runc does the same: `/etc/resolv.conf -> /run/resolv.conf`).
    fn make(&self, path: &Path, last: Make, links_followed: u32) -> Result<Inside> {
        if let Some(found) = self.find_quietly(path)? {
            return found.expect(last, self);
        }
        let mut pieces = path.components();
        let Some(Component::Normal(name)) = pieces.next_back() else {
            // "a/missing/..": make "a/missing", and look again.
            self.make(pieces.as_path(), Make::Directory, links_followed)?;
            return self.find_quietly(path)?.ok_or_else(|| self.vanished(path))?.expect(last, self);
        };
        let parent_path = pieces.as_path();
        let parent = self.make(parent_path, Make::Directory, links_followed)?;
        match parent.make_here(name, last) {
            // Made by another process in the meantime, or a link to follow.
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(errno) => {
                return Err(failed(format!("making {:?} in {}", shown(path), self.path.display()), errno))
            }
        }
        let entry = parent.open_here(name).map_err(|errno| {
            failed(format!("openat({:?}, O_PATH|O_NOFOLLOW) in {}", shown(path), self.path.display()), errno)
        })?;
        if entry.kind == SFlag::S_IFLNK {
            if links_followed == MOST_LINKS {
                return Err(Error::new(format!(
                    "{:?} in {} passes through more than {MOST_LINKS} symbolic links: refusing it",
                    shown(path),
                    self.path.display()
                )));
            }
            let target = nix::fcntl::readlinkat(&parent.fd, name)
                .map_err(|e| failed(format!("readlinkat({:?})", shown(path)), e))?;
            narrate!(
                "readlinkat({}, {name:?}) = {target:?}: a link, followed inside the root",
                parent.named()
            );
            // Relative to the link's directory, or (absolute) to the root:
            // either way resolved inside it.
            return self.make(&parent_path.join(target), last, links_followed + 1);
        }
        Inside::holding(entry.fd, path)?.expect(last, self)
    }
    // ANCHOR_END: make

    fn vanished(&self, path: &Path) -> Error {
        Error::new(format!("{:?} in {} went away while it was being made", shown(path), self.path.display()))
    }
}

/// What openat2 is told for every path from input: the descriptor is "/",
/// and no magic link of /proc (which could lead anywhere) is followed.
fn in_root() -> ResolveFlag {
    ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS
}

/// An empty path names the root itself.
fn with_dot(path: &Path) -> &Path {
    if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    }
}

/// A path inside the root as its owner thinks of it: from "/".
fn shown(path: &Path) -> PathBuf {
    Path::new("/").join(path)
}

/// An entry of a directory, opened without following it.
struct Entry {
    fd: OwnedFd,
    kind: SFlag,
}

impl Inside {
    fn holding(fd: OwnedFd, path: &Path) -> Result<Inside> {
        let stat = nix::sys::stat::fstat(&fd).map_err(|e| failed(format!("fstat({:?})", shown(path)), e))?;
        let is_dir = SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR;
        Ok(Inside { fd, path: shown(path), is_dir })
    }

    /// Checks that what was found is what was wanted: a directory where one
    /// is to be made, anything else (a file, a device) where a file is.
    fn expect(self, wanted: Make, root: &Root) -> Result<Inside> {
        match (wanted, self.is_dir) {
            (Make::Directory, false) => Err(Error::new(format!(
                "{} in {} is not a directory: a mount's target, or a path through it, needs one",
                self.path.display(),
                root.path.display()
            ))),
            (Make::EmptyFile, true) => Err(Error::new(format!(
                "{} in {} is a directory, where a file is to be bound: bind a directory there, or give \
                 another target",
                self.path.display(),
                root.path.display()
            ))),
            _ => Ok(self),
        }
    }

    /// Its path inside the root, from "/".
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How narration names its descriptor: by its path, said to be inside.
    pub fn named(&self) -> String {
        format!("fd of {:?} in the root", self.path)
    }

    pub fn is_dir(&self) -> bool {
        self.is_dir
    }

    /// The path by which calls that take a path (mount(2)) reach exactly
    /// this file: the magic link /proc/self/fd/N.
    pub fn through_proc(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    /// What this file holds, read through its descriptor (at most `limit`
    /// bytes: a file from input may be huge).
    pub fn read(&self, limit: u64) -> Result<Vec<u8>> {
        use std::io::Read;
        let file = std::fs::File::open(self.through_proc())
            .map_err(|e| Error::new(format!("cannot open {} in the root: {e}", self.path.display())))?;
        let mut bytes = Vec::new();
        file.take(limit)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::new(format!("cannot read {} in the root: {e}", self.path.display())))?;
        Ok(bytes)
    }

    /// Whether this directory has an entry `name`, of any kind, a link
    /// included (it is not followed). Only looks.
    pub fn has(&self, name: &str) -> bool {
        nix::sys::stat::fstatat(&self.fd, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).is_ok()
    }

    /// symlinkat(2): a link `name` in this directory, pointing at `target`
    /// (which is not looked at: a link is resolved when used).
    pub fn symlink(&self, target: &Path, name: &str) -> Result<()> {
        single_name(name)?;
        narrate!("symlinkat({target:?}, {}, {name:?})", self.named());
        nix::unistd::symlinkat(target, &self.fd, name)
            .map_err(|e| failed(format!("symlinkat({target:?}, {:?})", self.path.join(name)), e))
    }

    /// mknodat(2) of a device (`kind` S_IFCHR or S_IFBLK, `major`:`minor`)
    /// or a FIFO (S_IFIFO) as `name` in this directory, its mode then set
    /// exactly (mknod's passes through the umask) through its own
    /// descriptor, never its path again.
    pub fn mknod(&self, name: &str, kind: SFlag, major: u64, minor: u64, mode: u32) -> Result<()> {
        single_name(name)?;
        let inside = self.path.join(name);
        let kind_shown = match kind {
            SFlag::S_IFBLK => "S_IFBLK",
            SFlag::S_IFIFO => "S_IFIFO",
            _ => "S_IFCHR",
        };
        narrate!("mknodat({}, {name:?}, {kind_shown}|{mode:#o}, makedev({major}, {minor}))", self.named());
        let mode = Mode::from_bits_truncate(mode);
        let device = nix::sys::stat::makedev(major, minor);
        nix::sys::stat::mknodat(&self.fd, name, kind, mode, device)
            .map_err(|e| failed(format!("mknodat({inside:?})"), e))?;
        let node = self.open_here(OsStr::new(name)).map_err(|e| failed(format!("openat({inside:?})"), e))?;
        if node.kind != kind {
            return Err(Error::new(format!(
                "{inside:?} was replaced while it was being made: refusing to go on"
            )));
        }
        Inside { fd: node.fd, path: inside, is_dir: false }.set_mode(mode.bits())
    }

    /// fchownat(2) of `name` in this directory, a link itself rather than
    /// what it points at (AT_SYMLINK_NOFOLLOW).
    pub fn chown(&self, name: &str, uid: u32, gid: u32) -> Result<()> {
        single_name(name)?;
        narrate!("fchownat({}, {name:?}, {uid}, {gid}, AT_SYMLINK_NOFOLLOW)", self.named());
        nix::unistd::fchownat(
            &self.fd,
            name,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| failed(format!("fchownat({:?})", self.path.join(name)), e))
    }

    /// `name` in this directory as a file: an empty one (0o644) if missing.
    /// Something to bind a file onto.
    pub fn file(&self, name: &str) -> Result<Inside> {
        single_name(name)?;
        let inside = self.path.join(name);
        match self.make_here(OsStr::new(name), Make::EmptyFile) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(errno) => return Err(failed(format!("openat({inside:?}, O_CREAT)"), errno)),
        }
        let entry = self.open_here(OsStr::new(name)).map_err(|e| failed(format!("openat({inside:?})"), e))?;
        if entry.kind == SFlag::S_IFLNK || entry.kind == SFlag::S_IFDIR {
            return Err(Error::new(format!(
                "{inside:?} in the root is not a file: refusing to bind over it"
            )));
        }
        Ok(Inside { fd: entry.fd, path: inside, is_dir: false })
    }

    /// `name` in this directory, not followed if it is a link; `None` if
    /// there is nothing of that name.
    pub fn entry(&self, name: &str) -> Result<Option<Inside>> {
        single_name(name)?;
        match self.open_here(OsStr::new(name)) {
            Ok(entry) => Ok(Some(Inside {
                is_dir: entry.kind == SFlag::S_IFDIR,
                fd: entry.fd,
                path: self.path.join(name),
            })),
            Err(Errno::ENOENT) => Ok(None),
            Err(errno) => {
                Err(failed(format!("openat({:?}, O_PATH|O_NOFOLLOW)", self.path.join(name)), errno))
            }
        }
    }

    /// The names in this directory, "." and ".." left out. Only looks.
    pub fn names(&self) -> Result<Vec<String>> {
        let listed = || -> nix::Result<Vec<String>> {
            let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let mut dir = nix::dir::Dir::openat(&self.fd, ".", flags, Mode::empty())?;
            let mut names = Vec::new();
            for entry in dir.iter() {
                let name = entry?.file_name().to_string_lossy().into_owned();
                if name != "." && name != ".." {
                    names.push(name);
                }
            }
            Ok(names)
        };
        listed().map_err(|e| failed(format!("reading the directory {:?}", self.path), e))
    }

    /// mkdirat(2) of `name` here, or the directory that is there already; a
    /// file or link in its place is removed first (a later layer's
    /// directory replaces it). Its mode is set exactly.
    pub fn directory(&self, name: &str, mode: u32) -> Result<Inside> {
        single_name(name)?;
        if self.entry(name)?.is_some_and(|there| !there.is_dir) {
            self.remove(name)?;
        }
        match nix::sys::stat::mkdirat(&self.fd, name, Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(errno) => return Err(failed(format!("mkdirat({:?})", self.path.join(name)), errno)),
        }
        let made = self.entry(name)?.filter(|made| made.is_dir).ok_or_else(|| {
            Error::new(format!(
                "{:?} was replaced while it was being made: refusing to go on",
                self.path.join(name)
            ))
        })?;
        made.set_mode(mode)?;
        Ok(made)
    }

    /// A new regular file `name` here, opened to write (whatever had that
    /// name is removed first), its mode set exactly.
    pub fn create(&self, name: &str, mode: u32) -> Result<std::fs::File> {
        single_name(name)?;
        self.remove(name)?;
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(&self.fd, name, flags, Mode::from_bits_truncate(0o600))
            .map_err(|e| failed(format!("openat({:?}, O_CREAT|O_EXCL)", self.path.join(name)), e))?;
        nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(mode))
            .map_err(|e| failed(format!("fchmod({:?})", self.path.join(name)), e))?;
        Ok(std::fs::File::from(fd))
    }

    /// A hard link `name` here to `target` (which must not be a directory),
    /// whatever had that name removed first: linkat(2) through the target's
    /// descriptor, so that it is the very file found, not a path again.
    pub fn hardlink(&self, name: &str, target: &Inside) -> Result<()> {
        single_name(name)?;
        if target.is_dir {
            return Err(Error::new(format!(
                "{} is a directory, which cannot be hard-linked",
                target.path.display()
            )));
        }
        self.remove(name)?;
        nix::unistd::linkat(
            nix::fcntl::AT_FDCWD,
            &target.through_proc(),
            &self.fd,
            name,
            nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
        )
        .map_err(|e| failed(format!("linkat({:?}, {:?})", target.path, self.path.join(name)), e))
    }

    /// Removes `name` here, a directory with all it holds (each directory
    /// opened relative to its parent, never followed if a link); whether
    /// there was one.
    pub fn remove(&self, name: &str) -> Result<bool> {
        single_name(name)?;
        let Some(there) = self.entry(name)? else { return Ok(false) };
        if there.is_dir {
            for inner in there.names()? {
                there.remove(&inner)?;
            }
        }
        let flags = if there.is_dir {
            nix::unistd::UnlinkatFlags::RemoveDir
        } else {
            nix::unistd::UnlinkatFlags::NoRemoveDir
        };
        nix::unistd::unlinkat(&self.fd, name, flags)
            .map_err(|e| failed(format!("unlinkat({:?})", self.path.join(name)), e))?;
        Ok(true)
    }

    /// chmod(2) of this file or directory through its descriptor (a link
    /// has no mode of its own).
    pub fn set_mode(&self, mode: u32) -> Result<()> {
        narrate!("chmod({:?} = {:?} in the root, {mode:#o})", self.through_proc(), self.path);
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            &self.through_proc(),
            Mode::from_bits_truncate(mode),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(|e| failed(format!("chmod({:?})", self.path), e))
    }

    /// utimensat(2) of `name` here, a link itself if it is one: its access
    /// and modification times both `seconds` since 1970.
    pub fn set_time(&self, name: &str, seconds: i64) -> Result<()> {
        single_name(name)?;
        let time = nix::sys::time::TimeSpec::new(seconds, 0);
        nix::sys::stat::utimensat(
            &self.fd,
            name,
            &time,
            &time,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| failed(format!("utimensat({:?})", self.path.join(name)), e))
    }

    /// setxattr(2) of this file or directory itself, through its
    /// descriptor.
    pub fn set_own_xattr(&self, key: &str, value: &[u8]) -> Result<()> {
        let path = std::ffi::CString::new(format!("/proc/self/fd/{}", self.fd.as_raw_fd())).expect("no NUL");
        let key_c =
            std::ffi::CString::new(key).map_err(|_| Error::new(format!("{key:?} contains a NUL byte")))?;
        narrate!("setxattr({}, {key:?}, {:?})", self.named(), String::from_utf8_lossy(value));
        // SAFETY: both strings end in NUL, and the value is read for its length.
        let set = unsafe {
            nix::libc::setxattr(path.as_ptr(), key_c.as_ptr(), value.as_ptr().cast(), value.len(), 0)
        };
        if set < 0 {
            return Err(failed(format!("setxattr({:?}, {key:?})", self.path), Errno::last()));
        }
        Ok(())
    }

    /// lsetxattr(2) of `name` here (a link itself if it is one), reached
    /// through this directory's descriptor.
    pub fn set_xattr(&self, name: &str, key: &str, value: &[u8]) -> Result<()> {
        single_name(name)?;
        let path = std::ffi::CString::new(format!("/proc/self/fd/{}/{name}", self.fd.as_raw_fd()))
            .map_err(|_| Error::new(format!("{name:?} contains a NUL byte")))?;
        let key_c =
            std::ffi::CString::new(key).map_err(|_| Error::new(format!("{key:?} contains a NUL byte")))?;
        // SAFETY: both strings end in NUL, and the value is read for its length.
        let set = unsafe {
            nix::libc::lsetxattr(path.as_ptr(), key_c.as_ptr(), value.as_ptr().cast(), value.len(), 0)
        };
        if set < 0 {
            return Err(failed(format!("lsetxattr({:?}, {key:?})", self.path.join(name)), Errno::last()));
        }
        Ok(())
    }

    /// Makes `name` in this directory as `what` asks: one name, relative to
    /// the descriptor, so nothing on the way is looked up again.
    fn make_here(&self, name: &OsStr, what: Make) -> std::result::Result<(), Errno> {
        match what {
            Make::Directory => {
                narrate!("mkdirat({}, {name:?}, 0o755)", self.named());
                nix::sys::stat::mkdirat(&self.fd, name, Mode::from_bits_truncate(0o755))
            }
            Make::EmptyFile => {
                narrate!("openat({}, {name:?}, O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0o644)", self.named());
                let flags =
                    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
                nix::fcntl::openat(&self.fd, name, flags, Mode::from_bits_truncate(0o644)).map(drop)
            }
        }
    }

    /// Opens `name` in this directory as it is, a link included.
    fn open_here(&self, name: &OsStr) -> std::result::Result<Entry, Errno> {
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
        let fd = nix::fcntl::openat2(&self.fd, name, how)?;
        let stat = nix::sys::stat::fstat(fd.as_fd())?;
        Ok(Entry { fd, kind: SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) })
    }
}

/// A name of one entry, for the calls that act in a directory: no "/", and
/// neither "." nor "..".
fn single_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(Error::new(format!("{name:?} is not the name of one entry in a directory")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A root full of links that try to leave it, and a witness name that
    /// must never appear outside.
    struct Hostile {
        root: PathBuf,
        witness: String,
    }

    impl Hostile {
        fn new(name: &str) -> Hostile {
            let root = std::env::temp_dir().join(format!("podlab-unit-{name}-{}", std::process::id()));
            std::fs::create_dir_all(root.join("etc")).unwrap();
            let link =
                |target: &str, name: &str| std::os::unix::fs::symlink(target, root.join(name)).unwrap();
            link("../../../../../../..", "up");
            link("/", "absolute");
            link("/run/resolv.conf", "etc/resolv.conf");
            link("loop", "loop");
            link("/proc/self/root", "magic");
            std::fs::write(root.join("file"), "").unwrap();
            Hostile { root, witness: format!("podlab-unit-escape-{name}-{}", std::process::id()) }
        }

        fn open(&self) -> Root {
            Root::open(&self.root).unwrap()
        }

        fn nothing_outside(&self) {
            for outside in ["/", "/tmp", "/run"] {
                let there = Path::new(outside).join(&self.witness);
                assert!(!there.exists(), "{} was made outside the root", there.display());
            }
        }
    }

    impl Drop for Hostile {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    #[test]
    fn links_that_leave_the_root_lead_back_inside_it() {
        let hostile = Hostile::new("links");
        let root = hostile.open();
        let witness = &hostile.witness;
        let up = root.make_dirs(&Path::new("up").join(witness)).unwrap();
        let absolute = root.make_dirs(&Path::new("absolute/tmp").join(witness).join("deep")).unwrap();
        let dots = root.make_dirs(&Path::new("../../..").join(witness).join("x")).unwrap();
        hostile.nothing_outside();
        assert!(hostile.root.join(witness).join("x").is_dir());
        assert!(hostile.root.join("tmp").join(witness).join("deep").is_dir());
        assert!(up.is_dir() && absolute.is_dir() && dots.is_dir());
        assert_eq!(up.path(), Path::new("/up").join(witness));
    }

    #[test]
    fn a_link_to_nowhere_is_followed_and_its_target_made_inside() {
        let hostile = Hostile::new("dangling");
        let root = hostile.open();
        let file = root.make_file(Path::new("/etc/resolv.conf")).unwrap();
        assert!(!file.is_dir());
        assert!(hostile.root.join("run/resolv.conf").is_file(), "made where the link points, inside");
        assert!(std::fs::symlink_metadata(hostile.root.join("etc/resolv.conf")).unwrap().is_symlink());
        // Found again, it is the same file.
        let again = root.find(Path::new("/etc/resolv.conf")).unwrap().unwrap();
        let id = |f: &Inside| nix::sys::stat::fstat(&f.fd).map(|s| (s.st_dev, s.st_ino)).unwrap();
        assert_eq!(id(&file), id(&again));
    }

    #[test]
    fn loops_magic_links_and_wrong_kinds_are_refused_in_a_sentence() {
        let hostile = Hostile::new("refused");
        let root = hostile.open();
        let error = |path: &str, make: Make| root.make(Path::new(path), make, 0).err().unwrap().to_string();
        assert!(
            error("loop/x", Make::Directory).contains("loop of symbolic links"),
            "{}",
            error("loop/x", Make::Directory)
        );
        assert!(error("file", Make::Directory).contains("is not a directory"));
        assert!(error("file/below", Make::Directory).contains("is not a directory"));
        assert!(error("etc", Make::EmptyFile).contains("is a directory"));
        // /proc/self/root inside the root is only a link to "/" here, but
        // on a mounted proc it is magic: both stay in.
        root.make_dirs(&Path::new("magic").join(&hostile.witness)).unwrap();
        hostile.nothing_outside();
        assert!(root.find(Path::new("missing/piece")).unwrap().is_none());
    }

    #[test]
    fn entries_are_made_in_a_directory_by_one_name_only() {
        let hostile = Hostile::new("names");
        let dev = hostile.open().make_dirs(Path::new("dev")).unwrap();
        for bad in ["", ".", "..", "a/b", "../../tmp/x"] {
            assert!(dev.symlink(Path::new("/x"), bad).is_err(), "{bad:?}");
            assert!(dev.file(bad).is_err(), "{bad:?}");
        }
        dev.symlink(Path::new("/proc/self/fd"), "fd").unwrap();
        assert!(dev.has("fd"));
        // A link where a file is wanted is not bound over.
        assert!(dev.file("fd").err().unwrap().to_string().contains("is not a file"));
        let null = dev.file("null").unwrap();
        assert_eq!(null.path(), Path::new("/dev/null"));
        assert!(hostile.root.join("dev/null").is_file());
    }
}
