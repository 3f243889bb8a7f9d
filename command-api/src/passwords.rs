//! Credentials: Argon2id password hashes (off the async runtime, they take tens of
//! milliseconds on purpose) and the keyed email index.

use argon2::{
    Argon2,
    password_hash::{PasswordHasher as _, PasswordVerifier as _},
};
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;

use crate::error::ApiError;

/// Hashes a password as an Argon2id PHC string with a fresh random salt.
pub async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|error| anyhow::anyhow!("hashing a password: {error}"))
    })
    .await
    .map_err(anyhow::Error::from)?
    .map_err(ApiError::Internal)
}

/// Whether `password` matches the PHC string. A malformed stored hash does not match.
pub async fn verify(password: String, phc: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .verify_password(password.as_bytes(), phc.as_str())
            .is_ok()
    })
    .await
    .map_err(|error| ApiError::Internal(error.into()))
}

/// A valid hash of a password nobody knows: log-ins for unknown emails verify against it, so
/// they take as long as real ones and do not reveal which emails exist.
pub const DECOY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$O3y0xG5v3lrdzgKqbEwF8eYrsxAw2UGPUpJQfWxmWyE";

/// The lower-cased, trimmed form in which emails are compared and stored.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// HMAC-SHA-256 of the normalized email under the deployment's index key: the lookup key of
/// `api.accounts`. Without the key it cannot be reversed by guessing common addresses.
pub fn email_key(index_key: &[u8], email: &str) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256>>::new_from_slice(index_key).unwrap_or_else(|_| unreachable!());
    mac.update(normalize_email(email).as_bytes());
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let phc = hash("correct horse battery".into()).await.expect("hashes");
        assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
        assert!(
            verify("correct horse battery".into(), phc.clone())
                .await
                .expect("runs")
        );
        assert!(
            !verify("wrong horse battery".into(), phc)
                .await
                .expect("runs")
        );
        assert!(!verify("x".into(), "not a phc".into()).await.expect("runs"));
    }

    #[tokio::test]
    async fn the_decoy_is_a_real_hash() {
        assert!(argon2::password_hash::phc::PasswordHash::new(DECOY_PHC).is_ok());
        assert!(
            !verify("guess".into(), DECOY_PHC.into())
                .await
                .expect("runs")
        );
    }

    #[test]
    fn email_keys_ignore_case_and_spaces_and_depend_on_the_key() {
        let a = email_key(b"k1", " Alex@Example.org ");
        assert_eq!(a, email_key(b"k1", "alex@example.org"));
        assert_ne!(a, email_key(b"k2", "alex@example.org"));
        assert_ne!(a, email_key(b"k1", "alex@example.com"));
        assert_eq!(a.len(), 32);
    }
}
