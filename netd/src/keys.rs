//! WireGuard keys: made from the kernel's randomness, written and read as base64 (the form `wg`
//! prints). A private key never appears in `Debug`, logs, errors or replies.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use boringtun::x25519;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A public key (32 bytes).
pub type PublicKey = [u8; 32];

/// A network's private key; kept in its 0600 state record only.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKey([u8; 32]);

impl PrivateKey {
    /// A new random key (clamped by x25519 when used).
    pub fn generate() -> Self {
        PrivateKey(nodeutil::random::bytes())
    }

    /// The x25519 secret, for the tunnel.
    pub fn secret(&self) -> x25519::StaticSecret {
        x25519::StaticSecret::from(self.0)
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        x25519::PublicKey::from(&self.secret()).to_bytes()
    }
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

impl Serialize for PrivateKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for PrivateKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        decode(&s)
            .map(PrivateKey)
            .map_err(|_| serde::de::Error::custom("private key is not 32 bytes of base64"))
    }
}

/// A key as base64.
pub fn encode(key: &[u8; 32]) -> String {
    STANDARD.encode(key)
}

/// A base64 key; the error says what is wrong without echoing the input.
pub fn decode(s: &str) -> Result<[u8; 32], &'static str> {
    let bytes = STANDARD.decode(s.trim()).map_err(|_| "not valid base64")?;
    bytes.try_into().map_err(|_| "not 32 bytes")
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn keys_round_trip_and_never_show_the_secret() {
        let k = PrivateKey::generate();
        let json = serde_json::to_string(&k).unwrap();
        let back: PrivateKey = serde_json::from_str(&json).unwrap();
        assert_eq!(back, k);
        assert_eq!(back.public(), k.public());
        assert!(!format!("{k:?}").contains(&json[1..10]));
        assert_ne!(PrivateKey::generate(), k);
        assert_eq!(decode(&encode(&k.public())).unwrap(), k.public());
        assert_eq!(decode("abc"), Err("not valid base64"));
        assert_eq!(decode("YWJj"), Err("not 32 bytes"));
    }

    #[test]
    fn public_key_matches_wireguard_tools() {
        // `echo <private> | wg pubkey` for a fixed key.
        let private: PrivateKey =
            serde_json::from_str("\"GHtkq/QKrZ2uWRhvaGdNFKDG9WDjRmQqPcUv0ZakEWM=\"").unwrap();
        assert_eq!(
            encode(&private.public()),
            "wfyx/9FjEqRIafX6ib8fd/23FsWZBntUOt+U8w2SqUQ="
        );
    }
}
