//! Diagnostics on stderr: warnings by default, `-v` info, `-vv` debug, `-q` errors only.
//! Only this crate logs above "warn": HTTP libraries never print headers (tokens, signatures).
//! Messages may quote what BitPay, Splynx or a webhook sent: control characters are shown
//! escaped, as on stdout.

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
        .format(|buf, record| {
            use std::io::Write;
            let text = record.args().to_string();
            writeln!(
                buf,
                "[{} {}] {}",
                buf.timestamp(),
                record.level(),
                crate::output::printable(&text)
            )
        })
        .target(env_logger::Target::Stderr)
        .init();
}
