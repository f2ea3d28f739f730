//! The Tracksolid token cache in PostgreSQL (`api_token`), shared by every
//! run of every job. Expiry is a `timestamptz` written and read as UTC
//! instants (RFC 3339 text in both directions), so the session time zone can
//! never shift it — the old stack's BUG-P9.

use crate::tracksolid::token::{CachedToken, TokenStore, TokenStoreError};
use sqlx::PgPool;

pub struct PgTokenStore {
    pool: PgPool,
}

impl PgTokenStore {
    pub fn new(pool: PgPool) -> Self {
        PgTokenStore { pool }
    }
}

fn err(what: &str, e: sqlx::Error) -> TokenStoreError {
    TokenStoreError::with_source(format!("token cache: {what}"), e)
}

fn instant(text: &str) -> Result<jiff::Timestamp, TokenStoreError> {
    text.parse()
        .map_err(|e| TokenStoreError::with_source(format!("token cache: bad instant {text:?}"), e))
}

impl TokenStore for PgTokenStore {
    async fn get(&self, target: &str) -> Result<Option<CachedToken>, TokenStoreError> {
        let row: Option<(String, Option<String>, String, String)> = sqlx::query_as(
            "SELECT access_token, refresh_token,
                    to_char(obtained_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
                    to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')
             FROM api_token WHERE target = $1",
        )
        .bind(target)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| err("read", e))?;
        row.map(|(access_token, refresh_token, obtained, expires)| {
            Ok(CachedToken {
                access_token,
                refresh_token,
                obtained_at: instant(&obtained)?,
                expires_at: instant(&expires)?,
            })
        })
        .transpose()
    }

    async fn put(&self, target: &str, token: &CachedToken) -> Result<(), TokenStoreError> {
        sqlx::query(
            "INSERT INTO api_token (target, access_token, refresh_token, obtained_at, expires_at)
             VALUES ($1, $2, $3, $4::timestamptz, $5::timestamptz)
             ON CONFLICT (target) DO UPDATE
             SET access_token = excluded.access_token, refresh_token = excluded.refresh_token,
                 obtained_at = excluded.obtained_at, expires_at = excluded.expires_at",
        )
        .bind(target)
        .bind(&token.access_token)
        .bind(&token.refresh_token)
        .bind(token.obtained_at.to_string())
        .bind(token.expires_at.to_string())
        .execute(&self.pool)
        .await
        .map_err(|e| err("write", e))?;
        Ok(())
    }

    async fn invalidate(&self, target: &str, access_token: &str) -> Result<(), TokenStoreError> {
        sqlx::query("DELETE FROM api_token WHERE target = $1 AND access_token = $2")
            .bind(target)
            .bind(access_token)
            .execute(&self.pool)
            .await
            .map_err(|e| err("invalidate", e))?;
        Ok(())
    }
}
