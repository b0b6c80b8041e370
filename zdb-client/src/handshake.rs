//! The login after each connect, as a sans-io state machine both clients drive: `AUTH`
//! (admin) then `SELECT` (namespace), each either plain or through the SECURE challenge
//! (`AUTH SECURE CHALLENGE` gives a nonce; the proof is `sha1("nonce:password")` in hex).
//! A reconnect replays the same steps, so a session comes back as it was.

use sha1::{Digest, Sha1};

use crate::config::{AuthMethod, Secret};
use crate::error::{Error, Result};
use crate::value::Value;

/// `sha1("<nonce>:<password>")` as 40 lowercase hex digits.
pub fn challenge_response(nonce: &str, password: &str) -> String {
    let mut h = Sha1::new();
    h.update(nonce.as_bytes());
    h.update(b":");
    h.update(password.as_bytes());
    hex::encode(h.finalize())
}

/// The logins a session holds: replayed, in this order, after every connect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    /// Admin password and how to prove it.
    pub admin: Option<(Secret, AuthMethod)>,
    /// Namespace, its password, and how to prove it.
    pub select: Option<(String, Option<Secret>, AuthMethod)>,
}

/// One request of the login (arguments include secrets: never log them).
#[derive(Debug)]
pub struct Request {
    /// Command name, for errors.
    pub command: &'static str,
    /// The arguments, name first.
    pub args: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Start,
    AdminChallenge,
    AdminProof,
    SelectChallenge,
    Select,
    Done,
}

/// Drives one login: call [`Handshake::next`] with the reply to the last request until it
/// returns `None`.
#[derive(Debug)]
pub struct Handshake<'a> {
    session: &'a Session,
    stage: Stage,
}

impl<'a> Handshake<'a> {
    /// A login of `session`.
    pub fn new(session: &'a Session) -> Handshake<'a> {
        Handshake {
            session,
            stage: Stage::Start,
        }
    }

    /// Checks `reply` (to the previous request; `None` at first) and gives the next request.
    pub fn next(&mut self, reply: Option<Value>) -> Result<Option<Request>> {
        let nonce = match (self.stage, reply) {
            (Stage::Start, _) => None,
            (Stage::AdminChallenge | Stage::SelectChallenge, Some(v)) => Some(status(v, "AUTH")?),
            (Stage::AdminProof, Some(v)) => {
                status(v, "AUTH")?;
                None
            }
            (Stage::Select, Some(v)) => {
                status(v, "SELECT")?;
                self.stage = Stage::Done;
                return Ok(None);
            }
            (_, _) => {
                self.stage = Stage::Done;
                return Ok(None);
            }
        };
        let admin = self.session.admin.as_ref();
        let select = self.session.select.as_ref();
        let (stage, req) = match (self.stage, admin, nonce) {
            (Stage::Start, Some((_, AuthMethod::Secure)), _) => {
                (Stage::AdminChallenge, challenge())
            }
            (Stage::Start, Some((pw, AuthMethod::Plain)), _) => (
                Stage::AdminProof,
                request("AUTH", [b"AUTH".to_vec(), pw.expose().into()]),
            ),
            (Stage::AdminChallenge, Some((pw, _)), Some(nonce)) => (
                Stage::AdminProof,
                request(
                    "AUTH",
                    [
                        b"AUTH".to_vec(),
                        b"SECURE".to_vec(),
                        challenge_response(&nonce, pw.expose()).into(),
                    ],
                ),
            ),
            (Stage::SelectChallenge, _, Some(nonce)) => match select {
                Some((ns, Some(pw), _)) => (
                    Stage::Select,
                    request(
                        "SELECT",
                        [
                            b"SELECT".to_vec(),
                            ns.as_bytes().to_vec(),
                            b"SECURE".to_vec(),
                            challenge_response(&nonce, pw.expose()).into(),
                        ],
                    ),
                ),
                _ => (Stage::Done, None),
            },
            // Admin done (or none): the namespace.
            _ => match select {
                Some((_, Some(_), AuthMethod::Secure)) => (Stage::SelectChallenge, challenge()),
                Some((ns, pw, _)) => {
                    let mut args = vec![b"SELECT".to_vec(), ns.as_bytes().to_vec()];
                    if let Some(pw) = pw {
                        args.push(pw.expose().as_bytes().to_vec());
                    }
                    (
                        Stage::Select,
                        Some(Request {
                            command: "SELECT",
                            args,
                        }),
                    )
                }
                None => (Stage::Done, None),
            },
        };
        self.stage = stage;
        Ok(req)
    }
}

fn challenge() -> Option<Request> {
    request(
        "AUTH",
        [b"AUTH".to_vec(), b"SECURE".to_vec(), b"CHALLENGE".to_vec()],
    )
}

fn request<const N: usize>(command: &'static str, args: [Vec<u8>; N]) -> Option<Request> {
    Some(Request {
        command,
        args: args.into(),
    })
}

fn status(v: Value, command: &'static str) -> Result<String> {
    match v {
        Value::Status(s) => Ok(s),
        Value::Error(message) => Err(Error::Server { command, message }),
        other => Err(Error::Unexpected {
            command,
            got: other.describe(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a login against canned replies; returns the requests as text.
    fn run(s: &Session, replies: &[Value]) -> Result<Vec<String>> {
        let mut h = Handshake::new(s);
        let mut sent = Vec::new();
        let mut reply = None;
        let mut it = replies.iter();
        while let Some(r) = h.next(reply.take())? {
            sent.push(
                r.args
                    .iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            reply = it.next().cloned();
        }
        Ok(sent)
    }

    #[test]
    fn known_answer() {
        // printf 'abc:pw' | sha1sum
        assert_eq!(
            challenge_response("abc", "pw"),
            "2137f79c88412ed50aafcc4e5d9e48cb1a212a5b"
        );
    }

    #[test]
    fn plain_and_secure_logins() {
        assert!(run(&Session::default(), &[]).unwrap().is_empty());
        let s = Session {
            admin: Some((Secret::new("adm"), AuthMethod::Plain)),
            select: Some(("ns".into(), Some(Secret::new("pw")), AuthMethod::Plain)),
        };
        assert_eq!(
            run(&s, &[Value::ok(), Value::ok()]).unwrap(),
            ["AUTH adm", "SELECT ns pw"]
        );
        let s = Session {
            admin: Some((Secret::new("adm"), AuthMethod::Secure)),
            select: Some(("ns".into(), Some(Secret::new("pw")), AuthMethod::Secure)),
        };
        let n1 = Value::Status("1111".into());
        let n2 = Value::Status("2222".into());
        let sent = run(&s, &[n1, Value::ok(), n2, Value::ok()]).unwrap();
        assert_eq!(sent.len(), 4);
        assert_eq!(sent[0], "AUTH SECURE CHALLENGE");
        assert_eq!(
            sent[1],
            format!("AUTH SECURE {}", challenge_response("1111", "adm"))
        );
        assert_eq!(sent[2], "AUTH SECURE CHALLENGE");
        assert_eq!(
            sent[3],
            format!("SELECT ns SECURE {}", challenge_response("2222", "pw"))
        );
        // A namespace without password needs no challenge even in secure mode.
        let s = Session {
            admin: None,
            select: Some(("ns".into(), None, AuthMethod::Secure)),
        };
        assert_eq!(run(&s, &[Value::ok()]).unwrap(), ["SELECT ns"]);
    }

    #[test]
    fn refusals_name_the_command_not_the_password() {
        let s = Session {
            admin: None,
            select: Some(("ns".into(), Some(Secret::new("hidden")), AuthMethod::Plain)),
        };
        let e = run(&s, &[Value::error("Access denied")]).unwrap_err();
        assert_eq!(e.to_string(), "SELECT: Access denied");
    }
}
