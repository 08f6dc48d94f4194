"""Reading a Prometheus text exposition in tests."""
from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted label items): value} of a scrape."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels) -> float | None:
    return samples(text).get((name, tuple(sorted(labels.items()))))


def scrape(client, **headers) -> str:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain")
    return response.get_data(as_text=True)


def names(text: str) -> set[str]:
    """Every metric a scrape declares (# TYPE, even with no sample yet) and every sample name in it."""
    found = set()
    for family in text_string_to_metric_families(text):
        found.add(family.name)
        found.update(s.name for s in family.samples)
    return found
