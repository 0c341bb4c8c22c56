//! Capabilities: the bounding, effective, permitted, inheritable and ambient sets.

use nix::errno::Errno;

use super::failed;
use crate::error::Result;
use crate::narrate;

/// Every capability podlab knows, by number (as <linux/capability.h>
/// numbers them) and name, from the caps crate.
pub fn known_capabilities() -> Vec<(u32, String)> {
    let mut known: Vec<(u32, String)> =
        caps::all().into_iter().map(|cap| (u32::from(cap.index()), cap.to_string())).collect();
    known.sort();
    known
}

/// The number of the capability `name` ("CAP_CHOWN"), if podlab knows it.
pub fn capability_number(name: &str) -> Option<u32> {
    name.parse::<caps::Capability>().ok().map(|cap| u32::from(cap.index()))
}

/// The highest capability this kernel knows.
pub fn last_capability() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// The names of the capabilities in a set, for narration.
fn capability_names(set: u64) -> String {
    let names: Vec<String> = known_capabilities()
        .into_iter()
        .filter(|(number, _)| set & (1 << number) != 0)
        .map(|(_, name)| name)
        .collect();
    format!("[{}]", names.join(", "))
}

/// prctl(PR_CAPBSET_DROP) for each capability not in `keep`: the bounding
/// set caps what this process and its children can ever have again.
pub fn drop_bounding_set(keep: u64) -> Result<()> {
    narrate!("prctl(PR_CAPBSET_DROP) for each capability but {}", capability_names(keep));
    for cap in (0..=last_capability()).filter(|cap| keep & (1 << cap) == 0) {
        // SAFETY: prctl with integer arguments only.
        if unsafe { nix::libc::prctl(nix::libc::PR_CAPBSET_DROP, cap as nix::libc::c_ulong, 0, 0, 0) } < 0 {
            return Err(failed(
                format!("prctl(PR_CAPBSET_DROP, {})", capability_names(1 << cap)),
                Errno::last(),
            ));
        }
    }
    Ok(())
}

/// prctl(PR_SET_KEEPCAPS): whether capabilities survive a change of uid.
pub fn keep_capabilities(keep: bool) -> Result<()> {
    narrate!("prctl(PR_SET_KEEPCAPS, {})", u8::from(keep));
    // SAFETY: prctl with integer arguments only.
    if unsafe { nix::libc::prctl(nix::libc::PR_SET_KEEPCAPS, nix::libc::c_ulong::from(keep), 0, 0, 0) } < 0 {
        return Err(failed("prctl(PR_SET_KEEPCAPS)".into(), Errno::last()));
    }
    Ok(())
}

/// capset(2): this process's effective, permitted and inheritable sets.
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<()> {
    narrate!(
        "capset(effective {}, permitted {}, inheritable {})",
        capability_names(effective),
        capability_names(permitted),
        capability_names(inheritable)
    );
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let header = Header { version: VERSION_3, pid: 0 };
    let half = |set: u64, high: bool| if high { (set >> 32) as u32 } else { set as u32 };
    let data = [false, true].map(|high| Data {
        effective: half(effective, high),
        permitted: half(permitted, high),
        inheritable: half(inheritable, high),
    });
    // SAFETY: the header and two data words are what version 3 reads.
    if unsafe { nix::libc::syscall(nix::libc::SYS_capset, &header, data.as_ptr()) } < 0 {
        return Err(failed("capset".into(), Errno::last()));
    }
    Ok(())
}

/// prctl(PR_CAP_AMBIENT_RAISE) for each capability in `set`: kept across
/// execve even by a program without file capabilities.
pub fn raise_ambient(set: u64) -> Result<()> {
    if set == 0 {
        return Ok(());
    }
    narrate!("prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE) for each of {}", capability_names(set));
    for cap in (0..64u32).filter(|cap| set & (1 << cap) != 0) {
        // SAFETY: prctl with integer arguments only.
        let raised = unsafe {
            nix::libc::prctl(
                nix::libc::PR_CAP_AMBIENT,
                nix::libc::PR_CAP_AMBIENT_RAISE as nix::libc::c_ulong,
                cap as nix::libc::c_ulong,
                0,
                0,
            )
        };
        if raised < 0 {
            return Err(failed(format!("prctl(PR_CAP_AMBIENT_RAISE, {cap})"), Errno::last()));
        }
    }
    Ok(())
}
