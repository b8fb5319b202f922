//! The settings an admin enters in Splynx (Config → Integrations → Modules list →
//! `splynx_bitpay_addon`), which Splynx writes into the add-on's `config/config.ini.php`.
//! They are an overlay: a non-empty value there wins over the TOML file, which wins over
//! the built-in default. The form's fields are `hooks/config/config.json`.
//!
//! The file is PHP's INI dialect (a `; <?php exit(); ?>`-style guard line, `[section]`
//! headers `common`, `default_partners_settings` and one per partner id), read as PHP
//! reads it (`ini`).

use std::collections::BTreeMap;

use super::{table, Source};

/// Where the add-on lives, and so where Splynx writes its Modules-list settings.
pub const DEFAULT_ADDON_DIR: &str = "/var/www/splynx/addons/splynx-bitpay";
/// Relative to the add-on directory.
pub const SETTINGS_FILE: &str = "config/config.ini.php";

/// A Modules-list field the binary uses: its INI key, the TOML key it overrides, its title
/// in Splynx's form (what error messages name) and whether it is a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub ini: &'static str,
    pub toml: &'static str,
    pub title: &'static str,
    pub integer: bool,
}

/// The form's field with INI key `ini` (`table::SETTINGS` declares them), if any; with
/// `partner_only`, only those a partner may set.
fn form_field(ini: &str, partner_only: bool) -> Option<Field> {
    table::form_fields()
        .find(|(_, f)| f.ini == ini && (f.per_partner || !partner_only))
        .map(|(setting, f)| Field {
            ini: f.ini,
            toml: setting.key,
            title: f.title,
            integer: f.integer,
        })
}

/// The INI keys of the form's fields (of the Partners settings block, with `partner_only`).
fn form_keys(partner_only: bool) -> Vec<&'static str> {
    table::form_fields()
        .filter(|(_, f)| f.per_partner || !partner_only)
        .map(|(_, f)| f.ini)
        .collect()
}

/// `config_file` of the first version's form: accepted, so that the form's own fields are
/// never "unknown".
const NOT_USED_YET: [&str; 1] = ["config_file"];

const fn field(ini: &'static str, toml: &'static str, title: &'static str, integer: bool) -> Field {
    Field {
        ini,
        toml,
        title,
        integer,
    }
}

pub use super::ini::{parse, Sections};

/// A value the admin set, for one TOML key, and where.
pub struct Overlay {
    pub field: Field,
    pub value: toml::Value,
    pub source: Source,
}

/// The values that apply, in order (later wins): the main block (`common`), then the
/// Partners settings of the default partner, then those of `partner`. Only non-empty
/// values count. An unknown key is a problem (a field Splynx shows that nothing reads
/// would be a setting that silently does nothing), as is a value of the wrong kind; each
/// goes to `problems` as (TOML key or section, message) and the rest still applies.
pub fn overlays(
    sections: &Sections,
    partner: Option<i64>,
    problems: &mut Vec<(String, String)>,
) -> Vec<Overlay> {
    let mut found = Vec::new();
    if let Some(common) = sections.get("common") {
        section_overlays(
            common,
            "[common]",
            Source::ModulesList,
            false,
            &mut found,
            problems,
        );
    }
    let partner_sections = [
        Some((
            "default_partners_settings".to_string(),
            Source::ModulesListDefaultPartner,
        )),
        partner.map(|id| (id.to_string(), Source::ModulesListPartner(id))),
    ];
    for (name, source) in partner_sections.into_iter().flatten() {
        if let Some(values) = sections.get(&name) {
            let section = format!("[{name}]");
            section_overlays(values, &section, source, true, &mut found, problems);
        }
    }
    found
}

fn section_overlays(
    values: &BTreeMap<String, String>,
    section: &str,
    source: Source,
    partner_only: bool,
    found: &mut Vec<Overlay>,
    problems: &mut Vec<(String, String)>,
) {
    for (key, value) in values {
        if value.trim().is_empty() || NOT_USED_YET.contains(&key.as_str()) {
            continue;
        }
        if !partner_only && is_splynx_own(key) {
            continue;
        }
        let Some(field) = form_field(key, partner_only) else {
            let known = form_keys(partner_only).join(", ");
            let known = if partner_only {
                format!("a partner may set: {known}")
            } else {
                format!("known: {known}")
            };
            problems.push((
                format!("modules_list.{key}"),
                format!(
                    "unknown field \"{}\" in {section} ({known})",
                    super::parse::quoted_prefix(key)
                ),
            ));
            continue;
        };
        let value = if field.integer {
            match value.trim().parse::<i64>() {
                Ok(n) => toml::Value::Integer(n),
                Err(_) => {
                    problems.push((
                        field.toml.to_string(),
                        format!(
                            "field \"{} ({key}): \"{}\" is not a whole number",
                            source.field_title(field.title),
                            super::parse::quoted_prefix(value.trim())
                        ),
                    ));
                    continue;
                }
            }
        } else {
            toml::Value::String(value.trim().to_string())
        };
        found.push(Overlay {
            field,
            value,
            source,
        });
    }
}

/// What Splynx's add-on install writes into `[common]`: the API key it created for the
/// add-on (with the permissions the add-on registered) and where its API is. They fill in
/// what the TOML file leaves out; a key set in the file on purpose wins.
const SPLYNX_KEY_FIELDS: [Field; 3] = [
    field("api_key", "splynx.api_key", "api_key", false),
    field("api_secret", "splynx.api_secret", "api_secret", false),
    field("api_domain", "splynx.api_url", "api_domain", false),
];

/// Splynx's API key for the add-on, from `[common]`, as TOML values (`api_domain` becomes
/// the API v2 base URL).
pub fn splynx_key(sections: &Sections) -> Vec<Overlay> {
    let Some(common) = sections.get("common") else {
        return Vec::new();
    };
    SPLYNX_KEY_FIELDS
        .into_iter()
        .filter_map(|field| {
            let value = common.get(field.ini)?.trim();
            if value.is_empty() {
                return None;
            }
            let value = match field.ini {
                "api_domain" if !value.contains("/api/") => {
                    format!("{}/api/2.0/", value.trim_end_matches('/'))
                }
                _ => value.to_string(),
            };
            Some(Overlay {
                field,
                value: toml::Value::String(value),
                source: Source::SplynxApiKey,
            })
        })
        .collect()
}

/// Settings Splynx itself keeps in `common` for every add-on (the API key it created for
/// the add-on, and its own bookkeeping): not Modules-list fields of ours (the key is read
/// by `splynx_key`, under the file's precedence instead).
fn is_splynx_own(key: &str) -> bool {
    matches!(
        key,
        "api_domain" | "api_key" | "api_secret" | "add_on_encryption_key"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = r#"; <?php exit(); ?>
; Splynx Add-On config file
[common]
api_domain = "https://splynx.isp.test/"
api_key = "abc"
api_secret = "def"
splynx_url = "https://portal.isp.test"
transaction_speed = "low"
currency = ""
payment_method_id = "12"
service_fee = "0"

[default_partners_settings]
currency = "EUR"

[2]
currency = "GBP"
"#;

    /// The overlays of a file without problems.
    fn clean(sections: &Sections, partner: Option<i64>) -> Vec<Overlay> {
        let mut problems = Vec::new();
        let found = overlays(sections, partner, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        found
    }

    /// The one problem of a file.
    fn problem(sections: &Sections, partner: Option<i64>) -> String {
        let mut problems = Vec::new();
        overlays(sections, partner, &mut problems);
        assert_eq!(problems.len(), 1, "{problems:?}");
        problems.remove(0).1
    }

    #[test]
    fn reads_the_file_splynx_writes() {
        let sections = parse(FIXTURE).unwrap();
        assert_eq!(sections["common"]["splynx_url"], "https://portal.isp.test");
        assert_eq!(sections["2"]["currency"], "GBP");
        let found = clean(&sections, None);
        let keys: Vec<(&str, Source)> = found.iter().map(|o| (o.field.toml, o.source)).collect();
        // Empty values do not override ("0" does); Splynx's own API settings are not ours; the
        // default partner's settings apply to everyone without their own.
        assert_eq!(
            keys,
            [
                ("splynx.payment_method_id", Source::ModulesList),
                ("fee.percent", Source::ModulesList),
                ("splynx.url", Source::ModulesList),
                ("bitpay.transaction_speed", Source::ModulesList),
                ("bitpay.currency", Source::ModulesListDefaultPartner),
            ]
        );
        assert_eq!(found[0].value, toml::Value::Integer(12));
        // Partner 2's own currency comes last, so it wins; partner 5 has none of its own.
        let last = |partner| {
            let found = clean(&sections, Some(partner));
            let currency = found
                .iter()
                .rev()
                .find(|o| o.field.ini == "currency")
                .unwrap();
            (
                currency.value.as_str().unwrap().to_string(),
                currency.source,
            )
        };
        assert_eq!(last(2), ("GBP".to_string(), Source::ModulesListPartner(2)));
        assert_eq!(
            last(5),
            ("EUR".to_string(), Source::ModulesListDefaultPartner)
        );
    }

    /// The form Splynx shows (`hooks/config/config.json`) and what the binary reads agree:
    /// every field it reads is on the form with the title errors name, every other field
    /// is known, and no field it reads has a default (an untouched form would otherwise
    /// override the config file).
    #[test]
    fn the_form_matches_what_is_read() {
        let form: serde_json::Value =
            serde_json::from_str(include_str!("../../hooks/config/config.json")).unwrap();
        assert_eq!(form["path"], "splynx_bitpay_addon");
        let items = form["blocks"]["common_settings"]["items"]
            .as_object()
            .unwrap();
        for field in form_keys(false)
            .into_iter()
            .filter_map(|k| form_field(k, false))
        {
            let item = &items[field.ini];
            assert_eq!(item["title"], field.title, "{}", field.ini);
            assert!(item.get("default").is_none(), "{} has a default", field.ini);
            if let Some(values) = item.get("values") {
                assert_eq!(
                    values.as_object().unwrap().keys().next().unwrap(),
                    "",
                    "{}",
                    field.ini
                );
            }
        }
        for key in items.keys() {
            assert!(
                form_field(key, false).is_some() || NOT_USED_YET.contains(&key.as_str()),
                "{key} is on the form but nothing reads it"
            );
        }
        // The Partners settings block: exactly the partner fields, titled as the main
        // block's, without defaults.
        let partner = form["blocks"]["per_partner_options"]["items"]
            .as_object()
            .unwrap();
        let mut expected = form_keys(true);
        expected.sort_unstable();
        assert_eq!(
            partner.keys().map(String::as_str).collect::<Vec<_>>(),
            expected
        );
        for key in form_keys(true) {
            let field = form_field(key, true).unwrap();
            assert_eq!(partner[key]["title"], field.title, "{key}");
            assert!(partner[key].get("default").is_none(), "{key} has a default");
        }
    }

    #[test]
    fn a_partner_sets_only_the_partner_fields() {
        let sections = parse("[3]\nsplynx_url = \"https://other.isp.test\"\n").unwrap();
        let error = problem(&sections, Some(3));
        assert!(
            error.contains("splynx_url") && error.contains("[3]"),
            "{error}"
        );
        let sections = parse("[3]\npayment_method_id = \"x\"\n").unwrap();
        let error = problem(&sections, Some(3));
        assert!(error.contains("Partners settings, partner 3"), "{error}");
    }

    #[test]
    fn bad_lines_and_values_are_named() {
        assert!(parse("[common]\nk = a=b\n").unwrap_err().contains("line 2"));
        let sections = parse("[common]\npayment_method_id = \"seven\"\n").unwrap();
        let error = problem(&sections, None);
        assert!(
            error.contains("Payment method") && error.contains("seven"),
            "{error}"
        );
        let sections = parse("[common]\ncolour = \"red\"\n").unwrap();
        assert!(problem(&sections, None).contains("colour"));
    }
}
