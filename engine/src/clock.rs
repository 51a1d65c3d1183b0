//! One monotonic clock for the whole process, so a timestamp taken on a shard core can be
//! compared on the brain core (`Instant` reads the vDSO: no syscall); and exchange times
//! (Unix milliseconds) as UTC calendar fields for reports and plots.

use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the process's clock epoch (the first call).
pub fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// A UTC calendar time, to the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utc {
    /// Year.
    pub year: i64,
    /// Month, 1–12.
    pub month: i64,
    /// Day of the month, 1–31.
    pub day: i64,
    /// Hour, 0–23.
    pub hour: i64,
    /// Minute, 0–59.
    pub minute: i64,
    /// Second, 0–59.
    pub second: i64,
}

impl Utc {
    /// The calendar time of `ms` Unix milliseconds (proleptic Gregorian, after H. Hinnant's
    /// days-to-civil).
    pub fn of_ms(ms: i64) -> Self {
        let days = ms.div_euclid(86_400_000);
        let seconds = ms.rem_euclid(86_400_000) / 1_000;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        Self { year, month, day, hour: seconds / 3_600, minute: seconds / 60 % 60, second: seconds % 60 }
    }

    /// The calendar time of a system time (before the epoch: the epoch).
    pub fn of_system_time(time: std::time::SystemTime) -> Self {
        Self::of_ms(time.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64))
    }

    /// `YYYY-MM-DD`.
    pub fn date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// `HH:MM`.
    pub fn time(&self) -> String {
        format!("{:02}:{:02}", self.hour, self.minute)
    }

    /// `YYYY-MM-DDTHH:MM:SSZ` (ISO 8601).
    pub fn iso8601(&self) -> String {
        format!("{}T{}:{:02}Z", self.date(), self.time(), self.second)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn calendar_fields_follow_the_gregorian_calendar() {
        use super::Utc;
        assert_eq!(Utc::of_ms(0), Utc { year: 1970, month: 1, day: 1, hour: 0, minute: 0, second: 0 });
        // 2024-02-29 23:59 UTC (a leap day), and one minute later.
        let leap = 1_709_251_140_000;
        assert_eq!((Utc::of_ms(leap).date(), Utc::of_ms(leap).time()), ("2024-02-29".into(), "23:59".into()));
        assert_eq!(Utc::of_ms(leap + 60_000).date(), "2024-03-01");
        assert_eq!(Utc::of_ms(-60_000).date(), "1969-12-31");
        assert_eq!(Utc::of_ms(leap + 59_999).iso8601(), "2024-02-29T23:59:59Z");
    }

    #[test]
    fn threads_share_one_epoch() {
        let before = super::now_ns();
        let on_other_thread = std::thread::spawn(super::now_ns).join().unwrap();
        assert!(on_other_thread >= before);
        assert!(super::now_ns() >= on_other_thread);
    }
}
