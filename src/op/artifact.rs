//! Every value that flows between ops can be stored: encoded to bytes, decoded back,
//! under a stable format name. The artifact store names the bytes by their digest.

use serde::{de::DeserializeOwned, Serialize};
use std::any::Any;
use std::sync::Arc;

/// Encoding or decoding an artifact failed.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("cannot encode {ty} as {format}: {message}")]
    Encode {
        ty: &'static str,
        format: &'static str,
        message: String,
    },
    #[error("cannot decode {ty} from {format}: {message}")]
    Decode {
        ty: &'static str,
        format: &'static str,
        message: String,
    },
}

/// A type that can flow along an edge and be kept in the artifact store.
///
/// The encoding must be deterministic (equal values, equal bytes): the store names blobs
/// by content, and equal outputs stop invalidation downstream (early cutoff).
pub trait Artifact: Any + Send + Sync + Sized {
    /// The encoding's stable name, stored beside each blob: `arrow-ipc/1`, `msgpack/1`.
    const FORMAT: &'static str;
    fn encode(&self) -> Result<Vec<u8>, CodecError>;
    fn decode(bytes: &[u8]) -> Result<Self, CodecError>;
}

type EncodeFn = fn(&(dyn Any + Send + Sync)) -> Result<Vec<u8>, CodecError>;
type DecodeFn = fn(&[u8]) -> Result<Arc<dyn Any + Send + Sync>, CodecError>;

/// A type's codec with the type erased, as the engine needs it for a port.
#[derive(Clone, Copy)]
pub struct Codec {
    pub format: &'static str,
    encode: EncodeFn,
    decode: DecodeFn,
}

impl Codec {
    pub fn of<T: Artifact>() -> Codec {
        Codec {
            format: T::FORMAT,
            encode: encode_erased::<T>,
            decode: decode_erased::<T>,
        }
    }

    /// Encode a value of this codec's type (checked by the caller through the port type).
    pub fn encode(&self, value: &(dyn Any + Send + Sync)) -> Result<Vec<u8>, CodecError> {
        (self.encode)(value)
    }

    pub fn decode(&self, bytes: &[u8]) -> Result<Arc<dyn Any + Send + Sync>, CodecError> {
        (self.decode)(bytes)
    }
}

fn encode_erased<T: Artifact>(value: &(dyn Any + Send + Sync)) -> Result<Vec<u8>, CodecError> {
    match value.downcast_ref::<T>() {
        Some(v) => v.encode(),
        None => Err(CodecError::Encode {
            ty: std::any::type_name::<T>(),
            format: T::FORMAT,
            message: "the value is of another type".into(),
        }),
    }
}

fn decode_erased<T: Artifact>(bytes: &[u8]) -> Result<Arc<dyn Any + Send + Sync>, CodecError> {
    Ok(Arc::new(T::decode(bytes)?))
}

/// MessagePack (structs as arrays): compact, for large values.
pub fn to_msgpack<T: Serialize>(v: &T) -> Result<Vec<u8>, CodecError> {
    rmp_serde::to_vec(v).map_err(|e| CodecError::Encode {
        ty: std::any::type_name::<T>(),
        format: "msgpack/1",
        message: e.to_string(),
    })
}

pub fn from_msgpack<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    rmp_serde::from_slice(bytes).map_err(|e| CodecError::Decode {
        ty: std::any::type_name::<T>(),
        format: "msgpack/1",
        message: e.to_string(),
    })
}

/// JSON: readable, for small reports.
pub fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>, CodecError> {
    serde_json::to_vec(v).map_err(|e| CodecError::Encode {
        ty: std::any::type_name::<T>(),
        format: "json/1",
        message: e.to_string(),
    })
}

/// Decode JSON, and refuse a value that would not encode back to the same bytes:
/// serde_json reads some numbers one unit in the last place off (without its
/// `float_roundtrip` feature, which would rebuild polars), and a consumer must see the
/// very value its producer wrote. Such a value is a miss, and its producer runs again.
pub fn from_json<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> Result<T, CodecError> {
    let err = |message: String| CodecError::Decode {
        ty: std::any::type_name::<T>(),
        format: "json/1",
        message,
    };
    let value: T = serde_json::from_slice(bytes).map_err(|e| err(e.to_string()))?;
    if serde_json::to_vec(&value).map_err(|e| err(e.to_string()))? != bytes {
        return Err(err(
            "it does not read back exactly (a number parsed off by a unit in the last place)".into(),
        ));
    }
    Ok(value)
}

/// `impl Artifact` for serde types: `serde_artifact!(msgpack: A, B; json: C);`
#[macro_export]
macro_rules! serde_artifact {
    ($($codec:ident: $($ty:ty),+);+ $(;)?) => {
        $($( $crate::serde_artifact!(@one $codec, $ty); )+)+
    };
    (@one msgpack, $ty:ty) => {
        impl $crate::op::Artifact for $ty {
            const FORMAT: &'static str = "msgpack/1";
            fn encode(&self) -> Result<Vec<u8>, $crate::op::CodecError> {
                $crate::op::to_msgpack(self)
            }
            fn decode(bytes: &[u8]) -> Result<Self, $crate::op::CodecError> {
                $crate::op::from_msgpack(bytes)
            }
        }
    };
    (@one json, $ty:ty) => {
        impl $crate::op::Artifact for $ty {
            const FORMAT: &'static str = "json/1";
            fn encode(&self) -> Result<Vec<u8>, $crate::op::CodecError> {
                $crate::op::to_json(self)
            }
            fn decode(bytes: &[u8]) -> Result<Self, $crate::op::CodecError> {
                $crate::op::from_json(bytes)
            }
        }
    };
}

crate::serde_artifact! {
    json: String, u64, i64, f64, bool
}
