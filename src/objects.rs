//! Where uploaded files live: `<data-dir>/uploads/chat/` (the default), or an
//! S3-compatible bucket shared by every node (`--uploads s3://…`, crate
//! `object_store`).
//!
//! An upload always streams to the local disk first (`uploads/tmp/`, with
//! the size cap and quota enforced chunk by chunk, see `files.rs`), is
//! sniffed and previewed there, and only then, complete, goes to the bucket
//! ([`Objects::publish`]): in parts of [`PART_BYTES`] for big files, so
//! memory stays bounded. It is recorded in the database only after the
//! bucket said yes; a failure answers 503 `unavailable` and leaves no
//! record (and no object: a half-done multipart upload is aborted, a
//! stored file whose record then failed is deleted). Downloads stream from
//! the bucket through the node, with the same access checks, `Range` and
//! `ETag` as local files: the bucket itself is never exposed to clients.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

use crate::error::{AppError, AppResult};

/// Files at least this big go up in parts of this size (S3's minimum part
/// is 5 MiB).
pub const PART_BYTES: usize = 8 * 1024 * 1024;

/// `--uploads` / `NATTER_UPLOADS`.
#[derive(Clone, PartialEq, Eq)]
pub enum UploadsUrl {
    /// `<data-dir>/uploads`.
    Local,
    /// `s3://bucket[/prefix]?endpoint=…&region=…`.
    S3 {
        bucket: String,
        prefix: String,
        endpoint: Option<String>,
        region: Option<String>,
    },
}

impl std::fmt::Debug for UploadsUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UploadsUrl::Local => write!(f, "local"),
            UploadsUrl::S3 {
                bucket,
                prefix,
                endpoint,
                ..
            } => write!(
                f,
                "s3://{bucket}/{prefix} ({})",
                endpoint.as_deref().unwrap_or("AWS")
            ),
        }
    }
}

impl UploadsUrl {
    /// Parses `--uploads`: empty or `local`, or
    /// `s3://bucket[/prefix][?endpoint=URL&region=NAME]`. Credentials come
    /// from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// ...), never from the URL, so they stay out of process listings.
    pub fn parse(url: &str) -> anyhow::Result<UploadsUrl> {
        let url = url.trim();
        if url.is_empty() || url == "local" {
            return Ok(UploadsUrl::Local);
        }
        let Some(rest) = url.strip_prefix("s3://") else {
            anyhow::bail!(
                "--uploads {url:?}: use local, or s3://bucket?endpoint=http://127.0.0.1:9000&region=us-east-1"
            );
        };
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
        anyhow::ensure!(
            !bucket.is_empty()
                && bucket
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_'),
            "--uploads {url:?}: the bucket name is missing or malformed"
        );
        let (mut endpoint, mut region) = (None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "endpoint" => {
                    anyhow::ensure!(
                        v.starts_with("http://") || v.starts_with("https://"),
                        "--uploads: endpoint must be an http(s) URL, got {v:?}"
                    );
                    endpoint = Some(v.to_string());
                }
                "region" => region = Some(v.to_string()),
                other => anyhow::bail!(
                    "--uploads: unknown setting {other:?} (known: endpoint, region; credentials \
                     come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
                ),
            }
        }
        Ok(UploadsUrl::S3 {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            endpoint,
            region,
        })
    }
}

/// The file store.
#[derive(Clone)]
pub enum Objects {
    /// Files stay in `uploads/chat/` on this machine.
    Local,
    /// A bucket; `prefix` is put before every name.
    S3 {
        store: Arc<dyn ObjectStore>,
        prefix: String,
    },
}

impl Objects {
    /// Opens the store `url` names and, for a bucket, checks that it answers
    /// (a wrong endpoint or bucket is an error at start, not on the first
    /// upload).
    pub async fn open(url: &UploadsUrl) -> anyhow::Result<Objects> {
        let UploadsUrl::S3 {
            bucket,
            prefix,
            endpoint,
            region,
        } = url
        else {
            return Ok(Objects::Local);
        };
        // Bounded retries: a bucket that is down fails an upload within
        // seconds (503) instead of object_store's default of three minutes
        // of retries; the per-request timeout is long because a download
        // streams at the pace of the client reading it.
        let retry = object_store::RetryConfig {
            max_retries: 3,
            retry_timeout: std::time::Duration::from_secs(10),
            ..Default::default()
        };
        let options = object_store::ClientOptions::new()
            .with_connect_timeout(std::time::Duration::from_secs(5))
            .with_timeout(std::time::Duration::from_secs(600));
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_retry(retry)
            .with_client_options(options);
        if let Some(region) = region {
            builder = builder.with_region(region);
        }
        if let Some(endpoint) = endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let store: Arc<dyn ObjectStore> = Arc::new(
            builder
                .build()
                .with_context(|| format!("--uploads {url:?}"))?,
        );
        let objects = Objects::S3 {
            store,
            prefix: prefix.clone(),
        };
        if let Objects::S3 { store, .. } = &objects {
            // Any answer but an error will do: the probe's name never exists.
            match store.head(&objects.path("natter-probe")).await {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    return Err(anyhow::anyhow!("{e}"))
                        .with_context(|| format!("cannot reach the upload bucket {url:?}"))
                }
            }
        }
        Ok(objects)
    }

    /// Whether files live in a bucket.
    pub fn is_remote(&self) -> bool {
        matches!(self, Objects::S3 { .. })
    }

    fn path(&self, name: &str) -> ObjectPath {
        match self {
            Objects::S3 { prefix, .. } if !prefix.is_empty() => {
                ObjectPath::from(format!("{prefix}/chat/{name}"))
            }
            _ => ObjectPath::from(format!("chat/{name}")),
        }
    }

    /// Moves finished files from the local `dir` into the store (a bucket:
    /// uploaded, then removed here; local: nothing to do). On an error,
    /// whatever reached the bucket is deleted again.
    pub async fn publish(&self, dir: &Path, names: &[&str]) -> AppResult<()> {
        let Objects::S3 { store, .. } = self else {
            return Ok(());
        };
        for (i, name) in names.iter().enumerate() {
            if let Err(e) = self.put_file(store, &dir.join(name), name).await {
                for done in &names[..i] {
                    self.delete(done).await;
                }
                return Err(AppError::StorageUnavailable(format!(
                    "upload of {name}: {e}"
                )));
            }
        }
        for name in names {
            let _ = tokio::fs::remove_file(dir.join(name)).await;
        }
        Ok(())
    }

    async fn put_file(
        &self,
        store: &Arc<dyn ObjectStore>,
        file: &PathBuf,
        name: &str,
    ) -> anyhow::Result<()> {
        let path = self.path(name);
        let size = tokio::fs::metadata(file).await?.len();
        if size < PART_BYTES as u64 {
            let bytes = tokio::fs::read(file).await?;
            store.put(&path, PutPayload::from(bytes)).await?;
            return Ok(());
        }
        let mut upload =
            WriteMultipart::new_with_chunk_size(store.put_multipart(&path).await?, PART_BYTES);
        let mut f = tokio::fs::File::open(file).await?;
        let mut buf = vec![0u8; 1024 * 1024];
        loop {
            let n = match f.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    let _ = upload.abort().await;
                    return Err(e.into());
                }
            };
            if let Err(e) = upload.wait_for_capacity(2).await {
                let _ = upload.abort().await;
                return Err(e.into());
            }
            upload.write(&buf[..n]);
        }
        upload.finish().await?;
        Ok(())
    }

    /// Deletes a stored file (best effort: logged when it fails; the local
    /// case is the caller's `remove_file`).
    pub async fn delete(&self, name: &str) {
        if let Objects::S3 { store, .. } = self {
            match store.delete(&self.path(name)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    tracing::warn!(name, error = %e, "cannot delete an upload from the bucket")
                }
            }
        }
    }

    /// Size and last change of a stored file in the bucket; `None` when it
    /// is not there.
    pub async fn head(
        &self,
        name: &str,
    ) -> AppResult<Option<(u64, chrono::DateTime<chrono::Utc>)>> {
        let Objects::S3 { store, .. } = self else {
            return Ok(None);
        };
        match store.head(&self.path(name)).await {
            Ok(meta) => Ok(Some((meta.size, meta.last_modified))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(AppError::StorageUnavailable(format!("head {name}: {e}"))),
        }
    }

    /// The bytes `range` (end exclusive) of a stored file in the bucket, as
    /// a stream.
    pub async fn stream(
        &self,
        name: &str,
        range: std::ops::Range<u64>,
    ) -> AppResult<futures_util::stream::BoxStream<'static, object_store::Result<bytes::Bytes>>>
    {
        let Objects::S3 { store, .. } = self else {
            return Err(AppError::Internal(anyhow::anyhow!("no bucket")));
        };
        let options = GetOptions {
            range: Some(GetRange::Bounded(range)),
            ..GetOptions::default()
        };
        match store.get_opts(&self.path(name), options).await {
            Ok(r) => Ok(r.into_stream()),
            Err(object_store::Error::NotFound { .. }) => {
                Err(AppError::NotFound("file not found".into()))
            }
            Err(e) => Err(AppError::StorageUnavailable(format!("get {name}: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_urls_parse_or_say_what_is_wrong() {
        assert_eq!(UploadsUrl::parse("").unwrap(), UploadsUrl::Local);
        assert_eq!(UploadsUrl::parse("local").unwrap(), UploadsUrl::Local);
        assert_eq!(
            UploadsUrl::parse("s3://files/natter?endpoint=http://127.0.0.1:9000&region=eu-west-1")
                .unwrap(),
            UploadsUrl::S3 {
                bucket: "files".into(),
                prefix: "natter".into(),
                endpoint: Some("http://127.0.0.1:9000".into()),
                region: Some("eu-west-1".into()),
            }
        );
        for bad in [
            "ftp://x",
            "s3://",
            "s3://a b",
            "s3://b?endpoint=file:///x",
            "s3://b?key=secret",
        ] {
            assert!(UploadsUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
