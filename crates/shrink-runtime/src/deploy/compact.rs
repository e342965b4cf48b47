//! The compact form of a deploy file (format version 2): the same JSON header, DEFLATE-coded
//! (RFC 1951, raw), and payloads packed back to back instead of at multiples of 64 bytes. For
//! small models the plain form's header is a large share of the file (LeNet-300-100 at 40x: a
//! 2.7 KB header, ~150 B of padding, in 27 KB); deflate shrinks the header 4–5x.
//!
//! Reading inflates with a limit proportional to the stored length ([`MAX_INFLATE_RATIO`]), so
//! a crafted header cannot make the reader allocate much more than the file's own size.
use super::error::{DeployError, Result};

/// Format version of the compact form.
pub const VERSION_COMPACT: u32 = 2;
/// Payload alignment of the compact form, in bytes (packed).
pub const ALIGN_COMPACT: u64 = 1;
/// DEFLATE cannot expand more than ~1032:1; the reader allows this much plus [`INFLATE_SLACK`].
pub const MAX_INFLATE_RATIO: usize = 1040;
/// Extra bytes allowed when inflating a very short header.
pub const INFLATE_SLACK: usize = 4096;

/// The header's JSON, deflated (best compression).
pub fn deflate(json: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec(json, 10)
}

/// Inflates a stored header; at most `MAX_INFLATE_RATIO × stored + INFLATE_SLACK` bytes.
pub fn inflate(stored: &[u8]) -> Result<Vec<u8>> {
    let limit = stored.len().saturating_mul(MAX_INFLATE_RATIO).saturating_add(INFLATE_SLACK);
    miniz_oxide::inflate::decompress_to_vec_with_limit(stored, limit)
        .map_err(|e| DeployError::invalid(format!("header: not a valid deflate stream ({:?})", e.status)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deflate_round_trips_and_shrinks_json() {
        let json = br#"{"values":[{"name":"a","fact":{"dtype":"F32"}},{"name":"b","fact":{"dtype":"F32"}}]}"#;
        let d = deflate(json);
        assert!(d.len() < json.len(), "{} vs {}", d.len(), json.len());
        assert_eq!(inflate(&d).unwrap(), json);
    }

    #[test]
    fn garbage_and_bombs_are_errors() {
        assert!(inflate(&[0xff, 0x13, 0x07]).is_err());
        // 8 MB of zeros deflate to a few KB; with the stored bytes cut to 16 the limit is
        // ~20 KB: an error, not an 8 MB allocation.
        let bomb = deflate(&vec![0u8; 8 << 20]);
        assert!(bomb.len() > 16);
        let e = inflate(&bomb[..16]).unwrap_err();
        assert!(e.to_string().starts_with("header: not a valid deflate stream"), "{e}");
        assert!(inflate(&bomb).is_ok(), "the full stream is within its ratio");
    }
}
