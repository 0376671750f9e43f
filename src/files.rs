//! Uploaded files: streaming to disk, type detection, image previews,
//! access checks, safe serving headers, and the retention sweep.
//!
//! Invariants: a stored file's path is always `uploads/chat/<name>` where
//! `<name>` is generated here (random hex + a known extension) — never built
//! from client input; an upload is streamed to `uploads/tmp/` with the size
//! limit enforced chunk by chunk, so a file is never held in memory and an
//! oversized one leaves nothing behind; image decoding runs off the async
//! threads with pixel and memory limits.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::extract::multipart::Field;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use utoipa::ToSchema;

use crate::db::uploads::NewUpload;
use crate::db::{self, now_ms};
use crate::error::{AppError, AppResult};
use crate::model::UserId;
use crate::state::{AppState, WeakState};

/// Longest side of a preview, in pixels.
pub const THUMB_SIZE: u32 = 320;
/// Images larger than this in either dimension are stored but not previewed.
const MAX_DECODE_SIDE: u32 = 16_384;
/// Images with more pixels than this (40 MP: a 7,700 × 5,200 photo) are
/// stored but not previewed; the header says so before anything is decoded,
/// so a decompression bomb costs nothing.
pub const MAX_DECODE_PIXELS: u64 = 40_000_000;
/// Memory all image decodes of the server may use together, in MiB: each
/// decode first takes its estimated size from this budget, so parallel
/// uploads of big images wait for each other instead of adding up.
pub const DECODE_BUDGET_MIB: u32 = 256;
/// Uploads never sent in a message are removed after this long.
pub const ORPHAN_AFTER_MS: i64 = 3600 * 1000;

/// What `POST /chat/upload` answers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Uploaded {
    pub file_url: String,
    pub file_name: String,
    pub file_size: i64,
    pub file_mime_type: String,
    #[schema(required = true)]
    pub thumbnail_url: Option<String>,
    #[schema(required = true)]
    pub width: Option<i64>,
    #[schema(required = true)]
    pub height: Option<i64>,
}

/// `uploads/chat/`.
pub fn chat_dir(state: &AppState) -> PathBuf {
    state.config().uploads_dir().join("chat")
}

/// `uploads/tmp/`: uploads and fetched images while they stream in.
pub(crate) fn tmp_dir(state: &AppState) -> PathBuf {
    state.config().uploads_dir().join("tmp")
}

/// `bytes` random bytes as hex (stored names).
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A display name from a client's file name: the last path component, no
/// control characters, at most 255 characters.
pub fn sanitize_file_name(raw: Option<&str>) -> String {
    let base = raw
        .unwrap_or_default()
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default();
    let cleaned: String = base.chars().filter(|c| !c.is_control()).take(255).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    if cleaned.is_empty() {
        "file".to_string()
    } else {
        cleaned.to_string()
    }
}

/// The MIME type: from the content's magic bytes where they say, else from the
/// file name's extension, else the type the client declared for the part
/// (a browser sends a pasted image as `blob` with `image/png`), else
/// `application/octet-stream`.
///
/// An `audio/*` type only ever comes from the bytes ([`crate::audio::sniff`]:
/// a WebM or MP4 with audio tracks only, an Ogg of an audio codec, or an
/// audio format's magic number), so a voice message's upload is audio by
/// what it contains, not by what its name or the client says.
fn detect_mime(head: &[u8], file_name: &str, declared: Option<&str>) -> String {
    if let Some(audio) = crate::audio::sniff(head) {
        return audio.to_string();
    }
    if let Some(kind) = infer::get(head) {
        if kind.matcher_type() != infer::MatcherType::Audio {
            return kind.mime_type().to_string();
        }
    }
    let guess = mime_guess::from_path(file_name)
        .first()
        .map(|g| g.essence_str().to_string())
        .or_else(|| {
            declared
                .and_then(|d| d.parse::<mime_guess::mime::Mime>().ok())
                .map(|m| m.essence_str().to_ascii_lowercase())
                .filter(|m| m.len() <= 100)
        });
    match guess {
        Some(m) if !m.starts_with("audio/") => m,
        _ => "application/octet-stream".to_string(),
    }
}

/// A file extension for a MIME type (only a safe, known set; else `bin`).
fn extension_for(mime: &str) -> &'static str {
    match mime {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        "audio/mpeg" => "mp3",
        "audio/ogg" => "ogg",
        "audio/webm" => "weba",
        "audio/mp4" => "m4a",
        "audio/x-wav" => "wav",
        "audio/x-flac" => "flac",
        "audio/aac" => "aac",
        "video/mp4" => "mp4",
        "video/webm" => "webm",
        "application/zip" => "zip",
        _ => "bin",
    }
}

/// Types a browser may show inline without running script in our origin.
pub fn inline_safe(mime: &str) -> bool {
    matches!(
        mime,
        "image/png"
            | "image/jpeg"
            | "image/gif"
            | "image/webp"
            | "image/avif"
            | "image/bmp"
            | "application/pdf"
            | "text/plain"
    ) || mime.starts_with("audio/")
        || mime.starts_with("video/")
}

/// Streams the multipart field `file` to disk and records it.
pub async fn store_upload(
    state: &AppState,
    user: UserId,
    mut field: Field<'_>,
) -> AppResult<Uploaded> {
    let file_name = sanitize_file_name(field.file_name());
    let declared = field.content_type().map(str::to_string);
    let max = state.config().upload_max_size;
    let quota = state.config().upload_quota;
    let room = if quota > 0 {
        let unsent = state.db().unsent_upload_bytes(user).await?;
        let room = quota.saturating_sub(u64::try_from(unsent).unwrap_or(0));
        if room == 0 {
            return Err(over_quota(quota));
        }
        room
    } else {
        u64::MAX
    };
    check_free_disk(state).await?;
    let tmp = tmp_dir(state);
    tokio::fs::create_dir_all(&tmp)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let tmp_path = tmp.join(format!("{}.part", random_hex(16)));
    let guard = TempFile(Some(tmp_path.clone()));
    let mut out = tokio::fs::File::create(&tmp_path)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut head: Vec<u8> = Vec::with_capacity(8192);
    loop {
        let chunk = match field.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(too_large(max));
            }
            Err(_) => {
                return Err(AppError::invalid(
                    "file",
                    "the upload was interrupted or malformed",
                ))
            }
        };
        let before = size;
        size += chunk.len() as u64;
        if size > max {
            return Err(too_large(max));
        }
        if size > room {
            return Err(over_quota(quota));
        }
        if before / DISK_CHECK_EVERY != size / DISK_CHECK_EVERY {
            check_free_disk(state).await?;
        }
        if head.len() < 8192 {
            let take = (8192 - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        hasher.update(&chunk);
        out.write_all(&chunk)
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
    }
    out.flush()
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    drop(out);

    let mime = detect_mime(&head, &file_name, declared.as_deref());
    let sha256 = format!("{:x}", hasher.finalize());
    let name = format!("{}.{}", random_hex(16), extension_for(&mime));
    let final_path = chat_dir(state).join(&name);
    tokio::fs::rename(&tmp_path, &final_path)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    guard.keep();
    let stored = StoredGuard(Some(final_path.clone()));

    let preview = if matches!(
        mime.as_str(),
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    ) {
        let thumb_name = format!(
            "{}.thumb.jpg",
            name.trim_end_matches(&format!(".{}", extension_for(&mime)))
        );
        let thumb_path = chat_dir(state).join(&thumb_name);
        make_preview(state, final_path.clone(), thumb_path)
            .await?
            .map(|(w, h, made)| (w, h, made.then_some(thumb_name)))
    } else {
        None
    };
    let (width, height, thumb_name) = match preview {
        Some((w, h, t)) => (Some(i64::from(w)), Some(i64::from(h)), t),
        None => (None, None, None),
    };

    let size = size as i64;
    let record = NewUpload {
        name: name.clone(),
        uploader_id: user,
        file_name: file_name.clone(),
        file_size: size,
        mime_type: mime.clone(),
        sha256,
        width,
        height,
        thumb_name: thumb_name.clone(),
    };
    // With a bucket (`--uploads s3://`), the finished files go there now;
    // nothing is recorded unless they all arrived.
    let mut names = vec![name.as_str()];
    names.extend(thumb_name.as_deref());
    state.objects().publish(&chat_dir(state), &names).await?;
    // Parallel uploads all passed the early check: the writer, one at a
    // time, decides for good.
    let recorded = state.db().record_upload(record, quota).await;
    if !matches!(recorded, Ok(true)) {
        for n in &names {
            state.objects().delete(n).await;
        }
        recorded?;
        return Err(over_quota(quota));
    }
    stored.keep();
    Ok(Uploaded {
        file_url: format!("{}{name}", db::messages::UPLOADS_PREFIX),
        file_name,
        file_size: size,
        file_mime_type: mime,
        thumbnail_url: thumb_name.map(|t| format!("{}{t}", db::messages::UPLOADS_PREFIX)),
        width,
        height,
    })
}

/// Bytes between two free-disk checks while an upload streams in.
const DISK_CHECK_EVERY: u64 = 4 * 1024 * 1024;

fn over_quota(quota: u64) -> AppError {
    AppError::QuotaExceeded(format!(
        "your unsent uploads would pass the limit of {quota} bytes ({:.1} MB): send or \
         remove some first (unsent uploads are removed an hour after upload)",
        quota as f64 / 1_048_576.0
    ))
}

/// 507 while the data dir's disk has less than `--min-free-disk` free.
async fn check_free_disk(state: &AppState) -> AppResult<()> {
    let floor = state.config().min_free_disk;
    if floor == 0 {
        return Ok(());
    }
    let dir = state.config().uploads_dir();
    let free = off_thread(move || free_disk_bytes(&dir)).await?;
    match free {
        Some(free) if free < floor => {
            tracing::warn!(free, floor, "disk nearly full: refusing uploads");
            Err(AppError::InsufficientStorage(
                "the server's disk is nearly full: uploads are paused (messages still work)".into(),
            ))
        }
        _ => Ok(()),
    }
}

/// Bytes available to us on the file system holding `dir`.
fn free_disk_bytes(dir: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `path` is a valid C string and `stat` a valid out-pointer.
        if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
            return None;
        }
        #[allow(clippy::unnecessary_cast)]
        Some((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

fn too_large(max: u64) -> AppError {
    let mb = max as f64 / 1_048_576.0;
    AppError::TooLarge(format!(
        "file is larger than the limit of {max} bytes ({mb:.1} MB)"
    ))
}

/// Runs blocking file or image work on the blocking pool.
async fn off_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> AppResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::Internal(e.into()))
}

/// What an image's header says, read without decoding it.
struct Probe {
    width: u32,
    height: u32,
    format: image::ImageFormat,
    /// Bytes of the decoded image.
    decoded_bytes: u64,
}

fn probe(src: &Path) -> Option<Probe> {
    use image::ImageDecoder;
    let reader = image::ImageReader::open(src)
        .ok()?
        .with_guessed_format()
        .ok()?;
    let format = reader.format()?;
    let decoder = reader.into_decoder().ok()?;
    let (width, height) = decoder.dimensions();
    Some(Probe {
        width,
        height,
        format,
        decoded_bytes: decoder.total_bytes(),
    })
}

/// Reads an image's size and writes a JPEG preview (longest side
/// [`THUMB_SIZE`]). Returns `(width, height, preview_written)`, or None when
/// the file is not an image we can read.
///
/// Memory stays bounded whatever the file claims: the header's dimensions
/// are checked against [`MAX_DECODE_SIDE`] and [`MAX_DECODE_PIXELS`] before
/// any pixel is decoded; non-interlaced PNGs are decoded row by row into the
/// preview (memory of a row, not of the image); everything else is decoded
/// whole, after taking its estimated size from the server's
/// [`DECODE_BUDGET_MIB`].
pub(crate) async fn make_preview(
    state: &AppState,
    src: PathBuf,
    thumb: PathBuf,
) -> AppResult<Option<(u32, u32, bool)>> {
    let probe_src = src.clone();
    let Some(p) = off_thread(move || probe(&probe_src)).await? else {
        return Ok(None);
    };
    let (w, h) = (p.width, p.height);
    let pixels = u64::from(w) * u64::from(h);
    if w == 0 || h == 0 || w > MAX_DECODE_SIDE || h > MAX_DECODE_SIDE || pixels > MAX_DECODE_PIXELS
    {
        return Ok(Some((w, h, false)));
    }
    let budget = state.limits().decode_budget();
    if p.format == image::ImageFormat::Png {
        // A row (16-bit RGBA at most) and the preview's accumulators.
        let mib = (u64::from(w) * 16 + 8 * 1024 * 1024).div_ceil(1 << 20);
        let _permit = budget
            .acquire_many(u32::try_from(mib).unwrap_or(u32::MAX))
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
        let (src2, thumb2) = (src.clone(), thumb.clone());
        if let Some(done) = off_thread(move || png_rows_preview(&src2, &thumb2)).await? {
            return Ok(Some(done));
        }
        // Interlaced (or unusual) PNGs take the whole-image path below.
    }
    // The decoded image, plus the decoder's own buffers (a progressive JPEG
    // keeps its coefficients: about twice the image again).
    let factor = if p.format == image::ImageFormat::Jpeg {
        3
    } else {
        2
    };
    let mib = (p.decoded_bytes.saturating_mul(factor))
        .div_ceil(1 << 20)
        .max(1);
    if mib > u64::from(DECODE_BUDGET_MIB) {
        return Ok(Some((w, h, false)));
    }
    let _permit = budget
        .acquire_many(mib as u32)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let limit = mib << 20;
    off_thread(move || whole_image_preview(&src, &thumb, limit))
        .await
        .map(|made| made.or(Some((w, h, false))))
}

/// The whole-image path: decode (within `max_alloc` bytes), downscale,
/// write the preview.
fn whole_image_preview(src: &Path, thumb: &Path, max_alloc: u64) -> Option<(u32, u32, bool)> {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_DECODE_SIDE);
    limits.max_image_height = Some(MAX_DECODE_SIDE);
    limits.max_alloc = Some(max_alloc);
    let mut reader = image::ImageReader::open(src)
        .ok()?
        .with_guessed_format()
        .ok()?;
    reader.limits(limits);
    let img = reader.decode().ok()?;
    let (w, h) = (img.width(), img.height());
    // Never enlarge: a small image is its own preview (re-encoded as JPEG).
    let preview = if w <= THUMB_SIZE && h <= THUMB_SIZE {
        img.into_rgb8()
    } else {
        img.thumbnail(THUMB_SIZE, THUMB_SIZE).into_rgb8()
    };
    write_preview(preview, thumb).map(|made| (w, h, made))
}

fn write_preview(preview: image::RgbImage, thumb: &Path) -> Option<bool> {
    let mut bytes = Cursor::new(Vec::new());
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 80);
    if preview.write_with_encoder(encoder).is_err() {
        return Some(false);
    }
    Some(std::fs::write(thumb, bytes.into_inner()).is_ok())
}

/// The preview's size for an image: longest side [`THUMB_SIZE`], never
/// larger than the image.
fn preview_size(w: u32, h: u32) -> (u32, u32) {
    if w <= THUMB_SIZE && h <= THUMB_SIZE {
        return (w, h);
    }
    let long = u64::from(w.max(h));
    let scale = |side: u32| {
        u32::try_from((u64::from(side) * u64::from(THUMB_SIZE) + long / 2) / long)
            .unwrap_or(THUMB_SIZE)
            .max(1)
    };
    (scale(w), scale(h))
}

/// A downscaling decoder for non-interlaced PNGs: rows are decoded one at a
/// time and averaged into the preview's pixels (a box filter), so memory is
/// one row plus the preview whatever the image's size. None when the PNG is
/// interlaced or unreadable (the caller falls back to the whole-image path).
fn png_rows_preview(src: &Path, thumb: &Path) -> Option<(u32, u32, bool)> {
    let file = std::io::BufReader::new(std::fs::File::open(src).ok()?);
    let mut decoder = png::Decoder::new(file);
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().ok()?;
    let (w, h) = (reader.info().width, reader.info().height);
    if reader.info().interlaced || w == 0 || h == 0 {
        return None;
    }
    let channels = reader.output_color_type().0.samples();
    let (tw, th) = preview_size(w, h);
    let (tw_us, w_us) = (tw as usize, w as usize);
    // Which preview column each source column falls in.
    let column: Vec<usize> = (0..w_us).map(|x| x * tw_us / w_us).collect();
    let mut sums = vec![0u64; tw_us * th as usize * 3];
    let mut counts = vec![0u32; tw_us * th as usize];
    let mut y: u64 = 0;
    while let Ok(Some(row)) = reader.next_row() {
        let ty = (y * u64::from(th) / u64::from(h)) as usize;
        let data = row.data();
        for (x, px) in data.chunks_exact(channels).take(w_us).enumerate() {
            let t = ty * tw_us + column[x];
            let (r, g, b) = if channels >= 3 {
                (px[0], px[1], px[2])
            } else {
                (px[0], px[0], px[0])
            };
            sums[t * 3] += u64::from(r);
            sums[t * 3 + 1] += u64::from(g);
            sums[t * 3 + 2] += u64::from(b);
            counts[t] += 1;
        }
        y += 1;
    }
    if y < u64::from(h) {
        // Truncated or corrupt: dimensions are known, no preview.
        return Some((w, h, false));
    }
    let preview = image::RgbImage::from_fn(tw, th, |x, y| {
        let t = y as usize * tw_us + x as usize;
        let n = u64::from(counts[t].max(1));
        let avg = |c: usize| (sums[t * 3 + c] / n) as u8;
        image::Rgb([avg(0), avg(1), avg(2)])
    });
    write_preview(preview, thumb).map(|made| (w, h, made))
}

/// Removes a temporary upload unless kept.
struct TempFile(Option<PathBuf>);

impl TempFile {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Removes a stored file (and its preview) if recording it fails.
struct StoredGuard(Option<PathBuf>);

impl StoredGuard {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for StoredGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(&p);
            if let Some(stem) = p.file_stem() {
                let thumb = p.with_file_name(format!("{}.thumb.jpg", stem.to_string_lossy()));
                let _ = std::fs::remove_file(thumb);
            }
        }
    }
}

/// Whether `name` can be a stored name at all (so no request path can point
/// anywhere else): ASCII letters, digits, dots and dashes, no `..`.
pub fn valid_stored_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
}

/// Deletes messages past the retention period and files nobody can reach:
/// uploads never sent after [`ORPHAN_AFTER_MS`], and uploads whose messages
/// are all gone. Returns (messages, files) removed.
pub async fn sweep(state: &AppState, now: i64) -> AppResult<(usize, usize)> {
    let days = i64::from(state.config().history_days);
    let cutoff = (days > 0).then(|| now - days * 86_400_000);
    let (messages, files) = state.db().sweep(cutoff, now - ORPHAN_AFTER_MS).await?;
    let dir = chat_dir(state);
    for name in &files {
        if valid_stored_name(name) {
            if state.objects().is_remote() {
                state.objects().delete(name).await;
            } else {
                let _ = tokio::fs::remove_file(dir.join(name)).await;
            }
        }
    }
    // Leftovers of interrupted uploads.
    if let Ok(mut entries) = tokio::fs::read_dir(tmp_dir(state)).await {
        while let Ok(Some(entry)) = entries.next_entry().await {
            let old = entry
                .metadata()
                .await
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > Duration::from_secs(3600));
            if old {
                let _ = tokio::fs::remove_file(entry.path()).await;
            }
        }
    }
    if messages > 0 || !files.is_empty() {
        tracing::info!(messages, files = files.len(), "retention sweep");
    }
    Ok((messages, files.len()))
}

/// Runs [`sweep`] every `every` until the app is dropped.
pub fn start_sweeper(state: WeakState, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let Some(state) = state.upgrade() else { break };
            if let Err(e) = sweep(&state, now_ms()).await {
                e.log();
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_sanitised() {
        assert_eq!(sanitize_file_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(
            sanitize_file_name(Some("C:\\Users\\me\\photo.jpg")),
            "photo.jpg"
        );
        assert_eq!(sanitize_file_name(Some("a\u{0}b\nc.txt")), "abc.txt");
        assert_eq!(sanitize_file_name(Some("..")), "file");
        assert_eq!(sanitize_file_name(None), "file");
    }

    #[test]
    fn stored_names_cannot_escape() {
        assert!(valid_stored_name("0af3.png"));
        assert!(valid_stored_name("0af3.thumb.jpg"));
        for bad in [
            "",
            "..",
            "../x",
            "a/b",
            "%2e%2e",
            ".hidden",
            "a\\b",
            "/etc/passwd",
        ] {
            assert!(!valid_stored_name(bad), "{bad}");
        }
    }
}
