//! Test fixtures shared by the workspace's integration tests: a real `docker-registry`
//! (Debian's distribution 2.8) per test on a free loopback port, with optional TLS, client
//! certificates, htpasswd or token auth, and a certificate authority made with openssl.
//! Not part of berth itself (`publish = false`); test code, so failures panic with context.
#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_reference::Reference;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port nothing listens on (bound then released; good enough for a refused connection).
pub fn closed_port() -> u16 {
    free_port()
}

/// Runs a setup command, panicking with its stderr when it fails.
pub fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and certificates signed by it, made with openssl in `dir`.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        let d = dir.to_path_buf();
        std::fs::create_dir_all(&d).unwrap();
        run(Command::new("openssl").current_dir(&d).args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=berth test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]));
        let pki = Pki { dir: d };
        pki.issue(
            "server",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        );
        pki.issue("client", "extendedKeyUsage=clientAuth\n");
        pki
    }

    fn issue(&self, name: &str, ext: &str) {
        let ext_file = self.dir.join(format!("{name}.ext"));
        std::fs::write(&ext_file, format!("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n{ext}")).unwrap();
        run(Command::new("openssl").current_dir(&self.dir).args([
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ]));
        run(Command::new("openssl").current_dir(&self.dir).args([
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ]));
    }

    pub fn path(&self, f: &str) -> PathBuf {
        self.dir.join(f)
    }
}

#[derive(Default)]
pub struct RegistryOpts {
    /// Serve TLS with the PKI's server certificate.
    pub tls: Option<PathBuf>,
    /// Require client certificates signed by the CA.
    pub client_ca: bool,
    /// `user:password` pairs for htpasswd (bcrypt) Basic auth.
    pub htpasswd: Vec<(String, String)>,
    /// Token auth: (realm URL, service, issuer, root cert bundle).
    pub token: Option<(String, String, String, PathBuf)>,
}

/// A running `docker-registry`, killed on drop.
pub struct TestRegistry {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl TestRegistry {
    pub fn plain() -> TestRegistry {
        TestRegistry::start(RegistryOpts::default())
    }

    pub fn start(opts: RegistryOpts) -> TestRegistry {
        let dir = tempfile::tempdir().unwrap();
        let mut auth = String::new();
        if !opts.htpasswd.is_empty() {
            let mut lines = String::new();
            for (u, p) in &opts.htpasswd {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", u, p])
                    .output()
                    .unwrap();
                assert!(out.status.success());
                lines.push_str(String::from_utf8_lossy(&out.stdout).trim());
                lines.push('\n');
            }
            let f = dir.path().join("htpasswd");
            std::fs::write(&f, lines).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                f.display()
            );
        }
        if let Some((realm, service, issuer, bundle)) = &opts.token {
            auth = format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                bundle.display()
            );
        }
        let mut tls = String::new();
        if let Some(pki) = &opts.tls {
            tls = format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                pki.join("server.crt").display(),
                pki.join("server.key").display()
            );
            if opts.client_ca {
                tls.push_str(&format!(
                    "    clientcas:\n      - {}\n",
                    pki.join("ca.crt").display()
                ));
            }
        }
        // A port can be taken between probing and binding by a parallel test: retry.
        for _ in 0..5 {
            let port = free_port();
            let config = format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: berth-test-secret\n{tls}{auth}",
                dir.path().join("data").display()
            );
            let cfg = dir.path().join("config.yml");
            std::fs::write(&cfg, config).unwrap();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(15);
            let mut up = false;
            while Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    up = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if up {
                return TestRegistry { port, dir, child };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "docker-registry did not start: {}",
            std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default()
        );
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn reference(&self, name: &str) -> Reference {
        Reference::parse_normalized(&format!("{}/{name}", self.host())).unwrap()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestRegistry {
    /// How many blobs the registry stores (to check what a push transferred).
    pub fn blob_count(&self) -> usize {
        let dir = self.dir.path().join("data/docker/registry/v2/blobs/sha256");
        let Ok(prefixes) = std::fs::read_dir(dir) else {
            return 0;
        };
        prefixes
            .flatten()
            .filter_map(|p| std::fs::read_dir(p.path()).ok())
            .map(|d| d.count())
            .sum()
    }

    /// The file holding blob `hex` in the registry's storage (to corrupt it on purpose).
    pub fn blob_file(&self, hex: &str) -> PathBuf {
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}
