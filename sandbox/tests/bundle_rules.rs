//! Every bundle rule of BUNDLE.md, each with a broken bundle and the exact problem text.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{NODES, TestBundle};
use medic_sandbox::Bundle;
use pretty_assertions::assert_eq;

fn one(b: &TestBundle, want: &str) {
    assert_eq!(b.problems(), vec![want.to_string()]);
}

#[test]
fn the_test_bundle_is_valid() {
    let b = TestBundle::valid();
    assert_eq!(b.problems(), Vec::<String>::new());
    let bundle = Bundle::load(b.path()).unwrap();
    assert_eq!(bundle.clusters[0].objects.len(), 25);
    assert_eq!(bundle.samples.len(), 3);
    assert_eq!(bundle.github[0].commits.len(), 2);
    assert_eq!(bundle.now().to_rfc3339(), "2026-06-23T12:00:00+00:00");
}

#[test]
fn scenario_is_required() {
    let b = TestBundle::valid();
    b.remove("scenario.yaml");
    let got = b.problems();
    assert_eq!(
        got[0],
        "scenario.yaml: scenario.yaml is missing; every bundle needs one"
    );
}

#[test]
fn scenario_yaml_syntax_and_unknown_fields_name_the_line() {
    let b = TestBundle::valid();
    b.edit_scenario("  question: \"Why", "  question: \"Why\" \"");
    one(
        &b,
        "scenario.yaml:11: did not find expected key, while parsing a block mapping",
    );

    let b = TestBundle::valid();
    b.edit_scenario("title:", "colour: red\ntitle:");
    one(
        &b,
        "scenario.yaml:2: unknown field `colour`, expected one of `version`, `title`, `description`, `now`, `clusters`, `start`, `identities`, `reactions`, `expected`",
    );
}

#[test]
fn version_must_be_1() {
    let b = TestBundle::valid();
    b.edit_scenario("version: 1", "version: 2");
    one(&b, "scenario.yaml:1: `version` must be 1, found 2");
}

#[test]
fn now_must_be_rfc3339() {
    let b = TestBundle::valid();
    b.edit_scenario("now: \"2026-06-23T12:00:00Z\"", "now: yesterday");
    one(
        &b,
        "scenario.yaml:4: `now` must be an RFC 3339 timestamp such as \"2026-06-23T12:00:00Z\", found \"yesterday\"",
    );
}

#[test]
fn clusters_are_required_unique_and_match_folders() {
    let b = TestBundle::valid();
    b.remove("metrics");
    b.edit_scenario("  - name: c1\n", "  - name: c1\n  - name: c1\n");
    one(
        &b,
        "scenario.yaml:7: cluster \"c1\" is listed more than once; cluster names must be unique",
    );

    let b = TestBundle::valid();
    b.write("clusters/c9/objects/x.yaml", NODES);
    one(
        &b,
        "clusters/c9: cluster folder \"c9\" is not listed in scenario.yaml `clusters`",
    );

    let b = TestBundle::valid();
    b.remove("metrics");
    b.edit_scenario("  - name: c1\n", "  - name: c1\n  - name: eu-2\n");
    one(
        &b,
        "clusters/eu-2: cluster \"eu-2\" is listed in scenario.yaml but clusters/eu-2/ is missing",
    );
}

#[test]
fn start_needs_exactly_one_of_question_or_alert() {
    let b = TestBundle::valid();
    b.edit_scenario(
        "  question:",
        "  alert: { source: alertmanager, payload: {} }\n  question:",
    );
    one(
        &b,
        "scenario.yaml:10: `start` must give exactly one of `question` or `alert`",
    );
}

#[test]
fn exactly_one_agent_identity_with_unique_names() {
    let b = TestBundle::valid();
    b.edit_scenario("agent: true", "agent: false");
    one(
        &b,
        "scenario.yaml:12: `identities` must mark exactly one identity `agent: true` (medic itself), found 0",
    );

    let b = TestBundle::valid();
    b.edit_scenario("{ name: bob,", "{ name: alice,");
    one(
        &b,
        "scenario.yaml:15: identity \"alice\" is listed more than once; identity names must be unique",
    );
}

#[test]
fn reactions_refer_to_known_clusters_kinds_and_well_formed_conditions() {
    let b = TestBundle::valid();
    b.edit_scenario("{ patch: { cluster: c1,", "{ patch: { cluster: c7,");
    one(
        &b,
        "scenario.yaml:21: reaction refers to cluster \"c7\", which is not listed in `clusters`",
    );

    let b = TestBundle::valid();
    b.edit_scenario("{ cluster: c1, kind: Node,", "{ cluster: c1, kind: Gadget,");
    one(
        &b,
        "scenario.yaml:18: reaction refers to kind \"Gadget\", which cluster \"c1\" does not serve",
    );

    let b = TestBundle::valid();
    b.edit_scenario(
        "path: spec.unschedulable, equals: true",
        "path: spec.unschedulable",
    );
    one(
        &b,
        "scenario.yaml:18: reaction 1 condition on Node must be either `name` + `path` + `equals` or `count` (with optional `selector` / `on_node`)",
    );

    let b = TestBundle::valid();
    b.edit_scenario("path: spec.unschedulable", "path: spec..unschedulable");
    one(
        &b,
        "scenario.yaml:18: path \"spec..unschedulable\" must be a dotted JSON path with no empty segment, e.g. spec.rules.0.backendRefs.1.weight",
    );

    let b = TestBundle::valid();
    b.edit_scenario(
        "{ patch: { cluster: c1,",
        "{ patch: { selector: 'app=x', cluster: c1,",
    );
    one(
        &b,
        "scenario.yaml:21: a patch action has both `name` (llama) and `selector`; keep one",
    );

    let b = TestBundle::valid();
    b.edit_scenario(
        "{ patch: { cluster: c1,",
        "{ patch: { selector: 'app in (', cluster: c1,",
    );
    b.edit_scenario(", name: llama,", ",");
    let problems = b.problems();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("a patch action's selector \"app in (\" is invalid")),
        "{problems:?}"
    );

    let b = TestBundle::valid();
    b.edit_scenario(
        "match: 'xid_errors{node=\"n1\"}'",
        "match: 'rate(xid_errors[5m])'",
    );
    one(
        &b,
        "scenario.yaml:22: delete_series match \"rate(xid_errors[5m])\" must be a series selector such as name{label=\"value\"}",
    );
}

#[test]
fn objects_need_api_version_kind_and_name() {
    let b = TestBundle::valid();
    b.write("clusters/c1/objects/extra.yaml", "metadata: { name: x }\n");
    one(
        &b,
        "clusters/c1/objects/extra.yaml:1: every object needs `apiVersion` and `kind`",
    );

    let b = TestBundle::valid();
    b.write(
        "clusters/c1/objects/extra.yaml",
        "# a comment\napiVersion: v1\nkind: ConfigMap\nmetadata: { namespace: ai }\n",
    );
    one(
        &b,
        "clusters/c1/objects/extra.yaml:2: ConfigMap needs `metadata.name`",
    );
}

#[test]
fn namespaced_kinds_need_a_namespace_and_cluster_scoped_must_not_have_one() {
    let b = TestBundle::valid();
    b.write(
        "clusters/c1/objects/extra.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: cfg }\n",
    );
    one(
        &b,
        "clusters/c1/objects/extra.yaml:1: ConfigMap \"cfg\" is namespaced and needs `metadata.namespace`",
    );

    let b = TestBundle::valid();
    b.write(
        "clusters/c1/objects/extra.yaml",
        "apiVersion: v1\nkind: Node\nmetadata: { name: n9, namespace: ai }\n",
    );
    one(
        &b,
        "clusters/c1/objects/extra.yaml:1: Node \"n9\" is cluster-scoped and must not set `metadata.namespace`",
    );
}

#[test]
fn unknown_kinds_need_a_crd() {
    let widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata: { name: w, namespace: ai }\n";
    let b = TestBundle::valid();
    b.write("clusters/c1/objects/extra.yaml", widget);
    one(
        &b,
        "clusters/c1/objects/extra.yaml:1: Widget \"w\": kind Widget in example.com/v1 is not served; add its CustomResourceDefinition to the objects or use a built-in kind",
    );

    let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: { name: widgets.example.com }\nspec:\n  group: example.com\n  scope: Namespaced\n  names: { kind: Widget, plural: widgets }\n  versions: [{ name: v1, served: true, storage: true }]\n";
    b.write("clusters/c1/objects/crd.yaml", crd);
    assert_eq!(b.problems(), Vec::<String>::new());
}

#[test]
fn builtin_custom_resources_are_known() {
    let b = TestBundle::valid();
    b.write(
        "clusters/c1/objects/crs.yaml",
        "apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata: { name: vm1, namespace: ai }\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: { name: r, namespace: ai }\n---\napiVersion: resource.k8s.io/v1\nkind: DeviceClass\nmetadata: { name: gpu.nvidia.com }\n---\napiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: { name: llama, namespace: ai }\n---\napiVersion: kaito.sh/v1beta1\nkind: Workspace\nmetadata: { name: ws, namespace: ai }\n---\napiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: { name: so, namespace: ai }\n",
    );
    assert_eq!(b.problems(), Vec::<String>::new());
}

#[test]
fn objects_are_unique_per_cluster() {
    let b = TestBundle::valid();
    b.write(
        "clusters/c1/objects/extra.yaml",
        "apiVersion: v1\nkind: Node\nmetadata: { name: n2 }\n",
    );
    one(
        &b,
        "clusters/c1/objects/nodes.yaml:12: Node \"n2\" is defined more than once in this cluster (first at clusters/c1/objects/extra.yaml:1)",
    );
}

#[test]
fn object_yaml_errors_name_the_line_and_other_files_are_rejected() {
    let b = TestBundle::valid();
    b.write("clusters/c1/objects/extra.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: a, namespace: ai }\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: [b\n");
    one(
        &b,
        "clusters/c1/objects/extra.yaml:8: invalid YAML: did not find expected ',' or ']', while parsing a flow sequence",
    );

    let b = TestBundle::valid();
    b.write("clusters/c1/objects/notes.txt", "hello");
    one(
        &b,
        "clusters/c1/objects/notes.txt: objects/ must hold only .yaml or .yml files",
    );

    let b = TestBundle::valid();
    b.write("clusters/c1/objects/list.yaml", "- 1\n- 2\n");
    one(
        &b,
        "clusters/c1/objects/list.yaml:1: each YAML document must be a Kubernetes object (a mapping with apiVersion, kind and metadata)",
    );
}

#[test]
fn kind_list_documents_are_expanded() {
    let b = TestBundle::valid();
    b.write(
        "clusters/c1/objects/list.yaml",
        "apiVersion: v1\nkind: List\nitems:\n  - { apiVersion: v1, kind: ConfigMap, metadata: { name: a, namespace: ai } }\n  - { apiVersion: v1, kind: ConfigMap, metadata: { name: b, namespace: ai } }\n",
    );
    let bundle = Bundle::load(b.path()).unwrap();
    let cms: Vec<&str> = bundle.clusters[0]
        .objects
        .iter()
        .filter(|o| o["kind"] == "ConfigMap")
        .filter_map(|o| o["metadata"]["name"].as_str())
        .collect();
    assert_eq!(cms, vec!["a", "b"]);
}

#[test]
fn defaults_are_filled_and_stable_across_loads() {
    let b = TestBundle::valid();
    let one = Bundle::load(b.path()).unwrap();
    let two = Bundle::load(b.path()).unwrap();
    let node = |bundle: &Bundle| {
        bundle.clusters[0]
            .objects
            .iter()
            .find(|o| o["metadata"]["name"] == "n1")
            .cloned()
            .unwrap()
    };
    let (a, c) = (node(&one), node(&two));
    assert_eq!(a["metadata"]["uid"], c["metadata"]["uid"]);
    assert_eq!(
        a["metadata"]["resourceVersion"],
        c["metadata"]["resourceVersion"]
    );
    assert_eq!(a["metadata"]["creationTimestamp"], "2026-06-22T12:00:00Z");
    assert_eq!(a["metadata"]["uid"].as_str().unwrap().len(), 36);
    // Namespaces used but not declared are added.
    assert!(
        one.clusters[0]
            .objects
            .iter()
            .any(|o| o["kind"] == "Namespace" && o["metadata"]["name"] == "kube-system")
    );
}

#[test]
fn log_lines_start_with_timestamps() {
    let b = TestBundle::valid();
    b.write(
        "clusters/c1/logs/ai/llama-b/vllm.log",
        "2026-06-23T11:58:00Z ok\nno timestamp here\n",
    );
    one(
        &b,
        "clusters/c1/logs/ai/llama-b/vllm.log:2: each log line must start with an RFC 3339 timestamp and a space, e.g. \"2026-06-23T11:58:01.123Z message\", found \"no timestamp here\"",
    );
}

#[test]
fn logs_belong_to_declared_pods_and_containers() {
    let b = TestBundle::valid();
    b.write(
        "clusters/c1/logs/ai/ghost/vllm.log",
        "2026-06-23T11:58:00Z ok\n",
    );
    one(
        &b,
        "clusters/c1/logs/ai/ghost/vllm.log: log for pod ai/ghost, which is not among the cluster's objects",
    );

    let b = TestBundle::valid();
    b.write(
        "clusters/c1/logs/ai/llama-b/other.log",
        "2026-06-23T11:58:00Z ok\n",
    );
    one(
        &b,
        "clusters/c1/logs/ai/llama-b/other.log: pod ai/llama-b has no container \"other\"",
    );

    let b = TestBundle::valid();
    b.write("clusters/c1/logs/ai/llama-b/vllm.txt", "x");
    one(
        &b,
        "clusters/c1/logs/ai/llama-b/vllm.txt: logs must be laid out as logs/<namespace>/<pod>/<container>.log or <container>.previous.log",
    );
}

#[test]
fn metrics_are_openmetrics_ending_with_eof() {
    let b = TestBundle::valid();
    b.write("metrics/gpu.om", "xid_errors{node=\"n1\"} 1 1750679000\n");
    one(
        &b,
        "metrics/gpu.om: invalid OpenMetrics: the file must end with \"# EOF\"",
    );

    let b = TestBundle::valid();
    b.write(
        "metrics/gpu.om",
        "# TYPE x gauge\nx{node=\"n1\"} lots\n# EOF\n",
    );
    one(
        &b,
        "metrics/gpu.om:2: invalid OpenMetrics: value \"lots\" is not a number",
    );

    let b = TestBundle::valid();
    b.write("metrics/gpu.prom", "x 1\n# EOF\n");
    one(
        &b,
        "metrics/gpu.prom: metrics/ must hold only OpenMetrics files ending in .om",
    );
}

#[test]
fn series_carry_a_cluster_label_when_there_are_several_clusters() {
    let b = TestBundle::valid();
    b.edit_scenario(
        "    prometheus: true\n",
        "    prometheus: true\n  - name: c2\n",
    );
    b.write("clusters/c2/objects/nodes.yaml", NODES);
    assert_eq!(
        b.problems(),
        vec![
            "metrics/gpu.om:2: series xid_errors needs a `cluster` label because the bundle has more than one cluster".to_string(),
            "metrics/gpu.om:3: series xid_errors needs a `cluster` label because the bundle has more than one cluster".to_string(),
            "metrics/gpu.om:4: series xid_errors needs a `cluster` label because the bundle has more than one cluster".to_string(),
        ]
    );
}

#[test]
fn github_files_are_json_arrays() {
    let b = TestBundle::valid();
    b.write("github/acme/llama/pulls.json", "{}");
    one(
        &b,
        "github/acme/llama/pulls.json:1: must be a JSON array, as the GitHub REST API returns it",
    );

    let b = TestBundle::valid();
    b.remove("github/acme/llama/pulls.json");
    one(
        &b,
        "github/acme/llama: pulls.json is missing; every repository needs commits.json and pulls.json",
    );

    let b = TestBundle::valid();
    b.write("github/acme/llama/issues.json", "[]");
    one(
        &b,
        "github/acme/llama/issues.json: github/ must be laid out as github/<owner>/<repo>/{commits,pulls,deployments,trees}.json",
    );

    let b = TestBundle::valid();
    b.write("github/acme/llama/trees.json", r#"[{"sha": "t1"}]"#);
    one(
        &b,
        "github/acme/llama/trees.json: tree #1 needs a `sha` string and a `tree` list of path/mode/type/sha entries",
    );
}

#[test]
fn runbooks_and_policy_must_be_yaml() {
    let b = TestBundle::valid();
    b.write("runbooks/bad.yaml", "a: [1\n");
    assert!(
        b.problems()[0].starts_with("runbooks/bad.yaml:"),
        "{:?}",
        b.problems()
    );
    assert!(b.problems()[0].contains("invalid YAML"));

    let b = TestBundle::valid();
    b.write("policy.yaml", "- just\n- a list\n");
    one(&b, "policy.yaml:1: the policy must be a YAML mapping");
}

#[test]
fn every_problem_is_reported_at_once() {
    let b = TestBundle::valid();
    b.edit_scenario("version: 1", "version: 3");
    b.write(
        "clusters/c1/objects/extra.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: cfg }\n",
    );
    b.write("metrics/gpu.om", "x 1\n");
    assert_eq!(
        b.problems(),
        vec![
            "scenario.yaml:1: `version` must be 1, found 3".to_string(),
            "clusters/c1/objects/extra.yaml:1: ConfigMap \"cfg\" is namespaced and needs `metadata.namespace`".to_string(),
            "metrics/gpu.om: invalid OpenMetrics: the file must end with \"# EOF\"".to_string(),
        ]
    );
    let err = Bundle::load(b.path()).unwrap_err();
    assert_eq!(err.problems().len(), 3);
    assert!(err.to_string().contains("3 problem(s)"));
}

#[test]
fn starter_bundles_validate() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bundles");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut checked = 0;
    for e in entries {
        let path = e.unwrap().path();
        if path.is_dir() {
            let problems: Vec<String> =
                Bundle::check(&path).iter().map(|p| p.to_string()).collect();
            assert_eq!(problems, Vec::<String>::new(), "{}", path.display());
            checked += 1;
        }
    }
    eprintln!("validated {checked} starter bundle(s)");
}
