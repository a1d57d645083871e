//! Against a real plain-HTTP `docker-registry` on loopback (insecure by default, so https is
//! tried first and falls back to http like Docker).
#![allow(clippy::unwrap_used)]

mod common;

use berth_distribution::{
    select_platform, Digest, ErrorKind, Platform, Reference, Registry, RegistryConfig,
    RegistryOptions, OCI_INDEX, OCI_MANIFEST,
};
use common::*;

#[tokio::test]
async fn push_then_pull_by_tag_and_digest() {
    let reg = TestRegistry::plain();
    let certs = tempfile::tempdir().unwrap();
    let client = client(certs.path());
    let r = reg.reference("berth/roundtrip:v1");
    let push = client.repository(&r, &anon(), true);
    let (digest, manifest, layer) = push_image(&push, "v1", 1).await;

    let pull = client.repository(&r, &anon(), false);
    let m = pull.get_manifest("v1").await.unwrap();
    assert_eq!(m.bytes, manifest);
    assert_eq!(m.digest, digest);
    assert_eq!(m.media_type, OCI_MANIFEST);
    assert!(!m.is_index());
    let by_digest = pull.get_manifest(&digest.to_string()).await.unwrap();
    assert_eq!(by_digest, m);

    let ld = Digest::sha256_of(&layer);
    assert_eq!(
        pull.blob_exists(&ld).await.unwrap(),
        Some(layer.len() as u64)
    );
    let s = pull.blob_stream(&ld, 0).await.unwrap();
    assert_eq!(s.size, Some(layer.len() as u64));
    let got = collect(s).await;
    assert_eq!(Digest::sha256_of(&got), ld);

    // Resume from the middle.
    let s = pull.blob_stream(&ld, 12_345).await.unwrap();
    assert_eq!(s.size, Some(layer.len() as u64 - 12_345));
    assert_eq!(collect(s).await, layer[12_345..]);

    let absent = Digest::sha256_of(b"never pushed");
    assert_eq!(pull.blob_exists(&absent).await.unwrap(), None);
}

#[tokio::test]
async fn not_found_errors_are_worded_like_docker() {
    let reg = TestRegistry::plain();
    let certs = tempfile::tempdir().unwrap();
    let client = client(certs.path());
    let r = reg.reference("berth/nf:v1");
    push_image(&client.repository(&r, &anon(), true), "v1", 2).await;
    let pull = client.repository(&r, &anon(), false);

    let e = pull.get_manifest("nope").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(
        e.to_string(),
        format!(
            "manifest for {}/berth/nf:nope not found: manifest unknown: manifest unknown",
            reg.host()
        )
    );
    let e = pull
        .blob_stream(&Digest::sha256_of(b"x"), 0)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("blob unknown"), "{e}");

    let other = client.repository(&reg.reference("berth/absent"), &anon(), false);
    let e = other.get_manifest("latest").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(
        e.to_string()
            .contains(&format!("{}/berth/absent", reg.host())),
        "{e}"
    );

    let e = pull.get_manifest("bad tag!").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

#[tokio::test]
async fn mount_across_repositories() {
    let reg = TestRegistry::plain();
    let certs = tempfile::tempdir().unwrap();
    let client = client(certs.path());
    let a = client.repository(&reg.reference("berth/a"), &anon(), true);
    let b = client.repository(&reg.reference("berth/b"), &anon(), true);
    let data = blob(3, 10_000);
    let d = push_blob(&a, &data).await;
    assert_eq!(b.blob_exists(&d).await.unwrap(), None);
    assert!(b.mount_blob(&d, "berth/a").await.unwrap());
    assert_eq!(b.blob_exists(&d).await.unwrap(), Some(10_000));
    assert_eq!(collect(b.blob_stream(&d, 0).await.unwrap()).await, data);
    // A blob the source does not have: the registry starts a plain upload instead.
    let missing = Digest::sha256_of(b"missing");
    assert!(!b.mount_blob(&missing, "berth/a").await.unwrap());
}

#[tokio::test]
async fn chunked_uploads() {
    let reg = TestRegistry::plain();
    let certs = tempfile::tempdir().unwrap();
    let client = client(certs.path());
    let repo = client.repository(&reg.reference("berth/chunks"), &anon(), true);
    let data = blob(4, 25_001);
    let d = Digest::sha256_of(&data);
    repo.push_blob_chunked(&d, once(data.clone()), 4096)
        .await
        .unwrap();
    assert_eq!(collect(repo.blob_stream(&d, 0).await.unwrap()).await, data);

    // Empty blob, chunked: just the closing PUT.
    let empty = Digest::sha256_of(b"");
    repo.push_blob_chunked(&empty, once(Vec::new()), 4096)
        .await
        .unwrap();
    assert_eq!(repo.blob_exists(&empty).await.unwrap(), Some(0));

    // push_blob switches to chunks above monolithic_max.
    let small_max = Registry::with_options(
        RegistryConfig {
            certs_dir: certs.path().into(),
            ..Default::default()
        },
        RegistryOptions {
            monolithic_max: 1000,
            chunk_size: 3000,
            ..fast_opts()
        },
    )
    .unwrap();
    let repo = small_max.repository(&reg.reference("berth/chunks2"), &anon(), true);
    let data = blob(5, 10_000);
    let d = push_blob(&repo, &data).await;
    assert_eq!(collect(repo.blob_stream(&d, 0).await.unwrap()).await, data);

    // Wrong digest: the registry refuses it.
    let e = repo
        .push_blob(&Digest::sha256_of(b"other"), 5, once(b"12345".to_vec()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DigestMismatch, "{e}");
}

#[tokio::test]
async fn index_and_platform_selection() {
    let reg = TestRegistry::plain();
    let certs = tempfile::tempdir().unwrap();
    let client = client(certs.path());
    let r = reg.reference("berth/multi");
    let repo = client.repository(&r, &anon(), true);
    let (amd, amd_bytes, _) = push_image(&repo, "amd64", 10).await;
    let (arm, arm_bytes, _) = push_image(&repo, "arm64", 11).await;
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd.to_string(), "size": amd_bytes.len(), "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": OCI_MANIFEST, "digest": arm.to_string(), "size": arm_bytes.len(), "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        ],
    }))
    .unwrap();
    let idx_digest = repo.put_manifest("multi", OCI_INDEX, &index).await.unwrap();

    let pull = client.repository(&r, &anon(), false);
    let m = pull.get_manifest("multi").await.unwrap();
    assert!(m.is_index());
    assert_eq!(m.digest, idx_digest);
    let d = select_platform(&m.bytes, &Platform::parse("linux/arm64").unwrap()).unwrap();
    assert_eq!(d.digest().to_string(), arm.to_string());
    let chosen = pull.get_manifest(d.digest().as_ref()).await.unwrap();
    assert_eq!(chosen.bytes, arm_bytes);
    let d = select_platform(&m.bytes, &Platform::parse("linux/amd64").unwrap()).unwrap();
    assert_eq!(d.digest().to_string(), amd.to_string());
    let e = select_platform(&m.bytes, &Platform::parse("linux/s390x").unwrap()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no matching manifest for linux/s390x in the manifest list entries"
    );

    // A manifest pushed by digest must match it.
    let e = repo
        .put_manifest(&amd.to_string(), OCI_MANIFEST, &arm_bytes)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DigestMismatch);
}

#[tokio::test]
async fn docker_hub_names_go_to_mirrors_in_order() {
    let reg = TestRegistry::plain();
    let certs = tempfile::tempdir().unwrap();
    // Seed the "mirror" with library/busybox.
    let seed = client(certs.path());
    let (digest, manifest, layer) = push_image(
        &seed.repository(&reg.reference("library/busybox"), &anon(), true),
        "latest",
        20,
    )
    .await;

    let client = Registry::with_options(
        RegistryConfig {
            mirrors: vec![
                format!("http://127.0.0.1:{}", closed_port()),
                format!("http://{}/", reg.host()),
            ],
            certs_dir: certs.path().into(),
            ..Default::default()
        },
        fast_opts(),
    )
    .unwrap();
    let r = Reference::parse_normalized("busybox").unwrap();
    let repo = client.repository(&r, &anon(), false);
    let m = repo.get_manifest("latest").await.unwrap();
    assert_eq!(m.digest, digest);
    assert_eq!(m.bytes, manifest);
    // Blobs come from the mirror that served the manifest.
    let ld = Digest::sha256_of(&layer);
    assert_eq!(
        collect(repo.blob_stream(&ld, 0).await.unwrap()).await,
        layer
    );
    // Clones share what was learned.
    let clone = repo.clone();
    assert_eq!(
        clone.blob_exists(&ld).await.unwrap(),
        Some(layer.len() as u64)
    );
}

#[tokio::test]
async fn many_parallel_pulls_share_one_registry_client() {
    let reg = TestRegistry::plain();
    let certs = tempfile::tempdir().unwrap();
    let client = client(certs.path());
    let r = reg.reference("berth/par");
    let (_, _, layer) = push_image(&client.repository(&r, &anon(), true), "v1", 30).await;
    let ld = Digest::sha256_of(&layer);
    let mut tasks = Vec::new();
    for i in 0..8u64 {
        let repo = client.repository(&r, &anon(), false);
        let ld = ld.clone();
        tasks.push(tokio::spawn(async move {
            repo.get_manifest("v1").await.unwrap();
            collect(repo.blob_stream(&ld, i * 100).await.unwrap())
                .await
                .len()
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap(), layer.len() - i * 100);
    }
}

/// Interoperability: what berth pushes, skopeo (containers/image) reads and re-pushes, and
/// berth pulls skopeo's copy back byte for byte.
#[tokio::test]
async fn skopeo_reads_what_berth_pushes() {
    if std::process::Command::new("skopeo")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skopeo not installed; skipping");
        return;
    }
    let reg = TestRegistry::plain();
    let certs = tempfile::tempdir().unwrap();
    let client = client(certs.path());
    let r = reg.reference("berth/interop");
    let (digest, manifest, layer) =
        push_image(&client.repository(&r, &anon(), true), "v1", 70).await;
    let out = tokio::process::Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .arg(format!("docker://{}/berth/interop:v1", reg.host()))
        .arg(format!("docker://{}/skopeo/copy:v2", reg.host()))
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copy = client.repository(&reg.reference("skopeo/copy"), &anon(), false);
    let m = copy.get_manifest("v2").await.unwrap();
    assert_eq!(m.digest, digest);
    assert_eq!(m.bytes, manifest);
    let ld = Digest::sha256_of(&layer);
    assert_eq!(
        collect(copy.blob_stream(&ld, 0).await.unwrap()).await,
        layer
    );
}

/// The engine spawns these futures on a multi-threaded runtime: they must be `Send`.
#[allow(dead_code, clippy::manual_async_fn)]
fn futures_are_send(reg: Registry, repo: berth_distribution::Repository, d: Digest) {
    fn send<T: Send>(_: T) {}
    let cred = berth_distribution::Credential::default();
    send(reg.login("x", &cred));
    send(reg.search("x", "y", 1, &cred));
    send(repo.get_manifest("v1"));
    send(repo.blob_stream(&d, 0));
    send(repo.blob_exists(&d));
    send(repo.mount_blob(&d, "a/b"));
    send(repo.push_blob(&d, 1, once(vec![1])));
    send(repo.push_blob_chunked(&d, once(vec![1]), 10));
    send(repo.put_manifest("v1", OCI_MANIFEST, b"{}"));
}
