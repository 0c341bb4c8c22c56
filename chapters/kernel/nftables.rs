//! Masquerade by nf_tables, the kernel's packet filter since iptables: the
//! messages `nft` sends over a NETLINK_NETFILTER socket, built here. A
//! table holds chains; a chain hooked into the kernel's path (here
//! postrouting, of type nat) holds rules; a rule is a list of expressions
//! the kernel runs on each packet: load a field into a register, compare,
//! and a last one that acts (masq: the packet leaves with the address of
//! the device it leaves by).
//!
//! No Rust crate of a compatible licence builds these messages (rustables
//! is GPL, nf_tables knows no nat chains), and they are what the lesson
//! shows: each is told in the `nft` words that would send it. Changes are
//! sent in a batch, applied whole or not at all. Like the rest of the
//! kernel's networking, it is per network namespace: a socket speaks for
//! the namespace of the thread that opened it.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::libc;
use nix::sys::socket::{self, AddressFamily, NetlinkAddr, SockFlag, SockProtocol, SockType};

use super::failed;
use crate::error::{Error, Result};
use crate::narrate;

// Attribute numbers of <linux/netfilter/nf_tables.h> that libc does not
// carry. Every number in an nf_tables attribute is big-endian.
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_HANDLE: u16 = 3;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_USERDATA: u16 = 7;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFTA_BITWISE_SREG: u16 = 1;
const NFTA_BITWISE_DREG: u16 = 2;
const NFTA_BITWISE_LEN: u16 = 3;
const NFTA_BITWISE_MASK: u16 = 4;
const NFTA_BITWISE_XOR: u16 = 5;
const NFTA_DATA_VALUE: u16 = 1;
/// The rule's userdata as nft writes a comment in it (type, length, text).
const NFTNL_UDATA_RULE_COMMENT: u8 = 0;
/// Where in an IPv4 header its source and destination addresses are.
const IPV4_SOURCE: u32 = 12;
const IPV4_DESTINATION: u32 = 16;

/// The table and the chain podlab's masquerade rules live in.
pub const MASQUERADE_TABLE: &str = "podlab";
pub const MASQUERADE_CHAIN: &str = "masquerade";

/// A NETLINK_NETFILTER socket in this thread's network namespace.
pub struct Nftables {
    socket: OwnedFd,
    sequence: u32,
}

impl Nftables {
    pub fn open() -> Result<Nftables> {
        let socket = socket::socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkNetFilter,
        )
        .map_err(|e| failed("socket(AF_NETLINK, NETLINK_NETFILTER)".into(), e))?;
        socket::bind(socket.as_raw_fd(), &NetlinkAddr::new(0, 0))
            .map_err(|e| failed("bind(NETLINK_NETFILTER)".into(), e))?;
        // A kernel that never answers is an error, not a hang.
        let wait = nix::sys::time::TimeVal::new(5, 0);
        socket::setsockopt(&socket, socket::sockopt::ReceiveTimeout, &wait)
            .map_err(|e| failed("setsockopt(SO_RCVTIMEO)".into(), e))?;
        Ok(Nftables { socket, sequence: 1 })
    }

    /// Masquerades what `source` sends beyond `subnet` (and not to a
    /// multicast group), in one batch: the table and the nat chain on the
    /// postrouting hook if they are not there yet, then the rule, its
    /// comment `owner` (so that it can be found and removed by its owner
    /// alone).
    pub fn masquerade(&mut self, source: Ipv4Addr, subnet: (Ipv4Addr, u8), owner: &str) -> Result<()> {
        let (network, prefix) = subnet;
        narrate!(
            "nf_tables batch: add table ip {MASQUERADE_TABLE}; add chain ip {MASQUERADE_TABLE} \
             {MASQUERADE_CHAIN} {{ type nat hook postrouting priority srcnat; }}; add rule ... ip saddr \
             {source} ip daddr != {network}/{prefix} ip daddr != 224.0.0.0/4 masquerade comment {owner:?}"
        );
        let mut batch = Batch::new(self.sequence);
        let create = libc::NLM_F_CREATE as u16;
        batch.command(libc::NFT_MSG_NEWTABLE, create, |m| m.text(NFTA_TABLE_NAME, MASQUERADE_TABLE));
        batch.command(libc::NFT_MSG_NEWCHAIN, create, |m| {
            m.text(NFTA_CHAIN_TABLE, MASQUERADE_TABLE);
            m.text(NFTA_CHAIN_NAME, MASQUERADE_CHAIN);
            m.nested(NFTA_CHAIN_HOOK, |m| {
                m.number(NFTA_HOOK_HOOKNUM, libc::NF_INET_POST_ROUTING as u32);
                m.number(NFTA_HOOK_PRIORITY, 100); // NF_IP_PRI_NAT_SRC
            });
            m.number(NFTA_CHAIN_POLICY, libc::NF_ACCEPT as u32);
            m.text(NFTA_CHAIN_TYPE, "nat");
        });
        // ANCHOR: rule
        batch.command(libc::NFT_MSG_NEWRULE, create | libc::NLM_F_APPEND as u16, |m| {
            m.text(NFTA_RULE_TABLE, MASQUERADE_TABLE);
            m.text(NFTA_RULE_CHAIN, MASQUERADE_CHAIN);
            m.nested(NFTA_RULE_EXPRESSIONS, |m| {
                load(m, IPV4_SOURCE);
                compare(m, libc::NFT_CMP_EQ, source);
                load(m, IPV4_DESTINATION);
                mask(m, prefix);
                compare(m, libc::NFT_CMP_NEQ, network);
                load(m, IPV4_DESTINATION);
                mask(m, 4);
                compare(m, libc::NFT_CMP_NEQ, Ipv4Addr::new(224, 0, 0, 0));
                m.nested(NFTA_LIST_ELEM, |m| m.text(NFTA_EXPR_NAME, "masq"));
            });
            m.bytes(NFTA_RULE_USERDATA, &comment(owner));
        });
        // ANCHOR_END: rule
        self.send(batch, "add the masquerade rule")
    }

    /// The owners of the masquerade rules there are, each with its rule's
    /// handle (none when the table is not there).
    pub fn masquerade_rules(&mut self) -> Result<Vec<(String, u64)>> {
        let sequence = self.next();
        let mut message = Message::new(
            libc::NFT_MSG_GETRULE,
            (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16,
            sequence,
            libc::NFPROTO_IPV4 as u8,
        );
        message.text(NFTA_RULE_TABLE, MASQUERADE_TABLE);
        message.text(NFTA_RULE_CHAIN, MASQUERADE_CHAIN);
        self.write(&message.finish(), "list the masquerade rules")?;
        let mut rules = Vec::new();
        loop {
            for reply in self.read("list the masquerade rules")? {
                match reply {
                    Reply::Done => return Ok(rules),
                    Reply::Error(0) => {}
                    Reply::Error(errno) if errno == libc::ENOENT => return Ok(rules),
                    Reply::Error(errno) => {
                        return Err(failed("NFT_MSG_GETRULE".into(), nix::errno::Errno::from_raw(errno)))
                    }
                    Reply::Rule { handle, comment } => rules.push((comment, handle)),
                }
            }
        }
    }

    /// Removes the masquerade rules of `owner` (none is no error).
    pub fn unmasquerade(&mut self, owner: &str) -> Result<()> {
        self.unmasquerade_where(|kept| kept == as_kept(owner))
    }

    /// Removes, in one batch, every masquerade rule whose owner (as its
    /// comment keeps it) `stale` says.
    pub fn unmasquerade_where(&mut self, stale: impl Fn(&str) -> bool) -> Result<()> {
        let rules: Vec<(String, u64)> =
            self.masquerade_rules()?.into_iter().filter(|(o, _)| stale(o)).collect();
        if rules.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::new(self.sequence);
        for (owner, handle) in &rules {
            narrate!(
                "nf_tables batch: delete rule ip {MASQUERADE_TABLE} {MASQUERADE_CHAIN} comment {owner:?}"
            );
            batch.command(libc::NFT_MSG_DELRULE, 0, |m| {
                m.text(NFTA_RULE_TABLE, MASQUERADE_TABLE);
                m.text(NFTA_RULE_CHAIN, MASQUERADE_CHAIN);
                m.bytes(NFTA_RULE_HANDLE, &handle.to_be_bytes());
            });
        }
        match self.send(batch, "delete masquerade rules") {
            // Another DEL of the same pod may have removed one first: gone is gone.
            Err(_) if !self.masquerade_rules()?.iter().any(|(o, _)| stale(o)) => Ok(()),
            done => done,
        }
    }

    fn next(&mut self) -> u32 {
        self.sequence += 1;
        self.sequence
    }

    /// Sends a batch and waits for the kernel's answer to each command in
    /// it: all applied, or the first refusal as an error.
    fn send(&mut self, batch: Batch, what: &str) -> Result<()> {
        let commands = batch.commands;
        let (bytes, sequence) = batch.finish();
        self.sequence = sequence;
        self.write(&bytes, what)?;
        let mut acknowledged = 0;
        while acknowledged < commands {
            for reply in self.read(what)? {
                match reply {
                    Reply::Error(0) => acknowledged += 1,
                    Reply::Error(errno) => {
                        return Err(failed(
                            format!("nf_tables batch ({what})"),
                            nix::errno::Errno::from_raw(errno),
                        ))
                    }
                    Reply::Done | Reply::Rule { .. } => {}
                }
            }
        }
        Ok(())
    }

    fn write(&self, bytes: &[u8], what: &str) -> Result<()> {
        socket::send(self.socket.as_raw_fd(), bytes, socket::MsgFlags::empty())
            .map_err(|e| failed(format!("send(NETLINK_NETFILTER) to {what}"), e))?;
        Ok(())
    }

    /// The messages of one datagram from the kernel.
    fn read(&self, what: &str) -> Result<Vec<Reply>> {
        let mut buffer = vec![0u8; 1 << 16];
        let length = socket::recv(self.socket.as_raw_fd(), &mut buffer, socket::MsgFlags::empty()).map_err(
            |e| match e {
                nix::errno::Errno::EAGAIN => Error::new(format!(
                    "the kernel did not answer in {:?} when asked to {what}",
                    Duration::from_secs(5)
                )),
                e => failed(format!("recv(NETLINK_NETFILTER) to {what}"), e),
            },
        )?;
        Ok(replies(&buffer[..length]))
    }
}

/// What the kernel said, as far as we need it.
enum Reply {
    /// An acknowledgement (0) or a refusal (an errno).
    Error(i32),
    Done,
    Rule {
        handle: u64,
        comment: String,
    },
}

fn replies(mut bytes: &[u8]) -> Vec<Reply> {
    let mut replies = Vec::new();
    while bytes.len() >= 16 {
        let length = (u32::from_ne_bytes(bytes[0..4].try_into().unwrap()) as usize).clamp(16, bytes.len());
        let kind = u16::from_ne_bytes(bytes[4..6].try_into().unwrap());
        let body = &bytes[16..length];
        match kind as i32 {
            libc::NLMSG_ERROR if body.len() >= 4 => {
                replies.push(Reply::Error(-i32::from_ne_bytes(body[0..4].try_into().unwrap())))
            }
            libc::NLMSG_DONE => replies.push(Reply::Done),
            _ if kind == subsystem(libc::NFT_MSG_NEWRULE) && body.len() >= 4 => {
                let (mut handle, mut comment) = (0, String::new());
                for (kind, value) in attributes(&body[4..]) {
                    match kind {
                        NFTA_RULE_HANDLE if value.len() == 8 => {
                            handle = u64::from_be_bytes(value.try_into().unwrap())
                        }
                        NFTA_RULE_USERDATA => comment = comment_of(value),
                        _ => {}
                    }
                }
                replies.push(Reply::Rule { handle, comment });
            }
            _ => {}
        }
        bytes = &bytes[align(length).min(bytes.len())..];
    }
    replies
}

/// The attributes (type, value) of a message's payload.
fn attributes(mut bytes: &[u8]) -> Vec<(u16, &[u8])> {
    let mut found = Vec::new();
    while bytes.len() >= 4 {
        let length = (u16::from_ne_bytes([bytes[0], bytes[1]]) as usize).clamp(4, bytes.len());
        let kind = u16::from_ne_bytes([bytes[2], bytes[3]]) & !(libc::NLA_F_NESTED as u16);
        found.push((kind, &bytes[4..length]));
        bytes = &bytes[align(length).min(bytes.len())..];
    }
    found
}

/// The longest comment a rule's userdata holds (255 bytes, its NUL included).
const COMMENT_MAX: usize = 254;

/// `owner` as a rule's comment keeps it: cut to [`COMMENT_MAX`] bytes, at a
/// character's edge.
fn as_kept(owner: &str) -> &str {
    let mut end = owner.len().min(COMMENT_MAX);
    while !owner.is_char_boundary(end) {
        end -= 1;
    }
    &owner[..end]
}

fn comment(owner: &str) -> Vec<u8> {
    let text = as_kept(owner).as_bytes();
    let mut data = vec![NFTNL_UDATA_RULE_COMMENT, text.len() as u8 + 1];
    data.extend_from_slice(text);
    data.push(0);
    data
}

fn comment_of(userdata: &[u8]) -> String {
    let mut rest = userdata;
    while rest.len() >= 2 {
        let (kind, length) = (rest[0], rest[1] as usize);
        let value = rest.get(2..2 + length).unwrap_or_default();
        if kind == NFTNL_UDATA_RULE_COMMENT {
            return String::from_utf8_lossy(value).trim_end_matches('\0').to_string();
        }
        rest = &rest[(2 + length).min(rest.len())..];
    }
    String::new()
}

/// `payload load 4b @ network header + offset => reg 1`
fn load(m: &mut Message, offset: u32) {
    expression(m, "payload", |m| {
        m.number(NFTA_PAYLOAD_DREG, libc::NFT_REG_1 as u32);
        m.number(NFTA_PAYLOAD_BASE, libc::NFT_PAYLOAD_NETWORK_HEADER as u32);
        m.number(NFTA_PAYLOAD_OFFSET, offset);
        m.number(NFTA_PAYLOAD_LEN, 4);
    });
}

/// `bitwise reg 1 = (reg 1 & /prefix) ^ 0`: keeps the network's part.
fn mask(m: &mut Message, prefix: u8) {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    expression(m, "bitwise", |m| {
        m.number(NFTA_BITWISE_SREG, libc::NFT_REG_1 as u32);
        m.number(NFTA_BITWISE_DREG, libc::NFT_REG_1 as u32);
        m.number(NFTA_BITWISE_LEN, 4);
        m.nested(NFTA_BITWISE_MASK, |m| m.bytes(NFTA_DATA_VALUE, &mask.to_be_bytes()));
        m.nested(NFTA_BITWISE_XOR, |m| m.bytes(NFTA_DATA_VALUE, &[0; 4]));
    });
}

/// `cmp eq|neq reg 1 address`: the rule goes on only if it holds.
fn compare(m: &mut Message, operator: i32, address: Ipv4Addr) {
    expression(m, "cmp", |m| {
        m.number(NFTA_CMP_SREG, libc::NFT_REG_1 as u32);
        m.number(NFTA_CMP_OP, operator as u32);
        m.nested(NFTA_CMP_DATA, |m| m.bytes(NFTA_DATA_VALUE, &address.octets()));
    });
}

fn expression(m: &mut Message, name: &str, data: impl FnOnce(&mut Message)) {
    m.nested(NFTA_LIST_ELEM, |m| {
        m.text(NFTA_EXPR_NAME, name);
        m.nested(NFTA_EXPR_DATA, data);
    });
}

fn align(length: usize) -> usize {
    (length + 3) & !3
}

fn subsystem(command: i32) -> u16 {
    ((libc::NFNL_SUBSYS_NFTABLES as u16) << 8) | command as u16
}

/// One netlink message: its header, nf_tables' own header (nfgenmsg: the
/// address family, a version, a resource id), then attributes.
struct Message {
    bytes: Vec<u8>,
}

impl Message {
    fn new(command: i32, flags: u16, sequence: u32, family: u8) -> Message {
        Message::raw(subsystem(command), flags, sequence, family, 0)
    }

    fn raw(kind: u16, flags: u16, sequence: u32, family: u8, resource: u16) -> Message {
        let mut bytes = Vec::with_capacity(256);
        bytes.extend_from_slice(&0u32.to_ne_bytes()); // length, once known
        bytes.extend_from_slice(&kind.to_ne_bytes());
        bytes.extend_from_slice(&flags.to_ne_bytes());
        bytes.extend_from_slice(&sequence.to_ne_bytes());
        bytes.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
        bytes.extend_from_slice(&[family, libc::NFNETLINK_V0 as u8]);
        bytes.extend_from_slice(&resource.to_be_bytes());
        Message { bytes }
    }

    fn bytes(&mut self, kind: u16, value: &[u8]) {
        self.bytes.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        self.bytes.extend_from_slice(&kind.to_ne_bytes());
        self.bytes.extend_from_slice(value);
        self.bytes.resize(align(self.bytes.len()), 0);
    }

    fn text(&mut self, kind: u16, value: &str) {
        let mut text = value.as_bytes().to_vec();
        text.push(0);
        self.bytes(kind, &text);
    }

    fn number(&mut self, kind: u16, value: u32) {
        self.bytes(kind, &value.to_be_bytes());
    }

    fn nested(&mut self, kind: u16, inside: impl FnOnce(&mut Message)) {
        let start = self.bytes.len();
        self.bytes(kind | libc::NLA_F_NESTED as u16, &[]);
        inside(self);
        let length = (self.bytes.len() - start) as u16;
        self.bytes[start..start + 2].copy_from_slice(&length.to_ne_bytes());
    }

    fn finish(mut self) -> Vec<u8> {
        let length = self.bytes.len() as u32;
        self.bytes[0..4].copy_from_slice(&length.to_ne_bytes());
        self.bytes
    }
}

/// Commands between a batch's begin and end, which the kernel applies as
/// one transaction.
struct Batch {
    bytes: Vec<u8>,
    sequence: u32,
    commands: usize,
}

impl Batch {
    /// A batch whose messages are numbered after `sequence`.
    fn new(sequence: u32) -> Batch {
        let sequence = sequence + 1;
        let begin = Message::raw(
            libc::NFNL_MSG_BATCH_BEGIN as u16,
            libc::NLM_F_REQUEST as u16,
            sequence,
            libc::AF_UNSPEC as u8,
            libc::NFNL_SUBSYS_NFTABLES as u16,
        );
        Batch { bytes: begin.finish(), sequence, commands: 0 }
    }

    /// Adds a command for the IPv4 family; the kernel acknowledges each.
    fn command(&mut self, command: i32, flags: u16, attributes: impl FnOnce(&mut Message)) {
        self.sequence += 1;
        let flags = flags | (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
        let mut message = Message::new(command, flags, self.sequence, libc::NFPROTO_IPV4 as u8);
        attributes(&mut message);
        self.bytes.extend_from_slice(&message.finish());
        self.commands += 1;
    }

    /// The batch's bytes, and the last sequence number it used.
    fn finish(mut self) -> (Vec<u8>, u32) {
        self.sequence += 1;
        let end = Message::raw(
            libc::NFNL_MSG_BATCH_END as u16,
            libc::NLM_F_REQUEST as u16,
            self.sequence,
            libc::AF_UNSPEC as u8,
            libc::NFNL_SUBSYS_NFTABLES as u16,
        );
        self.bytes.extend_from_slice(&end.finish());
        (self.bytes, self.sequence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_owner_is_found_by_the_comment_it_was_cut_to() {
        let owner = format!("pods: {} eth0", "é".repeat(200));
        let kept = comment_of(&comment(&owner));
        assert!(kept.len() <= COMMENT_MAX && owner.starts_with(&kept), "{kept}");
        assert_eq!(kept, as_kept(&owner), "what DEL compares is what ADD wrote");
        assert_eq!(comment_of(&comment("pods: a eth0")), "pods: a eth0");
    }
}
