//! The venues behind the desk's port ([`crate::desk::venue`]): what turns an order intent
//! into fills. Paper fills happen inside the desk (`aegis_trading::PaperBroker`, on the
//! brain's thread, no ring); live trading runs on its own thread here.
//!
//! - [`live`]: the execution gateway and its signed Binance USDⓈ-M client.

pub mod live;
