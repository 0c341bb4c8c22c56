//! Addresses handed out from a subnet, kept on disk as the reference
//! host-local plugin keeps them: a directory per network, a file per
//! address in use (named by the address, holding the container's id and
//! interface), a lock that one allocation at a time holds, and the last
//! address given, so that the next search starts after it. Parallel
//! allocations never collide, and releasing an address is removing a file.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::allocate::next_free;
use crate::error::{Error, Result};
use crate::kernel;

/// A subnet, as `10.244.1.0/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl std::str::FromStr for Subnet {
    type Err = Error;

    fn from_str(text: &str) -> Result<Subnet> {
        let bad = || Error::new(format!("{text:?} is not a subnet: write it as 10.244.1.0/24"));
        let (address, prefix) = text.split_once('/').ok_or_else(bad)?;
        let address: Ipv4Addr = address.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) {
            return Err(Error::new(format!("{text:?}: podlab hands out addresses from /8 to /30 subnets")));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Subnet { network: Ipv4Addr::from(u32::from(address) & mask), prefix })
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Subnet {
    /// The n-th address of the subnet (0 is the network's own).
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + n)
    }

    /// How many addresses it spans, network and broadcast included.
    pub fn size(&self) -> u32 {
        1 << (32 - self.prefix)
    }

    /// The gateway: its first address, which the bridge takes.
    pub fn gateway(&self) -> Ipv4Addr {
        self.nth(1)
    }

    pub fn contains(&self, address: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - self.prefix);
        u32::from(address) & mask == u32::from(self.network)
    }
}

/// One network's addresses on disk.
pub struct Ipam {
    dir: PathBuf,
    subnet: Subnet,
}

impl Ipam {
    /// The addresses of the network kept in `dir` (made if missing).
    pub fn open(dir: &Path, subnet: Subnet) -> Result<Ipam> {
        kernel::mkdir_all(dir)?;
        Ok(Ipam { dir: dir.to_path_buf(), subnet })
    }

    // ANCHOR: allocate
    /// Gives `owner` (a container's id and interface, `ID IFNAME`) the next
    /// free address after the last one given, under the network's lock: the
    /// file named by the address is made with O_EXCL, so that an address
    /// is never given twice. An owner that has one already gets it again.
    pub fn allocate(&self, owner: &str) -> Result<Ipv4Addr> {
        let _lock = kernel::lock_file(&self.dir.join("lock"))?;
        if let Some(address) = self.held_by(owner)? {
            return Ok(address);
        }
        let last = std::fs::read_to_string(self.dir.join("last_reserved_ip.0"))
            .ok()
            .and_then(|text| text.trim().parse::<Ipv4Addr>().ok());
        let given = next_free(self.subnet, last, |address| {
            kernel::create_new_file(&self.dir.join(address.to_string()), owner)
        })?;
        let address = given.ok_or_else(|| {
            Error::new(format!("every address of {} is in use: the range is exhausted", self.subnet))
        })?;
        kernel::write_file_atomically(&self.dir.join("last_reserved_ip.0"), &address.to_string())?;
        Ok(address)
    }
    // ANCHOR_END: allocate

    /// The address `owner` holds, if any (looks only).
    pub fn held_by(&self, owner: &str) -> Result<Option<Ipv4Addr>> {
        Ok(self.reservations()?.into_iter().find(|(_, held)| held == owner).map(|(address, _)| address))
    }

    /// Every address in use, with its owner (looks only).
    pub fn reservations(&self) -> Result<Vec<(Ipv4Addr, String)>> {
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| Error::new(format!("reading {}: {e}", self.dir.display())))?;
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let Ok(address) = entry.file_name().to_string_lossy().parse::<Ipv4Addr>() else { continue };
            let owner = std::fs::read_to_string(entry.path()).unwrap_or_default();
            found.push((address, owner.trim().to_string()));
        }
        found.sort();
        Ok(found)
    }

    /// Frees what `owner` holds; nothing if it holds nothing (a second
    /// release, as CNI's DEL may be, is no error).
    pub fn release(&self, owner: &str) -> Result<Option<Ipv4Addr>> {
        let _lock = kernel::lock_file(&self.dir.join("lock"))?;
        let held = self.held_by(owner)?;
        if let Some(address) = held {
            kernel::unlink(&self.dir.join(address.to_string()))?;
        }
        Ok(held)
    }
}
