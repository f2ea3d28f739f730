//! The access-token cache.
//!
//! The API wants a token fetched once and reused until it expires (reference
//! §3.1: "do NOT get access_token per request"), shared by every worker of an
//! account. The client reads and writes it through [`TokenStore`]; the
//! database-backed store keeps one row per target with `expires_at` as a
//! `timestamptz`. This module ships the in-memory store.
//!
//! The expiry is computed from **our** clock at receipt: `received_at +
//! expiresIn − margin`, as an absolute UTC instant. The `time` field of the
//! token response is not used: its time zone is undocumented (the old stack's
//! timezone bug came from exactly this kind of field).

use jiff::{SignedDuration, Timestamp};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A cached access token. `Debug` does not print the token values.
#[derive(Clone, PartialEq, Eq)]
pub struct CachedToken {
    pub access_token: String,
    /// The refresh token, when the server sent one.
    pub refresh_token: Option<String>,
    /// Our clock when the token arrived.
    pub obtained_at: Timestamp,
    /// Past this instant (UTC) the token is not used any more.
    pub expires_at: Timestamp,
}

impl CachedToken {
    /// Whether the token may still be used at `now`.
    pub fn is_valid_at(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }
}

impl fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedToken")
            .field("access_token", &"<redacted>")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("obtained_at", &self.obtained_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The instant after which a token received at `received_at`, valid for
/// `expires_in_secs`, is not used any more: `received_at + expires_in −
/// margin`. The margin is capped at half the lifetime, so a short-lived token
/// (the API allows 60 s) is still used for a while; a non-positive lifetime
/// yields `received_at` (expired at once).
pub fn expiry_from(received_at: Timestamp, expires_in_secs: i64, margin: Duration) -> Timestamp {
    if expires_in_secs <= 0 {
        return received_at;
    }
    let lifetime = SignedDuration::from_secs(expires_in_secs);
    let margin = SignedDuration::try_from(margin)
        .unwrap_or(SignedDuration::MAX)
        .min(lifetime / 2);
    received_at
        .checked_add(lifetime - margin)
        .unwrap_or(received_at)
}

/// A token store failure (for the database store: the query failed).
#[derive(Debug, thiserror::Error)]
#[error("token store: {message}")]
pub struct TokenStoreError {
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl TokenStoreError {
    pub fn new(message: impl Into<String>) -> Self {
        TokenStoreError {
            message: message.into(),
            source: None,
        }
    }

    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        TokenStoreError {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// Where the client keeps the token of each target (the pipeline's name for a
/// Tracksolid account). Implementations write the methods as `async fn`:
///
/// ```ignore
/// impl TokenStore for PgTokenStore {
///     async fn get(&self, target: &str) -> Result<Option<CachedToken>, TokenStoreError> { … }
///     async fn put(&self, target: &str, token: &CachedToken) -> Result<(), TokenStoreError> { … }
///     async fn invalidate(&self, target: &str, access_token: &str) -> Result<(), TokenStoreError> { … }
/// }
/// ```
///
/// The client calls `get` before a request when it has no valid token in
/// memory, `put` after every login, and `invalidate` when the server refused
/// a token (1004). Each is one short statement: no transaction spans a
/// network call.
pub trait TokenStore: Send + Sync {
    /// The stored token of `target`, valid or not (the client checks the
    /// expiry against its own clock).
    fn get(
        &self,
        target: &str,
    ) -> impl Future<Output = Result<Option<CachedToken>, TokenStoreError>> + Send;

    /// Stores `token` as the token of `target`, replacing any other.
    fn put(
        &self,
        target: &str,
        token: &CachedToken,
    ) -> impl Future<Output = Result<(), TokenStoreError>> + Send;

    /// Forgets the token of `target` **if** it is still `access_token` (so a
    /// token that another worker has just stored survives).
    fn invalidate(
        &self,
        target: &str,
        access_token: &str,
    ) -> impl Future<Output = Result<(), TokenStoreError>> + Send;
}

impl<T: TokenStore> TokenStore for Arc<T> {
    fn get(
        &self,
        target: &str,
    ) -> impl Future<Output = Result<Option<CachedToken>, TokenStoreError>> + Send {
        T::get(self, target)
    }

    fn put(
        &self,
        target: &str,
        token: &CachedToken,
    ) -> impl Future<Output = Result<(), TokenStoreError>> + Send {
        T::put(self, target, token)
    }

    fn invalidate(
        &self,
        target: &str,
        access_token: &str,
    ) -> impl Future<Output = Result<(), TokenStoreError>> + Send {
        T::invalidate(self, target, access_token)
    }
}

/// An in-process token store (tests, one-shot tools).
#[derive(Debug, Default)]
pub struct MemoryTokenStore {
    tokens: Mutex<HashMap<String, CachedToken>>,
}

impl MemoryTokenStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedToken>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stored token of `target` (synchronous, for tests).
    pub fn peek(&self, target: &str) -> Option<CachedToken> {
        self.lock().get(target).cloned()
    }
}

impl TokenStore for MemoryTokenStore {
    async fn get(&self, target: &str) -> Result<Option<CachedToken>, TokenStoreError> {
        Ok(self.lock().get(target).cloned())
    }

    async fn put(&self, target: &str, token: &CachedToken) -> Result<(), TokenStoreError> {
        self.lock().insert(target.to_owned(), token.clone());
        Ok(())
    }

    async fn invalidate(&self, target: &str, access_token: &str) -> Result<(), TokenStoreError> {
        let mut map = self.lock();
        if map
            .get(target)
            .is_some_and(|t| t.access_token == access_token)
        {
            map.remove(target);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn expiry_is_our_clock_plus_lifetime_minus_margin_in_utc() {
        let at = ts("2026-03-26T11:25:38Z");
        assert_eq!(
            expiry_from(at, 7200, Duration::from_secs(300)),
            ts("2026-03-26T13:20:38Z")
        );
        // Independent of any local time zone: the result is an instant.
        assert_eq!(
            expiry_from(
                ts("2026-03-26T14:25:38+03:00"),
                7200,
                Duration::from_secs(300)
            ),
            ts("2026-03-26T13:20:38Z")
        );
    }

    #[test]
    fn margin_is_capped_for_short_tokens() {
        let at = ts("2026-01-01T00:00:00Z");
        assert_eq!(
            expiry_from(at, 60, Duration::from_secs(300)),
            ts("2026-01-01T00:00:30Z")
        );
        assert_eq!(
            expiry_from(at, 2, Duration::from_secs(300)),
            ts("2026-01-01T00:00:01Z")
        );
        assert_eq!(expiry_from(at, 0, Duration::ZERO), at);
        assert_eq!(expiry_from(at, -5, Duration::ZERO), at);
        assert_eq!(
            expiry_from(at, 7200, Duration::MAX),
            ts("2026-01-01T01:00:00Z")
        );
    }

    #[test]
    fn validity() {
        let t = CachedToken {
            access_token: "secret-token".into(),
            refresh_token: Some("refresh".into()),
            obtained_at: ts("2026-01-01T00:00:00Z"),
            expires_at: ts("2026-01-01T01:00:00Z"),
        };
        assert!(t.is_valid_at(ts("2026-01-01T00:59:59Z")));
        assert!(!t.is_valid_at(ts("2026-01-01T01:00:00Z")));
        let dbg = format!("{t:?}");
        assert!(
            !dbg.contains("secret-token") && !dbg.contains("\"refresh\""),
            "{dbg}"
        );
    }

    #[tokio::test]
    async fn memory_store_invalidates_only_the_named_token() {
        let store = MemoryTokenStore::new();
        let t = |tok: &str| CachedToken {
            access_token: tok.into(),
            refresh_token: None,
            obtained_at: Timestamp::UNIX_EPOCH,
            expires_at: Timestamp::MAX,
        };
        store.put("hk", &t("a")).await.ok();
        store.invalidate("hk", "other").await.ok();
        assert_eq!(store.peek("hk").map(|t| t.access_token), Some("a".into()));
        store.invalidate("hk", "a").await.ok();
        assert_eq!(store.peek("hk"), None);
        assert!(matches!(store.get("eu").await, Ok(None)));
    }
}
