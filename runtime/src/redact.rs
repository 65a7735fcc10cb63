//! Redaction: secrets are removed before anything is written (audit log, journal, logs).
//!
//! Two nets: object keys that name a secret (`password`, `api_key`, `authorization`, …) have their
//! whole value replaced; string values are scanned for secret shapes (bearer tokens, JWTs, AWS
//! keys, GitHub/Slack/Stripe tokens, PEM private keys, card numbers that pass the Luhn check).

use regex::Regex;
use serde::Serialize;
use serde_json::{Map, Value};

/// What redacted content is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Keys whose value is always a secret (matched on the end of the normalised key, so `new_password`,
/// `access_token`, `x-api-key` count; `token_type` does not).
const SECRET_KEYS: [&str; 16] = [
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
    "private_key",
    "credential",
    "credentials",
    "passphrase",
    // Card numbers are redacted by key (any value, numbers too) or by formatting (groups of
    // digits split by spaces or dashes), never as a bare run of digits: 13–19 digit ids
    // (snowflakes, order numbers) pass the Luhn check one time in ten and must survive.
    "card_number",
    "cardnumber",
    "credit_card",
    "pan",
];

/// Names and shapes of secret values.
const PATTERNS: [(&str, &str); 9] = [
    ("bearer_token", r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"),
    (
        "jwt",
        r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}",
    ),
    ("aws_access_key", r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    (
        "github_token",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})",
    ),
    ("slack_token", r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    ("stripe_key", r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}"),
    (
        "pem_private_key",
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
    ),
    (
        "card_number",
        r"\b\d{4}(?:[ -]\d{4}){2}[ -]\d{1,7}\b|\b\d{4}[ -]\d{6}[ -]\d{5}\b",
    ),
    // A bare run of digits is a card only when the words before it say so ("card", "visa", …).
    (
        "card_number",
        r"(?i)(\b(?:card|credit|debit|visa|mastercard|amex|cc)\b[^0-9\n]{0,20})(\d{13,19})\b",
    ),
];

/// The redaction policy in force: shown in reports.
#[derive(Debug, Clone, Serialize)]
pub struct RedactionPolicy {
    pub keys: Vec<String>,
    pub patterns: Vec<String>,
}

/// Removes secrets from values and text.
#[derive(Debug, Clone)]
pub struct Redactor {
    keys: Vec<String>,
    patterns: Vec<(String, Regex)>,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor {
            keys: SECRET_KEYS.iter().map(|k| k.to_string()).collect(),
            patterns: PATTERNS
                .iter()
                .filter_map(|(n, p)| Regex::new(p).ok().map(|r| (n.to_string(), r)))
                .collect(),
        }
    }
}

/// `clientSecret` / `X-Api-Key` → `client_secret` / `x_api_key`.
fn snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    let mut prev_lower = false;
    for c in key.chars() {
        if c == '-' || c == ' ' || c == '.' {
            out.push('_');
            prev_lower = false;
        } else if c.is_ascii_uppercase() {
            if prev_lower {
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

fn luhn(digits: &str) -> bool {
    let ds: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&ds.len()) {
        return false;
    }
    let sum: u32 = ds
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

impl Redactor {
    /// Also treats keys named `key` (or ending in `_key`) as secrets.
    pub fn with_key(mut self, key: &str) -> Self {
        self.keys.push(snake(key));
        self
    }

    /// Also redacts values matching `pattern`.
    pub fn with_pattern(mut self, name: &str, pattern: &str) -> Result<Self, regex::Error> {
        self.patterns.push((name.to_string(), Regex::new(pattern)?));
        Ok(self)
    }

    /// Also redacts this exact value wherever it appears (a configured header's secret).
    /// Values shorter than 4 characters are ignored: they would blank out ordinary text.
    pub fn with_secret(mut self, value: &str) -> Self {
        if value.chars().count() >= 4 {
            if let Ok(re) = Regex::new(&regex::escape(value)) {
                self.patterns.push(("configured_secret".to_string(), re));
            }
        }
        self
    }

    pub fn policy(&self) -> RedactionPolicy {
        RedactionPolicy {
            keys: self.keys.clone(),
            patterns: self.patterns.iter().map(|(n, _)| n.clone()).collect(),
        }
    }

    fn secret_key(&self, key: &str) -> bool {
        let k = snake(key);
        self.keys
            .iter()
            .any(|s| k == *s || k.ends_with(&format!("_{s}")))
    }

    /// Text with every secret shape replaced.
    pub fn redact_text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (name, re) in &self.patterns {
            if !re.is_match(&out) {
                continue;
            }
            let replaced = re.replace_all(&out, |c: &regex::Captures<'_>| {
                // The card pattern in words keeps its words (group 1) and judges the digits.
                let (keep, m) = match (name == "card_number", c.get(1), c.get(2)) {
                    (true, Some(words), Some(digits)) => (words.as_str(), digits.as_str()),
                    _ => ("", &c[0]),
                };
                if name == "card_number" && !luhn(m) {
                    c[0].to_string()
                } else {
                    format!("{keep}[REDACTED:{name}]")
                }
            });
            out = replaced.into_owned();
        }
        out
    }

    /// A value with secret keys' values and secret-shaped strings replaced.
    pub fn redact(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.redact_text(s)),
            Value::Array(items) => Value::Array(items.iter().map(|i| self.redact(i)).collect()),
            Value::Object(map) => {
                let out: Map<String, Value> = map
                    .iter()
                    .map(|(k, v)| {
                        let v = if self.secret_key(k) && !v.is_null() {
                            Value::String(REDACTED.into())
                        } else {
                            self.redact(v)
                        };
                        (k.clone(), v)
                    })
                    .collect();
                Value::Object(out)
            }
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_and_shapes() {
        let r = Redactor::default();
        let v = r.redact(&json!({
            "password": "hunter2", "new_password": "x", "X-Api-Key": "k", "access_token": "t",
            "token_type": "bearer", "title": "ok", "clientSecret": "s",
            "note": "call with Bearer abcdefghijklmnop please",
            "card": "4111 1111 1111 1111", "not_a_card": "4111 1111 1111 1112",
            "nested": [{"authorization": "Basic Zm9v"}]
        }));
        assert_eq!(v["password"], REDACTED);
        assert_eq!(v["new_password"], REDACTED);
        assert_eq!(v["X-Api-Key"], REDACTED);
        assert_eq!(v["access_token"], REDACTED);
        assert_eq!(v["token_type"], "bearer", "not a secret key");
        assert_eq!(v["clientSecret"], REDACTED);
        assert_eq!(v["title"], "ok");
        assert_eq!(v["note"], "call with [REDACTED:bearer_token] please");
        assert_eq!(v["card"], "[REDACTED:card_number]");
        assert_eq!(v["not_a_card"], "4111 1111 1111 1112", "fails Luhn");
        assert_eq!(v["nested"][0]["authorization"], REDACTED);
    }

    #[test]
    fn ids_that_pass_luhn_survive_but_cards_do_not() {
        let r = Redactor::default();
        // A snowflake id that passes the Luhn check, as text and as a number.
        let id = "1234567890123452";
        assert!(luhn(id));
        let v = r.redact(
            &json!({"id": id, "order": 1234567890123452u64, "note": format!("order {id}")}),
        );
        assert_eq!(v["id"], id);
        assert_eq!(v["order"], 1234567890123452u64);
        assert_eq!(v["note"], format!("order {id}"));
        // A card, by its key (even as a JSON number) or by its formatting.
        let v = r.redact(
            &json!({"card_number": 4111111111111111u64, "cardNumber": "4111111111111111",
            "text": "card 4111-1111-1111-1111 and amex 3782 822463 10005"}),
        );
        assert_eq!(v["card_number"], REDACTED);
        assert_eq!(v["cardNumber"], REDACTED);
        assert_eq!(
            v["text"],
            "card [REDACTED:card_number] and amex [REDACTED:card_number]"
        );
    }

    #[test]
    fn luhn_check() {
        assert!(luhn("4111111111111111"));
        assert!(luhn("5500-0000-0000-0004"));
        assert!(!luhn("4111111111111112"));
        assert!(!luhn("1234"));
    }
}
