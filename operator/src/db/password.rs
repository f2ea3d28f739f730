//! Role passwords: generation, the SCRAM-SHA-256 verifier sent to the server
//! instead of the password, and the fingerprint that tells the planner whether
//! a role already has the password its Secret holds.

use super::secret::SecretString;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngExt;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

/// Generated password length: 32 characters of `[A-Za-z0-9]`, about 190 bits.
pub const PASSWORD_LEN: usize = 32;

/// PostgreSQL's default `scram_iterations`.
pub const SCRAM_ITERATIONS: u32 = 4096;

/// A new random password from the thread-local CSPRNG (ChaCha, seeded from
/// the operating system). Alphanumeric, so it needs no escaping in a URL, a
/// libpq connection string or a shell.
pub fn generate() -> SecretString {
    let mut rng = rand::rng();
    let text: String = (0..PASSWORD_LEN)
        .map(|_| char::from(rng.sample(Alphanumeric)))
        .collect();
    SecretString::new(text)
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA-256 takes keys of any length"),
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// PBKDF2-HMAC-SHA-256 with one output block (RFC 5802 `Hi`).
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut u = hmac(password, &[salt, &1u32.to_be_bytes()]);
    let mut out = u;
    for _ in 1..iterations {
        u = hmac(password, &[&u]);
        for (o, b) in out.iter_mut().zip(u.iter()) {
            *o ^= b;
        }
    }
    out
}

/// The SCRAM-SHA-256 verifier PostgreSQL stores for `password`:
/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`. Sent in
/// `ALTER ROLE … PASSWORD '…'`, the server stores it as is, so the password
/// itself never travels in SQL text (nor reaches a server log with
/// `log_statement = ddl`).
///
/// The password is used as given (SASLprep is the identity for the ASCII
/// passwords [`generate`] makes; libpq applies it to other passwords).
pub fn scram_sha256_verifier(password: &str, salt: &[u8], iterations: u32) -> String {
    let salted = hi(password.as_bytes(), salt, iterations);
    let client_key = hmac(&salted, &[b"Client Key"]);
    let stored_key = Sha256::digest(client_key);
    let server_key = hmac(&salted, &[b"Server Key"]);
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        BASE64.encode(salt),
        BASE64.encode(stored_key),
        BASE64.encode(server_key)
    )
}

/// [`scram_sha256_verifier`] with a fresh random 16-byte salt.
pub fn scram_verifier(password: &SecretString) -> String {
    let salt: [u8; 16] = rand::rng().random();
    scram_sha256_verifier(password.expose(), &salt, SCRAM_ITERATIONS)
}

/// What `fleetops_role_state` records for a role's password: SHA-256 over a
/// domain tag, the role name and the password. The planner compares it with
/// the fingerprint of the password the caller wants, to alter the password
/// only when it changed (rotation, or a lost Secret regenerated). The
/// passwords are 190-bit random strings, so the hash gives nothing away; the
/// table is readable by the operator's login only.
pub fn fingerprint(role: &str, password: &SecretString) -> String {
    let mut h = Sha256::new();
    h.update(b"fleetops-password-v1\0");
    h.update(role.as_bytes());
    h.update(b"\0");
    h.update(password.expose().as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_alphanumeric_and_distinct() {
        let a = generate();
        let b = generate();
        assert_eq!(a.expose().len(), PASSWORD_LEN);
        assert!(a.expose().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    /// RFC 7677 §3 example exchange: user "user", password "pencil". The
    /// verifier's ServerKey must produce the server signature, and its
    /// StoredKey must be SHA-256 of the ClientKey recovered from the proof.
    #[test]
    fn verifier_matches_the_rfc_7677_exchange() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
        let v = scram_sha256_verifier("pencil", &salt, 4096);
        let (head, keys) = v
            .split_once('$')
            .and_then(|(_, r)| r.split_once('$'))
            .expect("shape");
        assert_eq!(head, "4096:W22ZaJ0SNY7soEsUEjb6gQ==");
        let (stored, server) = keys.split_once(':').expect("keys");
        let stored = BASE64.decode(stored).expect("stored");
        let server = BASE64.decode(server).expect("server");

        let auth = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
                    r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
                    c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let server_sig = hmac(&server, &[auth.as_bytes()]);
        assert_eq!(
            BASE64.encode(server_sig),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );

        let proof = BASE64
            .decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .expect("proof");
        let client_sig = hmac(&stored, &[auth.as_bytes()]);
        let client_key: Vec<u8> = proof
            .iter()
            .zip(client_sig.iter())
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(Sha256::digest(&client_key).as_slice(), stored.as_slice());
    }

    #[test]
    fn verifier_never_contains_the_password() {
        let p = SecretString::new("CorrectHorseBatteryStaple");
        let v = scram_verifier(&p);
        assert!(v.starts_with("SCRAM-SHA-256$4096:"));
        assert!(!v.contains(p.expose()));
        // A fresh salt each time.
        assert_ne!(v, scram_verifier(&p));
    }

    #[test]
    fn fingerprints_depend_on_role_and_password() {
        let p = SecretString::new("a");
        assert_eq!(fingerprint("r", &p), fingerprint("r", &p));
        assert_ne!(fingerprint("r", &p), fingerprint("s", &p));
        assert_ne!(
            fingerprint("r", &p),
            fingerprint("r", &SecretString::new("b"))
        );
        assert_eq!(fingerprint("r", &p).len(), 64);
    }
}
