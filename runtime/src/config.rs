//! Configuration: a typed struct per service, filled from its `Default` and then from
//! environment variables named `CRUXLOG_<SECTION>__<KEY>` (e.g. `CRUXLOG_KAFKA__BROKERS`).
//! Every problem is reported at once, and the process exits.

use figment::{
    Figment,
    providers::{Env, Serialized},
};
use serde::{Serialize, de::DeserializeOwned};

pub const ENV_PREFIX: &str = "CRUXLOG_";

/// Loads the service's configuration. Any key can also come from a file, as secrets do in
/// Docker and Kubernetes: `CRUXLOG_AUTH__JWT_SECRET_FILE=/run/secrets/jwt` sets
/// `auth.jwt_secret` to the file's content (one trailing newline removed).
pub fn load<T: Serialize + DeserializeOwned + Default>() -> Result<T, Box<figment::Error>> {
    let mut figment = Figment::from(Serialized::defaults(T::default())).merge(
        Env::prefixed(ENV_PREFIX)
            .split("__")
            .filter(|key| !key.as_str().ends_with("_file")),
    );
    for (name, path) in std::env::vars() {
        let Some(key) = name
            .strip_prefix(ENV_PREFIX)
            .and_then(|rest| rest.strip_suffix("_FILE"))
        else {
            continue;
        };
        let key = key.to_ascii_lowercase().replace("__", ".");
        let content = std::fs::read_to_string(&path).map_err(|error| {
            Box::new(figment::Error::from(format!(
                "{name}: cannot read {path}: {error}"
            )))
        })?;
        let value = content.strip_suffix('\n').unwrap_or(&content).to_owned();
        figment = figment.merge(Serialized::default(&key, value));
    }
    figment.extract().map_err(Box::new)
}

/// Loads the configuration or prints every error and exits with status 78 (EX_CONFIG).
pub fn load_or_exit<T: Serialize + DeserializeOwned + Default>() -> T {
    match load() {
        Ok(config) => config,
        Err(errors) => {
            for error in *errors {
                eprintln!("configuration error: {error}");
            }
            std::process::exit(78);
        }
    }
}

/// The environment variable names a config type reads, derived from its defaults; compose
/// files and docs are checked against this list.
pub fn env_keys<T: Serialize + Default>() -> Vec<String> {
    let mut keys = Vec::new();
    if let Ok(value) = serde_json::to_value(T::default()) {
        collect(&value, ENV_PREFIX.trim_end_matches('_'), &mut keys);
    }
    keys.sort();
    keys
}

fn collect(value: &serde_json::Value, path: &str, keys: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(fields) => {
            for (name, field) in fields {
                let separator = if path.ends_with("CRUXLOG") { "_" } else { "__" };
                collect(
                    field,
                    &format!("{path}{separator}{}", name.to_uppercase()),
                    keys,
                );
            }
        }
        _ => keys.push(path.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, Serialize, Deserialize)]
    struct Inner {
        brokers: String,
        partitions: i32,
    }

    #[derive(Debug, Default, Serialize, Deserialize)]
    struct Sample {
        kafka: Inner,
    }

    #[test]
    fn env_keys_follow_the_section_key_rule() {
        assert_eq!(
            env_keys::<Sample>(),
            ["CRUXLOG_KAFKA__BROKERS", "CRUXLOG_KAFKA__PARTITIONS"]
        );
    }

    #[test]
    #[allow(
        clippy::result_large_err,
        reason = "figment::Jail fixes the closure type"
    )]
    fn env_overrides_defaults_and_bad_values_are_reported() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CRUXLOG_KAFKA__BROKERS", "b:1");
            let sample: Sample = load().map_err(|error| *error)?;
            assert_eq!(sample.kafka.brokers, "b:1");
            jail.create_file("brokers.txt", "from-a-file:9092\n")?;
            jail.set_env("CRUXLOG_KAFKA__BROKERS_FILE", "brokers.txt");
            let sample: Sample = load().map_err(|error| *error)?;
            assert_eq!(
                sample.kafka.brokers, "from-a-file:9092",
                "a _FILE variable wins, newline trimmed"
            );
            jail.set_env("CRUXLOG_KAFKA__BROKERS_FILE", "missing.txt");
            let error = load::<Sample>().expect_err("unreadable file");
            assert!(
                error.to_string().contains("CRUXLOG_KAFKA__BROKERS_FILE"),
                "{error}"
            );
            jail.set_env("CRUXLOG_KAFKA__BROKERS_FILE", "brokers.txt");
            jail.set_env("CRUXLOG_KAFKA__PARTITIONS", "many");
            let error = load::<Sample>().expect_err("not a number");
            assert!(error.to_string().contains("KAFKA.PARTITIONS"), "{error}");
            Ok(())
        });
    }
}

/// A secret from the environment or a file: redacted in `Debug`, exposed only on purpose.
/// It serializes its value because figment merges defaults through serde; never serialize a
/// config to logs.
#[derive(Clone, serde::Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}
