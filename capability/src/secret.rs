//! The one list of names that hold secrets. The runtime's redactor blanks the value of any key
//! that [`is_secret_key`]; forge uses [`mentions_secret`] to know which fields an API never gives
//! back (so a restore cannot put them back).

/// Words that name a secret, in snake case. A key is secret when its snake-case form is one of
/// these, ends with `_` + one of these, or equals one with the underscores removed (`passWord`,
/// `apikey`, `sessionid`).
pub const SECRET_KEY_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "passcode",
    "secret",
    "client_secret",
    "secret_key",
    "secret_access_key",
    "access_key_secret",
    "signing_key",
    "encryption_key",
    "master_key",
    "private_key",
    "token",
    "access_token",
    "refresh_token",
    "auth_token",
    "session_token",
    "api_key",
    "api_token",
    "authorization",
    "cookie",
    "set_cookie",
    "credential",
    "credentials",
    "session_id",
    "session_key",
    "card_number",
    "cc_number",
    "credit_card",
    "cvv",
    "cvc",
    "pin",
    "pin_code",
    "otp",
    "mfa_code",
    "jwt",
    "id_token",
    "subscription_key",
    "authentication",
    "x_session",
    "session_secret",
];

/// Secret words that name a secret as a key but say nothing inside a longer field name
/// (`max_sessions`, `authentication_type`): left out of [`mentions_secret`].
const KEY_ONLY_WORDS: &[&str] = &["x_session", "authentication"];

/// Keys that are secrets only as the whole name (as a suffix they name counts or other things:
/// `max_tokens`, `company`, `japan`).
const EXACT_KEYS: &[&str] = &["tokens", "card", "pan"];

/// Secret words that also name a secret at the *start* of a key, when the next word says it
/// is another copy of the value (`password_confirmation`, `passwordRepeat`).
const PREFIX_WORDS: &[&str] = &["password", "passwd", "passphrase", "pwd", "secret", "pin"];
const COPY_WORDS: &[&str] = &[
    "confirmation",
    "confirm",
    "confirmed",
    "repeat",
    "repeated",
    "again",
    "verify",
    "verification",
    "check",
    "plain",
    "plaintext",
    "value",
    "text",
    "input",
    "new",
    "old",
    "current",
    "1",
    "2",
];

/// What a secret key holds, which decides whether a number under it is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// A token: a number or boolean under it is a count or a flag, kept.
    Token,
    /// Anything else: every non-null value is a secret (a PIN or card as a JSON number too).
    Value,
}

/// `clientSecret` / `X-Api-Key` / `passWord` / `XApiKey` → `client_secret` / `x_api_key` /
/// `pass_word` / `x_api_key`.
pub fn snake(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let mut out = String::with_capacity(key.len() + 4);
    let mut prev_lower = false;
    for (i, &c) in chars.iter().enumerate() {
        if c == '-' || c == ' ' || c == '.' {
            out.push('_');
            prev_lower = false;
        } else if c.is_ascii_uppercase() {
            // A word starts at an upper-case letter after a lower-case one (`apiKey`), or at the
            // last capital of a run followed by a lower-case letter (`XApiKey`, `HTTPServer`).
            let prev_upper = i > 0 && chars[i - 1].is_ascii_uppercase();
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if (prev_lower || (prev_upper && next_lower)) && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else {
            out.push(c);
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        }
    }
    out
}

fn compact(s: &str) -> String {
    s.chars().filter(|c| *c != '_').collect()
}

/// Whether `key` names a secret under `words` (snake-case words) plus the built-in list.
pub fn secret_key_kind_with(key: &str, extra: &[String]) -> Option<SecretKind> {
    let s = snake(key);
    let c = compact(&s);
    let matches = |w: &str| s == w || s.ends_with(&format!("_{w}")) || c == compact(w);
    let hit = SECRET_KEY_WORDS
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
        .find(|w| matches(w))
        .or_else(|| EXACT_KEYS.iter().copied().find(|w| s == *w))
        .or_else(|| {
            let mut words = s.split('_').filter(|w| !w.is_empty());
            let first = words.next()?;
            let second = words.next()?;
            (PREFIX_WORDS.contains(&first) && COPY_WORDS.contains(&second)).then_some("password")
        });
    hit.map(|w| {
        if w == "token" || w == "tokens" {
            SecretKind::Token
        } else {
            SecretKind::Value
        }
    })
}

/// Whether `key` names a secret (`password`, `new_password`, `passWord`, `X-Api-Key`,
/// `aws_secret_access_key`; not `token_type`, `max_tokens`, `password_policy`).
pub fn is_secret_key(key: &str) -> bool {
    secret_key_kind_with(key, &[]).is_some()
}

/// Whether `field` mentions a secret word anywhere (`password_hash`, `tokenValue`): looser than
/// [`is_secret_key`], for deciding what an API will not give back.
pub fn mentions_secret(field: &str) -> bool {
    let s = snake(field);
    let c = compact(&s);
    SECRET_KEY_WORDS
        .iter()
        .filter(|w| w.len() > 3 && !KEY_ONLY_WORDS.contains(w))
        .any(|w| s.contains(*w) || c.contains(&compact(w)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_only_words_are_not_mentions() {
        assert!(is_secret_key("X-Session") && is_secret_key("Authentication"));
        for f in [
            "max_sessions",
            "authentication_type",
            "requires_authentication",
        ] {
            assert!(!mentions_secret(f), "{f}");
        }
        assert!(mentions_secret("password_hash"));
    }

    #[test]
    fn secret_keys() {
        for k in [
            "password",
            "passWord",
            "new_password",
            "DB_PASSWORD",
            "pwd",
            "secretKey",
            "secret_key",
            "aws_secret_access_key",
            "AWS_SECRET_ACCESS_KEY",
            "X-Api-Key",
            "apiKey",
            "access_token",
            "tokens",
            "session_id",
            "sessionId",
            "sessionid",
            "Set-Cookie",
            "cardNumber",
            "card",
            "cvv",
            "XApiKey",
            "password_confirmation",
            "passwordRepeat",
            "secret_value",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in [
            "token_type",
            "token_count",
            "max_tokens",
            "prompt_tokens",
            "tokenizer",
            "password_policy",
            "password_reset_sent",
            "password_length",
            "secret_santa",
            "session",
            "keyboard",
            "monkey",
            "key",
            "company",
            "japan",
            "spinner",
            "title",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
        assert_eq!(
            secret_key_kind_with("access_token", &[]),
            Some(SecretKind::Token)
        );
        assert_eq!(secret_key_kind_with("pin", &[]), Some(SecretKind::Value));
        // A flag about a secret is under a secret name; the redactor keeps booleans.
        assert!(is_secret_key("has_password"));
        assert!(secret_key_kind_with("ssn", &["ssn".into()]).is_some());
        assert_eq!(snake("XApiKey"), "x_api_key");
        assert_eq!(snake("HTTPServer"), "http_server");
        assert_eq!(snake("apiKey"), "api_key");
        assert_eq!(snake("X-API-KEY"), "x_api_key");
        assert!(mentions_secret("password_hash"));
        assert!(mentions_secret("privateKey"));
        assert!(!mentions_secret("name"));
    }
}
