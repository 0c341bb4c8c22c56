//! podlab: how a Kubernetes node runs containers, built one level at a time
//! on a real Linux kernel.
//!
//! Each level is a module here and a runnable example beside it, in
//! `chapters/NN-name/`; later levels use the earlier ones. The frame they
//! share: [`kernel`], the one seam every system call goes through, which
//! [`narrate`]s each call; [`child`], to run set-up code in a forked child;
//! [`error`], one plain sentence per failure; and [`scenario`], the runs that
//! the snapshot tests record and the lab checker replays.

pub mod child;
pub mod error;
pub mod kernel;
pub mod narrate;
pub mod scenario;
pub mod timing;

#[path = "03-cgroups/mod.rs"]
pub mod cgroups;
#[path = "01-chroot/mod.rs"]
pub mod chroot;
#[path = "05-images/mod.rs"]
pub mod images;
#[path = "02-namespaces/mod.rs"]
pub mod namespaces;
#[path = "06-network/mod.rs"]
pub mod network;
#[path = "04-runtime/mod.rs"]
pub mod runtime;

/// The ladder, bottom up.
pub const LEVELS: &[&scenario::Level] =
    &[&chroot::LEVEL, &namespaces::LEVEL, &cgroups::LEVEL, &runtime::LEVEL, &images::LEVEL, &network::LEVEL];
