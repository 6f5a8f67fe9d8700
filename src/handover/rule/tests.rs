//! Every case of the hand-over rule, on hand-made snapshots.

use super::*;

const PORT: u16 = 8080;

fn proc_(pid: Pid, ppid: Pid, pgid: Pid, start: u64) -> Proc {
    Proc {
        pid,
        ppid,
        pgid,
        start,
    }
}

fn sock(cookie: u64, port: u16, owners: &[Pid]) -> Sock {
    Sock {
        cookie,
        inode: 1000 + cookie as u32,
        port,
        owners: owners.to_vec(),
        rqueue: 0,
        wqueue: 128,
    }
}

fn snap(socks: Vec<Sock>, procs: &[Proc], alive: &[Pid]) -> Snapshot {
    Snapshot {
        socks,
        procs: procs.iter().map(|p| (p.pid, *p)).collect(),
        alive: alive.iter().copied().collect(),
    }
}

/// One process, pid 100 (group 100), listening on one socket.
fn one_old() -> Baseline {
    Baseline::new(snap(
        vec![sock(1, PORT, &[100])],
        &[proc_(100, 1, 100, 10)],
        &[],
    ))
}

fn verdict(base: &Baseline, now: &Snapshot) -> Verdict {
    let v = judge(base, now);
    assert_eq!(v.len(), 1, "{v:?}");
    v[0].1.clone()
}

#[test]
fn old_gone_owner_alive_is_a_removed_port() {
    let now = snap(vec![], &[], &[100]);
    let v = verdict(&one_old(), &now);
    assert_eq!(v, Verdict::Removed);
    assert!(!v.waits() && v.changed());
}

#[test]
fn old_gone_owner_exited_is_a_restart_and_waits_for_a_new_socket() {
    let base = one_old();
    let v = verdict(&base, &snap(vec![], &[], &[]));
    assert_eq!(v, Verdict::Restarting);
    assert!(v.waits());
    // The new one comes up: done.
    let now = snap(vec![sock(2, PORT, &[200])], &[proc_(200, 1, 200, 50)], &[]);
    assert_eq!(verdict(&base, &now), Verdict::HandedOver);
}

#[test]
fn new_process_beside_an_open_old_socket_is_a_hand_over() {
    let base = one_old();
    let now = snap(
        vec![sock(1, PORT, &[100]), sock(2, PORT, &[200])],
        &[proc_(100, 1, 100, 10), proc_(200, 1, 200, 50)],
        &[100],
    );
    let v = verdict(&base, &now);
    assert_eq!(
        v,
        Verdict::HandingOver(vec![Old {
            cookie: 1,
            inode: 1001,
            owners: vec![100]
        }])
    );
    assert!(v.waits());
    assert!(v.to_string().contains("inode 1001 (pid 100)"), "{v}");
    // The old one closes: handed over (the old process may live on to
    // finish its connections).
    let now = snap(
        vec![sock(2, PORT, &[200])],
        &[proc_(200, 1, 200, 50)],
        &[100],
    );
    assert_eq!(verdict(&base, &now), Verdict::HandedOver);
}

#[test]
fn a_new_socket_owned_by_an_old_owner_is_a_group_that_grew() {
    let base = one_old();
    let now = snap(
        vec![sock(1, PORT, &[100]), sock(2, PORT, &[100])],
        &[proc_(100, 1, 100, 10)],
        &[100],
    );
    assert_eq!(verdict(&base, &now), Verdict::Grew);
    // ... or by a child of an old owner (a prefork worker of its own).
    let now = snap(
        vec![sock(1, PORT, &[100]), sock(3, PORT, &[101])],
        &[proc_(100, 1, 100, 10), proc_(101, 100, 100, 60)],
        &[100],
    );
    assert_eq!(verdict(&base, &now), Verdict::Grew);
}

#[test]
fn a_new_master_binding_beside_old_workers_is_a_hand_over() {
    // HAProxy master-worker, `kill -USR2` without fd passing: the master
    // (300) holds no listener, its worker 301 does; the re-executed master
    // binds new sockets. Same process group, new pid: a hand-over.
    let base = Baseline::new(snap(
        vec![sock(1, PORT, &[301])],
        &[proc_(301, 300, 300, 20)],
        &[],
    ));
    let now = snap(
        vec![sock(1, PORT, &[301]), sock(2, PORT, &[300])],
        &[proc_(301, 300, 300, 20), proc_(300, 1, 300, 5)],
        &[301],
    );
    assert!(matches!(verdict(&base, &now), Verdict::HandingOver(_)));
}

#[test]
fn nothing_changed_waits_for_the_quiet_window_then_releases() {
    let base = one_old();
    let now = snap(
        vec![sock(1, PORT, &[100])],
        &[proc_(100, 1, 100, 10)],
        &[100],
    );
    let v = judge(&base, &now);
    assert_eq!(v, vec![(PORT, Verdict::Unchanged)]);
    let q = Duration::from_millis(300);
    assert_eq!(
        decide(&v, Duration::from_millis(100), q, false),
        Decision::Quiet
    );
    assert_eq!(
        decide(&v, Duration::from_millis(300), q, false),
        Decision::QuietOver
    );
    // Nothing listens at all: the same.
    let empty = Baseline::new(Snapshot::default());
    let v = judge(&empty, &Snapshot::default());
    assert!(v.is_empty());
    assert_eq!(decide(&v, Duration::ZERO, q, false), Decision::Quiet);
    assert_eq!(decide(&v, q, q, false), Decision::QuietOver);
}

#[test]
fn same_socket_new_owners_is_ready() {
    // HAProxy -x, nginx -s reload: the socket stays, its holders change.
    let base = one_old();
    let now = snap(
        vec![sock(1, PORT, &[100, 200])],
        &[proc_(100, 1, 100, 10), proc_(200, 1, 200, 50)],
        &[100],
    );
    let v = judge(&base, &now);
    assert_eq!(v, vec![(PORT, Verdict::OwnersChanged)]);
    assert_eq!(
        decide(&v, Duration::ZERO, Duration::from_secs(1), false),
        Decision::Ready
    );
}

#[test]
fn a_port_added_or_shrunk_is_ready() {
    let base = Baseline::new(Snapshot::default());
    let now = snap(vec![sock(5, PORT, &[200])], &[proc_(200, 1, 200, 50)], &[]);
    assert_eq!(verdict(&base, &now), Verdict::Added);

    let base = Baseline::new(snap(
        vec![sock(1, PORT, &[100]), sock(2, PORT, &[100])],
        &[proc_(100, 1, 100, 10)],
        &[],
    ));
    let now = snap(
        vec![sock(1, PORT, &[100])],
        &[proc_(100, 1, 100, 10)],
        &[100],
    );
    assert_eq!(verdict(&base, &now), Verdict::Shrank);
}

#[test]
fn reuseport_group_hands_over_only_when_every_old_socket_closed() {
    let procs = [proc_(100, 1, 100, 10), proc_(200, 1, 200, 50)];
    let base = Baseline::new(snap(
        vec![
            sock(1, PORT, &[100]),
            sock(2, PORT, &[100]),
            sock(3, PORT, &[100]),
        ],
        &procs,
        &[],
    ));
    assert!(base.stale.is_empty(), "one generation");
    let new = || vec![sock(11, PORT, &[200]), sock(12, PORT, &[200])];
    let mut socks = new();
    socks.push(sock(2, PORT, &[100]));
    let v = verdict(&base, &snap(socks, &procs, &[100]));
    assert!(
        matches!(&v, Verdict::HandingOver(old) if old.len() == 1 && old[0].cookie == 2),
        "{v:?}"
    );
    assert_eq!(
        verdict(&base, &snap(new(), &procs, &[])),
        Verdict::HandedOver
    );
}

#[test]
fn a_stale_generation_is_set_aside_and_named() {
    // 90 (group 90, started at 5) never closed after an earlier reload;
    // 100 (group 100, started at 10) is current.
    let procs = [
        proc_(90, 1, 90, 5),
        proc_(100, 1, 100, 10),
        proc_(200, 1, 200, 50),
    ];
    let base = Baseline::new(snap(
        vec![sock(1, PORT, &[100]), sock(9, PORT, &[90])],
        &procs,
        &[],
    ));
    assert_eq!(
        base.stale,
        vec![Stale {
            port: PORT,
            pids: vec![90],
            cookies: vec![9]
        }]
    );
    assert!(base.stale[0].to_string().contains("pid 90"));
    assert_eq!(
        base.owners(),
        vec![procs[1]],
        "only the current owners are watched"
    );
    // The current one hands over; the stale one still listens: done.
    let now = snap(
        vec![sock(9, PORT, &[90]), sock(2, PORT, &[200])],
        &procs,
        &[90],
    );
    assert_eq!(verdict(&base, &now), Verdict::HandedOver);
    // Workers of one group are one generation, whatever their pids.
    let base = Baseline::new(snap(
        vec![sock(1, PORT, &[100]), sock(2, PORT, &[101])],
        &[proc_(100, 1, 100, 10), proc_(101, 100, 100, 11)],
        &[],
    ));
    assert!(base.stale.is_empty());
}

#[test]
fn unknown_owners_are_waited_for_not_guessed_removed() {
    let base = Baseline::new(snap(vec![sock(1, PORT, &[])], &[], &[]));
    assert!(base.stale.is_empty());
    assert_eq!(verdict(&base, &Snapshot::default()), Verdict::Restarting);
}

#[test]
fn one_waiting_port_holds_the_release_and_unchanged_ports_do_not() {
    let procs = [proc_(100, 1, 100, 10), proc_(200, 1, 200, 50)];
    let base = Baseline::new(snap(
        vec![sock(1, 80, &[100]), sock(2, 443, &[100]), sock(3, 22, &[7])],
        &[procs[0], proc_(7, 1, 7, 1)],
        &[],
    ));
    let q = Duration::from_secs(1);
    // 80 handed over, 443 not yet, 22 (another service) untouched.
    let now = snap(
        vec![
            sock(11, 80, &[200]),
            sock(2, 443, &[100]),
            sock(12, 443, &[200]),
            sock(3, 22, &[7]),
        ],
        &[procs[0], procs[1], proc_(7, 1, 7, 1)],
        &[100, 7],
    );
    let v = judge(&base, &now);
    assert_eq!(v[0], (22, Verdict::Unchanged));
    assert_eq!(v[1], (80, Verdict::HandedOver));
    assert!(matches!(v[2], (443, Verdict::HandingOver(_))));
    assert_eq!(decide(&v, Duration::ZERO, q, false), Decision::Wait);
    assert_eq!(
        decide(&v, q * 10, q, false),
        Decision::Wait,
        "the quiet window does not end a wait"
    );
    // 443 done too: ready at once, no quiet window for 22.
    let now = snap(
        vec![
            sock(11, 80, &[200]),
            sock(12, 443, &[200]),
            sock(3, 22, &[7]),
        ],
        &[procs[1], proc_(7, 1, 7, 1)],
        &[7],
    );
    assert_eq!(
        decide(&judge(&base, &now), Duration::ZERO, q, false),
        Decision::Ready
    );
}

#[test]
fn verdict_names_are_distinct() {
    let all = [
        Verdict::Unchanged,
        Verdict::OwnersChanged,
        Verdict::Grew,
        Verdict::Added,
        Verdict::HandedOver,
        Verdict::Shrank,
        Verdict::Removed,
        Verdict::Restarting,
        Verdict::HandingOver(vec![]),
    ];
    let names: HashSet<&str> = all.iter().map(|v| v.name()).collect();
    assert_eq!(names.len(), all.len());
}

#[test]
fn a_removed_port_waits_while_what_the_command_left_runs() {
    // The old process closed its listener and lives on (exiting slowly),
    // and the command's background restart is still under way.
    let base = one_old();
    let now = snap(vec![], &[proc_(100, 1, 100, 10)], &[100]);
    let v = judge(&base, &now);
    assert_eq!(v, vec![(PORT, Verdict::Removed)]);
    let q = Duration::from_millis(300);
    assert_eq!(decide(&v, q * 10, q, true), Decision::Wait);
    assert_eq!(decide(&v, Duration::ZERO, q, false), Decision::Ready);
    // Nothing changed: the quiet window does not end while it runs.
    let v = vec![(PORT, Verdict::Unchanged)];
    assert_eq!(decide(&v, q * 10, q, true), Decision::Quiet);
    assert_eq!(decide(&v, q, q, false), Decision::QuietOver);
    // Something else changed: ready, busy or not.
    let v = vec![(PORT, Verdict::OwnersChanged)];
    assert_eq!(decide(&v, Duration::ZERO, q, true), Decision::Ready);
}

#[test]
fn holders_only_leaving_is_not_a_hand_over() {
    // The old process is exiting: its files no longer show, its listener
    // has not closed yet (seen under TCG in the storm's cold restart).
    let base = one_old();
    let now = snap(vec![sock(1, PORT, &[])], &[], &[100]);
    assert_eq!(judge(&base, &now), vec![(PORT, Verdict::Unchanged)]);
    // nginx: a worker exits before the new ones are forked.
    let base = Baseline::new(snap(
        vec![sock(1, PORT, &[100, 101])],
        &[proc_(100, 1, 100, 10), proc_(101, 100, 100, 11)],
        &[],
    ));
    let now = snap(
        vec![sock(1, PORT, &[100])],
        &[proc_(100, 1, 100, 10)],
        &[100],
    );
    assert_eq!(judge(&base, &now), vec![(PORT, Verdict::Unchanged)]);
    // ...and then a new worker holds it.
    let now = snap(
        vec![sock(1, PORT, &[100, 102])],
        &[proc_(100, 1, 100, 10), proc_(102, 100, 100, 50)],
        &[100],
    );
    assert_eq!(judge(&base, &now), vec![(PORT, Verdict::OwnersChanged)]);
}
