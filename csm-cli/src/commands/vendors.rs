//! `csm-cli vendors check NAME STATION_ID`: asks a vendor once for a station's ports and prints
//! what each pointer of its profile found, then the ports csm reads from the answer (or why it
//! cannot). A wrong pointer of an optional measurement is not an error when csm reads answers
//! (the vendor may not send that value), so this is how a new profile is checked.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use csm_core::Monitor;
use csm_core::charger::Checked;
use csm_core::settings::Settings;
use csm_flags::VendorFlags;
use serde::Serialize;

use super::{JsonOutput, Settle, print_json, settle_by, table};

/// `vendors …`.
#[derive(Debug, Subcommand)]
pub enum VendorsCommand {
    /// Ask a vendor once for a station's ports and show what each pointer of its profile found.
    Check(VendorsCheckArgs),
}

/// Arguments of `vendors check`.
#[derive(Debug, Args)]
pub struct VendorsCheckArgs {
    /// The vendor profile's name.
    pub vendor: String,
    /// A station of that vendor (its id at the vendor).
    pub station_id: String,
    /// `--json`: the findings and the ports as one document.
    #[command(flatten)]
    pub output: JsonOutput,
    #[command(flatten)]
    vendors: VendorFlags,
}

settle_by!(VendorsCheckArgs: vendors);

impl Settle for VendorsCommand {
    fn apply(&self, settings: &mut Settings) {
        let Self::Check(args) = self;
        args.apply(settings);
    }
}

/// `vendors check --json`.
#[derive(Debug, Serialize)]
struct CheckJson<'a> {
    vendor: &'a str,
    station_id: &'a str,
    url: &'a str,
    bytes: usize,
    findings: &'a [csm_core::charger::profile::Finding],
    /// The ports read, each as `{port, status, raw_code, voltage, …}`, when the answer fits.
    ports: Option<&'a [csm_core::model::PortReading]>,
    /// Why the answer does not fit, when it does not.
    error: Option<String>,
}

/// `vendors …`; exits 1 when the answer cannot be read into ports.
pub async fn vendors(
    settings: Settings,
    command: VendorsCommand,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let VendorsCommand::Check(args) = command;
    let checked = Monitor::check_vendor(&settings, &args.vendor, &args.station_id).await?;
    let outcome = &checked.inspection.outcome;
    if args.output.json {
        print_json(
            out,
            &CheckJson {
                vendor: &args.vendor,
                station_id: &args.station_id,
                url: &checked.url,
                bytes: checked.bytes,
                findings: &checked.inspection.findings,
                ports: outcome.as_ref().ok().map(Vec::as_slice),
                error: outcome.as_ref().err().map(ToString::to_string),
            },
        )?;
    } else {
        print(out, &checked)?;
    }
    Ok(if outcome.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The people's view: the request, a row a pointer, then the ports or the error.
fn print(out: &mut (dyn Write + Send), checked: &Checked) -> anyhow::Result<()> {
    writeln!(out, "{} answered {} bytes", checked.url, checked.bytes)?;
    let mut findings = table(["profile key", "pointer", "found"]);
    for finding in &checked.inspection.findings {
        let found = if finding.missing {
            format!("✗ {}", finding.found)
        } else {
            finding.found.clone()
        };
        findings.add_row([finding.key.as_str(), finding.pointer.as_str(), &found]);
    }
    writeln!(out, "{findings}")?;
    match &checked.inspection.outcome {
        Ok(ports) => {
            let shown = |v: Option<f64>| v.map_or_else(|| "not sent".to_owned(), |v| v.to_string());
            let mut rows = table([
                "port",
                "status",
                "raw code",
                "voltage",
                "current",
                "power",
                "energy kWh",
            ]);
            for port in ports {
                rows.add_row([
                    port.port.to_string(),
                    port.status.as_str().to_owned(),
                    port.raw_code.clone().unwrap_or_default(),
                    shown(port.voltage),
                    shown(port.current),
                    shown(port.power),
                    shown(port.energy_kwh),
                ]);
            }
            writeln!(out, "{} ports read:\n{rows}", ports.len())?;
        }
        Err(error) => writeln!(out, "the answer cannot be read: {error}")?,
    }
    Ok(())
}
