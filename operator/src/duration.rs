//! The duration strings of the resource (`90d`, `48h`, `1d12h`, `30m`).
//!
//! The grammar is the CEL rule in the CRD schema: optional `<n>d`, `<n>h`,
//! `<n>m`, `<n>s` in that order, at least one non-zero. It is small and ours
//! (Go's `time.ParseDuration` and humantime both accept other forms the schema
//! refuses), so it is parsed here by hand and tested against the same cases.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("{value:?} is not a duration such as 90d, 48h, 1d12h or 30m")]
pub struct InvalidDuration {
    pub value: String,
}

/// Parse into seconds.
pub fn parse(value: &str) -> Result<u64, InvalidDuration> {
    let invalid = || InvalidDuration {
        value: value.to_owned(),
    };
    let units = [('d', 86_400u64), ('h', 3_600), ('m', 60), ('s', 1)];
    let mut rest = value;
    let mut next_unit = 0;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(invalid)?;
        if digits == 0 {
            return Err(invalid());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        let unit = rest[digits..].chars().next().ok_or_else(invalid)?;
        let pos = units[next_unit..]
            .iter()
            .position(|(u, _)| *u == unit)
            .ok_or_else(invalid)?;
        let (_, scale) = units[next_unit + pos];
        total = n
            .checked_mul(scale)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(invalid)?;
        next_unit += pos + 1;
        rest = &rest[digits + 1..];
    }
    if total == 0 {
        return Err(invalid());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(parse("90d"), Ok(90 * 86_400));
        assert_eq!(parse("48h"), Ok(48 * 3_600));
        assert_eq!(parse("1d12h"), Ok(86_400 + 12 * 3_600));
        assert_eq!(parse("30m"), Ok(1_800));
        assert_eq!(parse("1h0m5s"), Ok(3_605));
    }

    #[test]
    fn refuses_what_the_schema_refuses() {
        for bad in [
            "",
            "0d",
            "90",
            "d",
            "12h1d",
            "1.5h",
            "-1h",
            "1w",
            "1h1h",
            "1 h",
            "99999999999999999999d",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
