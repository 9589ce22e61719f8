//! The model file container: a fixed header, then a serde payload, then a checksum.
//!
//! ```text
//! offset  size  field
//! 0       8     magic "NEXUSML\0"
//! 8       4     format version (u32, little endian)
//! 12      8     payload length in bytes (u64, little endian)
//! 20      n     payload (MessagePack-encoded model, structs as arrays)
//! 20+n    32    SHA-256 of the payload
//! ```
//!
//! A truncated file, a flipped bit and a file from a newer nexusml each get their own
//! error. Files are written to a temporary file and renamed, never half written.
//!
//! Reading is bounded ([`crate::fsx`]): only regular files are opened (never a FIFO, a
//! device such as `/dev/zero` or a directory), a file larger than [`MAX_FILE_BYTES`] is
//! refused before it is read, the magic is checked on the first bytes before the rest is
//! read, and the payload length in the header is checked without overflow. The
//! checksum only proves the payload is the one that was written; a crafted file can carry
//! a valid checksum, so the decoded model is then checked for structure
//! ([`crate::ml::model_check`]).

use serde::{de::DeserializeOwned, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

pub const MAGIC: &[u8; 8] = b"NEXUSML\0";
/// Bytes before the payload: magic, version, payload length.
pub const HEADER: usize = 20;
/// Bytes after the payload: its SHA-256.
pub const CHECKSUM: usize = 32;
/// The largest model file [`load`] reads: 4 GiB. The 200-tree model of a 20,000-row
/// inventory is about 90 MB; a file past this limit is refused before any byte is read
/// into memory, and a header declaring a larger payload is refused as impossible.
pub const MAX_FILE_BYTES: u64 = crate::fsx::MODEL.bytes;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot read model {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write model {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a nexusml model file (no NEXUSML header)")]
    NotAModel { path: PathBuf },
    #[error("{path} declares model format version 0, which no nexusml writes (versions start at 1)")]
    VersionZero { path: PathBuf },
    #[error("{path} is model format version {found}, newer than this nexusml reads (up to {supported}); upgrade nexusml")]
    FutureVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("{path} is not a regular file ({kind}); a model must be a .nxm file")]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("{path} is {size} bytes, more than a model file may be ({limit} bytes)")]
    TooLarge { path: PathBuf, size: u64, limit: u64 },
    #[error(
        "{path} has an impossible payload length in its header: {declared} bytes (the file is {found} bytes)"
    )]
    BadLength {
        path: PathBuf,
        declared: u64,
        found: u64,
    },
    #[error("{path} is truncated: {expected} bytes expected, {found} present")]
    Truncated {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("{path} is corrupted: its checksum does not match its contents")]
    Corrupted { path: PathBuf },
    #[error("{path}: the model payload cannot be decoded: {message}")]
    Decode { path: PathBuf, message: String },
    #[error("{path} is not a valid model: {source}")]
    Invalid {
        path: PathBuf,
        #[source]
        source: Box<crate::ml::model_check::ModelCheckError>,
    },
    #[error("{path} does not match its metadata {metadata}: the metadata describes another model (SHA-256 {expected}, the file has {found})")]
    MetadataMismatch {
        path: PathBuf,
        metadata: PathBuf,
        expected: String,
        found: String,
    },
    #[error("cannot read the model's metadata {path}: {}", .source.reason())]
    MetadataRead {
        path: PathBuf,
        #[source]
        source: crate::fsx::FileError,
    },
    #[error("the model's metadata {path} is not JSON: {message}")]
    MetadataInvalid { path: PathBuf, message: String },
    #[error("the model cannot be encoded: {0}")]
    Encode(String),
}

/// Encode `value` as a model file image.
pub fn encode<T: Serialize>(value: &T, version: u32) -> Result<Vec<u8>, BundleError> {
    let payload = rmp_serde::to_vec(value).map_err(|e| BundleError::Encode(e.to_string()))?;
    let mut out = Vec::with_capacity(HEADER + payload.len() + CHECKSUM);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&Sha256::digest(&payload));
    Ok(out)
}

/// Decode a model file image; `path` names it in errors. `supported` is the newest
/// format version this build reads.
pub fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    path: &Path,
    supported: u32,
) -> Result<(T, u32), BundleError> {
    let (version, payload) = open(bytes, path, supported)?;
    Ok((decode_payload(payload, path)?, version))
}

/// Check a model file image (magic, version within `1..=supported`, length, checksum)
/// and return its format version and payload, for a reader that decodes each version
/// its own way.
pub fn open<'a>(bytes: &'a [u8], path: &Path, supported: u32) -> Result<(u32, &'a [u8]), BundleError> {
    let path = || path.to_path_buf();
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(BundleError::NotAModel { path: path() });
    }
    if bytes.len() < HEADER {
        return Err(BundleError::Truncated {
            path: path(),
            expected: HEADER as u64,
            found: bytes.len() as u64,
        });
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version == 0 {
        return Err(BundleError::VersionZero { path: path() });
    }
    if version > supported {
        return Err(BundleError::FutureVersion {
            path: path(),
            found: version,
            supported,
        });
    }
    let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let found = bytes.len() as u64;
    // No model file holds more than MAX_FILE_BYTES, so a larger length is not a
    // truncation but a bad header (and the sum below cannot overflow).
    let expected = (HEADER as u64 + CHECKSUM as u64)
        .checked_add(len)
        .filter(|&e| e <= MAX_FILE_BYTES)
        .ok_or(BundleError::BadLength {
            path: path(),
            declared: len,
            found,
        })?;
    if found < expected {
        return Err(BundleError::Truncated {
            path: path(),
            expected,
            found,
        });
    }
    // `expected <= found = bytes.len()`, so these fit in usize.
    let end = HEADER + len as usize;
    let payload = &bytes[HEADER..end];
    let sum = &bytes[end..end + CHECKSUM];
    if Sha256::digest(payload).as_slice() != sum || found != expected {
        return Err(BundleError::Corrupted { path: path() });
    }
    Ok((version, payload))
}

/// Decode a payload [`open`] returned.
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8], path: &Path) -> Result<T, BundleError> {
    rmp_serde::from_slice(payload).map_err(|e| BundleError::Decode {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Write a model file atomically.
pub fn save<T: Serialize>(value: &T, version: u32, path: &Path) -> Result<u64, BundleError> {
    let bytes = encode(value, version)?;
    crate::atomic_file::write_atomic(path, &bytes).map_err(|source| BundleError::Write {
        path: path.into(),
        source,
    })?;
    Ok(bytes.len() as u64)
}

/// Read a model file (only the container: [`crate::ml::model::load_model_file`] also
/// checks the model inside).
pub fn load<T: DeserializeOwned>(path: &Path, supported: u32) -> Result<(T, u32), BundleError> {
    let bytes = read_bounded(path)?;
    decode(&bytes, path, supported)
}

/// A model file's bytes, if it is a regular file of at most [`MAX_FILE_BYTES`] that
/// starts with the magic: the type and size are checked before anything is read (opening
/// a FIFO would wait for a writer), then the first 8 bytes, and only then the rest (a
/// 2 GB file of something else is refused after 8 bytes, not read whole).
pub fn read_bounded(path: &Path) -> Result<Vec<u8>, BundleError> {
    let (file, size) = crate::fsx::open(path, crate::fsx::MODEL).map_err(|e| file_error(path, e))?;
    let mut head = Vec::with_capacity(MAGIC.len());
    (&file)
        .take(MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(|source| BundleError::Read {
            path: path.into(),
            source,
        })?;
    if head.as_slice() != MAGIC {
        return Err(BundleError::NotAModel { path: path.into() });
    }
    crate::fsx::read_rest(path, file, size, head, crate::fsx::MODEL).map_err(|e| file_error(path, e))
}

/// The bundle's own words for why a model file was not read.
fn file_error(path: &Path, e: crate::fsx::FileError) -> BundleError {
    use crate::fsx::FileError;
    match e {
        FileError::NotAFile { kind, .. } => BundleError::NotAFile {
            path: path.into(),
            kind,
        },
        FileError::TooLarge { size, limit, .. } => BundleError::TooLarge {
            path: path.into(),
            size,
            limit: limit.bytes,
        },
        other => BundleError::Read {
            path: path.into(),
            source: other.into_io(),
        },
    }
}

/// A model's `_metadata.json`, parsed: a regular file of at most
/// [`crate::fsx::METADATA`] bytes.
pub fn read_metadata(path: &Path) -> Result<serde_json::Value, BundleError> {
    let bytes = crate::fsx::read(path, crate::fsx::METADATA).map_err(|source| BundleError::MetadataRead {
        path: path.into(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| BundleError::MetadataInvalid {
        path: path.into(),
        message: e.to_string(),
    })
}

/// SHA-256 of a file, as hex (the training data's fingerprint): streamed, and only a
/// regular file of at most [`crate::fsx::DIGEST`] bytes.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let (file, _) = crate::fsx::open(path, crate::fsx::DIGEST).map_err(crate::fsx::FileError::into_io)?;
    std::io::copy(&mut file.take(crate::fsx::DIGEST.bytes), &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}

/// SHA-256 of bytes, as hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Thing {
        name: String,
        weights: Vec<f32>,
    }

    fn thing() -> Thing {
        Thing {
            name: "forest".into(),
            weights: vec![0.5, 1.5, -2.0],
        }
    }

    #[test]
    fn round_trips_and_names_every_failure() {
        let p = Path::new("m.nxm");
        let bytes = encode(&thing(), 1).unwrap();
        assert_eq!(decode::<Thing>(&bytes, p, 1).unwrap(), (thing(), 1));

        let e = decode::<Thing>(&bytes[..bytes.len() - 5], p, 1).unwrap_err();
        assert!(e.to_string().starts_with("m.nxm is truncated:"), "{e}");
        let e = decode::<Thing>(&bytes[..10], p, 1).unwrap_err();
        assert!(matches!(e, BundleError::Truncated { .. }), "{e}");

        let mut flipped = bytes.clone();
        flipped[HEADER + 2] ^= 0x40;
        let e = decode::<Thing>(&flipped, p, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "m.nxm is corrupted: its checksum does not match its contents"
        );

        let future = encode(&thing(), 9).unwrap();
        let e = decode::<Thing>(&future, p, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "m.nxm is model format version 9, newer than this nexusml reads (up to 1); upgrade nexusml"
        );

        // A length near 2^64 must not overflow into a bogus slice.
        for declared in [u64::MAX, u64::MAX - 19, MAX_FILE_BYTES] {
            let mut huge = bytes.clone();
            huge[12..20].copy_from_slice(&declared.to_le_bytes());
            let e = decode::<Thing>(&huge, p, 1).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "m.nxm has an impossible payload length in its header: {declared} bytes (the file is {} bytes)",
                    bytes.len()
                )
            );
        }

        let e = decode::<Thing>(b"PK\x03\x04 a zip file", p, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "m.nxm is not a nexusml model file (no NEXUSML header)"
        );
    }

    #[test]
    fn save_and_load_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.nxm");
        save(&thing(), 1, &p).unwrap();
        assert_eq!(load::<Thing>(&p, 1).unwrap().0, thing());
        assert_eq!(sha256_file(&p).unwrap().len(), 64);
    }

    #[cfg(unix)]
    #[test]
    fn refuses_what_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = load::<Thing>(dir.path(), 1).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("is not a regular file (a directory); a model must be a .nxm file"),
            "{e}"
        );
        let e = load::<Thing>(Path::new("/dev/zero"), 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/dev/zero is not a regular file (a character device); a model must be a .nxm file"
        );
    }
}
