//! What a checkout decides and an invoice keeps: where it started and the terms its
//! settlement follows. Plain data over the settings' types; no I/O.

use crate::config::{Config, ConfigError, CreditOn, StatementGrouping};

/// Where the customer started a checkout. A BitPay invoice is handed out again only to
/// the same origin: a direct link's carries no name or e-mail and returns to the link, a
/// portal's shows the customer and returns to the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The portal, logged in.
    Portal,
    /// A direct pay link from an e-mail, with no session: whoever holds the link sees only
    /// the document's number and amount, so BitPay gets no name or e-mail address to show,
    /// and the customer returns to the link (which then says paid or in progress).
    DirectLink,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Portal => "portal",
            Origin::DirectLink => "link",
        }
    }

    pub fn parse(text: &str) -> Option<Origin> {
        [Origin::Portal, Origin::DirectLink]
            .into_iter()
            .find(|o| o.as_str() == text)
    }
}

/// What settlement needs, decided at checkout and stored with the invoice (and in its
/// posData, for a record rebuilt from BitPay): a setting changed or broken afterwards
/// never changes how money already received is credited and booked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementTerms {
    /// The Splynx payment method of the customer's partner.
    pub payment_method_id: i64,
    pub credit_on: CreditOn,
    pub statements: StatementGrouping,
    /// The fee transaction's category and description (used only when a fee was charged).
    pub fee_category: i64,
    pub fee_message: String,
}

impl SettlementTerms {
    /// The terms `settings` (one partner's) give; refused while any of them is wrong.
    pub fn of(settings: &Config) -> Result<SettlementTerms, ConfigError> {
        const KEYS: [&str; 5] = [
            "splynx.payment_method_id",
            "bitpay.credit_on",
            "statements.group",
            "fee.category",
            "fee.message",
        ];
        let wrong: Vec<_> = settings
            .problems
            .iter()
            .filter(|p| KEYS.contains(&p.key.as_str()))
            .cloned()
            .collect();
        if !wrong.is_empty() {
            return Err(settings.problems_error(wrong));
        }
        Ok(SettlementTerms {
            payment_method_id: settings.splynx.payment_method_id,
            credit_on: settings.bitpay.credit_on,
            statements: settings.statements,
            fee_category: settings.fee.category,
            fee_message: settings.fee.message.clone(),
        })
    }

    /// As posData carries them (`checkout`), and back (`recovery`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "payment_method_id": self.payment_method_id,
            "credit_on": self.credit_on.as_str(),
            "statements": self.statements.as_str(),
            "fee_category": self.fee_category,
            "fee_message": self.fee_message,
        })
    }

    pub fn from_json(value: &serde_json::Value) -> Option<SettlementTerms> {
        let text = |key: &str| value.get(key)?.as_str();
        let id = |key: &str| value.get(key)?.as_i64().filter(|id| *id > 0);
        Some(SettlementTerms {
            payment_method_id: id("payment_method_id")?,
            credit_on: CreditOn::parse(text("credit_on")?)?,
            statements: StatementGrouping::parse(text("statements")?)?,
            fee_category: id("fee_category")?,
            fee_message: text("fee_message")
                .filter(|m| (1..=200).contains(&m.chars().count()))?
                .to_string(),
        })
    }
}
