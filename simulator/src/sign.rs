//! The server side of the signature (reference §2.2), written independently
//! of the client's so that the two check each other: every parameter but
//! `sign`, pairs with an empty key or value skipped, sorted by key (bytes),
//! `secret + k1v1k2v2… + secret`, MD5, upper-case hex.

use md5::{Digest, Md5};
use std::collections::BTreeMap;

pub fn expected_sign(secret: &str, params: &BTreeMap<String, String>) -> String {
    let mut h = Md5::new();
    h.update(secret.as_bytes());
    // BTreeMap<String, _> iterates in byte order of the keys.
    for (k, v) in params {
        if k == "sign" || k.is_empty() || v.is_empty() {
            continue;
        }
        h.update(k.as_bytes());
        h.update(v.as_bytes());
    }
    h.update(secret.as_bytes());
    hex::encode_upper(h.finalize())
}

pub fn md5_lower(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn reference_vectors() {
        assert_eq!(
            expected_sign(
                "h9lri085eachcz4sn7gwnkh6j0jt0yz4",
                &map(&[
                    ("foo", "1"),
                    ("bar", "2"),
                    ("foo_bar", "3"),
                    ("foobar", "4")
                ])
            ),
            "2CEB0E3B7EA209555DFFC9296378FDD9"
        );
        let secret = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            expected_sign(
                secret,
                &map(&[
                    ("app_key", "TESTAPPKEY"),
                    ("expires_in", "7200"),
                    ("format", "json"),
                    ("method", "jimi.oauth.token.get"),
                    ("sign_method", "md5"),
                    ("timestamp", "2024-01-15 10:00:00"),
                    ("user_id", "demo_user"),
                    ("user_pwd_md5", &md5_lower("demo_password")),
                    ("v", "1.0"),
                    ("sign", "ignored"),
                ])
            ),
            "18C7136F26C6E487BA0A6406E13BE2DC"
        );
        assert_eq!(
            expected_sign(
                secret,
                &map(&[
                    ("access_token", "abc123token"),
                    ("app_key", "TESTAPPKEY"),
                    ("format", "json"),
                    ("imeis", "868120145233604,868120145233605"),
                    ("map_type", ""),
                    ("method", "jimi.device.location.get"),
                    ("sign_method", "md5"),
                    ("timestamp", "2024-01-15 10:00:00"),
                    ("v", "1.0"),
                ])
            ),
            "8555FE152A44268B2EF91424DC90A267"
        );
    }
}
