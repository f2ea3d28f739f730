//! Request parameters. Empty values are never sent (reference §2.2: "do not
//! send empty parameters at all"), so whatever the server does with empty
//! values cannot matter; numbers are written as plain decimal strings.

use super::time::format_wire;
use jiff::Timestamp;
use std::collections::BTreeMap;
use std::fmt;

/// Private parameters of one request, kept sorted by key.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`; an empty (or all-blank) value removes the key.
    pub fn set(mut self, key: &str, value: impl Into<String>) -> Self {
        self.insert(key, value);
        self
    }

    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        if key.is_empty() || value.trim().is_empty() {
            self.0.remove(key);
        } else {
            self.0.insert(key.to_owned(), value);
        }
    }

    /// Sets `key` when `value` is `Some`.
    pub fn set_opt(self, key: &str, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(v) => self.set(key, v),
            None => self,
        }
    }

    /// Sets `key` to a wire time (UTC `yyyy-MM-dd HH:mm:ss`).
    pub fn set_time(self, key: &str, t: Timestamp) -> Self {
        self.set(key, format_wire(t))
    }

    /// Sets `key` to a number in plain decimal.
    pub fn set_num(self, key: &str, n: i64) -> Self {
        self.set(key, n.to_string())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Keys only: values may be tokens or passwords.
impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_are_never_kept() {
        let p = Params::new()
            .set("imeis", "1,2")
            .set("map_type", "")
            .set("blank", "  ")
            .set_opt("alertTypeId", None::<String>)
            .set_num("page_no", 1);
        assert_eq!(
            p.iter().collect::<Vec<_>>(),
            vec![("imeis", "1,2"), ("page_no", "1")]
        );
        let p = p.set("imeis", "");
        assert_eq!(p.get("imeis"), None);
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn times_are_utc_wire_strings_and_debug_hides_values() {
        let t: Timestamp = "2024-01-15T13:00:00+03:00"
            .parse()
            .unwrap_or(Timestamp::UNIX_EPOCH);
        let p = Params::new()
            .set_time("begin_time", t)
            .set("user_pwd_md5", "secret");
        assert_eq!(p.get("begin_time"), Some("2024-01-15 10:00:00"));
        let dbg = format!("{p:?}");
        assert!(
            dbg.contains("user_pwd_md5") && !dbg.contains("secret"),
            "{dbg}"
        );
    }
}
