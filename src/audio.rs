//! Audio by its bytes: whether an upload is a sound recording, and which.
//!
//! Browsers record voice messages with `MediaRecorder` as Opus in WebM
//! (Chromium, Firefox) or Ogg (Firefox), or AAC in MP4 (Safari). Those
//! containers also carry video, and a file's extension or declared type
//! says nothing, so the container's own track list is read from the first
//! bytes of the upload (the head `files.rs` keeps while streaming): a WebM
//! or MP4 is audio when it has an audio track and no video track; an Ogg
//! when its first packet is an Opus, Vorbis, FLAC or Speex header. Plain
//! audio formats (MP3, WAV, FLAC, AAC, AMR, AIFF) come from `infer`'s magic
//! numbers. Nothing is decoded.

/// The audio MIME type of a file that starts with `head`, if its bytes say
/// it is a sound recording.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        let (audio, video) = matroska_tracks(head)?;
        return (audio > 0 && video == 0).then_some("audio/webm");
    }
    if head.starts_with(b"OggS") {
        return ogg_is_audio(head).then_some("audio/ogg");
    }
    if head.get(4..8) == Some(b"ftyp") {
        return mp4_is_audio(head).then_some("audio/mp4");
    }
    let kind = infer::get(head)?;
    let mime = kind.mime_type();
    // MIDI is notes, not a recording.
    (kind.matcher_type() == infer::MatcherType::Audio && mime != "audio/midi").then_some(mime)
}

/// An EBML variable-length integer: its value (without the length marker
/// unless `keep_marker`, as element ids are written) and its length.
fn vint(buf: &[u8], keep_marker: bool) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 || buf.len() < len {
        return None;
    }
    let mut value = if keep_marker {
        u64::from(first)
    } else {
        u64::from(first) & (0xFF >> len)
    };
    for b in &buf[1..len] {
        value = (value << 8) | u64::from(*b);
    }
    Some((value, len))
}

/// An element header at the start of `buf`: id, size (`None` = unknown,
/// as a live recording's Segment is), header length.
fn element(buf: &[u8]) -> Option<(u64, Option<u64>, usize)> {
    let (id, id_len) = vint(buf, true)?;
    if id_len > 4 {
        return None;
    }
    let (size, size_len) = vint(&buf[id_len..], false)?;
    let unknown = size == (1u64 << (7 * size_len)) - 1;
    Some((id, (!unknown).then_some(size), id_len + size_len))
}

const EBML: u64 = 0x1A45_DFA3;
const DOC_TYPE: u64 = 0x4282;
const SEGMENT: u64 = 0x1853_8067;
const TRACKS: u64 = 0x1654_AE6B;
const CLUSTER: u64 = 0x1F43_B675;
const TRACK_ENTRY: u64 = 0xAE;
const TRACK_TYPE: u64 = 0x83;

/// Counts the (audio, video) tracks of a WebM/Matroska file from its head:
/// the EBML header (doc type `webm` or `matroska`), then the Segment's
/// children up to `Tracks`. `None` when the head does not get that far.
fn matroska_tracks(buf: &[u8]) -> Option<(u32, u32)> {
    let (id, size, hl) = element(buf)?;
    if id != EBML {
        return None;
    }
    let end = hl.checked_add(usize::try_from(size?).ok()?)?;
    let header = buf.get(hl..end)?;
    let doc_type = children(header).find(|(id, _)| *id == DOC_TYPE)?.1;
    if doc_type != b"webm" && doc_type != b"matroska" {
        return None;
    }
    let (id, size, shl) = element(&buf[end..])?;
    if id != SEGMENT {
        return None;
    }
    let start = end + shl;
    let seg_end = match size {
        Some(s) => start
            .saturating_add(usize::try_from(s).ok()?)
            .min(buf.len()),
        None => buf.len(),
    };
    let mut pos = start;
    while pos < seg_end {
        let (id, size, hl) = element(&buf[pos..seg_end])?;
        if id == CLUSTER {
            return None; // media before any track list
        }
        let size = usize::try_from(size?).ok()?;
        if id == TRACKS {
            let body = &buf[pos + hl..(pos + hl).saturating_add(size).min(buf.len())];
            let (mut audio, mut video) = (0, 0);
            for (id, entry) in children(body) {
                if id != TRACK_ENTRY {
                    continue;
                }
                let kind = children(entry)
                    .find(|(id, _)| *id == TRACK_TYPE)
                    .map(|(_, v)| v.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b)));
                match kind {
                    Some(1) => video += 1,
                    Some(2) => audio += 1,
                    _ => {}
                }
            }
            return Some((audio, video));
        }
        pos = pos.checked_add(hl)?.checked_add(size)?;
    }
    None
}

/// The sized child elements of an element's body, `(id, body)`; stops at
/// the first one that does not fit (a head cut mid-element).
fn children(mut buf: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    std::iter::from_fn(move || {
        let (id, size, hl) = element(buf)?;
        let size = usize::try_from(size?).ok()?;
        let body = buf.get(hl..hl.checked_add(size)?)?;
        buf = &buf[hl + size..];
        Some((id, body))
    })
}

/// Whether an Ogg stream's first packet is an audio codec's header.
fn ogg_is_audio(buf: &[u8]) -> bool {
    let Some(&segments) = buf.get(26) else {
        return false;
    };
    let Some(packet) = buf.get(27 + usize::from(segments)..) else {
        return false;
    };
    [&b"OpusHead"[..], b"\x01vorbis", b"\x7fFLAC", b"Speex   "]
        .iter()
        .any(|magic| packet.starts_with(magic))
}

/// Whether an MP4 is audio only: its `moov` (at the start, as recorders
/// and streaming files put it) has a sound track and no video track; a file
/// whose `moov` is not in the head counts only with an audio brand (`M4A `).
fn mp4_is_audio(buf: &[u8]) -> bool {
    let mut handlers = Vec::new();
    if let Some(moov) = boxes(buf).find(|(t, _)| t == b"moov").map(|(_, b)| b) {
        for (t, trak) in boxes(moov) {
            if &t != b"trak" {
                continue;
            }
            let hdlr = boxes(trak)
                .find(|(t, _)| t == b"mdia")
                .and_then(|(_, mdia)| boxes(mdia).find(|(t, _)| t == b"hdlr"))
                .and_then(|(_, h)| h.get(8..12).map(|k| [k[0], k[1], k[2], k[3]]));
            handlers.extend(hdlr);
        }
        return handlers.contains(b"soun") && !handlers.contains(b"vide");
    }
    matches!(buf.get(8..12), Some(b"M4A ") | Some(b"M4B "))
}

/// The boxes of an MP4 body, `(type, payload)`; stops at one that does not fit.
fn boxes(mut buf: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    std::iter::from_fn(move || {
        let size = u32::from_be_bytes(buf.get(0..4)?.try_into().ok()?) as usize;
        let kind: [u8; 4] = buf.get(4..8)?.try_into().ok()?;
        let (start, end) = match size {
            0 => (8, buf.len()),
            1 => {
                let large = u64::from_be_bytes(buf.get(8..16)?.try_into().ok()?);
                (16, usize::try_from(large).ok()?)
            }
            n if n >= 8 => (8, n),
            _ => return None,
        };
        let payload = buf.get(start..end.min(buf.len()))?;
        buf = buf.get(end..).unwrap_or_default();
        Some((kind, payload))
    })
}

/// Test data: a WebM head with the given track types (1 video, 2 audio),
/// shaped as Chromium's `MediaRecorder` writes it (a Segment of unknown
/// size), followed by a few bytes of cluster.
#[doc(hidden)]
pub fn webm_head_for_tests(track_types: &[u8]) -> Vec<u8> {
    fn el(id: &[u8], body: &[u8]) -> Vec<u8> {
        let mut out = id.to_vec();
        out.push(0x80 | u8::try_from(body.len()).expect("short test element"));
        out.extend_from_slice(body);
        out
    }
    let mut out = el(&[0x1A, 0x45, 0xDF, 0xA3], &el(&[0x42, 0x82], b"webm"));
    out.extend_from_slice(&[
        0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    ]);
    out.extend(el(
        &[0x15, 0x49, 0xA9, 0x66],
        &el(&[0x2A, 0xD7, 0xB1], &[0x0F, 0x42, 0x40]),
    ));
    let mut entries = Vec::new();
    for (i, t) in track_types.iter().enumerate() {
        let codec: &[u8] = if *t == 2 { b"A_OPUS" } else { b"V_VP8" };
        let mut body = el(&[0xD7], &[i as u8 + 1]);
        body.extend(el(&[0x83], &[*t]));
        body.extend(el(&[0x86], codec));
        entries.extend(el(&[0xAE], &body));
    }
    out.extend(el(&[0x16, 0x54, 0xAE, 0x6B], &entries));
    out.extend_from_slice(&[
        0x1F, 0x43, 0xB6, 0x75, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    ]);
    out.extend_from_slice(&[0xE7, 0x81, 0x00, 0xA3, 0x84, 0x81, 0x00, 0x00, 0x80]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webm_is_audio_only_with_audio_tracks_and_no_video() {
        assert_eq!(sniff(&webm_head_for_tests(&[2])), Some("audio/webm"));
        assert_eq!(sniff(&webm_head_for_tests(&[1, 2])), None);
        assert_eq!(sniff(&webm_head_for_tests(&[1])), None);
        assert_eq!(sniff(&webm_head_for_tests(&[])), None);
        // cut before the track list: not known to be audio
        let head = webm_head_for_tests(&[2]);
        assert_eq!(sniff(&head[..30]), None);
    }

    #[test]
    fn ogg_is_audio_by_its_first_packet() {
        let page = |packet: &[u8]| {
            let mut p = b"OggS\0\x02".to_vec();
            p.extend_from_slice(&[0; 20]);
            p.push(1);
            p.push(packet.len() as u8);
            p.extend_from_slice(packet);
            p
        };
        assert_eq!(sniff(&page(b"OpusHead\x01\x01")), Some("audio/ogg"));
        assert_eq!(sniff(&page(b"\x01vorbis\0\0")), Some("audio/ogg"));
        assert_eq!(sniff(&page(b"\x80theora\x03")), None);
    }

    #[test]
    fn mp4_is_audio_by_its_handlers() {
        fn bx(kind: &[u8], body: &[u8]) -> Vec<u8> {
            let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
            out.extend_from_slice(kind);
            out.extend_from_slice(body);
            out
        }
        let trak = |handler: &[u8]| {
            let mut hdlr = vec![0; 8];
            hdlr.extend_from_slice(handler);
            hdlr.extend_from_slice(&[0; 12]);
            bx(b"trak", &bx(b"mdia", &bx(b"hdlr", &hdlr)))
        };
        let file = |traks: &[&[u8]]| {
            let mut out = bx(b"ftyp", b"iso5\0\0\0\x01iso5mp41");
            out.extend(bx(
                b"moov",
                &traks.iter().flat_map(|t| trak(t)).collect::<Vec<_>>(),
            ));
            out
        };
        assert_eq!(sniff(&file(&[b"soun"])), Some("audio/mp4"));
        assert_eq!(sniff(&file(&[b"vide", b"soun"])), None);
        assert_eq!(sniff(&bx(b"ftyp", b"M4A \0\0\0\0M4A ")), Some("audio/mp4"));
    }

    #[test]
    fn plain_audio_comes_from_magic_numbers_and_other_files_are_not_audio() {
        let mut wav = b"RIFF\x24\0\0\0WAVEfmt ".to_vec();
        wav.extend_from_slice(&[16, 0, 0, 0, 1, 0, 1, 0]);
        assert_eq!(sniff(&wav), Some("audio/x-wav"));
        assert_eq!(sniff(b"ID3\x04\0\0\0\0\0\0"), Some("audio/mpeg"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), None);
        assert_eq!(sniff(b"<html><script>"), None);
        assert_eq!(sniff(b"MThd\0\0\0\x06"), None);
        assert_eq!(sniff(b""), None);
    }
}
