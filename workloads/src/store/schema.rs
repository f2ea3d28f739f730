//! The schema: `migrations/` embedded at build time, applied into one
//! pipeline schema (search_path), serialized by sqlx's advisory lock.

use super::DbError;
use sqlx::PgPool;
use sqlx::migrate::Migrator;

pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Quote an SQL identifier (doubling embedded quotes).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Create `schema` if needed and apply every pending migration into it.
/// The pool's connections must have `schema` as their search_path
/// ([`super::connect`] sets it). Returns the latest applied version.
pub async fn migrate(pool: &PgPool, schema: &str) -> Result<i64, DbError> {
    // The identifier is quoted; DDL cannot take bind parameters.
    let ddl = format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(schema));
    sqlx::query(sqlx::AssertSqlSafe(ddl)).execute(pool).await?;
    MIGRATOR.run(pool).await?;
    Ok(MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("tracksolid"), "\"tracksolid\"");
        assert_eq!(
            quote_ident("x\"; DROP ROLE postgres; --"),
            "\"x\"\"; DROP ROLE postgres; --\""
        );
    }
}
