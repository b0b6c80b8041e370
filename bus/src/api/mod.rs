//! API types of every daemon, so daemons depend on this crate and not on each other.
//!
//! Naming: methods are `service.object.verb@version`; events are published on
//! `service.object` topics. Mutating methods are idempotent unless their doc says otherwise.

pub mod compute;
pub mod health;
pub mod network;
pub mod node;
pub mod storage;
pub mod supervisor;
pub mod upgrade;

use serde::{Deserialize, Serialize};

/// Parameters or reply of a method that carries nothing (`{}`; `null` is accepted too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// A secret string (a password): serialized as is on the bus, but never shown by `Debug` or
/// `Display`, so it cannot leak into logs by accident; and a value of the wrong type is refused
/// without quoting it (serde's own message would: ``invalid type: integer `1234` ``), so a
/// mistyped password does not land in an error either.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        fn refuse<E: serde::de::Error>() -> E {
            E::custom("a password or other secret must be a string (value not shown)")
        }
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Secret;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a secret string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Secret, E> {
                Ok(Secret(v))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Secret, E> {
                Err(refuse())
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Secret, E> {
                Err(refuse())
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Secret, E> {
                Err(refuse())
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Secret, E> {
                Err(refuse())
            }
            fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<Secret, E> {
                Err(refuse())
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<Secret, A::Error> {
                Err(refuse())
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, _: A) -> Result<Secret, A::Error> {
                Err(refuse())
            }
        }
        // `any`: serde_json reports a wrong type itself (quoting it) when asked for a string.
        d.deserialize_any(V)
    }
}

impl Secret {
    /// The secret value. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn a_secret_is_shown_nowhere() {
        let s: Secret = serde_json::from_str("\"hunter22\"").unwrap_or_default();
        assert_eq!(s.expose(), "hunter22");
        assert_eq!(format!("{s} {s:?}"), "<redacted> \"<redacted>\"");
        assert_eq!(
            serde_json::to_string(&s).ok().as_deref(),
            Some("\"hunter22\"")
        );
        for wrong in [
            "12345678",
            "true",
            "9.75",
            "[\"hunter22\"]",
            "{\"p\":\"hunter22\"}",
        ] {
            let e = serde_json::from_str::<Secret>(wrong)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(!e.is_empty(), "{wrong} accepted");
            for leak in ["12345678", "true", "9.75", "hunter22"] {
                assert!(!e.contains(leak), "{wrong}: {e}");
            }
        }
    }
}
