//! `config`: every effective setting (`config::table`), and where it came from (the
//! Modules list in Splynx, the TOML file, or the built-in default). Secrets are redacted.

use anyhow::Result;
use serde::Serialize;

use crate::cli::ConfigArgs;
use crate::config::{table, Config, ConfigProblem, Source};
use crate::exit::SUCCESS;
use crate::output::{Output, View};

/// `config`'s result.
#[derive(Debug, Serialize)]
struct Effective {
    /// The partner whose customers these settings are for (`--partner`).
    partner: Option<i64>,
    config_file: String,
    /// The Modules-list settings file read, if any.
    modules_list_file: Option<String>,
    settings: Vec<Setting>,
    /// What is wrong, each with its fix (checkout is refused until none is left; a
    /// problem marked critical stops every command).
    problems: Vec<ConfigProblem>,
    /// Without `--partner`: each partner with Partners settings of its own, and just
    /// those settings (what its customers get instead of the above).
    partners: Vec<PartnerSettings>,
}

#[derive(Debug, Serialize)]
struct PartnerSettings {
    partner: i64,
    settings: Vec<Setting>,
}

#[derive(Debug, Serialize)]
struct Setting {
    key: &'static str,
    value: String,
    source: String,
    /// The source in an admin's words (the admin page shows it).
    source_text: String,
    /// Why the value shown is the default instead of what was set, if it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
}

impl View for Effective {
    fn human(&self) -> String {
        let width = self.settings.iter().map(|s| s.key.len()).max().unwrap_or(0);
        let mut lines = vec![
            format!(
                "Settings for: {}",
                self.partner
                    .map_or("every customer (no partner given)".into(), |p| format!(
                        "customers of partner {p}"
                    ))
            ),
            format!("Config file:  {}", self.config_file),
            format!(
                "Modules list: {}",
                self.modules_list_file
                    .as_deref()
                    .unwrap_or("not read (no settings file, or addon.modules_list = \"off\")")
            ),
        ];
        for s in &self.settings {
            let value = match &s.problem {
                Some(_) => format!("{} (WRONG as set: the default applies; see below)", s.value),
                None => s.value.clone(),
            };
            lines.push(format!("{:<width$}  {:<14} {value}", s.key, s.source));
        }
        for p in &self.partners {
            lines.push(format!("Customers of partner {} instead get:", p.partner));
            for s in &p.settings {
                lines.push(format!("  {:<width$}  {}", s.key, s.value));
            }
        }
        if !self.problems.is_empty() {
            lines.push(format!(
                "{} problem(s): checkout is refused until they are fixed; payments already received are still credited",
                self.problems.len()
            ));
            for p in &self.problems {
                lines.push(format!("  - {}", p.message));
            }
        }
        lines.join("\n")
    }
}

/// The settings of `config` whose source `keep` accepts.
fn settings(config: &Config, keep: impl Fn(Source) -> bool) -> Vec<Setting> {
    table::all()
        .filter(|setting| keep(config.source(setting.key)))
        .map(|setting| (setting.key, setting.shown(config)))
        .map(|(key, value)| Setting {
            key,
            value,
            source: config.source(key).label(),
            source_text: config.source(key).describe(),
            problem: config.problem(key).map(|p| p.message.clone()),
        })
        .collect()
}

pub fn run(args: ConfigArgs, config: &Config, output: Output) -> Result<u8> {
    let config = config.for_partner(args.partner);
    let mut partners = Vec::new();
    if args.partner.is_none() {
        for partner in config.partners_with_settings() {
            let own = Source::ModulesListPartner(partner);
            let settings = settings(config.for_partner(Some(partner)), |s| s == own);
            if !settings.is_empty() {
                partners.push(PartnerSettings { partner, settings });
            }
        }
    }
    output.show(&Effective {
        partner: args.partner,
        config_file: config.path.display().to_string(),
        modules_list_file: config.modules_list_file().map(|f| f.display().to_string()),
        settings: settings(config, |_| true),
        problems: if args.partner.is_some() {
            config.problems.clone()
        } else {
            config.every_problem()
        },
        partners,
    });
    Ok(SUCCESS)
}
