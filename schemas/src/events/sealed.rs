//! Personal data inside events, encrypted per user (crypto-shredding, DESIGN.md Privacy).
//!
//! A [`Sealed`] value holds the UTF-8 JSON of one [`Plaintext`] type, encrypted with the
//! subject user's data key; the schema field that carries it names the type in its `sealed`
//! attribute, and the AES-GCM associated data is that name. Erasing a user deletes their keys,
//! so every sealed value they own becomes unreadable while the log stays immutable.
//!
//! Key management and encryption land later; [`Sealed::dev`] and [`Sealed::open_dev`] are the
//! `PLAINTEXT_DEV` stand-ins used by tests and local runs.

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// How a sealed value was encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SealAlgorithm {
    /// serde would spell it `AES256_GCM`.
    #[serde(rename = "AES_256_GCM")]
    Aes256Gcm,
    /// The ciphertext is the plaintext: development and tests only.
    PlaintextDev,
    /// Written by a newer writer with an algorithm this reader does not know: never open.
    Unknown,
}

/// Mirrors `cruxlog.crypto.Sealed`. `Debug` shows no bytes, so a sealed credential or email
/// never reaches a log, not even in `PLAINTEXT_DEV`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// Per-user data key id; erasing the user deletes the key.
    pub key_id: String,
    pub algorithm: SealAlgorithm,
    #[serde(with = "apache_avro::serde::bytes")]
    pub nonce: Vec<u8>,
    #[serde(with = "apache_avro::serde::bytes")]
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed")
            .field("key_id", &self.key_id)
            .field("algorithm", &self.algorithm)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// Why a sealed value could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("sealed with {0:?}, which needs the key service")]
    NeedsKey(SealAlgorithm),
    #[error("plaintext is not a valid {name}: {source}")]
    Json {
        name: &'static str,
        source: serde_json::Error,
    },
}

impl Sealed {
    /// Seals `plaintext` as `PLAINTEXT_DEV`: readable by anyone, for tests and local runs.
    pub fn dev<T: Plaintext>(key_id: impl Into<String>, plaintext: &T) -> Self {
        Self {
            key_id: key_id.into(),
            algorithm: SealAlgorithm::PlaintextDev,
            nonce: Vec::new(),
            // Serializing these plain structs to JSON cannot fail.
            ciphertext: serde_json::to_vec(plaintext).unwrap_or_default(),
        }
    }

    /// Opens a `PLAINTEXT_DEV` value; anything else needs the key service.
    pub fn open_dev<T: Plaintext>(&self) -> Result<T, OpenError> {
        if self.algorithm != SealAlgorithm::PlaintextDev {
            return Err(OpenError::NeedsKey(self.algorithm));
        }
        serde_json::from_slice(&self.ciphertext).map_err(|source| OpenError::Json {
            name: T::NAME,
            source,
        })
    }
}

/// A type that may be sealed; `NAME` is the schema field's `sealed` attribute and the AEAD
/// associated data. Plaintexts are JSON: fields may be added (readers ignore unknown ones),
/// never renamed or retyped.
pub trait Plaintext: Serialize + DeserializeOwned {
    const NAME: &'static str;
    /// What each JSON field holds, for `docs/events.md`; a test keeps it in step with serde.
    const FIELDS: &'static [(&'static str, &'static str)];
}

macro_rules! plaintext {
    ($type:ident, [$(($field:literal, $doc:literal)),+ $(,)?]) => {
        impl Plaintext for $type {
            const NAME: &'static str = stringify!($type);
            const FIELDS: &'static [(&'static str, &'static str)] = &[$(($field, $doc)),+];
        }
    };
}

/// One plaintext type, described for `docs/events.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaintextDoc {
    pub name: &'static str,
    pub doc: &'static str,
    /// (JSON field, what it holds).
    pub fields: &'static [(&'static str, &'static str)],
}

/// Every plaintext type.
pub fn plaintexts() -> Vec<PlaintextDoc> {
    fn entry<T: Plaintext>(doc: &'static str) -> PlaintextDoc {
        PlaintextDoc {
            name: T::NAME,
            doc,
            fields: T::FIELDS,
        }
    }
    vec![
        entry::<ContactDetails>("How to reach a user."),
        entry::<EmailAddress>("A changed login email."),
        entry::<Credential>("A password verifier."),
        entry::<PersonalDetails>("Who the user is."),
        entry::<BodyMeasurements>("Body measurements the user declared."),
        entry::<Morphology>("Body proportions estimated from pose or used by a ghost."),
        entry::<MediaRef>("Where media bytes are (A5: addressed by content hash)."),
        entry::<Note>("Free text a user wrote about themselves or their climbing."),
        entry::<InjuryDetails>("An injury (health data, GDPR art. 9)."),
    ]
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactDetails {
    pub email: String,
    pub display_name: String,
}
plaintext!(
    ContactDetails,
    [
        ("email", "string, normalized to lower case"),
        ("display_name", "string"),
    ]
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailAddress {
    pub email: String,
}
plaintext!(
    EmailAddress,
    [("email", "string, normalized to lower case")]
);

/// Never log it: its `Debug` prints nothing of the hash.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub password_phc: String,
}
plaintext!(
    Credential,
    [(
        "password_phc",
        "string, Argon2id PHC format: $argon2id$v=19$m=...,t=...,p=...$salt$hash"
    )]
);

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential(..)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalDetails {
    pub display_name: String,
    pub birth_year: Option<i32>,
}
plaintext!(
    PersonalDetails,
    [("display_name", "string"), ("birth_year", "int or null"),]
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BodyMeasurements {
    pub height_cm: Option<f64>,
    pub arm_span_cm: Option<f64>,
    pub weight_kg: Option<f64>,
}
plaintext!(
    BodyMeasurements,
    [
        ("height_cm", "number or null, centimetres"),
        (
            "arm_span_cm",
            "number or null, centimetres fingertip to fingertip"
        ),
        ("weight_kg", "number or null, kilograms"),
    ]
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Morphology {
    pub height_cm: f64,
    pub arm_span_cm: f64,
    /// Segment name to length in cm.
    pub segments_cm: BTreeMap<String, f64>,
}
plaintext!(
    Morphology,
    [
        ("height_cm", "number, centimetres"),
        ("arm_span_cm", "number, centimetres"),
        (
            "segments_cm",
            "object, segment to centimetres; segments: torso, shoulder_width, hip_width, \
         upper_arm_left/right, forearm_left/right, hand_left/right, thigh_left/right, \
         shin_left/right, foot_left/right"
        ),
    ]
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaRef {
    pub object_key: String,
    pub sha256: String,
}
plaintext!(
    MediaRef,
    [
        ("object_key", "string, the object-store key"),
        ("sha256", "string, lower-case hex SHA-256 of the bytes"),
    ]
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub text: String,
}
plaintext!(Note, [("text", "string, as the user wrote it")]);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyPart {
    Finger,
    Hand,
    Wrist,
    Elbow,
    Shoulder,
    Neck,
    Back,
    Hip,
    Knee,
    Ankle,
    Foot,
    Skin,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Left,
    Right,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InjurySeverity {
    /// Train around it.
    Mild,
    /// Avoid loading it.
    Moderate,
    /// No climbing.
    Severe,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjuryDetails {
    pub body_part: BodyPart,
    pub side: Option<Side>,
    pub severity: InjurySeverity,
    /// ISO 8601 date.
    pub started_on: Option<String>,
    pub description: Option<String>,
}
plaintext!(
    InjuryDetails,
    [
        (
            "body_part",
            "string: finger, hand, wrist, elbow, shoulder, neck, back, hip, knee, ankle, foot, skin, other"
        ),
        ("side", "string or null: left, right, both"),
        (
            "severity",
            "string: mild (train around it), moderate (do not load it), severe (no climbing)"
        ),
        ("started_on", "string or null, ISO 8601 date"),
        ("description", "string or null, the user's words"),
    ]
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dev_seal_opens_to_its_plaintext_and_hides_it_from_debug() {
        let contact = ContactDetails {
            email: "ada@example.org".into(),
            display_name: "Ada".into(),
        };
        let sealed = Sealed::dev("k1", &contact);
        assert_eq!(sealed.open_dev::<ContactDetails>().ok(), Some(contact));
        assert!(!format!("{sealed:?}").contains("ada@"));
        let credential = Credential {
            password_phc: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        };
        assert!(!format!("{credential:?}").contains("argon2id"));
    }

    #[test]
    fn only_dev_seals_open_without_the_key_service() {
        let sealed = Sealed {
            key_id: "k1".into(),
            algorithm: SealAlgorithm::Aes256Gcm,
            nonce: vec![0; 12],
            ciphertext: vec![1; 32],
        };
        assert!(matches!(
            sealed.open_dev::<Note>(),
            Err(OpenError::NeedsKey(SealAlgorithm::Aes256Gcm))
        ));
        let wrong_type = Sealed::dev("k1", &Note { text: "hi".into() });
        assert!(matches!(
            wrong_type.open_dev::<MediaRef>(),
            Err(OpenError::Json {
                name: "MediaRef",
                ..
            })
        ));
    }
}
