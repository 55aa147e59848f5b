//! Go's `time.Duration` text form, which the kubelet's configuration and the credential
//! provider protocol use (`5m0s`, `10m`, `41ms`).

use std::time::Duration;

/// Formats like Go's `Duration.String` (`5m0s`, `0s`, `1.234s`, `41ms`, `1h0m0s`).
///
/// ```
/// use std::time::Duration;
/// use pullproof_host_kubelet::duration::format_go_duration;
///
/// assert_eq!(format_go_duration(Duration::from_millis(41)), "41ms");
/// assert_eq!(format_go_duration(Duration::from_secs(300)), "5m0s");
/// ```
pub fn format_go_duration(duration: Duration) -> String {
    let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < 1_000_000_000 {
        let (unit, precision) = match nanos {
            0..1_000 => return format!("{nanos}ns"),
            1_000..1_000_000 => ("µs", 3),
            _ => ("ms", 6),
        };
        let (whole, fraction) = split_fraction(nanos, precision);
        return format!("{whole}{fraction}{unit}");
    }
    let (seconds, fraction) = split_fraction(nanos, 9);
    let minutes = seconds / 60;
    let mut out = String::new();
    if minutes > 0 {
        if minutes >= 60 {
            out.push_str(&format!("{}h", minutes / 60));
        }
        out.push_str(&format!("{}m", minutes % 60));
    }
    out.push_str(&format!("{}{fraction}s", seconds % 60));
    out
}

fn split_fraction(value: u64, precision: u32) -> (u64, String) {
    let scale = 10u64.pow(precision);
    let fraction = value % scale;
    if fraction == 0 {
        return (value / scale, String::new());
    }
    let digits = format!("{fraction:0width$}", width = precision as usize);
    (value / scale, format!(".{}", digits.trim_end_matches('0')))
}

/// Parses like Go's `time.ParseDuration` (`10m`, `5m0s`, `1.5h`, `300ms`, `0`); negative
/// durations are refused.
///
/// ```
/// use std::time::Duration;
/// use pullproof_host_kubelet::duration::parse_go_duration;
///
/// assert_eq!(parse_go_duration("5m0s"), Some(Duration::from_secs(300)));
/// assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
/// assert_eq!(parse_go_duration("5"), None);
/// ```
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let text = text.strip_prefix('+').unwrap_or(text);
    if text == "0" {
        return Some(Duration::ZERO);
    }
    if text.is_empty() || text.starts_with('-') {
        return None;
    }
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (whole, fraction) = rest[..number_len].split_once('.').unwrap_or((&rest[..number_len], ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return None;
        }
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale: u128 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
        let fraction = &fraction[..fraction.len().min(18)];
        let fraction_value: u128 = if fraction.is_empty() { 0 } else { fraction.parse().ok()? };
        let fraction_nanos = fraction_value * scale / 10u128.pow(fraction.len() as u32);
        total = total.checked_add(whole.checked_mul(scale)?.checked_add(fraction_nanos)?)?;
    }
    let secs = u64::try_from(total / 1_000_000_000).ok()?;
    Some(Duration::new(secs, (total % 1_000_000_000) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for secs in [0, 1, 59, 60, 61, 300, 600, 3600, 3661] {
            let d = Duration::from_secs(secs);
            assert_eq!(parse_go_duration(&format_go_duration(d)), Some(d), "{secs}");
        }
        assert_eq!(format_go_duration(Duration::from_millis(1234)), "1.234s");
        assert_eq!(format_go_duration(Duration::from_millis(61_010)), "1m1.01s");
        assert_eq!(format_go_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(parse_go_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("300ms"), Some(Duration::from_millis(300)));
        for bad in ["", "-1s", "1x", "s", ".s", "1.5"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }
}
