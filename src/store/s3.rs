//! The store in an S3 bucket (`s3://bucket/prefix`), through object_store. Credentials,
//! region and endpoint come from the standard AWS environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`, …); an
//! `http://` endpoint (an S3-compatible server) is allowed. Blobs are created with a
//! conditional put (`If-None-Match: *`), so two writers of one blob never clobber it.

use object_store::aws::{AmazonS3, AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use std::io;
use std::path::{Path, PathBuf};

pub(super) struct S3 {
    store: AmazonS3,
    /// The store's root as nexusml names it (`s3://bucket/prefix`).
    root: PathBuf,
    prefix: String,
    rt: tokio::runtime::Runtime,
}

fn err(e: object_store::Error) -> io::Error {
    io::Error::other(e)
}

impl S3 {
    pub fn open(url: &str) -> io::Result<S3> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| io::Error::other("not an s3:// URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(io::Error::other(format!(
                "`{url}` names no bucket: s3://bucket/prefix"
            )));
        }
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_conditional_put(S3ConditionalPut::ETagMatch);
        let endpoint = std::env::var("AWS_ENDPOINT_URL")
            .or_else(|_| std::env::var("AWS_ENDPOINT"))
            .unwrap_or_default();
        if endpoint.starts_with("http://") {
            builder = builder.with_allow_http(true);
        }
        let store = builder.build().map_err(err)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        Ok(S3 {
            store,
            root: PathBuf::from(url.trim_end_matches('/')),
            prefix: prefix.trim_matches('/').to_string(),
            rt,
        })
    }

    fn key(&self, path: &Path) -> Key {
        let rel = path.strip_prefix(&self.root).unwrap_or(path);
        let rel = rel.to_string_lossy();
        if self.prefix.is_empty() {
            Key::from(rel.as_ref())
        } else {
            Key::from(format!("{}/{rel}", self.prefix))
        }
    }

    /// The object's bytes; one larger than `limit` is refused before its body is read.
    pub fn read(&self, path: &Path, limit: crate::fsx::Limit) -> io::Result<Option<Vec<u8>>> {
        let key = self.key(path);
        self.rt.block_on(async {
            match self.store.get(&key).await {
                Ok(r) if r.meta.size > limit.bytes => Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{key} is {} bytes, more than {} may be ({} bytes)",
                        r.meta.size, limit.what, limit.bytes
                    ),
                )),
                Ok(r) => Ok(Some(r.bytes().await.map_err(err)?.to_vec())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(err(e)),
            }
        })
    }

    pub fn write(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let key = self.key(path);
        self.rt
            .block_on(self.store.put(&key, PutPayload::from(bytes.to_vec())))
            .map(|_| ())
            .map_err(err)
    }

    pub fn create(&self, path: &Path, bytes: &[u8]) -> io::Result<bool> {
        let key = self.key(path);
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .rt
            .block_on(self.store.put_opts(&key, PutPayload::from(bytes.to_vec()), opts))
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(err(e)),
        }
    }

    pub fn size(&self, path: &Path) -> Option<u64> {
        let key = self.key(path);
        self.rt.block_on(self.store.head(&key)).ok().map(|m| m.size)
    }

    pub fn remove(&self, path: &Path) {
        let key = self.key(path);
        let _ = self.rt.block_on(self.store.delete(&key));
    }

    /// Every entry under `sub` (`blobs`, `manifests`, `runs`) with its size.
    pub fn list(&self, sub: &str) -> Vec<(String, u64)> {
        use futures_util::StreamExt;
        let prefix = if self.prefix.is_empty() {
            Key::from(sub)
        } else {
            Key::from(format!("{}/{sub}", self.prefix))
        };
        self.rt.block_on(async {
            self.store
                .list(Some(&prefix))
                .filter_map(|m| async move { m.ok().map(|m| (m.location.to_string(), m.size)) })
                .collect()
                .await
        })
    }
}
