//! Who is at the admin page, and whether they may change the pairing.
//!
//! Splynx hands its add-on admin pages the administrator's session hash (`sash`); asked with
//! it, the API answers as that administrator and names them and their role in
//! `SpL-Administrator-*` headers. Whoever pairs decides which BitPay account customers
//! pay, so changing the pairing from the web needs a role in `admin.pairing_roles`
//! (default: the super administrator). The command line on the server is not limited.

use anyhow::Result;

use crate::cli::AdminArgs;
use crate::context::Context;
use crate::exit::{ExitCode, Failing};
use crate::splynx::model::Administrator;

/// The administrator at the admin page.
#[derive(Debug, Clone)]
pub struct Caller {
    pub admin: Administrator,
    pub may_pair: bool,
    /// Their role is in `admin.refund_roles`.
    pub may_refund: bool,
}

/// The administrator at the admin page as `status` reports them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CallerView {
    pub id: i64,
    /// Their login (and name) as Splynx has them, else "administrator <id>".
    pub label: String,
    pub role: String,
    pub partner_id: Option<i64>,
    pub may_pair: bool,
    pub pairing_roles: Vec<String>,
    pub may_refund: bool,
}

impl CallerView {
    pub fn new(caller: &Caller, allowed: &[String]) -> CallerView {
        CallerView {
            id: caller.admin.id,
            label: caller.admin.label(),
            role: caller.admin.role.clone(),
            partner_id: caller.admin.partner_id,
            may_pair: caller.may_pair,
            pairing_roles: allowed.to_vec(),
            may_refund: caller.may_refund,
        }
    }
}

/// Why an admin page's caller is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminRefusal {
    #[error("the administrator session hash (sash) is malformed")]
    MalformedSash,
    #[error("the administrator session hash belongs to administrator {owner}, not to the one logged in ({session}); open the page again from the Splynx admin panel")]
    SashOfAnother { owner: i64, session: i64 },
    /// The administrator's role may not change the pairing (`refusal` words it).
    #[error("{0}")]
    MayNotPair(String),
    #[error("Only administrators with the role {allowed} may refund: a refund sends the customer's money back. You are signed in as {admin} with the role {role:?}; ask a super administrator (admin.refund_roles in the add-on's config lists the roles).")]
    MayNotRefund {
        allowed: String,
        admin: String,
        role: String,
    },
    /// The finance roles (`admin.refund_roles`) also run audits from the page.
    #[error("Only administrators with the role {allowed} may run an audit from this page: it reads every payment of the period. You are signed in as {admin} with the role {role:?}; ask a super administrator (admin.refund_roles in the add-on's config lists the roles).")]
    MayNotAudit {
        allowed: String,
        admin: String,
        role: String,
    },
}

impl Failing for AdminRefusal {
    fn exit_code(&self) -> ExitCode {
        ExitCode::BadInput
    }
}

/// Roles compare by Splynx's role identifier, exactly (`super-administrator`,
/// `administrator`, or a custom role's own identifier): a custom role named
/// `super_administrator` is not the super administrator.
pub fn role_matches(allowed: &[String], role: &str) -> bool {
    allowed.iter().any(|a| a == role)
}

/// The administrator behind `--sash`, if given (the admin page always gives it).
pub fn identify(ctx: &Context, args: &AdminArgs) -> Result<Option<Caller>> {
    let Some(sash) = args.sash.as_deref() else {
        return Ok(None);
    };
    if sash.is_empty() || sash.len() > 200 || !sash.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AdminRefusal::MalformedSash.into());
    }
    let admin = ctx.splynx().administrator(sash)?;
    if let Some(session) = args.session_admin {
        if session != admin.id {
            return Err(AdminRefusal::SashOfAnother {
                owner: admin.id,
                session,
            }
            .into());
        }
    }
    let may_pair = role_matches(&ctx.config.pairing_roles, &admin.role);
    let may_refund = role_matches(&ctx.config.refund_roles, &admin.role);
    Ok(Some(Caller {
        admin,
        may_pair,
        may_refund,
    }))
}

/// For refunds: the web caller must hold a role in `admin.refund_roles`.
pub fn require_refund_role(ctx: &Context, args: &AdminArgs) -> Result<Option<Caller>> {
    let caller = identify(ctx, args)?;
    if let Some(c) = caller.as_ref().filter(|c| !c.may_refund) {
        return Err(refund_refusal(&ctx.config.refund_roles, &c.admin).into());
    }
    Ok(caller)
}

/// Why an administrator may not refund.
pub fn refund_refusal(allowed: &[String], admin: &Administrator) -> AdminRefusal {
    let (allowed, admin, role) = finance_refusal(allowed, admin);
    AdminRefusal::MayNotRefund {
        allowed,
        admin,
        role,
    }
}

/// Why an administrator may not run an audit from the page (the refund roles may).
pub fn audit_refusal(allowed: &[String], admin: &Administrator) -> AdminRefusal {
    let (allowed, admin, role) = finance_refusal(allowed, admin);
    AdminRefusal::MayNotAudit {
        allowed,
        admin,
        role,
    }
}

fn finance_refusal(allowed: &[String], admin: &Administrator) -> (String, String, String) {
    (roles_text(allowed), admin.label(), admin.role.clone())
}

/// `"a" or "b"`: the roles that may, for the refusals.
fn roles_text(allowed: &[String]) -> String {
    allowed
        .iter()
        .map(|r| format!("{r:?}"))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// For pair, unpair and pairing requests: the web caller must hold an allowed role.
pub fn require_pairing_role(ctx: &Context, args: &AdminArgs) -> Result<Option<Caller>> {
    let caller = identify(ctx, args)?;
    if let Some(c) = caller.as_ref().filter(|c| !c.may_pair) {
        let server = ctx.config.server.name();
        return Err(
            AdminRefusal::MayNotPair(refusal(&ctx.config.pairing_roles, &c.admin, server)).into(),
        );
    }
    Ok(caller)
}

/// Why an administrator may not change the pairing with `server` ("BitPay"), for them to
/// read.
pub fn refusal(allowed: &[String], admin: &Administrator, server: &str) -> String {
    format!(
        "Only administrators with the role {} may change the {server} pairing: whoever pairs decides which {server} account customers pay. You are signed in as {} with the role {:?}; ask a super administrator (admin.pairing_roles in the add-on's config lists the roles).",
        roles_text(allowed),
        admin.label(),
        admin.role
    )
}

/// Who made a pairing change, for the journal.
pub fn who(caller: Option<&Caller>) -> String {
    match caller {
        Some(c) => format!(
            "Splynx administrator {} (id {}, {}) on the admin page",
            c.admin.label(),
            c.admin.id,
            c.admin.role
        ),
        None => "the command line".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_compare_by_identifier_exactly() {
        let allowed = vec!["super-administrator".to_string()];
        assert!(role_matches(&allowed, "super-administrator"));
        // Look-alikes, custom roles an admin could create, are other roles.
        for role in [
            "Super administrator",
            "super_administrator",
            "SUPER-ADMINISTRATOR",
            " super-administrator ",
            "administrator",
            "super-administrator-2",
            "",
        ] {
            assert!(!role_matches(&allowed, role), "{role:?}");
        }
        let two = vec!["super-administrator".into(), "finance-manager".into()];
        assert!(role_matches(&two, "finance-manager"));
    }
}
