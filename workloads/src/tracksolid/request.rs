//! One signed request: the common parameters of reference §2.1 plus the
//! method's own, and `sign` over all of them (§2.2).

use super::params::Params;
use super::sign::{SIGN_PARAM, sign};
use super::time::format_wire;
use jiff::Timestamp;

/// What identifies the caller on every request.
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    pub app_key: &'a str,
    pub app_secret: &'a str,
    /// `v`: "1.0" (signature checked).
    pub version: &'a str,
}

/// The form fields of one request, `sign` last. Common parameters win over
/// private ones of the same name; empty values are never sent; the access
/// token is sent (and signed) when given.
pub fn signed_form(
    caller: Caller<'_>,
    method: &str,
    params: &Params,
    access_token: Option<&str>,
    now: Timestamp,
) -> Vec<(String, String)> {
    let mut all = params.clone();
    all.insert(SIGN_PARAM, "");
    all.insert("method", method);
    all.insert("timestamp", format_wire(now));
    all.insert("app_key", caller.app_key);
    all.insert("sign_method", "md5");
    all.insert("v", caller.version);
    all.insert("format", "json");
    all.insert("access_token", access_token.unwrap_or(""));
    let signature = sign(caller.app_secret, all.iter());
    let mut form: Vec<(String, String)> = all
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    form.push((SIGN_PARAM.to_owned(), signature));
    form
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    const CALLER: Caller<'static> = Caller {
        app_key: "TESTAPPKEY",
        app_secret: "0123456789abcdef0123456789abcdef",
        version: "1.0",
    };

    #[test]
    fn token_request_matches_the_reference_vector() {
        let params = Params::new()
            .set("user_id", "demo_user")
            .set("user_pwd_md5", "c9a2be50ac796d7c8bff5ab5f6d9a69b")
            .set("expires_in", "7200");
        let form = signed_form(
            CALLER,
            "jimi.oauth.token.get",
            &params,
            None,
            at("2024-01-15T10:00:00Z"),
        );
        // 7 common (method, timestamp, app_key, sign, sign_method, v, format)
        // + 3 private = 10 (reference §2.1).
        assert_eq!(form.len(), 10);
        assert_eq!(
            form.last().map(|(k, v)| (k.as_str(), v.as_str())),
            Some(("sign", "18C7136F26C6E487BA0A6406E13BE2DC"))
        );
        assert!(
            form.iter()
                .any(|(k, v)| k == "timestamp" && v == "2024-01-15 10:00:00")
        );
        assert!(!form.iter().any(|(k, _)| k == "access_token"));
    }

    #[test]
    fn empty_map_type_is_not_sent_and_token_is_signed() {
        let params = Params::new()
            .set("imeis", "868120145233604,868120145233605")
            .set("map_type", "");
        let form = signed_form(
            CALLER,
            "jimi.device.location.get",
            &params,
            Some("abc123token"),
            at("2024-01-15T10:00:00Z"),
        );
        assert!(!form.iter().any(|(k, _)| k == "map_type"));
        assert_eq!(
            form.last().map(|(_, v)| v.as_str()),
            Some("8555FE152A44268B2EF91424DC90A267")
        );
    }

    #[test]
    fn common_parameters_cannot_be_overridden() {
        let params = Params::new().set("method", "evil").set("sign", "X");
        let form = signed_form(
            CALLER,
            "jimi.user.device.list",
            &params,
            Some("t"),
            at("2024-01-15T10:00:00Z"),
        );
        assert_eq!(form.iter().filter(|(k, _)| k == "method").count(), 1);
        assert!(
            form.iter()
                .any(|(k, v)| k == "method" && v == "jimi.user.device.list")
        );
        assert_eq!(form.iter().filter(|(k, _)| k == "sign").count(), 1);
    }
}
