//! Export (`aegis export`, `aegisctl export`): the trades journal and the experience rings as
//! CSV and Parquet (the low-level column writer: no Arrow, no compression codecs), for
//! pandas, polars and DuckDB. Reads the data directory; never writes into it.

use super::ledger::{read_journal, DataConfig};
use aegis_wire::experience::{TradeExperience, SAMPLE_WORDS, TRADE_WORDS};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Why an export stopped (files already written stay).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// A Parquet file could not be written.
    #[error("{}: {source}", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: parquet::errors::ParquetError,
    },
    /// An experience ring could not be opened.
    #[error(transparent)]
    Ring(#[from] aegis_wire::experience::RingFileError),
}

/// An I/O error on `path`.
fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io { path: path.to_path_buf(), source }
}

/// Rows written by [`export`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Exported {
    /// Closed trades.
    pub trades: usize,
    /// Trade experiences.
    pub experiences: usize,
    /// Bar samples.
    pub samples: usize,
}

/// One exported column.
enum Column {
    Int(Vec<i64>),
    Float(Vec<f64>),
    Text(Vec<String>),
}

impl Column {
    fn cell(&self, row: usize) -> String {
        match self {
            Column::Int(v) => v[row].to_string(),
            Column::Float(v) => v[row].to_string(),
            Column::Text(v) => v[row].clone(),
        }
    }
}

/// A named table of equally long columns.
struct Table {
    name: &'static str,
    columns: Vec<(String, Column)>,
    rows: usize,
}

impl Table {
    fn csv(&self) -> String {
        let mut text = self.columns.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(",");
        text.push('\n');
        for row in 0..self.rows {
            let cells: Vec<String> = self.columns.iter().map(|(_, c)| c.cell(row)).collect();
            text.push_str(&cells.join(","));
            text.push('\n');
        }
        text
    }

    fn parquet(&self, path: &Path) -> Result<(), ExportError> {
        use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
        use parquet::file::writer::SerializedFileWriter;
        let err = |source| ExportError::Parquet { path: path.to_path_buf(), source };
        let fields: Vec<String> = self
            .columns
            .iter()
            .map(|(name, c)| match c {
                Column::Int(_) => format!("REQUIRED INT64 {name};"),
                Column::Float(_) => format!("REQUIRED DOUBLE {name};"),
                Column::Text(_) => format!("REQUIRED BYTE_ARRAY {name} (UTF8);"),
            })
            .collect();
        let schema = parquet::schema::parser::parse_message_type(&format!(
            "message {} {{ {} }}",
            self.name,
            fields.join(" ")
        ))
        .map_err(err)?;
        let file = std::fs::File::create(path).map_err(io(path))?;
        let mut writer =
            SerializedFileWriter::new(file, std::sync::Arc::new(schema), Default::default()).map_err(err)?;
        let mut group = writer.next_row_group().map_err(err)?;
        for (_, column) in &self.columns {
            let Some(mut w) = group.next_column().map_err(err)? else { break };
            match column {
                Column::Int(v) => w.typed::<Int64Type>().write_batch(v, None, None).map_err(err)?,
                Column::Float(v) => w.typed::<DoubleType>().write_batch(v, None, None).map_err(err)?,
                Column::Text(v) => {
                    let bytes: Vec<ByteArray> = v.iter().map(|t| ByteArray::from(t.as_str())).collect();
                    w.typed::<ByteArrayType>().write_batch(&bytes, None, None).map_err(err)?
                }
            };
            w.close().map_err(err)?;
        }
        group.close().map_err(err)?;
        writer.close().map_err(err)?;
        Ok(())
    }
}

/// The trades journal as a table.
fn trades_table(dir: &Path) -> Result<Table, ExportError> {
    let records: Vec<Value> =
        read_journal(dir, "trades").map_err(io(dir))?.into_iter().filter_map(Result::ok).collect();
    let int = |k: &str| Column::Int(records.iter().map(|v| v[k].as_i64().unwrap_or(0)).collect());
    let float = |k: &str| Column::Float(records.iter().map(|v| v[k].as_f64().unwrap_or(f64::NAN)).collect());
    let text =
        |k: &str| Column::Text(records.iter().map(|v| v[k].as_str().unwrap_or("").to_string()).collect());
    let mut columns =
        vec![("id".to_string(), int("id")), ("symbol".into(), text("symbol")), ("side".into(), text("side"))];
    for k in ["qty", "leverage", "entry_price"] {
        columns.push((k.into(), float(k)));
    }
    columns.push(("entry_time_ms".into(), int("entry_time_ms")));
    columns.push(("exit_price".into(), float("exit_price")));
    columns.push(("exit_time_ms".into(), int("exit_time_ms")));
    for k in ["reason", "decay", "rule"] {
        columns.push((k.into(), text(k)));
    }
    for k in ["roi_pct", "pnl", "fees", "funding", "progress"] {
        columns.push((k.into(), float(k)));
    }
    columns.push(("reward".into(), int("reward")));
    Ok(Table { name: "trades", columns, rows: records.len() })
}

/// Feature columns named as SPEC §4 names them.
fn feature_columns(rows: &[[f64; aegis_wire::experience::FEATURE_COUNT]]) -> Vec<(String, Column)> {
    aegis_analytics::NAMES
        .iter()
        .enumerate()
        .map(|(k, name)| (name.to_string(), Column::Float(rows.iter().map(|f| f[k]).collect())))
        .collect()
}

/// Writes the trades journal and the experience rings (oldest first) under `out`, each as
/// CSV and Parquet: `trades`, `experiences`, `samples` `.csv`/`.parquet`. The rings'
/// capacities must be the ones they were created with (`[ml]`).
pub fn export(dir: &Path, out: &Path, config: &DataConfig) -> Result<Exported, ExportError> {
    use aegis_wire::experience::{BarSample, RingReader};
    std::fs::create_dir_all(out).map_err(io(out))?;
    let ring =
        RingReader::<TRADE_WORDS>::open(&dir.join("experience/trades.ring"), config.trade_experiences)?;
    let experiences: Vec<TradeExperience> =
        ring.range().filter_map(|i| ring.get(i)).map(|w| TradeExperience::from_words(&w)).collect();
    let ring = RingReader::<SAMPLE_WORDS>::open(&dir.join("experience/samples.ring"), config.bar_samples)?;
    let samples: Vec<BarSample> =
        ring.range().filter_map(|i| ring.get(i)).map(|w| BarSample::from_words(&w)).collect();
    let mut e_columns = vec![
        ("trade_id".to_string(), Column::Int(experiences.iter().map(|e| e.trade_id as i64).collect())),
        ("symbol".into(), Column::Int(experiences.iter().map(|e| i64::from(e.symbol)).collect())),
        ("entry_time_ms".into(), Column::Int(experiences.iter().map(|e| e.entry_time_ms).collect())),
        ("exit_time_ms".into(), Column::Int(experiences.iter().map(|e| e.exit_time_ms).collect())),
        ("side".into(), Column::Int(experiences.iter().map(|e| i64::from(e.side)).collect())),
        ("roi_pct".into(), Column::Float(experiences.iter().map(|e| e.roi_pct).collect())),
        ("reward".into(), Column::Float(experiences.iter().map(|e| e.reward).collect())),
        ("weight".into(), Column::Float(experiences.iter().map(|e| e.weight).collect())),
    ];
    e_columns.extend(feature_columns(&experiences.iter().map(|e| e.features).collect::<Vec<_>>()));
    let mut s_columns = vec![
        ("symbol".to_string(), Column::Int(samples.iter().map(|s| i64::from(s.symbol)).collect())),
        ("open_time_ms".into(), Column::Int(samples.iter().map(|s| s.open_time_ms).collect())),
        ("horizon".into(), Column::Int(samples.iter().map(|s| i64::from(s.horizon)).collect())),
        ("forward_return".into(), Column::Float(samples.iter().map(|s| s.forward_return).collect())),
    ];
    s_columns.extend(feature_columns(&samples.iter().map(|s| s.features).collect::<Vec<_>>()));
    let tables = [
        trades_table(dir)?,
        Table { name: "experiences", columns: e_columns, rows: experiences.len() },
        Table { name: "samples", columns: s_columns, rows: samples.len() },
    ];
    for table in &tables {
        let csv = out.join(format!("{}.csv", table.name));
        std::fs::write(&csv, table.csv()).map_err(io(&csv))?;
        table.parquet(&out.join(format!("{}.parquet", table.name)))?;
    }
    Ok(Exported { trades: tables[0].rows, experiences: tables[1].rows, samples: tables[2].rows })
}
