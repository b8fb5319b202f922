//! Diagnostics on stderr: warnings by default, `-v` info, `-vv` debug, `-q` errors only.
//! Only this crate logs above "warn": HTTP libraries never print headers (tokens, signatures).

pub fn init(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => log::LevelFilter::Error,
        (false, 0) => log::LevelFilter::Warn,
        (false, 1) => log::LevelFilter::Info,
        (false, 2) => log::LevelFilter::Debug,
        (false, _) => log::LevelFilter::Trace,
    };
    env_logger::Builder::new()
        .filter_level(log::LevelFilter::Warn.min(level))
        .filter_module("splynx_bitpay", level)
        .format_target(false)
        .target(env_logger::Target::Stderr)
        .init();
}
