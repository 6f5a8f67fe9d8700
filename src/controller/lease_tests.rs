//! The lease on a hold, against the fake kernel: the exact batches a hold,
//! a renewal and a release send, and that no holder shortens another's.

use std::time::Duration;

use plugctl_netlink::nft::{self, consts::*, SetKeys};

use super::tests::{temp_dir, TempDir};
use super::*;
use crate::kernel::fake::FakeKernel;

fn controller(dir: &TempDir) -> Controller<FakeKernel> {
    let cfg = Config {
        state_dir: dir.0.clone(),
        ..Config::default()
    };
    let mut c = Controller::with_kernel(cfg, FakeKernel::new())
        .unwrap()
        .with_lock_wait(Duration::from_millis(200));
    c.setup(false).unwrap();
    c.kernel_mut().calls.clear();
    c
}

/// The key of the default address (no ports: the address alone).
fn key() -> Vec<u8> {
    vec![169, 254, 255, 254]
}

/// The messages of a batch: (nlmsg_type, payload after nlmsghdr).
fn messages(b: &nft::Batch) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 16 <= b.bytes.len() {
        let len = u32::from_ne_bytes(b.bytes[off..off + 4].try_into().unwrap()) as usize;
        let ty = u16::from_ne_bytes(b.bytes[off + 4..off + 6].try_into().unwrap());
        out.push((ty, b.bytes[off + 16..off + len].to_vec()));
        off += (len + 3) & !3;
    }
    out
}

/// The timeout a renew batch sets, after checking it is exactly
/// NEWSETELEM, DELSETELEM, NEWSETELEM of the default key in one batch.
fn renewed_to(b: &nft::Batch) -> u64 {
    let m = messages(b);
    let types: Vec<u16> = m.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        types,
        [
            NFNL_MSG_BATCH_BEGIN,
            NFT_MSG_NEWSETELEM,
            NFT_MSG_DELSETELEM,
            NFT_MSG_NEWSETELEM,
            NFNL_MSG_BATCH_END
        ]
    );
    let e = nft::parse_setelems(&m[3].1).unwrap();
    assert_eq!((e.table.as_str(), e.set.as_str()), ("plugctl", "lease4"));
    assert_eq!(e.elems.len(), 1);
    assert_eq!(e.elems[0].key, key());
    let t = e.elems[0].timeout_ms.unwrap();
    // Byte for byte what the builder makes of it.
    let keys = [key()];
    let sets = [SetKeys {
        set: "lease4",
        keys: &keys,
    }];
    assert_eq!(*b, nft::renew_lease_batch("plugctl", &sets, t, 1).unwrap());
    t
}

fn assert_ended(b: &nft::Batch) {
    let keys = [key()];
    let sets = [SetKeys {
        set: "lease4",
        keys: &keys,
    }];
    assert_eq!(*b, nft::end_lease_batch("plugctl", &sets, 1).unwrap());
}

#[test]
fn a_hold_leases_in_one_batch_and_its_release_ends_the_lease() {
    let dir = temp_dir();
    let mut c = controller(&dir);
    let h = c.hold("test").unwrap();
    let k = c.kernel_mut();
    assert_eq!(k.lease_calls.len(), 1, "{:?}", k.lease_calls);
    // max_hold 5s + grace 5s, less the ms since the hold began.
    let t = renewed_to(&k.lease_batches[0]);
    assert!((9_000..=10_000).contains(&t), "{t}");
    assert_eq!(k.sets[0].1.len(), 1);
    // The lease before the plug closes: a SYN marked in between passes.
    assert_eq!(k.calls, ["new_qdisc plug 40: Change block"]);

    let st = c.status().unwrap();
    assert_eq!(st.lease.len(), 1);
    assert_eq!(st.lease[0].address.to_string(), "169.254.255.254");
    assert_eq!(st.lease[0].lease_ms, Some(t));
    let text = st.to_string();
    assert!(
        text.contains(&format!(
            "lease: 169.254.255.254 expires in {t} ms (of {t} ms)"
        )),
        "{text}"
    );
    let json = serde_json::to_string(&st).unwrap();
    assert!(
        json.contains(&format!(
            r#""lease":[{{"address":"169.254.255.254","port":null,"lease_ms":{t},"expires_in_ms":{t}}}]"#
        )),
        "{json}"
    );

    // An element reported with 0 ms left has expired: not leased.
    c.kernel_mut().sets[0].1[0].expires_ms = Some(0);
    assert!(c.status().unwrap().lease.is_empty());

    c.release_hold(h).unwrap();
    let k = c.kernel_mut();
    assert_eq!(k.lease_calls.len(), 2);
    assert_ended(&k.lease_batches[1]);
    assert!(k.sets[0].1.is_empty());
    let text = c.status().unwrap().to_string();
    assert!(
        text.ends_with("\nlease: none (new SYNs are not steered into the plug)"),
        "{text}"
    );
}

#[test]
fn no_holder_shortens_another_ones_lease() {
    let dir = temp_dir();
    let mut c = controller(&dir);
    let a = c.hold("a").unwrap();
    // A manual hold for a minute renews to a minute...
    c.hold_manual(Some(Duration::from_secs(60))).unwrap();
    let t = renewed_to(&c.kernel_mut().lease_batches[1]);
    assert!((59_000..=60_000).contains(&t), "{t}");
    // ... and a later reload's 10 s do not shorten it.
    let b = c.hold("b").unwrap();
    let t = renewed_to(&c.kernel_mut().lease_batches[2]);
    assert!((58_000..=60_000).contains(&t), "{t}");
    // Letting go while others hold ends nothing.
    c.release_hold(b).unwrap();
    c.release_hold(a).unwrap();
    assert_eq!(c.kernel_mut().lease_calls.len(), 3);
    // The manual hold's release ends it.
    c.release(false).unwrap();
    let k = c.kernel_mut();
    assert_eq!(k.lease_calls.len(), 4);
    assert_ended(&k.lease_batches[3]);
}

#[test]
fn a_tree_without_lease_sets_holds_nothing_and_says_run_setup() {
    let dir = temp_dir();
    let mut c = controller(&dir);
    c.kernel_mut().sets.clear();
    let e = c.hold("a").unwrap_err();
    assert!(matches!(e, Error::NotSetUp { .. }), "{e}");
    assert!(e.to_string().contains("plugctl setup"), "{e}");
    // The plug stays open, nobody is recorded as a holder.
    assert!(c.kernel_mut().calls.is_empty());
    let Recorded::Found(r) = c.store().peek().unwrap().recorded else {
        panic!("no record")
    };
    assert!(!r.closed && r.holders.is_empty());
    // setup migrates it; then the hold works.
    c.setup(false).unwrap();
    c.hold("a").unwrap();
}

#[test]
fn setup_and_release_end_a_lease_left_by_a_holder_that_is_gone() {
    let dir = temp_dir();
    let mut c = controller(&dir);
    // A reload killed with everything it started: recorded, leased, closed.
    let h = c.hold("killed").unwrap();
    std::mem::forget(h);
    // Its slot is this process's until the descriptor closes: a record
    // naming a holder whose slot nobody holds is what a kill leaves.
    let mut r = match c.store().peek().unwrap().recorded {
        Recorded::Found(r) => r,
        _ => panic!("no record"),
    };
    r.holders[0].slot = Some(999);
    std::fs::write(c.store().record_path(), r.to_bytes()).unwrap();
    let lines = c.setup(false).unwrap().to_string();
    assert!(lines.contains("released a plug"), "{lines}");
    let k = c.kernel_mut();
    assert_eq!(k.lease_calls.len(), 2, "{:?}", k.lease_calls);
    assert_ended(&k.lease_batches[1]);
    assert!(k.sets[0].1.is_empty());
    // `release` ends it too, even with nothing left to end.
    c.release(false).unwrap();
    assert_ended(&c.kernel_mut().lease_batches[2]);
}

#[test]
fn an_absurd_lease_from_the_library_does_not_overflow() {
    let dir = temp_dir();
    let mut c = controller(&dir);
    c.hold_manual(Some(Duration::MAX)).unwrap();
    let t = renewed_to(&c.kernel_mut().lease_batches[0]);
    assert!(t > 1 << 40, "{t}");
}
