//! A small authoritative DNS responder (RFC 1035 over UDP, with EDNS(0) echo) answering from a
//! [`DnsView`], and the wire-format code it is built on (also usable as a tiny client).
//!
//! What it answers, for a name in the view (lowercased, no trailing dot):
//! - `A`: the CNAME chain inside the view, then the final name's addresses;
//! - `AAAA` and other types: the CNAME chain and no data (`NOERROR`), since the VNets are IPv4-only;
//! - `CNAME`: the name's CNAME record, if any; `ANY`: like `A`;
//! - names that are not in the view, and are not a parent of a name in the view: `NXDOMAIN`
//!   (also after a CNAME whose target is missing, with the chain in the answer, as RFC 6604 says).
//!
//! Every response has AA set, RD copied, RA set (it is the VNet's recursive resolver as far as clients
//! can tell) and TTL [`TTL`]. Malformed queries get `FORMERR` when a header can be read and nothing
//! otherwise; responses (QR set) are ignored; opcodes other than QUERY get `NOTIMP`, classes other than
//! IN/ANY `REFUSED`. Nothing here panics on any input.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// The TTL of every answer, in seconds: short, so view changes show quickly.
pub const TTL: u32 = 5;

/// The UDP payload size this server advertises and honours with EDNS(0) (the DNS flag day value).
pub const EDNS_PAYLOAD: u16 = 1232;

/// Resource record types this module knows by name.
pub mod rtype {
    /// IPv4 address.
    pub const A: u16 = 1;
    /// Name server.
    pub const NS: u16 = 2;
    /// Canonical name.
    pub const CNAME: u16 = 5;
    /// Start of authority.
    pub const SOA: u16 = 6;
    /// Pointer (reverse lookups).
    pub const PTR: u16 = 12;
    /// Mail exchange.
    pub const MX: u16 = 15;
    /// Text.
    pub const TXT: u16 = 16;
    /// IPv6 address.
    pub const AAAA: u16 = 28;
    /// EDNS(0) pseudo-record.
    pub const OPT: u16 = 41;
    /// Any type (query only).
    pub const ANY: u16 = 255;
}

/// Classes.
pub mod class {
    /// Internet.
    pub const IN: u16 = 1;
    /// Any class (query only).
    pub const ANY: u16 = 255;
}

/// Response codes (the low four bits of the header's flags).
pub mod rcode {
    /// No error.
    pub const NOERROR: u8 = 0;
    /// The query was malformed.
    pub const FORMERR: u8 = 1;
    /// The server failed (e.g. a CNAME loop in the view).
    pub const SERVFAIL: u8 = 2;
    /// The name does not exist.
    pub const NXDOMAIN: u8 = 3;
    /// The opcode is not implemented.
    pub const NOTIMP: u8 = 4;
    /// The query is refused (e.g. class CH).
    pub const REFUSED: u8 = 5;
    /// Extended rcode 16 (EDNS version not supported); in the header its low bits are 0.
    pub const BADVERS: u16 = 16;
}

/// Header flag bits.
pub mod flags {
    /// This is a response.
    pub const QR: u16 = 0x8000;
    /// Authoritative answer.
    pub const AA: u16 = 0x0400;
    /// Truncated.
    pub const TC: u16 = 0x0200;
    /// Recursion desired.
    pub const RD: u16 = 0x0100;
    /// Recursion available.
    pub const RA: u16 = 0x0080;
}

const MAX_NAME: usize = 255;
const MAX_LABEL: usize = 63;
const MAX_POINTERS: usize = 32;
const MAX_CNAME_CHAIN: usize = 8;
const PLAIN_UDP: usize = 512;

/// Why a message could not be decoded (or a name encoded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The message ends in the middle of something.
    #[error("message truncated")]
    Truncated,
    /// A label type other than plain (00) or pointer (11).
    #[error("unsupported label type")]
    BadLabelType,
    /// A compression pointer that does not point strictly backwards.
    #[error("compression pointer does not point backwards")]
    BadPointer,
    /// Too many compression pointers in one name.
    #[error("too many compression pointers")]
    TooManyPointers,
    /// A name longer than 255 bytes on the wire.
    #[error("name longer than 255 bytes")]
    NameTooLong,
    /// A label longer than 63 bytes, or empty inside a dotted name.
    #[error("bad label")]
    BadLabel,
    /// Record data of the wrong length for its type.
    #[error("bad record data")]
    BadRdata,
}

/// A domain name as a list of labels (bytes, case preserved). The root name has no labels.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Name(Vec<Vec<u8>>);

impl Name {
    /// Parses a dotted name (`myacr.azurecr.io`, a trailing dot allowed, `""` or `"."` for the root).
    pub fn parse(s: &str) -> Result<Name, WireError> {
        let s = s.strip_suffix('.').unwrap_or(s);
        if s.is_empty() {
            return Ok(Name::default());
        }
        let mut labels = Vec::new();
        let mut wire = 1;
        for l in s.split('.') {
            if l.is_empty() || l.len() > MAX_LABEL {
                return Err(WireError::BadLabel);
            }
            wire += l.len() + 1;
            labels.push(l.as_bytes().to_vec());
        }
        if wire > MAX_NAME {
            return Err(WireError::NameTooLong);
        }
        Ok(Name(labels))
    }

    /// The labels.
    pub fn labels(&self) -> &[Vec<u8>] {
        &self.0
    }

    /// The lookup key: lowercase, dotted, no trailing dot (`""` for the root). `None` when a label holds
    /// a dot or a byte that is not printable ASCII: such a name can never match a view entry.
    pub fn key(&self) -> Option<String> {
        let mut out = String::new();
        for (i, l) in self.0.iter().enumerate() {
            if l.iter().any(|&b| !b.is_ascii_graphic() || b == b'.') {
                return None;
            }
            if i > 0 {
                out.push('.');
            }
            out.extend(l.iter().map(|b| b.to_ascii_lowercase() as char));
        }
        Some(out)
    }

    fn wire_len(&self) -> usize {
        self.0.iter().map(|l| l.len() + 1).sum::<usize>() + 1
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str(".");
        }
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            for &b in l {
                if b.is_ascii_graphic() && b != b'.' && b != b'\\' {
                    write!(f, "{}", b as char)?;
                } else {
                    write!(f, "\\{b:03}")?;
                }
            }
        }
        Ok(())
    }
}

/// A message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    /// Query id.
    pub id: u16,
    /// QR, opcode, AA, TC, RD, RA, Z, rcode.
    pub flags: u16,
    /// Question count.
    pub qdcount: u16,
    /// Answer count.
    pub ancount: u16,
    /// Authority count.
    pub nscount: u16,
    /// Additional count.
    pub arcount: u16,
}

impl Header {
    /// Decodes the first 12 bytes.
    pub fn parse(msg: &[u8]) -> Result<Header, WireError> {
        let b = msg.get(..12).ok_or(WireError::Truncated)?;
        let w = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        Ok(Header { id: w(0), flags: w(2), qdcount: w(4), ancount: w(6), nscount: w(8), arcount: w(10) })
    }

    fn write(&self, out: &mut Vec<u8>) {
        for v in [self.id, self.flags, self.qdcount, self.ancount, self.nscount, self.arcount] {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }

    /// The opcode (0 = QUERY).
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xF) as u8
    }

    /// The 4-bit response code.
    pub fn rcode(&self) -> u8 {
        (self.flags & 0xF) as u8
    }

    /// Whether `flag` (see [`flags`]) is set.
    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }
}

/// A question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The name asked about.
    pub name: Name,
    /// The type (see [`rtype`]).
    pub qtype: u16,
    /// The class (see [`class`]).
    pub qclass: u16,
}

/// Record data, decoded for the types this module uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// A canonical name.
    Cname(Name),
    /// Anything else, raw.
    Other(Vec<u8>),
}

/// A resource record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Owner name.
    pub name: Name,
    /// Type.
    pub rtype: u16,
    /// Class (for OPT: the requester's UDP payload size).
    pub class: u16,
    /// TTL (for OPT: extended rcode, version and flags).
    pub ttl: u32,
    /// Data.
    pub data: RData,
}

/// A decoded message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// The header.
    pub header: Header,
    /// Questions.
    pub questions: Vec<Question>,
    /// Answers.
    pub answers: Vec<Record>,
    /// Authority records.
    pub authorities: Vec<Record>,
    /// Additional records (including OPT).
    pub additionals: Vec<Record>,
}

/// Reads a (possibly compressed) name at `pos`. Returns the name and the position after it.
/// Pointers must point strictly backwards from where they are, at most 32 of them, and
/// the name must stay within 255 bytes, so any input terminates quickly.
pub fn read_name(msg: &[u8], start: usize) -> Result<(Name, usize), WireError> {
    let mut labels = Vec::new();
    let mut pos = start;
    let mut after: Option<usize> = None;
    let mut wire = 1usize;
    let mut pointers = 0;
    loop {
        let len = *msg.get(pos).ok_or(WireError::Truncated)? as usize;
        match len & 0xC0 {
            0x00 if len == 0 => {
                return Ok((Name(labels), after.unwrap_or(pos + 1)));
            }
            0x00 => {
                let label = msg.get(pos + 1..pos + 1 + len).ok_or(WireError::Truncated)?;
                wire += len + 1;
                if wire > MAX_NAME {
                    return Err(WireError::NameTooLong);
                }
                labels.push(label.to_vec());
                pos += len + 1;
            }
            0xC0 => {
                let lo = *msg.get(pos + 1).ok_or(WireError::Truncated)? as usize;
                let target = ((len & 0x3F) << 8) | lo;
                if target >= pos {
                    return Err(WireError::BadPointer);
                }
                pointers += 1;
                if pointers > MAX_POINTERS {
                    return Err(WireError::TooManyPointers);
                }
                after.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return Err(WireError::BadLabelType),
        }
    }
}

struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], WireError> {
        let s = self.msg.get(self.pos..self.pos + n).ok_or(WireError::Truncated)?;
        self.pos += n;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn name(&mut self) -> Result<Name, WireError> {
        let (n, next) = read_name(self.msg, self.pos)?;
        self.pos = next;
        Ok(n)
    }
    fn question(&mut self) -> Result<Question, WireError> {
        Ok(Question { name: self.name()?, qtype: self.u16()?, qclass: self.u16()? })
    }
    fn record(&mut self) -> Result<Record, WireError> {
        let name = self.name()?;
        let rtype = self.u16()?;
        let class = self.u16()?;
        let ttl = self.u32()?;
        let len = self.u16()? as usize;
        let start = self.pos;
        let raw = self.take(len)?;
        let data = match rtype {
            rtype::A => RData::A(<[u8; 4]>::try_from(raw).map_err(|_| WireError::BadRdata)?.into()),
            rtype::AAAA => RData::Aaaa(<[u8; 16]>::try_from(raw).map_err(|_| WireError::BadRdata)?.into()),
            rtype::CNAME => {
                let (n, end) = read_name(self.msg, start)?;
                if end != start + len {
                    return Err(WireError::BadRdata);
                }
                RData::Cname(n)
            }
            _ => RData::Other(raw.to_vec()),
        };
        Ok(Record { name, rtype, class, ttl, data })
    }
}

impl Message {
    /// Decodes a whole message. Counts in the header are trusted only as far as the bytes go.
    pub fn parse(msg: &[u8]) -> Result<Message, WireError> {
        let header = Header::parse(msg)?;
        let mut r = Reader { msg, pos: 12 };
        let mut m = Message { header, ..Message::default() };
        for _ in 0..header.qdcount {
            m.questions.push(r.question()?);
        }
        for (count, list) in [
            (header.ancount, &mut m.answers),
            (header.nscount, &mut m.authorities),
            (header.arcount, &mut m.additionals),
        ] {
            for _ in 0..count {
                list.push(r.record()?);
            }
        }
        Ok(m)
    }

    /// The addresses in the answer section.
    pub fn a_records(&self) -> Vec<Ipv4Addr> {
        self.answers.iter().filter_map(|r| if let RData::A(ip) = r.data { Some(ip) } else { None }).collect()
    }
}

/// Encodes a standard query for `name`/`qtype` (class IN).
pub fn encode_query(id: u16, name: &Name, qtype: u16, recursion_desired: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + name.wire_len() + 4);
    let flags = if recursion_desired { flags::RD } else { 0 };
    Header { id, flags, qdcount: 1, ..Header::default() }.write(&mut out);
    let mut w = Writer { out, names: Vec::new() };
    w.name(name);
    w.out.extend_from_slice(&qtype.to_be_bytes());
    w.out.extend_from_slice(&class::IN.to_be_bytes());
    w.out
}

/// Builds messages, compressing names already written (by whole name, case-insensitively).
struct Writer {
    out: Vec<u8>,
    names: Vec<(String, u16)>,
}

impl Writer {
    fn name(&mut self, n: &Name) {
        let key = n.key();
        if let Some(k) = &key
            && !n.0.is_empty()
            && let Some((_, off)) = self.names.iter().find(|(s, _)| s == k)
        {
            self.out.extend_from_slice(&(0xC000 | off).to_be_bytes());
            return;
        }
        if let Some(k) = key
            && !n.0.is_empty()
            && self.out.len() < 0x3FFF
        {
            self.names.push((k, self.out.len() as u16));
        }
        for l in &n.0 {
            self.out.push(l.len() as u8);
            self.out.extend_from_slice(l);
        }
        self.out.push(0);
    }

    fn record(&mut self, owner: &Name, data: &RData) {
        self.name(owner);
        let t = match data {
            RData::A(_) => rtype::A,
            RData::Aaaa(_) => rtype::AAAA,
            RData::Cname(_) => rtype::CNAME,
            RData::Other(_) => unreachable!("the responder only writes A, AAAA and CNAME"),
        };
        self.out.extend_from_slice(&t.to_be_bytes());
        self.out.extend_from_slice(&class::IN.to_be_bytes());
        self.out.extend_from_slice(&TTL.to_be_bytes());
        let len_at = self.out.len();
        self.out.extend_from_slice(&[0, 0]);
        match data {
            RData::A(ip) => self.out.extend_from_slice(&ip.octets()),
            RData::Aaaa(ip) => self.out.extend_from_slice(&ip.octets()),
            RData::Cname(n) => self.name(n),
            RData::Other(_) => {}
        }
        let len = (self.out.len() - len_at - 2) as u16;
        self.out[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
    }
}

/// The names a VNet resolves: A records and CNAMEs. Keys are fully qualified names, lowercase, without a
/// trailing dot (the server normalizes what it is given). A name with a CNAME has no other data: its
/// A records, if any, are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsView {
    /// Addresses per name. An empty list makes the name exist with no address (`NOERROR`, no data).
    pub records: BTreeMap<String, Vec<Ipv4Addr>>,
    /// Canonical names: `name -> target`.
    pub cnames: BTreeMap<String, String>,
}

/// Lowercases and strips a trailing dot: the form of [`DnsView`] keys.
pub fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

impl DnsView {
    /// An empty view: every name is `NXDOMAIN`.
    pub fn new() -> DnsView {
        DnsView::default()
    }

    /// Adds (replaces) the addresses of `name`.
    pub fn with_a(mut self, name: &str, ips: impl IntoIterator<Item = Ipv4Addr>) -> DnsView {
        self.records.insert(normalize(name), ips.into_iter().collect());
        self
    }

    /// Adds (replaces) a CNAME `name -> target`.
    pub fn with_cname(mut self, name: &str, target: &str) -> DnsView {
        self.cnames.insert(normalize(name), normalize(target));
        self
    }

    /// The same view with every key and target normalized (see [`normalize`]).
    pub fn normalized(&self) -> DnsView {
        DnsView {
            records: self.records.iter().map(|(k, v)| (normalize(k), v.clone())).collect(),
            cnames: self.cnames.iter().map(|(k, v)| (normalize(k), normalize(v))).collect(),
        }
    }

    /// Whether `name` (normalized) exists: it has records or a CNAME, or is a parent of such a name.
    pub fn exists(&self, name: &str) -> bool {
        if name.is_empty() || self.records.contains_key(name) || self.cnames.contains_key(name) {
            return true;
        }
        let suffix = format!(".{name}");
        self.records.keys().chain(self.cnames.keys()).any(|k| k.ends_with(&suffix))
    }

    /// Resolves `name` (normalized) for `qtype`: the response code and the answer records as
    /// `(owner, data)`, owners normalized.
    pub fn resolve(&self, name: &str, qtype: u16) -> (u8, Vec<(String, RData)>) {
        let mut answers = Vec::new();
        let mut current = name.to_owned();
        for _ in 0..=MAX_CNAME_CHAIN {
            if let Some(target) = self.cnames.get(&current) {
                let Ok(t) = Name::parse(target) else { return (rcode::SERVFAIL, Vec::new()) };
                answers.push((current.clone(), RData::Cname(t)));
                if qtype == rtype::CNAME {
                    return (rcode::NOERROR, answers);
                }
                current = target.clone();
                continue;
            }
            if let Some(ips) = self.records.get(&current) {
                if qtype == rtype::A || qtype == rtype::ANY {
                    answers.extend(ips.iter().map(|ip| (current.clone(), RData::A(*ip))));
                }
                return (rcode::NOERROR, answers);
            }
            let code = if self.exists(&current) { rcode::NOERROR } else { rcode::NXDOMAIN };
            return (code, answers);
        }
        // A chain longer than MAX_CNAME_CHAIN (or a loop).
        (rcode::SERVFAIL, Vec::new())
    }
}

/// What a query asked, as far as the responder cares.
struct ParsedQuery {
    header: Header,
    question: Question,
    /// `Some((payload, version))` when the query carried an OPT record.
    edns: Option<(u16, u8)>,
}

fn header_only(id: u16, query_flags: u16, code: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    let f = flags::QR | (query_flags & (0x7800 | flags::RD)) | flags::RA | u16::from(code);
    Header { id, flags: f, ..Header::default() }.write(&mut out);
    out
}

/// Answers one query packet from `view` (normalized). `None` means "send nothing" (too short to hold a
/// header, or a response rather than a query).
pub fn answer(query: &[u8], view: &DnsView) -> Option<Vec<u8>> {
    let header = Header::parse(query).ok()?;
    if header.has(flags::QR) {
        return None;
    }
    if header.opcode() != 0 {
        return Some(header_only(header.id, header.flags, rcode::NOTIMP));
    }
    if header.qdcount != 1 {
        return Some(header_only(header.id, header.flags, rcode::FORMERR));
    }
    let mut r = Reader { msg: query, pos: 12 };
    let Ok(question) = r.question() else {
        return Some(header_only(header.id, header.flags, rcode::FORMERR));
    };
    // EDNS: look for OPT in the additional section; a query we cannot walk is answered without EDNS.
    let mut edns = None;
    let walk = (|| -> Result<(), WireError> {
        for _ in 0..u32::from(header.ancount) + u32::from(header.nscount) {
            r.record()?;
        }
        for _ in 0..header.arcount {
            let rec = r.record()?;
            if rec.rtype == rtype::OPT && edns.is_none() {
                edns = Some((rec.class, ((rec.ttl >> 16) & 0xFF) as u8));
            }
        }
        Ok(())
    })();
    if walk.is_err() {
        edns = None;
    }
    Some(respond(&ParsedQuery { header, question, edns }, view))
}

fn respond(q: &ParsedQuery, view: &DnsView) -> Vec<u8> {
    let (code, ext, answers) = if q.edns.is_some_and(|(_, v)| v != 0) {
        (0u8, (rcode::BADVERS >> 4) as u8, Vec::new())
    } else if q.question.qclass != class::IN && q.question.qclass != class::ANY {
        (rcode::REFUSED, 0, Vec::new())
    } else if let Some(key) = q.question.name.key() {
        let (code, answers) = view.resolve(&key, q.question.qtype);
        (code, 0, answers)
    } else {
        (rcode::NXDOMAIN, 0, Vec::new())
    };
    let limit = match q.edns {
        Some((payload, _)) => usize::from(payload.clamp(PLAIN_UDP as u16, EDNS_PAYLOAD)),
        None => PLAIN_UDP,
    };
    let full = build(q, code, ext, &answers, false);
    if full.len() <= limit {
        return full;
    }
    build(q, code, ext, &[], true)
}

fn build(q: &ParsedQuery, code: u8, ext: u8, answers: &[(String, RData)], truncated: bool) -> Vec<u8> {
    let mut f = flags::QR | flags::AA | (q.header.flags & flags::RD) | flags::RA | u16::from(code);
    if truncated {
        f |= flags::TC;
    }
    let header = Header {
        id: q.header.id,
        flags: f,
        qdcount: 1,
        ancount: answers.len() as u16,
        nscount: 0,
        arcount: u16::from(q.edns.is_some()),
    };
    let mut w = Writer { out: Vec::with_capacity(128), names: Vec::new() };
    header.write(&mut w.out);
    w.name(&q.question.name);
    w.out.extend_from_slice(&q.question.qtype.to_be_bytes());
    w.out.extend_from_slice(&q.question.qclass.to_be_bytes());
    let qkey = q.question.name.key();
    for (owner, data) in answers {
        // The first owner is the question's name: reuse its (case-preserving) encoding.
        let name = if qkey.as_deref() == Some(owner.as_str()) {
            q.question.name.clone()
        } else {
            Name::parse(owner).unwrap_or_default()
        };
        w.record(&name, data);
    }
    if q.edns.is_some() {
        w.out.push(0); // root owner
        w.out.extend_from_slice(&rtype::OPT.to_be_bytes());
        w.out.extend_from_slice(&EDNS_PAYLOAD.to_be_bytes());
        w.out.extend_from_slice(&(u32::from(ext) << 24).to_be_bytes());
        w.out.extend_from_slice(&0u16.to_be_bytes());
    }
    w.out
}

struct Shared {
    view: RwLock<Arc<DnsView>>,
    queries: AtomicU64,
}

/// A DNS server on a UDP socket, answering from a [`DnsView`] that can be swapped atomically.
/// It runs as a tokio task; dropping the server stops it and closes the socket.
#[derive(Debug)]
pub struct DnsServer {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
    local_addr: SocketAddr,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared").field("queries", &self.queries.load(Ordering::Relaxed)).finish_non_exhaustive()
    }
}

impl DnsServer {
    /// Starts serving on `socket` (typically bound in the node namespace at `168.63.129.16:53`, see
    /// [`crate::NetNs::bind_udp`]). Must be called within a tokio runtime.
    pub fn start(socket: UdpSocket, view: DnsView) -> Result<DnsServer> {
        let local_addr = socket.local_addr().map_err(|e| Error::io("DNS socket address", e))?;
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|e| Error::io("DnsServer::start needs a tokio runtime", std::io::Error::other(e)))?;
        socket.set_nonblocking(true).map_err(|e| Error::io("DNS socket set_nonblocking", e))?;
        let socket = {
            let _guard = handle.enter();
            tokio::net::UdpSocket::from_std(socket).map_err(|e| Error::io("DNS socket to tokio", e))?
        };
        let shared = Arc::new(Shared { view: RwLock::new(Arc::new(view.normalized())), queries: AtomicU64::new(0) });
        let task = handle.spawn(serve(socket, shared.clone()));
        tracing::debug!(%local_addr, "DNS server started");
        Ok(DnsServer { shared, task, local_addr })
    }

    /// Replaces the view; queries received from now on are answered from `view`.
    pub fn update(&self, view: DnsView) {
        let view = Arc::new(view.normalized());
        *self.shared.view.write().unwrap_or_else(|p| p.into_inner()) = view;
    }

    /// The view currently served.
    pub fn view(&self) -> Arc<DnsView> {
        self.shared.view.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Where the server listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How many queries it has answered.
    pub fn queries(&self) -> u64 {
        self.shared.queries.load(Ordering::Relaxed)
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(socket: tokio::net::UdpSocket, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (len, peer) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "DNS recv failed");
                continue;
            }
        };
        let view = shared.view.read().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(reply) = answer(&buf[..len], &view) else { continue };
        shared.queries.fetch_add(1, Ordering::Relaxed);
        if tracing::enabled!(tracing::Level::TRACE)
            && let Ok(q) = Message::parse(&buf[..len])
            && let Some(question) = q.questions.first()
        {
            tracing::trace!(%peer, name = %question.name, qtype = question.qtype, "DNS query");
        }
        if let Err(e) = socket.send_to(&reply, peer).await {
            tracing::debug!(%peer, error = %e, "DNS send failed");
        }
    }
}

/// A blocking lookup: sends one query for `name`/`qtype` from `socket` to `server` and waits up to
/// `timeout` for the matching response (same id, from `server`). For probes and tests; run it inside
/// a namespace with [`crate::NetNs::run`] and a socket bound there.
pub fn lookup(
    socket: &UdpSocket,
    server: SocketAddr,
    name: &str,
    qtype: u16,
    timeout: Duration,
) -> std::io::Result<Message> {
    let invalid = |e: WireError| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    let name = Name::parse(name).map_err(invalid)?;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    let id = (u64::from(nanos) ^ NEXT.fetch_add(0x9E37, Ordering::Relaxed)) as u16;
    socket.send_to(&encode_query(id, &name, qtype, true), server)?;
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "no DNS response"));
        }
        socket.set_read_timeout(Some(left))?;
        let (len, from) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "no DNS response"));
            }
            Err(e) => return Err(e),
        };
        if from != server {
            continue;
        }
        let msg = Message::parse(&buf[..len]).map_err(invalid)?;
        if msg.header.id == id && msg.header.has(flags::QR) {
            return Ok(msg);
        }
    }
}

#[cfg(test)]
mod tests;
