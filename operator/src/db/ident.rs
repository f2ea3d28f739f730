//! Quoting for the only SQL we cannot bind: identifiers and literals in DDL,
//! GRANT and ALTER ROLE statements. Every name that reaches SQL text goes
//! through [`quote_ident`]; every value through [`quote_literal`].

/// Quote an SQL identifier: wrap in double quotes, doubling embedded ones, so
/// the name is always one identifier whatever it contains.
///
/// A NUL byte cannot be part of a PostgreSQL identifier; it is dropped (the
/// server would reject the statement anyway).
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        match c {
            '"' => out.push_str("\"\""),
            '\0' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Quote a string literal: single quotes, embedded ones doubled. Valid with
/// `standard_conforming_strings = on` (the default since PostgreSQL 9.1, and
/// the only value sqlx connects with), where a backslash is an ordinary
/// character. NUL bytes are dropped.
pub fn quote_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\0' => {}
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `"schema"."name"`.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

/// A run-time configuration parameter name we are willing to put in
/// `ALTER ROLE … SET name = …`: lower-case letters, digits, `_` and `.`
/// (for extension settings), starting with a letter or `_`.
pub fn is_setting_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '.'))
        && name.len() <= 63
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("tracksolid"), "\"tracksolid\"");
        assert_eq!(quote_ident(""), "\"\"");
        assert_eq!(quote_ident("Mixed Case"), "\"Mixed Case\"");
    }

    #[test]
    fn injection_through_an_identifier_stays_one_identifier() {
        let evil = r#"x"; DROP ROLE postgres; --"#;
        let q = quote_ident(evil);
        assert_eq!(q, r#""x""; DROP ROLE postgres; --""#);
        // Inside the outer quotes every quote is doubled: no way out.
        let inner = &q[1..q.len() - 1];
        assert!(!inner.replace("\"\"", "").contains('"'));
        assert_eq!(quote_ident("a\0b"), "\"ab\"");
        assert_eq!(quote_ident("\"\""), "\"\"\"\"\"\"");
    }

    #[test]
    fn injection_through_a_literal_stays_one_literal() {
        let evil = "60s'; DROP ROLE postgres; --";
        let q = quote_literal(evil);
        assert_eq!(q, "'60s''; DROP ROLE postgres; --'");
        let inner = &q[1..q.len() - 1];
        assert!(!inner.replace("''", "").contains('\''));
        // Backslashes are ordinary characters with standard_conforming_strings.
        assert_eq!(quote_literal(r"a\'b"), r"'a\''b'");
    }

    #[test]
    fn qualified_names_quote_both_parts() {
        assert_eq!(qualified("s", "t\"x"), "\"s\".\"t\"\"x\"");
    }

    #[test]
    fn setting_names_are_allow_listed() {
        assert!(is_setting_name("statement_timeout"));
        assert!(is_setting_name("pg_stat_statements.track"));
        assert!(!is_setting_name("search_path = x; DROP ROLE postgres"));
        assert!(!is_setting_name("Statement_timeout"));
        assert!(!is_setting_name(""));
        assert!(!is_setting_name("1x"));
    }
}
