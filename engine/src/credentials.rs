//! Exchange API credentials: read from the environment or from a file only its owner can
//! read, and never shown whole — the secret prints as `***`, the key as its first and last
//! four characters.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The environment variable holding the API key.
pub const KEY_VAR: &str = "AEGIS_API_KEY";
/// The environment variable holding the API secret (an HMAC key).
pub const SECRET_VAR: &str = "AEGIS_API_SECRET";
/// The environment variable naming an Ed25519 private key file (PEM), instead of a secret.
pub const PRIVATE_KEY_VAR: &str = "AEGIS_API_PRIVATE_KEY";

/// Where the credentials come from (`[exchange] keys`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// No credentials (paper trading needs none).
    None,
    /// [`KEY_VAR`] and [`SECRET_VAR`].
    Env,
    /// A TOML file with `key` and `secret`, mode 0600 (or stricter), owned by this user.
    File(PathBuf),
}

impl KeySource {
    /// `""` → none, `"env"` → the environment, anything else → a file path.
    pub fn from_setting(text: &str) -> Self {
        match text.trim() {
            "" => Self::None,
            "env" => Self::Env,
            path => Self::File(PathBuf::from(path)),
        }
    }
}

/// Why credentials could not be loaded; never contains the secret.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// An environment variable is unset or empty.
    #[error("exchange.keys = \"env\": {0} is not set")]
    MissingVar(&'static str),
    /// The key file cannot be read.
    #[error("exchange.keys: cannot read {path}: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key file is readable by others than its owner, or owned by someone else.
    #[error("exchange.keys: {path} is mode {mode:04o} owned by uid {owner}; it must be 0600 (or stricter) and owned by uid {uid} (chmod 600 {path})")]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// Its owner.
        owner: u32,
        /// This process's user.
        uid: u32,
    },
    /// The key file is not `key = "…"` and `secret = "…"`.
    #[error("exchange.keys: {path}: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the file's text).
        reason: String,
    },
}

/// A secret string: compared and used, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<str>);

impl Secret {
    /// The secret's text, for signing only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// HMAC-SHA256 of `payload` keyed with this secret, lowercase hex (Binance's HMAC
    /// signature).
    pub fn hmac_sha256_hex(&self, payload: &str) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, self.0.as_bytes());
        let tag = ring::hmac::sign(&key, payload.as_bytes());
        let mut hex = String::with_capacity(64);
        for byte in tag.as_ref() {
            hex.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
            hex.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
        }
        hex
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How requests are signed: Binance takes HMAC-SHA256 keys (a shared secret) and Ed25519
/// keys (the account holds the public key; the private key never leaves this host).
#[derive(Clone)]
enum Signing {
    Hmac(Secret),
    Ed25519(std::sync::Arc<ring::signature::Ed25519KeyPair>),
}

/// An API key and what signs its requests.
#[derive(Clone)]
pub struct ApiKey {
    key: Secret,
    signing: Signing,
    /// Where they were read from, for the log.
    pub origin: String,
}

impl PartialEq for ApiKey {
    fn eq(&self, other: &Self) -> bool {
        use ring::signature::KeyPair;
        self.key == other.key
            && match (&self.signing, &other.signing) {
                (Signing::Hmac(a), Signing::Hmac(b)) => a == b,
                (Signing::Ed25519(a), Signing::Ed25519(b)) => {
                    a.public_key().as_ref() == b.public_key().as_ref()
                }
                _ => false,
            }
    }
}

impl Eq for ApiKey {}

impl ApiKey {
    /// An HMAC key and secret from wherever the caller read them (`origin` names that for
    /// logs).
    pub fn new(key: &str, secret: &str, origin: &str) -> Self {
        api_key(key, secret, origin.to_string())
    }

    /// An Ed25519 key: `pem` is its private key (PKCS#8, `BEGIN PRIVATE KEY`, as OpenSSL
    /// writes it). The error says what is wrong, never the key.
    pub fn ed25519(key: &str, pem: &str, origin: &str) -> Result<Self, String> {
        let not_pem = || "the private key is not PEM (a BEGIN/END PRIVATE KEY block)".to_string();
        let der = match rustls_pemfile::private_key(&mut pem.as_bytes()) {
            Ok(Some(rustls::pki_types::PrivateKeyDer::Pkcs8(der))) => der,
            Ok(Some(_)) => return Err("the private key is not in PKCS#8 (BEGIN PRIVATE KEY)".into()),
            _ => return Err(not_pem()),
        };
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der.secret_pkcs8_der())
            .map_err(|_| "the private key is not an Ed25519 key in PKCS#8".to_string())?;
        Ok(Self {
            key: Secret(key.into()),
            signing: Signing::Ed25519(pair.into()),
            origin: origin.to_string(),
        })
    }

    /// The key as sent in `X-MBX-APIKEY` (and as `apiKey` on the WebSocket API).
    pub fn key(&self) -> &str {
        self.key.expose()
    }

    /// The HMAC secret, for a key that has one (an embedded simulator is told it).
    pub fn hmac_secret(&self) -> Option<&Secret> {
        match &self.signing {
            Signing::Hmac(s) => Some(s),
            Signing::Ed25519(_) => None,
        }
    }

    /// The Ed25519 public key (32 bytes), for a key that is one.
    pub fn ed25519_public(&self) -> Option<Vec<u8>> {
        use ring::signature::KeyPair;
        match &self.signing {
            Signing::Hmac(_) => None,
            Signing::Ed25519(pair) => Some(pair.public_key().as_ref().to_vec()),
        }
    }

    /// The signature of `payload` as Binance wants it: HMAC-SHA256 in lowercase hex, or
    /// Ed25519 in base64 (percent-encode it in a query string).
    pub fn sign(&self, payload: &str) -> String {
        use base64::Engine;
        match &self.signing {
            Signing::Hmac(secret) => secret.hmac_sha256_hex(payload),
            Signing::Ed25519(pair) => {
                base64::engine::general_purpose::STANDARD.encode(pair.sign(payload.as_bytes()).as_ref())
            }
        }
    }

    /// The key as logs may show it: first and last four characters.
    pub fn masked(&self) -> String {
        let k = self.key.expose();
        let chars: Vec<char> = k.chars().collect();
        if chars.len() <= 8 {
            return "*".repeat(chars.len());
        }
        let head: String = chars[..4].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}…{tail}")
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.hmac_secret().is_some() { "HMAC" } else { "Ed25519" };
        write!(f, "ApiKey({}, {kind} ***, from {})", self.masked(), self.origin)
    }
}

/// Loads the credentials `source` names; `Ok(None)` for [`KeySource::None`].
pub fn load(source: &KeySource) -> Result<Option<ApiKey>, CredentialsError> {
    match source {
        KeySource::None => Ok(None),
        KeySource::Env => {
            let var = |name: &'static str| {
                std::env::var(name)
                    .ok()
                    .filter(|v| !v.trim().is_empty())
                    .ok_or(CredentialsError::MissingVar(name))
            };
            let key = var(KEY_VAR)?;
            if let Ok(path) = var(PRIVATE_KEY_VAR) {
                return ed25519_from_file(key.trim(), Path::new(path.trim()), "the environment").map(Some);
            }
            let secret = var(SECRET_VAR)?;
            Ok(Some(api_key(key.trim(), secret.trim(), "the environment".into())))
        }
        KeySource::File(path) => from_file(path).map(Some),
    }
}

fn api_key(key: &str, secret: &str, origin: String) -> ApiKey {
    ApiKey { key: Secret(key.into()), signing: Signing::Hmac(Secret(secret.into())), origin }
}

/// The text of `path`, a file only its owner may read (a key file, a private key).
fn read_private(path: &Path) -> Result<String, CredentialsError> {
    let unreadable = |source| CredentialsError::Unreadable { path: path.to_path_buf(), source };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    let uid = own_uid();
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 || meta.uid() != uid {
        return Err(CredentialsError::Exposed { path: path.to_path_buf(), mode, owner: meta.uid(), uid });
    }
    std::fs::read_to_string(path).map_err(unreadable)
}

/// An Ed25519 key whose private key is the PEM file `path` (0600).
fn ed25519_from_file(key: &str, path: &Path, origin: &str) -> Result<ApiKey, CredentialsError> {
    let pem = read_private(path)?;
    ApiKey::ed25519(key, &pem, origin)
        .map_err(|reason| CredentialsError::Malformed { path: path.to_path_buf(), reason })
}

fn from_file(path: &Path) -> Result<ApiKey, CredentialsError> {
    let text = read_private(path)?;
    let malformed =
        |reason: &str| CredentialsError::Malformed { path: path.to_path_buf(), reason: reason.into() };
    // Parse errors from toml quote the offending line, which may hold the secret: report
    // only that the file is not valid.
    let table: toml::Table =
        text.parse().map_err(|_| malformed("not valid TOML (expected key = \"…\" and secret = \"…\")"))?;
    if let Some(extra) = table.keys().find(|k| !["key", "secret", "private_key"].contains(&k.as_str())) {
        return Err(malformed(&format!("unknown field {extra:?} (expected key, and secret or private_key)")));
    }
    let field = |name: &str| {
        table
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| malformed(&format!("{name} is missing or not a non-empty string")))
    };
    match (table.contains_key("secret"), table.contains_key("private_key")) {
        (true, true) => {
            Err(malformed("both secret and private_key: an API key is HMAC or Ed25519, not both"))
        }
        (false, true) => {
            // A relative private key path is read beside the key file.
            let pem = path.parent().unwrap_or(Path::new(".")).join(field("private_key")?);
            ed25519_from_file(field("key")?, &pem, &path.display().to_string())
        }
        _ => Ok(api_key(field("key")?, field("secret")?, path.display().to_string())),
    }
}

/// A secret for tests (documented example keys).
#[cfg(test)]
pub(crate) fn test_secret(text: &str) -> Secret {
    Secret(text.into())
}

/// This process's real user id.
pub fn own_uid() -> u32 {
    // The owner of /proc/self is the process's user; no libc call needed.
    std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn key_file(text: &str, mode: u32) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        (dir, path)
    }

    #[test]
    fn a_private_file_loads_and_never_prints_its_secret() {
        let (_dir, path) = key_file("key = \"AbCdEfGhIjKlMnOp\"\nsecret = \"s3cr3t-do-not-print\"\n", 0o600);
        let key = load(&KeySource::File(path)).unwrap().unwrap();
        assert_eq!(key.key(), "AbCdEfGhIjKlMnOp");
        assert_eq!(key.hmac_secret().unwrap().expose(), "s3cr3t-do-not-print");
        assert_eq!(key.masked(), "AbCd…MnOp");
        let shown = format!("{key:?} {:?}", key.hmac_secret());
        assert!(!shown.contains("s3cr3t") && !shown.contains("AbCdEfGhIjKlMnOp"), "{shown}");
    }

    /// A PKCS#8 Ed25519 private key in PEM, as OpenSSL writes one.
    pub(crate) fn ed25519_pem() -> String {
        use base64::Engine;
        let der = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        let body = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n")
    }

    #[test]
    fn an_ed25519_key_file_signs_what_its_public_key_verifies() {
        let (dir, path) = key_file("key = \"EdKeyAbCdEfGh\"\nprivate_key = \"ed25519.pem\"\n", 0o600);
        let pem_path = dir.path().join("ed25519.pem");
        std::fs::write(&pem_path, ed25519_pem()).unwrap();
        std::fs::set_permissions(&pem_path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let exposed = load(&KeySource::File(path.clone())).unwrap_err().to_string();
        assert!(
            exposed.contains("ed25519.pem") && exposed.contains("0644"),
            "the private key file is 0600 too: {exposed}"
        );
        std::fs::set_permissions(&pem_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let key = load(&KeySource::File(path.clone())).unwrap().unwrap();
        assert!(key.hmac_secret().is_none());
        let signature = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(key.sign("symbol=BTCUSDT&timestamp=1")).unwrap()
        };
        let public = key.ed25519_public().unwrap();
        let verifier = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &public);
        assert!(verifier.verify(b"symbol=BTCUSDT&timestamp=1", &signature).is_ok());
        assert!(verifier.verify(b"symbol=BTCUSDT&timestamp=2", &signature).is_err());
        assert!(format!("{key:?}").contains("Ed25519"));
        std::fs::write(&pem_path, "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
            .unwrap();
        let bad = load(&KeySource::File(path.clone())).unwrap_err().to_string();
        assert!(bad.contains("ed25519.pem") && bad.contains("not an Ed25519 key"), "{bad}");
        let (_d, both) = key_file("key = \"k\"\nsecret = \"s\"\nprivate_key = \"x.pem\"\n", 0o600);
        assert!(load(&KeySource::File(both)).unwrap_err().to_string().contains("not both"));
    }

    #[test]
    fn a_file_others_can_read_is_refused_with_its_mode() {
        for mode in [0o644, 0o640, 0o604, 0o660] {
            let (_dir, path) = key_file("key = \"k\"\nsecret = \"s\"\n", mode);
            let e = load(&KeySource::File(path.clone())).unwrap_err().to_string();
            assert!(e.contains(&format!("{mode:04o}")) && e.contains(&path.display().to_string()), "{e}");
        }
    }

    #[test]
    fn a_malformed_file_is_refused_without_quoting_it() {
        for text in [
            "key = \"k\"\nsecret = s3cr3t-unquoted\n",
            "key = \"k\"\n",
            "key = \"k\"\nsecret = \"x\"\npassword = \"s3cr3t\"\n",
        ] {
            let (_dir, path) = key_file(text, 0o600);
            let e = load(&KeySource::File(path)).unwrap_err().to_string();
            assert!(!e.contains("s3cr3t"), "{e}");
        }
    }

    #[test]
    fn settings_name_their_source() {
        assert_eq!(KeySource::from_setting(""), KeySource::None);
        assert_eq!(KeySource::from_setting("env"), KeySource::Env);
        assert_eq!(
            KeySource::from_setting("/etc/aegis/keys.toml"),
            KeySource::File("/etc/aegis/keys.toml".into())
        );
        assert!(load(&KeySource::None).unwrap().is_none());
    }
}
