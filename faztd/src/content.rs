//! What a stored file is: its content type, whether it compresses, and how
//! long browsers may cache it. Computed once, when content is stored.

use std::io::Write;

use serde::{Deserialize, Serialize};

/// Variants are only computed for blobs in this size range: tiny files do
/// not gain, and huge ones are usually already-compressed media.
const MIN_COMPRESS: usize = 256;
pub const MAX_COMPRESS: usize = 16 * 1024 * 1024;

/// The `Content-Type` of a path, with `charset=utf-8` for text.
pub fn content_type_for(path: &str) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let essence = mime.essence_str();
    let texty = mime.type_() == mime_guess::mime::TEXT
        || matches!(
            essence,
            "application/javascript" | "application/json" | "image/svg+xml" | "application/xml"
        );
    if texty && mime.get_param("charset").is_none() {
        format!("{essence}; charset=utf-8")
    } else {
        essence.to_string()
    }
}

/// Whether content of this type is worth compressing.
pub fn is_compressible(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.starts_with("text/")
        || matches!(
            essence,
            "application/javascript"
                | "application/json"
                | "application/xml"
                | "application/wasm"
                | "application/manifest+json"
                | "image/svg+xml"
                | "image/x-icon"
                | "image/vnd.microsoft.icon"
                | "font/ttf"
                | "font/otf"
        )
}

/// gzip and brotli encodings of `data`, each kept only if it saves at least 10%.
pub fn compressed_variants(data: &[u8], content_type: &str) -> Vec<(Encoding, Vec<u8>)> {
    if !(MIN_COMPRESS..=MAX_COMPRESS).contains(&data.len()) || !is_compressible(content_type) {
        return Vec::new();
    }
    let worth = |compressed: &Vec<u8>| compressed.len() * 10 <= data.len() * 9;
    let mut out = Vec::new();
    if let Some(br) = brotli_compress(data).filter(worth) {
        out.push((Encoding::Brotli, br));
    }
    if let Some(gz) = gzip_compress(data).filter(worth) {
        out.push((Encoding::Gzip, gz));
    }
    out
}

fn gzip_compress(data: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).ok()?;
    encoder.finish().ok()
}

fn brotli_compress(data: &[u8]) -> Option<Vec<u8>> {
    // Quality 11 gives the smallest output but costs milliseconds even on a
    // few KiB; it pays off on the larger assets (bundles, stylesheets) that
    // dominate transfer, so small files get 9 (a 1,000-file site deploys in
    // a fraction of the time) and huge ones 9 as well.
    let quality = if (64 * 1024..=1024 * 1024).contains(&data.len()) {
        11
    } else {
        9
    };
    // A window no larger than the file: small files then compress in
    // microseconds instead of paying for a 4 MiB window each.
    let lgwin = (usize::BITS - data.len().saturating_sub(1).leading_zeros()).clamp(10, 22) as i32;
    let params = brotli::enc::BrotliEncoderParams {
        quality,
        lgwin,
        ..Default::default()
    };
    let mut out = Vec::new();
    brotli::BrotliCompress(&mut &data[..], &mut out, &params).ok()?;
    Some(out)
}

/// `Cache-Control` for a path: HTML is revalidated every time; files whose
/// names carry a content hash (`app.3f9a1c2b.js`, `app-3F9A1C2B.css`) are
/// immutable; everything else is revalidated cheaply through its ETag.
pub fn cache_control_for(path: &str, content_type: &str) -> &'static str {
    if content_type.starts_with("text/html") {
        "no-cache"
    } else if is_fingerprinted(path) {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=0, must-revalidate"
    }
}

/// Whether a file name contains a hash-like part of 8+ hex (or base36-ish
/// alphanumeric with digits) characters between separators.
pub fn is_fingerprinted(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let Some((stem, _ext)) = name.rsplit_once('.') else {
        return false;
    };
    stem.split(['.', '-', '_']).skip(1).any(|part| {
        part.len() >= 8
            && part.chars().all(|c| c.is_ascii_alphanumeric())
            && part.chars().any(|c| c.is_ascii_digit())
            && part.chars().any(|c| c.is_ascii_alphabetic())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_carry_charset_for_text() {
        assert_eq!(content_type_for("a/index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type_for("app.js"), "text/javascript; charset=utf-8");
        assert_eq!(
            content_type_for("data.json"),
            "application/json; charset=utf-8"
        );
        assert_eq!(content_type_for("logo.png"), "image/png");
        assert_eq!(content_type_for("noext"), "application/octet-stream");
    }

    #[test]
    fn fingerprints() {
        assert!(is_fingerprinted("assets/app.3f9a1c2b.js"));
        assert!(is_fingerprinted("assets/index-B7d9xQ2a.css"));
        assert!(!is_fingerprinted("assets/app.js"));
        assert!(!is_fingerprinted("style.css"));
        assert!(!is_fingerprinted("assets/component-library.js"));
        assert!(!is_fingerprinted("index.html"));
    }

    #[test]
    fn variants_only_for_compressible_and_worthwhile() {
        let text = "hello fazt ".repeat(200);
        let v = compressed_variants(text.as_bytes(), "text/plain; charset=utf-8");
        assert_eq!(v.len(), 2);
        assert!(compressed_variants(text.as_bytes(), "image/png").is_empty());
        assert!(compressed_variants(b"tiny", "text/plain").is_empty());
        // Random bytes do not compress: no variant is kept.
        let mut noise = vec![0u8; 4096];
        blake3::Hasher::new().finalize_xof().fill(&mut noise);
        assert!(compressed_variants(&noise, "text/plain").is_empty());
    }
}

/// A content encoding for which a variant may be stored.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Encoding {
    Gzip = 1,
    Brotli = 2,
}

impl Encoding {
    /// The `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Brotli => "br",
        }
    }
}
