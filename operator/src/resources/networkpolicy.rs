//! NetworkPolicies. The pipeline's pods deny everything by default; each
//! component may reach only what it needs:
//!
//! - ingest pods: DNS (UDP and TCP 53), the database peer on its port, the
//!   Tracksolid endpoints on their ports, the geocoder on its port;
//! - webhook pods: DNS and the database; ingress only from `allowFrom` on the
//!   receiver's port;
//! - opt-in (`database.peer.ingressPolicy`): a policy on the database pods
//!   admitting this pipeline's pods, the operator and the declared extra peers.

use super::{meta, webhook};
use crate::desired::DesiredPipeline;
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// Labels selecting every pod of a pipeline.
pub fn pipeline_pods(pipeline: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (meta::LABEL_NAME.to_owned(), "fleet-pipeline".to_owned()),
        (meta::LABEL_INSTANCE.to_owned(), pipeline.to_owned()),
    ])
}

fn component_pods(pipeline: &str, component: &str) -> LabelSelector {
    let mut labels = pipeline_pods(pipeline);
    labels.insert(meta::LABEL_COMPONENT.to_owned(), component.to_owned());
    LabelSelector {
        match_labels: Some(labels),
        ..Default::default()
    }
}

fn tcp(port: i32) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(port)),
        protocol: Some("TCP".to_owned()),
        ..Default::default()
    }
}

fn anywhere() -> Vec<NetworkPolicyPeer> {
    ["0.0.0.0/0", "::/0"]
        .into_iter()
        .map(|cidr| NetworkPolicyPeer {
            ip_block: Some(IPBlock {
                cidr: cidr.to_owned(),
                except: None,
            }),
            ..Default::default()
        })
        .collect()
}

fn dns_rule() -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        ports: Some(
            ["UDP", "TCP"]
                .into_iter()
                .map(|protocol| NetworkPolicyPort {
                    port: Some(IntOrString::Int(53)),
                    protocol: Some(protocol.to_owned()),
                    ..Default::default()
                })
                .collect(),
        ),
        to: None,
    }
}

fn database_rule(desired: &DesiredPipeline) -> Option<NetworkPolicyEgressRule> {
    let peer = desired.network.database_peer.as_ref()?;
    Some(NetworkPolicyEgressRule {
        to: Some(vec![NetworkPolicyPeer {
            pod_selector: peer.pod_selector.clone(),
            ip_block: peer.ip_block.clone(),
            ..Default::default()
        }]),
        ports: Some(vec![tcp(desired.network.database_port)]),
    })
}

fn policy(
    desired: &DesiredPipeline,
    owner: &OwnerReference,
    suffix: &str,
    component: &str,
    pod_selector: LabelSelector,
    spec: NetworkPolicySpec,
) -> NetworkPolicy {
    NetworkPolicy {
        metadata: meta::object_meta(
            format!("{}-{suffix}", desired.name),
            &desired.namespace,
            meta::labels(&desired.name, component),
            owner,
        ),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(pod_selector),
            ..spec
        }),
    }
}

/// Every NetworkPolicy of a pipeline. `operator` selects the operator's pods
/// (for the database ingress policy); None when it runs outside the cluster.
pub fn build(
    desired: &DesiredPipeline,
    owner: &OwnerReference,
    operator: Option<&NetworkPolicyPeer>,
) -> Vec<NetworkPolicy> {
    let name = &desired.name;
    let mut policies = vec![policy(
        desired,
        owner,
        "default-deny",
        "network-policy",
        LabelSelector {
            match_labels: Some(pipeline_pods(name)),
            ..Default::default()
        },
        NetworkPolicySpec {
            policy_types: Some(vec!["Ingress".to_owned(), "Egress".to_owned()]),
            ..Default::default()
        },
    )];

    // Ingest: DNS, database, Tracksolid, geocoder.
    let mut egress = vec![dns_rule()];
    egress.extend(database_rule(desired));
    let net = &desired.network;
    egress.push(NetworkPolicyEgressRule {
        to: Some(if net.tracksolid_peers.is_empty() {
            anywhere()
        } else {
            net.tracksolid_peers.clone()
        }),
        ports: Some(net.tracksolid_ports.iter().copied().map(tcp).collect()),
    });
    if let Some(port) = net.geocoder_port {
        egress.push(NetworkPolicyEgressRule {
            to: Some(if net.geocoder_peers.is_empty() {
                anywhere()
            } else {
                net.geocoder_peers.clone()
            }),
            ports: Some(vec![tcp(port)]),
        });
    }
    policies.push(policy(
        desired,
        owner,
        "ingest-egress",
        "ingest",
        component_pods(name, "ingest"),
        NetworkPolicySpec {
            policy_types: Some(vec!["Egress".to_owned()]),
            egress: Some(egress),
            ..Default::default()
        },
    ));

    if let Some(w) = &desired.webhook {
        let mut egress = vec![dns_rule()];
        egress.extend(database_rule(desired));
        policies.push(policy(
            desired,
            owner,
            "webhook",
            webhook::COMPONENT,
            component_pods(name, webhook::COMPONENT),
            NetworkPolicySpec {
                policy_types: Some(vec!["Ingress".to_owned(), "Egress".to_owned()]),
                // No allowFrom: the default deny stands.
                ingress: (!w.allow_from.is_empty()).then(|| {
                    vec![NetworkPolicyIngressRule {
                        from: Some(w.allow_from.clone()),
                        ports: Some(vec![tcp(webhook::PORT)]),
                    }]
                }),
                egress: Some(egress),
                ..Default::default()
            },
        ));
    }

    let db_pods = net
        .database_peer
        .as_ref()
        .and_then(|p| p.pod_selector.as_ref());
    if let (Some(extra), Some(db_pods)) = (&net.database_ingress, db_pods) {
        {
            let mut from = vec![NetworkPolicyPeer {
                pod_selector: Some(LabelSelector {
                    match_labels: Some(pipeline_pods(name)),
                    ..Default::default()
                }),
                ..Default::default()
            }];
            from.extend(operator.cloned());
            let mut ingress = vec![NetworkPolicyIngressRule {
                from: Some(from),
                ports: Some(vec![tcp(net.database_port)]),
            }];
            ingress.extend(extra.iter().cloned());
            policies.push(policy(
                desired,
                owner,
                "database-ingress",
                "database",
                db_pods.clone(),
                NetworkPolicySpec {
                    policy_types: Some(vec!["Ingress".to_owned()]),
                    ingress: Some(ingress),
                    ..Default::default()
                },
            ));
        }
    }
    policies
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{resolve, tests::example};

    fn names(policies: &[NetworkPolicy]) -> Vec<String> {
        policies
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect()
    }

    #[test]
    fn default_set_without_database_ingress() {
        let fp = example();
        let d = resolve(&fp, "img").unwrap();
        let owner = meta::owner_reference(&fp).unwrap();
        let p = build(&d, &owner, None);
        assert_eq!(
            names(&p),
            [
                "kenya-fleet-default-deny",
                "kenya-fleet-ingest-egress",
                "kenya-fleet-webhook"
            ]
        );
        let egress = p[1].spec.as_ref().unwrap().egress.clone().unwrap();
        // DNS, database, Tracksolid (443), geocoder (8080).
        assert_eq!(egress.len(), 4);
        assert_eq!(
            egress[2].ports.as_ref().unwrap()[0].port,
            Some(IntOrString::Int(443))
        );
        assert_eq!(
            egress[3].ports.as_ref().unwrap()[0].port,
            Some(IntOrString::Int(8080))
        );
    }

    #[test]
    fn database_ingress_is_opt_in_and_lists_the_operator_and_extra_peers() {
        let mut fp = example();
        let peer = fp.spec.database.peer.as_mut().unwrap();
        peer.ingress_policy = Some(crate::crd::DatabaseIngressPolicy {
            enabled: Some(true),
            extra_ingress: vec![NetworkPolicyIngressRule {
                from: None,
                ports: Some(vec![tcp(9187)]),
            }],
        });
        let d = resolve(&fp, "img").unwrap();
        let owner = meta::owner_reference(&fp).unwrap();
        let operator = NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector::default()),
            ..Default::default()
        };
        let p = build(&d, &owner, Some(&operator));
        let db = p.last().unwrap();
        assert_eq!(
            db.metadata.name.as_deref(),
            Some("kenya-fleet-database-ingress")
        );
        let ingress = db.spec.as_ref().unwrap().ingress.clone().unwrap();
        assert_eq!(
            ingress[0].from.as_ref().unwrap().len(),
            2,
            "pipeline pods + operator"
        );
        assert_eq!(ingress.len(), 2, "plus the extra rule");
    }
}
