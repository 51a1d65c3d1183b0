//! `aegis features`: a kline CSV in, one row of features and raw indicators per bar out.

use crate::feature::{FeatureConfig, FeatureEngine, FeatureSnapshot, NAMES};
use crate::kline_csv::{CsvError, KlineReader, RowProblem};
use std::io::Write;
use std::path::Path;
use thiserror::Error;

/// The raw indicator columns after the features.
pub const RAW_COLUMNS: [&str; 7] =
    ["rsi14", "atr14", "ema12", "ema26", "sma20_volume", "market_structure_15m", "market_structure_1h"];

/// A report could not be produced.
#[derive(Debug, Error)]
pub enum ReportError {
    /// The input was unreadable or had a bad row (in strict mode).
    #[error(transparent)]
    Input(#[from] CsvError),
    /// Writing the output failed.
    #[error("writing features: {0}")]
    Output(#[from] std::io::Error),
}

/// What a report run did.
#[derive(Debug, Default)]
pub struct ReportSummary {
    /// Rows written.
    pub rows: u64,
    /// Rows written with `warm` true.
    pub warm_rows: u64,
    /// Rows refused and skipped, each with its error (only when skipping is on).
    pub skipped: Vec<CsvError>,
}

/// The header line.
pub fn header() -> String {
    let mut columns = vec!["open_time_ms", "warm"];
    columns.extend(NAMES);
    columns.extend(RAW_COLUMNS);
    columns.join(",")
}

fn optional(value: Option<f64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// One row for a snapshot; floats as the shortest text that reads back to the same value.
pub fn row(s: &FeatureSnapshot) -> String {
    let mut fields = vec![s.open_time_ms.to_string(), u8::from(s.warm).to_string()];
    fields.extend(s.features.iter().map(f64::to_string));
    let raw = s.raw;
    fields.extend([raw.rsi14, raw.atr14, raw.ema12, raw.ema26, raw.sma20_volume].map(optional));
    fields.extend([s.structure_15m, s.structure_1h].map(|m| m.to_string()));
    fields.join(",")
}

/// Reads `input`, writes the features of every accepted bar to `out`. A refused row stops the
/// run (rows before it are already written) unless `skip_bad`, which counts and skips it.
pub fn write_features(
    input: &Path,
    out: &mut impl Write,
    config: FeatureConfig,
    skip_bad: bool,
) -> Result<ReportSummary, ReportError> {
    let mut reader = KlineReader::open(input)?;
    let mut engine = FeatureEngine::new(config);
    let mut summary = ReportSummary::default();
    writeln!(out, "{}", header())?;
    while let Some(candle) = reader.next() {
        let accepted = candle.and_then(|c| {
            engine.update(&c).copied().map_err(|e| CsvError::Row {
                file: reader.path().to_path_buf(),
                line: reader.line(),
                problem: RowProblem::Bar(e),
            })
        });
        match accepted {
            Ok(snapshot) => {
                writeln!(out, "{}", row(&snapshot))?;
                summary.rows += 1;
                summary.warm_rows += u64::from(snapshot.warm);
            }
            Err(e @ CsvError::Row { .. }) if skip_bad => summary.skipped.push(e),
            Err(e) => {
                out.flush()?;
                return Err(e.into());
            }
        }
    }
    out.flush()?;
    Ok(summary)
}
