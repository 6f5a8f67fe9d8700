//! `reload --user USER[:GROUP]`: whom the reload command runs as.
//!
//! [`RunAs::parse`] resolves USER and GROUP through NSS (`getpwnam_r`,
//! `getgrnam_r`, `getgrouplist`), so users from LDAP, SSSD or systemd are
//! found like those in /etc/passwd. [`RunAs::apply`] makes a command start
//! with those credentials and the user's login environment, without
//! CAP_NET_ADMIN in its capability bounding set.
//!
//! The rules:
//! - USER is looked up as a name first, then, if it is a number, as a uid.
//!   A uid without a passwd entry is accepted only with an explicit GROUP
//!   (there is no entry to take the primary group from); CMD then gets no
//!   HOME, USER, LOGNAME or SHELL at all rather than plugctl's (root's).
//! - GROUP likewise: a name first, then a number; a numeric gid without a
//!   group entry is accepted (it names the gid exactly).
//! - Without GROUP, CMD's primary group is the user's and its supplementary
//!   groups are every group NSS lists the user in (`getgrouplist`). With
//!   GROUP, both are just GROUP.
//! - Unknown users and groups are [`Error::User`] (exit 14).

use std::ffi::CString;
use std::path::PathBuf;

use nix::unistd::{Gid, Group, Uid, User};

use crate::error::Error;

/// CAP_NET_ADMIN's number (linux/capability.h; the libc crate has no
/// capability constants).
const CAP_NET_ADMIN: libc::c_ulong = 12;

/// Credentials to run the command with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups (the primary group first).
    pub groups: Vec<u32>,
    /// The user's passwd entry, which sets HOME, USER, LOGNAME and SHELL;
    /// `None` for a numeric uid that has none.
    pub login: Option<Login>,
}

/// What a passwd entry puts in the command's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// The user name: USER and LOGNAME.
    pub name: String,
    /// The home directory: HOME.
    pub home: PathBuf,
    /// The login shell: SHELL (`/bin/sh` if the entry's is empty, as
    /// login(1) does).
    pub shell: PathBuf,
}

impl RunAs {
    /// Resolve `USER[:GROUP]` (names or numeric ids) through NSS; see the
    /// module docs for the rules.
    pub fn parse(spec: &str) -> Result<RunAs, Error> {
        let (user, group) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        if user.is_empty() {
            return Err(Error::User(format!(
                "no user in --user {spec:?} (expected USER[:GROUP])"
            )));
        }
        // Without a passwd entry, USER must be a uid.
        let entry = lookup_user(user)?;
        let bare_uid = match &entry {
            Some(_) => None,
            None => Some(parse_id(user, "uid")?.ok_or_else(|| {
                Error::User(format!("no such user {user:?} (looked up through NSS)"))
            })?),
        };
        let gid = match group {
            Some("") => {
                return Err(Error::User(format!(
                    "no group after ':' in --user {spec:?} (expected USER[:GROUP])"
                )))
            }
            Some(g) => Some(lookup_group(g)?),
            None => None,
        };
        let pw = match (entry, bare_uid, gid) {
            (Some(pw), _, _) => pw,
            // A bare uid is enough with an explicit group.
            (None, Some(uid), Some(gid)) => {
                return Ok(RunAs {
                    uid,
                    gid,
                    groups: vec![gid],
                    login: None,
                })
            }
            // There is no entry to take the primary group from.
            (None, _, _) => {
                return Err(Error::User(format!(
                    "no such user {user:?} (looked up through NSS; \
                     a uid without a passwd entry needs an explicit :GROUP)"
                )))
            }
        };
        let (gid, groups) = match gid {
            Some(g) => (g, vec![g]),
            None => (pw.gid.as_raw(), groups_of(&pw)?),
        };
        let shell = if pw.shell.as_os_str().is_empty() {
            PathBuf::from("/bin/sh")
        } else {
            pw.shell
        };
        Ok(RunAs {
            uid: pw.uid.as_raw(),
            gid,
            groups,
            login: Some(Login {
                name: pw.name,
                home: pw.dir,
                shell,
            }),
        })
    }

    /// Fail early, with a one-line [`Error::User`], when this process cannot
    /// switch to the user: that needs CAP_SETUID, CAP_SETGID and (to drop
    /// CAP_NET_ADMIN from the bounding set) CAP_SETPCAP, i.e. root. Without
    /// this check the command would fail to start with a bare
    /// "Operation not permitted" (exit 126) that names no step.
    pub fn ensure_can_switch(&self) -> Result<(), Error> {
        const CAP_SETGID: u32 = 6;
        const CAP_SETUID: u32 = 7;
        const CAP_SETPCAP: u32 = 8;
        let missing: Vec<&str> = [
            (CAP_SETUID, "CAP_SETUID"),
            (CAP_SETGID, "CAP_SETGID"),
            (CAP_SETPCAP, "CAP_SETPCAP"),
        ]
        .into_iter()
        .filter(|(bit, _)| !crate::kernel::has_capability(*bit))
        .map(|(_, name)| name)
        .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::User(format!(
                "--user needs root: running the command as uid {} needs {}",
                self.uid,
                missing.join(", ")
            )))
        }
    }

    /// Make `cmd` run with these credentials: set HOME, USER, LOGNAME and
    /// SHELL from the passwd entry (remove them if there is none), and in
    /// the child, between fork and exec, drop CAP_NET_ADMIN from the
    /// capability bounding set, then set the supplementary groups, the gid
    /// and the uid, in that order. A failing step fails the spawn with its
    /// OS error.
    ///
    /// Do not also use `Command::uid`/`gid`: std switches those before the
    /// `pre_exec` closures run, and the groups could then not be set.
    pub fn apply(&self, cmd: &mut tokio::process::Command) {
        const VARS: [&str; 4] = ["HOME", "USER", "LOGNAME", "SHELL"];
        match &self.login {
            Some(l) => {
                cmd.env("HOME", &l.home)
                    .env("USER", &l.name)
                    .env("LOGNAME", &l.name)
                    .env("SHELL", &l.shell);
            }
            None => {
                for v in VARS {
                    cmd.env_remove(v);
                }
            }
        }
        // Everything the child needs is prepared here: it must not allocate.
        let (uid, gid) = (self.uid as libc::uid_t, self.gid as libc::gid_t);
        let groups: Vec<libc::gid_t> = self.groups.clone();
        // SAFETY: the closure only makes system calls through their libc
        // wrappers (prctl, and setgroups, setgid, setuid as std itself calls
        // them between fork and exec) on data it owns, and builds its errors
        // with `last_os_error`, which does not allocate.
        unsafe {
            cmd.pre_exec(move || drop_privileges(uid, gid, &groups));
        }
    }
}

/// The child's side of [`RunAs::apply`]. Runs between fork and exec: no
/// allocation, no locks.
fn drop_privileges(
    uid: libc::uid_t,
    gid: libc::gid_t,
    groups: &[libc::gid_t],
) -> std::io::Result<()> {
    let fail = std::io::Error::last_os_error;
    let zero: libc::c_ulong = 0;
    // SAFETY: plain system calls; `groups` is a valid slice for its length.
    unsafe {
        // Needs CAP_SETPCAP; skipped if the set already lacks it.
        if libc::prctl(libc::PR_CAPBSET_READ, CAP_NET_ADMIN, zero, zero, zero) != 0
            && libc::prctl(libc::PR_CAPBSET_DROP, CAP_NET_ADMIN, zero, zero, zero) != 0
        {
            return Err(fail());
        }
        if libc::setgroups(groups.len(), groups.as_ptr()) != 0 {
            return Err(fail());
        }
        if libc::setgid(gid) != 0 {
            return Err(fail());
        }
        if libc::setuid(uid) != 0 {
            return Err(fail());
        }
    }
    Ok(())
}

/// A numeric id, `None` if `s` is not a number. `u32::MAX` is `-1` to the
/// kernel ("unchanged"), never an id.
fn parse_id(s: &str, what: &str) -> Result<Option<u32>, Error> {
    match s.parse::<u32>() {
        Ok(u32::MAX) => Err(Error::User(format!("invalid {what} {s:?}"))),
        Ok(n) => Ok(Some(n)),
        Err(_) => Ok(None),
    }
}

/// Errors the `get*_r` functions may return for "not found".
fn not_found(e: nix::Error) -> bool {
    matches!(
        e,
        nix::Error::ENOENT | nix::Error::ESRCH | nix::Error::EBADF | nix::Error::EPERM
    )
}

fn nss_error(what: &str, name: &str, e: nix::Error) -> Error {
    Error::User(format!("looking up {what} {name:?} through NSS: {e}"))
}

/// USER's passwd entry: by name, else by uid if USER is a number.
fn lookup_user(user: &str) -> Result<Option<User>, Error> {
    let found = |r: nix::Result<Option<User>>| match r {
        Ok(u) => Ok(u),
        Err(e) if not_found(e) => Ok(None),
        Err(e) => Err(nss_error("user", user, e)),
    };
    if let Some(u) = found(User::from_name(user))? {
        return Ok(Some(u));
    }
    match parse_id(user, "uid")? {
        Some(uid) => found(User::from_uid(Uid::from_raw(uid))),
        None => Ok(None),
    }
}

/// GROUP's gid: by name, else GROUP itself if it is a number (with or
/// without a group entry).
fn lookup_group(group: &str) -> Result<u32, Error> {
    match Group::from_name(group) {
        Ok(Some(g)) => return Ok(g.gid.as_raw()),
        Ok(None) => {}
        Err(e) if not_found(e) => {}
        Err(e) => return Err(nss_error("group", group, e)),
    }
    parse_id(group, "gid")?
        .ok_or_else(|| Error::User(format!("no such group {group:?} (looked up through NSS)")))
}

/// The user's primary group followed by every other group NSS lists the
/// user in.
fn groups_of(pw: &User) -> Result<Vec<u32>, Error> {
    let name = CString::new(pw.name.as_str())
        .map_err(|_| Error::User(format!("user name {:?} contains a NUL byte", pw.name)))?;
    let listed = nix::unistd::getgrouplist(&name, pw.gid).map_err(|e| {
        Error::User(format!(
            "listing the groups of user {:?} through NSS: {e}",
            pw.name
        ))
    })?;
    let mut groups = vec![pw.gid.as_raw()];
    for g in listed.into_iter().map(Gid::as_raw) {
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// uids and gids no NSS database here is expected to have.
    const NO_UID: u32 = 2_000_000_123;
    const NO_GID: u32 = 2_000_000_124;

    fn root_entry() -> User {
        User::from_uid(Uid::from_raw(0))
            .ok()
            .flatten()
            .expect("NSS knows uid 0")
    }

    fn message(r: Result<RunAs, Error>) -> String {
        match r {
            Err(e @ Error::User(_)) => {
                assert_eq!(e.exit_code(), 14);
                e.to_string()
            }
            other => panic!("Error::User expected, got {other:?}"),
        }
    }

    #[test]
    fn root_by_name_and_by_uid() {
        let pw = root_entry();
        let by_uid = RunAs::parse("0").expect("0");
        assert_eq!(by_uid.uid, 0);
        assert_eq!(by_uid.gid, pw.gid.as_raw());
        assert_eq!(by_uid.groups.first(), Some(&pw.gid.as_raw()));
        let login = by_uid.login.clone().expect("root has a passwd entry");
        assert_eq!(login.name, pw.name);
        assert_eq!(login.home, pw.dir);
        assert_eq!(RunAs::parse(&pw.name).expect("root"), by_uid);
    }

    #[test]
    fn explicit_group_by_name_or_number_is_the_only_group() {
        let root = RunAs::parse("root:0").expect("root:0");
        assert_eq!((root.uid, root.gid, root.groups.clone()), (0, 0, vec![0]));
        assert!(root.login.is_some());
        let gname = Group::from_gid(Gid::from_raw(0))
            .ok()
            .flatten()
            .expect("NSS knows gid 0")
            .name;
        assert_eq!(
            RunAs::parse(&format!("root:{gname}")).expect("root:<gid 0>"),
            root
        );
        assert_eq!(RunAs::parse("0:0").expect("0:0"), root);
    }

    #[test]
    fn numeric_ids_without_entries() {
        assert!(User::from_uid(Uid::from_raw(NO_UID))
            .ok()
            .flatten()
            .is_none());
        assert!(Group::from_gid(Gid::from_raw(NO_GID))
            .ok()
            .flatten()
            .is_none());
        // A gid without an entry is taken as is.
        let r = RunAs::parse(&format!("0:{NO_GID}")).expect("0:NO_GID");
        assert_eq!((r.uid, r.gid, r.groups), (0, NO_GID, vec![NO_GID]));
        // A uid without an entry, with a group: no login environment.
        let r = RunAs::parse(&format!("{NO_UID}:0")).expect("NO_UID:0");
        assert_eq!(
            (r.uid, r.gid, r.groups, r.login),
            (NO_UID, 0, vec![0], None)
        );
        // Without a group it is refused: there is no primary group to take.
        let m = message(RunAs::parse(&NO_UID.to_string()));
        assert!(m.starts_with(&format!("no such user \"{NO_UID}\"")), "{m}");
        assert!(m.contains(":GROUP"), "{m}");
        // -1 is no id.
        assert!(message(RunAs::parse("4294967295:0")).contains("invalid uid"));
        assert!(message(RunAs::parse("0:4294967295")).contains("invalid gid"));
    }

    #[test]
    fn unknown_names_are_one_line_user_errors() {
        assert_eq!(
            message(RunAs::parse("nosuchuser-xyz")),
            r#"no such user "nosuchuser-xyz" (looked up through NSS)"#
        );
        assert_eq!(
            message(RunAs::parse("root:nosuchgroup-xyz")),
            r#"no such group "nosuchgroup-xyz" (looked up through NSS)"#
        );
        // The group is checked even when the user is unknown too.
        assert!(message(RunAs::parse("nosuchuser-xyz:nosuchgroup-xyz")).contains("no such"));
        for spec in ["", ":", ":0", "root:", "-1", "root:-1"] {
            let m = message(RunAs::parse(spec));
            assert!(!m.contains('\n'), "{spec:?}: {m}");
        }
    }

    #[test]
    fn apply_sets_or_removes_the_login_environment() {
        use std::ffi::OsStr;
        let env = |r: &RunAs| {
            let mut cmd = tokio::process::Command::new("true");
            r.apply(&mut cmd);
            cmd.as_std()
                .get_envs()
                .map(|(k, v)| (k.to_os_string(), v.map(OsStr::to_os_string)))
                .collect::<std::collections::HashMap<_, _>>()
        };
        let with = RunAs {
            uid: 1,
            gid: 2,
            groups: vec![2, 3],
            login: Some(Login {
                name: "someone".into(),
                home: "/home/someone".into(),
                shell: "/bin/zsh".into(),
            }),
        };
        let e = env(&with);
        let get = |k: &str| e.get(OsStr::new(k)).cloned().flatten();
        assert_eq!(get("HOME"), Some("/home/someone".into()));
        assert_eq!(get("USER"), Some("someone".into()));
        assert_eq!(get("LOGNAME"), Some("someone".into()));
        assert_eq!(get("SHELL"), Some("/bin/zsh".into()));
        let e = env(&RunAs {
            login: None,
            ..with
        });
        for k in ["HOME", "USER", "LOGNAME", "SHELL"] {
            assert_eq!(e.get(OsStr::new(k)), Some(&None), "{k} is removed");
        }
    }
}
