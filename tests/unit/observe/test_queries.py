"""The named query templates: the fixed set, escaping in one place, override validation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from paretoscale.errors import SpecError
from paretoscale.observe.queries import (
    DEFAULT_TEMPLATES,
    GROUP_LABELS,
    LATENCY_QUERIES,
    QueryTemplate,
    apply_overrides,
    check_window,
    load_templates,
    promql_string,
    regex_literal,
    selector_for,
)

GONE_IN_VLLM_033 = ("gpu_cache_usage_perc", "time_per_output_token_seconds")


def test_the_fixed_set() -> None:
    assert list(DEFAULT_TEMPLATES) == [
        "request_rate",
        "e2e_latency_buckets",
        "ttft_buckets",
        "itl_buckets",
        "request_totals",
        "queue_growth",
        "prompt_tokens_rate",
        "generation_tokens_rate",
        "requests_running",
        "requests_waiting",
        "kv_cache_usage",
        "spec_decode_accepted_rate",
        "spec_decode_draft_rate",
        "replicas_reporting",
        "gpu_price",
    ]
    for name, t in DEFAULT_TEMPLATES.items():
        assert t.name == name and t.description
        assert not any(gone in t.promql for gone in GONE_IN_VLLM_033), name


def test_every_vllm_query_is_grouped_by_the_variant_labels() -> None:
    by = "by (" + ", ".join(GROUP_LABELS)
    for name, t in DEFAULT_TEMPLATES.items():
        if name == "gpu_price":
            continue
        assert by in t.promql, name
        assert "$selector" in t.promql, name
    for name in LATENCY_QUERIES.values():
        assert "variant, le)" in DEFAULT_TEMPLATES[name].promql


def test_rendered_queries() -> None:
    rate = DEFAULT_TEMPLATES["request_rate"].render("2m")
    assert rate == (
        "sum by (namespace, modeldeployment, variant, finished_reason) "
        "(rate(vllm:request_success_total{}[2m]))"
    )
    assert DEFAULT_TEMPLATES["request_totals"].render("2m") == (
        "sum by (namespace, modeldeployment, variant, finished_reason) "
        "(vllm:request_success_total{})"
    )
    e2e = DEFAULT_TEMPLATES["e2e_latency_buckets"].render("90s", 'namespace=~"llm"')
    assert e2e == (
        "sum by (namespace, modeldeployment, variant, le) "
        '(rate(vllm:e2e_request_latency_seconds_bucket{namespace=~"llm"}[90s]))'
    )
    assert DEFAULT_TEMPLATES["gpu_price"].render("2m") == (
        "avg by (label_nvidia_com_gpu_product) (node_gpu_hourly_cost * on (node) "
        "group_left (label_nvidia_com_gpu_product) kube_node_labels)"
    )
    assert DEFAULT_TEMPLATES["kv_cache_usage"].render("2m") == (
        "avg by (namespace, modeldeployment, variant) (vllm:kv_cache_usage_perc{})"
    )
    assert DEFAULT_TEMPLATES["replicas_reporting"].render("2m").startswith("count by (")


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("llm", '"llm"'),
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        ("a\nb", '"a\\nb"'),
    ],
    ids=["plain", "quote", "backslash", "newline"],
)
def test_promql_string(value: str, literal: str) -> None:
    assert promql_string(value) == literal


def test_regex_literal_matches_only_itself() -> None:
    for value in ["a.b", "x|y", "(z)", "p+q*", "[1]", "^s$", "a\\b"]:
        pattern = regex_literal(value)
        assert re.fullmatch(pattern, value)
        assert not re.fullmatch(pattern, value + "x")
    assert re.fullmatch(regex_literal("a.b"), "axb") is None


def test_selector_for() -> None:
    assert selector_for({}) == ""
    assert selector_for({"namespace": []}) == ""
    assert selector_for({"namespace": ["team-b", "llm", "llm"]}) == 'namespace=~"llm|team-b"'
    # The dot is a regex metacharacter, escaped once for RE2 and once for the PromQL string.
    assert selector_for({"namespace": ["a.b"]}) == 'namespace=~"a\\\\.b"'
    with pytest.raises(ValueError, match="invalid Prometheus label name"):
        selector_for({"bad-label": ["x"]})


@pytest.mark.parametrize("window", ["2m", "90s", "1m30s", "500ms", "1h"])
def test_window_ok(window: str) -> None:
    assert check_window(window) == window


@pytest.mark.parametrize("window", ["", "2", "2 m", "2m]", "$x", "-1m"])
def test_window_refused(window: str) -> None:
    with pytest.raises(SpecError, match="not a PromQL duration"):
        check_window(window)


def test_override_replaces_by_name() -> None:
    custom = (
        "sum by (namespace, modeldeployment, variant) (rate(my_requests_total{$selector}[$window]))"
    )
    templates = apply_overrides({"request_rate": custom})
    assert templates["request_rate"].promql == custom
    assert templates["request_rate"].description == DEFAULT_TEMPLATES["request_rate"].description
    assert templates["ttft_buckets"] is DEFAULT_TEMPLATES["ttft_buckets"]
    assert len(templates) == len(DEFAULT_TEMPLATES)


def test_unknown_name_is_refused_with_the_valid_names() -> None:
    with pytest.raises(SpecError) as e:
        apply_overrides({"request_rte": "up", "gpu_cache": "up"}, "q.yaml")
    message = str(e.value)
    assert message.startswith(
        "q.yaml: unknown query name 'gpu_cache', 'request_rte'; valid names: "
    )
    for name in DEFAULT_TEMPLATES:
        assert name in message


@pytest.mark.parametrize(
    ("promql", "match"),
    [
        (42, "expected a PromQL string, got int"),
        ("  ", "the query is empty"),
        (
            "rate(x[$range])",
            r"unknown placeholder \$range; the placeholders are \$window and \$selector",
        ),
        ("x $ y", r"invalid '\$'"),
    ],
    ids=["not-a-string", "empty", "unknown-placeholder", "stray-dollar"],
)
def test_bad_override_is_refused(promql: object, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        apply_overrides({"request_rate": promql})


def test_literal_dollar_is_written_twice() -> None:
    t = apply_overrides({"gpu_price": 'label_replace(x, "a", "$$1", "b", "(.*)")'})["gpu_price"]
    assert t.render("2m") == 'label_replace(x, "a", "$1", "b", "(.*)")'


def test_load_templates_from_yaml(tmp_path: Path) -> None:
    assert load_templates(None) is DEFAULT_TEMPLATES
    path = tmp_path / "queries.yaml"
    path.write_text(
        "# only the price differs in this cluster\n"
        "gpu_price: |\n"
        "  avg by (label_nvidia_com_gpu_product) (my_gpu_price)\n"
    )
    templates = load_templates(str(path))
    assert templates["gpu_price"] == QueryTemplate(
        "gpu_price",
        DEFAULT_TEMPLATES["gpu_price"].description,
        "avg by (label_nvidia_com_gpu_product) (my_gpu_price)",
    )
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_templates(str(empty)) is DEFAULT_TEMPLATES


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("- request_rate\n", "expected a mapping of query name -> PromQL, got list"),
        ("request_rate: [unclosed\n", "not valid YAML"),
        ("running: up\n", "unknown query name 'running'"),
    ],
    ids=["list", "bad-yaml", "unknown-name"],
)
def test_load_templates_refuses(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "queries.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=match) as e:
        load_templates(str(path))
    assert e.value.source == str(path)


def test_missing_queries_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read the queries file"):
        load_templates(str(tmp_path / "nope.yaml"))


def test_the_price_query_joins_on_every_label_key_of_the_gpu_type_mapping() -> None:
    from paretoscale.api.accelerators import preset
    from paretoscale.observe.prometheus import priced
    from paretoscale.observe.queries import PRICE_QUERY, gpu_price_query, node_label

    assert node_label("cloud.google.com/gke-accelerator") == (
        "label_cloud_google_com_gke_accelerator"
    )
    gke = priced(DEFAULT_TEMPLATES, preset("gke"))[PRICE_QUERY].render("2m")
    labels = (
        "label_amd_com_gpu_product_name, label_cloud_google_com_gke_accelerator, "
        "label_nvidia_com_gpu_product"
    )
    assert gke == (
        f"avg by ({labels}) (node_gpu_hourly_cost * on (node) "
        f"group_left ({labels}) kube_node_labels)"
    )
    assert DEFAULT_TEMPLATES[PRICE_QUERY] == gpu_price_query(["nvidia.com/gpu.product"])
    # A price query from the queries file is kept as written.
    mine = apply_overrides({PRICE_QUERY: "avg by (label_x) (my_price)"})
    assert priced(mine, preset("gke"))[PRICE_QUERY].promql == "avg by (label_x) (my_price)"
