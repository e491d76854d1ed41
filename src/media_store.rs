//! Where uploaded files live: local disk by default, behind a trait an object store can implement.

use crate::error::{Error, Result};
use rand::RngCore;
use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

/// Stores bytes under keys it makes itself. Keys are never taken from user input.
#[async_trait::async_trait]
pub trait MediaStore: Send + Sync {
    /// Stores `bytes` and returns the new key.
    async fn put(&self, bytes: Vec<u8>) -> Result<String>;
    /// The bytes under `key`, or `None` when there are none.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    async fn delete(&self, key: &str) -> Result<()>;
}

/// A random key: 32 hex digits, safe as a file name and in a URL.
pub fn new_key() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Whether `key` has the shape `new_key` gives (so it cannot name a path elsewhere).
pub fn is_key(key: &str) -> bool {
    key.len() == 32
        && key
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Files in one folder, named by their key.
pub struct LocalDiskStore {
    dir: PathBuf,
}

impl LocalDiskStore {
    /// The store in `dir`. The folder is made at the first upload, so that an instance that
    /// never stores a file leaves none behind (every test instance, `cairn admin`).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        if dir.as_os_str().is_empty() {
            return Err(Error::Internal("media.dir must not be empty".into()));
        }
        if dir.exists() && !dir.is_dir() {
            return Err(Error::Internal(format!(
                "media.dir {} exists and is not a folder",
                dir.display()
            )));
        }
        Ok(LocalDiskStore { dir })
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        if !is_key(key) {
            return Err(Error::NotFound(format!("no file {key:?}")));
        }
        Ok(self.dir.join(key))
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("media store task: {e}")))?
}

#[async_trait::async_trait]
impl MediaStore for LocalDiskStore {
    async fn put(&self, bytes: Vec<u8>) -> Result<String> {
        let key = new_key();
        let path = self.path(&key)?;
        let dir = self.dir.clone();
        // Written under a temporary name and renamed, so a crash never leaves half a file
        // under a key that is served.
        let partial = dir.join(format!("{key}.partial"));
        blocking(move || {
            std::fs::create_dir_all(&dir)
                .and_then(|_| std::fs::write(&partial, bytes))
                .and_then(|_| std::fs::rename(&partial, &path))
                .map_err(|e| Error::Internal(format!("cannot write {}: {e}", path.display())))
        })
        .await?;
        Ok(key)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let Ok(path) = self.path(key) else {
            return Ok(None);
        };
        blocking(move || match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Internal(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let Ok(path) = self.path(key) else {
            return Ok(());
        };
        blocking(move || match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Internal(format!(
                "cannot delete {}: {e}",
                path.display()
            ))),
        })
        .await
    }
}

/// The store the configuration names (today: always the local disk).
pub fn from_config(config: &crate::config::Config) -> Result<Arc<dyn MediaStore>> {
    Ok(Arc::new(LocalDiskStore::open(&config.media.dir)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_delete_and_no_traversal() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDiskStore::open(dir.path().join("m")).unwrap();
        let key = store.put(b"hello".to_vec()).await.unwrap();
        assert!(is_key(&key));
        assert_eq!(
            store.get(&key).await.unwrap().as_deref(),
            Some(&b"hello"[..])
        );
        assert!(store.get("../etc/passwd").await.unwrap().is_none());
        assert!(store.get("ABCDEF").await.unwrap().is_none());
        store.delete(&key).await.unwrap();
        assert!(store.get(&key).await.unwrap().is_none());
    }
}
