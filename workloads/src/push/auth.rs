//! The push token check (SEC-02): the configured token compared in constant
//! time (the `subtle` crate) with the one the sender presents.

use subtle::ConstantTimeEq;

/// What the receiver was configured with.
#[derive(Clone)]
pub enum TokenCheck {
    /// Only requests carrying this token are accepted.
    Required(String),
    /// `requireToken: false` set explicitly: every request is accepted.
    Disabled,
}

impl std::fmt::Debug for TokenCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        match self {
            TokenCheck::Required(_) => f.write_str("TokenCheck::Required(<redacted>)"),
            TokenCheck::Disabled => f.write_str("TokenCheck::Disabled"),
        }
    }
}

impl TokenCheck {
    /// Does `presented` (from the body's `token`, the `token` query parameter
    /// or the `X-Push-Token` header) match?
    pub fn accepts(&self, presented: Option<&str>) -> bool {
        match self {
            TokenCheck::Disabled => true,
            TokenCheck::Required(expected) => presented.is_some_and(|p| {
                // Lengths are compared in constant time too (ct_eq on slices
                // returns false for unequal lengths without early exit on content).
                bool::from(p.as_bytes().ct_eq(expected.as_bytes()))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_passes() {
        let check = TokenCheck::Required("s3cret-token".into());
        assert!(check.accepts(Some("s3cret-token")));
        assert!(!check.accepts(Some("s3cret-tokeN")));
        assert!(!check.accepts(Some("s3cret")));
        assert!(!check.accepts(Some("")));
        assert!(!check.accepts(None));
        assert!(TokenCheck::Disabled.accepts(None));
        assert!(!format!("{check:?}").contains("s3cret"));
    }
}
