//! Host tests: the real binary against this machine's kernel, each inside
//! its own network namespace. They cover what must hold on *any* kernel:
//! clean failure when a module is missing, permission errors, bad input.
//! Behaviour that needs sch_prio/sch_plug/cls_fw is tested in the VM
//! (`tests/kernel.rs`, run by `tests/vm/kernel-tests.sh`).

mod common;

use common::{in_netns, kernel_has_qdisc};

/// On a kernel without sch_prio (this workplace's), `setup` must fail with
/// one line naming the module, exit 5, and leave no trace: no nft table,
/// lo's root qdisc still the default. On a kernel with every module it must
/// succeed and teardown must restore the same state.
#[test]
fn setup_on_this_kernel_is_all_or_nothing() {
    let r = in_netns(
        r#"
        before_tc=$(tc qdisc show dev lo); before_nft=$(nft list ruleset)
        $PLUGCTL --state-dir "$STATE" setup 2>"$STATE.err"; rc=$?
        echo "rc=$rc"; echo "err=$(cat "$STATE.err")"
        # One line: exactly one newline, at the end.
        echo "err-lines=$(wc -l <"$STATE.err") err-bytes=$(wc -c <"$STATE.err") last=$(tail -c1 "$STATE.err" | od -An -c | tr -d ' ')"
        rm -f "$STATE.err"
        [ "$rc" = 0 ] && $PLUGCTL --state-dir "$STATE" teardown >/dev/null
        [ "$(tc qdisc show dev lo)" = "$before_tc" ] && echo tc-unchanged
        [ "$(nft list ruleset)" = "$before_nft" ] && echo nft-unchanged
        echo "tables: $(nft list tables | tr '\n' ' ')"
        "#,
    );
    println!("{}{}", r.stdout, r.stderr);
    if kernel_has_qdisc("prio bands 4") && kernel_has_qdisc("plug") {
        assert!(r.stdout.contains("rc=0"), "{}", r.stdout);
    } else {
        assert!(
            r.stdout.contains("rc=5"),
            "exit code 5 expected: {}",
            r.stdout
        );
        let err = r.stdout.lines().find(|l| l.starts_with("err=")).unwrap();
        assert!(
            err.contains("sch_prio") || err.contains("sch_plug"),
            "{err}"
        );
        assert!(
            r.stdout.contains("err-lines=1 ") && r.stdout.contains(" last=\\n"),
            "one line, ending in a newline: {}",
            r.stdout
        );
        assert_eq!(r.stdout.matches("plugctl: error").count(), 1);
    }
    assert!(
        r.stdout.contains("tc-unchanged"),
        "tc state changed: {}",
        r.stdout
    );
    assert!(
        r.stdout.contains("nft-unchanged"),
        "nft ruleset changed: {}",
        r.stdout
    );
    let tables = r.stdout.lines().find(|l| l.starts_with("tables:")).unwrap();
    assert!(
        !tables.contains("plugctl"),
        "a plugctl table is left: {tables}"
    );
}

/// Without CAP_NET_ADMIN every command says so in one line and exits 4
/// (`reload --strict`: 13, the command not run).
#[test]
fn every_command_needs_cap_net_admin() {
    for (cmd, code) in [
        ("setup", 4),
        ("teardown", 4),
        ("plug", 4),
        ("release", 4),
        ("status", 4),
        // reload refuses to run the command unprotected only with --strict.
        ("reload --strict -- true", 13),
    ] {
        let r = in_netns(&format!(
            r#"setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all \
                 $PLUGCTL --state-dir "$STATE" {cmd}"#
        ));
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(r.code, code, "{cmd}: {}{}", r.stdout, r.stderr);
        assert_eq!(lines.len(), 1, "{cmd}: one line expected: {:?}", lines);
        assert!(lines[0].contains("CAP_NET_ADMIN"), "{cmd}: {}", lines[0]);
    }
}

/// Bad input is refused before anything is sent, with its own exit code:
/// a bad flag value is a bad command line (2), a bad file value a bad
/// configuration (3).
#[test]
fn bad_input_has_distinct_exit_codes() {
    let r = in_netns(
        r#"
        printf 'devcie = "lo"\n' > "$STATE.toml"
        $PLUGCTL --config "$STATE.toml" setup; echo "rc=$?"
        $PLUGCTL --config /nonexistent.toml status; echo "rc=$?"
        $PLUGCTL --mark 0 setup; echo "rc=$?"
        $PLUGCTL --device nosuch0 setup; echo "rc=$?"
        $PLUGCTL --address not-an-ip setup; echo "rc=$?"
        $PLUGCTL --state-dir "$STATE" plug; echo "rc=$?"
        printf 'mark = 0\n' > "$STATE.toml"
        $PLUGCTL --config "$STATE.toml" setup; echo "rc=$?"
        # The flag fixes the file's bad value: fine (dry run sends nothing).
        $PLUGCTL --config "$STATE.toml" --mark 2 setup --dry-run >/dev/null; echo "rc=$?"
        printf 'state_dir = "run/plugctl"\n' > "$STATE.toml"
        $PLUGCTL --config "$STATE.toml" status; echo "rc=$?"
        $PLUGCTL --state-dir run/plugctl status; echo "rc=$?"
        $PLUGCTL --state-dir "" status; echo "rc=$?"
        $PLUGCTL --plug-limit 1 setup; echo "rc=$?"
        # --no-wait and --wait-listen contradict each other.
        $PLUGCTL --state-dir "$STATE" reload --no-wait --wait-listen 80 -- true; echo "rc=$?"
        $PLUGCTL --state-dir "$STATE" reload --quiet-window 11min -- true; echo "rc=$?"
        printf 'quiet_window = "11min"\n' > "$STATE.toml"
        $PLUGCTL --config "$STATE.toml" --state-dir "$STATE" reload -- true; echo "rc=$?"
        rm -f "$STATE.toml"
        "#,
    );
    let codes: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("rc=")).collect();
    assert_eq!(
        codes,
        [
            "rc=3", "rc=3", "rc=2", "rc=6", "rc=2", "rc=8", "rc=3", "rc=0", "rc=3", "rc=2", "rc=2",
            "rc=2", "rc=2", "rc=2", "rc=3"
        ],
        "{}",
        r.stderr
    );
    for l in r.stderr.lines().filter(|l| l.starts_with("plugctl:")) {
        assert!(l.starts_with("plugctl: error: "), "{l}");
    }
    assert!(r.stderr.contains("unknown field `devcie`"), "{}", r.stderr);
}

/// `--dry-run` prints the tc/nft equivalent and sends nothing (it works
/// without privileges).
#[test]
fn dry_run_prints_commands_and_sends_nothing() {
    let r = in_netns(
        r#"setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all \
             $PLUGCTL --address fd00::1 --port 8080 setup --dry-run
           tc qdisc show dev lo
           echo "ruleset: $(nft list ruleset | wc -l) lines""#,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r
        .stdout
        .contains("tc qdisc add dev lo parent 1:4 handle 40: plug limit 1048576"));
    // The lease set, and the rule that looks SYNs up in it.
    assert!(
        r.stdout.contains(
            "nft add set inet plugctl lease6 '{ type ipv6_addr . inet_service; flags timeout; }'"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("ip6 daddr . tcp dport @lease6"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("qdisc noqueue 0: root"), "{}", r.stdout);
    assert!(r.stdout.contains("ruleset: 0 lines"), "{}", r.stdout);
}

/// The README cannot drift from the binary: every subcommand, every exit
/// code `--help` documents and every key of the example config is in it.
#[test]
fn readme_documents_every_command_exit_code_and_key() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let help = std::process::Command::new(common::plugctl_bin())
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let commands: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .unwrap()
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() >= 6, "{help}");
    for c in commands {
        assert!(
            readme.contains(&format!("plugctl {c}")),
            "README lacks `plugctl {c}`"
        );
    }
    // The help's exit codes come from one table (error::EXIT_CODES); the
    // README's table must say the same, word for word.
    let codes = help.split("Exit codes:").nth(1).unwrap();
    let mut n = 0;
    for l in codes.lines().filter(|l| l.starts_with("  ")) {
        let mut words = l.trim().splitn(2, ' ');
        let (code, text) = (words.next().unwrap(), words.next().unwrap_or("").trim());
        if code.parse::<u32>().is_ok() {
            n += 1;
            assert!(
                readme.contains(&format!("| {code} | {text} |")),
                "README's exit code table lacks `| {code} | {text} |`"
            );
        }
    }
    assert!(n >= 20, "{codes}");
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/plugctl.toml"))
            .unwrap();
    for key in example
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains(" = "))
        .map(|l| l.split(" = ").next().unwrap())
    {
        assert!(
            readme.contains(&format!("| `{key}` |")),
            "README's config table lacks {key}"
        );
    }
}

/// `-v` shows what plugctl is about to work on (info level); without it
/// only warnings and errors are printed; `-vv` adds debug lines.
#[test]
fn verbose_raises_the_log_level() {
    let r = in_netns(
        r#"$PLUGCTL --state-dir "$STATE" setup --dry-run 2>&1 >/dev/null | grep -c INFO
        $PLUGCTL -v --state-dir "$STATE" setup --dry-run 2>&1 >/dev/null | grep -c 'INFO.*device lo'
        $PLUGCTL -vv --state-dir "$STATE" --address 169.254.1.1 setup --dry-run 2>&1 >/dev/null | grep -c 'INFO.*169.254.1.1'
        $PLUGCTL --verbose --state-dir "$STATE" setup --dry-run 2>&1 >/dev/null | grep -c 'INFO.*device lo'"#,
    );
    let counts: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(counts, ["0", "1", "1", "1"], "{}{}", r.stdout, r.stderr);
}
