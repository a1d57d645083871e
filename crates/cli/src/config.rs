//! The docker CLI's client configuration (`config.json`) and its
//! credentials: the plain-text `auths` map, credential helpers
//! (`credsStore`, `credHelpers`: `docker-credential-<name>` programs) and
//! the `X-Registry-Auth` header built from them.
//!
//! The file is shared with the docker CLI, so keys berth does not know are
//! kept as they are, and it is replaced atomically (it holds credentials: a
//! torn write would log the user out of every registry at once).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// The key docker stores Docker Hub credentials under.
pub const INDEX_SERVER: &str = "https://index.docker.io/v1/";

const CONFIG_FILE: &str = "config.json";
const HELPER_PREFIX: &str = "docker-credential-";
/// The user name helpers store identity tokens under.
const TOKEN_USERNAME: &str = "<token>";
const NOT_FOUND_MESSAGE: &str = "credentials not found in native keychain";

/// Registry credentials, as docker's `registry.AuthConfig`. Its JSON form is
/// both the body of `POST /auth` and the `X-Registry-Auth` payload.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct AuthConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub auth: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub email: String,
    #[serde(rename = "serveraddress", skip_serializing_if = "String::is_empty")]
    pub server_address: String,
    #[serde(rename = "identitytoken", skip_serializing_if = "String::is_empty")]
    pub identity_token: String,
    #[serde(rename = "registrytoken", skip_serializing_if = "String::is_empty")]
    pub registry_token: String,
}

impl AuthConfig {
    /// The `X-Registry-Auth` value: base64url (with padding, Go's
    /// `base64.URLEncoding`) of the JSON form; `e30=` for no credentials.
    pub fn encode_header(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        base64::engine::general_purpose::URL_SAFE.encode(json)
    }
}

/// The fields of one `auths` entry on disk.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FileEntry {
    username: String,
    password: String,
    auth: String,
    email: String,
    identitytoken: String,
    registrytoken: String,
}

/// What credential helpers exchange (docker-credential-helpers' `Credentials`).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct HelperCredentials {
    #[serde(rename = "ServerURL")]
    server_url: String,
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// The directory holding `config.json`: `--config`, then `$BERTH_CONFIG`,
/// `$DOCKER_CONFIG`, then `~/.docker`, as docker resolves it.
pub fn config_dir(flag: Option<&str>) -> PathBuf {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(dir) = flag.filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = env("BERTH_CONFIG").or_else(|| env("DOCKER_CONFIG")) {
        return PathBuf::from(dir);
    }
    env("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(".docker")
}

/// A loaded `config.json`.
#[derive(Debug)]
pub struct ConfigFile {
    path: PathBuf,
    /// The whole document; `auths` is rebuilt from [`ConfigFile::auths`] on save.
    doc: Map<String, Json>,
    /// Decoded `auths` entries, keyed by server address.
    auths: BTreeMap<String, AuthConfig>,
    /// Why the file could not be read; saving over it is then refused.
    load_error: Option<String>,
    /// The helper docker would pick when the file configures no credentials.
    default_store: Option<String>,
    /// Where helper programs are looked up (`$PATH` unless set).
    search_path: Option<OsString>,
    /// Whether the plain-text warning was printed already (docker prints it once).
    warned_plaintext: bool,
}

impl ConfigFile {
    /// Reads `<dir>/config.json`. A missing file is an empty configuration;
    /// an unreadable one is reported by [`ConfigFile::load_error`] and
    /// treated as empty, as docker does.
    pub fn load(dir: &Path) -> ConfigFile {
        Self::load_with_path(dir, None)
    }

    /// Like [`ConfigFile::load`], looking helpers up in `search_path`.
    pub fn load_with_path(dir: &Path, search_path: Option<OsString>) -> ConfigFile {
        let path = dir.join(CONFIG_FILE);
        let mut cfg = ConfigFile {
            path,
            doc: Map::new(),
            auths: BTreeMap::new(),
            load_error: None,
            default_store: None,
            search_path,
            warned_plaintext: false,
        };
        match std::fs::read(&cfg.path) {
            Ok(data) => {
                if let Err(e) = cfg.parse(&data) {
                    cfg.load_error =
                        Some(format!("parsing config file ({}): {e}", cfg.path.display()));
                    cfg.doc = Map::new();
                    cfg.auths.clear();
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                cfg.load_error = Some(format!(
                    "loading config file: open {}: {}",
                    cfg.path.display(),
                    crate::error::go_io_error(&e)
                ))
            }
        }
        if !cfg.contains_auth() {
            cfg.default_store = cfg.detect_default_store();
        }
        cfg
    }

    fn parse(&mut self, data: &[u8]) -> Result<(), String> {
        if data.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let doc: Json = serde_json::from_slice(data).map_err(|e| e.to_string())?;
        let Json::Object(doc) = doc else {
            return Err(
                "json: cannot unmarshal into Go value of type configfile.ConfigFile".into(),
            );
        };
        if let Some(auths) = doc.get("auths").filter(|a| !a.is_null()) {
            // Go decodes a null entry as an empty one.
            let auths: BTreeMap<String, Option<FileEntry>> =
                serde_json::from_value(auths.clone()).map_err(|e| e.to_string())?;
            for (server, entry) in auths {
                let entry = entry.unwrap_or_default();
                let (mut username, mut password) = (entry.username, entry.password);
                if !entry.auth.is_empty() {
                    (username, password) = decode_auth(&entry.auth)?;
                }
                self.auths.insert(
                    server.clone(),
                    AuthConfig {
                        username,
                        password,
                        auth: String::new(),
                        email: entry.email,
                        server_address: server,
                        identity_token: entry.identitytoken,
                        registry_token: entry.registrytoken,
                    },
                );
            }
        }
        self.doc = doc;
        Ok(())
    }

    /// Why the file could not be read, if it could not.
    pub fn load_error(&self) -> Option<&str> {
        self.load_error.as_deref()
    }

    fn str_key(&self, key: &str) -> Option<&str> {
        self.doc
            .get(key)
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
    }

    fn cred_helper(&self, server: &str) -> Option<&str> {
        self.doc
            .get("credHelpers")
            .and_then(|h| h.get(server))
            .and_then(Json::as_str)
    }

    /// docker's `ContainsAuth`.
    fn contains_auth(&self) -> bool {
        self.str_key("credsStore").is_some()
            || self
                .doc
                .get("credHelpers")
                .and_then(Json::as_object)
                .is_some_and(|h| !h.is_empty())
            || !self.auths.is_empty()
    }

    /// docker's `DetectDefaultStore` on Linux: `pass` when that program is
    /// installed, else `secretservice`, used only if its helper is installed.
    fn detect_default_store(&self) -> Option<String> {
        let platform = if self.find_program("pass").is_some() {
            "pass"
        } else {
            "secretservice"
        };
        self.find_program(&format!("{HELPER_PREFIX}{platform}"))
            .map(|_| platform.to_string())
    }

    /// The helper that keeps credentials for `server`, if any.
    fn helper_for(&self, server: &str) -> Option<String> {
        if !server.is_empty() {
            if let Some(h) = self.cred_helper(server) {
                return Some(h.to_string()).filter(|h| !h.is_empty());
            }
        }
        self.str_key("credsStore")
            .map(str::to_string)
            .or_else(|| self.default_store.clone())
    }

    /// The credentials stored for `server` (a config key such as
    /// [`INDEX_SERVER`] or "registry.example.com:5000"); empty when none.
    pub fn get_auth(&self, server: &str) -> Result<AuthConfig, String> {
        let file = self.file_get(server);
        let Some(helper) = self.helper_for(server) else {
            return Ok(file);
        };
        let Some(creds) = self.helper_get(&helper, server)? else {
            return Ok(file);
        };
        let mut auth = file;
        if creds.username == TOKEN_USERNAME {
            auth.username = String::new();
            auth.password = String::new();
            auth.identity_token = creds.secret;
        } else {
            auth.username = creds.username;
            auth.password = creds.secret;
            auth.identity_token = String::new();
        }
        auth.server_address = server.to_string();
        Ok(auth)
    }

    /// The plain-text entry for `server`, also found under a legacy key that
    /// names the same host ("https://host/v1/").
    fn file_get(&self, server: &str) -> AuthConfig {
        if let Some(a) = self.auths.get(server) {
            return a.clone();
        }
        self.auths
            .iter()
            .find(|(k, _)| convert_to_hostname(k) == server)
            .map(|(_, a)| a.clone())
            .unwrap_or_default()
    }

    /// Stores `auth` under `auth.server_address`, in its helper if one is
    /// configured (the file then keeps only an empty entry, as docker's does).
    pub fn store_auth(&mut self, auth: &AuthConfig) -> Result<(), String> {
        let server = auth.server_address.clone();
        if let Some(helper) = self.helper_for(&server) {
            let creds = if auth.identity_token.is_empty() {
                HelperCredentials {
                    server_url: server.clone(),
                    username: auth.username.clone(),
                    secret: auth.password.clone(),
                }
            } else {
                HelperCredentials {
                    server_url: server.clone(),
                    username: TOKEN_USERNAME.to_string(),
                    secret: auth.identity_token.clone(),
                }
            };
            self.helper_store(&helper, &creds)?;
            let kept = AuthConfig {
                email: auth.email.clone(),
                server_address: server,
                ..AuthConfig::default()
            };
            return self.file_store(kept).map(|_| ());
        }
        let stored_password = !auth.password.is_empty();
        if self.file_store(auth.clone())? && stored_password && !self.warned_plaintext {
            self.warned_plaintext = true;
            crate::output::errln(&format!(
                "\nWARNING! Your credentials are stored unencrypted in '{}'.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n",
                self.path.display()
            ));
        }
        Ok(())
    }

    /// Returns whether the file changed (an identical entry is not rewritten).
    fn file_store(&mut self, mut auth: AuthConfig) -> Result<bool, String> {
        auth.auth = String::new();
        if self.auths.get(&auth.server_address) == Some(&auth) {
            return Ok(false);
        }
        self.auths.insert(auth.server_address.clone(), auth);
        self.save()?;
        Ok(true)
    }

    /// Removes the credentials of `server` from its helper and the file.
    pub fn erase_auth(&mut self, server: &str) -> Result<(), String> {
        if let Some(helper) = self.helper_for(server) {
            self.helper_erase(&helper, server)?;
        }
        if self.auths.remove(server).is_some() {
            self.save()?;
        }
        Ok(())
    }

    /// The encoded `X-Registry-Auth` for pulling or pushing `image`
    /// (docker's `RetrieveAuthTokenFromImage`).
    pub fn registry_auth_for_image(&self, image: &str) -> Result<String, String> {
        let r = berth_reference::Reference::parse_normalized(image).map_err(|e| e.to_string())?;
        let key = auth_key_for_domain(r.domain());
        let auth = self.get_auth(&key)?;
        Ok(AuthConfig {
            email: String::new(),
            ..auth
        }
        .encode_header())
    }

    /// The document as docker writes it: tab-indented, `auths` with base64
    /// `auth` and no user name, password or server address of their own.
    fn render(&self) -> Result<Vec<u8>, String> {
        let mut doc = self.doc.clone();
        let old_auths = doc
            .get("auths")
            .and_then(Json::as_object)
            .cloned()
            .unwrap_or_default();
        let mut auths = Map::new();
        for (server, a) in &self.auths {
            // Keys berth does not know stay with their entry.
            let mut entry = old_auths
                .get(server)
                .and_then(Json::as_object)
                .cloned()
                .unwrap_or_default();
            for k in ["username", "password", "serveraddress", "auth"] {
                entry.remove(k);
            }
            let mut set = |k: &str, v: &str| {
                if v.is_empty() {
                    entry.remove(k);
                } else {
                    entry.insert(k.to_string(), Json::String(v.to_string()));
                }
            };
            set("auth", &encode_auth(&a.username, &a.password));
            set("email", &a.email);
            set("identitytoken", &a.identity_token);
            set("registrytoken", &a.registry_token);
            auths.insert(server.clone(), Json::Object(entry));
        }
        doc.insert("auths".to_string(), Json::Object(auths));
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        Json::Object(doc)
            .serialize(&mut ser)
            .map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// Replaces the file atomically: a temporary file in the same directory,
    /// written, fsynced and renamed over it, then the directory fsynced.
    pub fn save(&self) -> Result<(), String> {
        if let Some(e) = &self.load_error {
            return Err(format!(
                "refusing to overwrite a config file that could not be read: {e}"
            ));
        }
        let data = self.render()?;
        let io = |e: std::io::Error| crate::error::go_io_error(&e);
        // Write through a symlinked config.json (dotfile managers) to its target.
        let target = match std::fs::canonicalize(&self.path) {
            Ok(p) => p,
            Err(_) => match std::fs::read_link(&self.path) {
                Ok(link) => self.path.parent().map_or(link.clone(), |d| d.join(&link)),
                Err(_) => self.path.clone(),
            },
        };
        let dir = target
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        create_private_dir(&dir).map_err(|e| format!("mkdir {}: {}", dir.display(), io(e)))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".config.json.")
            .tempfile_in(&dir)
            .map_err(|e| format!("creating a temporary file in {}: {}", dir.display(), io(e)))?;
        tmp.write_all(&data).map_err(io)?;
        set_private_mode(tmp.as_file()).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(&target)
            .map_err(|e| format!("rename {}: {}", target.display(), io(e.error)))?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    // ------------------------------------------------------- credential helpers

    fn find_program(&self, name: &str) -> Option<PathBuf> {
        let path = self
            .search_path
            .clone()
            .or_else(|| std::env::var_os("PATH"))?;
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| is_executable(p))
    }

    /// Runs `docker-credential-<helper> <action>` with `input` on stdin;
    /// returns its stdout, or docker's "err: …, out: `…`" description.
    fn run_helper(&self, helper: &str, action: &str, input: &[u8]) -> Result<Vec<u8>, String> {
        let name = format!("{HELPER_PREFIX}{helper}");
        let Some(program) = self.find_program(&name) else {
            return Err(format!(
                "err: exec: \"{name}\": executable file not found in $PATH, out: ``"
            ));
        };
        let mut child = Command::new(&program)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                format!(
                    "err: fork/exec {}: {}, out: ``",
                    program.display(),
                    crate::error::go_io_error(&e)
                )
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading its input is not an error here;
            // its exit status tells.
            let _ = stdin.write_all(input);
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("err: {}, out: ``", crate::error::go_io_error(&e)))?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let err = match text.as_str() {
            "no credentials server URL" | "no credentials username" => text.clone(),
            _ => exit_status_text(&out.status),
        };
        Err(format!("err: {err}, out: `{text}`"))
    }

    fn helper_get(&self, helper: &str, server: &str) -> Result<Option<HelperCredentials>, String> {
        let name = format!("{HELPER_PREFIX}{helper}");
        let out = match self.run_helper(helper, "get", server.as_bytes()) {
            Ok(out) => out,
            Err(e) if e.ends_with(&format!("out: `{NOT_FOUND_MESSAGE}`")) => return Ok(None),
            Err(e) => return Err(format!("error getting credentials - {e}")),
        };
        let mut creds: HelperCredentials = serde_json::from_slice(&out)
            .map_err(|e| format!("error getting credentials from {name}: {e}"))?;
        if creds.server_url.is_empty() {
            creds.server_url = server.to_string();
        }
        Ok(Some(creds))
    }

    fn helper_store(&self, helper: &str, creds: &HelperCredentials) -> Result<(), String> {
        let mut input = serde_json::to_vec(creds).map_err(|e| e.to_string())?;
        input.push(b'\n');
        self.run_helper(helper, "store", &input)
            .map(|_| ())
            .map_err(|e| format!("error storing credentials - {e}"))
    }

    fn helper_erase(&self, helper: &str, server: &str) -> Result<(), String> {
        self.run_helper(helper, "erase", server.as_bytes())
            .map(|_| ())
            .map_err(|e| format!("error erasing credentials - {e}"))
    }
}

/// The config key for a registry host: Docker Hub's is [`INDEX_SERVER`].
pub fn auth_key_for_domain(domain: &str) -> String {
    match domain {
        "docker.io" | "index.docker.io" => INDEX_SERVER.to_string(),
        d => d.to_string(),
    }
}

/// docker's `ConvertToHostname`: "https://host:5000/v2/" → "host:5000".
pub fn convert_to_hostname(maybe_url: &str) -> String {
    if let Some((_, rest)) = maybe_url.split_once("://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = split_host_port(host_port);
        if !host.is_empty() {
            return match port {
                Some(p) if host.contains(':') => format!("[{host}]:{p}"),
                Some(p) => format!("{host}:{p}"),
                None => host.to_string(),
            };
        }
    }
    maybe_url
        .split_once('/')
        .map_or(maybe_url, |(h, _)| h)
        .to_string()
}

/// Splits "host:port" or "[v6]:port"; the host loses its brackets, as Go's
/// `url.URL.Hostname` returns it.
fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if let Some(rest) = s.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':').filter(|p| !p.is_empty())),
            None => (s, None),
        };
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p).filter(|p| !p.is_empty())),
        _ => (s, None),
    }
}

/// base64 of "user:password", as `auths` entries keep it; empty for neither.
fn encode_auth(username: &str, password: &str) -> String {
    if username.is_empty() && password.is_empty() {
        return String::new();
    }
    base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
}

fn decode_auth(auth: &str) -> Result<(String, String), String> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .map_err(|e| format!("illegal base64 data in auth: {e}"))?;
    let decoded = String::from_utf8_lossy(&decoded);
    match decoded.split_once(':') {
        Some((user, password)) if !user.is_empty() => {
            Ok((user.to_string(), password.trim_matches('\0').to_string()))
        }
        _ => Err("Invalid auth configuration file".to_string()),
    }
}

/// Go's `exec.ExitError` text: "exit status 1", "signal: killed".
fn exit_status_text(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("signal: {sig}"),
        _ => status.to_string(),
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn set_private_mode(f: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn temp() -> tempfile::TempDir {
        tempfile::tempdir().expect("temp dir")
    }

    fn write(dir: &Path, text: &str) {
        std::fs::write(dir.join(CONFIG_FILE), text).expect("write config");
    }

    fn read(dir: &Path) -> Json {
        let data = std::fs::read(dir.join(CONFIG_FILE)).expect("read config");
        serde_json::from_slice(&data).expect("valid JSON")
    }

    /// An empty search path: no helper is found unless a test installs one.
    fn load(dir: &Path, bin: &Path) -> ConfigFile {
        ConfigFile::load_with_path(dir, Some(bin.as_os_str().to_owned()))
    }

    /// A `docker-credential-test` that keeps its store in `<bin>/store/`,
    /// one file per server (named after it, '/' and ':' replaced), and logs
    /// each call's action and input to `<bin>/log`.
    fn install_helper(bin: &Path) {
        let script = r#"#!/bin/sh
dir="$(dirname "$0")"
mkdir -p "$dir/store"
input="$(cat)"
printf '%s %s\n' "$1" "$input" >> "$dir/log"
key() { printf '%s' "$1" | tr '/:' '__'; }
case "$1" in
get)
    f="$dir/store/$(key "$input")"
    if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
store)
    url="$(printf '%s' "$input" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/')"
    printf '%s' "$input" > "$dir/store/$(key "$url")" ;;
erase)
    rm -f "$dir/store/$(key "$input")" ;;
*)
    echo "unknown action" ; exit 2 ;;
esac
"#;
        let path = bin.join("docker-credential-test");
        std::fs::write(&path, script).expect("write helper");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    #[test]
    fn header_encoding() {
        assert_eq!(AuthConfig::default().encode_header(), "e30=");
        let a = AuthConfig {
            username: "me".into(),
            password: "p>?s".into(),
            server_address: "https://index.docker.io/v1/".into(),
            ..AuthConfig::default()
        };
        let h = a.encode_header();
        // URL-safe alphabet, padded.
        assert!(!h.contains('+') && !h.contains('/'));
        let json = base64::engine::general_purpose::URL_SAFE
            .decode(&h)
            .expect("base64url");
        assert_eq!(
            String::from_utf8_lossy(&json),
            r#"{"username":"me","password":"p>?s","serveraddress":"https://index.docker.io/v1/"}"#
        );
        let t = AuthConfig {
            identity_token: "tok".into(),
            server_address: "r.example".into(),
            ..AuthConfig::default()
        };
        let json = base64::engine::general_purpose::URL_SAFE
            .decode(t.encode_header())
            .expect("base64url");
        assert_eq!(
            String::from_utf8_lossy(&json),
            r#"{"serveraddress":"r.example","identitytoken":"tok"}"#
        );
    }

    #[test]
    fn hostnames_and_keys() {
        assert_eq!(
            convert_to_hostname("https://index.docker.io/v1/"),
            "index.docker.io"
        );
        assert_eq!(
            convert_to_hostname("http://r.example:5000/v2/"),
            "r.example:5000"
        );
        assert_eq!(convert_to_hostname("https://u:p@r.example"), "r.example");
        assert_eq!(convert_to_hostname("https://[::1]:5000/"), "[::1]:5000");
        assert_eq!(convert_to_hostname("https://[::1]/"), "::1");
        assert_eq!(convert_to_hostname("r.example:5000/v2"), "r.example:5000");
        assert_eq!(convert_to_hostname("localhost"), "localhost");
        assert_eq!(auth_key_for_domain("docker.io"), INDEX_SERVER);
        assert_eq!(auth_key_for_domain("index.docker.io"), INDEX_SERVER);
        assert_eq!(auth_key_for_domain("localhost:5000"), "localhost:5000");
    }

    #[test]
    fn reads_auths_and_legacy_keys() {
        let (dir, bin) = (temp(), temp());
        write(
            dir.path(),
            r#"{"auths":{
                "https://index.docker.io/v1/":{"auth":"bWU6c2VjcmV0"},
                "https://legacy.example/v1/":{"auth":"b2xkOnB3"},
                "tok.example":{"auth":"dTo=","identitytoken":"idt"},
                "plain.example":{"username":"pu","password":"pp"},
                "null.example":null
            }}"#,
        );
        let cfg = load(dir.path(), bin.path());
        assert_eq!(cfg.load_error(), None);
        let hub = cfg.get_auth(INDEX_SERVER).expect("hub");
        assert_eq!(
            (hub.username.as_str(), hub.password.as_str()),
            ("me", "secret")
        );
        assert_eq!(hub.server_address, INDEX_SERVER);
        let legacy = cfg.get_auth("legacy.example").expect("legacy");
        assert_eq!(legacy.username, "old");
        let tok = cfg.get_auth("tok.example").expect("token");
        assert_eq!(
            (tok.username.as_str(), tok.identity_token.as_str()),
            ("u", "idt")
        );
        assert_eq!(cfg.get_auth("plain.example").expect("plain").password, "pp");
        assert_eq!(cfg.get_auth("null.example").expect("null").username, "");
        assert_eq!(
            cfg.get_auth("none.example").expect("none"),
            AuthConfig::default()
        );

        let header = cfg
            .registry_auth_for_image("busybox:latest")
            .expect("header");
        let json = base64::engine::general_purpose::URL_SAFE
            .decode(header)
            .expect("base64url");
        assert_eq!(
            String::from_utf8_lossy(&json),
            r#"{"username":"me","password":"secret","serveraddress":"https://index.docker.io/v1/"}"#
        );
        assert_eq!(
            cfg.registry_auth_for_image("localhost:5000/x").as_deref(),
            Ok("e30=")
        );
    }

    #[test]
    fn bad_files_are_reported_and_never_overwritten() {
        let (dir, bin) = (temp(), temp());
        write(dir.path(), "{not json");
        let mut cfg = load(dir.path(), bin.path());
        assert!(cfg
            .load_error()
            .is_some_and(|e| e.starts_with("parsing config file (")));
        let a = AuthConfig {
            username: "u".into(),
            password: "p".into(),
            server_address: "r.example".into(),
            ..AuthConfig::default()
        };
        assert!(cfg.store_auth(&a).is_err());
        assert_eq!(
            std::fs::read_to_string(dir.path().join(CONFIG_FILE))
                .ok()
                .as_deref(),
            Some("{not json")
        );
        write(dir.path(), r#"{"auths":{"x":{"auth":"bm9jb2xvbg=="}}}"#);
        let cfg = load(dir.path(), bin.path());
        assert!(cfg
            .load_error()
            .is_some_and(|e| e.ends_with("Invalid auth configuration file")));
    }

    #[test]
    fn writes_keep_unknown_keys_and_are_private() {
        let (dir, bin) = (temp(), temp());
        write(
            dir.path(),
            r#"{"auths":{"keep.example":{"auth":"azpw","x-extra":1}},"psFormat":"{{.ID}}","plugins":{"p":{"a":"b"}}}"#,
        );
        let mut cfg = load(dir.path(), bin.path());
        let a = AuthConfig {
            username: "me".into(),
            password: "pw".into(),
            server_address: "r.example:5000".into(),
            ..AuthConfig::default()
        };
        let (stored, out) = crate::output::capture(b"", false, || cfg.store_auth(&a));
        stored.expect("store");
        let warning = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            warning.starts_with("\nWARNING! Your credentials are stored unencrypted in '"),
            "{warning}"
        );
        // Once per run, like docker.
        let again = AuthConfig {
            password: "pw2".into(),
            ..a.clone()
        };
        let (stored, out) = crate::output::capture(b"", false, || cfg.store_auth(&again));
        stored.expect("store again");
        assert!(out.stderr.is_empty());
        cfg.store_auth(&a).expect("store");
        let doc = read(dir.path());
        assert_eq!(doc["psFormat"], "{{.ID}}");
        assert_eq!(doc["plugins"]["p"]["a"], "b");
        assert_eq!(doc["auths"]["keep.example"]["x-extra"], 1);
        assert_eq!(doc["auths"]["keep.example"]["auth"], "azpw");
        assert_eq!(
            doc["auths"]["r.example:5000"],
            serde_json::json!({"auth": "bWU6cHc="})
        );
        let mode = std::fs::metadata(dir.path().join(CONFIG_FILE))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // Only config.json is left: the temporary file was renamed over it.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("read dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, [CONFIG_FILE]);
        let text = std::fs::read_to_string(dir.path().join(CONFIG_FILE)).expect("read");
        assert!(text.contains("\n\t\"auths\": {"), "{text}");

        let mut cfg = load(dir.path(), bin.path());
        assert_eq!(cfg.get_auth("r.example:5000").expect("get").password, "pw");
        cfg.erase_auth("r.example:5000").expect("erase");
        let doc = read(dir.path());
        assert!(doc["auths"].get("r.example:5000").is_none());
        assert_eq!(doc["psFormat"], "{{.ID}}");
    }

    #[test]
    fn identity_tokens_replace_passwords() {
        let (dir, bin) = (temp(), temp());
        let mut cfg = load(dir.path(), bin.path());
        let a = AuthConfig {
            username: "me".into(),
            identity_token: "idtok".into(),
            server_address: INDEX_SERVER.into(),
            ..AuthConfig::default()
        };
        cfg.store_auth(&a).expect("store");
        let doc = read(dir.path());
        assert_eq!(
            doc["auths"][INDEX_SERVER],
            serde_json::json!({"auth": "bWU6", "identitytoken": "idtok"})
        );
    }

    #[test]
    fn writes_through_a_symlink() {
        let (dir, bin, real) = (temp(), temp(), temp());
        let target = real.path().join("docker-config.json");
        std::fs::write(&target, "{}").expect("write");
        std::os::unix::fs::symlink(&target, dir.path().join(CONFIG_FILE)).expect("symlink");
        let mut cfg = load(dir.path(), bin.path());
        let a = AuthConfig {
            username: "u".into(),
            password: "p".into(),
            server_address: "r.example".into(),
            ..AuthConfig::default()
        };
        let (stored, _) = crate::output::capture(b"", false, || cfg.store_auth(&a));
        stored.expect("store");
        assert!(std::fs::symlink_metadata(dir.path().join(CONFIG_FILE))
            .expect("lstat")
            .file_type()
            .is_symlink());
        let doc: Json =
            serde_json::from_slice(&std::fs::read(&target).expect("read")).expect("json");
        assert_eq!(doc["auths"]["r.example"]["auth"], "dTpw");
    }

    #[test]
    fn credential_helper_protocol() {
        let (dir, bin) = (temp(), temp());
        install_helper(bin.path());
        write(
            dir.path(),
            r#"{"credsStore":"test","credHelpers":{"plain.example":""}}"#,
        );
        let mut cfg = load(dir.path(), bin.path());
        assert_eq!(
            cfg.get_auth(INDEX_SERVER).expect("nothing yet"),
            AuthConfig::default()
        );
        cfg.store_auth(&AuthConfig {
            username: "me".into(),
            password: "pw".into(),
            server_address: INDEX_SERVER.into(),
            ..AuthConfig::default()
        })
        .expect("store");
        cfg.store_auth(&AuthConfig {
            username: "me".into(),
            identity_token: "idt".into(),
            server_address: "tok.example".into(),
            ..AuthConfig::default()
        })
        .expect("store token");
        // The file keeps an empty entry; the secret is the helper's.
        let doc = read(dir.path());
        assert_eq!(doc["auths"][INDEX_SERVER], serde_json::json!({}));
        assert_eq!(doc["credsStore"], "test");

        let cfg = load(dir.path(), bin.path());
        let hub = cfg.get_auth(INDEX_SERVER).expect("get");
        assert_eq!((hub.username.as_str(), hub.password.as_str()), ("me", "pw"));
        assert_eq!(hub.server_address, INDEX_SERVER);
        let tok = cfg.get_auth("tok.example").expect("get token");
        assert_eq!(
            (tok.username.as_str(), tok.identity_token.as_str()),
            ("", "idt")
        );

        let log = std::fs::read_to_string(bin.path().join("log")).expect("log");
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines[0], "get https://index.docker.io/v1/");
        assert_eq!(
            lines[1],
            r#"store {"ServerURL":"https://index.docker.io/v1/","Username":"me","Secret":"pw"}"#
        );
        assert_eq!(
            lines[2],
            r#"store {"ServerURL":"tok.example","Username":"<token>","Secret":"idt"}"#
        );

        let mut cfg = load(dir.path(), bin.path());
        cfg.erase_auth(INDEX_SERVER).expect("erase");
        assert_eq!(
            cfg.get_auth(INDEX_SERVER).expect("gone"),
            AuthConfig::default()
        );
        assert!(read(dir.path())["auths"].get(INDEX_SERVER).is_none());
        let log = std::fs::read_to_string(bin.path().join("log")).expect("log");
        assert!(
            log.contains("\nerase https://index.docker.io/v1/\n"),
            "{log}"
        );
    }

    #[test]
    fn per_registry_helpers_and_helper_errors() {
        let (dir, bin) = (temp(), temp());
        install_helper(bin.path());
        write(
            dir.path(),
            r#"{"auths":{"file.example":{"auth":"dTpw"}},"credHelpers":{"r.example":"test","gone.example":"missing"}}"#,
        );
        let mut cfg = load(dir.path(), bin.path());
        // Registries without a helper use the file.
        assert_eq!(cfg.get_auth("file.example").expect("file").password, "p");
        cfg.store_auth(&AuthConfig {
            username: "h".into(),
            password: "hp".into(),
            server_address: "r.example".into(),
            ..AuthConfig::default()
        })
        .expect("store");
        assert_eq!(cfg.get_auth("r.example").expect("helper").password, "hp");
        assert_eq!(
            cfg.get_auth("gone.example"),
            Err("error getting credentials - err: exec: \"docker-credential-missing\": executable file not found in $PATH, out: ``".to_string())
        );

        // A helper failing for another reason is an error, worded like docker's.
        let failing = bin.path().join("docker-credential-fail");
        std::fs::write(&failing, "#!/bin/sh\ncat >/dev/null\necho 'boom'\nexit 3\n")
            .expect("write");
        std::fs::set_permissions(&failing, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        write(dir.path(), r#"{"credsStore":"fail"}"#);
        let cfg = load(dir.path(), bin.path());
        assert_eq!(
            cfg.get_auth(INDEX_SERVER),
            Err("error getting credentials - err: exit status 3, out: `boom`".to_string())
        );
        assert!(cfg.registry_auth_for_image("busybox").is_err());
    }

    #[test]
    fn default_store_is_detected_only_without_auth() {
        let (dir, bin) = (temp(), temp());
        let helper = bin.path().join("docker-credential-secretservice");
        std::fs::write(
            &helper,
            "#!/bin/sh\necho 'credentials not found in native keychain'\nexit 1\n",
        )
        .expect("write");
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let cfg = load(dir.path(), bin.path());
        assert_eq!(
            cfg.helper_for(INDEX_SERVER).as_deref(),
            Some("secretservice")
        );
        assert_eq!(
            cfg.get_auth(INDEX_SERVER).expect("none"),
            AuthConfig::default()
        );
        write(dir.path(), r#"{"auths":{"x":{}}}"#);
        let cfg = load(dir.path(), bin.path());
        assert_eq!(cfg.helper_for(INDEX_SERVER), None);
    }

    #[test]
    fn config_dir_precedence() {
        assert_eq!(config_dir(Some("/x")), PathBuf::from("/x"));
    }
}
