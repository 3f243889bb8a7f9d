//! What an upload is, told from its first bytes. The declared `Content-Type` is only a hint
//! from the client; what is stored and reported comes from here.
//!
//! The body's first chunks are held (at most [`SNIFF_BYTES`] bytes plus the chunk that
//! crossed that mark) until the format is known, then handed on unchanged, so sniffing
//! never copies the body nor holds more than a chunk of it.

use bytes::Bytes;
use futures::{Stream, StreamExt as _};

use super::MediaKind;

/// Enough for every signature below: an ISO BMFF box header plus the `ftyp` major brand.
pub(crate) const SNIFF_BYTES: usize = 12;

/// The formats taken, each stored under the content type it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// ISO BMFF (`.mp4`, `.m4v`, `.3gp`) led by an `ftyp` box with a video brand.
    Mp4,
    /// QuickTime (`.mov`, iPhone) led by an `ftyp` box with the `qt  ` brand.
    QuickTime,
    Jpeg,
    Png,
}

/// `ftyp` major brands of ISO BMFF video files, as phones and cameras write them. Image
/// brands of the same container (`heic`, `mif1`, `avif`) are deliberately absent.
const VIDEO_BRANDS: &[&[u8; 4]] = &[
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"hvc1",
    b"hev1", b"M4V ", b"MSNV", b"3gp4", b"3gp5", b"3gp6",
];

impl Format {
    /// The content type stored with the blob and reported to the caller.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Self::Mp4 => "video/mp4",
            Self::QuickTime => "video/quicktime",
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
        }
    }

    pub(crate) fn kind(self) -> MediaKind {
        match self {
            Self::Mp4 | Self::QuickTime => MediaKind::Video,
            Self::Jpeg | Self::Png => MediaKind::Image,
        }
    }
}

/// The format of a body starting with `head`, if it is one that is taken.
pub(crate) fn sniff(head: &[u8]) -> Option<Format> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(Format::Jpeg);
    }
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(Format::Png);
    }
    let (Some(b"ftyp"), Some(brand)) = (head.get(4..8), head.get(8..12)) else {
        return None;
    };
    if brand == b"qt  " {
        Some(Format::QuickTime)
    } else if VIDEO_BRANDS.iter().any(|known| known.as_slice() == brand) {
        Some(Format::Mp4)
    } else {
        None
    }
}

/// A body's first chunks, held until [`SNIFF_BYTES`] bytes are known.
#[derive(Debug, Default)]
pub(crate) struct Head {
    chunks: Vec<Bytes>,
    /// A copy of the first [`SNIFF_BYTES`] bytes (the chunks may split them).
    first: Vec<u8>,
}

impl Head {
    /// Reads chunks until [`SNIFF_BYTES`] bytes are there or the body ends.
    pub(crate) async fn read<S, E>(body: &mut S) -> Result<Self, E>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
    {
        let mut head = Self::default();
        while head.first.len() < SNIFF_BYTES {
            let Some(chunk) = body.next().await else {
                break;
            };
            let chunk = chunk?;
            let wanted = (SNIFF_BYTES - head.first.len()).min(chunk.len());
            head.first.extend_from_slice(&chunk[..wanted]);
            if !chunk.is_empty() {
                head.chunks.push(chunk);
            }
        }
        Ok(head)
    }

    pub(crate) fn format(&self) -> Option<Format> {
        sniff(&self.first)
    }

    /// The bytes held: the most this module ever buffers of a body.
    #[cfg(test)]
    pub(crate) fn buffered(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }

    /// The whole body again: the held chunks, then the rest as it comes.
    pub(crate) fn chain<S, E>(self, rest: S) -> impl Stream<Item = Result<Bytes, E>>
    where
        S: Stream<Item = Result<Bytes, E>>,
    {
        futures::stream::iter(self.chunks.into_iter().map(Ok)).chain(rest)
    }
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt as _;

    use super::*;

    #[test]
    fn signatures_are_recognised() {
        assert_eq!(sniff(b"\0\0\0\x20ftypisom\0\0\x02\0"), Some(Format::Mp4));
        assert_eq!(
            sniff(b"\0\0\0\x14ftypqt  \0\0\0\0"),
            Some(Format::QuickTime)
        );
        assert_eq!(sniff(b"\0\0\0\x18ftypmp42"), Some(Format::Mp4));
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF"), Some(Format::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\x0d"), Some(Format::Png));
    }

    #[test]
    fn other_bytes_are_not() {
        assert_eq!(sniff(b"GIF89a\x01\0\x01\0\0\0"), None);
        assert_eq!(sniff(b"\0\0\0\x18ftypheic"), None);
        assert_eq!(sniff(b"hello, world, this is text"), None);
        assert_eq!(sniff(b"\0\0\0\x18ftyp"), None);
        assert_eq!(sniff(b""), None);
    }

    #[tokio::test]
    async fn the_head_holds_little_and_gives_every_byte_back() {
        // One byte at a time first, then large chunks: the head stops at the chunk that
        // completes the signature and never reads on.
        let header = b"\0\0\0\x20ftypisom".to_vec();
        let small = header.iter().map(|byte| Bytes::from(vec![*byte]));
        let large = (0..4).map(|_| Bytes::from(vec![7u8; 64 * 1024]));
        let chunks: Vec<Result<Bytes, std::io::Error>> = small.chain(large).map(Ok).collect();
        let mut body = futures::stream::iter(chunks);
        let head = Head::read(&mut body).await.expect("an infallible stream");
        assert_eq!(head.format(), Some(Format::Mp4));
        assert_eq!(head.buffered(), SNIFF_BYTES);
        let all: Vec<Bytes> = head.chain(body).try_collect().await.expect("chunks");
        assert_eq!(
            all.iter().map(Bytes::len).sum::<usize>(),
            12 + 4 * 64 * 1024
        );
    }
}
