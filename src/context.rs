//! Everything a command needs, opened once: settings, state store, clients.

use std::path::Path;

use anyhow::Result;

use crate::bitpay::{BitPayClient, Identity};
use crate::config::{self, Config};
use crate::output::Output;
use crate::splynx::SplynxClient;
use crate::store::Store;

/// Whether a command may create the data directory and the state store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Create,
    /// Read-only commands (`status`, `show`, `settings`): an empty store when none exists.
    Existing,
}

pub struct Context {
    pub config: Config,
    pub store: Store,
    pub output: Output,
}

impl Context {
    /// `config_env` is `$SPLYNX_BITPAY_CONFIG`, read by the caller (the only place the
    /// environment is consulted).
    pub fn open(
        config_flag: Option<&Path>,
        config_env: Option<&str>,
        output: Output,
        state: State,
    ) -> Result<Context> {
        let path = config::resolve_path(config_flag, config_env);
        // Only what settlement cannot run without refuses here; checkout refuses the rest.
        let config = Config::read(&path)?;
        log::debug!("settings: {config:?}");
        refuse_foreign_data_dir(&config.data_dir)?;
        let store = match state {
            State::Create => Store::open(&config.data_dir)?,
            // Looking creates nothing: before the first pairing there is nothing to show,
            // and a directory made now (by root, say) would lock the web server out later.
            State::Existing if !config.database_path().exists() => Store::open_in_memory()?,
            State::Existing => Store::open(&config.data_dir)?,
        };
        Ok(Context {
            config,
            store,
            output,
        })
    }

    pub fn environment(&self) -> &'static str {
        self.config.bitpay.environment.as_str()
    }

    /// The add-on's key pair, created on first use.
    pub fn identity(&self) -> Result<Identity> {
        Ok(Identity::load_or_create(&self.config.key_path())?)
    }

    /// The key pair if one exists; never creates one.
    pub fn existing_identity(&self) -> Result<Option<Identity>> {
        Ok(Identity::load_existing(&self.config.key_path())?)
    }

    pub fn bitpay(&self, identity: Option<Identity>) -> BitPayClient {
        BitPayClient::new(&self.config.bitpay, identity)
    }

    pub fn splynx(&self) -> SplynxClient<'_> {
        SplynxClient::new(&self.config.splynx, &self.store)
    }

    /// Where the merchant approves pairing codes.
    pub fn dashboard_tokens_url(&self) -> String {
        format!(
            "{}/dashboard/merchant/api-tokens",
            self.config.bitpay.api_url
        )
    }
}

/// Root about to leave root-owned files in the web server's data directory.
#[derive(Debug, thiserror::Error)]
#[error("{path} belongs to user id {owner}, not root: run this as that user (e.g. `sudo -u www-data splynx-bitpay ...`) so every file stays usable by the web server")]
pub struct ForeignDataDir {
    path: String,
    owner: u32,
}

impl crate::exit::Failing for ForeignDataDir {
    fn exit_code(&self) -> crate::exit::ExitCode {
        crate::exit::ExitCode::Config
    }
}

/// Root running a command on an installed system would leave root-owned files in the web
/// server's data directory, which the webhook and portal then cannot open.
fn refuse_foreign_data_dir(data_dir: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let (Ok(dir), Ok(me)) = (std::fs::metadata(data_dir), std::fs::metadata("/proc/self")) else {
        return Ok(());
    };
    if me.uid() == 0 && dir.uid() != 0 {
        return Err(ForeignDataDir {
            path: data_dir.display().to_string(),
            owner: dir.uid(),
        }
        .into());
    }
    Ok(())
}
