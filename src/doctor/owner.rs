//! Who owns what: users and groups looked up through the system (NSS: LDAP and other
//! directories work too), and running the checks again as the data directory's owner.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

use anyhow::{Context as _, Result};

use crate::config::Config;
use crate::output::Output;

use super::WEB_USER;

/// As root, with a data directory that belongs to someone else: run the checks as that
/// user (like `sudo -u www-data splynx-bitpay doctor`) and pass on their exit code.
/// `None` when there is no such user to become (then the checks run here).
pub(super) fn rerun_as_data_owner(config_path: &Path, output: Output) -> Result<Option<u8>> {
    let Ok(config) = Config::inspect(config_path) else {
        return Ok(None);
    };
    let Ok(meta) = fs::metadata(&config.data_dir) else {
        return Ok(None);
    };
    if meta.uid() == 0 {
        return Ok(None);
    }
    let gid = primary_group(meta.uid()).unwrap_or(meta.gid());
    let exe = std::env::current_exe().context("finding this program to run it again")?;
    let config_path = std::path::absolute(config_path).unwrap_or(config_path.to_path_buf());
    let mut command = std::process::Command::new(exe);
    command.arg("--config").arg(&config_path);
    if output.json {
        command.arg("--json");
    }
    let status = command
        .arg("doctor")
        .uid(meta.uid())
        .gid(gid)
        .current_dir("/")
        .status();
    match status {
        Ok(status) => Ok(Some(status.code().unwrap_or(1).clamp(0, 255) as u8)),
        Err(e) => {
            // Checked here instead; `data_dir` then says to run as the owner.
            log::warn!(
                "cannot run the checks as {} (the owner of {}): {e}",
                user_name(meta.uid()),
                config.data_dir.display()
            );
            Ok(None)
        }
    }
}

/// This process's effective user id.
pub(super) fn effective_uid() -> Option<u32> {
    Some(uzers::get_effective_uid())
}

/// The primary group of a user.
pub(super) fn primary_group(uid: u32) -> Option<u32> {
    uzers::get_user_by_uid(uid).map(|u| u.primary_group_id())
}

pub(super) fn user_name(uid: u32) -> String {
    uzers::get_user_by_uid(uid)
        .map(|u| u.name().to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("uid {uid}"))
}

pub(super) fn owner_of(dir: &Path) -> String {
    fs::metadata(dir)
        .ok()
        .filter(|m| m.uid() != 0)
        .map(|m| user_name(m.uid()))
        .unwrap_or_else(|| WEB_USER.to_string())
}

pub(super) fn group_name(gid: u32) -> String {
    uzers::get_group_by_gid(gid)
        .map(|g| g.name().to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("gid {gid}"))
}

/// Every group `uid` is in: its primary group and the supplementary ones.
pub(super) fn groups_of(uid: u32) -> Vec<u32> {
    let Some(user) = uzers::get_user_by_uid(uid) else {
        return Vec::new();
    };
    uzers::get_user_groups(user.name(), user.primary_group_id())
        .map(|groups| groups.iter().map(|g| g.gid()).collect())
        .unwrap_or_else(|| vec![user.primary_group_id()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_groups_come_from_the_system() {
        assert_eq!(user_name(0), "root");
        assert_eq!(group_name(0), "root");
        assert_eq!(primary_group(0), Some(0));
        assert!(groups_of(0).contains(&0));
        assert_eq!(user_name(4_000_000_000), "uid 4000000000");
        assert!(groups_of(4_000_000_000).is_empty());
    }
}
