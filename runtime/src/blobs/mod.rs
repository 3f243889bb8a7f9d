//! The object store that holds video and image bytes (A5), shared by the API (uploads) and
//! the analyzers (inputs and artifacts): a local directory by default, S3-compatible in
//! production, chosen by [`BlobConfig::url`].
//!
//! Objects are content addressed: `<prefix>/sha256/<first 2 hex>/<hex>`. Bytes are streamed to
//! a staging object (`_staging/<uuid>`) through a multipart upload while SHA-256 is computed,
//! then copied to their address (an existing identical object is fine) and the staging object
//! is removed. Whatever fails (the stream, the size limit, the store, or the caller dropping
//! the future) leaves nothing behind: the upload is aborted, the staging object deleted, and
//! [`BlobStore::sweep_staging`] removes what a killed process could not.
//!
//! Layout: this file (the store's operations), `open.rs` (configuration and opening).

use std::{
    path::{Path as FsPath, PathBuf},
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use futures::{Stream, StreamExt as _, TryStreamExt as _};
use object_store::{ObjectStore, ObjectStoreExt as _, WriteMultipart, path::Path};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

mod open;

pub use open::BlobConfig;

/// Where staging objects live, apart from every content-addressed prefix.
const STAGING: &str = "_staging";
/// Multipart part size: S3 needs at least 5 MiB per part but the last.
const PART_BYTES: usize = 5 * 1024 * 1024;
/// Parts uploaded concurrently; bounds memory to about this many parts.
const PARTS_IN_FLIGHT: usize = 2;
const FILE_CHUNK: usize = 256 * 1024;

pub type Result<T, E = BlobError> = std::result::Result<T, E>;

/// A stored object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBlob {
    pub key: String,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// The caller's stream failed (client gone, read error).
    #[error("source stream failed: {0}")]
    Source(Box<dyn std::error::Error + Send + Sync>),
    #[error("no object {0}")]
    NotFound(String),
    #[error("invalid key or prefix {0:?}")]
    InvalidKey(String),
    #[error("object {key} does not match its hash")]
    Corrupt { key: String },
    #[error("blob store configuration: {0}")]
    Config(String),
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("file: {0}")]
    Io(#[from] std::io::Error),
}

/// The object store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    /// The directory of a local store, to sweep its half-written multipart files.
    local_root: Option<PathBuf>,
}

impl BlobStore {
    /// Streams bytes into the store under `<prefix>/sha256/..`, never holding more than a few
    /// parts in memory. Refuses more than `max_bytes` with [`BlobError::TooLarge`]. On any
    /// error, or if this future is dropped, nothing stays in the store.
    pub async fn put_stream<S, E>(
        &self,
        prefix: &str,
        stream: S,
        max_bytes: u64,
    ) -> Result<StoredBlob>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let prefix = clean_prefix(prefix)?;
        let staging = Path::from(STAGING).join(uuid::Uuid::new_v4().to_string());
        // Deletes the staging object unless disarmed, also when this future is dropped.
        let mut guard = StagingGuard {
            store: self.store.clone(),
            path: Some(staging.clone()),
        };
        let upload = self.store.put_multipart(&staging).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut stream = std::pin::pin!(stream);
        let written: Result<()> = async {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|error| BlobError::Source(error.into()))?;
                size += chunk.len() as u64;
                if size > max_bytes {
                    return Err(BlobError::TooLarge { limit: max_bytes });
                }
                hasher.update(&chunk);
                writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                writer.put(chunk);
            }
            Ok(())
        }
        .await;
        if let Err(error) = written {
            writer.abort().await.ok();
            return Err(error);
        }
        writer.finish().await?;
        let sha256 = hex(&hasher.finalize());
        let key = Path::parse(format!("{prefix}/sha256/{}/{sha256}", &sha256[..2]))
            .map_err(|_| BlobError::InvalidKey(prefix.clone()))?;
        self.publish(&staging, &key).await?;
        self.store.delete(&staging).await.ok();
        guard.path = None;
        Ok(StoredBlob {
            key: key.to_string(),
            sha256,
            size,
        })
    }

    /// Copies the staging object to its address unless an object (with the same bytes, as
    /// the address is their hash) is already there.
    async fn publish(&self, staging: &Path, key: &Path) -> Result<()> {
        match self.store.copy_if_not_exists(staging, key).await {
            Ok(()) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            // S3 without a conditional copy: same address, same bytes, so overwriting is safe.
            Err(
                object_store::Error::NotSupported { .. }
                | object_store::Error::NotImplemented { .. },
            ) => Ok(self.store.copy(staging, key).await?),
            Err(error) => Err(error.into()),
        }
    }

    /// Stores a file's bytes (streamed, no size limit).
    pub async fn put_file(&self, prefix: &str, path: impl AsRef<FsPath>) -> Result<StoredBlob> {
        let file = tokio::fs::File::open(path.as_ref()).await?;
        let chunks = futures::stream::try_unfold(file, |mut file| async move {
            let mut buffer = vec![0; FILE_CHUNK];
            let read = file.read(&mut buffer).await?;
            buffer.truncate(read);
            Ok::<_, std::io::Error>((read > 0).then(|| (Bytes::from(buffer), file)))
        });
        self.put_stream(prefix, chunks, u64::MAX).await
    }

    /// Writes an object to a file (streamed). A content-addressed object is checked against
    /// its hash; a mismatch removes the file and fails.
    pub async fn get_to_file(&self, key: &str, path: impl AsRef<FsPath>) -> Result<StoredBlob> {
        let location = parse_key(key)?;
        let path = path.as_ref();
        let result = match self.store.get(&location).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(BlobError::NotFound(key.into()));
            }
            Err(error) => return Err(error.into()),
        };
        let mut file = tokio::fs::File::create(path).await?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let copied: Result<()> = async {
            let mut stream = result.into_stream().map_err(BlobError::from);
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                hasher.update(&chunk);
                size += chunk.len() as u64;
                file.write_all(&chunk).await?;
            }
            file.flush().await?;
            Ok(())
        }
        .await;
        let sha256 = hex(&hasher.finalize());
        let addressed = key.rsplit_once("/sha256/").map(|(_, rest)| rest);
        let intact = addressed.is_none_or(|rest| rest.ends_with(&format!("/{sha256}")));
        if copied.is_err() || !intact {
            drop(file);
            tokio::fs::remove_file(path).await.ok();
            copied?;
            return Err(BlobError::Corrupt { key: key.into() });
        }
        Ok(StoredBlob {
            key: key.into(),
            sha256,
            size,
        })
    }

    /// An object's size and its bytes as a stream (for serving downloads without holding
    /// them in memory).
    pub async fn get_stream(
        &self,
        key: &str,
    ) -> Result<(
        u64,
        futures::stream::BoxStream<'static, Result<bytes::Bytes>>,
    )> {
        match self.store.get(&parse_key(key)?).await {
            Ok(result) => {
                let size = result.meta.size;
                Ok((size, result.into_stream().map_err(BlobError::from).boxed()))
            }
            Err(object_store::Error::NotFound { .. }) => Err(BlobError::NotFound(key.into())),
            Err(error) => Err(error.into()),
        }
    }

    pub async fn exists(&self, key: &str) -> Result<bool> {
        match self.store.head(&parse_key(key)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Deletes an object; a missing one is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        match self.store.delete(&parse_key(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Removes staging objects older than `older_than` (left by killed processes), and in a
    /// local store their half-written multipart files. Returns how many went.
    pub async fn sweep_staging(&self, older_than: Duration) -> Result<usize> {
        let cutoff = chrono::Utc::now()
            - chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::zero());
        let stale: Vec<Path> = self
            .store
            .list(Some(&Path::from(STAGING)))
            .try_filter(|meta| futures::future::ready(meta.last_modified < cutoff))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await?;
        let mut removed = 0;
        for location in stale {
            match self.store.delete(&location).await {
                Ok(()) => removed += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        if let Some(root) = &self.local_root {
            removed += sweep_local_parts(&root.join(STAGING), older_than)?;
        }
        Ok(removed)
    }
}

/// Deletes the staging object when dropped armed (error paths and dropped futures).
struct StagingGuard {
    store: Arc<dyn ObjectStore>,
    path: Option<Path>,
}

impl Drop for StagingGuard {
    fn drop(&mut self) {
        let (Some(path), Ok(runtime)) = (self.path.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let store = self.store.clone();
        runtime.spawn(async move { store.delete(&path).await.ok() });
    }
}

/// Local multipart uploads write `<staging>#<n>` files that listing does not show.
fn sweep_local_parts(dir: &FsPath, older_than: Duration) -> Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(error.into()),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let old = entry
            .metadata()?
            .modified()?
            .elapsed()
            .is_ok_and(|age| age >= older_than);
        if old && entry.file_name().to_string_lossy().contains('#') {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn clean_prefix(prefix: &str) -> Result<String> {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() || trimmed.starts_with(STAGING) {
        return Err(BlobError::InvalidKey(prefix.into()));
    }
    Path::parse(trimmed).map_err(|_| BlobError::InvalidKey(prefix.into()))?;
    Ok(trimmed.to_owned())
}

fn parse_key(key: &str) -> Result<Path> {
    Path::parse(key).map_err(|_| BlobError::InvalidKey(key.into()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_checked() {
        assert_eq!(clean_prefix("/videos/").ok().as_deref(), Some("videos"));
        assert!(clean_prefix("").is_err());
        assert!(clean_prefix("_staging").is_err());
        assert!(clean_prefix("a/../b").is_err());
    }
}
