//! Payment statements, their records and transactions (`admin/finance/bank-statements`,
//! `bank-statements-records`, `transactions`): created by `POST` against a field schema
//! as strict as the payment's: an unknown field, a missing required one, a wrong type, an
//! unknown status or a dangling id is refused with Splynx's 422 list.

use chrono::{NaiveDate, NaiveDateTime};
use serde_json::{json, Map, Value};

use super::{field_text, Kind, Row, State};
use crate::util::{decimal_from_json, int_from_json, significant_scale};

#[derive(Clone, Copy)]
enum Type {
    /// An id of a row that must exist (and belong to the same customer, when both name one).
    Ref(Kind),
    Int,
    /// Text of at most this many characters.
    Text(usize),
    /// An exact decimal, at most 4 places.
    Decimal,
    OneOf(&'static [&'static str]),
    Date,
    DateTime,
}

struct Field {
    name: &'static str,
    kind: Type,
    required: bool,
}

const fn required(name: &'static str, kind: Type) -> Field {
    Field {
        name,
        kind,
        required: true,
    }
}

const fn optional(name: &'static str, kind: Type) -> Field {
    Field {
        name,
        kind,
        required: false,
    }
}

pub(super) const STATEMENT_STATUSES: &[&str] = &["new", "fail", "success"];
pub(super) const RECORD_STATUSES: &[&str] = &[
    "new",
    "processed",
    "canceled",
    "error",
    "ignored",
    "deleted",
    "manual_paired",
    "pending",
];

const STATEMENT: &[Field] = &[
    required("title", Type::Text(255)),
    required("status", Type::OneOf(STATEMENT_STATUSES)),
    optional("date_time", Type::DateTime),
    optional("handler", Type::Text(64)),
    optional("payment_type", Type::Ref(Kind::PaymentMethod)),
];

const STATEMENT_RECORD: &[Field] = &[
    required("bank_statements_process_id", Type::Ref(Kind::Statement)),
    optional("datetime", Type::DateTime),
    optional("payment_date", Type::Date),
    optional("amount", Type::Decimal),
    optional("status", Type::OneOf(RECORD_STATUSES)),
    optional("pairing_1", Type::Text(255)),
    optional("pairing_2", Type::Text(255)),
    optional("pairing_3", Type::Text(255)),
    optional("additional_1", Type::Text(255)),
    optional("additional_2", Type::Text(255)),
    optional("additional_3", Type::Text(255)),
    optional("comment", Type::Text(255)),
    optional("customer_id", Type::Ref(Kind::Customer)),
    optional("invoice_id", Type::Ref(Kind::Invoice)),
    optional("credit_note_id", Type::Int),
    optional("request_id", Type::Ref(Kind::Proforma)),
    optional("payment_id", Type::Ref(Kind::Payment)),
    optional("transaction_id", Type::Int),
];

const TRANSACTION: &[Field] = &[
    required("type", Type::OneOf(&["debit", "credit"])),
    required("customer_id", Type::Ref(Kind::Customer)),
    optional("quantity", Type::Decimal),
    optional("unit", Type::Text(64)),
    required("price", Type::Decimal),
    optional("tax_percent", Type::Decimal),
    required("date", Type::Date),
    required("category", Type::Ref(Kind::TransactionCategory)),
    optional("description", Type::Text(255)),
    optional("period_from", Type::Date),
    optional("period_to", Type::Date),
    optional("service_id", Type::Int),
    optional("payment_id", Type::Ref(Kind::Payment)),
    optional("invoice_id", Type::Ref(Kind::Invoice)),
    optional("comment", Type::Text(255)),
    optional("to_invoice", Type::OneOf(&["0", "1"])),
    optional("source", Type::Text(64)),
    optional("tax_id", Type::Int),
];

/// The fields a kind created here accepts (and may be searched by, with `id`).
pub(super) fn schema_fields(kind: Kind) -> impl Iterator<Item = &'static str> {
    schema(kind).iter().map(|f| f.name)
}

fn schema(kind: Kind) -> &'static [Field] {
    match kind {
        Kind::Statement => STATEMENT,
        Kind::StatementRecord => STATEMENT_RECORD,
        Kind::Transaction => TRANSACTION,
        _ => &[],
    }
}

/// Whether `POST` on this kind's resource is answered here.
pub(super) fn creatable(kind: Kind) -> bool {
    !schema(kind).is_empty()
}

/// Validates `body` against the kind's schema and stores it; `Err` lists (field, message)
/// as Splynx's 422 does.
pub(super) fn create(
    state: &mut State,
    kind: Kind,
    body: &Map<String, Value>,
) -> Result<i64, Vec<(String, String)>> {
    let fields = schema(kind);
    let mut errors = Vec::new();
    for key in body.keys() {
        if !fields.iter().any(|f| f.name == key) {
            errors.push((key.clone(), format!("Unknown field {key}.")));
        }
    }
    let mut row = Row::new();
    for field in fields {
        let value = body
            .get(field.name)
            .filter(|v| !v.is_null() && **v != json!(""));
        match (value, field.required) {
            (None, true) => errors.push((
                field.name.into(),
                format!("{} cannot be blank.", label(field.name)),
            )),
            (None, false) => {}
            (Some(value), _) => match check(state, field, value) {
                Ok(v) => {
                    row.insert(field.name.into(), v);
                }
                Err(message) => errors.push((field.name.into(), message)),
            },
        }
    }
    // Everything linked must be the named customer's.
    if let Some(customer) = row.get("customer_id").and_then(int_from_json) {
        for (key, linked) in [
            ("invoice_id", Kind::Invoice),
            ("request_id", Kind::Proforma),
            ("payment_id", Kind::Payment),
        ] {
            let owner = row
                .get(key)
                .and_then(int_from_json)
                .and_then(|id| state.get(linked, id))
                .and_then(|r| r.get("customer_id").and_then(int_from_json));
            if owner.is_some_and(|owner| owner != customer) {
                errors.push((
                    key.into(),
                    format!("{} belongs to another customer.", label(key)),
                ));
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
    match kind {
        Kind::Statement => {
            row.entry("date_time").or_insert(json!(now));
            row.entry("handler").or_insert(json!(""));
        }
        Kind::StatementRecord => {
            row.entry("status").or_insert(json!("new"));
            row.entry("datetime").or_insert(json!(now));
        }
        Kind::Transaction => {
            row.entry("quantity").or_insert(json!("1"));
            row.entry("tax_percent").or_insert(json!("0"));
        }
        _ => {}
    }
    let table = state.table_mut(kind);
    let id = table.keys().next_back().copied().unwrap_or(0) + 1;
    row.insert("id".into(), json!(id));
    table.insert(id, row);
    Ok(id)
}

fn check(state: &State, field: &Field, value: &Value) -> Result<Value, String> {
    let name = label(field.name);
    match field.kind {
        Type::Ref(kind) => match int_from_json(value) {
            Some(id) if state.get(kind, id).is_some() => Ok(json!(id)),
            Some(id) => Err(format!("{name} {id} not found.")),
            None => Err(format!("{name} must be an integer.")),
        },
        Type::Int => int_from_json(value)
            .map(|n| json!(n))
            .ok_or(format!("{name} must be an integer.")),
        Type::Text(max) => match value {
            Value::String(_) | Value::Number(_) => {
                let text = field_text(value);
                if text.chars().count() > max {
                    Err(format!("{name} should contain at most {max} characters."))
                } else {
                    Ok(json!(text))
                }
            }
            _ => Err(format!("{name} must be a string.")),
        },
        Type::Decimal => match decimal_from_json(value) {
            Some(d) if significant_scale(&d) > 4 => {
                Err(format!("{name} must have at most 4 decimal places."))
            }
            Some(d) => Ok(json!(d.normalize().to_string())),
            None => Err(format!("{name} must be a number.")),
        },
        Type::OneOf(allowed) => {
            let text = field_text(value);
            if allowed.contains(&text.as_str()) {
                Ok(json!(text))
            } else {
                Err(format!(
                    "{name} is invalid: {text:?} is not one of {allowed:?}."
                ))
            }
        }
        Type::Date => match value.as_str() {
            Some(s) if s.len() == 10 && NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() => {
                Ok(json!(s))
            }
            _ => Err(format!("The format of {name} is invalid.")),
        },
        Type::DateTime => match value.as_str() {
            Some(s) if NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").is_ok() => {
                Ok(json!(s))
            }
            _ => Err(format!(
                "The format of {name} is invalid (YYYY-MM-DD HH:MM:SS)."
            )),
        },
    }
}

/// "bank_statements_process_id" → "Bank Statements Process Id", as Yii labels fields.
fn label(name: &str) -> String {
    name.split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Splynx's default transaction categories (Config → Finance → Transaction categories).
pub(super) fn default_categories() -> Vec<Value> {
    ["Service", "Discount", "Payment", "Refund", "Correction"]
        .iter()
        .enumerate()
        .map(|(i, name)| json!({"id": i + 1, "name": name}))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn unknown_and_missing_fields_are_refused_by_name() {
        let mut state = State::default();
        let errors = create(
            &mut state,
            Kind::Statement,
            &body(json!({"status": "success", "colour": "red"})),
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["colour", "title"]);
        let id = create(
            &mut state,
            Kind::Statement,
            &body(json!({"title": "BitPay 12/2026", "status": "success"})),
        )
        .unwrap();
        let errors = create(
            &mut state,
            Kind::StatementRecord,
            &body(json!({"bank_statements_process_id": id + 1, "status": "done", "amount": "1.23456"})),
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["bank_statements_process_id", "amount", "status"]);
        assert_eq!(
            label("bank_statements_process_id"),
            "Bank Statements Process Id"
        );
    }
}
