//! An orchestration agent's use of plugctl: build the tree, hold new
//! connections around a reload, read what was held, and run a reload
//! command under plugctl's guarantees.
//!
//! Run as root on a kernel with sch_prio/sch_plug/cls_fw, in a scratch
//! network namespace so nothing real changes:
//!
//! ```sh
//! cargo build --example agent
//! sudo unshare -n sh -c 'ip link set lo up; ip addr add 169.254.255.254/32 dev lo;
//!   PATH=$PWD/target/debug:$PATH target/debug/examples/agent'
//! ```
//! (`plugctl` must be on PATH: the hold's watchdog is the plugctl binary.)

use std::time::Duration;

use plugctl::agent::Agent;
use plugctl::reload::{reload, ReloadOptions};
use plugctl::{Config, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let cfg = Config {
        state_dir: std::env::temp_dir().join("plugctl-example"),
        ..Config::default()
    };
    let agent = Agent::new(cfg)?;
    println!("{}", agent.setup(false).await?);

    // Hold new connections while we do something (here: wait 100 ms).
    let guard = agent.hold("example: config deploy").await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stats = guard.release().await?;
    println!(
        "held {} SYNs ({} bytes), {} dropped",
        stats.packets, stats.bytes, stats.drops
    );

    // A guard that goes out of scope releases too, even on an early return
    // or a panic; if the whole process dies, its watchdog releases.
    {
        let _guard = agent.hold("example: scoped").await?;
    }

    // Or let plugctl run the reload command with every guarantee.
    let opts = ReloadOptions {
        max_hold: Duration::from_secs(2),
        ..ReloadOptions::default()
    };
    let record = reload(&agent, &["true".into()], &opts).await?;
    println!("{}", record.summary());

    // Errors are a typed enum an agent can match.
    match agent.status().await {
        Ok(s) => println!("{s}"),
        Err(Error::Permission { .. }) => eprintln!("run me as root"),
        Err(Error::MissingKernelFeature { feature, .. }) => {
            eprintln!("this kernel lacks {feature}")
        }
        Err(e) => return Err(e),
    }
    Ok(())
}
