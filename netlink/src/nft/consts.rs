//! nf_tables / nfnetlink constants (uapi `linux/netfilter/nfnetlink.h`, `nf_tables.h`;
//! `docs/netlink-reference.md` Appendix B).
//!
//! The `NFT_MSG_*` constants here are full `nlmsg_type` values
//! (`NFNL_SUBSYS_NFTABLES << 8 | msg`), i.e. what a reply's `nlmsghdr.nlmsg_type` holds, so a
//! receive loop can dispatch on them directly.

/// Netlink protocol number of nfnetlink (`socket(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER)`).
pub const NETLINK_NETFILTER: i32 = 12;

/// nfnetlink protocol version carried in `nfgenmsg.version`.
pub const NFNETLINK_V0: u8 = 0;
/// nfnetlink subsystem id of nf_tables (high byte of `nlmsg_type`, `res_id` of batch markers).
pub const NFNL_SUBSYS_NFTABLES: u8 = 10;

/// `nlmsg_type` of the batch start marker.
pub const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
/// `nlmsg_type` of the batch end marker.
pub const NFNL_MSG_BATCH_END: u16 = 0x11;

const fn nft_type(msg: u8) -> u16 {
    ((NFNL_SUBSYS_NFTABLES as u16) << 8) | msg as u16
}

/// `nlmsg_type` of NFT_MSG_NEWTABLE (request, and the type of table replies).
pub const NFT_MSG_NEWTABLE: u16 = nft_type(0);
/// `nlmsg_type` of NFT_MSG_GETTABLE.
pub const NFT_MSG_GETTABLE: u16 = nft_type(1);
/// `nlmsg_type` of NFT_MSG_DELTABLE.
pub const NFT_MSG_DELTABLE: u16 = nft_type(2);
/// `nlmsg_type` of NFT_MSG_NEWCHAIN (request, and the type of chain replies).
pub const NFT_MSG_NEWCHAIN: u16 = nft_type(3);
/// `nlmsg_type` of NFT_MSG_GETCHAIN.
pub const NFT_MSG_GETCHAIN: u16 = nft_type(4);
/// `nlmsg_type` of NFT_MSG_DELCHAIN.
pub const NFT_MSG_DELCHAIN: u16 = nft_type(5);
/// `nlmsg_type` of NFT_MSG_NEWRULE (request, and the type of rule dump entries).
pub const NFT_MSG_NEWRULE: u16 = nft_type(6);
/// `nlmsg_type` of NFT_MSG_GETRULE.
pub const NFT_MSG_GETRULE: u16 = nft_type(7);
/// `nlmsg_type` of NFT_MSG_DELRULE.
pub const NFT_MSG_DELRULE: u16 = nft_type(8);
/// `nlmsg_type` of NFT_MSG_NEWSET (request, and the type of set replies).
pub const NFT_MSG_NEWSET: u16 = nft_type(9);
/// `nlmsg_type` of NFT_MSG_GETSET.
pub const NFT_MSG_GETSET: u16 = nft_type(10);
/// `nlmsg_type` of NFT_MSG_DELSET.
pub const NFT_MSG_DELSET: u16 = nft_type(11);
/// `nlmsg_type` of NFT_MSG_NEWSETELEM (request, and the type of element dump entries).
pub const NFT_MSG_NEWSETELEM: u16 = nft_type(12);
/// `nlmsg_type` of NFT_MSG_GETSETELEM.
pub const NFT_MSG_GETSETELEM: u16 = nft_type(13);
/// `nlmsg_type` of NFT_MSG_DELSETELEM.
pub const NFT_MSG_DELSETELEM: u16 = nft_type(14);
/// `nlmsg_type` of NFT_MSG_NEWGEN (reply to GETGEN, also sent after each commit to listeners).
pub const NFT_MSG_NEWGEN: u16 = nft_type(15);
/// `nlmsg_type` of NFT_MSG_GETGEN.
pub const NFT_MSG_GETGEN: u16 = nft_type(16);
/// `nlmsg_type` of NFT_MSG_DESTROYTABLE (Linux 6.3+: like DELTABLE but no -ENOENT).
pub const NFT_MSG_DESTROYTABLE: u16 = nft_type(26);

/// `nfgen_family` of batch markers / family-less requests.
pub const NFPROTO_UNSPEC: u8 = 0;
/// `nfgen_family` of the `inet` (IPv4 + IPv6) table family.
pub const NFPROTO_INET: u8 = 1;
/// `meta nfproto` value / table family `ip`.
pub const NFPROTO_IPV4: u8 = 2;
/// `meta nfproto` value / table family `ip6`.
pub const NFPROTO_IPV6: u8 = 10;

/// `meta l4proto` value of TCP.
pub const IPPROTO_TCP: u8 = 6;

/// Longest table/chain name including the terminating NUL (`NFT_NAME_MAXLEN`).
pub const NFT_NAME_MAXLEN: usize = 256;
/// Longest value in an `NFTA_DATA_VALUE` (`NFT_DATA_VALUE_MAXLEN`).
pub const NFT_DATA_VALUE_MAXLEN: usize = 64;

/// Table attribute: name (string).
pub const NFTA_TABLE_NAME: u16 = 1;
/// Table attribute: flags (be32, `NFT_TABLE_F_*`).
pub const NFTA_TABLE_FLAGS: u16 = 2;
/// Table attribute: number of chains etc. using it (be32, replies).
pub const NFTA_TABLE_USE: u16 = 3;
/// Table attribute: handle (be64, replies).
pub const NFTA_TABLE_HANDLE: u16 = 4;
/// Table attribute: owning netlink port id (be32, replies, owned tables only).
pub const NFTA_TABLE_OWNER: u16 = 7;
/// Table flag: dormant (hooks unregistered).
pub const NFT_TABLE_F_DORMANT: u32 = 0x1;
/// Table flag: owned by the creating netlink socket, deleted when it closes (Linux 5.12+).
pub const NFT_TABLE_F_OWNER: u32 = 0x2;
/// Table flag: an owned table survives its owner (Linux 6.9+).
pub const NFT_TABLE_F_PERSIST: u32 = 0x4;

/// Chain attribute: table name (string).
pub const NFTA_CHAIN_TABLE: u16 = 1;
/// Chain attribute: handle (be64).
pub const NFTA_CHAIN_HANDLE: u16 = 2;
/// Chain attribute: name (string).
pub const NFTA_CHAIN_NAME: u16 = 3;
/// Chain attribute: hook (nest of `NFTA_HOOK_*`).
pub const NFTA_CHAIN_HOOK: u16 = 4;
/// Chain attribute: policy (be32 verdict, base chains).
pub const NFTA_CHAIN_POLICY: u16 = 5;
/// Chain attribute: use count (be32, replies).
pub const NFTA_CHAIN_USE: u16 = 6;
/// Chain attribute: type (string: "filter", "route", "nat").
pub const NFTA_CHAIN_TYPE: u16 = 7;
/// Chain attribute: flags (be32, replies: `NFT_CHAIN_BASE` = 1).
pub const NFTA_CHAIN_FLAGS: u16 = 10;
/// Hook attribute: hook number (be32).
pub const NFTA_HOOK_HOOKNUM: u16 = 1;
/// Hook attribute: priority (be32, signed).
pub const NFTA_HOOK_PRIORITY: u16 = 2;
/// Hook number of the local-out (output) hook.
pub const NF_INET_LOCAL_OUT: u32 = 3;
/// Priority name `mangle` (-150).
pub const NF_IP_PRI_MANGLE: i32 = -150;
/// Verdict / policy: drop.
pub const NF_DROP: u32 = 0;
/// Verdict / policy: accept.
pub const NF_ACCEPT: u32 = 1;

/// Rule attribute: table name (string).
pub const NFTA_RULE_TABLE: u16 = 1;
/// Rule attribute: chain name (string).
pub const NFTA_RULE_CHAIN: u16 = 2;
/// Rule attribute: handle (be64).
pub const NFTA_RULE_HANDLE: u16 = 3;
/// Rule attribute: expressions (nest of `NFTA_LIST_ELEM`).
pub const NFTA_RULE_EXPRESSIONS: u16 = 4;
/// Rule attribute: position (be64 handle; dumps carry the previous rule's handle).
pub const NFTA_RULE_POSITION: u16 = 6;

/// Set attribute: table name (string).
pub const NFTA_SET_TABLE: u16 = 1;
/// Set attribute: set name (string).
pub const NFTA_SET_NAME: u16 = 2;
/// Set attribute: flags (be32, `NFT_SET_*`).
pub const NFTA_SET_FLAGS: u16 = 3;
/// Set attribute: key type (be32; nft's datatype id, `a << 6 | b` for a concatenation).
pub const NFTA_SET_KEY_TYPE: u16 = 4;
/// Set attribute: key length in bytes (be32; each concatenated field padded to 4).
pub const NFTA_SET_KEY_LEN: u16 = 5;
/// Set attribute: id naming the set inside one batch (be32).
pub const NFTA_SET_ID: u16 = 10;
/// Set attribute: default element timeout (be64 ms).
pub const NFTA_SET_TIMEOUT: u16 = 11;
/// Set attribute: nft's user data (opaque TLVs; how `nft list` prints the key).
pub const NFTA_SET_USERDATA: u16 = 13;
/// Set attribute: handle (be64, replies).
pub const NFTA_SET_HANDLE: u16 = 16;
/// Set flag: elements carry a timeout.
pub const NFT_SET_TIMEOUT: u32 = 0x10;
/// Set flag: the key is a concatenation.
pub const NFT_SET_CONCAT: u32 = 0x80;

/// Set element list attribute: table name (string).
pub const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
/// Set element list attribute: set name (string).
pub const NFTA_SET_ELEM_LIST_SET: u16 = 2;
/// Set element list attribute: the elements (nest of `NFTA_LIST_ELEM`).
pub const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
/// Set element list attribute: set id of a set created in the same batch (be32).
pub const NFTA_SET_ELEM_LIST_SET_ID: u16 = 4;
/// Set element attribute: key (data nest).
pub const NFTA_SET_ELEM_KEY: u16 = 1;
/// Set element attribute: flags (be32).
pub const NFTA_SET_ELEM_FLAGS: u16 = 3;
/// Set element attribute: timeout (be64 ms).
pub const NFTA_SET_ELEM_TIMEOUT: u16 = 4;
/// Set element attribute: time left before it expires (be64 ms, replies).
pub const NFTA_SET_ELEM_EXPIRATION: u16 = 5;

/// lookup: set name (string).
pub const NFTA_LOOKUP_SET: u16 = 1;
/// lookup: source register (the key).
pub const NFTA_LOOKUP_SREG: u16 = 2;
/// lookup: id of a set created in the same batch (be32, requests only).
pub const NFTA_LOOKUP_SET_ID: u16 = 4;
/// lookup: flags (be32; `NFT_LOOKUP_F_INV` = 1 inverts the match).
pub const NFTA_LOOKUP_FLAGS: u16 = 5;

/// nft datatype id of `ipv4_addr`.
pub const NFT_TYPE_IPV4_ADDR: u32 = 7;
/// nft datatype id of `ipv6_addr`.
pub const NFT_TYPE_IPV6_ADDR: u32 = 8;
/// nft datatype id of `inet_service` (a port).
pub const NFT_TYPE_INET_SERVICE: u32 = 13;

/// List element (one expression) inside `NFTA_RULE_EXPRESSIONS`.
pub const NFTA_LIST_ELEM: u16 = 1;
/// Expression attribute: name (string).
pub const NFTA_EXPR_NAME: u16 = 1;
/// Expression attribute: data (nest of the expression's own attributes).
pub const NFTA_EXPR_DATA: u16 = 2;
/// Data attribute: raw value.
pub const NFTA_DATA_VALUE: u16 = 1;
/// Data attribute: verdict (nest).
pub const NFTA_DATA_VERDICT: u16 = 2;

/// Register `NFT_REG_1` (128 bit; what nft uses for these rules).
pub const NFT_REG_1: u32 = 1;

/// 32-bit register `NFT_REG32_00` (the first 4 bytes of `NFT_REG_1`); `NFT_REG32_00 + n` is the
/// n-th 4-byte slot, where concatenated keys continue.
pub const NFT_REG32_00: u32 = 8;

/// meta: destination register (load).
pub const NFTA_META_DREG: u16 = 1;
/// meta: key.
pub const NFTA_META_KEY: u16 = 2;
/// meta: source register (set).
pub const NFTA_META_SREG: u16 = 3;
/// meta key: `skb->mark`.
pub const NFT_META_MARK: u32 = 3;
/// meta key: netfilter protocol family (1 byte).
pub const NFT_META_NFPROTO: u32 = 15;
/// meta key: layer-4 protocol (1 byte).
pub const NFT_META_L4PROTO: u32 = 16;

/// payload: destination register.
pub const NFTA_PAYLOAD_DREG: u16 = 1;
/// payload: base.
pub const NFTA_PAYLOAD_BASE: u16 = 2;
/// payload: offset from the base.
pub const NFTA_PAYLOAD_OFFSET: u16 = 3;
/// payload: length in bytes.
pub const NFTA_PAYLOAD_LEN: u16 = 4;
/// payload base: link-layer header.
pub const NFT_PAYLOAD_LL_HEADER: u32 = 0;
/// payload base: network header.
pub const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
/// payload base: transport header.
pub const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;

/// bitwise: source register.
pub const NFTA_BITWISE_SREG: u16 = 1;
/// bitwise: destination register.
pub const NFTA_BITWISE_DREG: u16 = 2;
/// bitwise: operand length.
pub const NFTA_BITWISE_LEN: u16 = 3;
/// bitwise: mask (data nest).
pub const NFTA_BITWISE_MASK: u16 = 4;
/// bitwise: xor (data nest).
pub const NFTA_BITWISE_XOR: u16 = 5;
/// bitwise: operation (be32, Linux 5.6+).
pub const NFTA_BITWISE_OP: u16 = 6;
/// bitwise operation: `(reg & mask) ^ xor`.
pub const NFT_BITWISE_BOOL: u32 = 0;

/// cmp: source register.
pub const NFTA_CMP_SREG: u16 = 1;
/// cmp: operation.
pub const NFTA_CMP_OP: u16 = 2;
/// cmp: data (data nest).
pub const NFTA_CMP_DATA: u16 = 3;
/// cmp operation: equal.
pub const NFT_CMP_EQ: u32 = 0;
/// cmp operation: not equal.
pub const NFT_CMP_NEQ: u32 = 1;

/// immediate: destination register.
pub const NFTA_IMMEDIATE_DREG: u16 = 1;
/// immediate: data (data nest).
pub const NFTA_IMMEDIATE_DATA: u16 = 2;

/// TCP flag FIN.
pub const TCP_FLAG_FIN: u8 = 0x01;
/// TCP flag SYN.
pub const TCP_FLAG_SYN: u8 = 0x02;
/// TCP flag RST.
pub const TCP_FLAG_RST: u8 = 0x04;
/// TCP flag ACK.
pub const TCP_FLAG_ACK: u8 = 0x10;
