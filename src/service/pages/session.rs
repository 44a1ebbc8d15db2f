//! Browser sessions for the status pages: after a sign-in with the admin
//! token, an `HttpOnly`, `SameSite=Strict` cookie (`Secure` behind HTTPS)
//! carrying an expiry signed with a key derived from the token, so a new
//! token ends every session. POSTs carry a CSRF token bound to the session
//! (or, for the sign-in form, to a random cookie of its own).

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const SESSION_COOKIE: &str = "patchmoi_session";
pub const FORM_COOKIE: &str = "patchmoi_form";
/// A session lasts a working day.
const SESSION_SECONDS: u64 = 12 * 3600;

/// The signing key of one admin token.
#[derive(Clone)]
pub struct Keys {
    key: [u8; 32],
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Keys {
    pub fn from_token(token: &str) -> Keys {
        let mut hasher = Sha256::new();
        hasher.update(b"patchmoi pages session key\0");
        hasher.update(token.as_bytes());
        Keys { key: hasher.finalize().into() }
    }

    fn sign(&self, purpose: &str, value: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(value.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// A new session cookie's value.
    pub fn new_session(&self) -> String {
        let expiry = (now() + SESSION_SECONDS).to_string();
        format!("{expiry}.{}", self.sign("session", &expiry))
    }

    /// Whether `value` is a session this key signed that has not expired.
    pub fn valid_session(&self, value: &str) -> bool {
        let Some((expiry, signature)) = value.split_once('.') else { return false };
        let fresh = expiry.parse::<u64>().is_ok_and(|expiry| expiry > now());
        fresh && bool::from(self.sign("session", expiry).as_bytes().ct_eq(signature.as_bytes()))
    }

    /// The CSRF token of forms shown to `binding` (a session or form cookie).
    pub fn csrf(&self, binding: &str) -> String {
        self.sign("csrf", binding)
    }

    pub fn valid_csrf(&self, binding: &str, given: &str) -> bool {
        bool::from(self.csrf(binding).as_bytes().ct_eq(given.as_bytes()))
    }
}

/// Whether `given` is the admin token. Both sides are hashed first and the
/// fixed-size digests compared in constant time, so neither where they
/// differ nor the token's length shows in the time taken.
pub fn token_matches(given: &str, token: &str) -> bool {
    let (given, token) = (Sha256::digest(given.as_bytes()), Sha256::digest(token.as_bytes()));
    bool::from(given.ct_eq(&token))
}

/// A random value for the sign-in form's own cookie.
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS gives random bytes");
    hex(&bytes)
}

/// `Set-Cookie` for `name=value`; `max_age` 0 removes it.
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: u64) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

pub fn session_cookie(value: &str, secure: bool) -> String {
    set_cookie(SESSION_COOKIE, value, secure, SESSION_SECONDS)
}

/// A cookie's value from a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').filter_map(|pair| pair.trim().split_once('=')).find(|(key, _)| *key == name).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_and_csrf_tokens_are_bound_to_the_token() {
        let keys = Keys::from_token("t0ken");
        let session = keys.new_session();
        assert!(keys.valid_session(&session));
        assert!(!Keys::from_token("other").valid_session(&session), "a new token ends sessions");
        let (expiry, signature) = session.split_once('.').unwrap();
        let later = format!("{}.{signature}", expiry.parse::<u64>().unwrap() + 1000);
        assert!(!keys.valid_session(&later), "the expiry is signed");
        assert!(!keys.valid_session("1.abc") && !keys.valid_session(""));
        let csrf = keys.csrf(&session);
        assert!(keys.valid_csrf(&session, &csrf));
        assert!(!keys.valid_csrf(&keys.new_session().replace('.', "x"), &csrf));
        assert_eq!(cookie("a=1; patchmoi_session=x.y", SESSION_COOKIE), Some("x.y"));
        let set = session_cookie("v", true);
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.ends_with("; Secure"), "{set}");
    }
}
