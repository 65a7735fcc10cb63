//! Redaction: secrets are removed before anything is written (audit log, journal, logs, error
//! texts, reports).
//!
//! Three nets:
//! - object keys that name a secret (the one list, [`aifirst_capability::secret`]: `password`,
//!   `passWord`, `pwd`, `secret_key`, `aws_secret_access_key`, `x-api-key`, `session_id`,
//!   `tokens`, …) have their whole value replaced — numbers too, except counts under token keys;
//! - header pairs inside arrays (`{"name": "Authorization", "value": …}`, `["Cookie", …]`) have
//!   their value replaced;
//! - text is scanned for secret shapes: bearer, basic and token credentials, `key=value` and
//!   `key: value` with a secret key, URL credentials (`user:pass@`, `?token=`), PEM private keys
//!   (also without their END line), JWTs, and the token formats of AWS, GitHub, GitLab, Slack,
//!   Stripe, OpenAI, Anthropic, Google, npm, PyPI, Hugging Face, SendGrid, Twilio, DigitalOcean,
//!   Shopify and Azure, and card numbers that pass the Luhn check.
//!
//! `runtime/tests/redact_corpus.rs` holds the rules to a corpus of secret shapes that must go and
//! look-alikes (ids, hashes, UUIDs, base64 images, prose) that must stay.

use aifirst_capability::secret::{secret_key_kind_with, SecretKind};
use regex::Regex;
use serde::Serialize;
use serde_json::{Map, Value};

/// What redacted content is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// A string longer than this is kept as a prefix, its length and its hash in records.
pub const MAX_RECORDED_STRING: usize = 4 * 1024;

/// A string longer than this is kept as a prefix, its length and its hash in the journal's copy
/// of a file-snapshot step's arguments and result: that step is undone from its manifest, so
/// the copy is for `history` only (the audit log keeps the record, under
/// [`MAX_RECORDED_STRING`]). Kept short so the step's row fits one page and completing it
/// rewrites no overflow chain. Other steps keep [`MAX_RECORDED_STRING`]: an interrupted one may
/// be rebuilt from its arguments.
pub const MAX_JOURNALED_STRING: usize = 1024;

/// A value whose JSON is longer than this is kept as a prefix, its length and its hash.
pub const MAX_RECORDED_VALUE: usize = 64 * 1024;

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `v` with each string over `max` bytes replaced by its first 256 bytes, its length and its
/// SHA-256.
fn cap_strings(v: Value, max: usize) -> Value {
    match v {
        Value::String(s) if s.len() > max => Value::String(format!(
            "{}…[truncated: {} bytes, sha256 {}]",
            prefix(&s, 256.min(max)),
            s.len(),
            sha256_hex(s.as_bytes())
        )),
        Value::Array(a) => Value::Array(a.into_iter().map(|v| cap_strings(v, max)).collect()),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k, cap_strings(v, max)))
                .collect(),
        ),
        other => other,
    }
}

/// What a record keeps of a value whose text is over [`MAX_RECORDED_VALUE`].
fn truncated(text: &str) -> Value {
    serde_json::json!({"$truncated": {
        "bytes": text.len(),
        "sha256": sha256_hex(text.as_bytes()),
        "prefix": prefix(text, 1024),
    }})
}

/// Whether `v`'s JSON text is at most `max` bytes, found without writing it (and without
/// walking past `max`).
fn text_len_at_most(v: &Value, max: usize) -> bool {
    struct Count {
        n: usize,
        max: usize,
    }
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.n += buf.len();
            if self.n > self.max {
                return Err(std::io::Error::other("long"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(&mut Count { n: 0, max }, v).is_ok()
}

fn prefix(text: &str, max: usize) -> &str {
    let mut cut = max.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

/// A check on what a pattern matched, beyond its shape.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Check {
    None,
    /// Digits that must pass the Luhn check.
    Luhn,
    /// Base64 of `user:password`.
    BasicCredentials,
    /// A token with a digit, or mixed case or symbols, or 20 characters or more (so
    /// `Bearer authentication` stays prose).
    TokenLike,
}

/// Names and shapes of secret values. A group named `pre` (and `post`) is kept around the
/// secret; without them the whole match goes. Where a pattern captures `secret`, only that is
/// judged by the check.
const PATTERNS: &[(&str, &str, Check)] = &[
    (
        "pem_private_key",
        r"-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s:,.\\-]*)",
        Check::None,
    ),
    (
        "bearer_token",
        r"(?i)(?P<pre>\b(?:bearer|token)\s+)(?P<secret>[A-Za-z0-9._~+/=-]{8,})",
        Check::TokenLike,
    ),
    (
        "basic_credentials",
        r"(?i)(?P<pre>\bbasic\s+)(?P<secret>[A-Za-z0-9+/]{6,}={0,2})",
        Check::BasicCredentials,
    ),
    (
        "jwt",
        r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}",
        Check::None,
    ),
    (
        "aws_access_key",
        r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",
        Check::None,
    ),
    (
        "github_token",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})",
        Check::None,
    ),
    ("gitlab_token", r"\bglpat-[A-Za-z0-9_-]{20,}", Check::None),
    (
        "slack_token",
        r"\b(?:xox[abprse]|xapp)-[A-Za-z0-9-]{10,}",
        Check::None,
    ),
    (
        "discord_webhook",
        r"https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]+/[A-Za-z0-9_-]+",
        Check::None,
    ),
    (
        "stripe_webhook_secret",
        r"\bwhsec_[A-Za-z0-9+/=]{20,}",
        Check::None,
    ),
    (
        "telegram_bot_token",
        r"[0-9]{8,10}:AA[A-Za-z0-9_-]{30,}",
        Check::None,
    ),
    (
        "slack_webhook",
        r"https://hooks\.slack\.com/services/[A-Za-z0-9/]+",
        Check::None,
    ),
    (
        "stripe_key",
        r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}",
        Check::None,
    ),
    (
        "openai_or_anthropic_key",
        r"\bsk-(?:proj-|svcacct-|admin-|ant-[a-z0-9]+-)?[A-Za-z0-9_-]{32,}",
        Check::None,
    ),
    ("google_api_key", r"\bAIza[0-9A-Za-z_-]{35}", Check::None),
    (
        "google_oauth_token",
        r"\bya29\.[0-9A-Za-z_-]{20,}",
        Check::None,
    ),
    ("npm_token", r"\bnpm_[A-Za-z0-9]{36}\b", Check::None),
    (
        "pypi_token",
        r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}",
        Check::None,
    ),
    ("huggingface_token", r"\bhf_[A-Za-z0-9]{34}\b", Check::None),
    (
        "sendgrid_key",
        r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}",
        Check::None,
    ),
    ("twilio_key", r"\bSK[0-9a-f]{32}\b", Check::None),
    (
        "digitalocean_token",
        r"\bdo[opr]_v1_[0-9a-f]{64}\b",
        Check::None,
    ),
    (
        "shopify_token",
        r"\bshp(?:at|ss|ca|pa)_[0-9a-fA-F]{32}\b",
        Check::None,
    ),
    (
        "azure_account_key",
        r"(?P<pre>AccountKey=)[A-Za-z0-9+/=]{20,}",
        Check::None,
    ),
    (
        "url_credentials",
        // Up to the last `@` before the host: a password may contain `@`.
        r"(?P<pre>://[^/\s:@]*:)[^\s/?#]+(?P<post>@)",
        Check::None,
    ),
    (
        "url_secret_parameter",
        // Also inside a percent-encoded URL (a redirect target in a parameter): `%3Fapi_key%3D…`.
        r#"(?i)(?P<pre>(?:[?&#;]|%3F|%26|%23|%3B)(?:token|access_token|id_token|refresh_token|auth_token|api_key|apikey|key|password|passwd|secret|client_secret|client_assertion|assertion|sig|signature|auth|session|session_id|sessionid|jwt|code|otp|x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential)(?:=|%3D))[^&\s#"']+"#,
        Check::None,
    ),
    (
        "secret_assignment",
        r#"(?i)(?P<pre>\b[A-Za-z0-9_.-]*(?:password|passwd|pwd|passphrase|secret|secret_access_key|secret_key|card_number|api_key|api-key|apikey|access_token|refresh_token|auth_token|token|authtoken)["']?\s*[:=]\s*)(?P<q>["'])(?P<secret>[^"'\r\n]{1,200})["']"#,
        Check::None,
    ),
    (
        "secret_assignment",
        r#"(?i)(?P<pre>\b[A-Za-z0-9_.-]*(?:password|passwd|pwd|passphrase|secret|secret_access_key|secret_key|card_number|api_key|api-key|apikey|access_token|refresh_token|auth_token|token|authtoken)["']?\s*[:=]\s*)[^\s"',;&=\[][^\s"',;&]*"#,
        Check::None,
    ),
    (
        "secret_header",
        r"(?i)(?P<pre>\b(?:x-api-key|api-key|ocp-apim-subscription-key|private-token|authentication|x-session[a-z-]*|x-[a-z-]*(?:access|auth|api)-token|x-[a-z-]*(?:-key|-secret|-signature)|(?:set-)?cookie)[ \t]*:[ \t]*)[^\r\n]+",
        Check::None,
    ),
    (
        "secret_flag",
        r"(?i)(?P<pre>--(?:access-token|token|password|api-key|secret)[ =])\S+",
        Check::None,
    ),
    (
        "card_number",
        r"\b\d{4}(?:[ -]\d{4}){2}(?:[ -]\d{4}[ -]\d{3}|[ -]\d{1,7})\b|\b\d{4}[ -]\d{6}[ -]\d{5}\b",
        Check::Luhn,
    ),
    // A bare run of digits is a card only when the words before it say so ("card", "visa", …).
    (
        "card_number",
        r"(?i)(?P<pre>(?:\b|_)(?:card|credit|debit|visa|mastercard|amex|cc)\b[^0-9\n]{0,20})(?P<secret>\d{13,19})\b",
        Check::Luhn,
    ),
];

/// Text at least this long is first scanned with [`builtin_set`].
const SET_FROM: usize = 512;

/// The built-in patterns as one set, in [`PATTERNS`]' order (compiled on first use). `None` if
/// they do not compile as a set, or if one of them did not compile alone (indexes would differ):
/// then each pattern is asked in turn.
fn builtin_set() -> Option<&'static regex::RegexSet> {
    static SET: std::sync::OnceLock<Option<regex::RegexSet>> = std::sync::OnceLock::new();
    SET.get_or_init(|| {
        if builtin().len() != PATTERNS.len() {
            return None;
        }
        regex::RegexSet::new(PATTERNS.iter().map(|(_, p, _)| *p)).ok()
    })
    .as_ref()
}

/// The built-in patterns, compiled once per process.
fn builtin() -> &'static [(String, Regex, Check)] {
    static COMPILED: std::sync::OnceLock<Vec<(String, Regex, Check)>> = std::sync::OnceLock::new();
    COMPILED.get_or_init(|| {
        PATTERNS
            .iter()
            .filter_map(|(n, p, c)| Regex::new(p).ok().map(|r| (n.to_string(), r, *c)))
            .collect()
    })
}

/// The redaction policy in force: shown in reports.
#[derive(Debug, Clone, Serialize)]
pub struct RedactionPolicy {
    pub keys: Vec<String>,
    pub patterns: Vec<String>,
}

/// Removes secrets from values and text. Two redactors are equal when they have the same rules
/// (then what one made, the other would make).
#[derive(Debug, Clone)]
pub struct Redactor {
    /// Extra secret key words (snake case), on top of the shared list.
    keys: Vec<String>,
    patterns: Vec<(String, Regex, Check)>,
}

impl PartialEq for Redactor {
    fn eq(&self, other: &Self) -> bool {
        self.keys == other.keys
            && self.patterns.len() == other.patterns.len()
            && self
                .patterns
                .iter()
                .zip(&other.patterns)
                .all(|((n1, r1, c1), (n2, r2, c2))| {
                    n1 == n2 && c1 == c2 && r1.as_str() == r2.as_str()
                })
    }
}

impl Default for Redactor {
    /// The built-in rules. Their patterns are compiled once per process (a `Regex` clone shares
    /// the compiled program): the engine and the audit log each make a redactor at start-up, and
    /// compiling some thirty patterns twice was most of a debug binary's start.
    fn default() -> Self {
        Redactor {
            keys: Vec::new(),
            patterns: builtin().to_vec(),
        }
    }
}

/// Decodes standard base64 (padding optional); `None` when it is not base64.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

fn passes(check: Check, secret: &str) -> bool {
    match check {
        Check::None => true,
        Check::Luhn => luhn(secret),
        Check::TokenLike => {
            // Judged without trailing punctuation: `The token requirements.` is prose.
            let b = secret
                .trim_end_matches(|c: char| ".,;:!?)".contains(c))
                .as_bytes();
            b.iter().any(u8::is_ascii_digit)
                || b.len() >= 20
                || b.iter().any(|c| b"._~+/=-".contains(c))
                // Mixed case past the first letter (`Authentication` is a word).
                || (b.iter().skip(1).any(u8::is_ascii_uppercase)
                    && b.iter().any(u8::is_ascii_lowercase))
        }
        Check::BasicCredentials => base64_decode(secret)
            .and_then(|b| String::from_utf8(b).ok())
            .is_some_and(|t| t.contains(':') && !t.chars().any(char::is_control)),
    }
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
        self.keys
            .push(aifirst_capability::secret::snake(key).to_ascii_lowercase());
        self
    }

    /// Also redacts values matching `pattern`.
    pub fn with_pattern(mut self, name: &str, pattern: &str) -> Result<Self, regex::Error> {
        self.patterns
            .push((name.to_string(), Regex::new(pattern)?, Check::None));
        Ok(self)
    }

    /// Also redacts this exact value wherever it appears (a configured header's secret).
    /// Values shorter than 4 characters are ignored: they would blank out ordinary text.
    pub fn with_secret(mut self, value: &str) -> Self {
        if value.chars().count() >= 4 {
            if let Ok(re) = Regex::new(&regex::escape(value)) {
                self.patterns
                    .push(("configured_secret".to_string(), re, Check::None));
            }
        }
        self
    }

    pub fn policy(&self) -> RedactionPolicy {
        let mut keys: Vec<String> = aifirst_capability::secret::SECRET_KEY_WORDS
            .iter()
            .map(|k| k.to_string())
            .collect();
        keys.extend(self.keys.iter().cloned());
        RedactionPolicy {
            keys,
            patterns: self.patterns.iter().map(|(n, _, _)| n.clone()).collect(),
        }
    }

    fn secret_key(&self, key: &str) -> Option<SecretKind> {
        secret_key_kind_with(key, &self.keys)
    }

    /// Whether the value under a secret key of `kind` is replaced.
    fn hides(kind: SecretKind, v: &Value) -> bool {
        match v {
            Value::Null => false,
            Value::Bool(_) => false,
            Value::Number(_) => kind == SecretKind::Value,
            _ => true,
        }
    }

    /// Text with every secret shape replaced.
    pub fn redact_text(&self, text: &str) -> String {
        self.redact_text_with(text, text.len() >= SET_FROM)
    }

    fn redact_text_with(&self, text: &str, use_set: bool) -> String {
        let mut out = text.to_string();
        // On longer text, one pass of the built-in patterns as a set says which of them match
        // (most text holds no secret, and some thirty scans of it were most of a call's
        // redaction); it is asked again whenever a replacement changed the text, so each pattern
        // still sees exactly the text it would see scanning one by one.
        let set = use_set.then(builtin_set).flatten();
        let mut hits = set.map(|s| s.matches(&out));
        for (i, (name, re, check)) in self.patterns.iter().enumerate() {
            let skip = match &hits {
                Some(h) if i < PATTERNS.len() => !h.matched(i),
                _ => !re.is_match(&out),
            };
            if skip {
                continue;
            }
            let replaced = re.replace_all(&out, |c: &regex::Captures<'_>| {
                let judged = c.name("secret").map(|m| m.as_str()).unwrap_or(&c[0]);
                if !passes(*check, judged) {
                    return c[0].to_string();
                }
                let pre = c.name("pre").map(|m| m.as_str()).unwrap_or("");
                let post = c.name("post").map(|m| m.as_str()).unwrap_or("");
                // A quoted value keeps its quotes.
                let (q1, q2) = match c.name("q") {
                    Some(q) => (q.as_str(), q.as_str()),
                    None => ("", ""),
                };
                format!("{pre}{q1}[REDACTED:{name}]{q2}{post}")
            });
            if let std::borrow::Cow::Owned(changed) = replaced {
                if changed != out {
                    out = changed;
                    hits = set.map(|s| s.matches(&out));
                }
            }
        }
        out
    }

    /// [`Redactor::redact`], then sized for a record (journal display copies, audit): a string
    /// over [`MAX_RECORDED_STRING`] bytes keeps a prefix, its length and its SHA-256; a value
    /// whose JSON is over [`MAX_RECORDED_VALUE`] becomes `{"$truncated": {bytes, sha256,
    /// prefix}}`. Never used on what an undo needs.
    pub fn redact_for_record(&self, v: &Value) -> Value {
        let capped = cap_strings(self.redact(v), MAX_RECORDED_STRING);
        if text_len_at_most(&capped, MAX_RECORDED_VALUE) {
            return capped;
        }
        truncated(&capped.to_string())
    }

    /// [`Redactor::redact_for_record`] as JSON text (what the journal and the audit log store),
    /// serialised once.
    pub fn record_text(&self, v: &Value) -> String {
        Redactor::record_text_of(self.redact(v), MAX_RECORDED_STRING)
    }

    /// The record text of a value already redacted ([`Redactor::redact`]), its strings over
    /// `max_string` bytes kept as a prefix, their length and hash: one redaction can serve
    /// records that keep more or less of it.
    pub fn record_text_of(redacted: Value, max_string: usize) -> String {
        let text = cap_strings(redacted, max_string).to_string();
        if text.len() > MAX_RECORDED_VALUE {
            return truncated(&text).to_string();
        }
        text
    }

    /// `--token`, `-password`, `--client-secret`: a flag whose value, the next argument, is a
    /// secret (`--token=…` in one argument is a pattern of text).
    fn secret_flag(&self, arg: &str) -> bool {
        let name = arg.trim_start_matches('-');
        // `--no-password`, `--ask-password`: a switch, whose next argument is no secret.
        let switch = ["no-", "no_", "ask-", "ask_"]
            .iter()
            .any(|p| name.to_ascii_lowercase().starts_with(p));
        arg.starts_with('-')
            && !name.is_empty()
            && !arg.contains('=')
            && !switch
            && self.secret_key(name).is_some()
    }

    /// A value with secret keys' values, header pairs' values and secret-shaped strings
    /// replaced.
    pub fn redact(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.redact_text(s)),
            Value::Array(items) => {
                // `["Authorization", "Bearer …"]`: a header as a pair.
                if let [Value::String(name), Value::String(_)] = items.as_slice() {
                    if self.secret_key(name).is_some() {
                        return Value::Array(vec![
                            Value::String(name.clone()),
                            Value::String(REDACTED.into()),
                        ]);
                    }
                }
                // `["--token", "…"]`: a command line's flag naming a secret, then its value.
                let mut out = Vec::with_capacity(items.len());
                let mut hide_next = false;
                for item in items {
                    if std::mem::take(&mut hide_next) && item.is_string() {
                        out.push(Value::String(REDACTED.into()));
                        continue;
                    }
                    hide_next = item.as_str().is_some_and(|s| self.secret_flag(s));
                    out.push(self.redact(item));
                }
                Value::Array(out)
            }
            Value::Object(map) => {
                // `{"name": "X-Api-Key", "value": …}`: a header (or variable) as an object.
                let pair_secret = ["name", "key", "header"].iter().any(|f| {
                    map.get(*f)
                        .and_then(Value::as_str)
                        .is_some_and(|n| self.secret_key(n).is_some())
                });
                let out: Map<String, Value> = map
                    .iter()
                    .map(|(k, v)| {
                        let hide = match self.secret_key(k) {
                            Some(kind) => Self::hides(kind, v),
                            None => pair_secret && k == "value" && !v.is_null(),
                        };
                        let v = if hide {
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
    /// Equal rules, equal redactors: the engine's redaction is reused only by a log with the
    /// same rules.
    #[test]
    fn redactors_are_equal_when_their_rules_are() {
        assert_eq!(Redactor::default(), Redactor::default());
        assert_ne!(Redactor::default(), Redactor::default().with_key("pin"));
        assert_ne!(
            Redactor::default(),
            Redactor::default().with_secret("s3cr3t-value")
        );
        assert_eq!(
            Redactor::default().with_pattern("x", "a+").unwrap(),
            Redactor::default().with_pattern("x", "a+").unwrap()
        );
        assert_ne!(
            Redactor::default().with_pattern("x", "a+").unwrap(),
            Redactor::default().with_pattern("x", "b+").unwrap()
        );
    }

    /// One redaction, two records: the journal's copy keeps less of a long string than the
    /// audit log's, and both are what `redact_for_record` would keep under their limits.
    #[test]
    fn record_texts_cut_long_strings_at_their_limit() {
        let r = Redactor::default();
        let long = format!("token=abcdefghijklmnop {}", "z".repeat(2000));
        let v = serde_json::json!({"a": long, "n": 1});
        let red = r.redact(&v);
        let audit: Value =
            serde_json::from_str(&Redactor::record_text_of(red.clone(), MAX_RECORDED_STRING))
                .unwrap();
        assert_eq!(audit, r.redact_for_record(&v));
        assert!(!audit["a"].as_str().unwrap().contains("abcdefghijklmnop"));
        let journal: Value =
            serde_json::from_str(&Redactor::record_text_of(red, MAX_JOURNALED_STRING)).unwrap();
        let a = journal["a"].as_str().unwrap();
        assert!(a.contains("[truncated: ") && a.len() < 512, "{a}");
        assert!(!a.contains("abcdefghijklmnop"), "{a}");
        assert_eq!(journal["n"], 1);
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn keys_and_shapes() {
        let r = Redactor::default();
        let v = r.redact(&json!({
            "password": "hunter2", "new_password": "x", "X-Api-Key": "k", "access_token": "t",
            "token_type": "bearer", "title": "ok", "clientSecret": "s",
            "note": "call with Bearer abcd1234efgh5678 please", "prose": "Bearer authentication (RFC 6750) and Token Authentication",
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
        assert_eq!(v["note"], "call with Bearer [REDACTED:bearer_token] please");
        assert_eq!(
            v["prose"], "Bearer authentication (RFC 6750) and Token Authentication",
            "words, not tokens"
        );
        assert_eq!(v["card"], REDACTED, "a secret key");
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
    fn large_values_are_capped_for_records_after_redaction() {
        let r = Redactor::default();
        let big = "x".repeat(4_000_000);
        let v = r.redact_for_record(&json!({"content": big, "password": "hunter2", "n": 1}));
        let text = v.to_string();
        assert!(text.len() < 2_000, "{}", text.len());
        assert!(text.contains("truncated: 4000000 bytes, sha256 "));
        assert_eq!(v["password"], REDACTED);
        assert_eq!(v["n"], 1);
        // Many small strings: the whole value is summarised.
        let many: Vec<String> = (0..20_000).map(|i| format!("item-{i}")).collect();
        let v = r.redact_for_record(&json!(many));
        assert!(v["$truncated"]["bytes"].as_u64().unwrap() > 100_000);
        // Small values are untouched.
        assert_eq!(r.redact_for_record(&json!({"a": "b"})), json!({"a": "b"}));
    }

    #[test]
    fn luhn_check() {
        assert!(luhn("4111111111111111"));
        assert!(luhn("5500-0000-0000-0004"));
        assert!(!luhn("4111111111111112"));
        assert!(!luhn("1234"));
    }

    /// Every string leaf of a value.
    fn strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::String(s) => out.push(s),
            Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
            Value::Object(m) => m.values().for_each(|x| strings(x, out)),
            _ => {}
        }
    }

    /// Long text is first scanned with the built-in patterns as one set: on every corpus string
    /// (secret or look-alike), alone and inside long text, the result is what the patterns give
    /// one by one.
    #[test]
    fn the_set_scan_gives_what_the_patterns_give_one_by_one() {
        let r = Redactor::default();
        assert!(
            builtin_set().is_some(),
            "the built-in patterns compile as a set"
        );
        let pad = "lorem ipsum dolor sit amet, consectetur adipiscing elit\n".repeat(12);
        let corpus = [
            include_str!("../tests/data/secrets.jsonl"),
            include_str!("../tests/data/lookalikes.jsonl"),
        ];
        let mut seen = 0;
        let mut redacted = 0;
        for line in corpus.iter().flat_map(|c| c.lines()) {
            if line.trim().is_empty() {
                continue;
            }
            let case: Value = serde_json::from_str(line).unwrap();
            let mut leaves = Vec::new();
            strings(&case["input"], &mut leaves);
            for s in leaves {
                for text in [
                    s.to_string(),
                    format!("{pad}{s}\n{pad}"),
                    format!("{s} {s}"),
                ] {
                    seen += 1;
                    let one_by_one = r.redact_text_with(&text, false);
                    assert_eq!(
                        r.redact_text_with(&text, true),
                        one_by_one,
                        "{}",
                        case["name"]
                    );
                    redacted += usize::from(one_by_one != text);
                }
            }
        }
        assert!(
            seen >= 900 && redacted >= 300,
            "{seen} texts, {redacted} redacted"
        );
    }
}

#[cfg(test)]
mod probe_gaps {
    use super::*;
    use serde_json::json;

    /// What a fault probe found in clear in the audit log.
    #[test]
    fn query_parameters_headers_encoded_urls_and_flag_values() {
        let r = Redactor::default();
        let url = "http://127.0.0.1:8701/echo?auth=A1secret&session=S1secret&jwt=J1secret&code=C1secret&X-Amz-Signature=fe5f0123456789abcdef&page=2";
        let out = r.redact_text(url);
        for s in [
            "A1secret",
            "S1secret",
            "J1secret",
            "C1secret",
            "fe5f0123456789abcdef",
        ] {
            assert!(!out.contains(s), "{s}: {out}");
        }
        assert!(out.contains("page=2"), "{out}");
        let nested = "http://h/login?to=%2F%3Fapi_key%3DTOKNESTED1%26sig%3DSIGNESTED2";
        let out = r.redact_text(nested);
        assert!(
            !out.contains("TOKNESTED1") && !out.contains("SIGNESTED2"),
            "{out}"
        );
        let headers = r.redact(&json!({"headers": {
            "Ocp-Apim-Subscription-Key": "0123456789abcdef",
            "Authentication": "X-secret-auth",
            "X-Session": "sess-secret",
            "Accept": "text/html"
        }}));
        let text = headers.to_string();
        for s in ["0123456789abcdef", "X-secret-auth", "sess-secret"] {
            assert!(!text.contains(s), "{s}: {text}");
        }
        assert!(text.contains("text/html"), "{text}");
        let raw = "Authentication: X-secret-auth\nX-Session-Id: sess-secret\nX-Goog-Api-Key: k123";
        let out = r.redact_text(raw);
        assert!(
            !out.contains("X-secret-auth") && !out.contains("sess-secret"),
            "{out}"
        );
        let args = r.redact(&json!({"program": "curl", "args": [
            "--token", "TOKARG_555666", "--max-tokens", "100", "-H", "Accept: x", "--password", "hunter2x"
        ]}));
        let text = args.to_string();
        assert!(
            !text.contains("TOKARG_555666") && !text.contains("hunter2x"),
            "{text}"
        );
        assert!(
            text.contains("\"100\"") && text.contains("Accept: x"),
            "{text}"
        );
        let args = r.redact(&json!([
            "--no-password",
            "file.txt",
            "--ask-password",
            "host"
        ]));
        assert_eq!(
            args,
            json!(["--no-password", "file.txt", "--ask-password", "host"])
        );
        // A header's value ends at the line's end: the next line is kept.
        let yaml = r.redact_text("authentication:\n  type: none\n");
        assert!(yaml.contains("type: none"), "{yaml}");
    }
}
