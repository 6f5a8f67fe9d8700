//! Set elements: the lease itself (`NFT_MSG_NEWSETELEM` / `DELSETELEM` / `GETSETELEM`), and
//! the batches that renew and end it (docs/netlink-reference.md §7.9).

use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REQUEST};

use super::batch::{batch_begin, batch_end, Batch, Builder};
use super::consts::*;
use super::wire::{
    attr_be64, attr_bytes, attr_nest, attr_str, check_name, check_value, find, get_be64, get_str,
    parse_attrs, req, Attr, Nfgenmsg,
};
use super::NftError;

/// One element of a set, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetElem {
    /// The key bytes (see [`SetKey::element`](super::SetKey::element)).
    pub key: Vec<u8>,
    /// NFTA_SET_ELEM_TIMEOUT: the timeout it was added with, ms.
    pub timeout_ms: Option<u64>,
    /// NFTA_SET_ELEM_EXPIRATION: ms left before it expires.
    pub expires_ms: Option<u64>,
}

/// The elements of one set that a batch adds or removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetKeys<'a> {
    /// Set name.
    pub set: &'a str,
    /// Element keys.
    pub keys: &'a [Vec<u8>],
}

/// The timeout of the element a [`end_lease_batch`] adds before deleting it: it never outlives
/// the batch, but if it did, it would be gone after this long.
pub const END_TIMEOUT_MS: u64 = 1000;

fn elements(keys: &[Vec<u8>], timeout_ms: Option<u64>) -> Result<Attr, NftError> {
    let elems = keys
        .iter()
        .map(|k| {
            check_value("set element key", k)?;
            let mut e = Vec::with_capacity(2);
            if let Some(t) = timeout_ms {
                e.push(attr_be64(NFTA_SET_ELEM_TIMEOUT, t)?);
            }
            e.push(attr_nest(
                NFTA_SET_ELEM_KEY,
                &[attr_bytes(NFTA_DATA_VALUE, k)?],
            )?);
            attr_nest(NFTA_LIST_ELEM, &e)
        })
        .collect::<Result<Vec<_>, _>>()?;
    attr_nest(NFTA_SET_ELEM_LIST_ELEMENTS, &elems)
}

/// NEWSETELEM {TABLE, SET, ELEMENTS {ELEM {[TIMEOUT], KEY}}}, REQUEST|ACK|CREATE (no EXCL: an
/// element that is there already is no error — and on 6.1 keeps its old timeout), family inet.
/// What `nft add element inet TABLE SET '{ K timeout Ns }'` sends, less its
/// NFTA_SET_ELEM_LIST_SET_ID (meaningless for a set that exists) and plus the ACK.
pub(crate) fn new_setelems(
    table: &str,
    s: &SetKeys<'_>,
    timeout_ms: Option<u64>,
    seq: u32,
) -> Result<Vec<u8>, NftError> {
    check_name(table)?;
    check_name(s.set)?;
    message_elems(
        NFT_MSG_NEWSETELEM,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE,
        table,
        s,
        timeout_ms,
        seq,
    )
}

/// DELSETELEM {TABLE, SET, ELEMENTS {ELEM {KEY}}}, REQUEST|ACK, family inet: what `nft delete
/// element inet TABLE SET '{ K }'` sends (plus the ACK). -ENOENT if an element is not there.
pub(crate) fn del_setelems(table: &str, s: &SetKeys<'_>, seq: u32) -> Result<Vec<u8>, NftError> {
    check_name(table)?;
    check_name(s.set)?;
    message_elems(
        NFT_MSG_DELSETELEM,
        NLM_F_REQUEST | NLM_F_ACK,
        table,
        s,
        None,
        seq,
    )
}

fn message_elems(
    ty: u16,
    flags: u16,
    table: &str,
    s: &SetKeys<'_>,
    timeout_ms: Option<u64>,
    seq: u32,
) -> Result<Vec<u8>, NftError> {
    super::wire::message(
        ty,
        flags,
        seq,
        NFPROTO_INET,
        0,
        vec![
            attr_str(NFTA_SET_ELEM_LIST_TABLE, table)?,
            attr_str(NFTA_SET_ELEM_LIST_SET, s.set)?,
            elements(s.keys, timeout_ms)?,
        ],
    )
}

fn lease_batch(
    table: &str,
    sets: &[SetKeys<'_>],
    first_seq: u32,
    per_set: &[Option<Option<u64>>],
) -> Result<Batch, NftError> {
    // Each set's messages: Some(t) = NEWSETELEM with timeout t, None = DELSETELEM.
    let n = u32::try_from(sets.len() * per_set.len()).map_err(|_| NftError::TooLarge)?;
    let mut b = Builder::new(first_seq, n.checked_add(2).ok_or(NftError::TooLarge)?)?;
    b.push(batch_begin)?;
    for s in sets.iter().filter(|s| !s.keys.is_empty()) {
        for step in per_set {
            match step {
                Some(t) => b.push(|seq| new_setelems(table, s, *t, seq))?,
                None => b.push(|seq| del_setelems(table, s, seq))?,
            }
        }
    }
    b.push(batch_end)?;
    Ok(b.finish())
}

/// Renew a lease in ONE batch: for each set, NEWSETELEM (timeout `timeout_ms`; no error
/// whether the elements are there or not), DELSETELEM (cannot fail: they are there now),
/// NEWSETELEM (timeout `timeout_ms`). Linux 6.1 does not refresh the timeout of an element
/// added again, so the delete + add is what sets the new deadline; the first add is what makes
/// the delete safe when an element is missing (never added, expired, removed) — Linux 6.1 has
/// no NFT_MSG_DESTROYSETELEM (6.3+). Atomic: packets see the old elements or the new ones.
/// Sets with no keys are left out.
pub fn renew_lease_batch(
    table: &str,
    sets: &[SetKeys<'_>],
    timeout_ms: u64,
    first_seq: u32,
) -> Result<Batch, NftError> {
    check_name(table)?;
    lease_batch(
        table,
        sets,
        first_seq,
        &[Some(Some(timeout_ms)), None, Some(Some(timeout_ms))],
    )
}

/// End a lease in ONE batch: for each set, NEWSETELEM (timeout [`END_TIMEOUT_MS`]) then
/// DELSETELEM: the elements are gone afterwards whether they were there or not, and the
/// delete never fails with -ENOENT.
pub fn end_lease_batch(
    table: &str,
    sets: &[SetKeys<'_>],
    first_seq: u32,
) -> Result<Batch, NftError> {
    check_name(table)?;
    lease_batch(table, sets, first_seq, &[Some(Some(END_TIMEOUT_MS)), None])
}

/// How many seqs [`renew_lease_batch`] (`renew`) or [`end_lease_batch`] uses for these sets.
pub fn lease_batch_len(sets: &[SetKeys<'_>], renew: bool) -> u32 {
    let per = if renew { 3 } else { 2 };
    2 + per * sets.iter().filter(|s| !s.keys.is_empty()).count() as u32
}

/// NFT_MSG_GETSETELEM dump request (REQUEST|DUMP, family inet, SET then TABLE), byte-identical
/// to what `nft list set inet TABLE SET` sends. Answered by NFT_MSG_NEWSETELEM messages
/// ([`parse_setelems`]) and NLMSG_DONE; -ENOENT if the set does not exist.
pub fn get_setelems_request(table: &str, set: &str, seq: u32) -> Result<Vec<u8>, NftError> {
    check_name(table)?;
    check_name(set)?;
    super::wire::message(
        NFT_MSG_GETSETELEM,
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        NFPROTO_INET,
        0,
        vec![
            attr_str(NFTA_SET_ELEM_LIST_SET, set)?,
            attr_str(NFTA_SET_ELEM_LIST_TABLE, table)?,
        ],
    )
}

/// Elements from one NFT_MSG_NEWSETELEM dump message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpedElems {
    /// NFTA_SET_ELEM_LIST_TABLE.
    pub table: String,
    /// NFTA_SET_ELEM_LIST_SET.
    pub set: String,
    /// The elements (a dump may end with a message that has none).
    pub elems: Vec<SetElem>,
}

/// Parse the payload (from `nfgenmsg` on) of one NFT_MSG_NEWSETELEM dump message. An element
/// without a plain key (`NFTA_DATA_VALUE`) is an error; attributes plugctl does not need
/// (flags, user data, expressions, …) are ignored.
pub fn parse_setelems(payload: &[u8]) -> Result<DumpedElems, NftError> {
    let (_, a) = Nfgenmsg::parse(payload)?;
    let a = a.as_slice();
    let mut elems = Vec::new();
    if let Some(list) = find(a, NFTA_SET_ELEM_LIST_ELEMENTS) {
        for e in parse_attrs(list.value())?
            .iter()
            .filter(|e| e.kind() == NFTA_LIST_ELEM)
        {
            let attrs = parse_attrs(e.value())?;
            let key = parse_attrs(req(&attrs, NFTA_SET_ELEM_KEY, "NFTA_SET_ELEM_KEY")?.value())?;
            let key = req(&key, NFTA_DATA_VALUE, "NFTA_SET_ELEM_KEY value")?
                .value()
                .to_vec();
            let be64 = |ty, what| find(&attrs, ty).map(|x| get_be64(x, what)).transpose();
            elems.push(SetElem {
                key,
                timeout_ms: be64(NFTA_SET_ELEM_TIMEOUT, "NFTA_SET_ELEM_TIMEOUT")?,
                expires_ms: be64(NFTA_SET_ELEM_EXPIRATION, "NFTA_SET_ELEM_EXPIRATION")?,
            });
        }
    }
    Ok(DumpedElems {
        table: get_str(
            req(a, NFTA_SET_ELEM_LIST_TABLE, "NFTA_SET_ELEM_LIST_TABLE")?,
            "NFTA_SET_ELEM_LIST_TABLE",
        )?,
        set: get_str(
            req(a, NFTA_SET_ELEM_LIST_SET, "NFTA_SET_ELEM_LIST_SET")?,
            "NFTA_SET_ELEM_LIST_SET",
        )?,
        elems,
    })
}
