//! Opening a [`BlobStore`] from its configuration: a local directory or an S3-compatible
//! bucket.

use std::{path::Path as FsPath, sync::Arc};

use object_store::{ObjectStore, local::LocalFileSystem, prefix::PrefixStore};
use serde::{Deserialize, Serialize};

use super::{BlobError, BlobStore, Result};
use crate::config::Secret;

/// The `blobs` section of a service's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct BlobConfig {
    /// `file:///abs/dir`, a plain directory (relative to the working directory), or
    /// `s3://bucket/prefix`.
    pub url: String,
    /// S3 only; unset means the usual `AWS_*` variables.
    pub access_key_id: Option<Secret>,
    pub secret_access_key: Option<Secret>,
    pub region: Option<String>,
    /// S3-compatible endpoint (MinIO, Ceph, ...), e.g. `http://127.0.0.1:9000`.
    pub endpoint: Option<String>,
    /// Allows a plain-HTTP endpoint (local S3-compatible stores only).
    pub allow_http: bool,
}

impl Default for BlobConfig {
    fn default() -> Self {
        Self {
            url: ".local/blobs".into(),
            access_key_id: None,
            secret_access_key: None,
            region: None,
            endpoint: None,
            allow_http: false,
        }
    }
}

impl BlobStore {
    /// Opens the store named by the configuration; a local directory is created if missing.
    pub fn open(config: &BlobConfig) -> Result<Self> {
        if config.url.starts_with("s3://") {
            return Self::s3(config);
        }
        let dir = config.url.strip_prefix("file://").unwrap_or(&config.url);
        Self::local(dir)
    }

    /// A store in a local directory.
    pub fn local(dir: impl AsRef<FsPath>) -> Result<Self> {
        let dir = std::path::absolute(dir.as_ref())?;
        std::fs::create_dir_all(&dir)?;
        let store = LocalFileSystem::new_with_prefix(&dir)?.with_automatic_cleanup(true);
        Ok(Self {
            store: Arc::new(store),
            local_root: Some(dir),
        })
    }

    fn s3(config: &BlobConfig) -> Result<Self> {
        let url = url_parts(&config.url)?;
        let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(url.0);
        if let Some(key) = &config.access_key_id {
            builder = builder.with_access_key_id(key.expose());
        }
        if let Some(secret) = &config.secret_access_key {
            builder = builder.with_secret_access_key(secret.expose());
        }
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        }
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let s3 = builder.with_allow_http(config.allow_http).build()?;
        let store: Arc<dyn ObjectStore> = match url.1 {
            "" => Arc::new(s3),
            prefix => Arc::new(PrefixStore::new(s3, prefix)),
        };
        Ok(Self {
            store,
            local_root: None,
        })
    }
}

/// `s3://bucket/some/prefix` to `("bucket", "some/prefix")`.
fn url_parts(url: &str) -> Result<(&str, &str)> {
    let rest = url.strip_prefix("s3://").unwrap_or(url);
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(BlobError::Config(format!("no bucket in {url:?}")));
    }
    Ok((bucket, prefix.trim_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_split_into_bucket_and_prefix() {
        assert_eq!(url_parts("s3://media/prod/").ok(), Some(("media", "prod")));
        assert_eq!(url_parts("s3://media").ok(), Some(("media", "")));
        assert!(url_parts("s3:///x").is_err());
    }
}
