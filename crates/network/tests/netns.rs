//! Namespace handles against the kernel: running inside a namespace never moves the caller.

mod common;

use std::os::unix::fs::MetadataExt;

use berth_network::netns::NetNs;
use berth_network::sysctl;
use common::*;

fn thread_netns_inode() -> u64 {
    std::fs::metadata("/proc/thread-self/ns/net")
        .map(|m| m.ino())
        .expect("own netns")
}

#[test]
fn run_enters_and_the_caller_stays() {
    if !can_run() {
        return;
    }
    let ns = TestNs::new("nsrun");
    let before = thread_netns_inode();
    let inside = ns.run(thread_netns_inode);
    assert_eq!(inside, ns.ns.inode());
    assert_ne!(inside, before);
    assert_eq!(
        thread_netns_inode(),
        before,
        "the calling thread did not move"
    );
    assert_eq!(
        NetNs::from_pid(std::process::id()).expect("own").inode(),
        before
    );

    // Sysctls are the namespace's own.
    let host_forward = sysctl::get(&NetNs::current().expect("own"), "net.ipv4.ip_forward")
        .expect("read host sysctl");
    let flip = if host_forward == "1" { "0" } else { "1" };
    sysctl::set(&ns.ns, "net.ipv4.ip_forward", flip).expect("set in test ns");
    assert_eq!(
        sysctl::get(&ns.ns, "net.ipv4.ip_forward").expect("get"),
        flip
    );
    assert_eq!(
        sysctl::get(&NetNs::current().expect("own"), "net.ipv4.ip_forward").expect("get"),
        host_forward,
        "the host's sysctl is untouched"
    );
    let name = ns.name.clone();
    drop(ns);
    assert_eq!(leftover_namespaces(&[name.as_str()]), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_async_from_many_tasks() {
    if !can_run() {
        return;
    }
    let ns = TestNs::new("nsasync");
    let want = ns.ns.inode();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let handle = ns.ns.clone();
        tasks.push(tokio::spawn(async move {
            let inside = handle.run_async(thread_netns_inode).await.expect("run");
            (inside, thread_netns_inode())
        }));
    }
    let own = NetNs::current().expect("own").inode();
    for t in tasks {
        let (inside, worker) = t.await.expect("join");
        assert_eq!(inside, want);
        assert_eq!(worker, own, "a runtime worker never changes namespace");
    }
}

#[test]
fn persistent_namespaces_exist_until_removed() {
    use berth_network::netns::{remove_persistent, NetNs};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ns1");
    let ns = NetNs::create_persistent(&path).expect("create");
    assert!(!ns.is_process_namespace());
    let again = NetNs::from_path(&path).expect("reopen");
    assert_eq!(ns, again, "the bind mount keeps the same namespace");
    // A separate namespace: the host's loopback listener is not reachable from inside.
    let host = std::net::TcpListener::bind("127.0.0.1:0").expect("listen on the host");
    let addr = host.local_addr().expect("addr");
    let reached = ns
        .run(move || std::net::TcpStream::connect(addr).is_ok())
        .expect("run");
    assert!(!reached);
    remove_persistent(&path).expect("remove");
    assert!(!path.exists());
    remove_persistent(&path).expect("idempotent");
}
