#!/usr/bin/env python3
"""Writes the seed corpus fuzz/corpus/<target>/<name> from the golden bytes of
the unit tests (captured kernel replies and our own requests), so that every
fuzz run starts from real messages rather than from nothing.

The corpus is committed; run this again (python3 fuzz/make_corpus.py) only
when the goldens change or a target's input format does. It reads the hex
strings straight out of the test sources, by constant or test-function name.
"""

import re
import shutil
import struct
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
NETLINK = FUZZ.parent / "netlink" / "src"
CORPUS = FUZZ / "corpus"


def unhex(text):
    return bytes.fromhex("".join(text.split()))


def literals(text):
    """The concatenated contents of the string literals in `text`."""
    return "".join(re.findall(r'"([^"]*)"', text))


def const_hex(path, name):
    """A `const NAME: &str = "..."` or `= concat!("...", ...)` golden."""
    src = (NETLINK / path).read_text()
    m = re.search(r"const %s: &str =(.*?);\n" % name, src, re.S)
    if not m:
        raise SystemExit(f"{path}: no const {name}")
    return unhex(literals(m.group(1)))


def test_hex(path, fn, nth=0):
    """The `nth` `hex(...)` golden inside test function `fn`."""
    src = (NETLINK / path).read_text()
    start = src.find(f"fn {fn}()")
    if start < 0:
        raise SystemExit(f"{path}: no fn {fn}")
    end = src.find("\n}\n", start)
    if end < 0:
        end = src.find("\n    }\n", start)
    body = src[start:end]
    calls = [m.start() for m in re.finditer(r"\bhex\(", body)]
    if nth >= len(calls):
        raise SystemExit(f"{path}: fn {fn} has no hex() number {nth}")
    call = body[calls[nth]:]
    return unhex(literals(call[: call.find(")")]))


def messages(datagram):
    """Split a datagram into whole messages (header included)."""
    out, off = [], 0
    while off + 16 <= len(datagram):
        (n,) = struct.unpack_from("<I", datagram, off)
        out.append(datagram[off : off + n])
        off += (n + 3) & ~3
    return out


def body(msg):
    return msg[16:]


def attrs(buf):
    """(type, value) of each netlink attribute in `buf` (flags masked off)."""
    out, off = [], 0
    while off + 4 <= len(buf):
        n, t = struct.unpack_from("<HH", buf, off)
        if n < 4:
            break
        out.append((t & 0x3FFF, buf[off + 4 : off + n]))
        off += (n + 3) & ~3
    return out


def expressions(rule_payload):
    """The content of NFTA_RULE_EXPRESSIONS (type 4) of a rule payload."""
    return next(v for t, v in attrs(rule_payload[4:]) if t == 4)


def main():
    frame = "frame.rs"
    tc = "tc/tests.rs"
    nft = "nft/tests.rs"
    lease = "nft/tests_lease.rs"
    diag = "diag.rs"

    capped_ack = test_hex(frame, "parses_capped_ack")
    extack = test_hex(frame, "parses_error_with_extack")
    i32_min = test_hex(frame, "error_code_i32_min_is_malformed")
    done_ok = test_hex(frame, "parses_done", 0)
    done_eintr = test_hex(frame, "parses_done", 2)
    plug_dump = test_hex(tc, "parses_plug_dump_entry")
    prio_dump = test_hex(tc, "parses_prio_dump_entry")
    fw_dump = test_hex(tc, "parses_fw_filter_dump")
    listener = test_hex(diag, "parses_listener")
    rule_dumps = [const_hex(nft, f"CAPTURED_RULE_DUMP_{i}") for i in (1, 2, 3)]
    newtable = const_hex(nft, "CAPTURED_NEWTABLE_REPLY")

    # A v6 listener ([fd00::1]:443): the v4 capture with family AF_INET6,
    # another source address and port.
    v6 = bytearray(listener)
    v6[16] = 10
    v6[20:22] = struct.pack(">H", 443)
    v6[24:40] = bytes.fromhex("fd000000000000000000000000000001")

    seeds = {
        "frame_split": {
            "capped_ack": capped_ack,
            "error_extack": extack,
            "error_i32_min": i32_min,
            "done_ok": done_ok,
            "done_eintr": done_eintr,
            "ack_then_done": capped_ack + done_ok,
            "plug_dump": plug_dump,
            "fw_filter_dump": fw_dump,
            "listener": listener,
            "nft_newtable": newtable,
        },
        # Byte 0: 0 = NLMSG_ERROR, 1 = NLMSG_DONE; bytes 1..3: flags.
        "frame_ack": {
            name: bytes([sel]) + m[6:8] + body(m)
            for name, sel, m in [
                ("capped_ack", 0, capped_ack),
                ("error_extack", 0, extack),
                ("error_i32_min", 0, i32_min),
                ("done_ok", 1, done_ok),
                ("done_eintr", 1, done_eintr),
            ]
        },
        "tc_qdisc": {
            "plug_dump": body(plug_dump),
            "prio_dump": body(prio_dump),
            "prio_create": body(test_hex(tc, "prio_create")),
            "pfifo_create": body(test_hex(tc, "pfifo_create")),
            "plug_create": body(test_hex(tc, "plug_create")),
            "plug_release_indefinite": body(test_hex(tc, "plug_release_indefinite")),
        },
        "tc_filter": {
            "fw_dump_header": body(messages(fw_dump)[0]),
            "fw_dump_filter": body(messages(fw_dump)[1]),
            "fw_ipv6": body(test_hex(tc, "fw_filter_ipv6")),
            "fw_masked": body(test_hex(tc, "fw_filter_masked")),
        },
        # Byte 0: 0 prio, 1 pfifo, 2 plug, 3 fw, 4 handle text.
        "tc_options": {
            "prio": b"\x00" + unhex("04000000 01020202 01020000 01010101 01010101"),
            "pfifo": b"\x01" + unhex("e8030000"),
            "plug_limit": b"\x02" + unhex("03000000 00001000"),
            "plug_release": b"\x02" + unhex("01000000 00000000"),
            "fw": b"\x03" + unhex("08000100 04000100"),
            "fw_masked": b"\x03" + unhex("08000500 ff000000 08000100 04000100"),
            "handle_class": b"\x04" + b"1:4",
            "handle_root": b"\x04" + b"root",
        },
        "nft_rule": {
            "dump_dport4": body(rule_dumps[0]),
            "dump_dport6": body(rule_dumps[1]),
            "dump_v4": body(rule_dumps[2]),
            "request_ip6": body(const_hex(nft, "APPENDIX_A_NEWRULE_IP6")),
            "dump_lease4": body(const_hex(lease, "CAPTURED_RULE_DUMP_L4")),
            "dump_lease6_port": body(const_hex(lease, "CAPTURED_RULE_DUMP_L6")),
            "request_lease4_port": body(const_hex(lease, "CAPTURED_NEWRULE_LEASE4")),
        },
        "nft_set": {
            "reply_lease4": body(const_hex(lease, "CAPTURED_NEWSET_REPLY")),
            "request_lease4": body(const_hex(lease, "CAPTURED_NEWSET_LEASE4")),
            "request_l6": body(const_hex(lease, "CAPTURED_NEWSET_L6")),
        },
        "nft_setelem": {
            "dump_lease4": body(const_hex(lease, "CAPTURED_SETELEM_DUMP_1")),
            "dump_end": body(const_hex(lease, "CAPTURED_SETELEM_DUMP_END")),
            "dump_lease6_port": body(const_hex(lease, "CAPTURED_SETELEM_DUMP_L6")),
            "request_lease6": body(const_hex(lease, "CAPTURED_NEWSETELEM_LEASE6")),
        },
        "nft_expr": {
            "dump_dport4": expressions(body(rule_dumps[0])),
            "dump_dport6": expressions(body(rule_dumps[1])),
            "request_dport4": expressions(
                body(const_hex(nft, "CAPTURED_NEWRULE_DPORT4"))
            ),
        },
        # Structured input (see the target): bytes pick a rule and edits.
        # Empty = 0.0.0.0, no port, mark 0, no edit.
        "nft_mark_rule": {
            "v4_plain": b"",
            "v4_port": b"\x00\xa9\xfe\xff\xfe\x01\x00\x50\x01\x00\x00\x00\x00",
            "v6_port_edited": b"\x01\xfd" + bytes(14) + b"\x01\x01\x01\xbb"
            + b"\x07\x00\x00\x00\x02\x04\x05\x03",
        },
        "diag_listener": {
            "listener_v4": body(listener),
            "listener_v6": body(bytes(v6)),
        },
    }

    for target, files in seeds.items():
        d = CORPUS / target
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        for name, data in files.items():
            (d / name).write_bytes(data)
        print(f"{target}: {len(files)} files, {sum(map(len, files.values()))} bytes")


if __name__ == "__main__":
    main()
