//! Errors of the Tracksolid client, as types.
//!
//! Every failure has an [`ErrorClass`] that says what the caller should do:
//! `Token` (log in again — the client already did so once), `RateLimited`
//! (1006/1005: back off), `Transient` (-1 "system busy", HTTP 5xx/429,
//! timeouts, connection errors: retry later) or `Permanent` (fix the request
//! or the configuration).

use super::envelope::ApiCode;
use super::token::TokenStoreError;
use std::fmt;

/// What the caller should do about an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The access token was refused (1004, HTTP 401); the caller re-logs in.
    Token,
    /// Too many requests (1006, or 1005 IP limit): back off, then retry.
    RateLimited,
    /// A failure that may go away by itself: retry with back-off.
    Transient,
    /// Retrying the same request will not help.
    Permanent,
}

/// Why a request was refused, read from its code and message (the API's
/// codes are few and its messages the only detail; see reference §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectKind {
    /// The `sign` did not match: wrong app secret, or a signing bug.
    Signature,
    /// `jimi.oauth.token.get` refused the user id or password.
    Credentials,
    /// The app key is unknown on this node (reference §1: wrong node).
    AppKey,
    /// 1001: a parameter is missing, malformed or out of its limits.
    Parameter,
    /// 1002: the user or device is not this account's.
    IllegalUserOrDevice,
    /// 1003
    RepeatOperation,
    /// 1007
    WrongRequestMethod,
    /// 1008
    AbnormalIncoming,
    /// 1100 "Business exception"
    Business,
    /// Any other code.
    Other,
}

impl RejectKind {
    /// Classifies a refusal. Text is checked before codes because the
    /// signature, credential and app-key errors have no documented code.
    pub fn classify(method: &str, code: &ApiCode, message: &str) -> RejectKind {
        let m = message.to_ascii_lowercase();
        if m.contains("sign") {
            return RejectKind::Signature;
        }
        if m.contains("appkey") || m.contains("app_key") || m.contains("app key") {
            return RejectKind::AppKey;
        }
        if method == super::methods::TOKEN_GET
            && (m.contains("password") || m.contains("user name") || m.contains("username"))
        {
            return RejectKind::Credentials;
        }
        match code.as_i64() {
            Some(1001) => RejectKind::Parameter,
            Some(1002) => RejectKind::IllegalUserOrDevice,
            Some(1003) => RejectKind::RepeatOperation,
            Some(1007) => RejectKind::WrongRequestMethod,
            Some(1008) => RejectKind::AbnormalIncoming,
            Some(1100) => RejectKind::Business,
            _ => RejectKind::Other,
        }
    }
}

impl fmt::Display for RejectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            RejectKind::Signature => "signature",
            RejectKind::Credentials => "credentials",
            RejectKind::AppKey => "app key",
            RejectKind::Parameter => "parameter",
            RejectKind::IllegalUserOrDevice => "illegal user or device",
            RejectKind::RepeatOperation => "repeat operation",
            RejectKind::WrongRequestMethod => "wrong request method",
            RejectKind::AbnormalIncoming => "abnormal incoming",
            RejectKind::Business => "business exception",
            RejectKind::Other => "other",
        };
        f.write_str(s)
    }
}

/// What made a transient failure transient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransientCause {
    /// An API code configured as transient (default: -1 "system busy").
    Busy { code: ApiCode, message: String },
    /// HTTP 5xx, 408 or 429.
    HttpStatus(u16),
    /// The request or connect timeout elapsed.
    Timeout,
    /// The connection could not be made or broke.
    Connect(String),
}

impl fmt::Display for TransientCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransientCause::Busy { code, message } => write!(f, "code {code}: {message}"),
            TransientCause::HttpStatus(s) => write!(f, "HTTP status {s}"),
            TransientCause::Timeout => f.write_str("timed out"),
            TransientCause::Connect(e) => write!(f, "connection failed: {e}"),
        }
    }
}

/// An error from the Tracksolid client. Messages never contain secrets,
/// tokens or signatures.
#[derive(Debug, thiserror::Error)]
pub enum TracksolidError {
    /// The access token was refused, and logging in again once did not help.
    #[error("{method}: access token refused (code {code}): {message}")]
    TokenRejected {
        method: String,
        code: ApiCode,
        message: String,
    },

    /// Still rate limited after the configured attempts.
    #[error("{method}: rate limited (code {code}) after {attempts} attempt(s): {message}")]
    RateLimited {
        method: String,
        code: ApiCode,
        message: String,
        attempts: u32,
    },

    /// Still failing transiently after the configured attempts.
    #[error("{method}: transient failure after {attempts} attempt(s): {cause}")]
    Transient {
        method: String,
        cause: TransientCause,
        attempts: u32,
    },

    /// The server refused the request (`code` ≠ 0): not retried.
    #[error("{method}: refused with code {code} ({kind}): {message}")]
    Rejected {
        method: String,
        code: ApiCode,
        kind: RejectKind,
        message: String,
    },

    /// An HTTP status that no retry will fix (4xx other than 401/408/429).
    #[error("{method}: HTTP status {status}")]
    HttpStatus { method: String, status: u16 },

    /// The body was not the JSON we expected.
    #[error("{method}: malformed response: {detail}")]
    Decode { method: String, detail: String },

    /// The caller asked for something the API cannot do (checked before sending).
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// The token store failed.
    #[error(transparent)]
    TokenStore(#[from] TokenStoreError),

    /// The HTTP client could not be built (TLS setup, bad endpoint URL).
    #[error("building the Tracksolid HTTP client: {0}")]
    Build(String),
}

impl TracksolidError {
    pub fn class(&self) -> ErrorClass {
        match self {
            TracksolidError::TokenRejected { .. } => ErrorClass::Token,
            TracksolidError::RateLimited { .. } => ErrorClass::RateLimited,
            TracksolidError::Transient { .. } => ErrorClass::Transient,
            // The store is usually the database: it may come back.
            TracksolidError::TokenStore(_) => ErrorClass::Transient,
            TracksolidError::Rejected { .. }
            | TracksolidError::HttpStatus { .. }
            | TracksolidError::Decode { .. }
            | TracksolidError::InvalidRequest(_)
            | TracksolidError::Build(_) => ErrorClass::Permanent,
        }
    }

    /// The API code, when the server answered with one.
    pub fn code(&self) -> Option<&ApiCode> {
        match self {
            TracksolidError::TokenRejected { code, .. }
            | TracksolidError::RateLimited { code, .. }
            | TracksolidError::Rejected { code, .. } => Some(code),
            TracksolidError::Transient {
                cause: TransientCause::Busy { code, .. },
                ..
            } => Some(code),
            _ => None,
        }
    }

    /// The refusal kind, for `Rejected`.
    pub fn reject_kind(&self) -> Option<RejectKind> {
        match self {
            TracksolidError::Rejected { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_by_text_then_code() {
        let c = |m: &str, code: i64, text: &str| RejectKind::classify(m, &ApiCode::Num(code), text);
        assert_eq!(
            c("jimi.user.device.list", 1001, "Invalid sign"),
            RejectKind::Signature
        );
        assert_eq!(
            c(
                "jimi.oauth.token.get",
                1002,
                "Incorrect user name or password"
            ),
            RejectKind::Credentials
        );
        assert_eq!(
            c(
                "jimi.user.device.list",
                1002,
                "Incorrect user name or password"
            ),
            RejectKind::IllegalUserOrDevice
        );
        assert_eq!(
            c("jimi.oauth.token.get", 1001, "AppKey does not exist"),
            RejectKind::AppKey
        );
        assert_eq!(
            c("jimi.device.location.get", 1001, "imeis exceeds 100"),
            RejectKind::Parameter
        );
        assert_eq!(
            c("jimi.device.track.list", 1002, "IMEI does not exist{1}"),
            RejectKind::IllegalUserOrDevice
        );
        assert_eq!(c("x", 1100, "Business exception "), RejectKind::Business);
        assert_eq!(
            RejectKind::classify("x", &ApiCode::Text("xxx".into()), "Illegal device"),
            RejectKind::Other
        );
    }

    #[test]
    fn classes() {
        let e = TracksolidError::Transient {
            method: "m".into(),
            cause: TransientCause::HttpStatus(503),
            attempts: 3,
        };
        assert_eq!(e.class(), ErrorClass::Transient);
        assert_eq!(
            e.to_string(),
            "m: transient failure after 3 attempt(s): HTTP status 503"
        );
        let e = TracksolidError::Rejected {
            method: "m".into(),
            code: ApiCode::Num(1001),
            kind: RejectKind::Signature,
            message: "Invalid sign".into(),
        };
        assert_eq!(e.class(), ErrorClass::Permanent);
        assert_eq!(e.reject_kind(), Some(RejectKind::Signature));
        assert_eq!(e.code(), Some(&ApiCode::Num(1001)));
    }
}
