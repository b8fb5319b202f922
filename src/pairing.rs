//! Pairing and tokens: pairing itself, which token to use, pending approvals, and
//! BitPay's pairing errors explained.

use anyhow::Result;
use serde::Serialize;

use crate::bitpay::{BitPayClient, BitPayError};
use crate::cli::PairArgs;
use crate::clock;
use crate::context::Context;
use crate::exit::Problem;
use crate::secret::Secret;
use crate::store::TokenRecord;

/// Pairs with a dashboard code (an approved token at once) or requests a code for the
/// merchant to approve; from the admin page only for a pairing role, and replacing an
/// active token only when confirmed (`replace`).
pub fn pair(ctx: &Context, args: &PairArgs) -> Result<Paired> {
    let label = token_label();
    if let Some(code) = args.code.as_deref() {
        if !is_valid_pairing_code(code) {
            return Err(Problem::BadInput(format!(
                "\"{}\" is not a BitPay pairing code: codes are exactly 7 letters or digits, like u7m0VSR",
                crate::output::printable(&code.chars().take(40).collect::<String>())
            ))
            .into());
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
        return Err(Problem::BadInput(format!(
            "already paired ({} token active): a new pairing code replaces it, and customers then pay the BitPay account that code belongs to. Confirm to replace it",
            active.join(", ")
        ))
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
        return Err(Problem::Setup(format!(
            "BitPay answered the pairing request without a usable token and pairing code (got code {:?})",
            grant.pairing_code
        ))
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
        return Err(Problem::Setup(format!(
            "not paired with BitPay ({} environment): run `splynx-bitpay pair CODE` with a pairing code from the BitPay dashboard",
            ctx.environment()
        ))
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
    Err(Problem::Setup(format!(
        "the BitPay {} token is not approved yet: approve pairing code {} at {}, then try again",
        pending.facade,
        pending.pairing_code.as_deref().unwrap_or("(unknown)"),
        ctx.dashboard_tokens_url()
    ))
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
        let cause = match &error {
            BitPayError::Transport { message, .. } => format!(
                "BitPay is unreachable from this server ({message}): check its network, DNS and firewall (bitpay.api_url is {})",
                ctx.config.bitpay.api_url
            ),
            _ => "BitPay is down or overloaded".to_string(),
        };
        return Problem::Temporary(format!(
            "{cause}; nothing was changed: try again in a few minutes"
        ))
        .into();
    }
    let enter_new_code = match from {
        PairingFrom::Shell => "run `splynx-bitpay pair NEWCODE`",
        PairingFrom::AdminPage => "enter it here",
    };
    let message = error.message().to_string();
    let lower = message.to_ascii_lowercase();
    let env = ctx.environment();
    let advice = if lower.contains("production pairing code") || lower.contains("pairing failed") {
        let other = if env == "test" { "production" } else { "test" };
        format!(
            "pairing code {} belongs to the other BitPay environment: this add-on is set to environment = \"{env}\" ({}). Create the code in that environment's dashboard and {enter_new_code}, or set bitpay.environment = \"{other}\" in {}",
            code.unwrap_or("?"),
            ctx.config.bitpay.api_url,
            ctx.config.path.display()
        )
    } else if lower.contains("unable to create token")
        || lower.contains("not found")
        || lower.contains("expired")
    {
        format!(
            "BitPay does not accept pairing code {}: it is unknown, expired (codes last 24 hours) or already used. Create a new code in the BitPay dashboard (Payment Tools → Manage API Tokens → Add New Token) and {enter_new_code}",
            code.unwrap_or("?")
        )
    } else {
        format!("BitPay refused pairing: {message}")
    };
    // The advice names the problem and what to do; BitPay's own words (often "HTTP 500:
    // Unable to create token" for a wrong code) go to the log, not to the admin page.
    log::warn!("pairing: {error}");
    Problem::Setup(advice).into()
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
