//! Kline CSV files: `open_time_ms,open,high,low,close,volume` with optional extra columns,
//! with or without a header. Binance's public-data layout (12 columns, no header) also
//! yields trade counts, taker-buy volume and VWAP. Every refusal names file, line and reason.

use crate::candle::{BarError, Candle, OrderFlow};
use std::fs::File;
use std::io::{BufRead, BufReader, Lines, Read};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why a row was refused.
#[derive(Debug, Error, PartialEq)]
pub enum RowProblem {
    /// Fewer columns than needed.
    #[error("missing column `{0}`")]
    MissingColumn(&'static str),
    /// A field is not a number.
    #[error("column `{column}`: `{text}` is not a number")]
    BadNumber {
        /// Column name.
        column: &'static str,
        /// The text found.
        text: String,
    },
    /// The bar itself is impossible.
    #[error("{0}")]
    Bar(#[from] BarError),
}

/// A kline file could not be read, or one of its rows was refused.
#[derive(Debug, Error)]
pub enum CsvError {
    /// Opening or reading failed.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A row was refused.
    #[error("{file}:{line}: {problem}")]
    Row {
        /// The file.
        file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Why.
        problem: RowProblem,
    },
}

/// Where each field sits in a row.
#[derive(Clone, Copy, Debug)]
struct Columns {
    ohlcv: [usize; 6],
    quote_volume: Option<usize>,
    trades: Option<usize>,
    taker_buy: Option<usize>,
}

const OHLCV: [&str; 6] = ["open_time_ms", "open", "high", "low", "close", "volume"];

impl Columns {
    fn from_header(header: &str) -> Self {
        let names: Vec<String> = header.split(',').map(|n| n.trim().to_ascii_lowercase()).collect();
        let find = |options: &[&str]| names.iter().position(|n| options.contains(&n.as_str()));
        let ohlcv = [
            find(&["open_time_ms", "open_time", "timestamp"]).unwrap_or(0),
            find(&["open"]).unwrap_or(1),
            find(&["high"]).unwrap_or(2),
            find(&["low"]).unwrap_or(3),
            find(&["close"]).unwrap_or(4),
            find(&["volume"]).unwrap_or(5),
        ];
        Self {
            ohlcv,
            quote_volume: find(&["quote_volume", "quote_asset_volume"]),
            trades: find(&["trades", "number_of_trades", "count"]),
            taker_buy: find(&["taker_buy_base", "taker_buy_volume", "taker_buy_base_asset_volume"]),
        }
    }

    fn positional(fields: usize) -> Self {
        let binance = fields >= 11;
        Self {
            ohlcv: [0, 1, 2, 3, 4, 5],
            quote_volume: binance.then_some(7),
            trades: binance.then_some(8),
            taker_buy: binance.then_some(9),
        }
    }
}

fn field<'a>(fields: &[&'a str], at: usize, column: &'static str) -> Result<&'a str, RowProblem> {
    fields.get(at).map(|f| f.trim()).ok_or(RowProblem::MissingColumn(column))
}

fn number(fields: &[&str], at: usize, column: &'static str) -> Result<f64, RowProblem> {
    let text = field(fields, at, column)?;
    text.parse::<f64>().map_err(|_| RowProblem::BadNumber { column, text: text.to_string() })
}

fn parse_row(line: &str, columns: &Columns) -> Result<Candle, RowProblem> {
    let fields: Vec<&str> = line.split(',').collect();
    let [t, o, h, l, c, v] = columns.ohlcv;
    let time_text = field(&fields, t, OHLCV[0])?;
    let open_time_ms = time_text
        .parse::<i64>()
        .map_err(|_| RowProblem::BadNumber { column: OHLCV[0], text: time_text.to_string() })?;
    let volume = number(&fields, v, "volume")?;
    let mut flow = OrderFlow::default();
    if let Some(at) = columns.trades {
        let n = number(&fields, at, "trades")?;
        flow.trades = (n >= 0.0 && n.fract() == 0.0).then_some(n as u64);
    }
    if let Some(at) = columns.taker_buy {
        let buy = number(&fields, at, "taker_buy_base")?;
        flow.taker = (buy.is_finite() && (0.0..=volume).contains(&buy)).then_some((buy, volume - buy));
    }
    if let Some(at) = columns.quote_volume {
        let quote = number(&fields, at, "quote_volume")?;
        flow.vwap = (volume > 0.0 && quote.is_finite() && quote >= 0.0).then(|| quote / volume);
    }
    let candle = Candle {
        open_time_ms,
        open: number(&fields, o, "open")?,
        high: number(&fields, h, "high")?,
        low: number(&fields, l, "low")?,
        close: number(&fields, c, "close")?,
        volume,
        flow,
    };
    candle.validate()?;
    Ok(candle)
}

/// Reads candles from a kline CSV, one row at a time.
pub struct KlineReader<R = File> {
    file: PathBuf,
    lines: Lines<BufReader<R>>,
    line: usize,
    columns: Option<Columns>,
}

impl KlineReader<File> {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Self, CsvError> {
        let file = File::open(path).map_err(|source| CsvError::Io { file: path.to_path_buf(), source })?;
        Ok(Self::from_reader(path, file))
    }
}

impl<R: Read> KlineReader<R> {
    /// Reads from `reader`, naming it `name` in errors.
    pub fn from_reader(name: &Path, reader: R) -> Self {
        Self { file: name.to_path_buf(), lines: BufReader::new(reader).lines(), line: 0, columns: None }
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// The 1-based number of the line last read.
    pub fn line(&self) -> usize {
        self.line
    }
}

impl<R: Read> Iterator for KlineReader<R> {
    type Item = Result<Candle, CsvError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let text = match self.lines.next()? {
                Ok(text) => text,
                Err(source) => return Some(Err(CsvError::Io { file: self.file.clone(), source })),
            };
            self.line += 1;
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            if self.columns.is_none() {
                let first = text.split(',').next().unwrap_or("").trim();
                if first.parse::<i64>().is_err() {
                    self.columns = Some(Columns::from_header(text));
                    continue;
                }
                self.columns = Some(Columns::positional(text.split(',').count()));
            }
            let columns = self.columns.as_ref()?;
            return Some(parse_row(text, columns).map_err(|problem| CsvError::Row {
                file: self.file.clone(),
                line: self.line,
                problem,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Vec<Result<Candle, String>> {
        KlineReader::from_reader(Path::new("k.csv"), text.as_bytes())
            .map(|r| r.map_err(|e| e.to_string()))
            .collect()
    }

    #[test]
    fn reads_a_headed_file_and_names_the_line_of_a_bad_row() {
        let rows = read("open_time_ms,open,high,low,close,volume\n0,1,2,0.5,1.5,10\n\n60000,1,0.5,2,1,1\n120000,1,2,1,x,1\n");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].as_ref().unwrap().close, 1.5);
        let e = rows[1].as_ref().unwrap_err();
        assert!(e.ends_with(":4: high 0.5 is below low 2"), "{e}");
        let e = rows[2].as_ref().unwrap_err();
        assert!(e.ends_with(":5: column `close`: `x` is not a number"), "{e}");
    }

    #[test]
    fn binance_layout_yields_order_flow() {
        let rows = read("1637971200000,0.00002853,0.00002854,0.00002851,0.00002854,36304.2,1637971259999,1.03547608,79,19523.0,0.55694227,0\n");
        let c = rows[0].as_ref().unwrap();
        assert_eq!(c.flow.trades, Some(79));
        let (buy, sell) = c.flow.taker.unwrap();
        assert_eq!((buy, sell), (19523.0, 36304.2 - 19523.0));
        assert!((c.flow.vwap.unwrap() - 1.03547608 / 36304.2).abs() < 1e-18);
    }

    #[test]
    fn negative_volume_and_nan_are_refused() {
        let rows = read("0,1,2,1,1,-3\n60000,NaN,2,1,1,3\n");
        assert!(rows[0].as_ref().unwrap_err().ends_with(":1: volume -3 is negative"));
        assert!(rows[1].as_ref().unwrap_err().ends_with(":2: open is not a finite number"));
    }
}
