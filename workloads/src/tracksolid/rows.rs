//! Lists decoded row by row: one row that does not decode is skipped and
//! reported with its reason, and the other rows of the list are kept (a bad
//! row must not lose its call's whole list).
//!
//! Each element is read into a [`serde_json::Value`] of its own and decoded
//! from that, so a row decodes exactly as it did inside a whole `Value` tree
//! (a key repeated within a row: the last one counts), while only one row's
//! tree is alive at a time — the list's text is never held as a tree.

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer, SeqAccess, Visitor};
use serde_json::Value;
use std::fmt;
use std::marker::PhantomData;

/// Why one element of a list was skipped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    /// The element is not an object (`null`, a number, a list, …).
    #[error("row {index}: not an object but {kind}")]
    NotAnObject { index: usize, kind: &'static str },
    /// An object the row type refused.
    #[error("row {index}: {detail}")]
    Invalid { index: usize, detail: String },
}

/// The decoded rows of a list, and the elements that were skipped.
#[derive(Clone, Debug, PartialEq)]
pub struct Rows<T> {
    pub rows: Vec<T>,
    pub skipped: Vec<RowError>,
}

impl<T> Default for Rows<T> {
    fn default() -> Self {
        Rows {
            rows: Vec::new(),
            skipped: Vec::new(),
        }
    }
}

/// What kind of JSON value `v` is, for messages.
pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

impl<T: DeserializeOwned> Rows<T> {
    fn push(&mut self, index: usize, v: Value) {
        if !v.is_object() {
            self.skipped.push(RowError::NotAnObject {
                index,
                kind: kind_of(&v),
            });
            return;
        }
        match T::deserialize(v) {
            Ok(row) => self.rows.push(row),
            Err(e) => self.skipped.push(RowError::Invalid {
                index,
                detail: e.to_string(),
            }),
        }
    }
}

/// A list (or `null`, an empty one). Anything else is an error.
impl<'de, T: DeserializeOwned> Deserialize<'de> for Rows<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: DeserializeOwned> Visitor<'de> for V<T> {
            type Value = Rows<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of rows")
            }

            fn visit_unit<E>(self) -> Result<Rows<T>, E> {
                Ok(Rows::default())
            }

            fn visit_none<E>(self) -> Result<Rows<T>, E> {
                Ok(Rows::default())
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Rows<T>, A::Error> {
                let mut out = Rows {
                    rows: Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096)),
                    skipped: Vec::new(),
                };
                let mut index = 0;
                while let Some(v) = seq.next_element::<Value>()? {
                    out.push(index, v);
                    index += 1;
                }
                Ok(out)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracksolid::types::Location;

    fn rows(s: &str) -> Rows<Location> {
        serde_json::from_str(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn a_bad_row_is_skipped_with_its_reason() {
        let r = rows(r#"[{"imei":"1"},5,null,{"imei":"2","lat":"x"},[1]]"#);
        let imeis: Vec<&str> = r.rows.iter().map(|l| l.imei.as_str()).collect();
        assert_eq!(imeis, ["1", "2"]);
        assert_eq!(
            r.skipped,
            [
                RowError::NotAnObject {
                    index: 1,
                    kind: "a number"
                },
                RowError::NotAnObject {
                    index: 2,
                    kind: "null"
                },
                RowError::NotAnObject {
                    index: 4,
                    kind: "a list"
                },
            ]
        );
        assert_eq!(
            r.skipped[0].to_string(),
            "row 1: not an object but a number"
        );
    }

    #[test]
    fn null_is_empty_and_other_kinds_fail() {
        assert_eq!(rows("null"), Rows::default());
        assert_eq!(rows("[]"), Rows::default());
        assert!(serde_json::from_str::<Rows<Location>>(r#"{"imei":"1"}"#).is_err());
        assert!(serde_json::from_str::<Rows<Location>>(r#""x""#).is_err());
    }

    #[test]
    fn a_repeated_key_in_a_row_keeps_the_last_as_a_value_tree_does() {
        let r = rows(r#"[{"imei":"1","lat":1,"lat":2}]"#);
        assert_eq!(r.rows[0].lat, Some(2.0));
        let from_value: Rows<Location> = Rows::deserialize(
            serde_json::from_str::<Value>(r#"[{"imei":"1","lat":1,"lat":2}]"#)
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(from_value, r);
    }
}
