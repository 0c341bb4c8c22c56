//! Watching frames go by on a device, as tcpdump does: an AF_PACKET socket
//! bound to the device sees every frame it sends and receives. It only
//! looks, so nothing here is narrated but its start.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::libc;

use super::failed;
use crate::error::Result;
use crate::narrate;

/// A packet socket on one device of this thread's network namespace.
pub struct Capture {
    socket: OwnedFd,
}

impl Capture {
    /// Starts watching the device with index `index` (in the namespace of
    /// the thread that calls this; the socket stays there).
    pub fn start(device: &str, index: u32) -> Result<Capture> {
        narrate!("socket(AF_PACKET, SOCK_RAW, ETH_P_ALL), bind to {device:?}: every frame it carries, seen");
        let all = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: socket(2) with constant arguments; the result is checked.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                all.into(),
            )
        };
        if raw < 0 {
            return Err(failed("socket(AF_PACKET, SOCK_RAW)".to_string(), Errno::last()));
        }
        // SAFETY: `raw` is a new descriptor that nothing else owns.
        let socket = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_ll is plain data, filled in below.
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_protocol = all;
        address.sll_ifindex = index as i32;
        // SAFETY: bind(2) reads `address`, whose size is given.
        let bound = unsafe {
            libc::bind(
                socket.as_raw_fd(),
                std::ptr::addr_of!(address).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if bound < 0 {
            return Err(failed(format!("bind(AF_PACKET, {device:?})"), Errno::last()));
        }
        Ok(Capture { socket })
    }

    /// The frames seen so far, waiting up to `wait` for the first.
    pub fn frames(&self, wait: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + wait;
        let mut frames = Vec::new();
        loop {
            let mut buffer = vec![0u8; 65536];
            // SAFETY: recv(2) writes at most buffer.len() bytes into it.
            let read =
                unsafe { libc::recv(self.socket.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len(), 0) };
            if read > 0 {
                buffer.truncate(read as usize);
                frames.push(buffer);
                continue;
            }
            if !frames.is_empty() || Instant::now() > deadline {
                return frames;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
