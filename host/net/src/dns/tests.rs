use super::*;

const ACR: &str = "myacr.azurecr.io";
const PRIVATE: &str = "myacr.privatelink.azurecr.io";
const EP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 4);
const PUBLIC: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 20);

fn view() -> DnsView {
    DnsView::new()
        .with_cname(ACR, PRIVATE)
        .with_a(PRIVATE, [EP])
        .with_a("login.microsoftonline.com", [Ipv4Addr::new(198, 51, 100, 30), Ipv4Addr::new(198, 51, 100, 31)])
        .with_a("empty.example", [])
        .with_cname("dangling.example", "missing.example")
        .with_cname("loop1.example", "loop2.example")
        .with_cname("loop2.example", "loop1.example")
}

fn query(name: &str, qtype: u16) -> Vec<u8> {
    encode_query(0x1234, &Name::parse(name).unwrap(), qtype, true)
}

fn ask(name: &str, qtype: u16) -> Message {
    let resp = answer(&query(name, qtype), &view().normalized()).expect("a response");
    Message::parse(&resp).expect("a well-formed response")
}

/// A query with an OPT record (EDNS payload, version).
fn query_edns(name: &str, qtype: u16, payload: u16, version: u8) -> Vec<u8> {
    let mut q = query(name, qtype);
    q[11] = 1; // arcount
    q.push(0);
    q.extend_from_slice(&rtype::OPT.to_be_bytes());
    q.extend_from_slice(&payload.to_be_bytes());
    q.extend_from_slice(&(u32::from(version) << 16).to_be_bytes());
    q.extend_from_slice(&0u16.to_be_bytes());
    q
}

#[test]
fn query_roundtrip() {
    let q = query("Example.COM.", rtype::AAAA);
    let m = Message::parse(&q).unwrap();
    assert_eq!(m.header.id, 0x1234);
    assert!(m.header.has(flags::RD) && !m.header.has(flags::QR));
    assert_eq!(m.questions.len(), 1);
    assert_eq!(m.questions[0].name.to_string(), "Example.COM");
    assert_eq!(m.questions[0].name.key().unwrap(), "example.com");
    assert_eq!((m.questions[0].qtype, m.questions[0].qclass), (rtype::AAAA, class::IN));
}

#[test]
fn a_follows_cname_chain() {
    let m = ask(ACR, rtype::A);
    let h = m.header;
    assert_eq!(h.id, 0x1234);
    assert!(h.has(flags::QR) && h.has(flags::AA) && h.has(flags::RD) && h.has(flags::RA) && !h.has(flags::TC));
    assert_eq!(h.rcode(), rcode::NOERROR);
    assert_eq!(m.answers.len(), 2);
    assert_eq!(m.answers[0].name.key().unwrap(), ACR);
    assert_eq!(m.answers[0].data, RData::Cname(Name::parse(PRIVATE).unwrap()));
    assert_eq!(m.answers[1].name.key().unwrap(), PRIVATE);
    assert_eq!(m.answers[1].data, RData::A(EP));
    assert!(m.answers.iter().all(|r| r.ttl == TTL && r.class == class::IN));
    assert_eq!(m.a_records(), vec![EP]);
}

#[test]
fn multiple_addresses_and_compression() {
    let q = query("login.microsoftonline.com", rtype::A);
    let resp = answer(&q, &view()).unwrap();
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.a_records().len(), 2);
    // Both owners are pointers to the question name at offset 12 (0xC00C).
    let qlen = q.len();
    assert_eq!(&resp[qlen..qlen + 2], &[0xC0, 0x0C]);
    assert_eq!(resp.len(), qlen + 2 * 16);
}

#[test]
fn case_insensitive_and_question_case_preserved() {
    let m = ask("MyAcr.AzureCR.IO.", rtype::A);
    assert_eq!(m.header.rcode(), rcode::NOERROR);
    assert_eq!(m.questions[0].name.to_string(), "MyAcr.AzureCR.IO");
    assert_eq!(m.a_records(), vec![EP]);
    assert_eq!(m.answers[0].name.to_string(), "MyAcr.AzureCR.IO");
}

#[test]
fn aaaa_and_other_types_are_nodata_for_existing_names() {
    for t in [rtype::AAAA, rtype::MX, rtype::TXT, rtype::NS] {
        let m = ask(PRIVATE, t);
        assert_eq!(m.header.rcode(), rcode::NOERROR, "type {t}");
        assert!(m.answers.is_empty());
    }
    // Through a CNAME: the chain, no addresses.
    let m = ask(ACR, rtype::AAAA);
    assert_eq!(m.header.rcode(), rcode::NOERROR);
    assert_eq!(m.answers.len(), 1);
    assert!(matches!(m.answers[0].data, RData::Cname(_)));
}

#[test]
fn unknown_names_are_nxdomain() {
    for t in [rtype::A, rtype::AAAA, rtype::ANY] {
        let m = ask("nope.azurecr.io", t);
        assert_eq!(m.header.rcode(), rcode::NXDOMAIN);
        assert!(m.answers.is_empty());
        assert!(m.header.has(flags::AA));
    }
}

#[test]
fn empty_non_terminals_and_empty_records_exist() {
    for n in ["azurecr.io", "privatelink.azurecr.io", "io", "empty.example", ""] {
        let m = ask(n, rtype::A);
        assert_eq!(m.header.rcode(), rcode::NOERROR, "{n:?}");
        assert!(m.answers.is_empty());
    }
    // A suffix that is not a label boundary does not count.
    assert_eq!(ask("cr.io", rtype::A).header.rcode(), rcode::NXDOMAIN);
}

#[test]
fn cname_query_dangling_and_loops() {
    let m = ask(ACR, rtype::CNAME);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.header.rcode(), rcode::NOERROR);
    let m = ask("dangling.example", rtype::A);
    assert_eq!(m.header.rcode(), rcode::NXDOMAIN);
    assert_eq!(m.answers.len(), 1);
    let m = ask("loop1.example", rtype::A);
    assert_eq!(m.header.rcode(), rcode::SERVFAIL);
    assert!(m.answers.is_empty());
    let m = ask(ACR, rtype::ANY);
    assert_eq!(m.a_records(), vec![EP]);
}

#[test]
fn refused_notimp_formerr_and_ignored() {
    let mut q = query(ACR, rtype::A);
    let n = q.len();
    q[n - 1] = 3; // class CH
    let m = Message::parse(&answer(&q, &view()).unwrap()).unwrap();
    assert_eq!(m.header.rcode(), rcode::REFUSED);

    let mut q = query(ACR, rtype::A);
    q[2] |= 2 << 3; // opcode STATUS
    let r = answer(&q, &view()).unwrap();
    let h = Header::parse(&r).unwrap();
    assert_eq!((h.rcode(), h.opcode(), h.qdcount), (rcode::NOTIMP, 2, 0));

    let mut q = query(ACR, rtype::A);
    q[5] = 2; // qdcount 2, only one present
    assert_eq!(Header::parse(&answer(&q, &view()).unwrap()).unwrap().rcode(), rcode::FORMERR);
    q[5] = 0;
    assert_eq!(Header::parse(&answer(&q, &view()).unwrap()).unwrap().rcode(), rcode::FORMERR);

    let mut q = query(ACR, rtype::A);
    q[2] |= 0x80; // QR: a response, never answered
    assert!(answer(&q, &view()).is_none());
    assert!(answer(&q[..11], &view()).is_none());
    assert!(answer(&[], &view()).is_none());

    // A header alone with qdcount 1: FORMERR with the same id.
    let q = query(ACR, rtype::A);
    let r = answer(&q[..12], &view()).unwrap();
    let h = Header::parse(&r).unwrap();
    assert_eq!((h.id, h.rcode()), (0x1234, rcode::FORMERR));
}

#[test]
fn compression_pointers_in_questions() {
    // A pointer to the header whose bytes read as the name "a": id = 0x0161 ("\x01a"), flags 0x0000
    // (the terminating zero).
    let mut q = vec![0x01, 0x61, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(&[0xC0, 0x00, 0, 1, 0, 1]);
    let v = DnsView::new().with_a("a", [EP]);
    let m = Message::parse(&answer(&q, &v).unwrap()).unwrap();
    assert_eq!(m.header.rcode(), rcode::NOERROR);
    assert_eq!(m.a_records(), vec![EP]);
    assert_eq!(m.questions[0].name.to_string(), "a");

    let formerr = |q: &[u8]| Header::parse(&answer(q, &v).unwrap()).unwrap().rcode() == rcode::FORMERR;
    let head = [0u8, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    // Pointer to itself.
    let q = [&head[..], &[0xC0, 12, 0, 1, 0, 1]].concat();
    assert!(formerr(&q));
    assert_eq!(read_name(&q, 12), Err(WireError::BadPointer));
    // Pointer forward.
    let q = [&head[..], &[0xC0, 14, 1, b'a', 0, 0, 1, 0, 1]].concat();
    assert!(formerr(&q));
    // A label then a pointer back to it: a loop, stopped by the length limit.
    let q = [&head[..], &[1, b'a', 0xC0, 12, 0, 1, 0, 1]].concat();
    assert!(formerr(&q));
    assert!(matches!(read_name(&q, 12), Err(WireError::NameTooLong | WireError::TooManyPointers)));
    // Reserved label types 01 and 10.
    for t in [0x40, 0x80] {
        let q = [&head[..], &[t, 0, 0, 1, 0, 1]].concat();
        assert!(formerr(&q));
        assert_eq!(read_name(&q, 12), Err(WireError::BadLabelType));
    }
    // Truncated pointer and label.
    assert_eq!(read_name(&[&head[..], &[0xC0]].concat(), 12), Err(WireError::Truncated));
    assert_eq!(read_name(&[&head[..], &[5, b'a']].concat(), 12), Err(WireError::Truncated));
    // A chain of pointers, each strictly backwards: fine while short, refused when too long.
    let mut msg = vec![0u8; 0];
    msg.extend_from_slice(&[1, b'x', 0]);
    for i in 0..40u16 {
        let target = if i == 0 { 0 } else { 3 + 2 * (i - 1) };
        msg.extend_from_slice(&(0xC000 | target).to_be_bytes());
    }
    assert_eq!(read_name(&msg, 3 + 2 * 5).unwrap().0.to_string(), "x");
    assert_eq!(read_name(&msg, 3 + 2 * 39), Err(WireError::TooManyPointers));
}

#[test]
fn long_names() {
    let label = "a".repeat(63);
    let ok = [label.as_str(); 3].join(".") + "." + &"b".repeat(61); // 64*3 + 62 + 1 = 255
    assert!(Name::parse(&ok).is_ok());
    assert_eq!(Name::parse(&(ok.clone() + "c")), Err(WireError::NameTooLong));
    assert_eq!(Name::parse(&"a".repeat(64)), Err(WireError::BadLabel));
    assert_eq!(Name::parse("a..b"), Err(WireError::BadLabel));
    let m = ask(&ok, rtype::A);
    assert_eq!(m.header.rcode(), rcode::NXDOMAIN);
    assert_eq!(m.questions[0].name.to_string(), ok);
}

#[test]
fn odd_labels_never_match() {
    // A label containing a dot must not be confused with two labels.
    let name = Name(vec![b"myacr.privatelink".to_vec(), b"azurecr".to_vec(), b"io".to_vec()]);
    assert_eq!(name.key(), None);
    let q = encode_query(9, &name, rtype::A, false);
    let m = Message::parse(&answer(&q, &view()).unwrap()).unwrap();
    assert_eq!(m.header.rcode(), rcode::NXDOMAIN);
    assert!(!m.header.has(flags::RD));
    assert_eq!(m.questions[0].name, name);
    assert_eq!(name.to_string(), "myacr\\046privatelink.azurecr.io");
}

#[test]
fn edns_is_echoed_and_badvers_reported() {
    let r = answer(&query_edns(ACR, rtype::A, 4096, 0), &view()).unwrap();
    let m = Message::parse(&r).unwrap();
    assert_eq!(m.a_records(), vec![EP]);
    assert_eq!(m.additionals.len(), 1);
    let opt = &m.additionals[0];
    assert_eq!((opt.rtype, opt.class, opt.ttl), (rtype::OPT, EDNS_PAYLOAD, 0));

    let m = Message::parse(&answer(&query_edns(ACR, rtype::A, 4096, 1), &view()).unwrap()).unwrap();
    assert_eq!(m.header.rcode(), 0);
    assert!(m.answers.is_empty());
    assert_eq!(m.additionals[0].ttl >> 24, u32::from(rcode::BADVERS >> 4));
}

#[test]
fn large_answers_are_truncated() {
    let many = |n: u8| DnsView::new().with_a("big.example", (0..n).map(|i| Ipv4Addr::new(10, 9, 0, i)));
    // 12 + 17 (question) + 16 per address: 30 fit in 512 bytes, 40 do not.
    let m = Message::parse(&answer(&query("big.example", rtype::A), &many(30)).unwrap()).unwrap();
    assert_eq!((m.answers.len(), m.header.has(flags::TC)), (30, false));
    let r = answer(&query("big.example", rtype::A), &many(40)).unwrap();
    assert!(r.len() <= 512);
    let m = Message::parse(&r).unwrap();
    assert_eq!((m.answers.len(), m.header.has(flags::TC)), (0, true));
    // With EDNS the limit is min(requested, 1232): 40 fit, 100 do not, and a small payload means 512.
    let m = Message::parse(&answer(&query_edns("big.example", rtype::A, 4096, 0), &many(40)).unwrap()).unwrap();
    assert_eq!((m.answers.len(), m.header.has(flags::TC)), (40, false));
    let r = answer(&query_edns("big.example", rtype::A, 4096, 0), &many(100)).unwrap();
    assert!(r.len() <= usize::from(EDNS_PAYLOAD));
    assert!(Message::parse(&r).unwrap().header.has(flags::TC));
    let m = Message::parse(&answer(&query_edns("big.example", rtype::A, 100, 0), &many(40)).unwrap()).unwrap();
    assert!(m.header.has(flags::TC));
}

/// xorshift64*: deterministic pseudo-random bytes for fuzz-style tests, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Whatever the input, `answer` must not panic, and whatever it sends must be a well-formed response
/// with the query's id.
fn check_no_panic(input: &[u8], v: &DnsView) {
    let _ = Message::parse(input);
    if let Some(r) = answer(input, v) {
        let m = Message::parse(&r).unwrap_or_else(|e| panic!("unparseable response {e} to {input:02x?}: {r:02x?}"));
        assert!(m.header.has(flags::QR));
        assert_eq!(m.header.id.to_be_bytes(), [input[0], input[1]]);
    }
}

#[test]
fn fuzz_random_bytes() {
    let v = view().normalized();
    let mut rng = Rng(0x0123_4567_89AB_CDEF);
    for _ in 0..20_000 {
        let len = rng.below(300);
        let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if len >= 12 && rng.below(2) == 0 {
            // Make it look like a query more often: QR clear, opcode 0, one question.
            buf[2] &= 0x07;
            buf[4] = 0;
            buf[5] = 1;
        }
        check_no_panic(&buf, &v);
    }
}

#[test]
fn fuzz_mutated_queries() {
    let v = view().normalized();
    let seeds = [
        query(ACR, rtype::A),
        query("login.microsoftonline.com", rtype::AAAA),
        query_edns(ACR, rtype::A, 1232, 0),
        query_edns("loop1.example", rtype::ANY, 512, 0),
    ];
    let mut rng = Rng(42);
    for _ in 0..50_000 {
        let mut q = seeds[rng.below(seeds.len())].clone();
        for _ in 0..=rng.below(4) {
            match rng.below(5) {
                0 => {
                    let i = rng.below(q.len());
                    q[i] = rng.next() as u8;
                }
                1 => q.truncate(rng.below(q.len() + 1)),
                2 => {
                    let i = rng.below(q.len() + 1);
                    q.insert(i, rng.next() as u8);
                }
                3 => {
                    // A compression pointer somewhere.
                    let i = rng.below(q.len());
                    q[i] = 0xC0 | (rng.next() as u8 & 0x3F);
                }
                _ => {
                    let i = rng.below(q.len());
                    q[i] ^= 1 << rng.below(8);
                }
            }
            if q.is_empty() {
                break;
            }
        }
        check_no_panic(&q, &v);
    }
}

#[test]
fn view_normalization() {
    let mut v = DnsView::default();
    v.records.insert("MyAcr.AzureCR.io.".into(), vec![EP]);
    v.cnames.insert("Alias.Example.".into(), "MYACR.azurecr.io.".into());
    let n = v.normalized();
    assert_eq!(n.resolve("alias.example", rtype::A).1.last().unwrap().1, RData::A(EP));
    assert_eq!(normalize("A.B."), "a.b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_over_loopback_with_update() {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let server = DnsServer::start(sock, view()).unwrap();
    let addr = server.local_addr();
    let ask = move |name: &'static str, t: u16| {
        tokio::task::spawn_blocking(move || {
            let c = UdpSocket::bind("127.0.0.1:0").unwrap();
            lookup(&c, addr, name, t, Duration::from_secs(2)).unwrap()
        })
    };
    let m = ask(ACR, rtype::A).await.unwrap();
    assert_eq!(m.a_records(), vec![EP]);
    assert_eq!(ask("nope.example", rtype::A).await.unwrap().header.rcode(), rcode::NXDOMAIN);

    // The DNS view flips to the public answer (e.g. the VNet link was deleted).
    server.update(DnsView::new().with_a(ACR, [PUBLIC]));
    let m = ask(ACR, rtype::A).await.unwrap();
    assert_eq!(m.a_records(), vec![PUBLIC]);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(server.view().records.len(), 1);

    // Garbage does not kill the server.
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.send_to(&[1, 2, 3], addr).unwrap();
    c.send_to(&[0xff; 40], addr).unwrap();
    assert_eq!(ask(ACR, rtype::A).await.unwrap().a_records(), vec![PUBLIC]);
    assert!(server.queries() >= 4);

    // Dropping the server closes the socket: lookups then time out (nothing is listening... or the
    // kernel refuses: either way no answer).
    drop(server);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r = tokio::task::spawn_blocking(move || {
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        lookup(&c, addr, ACR, rtype::A, Duration::from_millis(300))
    })
    .await
    .unwrap();
    assert!(r.is_err());
}

#[test]
fn start_outside_runtime_is_an_error() {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    assert!(DnsServer::start(sock, DnsView::new()).is_err());
}
