//! A NetworkPolicy evaluator for tests: given the policies stored in the
//! apiserver and a model of endpoints, does a connection get through?
//!
//! Semantics of `networking.k8s.io/v1` as documented upstream:
//! - a pod is isolated for ingress (egress) when a policy in its namespace
//!   selects it and lists Ingress (Egress) in `policyTypes` (default: Ingress,
//!   plus Egress when the policy has egress rules);
//! - policies only add allows: a connection passes when the source's egress
//!   and the destination's ingress each allow it (or are not isolated);
//! - a rule with no `from`/`to` matches every peer, with no `ports` every port;
//! - a peer with `podSelector` only selects pods in the policy's namespace,
//!   `namespaceSelector` only selects every pod of the matching namespaces,
//!   both select matching pods in matching namespaces;
//! - `ipBlock` matches by IP (CIDR minus `except`). How CNIs treat pod IPs in
//!   an ipBlock is implementation-defined; this evaluator matches them by IP.
//!
//! Named ports and SCTP are not modelled (the operator uses neither).

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;
use std::net::IpAddr;

pub type Labels = BTreeMap<String, String>;

/// A pod (namespace + labels) or an address outside the cluster.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub name: String,
    /// Namespace name and labels; None outside the cluster.
    pub namespace: Option<(String, Labels)>,
    pub pod_labels: Labels,
    pub ip: IpAddr,
}

impl Endpoint {
    pub fn pod(name: &str, namespace: &str, pod_labels: Labels, ip: &str) -> Self {
        let ns_labels = Labels::from([(
            "kubernetes.io/metadata.name".to_owned(),
            namespace.to_owned(),
        )]);
        Endpoint {
            name: name.to_owned(),
            namespace: Some((namespace.to_owned(), ns_labels)),
            pod_labels,
            ip: ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
        }
    }

    pub fn external(name: &str, ip: &str) -> Self {
        Endpoint {
            name: name.to_owned(),
            namespace: None,
            pod_labels: Labels::new(),
            ip: ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
        }
    }
}

/// Does `selector` match `labels`? (An empty selector matches everything.)
pub fn selector_matches(selector: &LabelSelector, labels: &Labels) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.clone().unwrap_or_default();
        match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let Some((net, len)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(len)) = (net.parse::<IpAddr>(), len.parse::<u32>()) else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) if len <= 32 => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if len <= 128 => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

fn ip_block_matches(block: &IPBlock, ip: IpAddr) -> bool {
    cidr_contains(&block.cidr, ip) && !block.except.iter().flatten().any(|e| cidr_contains(e, ip))
}

/// Does `peer` (in a policy of `policy_ns`) select `ep`?
pub fn peer_matches(peer: &NetworkPolicyPeer, policy_ns: &str, ep: &Endpoint) -> bool {
    if let Some(block) = &peer.ip_block {
        return ip_block_matches(block, ep.ip);
    }
    let Some((ns_name, ns_labels)) = &ep.namespace else {
        return false;
    };
    let ns_ok = match &peer.namespace_selector {
        Some(sel) => selector_matches(sel, ns_labels),
        None => ns_name == policy_ns,
    };
    let pod_ok = peer
        .pod_selector
        .as_ref()
        .is_none_or(|sel| selector_matches(sel, &ep.pod_labels));
    ns_ok && pod_ok && (peer.pod_selector.is_some() || peer.namespace_selector.is_some())
}

fn ports_match(ports: Option<&Vec<NetworkPolicyPort>>, port: i32, protocol: &str) -> bool {
    let Some(ports) = ports.filter(|p| !p.is_empty()) else {
        return true;
    };
    ports.iter().any(|p| {
        let proto_ok = p.protocol.as_deref().unwrap_or("TCP") == protocol;
        let port_ok = match &p.port {
            None => true,
            Some(IntOrString::Int(start)) => {
                let end = p.end_port.unwrap_or(*start);
                (*start..=end).contains(&port)
            }
            // Named ports are not modelled.
            Some(IntOrString::String(_)) => false,
        };
        proto_ok && port_ok
    })
}

fn policy_types(p: &NetworkPolicy) -> Vec<String> {
    let spec = p.spec.clone().unwrap_or_default();
    spec.policy_types.unwrap_or_else(|| {
        let mut types = vec!["Ingress".to_owned()];
        if spec.egress.is_some() {
            types.push("Egress".to_owned());
        }
        types
    })
}

fn selects(p: &NetworkPolicy, ep: &Endpoint) -> bool {
    let Some((ns, _)) = &ep.namespace else {
        return false;
    };
    p.metadata.namespace.as_deref() == Some(ns.as_str())
        && p.spec
            .as_ref()
            .and_then(|s| s.pod_selector.as_ref())
            .is_none_or(|sel| selector_matches(sel, &ep.pod_labels))
}

/// Is a connection from `src` to `dst` on `port`/`protocol` allowed?
pub fn allowed(
    policies: &[NetworkPolicy],
    src: &Endpoint,
    dst: &Endpoint,
    port: i32,
    protocol: &str,
) -> bool {
    // Egress side.
    let egress: Vec<_> = policies
        .iter()
        .filter(|p| selects(p, src) && policy_types(p).iter().any(|t| t == "Egress"))
        .collect();
    let egress_ok = egress.is_empty()
        || egress.iter().any(|p| {
            let ns = p.metadata.namespace.clone().unwrap_or_default();
            p.spec
                .iter()
                .flat_map(|s| s.egress.iter().flatten())
                .any(|rule| {
                    let to_ok = match &rule.to {
                        None => true,
                        Some(peers) if peers.is_empty() => true,
                        Some(peers) => peers.iter().any(|peer| peer_matches(peer, &ns, dst)),
                    };
                    to_ok && ports_match(rule.ports.as_ref(), port, protocol)
                })
        });
    // Ingress side.
    let ingress: Vec<_> = policies
        .iter()
        .filter(|p| selects(p, dst) && policy_types(p).iter().any(|t| t == "Ingress"))
        .collect();
    let ingress_ok = ingress.is_empty()
        || ingress.iter().any(|p| {
            let ns = p.metadata.namespace.clone().unwrap_or_default();
            p.spec
                .iter()
                .flat_map(|s| s.ingress.iter().flatten())
                .any(|rule| {
                    let from_ok = match &rule.from {
                        None => true,
                        Some(peers) if peers.is_empty() => true,
                        Some(peers) => peers.iter().any(|peer| peer_matches(peer, &ns, src)),
                    };
                    from_ok && ports_match(rule.ports.as_ref(), port, protocol)
                })
        });
    egress_ok && ingress_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::networking::v1::{
        NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicySpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn sel(pairs: &[(&str, &str)]) -> LabelSelector {
        LabelSelector {
            match_labels: Some(labels(pairs)),
            ..Default::default()
        }
    }

    fn policy(ns: &str, pods: LabelSelector, spec: NetworkPolicySpec) -> NetworkPolicy {
        let mut p = NetworkPolicy::default();
        p.metadata.namespace = Some(ns.to_owned());
        p.spec = Some(NetworkPolicySpec {
            pod_selector: Some(pods),
            ..spec
        });
        p
    }

    fn tcp(port: i32) -> NetworkPolicyPort {
        NetworkPolicyPort {
            port: Some(IntOrString::Int(port)),
            ..Default::default()
        }
    }

    fn a() -> Endpoint {
        Endpoint::pod("a", "ns", labels(&[("app", "a")]), "10.0.0.1")
    }
    fn b() -> Endpoint {
        Endpoint::pod("b", "ns", labels(&[("app", "b")]), "10.0.0.2")
    }

    #[test]
    fn no_policy_allows_everything() {
        assert!(allowed(&[], &a(), &b(), 80, "TCP"));
    }

    #[test]
    fn default_deny_ingress_blocks_and_an_allow_reopens() {
        let deny = policy("ns", sel(&[("app", "b")]), NetworkPolicySpec::default());
        assert!(!allowed(std::slice::from_ref(&deny), &a(), &b(), 80, "TCP"));
        assert!(
            allowed(std::slice::from_ref(&deny), &b(), &a(), 80, "TCP"),
            "only b is isolated"
        );
        let allow = policy(
            "ns",
            sel(&[("app", "b")]),
            NetworkPolicySpec {
                ingress: Some(vec![NetworkPolicyIngressRule {
                    from: Some(vec![NetworkPolicyPeer {
                        pod_selector: Some(sel(&[("app", "a")])),
                        ..Default::default()
                    }]),
                    ports: Some(vec![tcp(80)]),
                }]),
                ..Default::default()
            },
        );
        let both = [deny, allow];
        assert!(allowed(&both, &a(), &b(), 80, "TCP"));
        assert!(!allowed(&both, &a(), &b(), 81, "TCP"), "other port");
        assert!(!allowed(&both, &a(), &b(), 80, "UDP"), "other protocol");
        let other_ns = Endpoint::pod("c", "elsewhere", labels(&[("app", "a")]), "10.0.1.1");
        assert!(
            !allowed(&both, &other_ns, &b(), 80, "TCP"),
            "podSelector alone is namespace-local"
        );
    }

    #[test]
    fn egress_isolation_only_with_egress_type() {
        let deny_egress = policy(
            "ns",
            sel(&[("app", "a")]),
            NetworkPolicySpec {
                policy_types: Some(vec!["Egress".to_owned()]),
                ..Default::default()
            },
        );
        assert!(!allowed(
            std::slice::from_ref(&deny_egress),
            &a(),
            &b(),
            80,
            "TCP"
        ));
        let ingress_only = policy("ns", sel(&[("app", "a")]), NetworkPolicySpec::default());
        assert!(
            allowed(&[ingress_only], &a(), &b(), 80, "TCP"),
            "default type is Ingress only"
        );
        let dns = policy(
            "ns",
            sel(&[("app", "a")]),
            NetworkPolicySpec {
                egress: Some(vec![NetworkPolicyEgressRule {
                    to: None,
                    ports: Some(vec![NetworkPolicyPort {
                        port: Some(IntOrString::Int(53)),
                        protocol: Some("UDP".to_owned()),
                        ..Default::default()
                    }]),
                }]),
                ..Default::default()
            },
        );
        let set = [deny_egress, dns];
        assert!(allowed(&set, &a(), &b(), 53, "UDP"));
        assert!(!allowed(&set, &a(), &b(), 53, "TCP"));
    }

    #[test]
    fn namespace_and_pod_selectors_combine() {
        let peer = NetworkPolicyPeer {
            namespace_selector: Some(sel(&[("kubernetes.io/metadata.name", "ingress")])),
            pod_selector: Some(sel(&[("app", "nginx")])),
            ..Default::default()
        };
        let nginx = Endpoint::pod("n", "ingress", labels(&[("app", "nginx")]), "10.0.2.1");
        let other = Endpoint::pod("o", "ingress", labels(&[("app", "other")]), "10.0.2.2");
        let nginx_elsewhere = Endpoint::pod("n2", "ns", labels(&[("app", "nginx")]), "10.0.2.3");
        assert!(peer_matches(&peer, "ns", &nginx));
        assert!(!peer_matches(&peer, "ns", &other));
        assert!(!peer_matches(&peer, "ns", &nginx_elsewhere));
        let any_in_ns = NetworkPolicyPeer {
            namespace_selector: Some(sel(&[("kubernetes.io/metadata.name", "ingress")])),
            ..Default::default()
        };
        assert!(peer_matches(&any_in_ns, "ns", &other));
    }

    #[test]
    fn ip_blocks_honour_except_and_families() {
        let block = IPBlock {
            cidr: "10.0.0.0/8".to_owned(),
            except: Some(vec!["10.1.0.0/16".to_owned()]),
        };
        assert!(ip_block_matches(&block, "10.2.3.4".parse().unwrap()));
        assert!(!ip_block_matches(&block, "10.1.3.4".parse().unwrap()));
        assert!(!ip_block_matches(&block, "11.0.0.1".parse().unwrap()));
        assert!(!ip_block_matches(&block, "::1".parse().unwrap()));
        let all = IPBlock {
            cidr: "0.0.0.0/0".to_owned(),
            except: None,
        };
        assert!(ip_block_matches(&all, "203.0.113.9".parse().unwrap()));
    }

    #[test]
    fn match_expressions() {
        let s = LabelSelector {
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["db".into(), "cache".into()]),
                },
                LabelSelectorRequirement {
                    key: "legacy".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
            ..Default::default()
        };
        assert!(selector_matches(&s, &labels(&[("tier", "db")])));
        assert!(!selector_matches(&s, &labels(&[("tier", "web")])));
        assert!(!selector_matches(
            &s,
            &labels(&[("tier", "db"), ("legacy", "1")])
        ));
        assert!(selector_matches(&LabelSelector::default(), &labels(&[])));
    }
}
