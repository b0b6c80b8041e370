//! Namespace descriptor `zdb-namespace`.
//!
//! ```text
//! off size field
//!   0  u32 version (1)
//!   4  u8  namelength
//!   5  u8  passlength (0 = no password)
//!   6  u64 maxsize (0 = unlimited)
//!  14  u8  flags: 1 PUBLIC, 2 WORM, 4 EXTENDED (always set)
//!  15  name bytes, then the plaintext password bytes
//! ```
//! The node's storaged and zos read this file directly, so the password stays in plaintext
//! as in 0-db. Lock, freeze and mode are not stored here.

use super::{FormatError, Reader};

/// File name in the namespace's index folder.
pub const FILE_NAME: &str = "zdb-namespace";
const VERSION: u32 = 1;
/// Size of the fixed part.
pub const HEADER_LEN: usize = 4 + 1 + 1 + 8 + 1;
const FLAG_PUBLIC: u8 = 1;
const FLAG_WORM: u8 = 2;
const FLAG_EXTENDED: u8 = 4;

/// Persistent namespace settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// Namespace name (1..=128 bytes).
    pub name: Vec<u8>,
    /// Password, if any.
    pub password: Option<Vec<u8>>,
    /// Size limit in bytes, 0 = unlimited.
    pub maxsize: u64,
    /// Readable without password.
    pub public: bool,
    /// Write once: no overwrite, no delete.
    pub worm: bool,
}

impl Descriptor {
    /// A new namespace's settings, as 0-db creates them (public, no password, no limit).
    pub fn new(name: &[u8]) -> Self {
        Self {
            name: name.to_vec(),
            password: None,
            maxsize: 0,
            public: true,
            worm: false,
        }
    }

    /// Serialize to the exact on-disk bytes.
    pub fn encode(&self) -> Vec<u8> {
        let pass = self.password.as_deref().unwrap_or(&[]);
        let mut out = Vec::with_capacity(HEADER_LEN + self.name.len() + pass.len());
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.push(u8::try_from(self.name.len()).unwrap_or(u8::MAX));
        out.push(u8::try_from(pass.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(&self.maxsize.to_le_bytes());
        let mut flags = FLAG_EXTENDED;
        if self.public {
            flags |= FLAG_PUBLIC;
        }
        if self.worm {
            flags |= FLAG_WORM;
        }
        out.push(flags);
        out.extend_from_slice(&self.name);
        out.extend_from_slice(pass);
        out
    }

    /// Parse the on-disk bytes.
    pub fn decode(buf: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(buf, HEADER_LEN)?;
        let version = r.u32();
        if version != VERSION {
            return Err(FormatError::Version(version));
        }
        let namelen = usize::from(r.u8());
        let passlen = usize::from(r.u8());
        let maxsize = r.u64();
        let flags = r.u8();
        let need = HEADER_LEN + namelen + passlen;
        let rest = buf.get(HEADER_LEN..need).ok_or(FormatError::Short {
            need,
            have: buf.len(),
        })?;
        let (name, pass) = rest.split_at(namelen);
        Ok(Self {
            name: name.to_vec(),
            password: (passlen > 0).then(|| pass.to_vec()),
            maxsize,
            public: flags & FLAG_PUBLIC != 0,
            worm: flags & FLAG_WORM != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_descriptor_bytes() {
        let d = Descriptor::new(b"default");
        let bytes = d.encode();
        assert_eq!(
            bytes,
            [
                1, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, b'd', b'e', b'f', b'a', b'u', b'l',
                b't'
            ]
        );
        assert_eq!(Descriptor::decode(&bytes), Ok(d));
    }

    #[test]
    fn password_round_trip_and_truncation() {
        let d = Descriptor {
            password: Some(b"s3cret".to_vec()),
            maxsize: 10_000_000,
            worm: true,
            ..Descriptor::new(b"private")
        };
        let bytes = d.encode();
        assert_eq!(Descriptor::decode(&bytes), Ok(d));
        assert!(Descriptor::decode(&bytes[..bytes.len() - 1]).is_err());
    }
}
