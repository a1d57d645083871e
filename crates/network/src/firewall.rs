//! NAT and filtering in the engine's own nftables table (`table inet berth`).
//!
//! The table is derived, never edited: [`render`] turns the desired state ([`Rules`]: the
//! bridges and the published ports) into a complete table, and [`Firewall`] replaces the
//! kernel's copy in one `nft -j -f -` transaction (`add table; delete table; add table …`), so a
//! change is atomic, reconciling after a crash is "apply what the records say", and teardown is
//! `delete table`. Nothing outside the table is touched.
//!
//! What the table does, per bridge `br` with subnets `S` (as dockerd's iptables rules do):
//! - `postrouting`: `ip saddr S oifname != br masquerade` (not for `--internal` networks or
//!   `com.docker.network.bridge.enable_ip_masquerade=false`);
//! - `forward`: drop between two berth bridges (isolation); for internal networks drop
//!   everything leaving or entering the bridge from elsewhere; accept replies and DNATed
//!   (published) connections into the bridge, the bridge's own traffic (icc, or drop when icc
//!   is off) and its outbound traffic; drop other connections into the bridge;
//! - `prerouting`/`output`: traffic for a local address jumps to `published`, which DNATs each
//!   published port to its container. With the userland proxy (dockerd's default; berthd's is off), loopback
//!   destinations and traffic from the container's own bridge are left to the proxy, as
//!   dockerd does; without it (`userland_proxy: false`), `output` DNATs 127.0.0.0/8 too, which
//!   needs `route_localnet=1` on the bridge and the `fib saddr type local` masquerade rule
//!   rendered here, plus hairpin masquerade for a container reaching itself.
//!
//! Chains are base chains at the standard priorities with policy accept: other tables (a host
//! firewall, iptables-nft's `FORWARD` with policy drop) still see and may drop the traffic; a
//! host whose firewall drops forwarding must allow the bridges there. Hosts without `nft` (or
//! with a kernel lacking nf_tables) are not supported; iptables-legacy-only hosts would need an
//! iptables renderer of the same [`Rules`].

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use ipnet::IpNet;
use nftables::expr::{
    Expression, Fib, FibFlag, FibResult, Meta, MetaKey, NamedExpression, Payload, PayloadField,
    Prefix, SetItem, CT,
};
use nftables::schema::{Chain, NfCmd, NfListObject, NfObject, Nftables, Rule, Table};
use nftables::stmt::{Match, NATFamily, Operator, Statement, NAT};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tracing::debug;

use crate::netns::{NetNs, NetNsError};
use crate::ports::Protocol;
use crate::ErrorKind;

/// The table's default name.
pub const TABLE: &str = "berth";

#[derive(Debug, Error)]
pub enum FirewallError {
    #[error(transparent)]
    NetNs(#[from] NetNsError),
    #[error("run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("nft {args}: {stderr}")]
    Nft { args: String, stderr: String },
    #[error("render nftables json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("bridge {0} has no firewall rules")]
    UnknownBridge(String),
    #[error("nft task failed: {0}")]
    Task(String),
}

impl FirewallError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            FirewallError::NetNs(e) => e.kind(),
            FirewallError::UnknownBridge(_) => ErrorKind::NotFound,
            _ => ErrorKind::Internal,
        }
    }
}

/// One bridge network's share of the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeRules {
    pub bridge: String,
    pub subnets: Vec<IpNet>,
    /// `--internal`: no traffic in or out of the bridge but its own.
    pub internal: bool,
    /// Inter-container communication on the bridge (`enable_icc`, default true).
    pub icc: bool,
    /// Masquerade outbound traffic (`enable_ip_masquerade`, default true).
    pub masquerade: bool,
}

impl BridgeRules {
    /// A regular network: icc and masquerade on.
    pub fn new(bridge: impl Into<String>, subnets: Vec<IpNet>) -> BridgeRules {
        BridgeRules {
            bridge: bridge.into(),
            subnets,
            internal: false,
            icc: true,
            masquerade: true,
        }
    }
}

/// One published port: `host_ip:host_port/protocol` → `container_ip:container_port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortMapping {
    pub protocol: Protocol,
    /// `0.0.0.0` (or `::`) for every address.
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_ip: IpAddr,
    pub container_port: u16,
}

/// The desired state of the table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    pub bridges: BTreeMap<String, BridgeRules>,
    /// (bridge, mapping)
    pub ports: BTreeSet<(String, PortMapping)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallConfig {
    pub table: String,
    /// Whether a userland proxy serves loopback and same-bridge access to published ports.
    pub userland_proxy: bool,
}

impl Default for FirewallConfig {
    fn default() -> Self {
        FirewallConfig {
            table: TABLE.into(),
            userland_proxy: true,
        }
    }
}

// ---- expression helpers ----

fn s(v: impl Into<String>) -> Expression<'static> {
    Expression::String(Cow::Owned(v.into()))
}

fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

fn payload(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: protocol.into(),
            field: field.into(),
        },
    )))
}

fn ct(key: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::CT(CT {
        key: key.into(),
        family: None,
        dir: None,
    }))
}

fn fib_type(flag: FibFlag) -> Expression<'static> {
    Expression::Named(NamedExpression::Fib(Fib {
        result: FibResult::Type,
        flags: HashSet::from([flag]),
    }))
}

fn prefix(net: &IpNet) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(s(net.network().to_string())),
        len: u32::from(net.prefix_len()),
    }))
}

fn set_of(items: impl IntoIterator<Item = String>) -> Expression<'static> {
    Expression::Named(NamedExpression::Set(
        items.into_iter().map(|i| SetItem::Element(s(i))).collect(),
    ))
}

fn mat(left: Expression<'static>, op: Operator, right: Expression<'static>) -> Statement<'static> {
    Statement::Match(Match { left, right, op })
}

fn eq(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    mat(left, Operator::EQ, right)
}

fn ne(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    mat(left, Operator::NEQ, right)
}

fn saddr(net: &IpNet) -> Statement<'static> {
    let field = match net {
        IpNet::V4(_) => payload("ip", "saddr"),
        IpNet::V6(_) => payload("ip6", "saddr"),
    };
    eq(field, prefix(net))
}

fn addr_field(ip: &IpAddr, field: &'static str) -> Expression<'static> {
    match ip {
        IpAddr::V4(_) => payload("ip", field),
        IpAddr::V6(_) => payload("ip6", field),
    }
}

fn nfproto(ip: &IpAddr) -> Statement<'static> {
    eq(
        meta(MetaKey::Nfproto),
        s(if ip.is_ipv4() { "ipv4" } else { "ipv6" }),
    )
}

fn accept() -> Statement<'static> {
    Statement::Accept(None)
}

fn drop_() -> Statement<'static> {
    Statement::Drop(None)
}

struct Tables<'c> {
    cfg: &'c FirewallConfig,
    objects: Vec<NfObject<'static>>,
}

impl Tables<'_> {
    fn table(&self) -> Table<'static> {
        Table {
            family: NfFamily::INet,
            name: Cow::Owned(self.cfg.table.clone()),
            handle: None,
        }
    }

    fn base_chain(&mut self, name: &'static str, ty: NfChainType, hook: NfHook, prio: i32) {
        self.objects
            .push(NfObject::CmdObject(NfCmd::Add(NfListObject::Chain(
                Chain {
                    family: NfFamily::INet,
                    table: Cow::Owned(self.cfg.table.clone()),
                    name: name.into(),
                    _type: Some(ty),
                    hook: Some(hook),
                    prio: Some(prio),
                    policy: Some(NfChainPolicy::Accept),
                    ..Chain::default()
                },
            ))));
    }

    fn chain(&mut self, name: &'static str) {
        self.objects
            .push(NfObject::CmdObject(NfCmd::Add(NfListObject::Chain(
                Chain {
                    family: NfFamily::INet,
                    table: Cow::Owned(self.cfg.table.clone()),
                    name: name.into(),
                    ..Chain::default()
                },
            ))));
    }

    fn rule(&mut self, chain: &'static str, comment: &str, expr: Vec<Statement<'static>>) {
        self.objects
            .push(NfObject::CmdObject(NfCmd::Add(NfListObject::Rule(Rule {
                family: NfFamily::INet,
                table: Cow::Owned(self.cfg.table.clone()),
                chain: chain.into(),
                expr: Cow::Owned(expr),
                comment: Some(Cow::Owned(comment.to_owned())),
                ..Rule::default()
            }))));
    }
}

/// The transaction that makes the kernel's table exactly `rules`.
pub fn render(cfg: &FirewallConfig, rules: &Rules) -> Nftables<'static> {
    let mut t = Tables {
        cfg,
        objects: Vec::new(),
    };
    let table = t.table();
    // `add` is a no-op for an existing table, so the `delete` never fails.
    t.objects
        .push(NfObject::CmdObject(NfCmd::Add(NfListObject::Table(
            table.clone(),
        ))));
    t.objects
        .push(NfObject::CmdObject(NfCmd::Delete(NfListObject::Table(
            table.clone(),
        ))));
    t.objects
        .push(NfObject::CmdObject(NfCmd::Add(NfListObject::Table(table))));

    t.base_chain("prerouting", NfChainType::NAT, NfHook::Prerouting, -100);
    t.base_chain("output", NfChainType::NAT, NfHook::Output, -100);
    t.base_chain("postrouting", NfChainType::NAT, NfHook::Postrouting, 100);
    t.base_chain("forward", NfChainType::Filter, NfHook::Forward, 0);
    t.chain("published");

    let jump = || {
        Statement::Jump(nftables::stmt::JumpTarget {
            target: "published".into(),
        })
    };
    t.rule(
        "prerouting",
        "published ports",
        vec![eq(fib_type(FibFlag::Daddr), s("local")), jump()],
    );
    if cfg.userland_proxy {
        // Loopback destinations are the proxy's (they cannot be DNATed out of lo without
        // route_localnet).
        t.rule(
            "output",
            "published ports",
            vec![
                eq(meta(MetaKey::Nfproto), s("ipv4")),
                eq(fib_type(FibFlag::Daddr), s("local")),
                ne(payload("ip", "daddr"), prefix(&IpNet::V4(loopback4()))),
                jump(),
            ],
        );
        t.rule(
            "output",
            "published ports",
            vec![
                eq(meta(MetaKey::Nfproto), s("ipv6")),
                eq(fib_type(FibFlag::Daddr), s("local")),
                ne(payload("ip6", "daddr"), s("::1")),
                jump(),
            ],
        );
    } else {
        t.rule(
            "output",
            "published ports",
            vec![eq(fib_type(FibFlag::Daddr), s("local")), jump()],
        );
    }

    let names: Vec<String> = rules.bridges.keys().cloned().collect();
    for (name, b) in &rules.bridges {
        let iif = || meta(MetaKey::Iifname);
        let oif = || meta(MetaKey::Oifname);
        let me = || s(name.clone());
        let comment = format!("bridge {name}");

        // postrouting
        if b.masquerade && !b.internal {
            for net in &b.subnets {
                t.rule(
                    "postrouting",
                    &comment,
                    vec![saddr(net), ne(oif(), me()), Statement::Masquerade(None)],
                );
            }
        }
        if !cfg.userland_proxy {
            // Loopback clients of published ports, DNATed in `output`, leave with a local
            // source address the container can answer.
            t.rule(
                "postrouting",
                &comment,
                vec![
                    eq(oif(), me()),
                    eq(fib_type(FibFlag::Saddr), s("local")),
                    Statement::Masquerade(None),
                ],
            );
        }

        // forward
        let others: Vec<String> = names.iter().filter(|n| *n != name).cloned().collect();
        if !others.is_empty() {
            t.rule(
                "forward",
                &format!("isolate {name}"),
                vec![eq(iif(), me()), eq(oif(), set_of(others)), drop_()],
            );
        }
        if b.internal {
            t.rule(
                "forward",
                &format!("internal {name}"),
                vec![eq(iif(), me()), ne(oif(), me()), drop_()],
            );
            t.rule(
                "forward",
                &format!("internal {name}"),
                vec![eq(oif(), me()), ne(iif(), me()), drop_()],
            );
        }
        t.rule(
            "forward",
            &comment,
            vec![
                eq(oif(), me()),
                mat(
                    ct("state"),
                    Operator::IN,
                    Expression::List(vec![s("established"), s("related")]),
                ),
                accept(),
            ],
        );
        t.rule(
            "forward",
            &comment,
            vec![
                eq(oif(), me()),
                ne(iif(), me()),
                mat(ct("status"), Operator::IN, s("dnat")),
                accept(),
            ],
        );
        t.rule(
            "forward",
            &format!("icc {name}"),
            vec![
                eq(iif(), me()),
                eq(oif(), me()),
                if b.icc { accept() } else { drop_() },
            ],
        );
        if !b.internal {
            t.rule("forward", &comment, vec![eq(iif(), me()), accept()]);
        }
        t.rule("forward", &comment, vec![eq(oif(), me()), drop_()]);
    }

    for (bridge, p) in &rules.ports {
        if p.host_ip.is_ipv4() != p.container_ip.is_ipv4() {
            // Only the proxy can cross families.
            continue;
        }
        let proto = p.protocol.as_str();
        let mut expr = Vec::new();
        if cfg.userland_proxy {
            // The container's own bridge reaches published ports through the proxy.
            expr.push(ne(meta(MetaKey::Iifname), s(bridge.clone())));
        }
        if p.host_ip.is_unspecified() {
            expr.push(nfproto(&p.container_ip));
        } else {
            expr.push(eq(
                addr_field(&p.host_ip, "daddr"),
                s(p.host_ip.to_string()),
            ));
        }
        expr.push(eq(
            payload(proto, "dport"),
            Expression::Number(u32::from(p.host_port)),
        ));
        expr.push(Statement::DNAT(Some(NAT {
            addr: Some(s(p.container_ip.to_string())),
            family: Some(if p.container_ip.is_ipv4() {
                NATFamily::IP
            } else {
                NATFamily::IP6
            }),
            port: Some(Expression::Number(u32::from(p.container_port))),
            flags: None,
        })));
        let comment = format!(
            "{bridge} {}:{}/{proto} -> {}:{}",
            p.host_ip, p.host_port, p.container_ip, p.container_port
        );
        t.rule("published", &comment, expr);
        if !cfg.userland_proxy {
            // Hairpin: a container reaching its own published port.
            t.rule(
                "postrouting",
                &comment,
                vec![
                    eq(
                        addr_field(&p.container_ip, "saddr"),
                        s(p.container_ip.to_string()),
                    ),
                    eq(
                        addr_field(&p.container_ip, "daddr"),
                        s(p.container_ip.to_string()),
                    ),
                    eq(
                        payload(proto, "dport"),
                        Expression::Number(u32::from(p.container_port)),
                    ),
                    Statement::Masquerade(None),
                ],
            );
        }
    }

    Nftables {
        objects: Cow::Owned(t.objects),
    }
}

fn loopback4() -> ipnet::Ipv4Net {
    ipnet::Ipv4Net::new(std::net::Ipv4Addr::new(127, 0, 0, 0), 8).unwrap_or_default()
}

/// The transaction that removes the table (a no-op when it is absent).
pub fn render_delete(cfg: &FirewallConfig) -> Nftables<'static> {
    let table = Table {
        family: NfFamily::INet,
        name: Cow::Owned(cfg.table.clone()),
        handle: None,
    };
    Nftables {
        objects: Cow::Owned(vec![
            NfObject::CmdObject(NfCmd::Add(NfListObject::Table(table.clone()))),
            NfObject::CmdObject(NfCmd::Delete(NfListObject::Table(table))),
        ]),
    }
}

/// Runs `nft`. The real one is [`NftCommand`]; tests record instead.
pub trait NftRunner: Send + Sync {
    /// `nft <args>` with `stdin`, returning stdout.
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<String, FirewallError>;
}

/// The `nft` binary, run inside a namespace (the child inherits the namespace of the thread
/// that spawns it, a thread of [`NetNs::run`]).
pub struct NftCommand {
    ns: NetNs,
    program: PathBuf,
}

impl NftCommand {
    pub fn new(ns: NetNs) -> NftCommand {
        NftCommand {
            ns,
            program: PathBuf::from("nft"),
        }
    }

    pub fn with_program(ns: NetNs, program: impl Into<PathBuf>) -> NftCommand {
        NftCommand {
            ns,
            program: program.into(),
        }
    }
}

impl NftRunner for NftCommand {
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<String, FirewallError> {
        let program = self.program.clone();
        let output = self
            .ns
            .run(|| -> Result<std::process::Output, std::io::Error> {
                let mut child = Command::new(&program)
                    .args(args)
                    .stdin(if stdin.is_some() {
                        Stdio::piped()
                    } else {
                        Stdio::null()
                    })
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()?;
                if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
                    pipe.write_all(input.as_bytes())?;
                }
                child.wait_with_output()
            })?;
        let output = output.map_err(|source| FirewallError::Spawn {
            program: self.program.display().to_string(),
            source,
        })?;
        if !output.status.success() {
            return Err(FirewallError::Nft {
                args: args.join(" "),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// The engine's table in one namespace, kept equal to [`Rules`].
pub struct Firewall {
    cfg: FirewallConfig,
    runner: Arc<dyn NftRunner>,
    rules: Mutex<Rules>,
    /// Serializes transactions so they reach the kernel in the order of state changes.
    apply_lock: tokio::sync::Mutex<()>,
}

impl Firewall {
    pub fn new(cfg: FirewallConfig, runner: Arc<dyn NftRunner>) -> Firewall {
        Firewall {
            cfg,
            runner,
            rules: Mutex::new(Rules::default()),
            apply_lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn config(&self) -> &FirewallConfig {
        &self.cfg
    }

    /// A copy of the desired state.
    pub fn rules(&self) -> Rules {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Rules> {
        // The state is plain data that every path leaves consistent; a panic elsewhere does
        // not make it wrong.
        self.rules.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the desired state with `f` and applies it; on failure the state is restored.
    async fn update(&self, f: impl FnOnce(&mut Rules)) -> Result<(), FirewallError> {
        let _order = self.apply_lock.lock().await;
        let (before, after) = {
            let mut rules = self.lock();
            let before = rules.clone();
            f(&mut rules);
            (before, rules.clone())
        };
        match self.apply_rules(&after).await {
            Ok(()) => Ok(()),
            Err(e) => {
                *self.lock() = before;
                Err(e)
            }
        }
    }

    async fn apply_rules(&self, rules: &Rules) -> Result<(), FirewallError> {
        let json = serde_json::to_string(&render(&self.cfg, rules))?;
        debug!(
            table = self.cfg.table,
            bridges = rules.bridges.len(),
            ports = rules.ports.len(),
            "apply nftables table"
        );
        self.nft(vec!["-j".into(), "-f".into(), "-".into()], Some(json))
            .await
            .map(|_| ())
    }

    async fn nft(&self, args: Vec<String>, stdin: Option<String>) -> Result<String, FirewallError> {
        let runner = self.runner.clone();
        // The runner blocks (it waits for nft); a blocking-pool thread never changes its
        // namespace (NftCommand enters the namespace on a thread of its own).
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            runner.run(&args, stdin.as_deref())
        })
        .await
        .map_err(|e| FirewallError::Task(e.to_string()))?
    }

    /// Makes the kernel's table exactly `rules` (reconcile at start; leftovers vanish).
    pub async fn replace(&self, rules: Rules) -> Result<(), FirewallError> {
        self.update(|r| *r = rules).await
    }

    /// Applies the current state again.
    pub async fn apply(&self) -> Result<(), FirewallError> {
        self.update(|_| {}).await
    }

    pub async fn add_bridge(&self, rules: BridgeRules) -> Result<(), FirewallError> {
        self.update(|r| {
            r.bridges.insert(rules.bridge.clone(), rules);
        })
        .await
    }

    /// Removes a bridge and its published ports.
    pub async fn remove_bridge(&self, bridge: &str) -> Result<(), FirewallError> {
        self.update(|r| {
            r.bridges.remove(bridge);
            r.ports.retain(|(b, _)| b != bridge);
        })
        .await
    }

    pub async fn add_ports(
        &self,
        bridge: &str,
        ports: &[PortMapping],
    ) -> Result<(), FirewallError> {
        if !self.lock().bridges.contains_key(bridge) {
            return Err(FirewallError::UnknownBridge(bridge.to_owned()));
        }
        self.update(|r| {
            for p in ports {
                r.ports.insert((bridge.to_owned(), *p));
            }
        })
        .await
    }

    pub async fn remove_ports(
        &self,
        bridge: &str,
        ports: &[PortMapping],
    ) -> Result<(), FirewallError> {
        self.update(|r| {
            for p in ports {
                r.ports.remove(&(bridge.to_owned(), *p));
            }
        })
        .await
    }

    /// Deletes the table from the kernel and forgets the state.
    pub async fn delete_table(&self) -> Result<(), FirewallError> {
        let _order = self.apply_lock.lock().await;
        let json = serde_json::to_string(&render_delete(&self.cfg))?;
        self.nft(vec!["-j".into(), "-f".into(), "-".into()], Some(json))
            .await?;
        *self.lock() = Rules::default();
        Ok(())
    }

    /// The kernel's table as `nft -j list table` prints it (for diagnostics and tests).
    pub async fn list(&self) -> Result<serde_json::Value, FirewallError> {
        let out = self
            .nft(
                vec![
                    "-j".into(),
                    "list".into(),
                    "table".into(),
                    "inet".into(),
                    self.cfg.table.clone(),
                ],
                None,
            )
            .await?;
        Ok(serde_json::from_str(&out)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what would have been run; fails when told to.
    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<(Vec<String>, Option<String>)>>,
        fail: std::sync::atomic::AtomicBool,
    }

    impl NftRunner for Recorder {
        fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<String, FirewallError> {
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(FirewallError::Nft {
                    args: args.join(" "),
                    stderr: "boom".into(),
                });
            }
            self.calls.lock().unwrap_or_else(|p| p.into_inner()).push((
                args.iter().map(|s| s.to_string()).collect(),
                stdin.map(str::to_owned),
            ));
            Ok(String::new())
        }
    }

    fn net(s: &str) -> IpNet {
        s.parse().expect("net")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    /// Rules as `(chain, comment, statements json)`, for asserting on.
    fn rules_of(n: &Nftables) -> Vec<(String, String, String)> {
        n.objects
            .iter()
            .filter_map(|o| match o {
                NfObject::CmdObject(NfCmd::Add(NfListObject::Rule(r))) => Some((
                    r.chain.to_string(),
                    r.comment.as_deref().unwrap_or("").to_owned(),
                    serde_json::to_string(&r.expr).unwrap_or_default(),
                )),
                _ => None,
            })
            .collect()
    }

    fn sample() -> Rules {
        let mut rules = Rules::default();
        rules.bridges.insert(
            "br-a".into(),
            BridgeRules::new("br-a", vec![net("10.1.0.0/24")]),
        );
        let mut internal = BridgeRules::new("br-b", vec![net("10.2.0.0/24"), net("fd00:2::/64")]);
        internal.internal = true;
        rules.bridges.insert("br-b".into(), internal);
        rules.ports.insert((
            "br-a".into(),
            PortMapping {
                protocol: Protocol::Tcp,
                host_ip: ip("0.0.0.0"),
                host_port: 8080,
                container_ip: ip("10.1.0.2"),
                container_port: 80,
            },
        ));
        rules.ports.insert((
            "br-a".into(),
            PortMapping {
                protocol: Protocol::Udp,
                host_ip: ip("127.0.0.1"),
                host_port: 5353,
                container_ip: ip("10.1.0.2"),
                container_port: 53,
            },
        ));
        rules
    }

    #[test]
    fn table_is_replaced_whole() -> Result<(), serde_json::Error> {
        let n = render(&FirewallConfig::default(), &Rules::default());
        let v = serde_json::to_value(&n)?;
        let cmds = v["nftables"].as_array().cloned().unwrap_or_default();
        let table = serde_json::json!({"family": "inet", "name": "berth"});
        assert_eq!(cmds[0], serde_json::json!({"add": {"table": table}}));
        assert_eq!(cmds[1], serde_json::json!({"delete": {"table": table}}));
        assert_eq!(cmds[2], serde_json::json!({"add": {"table": table}}));
        let chains: Vec<_> = cmds
            .iter()
            .filter_map(|c| c["add"]["chain"]["name"].as_str())
            .collect();
        assert_eq!(
            chains,
            [
                "prerouting",
                "output",
                "postrouting",
                "forward",
                "published"
            ]
        );
        Ok(())
    }

    #[test]
    fn bridge_rules() {
        let rules = rules_of(&render(&FirewallConfig::default(), &sample()));
        let find = |chain: &str, comment: &str| -> Vec<String> {
            rules
                .iter()
                .filter(|(c, m, _)| c == chain && m == comment)
                .map(|(_, _, e)| e.clone())
                .collect()
        };
        // Masquerade for the regular network only.
        let masq = find("postrouting", "bridge br-a");
        assert_eq!(masq.len(), 1);
        assert!(
            masq[0].contains(r#""saddr"}},"right":{"prefix":{"addr":"10.1.0.0","len":24}}"#),
            "{}",
            masq[0]
        );
        assert!(masq[0].contains(r#"{"masquerade":null}"#), "{}", masq[0]);
        assert!(find("postrouting", "bridge br-b").is_empty());
        // Isolation both ways.
        let iso = find("forward", "isolate br-a");
        assert_eq!(iso.len(), 1);
        assert!(iso[0].contains(r#""right":{"set":["br-b"]}"#), "{}", iso[0]);
        assert_eq!(find("forward", "isolate br-b").len(), 1);
        // Internal drops, and no outbound accept for it.
        assert_eq!(find("forward", "internal br-b").len(), 2);
        assert!(find("forward", "internal br-a").is_empty());
        let b_rules = find("forward", "bridge br-b");
        assert!(b_rules.iter().all(|e| !e.contains(r#"[{"match":{"left":{"meta":{"key":"iifname"}},"right":"br-b","op":"=="}},{"accept":null}]"#)));
    }

    #[test]
    fn published_rules() {
        let rules = rules_of(&render(&FirewallConfig::default(), &sample()));
        let published: Vec<_> = rules.iter().filter(|(c, _, _)| c == "published").collect();
        assert_eq!(published.len(), 2);
        let tcp = &published[0].2;
        assert!(
            tcp.contains(
                r#"{"match":{"left":{"meta":{"key":"iifname"}},"right":"br-a","op":"!="}}"#
            ),
            "{tcp}"
        );
        assert!(tcp.contains(r#""right":"ipv4""#), "{tcp}");
        assert!(
            tcp.contains(r#"{"payload":{"protocol":"tcp","field":"dport"}},"right":8080"#),
            "{tcp}"
        );
        assert!(
            tcp.contains(r#"{"dnat":{"addr":"10.1.0.2","family":"ip","port":80}}"#),
            "{tcp}"
        );
        let udp = &published[1].2;
        assert!(
            udp.contains(r#"{"payload":{"protocol":"ip","field":"daddr"}},"right":"127.0.0.1""#),
            "{udp}"
        );
        // Output skips loopback while the proxy serves it.
        let output: Vec<_> = rules.iter().filter(|(c, _, _)| c == "output").collect();
        assert_eq!(output.len(), 2);
        assert!(output[0].2.contains(r#"{"match":{"left":{"payload":{"protocol":"ip","field":"daddr"}},"right":{"prefix":{"addr":"127.0.0.0","len":8}},"op":"!="}}"#));
    }

    #[test]
    fn without_proxy_loopback_is_dnated_and_masqueraded() {
        let cfg = FirewallConfig {
            userland_proxy: false,
            ..FirewallConfig::default()
        };
        let rules = rules_of(&render(&cfg, &sample()));
        let output: Vec<_> = rules.iter().filter(|(c, _, _)| c == "output").collect();
        assert_eq!(output.len(), 1);
        assert!(!output[0].2.contains("127.0.0.0"));
        let post: Vec<_> = rules
            .iter()
            .filter(|(c, _, e)| {
                c == "postrouting" && e.contains(r#"{"fib":{"result":"type","flags":["saddr"]}}"#)
            })
            .collect();
        assert_eq!(post.len(), 2, "one per bridge");
        let hairpin: Vec<_> = rules
            .iter()
            .filter(|(c, m, _)| c == "postrouting" && m.contains("->"))
            .collect();
        assert_eq!(hairpin.len(), 2);
        let published: Vec<_> = rules.iter().filter(|(c, _, _)| c == "published").collect();
        assert!(published.iter().all(|(_, _, e)| !e.contains("iifname")));
    }

    #[tokio::test]
    async fn failed_apply_restores_state() -> Result<(), FirewallError> {
        let rec = Arc::new(Recorder::default());
        let fw = Firewall::new(FirewallConfig::default(), rec.clone());
        fw.add_bridge(BridgeRules::new("br-a", vec![net("10.1.0.0/24")]))
            .await?;
        assert_eq!(fw.rules().bridges.len(), 1);
        rec.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        let err = fw
            .add_bridge(BridgeRules::new("br-b", vec![net("10.2.0.0/24")]))
            .await;
        assert!(matches!(err, Err(FirewallError::Nft { .. })));
        assert_eq!(fw.rules().bridges.len(), 1, "state is what the kernel has");
        rec.fail.store(false, std::sync::atomic::Ordering::SeqCst);
        let unknown = fw.add_ports("br-x", &[]).await;
        assert!(matches!(unknown, Err(FirewallError::UnknownBridge(_))));
        fw.remove_bridge("br-a").await?;
        fw.delete_table().await?;
        let calls = rec.calls.lock().unwrap_or_else(|p| p.into_inner());
        assert_eq!(calls.len(), 3);
        assert!(calls.iter().all(|(args, _)| args == &["-j", "-f", "-"]));
        let last = calls[2].1.as_deref().unwrap_or("");
        assert!(
            last.contains(r#"{"delete":{"table":{"family":"inet","name":"berth"}}}"#),
            "{last}"
        );
        Ok(())
    }
}
