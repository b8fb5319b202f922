//! `pair CODE` and `pair --request`.

use anyhow::Result;
use serde::Serialize;

use crate::admin;
use crate::cli::PairArgs;
use crate::clock;
use crate::context::Context;
use crate::exit::{Problem, SUCCESS};
use crate::output::View;
use crate::pairing::{explain_pairing_error, is_valid_pairing_code, PairingFrom};
use crate::secret::Secret;
use crate::store::TokenRecord;

pub fn run(args: PairArgs, ctx: &Context) -> Result<u8> {
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
    let caller = admin::require_pairing_role(ctx, &args.admin)?;
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
                admin::who(caller.as_ref())
            )
        } else {
            format!(
                "requested a {facade} pairing code, by {}",
                admin::who(caller.as_ref())
            )
        },
        None,
        now,
    )?;
    ctx.store.make_durable()?;
    ctx.output.show(&Paired {
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
    });
    Ok(SUCCESS)
}

/// `pair`'s result.
#[derive(Debug, Serialize)]
struct Paired {
    environment: String,
    api_url: String,
    facade: String,
    sin: String,
    approved: bool,
    /// A requested token: the code to approve in BitPay's dashboard.
    #[serde(flatten)]
    pending: Option<PendingCode>,
}

#[derive(Debug, Serialize)]
struct PendingCode {
    pairing_code: String,
    approve_url: String,
    pairing_expires_at: Option<i64>,
}

impl View for Paired {
    fn human(&self) -> String {
        let (env, facade, sin) = (&self.environment, &self.facade, &self.sin);
        match &self.pending {
            None => format!(
                "Paired with BitPay ({env}, {}): facade {facade}, SIN {sin}",
                self.api_url
            ),
            Some(code) => format!(
                "Pairing code: {}\nApprove it at {} (expires {}),\nthen check with: splynx-bitpay status\nFacade {facade}, SIN {sin}",
                code.pairing_code,
                code.approve_url,
                code.pairing_expires_at
                    .map(clock::datetime_of)
                    .unwrap_or_else(|| "in 24 hours".into())
            ),
        }
    }
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
