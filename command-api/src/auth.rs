//! Access tokens: short-lived HS256 JWTs carrying the user id and role. Issuing them from
//! logins (and refresh rotation) is issue #4; this module verifies them and, for operators,
//! mints them from the CLI.
//!
//! A token verified once is remembered (by its exact text) until it expires: a phone sends the
//! same access token with every request for its whole life, and decoding it (two JSON parses,
//! base64, HMAC) took 6 % of the API process's CPU under the load bench (issue #4).
//! Only tokens that passed every check are remembered, with their expiry, which a remembered
//! token must still pass; any other text, a tampered copy included, is decoded in full.

use std::sync::{Arc, Mutex};

use axum::{extract::FromRequestParts, http::request::Parts};
use cruxlog_schemas::{Actor, ActorRole};
use hashlink::LruCache;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{AppState, config::AuthConfig, error::ApiError};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    role: String,
    aud: String,
    iss: String,
    exp: i64,
    iat: i64,
}

/// How many verified tokens are remembered (about 300 bytes each): more than the access tokens
/// alive at once on an instance serving a few thousand phones.
const VERIFIED_TOKENS: usize = 16_384;

/// A token that passed verification: who it names, and until when it is valid.
#[derive(Clone)]
struct Verified {
    actor: Actor,
    expires: i64,
}

/// Signing and verification keys for one deployment.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    audience: String,
    issuer: String,
    verified: Arc<Mutex<LruCache<Box<str>, Verified>>>,
}

impl TokenKeys {
    pub fn new(config: &AuthConfig) -> Self {
        let secret = config.jwt_secret.expose().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[&config.audience]);
        validation.set_issuer(&[&config.issuer]);
        validation.leeway = 5;
        // `exp` stays required, but it is checked in one place, [`TokenKeys::verify_at`],
        // for decoded and remembered tokens alike.
        validation.validate_exp = false;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            audience: config.audience.clone(),
            issuer: config.issuer.clone(),
            verified: Arc::new(Mutex::new(LruCache::new(VERIFIED_TOKENS))),
        }
    }

    /// Mints an access token valid for `ttl_seconds`.
    pub fn mint(&self, user_id: Uuid, role: ActorRole, ttl_seconds: i64) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let role = match role {
            ActorRole::Admin => "admin",
            ActorRole::User | ActorRole::System => "user",
        };
        let claims = Claims {
            sub: user_id,
            role: role.into(),
            aud: self.audience.clone(),
            iss: self.issuer.clone(),
            exp: now + ttl_seconds,
            iat: now,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    pub(crate) fn verify(&self, token: &str) -> Result<Actor, ApiError> {
        self.verify_at(token, chrono::Utc::now().timestamp())
    }

    /// [`Self::verify`] at the time `now` (seconds since the epoch).
    fn verify_at(&self, token: &str, now: i64) -> Result<Actor, ApiError> {
        // One expiry rule, with the decode's leeway, for remembered and decoded tokens: a
        // remembered token is valid exactly as long as decoding it again would say.
        let leeway = i64::try_from(self.validation.leeway).unwrap_or(0);
        if let Ok(mut verified) = self.verified.lock() {
            match verified.get(token).cloned() {
                Some(known) if now <= known.expires + leeway => return Ok(known.actor),
                Some(_) => {
                    verified.remove(token);
                }
                None => {}
            }
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| ApiError::Unauthorized("invalid or expired access token"))?;
        if now > data.claims.exp + leeway {
            return Err(ApiError::Unauthorized("invalid or expired access token"));
        }
        let role = match data.claims.role.as_str() {
            "admin" => ActorRole::Admin,
            "user" => ActorRole::User,
            _ => return Err(ApiError::Unauthorized("unknown role")),
        };
        let actor = Actor {
            user_id: Some(data.claims.sub),
            role,
        };
        if let Ok(mut verified) = self.verified.lock() {
            verified.insert(
                token.into(),
                Verified {
                    actor: actor.clone(),
                    expires: data.claims.exp,
                },
            );
        }
        Ok(actor)
    }
}

/// The authenticated caller; extracting it rejects requests without a valid bearer token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: Uuid,
    pub actor: Actor,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .ok_or(ApiError::Unauthorized("missing bearer token"))?;
        let token = header
            .strip_prefix("Bearer ")
            .ok_or(ApiError::Unauthorized(
                "authorization must be a bearer token",
            ))?;
        let actor = state.keys.verify(token.trim())?;
        let user_id = actor
            .user_id
            .ok_or(ApiError::Unauthorized("token has no subject"))?;
        Ok(Self { user_id, actor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuthConfig;

    #[test]
    fn tokens_verify_and_tampering_is_rejected() {
        let keys = TokenKeys::new(&AuthConfig::default());
        let user = Uuid::now_v7();
        let token = keys.mint(user, ActorRole::User, 60).expect("mints");
        assert_eq!(keys.verify(&token).expect("valid").user_id, Some(user));

        let expired = keys.mint(user, ActorRole::User, -60).expect("mints");
        assert!(keys.verify(&expired).is_err());

        let other = AuthConfig {
            jwt_secret: cruxlog_runtime::config::Secret::new("other"),
            ..AuthConfig::default()
        };
        let forged = TokenKeys::new(&other)
            .mint(user, ActorRole::Admin, 60)
            .expect("mints");
        assert!(keys.verify(&forged).is_err(), "wrong key");

        let wrong_audience = AuthConfig {
            audience: "someone-else".into(),
            ..AuthConfig::default()
        };
        let token = TokenKeys::new(&wrong_audience)
            .mint(user, ActorRole::User, 60)
            .expect("mints");
        assert!(keys.verify(&token).is_err(), "wrong audience");

        // alg=none: header {"alg":"none","typ":"JWT"} with the same claims and no signature.
        let valid = keys.mint(user, ActorRole::Admin, 60).expect("mints");
        let unsigned = format!(
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
            valid.split('.').nth(1).unwrap_or_default()
        );
        assert!(keys.verify(&unsigned).is_err(), "alg none");
    }

    #[test]
    fn a_remembered_token_expires_and_its_tampered_copies_are_decoded() {
        let keys = TokenKeys::new(&AuthConfig::default());
        let user = Uuid::now_v7();
        let token = keys.mint(user, ActorRole::User, 60).expect("mints");
        let now = chrono::Utc::now().timestamp();
        assert_eq!(
            keys.verify_at(&token, now).expect("valid").user_id,
            Some(user)
        );
        // Remembered now; still valid within the leeway after `exp`, not past it.
        assert!(
            keys.verify_at(&token, now + 60 + 4).is_ok(),
            "within the leeway"
        );
        assert!(
            keys.verify_at(&token, now + 60 + 7).is_err(),
            "expired while remembered"
        );
        // Forgotten once expired: a later check decodes it again (and it is still expired).
        assert!(keys.verify_at(&token, now + 60 + 7).is_err());

        let token = keys.mint(user, ActorRole::User, 60).expect("mints");
        keys.verify_at(&token, now).expect("valid");
        // A copy whose claims say admin, with the remembered token's signature.
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let claims = String::from_utf8(
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &parts[1])
                .expect("base64"),
        )
        .expect("utf-8")
        .replace("\"user\"", "\"admin\"");
        parts[1] = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            claims.as_bytes(),
        );
        assert!(
            keys.verify_at(&parts.join("."), now).is_err(),
            "tampered claims"
        );
        // One more character after the signature.
        assert!(
            keys.verify_at(&format!("{token}A"), now).is_err(),
            "tampered signature"
        );
        assert_eq!(
            keys.verify_at(&token, now).expect("valid").role,
            ActorRole::User
        );
    }
}
