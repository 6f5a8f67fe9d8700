//! Golden bytes for every tc builder, and parsing of captured kernel dumps.
//!
//! Requests were captured from iproute2 6.1's `tc` on Debian 12 with
//! `unshare -n strace -e trace=sendmsg -e write=all tc ...` (the request is
//! sent even where the kernel lacks the qdisc). `tc` numbered them all
//! 0x6b075254 in that run, so the builders here use the same seq.

use super::*;
use crate::frame::split;

const SEQ: u32 = 0x6b07_5254;

pub(crate) fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn plug40() -> (Handle, Handle) {
    (Handle::new(1, 4), Handle::new(0x40, 0))
}

// `tc qdisc add dev lo root handle 1: prio bands 4` sends the 20-byte
// tc_prio_qopt plus an empty 4-byte nest (`04 00 02 00`, iproute2's legacy
// TCA_PRIO_MQ encoding) that the kernel ignores; plugctl omits it. This is
// the capture with those 4 bytes removed and both lengths reduced by 4,
// i.e. docs/netlink-reference.md Appendix A "prio_create", kernel-verified on 6.1.
#[test]
fn prio_create() {
    let want = hex(
        "48000000240005065452076b00000000000000000100000000000100ffffffff00000000
                    090001007072696f00000000180002000400000001020202010200000101010101010101",
    );
    let got = new_qdisc(
        1,
        Handle::ROOT,
        Handle::new(1, 0),
        &QdiscKind::Prio(PrioOptions::with_bands(4)),
        Write::Create,
        SEQ,
    );
    assert_eq!(got, want);
}

// tc qdisc add dev lo parent 1:1 handle 10: pfifo limit 1000
#[test]
fn pfifo_create() {
    let want = hex("38000000240005065452076b0000000000000000010000000000100001000100000000000a000100706669666f00000008000200e8030000");
    let got = new_qdisc(
        1,
        Handle::new(1, 1),
        Handle::new(0x10, 0),
        &QdiscKind::Pfifo(Some(FifoOptions { limit: 1000 })),
        Write::Create,
        SEQ,
    );
    assert_eq!(got, want);
}

// tc qdisc add dev lo parent 1:4 handle 40: plug limit 1048576
#[test]
fn plug_create() {
    let want = hex("3c000000240005065452076b00000000000000000100000000004000040001000000000009000100706c7567000000000c0002000300000000001000");
    let (parent, handle) = plug40();
    let got = new_qdisc(
        1,
        parent,
        handle,
        &QdiscKind::Plug(Some(PlugOptions::create(1 << 20))),
        Write::Create,
        SEQ,
    );
    assert_eq!(got, want);
}

// tc qdisc change dev lo parent 1:4 handle 40: plug block
#[test]
fn plug_buffer() {
    let want = hex("3c000000240005005452076b00000000000000000100000000004000040001000000000009000100706c7567000000000c0002000000000000000000");
    let (parent, handle) = plug40();
    let got = new_qdisc(
        1,
        parent,
        handle,
        &QdiscKind::Plug(Some(PlugOptions::action(PlugAction::Buffer))),
        Write::Change,
        SEQ,
    );
    assert_eq!(got, want);
}

// tc qdisc change dev lo parent 1:4 handle 40: plug release_indefinite
#[test]
fn plug_release_indefinite() {
    let want = hex("3c000000240005005452076b00000000000000000100000000004000040001000000000009000100706c7567000000000c0002000200000000000000");
    let (parent, handle) = plug40();
    let got = new_qdisc(
        1,
        parent,
        handle,
        &QdiscKind::Plug(Some(PlugOptions::action(PlugAction::ReleaseIndefinite))),
        Write::Change,
        SEQ,
    );
    assert_eq!(got, want);
}

fn fw(protocol: u16, prio: u16, mask: Option<u32>) -> FwFilter {
    FwFilter {
        ifindex: 1,
        parent: Handle::new(1, 0),
        prio,
        protocol,
        mark: 1,
        options: FwOptions {
            classid: Handle::new(1, 4),
            mask,
        },
    }
}

// tc filter add dev lo parent 1: protocol ip prio 1 handle 1 fw classid 1:4
#[test]
fn fw_filter_ip() {
    let want = hex("380000002c0005065452076b00000000000000000100000001000000000001000800010007000100667700000c0002000800010004000100");
    assert_eq!(new_fw_filter(&fw(ETH_P_IP, 1, None), SEQ), want);
}

// tc filter add dev lo parent 1: protocol ipv6 prio 2 handle 1 fw classid 1:4
#[test]
fn fw_filter_ipv6() {
    let want = hex("380000002c0005065452076b000000000000000001000000010000000000010086dd020007000100667700000c0002000800010004000100");
    assert_eq!(new_fw_filter(&fw(ETH_P_IPV6, 2, None), SEQ), want);
}

// tc filter add dev lo parent 1: protocol ip prio 1 handle 1/0xff fw classid 1:4
#[test]
fn fw_filter_masked() {
    let want = hex("400000002c0005065452076b00000000000000000100000001000000000001000800010007000100667700001400020008000500ff0000000800010004000100");
    assert_eq!(new_fw_filter(&fw(ETH_P_IP, 1, Some(0xff)), SEQ), want);
}

// tc filter del dev lo parent 1: protocol ip prio 1 handle 1 fw
#[test]
fn fw_filter_delete() {
    let want = hex(
        "2c0000002d0005005452076b0000000000000000010000000100000000000100080001000700010066770000",
    );
    assert_eq!(del_fw_filter(&fw(ETH_P_IP, 1, None), SEQ), want);
}

// tc qdisc del dev lo root handle 1:
#[test]
fn qdisc_delete() {
    let want = hex("24000000250005005452076b00000000000000000100000000000100ffffffff00000000");
    assert_eq!(del_qdisc(1, Handle::ROOT, Handle::new(1, 0), SEQ), want);
}

// tc qdisc show
#[test]
fn qdisc_dump_request() {
    let want = hex("24000000260001035452076b000000000000000000000000000000000000000000000000");
    assert_eq!(dump_qdiscs(SEQ), want);
}

// tc filter show dev lo parent 1:
#[test]
fn filter_dump_request() {
    let want = hex("240000002e0001035452076b000000000000000001000000000000000000010000000000");
    assert_eq!(dump_filters(1, Handle::new(1, 0), SEQ), want);
}

// [CAPTURED kernel] dump entry for `plug 40:` holding one SYN, Debian 6.1
// (docs/netlink-reference.md §2.7): `tc -s qdisc show dev lo` under strace -e read=all.
#[test]
fn parses_plug_dump_entry() {
    let b = hex("94000000240002 00f4010000750000 00
        00000000 01000000 00004000 04000100 01000000
        09000100 706c7567 00000000
        05000c00 00000000
        30000700 14000100 00000000 00000000 00000000 00000000
        18000300 01000000 4a000000 00000000 00000000 00000000
        2c000300 00000000 00000000 00000000 00000000 00000000 00000000 00000000 01000000 4a000000 00000000");
    let msgs = split(&b).unwrap();
    let q = parse_qdisc(&msgs[0]).unwrap();
    assert_eq!(q.ifindex, 1);
    assert_eq!(q.handle, Handle::new(0x40, 0));
    assert_eq!(q.parent, Handle::new(1, 4));
    assert_eq!(q.kind, QdiscKind::Plug(None));
    assert_eq!(q.stats.qlen, 1);
    assert_eq!(q.stats.backlog, 74);
    assert_eq!(q.stats.drops, 0);
}

// [CAPTURED kernel] `prio 1:` dump entry, Debian 6.1 (docs/netlink-reference.md §2.6).
#[test]
fn parses_prio_dump_entry() {
    let b = hex("ac000000 24000200 532b056b cc000000
        00000000 01000000 00000100 ffffffff 02000000
        09000100 7072696f 00000000
        18000200 04000000 01020202 01020000 01010101 01010101
        05000c00 00000000
        30000700 14000100 00000000 00000000 00000000 00000000
        18000300 00000000 00000000 00000000 00000000 00000000
        2c000300 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000");
    let q = parse_qdisc(&split(&b).unwrap()[0]).unwrap();
    assert_eq!(q.handle, Handle::new(1, 0));
    assert_eq!(q.parent, Handle::ROOT);
    assert_eq!(q.kind, QdiscKind::Prio(PrioOptions::with_bands(4)));
}

// [CAPTURED kernel] `tc filter show dev lo` on 6.1 (docs/netlink-reference.md §5.4):
// the fw instance header entry, then the filter.
#[test]
fn parses_fw_filter_dump() {
    let b = hex("34000000 2c000200 532b056b c7000000
        00000000 01000000 00000000 00000100 08000100
        07000100 66770000 08000b00 00000000
        40000000 2c000200 532b056b c7000000
        00000000 01000000 01000000 00000100 08000100
        07000100 66770000 08000b00 00000000
        0c000200 08000100 04000100");
    let msgs = split(&b).unwrap();
    let header = parse_filter(&msgs[0]).unwrap();
    assert_eq!((header.handle, header.fw), (0, None));
    let f = parse_filter(&msgs[1]).unwrap();
    assert_eq!(f.prio, 1);
    assert_eq!(f.protocol, ETH_P_IP);
    assert_eq!(f.handle, 1);
    assert_eq!(f.kind, "fw");
    assert_eq!(
        f.fw,
        Some(FwOptions {
            classid: Handle::new(1, 4),
            mask: None
        })
    );
}

#[test]
fn options_round_trip() {
    let p = PrioOptions {
        bands: 7,
        priomap: [3; 16],
    };
    assert_eq!(PrioOptions::parse(&p.to_bytes()), Some(p));
    for a in [
        PlugAction::Buffer,
        PlugAction::ReleaseOne,
        PlugAction::ReleaseIndefinite,
        PlugAction::Limit,
    ] {
        let o = PlugOptions {
            action: a,
            limit: 12345,
        };
        assert_eq!(PlugOptions::parse(&o.to_bytes()), Some(o));
    }
    let f = FifoOptions { limit: 99 };
    assert_eq!(FifoOptions::parse(&f.to_bytes()), Some(f));
    for mask in [None, Some(0xff)] {
        let o = FwOptions {
            classid: Handle::new(1, 4),
            mask,
        };
        assert_eq!(FwOptions::parse(&o.to_bytes()), Some(o));
    }
    assert_eq!(PlugOptions::parse(&[9, 0, 0, 0, 0, 0, 0, 0]), None);
    assert_eq!(PrioOptions::parse(&[4, 0, 0, 0]), None);
}

#[test]
fn built_messages_parse_back() {
    let kinds = [
        QdiscKind::Prio(PrioOptions::with_bands(4)),
        QdiscKind::Pfifo(Some(FifoOptions { limit: 10 })),
        QdiscKind::Plug(Some(PlugOptions::create(4096))),
    ];
    for kind in kinds {
        let b = new_qdisc(
            3,
            Handle::new(1, 2),
            Handle::new(0x20, 0),
            &kind,
            Write::Create,
            9,
        );
        let q = parse_qdisc(&split(&b).unwrap()[0]).unwrap();
        assert_eq!(
            (q.ifindex, q.parent, q.handle, &q.kind),
            (3, Handle::new(1, 2), Handle::new(0x20, 0), &kind)
        );
    }
    let f = fw(ETH_P_IPV6, 2, Some(0xf));
    let b = new_fw_filter(&f, 1);
    let p = parse_filter(&split(&b).unwrap()[0]).unwrap();
    assert_eq!(
        (p.prio, p.protocol, p.handle, p.fw),
        (2, ETH_P_IPV6, 1, Some(f.options))
    );
}
