//! Request signing, exactly as the reference §2.2 describes it:
//!
//! 1. every parameter except `sign` (and except pairs whose key or value is
//!    empty, like the official Java `signTopRequest`),
//! 2. sorted by key in byte order,
//! 3. joined as `key1value1key2value2…`,
//! 4. wrapped as `secret + joined + secret`, MD5 over the UTF-8 bytes,
//! 5. upper-case hex.
//!
//! Values are signed raw (before form encoding). We never *send* empty
//! parameters either (see [`super::params::Params`]), so the server's own
//! treatment of empty values never matters.

use md5::{Digest, Md5};

/// The name of the signature parameter, never part of the signed string.
pub const SIGN_PARAM: &str = "sign";

/// The pairs that take part in the signature, sorted by key (byte order).
fn signed_pairs<'a, I>(params: I) -> Vec<(&'a str, &'a str)>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut pairs: Vec<(&str, &str)> = params
        .into_iter()
        .filter(|(k, v)| *k != SIGN_PARAM && !k.is_empty() && !v.is_empty())
        .collect();
    pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()).then(a.1.cmp(b.1)));
    pairs
}

/// The joined `key1value1key2value2…` string (without the secret around it).
/// Only for tests and debugging: it contains the access token when there is one.
pub fn string_to_sign<'a, I>(params: I) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    signed_pairs(params)
        .into_iter()
        .fold(String::new(), |mut acc, (k, v)| {
            acc.push_str(k);
            acc.push_str(v);
            acc
        })
}

/// The `sign` value for `params` under `secret`: 32 upper-case hex characters.
pub fn sign<'a, I>(secret: &str, params: I) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut hasher = Md5::new();
    hasher.update(secret.as_bytes());
    for (k, v) in signed_pairs(params) {
        hasher.update(k.as_bytes());
        hasher.update(v.as_bytes());
    }
    hasher.update(secret.as_bytes());
    hex::encode_upper(hasher.finalize())
}

/// Lower-case hex MD5 of a UTF-8 string (the form `user_pwd_md5` needs).
pub fn md5_lower_hex(input: &str) -> String {
    hex::encode(Md5::digest(input.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn generic_doc_example() {
        let params = [
            ("foo", "1"),
            ("bar", "2"),
            ("foo_bar", "3"),
            ("foobar", "4"),
        ];
        assert_eq!(string_to_sign(params), "bar2foo1foo_bar3foobar4");
        assert_eq!(
            sign("h9lri085eachcz4sn7gwnkh6j0jt0yz4", params),
            "2CEB0E3B7EA209555DFFC9296378FDD9"
        );
    }

    fn token_request() -> Vec<(&'static str, &'static str)> {
        vec![
            ("app_key", "TESTAPPKEY"),
            ("expires_in", "7200"),
            ("format", "json"),
            ("method", "jimi.oauth.token.get"),
            ("sign_method", "md5"),
            ("timestamp", "2024-01-15 10:00:00"),
            ("user_id", "demo_user"),
            ("user_pwd_md5", "c9a2be50ac796d7c8bff5ab5f6d9a69b"),
            ("v", "1.0"),
        ]
    }

    #[test]
    fn password_md5_is_lower_case() {
        assert_eq!(
            md5_lower_hex("demo_password"),
            "c9a2be50ac796d7c8bff5ab5f6d9a69b"
        );
    }

    #[test]
    fn token_request_vector() {
        let params = token_request();
        assert_eq!(
            string_to_sign(params.iter().copied()),
            "app_keyTESTAPPKEYexpires_in7200formatjsonmethodjimi.oauth.token.getsign_methodmd5timestamp2024-01-15 10:00:00user_iddemo_useruser_pwd_md5c9a2be50ac796d7c8bff5ab5f6d9a69bv1.0"
        );
        assert_eq!(
            sign(TEST_SECRET, params.iter().copied()),
            "18C7136F26C6E487BA0A6406E13BE2DC"
        );
    }

    #[test]
    fn order_of_input_does_not_matter_and_sign_is_excluded() {
        let mut params = token_request();
        params.reverse();
        params.push(("sign", "SOMETHING"));
        assert_eq!(
            sign(TEST_SECRET, params.iter().copied()),
            "18C7136F26C6E487BA0A6406E13BE2DC"
        );
    }

    fn location_request(map_type: &'static str) -> Vec<(&'static str, &'static str)> {
        vec![
            ("access_token", "abc123token"),
            ("app_key", "TESTAPPKEY"),
            ("format", "json"),
            ("imeis", "868120145233604,868120145233605"),
            ("map_type", map_type),
            ("method", "jimi.device.location.get"),
            ("sign_method", "md5"),
            ("timestamp", "2024-01-15 10:00:00"),
            ("v", "1.0"),
        ]
    }

    #[test]
    fn empty_values_are_skipped() {
        assert_eq!(
            sign(TEST_SECRET, location_request("").iter().copied()),
            "8555FE152A44268B2EF91424DC90A267"
        );
        // Leaving the pair out entirely signs the same.
        let without: Vec<_> = location_request("")
            .into_iter()
            .filter(|(k, _)| *k != "map_type")
            .collect();
        assert_eq!(
            sign(TEST_SECRET, without.iter().copied()),
            "8555FE152A44268B2EF91424DC90A267"
        );
    }

    #[test]
    fn signing_the_bare_key_gives_the_other_documented_value() {
        // What a client that signs `map_type` with an empty value would send
        // (reference §2.2): we must never produce it.
        let joined = string_to_sign(location_request("").iter().copied());
        assert!(!joined.contains("map_type"));
        let mut hasher = Md5::new();
        let with_bare_key = joined.replace(
            "imeis868120145233604,868120145233605",
            "imeis868120145233604,868120145233605map_type",
        );
        hasher.update(format!("{TEST_SECRET}{with_bare_key}{TEST_SECRET}").as_bytes());
        assert_eq!(
            hex::encode_upper(hasher.finalize()),
            "925D8E9568D4CE79CDF31714E5A4CB8F"
        );
    }

    #[test]
    fn utf8_values_are_signed_raw() {
        // A non-ASCII value is hashed as its UTF-8 bytes, not percent-encoded.
        let a = sign("s", [("name", "粤 B3604")]);
        let b = sign("s", [("name", "%E7%B2%A4%20B3604")]);
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        );
    }
}
