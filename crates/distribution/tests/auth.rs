//! TLS (certs.d CA, client certificates), htpasswd Basic auth and the Bearer token flow,
//! against real `docker-registry` instances.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;

use berth_distribution::{Credential, Digest, ErrorKind};
use common::*;

fn tls_registry(pki: &Pki, client_ca: bool, users: &[(&str, &str)]) -> TestRegistry {
    TestRegistry::start(RegistryOpts {
        tls: Some(pki.dir.clone()),
        client_ca,
        htpasswd: users
            .iter()
            .map(|(u, p)| (u.to_string(), p.to_string()))
            .collect(),
        ..Default::default()
    })
}

#[tokio::test]
async fn tls_with_certs_dir_ca_and_htpasswd() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let reg = tls_registry(&pki, false, &[("alice", "secret")]);
    let certs = tmp.path().join("certs.d");
    install_certs(&certs, &reg.host(), &pki, false);
    // Loopback not insecure: the certificate must verify against certs.d's CA.
    let client = strict(&certs);
    let r = reg.reference("private/app:1");
    let alice = user("alice", "secret");
    let (digest, manifest, layer) = push_image(&client.repository(&r, &alice, true), "1", 40).await;

    let pull = client.repository(&r, &alice, false);
    let m = pull.get_manifest("1").await.unwrap();
    assert_eq!((m.digest.clone(), m.bytes.clone()), (digest, manifest));
    let ld = Digest::sha256_of(&layer);
    assert_eq!(
        collect(pull.blob_stream(&ld, 100).await.unwrap()).await,
        layer[100..]
    );

    // Anonymous and wrong password are refused with Docker's wording.
    let e = client
        .repository(&r, &anon(), false)
        .get_manifest("1")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert!(
        e.to_string().starts_with(&format!(
            "pull access denied for {}/private/app, repository does not exist or may require 'docker login': unauthorized:",
            reg.host()
        )),
        "{e}"
    );
    let e = client
        .repository(&r, &user("alice", "wrong"), false)
        .get_manifest("1")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    let e = client
        .repository(&r, &user("alice", "wrong"), true)
        .push_blob(&Digest::sha256_of(b"x"), 1, once(b"x".to_vec()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");

    // Login: Basic registries return no identity token.
    assert_eq!(client.login(&reg.host(), &alice).await.unwrap(), None);
    assert_eq!(
        client
            .login(&format!("https://{}/v2/", reg.host()), &alice)
            .await
            .unwrap(),
        None
    );
    let e = client
        .login(&reg.host(), &user("alice", "nope"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert_eq!(
        e.to_string(),
        format!(
            "login attempt to https://{}/v2/ failed with status: 401 Unauthorized",
            reg.host()
        )
    );
    let e = client.login(&reg.host(), &anon()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
}

#[tokio::test]
async fn tls_without_the_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let reg = tls_registry(&pki, false, &[]);
    let empty = tmp.path().join("empty-certs.d");
    // Verified TLS, no CA: an unknown issuer, reported, not retried into a hang.
    let e = strict(&empty)
        .repository(&reg.reference("x/y"), &anon(), false)
        .get_manifest("latest")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transport, "{e}");
    assert!(e.to_string().contains("certificate"), "{e}");
    assert!(
        e.to_string().starts_with(&format!(
            "Get \"https://{}/v2/x/y/manifests/latest\"",
            reg.host()
        )),
        "{e}"
    );
    // Loopback is insecure by default (Docker): TLS without verification works.
    let e = client(&empty)
        .repository(&reg.reference("x/y"), &anon(), false)
        .get_manifest("latest")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}

#[tokio::test]
async fn client_certificates_from_certs_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let reg = tls_registry(&pki, true, &[]);
    let with_id = tmp.path().join("with");
    install_certs(&with_id, &reg.host(), &pki, true);
    let r = reg.reference("mtls/app");
    let client = strict(&with_id);
    let (digest, _, _) = push_image(&client.repository(&r, &anon(), true), "v1", 50).await;
    assert_eq!(
        client
            .repository(&r, &anon(), false)
            .get_manifest("v1")
            .await
            .unwrap()
            .digest,
        digest
    );

    // Same CA, no identity: the server refuses the handshake.
    let without = tmp.path().join("without");
    install_certs(&without, &reg.host(), &pki, false);
    let e = strict(&without)
        .repository(&r, &anon(), false)
        .get_manifest("v1")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transport, "{e}");

    // The identity is per host: another host's directory is not used.
    let other = tmp.path().join("other");
    install_certs(&other, "127.0.0.1:1", &pki, true);
    install_certs(&other, &reg.host(), &pki, false);
    assert!(strict(&other)
        .repository(&r, &anon(), false)
        .get_manifest("v1")
        .await
        .is_err());
}

#[tokio::test]
async fn bearer_token_flow_with_real_token_auth() {
    let tmp = tempfile::tempdir().unwrap();
    let ts = TokenServer::start(&tmp.path().join("token")).await;
    let reg = TestRegistry::start(ts.registry_opts());
    let client = client(tmp.path());
    let alice = user("alice", "secret");

    let r = reg.reference("private/app");
    let push = client.repository(&r, &alice, true);
    let (digest, manifest, layer) = push_image(&push, "v1", 60).await;
    // Cross-repository mount needs pull on the source too, in the same token.
    let other = client.repository(&reg.reference("private/other"), &alice, true);
    assert!(other
        .mount_blob(&Digest::sha256_of(&layer), "private/app")
        .await
        .unwrap());

    // Token cache: one token per (endpoint, scope, credential), reused across requests.
    let pull = client.repository(&r, &alice, false);
    let before = ts.hits.load(Ordering::SeqCst);
    pull.get_manifest("v1").await.unwrap();
    pull.get_manifest(&digest.to_string()).await.unwrap();
    let ld = Digest::sha256_of(&layer);
    assert_eq!(
        collect(pull.blob_stream(&ld, 0).await.unwrap()).await,
        layer
    );
    assert_eq!(ts.hits.load(Ordering::SeqCst) - before, 1);

    // Anonymous: a token without access, then Docker's "pull access denied".
    let e = client
        .repository(&r, &anon(), false)
        .get_manifest("v1")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(e.to_string().starts_with("pull access denied for"), "{e}");

    // Wrong password: the token server's message.
    let e = client
        .repository(&r, &user("alice", "bad"), false)
        .get_manifest("v1")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert_eq!(
        e.to_string(),
        "unauthorized: incorrect username or password"
    );
    assert!(e.credentials_rejected());

    // Login returns the refresh token; it then works as an identity token (OAuth2 POST).
    let refresh = client.login(&reg.host(), &alice).await.unwrap();
    assert_eq!(refresh.as_deref(), Some(REFRESH));
    let e = client
        .login(&reg.host(), &user("alice", "bad"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert_eq!(
        e.to_string(),
        "unauthorized: incorrect username or password"
    );
    let id = Credential {
        identity_token: REFRESH.into(),
        ..Default::default()
    };
    let m = client
        .repository(&r, &id, false)
        .get_manifest("v1")
        .await
        .unwrap();
    assert_eq!(m.bytes, manifest);
    let bad_id = Credential {
        identity_token: "revoked".into(),
        ..Default::default()
    };
    let e = client
        .repository(&r, &bad_id, false)
        .get_manifest("v1")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);

    // Anonymous pull of a public repository works with an anonymous token.
    let public = reg.reference("public/app");
    push_image(&client.repository(&public, &alice, true), "v1", 61).await;
    client
        .repository(&public, &anon(), false)
        .get_manifest("v1")
        .await
        .unwrap();
    // But pushing there anonymously does not.
    let e = client
        .repository(&public, &anon(), true)
        .push_blob(&Digest::sha256_of(b"z"), 1, once(b"z".to_vec()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
}
