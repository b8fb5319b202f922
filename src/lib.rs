//! splynx-bitpay: pay Splynx invoices, proforma invoices and top-ups with BitPay.
#![forbid(unsafe_code)]

pub mod admin;
pub mod audit;
pub mod bitpay;
pub mod btcpay;
pub mod checkout;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod connect;
pub mod context;
pub mod doctor;
pub mod domain;
pub mod errors;
pub mod exit;
pub mod fee;
pub mod gateway;
pub mod http;
pub mod lock;
pub mod logging;
pub mod metrics;
pub mod money;
pub mod order_id;
pub mod output;
pub mod paging;
pub mod pairing;
pub mod portal;
pub mod pos_data;
pub mod recovery;
pub mod refund;
pub mod replay;
pub mod retention;
pub mod secret;
pub mod server;
pub mod settlement;
pub mod splynx;
pub mod store;
pub mod view;

use anyhow::Result;

use cli::{Cli, Command};
use context::Context;
use output::Output;

/// Runs one command; returns the exit code for a run that did not fail.
pub fn run(cli: Cli) -> Result<u8> {
    // The one place the environment is read (clippy.toml forbids it elsewhere).
    #[allow(clippy::disallowed_methods)]
    let config_env = std::env::var(config::ENV_VAR).ok();
    if let Command::Doctor = cli.command {
        // Checks the config and the data directory itself, before anything opens them.
        let path = config::resolve_path(cli.config.as_deref(), config_env.as_deref());
        return commands::doctor::run(&path, Output { json: cli.json });
    }
    let output = Output { json: cli.json };
    if let Command::Config(args) = cli.command {
        // Shows every value, the wrong ones marked: it needs only the settings.
        let path = config::resolve_path(cli.config.as_deref(), config_env.as_deref());
        return commands::config::run(args, &config::Config::inspect(&path)?, output);
    }
    let state = match &cli.command {
        Command::Status(_) | Command::Show(_) | Command::Settings(_) | Command::Metrics => {
            context::State::Existing
        }
        Command::Audit(args) if !args.record => context::State::Existing,
        Command::Replay(args) if !args.apply => context::State::Existing,
        Command::Reconcile(args) if args.dry_run => context::State::Existing,
        Command::Prune(args) if args.dry_run => context::State::Existing,
        _ => context::State::Create,
    };
    let ctx = Context::open(cli.config.as_deref(), config_env.as_deref(), output, state)?;
    match cli.command {
        Command::Pair(args) => commands::pair::run(args, &ctx),
        Command::Unpair(args) => commands::unpair::run(args, &ctx),
        Command::Status(args) => commands::status::run(args, &ctx),
        Command::CreateInvoice(args) => commands::create_invoice::run(args, &ctx),
        Command::DirectPay(args) => commands::direct_pay::run(args, &ctx),
        Command::HandleIpn(args) => {
            commands::handle_ipn::run(args, &ctx, &mut std::io::stdin().lock())
        }
        Command::Reconcile(args) => commands::reconcile::run(args, &ctx),
        Command::Resolve(args) => commands::resolve::run(args, &ctx),
        Command::Audit(args) => commands::audit::run(args, &ctx),
        Command::Metrics => commands::metrics::run(&ctx),
        Command::Replay(args) => commands::replay::run(args, &ctx),
        Command::Refund(args) => commands::refund::run(args, &ctx),
        Command::Prune(args) => commands::prune::run(args, &ctx),
        Command::Show(args) => commands::show::run(args, &ctx),
        Command::Settings(args) => commands::settings::run(args, &ctx),
        Command::Config(_) | Command::Doctor => {
            unreachable!("config and doctor run before the context is opened")
        }
    }
}
