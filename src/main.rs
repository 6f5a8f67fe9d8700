//! The `plugctl` command: a thin layer over the library.
//!
//! Rust's own start-up is skipped (see [`main`]): a reload is timed
//! against Yelp's two `nl-qdisc-add` runs, and each start counts.
// (Not in `cargo test`: the test harness brings its own `main`.)
#![cfg_attr(not(test), no_main)]

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{FromArgMatches, Parser, Subcommand};
use plugctl::report;
use plugctl::{tree, Config, Controller, Error};

/// Hold new connections to a load balancer while it reloads, so a reload
/// loses none: SYNs to the balancer's addresses are marked by an nf_tables
/// rule, steered by an fw filter into a tc plug qdisc, and held there while
/// the plug is closed.
#[derive(Debug, Parser)]
#[command(version, after_help = plugctl::error::exit_codes_help())]
struct Cli {
    /// Configuration file [default: /etc/plugctl/plugctl.toml if it exists]
    #[arg(long, short = 'c', global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Device whose egress carries the SYNs [config: device; default: lo]
    #[arg(long, global = true, value_name = "DEV")]
    device: Option<String>,
    /// Balancer address to hold connections to; repeatable [config: addresses; default: 169.254.255.254]
    #[arg(long = "address", global = true, value_name = "ADDR")]
    addresses: Vec<IpAddr>,
    /// Only connections to this TCP port; repeatable [config: ports; default: every port]
    #[arg(long = "port", global = true, value_name = "PORT")]
    ports: Vec<u16>,
    /// Packet mark steering SYNs into the plug [config: mark; default: 1]
    #[arg(long, global = true)]
    mark: Option<u32>,
    /// Most bytes the plug holds (one IPv4 SYN is 74) [config: plug_limit; default: 1048576]
    #[arg(long, global = true, value_name = "BYTES")]
    plug_limit: Option<u32>,
    /// Where the plug state is kept [config: state_dir; default: /run/plugctl]
    #[arg(long, global = true, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// More log output (repeat for more)
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
// Each subcommand's arguments are built only when it is the one given.
#[command(defer = true)]
enum Command {
    /// Build the tree (prio, pfifos, plug, fw filters, nf_tables mark rule);
    /// idempotent: a second run changes nothing and says so
    Setup {
        /// Replace a root qdisc or filter that is not plugctl's
        #[arg(long)]
        force: bool,
        /// Print the equivalent tc/nft commands; send nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove exactly what setup built (the plug is released first)
    Teardown {
        /// Print the equivalent tc/nft commands; send nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Close the plug: hold new connections until `release`; new ones are
    /// steered into it only while its lease lasts
    Plug {
        /// The lease: after this long, new connections pass even if nobody
        /// released (e.g. 30s, 2min; at most 1h) [default: max_hold + 5s]
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_lease)]
        lease: Option<std::time::Duration>,
    },
    /// Open the plug: let every held connection through (unless a running
    /// reload still holds it)
    Release {
        /// Open it even if other holders hold it, and forget them
        #[arg(long)]
        force: bool,
    },
    /// Close the plug, run CMD (argv, no shell), release once the listeners
    /// on the protected addresses are handed over (or at --max-hold), print
    /// a one-line summary; exits with CMD's code
    Reload {
        /// Release at the latest this long after closing, even if CMD still
        /// runs (e.g. 500ms, 5s) [config: max_hold; default: 5s]
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        max_hold: Option<std::time::Duration>,
        /// Do not run CMD if the plug cannot be closed (default: run it
        /// unprotected, with a warning)
        #[arg(long)]
        strict: bool,
        /// Run CMD as USER[:GROUP] (plugctl itself needs CAP_NET_ADMIN)
        #[arg(long, value_name = "USER[:GROUP]")]
        user: Option<String>,
        /// After CMD returns, hold until [ADDR:]PORT has a new listening socket
        /// and none of those that listened when the plug closed; repeatable
        /// [config: wait_listen]
        #[arg(long = "wait-listen", value_name = "[ADDR:]PORT")]
        wait_listen: Vec<plugctl::config::ListenSpec>,
        /// How long readiness must hold before releasing [config: settle; default: 20ms]
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        settle: Option<std::time::Duration>,
        /// Release as soon as CMD returns, without observing the hand-over
        /// of the listening sockets (the default observes it)
        #[arg(long, conflicts_with = "wait_listen")]
        no_wait: bool,
        /// When CMD changed no listener on a protected port, release this
        /// long after it returned [config: quiet_window; default: 300ms]
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        quiet_window: Option<std::time::Duration>,
        /// Print the reload record as one JSON object instead of the summary
        #[arg(long)]
        json: bool,
        /// Append the reload record to FILE as a JSON line
        #[arg(long, value_name = "FILE")]
        record: Option<PathBuf>,
        /// The reload command and its arguments
        #[arg(required = true, last = true, value_name = "CMD")]
        command: Vec<std::ffi::OsString>,
    },
    /// Show the tree, whether it matches the config, the plug state and counters;
    /// exits 10 if the tree is missing, 11 if it differs
    Status {
        /// Print one JSON object
        #[arg(long)]
        json: bool,
    },
}

impl Cli {
    /// The configuration file's values, overridden by the flags. A value
    /// out of range is the file's fault (exit 3) if the file alone has it,
    /// else the flag's (exit 2).
    fn config(&self) -> Result<Config, Error> {
        let file = Config::load(self.config.as_deref())?;
        let mut cfg = file.clone();
        if let Some(d) = &self.device {
            cfg.device = d.clone();
        }
        if !self.addresses.is_empty() {
            cfg.addresses = self.addresses.clone();
        }
        if !self.ports.is_empty() {
            cfg.ports = self.ports.clone();
        }
        if let Some(m) = self.mark {
            cfg.mark = m;
        }
        if let Some(l) = self.plug_limit {
            cfg.plug_limit = l;
        }
        if let Some(s) = &self.state_dir {
            cfg.state_dir = s.clone();
        }
        if let Command::Reload {
            max_hold,
            settle,
            wait_listen,
            no_wait,
            quiet_window,
            ..
        } = &self.command
        {
            if let Some(q) = quiet_window {
                cfg.quiet_window = *q;
            }
            if *no_wait {
                cfg.wait_listen.clear();
            }
            if let Some(m) = max_hold {
                cfg.max_hold = *m;
            }
            if let Some(s) = settle {
                cfg.settle = *s;
            }
            if !wait_listen.is_empty() {
                cfg.wait_listen = wait_listen.clone();
            }
        }
        match cfg.validate() {
            Ok(()) => Ok(cfg),
            Err(e) if file.validate().is_err() => Err(e.into()),
            Err(e) => Err(Error::Usage(format!(
                "invalid flag value: {}",
                e.to_string().trim_start_matches("invalid config: ")
            ))),
        }
    }
}

/// A `--for` lease: a duration between 1ms and 1h.
fn parse_lease(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d.is_zero() || d > std::time::Duration::from_secs(3600) {
        return Err("a lease must be between 1ms and 1h".into());
    }
    Ok(d)
}

/// Append `line` to the record file at `path`: created mode 0644, never
/// through a symlink, never into a FIFO or device.
fn append_record(path: &std::path::Path, line: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let ft = f.metadata()?.file_type();
    if !ft.is_file() || ft.is_fifo() {
        return Err(std::io::Error::other("not a regular file"));
    }
    f.write_all(format!("{line}\n").as_bytes())
}

fn run(cli: &Cli) -> Result<i32, Error> {
    let cfg = cli.config()?;
    tracing::info!(
        "device {}, addresses {:?}, state in {}",
        cfg.device,
        cfg.addresses,
        cfg.state_dir.display()
    );
    let sends = !matches!(
        cli.command,
        Command::Setup { dry_run: true, .. }
            | Command::Teardown { dry_run: true }
            | Command::Reload { .. }
    );
    if sends && !plugctl::kernel::has_net_admin() {
        let name = format!("{:?}", cli.command);
        let name = name.split([' ', '{']).next().unwrap_or("").to_lowercase();
        return Err(Error::Permission {
            what: format!("plugctl {name}"),
        });
    }
    match &cli.command {
        Command::Setup { dry_run: true, .. } => {
            tree::commands(&cfg).iter().for_each(|c| {
                report::out(c);
            });
            Ok(0)
        }
        Command::Teardown { dry_run: true } => {
            tree::teardown_commands(&cfg).iter().for_each(|c| {
                report::out(c);
            });
            Ok(0)
        }
        Command::Setup { force, .. } => {
            let changes = Controller::new(cfg)?.setup(*force)?;
            report::out(&changes.to_string());
            Ok(0)
        }
        Command::Teardown { .. } => {
            let changes = Controller::new(cfg)?.teardown()?;
            report::out(&changes.to_string());
            Ok(0)
        }
        Command::Plug { lease } => {
            let mut c = Controller::new(cfg)?;
            let lease = lease.unwrap_or_else(|| plugctl::hold::lease::default_lease(c.config()));
            c.hold_manual(Some(lease))?;
            report::out(&format!(
                "plug closed: connections are held until `plugctl release`; new ones for {}",
                humantime::format_duration(lease)
            ));
            Ok(0)
        }
        Command::Release { force } => {
            let s = Controller::new(cfg)?.release(*force)?;
            if let Some(why) = &s.unrecorded {
                report::warning(&format!("released the plug without recording it: {why}"));
            }
            report::out(&format!(
                "plug released ({} packets were held, {} dropped)",
                s.packets, s.drops
            ));
            Ok(0)
        }
        Command::Reload {
            strict,
            user,
            json,
            record,
            command,
            no_wait,
            ..
        } => {
            let opts = plugctl::reload::ReloadOptions {
                max_hold: cfg.max_hold,
                strict: *strict,
                user: match user.as_deref() {
                    Some(spec) => {
                        let u = plugctl::reload::RunAs::parse(spec)?;
                        u.ensure_can_switch()?;
                        Some(u)
                    }
                    None => None,
                },
                wait_listen: cfg.wait_listen.clone(),
                settle: cfg.settle,
                no_wait: *no_wait,
                quiet: cfg.quiet_window,
                scope: plugctl::handover::snapshot::Scope::of(&cfg),
            };
            // One process start per reload: the watchdog is forked now,
            // while this process has one thread (before the runtime), not
            // executed again later. Without CAP_NET_ADMIN nothing is held.
            let dog = if plugctl::kernel::has_net_admin() {
                plugctl::watchdog::Watchdog::fork(&cfg)
                    .map_err(|e| tracing::debug!("{e}; the hold will start its own"))
                    .ok()
            } else {
                None
            };
            // The observed hand-over waits for what CMD leaves running in
            // the background; its orphans come here to be seen, and pass on
            // to init when plugctl exits.
            if !*no_wait && opts.wait_listen.is_empty() {
                if let Err(e) = plugctl::handover::background::adopt() {
                    tracing::debug!("cannot adopt what the command leaves running: {e}");
                }
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|source| Error::Os {
                    what: "starting the runtime".into(),
                    source,
                })?;
            let rec = rt.block_on(async {
                let mut agent = plugctl::agent::Agent::new(cfg)?;
                if let Some(dog) = dog {
                    agent = agent.with_watchdog(dog);
                }
                plugctl::reload::reload(&agent, command, &opts).await
            });
            // Every task has ended (the hold is given back, the watchdog
            // stood down): no need to wait for idle pool threads to exit.
            rt.shutdown_background();
            let rec = rec?;
            // Serialised only when asked for (a reload's cost is its
            // start-up: code that does not run is not translated).
            let line = (record.is_some() || *json)
                .then(|| serde_json::to_string(&rec).unwrap_or_default());
            // The record file first: it must not depend on a terminal
            // that may be gone.
            if let (Some(path), Some(line)) = (record, &line) {
                if let Err(e) = append_record(path, line) {
                    report::warning(&format!("cannot append to {}: {e}", path.display()));
                }
            }
            if let (true, Some(line)) = (*json, &line) {
                report::out(line);
            } else {
                report::err_line(&rec.summary());
            }
            Ok(rec.exit_code())
        }
        Command::Status { json } => {
            let status = Controller::new(cfg)?.status()?;
            if *json {
                report::out(&serde_json::to_string(&status).unwrap_or_default());
            } else {
                report::out(&status.to_string());
            }
            Ok(status.exit_code())
        }
    }
}

/// The entry point, called by the C runtime instead of Rust's `lang_start`,
/// which finds the main thread's stack with glibc's `pthread_getattr_np`:
/// a read and an sscanf of `/proc/self/maps`, a sixth of the instructions of
/// `plugctl --version` (callgrind), for a stack-overflow message. Of the
/// rest of that start-up plugctl relies on, this does the same: closed
/// standard descriptors are opened on /dev/null (else the first file or
/// socket plugctl opens would be its stdout), SIGPIPE is ignored (a closed
/// pipe is an error, not a kill; std still gives commands it runs the
/// default), a panic exits 101, stdout is flushed. `std::env::args` needs
/// none of it (glibc hands argv to std's initialiser).
#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    open_closed_std_fds();
    // SAFETY: setting a signal's disposition to SIG_IGN.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let code = std::panic::catch_unwind(plugctl_main).unwrap_or(101);
    let _ = std::io::Write::flush(&mut std::io::stdout());
    code
}

/// Open /dev/null on each of 0, 1 and 2 that is closed, as std does.
#[cfg(not(test))]
fn open_closed_std_fds() {
    for fd in 0..=2 {
        // SAFETY: F_GETFD only asks whether the descriptor is open.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF)
        {
            // SAFETY: open returns the lowest free descriptor, which is
            // `fd`: the lower ones are open.
            if unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) } != fd {
                std::process::abort();
            }
        }
    }
}

#[cfg_attr(test, allow(dead_code))]
fn plugctl_main() -> libc::c_int {
    // The watchdog is this same binary, started by a holder (see watchdog.rs).
    let args: Vec<std::ffi::OsString> = std::env::args_os().take(3).collect();
    if args.len() == 3 && args[1] == plugctl::watchdog::SUBCOMMAND {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .without_time()
            .init();
        let id = args[2].to_string_lossy();
        return plugctl::watchdog::run(&id);
    }
    let mut cmd = <Cli as clap::CommandFactory>::command();
    let parsed = cmd
        .try_get_matches_from_mut(std::env::args_os())
        .and_then(|mut m| Cli::from_arg_matches_mut(&mut m).map_err(|e| e.format(&mut cmd)));
    // clap's tree is not needed past this point, and dropping it costs a
    // tenth of a reload's start (callgrind); the process is short-lived.
    std::mem::forget(cmd);
    let cli = match parsed {
        Ok(cli) => cli,
        // --help and --version print and exit 0; errors exit 2 (their
        // output may go to a closed stream: clap ignores that).
        Err(e) => e.exit(),
    };
    let level = match cli.verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .without_time()
        .with_max_level(level)
        .init();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            report::error(&e.to_string());
            e.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap's own checks of the definition, deferred subcommands included
    /// (`#[command(defer = true)]` builds them only when given).
    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }

    /// A deferred subcommand still gets its arguments.
    #[test]
    fn a_deferred_subcommand_parses_its_arguments() {
        use clap::Parser;
        let cli = super::Cli::try_parse_from([
            "plugctl",
            "reload",
            "--no-wait",
            "--port",
            "80",
            "--",
            "true",
        ])
        .unwrap();
        assert_eq!(cli.ports, vec![80]);
        assert!(matches!(
            cli.command,
            super::Command::Reload { no_wait: true, ref command, .. } if command == &["true"]
        ));
    }
}
