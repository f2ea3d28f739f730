//! `crds/fleetpipeline.yaml` is the output of `fleet-operator crd`, checked in.
//! This fails when the types change and the file was not regenerated.

use fleet_operator::crd::FleetPipeline;
use kube::CustomResourceExt;

#[test]
fn committed_crd_matches_the_types() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/fleetpipeline.yaml");
    let committed = std::fs::read_to_string(path).expect("crds/fleetpipeline.yaml is readable");
    let generated = serde_yaml::to_string(&FleetPipeline::crd()).expect("CRD renders");
    assert!(
        committed == generated,
        "crds/fleetpipeline.yaml is stale: run `cargo run -p fleet-operator -- crd > crds/fleetpipeline.yaml`"
    );
}
