//! Golden-byte tests: builders against `docs/netlink-reference.md` Appendix A and against fresh
//! `nft` / kernel captures; parsers against real kernel replies.
//!
//! The mark immediate (`01 00 00 00`) is host-order, so these goldens assume a little-endian host.

use std::net::IpAddr;

use netlink_packet_core::NLM_F_ACK;

use super::consts::*;
use super::*;

pub(super) fn hex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0);
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Split concatenated netlink messages.
pub(super) fn split(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 16 <= bytes.len() {
        let len = u32::from_ne_bytes(bytes[off..off + 4].try_into().expect("4")) as usize;
        out.push(&bytes[off..off + len]);
        off += (len + 3) & !3;
    }
    assert_eq!(off, bytes.len());
    out
}

/// A copy of a captured message with another `nlmsg_flags` and `nlmsg_seq`.
pub(super) fn with_flags_seq(msg: &[u8], flags: u16, seq: u32) -> Vec<u8> {
    let mut m = msg.to_vec();
    m[6..8].copy_from_slice(&flags.to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    m
}

fn lb4() -> IpAddr {
    "169.254.255.254".parse().expect("v4")
}

fn lb6() -> IpAddr {
    "fd00::1".parse().expect("v6")
}

fn rule(addr: IpAddr, port: Option<u16>) -> MarkRule {
    MarkRule {
        addr,
        port,
        mark: 1,
    }
}

/// docs/netlink-reference.md Appendix A "nft setup batch (seq 1..5)", 720 bytes [HAND-BUILT, kernel-verified].
const APPENDIX_A_SETUP_BATCH: &str = concat!(
    "140000001000010001000000000000000000000a28000000000a05040200000000000000010000000c000100706c7567",
    "63746c00080002000000000054000000030a05040300000000000000010000000c000100706c756763746c000b000300",
    "6f757470757400000b00070066696c7465720000080005000000000114000480080001000000000308000200ffffff6a",
    "2c020000060a050c0400000000000000010000000c000100706c756763746c000b0002006f7574707574000000020480",
    "24000180090001006d6574610000000014000280080002000000001008000100000000012c00018008000100636d7000",
    "20000280080001000000000108000200000000000c0003800500010006000000340001800c0001007061796c6f616400",
    "2400028008000100000000010800020000000002080003000000000d08000400000000014c0001800c00010062697477",
    "697365003c00028008000100000000010800020000000001080006000000000008000300000000010c00048005000100",
    "120000000c00058005000100000000002c00018008000100636d70002000028008000100000000010800020000000000",
    "0c000380050001000200000024000180090001006d6574610000000014000280080002000000000f0800010000000001",
    "2c00018008000100636d700020000280080001000000000108000200000000000c000380050001000200000034000180",
    "0c0001007061796c6f616400240002800800010000000001080002000000000108000300000000100800040000000004",
    "2c00018008000100636d700020000280080001000000000108000200000000000c00038008000100a9fefffe2c000180",
    "0e000100696d6d6564696174650000001800028008000100000000010c00028008000100010000002400018009000100",
    "6d657461000000001400028008000200000000030800030000000001140000001100050005000000000000000000000a",
);

/// docs/netlink-reference.md Appendix A "nft delete batch (seq 1..3)", 72 bytes.
const APPENDIX_A_DELETE_BATCH: &str = concat!(
    "140000001000010001000000000000000000000a20000000020a05000200000000000000010000000c000100706c7567",
    "63746c00140000001100050003000000000000000000000a",
);

/// docs/netlink-reference.md Appendix A "nft replace batch (seq 1..7)", 792 bytes.
const APPENDIX_A_REPLACE_BATCH: &str = concat!(
    "140000001000010001000000000000000000000a28000000000a05040200000000000000010000000c000100706c7567",
    "63746c00080002000000000020000000020a05000300000000000000010000000c000100706c756763746c0028000000",
    "000a05040400000000000000010000000c000100706c756763746c00080002000000000054000000030a050405000000",
    "00000000010000000c000100706c756763746c000b0003006f757470757400000b00070066696c746572000008000500",
    "0000000114000480080001000000000308000200ffffff6a2c020000060a050c0600000000000000010000000c000100",
    "706c756763746c000b0002006f757470757400000002048024000180090001006d657461000000001400028008000200",
    "0000001008000100000000012c00018008000100636d700020000280080001000000000108000200000000000c000380",
    "0500010006000000340001800c0001007061796c6f616400240002800800010000000001080002000000000208000300",
    "0000000d08000400000000014c0001800c00010062697477697365003c00028008000100000000010800020000000001",
    "080006000000000008000300000000010c00048005000100120000000c00058005000100000000002c00018008000100",
    "636d700020000280080001000000000108000200000000000c000380050001000200000024000180090001006d657461",
    "0000000014000280080002000000000f08000100000000012c00018008000100636d7000200002800800010000000001",
    "08000200000000000c0003800500010002000000340001800c0001007061796c6f616400240002800800010000000001",
    "0800020000000001080003000000001008000400000000042c00018008000100636d7000200002800800010000000001",
    "08000200000000000c00038008000100a9fefffe2c0001800e000100696d6d6564696174650000001800028008000100",
    "000000010c000280080001000100000024000180090001006d6574610000000014000280080002000000000308000300",
    "00000001140000001100050007000000000000000000000a",
);

/// docs/netlink-reference.md Appendix A "NFT_MSG_NEWRULE ip6 daddr fd00::1 (seq=4)", 568 bytes.
const APPENDIX_A_NEWRULE_IP6: &str = concat!(
    "38020000060a050c0400000000000000010000000c000100706c756763746c000b0002006f757470757400000c020480",
    "24000180090001006d6574610000000014000280080002000000001008000100000000012c00018008000100636d7000",
    "20000280080001000000000108000200000000000c0003800500010006000000340001800c0001007061796c6f616400",
    "2400028008000100000000010800020000000002080003000000000d08000400000000014c0001800c00010062697477",
    "697365003c00028008000100000000010800020000000001080006000000000008000300000000010c00048005000100",
    "120000000c00058005000100000000002c00018008000100636d70002000028008000100000000010800020000000000",
    "0c000380050001000200000024000180090001006d6574610000000014000280080002000000000f0800010000000001",
    "2c00018008000100636d700020000280080001000000000108000200000000000c000380050001000a00000034000180",
    "0c0001007061796c6f616400240002800800010000000001080002000000000108000300000000180800040000000010",
    "3800018008000100636d70002c000280080001000000000108000200000000001800038014000100fd00000000000000",
    "00000000000000012c0001800e000100696d6d6564696174650000001800028008000100000000010c00028008000100",
    "0100000024000180090001006d657461000000001400028008000200000000030800030000000001",
);

/// [CAPTURED tool] nft 1.0.6, host kernel 6.18, private netns (flags REQUEST|CREATE|APPEND, seq 1):
///
/// unshare -n sh -c 'nft add table inet plugctl; nft add chain inet plugctl output "{ type filter hook output priority mangle; policy accept; }"; \
///   strace -f -xx -e trace=sendmsg -e write=all -s 8192 nft add rule inet plugctl output \
///   tcp flags \& \(syn\|ack\) == syn ip daddr 169.254.255.254 tcp dport 80 meta mark set 1'
///
/// (the NEWRULE message out of the BATCH_BEGIN/NEWRULE/BATCH_END datagram; the hex dump of
/// `-e write=all` was converted to a flat string).
const CAPTURED_NEWRULE_DPORT4: &str = concat!(
    "8c020000060a010c0100000000000000010000000c000100706c756763746c000b0002006f7574707574000060020480",
    "24000180090001006d6574610000000014000280080002000000001008000100000000012c00018008000100636d7000",
    "20000280080001000000000108000200000000000c0003800500010006000000340001800c0001007061796c6f616400",
    "2400028008000100000000010800020000000002080003000000000d08000400000000014c0001800c00010062697477",
    "697365003c00028008000100000000010800020000000001080006000000000008000300000000010c00048005000100",
    "120000000c00058005000100000000002c00018008000100636d70002000028008000100000000010800020000000000",
    "0c000380050001000200000024000180090001006d6574610000000014000280080002000000000f0800010000000001",
    "2c00018008000100636d700020000280080001000000000108000200000000000c000380050001000200000034000180",
    "0c0001007061796c6f616400240002800800010000000001080002000000000108000300000000100800040000000004",
    "2c00018008000100636d700020000280080001000000000108000200000000000c00038008000100a9fefffe34000180",
    "0c0001007061796c6f616400240002800800010000000001080002000000000208000300000000020800040000000002",
    "2c00018008000100636d700020000280080001000000000108000200000000000c00038006000100005000002c000180",
    "0e000100696d6d6564696174650000001800028008000100000000010c00028008000100010000002400018009000100",
    "6d657461000000001400028008000200000000030800030000000001",
);

/// [CAPTURED tool] as CAPTURED_NEWRULE_DPORT4, with
/// `... ip6 daddr fd00::1 tcp dport 443 meta mark set 1`.
const CAPTURED_NEWRULE_DPORT6: &str = concat!(
    "98020000060a010c0100000000000000010000000c000100706c756763746c000b0002006f757470757400006c020480",
    "24000180090001006d6574610000000014000280080002000000001008000100000000012c00018008000100636d7000",
    "20000280080001000000000108000200000000000c0003800500010006000000340001800c0001007061796c6f616400",
    "2400028008000100000000010800020000000002080003000000000d08000400000000014c0001800c00010062697477",
    "697365003c00028008000100000000010800020000000001080006000000000008000300000000010c00048005000100",
    "120000000c00058005000100000000002c00018008000100636d70002000028008000100000000010800020000000000",
    "0c000380050001000200000024000180090001006d6574610000000014000280080002000000000f0800010000000001",
    "2c00018008000100636d700020000280080001000000000108000200000000000c000380050001000a00000034000180",
    "0c0001007061796c6f616400240002800800010000000001080002000000000108000300000000180800040000000010",
    "3800018008000100636d70002c000280080001000000000108000200000000001800038014000100fd00000000000000",
    "0000000000000001340001800c0001007061796c6f616400240002800800010000000001080002000000000208000300",
    "0000000208000400000000022c00018008000100636d700020000280080001000000000108000200000000000c000380",
    "0600010001bb00002c0001800e000100696d6d6564696174650000001800028008000100000000010c00028008000100",
    "0100000024000180090001006d657461000000001400028008000200000000030800030000000001",
);

/// [CAPTURED tool] nft 1.0.6 / kernel 6.18, private netns holding table inet plugctl, chain output
/// (filter, output, mangle, policy accept) and the rules, in this order (handles 2, 3, 4):
///   `... ip daddr 169.254.255.254 tcp dport 80 ...`, `... ip6 daddr fd00::1 tcp dport 443 ...`,
///   `... ip daddr 169.254.255.254 ...` (all `tcp flags & (syn|ack) == syn ... meta mark set 1`), then:
///   strace -f -xx -e trace=sendto,sendmsg,recvmsg -e write=all -e read=all -s 8192 \
///     nft list table inet plugctl
///
/// The NFT_MSG_GETTABLE request nft sent (seq 0).
const CAPTURED_GETTABLE_REQUEST: &str =
    "20000000010a05000000000000000000010000000c000100706c756763746c00";

/// [CAPTURED tool] nft 1.0.6 / kernel 6.18, private netns holding table inet plugctl, chain output
/// (filter, output, mangle, policy accept) and the rules, in this order (handles 2, 3, 4):
///   `... ip daddr 169.254.255.254 tcp dport 80 ...`, `... ip6 daddr fd00::1 tcp dport 443 ...`,
///   `... ip daddr 169.254.255.254 ...` (all `tcp flags & (syn|ack) == syn ... meta mark set 1`), then:
///   strace -f -xx -e trace=sendto,sendmsg,recvmsg -e write=all -e read=all -s 8192 \
///     nft list table inet plugctl
///
/// The NFT_MSG_GETRULE dump request nft sent (seq 0).
const CAPTURED_GETRULE_REQUEST: &str =
    "20000000070a01030000000000000000010000000c000100706c756763746c00";

/// [CAPTURED kernel] nft 1.0.6 / kernel 6.18, private netns holding table inet plugctl, chain output
/// (filter, output, mangle, policy accept) and the rules, in this order (handles 2, 3, 4):
///   `... ip daddr 169.254.255.254 tcp dport 80 ...`, `... ip6 daddr fd00::1 tcp dport 443 ...`,
///   `... ip daddr 169.254.255.254 ...` (all `tcp flags & (syn|ack) == syn ... meta mark set 1`), then:
///   strace -f -xx -e trace=sendto,sendmsg,recvmsg -e write=all -e read=all -s 8192 \
///     nft list table inet plugctl
///
/// Reply to the GETTABLE (whole message, nlmsghdr included).
const CAPTURED_NEWTABLE_REPLY: &str = concat!(
    "3c000000000a000000000000721c0000010000060c000100706c756763746c0008000300000000010c00040000000000",
    "000000010800020000000000",
);

/// [CAPTURED kernel] nft 1.0.6 / kernel 6.18, private netns holding table inet plugctl, chain output
/// (filter, output, mangle, policy accept) and the rules, in this order (handles 2, 3, 4):
///   `... ip daddr 169.254.255.254 tcp dport 80 ...`, `... ip6 daddr fd00::1 tcp dport 443 ...`,
///   `... ip daddr 169.254.255.254 ...` (all `tcp flags & (syn|ack) == syn ... meta mark set 1`), then:
///   strace -f -xx -e trace=sendto,sendmsg,recvmsg -e write=all -e read=all -s 8192 \
///     nft list table inet plugctl
///
/// Entry of the GETCHAIN dump (whole message).
const CAPTURED_NEWCHAIN_REPLY: &str = concat!(
    "70000000030a020000000000721c0000010000060c000100706c756763746c000b0003006f757470757400000c000200",
    "000000000000000114000400080001000000000308000200ffffff6a08000500000000010b00070066696c7465720000",
    "08000a00000000010800060000000003",
);

/// [CAPTURED kernel] nft 1.0.6 / kernel 6.18, private netns holding table inet plugctl, chain output
/// (filter, output, mangle, policy accept) and the rules, in this order (handles 2, 3, 4):
///   `... ip daddr 169.254.255.254 tcp dport 80 ...`, `... ip6 daddr fd00::1 tcp dport 443 ...`,
///   `... ip daddr 169.254.255.254 ...` (all `tcp flags & (syn|ack) == syn ... meta mark set 1`), then:
///   strace -f -xx -e trace=sendto,sendmsg,recvmsg -e write=all -e read=all -s 8192 \
///     nft list table inet plugctl
///
/// GETRULE dump entry 1 of 3 (whole message; no NLA_F_NESTED, bitwise as SREG DREG LEN OP MASK XOR).
const CAPTURED_RULE_DUMP_1: &str = concat!(
    "98020000060a020800000000721c0000010000060c000100706c756763746c000b0002006f757470757400000c000300",
    "00000000000000026002040024000100090001006d657461000000001400020008000200000000100800010000000001",
    "2c00010008000100636d700020000200080001000000000108000200000000000c000300050001000600000034000100",
    "0c0001007061796c6f6164002400020008000100000000010800020000000002080003000000000d0800040000000001",
    "4c0001000c00010062697477697365003c00020008000100000000010800020000000001080003000000000108000600",
    "000000000c00040005000100120000000c00050005000100000000002c00010008000100636d70002000020008000100",
    "0000000108000200000000000c000300050001000200000024000100090001006d657461000000001400020008000200",
    "0000000f08000100000000012c00010008000100636d700020000200080001000000000108000200000000000c000300",
    "0500010002000000340001000c0001007061796c6f616400240002000800010000000001080002000000000108000300",
    "0000001008000400000000042c00010008000100636d700020000200080001000000000108000200000000000c000300",
    "08000100a9fefffe340001000c0001007061796c6f616400240002000800010000000001080002000000000208000300",
    "0000000208000400000000022c00010008000100636d700020000200080001000000000108000200000000000c000300",
    "06000100005000002c0001000e000100696d6d6564696174650000001800020008000100000000010c00020008000100",
    "0100000024000100090001006d657461000000001400020008000200000000030800030000000001",
);

/// [CAPTURED kernel] GETRULE dump entry 2 of 3, same capture as CAPTURED_RULE_DUMP_1.
const CAPTURED_RULE_DUMP_2: &str = concat!(
    "b0020000060a020800000000721c0000010000060c000100706c756763746c000b0002006f757470757400000c000300",
    "00000000000000030c00060000000000000000026c02040024000100090001006d657461000000001400020008000200",
    "0000001008000100000000012c00010008000100636d700020000200080001000000000108000200000000000c000300",
    "0500010006000000340001000c0001007061796c6f616400240002000800010000000001080002000000000208000300",
    "0000000d08000400000000014c0001000c00010062697477697365003c00020008000100000000010800020000000001",
    "080003000000000108000600000000000c00040005000100120000000c00050005000100000000002c00010008000100",
    "636d700020000200080001000000000108000200000000000c000300050001000200000024000100090001006d657461",
    "0000000014000200080002000000000f08000100000000012c00010008000100636d7000200002000800010000000001",
    "08000200000000000c000300050001000a000000340001000c0001007061796c6f616400240002000800010000000001",
    "0800020000000001080003000000001808000400000000103800010008000100636d70002c0002000800010000000001",
    "08000200000000001800030014000100fd000000000000000000000000000001340001000c0001007061796c6f616400",
    "2400020008000100000000010800020000000002080003000000000208000400000000022c00010008000100636d7000",
    "20000200080001000000000108000200000000000c0003000600010001bb00002c0001000e000100696d6d6564696174",
    "650000001800020008000100000000010c000200080001000100000024000100090001006d6574610000000014000200",
    "08000200000000030800030000000001",
);

/// [CAPTURED kernel] GETRULE dump entry 3 of 3, same capture as CAPTURED_RULE_DUMP_1.
const CAPTURED_RULE_DUMP_3: &str = concat!(
    "44020000060a020800000000721c0000010000060c000100706c756763746c000b0002006f757470757400000c000300",
    "00000000000000040c00060000000000000000030002040024000100090001006d657461000000001400020008000200",
    "0000001008000100000000012c00010008000100636d700020000200080001000000000108000200000000000c000300",
    "0500010006000000340001000c0001007061796c6f616400240002000800010000000001080002000000000208000300",
    "0000000d08000400000000014c0001000c00010062697477697365003c00020008000100000000010800020000000001",
    "080003000000000108000600000000000c00040005000100120000000c00050005000100000000002c00010008000100",
    "636d700020000200080001000000000108000200000000000c000300050001000200000024000100090001006d657461",
    "0000000014000200080002000000000f08000100000000012c00010008000100636d7000200002000800010000000001",
    "08000200000000000c0003000500010002000000340001000c0001007061796c6f616400240002000800010000000001",
    "0800020000000001080003000000001008000400000000042c00010008000100636d7000200002000800010000000001",
    "08000200000000000c00030008000100a9fefffe2c0001000e000100696d6d6564696174650000001800020008000100",
    "000000010c000200080001000100000024000100090001006d6574610000000014000200080002000000000308000300",
    "00000001",
);

#[test]
fn setup_batch_matches_appendix_a() {
    // The plain (non-replace) setup batch, assembled from the same message builders.
    let r = rule(lb4(), None);
    let mut b = batch::batch_begin(1).expect("begin");
    b.extend(batch::new_table("plugctl", 2).expect("table"));
    b.extend(batch::new_chain("plugctl", "output", 3).expect("chain"));
    b.extend(batch::new_rule("plugctl", "output", &Rule::Mark(r), None, 4).expect("rule"));
    b.extend(batch::batch_end(5).expect("end"));
    assert_eq!(b, hex(APPENDIX_A_SETUP_BATCH));
}

#[test]
fn replace_batch_matches_appendix_a() {
    let rules = [Rule::Mark(rule(lb4(), None))];
    let b = install_batch(&Ruleset::new("plugctl", "output", &rules), 1).expect("batch");
    assert_eq!(b.bytes, hex(APPENDIX_A_REPLACE_BATCH));
    assert_eq!(b.seqs, 1..=7);
    let seqs: Vec<u32> = split(&b.bytes)
        .iter()
        .map(|m| u32::from_ne_bytes(m[8..12].try_into().expect("4")))
        .collect();
    assert_eq!(seqs, (1..=7).collect::<Vec<_>>());
}

#[test]
fn replace_batch_with_several_rules() {
    let rules = [rule(lb4(), None), rule(lb6(), None), rule(lb4(), Some(80))].map(Rule::Mark);
    let b = install_batch(&Ruleset::new("plugctl", "output", &rules), 100).expect("batch");
    assert_eq!(b.seqs, 100..=108);
    let msgs = split(&b.bytes);
    let types: Vec<u16> = msgs
        .iter()
        .map(|m| u16::from_ne_bytes(m[4..6].try_into().expect("2")))
        .collect();
    assert_eq!(
        types,
        [
            NFNL_MSG_BATCH_BEGIN,
            NFT_MSG_NEWTABLE,
            NFT_MSG_DELTABLE,
            NFT_MSG_NEWTABLE,
            NFT_MSG_NEWCHAIN,
            NFT_MSG_NEWRULE,
            NFT_MSG_NEWRULE,
            NFT_MSG_NEWRULE,
            NFNL_MSG_BATCH_END
        ]
    );
    // The v6 rule is Appendix A's ip6 NEWRULE with another seq.
    assert_eq!(
        msgs[6],
        with_flags_seq(&hex(APPENDIX_A_NEWRULE_IP6), 0x0c05, 106)
    );
    // Every NEW/DEL and the END ask for an ACK; BEGIN does not.
    for (m, t) in msgs.iter().zip(types) {
        let flags = u16::from_ne_bytes(m[6..8].try_into().expect("2"));
        assert_eq!(flags & NLM_F_ACK != 0, t != NFNL_MSG_BATCH_BEGIN);
    }
}

#[test]
fn delete_batch_matches_appendix_a() {
    let b = delete_batch("plugctl", 1).expect("batch");
    assert_eq!(b.bytes, hex(APPENDIX_A_DELETE_BATCH));
    assert_eq!(b.seqs, 1..=3);
}

#[test]
fn newrule_ip6_matches_appendix_a() {
    let m = batch::new_rule("plugctl", "output", &Rule::Mark(rule(lb6(), None)), None, 4)
        .expect("rule");
    assert_eq!(m, hex(APPENDIX_A_NEWRULE_IP6));
}

#[test]
fn newrule_dport_matches_nft_capture() {
    // nft sends REQUEST|CREATE|APPEND with seq 1; we add NLM_F_ACK.
    let m = batch::new_rule(
        "plugctl",
        "output",
        &Rule::Mark(rule(lb4(), Some(80))),
        None,
        1,
    )
    .expect("rule");
    assert_eq!(m, with_flags_seq(&hex(CAPTURED_NEWRULE_DPORT4), 0x0c05, 1));
    let m = batch::new_rule(
        "plugctl",
        "output",
        &Rule::Mark(rule(lb6(), Some(443))),
        None,
        1,
    )
    .expect("rule");
    assert_eq!(m, with_flags_seq(&hex(CAPTURED_NEWRULE_DPORT6), 0x0c05, 1));
}

#[test]
fn get_requests_match_nft_capture() {
    assert_eq!(
        get_table_request("plugctl", 0).expect("req"),
        hex(CAPTURED_GETTABLE_REQUEST)
    );
    assert_eq!(
        get_rules_request("plugctl", 0).expect("req"),
        hex(CAPTURED_GETRULE_REQUEST)
    );
    let r = get_rules_request("plugctl", 42).expect("req");
    assert_eq!(r, with_flags_seq(&hex(CAPTURED_GETRULE_REQUEST), 0x301, 42));
}

#[test]
fn parse_kernel_rule_dump() {
    let expect = [
        (2, rule(lb4(), Some(80)), CAPTURED_RULE_DUMP_1),
        (3, rule(lb6(), Some(443)), CAPTURED_RULE_DUMP_2),
        (4, rule(lb4(), None), CAPTURED_RULE_DUMP_3),
    ];
    for (handle, r, golden) in expect {
        let msg = hex(golden);
        assert_eq!(u16::from_ne_bytes([msg[4], msg[5]]), NFT_MSG_NEWRULE);
        let d = parse_rule(&msg[16..]).expect("parse");
        assert_eq!(d.family, NFPROTO_INET);
        assert_eq!(d.table, "plugctl");
        assert_eq!(d.chain, "output");
        assert_eq!(d.handle, handle);
        assert_eq!(d.exprs, r.expressions());
        assert_eq!(MarkRule::from_expressions(&d.exprs), Some(r));
    }
}

#[test]
fn parse_own_requests() {
    // Our own request payloads parse back (NLA_F_NESTED set, bitwise in nft's order).
    let rules = [rule(lb4(), Some(8080)), rule(lb6(), None)];
    let wrapped = rules.map(Rule::Mark);
    let b = install_batch(&Ruleset::new("plugctl", "output", &wrapped), 1).expect("batch");
    let msgs = split(&b.bytes);
    for (m, r) in msgs[5..7].iter().zip(rules) {
        // A request has no handle: parse_rule insists on one.
        assert!(matches!(
            parse_rule(&m[16..]),
            Err(NftError::MissingAttr("NFTA_RULE_HANDLE"))
        ));
        let (_, attrs) = wire::Nfgenmsg::parse(&m[16..]).expect("nfgenmsg");
        let e = wire::find(&attrs, NFTA_RULE_EXPRESSIONS).expect("exprs");
        let exprs = expr::parse_expressions(e.value()).expect("parse");
        assert_eq!(MarkRule::from_expressions(&exprs), Some(r));
    }
}

// The table and chain replies are no rules: parse_rule must say so, not panic.
#[test]
fn parsers_never_panic_on_garbage() {
    for golden in [
        CAPTURED_RULE_DUMP_1,
        CAPTURED_NEWTABLE_REPLY,
        CAPTURED_NEWCHAIN_REPLY,
    ] {
        let msg = hex(golden);
        let p = &msg[16..];
        for cut in 0..p.len() {
            let _ = parse_rule(&p[..cut]);
        }
        for i in 0..p.len() {
            for v in [0u8, 1, 2, 3, 4, 5, 0x80, 0xff] {
                let mut b = p.to_vec();
                b[i] = v;
                let _ = parse_rule(&b);
            }
        }
    }
    assert!(matches!(parse_rule(&[1, 0]), Err(NftError::Truncated(2))));
}

#[test]
fn names_are_validated() {
    assert!(matches!(delete_batch("", 1), Err(NftError::InvalidName(_))));
    assert!(matches!(
        get_table_request("a\0b", 1),
        Err(NftError::InvalidName(_))
    ));
    let long = "x".repeat(256);
    assert!(matches!(
        get_rules_request(&long, 1),
        Err(NftError::InvalidName(_))
    ));
    assert!(get_rules_request(&long[..255], 1).is_ok());
    assert!(matches!(
        delete_batch("plugctl", u32::MAX - 1),
        Err(NftError::SeqOverflow(_))
    ));
    assert_eq!(
        delete_batch("plugctl", u32::MAX - 2).expect("fits").seqs,
        u32::MAX - 2..=u32::MAX
    );
}
