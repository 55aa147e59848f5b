//! Per-phase time budgets, written as `90s`, `2m`, `1m30s` or `500ms`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A phase's time limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Budget(pub Duration);

impl Budget {
    /// Parses `90s`, `2m`, `1m30s`, `500ms`, `1h`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("an empty duration (write e.g. `30s` or `2m`)".into());
        }
        let mut total = Duration::ZERO;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            if digits == 0 {
                return Err(format!("`{s}` is not a duration (write e.g. `30s`, `2m` or `1m30s`)"));
            }
            let n: u64 = rest[..digits].parse().map_err(|_| format!("`{s}` has a number too large"))?;
            rest = &rest[digits..];
            let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            total += match unit {
                "ms" => Duration::from_millis(n),
                "s" => Duration::from_secs(n),
                "m" => Duration::from_secs(n * 60),
                "h" => Duration::from_secs(n * 3600),
                "" => return Err(format!("`{s}` needs a unit: ms, s, m or h")),
                other => return Err(format!("`{other}` in `{s}` is not a unit: use ms, s, m or h")),
            };
        }
        Ok(Budget(total))
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if !ms.is_multiple_of(1000) {
            return write!(f, "{ms}ms");
        }
        let secs = self.0.as_secs();
        match (secs / 60, secs % 60) {
            (0, s) => write!(f, "{s}s"),
            (m, 0) => write!(f, "{m}m"),
            (m, s) => write!(f, "{m}m{s}s"),
        }
    }
}

impl Serialize for Budget {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Budget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Budget::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Budget {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Budget".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^([0-9]+(ms|s|m|h))+$",
            "description": "A duration such as `30s`, `2m`, `1m30s` or `500ms`."
        })
    }
}

/// The time budget of each lifecycle phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Budgets {
    /// Acquire the baseline: provision, data plane up, workload Running.
    pub baseline: Budget,
    /// Inject the fault and see its symptom.
    pub inject: Budget,
    /// Run the engine.
    pub diagnose: Budget,
    /// Apply the remediation.
    pub remediate: Budget,
    /// Wait for the workload to be healthy again.
    pub recover: Budget,
    /// Revert and tear down.
    pub cleanup: Budget,
}

impl Default for Budgets {
    fn default() -> Self {
        let s = |n| Budget(Duration::from_secs(n));
        Self { baseline: s(120), inject: s(60), diagnose: s(60), remediate: s(120), recover: s(120), cleanup: s(60) }
    }
}

impl Budgets {
    /// The sum of all phases: an upper bound on one scenario's wall time.
    pub fn total(&self) -> Duration {
        [self.baseline, self.inject, self.diagnose, self.remediate, self.recover, self.cleanup]
            .iter()
            .map(|b| b.0)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for (text, secs, shown) in [("30s", 30, "30s"), ("2m", 120, "2m"), ("1m30s", 90, "1m30s"), ("1h", 3600, "60m")]
        {
            let b = Budget::parse(text).unwrap();
            assert_eq!(b.0, Duration::from_secs(secs));
            assert_eq!(b.to_string(), shown);
        }
        assert_eq!(Budget::parse("500ms").unwrap().to_string(), "500ms");
    }

    #[test]
    fn rejects_with_reasons() {
        assert!(Budget::parse("").unwrap_err().contains("empty"));
        assert!(Budget::parse("30").unwrap_err().contains("needs a unit"));
        assert!(Budget::parse("2 min").unwrap_err().contains("is not"));
        assert!(Budget::parse("5d").unwrap_err().contains("not a unit"));
        assert!(Budget::parse("99999999999999999999s").is_err());
    }
}
