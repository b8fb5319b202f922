//! Pairing and tokens: pairing itself, which token to use, pending approvals, and
//! BitPay's pairing errors explained.

use anyhow::Result;
use serde::Serialize;

use crate::bitpay::{BitPayClient, BitPayError};
use crate::cli::PairArgs;
use crate::clock;
use crate::context::Context;
use crate::exit::{ExitCode, Failing};
use crate::secret::Secret;
use crate::store::TokenRecord;

/// Why pairing, or the token it made, cannot be used: what the admin must do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairingError {
    #[error(
        "\"{0}\" is not a BitPay pairing code: codes are exactly 7 letters or digits, like u7m0VSR"
    )]
    NotACode(String),
    #[error("already paired ({active} token active): a new pairing code replaces it, and customers then pay the BitPay account that code belongs to. Confirm to replace it")]
    AlreadyPaired { active: String },
    #[error("BitPay answered the pairing request without a usable token and pairing code (got code {code:?})")]
    NoUsableToken { code: String },
    #[error("not paired with BitPay ({environment} environment): run `splynx-bitpay pair CODE` with a pairing code from the BitPay dashboard")]
    NotPaired { environment: &'static str },
    #[error("the BitPay {facade} token is not approved yet: approve pairing code {code} at {url}, then try again")]
    NotApproved {
        facade: String,
        code: String,
        url: String,
    },
    #[error("BitPay is unreachable from this server ({message}): check its network, DNS and firewall (bitpay.api_url is {api_url}); nothing was changed: try again in a few minutes")]
    Unreachable { message: String, api_url: String },
    #[error("BitPay is down or overloaded; nothing was changed: try again in a few minutes")]
    Down,
    #[error("pairing code {code} belongs to the other BitPay environment: this add-on is set to environment = \"{environment}\" ({api_url}). Create the code in that environment's dashboard and {then}, or set bitpay.environment = \"{other}\" in {config}")]
    OtherEnvironment {
        code: String,
        environment: &'static str,
        other: &'static str,
        api_url: String,
        then: &'static str,
        config: String,
    },
    #[error("BitPay does not accept pairing code {code}: it is unknown, expired (codes last 24 hours) or already used. Create a new code in the BitPay dashboard (Payment Tools → Manage API Tokens → Add New Token) and {then}")]
    CodeRefused { code: String, then: &'static str },
    #[error("BitPay refused pairing: {0}")]
    Refused(String),
}

impl Failing for PairingError {
    fn exit_code(&self) -> ExitCode {
        match self {
            PairingError::NotACode(_) | PairingError::AlreadyPaired { .. } => ExitCode::BadInput,
            PairingError::Unreachable { .. } | PairingError::Down => ExitCode::Temporary,
            _ => ExitCode::Config,
        }
    }
}

/// Pairs with a dashboard code (an approved token at once) or requests a code for the
/// merchant to approve; from the admin page only for a pairing role, and replacing an
/// active token only when confirmed (`replace`).
pub fn pair(ctx: &Context, args: &PairArgs) -> Result<Paired> {
    let label = token_label();
    if let Some(code) = args.code.as_deref() {
        if !is_valid_pairing_code(code) {
            let shown: String = code.chars().take(40).collect();
            return Err(
                PairingError::NotACode(crate::output::printable(&shown).into_owned()).into(),
            );
        }
    }
    let caller = crate::admin::require_pairing_role(ctx, &args.admin)?;
    let active: Vec<String> = ctx
        .store
        .tokens(ctx.environment())?
        .into_iter()
        .filter(|t| t.approved)
        .map(|t| t.facade)
        .collect();
    if caller.is_some() && args.code.is_some() && !active.is_empty() && !args.replace {
        return Err(PairingError::AlreadyPaired {
            active: active.join(", "),
        }
        .into());
    }
    let from = match caller {
        Some(_) => PairingFrom::AdminPage,
        None => PairingFrom::Shell,
    };
    let identity = ctx.identity()?;
    let sin = identity.sin();
    let client = ctx.bitpay(Some(identity));
    let env = ctx.environment();
    let now = clock::now_ms();

    // A dashboard code grants an approved token at once; a requested one waits for approval.
    let (grant, approved) = match &args.code {
        Some(code) => (
            client
                .claim_pairing_code(&sin, code, &label)
                .map_err(|e| explain_pairing_error(ctx, Some(code), e, from))?,
            true,
        ),
        None => (
            client
                .request_token(&sin, &args.facade, &label)
                .map_err(|e| explain_pairing_error(ctx, None, e, from))?,
            false,
        ),
    };
    if grant.token.is_empty() || !approved && !is_valid_pairing_code(&grant.pairing_code) {
        return Err(PairingError::NoUsableToken {
            code: grant.pairing_code,
        }
        .into());
    }
    let facade = match (grant.facade.as_str(), approved) {
        ("", true) => "pos".to_string(),
        ("", false) => args.facade.clone(),
        (given, _) => given.to_string(),
    };
    ctx.store.save_token(&TokenRecord {
        environment: env.to_string(),
        facade: facade.clone(),
        token: Secret::new(grant.token),
        approved,
        pairing_code: (!approved).then(|| grant.pairing_code.clone()),
        pairing_expires_at: if approved {
            None
        } else {
            grant.pairing_expiration
        },
        label: Some(label),
        created_at: now,
    })?;
    ctx.store.journal(
        None,
        "pairing",
        &if approved {
            format!(
                "paired: {facade} token active{}, by {}",
                if active.is_empty() {
                    ""
                } else {
                    " (replaced the active token)"
                },
                crate::admin::who(caller.as_ref())
            )
        } else {
            format!(
                "requested a {facade} pairing code, by {}",
                crate::admin::who(caller.as_ref())
            )
        },
        None,
        now,
    )?;
    ctx.store.make_durable()?;
    Ok(Paired {
        environment: env.to_string(),
        api_url: client.base_url().to_string(),
        facade,
        sin,
        approved,
        pending: (!approved).then(|| PendingCode {
            pairing_code: grant.pairing_code,
            approve_url: ctx.dashboard_tokens_url(),
            pairing_expires_at: grant.pairing_expiration,
        }),
    })
}

/// `pair`'s result.
#[derive(Debug, Serialize)]
pub struct Paired {
    pub environment: String,
    pub api_url: String,
    pub facade: String,
    pub sin: String,
    pub approved: bool,
    /// A requested token: the code to approve in BitPay's dashboard.
    #[serde(flatten)]
    pub pending: Option<PendingCode>,
}

#[derive(Debug, Serialize)]
pub struct PendingCode {
    pub pairing_code: String,
    pub approve_url: String,
    pub pairing_expires_at: Option<i64>,
}

/// "splynx-bitpay on <host>": BitPay labels allow letters, digits, spaces, `_` and `-`.
fn token_label() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    format!("splynx-bitpay {host}").trim().to_string()
}

/// A dashboard pairing code: exactly seven letters or digits.
pub fn is_valid_pairing_code(code: &str) -> bool {
    code.len() == 7 && code.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Checks pending tokens with BitPay (`GET /tokens`) and marks the approved ones.
/// Returns whether BitPay could be asked.
pub fn refresh_pending(
    ctx: &Context,
    client: &BitPayClient,
    tokens: &mut [TokenRecord],
) -> Result<()> {
    if tokens.iter().all(|t| t.approved) {
        return Ok(());
    }
    let active = match client.active_tokens() {
        Ok(active) => active,
        // No token of ours is active yet: BitPay does not know the SIN.
        Err(e) if e.is_authorization() => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    for token in tokens.iter_mut().filter(|t| !t.approved) {
        if active
            .iter()
            .any(|(facade, value)| facade == &token.facade && value == token.token.expose())
        {
            ctx.store
                .mark_token_approved(&token.environment, &token.facade)?;
            token.approved = true;
        }
    }
    Ok(())
}

/// The token to create and fetch invoices with: merchant when approved, else pos.
pub fn invoice_token(ctx: &Context, client: &BitPayClient) -> Result<TokenRecord> {
    let mut tokens = ctx.store.tokens(ctx.environment())?;
    if tokens.is_empty() {
        return Err(PairingError::NotPaired {
            environment: ctx.environment(),
        }
        .into());
    }
    if !tokens.iter().any(|t| t.approved) {
        refresh_pending(ctx, client, &mut tokens)?;
    }
    let pick = |facade: &str| {
        tokens
            .iter()
            .find(|t| t.approved && t.facade == facade)
            .cloned()
    };
    if let Some(token) = pick("merchant").or_else(|| pick("pos")) {
        return Ok(token);
    }
    let pending = &tokens[0];
    Err(PairingError::NotApproved {
        facade: pending.facade.clone(),
        code: pending
            .pairing_code
            .clone()
            .unwrap_or_else(|| "(unknown)".into()),
        url: ctx.dashboard_tokens_url(),
    }
    .into())
}

/// Where the admin pairs: the shell, or the add-on's admin page in Splynx (where advice
/// to run a command would be no help).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairingFrom {
    Shell,
    AdminPage,
}

/// Turns a failed `POST /tokens` into what the admin must do.
pub fn explain_pairing_error(
    ctx: &Context,
    code: Option<&str>,
    error: BitPayError,
    from: PairingFrom,
) -> anyhow::Error {
    if error.is_temporary() {
        // Said once, by its cause: BitPay unreachable from here, or BitPay failing. Nothing
        // was paired either way. The full error is for `-v`.
        log::debug!("pairing: {error}");
        return match &error {
            BitPayError::Transport { message, .. } => PairingError::Unreachable {
                message: message.clone(),
                api_url: ctx.config.bitpay.api_url.clone(),
            },
            _ => PairingError::Down,
        }
        .into();
    }
    let enter_new_code = match from {
        PairingFrom::Shell => "run `splynx-bitpay pair NEWCODE`",
        PairingFrom::AdminPage => "enter it here",
    };
    let message = error.message().to_string();
    let lower = message.to_ascii_lowercase();
    let env = ctx.environment();
    let code = code.unwrap_or("?").to_string();
    let advice = if lower.contains("production pairing code") || lower.contains("pairing failed") {
        PairingError::OtherEnvironment {
            code,
            environment: env,
            other: if env == "test" { "production" } else { "test" },
            api_url: ctx.config.bitpay.api_url.clone(),
            then: enter_new_code,
            config: ctx.config.path.display().to_string(),
        }
    } else if lower.contains("unable to create token")
        || lower.contains("not found")
        || lower.contains("expired")
    {
        PairingError::CodeRefused {
            code,
            then: enter_new_code,
        }
    } else {
        PairingError::Refused(message)
    };
    // The advice names the problem and what to do; BitPay's own words (often "HTTP 500:
    // Unable to create token" for a wrong code) go to the log, not to the admin page.
    log::warn!("pairing: {error}");
    advice.into()
}

/// A token as `status` shows it: masked (`abcd… (44 chars)`), with its approval state.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenView {
    pub facade: String,
    pub approved: bool,
    pub token: String,
    pub pairing_code: Option<String>,
    pub pairing_expires_at: Option<String>,
    pub paired_at: String,
}

impl From<&TokenRecord> for TokenView {
    fn from(token: &TokenRecord) -> TokenView {
        TokenView {
            facade: token.facade.clone(),
            approved: token.approved,
            token: token.token.masked(),
            pairing_code: if token.approved {
                None
            } else {
                token.pairing_code.clone()
            },
            pairing_expires_at: token.pairing_expires_at.map(clock::datetime_of),
            paired_at: clock::datetime_of(token.created_at),
        }
    }
}
